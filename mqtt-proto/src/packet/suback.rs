//! SUBACK and UNSUBACK: a packet identifier and one reason code per topic filter (UNSUBACK has
//! none before 5.0). Both are parsed and written by the same functions.

use super::Lengths;
use crate::properties::{self, AckProperties};
use crate::seq::{sealed::Sealed, Element, Seq};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketId, PacketType, ProtocolVersion, ReasonCode};

/// SUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubAck<'a> {
    /// Identifier of the SUBSCRIBE this answers.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: AckProperties<'a>,
    /// Granted QoS or failure, one per filter, in order.
    pub reason_codes: Seq<'a, ReasonCode>,
}

/// UNSUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnsubAck<'a> {
    /// Identifier of the UNSUBSCRIBE this answers.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: AckProperties<'a>,
    /// Outcome per filter, in order (5.0; empty in 3.1.1).
    pub reason_codes: Seq<'a, ReasonCode>,
}

impl Sealed for ReasonCode {}

impl Element<'_> for ReasonCode {
    fn next_raw(raw: &mut &[u8]) -> Option<Self> {
        let (&first, rest) = raw.split_first()?;
        *raw = rest;
        ReasonCode::from_u8(first)
    }
}

type Parts<'a> = (PacketId, AckProperties<'a>, Seq<'a, ReasonCode>);

fn code_allowed(code: ReasonCode, packet_type: PacketType, version: ProtocolVersion) -> bool {
    match (version.v5(), packet_type) {
        (true, _) => code.is_valid_for(packet_type),
        (false, PacketType::SubAck) => code.is_valid_v3_suback(),
        // 3.1.1's UNSUBACK has no payload at all.
        (false, _) => false,
    }
}

fn parse(body: &[u8], packet_type: PacketType, version: ProtocolVersion) -> IResult<'_, Parts<'_>> {
    let (i, packet_id) = wire::packet_id(body)?;
    let (payload, props) = if version.v5() {
        // AckProperties is shared with PUBACK: name this packet in the error.
        properties::decode(i).map_err(|e| e.map(|e| e.in_packet(packet_type)))?
    } else {
        (i, AckProperties::default())
    };
    for &code in payload {
        let valid =
            ReasonCode::from_u8(code).is_some_and(|c| code_allowed(c, packet_type, version));
        if !valid {
            return wire::fail(DecodeError::InvalidReasonCode { packet_type, code });
        }
    }
    Ok((&[], (packet_id, props, Seq::from_raw(payload))))
}

fn lengths(
    parts: &Parts<'_>,
    packet_type: PacketType,
    version: ProtocolVersion,
) -> Result<Lengths, EncodeError> {
    let (_, props, codes) = parts;
    let mut lens = Lengths::default();
    let mut body = 2;
    if version.v5() {
        lens.props = properties::content_len(props)?;
        body += properties::block_len(lens.props);
    } else if !props.is_empty() {
        return Err(EncodeError::NotInVersion("properties"));
    }
    for code in codes.iter() {
        if !code_allowed(code, packet_type, version) {
            return Err(EncodeError::InvalidReasonCode(code));
        }
        body += 1;
    }
    lens.body = body;
    Ok(lens)
}

fn encode(parts: &Parts<'_>, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
    let (packet_id, props, codes) = parts;
    w.put_u16(packet_id.get());
    if version.v5() {
        properties::encode(props, lens.props, w);
    }
    for code in codes.iter() {
        w.put_u8(code.as_u8());
    }
}

macro_rules! ack_with_codes {
    ($name:ident, $packet_type:expr) => {
        impl<'a> $name<'a> {
            /// An acknowledgement of `packet_id` with `reason_codes` and no properties.
            pub fn new(packet_id: PacketId, reason_codes: &'a [ReasonCode]) -> Self {
                Self {
                    packet_id,
                    properties: AckProperties::default(),
                    reason_codes: Seq::from_slice(reason_codes),
                }
            }

            pub(crate) fn decode(
                body: &'a [u8],
                version: ProtocolVersion,
            ) -> Result<Self, DecodeError> {
                let (packet_id, properties, reason_codes) =
                    wire::finish(parse(body, $packet_type, version))?;
                Ok(Self {
                    packet_id,
                    properties,
                    reason_codes,
                })
            }

            fn parts(&self) -> Parts<'a> {
                (self.packet_id, self.properties, self.reason_codes)
            }

            pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
                lengths(&self.parts(), $packet_type, version)
            }

            pub(crate) fn encode_body(
                &self,
                w: &mut impl Write,
                version: ProtocolVersion,
                lens: Lengths,
            ) {
                encode(&self.parts(), w, version, lens)
            }
        }
    };
}

ack_with_codes!(SubAck, PacketType::SubAck);
ack_with_codes!(UnsubAck, PacketType::UnsubAck);
