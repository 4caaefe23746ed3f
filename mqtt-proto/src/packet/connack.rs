//! CONNACK: the server's answer to CONNECT.

use super::Lengths;
use crate::properties::{self, ConnAckProperties};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketType, ProtocolVersion, ReasonCode};

/// CONNACK. 3.1.1 return codes are carried as their 5.0 equivalents (see [`ReasonCode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnAck<'a> {
    /// Whether the server resumed a stored session.
    pub session_present: bool,
    /// Outcome of the connection attempt.
    pub reason_code: ReasonCode,
    /// The server's limits and assignments (5.0).
    pub properties: ConnAckProperties<'a>,
}

impl<'a> ConnAck<'a> {
    /// A CONNACK with `reason_code`, no session and no properties.
    pub fn new(reason_code: ReasonCode) -> Self {
        Self {
            session_present: false,
            reason_code,
            properties: ConnAckProperties::default(),
        }
    }

    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        wire::finish(Self::parse(body, version))
    }

    fn parse(body: &'a [u8], version: ProtocolVersion) -> IResult<'a, Self> {
        let (i, flags) = wire::u8(body)?;
        // [MQTT-3.2.2-1] bits 7-1 of the acknowledge flags are reserved and 0
        if flags & 0xFE != 0 {
            return wire::fail(DecodeError::InvalidConnAckFlags(flags));
        }
        let (i, code) = wire::u8(i)?;
        let reason = if version.v5() {
            ReasonCode::from_u8(code).filter(|r| r.is_valid_for(PacketType::ConnAck))
        } else {
            ReasonCode::from_v3_connack(code)
        };
        let Some(reason_code) = reason else {
            return wire::fail(DecodeError::InvalidReasonCode {
                packet_type: PacketType::ConnAck,
                code,
            });
        };
        let session_present = flags & 1 == 1;
        // [MQTT-3.2.2-6] (3.1.1: [MQTT-3.2.2-4]) session present is 0 with a failure code
        if session_present && reason_code != ReasonCode::Success {
            return wire::fail(DecodeError::InvalidConnAckFlags(flags));
        }
        let (i, properties) = if version.v5() {
            properties::decode(i)?
        } else {
            (i, ConnAckProperties::default())
        };
        let connack = Self {
            session_present,
            reason_code,
            properties,
        };
        Ok((i, connack))
    }

    pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        // [MQTT-3.2.2-6] (3.1.1: [MQTT-3.2.2-4]) session present is 0 with a failure code
        if self.session_present && self.reason_code != ReasonCode::Success {
            return Err(EncodeError::ValueOutOfRange(
                "session present with a failure reason code",
            ));
        }
        if !version.v5() {
            if self.reason_code.to_v3_connack().is_none() {
                return Err(EncodeError::NotInVersion("this CONNACK reason code"));
            }
            if !self.properties.is_empty() {
                return Err(EncodeError::NotInVersion("properties"));
            }
            return Ok(Lengths {
                body: 2,
                ..Lengths::default()
            });
        }
        if !self.reason_code.is_valid_for(PacketType::ConnAck) {
            return Err(EncodeError::InvalidReasonCode(self.reason_code));
        }
        let props = properties::content_len(&self.properties)?;
        Ok(Lengths {
            body: 2 + properties::block_len(props),
            props,
            extra: 0,
        })
    }

    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        w.put_u8(u8::from(self.session_present));
        if version.v5() {
            w.put_u8(self.reason_code.as_u8());
            properties::encode(&self.properties, lens.props, w);
        } else {
            // lengths() checked that a 3.1.1 code exists.
            w.put_u8(self.reason_code.to_v3_connack().unwrap_or(0));
        }
    }
}
