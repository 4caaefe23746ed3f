//! One error type for every operation of the client, split by what went wrong.

use std::io;
use std::sync::Arc;

use mqtt_sansio::session::CommandError;
use mqtt_sansio::{ReasonCode, TopicError};

/// What went wrong. Cheap to clone (I/O errors are shared), so the same error can complete
/// several waiting operations and appear in [`Event::Disconnected`](crate::Event).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A broker URL could not be parsed. Nothing was started.
    #[error("invalid broker URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, credentials removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The options are inconsistent or a certificate or key cannot be read. Nothing was
    /// started.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// Enhanced authentication failed on our side: the broker's challenge was malformed or
    /// its final proof wrong (it does not hold the credentials). The client stops.
    #[error("authentication failed: {0}")]
    Authentication(mqtt_sansio::auth::AuthError),
    /// A topic name or filter is not valid. Nothing was queued.
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
    /// Connecting or the connection failed: TCP, TLS (including an untrusted or mismatched
    /// certificate) or the WebSocket handshake. The client reconnects if its policy says so.
    #[error("I/O error: {0}")]
    Io(Arc<io::Error>),
    /// Neither the transport nor CONNACK arrived within the connect timeout.
    #[error("timed out connecting")]
    ConnectTimeout,
    /// The broker refused the connection in CONNACK.
    #[error("connection refused by the broker: {0:?}")]
    ConnectionRefused(ReasonCode),
    /// The broker ended the connection with DISCONNECT (5.0).
    #[error("disconnected by the broker: {reason_code:?}{}", reason_string.as_deref().map(|s| format!(" ({s})")).unwrap_or_default())]
    ServerDisconnected {
        /// Why.
        reason_code: ReasonCode,
        /// The broker's explanation, if it sent one.
        reason_string: Option<String>,
    },
    /// The broker closed the connection without DISCONNECT.
    #[error("connection closed by the broker")]
    ConnectionClosed,
    /// No PINGRESP arrived within the ping timeout: the connection was considered dead.
    #[error("keep alive timeout: no PINGRESP")]
    KeepAliveTimeout,
    /// The broker broke the protocol; the client sent DISCONNECT with this reason (5.0) and
    /// closed the connection.
    #[error("protocol error by the broker: {0:?}")]
    Protocol(ReasonCode),
    /// The broker refused the message or subscription with this reason code (PUBACK, PUBREC or
    /// SUBACK with a failure code).
    #[error("rejected by the broker: {0:?}")]
    Rejected(ReasonCode),
    /// The message cannot be sent to this broker at all (larger than its Maximum Packet Size,
    /// or above its Maximum QoS) and was dropped.
    #[error("message dropped: {0:?}")]
    Dropped(ReasonCode),
    /// The broker lost the session before the QoS 2 message was acknowledged, so it may or
    /// may not have been delivered; it was not sent again to rule out a duplicate.
    #[error("the broker lost the session; the message may or may not have been delivered")]
    Abandoned,
    /// The QoS 0 message was queued, but the connection ended before it was written.
    #[error("the connection ended before the message was written")]
    NotSent,
    /// The offline queue (the session store) has no room for the message now.
    #[error("offline queue full")]
    QueueFull,
    /// The message (encoded, with 8 bytes of bookkeeping) is larger than the whole offline
    /// queue, so it can never be queued; raise
    /// [`Policy::offline_queue_bytes`](crate::Policy::offline_queue_bytes).
    #[error("message of {size} bytes does not fit the {capacity}-byte offline queue")]
    TooLarge {
        /// Bytes the message needs.
        size: usize,
        /// Bytes of the whole queue.
        capacity: usize,
    },
    /// The session refused the command (e.g. QoS above the broker's maximum, packet larger
    /// than the broker's maximum, unknown packet identifier for an acknowledgement).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The client was shut down: [`Client::disconnect`](crate::Client::disconnect) was called
    /// or every handle was dropped.
    #[error("client closed")]
    Closed,
    /// The session's directory ([`Options::persistence`](crate::Options::persistence))
    /// cannot be used: another client holds it, its journal cannot be read or restored, or a
    /// write failed (a full disk). Creating the client fails with it, or the client stops
    /// with it: what was stored before stays in the directory for the next client.
    #[error("persistence: {0}")]
    Persistence(Arc<io::Error>),
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

impl Error {
    /// Whether reconnecting cannot help: the broker refused these credentials, this client
    /// or this protocol version.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::ConnectionRefused(code) if is_fatal_refusal(*code))
    }
}

/// CONNACK codes after which retrying the same CONNECT is pointless: the session's rule.
pub(crate) fn is_fatal_refusal(code: ReasonCode) -> bool {
    use mqtt_sansio::session::{EndCause, Reaction};
    EndCause::Refused(code).reaction(false) == Reaction::Stop
}
