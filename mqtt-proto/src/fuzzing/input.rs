//! Builds packets from fuzzer bytes for the `roundtrip` target.
//!
//! The bytes are read front to back like `arbitrary::Unstructured`: running out is not an
//! error, every further read yields zero, so every input builds a packet (the minimal one when
//! empty). Strings and binary fields borrow from the input; a few selector values instead pick
//! long static fields, so the 65,535-byte field limit and every width of the remaining length
//! are reached with short inputs. The layout is:
//!
//! `version % 3`, `packet type % 15`, then the lists the packet needs, then its fields in
//! declaration order. 3.1 and 3.1.1 packets get properties (which the codec must refuse) only
//! when a third byte says so.

use core::num::{NonZeroU16, NonZeroU32};
use std::vec::Vec;

use crate::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    Disconnect, DisconnectProperties, Packet, PacketId, PacketType, ProtocolVersion, PubResponse,
    Publish, PublishProperties, QoS, QosPid, ReasonCode, RetainHandling, Seq, SubAck, Subscribe,
    SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, Will, WillProperties,
};

/// A string field one byte over the limit, cut to lengths around it.
static LONG: [u8; 65_540] = [b'a'; 65_540];

/// A payload long enough to need a four-byte remaining length.
static ZEROS: [u8; 2_097_200] = [0; 2_097_200];

/// Topic names worth trying that random bytes rarely spell.
const TOPICS: &[&str] = &[
    "a",
    "a/b",
    "/",
    "$SYS/uptime",
    "sensors/esp32/temp",
    "\u{FEFF}x",
];

/// Topic filters worth trying that random bytes rarely spell.
const FILTERS: &[&str] = &[
    "#",
    "+",
    "+/+",
    "a/+/b",
    "a/#",
    "/#",
    "$share/g/a/#",
    "$share/g/+",
    "$SYS/#",
    "$shared/a",
];

/// Builds the packet `data` describes and hands it to `f` with its version.
pub(super) fn with_packet<R>(data: &[u8], f: impl FnOnce(Packet<'_>, ProtocolVersion) -> R) -> R {
    let mut input = Input { data };
    let spec = Spec::read(&mut input);
    let lists = Lists::read(&mut input, &spec);
    let packet = build(&mut input, &spec, &lists);
    f(packet, spec.version)
}

/// What to build.
struct Spec {
    version: ProtocolVersion,
    packet_type: PacketType,
    /// Whether property sets are filled in (always in 5.0).
    properties: bool,
}

impl Spec {
    fn read(input: &mut Input<'_>) -> Self {
        let version = match input.below(3) {
            0 => ProtocolVersion::V3_1,
            1 => ProtocolVersion::V3_1_1,
            _ => ProtocolVersion::V5,
        };
        let packet_type = PacketType::from_u8(1 + input.below(15)).unwrap_or(PacketType::PingReq);
        let properties = version.is_v5() || input.below(16) == 15;
        Self {
            version,
            packet_type,
            properties,
        }
    }

    /// Whether 5.0 allows `code` in this packet, or the 3.1.1 packet can carry it.
    fn reason_allowed(&self, code: ReasonCode) -> bool {
        match (self.version.is_v5(), self.packet_type) {
            (true, t) => code.is_valid_for(t),
            (false, PacketType::ConnAck) => code.to_v3_connack().is_some(),
            (false, PacketType::SubAck) => code.is_valid_v3_suback(),
            (false, _) => code == ReasonCode::Success,
        }
    }
}

/// The lists a packet lends out through [`Seq::from_slice`].
#[derive(Default)]
struct Lists<'a> {
    /// User properties: CONNECT uses the second one for its will.
    user: [Vec<(&'a str, &'a str)>; 2],
    subscription_ids: Vec<NonZeroU32>,
    subscriptions: Vec<Subscription<'a>>,
    filters: Vec<TopicFilter<'a>>,
    reason_codes: Vec<ReasonCode>,
}

impl<'a> Lists<'a> {
    fn read(input: &mut Input<'a>, spec: &Spec) -> Self {
        let mut lists = Self::default();
        if spec.properties {
            let users = if spec.packet_type == PacketType::Connect {
                2
            } else {
                1
            };
            for user in &mut lists.user[..users] {
                *user = input.list(|i| (i.string(), i.string()));
            }
        }
        let v5 = spec.version.is_v5();
        match spec.packet_type {
            PacketType::Publish if spec.properties => {
                lists.subscription_ids = input.list(Input::subscription_id);
            }
            PacketType::Subscribe => {
                lists.subscriptions = input.nonempty_list(|i| Subscription {
                    filter: i.filter(),
                    options: i.subscription_options(v5),
                });
            }
            PacketType::Unsubscribe => lists.filters = input.nonempty_list(Input::filter),
            PacketType::SubAck => {
                lists.reason_codes = input.nonempty_list(|i| i.reason(spec));
            }
            // 3.1.1's UNSUBACK has no reason codes; try some only now and then.
            PacketType::UnsubAck if v5 || input.below(8) == 7 => {
                lists.reason_codes = input.nonempty_list(|i| i.reason(spec));
            }
            _ => {}
        }
        lists
    }
}

/// Builds the packet `spec` names from the rest of `input`.
fn build<'a: 'l, 'l>(input: &mut Input<'a>, spec: &Spec, lists: &'l Lists<'a>) -> Packet<'l> {
    use PacketType as T;
    let i = input;
    let t = spec.packet_type;
    match t {
        T::Connect => Packet::Connect(connect(i, spec, lists)),
        T::ConnAck => Packet::ConnAck(ConnAck {
            session_present: i.bool(),
            reason_code: i.reason(spec),
            properties: i.properties(spec, |i| i.connack_properties(&lists.user[0])),
        }),
        T::Publish => Packet::Publish(publish(i, spec, lists)),
        T::PubAck | T::PubRec | T::PubRel | T::PubComp => {
            let response = PubResponse {
                packet_id: i.packet_id(),
                reason_code: i.reason(spec),
                properties: i.properties(spec, |i| i.ack_properties(&lists.user[0])),
            };
            match t {
                T::PubAck => Packet::PubAck(response),
                T::PubRec => Packet::PubRec(response),
                T::PubRel => Packet::PubRel(response),
                _ => Packet::PubComp(response),
            }
        }
        T::Subscribe => Packet::Subscribe(Subscribe {
            packet_id: i.packet_id(),
            properties: i.properties(spec, |i| SubscribeProperties {
                subscription_identifier: i.opt(Input::subscription_id),
                user_properties: Seq::from_slice(&lists.user[0]),
            }),
            subscriptions: Seq::from_slice(&lists.subscriptions),
        }),
        T::SubAck => Packet::SubAck(SubAck {
            packet_id: i.packet_id(),
            properties: i.properties(spec, |i| i.ack_properties(&lists.user[0])),
            reason_codes: Seq::from_slice(&lists.reason_codes),
        }),
        T::Unsubscribe => Packet::Unsubscribe(Unsubscribe {
            packet_id: i.packet_id(),
            properties: i.properties(spec, |_| UnsubscribeProperties {
                user_properties: Seq::from_slice(&lists.user[0]),
            }),
            filters: Seq::from_slice(&lists.filters),
        }),
        T::UnsubAck => Packet::UnsubAck(UnsubAck {
            packet_id: i.packet_id(),
            properties: i.properties(spec, |i| i.ack_properties(&lists.user[0])),
            reason_codes: Seq::from_slice(&lists.reason_codes),
        }),
        T::PingReq => Packet::PingReq,
        T::PingResp => Packet::PingResp,
        T::Disconnect => Packet::Disconnect(Disconnect {
            reason_code: i.reason(spec),
            properties: i.properties(spec, |i| DisconnectProperties {
                session_expiry_interval: i.opt(Input::u32),
                reason_string: i.opt(Input::string),
                server_reference: i.opt(Input::string),
                user_properties: Seq::from_slice(&lists.user[0]),
            }),
        }),
        T::Auth => Packet::Auth(Auth {
            reason_code: i.reason(spec),
            properties: i.properties(spec, |i| AuthProperties {
                authentication_method: i.opt(Input::string),
                authentication_data: i.opt(Input::bytes),
                reason_string: i.opt(Input::string),
                user_properties: Seq::from_slice(&lists.user[0]),
            }),
        }),
    }
}

fn connect<'a: 'l, 'l>(i: &mut Input<'a>, spec: &Spec, lists: &'l Lists<'a>) -> Connect<'l> {
    Connect {
        protocol: spec.version,
        clean_start: i.bool(),
        keep_alive: i.u16(),
        properties: i.properties(spec, |i| ConnectProperties {
            session_expiry_interval: i.opt(Input::u32),
            receive_maximum: i.opt(Input::nonzero_u16),
            maximum_packet_size: i.opt(Input::nonzero_u32),
            topic_alias_maximum: i.opt(Input::u16),
            request_response_information: i.opt(Input::bool),
            request_problem_information: i.opt(Input::bool),
            authentication_method: i.opt(Input::string),
            authentication_data: i.opt(Input::bytes),
            user_properties: Seq::from_slice(&lists.user[0]),
        }),
        client_id: i.string(),
        will: i.opt(|i| Will {
            topic: i.topic_name(),
            payload: i.payload(),
            qos: i.qos(),
            retain: i.bool(),
            properties: i.properties(spec, |i| WillProperties {
                will_delay_interval: i.opt(Input::u32),
                payload_format_indicator: i.opt(Input::bool),
                message_expiry_interval: i.opt(Input::u32),
                content_type: i.opt(Input::string),
                response_topic: i.opt(Input::topic_name),
                correlation_data: i.opt(Input::bytes),
                user_properties: Seq::from_slice(&lists.user[1]),
            }),
        }),
        username: i.opt(Input::string),
        password: i.opt(Input::bytes),
    }
}

fn publish<'a: 'l, 'l>(i: &mut Input<'a>, spec: &Spec, lists: &'l Lists<'a>) -> Publish<'l> {
    let flags = i.byte();
    let qos_pid = match flags & 3 {
        0 => QosPid::AtMostOnce,
        1 => QosPid::AtLeastOnce(i.packet_id()),
        _ => QosPid::ExactlyOnce(i.packet_id()),
    };
    Publish {
        dup: flags & 4 != 0,
        qos_pid,
        retain: flags & 8 != 0,
        topic: i.topic_name(),
        properties: i.properties(spec, |i| PublishProperties {
            payload_format_indicator: i.opt(Input::bool),
            message_expiry_interval: i.opt(Input::u32),
            topic_alias: i.opt(Input::nonzero_u16),
            response_topic: i.opt(Input::topic_name),
            correlation_data: i.opt(Input::bytes),
            content_type: i.opt(Input::string),
            subscription_identifiers: Seq::from_slice(&lists.subscription_ids),
            user_properties: Seq::from_slice(&lists.user[0]),
        }),
        payload: i.payload(),
    }
}

/// The fuzzer's bytes, read from the front.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        first
    }

    fn below(&mut self, n: u8) -> u8 {
        self.byte() % n
    }

    fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn nonzero_u16(&mut self) -> NonZeroU16 {
        NonZeroU16::new(self.u16()).unwrap_or(NonZeroU16::MIN)
    }

    fn nonzero_u32(&mut self) -> NonZeroU32 {
        NonZeroU32::new(self.u32()).unwrap_or(NonZeroU32::MIN)
    }

    fn packet_id(&mut self) -> PacketId {
        PacketId::new(self.u16()).unwrap_or(PacketId::MIN)
    }

    fn qos(&mut self) -> QoS {
        QoS::from_u8(self.below(3)).unwrap_or_default()
    }

    /// `Some` of `f`'s value when the next byte is odd.
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.bool() {
            Some(f(self))
        } else {
            None
        }
    }

    /// A property set built by `f`, or the empty one when the packet gets no properties.
    fn properties<P: Default>(&mut self, spec: &Spec, f: impl FnOnce(&mut Self) -> P) -> P {
        if spec.properties {
            f(self)
        } else {
            P::default()
        }
    }

    /// Zero to four elements.
    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = self.below(5);
        (0..n).map(|_| f(self)).collect()
    }

    /// One to four elements, or (one time in five) none.
    fn nonempty_list<T>(&mut self, mut f: impl FnMut(&mut Self) -> T) -> Vec<T> {
        let n = (self.below(5) + 1) % 5;
        (0..n).map(|_| f(self)).collect()
    }

    /// Up to `len` bytes of the input.
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// A binary field: mostly short, sometimes up to 504 bytes, and sometimes a static one
    /// around the 65,535-byte limit.
    fn bytes(&mut self) -> &'a [u8] {
        match self.byte() {
            0xFF => &LONG[..65_532 + usize::from(self.below(8))],
            selector @ 0xC0.. => self.take(usize::from(selector - 0xC0) * 8),
            selector => self.take(usize::from(selector % 24)),
        }
    }

    /// A string field: [`Input::bytes`] cut to its longest valid UTF-8 prefix (U+0000 stays,
    /// for the codec to refuse).
    fn string(&mut self) -> &'a str {
        let bytes = self.bytes();
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    /// A payload: up to 508 bytes of input, or zeros around a remaining-length width.
    fn payload(&mut self) -> &'a [u8] {
        match self.byte() {
            0xFF => {
                let widths = [127, 16_383, 2_097_151];
                let base = widths[usize::from(self.below(3))];
                &ZEROS[..base - 16 + usize::from(self.below(32))]
            }
            selector => self.take(usize::from(selector) * 2),
        }
    }

    /// A valid topic name, or (one time in sixteen) [`TopicName::EMPTY`].
    fn topic_name(&mut self) -> TopicName<'a> {
        let name = match self.below(16) {
            15 => return TopicName::EMPTY,
            1 | 2 => TOPICS[usize::from(self.byte()) % TOPICS.len()],
            _ => self.string(),
        };
        TopicName::new(name)
            .or_else(|_| TopicName::new("t"))
            .unwrap_or(TopicName::EMPTY)
    }

    /// A valid topic filter (an invalid one cannot be built).
    fn filter(&mut self) -> TopicFilter<'a> {
        let filter = match self.below(16) {
            1..=4 => FILTERS[usize::from(self.byte()) % FILTERS.len()],
            _ => self.string(),
        };
        TopicFilter::new(filter)
            .or_else(|_| TopicFilter::new(self.topic_name().as_str()))
            // "t" is a valid filter, so this cannot fail.
            .or_else(|_| TopicFilter::new("t"))
            .expect("\"t\" is a valid topic filter")
    }

    fn subscription_options(&mut self, v5: bool) -> SubscriptionOptions {
        let byte = self.byte();
        // 3.1.1 has the QoS only; try the other options (refused) now and then.
        let byte = if v5 || byte & 0x80 != 0 {
            byte
        } else {
            byte & 3
        };
        SubscriptionOptions {
            qos: QoS::from_u8(byte & 3).unwrap_or(QoS::ExactlyOnce),
            no_local: byte & 4 != 0,
            retain_as_published: byte & 8 != 0,
            retain_handling: match (byte >> 4) & 3 {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendIfNew,
                _ => RetainHandling::DoNotSend,
            },
        }
    }

    /// A subscription identifier: small, 16-bit, up to the 268,435,455 limit, or any (refused
    /// above the limit).
    fn subscription_id(&mut self) -> NonZeroU32 {
        let value = match self.below(4) {
            0 => u32::from(self.byte()),
            1 => u32::from(self.u16()),
            // Up to 268,435,455, the largest a variable byte integer holds.
            2 => self.u32() >> 4,
            _ => self.u32(),
        };
        NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
    }

    /// A reason code this packet allows, or (when the selector's high bit is set) any.
    fn reason(&mut self, spec: &Spec) -> ReasonCode {
        let selector = self.byte();
        let any = selector & 0x80 != 0;
        let pool = || {
            (0..=u8::MAX)
                .filter_map(ReasonCode::from_u8)
                .filter(move |&code| any || spec.reason_allowed(code))
        };
        let count = pool().count().max(1);
        pool()
            .nth(usize::from(selector & 0x7F) % count)
            .unwrap_or(ReasonCode::Success)
    }

    fn connack_properties<'l>(&mut self, user: &'l [(&'a str, &'a str)]) -> ConnAckProperties<'l>
    where
        'a: 'l,
    {
        ConnAckProperties {
            session_expiry_interval: self.opt(Self::u32),
            receive_maximum: self.opt(Self::nonzero_u16),
            maximum_qos: self.opt(Self::qos),
            retain_available: self.opt(Self::bool),
            maximum_packet_size: self.opt(Self::nonzero_u32),
            assigned_client_identifier: self.opt(Self::string),
            topic_alias_maximum: self.opt(Self::u16),
            reason_string: self.opt(Self::string),
            wildcard_subscription_available: self.opt(Self::bool),
            subscription_identifier_available: self.opt(Self::bool),
            shared_subscription_available: self.opt(Self::bool),
            server_keep_alive: self.opt(Self::u16),
            response_information: self.opt(Self::string),
            server_reference: self.opt(Self::string),
            authentication_method: self.opt(Self::string),
            authentication_data: self.opt(Self::bytes),
            user_properties: Seq::from_slice(user),
        }
    }

    fn ack_properties<'l>(&mut self, user: &'l [(&'a str, &'a str)]) -> AckProperties<'l>
    where
        'a: 'l,
    {
        AckProperties {
            reason_string: self.opt(Self::string),
            user_properties: Seq::from_slice(user),
        }
    }
}
