//! Test support for the mqtt workspace (Linux, tests only).
//!
//! - [`Broker`]: starts a private `mosquitto` on free loopback ports with a generated config
//!   (plain TCP, optional TLS / mutual TLS with certificates made at test time, WebSockets,
//!   username/password, persistence, limits), waits until it accepts connections, and kills it
//!   when dropped. It can be killed (`SIGKILL`), stopped (`SIGTERM`) and restarted on the same
//!   ports with the same persistence directory.
//! - [`FaultProxy`]: a tokio TCP proxy that sits between a client and a broker and injects
//!   faults, deterministic from a seed: cut after N bytes, cut at random moments, stall, delay,
//!   split writes into single bytes, coalesce writes, drop the connection during CONNECT/CONNACK.
//! - [`TlsMaterial`]: a throw-away CA with a server and a client certificate, and ready
//!   `rustls` client configurations (ring provider) that trust it.
//!
//! ```no_run
//! use mqtt_test_support::{Broker, Direction, FaultMode, FaultProxy};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = Broker::builder().persistence(true).start()?;
//! let proxy = FaultProxy::start(broker.addr(), FaultMode::new().cut_after(Direction::ToClient, 4)).await?;
//! // Point the client under test at proxy.addr() (or proxy.url()) ...
//! assert!(proxy.stats().accepted <= 1);
//! broker.kill()?;
//! broker.restart()?;
//! println!("{}", broker.log());
//! # Ok(())
//! # }
//! ```
//!
//! Requirements: `mosquitto` (Debian: `apt-get update && apt-get install -y mosquitto
//! mosquitto-clients`). [`Broker::start`] fails with that instruction when it is missing; set
//! `MOSQUITTO_BIN` to use a binary that is not in `PATH`, `/usr/sbin` or `/usr/local/sbin`.

#![warn(missing_docs)]

mod broker;
pub mod hostile;
mod proxy;
pub mod reliability;
mod rng;
pub mod scram;
mod tls;

pub use broker::{Broker, BrokerBuilder, BrokerError};
pub use proxy::{Direction, FaultMode, FaultProxy, ProxyStats};
pub use tls::TlsMaterial;

/// The `rustls` version whose types [`TlsMaterial`] returns (0.23, ring provider).
pub use rustls;

#[cfg(test)]
mod tests {
    /// Tests share these across tasks and threads (e.g. an `Arc<Broker>`).
    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::Broker>();
        check::<crate::FaultProxy>();
        check::<crate::TlsMaterial>();
        check::<crate::BrokerError>();
    }
}
