//! The seed corpus committed under `fuzz/corpus`: valid packets of every type in every version.
//!
//! - `decode/<version>-<type>`: [`decode_selector`] then one encoded sample packet, and
//!   `decode/<version>-stream`: all of a version's samples back to back.
//! - `roundtrip/<version>-<type>-min`: the two bytes that build the minimal packet of that type,
//!   and `roundtrip/<version>-<type>`: the largest packet (under 4 KiB) that one of a few
//!   fixed pseudo-random inputs builds and the codec accepts.

use core::num::{NonZeroU16, NonZeroU32};
use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use super::{build_packet, check_roundtrip, decode_selector};
use crate::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    Disconnect, DisconnectProperties, Packet, PacketId, ProtocolVersion, PubResponse, Publish,
    PublishProperties, QoS, QosPid, ReasonCode, RetainHandling, Seq, SubAck, Subscribe,
    SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, Will, WillProperties,
};

/// One file of the seed corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The fuzz target (and corpus directory) it belongs to.
    pub target: &'static str,
    /// File name.
    pub name: String,
    /// Content.
    pub data: Vec<u8>,
}

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3_1,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V5,
];

/// Every seed of both targets, in a fixed order.
pub fn seed_corpus() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (index, version) in (0u8..).zip(VERSIONS) {
        decode_seeds(version, &mut seeds);
        roundtrip_seeds(index, version, &mut seeds);
    }
    for (name, data) in super::journal::journal_seeds() {
        seeds.push(Seed {
            target: "journal",
            name,
            data,
        });
    }
    seeds
}

fn tag(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "v31",
        ProtocolVersion::V3_1_1 => "v311",
        ProtocolVersion::V5 => "v5",
    }
}

fn type_name(packet: &Packet<'_>) -> String {
    format!("{:?}", packet.packet_type()).to_lowercase()
}

fn decode_seeds(version: ProtocolVersion, seeds: &mut Vec<Seed>) {
    let selector = decode_selector(version);
    let mut stream = vec![selector];
    sample_packets(version, &mut |name, packet| {
        let bytes = check_roundtrip(&packet, version)
            .unwrap_or_else(|e| panic!("sample {name} does not encode for {version}: {e:?}"));
        let mut data = vec![selector];
        data.extend_from_slice(&bytes);
        stream.extend_from_slice(&bytes);
        seeds.push(Seed {
            target: "decode",
            name: format!("{}-{name}", tag(version)),
            data,
        });
    });
    seeds.push(Seed {
        target: "decode",
        name: format!("{}-stream", tag(version)),
        data: stream,
    });
}

fn roundtrip_seeds(index: u8, version: ProtocolVersion, seeds: &mut Vec<Seed>) {
    for packet_type in 0..15u8 {
        let head = [index, packet_type];
        let name = build_packet(&head, |packet, _| type_name(&packet));
        let candidates = (0..32).map(|seed| {
            let mut data = head.to_vec();
            data.extend(pseudo_random(seed, 1024));
            data
        });
        let best = candidates
            .filter_map(|data| {
                let len = build_packet(&data, |packet, v| check_roundtrip(&packet, v).ok())?.len();
                (len <= 4096).then_some((len, data))
            })
            .max_by_key(|(len, _)| *len);
        seeds.push(Seed {
            target: "roundtrip",
            name: format!("{}-{name}-min", tag(version)),
            data: head.to_vec(),
        });
        if let Some((_, data)) = best {
            seeds.push(Seed {
                target: "roundtrip",
                name: format!("{}-{name}", tag(version)),
                data,
            });
        }
    }
}

/// `len` bytes of a fixed 64-bit LCG stream.
fn pseudo_random(seed: u64, len: usize) -> impl Iterator<Item = u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len).map(move |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high byte is the best mixed one.
        (state >> 56) as u8
    })
}

/// `properties` in 5.0, the empty set before.
fn only_v5<P: Default>(v5: bool, properties: P) -> P {
    if v5 {
        properties
    } else {
        P::default()
    }
}

/// A valid topic name from a literal.
fn topic(name: &'static str) -> TopicName<'static> {
    // Only called with the literal, valid topic names below.
    TopicName::new(name).expect("literal topic names are valid")
}

/// A valid topic filter from a literal.
fn filter(filter: &'static str) -> TopicFilter<'static> {
    // Only called with the literal, valid topic filters below.
    TopicFilter::new(filter).expect("literal topic filters are valid")
}

fn id(value: u16) -> PacketId {
    PacketId::new(value).unwrap_or(PacketId::MIN)
}

/// Hands `emit` one representative, valid packet of every type `version` has (and a few more
/// PUBLISH shapes), named after it: with every property its packet allows in 5.0.
pub fn sample_packets(version: ProtocolVersion, emit: &mut dyn FnMut(&str, Packet<'_>)) {
    let v5 = version.is_v5();
    let user: &[(&str, &str)] = if v5 {
        &[("region", "eu"), ("region", "us"), ("\u{FEFF}k", "")]
    } else {
        &[]
    };
    let user = Seq::from_slice(user);
    emit("connect", Packet::Connect(sample_connect(version, user)));
    emit(
        "connack",
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason_code: ReasonCode::Success,
            properties: if v5 {
                sample_connack_properties(user)
            } else {
                ConnAckProperties::default()
            },
        }),
    );
    sample_publishes(version, user, emit);
    let ack = only_v5(
        v5,
        AckProperties {
            reason_string: Some("fine"),
            user_properties: user,
        },
    );
    let (accepted, not_found) = if v5 {
        (
            ReasonCode::NoMatchingSubscribers,
            ReasonCode::PacketIdentifierNotFound,
        )
    } else {
        (ReasonCode::Success, ReasonCode::Success)
    };
    let response = |pid, reason_code| PubResponse {
        packet_id: id(pid),
        reason_code,
        properties: ack,
    };
    emit("puback", Packet::PubAck(response(1, accepted)));
    emit("pubrec", Packet::PubRec(response(2, accepted)));
    emit("pubrel", Packet::PubRel(response(2, not_found)));
    emit("pubcomp", Packet::PubComp(PubResponse::new(id(65_535))));
    let options = SubscriptionOptions {
        qos: QoS::ExactlyOnce,
        no_local: v5,
        retain_as_published: v5,
        retain_handling: if v5 {
            RetainHandling::SendIfNew
        } else {
            RetainHandling::SendAtSubscribe
        },
    };
    let subscriptions = [
        Subscription {
            filter: filter("sensors/+/temp"),
            options,
        },
        Subscription::new(filter("$share/group/alerts/#"), QoS::AtLeastOnce),
        Subscription::new(filter("#"), QoS::AtMostOnce),
    ];
    emit(
        "subscribe",
        Packet::Subscribe(Subscribe {
            packet_id: id(3),
            properties: only_v5(
                v5,
                SubscribeProperties {
                    subscription_identifier: NonZeroU32::new(268_435_455),
                    user_properties: user,
                },
            ),
            subscriptions: Seq::from_slice(&subscriptions),
        }),
    );
    let granted = [
        ReasonCode::GrantedQoS2,
        ReasonCode::GrantedQoS1,
        ReasonCode::Success,
        ReasonCode::UnspecifiedError,
    ];
    emit(
        "suback",
        Packet::SubAck(SubAck {
            packet_id: id(3),
            properties: ack,
            reason_codes: Seq::from_slice(&granted),
        }),
    );
    let filters = [filter("sensors/+/temp"), filter("a/b")];
    emit(
        "unsubscribe",
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(4),
            properties: only_v5(
                v5,
                UnsubscribeProperties {
                    user_properties: user,
                },
            ),
            filters: Seq::from_slice(&filters),
        }),
    );
    let unsubscribed: &[ReasonCode] = if v5 {
        &[ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    } else {
        &[]
    };
    emit(
        "unsuback",
        Packet::UnsubAck(UnsubAck {
            packet_id: id(4),
            properties: ack,
            reason_codes: Seq::from_slice(unsubscribed),
        }),
    );
    emit("pingreq", Packet::PingReq);
    emit("pingresp", Packet::PingResp);
    emit(
        "disconnect",
        Packet::Disconnect(sample_disconnect(v5, user)),
    );
    if v5 {
        emit(
            "auth",
            Packet::Auth(Auth {
                reason_code: ReasonCode::ContinueAuthentication,
                properties: AuthProperties {
                    authentication_method: Some("SCRAM-SHA-256"),
                    authentication_data: Some(b"r=fyko+d2lbbFgONRv9qkxdawL"),
                    reason_string: Some("step 2"),
                    user_properties: user,
                },
            }),
        );
    }
}

fn sample_connect<'a>(version: ProtocolVersion, user: Seq<'a, (&'a str, &'a str)>) -> Connect<'a> {
    let v5 = version.is_v5();
    let properties = if v5 {
        ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: NonZeroU16::new(16),
            maximum_packet_size: NonZeroU32::new(4096),
            topic_alias_maximum: Some(8),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some("SCRAM-SHA-256"),
            authentication_data: Some(b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
            user_properties: user,
        }
    } else {
        ConnectProperties::default()
    };
    let will_properties = if v5 {
        WillProperties {
            will_delay_interval: Some(5),
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(86_400),
            content_type: Some("text/plain"),
            response_topic: Some(topic("status/esp32/reply")),
            correlation_data: Some(&[0, 1, 2, 0xFF]),
            user_properties: user,
        }
    } else {
        WillProperties::default()
    };
    Connect {
        protocol: version,
        clean_start: true,
        keep_alive: 30,
        properties,
        client_id: "esp32-c3-4a1f",
        will: Some(Will {
            topic: topic("status/esp32"),
            payload: b"offline",
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: will_properties,
        }),
        username: Some("user"),
        password: Some(b"pa\0ss"),
    }
}

fn sample_connack_properties<'a>(user: Seq<'a, (&'a str, &'a str)>) -> ConnAckProperties<'a> {
    ConnAckProperties {
        session_expiry_interval: Some(0),
        receive_maximum: NonZeroU16::new(20),
        maximum_qos: Some(QoS::AtLeastOnce),
        retain_available: Some(false),
        maximum_packet_size: NonZeroU32::new(268_435_460),
        assigned_client_identifier: Some("auto-7f3a"),
        topic_alias_maximum: Some(10),
        reason_string: Some("welcome"),
        wildcard_subscription_available: Some(true),
        subscription_identifier_available: Some(true),
        shared_subscription_available: Some(false),
        server_keep_alive: Some(120),
        response_information: Some("responses/"),
        server_reference: Some("broker2.example:1883"),
        authentication_method: Some("SCRAM-SHA-256"),
        authentication_data: Some(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="),
        user_properties: user,
    }
}

fn sample_publishes<'a>(
    version: ProtocolVersion,
    user: Seq<'a, (&'a str, &'a str)>,
    emit: &mut dyn FnMut(&str, Packet<'_>),
) {
    let v5 = version.is_v5();
    let ids = [
        NonZeroU32::MIN,
        NonZeroU32::new(16_384).unwrap_or(NonZeroU32::MIN),
    ];
    let properties = if v5 {
        PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            topic_alias: NonZeroU16::new(3),
            response_topic: Some(topic("sensors/esp32/temp/reply")),
            correlation_data: Some(b"req-1"),
            content_type: Some("application/json"),
            subscription_identifiers: Seq::from_slice(&ids),
            user_properties: user,
        }
    } else {
        PublishProperties::default()
    };
    emit(
        "publish",
        Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtLeastOnce(id(10)),
            retain: false,
            topic: topic("sensors/esp32/temp"),
            properties,
            payload: br#"{"t":21.5}"#,
        }),
    );
    emit(
        "publish-qos2-dup",
        Packet::Publish(Publish {
            dup: true,
            qos_pid: QosPid::ExactlyOnce(id(11)),
            retain: true,
            ..Publish::new(topic("$SYS/broker/uptime"), &[0; 130])
        }),
    );
    if v5 {
        // The topic named by a topic alias alone.
        let alias_only = PublishProperties {
            topic_alias: NonZeroU16::new(3),
            ..PublishProperties::default()
        };
        emit(
            "publish-alias",
            Packet::Publish(Publish {
                properties: alias_only,
                ..Publish::new(TopicName::EMPTY, b"22.0")
            }),
        );
    }
}

fn sample_disconnect<'a>(v5: bool, user: Seq<'a, (&'a str, &'a str)>) -> Disconnect<'a> {
    if !v5 {
        return Disconnect::default();
    }
    Disconnect {
        reason_code: ReasonCode::ServerShuttingDown,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some("maintenance"),
            server_reference: Some("broker2.example"),
            user_properties: user,
        },
    }
}
