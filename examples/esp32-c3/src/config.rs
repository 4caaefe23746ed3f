//! Build-time settings: `option_env!` with defaults, so CI builds without secrets.
//!
//! Set them in the shell when building, e.g.
//! `WIFI_SSID=home WIFI_PASSWORD=secret MQTT_HOST=192.168.1.10 cargo run --release`.

// The builds without MQTT (size comparisons) leave some settings unused.
#![cfg_attr(not(feature = "mqtt"), allow(dead_code))]

/// Wi-Fi network name (`WIFI_SSID`).
pub const WIFI_SSID: &str = env_or(option_env!("WIFI_SSID"), "mqtt-demo");
/// Wi-Fi WPA2 passphrase (`WIFI_PASSWORD`); empty means an open network.
pub const WIFI_PASSWORD: &str = env_or(option_env!("WIFI_PASSWORD"), "");
/// The broker (`MQTT_HOST`): a host name or IPv4 address, bare or as `mqtt://host[:port]`
/// (plain TCP) or `mqtts://host[:port]` (TLS, needs `--features tls`). A bare host means TLS
/// in the `tls` build.
const BROKER: Broker = Broker::parse(env_or(option_env!("MQTT_HOST"), "test.mosquitto.org"));
/// Broker host name or IPv4 address, from `MQTT_HOST`.
pub const MQTT_HOST: &str = BROKER.host;
/// Broker TCP port: `MQTT_PORT`, else the port in `MQTT_HOST`, else 8883 with TLS and 1883
/// without.
pub const MQTT_PORT: u16 = match option_env!("MQTT_PORT") {
    Some(port) => parse_u16(port),
    None => match BROKER.port {
        Some(port) => port,
        None if BROKER.tls => 8883,
        None => 1883,
    },
};
const _: () = assert!(
    BROKER.tls == cfg!(feature = "tls"),
    "MQTT_HOST: mqtts:// needs --features tls, and the tls build speaks only TLS (mqtts://)"
);
/// The name the broker's certificate must carry (`MQTT_TLS_NAME`); by default the host of
/// `MQTT_HOST`. Set it when `MQTT_HOST` is an IP address.
#[cfg(feature = "tls")]
pub const MQTT_TLS_NAME: &str = env_or(option_env!("MQTT_TLS_NAME"), MQTT_HOST);
/// The CA certificate (DER) the broker's chain must lead to: the first certificate of the
/// PEM or DER file that `MQTT_CA_CERT` names at build time (see `build.rs`); empty when it
/// is unset, and then the firmware does not connect.
#[cfg(feature = "tls")]
pub const MQTT_CA_CERT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ca.der"));
/// Broker user name (`MQTT_USERNAME`); empty means none is sent.
pub const MQTT_USERNAME: &str = env_or(option_env!("MQTT_USERNAME"), "");
/// Broker password (`MQTT_PASSWORD`); empty means none is sent.
pub const MQTT_PASSWORD: &str = env_or(option_env!("MQTT_PASSWORD"), "");
/// Device id (`DEVICE_ID`); empty means derived from the MAC address (`esp32-a1b2c3`).
pub const DEVICE_ID: &str = env_or(option_env!("DEVICE_ID"), "");
/// Seconds between telemetry messages (`TELEMETRY_SECS`); 0 turns telemetry off.
pub const TELEMETRY_SECS: u16 = parse_u16(env_or(option_env!("TELEMETRY_SECS"), "30"));
/// MQTT keep-alive in seconds (`MQTT_KEEP_ALIVE_SECS`).
pub const KEEP_ALIVE_SECS: u16 = parse_u16(env_or(option_env!("MQTT_KEEP_ALIVE_SECS"), "30"));
/// Whether the LED lights when the pin is low (`LED_ACTIVE_LOW=1`), as on ESP32-C3 SuperMini
/// boards whose blue LED sits between 3V3 and GPIO8.
pub const LED_ACTIVE_LOW: bool =
    matches!(env_or(option_env!("LED_ACTIVE_LOW"), "0").as_bytes(), b"1");

/// Sleep between readings (`SLEEP_SECS`, needs `--features persistent-session`): each wake
/// connects, publishes one reading at QoS 1, takes the commands the broker kept, disconnects,
/// and deep-sleeps this many seconds once the session is durable in flash. 0 (the default):
/// stay connected.
pub const SLEEP_SECS: u16 = parse_u16(env_or(option_env!("SLEEP_SECS"), "0"));
#[cfg(not(feature = "persistent-session"))]
const _: () = assert!(
    SLEEP_SECS == 0,
    "SLEEP_SECS needs --features persistent-session: the session sleeps in flash"
);
#[cfg(feature = "tls")]
const _: () = assert!(
    SLEEP_SECS == 0,
    "SLEEP_SECS is not supported with --features tls yet: a wake connects over plain TCP"
);

/// Where the `persistent-session` build keeps the MQTT session: the last four 4 KiB sectors of
/// the ESP32-C3's 4 MiB flash, past the application (a few hundred KiB from 0x10000) and
/// outside the bootloader, the partition table, `nvs` and `phy_init`. No partition names it:
/// a build that also uses OTA slots or a larger app must move it.
#[cfg(feature = "persistent-session")]
pub const SESSION_FLASH: core::ops::Range<u32> = 0x3F_C000..0x40_0000;

/// `MQTT_HOST` taken apart.
struct Broker {
    host: &'static str,
    port: Option<u16>,
    tls: bool,
}

impl Broker {
    /// `mqtts://host:port`, `mqtt://host`, `host`, ... (a trailing `/` is allowed).
    const fn parse(url: &'static str) -> Self {
        let (tls, rest) = if let Some(rest) = strip_prefix(url, "mqtts://") {
            (true, rest)
        } else if let Some(rest) = strip_prefix(url, "mqtt://") {
            (false, rest)
        } else {
            assert!(
                !contains(url, b'/'),
                "MQTT_HOST: the scheme must be mqtt:// or mqtts://"
            );
            (cfg!(feature = "tls"), url)
        };
        let rest = match rest.as_bytes() {
            [head @ .., b'/'] => utf8(head),
            _ => rest,
        };
        let bytes = rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b':' {
            i += 1;
        }
        let (host, port) = bytes.split_at(i);
        assert!(!host.is_empty(), "MQTT_HOST: no host");
        let port = match port {
            [] => None,
            [_colon, digits @ ..] => Some(parse_u16(utf8(digits))),
        };
        Self {
            host: utf8(host),
            port,
            tls,
        }
    }
}

const fn strip_prefix(text: &'static str, prefix: &str) -> Option<&'static str> {
    let (text, prefix) = (text.as_bytes(), prefix.as_bytes());
    if text.len() < prefix.len() {
        return None;
    }
    let (head, rest) = text.split_at(prefix.len());
    let mut i = 0;
    while i < head.len() {
        if head[i] != prefix[i] {
            return None;
        }
        i += 1;
    }
    Some(utf8(rest))
}

const fn contains(text: &str, byte: u8) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == byte {
            return true;
        }
        i += 1;
    }
    false
}

/// A part of a setting split at an ASCII byte, so still UTF-8.
const fn utf8(bytes: &'static [u8]) -> &'static str {
    match core::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("build-time setting split inside a character"),
    }
}

const fn env_or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(v) => v,
        None => default,
    }
}

/// A decimal `u16`, checked at compile time: a bad value fails the build, not the device.
const fn parse_u16(text: &str) -> u16 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty number in build-time setting");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(
            digit.is_ascii_digit(),
            "not a decimal number in build-time setting"
        );
        value = value * 10 + (digit - b'0') as u32;
        assert!(
            value <= u16::MAX as u32,
            "number too large in build-time setting"
        );
        i += 1;
    }
    value as u16
}
