//! What can go wrong, and whether the connection survives it.

use embedded_io_async::ErrorKind;
use mqtt_sansio::auth::AuthError;
use mqtt_sansio::session::{CommandError, EndCause, ProtocolError};
use mqtt_sansio::{ReasonCode, TopicError};

use crate::journal::StorageError;

/// An error of the client.
///
/// Errors returned by commands ([`Client::publish`](crate::Client::publish) and friends) leave
/// the connection as it was. Errors reported by [`Client::poll`](crate::Client::poll) as
/// [`Event::Error`](crate::Event::Error) end the connection, except
/// [`Error::NotConnected`]; an [`Event::Disconnected`](crate::Event::Disconnected) follows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
// Derived from the fields' own `defmt::Format` (mqtt-sansio's `defmt` feature), so that logging
// an error through defmt links none of the `Debug` or `Display` text.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// [`Client::poll`](crate::Client::poll) was called without a transport: hand one in
    /// with [`Client::connect`](crate::Client::connect) (or use
    /// [`Client::poll_reconnecting`](crate::Client::poll_reconnecting)). Also returned by
    /// [`Client::disconnect`](crate::Client::disconnect) without a connection.
    #[error("no transport: call connect")]
    NotConnected,
    /// The transport failed while reading, writing or flushing. The connection is over.
    #[error("transport error: {0:?}")]
    Transport(ErrorKind),
    /// The broker closed the transport without a DISCONNECT (read returned 0 bytes).
    #[error("the broker closed the connection")]
    ConnectionClosed,
    /// The broker refused the connection with this CONNACK return code (3.1.1) or reason code
    /// (5.0), e.g. bad user name or password, or an identifier it rejects.
    #[error("connection refused: {0:?}")]
    Refused(ReasonCode),
    /// The broker ended the connection with a DISCONNECT carrying this reason code (5.0).
    #[error("disconnected by the broker: {0:?}")]
    ServerDisconnect(ReasonCode),
    /// No CONNACK arrived within the configured timeout.
    #[error("no CONNACK in time")]
    ConnAckTimeout,
    /// No PINGRESP arrived in time: the connection is considered dead.
    #[error("no PINGRESP in time")]
    KeepAliveTimeout,
    /// The broker broke the protocol. On 5.0 a DISCONNECT with the matching reason code is
    /// sent before the transport is dropped.
    #[error("protocol violation: {0}")]
    Protocol(ProtocolError),
    /// The session gave up on the connection for a reason this version does not know.
    #[error("connection lost")]
    ConnectionLost,
    /// The session refused a command (store full, all packet ids in use, not possible in
    /// this connection state, refused by the broker's limits, ...). Nothing was queued; the
    /// connection is unaffected.
    #[error("command refused: {0}")]
    Command(CommandError),
    /// The topic name or topic filter is invalid (empty, wildcards in a topic name, ...).
    #[error("invalid topic: {0}")]
    Topic(TopicError),
    /// The packet would not fit the transmit buffer, so it could never be sent. Nothing was
    /// queued. Reported by `poll` (ending the connection) only if a packet somehow exceeds
    /// the buffer after all, e.g. an AUTH larger than the transmit buffer.
    #[error("packet of {needed} bytes does not fit the {capacity} byte transmit buffer")]
    TxBufferTooSmall {
        /// Encoded size of the packet.
        needed: usize,
        /// Size of the transmit buffer.
        capacity: usize,
    },
    /// The receive buffer is full with a packet that is still incomplete. Cannot happen with a
    /// conforming broker: the session refuses packets larger than the receive buffer.
    #[error("receive buffer full")]
    RxBufferFull,
    /// Opening a transport failed ([`Client::poll_reconnecting`](crate::Client::poll_reconnecting)'s
    /// `open` returned an error); the next attempt follows after the backoff delay.
    #[error("could not open a transport")]
    OpenFailed,
    /// Enhanced authentication failed on our side
    /// ([`Client::set_authenticator`](crate::Client::set_authenticator)): the broker's
    /// challenge was malformed or its final proof wrong. The connection ends with DISCONNECT
    /// Not Authorized (5.0) and is not retried.
    #[error("authentication failed: {0}")]
    Authentication(AuthError),
    /// [`Client::poll_reconnecting`](crate::Client::poll_reconnecting) stops reconnecting:
    /// the last connection ended in a way retrying cannot fix (bad credentials, not
    /// authorized, banned, unsupported protocol version, session taken over, our own
    /// DISCONNECT; see [`EndCause::reaction`]). Reported once; connect again with
    /// [`Client::connect`](crate::Client::connect) after fixing the cause.
    #[error("not reconnecting after {0:?}")]
    Stopped(EndCause),
    /// The payload source of a streamed message ([`Client::publish_streamed`](crate::Client::publish_streamed))
    /// gave no bytes (or none is set) while its payload was being sent. The packet was cut
    /// short, so the connection ends; a QoS 1 or 2 message is sent again, whole, on the
    /// next connection, and the source is asked for its bytes from offset 0 again.
    #[error("the payload source of a streamed message gave no bytes")]
    PayloadSource,
    /// The journal backend ([`Client::with_journal`](crate::Client::with_journal)) could not
    /// make the session's state durable, or read it back. Reported by `poll`, the connection
    /// stays, but nothing is transmitted until a later `poll` (or
    /// [`Client::persist`](crate::Client::persist)) succeeds: see [`StorageError`].
    #[error("journal: {0}")]
    Storage(StorageError),
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::TransmitBufferTooSmall { needed, capacity } => {
                Self::TxBufferTooSmall { needed, capacity }
            }
            other => Self::Command(other),
        }
    }
}

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Self {
        Self::Topic(e)
    }
}
