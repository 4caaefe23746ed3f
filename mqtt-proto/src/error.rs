//! Errors of the codec: what went wrong decoding received bytes, and why a packet cannot be encoded.

use crate::{PacketType, ReasonCode, TopicError};

/// Why received bytes are not a valid packet.
///
/// Every decode error is fatal to the connection: the receiver must close it, and on 5.0 first
/// send a DISCONNECT carrying [`DecodeError::reason_code`] where the specification says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet type is reserved (0, or 15 before 5.0): Table 2-1, which has no conformance id.
    #[error("reserved packet type {0}")]
    ReservedPacketType(u8),
    /// The fixed header's flag bits differ from the ones the packet type fixes [MQTT-2.1.3-1].
    #[error("invalid fixed header flags {flags:#06b} for {packet_type:?}")]
    InvalidHeaderFlags {
        /// The packet type the flags belong to.
        packet_type: PacketType,
        /// The four flag bits received.
        flags: u8,
    },
    /// A variable byte integer runs over four bytes (section 1.5.5).
    #[error("variable byte integer longer than four bytes")]
    VarIntTooLong,
    /// The packet is larger than the receiver's maximum packet size. Detected from the fixed
    /// header alone, before the body is buffered.
    #[error("packet of {size} bytes exceeds the maximum packet size of {max}")]
    PacketTooLarge {
        /// The whole packet's size according to its fixed header.
        size: u32,
        /// The limit in force.
        max: u32,
    },
    /// The content runs past, or stops short of, the remaining length.
    #[error("packet content disagrees with its remaining length")]
    LengthMismatch,
    /// A string is not well-formed UTF-8 (this includes UTF-16 surrogates) [MQTT-1.5.4-1].
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    /// A string contains U+0000 [MQTT-1.5.4-2].
    #[error("string contains the null character U+0000")]
    NullCharacter,
    /// A QoS field holds 3 [MQTT-3.3.1-4].
    #[error("QoS 3 is reserved")]
    InvalidQoS,
    /// DUP is set on a QoS 0 PUBLISH [MQTT-3.3.1-2].
    #[error("DUP flag set on a QoS 0 PUBLISH")]
    DupOnQoS0,
    /// A topic name breaks the topic rules (wildcards [MQTT-3.3.2-2], empty without an alias).
    #[error("invalid topic name: {0}")]
    InvalidTopicName(TopicError),
    /// A topic filter breaks the wildcard rules [MQTT-4.7.1-1] [MQTT-4.7.1-2].
    #[error("invalid topic filter: {0}")]
    InvalidTopicFilter(TopicError),
    /// A packet identifier that must be non-zero is zero [MQTT-2.2.1-3].
    #[error("packet identifier is zero")]
    ZeroPacketId,
    /// A property identifier 5.0 does not define.
    #[error("unknown property identifier {0:#04x}")]
    UnknownProperty(u32),
    /// A property that this packet may not carry.
    #[error("property {id:#04x} is not allowed in {packet_type:?}")]
    PropertyNotAllowed {
        /// The property identifier.
        id: u8,
        /// The packet (or will) it appeared in.
        packet_type: PacketType,
    },
    /// A property that may appear once appears again (a Protocol Error by each property's
    /// definition in 5.0; no conformance id).
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    /// A property holds a value outside its range (e.g. Receive Maximum 0, a flag of 2).
    #[error("property {0:#04x} has an invalid value")]
    InvalidPropertyValue(u8),
    /// A reason code that this packet may not carry.
    #[error("reason code {code:#04x} is not valid in {packet_type:?}")]
    InvalidReasonCode {
        /// The packet type.
        packet_type: PacketType,
        /// The code received.
        code: u8,
    },
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter [MQTT-3.8.3-2] [MQTT-3.10.3-2].
    #[error("SUBSCRIBE or UNSUBSCRIBE carries no topic filter")]
    NoTopicFilters,
    /// Subscription options with reserved bits set [MQTT-3.8.3-5] or retain handling 3.
    #[error("invalid subscription options {0:#04x}")]
    InvalidSubscriptionOptions(u8),
    /// CONNECT's protocol name or level is not 3.1, 3.1.1 or 5.0 [MQTT-3.1.2-1] [MQTT-3.1.2-2].
    #[error("unsupported protocol name or level {level}")]
    UnsupportedProtocol {
        /// The protocol level received.
        level: u8,
    },
    /// CONNECT flags break a rule: reserved bit [MQTT-3.1.2-3], will QoS or retain without a will
    /// [MQTT-3.1.2-11] [MQTT-3.1.2-13], password without user name on 3.1.1 [MQTT-3.1.2-22].
    #[error("invalid CONNECT flags {0:#010b}")]
    InvalidConnectFlags(u8),
    /// CONNACK acknowledge flags with reserved bits set [MQTT-3.2.2-1], or session present with
    /// a failure code.
    #[error("invalid CONNACK flags {0:#010b}")]
    InvalidConnAckFlags(u8),
    /// The packet needs code this build of the crate leaves out: decoding for 5.0 without the
    /// `v5` feature, or a CONNECT (which only a server receives) without the `server`
    /// feature. Names the feature.
    #[error("needs the `{0}` feature of mqtt-sansio, which this build leaves out")]
    FeatureDisabled(&'static str),
}

impl DecodeError {
    /// The 5.0 reason code a DISCONNECT (or CONNACK) reports for this error.
    pub const fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            Self::InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            Self::DuplicateProperty(_)
            | Self::InvalidPropertyValue(_)
            | Self::ZeroPacketId
            | Self::NoTopicFilters
            | Self::FeatureDisabled(_) => ReasonCode::ProtocolError,
            Self::UnsupportedProtocol { .. } => ReasonCode::UnsupportedProtocolVersion,
            _ => ReasonCode::MalformedPacket,
        }
    }

    /// Names `packet_type` in a [`DecodeError::PropertyNotAllowed`]. Property sets shared by
    /// several packets (PUBACK's serves PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK) can only
    /// name one of them; the packet's decoder knows which it is.
    pub(crate) fn in_packet(self, packet_type: PacketType) -> Self {
        match self {
            Self::PropertyNotAllowed { id, .. } => Self::PropertyNotAllowed { id, packet_type },
            other => other,
        }
    }
}

/// Why a packet cannot be encoded. Nothing has been written when one of these is returned, and
/// the connection is unaffected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is smaller than the packet.
    #[error("buffer of {available} bytes is too small for a {needed} byte packet")]
    BufferTooSmall {
        /// The packet's encoded length.
        needed: usize,
        /// The space the buffer had.
        available: usize,
    },
    /// A string or binary field is longer than 65,535 bytes.
    #[error("string or binary field of {0} bytes exceeds 65,535")]
    FieldTooLong(usize),
    /// A string contains U+0000, which the receiver would reject [MQTT-1.5.4-2].
    #[error("string contains the null character U+0000")]
    NullCharacter,
    /// The remaining length would exceed 268,435,455 bytes.
    #[error("packet body of {0} bytes exceeds the 268,435,455 byte limit")]
    PacketTooLarge(usize),
    /// A value outside its encodable range (e.g. a subscription identifier above 268,435,455).
    #[error("value out of range: {0}")]
    ValueOutOfRange(&'static str),
    /// The packet uses something the protocol version cannot express (properties, a reason code
    /// or AUTH before 5.0).
    #[error("not expressible in this protocol version: {0}")]
    NotInVersion(&'static str),
    /// A PUBLISH with an empty topic name and no topic alias.
    #[error("empty topic name without a topic alias")]
    EmptyTopicWithoutAlias,
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    #[error("SUBSCRIBE or UNSUBSCRIBE needs at least one topic filter")]
    NoTopicFilters,
    /// A reason code that this packet may not carry.
    #[error("reason code {0} is not valid in this packet")]
    InvalidReasonCode(ReasonCode),
    /// The packet needs code this build of the crate leaves out: encoding for 5.0 without the
    /// `v5` feature, or a packet only a server sends (CONNACK, SUBACK, UNSUBACK) without the
    /// `server` feature. Names the feature.
    #[error("needs the `{0}` feature of mqtt-sansio, which this build leaves out")]
    FeatureDisabled(&'static str),
}
