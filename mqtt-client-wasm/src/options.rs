//! What the client connects with: the broker's WebSocket URL, the login, and the session's
//! settings.

use std::time::Duration;

use mqtt_sansio::session::ReconnectPolicy;
use mqtt_sansio::ProtocolVersion;

/// Options of a `Client` (wasm32) or a bare [`Pump`](crate::Pump): named as in
/// `mqtt-client-tokio`'s and `mqtt-client-nb`'s options.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The broker's WebSocket URL, `ws://host:port/path` or `wss://...`; the subprotocol is
    /// `mqtt` and frames are binary.
    pub url: String,
    /// Client identifier; empty lets a 5.0 broker assign one (kept for reconnects), and makes
    /// one up for 3.1.1, which needs it for its session to survive.
    pub client_id: String,
    /// User name.
    pub username: Option<String>,
    /// Password (3.1.1 sends it only with a user name).
    pub password: Option<String>,
    /// MQTT version: [`ProtocolVersion::V5`] (default) or [`ProtocolVersion::V3_1_1`].
    pub version: ProtocolVersion,
    /// Keep alive; the session sends PINGREQ and gives up on a silent broker.
    pub keep_alive: Duration,
    /// Clean start on the first connection; the session decides for later ones.
    pub clean_start: bool,
    /// Reconnect when the connection ends and the session says retrying can help.
    pub reconnect: bool,
    /// The session's reconnect backoff (delays, jitter, when a connection counts as stable).
    pub reconnect_policy: ReconnectPolicy,
    /// How long to wait for CONNACK.
    pub connect_timeout: Duration,
    /// Room for messages queued while offline or unacknowledged, in bytes.
    pub offline_queue_bytes: usize,
    /// Room for the subscriptions the session renews by itself when a broker has lost the
    /// session (8 bytes plus the filter each; 0 leaves renewing to the application).
    pub subscription_bytes: usize,
    /// Largest packet accepted from the broker (5.0 Maximum Packet Size).
    pub maximum_packet_size: u32,
}

impl Options {
    /// Options for the broker at `url` (e.g. `ws://127.0.0.1:9001`): MQTT 5.0, keep alive
    /// 30 s, clean start, reconnecting with the session's default backoff (1 s to 60 s), 64 KiB
    /// offline queue, 2 KiB of subscriptions renewed after a lost session, packets up to
    /// 256 KiB.
    pub fn new(url: impl Into<String>) -> Self {
        let mut reconnect_policy = ReconnectPolicy::new();
        // A page's client should come back soon after a broker restart.
        reconnect_policy.initial = Duration::from_millis(500);
        reconnect_policy.max = Duration::from_secs(10);
        Self {
            url: url.into(),
            client_id: String::new(),
            username: None,
            password: None,
            version: ProtocolVersion::V5,
            keep_alive: Duration::from_secs(30),
            clean_start: true,
            reconnect: true,
            reconnect_policy,
            connect_timeout: Duration::from_secs(10),
            offline_queue_bytes: 64 * 1024,
            subscription_bytes: 2048,
            maximum_packet_size: 256 * 1024,
        }
    }

    /// Sets the user name and password.
    #[must_use]
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Sets the client identifier.
    #[must_use]
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets the MQTT version.
    #[must_use]
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Sets the keep alive.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive;
        self
    }
}
