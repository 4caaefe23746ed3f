//! The fixed header: packet type, flags and remaining length.

use crate::DecodeError;

/// The type of a control packet, as in the fixed header's high nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum PacketType {
    /// CONNECT (1).
    Connect = 1,
    /// CONNACK (2).
    ConnAck = 2,
    /// PUBLISH (3).
    Publish = 3,
    /// PUBACK (4).
    PubAck = 4,
    /// PUBREC (5).
    PubRec = 5,
    /// PUBREL (6).
    PubRel = 6,
    /// PUBCOMP (7).
    PubComp = 7,
    /// SUBSCRIBE (8).
    Subscribe = 8,
    /// SUBACK (9).
    SubAck = 9,
    /// UNSUBSCRIBE (10).
    Unsubscribe = 10,
    /// UNSUBACK (11).
    UnsubAck = 11,
    /// PINGREQ (12).
    PingReq = 12,
    /// PINGRESP (13).
    PingResp = 13,
    /// DISCONNECT (14).
    Disconnect = 14,
    /// AUTH (15, 5.0 only).
    Auth = 15,
}

impl PacketType {
    /// The flag bits a packet of this type must carry, for every type but PUBLISH (whose
    /// flags are its DUP, QoS and RETAIN).
    // [MQTT-2.1.3-1] reserved flag bits must hold the values the packet type fixes
    pub(crate) const fn fixed_flags(self) -> u8 {
        match self {
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => 0b0010,
            _ => 0,
        }
    }

    /// The type for a high nibble, or `None` for the reserved 0.
    pub const fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return None,
        })
    }
}

/// A decoded fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low nibble: PUBLISH's DUP, QoS and RETAIN, or the fixed flags of other packets.
    pub flags: u8,
    /// Length of the variable header and payload.
    pub remaining_length: u32,
    /// Length of the fixed header itself (2 to 5 bytes).
    pub header_len: u8,
}

impl FixedHeader {
    /// Reads a fixed header from the front of `buf`; `Ok(None)` when `buf` ends inside it.
    ///
    /// # Errors
    /// A reserved packet type, wrong flags, or a remaining length over four bytes.
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    pub fn decode(buf: &[u8]) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        // Packet type 0 is reserved (Table 2-1 in 5.0, Table 2.1 in 3.1.1; no conformance id)
        let packet_type =
            PacketType::from_u8(first >> 4).ok_or(DecodeError::ReservedPacketType(0))?;
        let flags = first & 0x0F;
        let required = match packet_type {
            PacketType::Publish => flags,
            _ => packet_type.fixed_flags(),
        };
        // [MQTT-2.1.3-1] reserved flag bits must hold the values the packet type fixes
        if flags != required {
            return Err(DecodeError::InvalidHeaderFlags { packet_type, flags });
        }
        let mut remaining_length = 0u32;
        for i in 0..4 {
            let Some(&byte) = buf.get(1 + i) else {
                return Ok(None);
            };
            remaining_length |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(Some(Self {
                    packet_type,
                    flags,
                    remaining_length,
                    // i is at most 3, so the header is at most 5 bytes.
                    header_len: 2 + i as u8,
                }));
            }
        }
        // The remaining length is at most four bytes (5.0 section 1.5.5, 3.1.1 section 2.2.3; no
        // conformance id: [MQTT-1.5.5-1] is the sender's duty to use the fewest bytes)
        Err(DecodeError::VarIntTooLong)
    }

    /// The checks that the fixed header alone allows for `version`, so a packet that is bad
    /// from its first byte is refused before its body is buffered: PUBLISH with QoS 3
    /// [MQTT-3.3.1-4] or DUP on QoS 0 [MQTT-3.3.1-2], and AUTH before 5.0 (reserved type 15).
    ///
    /// # Errors
    /// The [`DecodeError`] the full decode would report.
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    pub fn check(&self, version: crate::ProtocolVersion) -> Result<(), DecodeError> {
        match self.packet_type {
            PacketType::Publish if (self.flags >> 1) & 3 == 3 => Err(DecodeError::InvalidQoS),
            PacketType::Publish if self.flags & 0b1110 == 0b1000 => Err(DecodeError::DupOnQoS0),
            PacketType::Auth if !version.v5() => Err(DecodeError::ReservedPacketType(15)),
            _ => Ok(()),
        }
    }

    /// Length of the whole packet: fixed header plus remaining length.
    pub const fn packet_len(&self) -> usize {
        self.header_len as usize + self.remaining_length as usize
    }
}
