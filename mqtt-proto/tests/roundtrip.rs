//! Property tests: arbitrary valid packets of every type and version round-trip through
//! `encode` and `decode`; `encode` writes exactly `encoded_len()` bytes; arbitrary and mutated
//! bytes never panic the decoder; a stream of packets split anywhere decodes the same.
//!
//! Strategies build `Packet<'static>` values whose strings and slices are leaked: a few
//! kilobytes per test run, in exchange for packets that need no owner beside them.

use std::num::{NonZeroU16, NonZeroU32};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

use mqtt_sansio::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    Decoded, Disconnect, DisconnectProperties, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, QosPid, ReasonCode,
    RetainHandling, Seq, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, UserProperties, Will,
    WillProperties, MAX_REMAINING_LENGTH,
};

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;

// ---------------------------------------------------------------------------------------------
// Leaf strategies
// ---------------------------------------------------------------------------------------------

fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(vec![V31, V311, V5])
}

/// Any character a UTF-8 string field may hold (no U+0000; `char` has no surrogates).
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => select(vec!['a', 'Z', '0', '/', ' ', '$', '+', '#', 'é', '\u{FEFF}', '😀']),
        1 => any::<char>().prop_filter("U+0000", |c| *c != '\0'),
    ]
}

fn string() -> impl Strategy<Value = &'static str> {
    vec(text_char(), 0..8).prop_map(|c| leak_str(c.into_iter().collect()))
}

fn binary() -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..8).prop_map(leak)
}

fn payload() -> impl Strategy<Value = &'static [u8]> {
    vec(any::<u8>(), 0..48).prop_map(leak)
}

/// A topic level without separators or wildcards.
fn level() -> impl Strategy<Value = String> {
    vec(
        text_char().prop_filter("level", |c| !matches!(c, '/' | '+' | '#')),
        0..5,
    )
    .prop_map(|c| c.into_iter().collect())
}

fn topic_name() -> impl Strategy<Value = TopicName<'static>> {
    vec(level(), 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter_map("not a topic name", |s| TopicName::new(leak_str(s)).ok())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter<'static>> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
    let share = option::weighted(0.2, level());
    (share, vec(filter_level, 1..4), any::<bool>())
        .prop_map(|(share, levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f = if f.is_empty() {
                    "#".to_owned()
                } else {
                    f + "/#"
                };
            }
            match share {
                Some(name) => format!("$share/{name}/{f}"),
                None => f,
            }
        })
        .prop_filter_map("not a topic filter", |s| TopicFilter::new(leak_str(s)).ok())
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).unwrap())
}

fn nonzero_u16() -> impl Strategy<Value = NonZeroU16> {
    (1..=u16::MAX).prop_map(|v| NonZeroU16::new(v).unwrap())
}

fn nonzero_u32() -> impl Strategy<Value = NonZeroU32> {
    (1..=u32::MAX).prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn subscription_id() -> impl Strategy<Value = NonZeroU32> {
    prop_oneof![
        (1..=MAX_REMAINING_LENGTH),
        select(vec![127, 128, 16_383, 16_384, MAX_REMAINING_LENGTH]),
    ]
    .prop_map(|v| NonZeroU32::new(v).unwrap())
}

fn users() -> impl Strategy<Value = UserProperties<'static>> {
    vec((string(), string()), 0..3).prop_map(|u| Seq::from_slice(leak(u)))
}

fn reason(codes: &[u8]) -> impl Strategy<Value = ReasonCode> {
    select(codes.to_vec()).prop_map(|c| ReasonCode::from_u8(c).unwrap())
}

// The 5.0 reason code tables (Tables 3-1, 3-4 to 3-10, 3-13).
const CONNACK_CODES: &[u8] = &[
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C, 0x90, 0x95, 0x97,
    0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F,
];
const PUBACK_CODES: &[u8] = &[0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99];
const PUBREL_CODES: &[u8] = &[0x00, 0x92];
const SUBACK_CODES: &[u8] = &[
    0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2,
];
const UNSUBACK_CODES: &[u8] = &[0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91];
const DISCONNECT_CODES: &[u8] = &[
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94, 0x95,
    0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
];
const AUTH_CODES: &[u8] = &[0x00, 0x18, 0x19];
/// 3.1.1 CONNACK return codes 0 to 5, as their 5.0 equivalents.
const V3_CONNACK_CODES: &[u8] = &[0x00, 0x84, 0x85, 0x88, 0x86, 0x87];
const V3_SUBACK_CODES: &[u8] = &[0x00, 0x01, 0x02, 0x80];

// ---------------------------------------------------------------------------------------------
// Property sets (5.0 only; 3.x packets get the empty defaults)
// ---------------------------------------------------------------------------------------------

fn connect_properties() -> impl Strategy<Value = ConnectProperties<'static>> {
    (
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(nonzero_u32()),
        option::of(any::<u16>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(string()),
        option::of(binary()),
        users(),
    )
        .prop_map(
            |(sei, rm, mps, tam, rri, rpi, am, ad, users)| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                authentication_method: am,
                authentication_data: ad,
                user_properties: users,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties<'static>> {
    (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(string()),
        option::of(topic_name()),
        option::of(binary()),
        users(),
    )
        .prop_map(|(wdi, pfi, mei, ct, rt, cd, users)| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: users,
        })
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties<'static>> {
    let limits = (
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
        option::of(any::<bool>()),
        option::of(nonzero_u32()),
        option::of(string()),
        option::of(any::<u16>()),
        option::of(string()),
    );
    let features = (
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
        option::of(any::<u16>()),
        option::of(string()),
        option::of(string()),
        option::of(string()),
        option::of(binary()),
        users(),
    );
    (limits, features).prop_map(
        |((sei, rm, mq, ra, mps, aci, tam, rs), (wsa, sia, ssa, ska, ri, sr, am, ad, users))| {
            ConnAckProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                wildcard_subscription_available: wsa,
                subscription_identifier_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
                user_properties: users,
            }
        },
    )
}

fn publish_properties() -> impl Strategy<Value = PublishProperties<'static>> {
    (
        option::of(any::<bool>()),
        option::of(any::<u32>()),
        option::of(nonzero_u16()),
        option::of(topic_name()),
        option::of(binary()),
        option::of(string()),
        vec(subscription_id(), 0..3),
        users(),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, ct, ids, users)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            content_type: ct,
            subscription_identifiers: Seq::from_slice(leak(ids)),
            user_properties: users,
        })
}

fn ack_properties() -> impl Strategy<Value = AckProperties<'static>> {
    (option::of(string()), users()).prop_map(|(rs, users)| AckProperties {
        reason_string: rs,
        user_properties: users,
    })
}

fn disconnect_properties() -> impl Strategy<Value = DisconnectProperties<'static>> {
    (
        option::of(any::<u32>()),
        option::of(string()),
        option::of(string()),
        users(),
    )
        .prop_map(|(sei, rs, sr, users)| DisconnectProperties {
            session_expiry_interval: sei,
            reason_string: rs,
            server_reference: sr,
            user_properties: users,
        })
}

fn auth_properties() -> impl Strategy<Value = AuthProperties<'static>> {
    (
        option::of(string()),
        option::of(binary()),
        option::of(string()),
        users(),
    )
        .prop_map(|(am, ad, rs, users)| AuthProperties {
            authentication_method: am,
            authentication_data: ad,
            reason_string: rs,
            user_properties: users,
        })
}

/// `props` on 5.0, the empty set before.
fn props_for<T: Default + std::fmt::Debug + Clone + 'static>(
    version: ProtocolVersion,
    props: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if version.is_v5() {
        props.boxed()
    } else {
        Just(T::default()).boxed()
    }
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

fn will(version: ProtocolVersion) -> impl Strategy<Value = Will<'static>> {
    (
        topic_name(),
        payload(),
        qos(),
        any::<bool>(),
        props_for(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Will {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

fn connect(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    (
        any::<bool>(),
        any::<u16>(),
        props_for(version, connect_properties()),
        string(),
        option::of(will(version)),
        option::of(string()),
        option::of(binary()),
    )
        .prop_map(
            move |(clean_start, keep_alive, properties, client_id, will, username, password)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
                let username = match (version.is_v5(), username, password) {
                    (false, None, Some(_)) => Some("user"),
                    (_, username, _) => username,
                };
                Packet::Connect(Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    properties,
                    client_id,
                    will,
                    username,
                    password,
                })
            },
        )
}

fn connack(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let codes = if version.is_v5() {
        CONNACK_CODES
    } else {
        V3_CONNACK_CODES
    };
    (
        any::<bool>(),
        reason(codes),
        props_for(version, connack_properties()),
    )
        .prop_map(|(session_present, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                // Session present only with success [MQTT-3.2.2-6].
                session_present: session_present && reason_code == ReasonCode::Success,
                reason_code,
                properties,
            })
        })
}

fn publish(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let topic = if version.is_v5() {
        prop_oneof![4 => topic_name(), 1 => Just(TopicName::EMPTY)].boxed()
    } else {
        topic_name().boxed()
    };
    (
        any::<bool>(),
        qos(),
        packet_id(),
        any::<bool>(),
        topic,
        props_for(version, publish_properties()),
        payload(),
    )
        .prop_map(|(dup, qos, id, retain, topic, mut properties, payload)| {
            // An empty topic name needs a topic alias.
            if topic.is_empty() && properties.topic_alias.is_none() {
                properties.topic_alias = NonZeroU16::new(1);
            }
            Packet::Publish(Publish {
                // DUP is 0 on QoS 0 [MQTT-3.3.1-2].
                dup: dup && qos != QoS::AtMostOnce,
                qos_pid: QosPid::new(qos, id),
                retain,
                topic,
                properties,
                payload,
            })
        })
}

fn pub_response(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let kinds = select(vec![
        PacketType::PubAck,
        PacketType::PubRec,
        PacketType::PubRel,
        PacketType::PubComp,
    ]);
    kinds.prop_flat_map(move |kind| {
        let codes = match (version.is_v5(), kind) {
            (false, _) => &[0x00][..],
            (true, PacketType::PubAck | PacketType::PubRec) => PUBACK_CODES,
            (true, _) => PUBREL_CODES,
        };
        (
            packet_id(),
            reason(codes),
            props_for(version, ack_properties()),
        )
            .prop_map(move |(packet_id, reason_code, properties)| {
                let r = PubResponse {
                    packet_id,
                    reason_code,
                    properties,
                };
                match kind {
                    PacketType::PubAck => Packet::PubAck(r),
                    PacketType::PubRec => Packet::PubRec(r),
                    PacketType::PubRel => Packet::PubRel(r),
                    _ => Packet::PubComp(r),
                }
            })
    })
}

fn subscription(version: ProtocolVersion) -> impl Strategy<Value = Subscription<'static>> {
    (
        topic_filter(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            RetainHandling::SendAtSubscribe,
            RetainHandling::SendIfNew,
            RetainHandling::DoNotSend,
        ]),
    )
        .prop_map(move |(filter, qos, nl, rap, rh)| {
            let options = if version.is_v5() {
                SubscriptionOptions {
                    qos,
                    // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
                    no_local: nl && filter.shared().is_none(),
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions::new(qos)
            };
            Subscription { filter, options }
        })
}

fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let props =
        (option::of(subscription_id()), users()).prop_map(|(id, users)| SubscribeProperties {
            subscription_identifier: id,
            user_properties: users,
        });
    (
        packet_id(),
        props_for(version, props),
        vec(subscription(version), 1..4),
    )
        .prop_map(|(packet_id, properties, subs)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                subscriptions: Seq::from_slice(leak(subs)),
            })
        })
}

fn suback(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let codes = if version.is_v5() {
        SUBACK_CODES
    } else {
        V3_SUBACK_CODES
    };
    (
        packet_id(),
        props_for(version, ack_properties()),
        vec(reason(codes), 0..4),
    )
        .prop_map(|(packet_id, properties, codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes: Seq::from_slice(leak(codes)),
            })
        })
}

fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let props = users().prop_map(|users| UnsubscribeProperties {
        user_properties: users,
    });
    (
        packet_id(),
        props_for(version, props),
        vec(topic_filter(), 1..4),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters: Seq::from_slice(leak(filters)),
            })
        })
}

fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    // 3.1.1's UNSUBACK carries no reason codes.
    let count = if version.is_v5() { 0..4 } else { 0..1 };
    (
        packet_id(),
        props_for(version, ack_properties()),
        vec(reason(UNSUBACK_CODES), count),
    )
        .prop_map(|(packet_id, properties, codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reason_codes: Seq::from_slice(leak(codes)),
            })
        })
}

fn ping() -> impl Strategy<Value = Packet<'static>> {
    select(vec![Packet::PingReq, Packet::PingResp])
}

fn disconnect(version: ProtocolVersion) -> impl Strategy<Value = Packet<'static>> {
    let codes = if version.is_v5() {
        DISCONNECT_CODES
    } else {
        &[0x00][..]
    };
    (reason(codes), props_for(version, disconnect_properties())).prop_map(
        |(reason_code, properties)| {
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        },
    )
}

fn auth() -> impl Strategy<Value = Packet<'static>> {
    (reason(AUTH_CODES), auth_properties()).prop_map(|(reason_code, properties)| {
        Packet::Auth(Auth {
            reason_code,
            properties,
        })
    })
}

/// Any valid packet `version` can express.
fn any_packet(version: ProtocolVersion) -> BoxedStrategy<Packet<'static>> {
    let common = prop_oneof![
        connect(version),
        connack(version),
        publish(version),
        pub_response(version),
        subscribe(version),
        suback(version),
        unsubscribe(version),
        unsuback(version),
        ping(),
        disconnect(version),
    ];
    if version.is_v5() {
        prop_oneof![10 => common, 1 => auth()].boxed()
    } else {
        common.boxed()
    }
}

/// A version and a packet of the family `make` builds for it.
fn in_any_version<S: Strategy<Value = Packet<'static>> + 'static>(
    make: fn(ProtocolVersion) -> S,
) -> impl Strategy<Value = (ProtocolVersion, Packet<'static>)> {
    version().prop_flat_map(move |v| make(v).prop_map(move |p| (v, p)))
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

/// The version a packet is encoded in: CONNECT names its own.
fn version_of(packet: &Packet<'_>, version: ProtocolVersion) -> ProtocolVersion {
    match packet {
        Packet::Connect(c) => c.protocol,
        _ => version,
    }
}

/// Encodes `packet`, checking `encoded_len` against what is written, then decodes it back.
fn check_round_trip(version: ProtocolVersion, packet: Packet<'_>) -> Result<(), TestCaseError> {
    let len = packet.encoded_len(version).map_err(|e| {
        TestCaseError::fail(format!("{version}: valid packet not encodable: {e:?}"))
    })?;
    // A buffer longer than needed: exactly `len` bytes are written, the rest is untouched.
    let mut buf = vec![0xA5u8; len + 16];
    prop_assert_eq!(packet.encode(version, &mut buf), Ok(len));
    prop_assert!(buf[len..].iter().all(|&b| b == 0xA5));
    // A buffer one byte short is refused, and left alone.
    let mut short = vec![0x5Au8; len - 1];
    prop_assert_eq!(
        packet.encode(version, &mut short),
        Err(EncodeError::BufferTooSmall {
            needed: len,
            available: len - 1
        })
    );
    prop_assert!(short.iter().all(|&b| b == 0x5A));
    // And it decodes to the packet, consuming exactly what was written.
    match Packet::decode(&buf, version, len as u32) {
        Ok(Decoded::Packet {
            packet: decoded,
            len: used,
        }) => {
            prop_assert_eq!(used, len);
            prop_assert_eq!(decoded, packet);
        }
        other => prop_assert!(false, "{} does not decode: {:?}", version, other),
    }
    Ok(())
}

/// Walks every borrowed list of a decoded packet (they are parsed again on iteration).
fn touch_lists(packet: &Packet<'_>) -> usize {
    match packet {
        Packet::Connect(c) => {
            c.properties.user_properties.len()
                + c.will.map_or(0, |w| w.properties.user_properties.len())
        }
        Packet::ConnAck(c) => c.properties.user_properties.len(),
        Packet::Publish(p) => {
            p.properties.user_properties.len() + p.properties.subscription_identifiers.len()
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.properties.user_properties.len()
        }
        Packet::Subscribe(s) => s.subscriptions.len() + s.properties.user_properties.len(),
        Packet::SubAck(s) => s.reason_codes.len() + s.properties.user_properties.len(),
        Packet::Unsubscribe(u) => u.filters.len() + u.properties.user_properties.len(),
        Packet::UnsubAck(u) => u.reason_codes.len() + u.properties.user_properties.len(),
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => d.properties.user_properties.len(),
        Packet::Auth(a) => a.properties.user_properties.len(),
    }
}

/// Decodes every packet at the front of `bytes` until an error or a partial packet, checking
/// the lengths reported and that whatever decodes re-encodes to something that decodes the same.
fn decode_all(bytes: &[u8], version: ProtocolVersion, max: u32) -> Result<(), TestCaseError> {
    let mut rest = bytes;
    loop {
        match Packet::decode(rest, version, max) {
            Ok(Decoded::Packet { packet, len }) => {
                prop_assert!(len >= 2 && len <= rest.len() && len <= max as usize);
                touch_lists(&packet);
                // Whatever decodes can be encoded again, and that decodes to the same packet.
                let v = version_of(&packet, version);
                let n = match packet.encoded_len(v) {
                    Ok(n) => n,
                    Err(e) => {
                        return Err(TestCaseError::fail(format!(
                            "decoded {packet:?} cannot be encoded: {e:?}"
                        )))
                    }
                };
                let mut buf = vec![0u8; n];
                prop_assert_eq!(packet.encode(v, &mut buf), Ok(n));
                match Packet::decode(&buf, v, u32::MAX) {
                    Ok(Decoded::Packet { packet: again, len }) => {
                        prop_assert_eq!(len, n);
                        prop_assert_eq!(again, packet);
                    }
                    other => prop_assert!(false, "re-encoded {:?}: {:?}", packet, other),
                }
                rest = &rest[len..];
            }
            Ok(Decoded::Incomplete { needed }) => {
                if let Some(n) = needed {
                    prop_assert!(rest.len() + n.get() <= max as usize);
                }
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
}

/// Feeds `stream` to a receiver in chunks of the given sizes and returns how many packets it
/// decoded, checking each against `expected` as soon as it completes.
fn receive_in_chunks(
    version: ProtocolVersion,
    stream: &[u8],
    expected: &[Packet<'_>],
    chunks: &[usize],
) -> Result<usize, TestCaseError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut fed = 0;
    let mut decoded = 0;
    let mut chunk_sizes = chunks.iter().cycle();
    while fed < stream.len() {
        let size = (*chunk_sizes.next().unwrap()).clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + size]);
        fed += size;
        loop {
            match Packet::decode(&buf[start..], version, u32::MAX) {
                Ok(Decoded::Packet { packet, len }) => {
                    prop_assert_eq!(packet, expected[decoded]);
                    start += len;
                    decoded += 1;
                }
                Ok(Decoded::Incomplete { needed }) => {
                    let buffered = buf.len() - start;
                    if let Some(n) = needed {
                        // Exactly what the next packet still lacks.
                        let next_len = expected[decoded].encoded_len(version).unwrap();
                        prop_assert_eq!(buffered + n.get(), next_len);
                    } else {
                        prop_assert!(buffered < 5);
                    }
                    break;
                }
                Err(e) => prop_assert!(false, "{}: {:?}", version, e),
            }
        }
    }
    prop_assert_eq!(start, buf.len());
    Ok(decoded)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn connect_round_trips((v, p) in in_any_version(connect)) {
        check_round_trip(version_of(&p, v), p)?;
    }

    #[test]
    fn connack_round_trips((v, p) in in_any_version(connack)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn publish_round_trips((v, p) in in_any_version(publish)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn pub_responses_round_trip((v, p) in in_any_version(pub_response)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn subscribe_round_trips((v, p) in in_any_version(subscribe)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn suback_round_trips((v, p) in in_any_version(suback)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn unsubscribe_round_trips((v, p) in in_any_version(unsubscribe)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn unsuback_round_trips((v, p) in in_any_version(unsuback)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn ping_round_trips(v in version(), p in ping()) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn disconnect_round_trips((v, p) in in_any_version(disconnect)) {
        check_round_trip(v, p)?;
    }

    #[test]
    fn auth_round_trips_in_5_0_and_is_refused_before(p in auth()) {
        check_round_trip(V5, p)?;
        for v in [V31, V311] {
            prop_assert!(matches!(p.encoded_len(v), Err(EncodeError::NotInVersion(_))));
        }
    }

    /// `encode` has its own fast arms for the packets sent most often (PUBLISH, the four
    /// responses, PINGREQ, PINGRESP, CONNECT): they refuse exactly what `encoded_len` refuses,
    /// with the same error and before looking at the buffer, here for packets built for 5.0
    /// and encoded in every version.
    #[test]
    fn encode_refuses_what_encoded_len_refuses(p in any_packet(V5), v in version()) {
        let v = version_of(&p, v);
        let room = p.encoded_len(V5).unwrap() + 16;
        let mut buf = vec![0u8; room];
        match p.encoded_len(v) {
            Ok(n) => {
                prop_assert_eq!(p.encode(v, &mut buf), Ok(n));
                prop_assert_eq!(
                    p.encode(v, &mut []),
                    Err(EncodeError::BufferTooSmall { needed: n, available: 0 })
                );
            }
            Err(e) => {
                prop_assert_eq!(p.encode(v, &mut buf), Err(e));
                prop_assert_eq!(p.encode(v, &mut []), Err(e));
            }
        }
    }

    #[test]
    fn a_split_stream_decodes_to_the_same_packets(
        (v, packets) in version().prop_flat_map(|v| (Just(v), vec(any_packet(v), 1..5))),
        split in any::<prop::sample::Index>(),
        chunks in vec(1usize..40, 1..6),
    ) {
        // CONNECT is encoded in its own version; keep the stream to one version.
        let packets: Vec<_> = packets
            .into_iter()
            .filter(|p| version_of(p, v) == v)
            .collect();
        let mut stream = Vec::new();
        for p in &packets {
            let mut buf = vec![0u8; p.encoded_len(v).unwrap()];
            p.encode(v, &mut buf).unwrap();
            stream.extend(buf);
        }
        // Split once anywhere: the first part decodes to the packets wholly inside it and then
        // Incomplete; the whole decodes to every packet.
        let at = split.index(stream.len() + 1);
        let whole = stream.len().max(1);
        prop_assert_eq!(receive_in_chunks(v, &stream, &packets, &[at.max(1), whole])?, packets.len());
        // Fed in arbitrary chunks, the same.
        prop_assert_eq!(receive_in_chunks(v, &stream, &packets, &chunks)?, packets.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in vec(any::<u8>(), 0..64),
        v in version(),
        max in select(vec![2u32, 16, 300, u32::MAX]),
    ) {
        decode_all(&bytes, v, max)?;
    }

    #[test]
    fn arbitrary_bodies_behind_a_valid_header_never_panic(
        first in select(vec![
            0x10u8, 0x20, 0x30, 0x32, 0x35, 0x3B, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0,
            0xC0, 0xD0, 0xE0, 0xF0,
        ]),
        body in vec(any::<u8>(), 0..48),
        v in version(),
    ) {
        let mut bytes = vec![first, body.len() as u8];
        bytes.extend_from_slice(&body);
        decode_all(&bytes, v, u32::MAX)?;
    }

    #[test]
    fn mutated_packets_never_panic_the_decoder(
        (v, p) in version().prop_flat_map(|v| (Just(v), any_packet(v))),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        max in select(vec![8u32, 64, u32::MAX]),
    ) {
        let v = version_of(&p, v);
        let mut bytes = vec![0u8; p.encoded_len(v).unwrap()];
        p.encode(v, &mut bytes).unwrap();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1);
        decode_all(&bytes, v, max)?;
        decode_all(&bytes[..keep], v, max)?;
    }
}
