//! SUBSCRIBE: topic filters with their subscription options.

use super::Lengths;
use crate::properties::{self, SubscribeProperties};
use crate::seq::{sealed::Sealed, Element, Seq};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, PacketId, ProtocolVersion, QoS, TopicFilter};

/// SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscribe<'a> {
    /// Packet identifier, echoed by SUBACK.
    pub packet_id: PacketId,
    /// Properties (5.0).
    pub properties: SubscribeProperties<'a>,
    /// The filters and their options; at least one.
    pub subscriptions: Seq<'a, Subscription<'a>>,
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Subscription<'a> {
    /// The filter.
    pub filter: TopicFilter<'a>,
    /// How to deliver what matches it.
    pub options: SubscriptionOptions,
}

impl<'a> Subscription<'a> {
    /// A subscription to `filter` at `qos` with default 5.0 options.
    pub fn new(filter: TopicFilter<'a>, qos: QoS) -> Self {
        Self {
            filter,
            options: SubscriptionOptions::new(qos),
        }
    }
}

/// Subscription options. 3.1.1 has the maximum QoS only; the rest must keep their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscriptionOptions {
    /// Highest QoS the server may deliver at.
    pub qos: QoS,
    /// Do not deliver messages this client published itself (5.0).
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published (5.0).
    pub retain_as_published: bool,
    /// When retained messages are sent (5.0).
    pub retain_handling: RetainHandling,
}

/// When the server sends retained messages for a new subscription (5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum RetainHandling {
    /// Send them at subscribe time.
    #[default]
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not exist yet.
    SendIfNew = 1,
    /// Do not send them.
    DoNotSend = 2,
}

impl SubscriptionOptions {
    /// Options with `qos` and the 5.0 defaults.
    pub const fn new(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        (self.qos as u8)
            | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4)
    }

    pub(crate) fn from_byte(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidSubscriptionOptions(byte);
        // [MQTT-3.8.3-5] (3.1.1: [MQTT-3.8.3-4]) reserved bits are 0
        let reserved = if version.v5() { 0xC0 } else { 0xFC };
        if byte & reserved != 0 {
            return Err(invalid);
        }
        let qos = QoS::from_u8(byte & 3).ok_or(DecodeError::InvalidQoS)?;
        let retain_handling = match (byte >> 4) & 3 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(invalid),
        };
        Ok(Self {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }
}

fn subscription(input: &[u8], version: ProtocolVersion) -> IResult<'_, Subscription<'_>> {
    let (i, filter) = wire::string(input)?;
    let filter = TopicFilter::new(filter)
        .map_err(|e| nom::Err::Failure(DecodeError::InvalidTopicFilter(e)))?;
    let (i, byte) = wire::u8(i)?;
    let options = SubscriptionOptions::from_byte(byte, version).map_err(nom::Err::Failure)?;
    // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error
    if options.no_local && filter.shared().is_some() {
        return wire::fail(DecodeError::InvalidSubscriptionOptions(byte));
    }
    Ok((i, Subscription { filter, options }))
}

impl Sealed for Subscription<'_> {}

impl<'a> Element<'a> for Subscription<'a> {
    fn next_raw(raw: &mut &'a [u8]) -> Option<Self> {
        // The bytes were validated for their version; 3.1.1's reserved bits are zero, so the
        // 5.0 layout reads both.
        let (rest, sub) = subscription(raw, ProtocolVersion::V5).ok()?;
        *raw = rest;
        Some(sub)
    }
}

impl<'a> Subscribe<'a> {
    /// A SUBSCRIBE without properties.
    pub fn new(packet_id: PacketId, subscriptions: &'a [Subscription<'a>]) -> Self {
        Self {
            packet_id,
            properties: SubscribeProperties::default(),
            subscriptions: Seq::from_slice(subscriptions),
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
            (i, SubscribeProperties::default())
        };
        // [MQTT-3.8.3-2] (3.1.1: [MQTT-3.8.3-3]) at least one topic filter
        if payload.is_empty() {
            return wire::fail(DecodeError::NoTopicFilters);
        }
        let mut rest = payload;
        while !rest.is_empty() {
            rest = subscription(rest, version)?.0;
        }
        let subscribe = Self {
            packet_id,
            properties,
            subscriptions: Seq::from_raw(payload),
        };
        Ok((rest, subscribe))
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
        if self.subscriptions.is_empty() {
            return Err(EncodeError::NoTopicFilters);
        }
        for sub in self.subscriptions.iter() {
            if !version.v5() && sub.options != SubscriptionOptions::new(sub.options.qos) {
                return Err(EncodeError::NotInVersion(
                    "subscription options other than QoS",
                ));
            }
            // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error
            if sub.options.no_local && sub.filter.shared().is_some() {
                return Err(EncodeError::ValueOutOfRange(
                    "No Local on a shared subscription",
                ));
            }
            body += sub.filter.field_len() + 1;
        }
        lens.body = body;
        Ok(lens)
    }

    pub(crate) fn encode_body(&self, w: &mut impl Write, version: ProtocolVersion, lens: Lengths) {
        w.put_u16(self.packet_id.get());
        if version.v5() {
            properties::encode(&self.properties, lens.props, w);
        }
        for sub in self.subscriptions.iter() {
            w.put_string(sub.filter.as_str());
            w.put_u8(sub.options.to_byte());
        }
    }
}
