//! What a simulated device is: the broker it talks to, its credentials and identity, and how
//! it behaves (telemetry interval, keep alive, backoff).

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use led_device::{DeviceId, IdError};
use mqtt_client_nb::mqtt_sansio::ProtocolVersion;

/// The port of `mqtt://` URLs that name none (the IANA port for MQTT over TCP).
const MQTT_DEFAULT_PORT: u16 = 1883;

/// Settings of one simulated device.
///
/// [`SimConfig::new`] or [`SimConfig::from_url`] fill in what the firmware uses by default:
/// MQTT 3.1.1, keep alive 30 s, telemetry every 30 s, reconnect backoff from 1 s to 60 s, the
/// LED off, and a device id derived from a made-up MAC address (`esp32-xxxxxx`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimConfig {
    /// Broker host name or IP address (no brackets around IPv6 literals).
    pub host: String,
    /// Broker TCP port.
    pub port: u16,
    /// User name sent in CONNECT, if any.
    pub username: Option<String>,
    /// Password sent in CONNECT, if any (3.1.1 needs a user name with it).
    pub password: Option<String>,
    /// Device id (client id and topic segment). `None` derives `esp32-xxxxxx` from
    /// [`SimConfig::mac`], as the firmware does from the board's MAC address.
    pub device_id: Option<String>,
    /// The simulated board's MAC address.
    pub mac: [u8; 6],
    /// Time between telemetry messages; zero turns telemetry off.
    pub telemetry_interval: Duration,
    /// MQTT protocol version.
    pub protocol: ProtocolVersion,
    /// MQTT keep alive in seconds; 0 turns it off.
    pub keep_alive_secs: u16,
    /// First delay before reconnecting after a failed or lost connection; doubles per attempt.
    pub backoff_initial: Duration,
    /// Longest delay between reconnect attempts.
    pub backoff_max: Duration,
    /// LED state at power-on.
    pub initial_led: bool,
    /// How long one TCP connect attempt may take.
    pub connect_timeout: Duration,
    /// A file holding the board's flash partition for the MQTT session (16 KiB, created
    /// erased when missing). With it the session is journaled there
    /// (`mqtt_client_nb::flash::FlashJournal`) and kept by the broker too (Clean Session 0 /
    /// Clean Start 0 with a session expiry): a killed simulator started again on the same
    /// file resumes it, resending what was unacknowledged, as the board does after a reset.
    /// `None` (the default): the session lives in RAM, with a clean session every connect.
    pub flash_image: Option<PathBuf>,
    /// Sleep between readings, as the board's `SLEEP_SECS` build does (needs
    /// [`SimConfig::flash_image`]): each wake boots a fresh device and client from the flash
    /// image, connects, publishes one reading (the telemetry JSON, at QoS 1), handles the
    /// commands the broker kept meanwhile, publishes `offline`, disconnects, and returns
    /// from `Client::flush_for_sleep`; then everything in RAM is dropped for this long.
    /// `None` (the default): the device stays connected.
    pub sleep_between: Option<Duration>,
}

impl SimConfig {
    /// A device talking to `host:port`, with the firmware's defaults and a fresh fake MAC.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            username: None,
            password: None,
            device_id: None,
            mac: fake_mac(),
            telemetry_interval: Duration::from_secs(30),
            protocol: ProtocolVersion::V3_1_1,
            keep_alive_secs: 30,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            initial_led: false,
            connect_timeout: Duration::from_secs(5),
            flash_image: None,
            sleep_between: None,
        }
    }

    /// A device talking to the broker at `url`: `mqtt://host:port`, `mqtt://host` (port
    /// 1883), `host:port`, with `[...]` around IPv6 literals.
    ///
    /// # Errors
    /// [`ConfigError::Url`] for other schemes (`mqtts://`, `ws://`: the simulated device
    /// speaks plain TCP only), a missing host, a bad port, or a path.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let (host, port) = parse_broker_url(url)?;
        Ok(Self::new(host, port))
    }

    /// Sets user name and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// The device id this configuration gives: [`SimConfig::device_id`], or the one derived
    /// from [`SimConfig::mac`].
    ///
    /// # Errors
    /// [`ConfigError::DeviceId`] when `device_id` is not 1 to 23 of `[A-Za-z0-9_-]`.
    pub fn resolved_id(&self) -> Result<DeviceId, ConfigError> {
        match &self.device_id {
            Some(id) => DeviceId::new(id).map_err(ConfigError::DeviceId),
            None => Ok(DeviceId::from_mac(self.mac)),
        }
    }

    /// `host:port` for display and for `TcpStream::connect`.
    pub fn broker_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The broker URL is not `mqtt://host[:port]`.
    Url(String),
    /// The device id is not valid.
    DeviceId(IdError),
    /// The MQTT client refuses the settings (e.g. a password without user name on 3.1.1, or a
    /// CONNECT too large for the device's buffers).
    Client(mqtt_client_nb::Error),
    /// [`SimConfig::sleep_between`] without [`SimConfig::flash_image`]: what the device
    /// holds across a sleep lives in its flash.
    SleepNeedsFlashImage,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Url(why) => write!(f, "broker URL: {why}"),
            ConfigError::DeviceId(e) => write!(f, "{e}"),
            ConfigError::Client(e) => write!(f, "MQTT client settings: {e}"),
            ConfigError::SleepNeedsFlashImage => {
                f.write_str("sleeping between readings needs a flash image for the session")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Splits `mqtt://host:port` (or `host:port`) into host and port.
///
/// # Errors
/// [`ConfigError::Url`] as described at [`SimConfig::from_url`].
pub fn parse_broker_url(url: &str) -> Result<(String, u16), ConfigError> {
    let bad = |why: &str| ConfigError::Url(format!("{why} in {url:?}"));
    let rest = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "scheme {scheme:?} not supported (the simulator speaks mqtt:// only)"
            )))
        }
        None => url,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad("unexpected path"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("junk after ']'")),
            },
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    let port = match port {
        None => MQTT_DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("bad port"))?,
    };
    Ok((host.to_owned(), port))
}

/// A locally administered MAC address (bit 1 of the first byte set, so it cannot clash with a
/// real board's), different per process and per call.
fn fake_mac() -> [u8; 6] {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mix = nanos ^ std::process::id().rotate_left(16) ^ n.wrapping_mul(0x9e37_79b9);
    let [a, b, c, d] = mix.to_be_bytes();
    [0x02, 0x5e, a ^ d, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let ok = |url: &str| parse_broker_url(url).unwrap();
        assert_eq!(ok("mqtt://127.0.0.1:4242"), ("127.0.0.1".into(), 4242));
        assert_eq!(ok("mqtt://broker.local/"), ("broker.local".into(), 1883));
        assert_eq!(ok("localhost:10883"), ("localhost".into(), 10883));
        assert_eq!(ok("mqtt://[::1]:4242"), ("::1".into(), 4242));
        assert_eq!(ok("[::1]"), ("::1".into(), 1883));
        for bad in [
            "mqtts://host:8883",
            "ws://host/mqtt",
            "mqtt://",
            "mqtt://:1",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:x",
            "mqtt://host:1/path",
            "mqtt://[::1",
            "mqtt://[::1]x",
        ] {
            assert!(parse_broker_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derives_the_id_from_the_mac_unless_given() {
        let mut config = SimConfig::new("h", 1);
        config.mac = [0x24, 0x6f, 0x28, 0xa1, 0xb2, 0xc3];
        assert_eq!(config.resolved_id().unwrap().as_str(), "esp32-a1b2c3");
        config.device_id = Some("lamp-1".into());
        assert_eq!(config.resolved_id().unwrap().as_str(), "lamp-1");
        config.device_id = Some("a/b".into());
        assert!(config.resolved_id().is_err());
    }

    #[test]
    fn fake_macs_are_locally_administered_and_differ() {
        let (a, b) = (fake_mac(), fake_mac());
        assert_eq!(a[0] & 0b10, 0b10);
        assert_eq!(a[0] & 0b01, 0, "unicast");
        assert_ne!(a, b);
    }

    #[test]
    fn broker_addr_brackets_ipv6() {
        assert_eq!(SimConfig::new("::1", 5).broker_addr(), "[::1]:5");
        assert_eq!(SimConfig::new("h", 5).broker_addr(), "h:5");
    }
}
