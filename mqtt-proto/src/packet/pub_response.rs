//! PUBACK, PUBREC, PUBREL and PUBCOMP: a packet identifier and, in 5.0, a reason code and
//! properties. One type serves all four; the packet type says which.

use super::{reason_tail, Lengths};
use crate::properties::AckProperties;
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketId, PacketType, ProtocolVersion, ReasonCode};

/// The body of PUBACK, PUBREC, PUBREL or PUBCOMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PubResponse<'a> {
    /// Identifier of the PUBLISH this answers.
    pub packet_id: PacketId,
    /// Outcome (5.0); always [`ReasonCode::Success`] in 3.1.1.
    pub reason_code: ReasonCode,
    /// Properties (5.0).
    pub properties: AckProperties<'a>,
}

impl<'a> PubResponse<'a> {
    /// A successful response for `packet_id`.
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason_code: ReasonCode::Success,
            properties: AckProperties::default(),
        }
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn decode(
        packet_type: PacketType,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        wire::finish(Self::parse(packet_type, body, version))
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    fn parse(
        packet_type: PacketType,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> IResult<'a, Self> {
        let (rest, packet_id) = wire::packet_id(body)?;
        if !version.v5() {
            return Ok((rest, Self::new(packet_id)));
        }
        let (rest, (reason_code, properties)) = reason_tail::decode(rest, packet_type)?;
        let response = Self {
            packet_id,
            reason_code,
            properties,
        };
        Ok((rest, response))
    }

    /// The whole packet, for [`crate::Packet::encode`]'s own arms: in 3.1.1 four bytes
    /// written at once.
    #[cfg(not(mqtt_sansio_small))]
    #[inline(never)]
    pub(crate) fn encode_packet(
        &self,
        packet_type: PacketType,
        version: ProtocolVersion,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        if version.v5() {
            return self.encode_packet_v5(packet_type, buf);
        }
        reason_tail::check_v3(self.reason_code, &self.properties)?;
        let first = ((packet_type as u8) << 4) | packet_type.fixed_flags();
        let [high, low] = self.packet_id.get().to_be_bytes();
        super::emit_fixed(buf, [first, 2, high, low])
    }

    /// [`PubResponse::encode_packet`] in 5.0, apart so that the four-byte path of 3.1.1 saves
    /// no registers for it.
    #[cfg(not(mqtt_sansio_small))]
    #[inline(never)]
    fn encode_packet_v5(
        &self,
        packet_type: PacketType,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let version = ProtocolVersion::V5;
        let lens = self.lengths(packet_type, version)?;
        super::emit(buf, packet_type, packet_type.fixed_flags(), lens, |w, l| {
            self.encode_body(w, version, l)
        })
    }

    #[inline]
    pub(crate) fn lengths(
        &self,
        packet_type: PacketType,
        version: ProtocolVersion,
    ) -> Result<Lengths, EncodeError> {
        if !version.v5() {
            reason_tail::check_v3(self.reason_code, &self.properties)?;
            return Ok(Lengths {
                body: 2,
                ..Lengths::default()
            });
        }
        let (tail, props) = reason_tail::lengths(self.reason_code, &self.properties, packet_type)?;
        Ok(Lengths {
            body: 2 + tail,
            props,
            extra: 0,
        })
    }

    #[inline]
    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        w.put_u16(self.packet_id.get());
        if version.v5() {
            reason_tail::encode(
                w,
                self.reason_code,
                &self.properties,
                lens.body - 2,
                lens.props,
            );
        }
    }
}
