//! Client options, split by layer: where the brokers are, the MQTT protocol, the transport
//! (TLS, WebSocket) and the client's policy (reconnect, offline queue).
//!
//! Every options struct has public fields and a [`Default`]; build one with
//! `..Default::default()` so that fields added later do not break your code.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mqtt_sansio::{ProtocolVersion, QoS, ReasonCode};
use tokio_rustls::rustls;

use crate::url::BrokerUrl;
use crate::{Error, Properties};

/// Everything [`Client::new`](crate::Client::new) needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) brokers: Vec<BrokerUrl>,
    /// MQTT protocol options.
    pub protocol: ProtocolOptions,
    /// TLS and socket options.
    pub transport: TransportOptions,
    /// Reconnect and queueing policy.
    pub policy: Policy,
    /// Keep the session in a directory, so that QoS 1 and 2 messages survive a crash or a
    /// restart of the process. Default: none (the session lives in memory).
    pub persistence: Option<Persistence>,
}

/// Where and how durably the session is kept ([`Options::persistence`]).
///
/// What is kept: the QoS 1 and 2 messages accepted and not yet acknowledged (with where their
/// handshake stands), the incoming QoS 2 messages whose release the broker still owes (so
/// that a message is not delivered twice after a restart), the subscriptions the session
/// renews, and the client identifier. A client created on the same directory after a crash
/// resumes all of it, and with the broker's persistent session, which the session asks for:
/// Clean Session 0 on 3.1.1; on 5.0 Clean Start 0 from the second connection on and a
/// Session Expiry Interval (none given becomes `u32::MAX`, never expires); the same client
/// identifier (one made up by the client is kept in the directory). QoS 0 messages are not
/// kept.
///
/// A message is accepted (see [`Delivery::stored`](crate::Delivery::stored)) once it is as
/// durable as [`Persistence::sync`] promises, and nothing is sent to the broker before the
/// records that precede it are written. Two clients cannot use one directory at once: the
/// second is refused with [`Error::Persistence`](crate::Error::Persistence).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Persistence {
    /// The directory (created if missing).
    pub dir: std::path::PathBuf,
    /// How durable a write must be before a message counts as stored. Default:
    /// [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
}

impl Persistence {
    /// The session kept in `dir`, synced on every write.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            sync: SyncPolicy::Always,
        }
    }

    /// The same, with `sync`.
    #[must_use]
    pub fn sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
}

/// When the journal is synced to the disk (`fdatasync`), and so what survives what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncPolicy {
    /// Every write is synced before the messages it holds count as stored and before
    /// anything it covers is sent: a stored message survives a crash of the process and a
    /// power cut. Writes that come together share one sync.
    Always,
    /// Written to the operating system before anything it covers is sent, synced at most
    /// this long after: a stored message survives a crash of the process; a power cut may
    /// lose what was stored during the last interval.
    Periodic(Duration),
    /// Written to the operating system before anything it covers is sent, never synced by
    /// the client: a stored message survives a crash of the process, and the operating
    /// system decides what survives a power cut.
    Never,
}

impl Options {
    /// Options for one broker: `mqtt://host[:1883]`, `mqtts://host[:8883]`,
    /// `ws://host[:80][/mqtt]` or `wss://host[:443][/mqtt]`. A `user:password@` in the URL
    /// sets the credentials.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::with_brokers([url])
    }

    /// Options for a cluster: the brokers are tried in turn, in order, until one accepts the
    /// connection (failover). Credentials are taken from the first URL that has some.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a bad URL; [`Error::InvalidOptions`] for an empty list.
    pub fn with_brokers<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Self, Error> {
        let mut options = Self {
            brokers: Vec::new(),
            protocol: ProtocolOptions::default(),
            transport: TransportOptions::default(),
            policy: Policy::default(),
            persistence: None,
        };
        for url in urls {
            options.add_broker(url)?;
        }
        if options.brokers.is_empty() {
            return Err(Error::InvalidOptions("no broker URL".into()));
        }
        Ok(options)
    }

    /// Appends a broker to try after the others.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn add_broker(&mut self, url: &str) -> Result<&mut Self, Error> {
        let (broker, credentials) = BrokerUrl::parse(url)?;
        if let (Some((user, password)), None) = (credentials, &self.protocol.username) {
            self.protocol.username = Some(user);
            self.protocol.password = password.map(Bytes::from);
        }
        self.brokers.push(broker);
        Ok(self)
    }

    /// The brokers, in the order they are tried, without credentials.
    pub fn brokers(&self) -> Vec<String> {
        self.brokers.iter().map(ToString::to_string).collect()
    }
}

/// MQTT protocol options: what goes into CONNECT and the session's limits.
#[derive(Clone)]
pub struct ProtocolOptions {
    /// Protocol version. Default: 5.0.
    pub version: ProtocolVersion,
    /// Client identifier. When empty, a 5.0 client asks the broker to assign one and keeps
    /// it for its reconnects ([`ConnAckInfo::assigned_client_identifier`](crate::ConnAckInfo));
    /// a 3.1.1 client generates a random `mqttrs-…` identifier of 23 characters, kept for
    /// every reconnect.
    pub client_id: String,
    /// User name.
    pub username: Option<String>,
    /// Password. Never logged.
    pub password: Option<Bytes>,
    /// Keep alive, in whole seconds (at most 65,535; zero turns it off). Default: 30 s.
    pub keep_alive: Duration,
    /// Start with a new session on the first connection (later reconnects of a 5.0 client
    /// resume the session they created). Default: true.
    pub clean_start: bool,
    /// 5.0: how long the broker keeps the session after the connection ends, in seconds. Set
    /// it (with `clean_start: false` to resume one from an earlier process) for messages to
    /// survive reconnects. Default: none (0).
    pub session_expiry_interval: Option<u32>,
    /// Message the broker publishes when the connection ends without DISCONNECT.
    pub will: Option<Will>,
    /// How many QoS 1 and 2 messages the broker may send before we acknowledge them (5.0;
    /// announced in CONNECT). Brokers that send more (mosquitto resuming a session, any 3.1.1
    /// broker, which cannot be told) are served up to 1,024 QoS 2 messages in flight and
    /// reported ([`Event::Notice`](crate::Event::Notice)). Default: 64.
    pub receive_maximum: u16,
    /// Largest packet accepted from the broker (announced on 5.0). Default: 1 MiB.
    pub maximum_packet_size: u32,
    /// QoS 1 and 2 messages in flight to the broker at most. A 5.0 broker announces its own
    /// limit, which always applies; a 3.1.1 broker cannot, yet many enforce one (mosquitto's
    /// `max_inflight_messages`, 20 by default) by dropping what exceeds it. Default: none on
    /// 5.0, 20 on 3.1.1.
    pub max_inflight: Option<u16>,
    /// 5.0: highest topic alias the broker may use towards us (0 disables). Each alias
    /// reserves room for a 256-byte topic. Default: 0.
    pub topic_alias_maximum: u16,
    /// 5.0: let the session replace repeated topics with topic aliases when the broker
    /// allows them. Default: false.
    pub outgoing_topic_aliases: bool,
    /// 5.0: user properties of CONNECT.
    pub user_properties: Vec<(String, String)>,
    /// Leave acknowledging received QoS 1 and 2 messages to
    /// [`Client::ack`](crate::Client::ack). Default: false (acknowledged on receipt).
    pub manual_acks: bool,
    /// 5.0 enhanced authentication: the method named in CONNECT (e.g. `SCRAM-SHA-256`). The
    /// broker's challenges arrive as [`Event::Auth`](crate::Event::Auth); answer each with
    /// [`Client::auth`](crate::Client::auth). Default: none.
    pub authentication_method: Option<String>,
    /// Initial authentication data sent with the method in CONNECT. Default: none.
    pub authentication_data: Option<Bytes>,
    /// A mechanism that runs 5.0 enhanced authentication by itself (e.g.
    /// [`ScramSha256`](crate::ScramSha256), feature `scram`): its method and first data go
    /// into every CONNECT, the broker's challenges are answered, and the broker's final proof
    /// is checked; a broker that fails it ends the client with
    /// [`Error::Authentication`](crate::Error::Authentication). It replaces
    /// `authentication_method` and `authentication_data`. Set it with
    /// [`ProtocolOptions::authenticator`]. Default: none.
    pub authenticator: Option<SharedAuthenticator>,
    /// When a 5.0 CONNECT is refused because the broker speaks only 3.1.1, speak 3.1.1 from
    /// then on (at once, not after a backoff step; [`Notice::FellBackToV311`] reports it)
    /// instead of stopping with [`Error::ConnectionRefused`]. 5.0-only features (properties,
    /// subscription identifiers) are then left out. Default: false.
    ///
    /// [`Notice::FellBackToV311`]: crate::Notice::FellBackToV311
    pub fallback_to_v311: bool,
}

/// An authenticator the client and its clones share.
pub type SharedAuthenticator =
    std::sync::Arc<std::sync::Mutex<dyn mqtt_sansio::auth::Authenticator + Send>>;

impl ProtocolOptions {
    /// Runs enhanced authentication with `mechanism` (see
    /// [`ProtocolOptions::authenticator`](ProtocolOptions#structfield.authenticator)).
    pub fn authenticator(
        &mut self,
        mechanism: impl mqtt_sansio::auth::Authenticator + Send + 'static,
    ) -> &mut Self {
        self.authenticator = Some(std::sync::Arc::new(std::sync::Mutex::new(mechanism)));
        self
    }
}

impl Default for ProtocolOptions {
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V5,
            client_id: String::new(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(30),
            clean_start: true,
            session_expiry_interval: None,
            will: None,
            receive_maximum: 64,
            maximum_packet_size: 1024 * 1024,
            max_inflight: None,
            topic_alias_maximum: 0,
            outgoing_topic_aliases: false,
            user_properties: Vec::new(),
            manual_acks: false,
            authentication_method: None,
            authentication_data: None,
            authenticator: None,
            fallback_to_v311: false,
        }
    }
}

impl fmt::Debug for ProtocolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolOptions")
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .field("clean_start", &self.clean_start)
            .field("session_expiry_interval", &self.session_expiry_interval)
            .field("will", &self.will)
            .field("receive_maximum", &self.receive_maximum)
            .field("maximum_packet_size", &self.maximum_packet_size)
            .field("max_inflight", &self.max_inflight)
            .field("topic_alias_maximum", &self.topic_alias_maximum)
            .field("outgoing_topic_aliases", &self.outgoing_topic_aliases)
            .field("user_properties", &self.user_properties)
            .field("manual_acks", &self.manual_acks)
            .field("authentication_method", &self.authentication_method)
            .field(
                "authenticator",
                &self.authenticator.as_ref().map(|a| match a.lock() {
                    Ok(a) => a.method().to_string(),
                    Err(_) => "<poisoned>".to_string(),
                }),
            )
            .finish()
    }
}

/// The will: published by the broker when the connection ends without DISCONNECT (or, on
/// 5.0, with reason Disconnect with Will Message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// 5.0: seconds the broker waits before publishing it.
    pub delay_interval: Option<u32>,
    /// 5.0 properties (subscription identifiers are ignored).
    pub properties: Properties,
}

impl Will {
    /// A will without properties.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain,
            delay_interval: None,
            properties: Properties::default(),
        }
    }
}

/// Transport options: TLS for `mqtts://` and `wss://`, socket settings.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// TLS settings.
    pub tls: TlsOptions,
    /// Disable Nagle's algorithm. Default: true.
    pub tcp_nodelay: bool,
    /// Local address to bind the outgoing TCP socket to (choosing the interface); only broker
    /// addresses of the same family are tried. Default: none (the system chooses).
    pub bind_address: Option<std::net::IpAddr>,
    /// Reach the broker through this SOCKS5 proxy (TCP only; the proxy resolves the broker's
    /// name). Default: none.
    pub proxy: Option<Socks5Proxy>,
    /// Connect to this Unix domain socket instead of the URL's host and port (TLS and
    /// WebSocket still apply as the URL's scheme says). Default: none.
    #[cfg(unix)]
    pub unix_socket: Option<std::path::PathBuf>,
    /// Called with every chunk of bytes read from or written to the broker, after TLS and
    /// WebSocket framing are removed (the MQTT byte stream), e.g. to print a packet trace.
    /// Called on the driver task: keep it short. Default: none.
    pub tap: Option<Tap>,
}

impl TransportOptions {
    /// Whether dialling with these options is dialling with the defaults, TLS's connector (made
    /// once from `tls`) aside: a client then keeps no copy of them.
    pub(crate) fn dials_as_default(&self) -> bool {
        // Every field named: one added later must be looked at here.
        let Self {
            tls,
            tcp_nodelay,
            bind_address,
            proxy,
            #[cfg(unix)]
            unix_socket,
            tap,
        } = self;
        #[cfg(unix)]
        let unix_socket = unix_socket.is_none();
        #[cfg(not(unix))]
        let unix_socket = true;
        tls.server_name.is_none()
            && *tcp_nodelay
            && bind_address.is_none()
            && proxy.is_none()
            && unix_socket
            && tap.is_none()
    }
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            tcp_nodelay: true,
            bind_address: None,
            proxy: None,
            #[cfg(unix)]
            unix_socket: None,
            tap: None,
        }
    }
}

/// Which way bytes passed a [`Tap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written to the broker.
    Sent,
    /// Read from the broker.
    Received,
}

/// A callback that sees the raw MQTT bytes of every connection
/// ([`TransportOptions::tap`]). Chunks follow no packet boundaries: a chunk may hold part of a
/// packet or several packets.
#[derive(Clone)]
pub struct Tap(Arc<TapFn>);

/// The callback of a [`Tap`].
type TapFn = dyn Fn(Direction, &[u8]) + Send + Sync;

impl Tap {
    /// A tap calling `f`.
    pub fn new(f: impl Fn(Direction, &[u8]) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Shows `bytes` to the callback.
    pub(crate) fn call(&self, direction: Direction, bytes: &[u8]) {
        (self.0)(direction, bytes);
    }
}

impl fmt::Debug for Tap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tap(..)")
    }
}

/// A SOCKS5 proxy (RFC 1928), with optional user name and password authentication
/// (RFC 1929).
#[derive(Clone, PartialEq, Eq)]
pub struct Socks5Proxy {
    /// Proxy host name or IP address.
    pub host: String,
    /// Proxy port. Default in URLs: 1080.
    pub port: u16,
    /// User name and password, when the proxy asks for them.
    pub credentials: Option<(String, String)>,
}

impl Socks5Proxy {
    /// Parses `socks5h://[user[:password]@]host[:port]` (mosquitto's `--proxy` form; `socks5://`
    /// is accepted too, and the broker's name is always resolved by the proxy).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`].
    pub fn parse(url: &str) -> Result<Self, Error> {
        crate::url::parse_socks5(url)
    }
}

impl fmt::Debug for Socks5Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socks5Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

/// A TLS protocol version to insist on ([`TlsOptions::version`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// TLS settings (rustls, ring provider).
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// PEM certificates to trust instead of the operating system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain for mutual TLS (with `client_key_pem`).
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key for mutual TLS. Never logged.
    pub client_key_pem: Option<Vec<u8>>,
    /// ALPN protocols to offer, e.g. `b"mqtt".to_vec()`.
    pub alpn: Vec<Vec<u8>>,
    /// Name to send in SNI and verify the certificate against, when it differs from the
    /// URL's host.
    pub server_name: Option<String>,
    /// A complete rustls configuration; when set, the fields above except `server_name` are
    /// ignored.
    pub config: Option<Arc<rustls::ClientConfig>>,
    /// Accept a broker certificate issued for another name (the chain must still lead to a
    /// trusted root). Anyone holding any certificate from those roots can then impersonate
    /// the broker: for tests only. Default: false.
    pub insecure_skip_hostname: bool,
    /// Only this TLS version. Default: none (1.2 or 1.3, whichever both sides prefer).
    pub version: Option<TlsVersion>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(Vec::len),
            )
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("alpn", &self.alpn)
            .field("server_name", &self.server_name)
            .field("config", &self.config.is_some())
            .field("insecure_skip_hostname", &self.insecure_skip_hostname)
            .field("version", &self.version)
            .finish()
    }
}

/// What to do with a publish when the offline queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueFull {
    /// Fail it with [`Error::QueueFull`].
    #[default]
    Error,
    /// Wait until acknowledgements make room (publishes keep their order).
    Wait,
}

/// The client's policy: reconnecting, timeouts and queueing.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Reconnect after a lost connection. Default: true. When and whether is the session's
    /// decision: it stops for good after refusals retrying cannot fix (bad credentials, not
    /// authorized, banned, unsupported protocol version, invalid client identifier, session
    /// taken over unless [`Policy::reconnect_after_takeover`]), and otherwise waits an
    /// exponential backoff with jitter.
    pub reconnect: bool,
    /// First reconnect delay. Default: 250 ms.
    pub backoff_min: Duration,
    /// Longest reconnect delay. Default: 30 s.
    pub backoff_max: Duration,
    /// A connection that stayed up this long resets the backoff; one lost sooner counts as a
    /// failed attempt, so a broker that accepts and then drops the client sees the attempts
    /// slow down. Default: 10 s.
    pub stable_after: Duration,
    /// Reconnect after the broker said another client took over our client identifier (5.0
    /// Session Taken Over). Default: false, since two clients sharing an identifier would
    /// take the session from each other forever.
    pub reconnect_after_takeover: bool,
    /// How long [`Client::disconnect`](crate::Client::disconnect) waits for open handshakes
    /// (acknowledgements of what was sent, PUBREL for received QoS 2 messages) before the
    /// DISCONNECT goes out anyway. Default: 5 s.
    pub drain_timeout: Duration,
    /// Time allowed to open the transport (TCP, TLS, WebSocket), and then again for CONNACK.
    /// Default: 10 s.
    pub connect_timeout: Duration,
    /// Bytes of encoded packets held while disconnected or waiting for acknowledgement, at
    /// most (the session store's queue). It starts at 4 KiB, grows as messages wait, and is
    /// given back once they are acknowledged. Default: 1 MiB.
    pub offline_queue_bytes: usize,
    /// Bytes for the subscriptions the session renews by itself when a broker has lost the
    /// session: each granted filter takes 8 bytes plus its length, with its options and
    /// subscription identifier (user properties are not sent again). A subscription that
    /// finds no room still works, but is not renewed, and
    /// [`Notice::SubscriptionNotRenewable`](crate::Notice::SubscriptionNotRenewable) says so.
    /// Default: 4 KiB (about 150 filters of 20 characters).
    pub subscription_bytes: usize,
    /// What a publish does when the queue is full. Default: [`QueueFull::Error`].
    pub queue_full: QueueFull,
    /// When the broker lost the session, publish unacknowledged QoS 1 messages again
    /// (duplicates are allowed at QoS 1). When false they fail with [`Error::Abandoned`].
    /// QoS 2 messages always fail, to rule out duplicates. Default: true.
    pub republish_abandoned_qos1: bool,
    /// Messages buffered per subscription stream. Beyond it the client holds QoS 1 and 2
    /// messages unacknowledged (the broker's window then throttles it) and drops QoS 0
    /// messages past 4,096 held ([`Event::SlowConsumer`](crate::Event::SlowConsumer)).
    /// Default: 256.
    pub subscription_buffer: usize,
    /// Events buffered before further events are counted as missed
    /// ([`Event::Lagged`](crate::Event::Lagged)). Default: 256.
    pub event_buffer: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            reconnect: true,
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(10),
            reconnect_after_takeover: false,
            drain_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            offline_queue_bytes: 1024 * 1024,
            subscription_bytes: 4 * 1024,
            queue_full: QueueFull::Error,
            republish_abandoned_qos1: true,
            subscription_buffer: 256,
            event_buffer: 256,
        }
    }
}

/// How [`Client::disconnect_with`](crate::Client::disconnect_with) ends the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisconnectOptions {
    /// Publish the will anyway (5.0: reason Disconnect with Will Message; 3.1.1: the
    /// connection is closed without DISCONNECT, which makes the broker publish it).
    pub publish_will: bool,
    /// 5.0: the reason code to send instead of Normal disconnection (or Disconnect with Will
    /// Message when `publish_will` is set), e.g. [`ReasonCode::ImplementationSpecificError`]
    /// (which also makes the broker publish the will).
    pub reason_code: Option<ReasonCode>,
    /// 5.0: a new session expiry interval.
    pub session_expiry_interval: Option<u32>,
    /// 5.0: a reason string for the broker's logs.
    pub reason_string: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_url_are_not_in_debug_output() {
        let o = Options::new("mqtt://alice:s3cret@localhost:1884").unwrap();
        assert_eq!(o.protocol.username.as_deref(), Some("alice"));
        assert_eq!(o.protocol.password.as_deref(), Some(&b"s3cret"[..]));
        let dbg = format!("{o:?}");
        assert!(!dbg.contains("s3cret"), "{dbg}");
        assert_eq!(o.brokers(), vec!["mqtt://localhost:1884".to_string()]);
    }
}
