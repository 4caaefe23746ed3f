//! Byte fixtures for every packet type and protocol version, checked in both directions: a built
//! packet encodes to exactly the expected bytes, and the bytes decode to exactly the packet.
//!
//! Also: the examples from the specifications (remaining length table, CONNECT, PUBLISH, SUBSCRIBE,
//! SUBACK and UNSUBSCRIBE examples), partial input (every strict prefix of every fixture is
//! `Incomplete` with the right `needed`), back-to-back packets decoded in place, and the encoder's
//! refusals.

use std::num::{NonZeroU16, NonZeroU32, NonZeroUsize};

use mqtt_sansio::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties,
    Decoded, Disconnect, DisconnectProperties, EncodeError, FixedHeader, Packet, PacketId,
    PacketType, ProtocolVersion, PubResponse, Publish, PublishProperties, QoS, QosPid, ReasonCode,
    RetainHandling, Seq, SubAck, Subscribe, SubscribeProperties, Subscription, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties, Will, WillProperties,
    MAX_REMAINING_LENGTH,
};

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// The versions without properties or reason codes, which share their byte layouts.
const V3: [ProtocolVersion; 2] = [V31, V311];

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

fn topic(name: &str) -> TopicName<'_> {
    TopicName::new(name).unwrap()
}

fn filter(f: &str) -> TopicFilter<'_> {
    TopicFilter::new(f).unwrap()
}

/// Encodes `packet` for `version` and compares with `bytes`, then decodes `bytes` and compares
/// with `packet`.
#[track_caller]
fn fixture(version: ProtocolVersion, packet: Packet<'_>, bytes: &[u8]) {
    assert_eq!(packet.encoded_len(version), Ok(bytes.len()), "encoded_len");
    let mut buf = vec![0u8; bytes.len()];
    assert_eq!(packet.encode(version, &mut buf), Ok(bytes.len()), "encode");
    assert_eq!(buf.as_slice(), bytes, "encoded bytes of {packet:?}");
    decodes_to(version, bytes, packet);
}

/// Decodes `bytes` (one whole packet) and compares with `expected`.
#[track_caller]
fn decodes_to(version: ProtocolVersion, bytes: &[u8], expected: Packet<'_>) {
    match Packet::decode(bytes, version, u32::MAX) {
        Ok(Decoded::Packet { packet, len }) => {
            assert_eq!(len, bytes.len(), "consumed length");
            assert_eq!(packet, expected, "decoded packet");
        }
        other => panic!("{bytes:02X?} did not decode: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Remaining length (3.1.1 section 2.2.3, 5.0 section 1.5.5 Table 1-1)
// ---------------------------------------------------------------------------------------------

/// The boundaries of Table 1-1 / Table 2.4: value and its encoding.
const REMAINING_LENGTH_TABLE: &[(u32, &[u8])] = &[
    (0, &[0x00]),
    (127, &[0x7F]),
    (128, &[0x80, 0x01]),
    (16_383, &[0xFF, 0x7F]),
    (16_384, &[0x80, 0x80, 0x01]),
    (2_097_151, &[0xFF, 0xFF, 0x7F]),
    (2_097_152, &[0x80, 0x80, 0x80, 0x01]),
    (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
];

#[test]
fn remaining_length_table_decodes_in_the_fixed_header() {
    for &(value, encoded) in REMAINING_LENGTH_TABLE {
        let mut bytes = vec![0x30];
        bytes.extend_from_slice(encoded);
        let header = FixedHeader::decode(&bytes).unwrap().unwrap();
        assert_eq!(header.packet_type, PacketType::Publish);
        assert_eq!(header.remaining_length, value, "{encoded:02X?}");
        assert_eq!(usize::from(header.header_len), 1 + encoded.len());
        assert_eq!(header.packet_len(), 1 + encoded.len() + value as usize);
    }
}

#[test]
fn remaining_length_table_is_what_the_encoder_writes() {
    // A QoS 0 PUBLISH to "a" has a body of 3 + payload bytes; 0 is taken by PINGREQ.
    let mut buf = vec![0u8; 4];
    assert_eq!(Packet::PingReq.encode(V311, &mut buf), Ok(2));
    assert_eq!(&buf[..2], &[0xC0, 0x00]);
    let big = vec![0u8; 2_097_152];
    for &(value, encoded) in &REMAINING_LENGTH_TABLE[1..7] {
        let payload = &big[..value as usize - 3];
        let packet = Packet::Publish(Publish::new(topic("a"), payload));
        let total = 1 + encoded.len() + value as usize;
        assert_eq!(packet.encoded_len(V311), Ok(total));
        let mut out = vec![0u8; total];
        assert_eq!(packet.encode(V311, &mut out), Ok(total));
        assert_eq!(out[0], 0x30);
        assert_eq!(
            &out[1..1 + encoded.len()],
            encoded,
            "remaining length {value}"
        );
        assert_eq!(&out[1 + encoded.len()..][..3], &[0x00, 0x01, b'a']);
    }
}

#[test]
fn largest_remaining_length_is_encodable_and_one_more_is_not() {
    // calloc'd and never touched: encoded_len does not read the payload.
    let payload = vec![0u8; MAX_REMAINING_LENGTH as usize - 2];
    let fits = Packet::Publish(Publish::new(topic("a"), &payload[..payload.len() - 1]));
    assert_eq!(
        fits.encoded_len(V311),
        Ok(5 + MAX_REMAINING_LENGTH as usize)
    );
    let too_big = Packet::Publish(Publish::new(topic("a"), &payload));
    assert_eq!(
        too_big.encoded_len(V311),
        Err(EncodeError::PacketTooLarge(
            MAX_REMAINING_LENGTH as usize + 1
        ))
    );
    let mut small = [0u8; 16];
    assert_eq!(
        too_big.encode(V311, &mut small),
        Err(EncodeError::PacketTooLarge(
            MAX_REMAINING_LENGTH as usize + 1
        ))
    );
}

// ---------------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------------

/// 3.1.1 Figure 3.6 (variable header: "MQTT", level 4, flags 0xCE, keep alive 10) with the
/// payload its flags call for.
const CONNECT_V311: &[u8] = &[
    0x10, 0x1C, // fixed header
    0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xCE, 0x00, 0x0A, // variable header
    0x00, 0x02, b'c', b'1', // client id
    0x00, 0x01, b'w', // will topic
    0x00, 0x03, b'b', b'y', b'e', // will payload
    0x00, 0x01, b'u', // user name
    0x00, 0x01, b'p', // password
];

fn connect_with_everything(protocol: ProtocolVersion) -> Connect<'static> {
    Connect {
        protocol,
        clean_start: true,
        keep_alive: 10,
        properties: ConnectProperties::default(),
        client_id: "c1",
        will: Some(Will {
            topic: TopicName::new("w").unwrap(),
            payload: b"bye",
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: WillProperties::default(),
        }),
        username: Some("u"),
        password: Some(b"p"),
    }
}

#[test]
fn connect_v311_spec_example_flags() {
    fixture(
        V311,
        Packet::Connect(connect_with_everything(V311)),
        CONNECT_V311,
    );
}

#[test]
fn connect_carries_its_own_version_whatever_the_decoder_is_told() {
    for told in [V31, V311, V5] {
        decodes_to(
            told,
            CONNECT_V311,
            Packet::Connect(connect_with_everything(V311)),
        );
    }
}

#[test]
fn connect_v311_minimal_with_empty_client_id() {
    let bytes = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    fixture(V311, Packet::Connect(Connect::new(V311, "")), &bytes);
}

#[test]
fn connect_v311_will_qos2_retained_without_clean_session() {
    let connect = Connect {
        clean_start: false,
        keep_alive: 0,
        will: Some(Will {
            topic: topic("t"),
            payload: b"",
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: WillProperties::default(),
        }),
        ..Connect::new(V311, "c")
    };
    let bytes = [
        0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x34, 0x00,
        0x00, // 0x34: retain, QoS 2, will
        0x00, 0x01, b'c', 0x00, 0x01, b't', 0x00, 0x00,
    ];
    fixture(V311, Packet::Connect(connect), &bytes);
}

#[test]
fn connect_v31_uses_protocol_name_mqisdp_level_3() {
    let bytes = [
        0x10, 0x10, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x02, b'c', b'1',
    ];
    let connect = Connect::new(V31, "c1");
    fixture(V31, Packet::Connect(connect), &bytes);
    // The decoder reads the version from the packet.
    decodes_to(V5, &bytes, Packet::Connect(connect));
}

#[test]
fn connect_v31_with_will_and_credentials() {
    let mut bytes = vec![0x10, 0x1E, 0x00, 0x06];
    bytes.extend_from_slice(b"MQIsdp");
    bytes.extend_from_slice(&CONNECT_V311[8..]);
    bytes[10] = 0x03;
    assert_eq!(bytes.len(), 2 + 0x1E);
    fixture(V31, Packet::Connect(connect_with_everything(V31)), &bytes);
}

/// 5.0 Figure 3-6 (flags 0xCE, keep alive 10, Session Expiry Interval 10) with a will delay.
#[test]
fn connect_v5_spec_example_with_session_expiry() {
    let mut connect = connect_with_everything(V5);
    connect.properties.session_expiry_interval = Some(10);
    if let Some(will) = &mut connect.will {
        will.properties.will_delay_interval = Some(5);
    }
    let bytes = [
        0x10, 0x28, // fixed header
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0xCE, 0x00, 0x0A, // variable header
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A, // properties: session expiry 10
        0x00, 0x02, b'c', b'1', // client id
        0x05, 0x18, 0x00, 0x00, 0x00, 0x05, // will properties: will delay 5
        0x00, 0x01, b'w', // will topic
        0x00, 0x03, b'b', b'y', b'e', // will payload
        0x00, 0x01, b'u', // user name
        0x00, 0x01, b'p', // password
    ];
    fixture(V5, Packet::Connect(connect), &bytes);
}

#[test]
fn connect_v5_with_every_property_and_will_property() {
    let users = [("a", "1"), ("a", "2")];
    let will_users = [("k", "v")];
    let connect = Connect {
        protocol: V5,
        clean_start: false,
        keep_alive: 0,
        properties: ConnectProperties {
            session_expiry_interval: Some(u32::MAX),
            receive_maximum: NonZeroU16::new(20),
            maximum_packet_size: NonZeroU32::new(65_536),
            topic_alias_maximum: Some(10),
            request_response_information: Some(true),
            request_problem_information: Some(false),
            authentication_method: Some("m"),
            authentication_data: Some(&[0xAA]),
            user_properties: Seq::from_slice(&users),
        },
        client_id: "",
        will: Some(Will {
            topic: topic("w"),
            payload: b"",
            qos: QoS::AtMostOnce,
            retain: true,
            properties: WillProperties {
                will_delay_interval: Some(1),
                payload_format_indicator: Some(true),
                message_expiry_interval: Some(2),
                content_type: Some("t"),
                response_topic: Some(topic("r")),
                correlation_data: Some(&[0x01]),
                user_properties: Seq::from_slice(&will_users),
            },
        }),
        username: None,
        password: None,
    };
    let bytes = [
        0x10, 0x5C, // fixed header
        0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x24, 0x00, 0x00, // will retain, will
        0x2A, // property length 42
        0x11, 0xFF, 0xFF, 0xFF, 0xFF, // session expiry interval
        0x21, 0x00, 0x14, // receive maximum 20
        0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
        0x22, 0x00, 0x0A, // topic alias maximum 10
        0x19, 0x01, // request response information
        0x17, 0x00, // request problem information
        0x15, 0x00, 0x01, b'm', // authentication method
        0x16, 0x00, 0x01, 0xAA, // authentication data
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'1', // user property
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'2', // user property, same name
        0x00, 0x00, // client id ""
        0x1F, // will property length 31
        0x18, 0x00, 0x00, 0x00, 0x01, // will delay interval
        0x01, 0x01, // payload format indicator
        0x02, 0x00, 0x00, 0x00, 0x02, // message expiry interval
        0x03, 0x00, 0x01, b't', // content type
        0x08, 0x00, 0x01, b'r', // response topic
        0x09, 0x00, 0x01, 0x01, // correlation data
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        0x00, 0x01, b'w', // will topic
        0x00, 0x00, // will payload
    ];
    fixture(V5, Packet::Connect(connect), &bytes);
}

#[test]
fn connect_v5_password_without_user_name() {
    let connect = Connect {
        password: Some(b"p"),
        ..Connect::new(V5, "c")
    };
    let bytes = [
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x42, 0x00, 0x3C, 0x00, 0x00, 0x01,
        b'c', 0x00, 0x01, b'p',
    ];
    fixture(V5, Packet::Connect(connect), &bytes);
}

#[test]
fn connect_v5_properties_decode_in_any_order() {
    // Receive maximum before session expiry: the decoded packet equals the canonical one.
    let bytes = [
        0x10, 0x15, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x08, 0x21, 0x00,
        0x05, 0x11, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00,
    ];
    let mut connect = Connect::new(V5, "");
    connect.properties.receive_maximum = NonZeroU16::new(5);
    connect.properties.session_expiry_interval = Some(7);
    decodes_to(V5, &bytes, Packet::Connect(connect));
}

// ---------------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------------

#[test]
fn connack_v3_return_codes_map_to_reason_codes() {
    let codes = [
        (0, ReasonCode::Success),
        (1, ReasonCode::UnsupportedProtocolVersion),
        (2, ReasonCode::ClientIdentifierNotValid),
        (3, ReasonCode::ServerUnavailable),
        (4, ReasonCode::BadUserNameOrPassword),
        (5, ReasonCode::NotAuthorized),
    ];
    for version in V3 {
        for (wire, reason) in codes {
            fixture(
                version,
                Packet::ConnAck(ConnAck::new(reason)),
                &[0x20, 0x02, 0x00, wire],
            );
        }
    }
}

#[test]
fn connack_v3_session_present() {
    let connack = ConnAck {
        session_present: true,
        ..ConnAck::new(ReasonCode::Success)
    };
    fixture(V311, Packet::ConnAck(connack), &[0x20, 0x02, 0x01, 0x00]);
}

#[test]
fn connack_v5_without_properties() {
    fixture(
        V5,
        Packet::ConnAck(ConnAck::new(ReasonCode::Success)),
        &[0x20, 0x03, 0x00, 0x00, 0x00],
    );
    fixture(
        V5,
        Packet::ConnAck(ConnAck::new(ReasonCode::BadUserNameOrPassword)),
        &[0x20, 0x03, 0x00, 0x86, 0x00],
    );
}

#[test]
fn connack_v5_with_every_property() {
    let users = [("a", "b")];
    let connack = ConnAck {
        session_present: true,
        reason_code: ReasonCode::Success,
        properties: ConnAckProperties {
            session_expiry_interval: Some(u32::MAX),
            receive_maximum: NonZeroU16::new(10),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: NonZeroU32::new(1024),
            assigned_client_identifier: Some("id"),
            topic_alias_maximum: Some(5),
            reason_string: Some("ok"),
            wildcard_subscription_available: Some(false),
            subscription_identifier_available: Some(false),
            shared_subscription_available: Some(false),
            server_keep_alive: Some(30),
            response_information: Some("r"),
            server_reference: Some("s"),
            authentication_method: Some("m"),
            authentication_data: Some(&[1, 2]),
            user_properties: Seq::from_slice(&users),
        },
    };
    let bytes = [
        0x20, 0x42, // fixed header
        0x01, 0x00, // session present, success
        0x3F, // property length 63
        0x11, 0xFF, 0xFF, 0xFF, 0xFF, // session expiry interval
        0x21, 0x00, 0x0A, // receive maximum
        0x24, 0x01, // maximum QoS 1
        0x25, 0x00, // retain available 0
        0x27, 0x00, 0x00, 0x04, 0x00, // maximum packet size 1024
        0x12, 0x00, 0x02, b'i', b'd', // assigned client identifier
        0x22, 0x00, 0x05, // topic alias maximum
        0x1F, 0x00, 0x02, b'o', b'k', // reason string
        0x28, 0x00, // wildcard subscription available
        0x29, 0x00, // subscription identifiers available
        0x2A, 0x00, // shared subscription available
        0x13, 0x00, 0x1E, // server keep alive 30
        0x1A, 0x00, 0x01, b'r', // response information
        0x1C, 0x00, 0x01, b's', // server reference
        0x15, 0x00, 0x01, b'm', // authentication method
        0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
        0x26, 0x00, 0x01, b'a', 0x00, 0x01, b'b', // user property
    ];
    fixture(V5, Packet::ConnAck(connack), &bytes);
}

// ---------------------------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_v3_qos0() {
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    for version in V3 {
        fixture(
            version,
            Packet::Publish(Publish::new(topic("a/b"), b"hi")),
            &bytes,
        );
    }
}

/// 3.1.1 Figure 3.11 / 5.0 Figure 3-9: topic "a/b", packet identifier 10.
#[test]
fn publish_v3_qos1_dup_retain_spec_example_variable_header() {
    let publish = Publish {
        dup: true,
        qos_pid: QosPid::AtLeastOnce(pid(10)),
        retain: true,
        ..Publish::new(topic("a/b"), b"hi")
    };
    let bytes = [
        0x3B, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i',
    ];
    for version in V3 {
        fixture(version, Packet::Publish(publish), &bytes);
    }
}

#[test]
fn publish_v3_qos2_largest_packet_id_and_empty_retained_payload() {
    let publish = Publish {
        qos_pid: QosPid::ExactlyOnce(pid(u16::MAX)),
        ..Publish::new(topic("a/b"), b"hi")
    };
    let bytes = [
        0x34, 0x09, 0x00, 0x03, b'a', b'/', b'b', 0xFF, 0xFF, b'h', b'i',
    ];
    fixture(V311, Packet::Publish(publish), &bytes);
    let clear = Publish {
        retain: true,
        ..Publish::new(topic("a/b"), b"")
    };
    fixture(
        V311,
        Packet::Publish(clear),
        &[0x31, 0x05, 0x00, 0x03, b'a', b'/', b'b'],
    );
}

#[test]
fn publish_v5_qos0_without_properties() {
    let bytes = [0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'];
    fixture(
        V5,
        Packet::Publish(Publish::new(topic("a/b"), b"hi")),
        &bytes,
    );
}

#[test]
fn publish_v5_qos1_with_every_property() {
    let users = [("k", "v")];
    let ids = [
        NonZeroU32::new(1).unwrap(),
        NonZeroU32::new(268_435_455).unwrap(),
    ];
    let publish = Publish {
        dup: false,
        qos_pid: QosPid::AtLeastOnce(pid(10)),
        retain: false,
        topic: topic("a/b"),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(60),
            topic_alias: NonZeroU16::new(3),
            response_topic: Some(topic("r")),
            correlation_data: Some(b"c"),
            content_type: Some("t"),
            subscription_identifiers: Seq::from_slice(&ids),
            user_properties: Seq::from_slice(&users),
        },
        payload: b"hi",
    };
    let bytes = [
        0x32, 0x2E, // fixed header: QoS 1
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet id 10
        0x24, // property length 36
        0x01, 0x01, // payload format indicator
        0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry 60
        0x23, 0x00, 0x03, // topic alias 3
        0x08, 0x00, 0x01, b'r', // response topic
        0x09, 0x00, 0x01, b'c', // correlation data
        0x03, 0x00, 0x01, b't', // content type
        0x0B, 0x01, // subscription identifier 1
        0x0B, 0xFF, 0xFF, 0xFF, 0x7F, // subscription identifier 268,435,455
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        b'h', b'i', // payload
    ];
    fixture(V5, Packet::Publish(publish), &bytes);
}

#[test]
fn publish_v5_empty_topic_with_topic_alias() {
    let mut publish = Publish::new(TopicName::EMPTY, b"x");
    publish.properties.topic_alias = NonZeroU16::new(1);
    fixture(
        V5,
        Packet::Publish(publish),
        &[0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, b'x'],
    );
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP
// ---------------------------------------------------------------------------------------------

fn pub_response(kind: PacketType, r: PubResponse<'_>) -> Packet<'_> {
    match kind {
        PacketType::PubAck => Packet::PubAck(r),
        PacketType::PubRec => Packet::PubRec(r),
        PacketType::PubRel => Packet::PubRel(r),
        PacketType::PubComp => Packet::PubComp(r),
        other => panic!("{other:?} is not a publish response"),
    }
}

const PUB_RESPONSES: [(PacketType, u8); 4] = [
    (PacketType::PubAck, 0x40),
    (PacketType::PubRec, 0x50),
    (PacketType::PubRel, 0x62),
    (PacketType::PubComp, 0x70),
];

#[test]
fn pub_responses_v3() {
    for version in V3 {
        for (kind, first) in PUB_RESPONSES {
            let packet = pub_response(kind, PubResponse::new(pid(10)));
            fixture(version, packet, &[first, 0x02, 0x00, 0x0A]);
        }
    }
}

#[test]
fn pub_responses_v5_success_without_properties_is_two_bytes() {
    for (kind, first) in PUB_RESPONSES {
        let packet = pub_response(kind, PubResponse::new(pid(10)));
        fixture(V5, packet, &[first, 0x02, 0x00, 0x0A]);
        // The long forms a sender may also use decode to the same packet.
        decodes_to(V5, &[first, 0x03, 0x00, 0x0A, 0x00], packet);
        decodes_to(V5, &[first, 0x04, 0x00, 0x0A, 0x00, 0x00], packet);
    }
}

#[test]
fn pub_responses_v5_reason_code_without_properties() {
    let cases = [
        (PacketType::PubAck, 0x40, ReasonCode::NoMatchingSubscribers),
        (PacketType::PubRec, 0x50, ReasonCode::QuotaExceeded),
        (
            PacketType::PubRel,
            0x62,
            ReasonCode::PacketIdentifierNotFound,
        ),
        (
            PacketType::PubComp,
            0x70,
            ReasonCode::PacketIdentifierNotFound,
        ),
    ];
    for (kind, first, reason) in cases {
        let response = PubResponse {
            reason_code: reason,
            ..PubResponse::new(pid(10))
        };
        fixture(
            V5,
            pub_response(kind, response),
            &[first, 0x03, 0x00, 0x0A, reason.as_u8()],
        );
    }
}

#[test]
fn pub_responses_v5_with_properties() {
    let puback = PubResponse {
        packet_id: pid(10),
        reason_code: ReasonCode::UnspecifiedError,
        properties: AckProperties {
            reason_string: Some("e"),
            ..AckProperties::default()
        },
    };
    fixture(
        V5,
        Packet::PubAck(puback),
        &[0x40, 0x08, 0x00, 0x0A, 0x80, 0x04, 0x1F, 0x00, 0x01, b'e'],
    );
    let users = [("k", "v")];
    let pubrec = PubResponse {
        packet_id: pid(10),
        reason_code: ReasonCode::Success,
        properties: AckProperties {
            reason_string: None,
            user_properties: Seq::from_slice(&users),
        },
    };
    fixture(
        V5,
        Packet::PubRec(pubrec),
        &[
            0x50, 0x0B, 0x00, 0x0A, 0x00, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE and SUBACK
// ---------------------------------------------------------------------------------------------

/// The payload of 3.1.1 Figure 3.22 / 5.0 Figure 3-21: "a/b" at QoS 1, "c/d" at QoS 2.
const SUBSCRIBE_PAYLOAD: &[u8] = &[
    0x00, 0x03, b'a', b'/', b'b', 0x01, 0x00, 0x03, b'c', b'/', b'd', 0x02,
];

fn spec_subscriptions() -> [Subscription<'static>; 2] {
    [
        Subscription::new(TopicFilter::new("a/b").unwrap(), QoS::AtLeastOnce),
        Subscription::new(TopicFilter::new("c/d").unwrap(), QoS::ExactlyOnce),
    ]
}

#[test]
fn subscribe_v3_spec_example() {
    let subs = spec_subscriptions();
    let mut bytes = vec![0x82, 0x0E, 0x00, 0x0A];
    bytes.extend_from_slice(SUBSCRIBE_PAYLOAD);
    for version in V3 {
        fixture(
            version,
            Packet::Subscribe(Subscribe::new(pid(10), &subs)),
            &bytes,
        );
    }
}

#[test]
fn subscribe_v5_spec_example_without_properties() {
    let subs = spec_subscriptions();
    let mut bytes = vec![0x82, 0x0F, 0x00, 0x0A, 0x00];
    bytes.extend_from_slice(SUBSCRIBE_PAYLOAD);
    fixture(
        V5,
        Packet::Subscribe(Subscribe::new(pid(10), &subs)),
        &bytes,
    );
}

#[test]
fn subscribe_v5_with_properties_and_every_option() {
    let users = [("k", "v")];
    let subs = [
        Subscription {
            filter: filter("a/b"),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                no_local: true,
                retain_as_published: true,
                retain_handling: RetainHandling::DoNotSend,
            },
        },
        Subscription {
            filter: filter("c/d"),
            options: SubscriptionOptions {
                retain_handling: RetainHandling::SendIfNew,
                ..SubscriptionOptions::new(QoS::ExactlyOnce)
            },
        },
    ];
    let subscribe = Subscribe {
        packet_id: pid(10),
        properties: SubscribeProperties {
            subscription_identifier: NonZeroU32::new(5),
            user_properties: Seq::from_slice(&users),
        },
        subscriptions: Seq::from_slice(&subs),
    };
    let bytes = [
        0x82, 0x18, 0x00, 0x0A, // fixed header, packet id
        0x09, 0x0B, 0x05, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // properties
        0x00, 0x03, b'a', b'/', b'b', 0x2D, // QoS 1, no local, RAP, retain handling 2
        0x00, 0x03, b'c', b'/', b'd', 0x12, // QoS 2, retain handling 1
    ];
    fixture(V5, Packet::Subscribe(subscribe), &bytes);
}

#[test]
fn subscribe_with_wildcards_and_shared_subscription() {
    let subs = [
        Subscription::new(filter("sport/tennis/+"), QoS::AtMostOnce),
        Subscription::new(filter("$share/g/#"), QoS::AtMostOnce),
    ];
    let mut bytes = vec![0x82, 0x21, 0x00, 0x01, 0x00];
    bytes.extend_from_slice(b"\x00\x0esport/tennis/+\x00");
    bytes.extend_from_slice(b"\x00\x0a$share/g/#\x00");
    assert_eq!(bytes.len(), 2 + 0x21);
    fixture(V5, Packet::Subscribe(Subscribe::new(pid(1), &subs)), &bytes);
}

/// 3.1.1 Figure 3.26: granted QoS 0, granted QoS 2, failure.
#[test]
fn suback_v3_spec_example() {
    let codes = [
        ReasonCode::Success,
        ReasonCode::GrantedQoS2,
        ReasonCode::UnspecifiedError,
    ];
    for version in V3 {
        fixture(
            version,
            Packet::SubAck(SubAck::new(pid(10), &codes)),
            &[0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80],
        );
    }
}

#[test]
fn suback_v5() {
    let codes = [
        ReasonCode::Success,
        ReasonCode::GrantedQoS2,
        ReasonCode::UnspecifiedError,
    ];
    fixture(
        V5,
        Packet::SubAck(SubAck::new(pid(10), &codes)),
        &[0x90, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x02, 0x80],
    );
    let codes = [
        ReasonCode::GrantedQoS1,
        ReasonCode::TopicFilterInvalid,
        ReasonCode::WildcardSubscriptionsNotSupported,
    ];
    let suback = SubAck {
        properties: AckProperties {
            reason_string: Some("no"),
            ..AckProperties::default()
        },
        ..SubAck::new(pid(10), &codes)
    };
    fixture(
        V5,
        Packet::SubAck(suback),
        &[
            0x90, 0x0B, 0x00, 0x0A, 0x05, 0x1F, 0x00, 0x02, b'n', b'o', 0x01, 0x8F, 0xA2,
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE and UNSUBACK
// ---------------------------------------------------------------------------------------------

/// The payload of 3.1.1 Figure 3.30 / 5.0 Figure 3.30: "a/b" and "c/d".
const UNSUBSCRIBE_PAYLOAD: &[u8] = &[0x00, 0x03, b'a', b'/', b'b', 0x00, 0x03, b'c', b'/', b'd'];

#[test]
fn unsubscribe_v3_spec_example() {
    let filters = [filter("a/b"), filter("c/d")];
    let mut bytes = vec![0xA2, 0x0C, 0x00, 0x0A];
    bytes.extend_from_slice(UNSUBSCRIBE_PAYLOAD);
    for version in V3 {
        fixture(
            version,
            Packet::Unsubscribe(Unsubscribe::new(pid(10), &filters)),
            &bytes,
        );
    }
}

#[test]
fn unsubscribe_v5_with_and_without_user_property() {
    let filters = [filter("a/b"), filter("c/d")];
    let mut bytes = vec![0xA2, 0x0D, 0x00, 0x0A, 0x00];
    bytes.extend_from_slice(UNSUBSCRIBE_PAYLOAD);
    fixture(
        V5,
        Packet::Unsubscribe(Unsubscribe::new(pid(10), &filters)),
        &bytes,
    );

    let users = [("k", "v")];
    let unsubscribe = Unsubscribe {
        properties: UnsubscribeProperties {
            user_properties: Seq::from_slice(&users),
        },
        ..Unsubscribe::new(pid(10), &filters)
    };
    let mut bytes = vec![
        0xA2, 0x14, 0x00, 0x0A, 0x07, 0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v',
    ];
    bytes.extend_from_slice(UNSUBSCRIBE_PAYLOAD);
    fixture(V5, Packet::Unsubscribe(unsubscribe), &bytes);
}

#[test]
fn unsuback_v3_has_no_payload() {
    for version in V3 {
        fixture(
            version,
            Packet::UnsubAck(UnsubAck::new(pid(10), &[])),
            &[0xB0, 0x02, 0x00, 0x0A],
        );
    }
}

#[test]
fn unsuback_v5() {
    let codes = [ReasonCode::Success, ReasonCode::NoSubscriptionExisted];
    fixture(
        V5,
        Packet::UnsubAck(UnsubAck::new(pid(10), &codes)),
        &[0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11],
    );
    let codes = [ReasonCode::NotAuthorized];
    let unsuback = UnsubAck {
        properties: AckProperties {
            reason_string: Some("x"),
            ..AckProperties::default()
        },
        ..UnsubAck::new(pid(10), &codes)
    };
    fixture(
        V5,
        Packet::UnsubAck(unsuback),
        &[0xB0, 0x08, 0x00, 0x0A, 0x04, 0x1F, 0x00, 0x01, b'x', 0x87],
    );
}

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH
// ---------------------------------------------------------------------------------------------

#[test]
fn pingreq_and_pingresp_in_every_version() {
    for version in [V31, V311, V5] {
        fixture(version, Packet::PingReq, &[0xC0, 0x00]);
        fixture(version, Packet::PingResp, &[0xD0, 0x00]);
    }
}

#[test]
fn disconnect_v3() {
    for version in V3 {
        fixture(
            version,
            Packet::Disconnect(Disconnect::default()),
            &[0xE0, 0x00],
        );
    }
}

#[test]
fn disconnect_v5() {
    let normal = Disconnect::default();
    fixture(V5, Packet::Disconnect(normal), &[0xE0, 0x00]);
    decodes_to(V5, &[0xE0, 0x01, 0x00], Packet::Disconnect(normal));
    decodes_to(V5, &[0xE0, 0x02, 0x00, 0x00], Packet::Disconnect(normal));
    fixture(
        V5,
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
        &[0xE0, 0x01, 0x04],
    );
    let shutdown = Disconnect {
        reason_code: ReasonCode::ServerShuttingDown,
        properties: DisconnectProperties {
            session_expiry_interval: Some(0),
            reason_string: Some("bye"),
            server_reference: Some("h"),
            ..DisconnectProperties::default()
        },
    };
    fixture(
        V5,
        Packet::Disconnect(shutdown),
        &[
            0xE0, 0x11, 0x8B, 0x0F, // reason, property length 15
            0x11, 0x00, 0x00, 0x00, 0x00, // session expiry interval
            0x1F, 0x00, 0x03, b'b', b'y', b'e', // reason string
            0x1C, 0x00, 0x01, b'h', // server reference
        ],
    );
}

#[test]
fn auth_v5() {
    let success = Auth {
        reason_code: ReasonCode::Success,
        properties: AuthProperties::default(),
    };
    fixture(V5, Packet::Auth(success), &[0xF0, 0x00]);
    let scram = Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some("SCRAM"),
            authentication_data: Some(&[1, 2]),
            ..AuthProperties::default()
        },
    };
    fixture(
        V5,
        Packet::Auth(scram),
        &[
            0xF0, 0x0F, 0x18, 0x0D, // reason, property length 13
            0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
            0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
        ],
    );
    let reauth = Auth {
        reason_code: ReasonCode::ReAuthenticate,
        properties: AuthProperties {
            reason_string: Some("r"),
            ..AuthProperties::default()
        },
    };
    fixture(
        V5,
        Packet::Auth(reauth),
        &[0xF0, 0x06, 0x19, 0x04, 0x1F, 0x00, 0x01, b'r'],
    );
}

// ---------------------------------------------------------------------------------------------
// Partial input and back-to-back packets
// ---------------------------------------------------------------------------------------------

/// One encoded fixture per packet type (and property-heavy variants) for `version`.
fn stream_fixtures(version: ProtocolVersion) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![
        CONNECT_V311.to_vec(),
        vec![0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'],
        vec![0x40, 0x02, 0x00, 0x0A],
        vec![0x50, 0x02, 0x00, 0x0A],
        vec![0x62, 0x02, 0x00, 0x0A],
        vec![0x70, 0x02, 0x00, 0x0A],
        vec![0xC0, 0x00],
        vec![0xD0, 0x00],
        vec![0xE0, 0x00],
    ];
    if version.is_v5() {
        out[1] = vec![0x30, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, b'h', b'i'];
        out.extend([
            vec![0x20, 0x03, 0x00, 0x00, 0x00],
            vec![0x40, 0x08, 0x00, 0x0A, 0x80, 0x04, 0x1F, 0x00, 0x01, b'e'],
            [&[0x82, 0x0F, 0x00, 0x0A, 0x00][..], SUBSCRIBE_PAYLOAD].concat(),
            vec![0x90, 0x06, 0x00, 0x0A, 0x00, 0x00, 0x02, 0x80],
            [&[0xA2, 0x0D, 0x00, 0x0A, 0x00][..], UNSUBSCRIBE_PAYLOAD].concat(),
            vec![0xB0, 0x05, 0x00, 0x0A, 0x00, 0x00, 0x11],
            vec![0xE0, 0x01, 0x04],
            vec![0xF0, 0x06, 0x19, 0x04, 0x1F, 0x00, 0x01, b'r'],
        ]);
    } else {
        out.extend([
            vec![0x20, 0x02, 0x01, 0x00],
            [&[0x82, 0x0E, 0x00, 0x0A][..], SUBSCRIBE_PAYLOAD].concat(),
            vec![0x90, 0x05, 0x00, 0x0A, 0x00, 0x02, 0x80],
            [&[0xA2, 0x0C, 0x00, 0x0A][..], UNSUBSCRIBE_PAYLOAD].concat(),
            vec![0xB0, 0x02, 0x00, 0x0A],
        ]);
    }
    // A packet whose remaining length takes two bytes.
    let mut long = vec![0x30, 0x83, 0x01, 0x00, 0x01, b't'];
    if version.is_v5() {
        long[1] += 1;
        long.push(0x00);
    }
    long.resize(long.len() + 128, 0xA5);
    out.push(long);
    out
}

#[test]
fn every_strict_prefix_is_incomplete_with_the_right_need() {
    for version in [V31, V311, V5] {
        for bytes in stream_fixtures(version) {
            let header = FixedHeader::decode(&bytes).unwrap().unwrap();
            let header_len = usize::from(header.header_len);
            assert_eq!(header.packet_len(), bytes.len(), "{bytes:02X?}");
            for cut in 0..bytes.len() {
                let expected = if cut < header_len {
                    None
                } else {
                    NonZeroUsize::new(bytes.len() - cut)
                };
                assert_eq!(
                    Packet::decode(&bytes[..cut], version, u32::MAX),
                    Ok(Decoded::Incomplete { needed: expected }),
                    "{version} {:02X?} cut at {cut}",
                    &bytes[..cut]
                );
            }
            assert!(matches!(
                Packet::decode(&bytes, version, u32::MAX),
                Ok(Decoded::Packet { len, .. }) if len == bytes.len()
            ));
        }
    }
}

#[test]
fn back_to_back_packets_decode_in_place() {
    for version in [V31, V311, V5] {
        let fixtures = stream_fixtures(version);
        let stream = fixtures.concat();
        let range = stream.as_ptr_range();
        let mut rest = &stream[..];
        let mut decoded = 0;
        while !rest.is_empty() {
            let Ok(Decoded::Packet { packet, len }) = Packet::decode(rest, version, u32::MAX)
            else {
                panic!("{version}: packet {decoded} did not decode");
            };
            assert_eq!(len, fixtures[decoded].len(), "{version}: packet {decoded}");
            // Zero-copy: borrowed fields point into the stream itself.
            if let Packet::Publish(p) = packet {
                assert!(range.contains(&p.payload.as_ptr()));
                assert!(range.contains(&p.topic.as_str().as_ptr()));
            }
            if let Packet::Connect(c) = packet {
                assert!(range.contains(&c.client_id.as_ptr()));
            }
            // Re-encoding gives back the packet's bytes.
            let mut buf = vec![0u8; len];
            let version_of = match packet {
                Packet::Connect(c) => c.protocol,
                _ => version,
            };
            let n = packet.encode(version_of, &mut buf).unwrap();
            assert_eq!(&buf[..n], &rest[..len], "{version}: packet {decoded}");
            rest = &rest[len..];
            decoded += 1;
        }
        assert_eq!(decoded, fixtures.len());
    }
}

#[test]
fn decode_reads_one_packet_and_leaves_the_rest() {
    let bytes = [0xC0, 0x00, 0xD0];
    assert_eq!(
        Packet::decode(&bytes, V311, u32::MAX),
        Ok(Decoded::Packet {
            packet: Packet::PingReq,
            len: 2
        })
    );
    assert_eq!(
        Packet::decode(&bytes[2..], V311, u32::MAX),
        Ok(Decoded::Incomplete { needed: None })
    );
}

// ---------------------------------------------------------------------------------------------
// Encoder refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn encode_into_a_short_buffer_writes_nothing() {
    let packet = Packet::Publish(Publish::new(topic("a/b"), b"hi"));
    let mut buf = [0xEEu8; 8];
    assert_eq!(
        packet.encode(V311, &mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: 9,
            available: 8
        })
    );
    assert_eq!(buf, [0xEE; 8]);
}

#[test]
fn encode_refuses_what_3_1_1_cannot_express() {
    let users = [("k", "v")];
    let mut publish = Publish::new(topic("a"), b"");
    publish.properties.user_properties = Seq::from_slice(&users);
    let mut connack = ConnAck::new(ReasonCode::Success);
    connack.properties.receive_maximum = NonZeroU16::new(1);
    let mut puback = PubResponse::new(pid(1));
    puback.reason_code = ReasonCode::NoMatchingSubscribers;
    let subs = [Subscription {
        filter: filter("a"),
        options: SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::new(QoS::AtMostOnce)
        },
    }];
    let unsuback_codes = [ReasonCode::Success];
    let auth = Auth {
        reason_code: ReasonCode::Success,
        properties: AuthProperties::default(),
    };
    let mut connect = Connect::new(V311, "c");
    connect.properties.session_expiry_interval = Some(1);
    let cases = [
        Packet::Publish(publish),
        Packet::ConnAck(connack),
        Packet::ConnAck(ConnAck::new(ReasonCode::Banned)),
        Packet::PubAck(puback),
        Packet::Subscribe(Subscribe::new(pid(1), &subs)),
        Packet::Disconnect(Disconnect::new(ReasonCode::ServerBusy)),
        Packet::Auth(auth),
        Packet::Connect(connect),
    ];
    for packet in cases {
        for version in V3 {
            assert!(
                matches!(
                    packet.encode(version, &mut [0u8; 64]),
                    Err(EncodeError::NotInVersion(_))
                ),
                "{version} {packet:?}"
            );
        }
        if !matches!(packet, Packet::Connect(_)) {
            assert!(packet.encode(V5, &mut [0u8; 64]).is_ok(), "{packet:?}");
        }
    }
    // 3.1.1's UNSUBACK has no reason codes at all.
    let unsuback = Packet::UnsubAck(UnsubAck::new(pid(1), &unsuback_codes));
    assert_eq!(
        unsuback.encode(V311, &mut [0u8; 64]),
        Err(EncodeError::InvalidReasonCode(ReasonCode::Success))
    );
}

#[test]
fn encode_refuses_an_empty_topic_without_alias() {
    let publish = Packet::Publish(Publish::new(TopicName::EMPTY, b"x"));
    for version in [V31, V311, V5] {
        assert_eq!(
            publish.encoded_len(version),
            Err(EncodeError::EmptyTopicWithoutAlias)
        );
    }
}

#[test]
fn encode_refuses_fields_over_65535_bytes() {
    let long = "a".repeat(65_536);
    let connect = Packet::Connect(Connect::new(V311, &long));
    assert_eq!(
        connect.encoded_len(V311),
        Err(EncodeError::FieldTooLong(65_536))
    );
    let fits = Packet::Connect(Connect::new(V311, &long[..65_535]));
    assert_eq!(fits.encoded_len(V311), Ok(1 + 3 + 10 + 2 + 65_535));
}

#[test]
fn encode_refuses_values_out_of_range() {
    let ids = [NonZeroU32::new(MAX_REMAINING_LENGTH + 1).unwrap()];
    let mut publish = Publish::new(topic("a"), b"");
    publish.properties.subscription_identifiers = Seq::from_slice(&ids);
    assert!(matches!(
        Packet::Publish(publish).encoded_len(V5),
        Err(EncodeError::ValueOutOfRange(_))
    ));
    let mut connack = ConnAck::new(ReasonCode::Success);
    connack.properties.maximum_qos = Some(QoS::ExactlyOnce);
    assert!(matches!(
        Packet::ConnAck(connack).encoded_len(V5),
        Err(EncodeError::ValueOutOfRange(_))
    ));
}
