//! CONNECT: the client's first packet, carrying its own protocol version.

use super::Lengths;
use crate::properties::{self, ConnectProperties, WillProperties};
use crate::wire::{self, IResult, Write};
use crate::{DecodeError, EncodeError, ProtocolVersion, QoS, TopicName};

/// CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Connect<'a> {
    /// The protocol version the client speaks; the packet is encoded for this version.
    pub protocol: ProtocolVersion,
    /// Clean Start (5.0) / Clean Session (3.1.1): discard any stored session.
    pub clean_start: bool,
    /// Keep alive in seconds (0 turns it off).
    pub keep_alive: u16,
    /// Properties (5.0).
    pub properties: ConnectProperties<'a>,
    /// Client identifier (may be empty when the server assigns one).
    pub client_id: &'a str,
    /// The will message the server publishes if the connection ends abnormally.
    pub will: Option<Will<'a>>,
    /// User name.
    pub username: Option<&'a str>,
    /// Password (3.1.1 requires a user name with it).
    pub password: Option<&'a [u8]>,
}

/// A will message: published by the server when the client disappears without DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Will<'a> {
    /// Topic it is published to.
    pub topic: TopicName<'a>,
    /// Message content.
    pub payload: &'a [u8],
    /// Delivery QoS.
    pub qos: QoS,
    /// Whether it is retained.
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: WillProperties<'a>,
}

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

impl<'a> Connect<'a> {
    /// A CONNECT for `protocol` with clean start, a 60 s keep alive and nothing else.
    pub fn new(protocol: ProtocolVersion, client_id: &'a str) -> Self {
        Self {
            protocol,
            clean_start: true,
            keep_alive: 60,
            properties: ConnectProperties::default(),
            client_id,
            will: None,
            username: None,
            password: None,
        }
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        wire::finish(Self::parse(body))
    }

    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    fn parse(body: &'a [u8]) -> IResult<'a, Self> {
        // Compiled for speed, the known protocol names are compared as bytes, and any other name
        // is read again as a string, so ill-formed UTF-8 and U+0000 are reported as such.
        // Compiled for size, the name is read as a string (less code).
        #[cfg(not(mqtt_sansio_small))]
        let (i, name) = match wire::binary(body)? {
            (i, b"MQTT") => (i, "MQTT"),
            (i, b"MQIsdp") => (i, "MQIsdp"),
            _ => wire::string(body)?,
        };
        #[cfg(mqtt_sansio_small)]
        let (i, name) = wire::string(body)?;
        let (i, level) = wire::u8(i)?;
        // [MQTT-3.1.2-1] protocol name, [MQTT-3.1.2-2] protocol level
        // A build without the `v5` feature does not speak 5.0, as if it were not defined.
        let Some(protocol) =
            ProtocolVersion::from_name_and_level(name, level).filter(|version| version.is_built())
        else {
            return wire::fail(DecodeError::UnsupportedProtocol { level });
        };
        let (i, flags) = wire::u8(i)?;
        check_flags(flags, protocol).map_err(nom::Err::Failure)?;
        let (i, keep_alive) = wire::u16(i)?;
        let (i, properties) = if protocol.v5() {
            properties::decode(i)?
        } else {
            (i, ConnectProperties::default())
        };
        let (mut i, client_id) = wire::string(i)?;
        let mut will = None;
        if flags & WILL != 0 {
            let (rest, will_properties) = if protocol.v5() {
                properties::decode(i)?
            } else {
                (i, WillProperties::default())
            };
            let (rest, topic) = will_topic(rest)?;
            let (rest, payload) = wire::binary(rest)?;
            will = Some(Will {
                topic,
                payload,
                // check_flags rejected QoS 3.
                qos: QoS::from_u8((flags >> WILL_QOS_SHIFT) & 3).unwrap_or_default(),
                retain: flags & WILL_RETAIN != 0,
                properties: will_properties,
            });
            i = rest;
        }
        let mut username = None;
        if flags & USERNAME != 0 {
            let (rest, name) = wire::string(i)?;
            username = Some(name);
            i = rest;
        }
        let mut password = None;
        if flags & PASSWORD != 0 {
            let (rest, pass) = wire::binary(i)?;
            password = Some(pass);
            i = rest;
        }
        let connect = Self {
            protocol,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        };
        Ok((i, connect))
    }

    /// The whole packet, for [`crate::Packet::encode`]'s own arm of CONNECT.
    #[cfg(not(mqtt_sansio_small))]
    #[inline(never)]
    pub(crate) fn encode_packet(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let lens = self.lengths()?;
        super::emit(buf, crate::PacketType::Connect, 0, lens, |w, l| {
            self.encode_body(w, l)
        })
    }

    pub(crate) fn lengths(&self) -> Result<Lengths, EncodeError> {
        let v5 = self.protocol.v5();
        if !v5 && !self.properties.is_empty() {
            return Err(EncodeError::NotInVersion("properties"));
        }
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(EncodeError::NotInVersion("a password without a user name"));
        }
        // Protocol name ("MQTT" or "MQIsdp"), level, flags, keep alive.
        let mut body = 2 + self.protocol.protocol_name().len() + 1 + 1 + 2;
        let mut lens = Lengths::default();
        if v5 {
            lens.props = properties::content_len(&self.properties)?;
            body += properties::block_len(lens.props);
        }
        body += wire::string_len(self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                lens.extra = properties::content_len(&will.properties)?;
                body += properties::block_len(lens.extra);
            } else if !will.properties.is_empty() {
                return Err(EncodeError::NotInVersion("will properties"));
            }
            // [MQTT-4.7.3-1] the will topic is a topic name, so not empty (no alias here)
            if will.topic.is_empty() {
                return Err(EncodeError::EmptyTopicWithoutAlias);
            }
            body += will.topic.field_len() + wire::binary_len(will.payload)?;
        }
        if let Some(username) = self.username {
            body += wire::string_len(username)?;
        }
        if let Some(password) = self.password {
            body += wire::binary_len(password)?;
        }
        lens.body = body;
        Ok(lens)
    }

    // Inlined into `encode_packet` on the PC, so that the writer's position stays in a
    // register instead of being loaded and stored around every field.
    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn encode_body(&self, w: &mut impl Write, lens: Lengths) {
        w.put_string(self.protocol.protocol_name());
        w.put_u8(self.protocol.level());
        w.put_u8(self.flags());
        w.put_u16(self.keep_alive);
        if self.protocol.v5() {
            properties::encode(&self.properties, lens.props, w);
        }
        w.put_string(self.client_id);
        if let Some(will) = &self.will {
            if self.protocol.v5() {
                properties::encode(&will.properties, lens.extra, w);
            }
            w.put_string(will.topic.as_str());
            w.put_binary(will.payload);
        }
        if let Some(username) = self.username {
            w.put_string(username);
        }
        if let Some(password) = self.password {
            w.put_binary(password);
        }
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }
}

/// The will topic: a topic name, so not empty (no alias here) [MQTT-4.7.3-1]. Compiled for
/// speed, UTF-8, U+0000 and the wildcards are checked in one `from_utf8` and one scan, as in
/// PUBLISH; compiled for size, as a string and then as a topic name (less code).
#[cfg(not(mqtt_sansio_small))]
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
fn will_topic(input: &[u8]) -> IResult<'_, TopicName<'_>> {
    let (rest, topic) = wire::binary(input)?;
    let topic = crate::topic::decode_name(topic).map_err(nom::Err::Failure)?;
    if topic.is_empty() {
        return wire::fail(DecodeError::InvalidTopicName(crate::TopicError::Empty));
    }
    Ok((rest, topic))
}

#[cfg(mqtt_sansio_small)]
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
fn will_topic(input: &[u8]) -> IResult<'_, TopicName<'_>> {
    let (rest, topic) = wire::string(input)?;
    match TopicName::new(topic) {
        Ok(topic) => Ok((rest, topic)),
        Err(e) => wire::fail(DecodeError::InvalidTopicName(e)),
    }
}

fn check_flags(flags: u8, protocol: ProtocolVersion) -> Result<(), DecodeError> {
    let invalid = DecodeError::InvalidConnectFlags(flags);
    // [MQTT-3.1.2-3] the reserved flag must be 0
    if flags & RESERVED != 0 {
        return Err(invalid);
    }
    let will_qos = (flags >> WILL_QOS_SHIFT) & 3;
    if flags & WILL == 0 {
        // [MQTT-3.1.2-11] (3.1.1: -13) without a will, will QoS is 0
        // [MQTT-3.1.2-13] (3.1.1: -15) without a will, will retain is 0
        if will_qos != 0 || flags & WILL_RETAIN != 0 {
            return Err(invalid);
        }
    } else if will_qos == 3 {
        // [MQTT-3.1.2-12] (3.1.1: -14) will QoS 3 is malformed
        return Err(invalid);
    }
    // [MQTT-3.1.2-22] (3.1.1 only) a password needs a user name
    if !protocol.v5() && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(invalid);
    }
    Ok(())
}
