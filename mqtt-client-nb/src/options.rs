//! Connection options, named after esp-mqtt's `esp_mqtt_client_config_t` where they match.

use core::time::Duration;

use mqtt_sansio::session::{ReconnectPolicy, SessionConfig};
use mqtt_sansio::{Connect, ProtocolVersion, QoS, TopicName, Will as WillPacket};

/// What the client connects with. Kept by the client for its whole life: every reconnect
/// sends the same CONNECT.
///
/// ```
/// use mqtt_client_nb::{Will, Options};
/// use mqtt_sansio::{ProtocolVersion, QoS, TopicName};
///
/// let mac = [0x3c, 0x71, 0xbf, 0x4a, 0x2b, 0x10];
/// let mut options = Options::new(ProtocolVersion::V5);
/// options.device_id = &mac; // client id "mqtt3c71bf4a2b10"
/// options.username = Some("device");
/// options.password = Some(b"secret");
/// options.will = Some(Will::new(TopicName::new("devices/3c71bf4a2b10/online")?, b"0"));
/// # Ok::<(), mqtt_sansio::TopicError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options<'a> {
    /// Protocol version (`protocol_ver`): 3.1.1 by default, or 5.0.
    pub version: ProtocolVersion,
    /// Client identifier (`client_id`). When `None`, it is derived from
    /// [`Options::device_id`]: `mqtt` followed by the id in lowercase hex.
    pub client_id: Option<&'a str>,
    /// A unique device id, typically the MAC address, used for the default client id. Only
    /// the first 9 bytes are used, so the derived id stays within the 23 characters every
    /// broker must accept. Empty (and no `client_id`) asks the broker to assign an id, which
    /// 3.1.1 allows with a clean session only.
    pub device_id: &'a [u8],
    /// User name (`username`).
    pub username: Option<&'a str>,
    /// Password (`password`); 3.1.1 requires a user name with it.
    pub password: Option<&'a [u8]>,
    /// Last will (`lwt_*`), published by the broker if the connection ends without DISCONNECT.
    pub will: Option<Will<'a>>,
    /// Clean start (5.0) / clean session (3.1.1) (`disable_clean_session` inverted): `true`
    /// starts a new session, on 3.1.1 at every connect, on 5.0 with a non-zero
    /// [`Options::session_expiry`] for the first connection only (reconnects resume the
    /// session it created). Set it to `false` to resume a session from an earlier run.
    pub clean_start: bool,
    /// Keep alive (`keepalive`), 120 s by default, in whole seconds up to 65,535; zero turns
    /// keep alive off.
    pub keep_alive: Duration,
    /// Session expiry interval in seconds (5.0); 0 ends the session with the connection.
    pub session_expiry: u32,
    /// How long to wait for CONNACK (`network_timeout_ms`), 10 s by default.
    pub connack_timeout: Duration,
    /// How long to wait for PINGRESP; `None` waits half the keep alive.
    pub ping_timeout: Option<Duration>,
    /// How many QoS 1 and 2 messages from the broker may be unacknowledged at once, 20 by
    /// default; 5.0 brokers are told (Receive Maximum).
    pub receive_maximum: u16,
    /// Incoming QoS 2 messages the client can track at once (4 bytes of the session store
    /// each), at least `receive_maximum`; 32 by default. A 3.1.1 broker cannot be told our
    /// limit and sends up to its own window (mosquitto 20, EMQX 32), and 5.0 brokers exceed
    /// it too: messages beyond this are left with the broker, which sends them again on the
    /// next connection; the client makes one (a graceful DISCONNECT, then
    /// [`Event::Disconnected`](crate::Event::Disconnected)) once those it holds are released.
    /// A larger table means fewer such reconnects under a flood.
    pub incoming_slots: u16,
    /// At most this many of our QoS 1 and 2 messages unacknowledged at once (also capped by a
    /// 5.0 broker's Receive Maximum); the rest wait in the store. 20 by default: a 3.1.1
    /// broker cannot announce its limit, and mosquitto (`max_inflight_messages`, 20) drops
    /// what exceeds it.
    pub max_inflight: u16,
    /// Highest topic alias the broker may use towards us (5.0), 0 by default. Each alias
    /// needs room for its topic in [`Options::incoming_alias_bytes`].
    pub topic_alias_maximum: u16,
    /// Bytes of the session store reserved for the topics of incoming aliases.
    pub incoming_alias_bytes: usize,
    /// Let the session assign topic aliases to outgoing messages (5.0), within
    /// [`Options::outgoing_alias_bytes`] of the store.
    pub outgoing_topic_aliases: bool,
    /// Bytes of the session store reserved for the topics of outgoing aliases.
    pub outgoing_alias_bytes: usize,
    /// Leave PUBACK and PUBREC to [`Client::ack`](crate::Client::ack) instead of sending
    /// them as soon as a message is delivered.
    pub manual_acks: bool,
    /// When and whether [`Client::poll_reconnecting`](crate::Client::poll_reconnecting)
    /// reconnects: backoff from 1 s to 60 s that resets only after a connection stayed up
    /// 10 s, jittered. Set [`ReconnectPolicy::seed`] per device (its MAC address, say) so
    /// that devices cut off together do not come back together.
    pub reconnect: ReconnectPolicy,
    /// How long [`Client::disconnect`](crate::Client::disconnect) waits for open handshakes
    /// (acknowledgements of what was sent, the broker's PUBREL) before the DISCONNECT goes
    /// out anyway; 5 s by default.
    pub drain_timeout: Duration,
    /// 5.0 enhanced authentication: the method named in CONNECT (e.g. `SCRAM-SHA-256`); the
    /// broker's challenges arrive as [`Event::Auth`](crate::Event::Auth), answered with
    /// [`Client::auth`](crate::Client::auth).
    pub authentication_method: Option<&'a str>,
    /// Initial authentication data sent with the method in CONNECT.
    pub authentication_data: Option<&'a [u8]>,
    /// Bytes of the session store reserved for the AUTH packets of enhanced authentication
    /// ([`Client::set_authenticator`](crate::Client::set_authenticator),
    /// [`Client::auth`](crate::Client::auth)): at least the largest response, about 140 bytes
    /// for SCRAM-SHA-256 with a short user name. 0 by default.
    pub authentication_room: usize,
    /// Bytes of the session store that keep the subscriptions the broker granted, so that
    /// the client renews them on its own when a broker comes back without our session
    /// ([`Event::Connected`](crate::Event::Connected) with `session_present` false), reported
    /// as [`Event::Resubscribed`](crate::Event::Resubscribed). Each filter takes 8 bytes plus
    /// its length; a filter that finds no room still works but is not renewed
    /// ([`Notice::SubscriptionNotRenewable`](mqtt_sansio::session::Notice)). 0 by default:
    /// renewal is left to the application. See
    /// [`SessionConfig::subscription_bytes`](mqtt_sansio::session::SessionConfig::subscription_bytes).
    pub subscription_bytes: usize,
    /// Largest packet accepted from the broker (5.0 brokers are told: Maximum Packet
    /// Size). 0, the default, means the receive buffer's size: larger messages are skipped
    /// ([`Notice::MessageSkipped`](mqtt_sansio::session::Notice)). Set it above the receive
    /// buffer (e.g. to 2 MiB for firmware images) to receive larger messages as
    /// [`Event::MessageChunk`](crate::Event::MessageChunk)s through the same buffer, which
    /// must then hold a PUBLISH's header and one payload byte. Messages larger than this
    /// are still skipped.
    pub maximum_packet_size: u32,
    /// On 5.0, when the broker refuses the version (a 3.1.1-only broker), speak 3.1.1 from
    /// then on and reconnect at once through
    /// [`Client::poll_reconnecting`](crate::Client::poll_reconnecting), reported as
    /// [`Notice::FellBackToV311`](mqtt_sansio::session::Notice). Off by default: the refusal
    /// stops the reconnects. See
    /// [`SessionConfig::fallback_to_v311`](mqtt_sansio::session::SessionConfig::fallback_to_v311).
    pub fallback_to_v311: bool,
}

impl<'a> Options<'a> {
    /// Defaults: clean session, keep alive 120 s, CONNACK timeout 10 s, 20 messages in flight
    /// each way, no will, no credentials, no topic aliases, automatic acknowledgements.
    pub const fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            client_id: None,
            device_id: &[],
            username: None,
            password: None,
            will: None,
            clean_start: true,
            keep_alive: Duration::from_secs(120),
            session_expiry: 0,
            connack_timeout: Duration::from_secs(10),
            ping_timeout: None,
            receive_maximum: 20,
            incoming_slots: 32,
            max_inflight: 20,
            topic_alias_maximum: 0,
            incoming_alias_bytes: 0,
            outgoing_topic_aliases: false,
            outgoing_alias_bytes: 0,
            manual_acks: false,
            reconnect: ReconnectPolicy::new(),
            drain_timeout: Duration::from_secs(5),
            authentication_method: None,
            authentication_data: None,
            authentication_room: 0,
            subscription_bytes: 0,
            fallback_to_v311: false,
            maximum_packet_size: 0,
        }
    }

    /// The CONNECT these options describe, with `client_id` as the identifier.
    pub(crate) fn connect<'c>(&self, client_id: &'c str) -> Connect<'c>
    where
        'a: 'c,
    {
        let mut connect = Connect::new(self.version, client_id);
        connect.clean_start = self.clean_start;
        let secs = self.keep_alive.as_secs();
        connect.keep_alive = u16::try_from(secs).unwrap_or(u16::MAX);
        connect.username = self.username;
        connect.password = self.password;
        connect.will = self.will.map(|w| WillPacket {
            topic: w.topic,
            payload: w.payload,
            qos: w.qos,
            retain: w.retain,
            properties: Default::default(),
        });
        // 5.0 only: the session leaves the properties out on 3.1.1, and a build without
        // `v5` speaks nothing else.
        if !cfg!(feature = "v5") {
            return connect;
        }
        if self.session_expiry > 0 {
            connect.properties.session_expiry_interval = Some(self.session_expiry);
        }
        connect.properties.authentication_method = self.authentication_method;
        connect.properties.authentication_data = self.authentication_data;
        connect
    }

    /// The session configuration: the options above, the largest packet we accept (at least
    /// the receive buffer's size, which is also the size above which PUBLISHes are
    /// streamed), and a control region sized to the CONNECT.
    pub(crate) fn session_config(
        &self,
        rx_len: usize,
        tx_len: usize,
        control_len: usize,
    ) -> SessionConfig {
        let mut config = SessionConfig::new(self.version);
        config.receive_maximum = self.receive_maximum.max(1);
        config.incoming_slots = self.incoming_slots;
        config.reconnect = self.reconnect;
        config.drain_timeout = self.drain_timeout;
        // Room for an identifier the broker assigns, when we name none (5.0 brokers assign
        // about 40 characters: mosquitto's `auto-` and a UUID).
        // (3.1.1 brokers assign none to keep: the session's default there is 0.)
        let unnamed = self.client_id.is_none() && self.device_id.is_empty();
        config.assigned_id_bytes = if unnamed {
            config.assigned_id_bytes.min(64)
        } else {
            0
        };
        let rx_max = u32::try_from(rx_len).unwrap_or(u32::MAX);
        config.maximum_packet_size = self.maximum_packet_size.max(rx_max);
        // PUBLISHes between the two are streamed through `rx`.
        config.receive_capacity = rx_len;
        config.topic_alias_maximum = self.topic_alias_maximum;
        config.incoming_alias_bytes = self.incoming_alias_bytes;
        config.outgoing_topic_aliases = self.outgoing_topic_aliases;
        config.outgoing_alias_bytes = self.outgoing_alias_bytes;
        config.manual_acks = self.manual_acks;
        config.max_inflight = self.max_inflight.max(1);
        config.connack_timeout = self.connack_timeout;
        config.ping_timeout = self.ping_timeout;
        // The session adds Receive Maximum, Maximum Packet Size and Topic Alias Maximum to a
        // 5.0 CONNECT (at most 13 bytes, plus one of property length); 64 bytes at least so a
        // DISCONNECT or a small AUTH fits as well.
        config.control_bytes = control_len.max(64) + self.authentication_room;
        // Nothing the transmit buffer cannot hold is queued.
        config.transmit_capacity = tx_len;
        config.subscription_bytes = self.subscription_bytes;
        config.fallback_to_v311 = self.fallback_to_v311;
        config
    }
}

impl Default for Options<'_> {
    /// [`Options::new`] with MQTT 3.1.1.
    fn default() -> Self {
        Self::new(ProtocolVersion::V3_1_1)
    }
}

/// A last will: published by the broker on our behalf when the connection ends without a
/// DISCONNECT (keep alive expired, transport dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Will<'a> {
    /// Topic (`lwt_topic`).
    pub topic: TopicName<'a>,
    /// Payload (`lwt_msg`).
    pub payload: &'a [u8],
    /// QoS (`lwt_qos`).
    pub qos: QoS,
    /// Retain flag (`lwt_retain`).
    pub retain: bool,
}

impl<'a> Will<'a> {
    /// A QoS 0, non-retained will.
    pub const fn new(topic: TopicName<'a>, payload: &'a [u8]) -> Self {
        Self {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain: false,
        }
    }
}

/// The client identifier derived from a device id: `mqtt` and up to 9 bytes in hex.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DerivedId {
    bytes: [u8; 22],
    len: u8,
}

impl DerivedId {
    pub(crate) fn new(device_id: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut bytes = [0u8; 22];
        if device_id.is_empty() {
            return Self { bytes, len: 0 };
        }
        bytes[..4].copy_from_slice(b"mqtt");
        let mut len = 4;
        for b in device_id.iter().take(9) {
            bytes[len] = HEX[usize::from(b >> 4)];
            bytes[len + 1] = HEX[usize::from(b & 0xf)];
            len += 2;
        }
        // At most 4 + 18 = 22 bytes.
        Self {
            bytes,
            len: len as u8,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII letters and hex digits are ever written.
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_client_id_is_hex_of_the_device_id() {
        let id = DerivedId::new(&[0x3c, 0x71, 0xbf, 0x4a, 0x2b, 0x10]);
        assert_eq!(id.as_str(), "mqtt3c71bf4a2b10");
        assert_eq!(DerivedId::new(&[]).as_str(), "");
        assert_eq!(DerivedId::new(&[0xff; 20]).as_str().len(), 22);
    }
}
