//! Errors of the session: commands the application got wrong, and brokers that broke the rules.

use crate::{DecodeError, EncodeError, PacketType, ReasonCode};

/// Why a command was refused. The session and the connection are unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CommandError {
    /// The store has no room for the packet; retry after acknowledgements free some (or, for
    /// the CONNECT, DISCONNECT or AUTH of a control region too small, after growing it:
    /// [`Region::Control`](crate::session::Region)). Nothing was queued.
    #[error("store full: {needed} bytes needed, {available} free")]
    StoreFull {
        /// Bytes the packet needs, record header included.
        needed: usize,
        /// Bytes free after compaction.
        available: usize,
    },
    /// Every packet identifier is in use.
    #[error("all 65,535 packet identifiers are in use")]
    PacketIdsExhausted,
    /// The command needs a connection state the session is not in (e.g. connect while
    /// connected, auth before CONNECT).
    #[error("not possible in the current connection state")]
    InvalidState,
    /// The broker's Maximum QoS is below the requested QoS.
    #[error("the broker supports QoS up to {0:?}")]
    QoSNotSupported(crate::QoS),
    /// The broker said in CONNACK that it does not support what the command asks for: shared
    /// subscriptions, wildcard subscriptions or subscription identifiers (the code says which).
    #[error("the broker does not support this: {0:?}")]
    Unsupported(ReasonCode),
    /// The broker does not support retained messages.
    #[error("the broker does not support retained messages")]
    RetainNotSupported,
    /// The packet exceeds the broker's Maximum Packet Size.
    #[error("packet of {size} bytes exceeds the broker's maximum of {max}")]
    PacketTooLarge {
        /// Encoded size.
        size: usize,
        /// The broker's limit.
        max: u32,
    },
    /// The PUBLISH names a topic alias or subscription identifiers itself; the session assigns
    /// aliases, and subscription identifiers only flow from broker to client.
    #[error("topic aliases and subscription identifiers are managed by the session")]
    ManagedProperty,
    /// The packet cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The queue of acknowledgements to transmit is full: drain
    /// [`Session::poll_transmit`](super::Session::poll_transmit), then retry.
    #[error("transmit queue full")]
    WouldBlock,
    /// The packet would not fit the driver's transmit buffer
    /// ([`SessionConfig::transmit_capacity`](super::SessionConfig)), so it could never be sent.
    /// Nothing was queued.
    #[error("packet of {needed} bytes does not fit the {capacity}-byte transmit buffer")]
    TransmitBufferTooSmall {
        /// Encoded size, with room for a topic alias the session may add.
        needed: usize,
        /// The transmit buffer's size.
        capacity: usize,
    },
    /// `ack` for a packet identifier with no message awaiting acknowledgement.
    #[error("no message awaits acknowledgement under this packet identifier")]
    UnknownPacketId,
}

/// The broker broke the protocol. The session has queued a DISCONNECT with
/// [`ProtocolError::reason_code`] (5.0) and the connection must be closed once it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// Malformed bytes or a violation visible in the packet alone.
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// A packet a broker must not send, or not in this state (e.g. PUBLISH before CONNACK,
    /// a second CONNACK, SUBSCRIBE from the broker). A packet a client never receives
    /// (CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ; DISCONNECT and type 15 in 3.1.1; AUTH
    /// without an authentication method) is refused from its first byte, so this is the
    /// error even when the rest of it is malformed too.
    #[error("unexpected {0:?} packet")]
    UnexpectedPacket(PacketType),
    /// A topic alias of 0, above our maximum, or used before being set [MQTT-3.3.2-10].
    #[error("invalid topic alias")]
    TopicAliasInvalid,
    /// SUBACK or UNSUBACK with a different number of reason codes than filters.
    #[error("acknowledgement does not match its request")]
    AckMismatch,
    /// CONNACK with session present although we asked for a clean start [MQTT-3.2.2-4].
    #[error("session present in answer to a clean start")]
    UnexpectedSessionPresent,
}

impl ProtocolError {
    /// The reason code of the DISCONNECT sent for this error (5.0).
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::Decode(e) => e.reason_code(),
            Self::TopicAliasInvalid => ReasonCode::TopicAliasInvalid,
            Self::UnexpectedPacket(_) | Self::AckMismatch | Self::UnexpectedSessionPresent => {
                ReasonCode::ProtocolError
            }
        }
    }
}
