//! An async MQTT 3.1.1 and 5.0 client for tokio.
//!
//! The protocol lives in [`mqtt_sansio::session`], a sans-IO session; this crate drives it:
//! one task owns the connection (TCP, TLS with rustls, or WebSocket), and a cheap, cloneable
//! [`Client`] handle shares the session with it: a command reaches the session at once.
//!
//! ```no_run
//! use mqtt_client_tokio::{Client, Options, QoS};
//!
//! # async fn demo() -> Result<(), mqtt_client_tokio::Error> {
//! let mut options = Options::new("mqtt://localhost:1883")?;
//! options.protocol.client_id = "sensor-7".into();
//! let (client, _events) = Client::connect(options).await?;
//!
//! let mut temperatures = client.subscribe("sensors/+/temp", QoS::AtLeastOnce).await?;
//! // Resolves once the broker acknowledged it (PUBACK).
//! client.publish("sensors/7/temp", QoS::AtLeastOnce, false, "21.5").await?;
//! if let Some(message) = temperatures.recv().await {
//!     println!("{}: {:?}", message.topic, message.payload);
//! }
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # What the client guarantees
//!
//! - `publish(...).await` resolves when the broker acknowledged the message at its QoS
//!   (PUBACK, PUBCOMP; QoS 0 once written) and carries the 5.0 reason code.
//!   [`Client::publish_queued`] returns as soon as the message is queued.
//! - While disconnected, messages wait in a bounded queue ([`Policy::offline_queue_bytes`]);
//!   when it is full, publishing fails with [`Error::QueueFull`] or waits
//!   ([`Policy::queue_full`]). After a reconnect the session resends unacknowledged messages;
//!   if the broker lost the session, QoS 1 messages are published again and QoS 2 messages
//!   fail with [`Error::Abandoned`] (they may have been delivered). Nothing is dropped
//!   without an error or an event.
//! - Reconnecting uses exponential backoff with jitter, fails over between the brokers of
//!   [`Options::with_brokers`], follows 5.0 server redirection, renews subscriptions the broker
//!   lost, and stops for good on refusals retrying cannot fix (bad credentials, not
//!   authorized, banned, unsupported protocol version, client identifier not valid).
//! - Dropping the last [`Client`] disconnects gracefully and stops the driver task.
//!
//! Connection lifecycle events are logged with [`tracing`]; credentials never are.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tls` | on | `mqtts://` (and `wss://`): rustls, the system's roots or your own CA ([`TlsOptions::ca_pem`]), mutual TLS |
//! | `ring` | on | rustls's *ring* crypto provider (implies `tls`) |
//! | `aws-lc-rs` | off | rustls's aws-lc-rs provider (implies `tls`; wins over `ring` when both are on) |
//! | `websocket` | on | `ws://` and `wss://` (tungstenite) |
//!
//! With `default-features = false`, plain `mqtt://` works; a URL that needs a feature left out
//! is refused with [`Error::InvalidUrl`] when the options are built. A process-default rustls
//! `CryptoProvider` that the application installed is used before either provider feature.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod driver;
mod error;
mod event;
mod message;
mod options;
mod persist;
mod state;
mod subscription;
mod transport;
mod url;

pub use client::{Client, Delivery};
pub use error::Error;
pub use event::{ConnAckInfo, Event, Events};
pub use message::{Message, Properties};
#[cfg(feature = "scram")]
pub use mqtt_sansio::auth::ScramSha256;
pub use mqtt_sansio::auth::{AuthError, Authenticator};
pub use mqtt_sansio::session::Notice;
pub use options::{
    Direction, DisconnectOptions, Options, Persistence, Policy, ProtocolOptions, QueueFull,
    SharedAuthenticator, Socks5Proxy, SyncPolicy, Tap, TlsOptions, TlsVersion, TransportOptions,
    Will,
};
pub use subscription::{RequestProperties, Subscription};

pub use bytes::Bytes;
pub use mqtt_sansio::session::CommandError;
pub use mqtt_sansio::{
    PacketId, ProtocolVersion, QoS, ReasonCode, RetainHandling, SubscriptionOptions, TopicError,
};
/// The rustls version used for TLS, for [`TlsOptions::config`].
pub use tokio_rustls::rustls;
