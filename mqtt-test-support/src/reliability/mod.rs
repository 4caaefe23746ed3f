//! Reliability scenarios for any MQTT client: numbered messages through a [`FaultProxy`] that
//! cuts and stalls connections, a broker that is stopped or killed and restarted, and a
//! reference client connected directly to the broker that counts what arrives.
//!
//! The pieces:
//! - [`ClientUnderTest`]: the one trait a client implements to be tested (a page of glue): start
//!   a client from a [`ClientConfig`] that takes [`Command`]s and sends back [`Report`]s.
//! - [`RefClient`]: a reference client over `mqtt-sansio`'s sans-IO session, on a direct
//!   connection without faults, that reconnects by itself with a persistent session.
//! - [`Tally`]: counts numbered payloads ([`payload`]) and tells what was lost or duplicated
//!   per QoS ([`Verdict`]).
//! - The scenarios ([`publish_through_cuts`], [`subscribe_through_cuts`],
//!   [`broker_restart`], [`stalled_connection`]), each returning a [`Summary`].
//!
//! Message counts scale with the environment variable `MQTT_RELIABILITY_SCALE` (a factor,
//! default 1; see [`scale`]). Scale 1 is the full size: 2,000 QoS 1 + 2,000 QoS 2 messages in
//! each cut scenario, 1,000 + 1,000 across the restarts, 500 + 500 through the stall, about
//! 25 s for all scenarios of one client on 2 cores; `0.25` is a quick run, `5` a long one.
//! `MQTT_RELIABILITY_SEED` (added to each scenario's seed) and `MQTT_RELIABILITY_CUTS_MS`
//! (cut lifetimes, e.g. `20-100`) explore other fault schedules.
//!
//! A client's test file is then one line per scenario:
//!
//! ```no_run
//! # use mqtt_test_support::reliability::{self, ClientUnderTest};
//! # async fn demo(client: &dyn ClientUnderTest) {
//! let summary = reliability::publish_through_cuts(client, mqtt_sansio::ProtocolVersion::V5, 1).await;
//! println!("{summary}");
//! summary.assert_ok();
//! # }
//! ```
//!
//! [`FaultProxy`]: crate::FaultProxy

mod cut;
#[cfg(feature = "client-nb-features")]
pub mod nb;
mod reference;
mod scenarios;
mod tally;
#[cfg(feature = "client-tokio")]
pub mod tokio_client;

pub use cut::{Cut, CutLog};
pub use reference::{RefClient, RefConfig, RefStats};
pub use scenarios::{
    broker_restart, publish_through_cuts, stalled_connection, subscribe_through_cuts, Restart,
    Summary, CUTS_ENV, SEED_ENV,
};
pub use tally::{parse_payload, payload, Tally, Verdict};

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use mqtt_sansio::{ProtocolVersion, QoS};
use tokio::sync::mpsc;

/// Environment variable scaling the message counts (a positive factor, default 1).
pub const SCALE_ENV: &str = "MQTT_RELIABILITY_SCALE";

/// The factor from [`SCALE_ENV`]; 1 when unset or not a positive number.
pub fn scale() -> f64 {
    std::env::var(SCALE_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f > 0.0)
        .unwrap_or(1.0)
}

/// `base` times [`scale`], at least 1.
pub fn scaled(base: u32) -> u32 {
    ((f64::from(base) * scale()).round() as u32).max(1)
}

/// How the client under test is to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Where to connect (usually a proxy's address).
    pub addr: SocketAddr,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Client identifier.
    pub client_id: String,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Persistent session: clean session 0 (3.1.1) / clean start 0 and a session expiry of an
    /// hour (5.0).
    pub persistent: bool,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
}

impl ClientConfig {
    /// Persistent session, keep alive 10 s, backoff 10 ms to 200 ms.
    pub fn new(addr: SocketAddr, version: ProtocolVersion, client_id: impl Into<String>) -> Self {
        Self {
            addr,
            version,
            client_id: client_id.into(),
            keep_alive: 10,
            persistent: true,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
        }
    }
}

/// What the scenario asks the client under test to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Subscribe to `filter` at `qos`; answer with [`Report::Subscribed`].
    Subscribe {
        /// Topic filter.
        filter: String,
        /// Maximum QoS.
        qos: QoS,
    },
    /// Publish; answer with [`Report::Published`] once acknowledged (QoS 1/2). Queue it if the
    /// client cannot take it now (store full, disconnected): never drop it.
    Publish {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// QoS.
        qos: QoS,
    },
    /// Disconnect gracefully (bounded), report [`Report::Stopped`] and end.
    Stop,
}

/// Classes of connection errors a client reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No PINGRESP in time.
    KeepAliveTimeout,
    /// The peer closed the connection, or it failed (reset, broken pipe).
    Transport,
    /// Opening a connection failed.
    Open,
    /// The broker broke the protocol.
    Protocol,
    /// The broker sent DISCONNECT (5.0) or refused the connection.
    Broker,
    /// Anything else.
    Other,
}

/// What the client under test tells the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The broker accepted a connection.
    Connected {
        /// Whether it resumed the session.
        session_present: bool,
    },
    /// A connection ended (or an attempt failed) because of this.
    Error {
        /// Class.
        kind: ErrorKind,
        /// The client's own description.
        detail: String,
    },
    /// A connection ended.
    Disconnected,
    /// A SUBSCRIBE was answered.
    Subscribed {
        /// Whether every filter was granted.
        ok: bool,
    },
    /// A QoS 1/2 publish was acknowledged.
    Published {
        /// Its payload.
        payload: Vec<u8>,
        /// Whether the broker accepted it (no error reason code).
        ok: bool,
    },
    /// A message arrived.
    Message {
        /// Topic.
        topic: String,
        /// Payload.
        payload: Vec<u8>,
        /// QoS it arrived with.
        qos: QoS,
        /// DUP flag.
        dup: bool,
    },
    /// The client gave up on a message (it will never be acknowledged).
    Abandoned {
        /// Its payload, if known.
        payload: Option<Vec<u8>>,
    },
    /// A command failed without queueing anything (other than a full store, which is
    /// retried).
    CommandFailed {
        /// Why.
        detail: String,
    },
    /// The client has stopped after [`Command::Stop`].
    Stopped,
}

/// The channels between a scenario and a client under test.
#[derive(Debug)]
pub struct Io {
    /// Commands, in order. `None` from `recv` means stop.
    pub commands: mpsc::UnboundedReceiver<Command>,
    /// Reports.
    pub reports: Reporter,
}

/// Sends reports to the scenario, stamped with the time they were made (so a scenario that
/// is busy elsewhere still measures reconnect and detection times exactly).
#[derive(Debug, Clone)]
pub struct Reporter(pub(crate) mpsc::UnboundedSender<(tokio::time::Instant, Report)>);

impl Reporter {
    /// Sends `report`; `false` when the scenario is gone (stop then).
    pub fn send(&self, report: Report) -> bool {
        self.0.send((tokio::time::Instant::now(), report)).is_ok()
    }
}

/// A client the scenarios can test.
pub trait ClientUnderTest: Send + Sync {
    /// A short name for reports ("nb", "tokio").
    fn name(&self) -> String;

    /// Starts a client (a task or thread on the current tokio runtime) that connects per
    /// `config`, reconnects by itself with its backoff, carries out `io.commands` and reports
    /// on `io.reports` until [`Command::Stop`] or until either channel closes.
    fn start(&self, config: ClientConfig, io: Io);
}

impl<T: ClientUnderTest + ?Sized> ClientUnderTest for &T {
    fn name(&self) -> String {
        (**self).name()
    }

    fn start(&self, config: ClientConfig, io: Io) {
        (**self).start(config, io);
    }
}

/// Formats a duration in milliseconds.
pub(crate) struct Ms(pub Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

#[doc(hidden)]
pub use mqtt_sansio as __mqtt_sansio;

/// Generates the eight standard reliability tests for a client: random cuts while publishing
/// and while subscribing, broker restarts and a stalled connection, each on 3.1.1 and 5.0.
/// `$client` builds the [`ClientUnderTest`]; `$seed` is the base of the cut scenarios' seeds
/// (each adds 1 to 4), so two clients can be given different fault schedules.
///
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! reliability_tests {
    ($client:expr, $seed:expr) => {
        mod standard_reliability_tests {
            use super::*;
            use $crate::reliability::__mqtt_sansio::ProtocolVersion::{V3_1_1 as V4, V5};
            use $crate::reliability::{self, Summary};

            fn check(summary: Summary) {
                println!("{summary}");
                summary.assert_ok();
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn publish_through_random_cuts_v3_1_1() {
                check(reliability::publish_through_cuts(&$client, V4, $seed + 1).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn publish_through_random_cuts_v5() {
                check(reliability::publish_through_cuts(&$client, V5, $seed + 2).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscribe_through_random_cuts_v3_1_1() {
                check(reliability::subscribe_through_cuts(&$client, V4, $seed + 3).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn subscribe_through_random_cuts_v5() {
                check(reliability::subscribe_through_cuts(&$client, V5, $seed + 4).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broker_stopped_and_killed_mid_stream_v3_1_1() {
                check(reliability::broker_restart(&$client, V4).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn broker_stopped_and_killed_mid_stream_v5() {
                check(reliability::broker_restart(&$client, V5).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stalled_connection_noticed_by_keep_alive_v3_1_1() {
                check(reliability::stalled_connection(&$client, V4).await);
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn stalled_connection_noticed_by_keep_alive_v5() {
                check(reliability::stalled_connection(&$client, V5).await);
            }
        }
    };
}
