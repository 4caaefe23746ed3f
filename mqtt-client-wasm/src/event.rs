//! What the client reports, with the names `mqtt-client-tokio` and `mqtt-client-nb` use.

use std::fmt;
use std::time::Duration;

use mqtt_sansio::session::{CommandError, EndCause, Notice, ProtocolError};
use mqtt_sansio::{PacketId, QoS, ReasonCode, TopicError};

/// An event of the connection, owned (it outlives the packet it came from).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The broker accepted the connection.
    Connected {
        /// Whether the broker resumed the session.
        session_present: bool,
    },
    /// An established connection ended.
    Disconnected {
        /// Why ([`Error::Closed`] after [`Client::disconnect`](crate::Pump::disconnect)).
        error: Error,
    },
    /// The client waits `delay` before connection attempt `attempt` (1-based, counted since
    /// the last connection that stayed up), as the session's reconnect policy says.
    Reconnecting {
        /// Attempt number.
        attempt: u32,
        /// Delay before it.
        delay: Duration,
    },
    /// A SUBSCRIBE was answered.
    Subscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// Granted QoS or failure, one per filter.
        reason_codes: Vec<ReasonCode>,
    },
    /// The session renewed, by itself, subscriptions a broker had lost with the session
    /// ([`Options::subscription_bytes`](crate::Options::subscription_bytes)); a refused
    /// filter is no longer renewed.
    Resubscribed {
        /// The renewal's packet identifier (never one `subscribe` returned).
        packet_id: PacketId,
        /// Granted QoS or failure, one per renewed filter.
        reason_codes: Vec<ReasonCode>,
    },
    /// An UNSUBSCRIBE was answered.
    Unsubscribed {
        /// Its packet identifier.
        packet_id: PacketId,
        /// One per filter (empty on 3.1.1).
        reason_codes: Vec<ReasonCode>,
    },
    /// A QoS 1 or 2 message was acknowledged (PUBACK, PUBCOMP, or a failure PUBREC).
    Published {
        /// Its packet identifier.
        packet_id: PacketId,
        /// The broker's reason code.
        reason_code: ReasonCode,
    },
    /// Something the session coped with on its own, worth a log line.
    Notice(Notice),
    /// A message arrived.
    Message(Message),
    /// Something failed: a connection attempt, a message that could not be delivered, or
    /// the client stopped reconnecting ([`Error::Stopped`]).
    Error(Error),
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Whether it is a retained message sent on subscribing.
    pub retain: bool,
}

/// What went wrong. Cloneable, so that one failure can complete many commands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The session refused a command (store full, broker limits, wrong state); nothing was
    /// queued. The connection goes on.
    Command(CommandError),
    /// An invalid topic name or filter; nothing was queued.
    Topic(TopicError),
    /// The broker broke the protocol; the connection ends.
    Protocol(ProtocolError),
    /// The broker refused the connection (CONNACK) with this reason code.
    Refused(ReasonCode),
    /// The broker ended the connection with DISCONNECT and this reason code (5.0).
    ServerDisconnect(ReasonCode),
    /// No CONNACK in time.
    ConnAckTimeout,
    /// The broker stopped answering PINGREQ.
    KeepAliveTimeout,
    /// The WebSocket closed or failed; the text says what the browser reported.
    Transport(String),
    /// The broker refused a message (5.0 reason code), or the connection could not carry it.
    NotDelivered(ReasonCode),
    /// The broker did not resume the session, so it may or may not have the message.
    SessionLost,
    /// The client is not reconnecting: retrying cannot help (bad credentials, not
    /// authorized, ...), or reconnecting is off.
    Stopped(EndCause),
    /// The client was closed by the application.
    Closed,
    /// The options cannot work (e.g. a CONNECT that cannot be encoded).
    InvalidOptions(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Command(e) => write!(f, "command refused: {e}"),
            Self::Topic(e) => write!(f, "invalid topic: {e}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Refused(rc) => write!(f, "connection refused: {rc:?}"),
            Self::ServerDisconnect(rc) => write!(f, "the broker disconnected: {rc:?}"),
            Self::ConnAckTimeout => f.write_str("no CONNACK in time"),
            Self::KeepAliveTimeout => f.write_str("the broker stopped answering (keep alive)"),
            Self::Transport(why) => write!(f, "WebSocket: {why}"),
            Self::NotDelivered(rc) => write!(f, "message not delivered: {rc:?}"),
            Self::SessionLost => f.write_str("the broker lost the session"),
            Self::Stopped(cause) => write!(f, "not reconnecting after {cause:?}"),
            Self::Closed => f.write_str("closed"),
            Self::InvalidOptions(why) => write!(f, "invalid options: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Self::Command(e)
    }
}

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Self {
        Self::Topic(e)
    }
}
