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
// The encoder compiled for size writes values through the kind table instead.
#[cfg_attr(mqtt_sansio_small, allow(dead_code))]
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

/// Property identifiers, named as the [`Property`] variants are.
#[allow(non_upper_case_globals)]
mod ids {
    pub(crate) const PayloadFormatIndicator: u8 = 0x01;
    pub(crate) const MessageExpiryInterval: u8 = 0x02;
    pub(crate) const ContentType: u8 = 0x03;
    pub(crate) const ResponseTopic: u8 = 0x08;
    pub(crate) const CorrelationData: u8 = 0x09;
    pub(crate) const SubscriptionIdentifier: u8 = 0x0B;
    pub(crate) const SessionExpiryInterval: u8 = 0x11;
    pub(crate) const AssignedClientIdentifier: u8 = 0x12;
    pub(crate) const ServerKeepAlive: u8 = 0x13;
    pub(crate) const AuthenticationMethod: u8 = 0x15;
    pub(crate) const AuthenticationData: u8 = 0x16;
    pub(crate) const RequestProblemInformation: u8 = 0x17;
    pub(crate) const WillDelayInterval: u8 = 0x18;
    pub(crate) const RequestResponseInformation: u8 = 0x19;
    pub(crate) const ResponseInformation: u8 = 0x1A;
    pub(crate) const ServerReference: u8 = 0x1C;
    pub(crate) const ReasonString: u8 = 0x1F;
    pub(crate) const ReceiveMaximum: u8 = 0x21;
    pub(crate) const TopicAliasMaximum: u8 = 0x22;
    pub(crate) const TopicAlias: u8 = 0x23;
    pub(crate) const MaximumQoS: u8 = 0x24;
    pub(crate) const RetainAvailable: u8 = 0x25;
    pub(crate) const UserProperty: u8 = 0x26;
    pub(crate) const MaximumPacketSize: u8 = 0x27;
    pub(crate) const WildcardSubscriptionAvailable: u8 = 0x28;
    pub(crate) const SubscriptionIdentifierAvailable: u8 = 0x29;
    pub(crate) const SharedSubscriptionAvailable: u8 = 0x2A;
}

/// How a property's value is written on the wire, and what it must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Not a property identifier.
    Unknown,
    /// A byte that may only be 0 or 1; anything else is a protocol error.
    Flag,
    /// A two-byte integer.
    U16,
    /// A two-byte integer that may not be 0.
    NonZeroU16,
    /// A four-byte integer.
    U32,
    /// A four-byte integer that may not be 0.
    NonZeroU32,
    /// A variable byte integer that may not be 0.
    NonZeroVarInt,
    /// A UTF-8 string.
    Str,
    /// A UTF-8 string that is a topic name.
    Topic,
    /// Binary data.
    Bin,
    /// A UTF-8 string pair.
    Pair,
}

/// The value kind of every property identifier (the table the decoder reads); identifiers
/// past its end are unknown.
const KINDS: [Kind; 0x2B] = {
    let mut k = [Kind::Unknown; 0x2B];
    k[ids::PayloadFormatIndicator as usize] = Kind::Flag;
    k[ids::MessageExpiryInterval as usize] = Kind::U32;
    k[ids::ContentType as usize] = Kind::Str;
    // The Response Topic is a topic name: no wildcards [MQTT-3.3.2-14], not empty
    // [MQTT-4.7.3-1]
    k[ids::ResponseTopic as usize] = Kind::Topic;
    k[ids::CorrelationData as usize] = Kind::Bin;
    // A subscription identifier of 0 is a protocol error (3.8.2.1.2, 3.3.2.3.8; no
    // conformance id)
    k[ids::SubscriptionIdentifier as usize] = Kind::NonZeroVarInt;
    k[ids::SessionExpiryInterval as usize] = Kind::U32;
    k[ids::AssignedClientIdentifier as usize] = Kind::Str;
    k[ids::ServerKeepAlive as usize] = Kind::U16;
    k[ids::AuthenticationMethod as usize] = Kind::Str;
    k[ids::AuthenticationData as usize] = Kind::Bin;
    k[ids::RequestProblemInformation as usize] = Kind::Flag;
    k[ids::WillDelayInterval as usize] = Kind::U32;
    k[ids::RequestResponseInformation as usize] = Kind::Flag;
    k[ids::ResponseInformation as usize] = Kind::Str;
    k[ids::ServerReference as usize] = Kind::Str;
    k[ids::ReasonString as usize] = Kind::Str;
    // Receive Maximum of 0 is a protocol error (3.1.2.11.3, 3.2.2.3.3; no conformance id)
    k[ids::ReceiveMaximum as usize] = Kind::NonZeroU16;
    k[ids::TopicAliasMaximum as usize] = Kind::U16;
    // [MQTT-3.3.2-8] a Topic Alias of 0 is not permitted
    k[ids::TopicAlias as usize] = Kind::NonZeroU16;
    // Maximum QoS is 0 or 1
    k[ids::MaximumQoS as usize] = Kind::Flag;
    k[ids::RetainAvailable as usize] = Kind::Flag;
    k[ids::UserProperty as usize] = Kind::Pair;
    // 3.1.2.11.4: a Maximum Packet Size of 0 is a protocol error
    k[ids::MaximumPacketSize as usize] = Kind::NonZeroU32;
    k[ids::WildcardSubscriptionAvailable as usize] = Kind::Flag;
    k[ids::SubscriptionIdentifierAvailable as usize] = Kind::Flag;
    k[ids::SharedSubscriptionAvailable as usize] = Kind::Flag;
    k
};

/// A decoded property value, checked against its identifier's [`Kind`]; the property set
/// that takes it turns it into its field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// A flag, an integer or a variable byte integer.
    Num(u32),
    /// A UTF-8 string (a validated topic name for a Response Topic).
    Str(&'a str),
    /// Binary data.
    Bin(&'a [u8]),
    /// A UTF-8 string pair.
    Pair(&'a str, &'a str),
}

/// Reads one property: its identifier, then a value of the identifier's kind (one arm per
/// kind, not per property).
fn decode_one(input: &[u8]) -> IResult<'_, (u8, Value<'_>)> {
    let (i, raw_id) = wire::var_int(input)?;
    let kind = KINDS.get(raw_id as usize).copied().unwrap_or(Kind::Unknown);
    // Every known identifier is below 0x2B, so it fits in a byte.
    let id = raw_id as u8;
    let (i, value) = match kind {
        Kind::Unknown => return fail(DecodeError::UnknownProperty(raw_id)),
        Kind::Flag => {
            let (i, v) = wire::u8(i)?;
            if v > 1 {
                return fail(DecodeError::InvalidPropertyValue(id));
            }
            (i, Value::Num(v.into()))
        }
        Kind::U16 | Kind::NonZeroU16 => wire::u16(i).map(|(i, v)| (i, Value::Num(v.into())))?,
        Kind::U32 | Kind::NonZeroU32 => wire::u32(i).map(|(i, v)| (i, Value::Num(v)))?,
        Kind::NonZeroVarInt => wire::var_int(i).map(|(i, v)| (i, Value::Num(v)))?,
        Kind::Str | Kind::Topic => {
            let (i, s) = wire::string(i)?;
            if kind == Kind::Topic {
                if let Err(e) = TopicName::new(s) {
                    return fail(DecodeError::InvalidTopicName(e));
                }
            }
            (i, Value::Str(s))
        }
        Kind::Bin => wire::binary(i).map(|(i, v)| (i, Value::Bin(v)))?,
        Kind::Pair => {
            let (i, name) = wire::string(i)?;
            let (i, value) = wire::string(i)?;
            (i, Value::Pair(name, value))
        }
    };
    let nonzero = matches!(
        kind,
        Kind::NonZeroU16 | Kind::NonZeroU32 | Kind::NonZeroVarInt
    );
    if nonzero && value == Value::Num(0) {
        return fail(DecodeError::InvalidPropertyValue(id));
    }
    Ok((i, (id, value)))
}

/// A field type of a property set, made from the [`Value`] its property's [`Kind`] decodes to.
pub(crate) trait FromValue<'a>: Sized {
    /// The field's value; `None` only when the kind does not fit the field (which the table
    /// rules out).
    fn from_value(value: Value<'a>) -> Option<Self>;
}

impl FromValue<'_> for bool {
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Num(n) => Some(n != 0),
            _ => None,
        }
    }
}

impl FromValue<'_> for QoS {
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Num(0) => Some(QoS::AtMostOnce),
            Value::Num(_) => Some(QoS::AtLeastOnce),
            _ => None,
        }
    }
}

impl FromValue<'_> for u16 {
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Num(n) => u16::try_from(n).ok(),
            _ => None,
        }
    }
}

impl FromValue<'_> for NonZeroU16 {
    fn from_value(value: Value<'_>) -> Option<Self> {
        NonZeroU16::new(u16::from_value(value)?)
    }
}

impl FromValue<'_> for u32 {
    fn from_value(value: Value<'_>) -> Option<Self> {
        match value {
            Value::Num(n) => Some(n),
            _ => None,
        }
    }
}

impl FromValue<'_> for NonZeroU32 {
    fn from_value(value: Value<'_>) -> Option<Self> {
        NonZeroU32::new(u32::from_value(value)?)
    }
}

impl<'a> FromValue<'a> for &'a str {
    fn from_value(value: Value<'a>) -> Option<Self> {
        match value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> FromValue<'a> for TopicName<'a> {
    fn from_value(value: Value<'a>) -> Option<Self> {
        // `decode_one` validated a Response Topic as a topic name.
        <&str>::from_value(value).map(TopicName::from_validated)
    }
}

impl<'a> FromValue<'a> for &'a [u8] {
    fn from_value(value: Value<'a>) -> Option<Self> {
        match value {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }
}

/// A field type of a property set, turned into the [`Value`] its property's [`Kind`] writes:
/// the inverse of [`FromValue`]. The encoder compiled for size takes this path, so that one
/// arm per kind, not per property, sizes and writes a property.
#[cfg(any(test, mqtt_sansio_small))]
pub(crate) trait ToValue<'a> {
    /// The field's value.
    fn to_value(self) -> Value<'a>;
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for bool {
    fn to_value(self) -> Value<'static> {
        Value::Num(self.into())
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for QoS {
    fn to_value(self) -> Value<'static> {
        // 2 (Exactly Once) is refused by `value_len`: Maximum QoS is 0 or 1.
        Value::Num(self as u32)
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for u16 {
    fn to_value(self) -> Value<'static> {
        Value::Num(self.into())
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for NonZeroU16 {
    fn to_value(self) -> Value<'static> {
        Value::Num(self.get().into())
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for u32 {
    fn to_value(self) -> Value<'static> {
        Value::Num(self)
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl ToValue<'_> for NonZeroU32 {
    fn to_value(self) -> Value<'static> {
        Value::Num(self.get())
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl<'a> ToValue<'a> for &'a str {
    fn to_value(self) -> Value<'a> {
        Value::Str(self)
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl<'a> ToValue<'a> for TopicName<'a> {
    fn to_value(self) -> Value<'a> {
        Value::Str(self.as_str())
    }
}

#[cfg(any(test, mqtt_sansio_small))]
impl<'a> ToValue<'a> for &'a [u8] {
    fn to_value(self) -> Value<'a> {
        Value::Bin(self)
    }
}

/// The kind of property `id`, from the table.
#[cfg(any(test, mqtt_sansio_small))]
fn kind_of(id: u8) -> Kind {
    KINDS.get(usize::from(id)).copied().unwrap_or(Kind::Unknown)
}

/// Encoded size of property `id` with `value`, identifier byte included; checks what cannot
/// be encoded, as [`Property::encoded_len`] does.
#[cfg(any(test, mqtt_sansio_small))]
pub(crate) fn value_len(id: u8, value: Value<'_>) -> Result<usize, EncodeError> {
    let len = match (kind_of(id), value) {
        (Kind::Flag, Value::Num(n)) => {
            if id == ids::MaximumQoS && n > 1 {
                return Err(EncodeError::ValueOutOfRange("Maximum QoS is 0 or 1"));
            }
            1
        }
        (Kind::U16 | Kind::NonZeroU16, _) => 2,
        (Kind::U32 | Kind::NonZeroU32, _) => 4,
        (Kind::NonZeroVarInt, Value::Num(n)) => {
            if n > MAX_REMAINING_LENGTH {
                return Err(EncodeError::ValueOutOfRange(
                    "subscription identifier above 268,435,455",
                ));
            }
            wire::var_int_len(n as usize)
        }
        // [MQTT-3.3.2-13] the Response Topic is a topic name, so not empty
        (Kind::Topic, Value::Str("")) => {
            return Err(EncodeError::ValueOutOfRange("empty Response Topic"));
        }
        (_, Value::Str(s)) => wire::string_len(s)?,
        (_, Value::Bin(b)) => wire::binary_len(b)?,
        (_, Value::Pair(k, v)) => wire::string_len(k)? + wire::string_len(v)?,
        // The property sets hand only values of their identifier's kind.
        (_, Value::Num(_)) => 0,
    };
    Ok(1 + len)
}

/// Writes property `id` with `value`; [`value_len`] has validated it.
#[cfg(any(test, mqtt_sansio_small))]
pub(crate) fn encode_value(id: u8, value: Value<'_>, w: &mut impl Write) {
    w.put_u8(id);
    match (kind_of(id), value) {
        (Kind::Flag, Value::Num(n)) => w.put_u8(n as u8),
        (Kind::U16 | Kind::NonZeroU16, Value::Num(n)) => w.put_u16(n as u16),
        (Kind::NonZeroVarInt, Value::Num(n)) => w.put_var_int(n as usize),
        (_, Value::Num(n)) => w.put_u32(n),
        (_, Value::Str(s)) => w.put_string(s),
        (_, Value::Bin(b)) => w.put_binary(b),
        (_, Value::Pair(k, v)) => {
            w.put_string(k);
            w.put_string(v);
        }
    }
}

#[cfg_attr(mqtt_sansio_small, allow(dead_code))]
impl<'a> Property<'a> {
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    pub(crate) const fn id(&self) -> u8 {
        match self {
            Self::PayloadFormatIndicator(_) => ids::PayloadFormatIndicator,
            Self::MessageExpiryInterval(_) => ids::MessageExpiryInterval,
            Self::ContentType(_) => ids::ContentType,
            Self::ResponseTopic(_) => ids::ResponseTopic,
            Self::CorrelationData(_) => ids::CorrelationData,
            Self::SubscriptionIdentifier(_) => ids::SubscriptionIdentifier,
            Self::SessionExpiryInterval(_) => ids::SessionExpiryInterval,
            Self::AssignedClientIdentifier(_) => ids::AssignedClientIdentifier,
            Self::ServerKeepAlive(_) => ids::ServerKeepAlive,
            Self::AuthenticationMethod(_) => ids::AuthenticationMethod,
            Self::AuthenticationData(_) => ids::AuthenticationData,
            Self::RequestProblemInformation(_) => ids::RequestProblemInformation,
            Self::WillDelayInterval(_) => ids::WillDelayInterval,
            Self::RequestResponseInformation(_) => ids::RequestResponseInformation,
            Self::ResponseInformation(_) => ids::ResponseInformation,
            Self::ServerReference(_) => ids::ServerReference,
            Self::ReasonString(_) => ids::ReasonString,
            Self::ReceiveMaximum(_) => ids::ReceiveMaximum,
            Self::TopicAliasMaximum(_) => ids::TopicAliasMaximum,
            Self::TopicAlias(_) => ids::TopicAlias,
            Self::MaximumQoS(_) => ids::MaximumQoS,
            Self::RetainAvailable(_) => ids::RetainAvailable,
            Self::UserProperty(..) => ids::UserProperty,
            Self::MaximumPacketSize(_) => ids::MaximumPacketSize,
            Self::WildcardSubscriptionAvailable(_) => ids::WildcardSubscriptionAvailable,
            Self::SubscriptionIdentifierAvailable(_) => ids::SubscriptionIdentifierAvailable,
            Self::SharedSubscriptionAvailable(_) => ids::SharedSubscriptionAvailable,
        }
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
            let (rest, (_, value)) = decode_one(raw).ok()?;
            *raw = rest;
            if let Value::Pair(name, value) = value {
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
            let (rest, (id, value)) = decode_one(raw).ok()?;
            *raw = rest;
            if id == ids::SubscriptionIdentifier {
                return NonZeroU32::from_value(value);
            }
        }
        None
    }
}

/// What every per-packet property set does; the decode and encode loops are written once
/// against it.
pub(crate) trait PropertySet<'a>: Default {
    /// Takes one decoded property, refusing ones this packet may not carry and repeats.
    fn absorb(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError>;
    /// Points the repeatable properties at the validated block they were seen in.
    fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool);
    /// Visits every property to encode, in a fixed order, through a `dyn` closure: each
    /// property set has one copy of this function instead of one per caller, which halves the
    /// flash the property code takes on a microcontroller. The encoder takes this path when the
    /// crate is compiled for size (`cfg(mqtt_sansio_small)`, see `build.rs`).
    #[cfg(any(test, mqtt_sansio_small))]
    fn for_each(&self, f: &mut dyn FnMut(u8, Value<'a>));

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

/// Stores a property in its field, once: one copy per field type, shared by every set.
fn set_once<'a, T: FromValue<'a>>(
    slot: &mut Option<T>,
    value: Value<'a>,
    id: u8,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        // Properties other than User Property and (in PUBLISH) Subscription Identifier are a
        // protocol error when included more than once (each property's definition; no
        // conformance id)
        return Err(DecodeError::DuplicateProperty(id));
    }
    *slot = Some(T::from_value(value).ok_or(DecodeError::InvalidPropertyValue(id))?);
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
            #[allow(unused_variables)]
            fn absorb(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError> {
                match id {
                    $( ids::$variant => set_once(&mut self.$field, value, id), )*
                    $( ids::$rvariant => Ok(()), )?
                    ids::UserProperty => Ok(()),
                    _ => Err(DecodeError::PropertyNotAllowed {
                        id,
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

            #[cfg(any(test, mqtt_sansio_small))]
            fn for_each(&self, f: &mut dyn FnMut(u8, Value<'a>)) {
                $( if let Some(v) = self.$field {
                    f(ids::$variant, v.to_value());
                } )*
                $( for id in self.$rfield.iter() {
                    f(ids::$rvariant, id.to_value());
                } )?
                for (name, value) in self.user_properties.iter() {
                    f(ids::UserProperty, Value::Pair(name, value));
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
    fn absorb(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError>;
    fn attach_raw(&mut self, raw: &'a [u8], has_user: bool, has_sub_ids: bool);
}

impl<'a, P: PropertySet<'a>> Absorb<'a> for P {
    fn absorb(&mut self, id: u8, value: Value<'a>) -> Result<(), DecodeError> {
        PropertySet::absorb(self, id, value)
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
        let (r, (id, value)) = decode_one(i)?;
        has_user |= id == ids::UserProperty;
        has_sub_ids |= id == ids::SubscriptionIdentifier;
        set.absorb(id, value).map_err(nom::Err::Failure)?;
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
    set.for_each(&mut |id, value| match value_len(id, value) {
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
    set.for_each(&mut |id, value| encode_value(id, value, w));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::finish;
    #[cfg(feature = "v5")]
    use crate::wire::SliceWriter;

    /// The table-driven encoder (the one compiled for size) against the one per property
    /// (compiled for speed): same bytes, same lengths, same errors.
    #[cfg(feature = "v5")]
    fn both_encoders_agree<'a, P: PropertySet<'a>>(set: &P) {
        let mut table_len = Ok(0);
        set.for_each(&mut |id, value| {
            if let Ok(len) = table_len {
                table_len = value_len(id, value).map(|n| len + n);
            }
        });
        assert_eq!(table_len, set.content_len());
        let Ok(len) = table_len else { return };
        let (mut a, mut b) = ([0u8; 256], [0u8; 256]);
        let mut w = SliceWriter::new(&mut a);
        set.for_each(&mut |id, value| encode_value(id, value, &mut w));
        let n = w.position();
        assert_eq!(n, len);
        let mut w = SliceWriter::new(&mut b);
        set.write(&mut w);
        assert_eq!(w.position(), len);
        assert_eq!(a[..n], b[..n]);
    }

    #[cfg(feature = "v5")]
    #[test]
    fn table_encoder_matches_the_per_property_one() {
        let users = [("a", "1"), ("", "ü")];
        let ids = [
            NonZeroU32::new(1).unwrap(),
            NonZeroU32::new(268_435_455).unwrap(),
        ];
        let mut publish = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            topic_alias: NonZeroU16::new(3),
            response_topic: Some(TopicName::new("r/t").unwrap()),
            correlation_data: Some(b"xy"),
            content_type: Some("text/plain"),
            subscription_identifiers: Seq::from_slice(&ids),
            user_properties: Seq::from_slice(&users),
        };
        both_encoders_agree(&publish);
        publish.response_topic = Some(TopicName::from_validated(""));
        both_encoders_agree(&publish);
        let mut connack = ConnAckProperties {
            session_expiry_interval: Some(u32::MAX),
            receive_maximum: NonZeroU16::new(65_535),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: NonZeroU32::new(70_000),
            assigned_client_identifier: Some("id"),
            topic_alias_maximum: Some(0),
            reason_string: Some(""),
            wildcard_subscription_available: Some(true),
            subscription_identifier_available: Some(false),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(300),
            response_information: Some("ri"),
            server_reference: Some("host"),
            authentication_method: Some("SCRAM"),
            authentication_data: Some(&[0, 1, 2]),
            user_properties: Seq::from_slice(&users),
        };
        both_encoders_agree(&connack);
        connack.maximum_qos = Some(QoS::ExactlyOnce);
        both_encoders_agree(&connack);
        let big = [NonZeroU32::new(268_435_456).unwrap()];
        publish.response_topic = None;
        publish.subscription_identifiers = Seq::from_slice(&big);
        both_encoders_agree(&publish);
        both_encoders_agree(&ConnectProperties {
            request_response_information: Some(true),
            request_problem_information: Some(false),
            ..ConnectProperties::default()
        });
        both_encoders_agree(&WillProperties {
            will_delay_interval: Some(5),
            ..WillProperties::default()
        });
    }

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
