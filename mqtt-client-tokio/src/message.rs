//! Owned messages: what the application publishes and what subscriptions deliver.

use std::num::NonZeroU32;
use std::ops::Range;

use bytes::Bytes;
use mqtt_sansio::{session, PacketId, Publish, PublishProperties, QoS, Seq, TopicName};

use crate::Error;

/// An MQTT application message, published or received.
///
/// Received messages share the bytes they arrived in: the payload is a slice of the read
/// buffer, not a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// Topic name (no wildcards).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// Quality of service: requested when publishing, as delivered when received.
    pub qos: QoS,
    /// Retain flag: ask the broker to retain it, or (received) it was a retained message.
    pub retain: bool,
    /// Received only: the broker may have delivered this message before (DUP flag).
    pub dup: bool,
    /// 5.0 properties (ignored on 3.1.1).
    pub properties: Properties,
    /// Packet identifier of a received QoS 1 or 2 message, for manual acknowledgement.
    pub(crate) packet_id: Option<PacketId>,
}

impl Message {
    /// A non-retained message without properties.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>, qos: QoS) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos,
            retain: false,
            dup: false,
            properties: Properties::default(),
            packet_id: None,
        }
    }

    /// Sets the retain flag.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the 5.0 properties.
    pub fn properties(mut self, properties: Properties) -> Self {
        self.properties = properties;
        self
    }

    /// The packet identifier of a received QoS 1 or 2 message (what
    /// [`Client::ack`](crate::Client::ack) acknowledges).
    pub fn packet_id(&self) -> Option<PacketId> {
        self.packet_id
    }

    /// The payload as UTF-8, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// MQTT 5.0 message properties. Topic aliases are not here: the session assigns and
/// resolves them. Build with `..Properties::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties {
    /// Whether the payload is UTF-8 text.
    pub payload_format_indicator: Option<bool>,
    /// Lifetime of the message in seconds; the broker drops it once expired and, when
    /// forwarding, sends the remaining lifetime.
    pub message_expiry_interval: Option<u32>,
    /// MIME type of the payload.
    pub content_type: Option<String>,
    /// Topic to send a response to (request/response).
    pub response_topic: Option<String>,
    /// Correlates a response with its request.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order; names may repeat.
    pub user_properties: Vec<(String, String)>,
    /// Received only: identifiers of the subscriptions the message matched.
    pub subscription_identifiers: Vec<NonZeroU32>,
}

impl Properties {
    /// Adds a user property.
    pub fn user_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user_properties.push((name.into(), value.into()));
        self
    }

    /// The borrowed form the codec encodes; `users` holds the user properties as slices.
    pub(crate) fn to_proto<'a>(
        &'a self,
        users: &'a [(&'a str, &'a str)],
    ) -> Result<PublishProperties<'a>, Error> {
        let response_topic = match &self.response_topic {
            Some(t) => Some(TopicName::new(t)?),
            None => None,
        };
        Ok(PublishProperties {
            payload_format_indicator: self.payload_format_indicator,
            message_expiry_interval: self.message_expiry_interval,
            content_type: self.content_type.as_deref(),
            response_topic,
            correlation_data: self.correlation_data.as_deref(),
            user_properties: Seq::from_slice(users),
            ..PublishProperties::default()
        })
    }

    /// Copies received properties.
    pub(crate) fn from_proto(p: &PublishProperties<'_>) -> Self {
        Self {
            payload_format_indicator: p.payload_format_indicator,
            message_expiry_interval: p.message_expiry_interval,
            content_type: p.content_type.map(str::to_string),
            response_topic: p.response_topic.map(|t| t.as_str().to_string()),
            correlation_data: p.correlation_data.map(Bytes::copy_from_slice),
            user_properties: user_pairs(p.user_properties),
            subscription_identifiers: p.subscription_identifiers.iter().collect(),
        }
    }
}

/// Copies user properties out of a packet.
pub(crate) fn user_pairs(seq: Seq<'_, (&str, &str)>) -> Vec<(String, String)> {
    seq.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Borrows owned user properties as the slices the codec wants.
pub(crate) fn user_refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// The session's view of `message`.
pub(crate) fn to_session<'a>(
    message: &'a Message,
    users: &'a [(&'a str, &'a str)],
) -> Result<session::Message<'a>, Error> {
    Ok(session::Message {
        topic: TopicName::new(&message.topic)?,
        payload: &message.payload,
        qos: message.qos,
        retain: message.retain,
        properties: message.properties.to_proto(users)?,
    })
}

/// A received message whose payload still lies in the read buffer: `payload` is its range
/// there, filled in once the packet's bytes are split off (no copy).
#[derive(Debug)]
pub(crate) struct Draft {
    pub(crate) message: Message,
    pub(crate) payload: Option<Range<usize>>,
}

impl Draft {
    /// Copies everything but the payload out of `p`; the payload is located in `buf` when it
    /// lies there and copied otherwise.
    pub(crate) fn new(p: &Publish<'_>, buf: &[u8]) -> Self {
        let range = subslice_range(buf, p.payload);
        let payload = match range {
            Some(_) => Bytes::new(),
            None => Bytes::copy_from_slice(p.payload),
        };
        let message = Message {
            topic: p.topic.as_str().to_string(),
            payload,
            qos: p.qos_pid.qos(),
            retain: p.retain,
            dup: p.dup,
            properties: Properties::from_proto(&p.properties),
            packet_id: p.packet_id(),
        };
        Self {
            message,
            payload: range,
        }
    }

    /// The message, its payload sliced out of `packet`: the bytes `buf` held when
    /// [`Draft::new`] ran.
    pub(crate) fn finish(self, packet: &Bytes) -> Message {
        let mut message = self.message;
        if let Some(range) = self.payload {
            message.payload = packet.slice(range);
        }
        message
    }
}

/// Where `part` lies in `whole`, if it is a non-empty slice of it.
fn subslice_range(whole: &[u8], part: &[u8]) -> Option<Range<usize>> {
    if part.is_empty() {
        return None;
    }
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start + part.len();
    (end <= whole.len()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_slices_the_payload_without_copying() {
        let buf = Bytes::from_static(b"xxpayloadyy");
        let topic = TopicName::new("t").unwrap();
        let p = Publish::new(topic, &buf[2..9]);
        let draft = Draft::new(&p, &buf);
        assert_eq!(draft.payload, Some(2..9));
        let m = draft.finish(&buf);
        assert_eq!(&m.payload[..], b"payload");
        assert_eq!(m.payload.as_ptr(), buf[2..].as_ptr(), "shares the buffer");
    }

    #[test]
    fn draft_copies_a_payload_from_elsewhere() {
        let other = b"elsewhere".to_vec();
        let p = Publish::new(TopicName::new("t").unwrap(), &other);
        let m = Draft::new(&p, b"buffer").finish(&Bytes::new());
        assert_eq!(&m.payload[..], b"elsewhere");
    }
}
