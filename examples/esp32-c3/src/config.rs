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
/// Broker host name or IPv4 address (`MQTT_HOST`).
pub const MQTT_HOST: &str = env_or(option_env!("MQTT_HOST"), "test.mosquitto.org");
/// Broker TCP port (`MQTT_PORT`).
pub const MQTT_PORT: u16 = parse_u16(env_or(option_env!("MQTT_PORT"), "1883"));
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

/// Where the `persistent-session` build keeps the MQTT session: the last four 4 KiB sectors of
/// the ESP32-C3's 4 MiB flash, past the application (a few hundred KiB from 0x10000) and
/// outside the bootloader, the partition table, `nvs` and `phy_init`. No partition names it:
/// a build that also uses OTA slots or a larger app must move it.
#[cfg(feature = "persistent-session")]
pub const SESSION_FLASH: core::ops::Range<u32> = 0x3F_C000..0x40_0000;

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
