//! PUBLISH: an application message.

use super::Lengths;
use crate::properties::{self, PublishProperties};
use crate::wire::{self, IResult, Write};
use crate::{
    DecodeError, EncodeError, PacketId, ProtocolVersion, QoS, QosPid, TopicError, TopicName,
};

/// PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Publish<'a> {
    /// Set on a re-delivery of a QoS 1 or 2 message.
    pub dup: bool,
    /// QoS and, for QoS 1 and 2, the packet identifier.
    pub qos_pid: QosPid,
    /// Whether the server retains the message for future subscribers.
    pub retain: bool,
    /// Topic; [`TopicName::EMPTY`] when a 5.0 topic alias names it.
    pub topic: TopicName<'a>,
    /// Properties (5.0).
    pub properties: PublishProperties<'a>,
    /// Application payload.
    pub payload: &'a [u8],
}

const DUP: u8 = 0b1000;
const RETAIN: u8 = 0b0001;

impl<'a> Publish<'a> {
    /// A QoS 0, non-retained message.
    pub fn new(topic: TopicName<'a>, payload: &'a [u8]) -> Self {
        Self {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic,
            properties: PublishProperties::default(),
            payload,
        }
    }

    /// The packet identifier, for QoS 1 and 2.
    pub fn packet_id(&self) -> Option<PacketId> {
        self.qos_pid.packet_id()
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn decode(
        flags: u8,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        wire::finish(Self::parse(flags, body, version))
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    fn parse(flags: u8, body: &'a [u8], version: ProtocolVersion) -> IResult<'a, Self> {
        // [MQTT-3.3.1-4] both QoS bits set is malformed
        let Some(qos) = QoS::from_u8((flags >> 1) & 3) else {
            return wire::fail(DecodeError::InvalidQoS);
        };
        let dup = flags & DUP != 0;
        // [MQTT-3.3.1-2] DUP is 0 on QoS 0
        if dup && qos == QoS::AtMostOnce {
            return wire::fail(DecodeError::DupOnQoS0);
        }
        let (i, topic) = wire::binary(body)?;
        let topic = crate::topic::decode_name(topic).map_err(nom::Err::Failure)?;
        let (i, qos_pid) = match qos {
            QoS::AtMostOnce => (i, QosPid::AtMostOnce),
            // [MQTT-2.2.1-3] QoS 1 and 2 carry a non-zero packet identifier
            QoS::AtLeastOnce => wire::packet_id(i).map(|(i, id)| (i, QosPid::AtLeastOnce(id)))?,
            QoS::ExactlyOnce => wire::packet_id(i).map(|(i, id)| (i, QosPid::ExactlyOnce(id)))?,
        };
        let (payload, properties) = if version.v5() {
            properties::decode::<PublishProperties<'_>>(i)?
        } else {
            (i, PublishProperties::default())
        };
        // [MQTT-4.7.3-1] a topic name is at least one character; 5.0 allows an empty one only
        // with a topic alias (section 3.3.2.1, no conformance id: a protocol error otherwise)
        if topic.is_empty() && properties.topic_alias.is_none() {
            return wire::fail(DecodeError::InvalidTopicName(TopicError::Empty));
        }
        let publish = Self {
            dup,
            qos_pid,
            retain: flags & RETAIN != 0,
            topic,
            properties,
            payload,
        };
        Ok((&[], publish))
    }

    #[inline]
    pub(crate) fn header_flags(&self) -> u8 {
        let mut flags = (self.qos_pid.qos() as u8) << 1;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    /// The whole packet, for [`crate::Packet::encode`]'s own arm of PUBLISH.
    #[cfg(not(mqtt_sansio_small))]
    #[inline(never)]
    pub(crate) fn encode_packet(
        &self,
        version: ProtocolVersion,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let lens = self.lengths(version)?;
        if version.v5() {
            return super::emit(
                buf,
                crate::PacketType::Publish,
                self.header_flags(),
                lens,
                |w, l| self.encode_body(w, version, l),
            );
        }
        self.encode_v3(lens.body, buf)
    }

    /// A 3.1.1 (or 3.1) PUBLISH of `body` bytes, written field by field into slices split off
    /// the output: no writer keeping its position in memory between the fields.
    #[cfg(not(mqtt_sansio_small))]
    #[inline(always)]
    fn encode_v3(&self, body: usize, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if body > crate::MAX_REMAINING_LENGTH as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        let head = 1 + wire::var_int_len(body);
        let total = head + body;
        let available = buf.len();
        let too_small = EncodeError::BufferTooSmall {
            needed: total,
            available,
        };
        let Some((header, rest)) = buf
            .get_mut(..total)
            .and_then(|b| b.split_at_mut_checked(head))
        else {
            return Err(too_small);
        };
        let mut w = wire::SliceWriter::new(header);
        w.put_u8(((crate::PacketType::Publish as u8) << 4) | self.header_flags());
        w.put_var_int(body);
        let topic = self.topic.as_str().as_bytes();
        let id = self.qos_pid.packet_id().map(|id| id.get().to_be_bytes());
        let id_len = if id.is_some() { 2 } else { 0 };
        // `lengths` measured these fields: the splits below cannot fail, but are checked
        // rather than trusted.
        let Some((len_field, rest)) = rest.split_at_mut_checked(2) else {
            return Err(too_small);
        };
        let Some((topic_field, rest)) = rest.split_at_mut_checked(topic.len()) else {
            return Err(too_small);
        };
        let Some((id_field, payload)) = rest.split_at_mut_checked(id_len) else {
            return Err(too_small);
        };
        if payload.len() != self.payload.len() {
            return Err(too_small);
        }
        // Topic names were checked against u16::MAX when built.
        len_field.copy_from_slice(&(topic.len() as u16).to_be_bytes());
        topic_field.copy_from_slice(topic);
        if let Some(id) = &id {
            id_field.copy_from_slice(id);
        }
        payload.copy_from_slice(self.payload);
        Ok(total)
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    #[cfg_attr(mqtt_sansio_small, inline)]
    pub(crate) fn lengths(&self, version: ProtocolVersion) -> Result<Lengths, EncodeError> {
        // [MQTT-3.3.1-2] DUP is 0 on QoS 0
        if self.dup && self.qos_pid == QosPid::AtMostOnce {
            return Err(EncodeError::ValueOutOfRange("DUP on a QoS 0 PUBLISH"));
        }
        let mut lens = Lengths::default();
        let topic = self.topic.as_str();
        // Topic names were validated when built: nothing left to check.
        let mut body = self.topic.field_len() + self.payload.len();
        if self.qos_pid.packet_id().is_some() {
            body += 2;
        }
        if version.v5() {
            if topic.is_empty() && self.properties.topic_alias.is_none() {
                return Err(EncodeError::EmptyTopicWithoutAlias);
            }
            lens.props = properties::content_len(&self.properties)?;
            body += properties::block_len(lens.props);
        } else {
            if topic.is_empty() {
                return Err(EncodeError::EmptyTopicWithoutAlias);
            }
            if !self.properties.is_empty() {
                return Err(EncodeError::NotInVersion("properties"));
            }
        }
        lens.body = body;
        Ok(lens)
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    #[cfg_attr(mqtt_sansio_small, inline)]
    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        w.put_string(self.topic.as_str());
        if let Some(id) = self.qos_pid.packet_id() {
            w.put_u16(id.get());
        }
        if version.v5() {
            properties::encode(&self.properties, lens.props, w);
        }
        w.put_slice(self.payload);
    }
}
