//! UNSUBSCRIBE: the topic filters to remove.

use super::Lengths;
use crate::properties::{self, UnsubscribeProperties};
use crate::seq::{sealed::Sealed, Element, Seq};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion, TopicFilter};

/// UNSUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Unsubscribe<'a> {
    /// Packet identifier, echoed by UNSUBACK.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: UnsubscribeProperties<'a>,
    /// The filters to remove; at least one.
    pub filters: Seq<'a, TopicFilter<'a>>,
}

fn filter(input: &[u8]) -> IResult<'_, TopicFilter<'_>> {
    let (i, s) = wire::string(input)?;
    match TopicFilter::new(s) {
        Ok(f) => Ok((i, f)),
        Err(e) => wire::fail(DecodeError::InvalidTopicFilter(e)),
    }
}

impl Sealed for TopicFilter<'_> {}

impl<'a> Element<'a> for TopicFilter<'a> {
    fn next_raw(raw: &mut &'a [u8]) -> Option<Self> {
        let (rest, f) = filter(raw).ok()?;
        *raw = rest;
        Some(f)
    }
}

impl<'a> Unsubscribe<'a> {
    /// An UNSUBSCRIBE without properties.
    pub fn new(packet_id: PacketId, filters: &'a [TopicFilter<'a>]) -> Self {
        Self {
            packet_id,
            properties: UnsubscribeProperties::default(),
            filters: Seq::from_slice(filters),
        }
    }

    pub(crate) fn decode(body: &'a [u8], version: ProtocolVersion) -> Result<Self, DecodeError> {
        wire::finish(Self::parse(body, version))
    }

    fn parse(body: &'a [u8], version: ProtocolVersion) -> IResult<'a, Self> {
        let (i, packet_id) = wire::packet_id(body)?;
        let (payload, properties) = if version.v5() {
            properties::decode(i)?
        } else {
            (i, UnsubscribeProperties::default())
        };
        // [MQTT-3.10.3-2] at least one topic filter
        if payload.is_empty() {
            return wire::fail(DecodeError::NoTopicFilters);
        }
        let mut rest = payload;
        while !rest.is_empty() {
            rest = filter(rest)?.0;
        }
        let unsubscribe = Self {
            packet_id,
            properties,
            filters: Seq::from_raw(payload),
        };
        Ok((rest, unsubscribe))
    }

    pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        let mut lens = Lengths::default();
        let mut body = 2;
        if version.v5() {
            lens.props = properties::content_len(&self.properties)?;
            body += properties::block_len(lens.props);
        } else if !self.properties.is_empty() {
            return Err(EncodeError::NotInVersion("properties"));
        }
        if self.filters.is_empty() {
            return Err(EncodeError::NoTopicFilters);
        }
        for f in self.filters.iter() {
            body += f.field_len();
        }
        lens.body = body;
        Ok(lens)
    }

    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        w.put_u16(self.packet_id.get());
        if version.v5() {
            properties::encode(&self.properties, lens.props, w);
        }
        for f in self.filters.iter() {
            w.put_string(f.as_str());
        }
    }
}
