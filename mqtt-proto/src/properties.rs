//! MQTT 5.0 properties: one table of property kinds, and per-packet property sets that are
//! checked against it in a single decode and encode loop shared by every packet.

use core::num::{NonZeroU16, NonZeroU32};

use crate::seq::{sealed::Sealed, Element, Seq};
use crate::wire::{self, fail, IResult, Write};
use crate::{DecodeError, EncodeError, PacketType, QoS, TopicName, MAX_REMAINING_LENGTH};

/// User properties: (name, value) pairs in their original order. A name may appear more than
/// once [MQTT-3.3.2-18].
pub type UserProperties<'a> = Seq<'a, (&'a str, &'a str)>;

/// The subscription identifiers a PUBLISH carries, one per matching subscription.
pub type SubscriptionIdentifiers<'a> = Seq<'a, NonZeroU32>;

/// One property with its value, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Variant names are the specification's property names ("User Property").
#[allow(clippy::enum_variant_names)]
pub(crate) enum Property<'a> {
    PayloadFormatIndicator(bool),
    MessageExpiryInterval(u32),
    ContentType(&'a str),
    ResponseTopic(TopicName<'a>),
    CorrelationData(&'a [u8]),
    SubscriptionIdentifier(NonZeroU32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(&'a str),
    ServerKeepAlive(u16),
    AuthenticationMethod(&'a str),
    AuthenticationData(&'a [u8]),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(&'a str),
    ServerReference(&'a str),
    ReasonString(&'a str),
    ReceiveMaximum(NonZeroU16),
    TopicAliasMaximum(u16),
    TopicAlias(NonZeroU16),
    MaximumQoS(QoS),
    RetainAvailable(bool),
    UserProperty(&'a str, &'a str),
    MaximumPacketSize(NonZeroU32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

/// A byte property that may only be 0 or 1; anything else is a protocol error.
fn flag(input: &[u8], id: u8) -> IResult<'_, bool> {
    let (rest, v) = wire::u8(input)?;
    match v {
        0 => Ok((rest, false)),
        1 => Ok((rest, true)),
        _ => fail(DecodeError::InvalidPropertyValue(id)),
    }
}

fn nonzero_u16(input: &[u8], id: u8) -> IResult<'_, NonZeroU16> {
    let (rest, v) = wire::u16(input)?;
    match NonZeroU16::new(v) {
        Some(v) => Ok((rest, v)),
        None => fail(DecodeError::InvalidPropertyValue(id)),
    }
}

fn nonzero_u32(value: u32, id: u8) -> Result<NonZeroU32, nom::Err<DecodeError>> {
    NonZeroU32::new(value).ok_or(nom::Err::Failure(DecodeError::InvalidPropertyValue(id)))
}

impl<'a> Property<'a> {
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    pub(crate) const fn id(&self) -> u8 {
        match self {
            Self::PayloadFormatIndicator(_) => 0x01,
            Self::MessageExpiryInterval(_) => 0x02,
            Self::ContentType(_) => 0x03,
            Self::ResponseTopic(_) => 0x08,
            Self::CorrelationData(_) => 0x09,
            Self::SubscriptionIdentifier(_) => 0x0B,
            Self::SessionExpiryInterval(_) => 0x11,
            Self::AssignedClientIdentifier(_) => 0x12,
            Self::ServerKeepAlive(_) => 0x13,
            Self::AuthenticationMethod(_) => 0x15,
            Self::AuthenticationData(_) => 0x16,
            Self::RequestProblemInformation(_) => 0x17,
            Self::WillDelayInterval(_) => 0x18,
            Self::RequestResponseInformation(_) => 0x19,
            Self::ResponseInformation(_) => 0x1A,
            Self::ServerReference(_) => 0x1C,
            Self::ReasonString(_) => 0x1F,
            Self::ReceiveMaximum(_) => 0x21,
            Self::TopicAliasMaximum(_) => 0x22,
            Self::TopicAlias(_) => 0x23,
            Self::MaximumQoS(_) => 0x24,
            Self::RetainAvailable(_) => 0x25,
            Self::UserProperty(..) => 0x26,
            Self::MaximumPacketSize(_) => 0x27,
            Self::WildcardSubscriptionAvailable(_) => 0x28,
            Self::SubscriptionIdentifierAvailable(_) => 0x29,
            Self::SharedSubscriptionAvailable(_) => 0x2A,
        }
    }

    /// Reads one property: its identifier, then a value of the identifier's type.
    pub(crate) fn decode(input: &'a [u8]) -> IResult<'a, Self> {
        let (i, raw_id) = wire::var_int(input)?;
        let Ok(id) = u8::try_from(raw_id) else {
            return fail(DecodeError::UnknownProperty(raw_id));
        };
        Ok(match id {
            0x01 => flag(i, id).map(|(i, v)| (i, Self::PayloadFormatIndicator(v)))?,
            0x02 => wire::u32(i).map(|(i, v)| (i, Self::MessageExpiryInterval(v)))?,
            0x03 => wire::string(i).map(|(i, v)| (i, Self::ContentType(v)))?,
            0x08 => {
                let (i, s) = wire::string(i)?;
                // The Response Topic is a topic name: no wildcards [MQTT-3.3.2-14], not empty
                // [MQTT-4.7.3-1]
                match TopicName::new(s) {
                    Ok(t) => (i, Self::ResponseTopic(t)),
                    Err(e) => return fail(DecodeError::InvalidTopicName(e)),
                }
            }
            0x09 => wire::binary(i).map(|(i, v)| (i, Self::CorrelationData(v)))?,
            0x0B => {
                let (i, v) = wire::var_int(i)?;
                // A subscription identifier of 0 is a protocol error (3.8.2.1.2, 3.3.2.3.8; no
                // conformance id)
                (i, Self::SubscriptionIdentifier(nonzero_u32(v, id)?))
            }
            0x11 => wire::u32(i).map(|(i, v)| (i, Self::SessionExpiryInterval(v)))?,
            0x12 => wire::string(i).map(|(i, v)| (i, Self::AssignedClientIdentifier(v)))?,
            0x13 => wire::u16(i).map(|(i, v)| (i, Self::ServerKeepAlive(v)))?,
            0x15 => wire::string(i).map(|(i, v)| (i, Self::AuthenticationMethod(v)))?,
            0x16 => wire::binary(i).map(|(i, v)| (i, Self::AuthenticationData(v)))?,
            0x17 => flag(i, id).map(|(i, v)| (i, Self::RequestProblemInformation(v)))?,
            0x18 => wire::u32(i).map(|(i, v)| (i, Self::WillDelayInterval(v)))?,
            0x19 => flag(i, id).map(|(i, v)| (i, Self::RequestResponseInformation(v)))?,
            0x1A => wire::string(i).map(|(i, v)| (i, Self::ResponseInformation(v)))?,
            0x1C => wire::string(i).map(|(i, v)| (i, Self::ServerReference(v)))?,
            0x1F => wire::string(i).map(|(i, v)| (i, Self::ReasonString(v)))?,
            // Receive Maximum of 0 is a protocol error (3.1.2.11.3, 3.2.2.3.3; no conformance id)
            0x21 => nonzero_u16(i, id).map(|(i, v)| (i, Self::ReceiveMaximum(v)))?,
            0x22 => wire::u16(i).map(|(i, v)| (i, Self::TopicAliasMaximum(v)))?,
            // [MQTT-3.3.2-8] a Topic Alias of 0 is not permitted
            0x23 => nonzero_u16(i, id).map(|(i, v)| (i, Self::TopicAlias(v)))?,
            0x24 => {
                let (i, v) = flag(i, id)?;
                let qos = if v { QoS::AtLeastOnce } else { QoS::AtMostOnce };
                (i, Self::MaximumQoS(qos))
            }
            0x25 => flag(i, id).map(|(i, v)| (i, Self::RetainAvailable(v)))?,
            0x26 => {
                let (i, name) = wire::string(i)?;
                let (i, value) = wire::string(i)?;
                (i, Self::UserProperty(name, value))
            }
            0x27 => {
                let (i, v) = wire::u32(i)?;
                // 3.1.2.11.4: a Maximum Packet Size of 0 is a protocol error
                (i, Self::MaximumPacketSize(nonzero_u32(v, id)?))
            }
            0x28 => flag(i, id).map(|(i, v)| (i, Self::WildcardSubscriptionAvailable(v)))?,
            0x29 => flag(i, id).map(|(i, v)| (i, Self::SubscriptionIdentifierAvailable(v)))?,
            0x2A => flag(i, id).map(|(i, v)| (i, Self::SharedSubscriptionAvailable(v)))?,
            _ => return fail(DecodeError::UnknownProperty(raw_id)),
        })
    }

    /// Encoded size including the identifier byte; checks what cannot be encoded.
    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn encoded_len(&self) -> Result<usize, EncodeError> {
        let value = match *self {
            Self::PayloadFormatIndicator(_)
            | Self::RequestProblemInformation(_)
            | Self::RequestResponseInformation(_)
            | Self::RetainAvailable(_)
            | Self::WildcardSubscriptionAvailable(_)
            | Self::SubscriptionIdentifierAvailable(_)
            | Self::SharedSubscriptionAvailable(_) => 1,
            Self::MaximumQoS(qos) => {
                if qos == QoS::ExactlyOnce {
                    return Err(EncodeError::ValueOutOfRange("Maximum QoS is 0 or 1"));
                }
                1
            }
            Self::ServerKeepAlive(_)
            | Self::ReceiveMaximum(_)
            | Self::TopicAliasMaximum(_)
            | Self::TopicAlias(_) => 2,
            Self::MessageExpiryInterval(_)
            | Self::SessionExpiryInterval(_)
            | Self::WillDelayInterval(_)
            | Self::MaximumPacketSize(_) => 4,
            Self::SubscriptionIdentifier(v) => {
                if v.get() > MAX_REMAINING_LENGTH {
                    return Err(EncodeError::ValueOutOfRange(
                        "subscription identifier above 268,435,455",
                    ));
                }
                wire::var_int_len(v.get() as usize)
            }
            Self::ContentType(s)
            | Self::AssignedClientIdentifier(s)
            | Self::AuthenticationMethod(s)
            | Self::ResponseInformation(s)
            | Self::ServerReference(s)
            | Self::ReasonString(s) => wire::string_len(s)?,
            Self::ResponseTopic(t) => {
                // [MQTT-3.3.2-13] the Response Topic is a topic name, so not empty
                if t.is_empty() {
                    return Err(EncodeError::ValueOutOfRange("empty Response Topic"));
                }
                t.field_len()
            }
            Self::CorrelationData(b) | Self::AuthenticationData(b) => wire::binary_len(b)?,
            Self::UserProperty(k, v) => wire::string_len(k)? + wire::string_len(v)?,
        };
        Ok(1 + value)
    }

    /// Writes the property; `encoded_len` has validated it.
    #[cfg_attr(not(mqtt_sansio_small), inline(always))]
    pub(crate) fn encode(&self, w: &mut impl Write) {
        w.put_u8(self.id());
        match *self {
            Self::PayloadFormatIndicator(v)
            | Self::RequestProblemInformation(v)
            | Self::RequestResponseInformation(v)
            | Self::RetainAvailable(v)
            | Self::WildcardSubscriptionAvailable(v)
            | Self::SubscriptionIdentifierAvailable(v)
            | Self::SharedSubscriptionAvailable(v) => w.put_u8(u8::from(v)),
            Self::MaximumQoS(qos) => w.put_u8(qos as u8),
            Self::ServerKeepAlive(v) | Self::TopicAliasMaximum(v) => w.put_u16(v),
            Self::ReceiveMaximum(v) | Self::TopicAlias(v) => w.put_u16(v.get()),
            Self::MessageExpiryInterval(v)
            | Self::SessionExpiryInterval(v)
            | Self::WillDelayInterval(v) => w.put_u32(v),
            Self::MaximumPacketSize(v) => w.put_u32(v.get()),
            Self::SubscriptionIdentifier(v) => w.put_var_int(v.get() as usize),
            Self::ContentType(s)
            | Self::AssignedClientIdentifier(s)
            | Self::AuthenticationMethod(s)
            | Self::ResponseInformation(s)
            | Self::ServerReference(s)
            | Self::ReasonString(s) => w.put_string(s),
            Self::ResponseTopic(t) => w.put_string(t.as_str()),
            Self::CorrelationData(b) | Self::AuthenticationData(b) => w.put_binary(b),
            Self::UserProperty(k, v) => {
                w.put_string(k);
                w.put_string(v);
            }
        }
    }
}

impl Sealed for (&str, &str) {}

impl<'a> Element<'a> for (&'a str, &'a str) {
    fn next_raw(raw: &mut &'a [u8]) -> Option<Self> {
        // Raw property sequences come from 5.0 decoding only.
        if !cfg!(feature = "v5") {
            return None;
        }
        while !raw.is_empty() {
            let (rest, property) = Property::decode(raw).ok()?;
            *raw = rest;
            if let Property::UserProperty(name, value) = property {
                return Some((name, value));
            }
        }
        None
    }
}

impl Sealed for NonZeroU32 {}

impl Element<'_> for NonZeroU32 {
    fn next_raw(raw: &mut &[u8]) -> Option<Self> {
        // Raw property sequences come from 5.0 decoding only.
        if !cfg!(feature = "v5") {
            return None;
        }
        while !raw.is_empty() {
            let (rest, property) = Property::decode(raw).ok()?;
            *raw = rest;
            if let Property::SubscriptionIdentifier(id) = property {
                return Some(id);
            }
        }
        None
    }
}

/// What every per-packet property set does; the decode and encode loops are written once
/// against it.
pub(crate) trait PropertySet<'a>: Default {
    /// Takes one decoded property, refusing ones this packet may not carry and repeats.
    fn absorb(&mut self, property: Property<'a>) -> Result<(), DecodeError>;
    /// Points the repeatable properties at the validated block they were seen in.
    fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool);
    /// Visits every property to encode, in a fixed order, through a `dyn` closure: each
    /// property set has one copy of this function instead of one per caller, which halves the
    /// flash the property code takes on a microcontroller. The encoder takes this path when the
    /// crate is compiled for size (`cfg(mqtt_sansio_small)`, see `build.rs`).
    #[cfg(mqtt_sansio_small)]
    fn for_each(&self, f: &mut dyn FnMut(Property<'a>));

    /// Length of the properties' content, in one pass over the fields with each property's
    /// size inlined: no closure, no property rebuilt as an enum and matched again. The encoder
    /// takes this path when the crate is compiled for speed.
    #[cfg(not(mqtt_sansio_small))]
    fn content_len(&self) -> Result<usize, EncodeError>;

    /// Writes the properties (not their length prefix) that [`PropertySet::content_len`]
    /// validated, as directly as it measured them.
    #[cfg(not(mqtt_sansio_small))]
    fn write(&self, w: &mut impl Write);

    /// Whether no property is set.
    fn is_empty(&self) -> bool;
}

fn set_once<T>(slot: &mut Option<T>, value: T, id: u8) -> Result<(), DecodeError> {
    if slot.is_some() {
        // Properties other than User Property and (in PUBLISH) Subscription Identifier are a
        // protocol error when included more than once (each property's definition; no
        // conformance id)
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(value);
    Ok(())
}

macro_rules! property_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $ptype:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty = $variant:ident, )*
        }
        $( repeated $(#[$rmeta:meta])* $rfield:ident = $rvariant:ident; )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name<'a> {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
            $( $(#[$rmeta])* pub $rfield: SubscriptionIdentifiers<'a>, )?
            /// User properties (name, value) in order; names may repeat.
            pub user_properties: UserProperties<'a>,
        }

        impl<'a> PropertySet<'a> for $name<'a> {
            fn absorb(&mut self, property: Property<'a>) -> Result<(), DecodeError> {
                match property {
                    $( Property::$variant(v) => set_once(&mut self.$field, v, property.id()), )*
                    $( Property::$rvariant(_) => Ok(()), )?
                    Property::UserProperty(..) => Ok(()),
                    other => Err(DecodeError::PropertyNotAllowed {
                        id: other.id(),
                        packet_type: PacketType::$ptype,
                    }),
                }
            }

            #[allow(unused_variables)]
            fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool) {
                if has_user {
                    self.user_properties = Seq::from_raw(raw);
                }
                $( if has_sub_ids {
                    self.$rfield = Seq::from_raw(raw);
                } )?
            }

            #[inline]
            fn is_empty(&self) -> bool {
                // `&`, not `&&`: every 3.1.1 encode asks this of a set that is nearly always
                // empty, and the flags of all fields combined cost less than a branch each.
                true $( & self.$field.is_none() )*
                    $( & self.$rfield.is_empty() )?
                    & self.user_properties.is_empty()
            }

            #[cfg(mqtt_sansio_small)]
            fn for_each(&self, f: &mut dyn FnMut(Property<'a>)) {
                $( if let Some(v) = self.$field {
                    f(Property::$variant(v));
                } )*
                $( for id in self.$rfield.iter() {
                    f(Property::$rvariant(id));
                } )?
                for (name, value) in self.user_properties.iter() {
                    f(Property::UserProperty(name, value));
                }
            }

            #[cfg(not(mqtt_sansio_small))]
            #[inline]
            fn content_len(&self) -> Result<usize, EncodeError> {
                let mut len = 0;
                $( if let Some(v) = self.$field {
                    len += Property::$variant(v).encoded_len()?;
                } )*
                $( for id in self.$rfield.iter() {
                    len += Property::$rvariant(id).encoded_len()?;
                } )?
                for (name, value) in self.user_properties.iter() {
                    len += Property::UserProperty(name, value).encoded_len()?;
                }
                Ok(len)
            }

            #[cfg(not(mqtt_sansio_small))]
            #[inline]
            fn write(&self, w: &mut impl Write) {
                $( if let Some(v) = self.$field {
                    Property::$variant(v).encode(w);
                } )*
                $( for id in self.$rfield.iter() {
                    Property::$rvariant(id).encode(w);
                } )?
                for (name, value) in self.user_properties.iter() {
                    Property::UserProperty(name, value).encode(w);
                }
            }
        }

        impl $name<'_> {
            /// Whether no property is set.
            #[inline]
            pub fn is_empty(&self) -> bool {
                PropertySet::is_empty(self)
            }
        }
    };
}

property_set! {
    /// Properties of a 5.0 CONNECT.
    pub struct ConnectProperties in Connect {
        /// Seconds the session outlives the connection (0 or absent: ends with it).
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// How many QoS 1 and 2 publishes the client will process at once (default 65,535).
        receive_maximum: NonZeroU16 = ReceiveMaximum,
        /// Largest packet the client accepts.
        maximum_packet_size: NonZeroU32 = MaximumPacketSize,
        /// Highest topic alias the client accepts from the server (0 or absent: none).
        topic_alias_maximum: u16 = TopicAliasMaximum,
        /// Asks the server for Response Information in CONNACK.
        request_response_information: bool = RequestResponseInformation,
        /// Whether the server may send reason strings and user properties on failures.
        request_problem_information: bool = RequestProblemInformation,
        /// Enhanced authentication method.
        authentication_method: &'a str = AuthenticationMethod,
        /// Enhanced authentication data.
        authentication_data: &'a [u8] = AuthenticationData,
    }
}

property_set! {
    /// Properties of a 5.0 will message, carried in CONNECT.
    pub struct WillProperties in Connect {
        /// Seconds the server waits before publishing the will.
        will_delay_interval: u32 = WillDelayInterval,
        /// Whether the payload is UTF-8 text.
        payload_format_indicator: bool = PayloadFormatIndicator,
        /// Lifetime of the will message in seconds.
        message_expiry_interval: u32 = MessageExpiryInterval,
        /// MIME type of the payload.
        content_type: &'a str = ContentType,
        /// Topic for a response.
        response_topic: TopicName<'a> = ResponseTopic,
        /// Correlates a response with its request.
        correlation_data: &'a [u8] = CorrelationData,
    }
}

property_set! {
    /// Properties of a 5.0 CONNACK: the server's limits and what it assigned.
    pub struct ConnAckProperties in ConnAck {
        /// Session expiry the server uses instead of the client's.
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// How many QoS 1 and 2 publishes the server processes at once (default 65,535).
        receive_maximum: NonZeroU16 = ReceiveMaximum,
        /// Highest QoS the server supports (absent: 2).
        maximum_qos: QoS = MaximumQoS,
        /// Whether retained messages are supported (absent: yes).
        retain_available: bool = RetainAvailable,
        /// Largest packet the server accepts.
        maximum_packet_size: NonZeroU32 = MaximumPacketSize,
        /// Client identifier the server assigned to an empty one.
        assigned_client_identifier: &'a str = AssignedClientIdentifier,
        /// Highest topic alias the server accepts (absent: none).
        topic_alias_maximum: u16 = TopicAliasMaximum,
        /// Human-readable diagnostic.
        reason_string: &'a str = ReasonString,
        /// Whether wildcard subscriptions are supported (absent: yes).
        wildcard_subscription_available: bool = WildcardSubscriptionAvailable,
        /// Whether subscription identifiers are supported (absent: yes).
        subscription_identifier_available: bool = SubscriptionIdentifierAvailable,
        /// Whether shared subscriptions are supported (absent: yes).
        shared_subscription_available: bool = SharedSubscriptionAvailable,
        /// Keep alive the client must use instead of its own.
        server_keep_alive: u16 = ServerKeepAlive,
        /// Basis for a response topic.
        response_information: &'a str = ResponseInformation,
        /// Another server to use.
        server_reference: &'a str = ServerReference,
        /// Enhanced authentication method.
        authentication_method: &'a str = AuthenticationMethod,
        /// Enhanced authentication data.
        authentication_data: &'a [u8] = AuthenticationData,
    }
}

property_set! {
    /// Properties of a 5.0 PUBLISH.
    pub struct PublishProperties in Publish {
        /// Whether the payload is UTF-8 text.
        payload_format_indicator: bool = PayloadFormatIndicator,
        /// Lifetime of the message in seconds.
        message_expiry_interval: u32 = MessageExpiryInterval,
        /// Number standing for the topic name on this connection.
        topic_alias: NonZeroU16 = TopicAlias,
        /// Topic for a response.
        response_topic: TopicName<'a> = ResponseTopic,
        /// Correlates a response with its request.
        correlation_data: &'a [u8] = CorrelationData,
        /// MIME type of the payload.
        content_type: &'a str = ContentType,
    }
    repeated
    /// Identifiers of the subscriptions that matched (server to client only).
    subscription_identifiers = SubscriptionIdentifier;
}

property_set! {
    /// Properties of a 5.0 PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK or UNSUBACK.
    pub struct AckProperties in PubAck {
        /// Human-readable diagnostic.
        reason_string: &'a str = ReasonString,
    }
}

property_set! {
    /// Properties of a 5.0 SUBSCRIBE.
    pub struct SubscribeProperties in Subscribe {
        /// Identifier the server attaches to messages matching these subscriptions.
        subscription_identifier: NonZeroU32 = SubscriptionIdentifier,
    }
}

property_set! {
    /// Properties of a 5.0 UNSUBSCRIBE: user properties only.
    pub struct UnsubscribeProperties in Unsubscribe {}
}

property_set! {
    /// Properties of a 5.0 DISCONNECT.
    pub struct DisconnectProperties in Disconnect {
        /// New session expiry (client to server only).
        session_expiry_interval: u32 = SessionExpiryInterval,
        /// Human-readable diagnostic.
        reason_string: &'a str = ReasonString,
        /// Another server to use.
        server_reference: &'a str = ServerReference,
    }
}

property_set! {
    /// Properties of a 5.0 AUTH.
    pub struct AuthProperties in Auth {
        /// Authentication method.
        authentication_method: &'a str = AuthenticationMethod,
        /// Authentication data.
        authentication_data: &'a [u8] = AuthenticationData,
        /// Human-readable diagnostic.
        reason_string: &'a str = ReasonString,
    }
}

/// Reads a property length and the properties it covers into a set of type `P`.
pub(crate) fn decode<'a, P: PropertySet<'a>>(input: &'a [u8]) -> IResult<'a, P> {
    let mut set = P::default();
    // Compiled for size, one copy of the walk serves every property set (through `dyn`);
    // for speed, each set gets its own.
    #[cfg(mqtt_sansio_small)]
    let rest = decode_into(input, &mut set)?;
    #[cfg(not(mqtt_sansio_small))]
    let rest = walk(input, &mut set)?;
    Ok((rest, set))
}

/// The object-safe part of [`PropertySet`] that decoding needs.
trait Absorb<'a> {
    fn absorb(&mut self, property: Property<'a>) -> Result<(), DecodeError>;
    fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool);
}

impl<'a, P: PropertySet<'a>> Absorb<'a> for P {
    fn absorb(&mut self, property: Property<'a>) -> Result<(), DecodeError> {
        PropertySet::absorb(self, property)
    }
    fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool) {
        PropertySet::attach_raw(self, raw, has_user, has_sub_ids);
    }
}

/// [`walk`] for any property set, compiled once.
#[cfg(mqtt_sansio_small)]
#[inline(never)]
fn decode_into<'a>(
    input: &'a [u8],
    set: &mut dyn Absorb<'a>,
) -> Result<&'a [u8], nom::Err<DecodeError>> {
    walk(input, set)
}

/// Reads a property length and hands every property it covers to `set`; returns the rest.
#[inline]
fn walk<'a, A: Absorb<'a> + ?Sized>(
    input: &'a [u8],
    set: &mut A,
) -> Result<&'a [u8], nom::Err<DecodeError>> {
    let (input, len) = wire::var_int(input)?;
    let (rest, block) = wire::take(input, len as usize)?;
    let (mut has_user, mut has_sub_ids) = (false, false);
    let mut i = block;
    while !i.is_empty() {
        let (r, property) = Property::decode(i)?;
        match property {
            Property::UserProperty(..) => has_user = true,
            Property::SubscriptionIdentifier(_) => has_sub_ids = true,
            _ => {}
        }
        set.absorb(property).map_err(nom::Err::Failure)?;
        i = r;
    }
    set.attach_raw(block, has_user, has_sub_ids);
    Ok(rest)
}

/// Length of the properties' content, without the length prefix.
#[cfg(not(mqtt_sansio_small))]
#[inline]
pub(crate) fn content_len<'a, P: PropertySet<'a>>(set: &P) -> Result<usize, EncodeError> {
    set.content_len()
}

/// Length of the properties' content, without the length prefix.
#[cfg(mqtt_sansio_small)]
pub(crate) fn content_len<'a, P: PropertySet<'a>>(set: &P) -> Result<usize, EncodeError> {
    let mut len = 0;
    let mut error = None;
    set.for_each(&mut |p| match p.encoded_len() {
        Ok(n) => len += n,
        Err(e) => error = Some(e),
    });
    match error {
        Some(e) => Err(e),
        None => Ok(len),
    }
}

/// Length of the properties including their length prefix.
pub(crate) fn block_len(content_len: usize) -> usize {
    wire::var_int_len(content_len) + content_len
}

/// Writes the length prefix and the properties.
#[cfg_attr(not(mqtt_sansio_small), inline)]
pub(crate) fn encode<'a, P: PropertySet<'a>>(set: &P, content_len: usize, w: &mut impl Write) {
    w.put_var_int(content_len);
    #[cfg(not(mqtt_sansio_small))]
    set.write(w);
    #[cfg(mqtt_sansio_small)]
    set.for_each(&mut |p| p.encode(w));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::finish;
    #[cfg(feature = "v5")]
    use crate::wire::SliceWriter;

    // Property blocks exist in 5.0 only: without `v5` they decode as empty.
    #[cfg(feature = "v5")]
    #[test]
    fn publish_properties_round_trip_with_repeats() {
        let users = [("a", "1"), ("a", "2")];
        let ids = [
            NonZeroU32::new(1).unwrap(),
            NonZeroU32::new(268_435_455).unwrap(),
        ];
        let props = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            topic_alias: NonZeroU16::new(3),
            response_topic: Some(TopicName::new("r/t").unwrap()),
            correlation_data: Some(b"xy"),
            content_type: Some("text/plain"),
            subscription_identifiers: Seq::from_slice(&ids),
            user_properties: Seq::from_slice(&users),
        };
        let len = content_len(&props).unwrap();
        let mut buf = [0u8; 128];
        let mut w = SliceWriter::new(&mut buf);
        encode(&props, len, &mut w);
        let written = w.position();
        assert_eq!(written, block_len(len));
        let decoded: PublishProperties<'_> = finish(decode(&buf[..written])).unwrap();
        assert_eq!(decoded, props);
        assert_eq!(decoded.user_properties.len(), 2);
        assert_eq!(decoded.subscription_identifiers.len(), 2);
    }

    #[test]
    fn repeated_property_is_a_protocol_error() {
        // message expiry twice
        let bytes = [10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
        let err = finish(decode::<PublishProperties<'_>>(&bytes)).unwrap_err();
        assert_eq!(err, DecodeError::DuplicateProperty(0x02));
        assert_eq!(err.reason_code(), crate::ReasonCode::ProtocolError);
    }

    #[test]
    fn subscription_identifier_may_repeat_in_publish_only() {
        let bytes = [4, 0x0B, 1, 0x0B, 2];
        assert!(finish(decode::<PublishProperties<'_>>(&bytes)).is_ok());
        assert_eq!(
            finish(decode::<SubscribeProperties<'_>>(&bytes)),
            Err(DecodeError::DuplicateProperty(0x0B))
        );
    }

    #[test]
    fn property_not_allowed_in_packet_is_malformed() {
        // Topic Alias in CONNACK
        let bytes = [3, 0x23, 0, 1];
        let err = finish(decode::<ConnAckProperties<'_>>(&bytes)).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::PropertyNotAllowed { id: 0x23, .. }
        ));
        assert_eq!(err.reason_code(), crate::ReasonCode::MalformedPacket);
    }

    #[test]
    fn unknown_property_is_malformed() {
        assert_eq!(
            finish(decode::<AckProperties<'_>>(&[2, 0x7F, 0])),
            Err(DecodeError::UnknownProperty(0x7F))
        );
    }

    #[test]
    fn zero_and_out_of_range_values_are_protocol_errors() {
        let cases: &[&[u8]] = &[
            &[3, 0x21, 0, 0],       // receive maximum 0
            &[5, 0x27, 0, 0, 0, 0], // maximum packet size 0
            &[2, 0x24, 2],          // maximum QoS 2
            &[2, 0x25, 7],          // retain available 7
        ];
        for bytes in cases {
            let err = finish(decode::<ConnAckProperties<'_>>(bytes)).unwrap_err();
            assert_eq!(
                err,
                DecodeError::InvalidPropertyValue(bytes[1]),
                "{bytes:?}"
            );
        }
        assert_eq!(
            finish(decode::<PublishProperties<'_>>(&[3, 0x23, 0, 0])),
            Err(DecodeError::InvalidPropertyValue(0x23))
        );
        assert_eq!(
            finish(decode::<PublishProperties<'_>>(&[2, 0x0B, 0])),
            Err(DecodeError::InvalidPropertyValue(0x0B))
        );
        assert_eq!(
            finish(decode::<PublishProperties<'_>>(&[2, 0x01, 2])),
            Err(DecodeError::InvalidPropertyValue(0x01))
        );
    }

    #[test]
    fn mqtt_3_3_2_14_response_topic_has_no_wildcards() {
        let bytes = [4, 0x08, 0, 1, b'#'];
        assert!(matches!(
            finish(decode::<PublishProperties<'_>>(&bytes)),
            Err(DecodeError::InvalidTopicName(_))
        ));
    }

    #[test]
    fn property_length_past_the_body_is_malformed() {
        assert_eq!(
            finish(decode::<AckProperties<'_>>(&[9, 0x1F, 0, 1])),
            Err(DecodeError::LengthMismatch)
        );
    }

    #[test]
    fn maximum_qos_2_cannot_be_encoded() {
        let props = ConnAckProperties {
            maximum_qos: Some(QoS::ExactlyOnce),
            ..Default::default()
        };
        assert!(matches!(
            content_len(&props),
            Err(EncodeError::ValueOutOfRange(_))
        ));
    }
}
