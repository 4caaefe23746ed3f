//! Every receiver-side check of the codec, one test per conformance statement.
//!
//! Test names carry the MQTT 5.0 conformance id they check (`mqtt_3_3_2_2_...` is
//! [MQTT-3.3.2-2]); a name starting `v311_` carries a 3.1.1 id instead, for statements that only
//! 3.1.1 makes or numbers differently. Checks the specifications state without an id are named
//! after their section (`section_2_1_2_...`) or what they check. Unless a test says otherwise it
//! runs for every version the statement applies to.

use mqtt_sansio::topic::TopicError;
use mqtt_sansio::{
    ConnAck, Connect, DecodeError, Decoded, Disconnect, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, ReasonCode, SubAck, Subscribe, Subscription,
    TopicFilter, TopicName, UnsubAck, Unsubscribe,
};

const V31: ProtocolVersion = ProtocolVersion::V3_1;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;
const V5: ProtocolVersion = ProtocolVersion::V5;
const ALL: [ProtocolVersion; 3] = [V31, V311, V5];
const V3: [ProtocolVersion; 2] = [V31, V311];

// ---------------------------------------------------------------------------------------------
// Helpers: an independent little encoder for hand-made (and broken) packets
// ---------------------------------------------------------------------------------------------

fn var_int(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return out;
        }
    }
}

/// A packet: first byte, remaining length, body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    [&[first][..], &var_int(body.len()), body].concat()
}

/// A length-prefixed string or binary field.
fn s(bytes: &[u8]) -> Vec<u8> {
    [&(bytes.len() as u16).to_be_bytes()[..], bytes].concat()
}

/// A 5.0 property block: length and content.
fn props(content: &[u8]) -> Vec<u8> {
    [var_int(content.len()), content.to_vec()].concat()
}

/// A QoS 0 PUBLISH to `topic` for `version`, with `properties` content on 5.0.
fn publish(version: ProtocolVersion, topic: &[u8], properties: &[u8]) -> Vec<u8> {
    let mut body = s(topic);
    if version.is_v5() {
        body.extend(props(properties));
    }
    body.extend_from_slice(b"payload");
    packet(0x30, &body)
}

/// A SUBSCRIBE with packet id 1 and one filter with `options`.
fn subscribe(version: ProtocolVersion, filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if version.is_v5() {
        body.push(0x00);
    }
    body.extend(s(filter));
    body.push(options);
    packet(0x82, &body)
}

/// An UNSUBSCRIBE with packet id 1 and one filter.
fn unsubscribe(version: ProtocolVersion, filter: &[u8]) -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    if version.is_v5() {
        body.push(0x00);
    }
    body.extend(s(filter));
    packet(0xA2, &body)
}

/// A CONNECT for `version` with `flags`, `properties` (5.0) and the payload fields as given.
fn connect(version: ProtocolVersion, flags: u8, properties: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = s(version.protocol_name().as_bytes());
    body.push(version.level());
    body.push(flags);
    body.extend_from_slice(&[0x00, 0x3C]);
    if version.is_v5() {
        body.extend(props(properties));
    }
    body.extend_from_slice(payload);
    packet(0x10, &body)
}

/// A 5.0 PUBACK with reason code 0x00 and `properties` content.
fn puback_v5(properties: &[u8]) -> Vec<u8> {
    packet(
        0x40,
        &[&[0x00, 0x01, 0x00][..], &props(properties)].concat(),
    )
}

#[track_caller]
fn refused(version: ProtocolVersion, bytes: &[u8], expected: DecodeError) {
    assert_eq!(
        Packet::decode(bytes, version, u32::MAX),
        Err(expected),
        "{version}: {bytes:02X?}"
    );
}

#[track_caller]
fn accepted(version: ProtocolVersion, bytes: &[u8]) -> Packet<'_> {
    match Packet::decode(bytes, version, u32::MAX) {
        Ok(Decoded::Packet { packet, len }) if len == bytes.len() => packet,
        other => panic!("{version}: {bytes:02X?} was not accepted: {other:?}"),
    }
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

/// Ill-formed UTF-8: a bad continuation, UTF-16 surrogates U+D800 and U+DFFF, an overlong '/',
/// a code point above U+10FFFF, a lone continuation byte, a cut sequence, and 0xFF.
const ILL_FORMED: &[&[u8]] = &[
    &[b'a', 0xC3, 0x28],
    &[0xED, 0xA0, 0x80],
    &[0xED, 0xBF, 0xBF],
    &[0xC0, 0xAF],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0x80],
    &[b'a', 0xE2, 0x82],
    &[0xFF],
];

// ---------------------------------------------------------------------------------------------
// Fixed header
// ---------------------------------------------------------------------------------------------

#[test]
fn section_2_1_2_reserved_packet_type_0_is_refused_from_the_first_byte() {
    for version in ALL {
        for flags in 0..16 {
            refused(version, &[flags], DecodeError::ReservedPacketType(0));
        }
        refused(version, &[0x00, 0x00], DecodeError::ReservedPacketType(0));
    }
}

#[test]
fn section_2_1_2_packet_type_15_is_reserved_before_5_0() {
    for version in V3 {
        refused(version, &[0xF0, 0x00], DecodeError::ReservedPacketType(15));
        refused(
            version,
            &[0xF0, 0x02, 0x18, 0x00],
            DecodeError::ReservedPacketType(15),
        );
    }
    assert!(matches!(accepted(V5, &[0xF0, 0x00]), Packet::Auth(_)));
}

/// The flags Table 2-2 fixes, per packet type (PUBLISH's are its DUP, QoS and RETAIN).
fn required_flags(packet_type: u8) -> Option<u8> {
    match packet_type {
        3 => None,
        6 | 8 | 10 => Some(0b0010),
        _ => Some(0),
    }
}

#[test]
fn mqtt_2_1_3_1_reserved_flag_bits_must_have_their_listed_values() {
    for version in ALL {
        for packet_type in 1..=15u8 {
            let Some(required) = required_flags(packet_type) else {
                continue;
            };
            if packet_type == 15 && !version.is_v5() {
                continue;
            }
            let kind = PacketType::from_u8(packet_type).unwrap();
            for flags in 0..16u8 {
                let first = (packet_type << 4) | flags;
                let byte = [first];
                let result = Packet::decode(&byte, version, u32::MAX);
                if flags == required {
                    assert_eq!(result, Ok(Decoded::Incomplete { needed: None }));
                } else {
                    // Refused from the first byte alone.
                    assert_eq!(
                        result,
                        Err(DecodeError::InvalidHeaderFlags {
                            packet_type: kind,
                            flags
                        }),
                        "{version}: first byte {first:#04x}"
                    );
                }
            }
        }
    }
}

#[test]
fn v311_mqtt_2_2_2_2_invalid_fixed_header_flags_are_refused() {
    for (first, packet_type) in [
        (0x11, PacketType::Connect),
        (0x28, PacketType::ConnAck),
        (0x42, PacketType::PubAck),
        (0xC1, PacketType::PingReq),
        (0xD4, PacketType::PingResp),
    ] {
        refused(
            V311,
            &[first, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet_type,
                flags: first & 0x0F,
            },
        );
    }
}

#[test]
fn mqtt_3_6_1_1_pubrel_flags_are_0010() {
    for version in ALL {
        for first in [0x60, 0x61, 0x63, 0x6A] {
            refused(
                version,
                &[first, 0x02, 0x00, 0x01],
                DecodeError::InvalidHeaderFlags {
                    packet_type: PacketType::PubRel,
                    flags: first & 0x0F,
                },
            );
        }
        assert!(matches!(
            accepted(version, &[0x62, 0x02, 0x00, 0x01]),
            Packet::PubRel(_)
        ));
    }
}

#[test]
fn mqtt_3_8_1_1_subscribe_flags_are_0010() {
    for version in ALL {
        let mut bytes = subscribe(version, b"a", 0);
        assert!(matches!(accepted(version, &bytes), Packet::Subscribe(_)));
        bytes[0] = 0x80;
        refused(
            version,
            &bytes,
            DecodeError::InvalidHeaderFlags {
                packet_type: PacketType::Subscribe,
                flags: 0,
            },
        );
    }
}

#[test]
fn mqtt_3_10_1_1_unsubscribe_flags_are_0010() {
    for version in ALL {
        let mut bytes = unsubscribe(version, b"a");
        assert!(matches!(accepted(version, &bytes), Packet::Unsubscribe(_)));
        bytes[0] = 0xA3;
        refused(
            version,
            &bytes,
            DecodeError::InvalidHeaderFlags {
                packet_type: PacketType::Unsubscribe,
                flags: 3,
            },
        );
    }
}

#[test]
fn mqtt_3_14_1_1_disconnect_reserved_flags_are_zero() {
    for version in ALL {
        refused(
            version,
            &[0xE1, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet_type: PacketType::Disconnect,
                flags: 1,
            },
        );
    }
    let err = Packet::decode(&[0xE8, 0x00], V5, u32::MAX).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn mqtt_3_15_1_1_auth_reserved_flags_are_zero() {
    for first in [0xF1, 0xF2, 0xF4, 0xF8] {
        refused(
            V5,
            &[first, 0x00],
            DecodeError::InvalidHeaderFlags {
                packet_type: PacketType::Auth,
                flags: first & 0x0F,
            },
        );
    }
}

#[test]
fn section_1_5_5_remaining_length_over_four_bytes_is_malformed() {
    for version in ALL {
        refused(
            version,
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            DecodeError::VarIntTooLong,
        );
        // Known from the fifth byte, without waiting for a sixth.
        refused(
            version,
            &[0xC0, 0x80, 0x80, 0x80, 0x80],
            DecodeError::VarIntTooLong,
        );
        assert_eq!(
            Packet::decode(&[0xC0, 0x80, 0x80, 0x80], version, u32::MAX),
            Ok(Decoded::Incomplete { needed: None })
        );
    }
    assert_eq!(
        DecodeError::VarIntTooLong.reason_code(),
        ReasonCode::MalformedPacket
    );
}

#[test]
fn mqtt_1_5_5_1_variable_byte_integers_are_written_in_the_fewest_bytes() {
    // Remaining lengths at each boundary of Table 1-1, and subscription identifiers likewise.
    for (value, bytes) in [
        (0usize, 1usize),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (2_097_151, 3),
        (2_097_152, 4),
    ] {
        assert_eq!(var_int(value).len(), bytes);
        let payload = vec![0u8; value.saturating_sub(3)];
        let packet = match value {
            0 => Packet::PingReq,
            _ => Packet::Publish(Publish::new(TopicName::new("a").unwrap(), &payload)),
        };
        let mut buf = vec![0u8; 1 + bytes + value];
        assert_eq!(packet.encode(V311, &mut buf), Ok(buf.len()), "{value}");
        assert_eq!(&buf[1..1 + bytes], var_int(value).as_slice(), "{value}");
    }
    for (id, encoded) in [
        (1u32, &[0x01][..]),
        (127, &[0x7F]),
        (128, &[0x80, 0x01]),
        (16_384, &[0x80, 0x80, 0x01]),
        (268_435_455, &[0xFF, 0xFF, 0xFF, 0x7F]),
    ] {
        let ids = [std::num::NonZeroU32::new(id).unwrap()];
        let mut publish = Publish::new(TopicName::new("a").unwrap(), b"");
        publish.properties.subscription_identifiers = mqtt_sansio::Seq::from_slice(&ids);
        let mut buf = [0u8; 16];
        let n = Packet::Publish(publish).encode(V5, &mut buf).unwrap();
        let expected = [&s(b"a")[..], &props(&[&[0x0B][..], encoded].concat())].concat();
        assert_eq!(&buf[2..n], expected.as_slice(), "{id}");
    }
}

#[test]
fn section_1_5_5_variable_byte_integers_in_properties_over_four_bytes_are_malformed() {
    // Subscription identifier whose value runs over four bytes.
    let bytes = publish(V5, b"t", &[0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    refused(V5, &bytes, DecodeError::VarIntTooLong);
    // Property length over four bytes.
    let body = [&s(b"t")[..], &[0x80, 0x80, 0x80, 0x80, 0x00]].concat();
    refused(V5, &packet(0x30, &body), DecodeError::VarIntTooLong);
}

#[test]
fn section_3_1_2_11_4_packet_over_the_maximum_size_is_refused_from_its_fixed_header() {
    // A 256 MiB PUBLISH is refused after its five header bytes, before any of its body.
    for version in ALL {
        let header = [0x30, 0xFF, 0xFF, 0xFF, 0x7F];
        let err = Packet::decode(&header, version, 1 << 20).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PacketTooLarge {
                size: 268_435_460,
                max: 1 << 20
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
    }
    // The limit is on the whole packet, fixed header included, and is inclusive.
    let bytes = publish(V311, b"a/b", b"");
    assert_eq!(bytes.len(), 14);
    for max in [14, 15, u32::MAX] {
        assert!(matches!(
            Packet::decode(&bytes, V311, max),
            Ok(Decoded::Packet { len: 14, .. })
        ));
    }
    for cut in [2, 5, 14] {
        assert_eq!(
            Packet::decode(&bytes[..cut], V311, 13),
            Err(DecodeError::PacketTooLarge { size: 14, max: 13 }),
            "cut at {cut}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// UTF-8 strings
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_1_5_4_1_ill_formed_utf8_is_malformed() {
    for bad in ILL_FORMED {
        for version in ALL {
            refused(
                version,
                &publish(version, bad, b""),
                DecodeError::InvalidUtf8,
            );
        }
        // Reason string in a 5.0 acknowledgement.
        let reason = [&[0x1F][..], &s(bad)].concat();
        refused(V5, &puback_v5(&reason), DecodeError::InvalidUtf8);
    }
    assert_eq!(
        DecodeError::InvalidUtf8.reason_code(),
        ReasonCode::MalformedPacket
    );
}

#[test]
fn mqtt_1_5_4_2_null_character_is_malformed() {
    for version in ALL {
        refused(
            version,
            &publish(version, b"a\0b", b""),
            DecodeError::NullCharacter,
        );
        refused(
            version,
            &connect(version, 0x02, &[], &s(b"c\0")),
            DecodeError::NullCharacter,
        );
        refused(
            version,
            &subscribe(version, b"a/\0", 0),
            DecodeError::NullCharacter,
        );
    }
    let reason = [&[0x1F][..], &s(b"\0")].concat();
    refused(V5, &puback_v5(&reason), DecodeError::NullCharacter);
    assert_eq!(
        DecodeError::NullCharacter.reason_code(),
        ReasonCode::MalformedPacket
    );
    // The encoder refuses to write one.
    let connect = Packet::Connect(Connect::new(V311, "c\0"));
    assert_eq!(connect.encoded_len(V311), Err(EncodeError::NullCharacter));
}

#[test]
fn mqtt_1_5_4_3_byte_order_mark_is_kept() {
    for version in ALL {
        let bytes = publish(version, "\u{FEFF}a".as_bytes(), b"");
        let Packet::Publish(p) = accepted(version, &bytes) else {
            panic!("not a PUBLISH");
        };
        assert_eq!(p.topic.as_str(), "\u{FEFF}a");
        let mut buf = vec![0u8; bytes.len()];
        assert_eq!(
            Packet::Publish(p).encode(version, &mut buf),
            Ok(bytes.len())
        );
        assert_eq!(buf, bytes);
    }
}

#[test]
fn mqtt_1_5_7_1_both_strings_of_a_user_property_are_checked() {
    for (name, value, expected) in [
        (&b"\xFF"[..], &b"v"[..], DecodeError::InvalidUtf8),
        (b"k", b"\xED\xA0\x80", DecodeError::InvalidUtf8),
        (b"\0", b"v", DecodeError::NullCharacter),
        (b"k", b"v\0", DecodeError::NullCharacter),
    ] {
        let user = [&[0x26][..], &s(name), &s(value)].concat();
        refused(V5, &publish(V5, b"t", &user), expected);
        refused(V5, &puback_v5(&user), expected);
    }
}

#[test]
fn mqtt_3_1_3_4_client_id_is_a_utf8_string() {
    for version in ALL {
        for bad in ILL_FORMED {
            refused(
                version,
                &connect(version, 0x02, &[], &s(bad)),
                DecodeError::InvalidUtf8,
            );
        }
    }
}

#[test]
fn mqtt_3_1_3_11_will_topic_is_a_utf8_string() {
    for version in ALL {
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        let payload = [&s(b"c")[..], &will_props, &s(b"\xC0\xAF"), &s(b"")].concat();
        refused(
            version,
            &connect(version, 0x06, &[], &payload),
            DecodeError::InvalidUtf8,
        );
    }
}

#[test]
fn mqtt_3_1_3_12_user_name_is_a_utf8_string() {
    for version in ALL {
        let payload = [&s(b"c")[..], &s(b"\xED\xBF\xBF")].concat();
        refused(
            version,
            &connect(version, 0x82, &[], &payload),
            DecodeError::InvalidUtf8,
        );
    }
}

#[test]
fn mqtt_3_3_2_1_topic_name_is_a_utf8_string() {
    for version in ALL {
        refused(
            version,
            &publish(version, &[b'a', 0xF8, 0x88, 0x80, 0x80, 0x80], b""),
            DecodeError::InvalidUtf8,
        );
    }
}

#[test]
fn mqtt_3_8_3_1_subscribe_topic_filters_are_utf8_strings() {
    for version in ALL {
        for bad in ILL_FORMED {
            refused(
                version,
                &subscribe(version, bad, 0),
                DecodeError::InvalidUtf8,
            );
        }
    }
}

#[test]
fn mqtt_3_10_3_1_unsubscribe_topic_filters_are_utf8_strings() {
    for version in ALL {
        for bad in ILL_FORMED {
            refused(
                version,
                &unsubscribe(version, bad),
                DecodeError::InvalidUtf8,
            );
        }
    }
}

#[test]
fn mqtt_3_3_2_13_response_topic_is_a_utf8_string() {
    let response = [&[0x08][..], &s(b"\xED\xA0\x80")].concat();
    refused(V5, &publish(V5, b"t", &response), DecodeError::InvalidUtf8);
}

#[test]
fn mqtt_3_3_2_19_content_type_is_a_utf8_string() {
    let content_type = [&[0x03][..], &s(b"text/\xFF")].concat();
    refused(
        V5,
        &publish(V5, b"t", &content_type),
        DecodeError::InvalidUtf8,
    );
}

// ---------------------------------------------------------------------------------------------
// Topic names and topic filters
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_3_3_2_2_topic_name_has_no_wildcards() {
    for version in ALL {
        for name in ["a/+", "+", "#", "a/#", "a/b#", "sport+"] {
            let err = Packet::decode(&publish(version, name.as_bytes(), b""), version, u32::MAX)
                .unwrap_err();
            assert_eq!(
                err,
                DecodeError::InvalidTopicName(TopicError::Wildcard),
                "{name}"
            );
            assert_eq!(err.reason_code(), ReasonCode::TopicNameInvalid);
            assert_eq!(TopicName::new(name), Err(TopicError::Wildcard));
        }
    }
}

#[test]
fn mqtt_4_7_0_1_wildcards_are_not_used_in_will_topics() {
    for version in ALL {
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        let payload = [&s(b"c")[..], &will_props, &s(b"w/+"), &s(b"")].concat();
        refused(
            version,
            &connect(version, 0x06, &[], &payload),
            DecodeError::InvalidTopicName(TopicError::Wildcard),
        );
    }
}

#[test]
fn mqtt_3_3_2_14_response_topic_has_no_wildcards() {
    let response = [&[0x08][..], &s(b"r/#")].concat();
    refused(
        V5,
        &publish(V5, b"t", &response),
        DecodeError::InvalidTopicName(TopicError::Wildcard),
    );
    // In the will properties too.
    let payload = [&s(b"c")[..], &props(&response), &s(b"w"), &s(b"")].concat();
    refused(
        V5,
        &connect(V5, 0x06, &[], &payload),
        DecodeError::InvalidTopicName(TopicError::Wildcard),
    );
}

/// The filter examples of 4.7.1.2 and 4.7.1.3, valid or not, with the error expected.
const FILTER_EXAMPLES: &[(&str, Option<TopicError>)] = &[
    ("sport/tennis/player1/#", None),
    ("sport/#", None),
    ("#", None),
    ("sport/tennis/#", None),
    ("sport/tennis#", Some(TopicError::MisplacedWildcard)),
    (
        "sport/tennis/#/ranking",
        Some(TopicError::MisplacedWildcard),
    ),
    ("+", None),
    ("+/tennis/#", None),
    ("sport/+/player1", None),
    ("/+", None),
    ("+/+", None),
    ("sport+", Some(TopicError::MisplacedWildcard)),
    ("sport/+tennis", Some(TopicError::MisplacedWildcard)),
];

fn check_filter_examples(is_multi_level: bool) {
    for version in ALL {
        for &(example, error) in FILTER_EXAMPLES {
            if example.contains('#') != is_multi_level {
                continue;
            }
            for bytes in [
                subscribe(version, example.as_bytes(), 1),
                unsubscribe(version, example.as_bytes()),
            ] {
                match error {
                    None => {
                        accepted(version, &bytes);
                    }
                    Some(e) => {
                        let err = Packet::decode(&bytes, version, u32::MAX).unwrap_err();
                        assert_eq!(err, DecodeError::InvalidTopicFilter(e), "{example}");
                        assert_eq!(err.reason_code(), ReasonCode::TopicFilterInvalid);
                    }
                }
            }
        }
    }
}

#[test]
fn mqtt_4_7_1_1_multi_level_wildcard_is_alone_and_last() {
    check_filter_examples(true);
}

#[test]
fn mqtt_4_7_1_2_single_level_wildcard_occupies_a_whole_level() {
    check_filter_examples(false);
}

#[test]
fn mqtt_4_7_3_1_topic_names_and_filters_are_not_empty() {
    for version in V3 {
        refused(
            version,
            &publish(version, b"", b""),
            DecodeError::InvalidTopicName(TopicError::Empty),
        );
    }
    for version in ALL {
        refused(
            version,
            &subscribe(version, b"", 0),
            DecodeError::InvalidTopicFilter(TopicError::Empty),
        );
        refused(
            version,
            &unsubscribe(version, b""),
            DecodeError::InvalidTopicFilter(TopicError::Empty),
        );
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        let payload = [&s(b"c")[..], &will_props, &s(b""), &s(b"")].concat();
        refused(
            version,
            &connect(version, 0x06, &[], &payload),
            DecodeError::InvalidTopicName(TopicError::Empty),
        );
    }
    let response = [&[0x08][..], &s(b"")].concat();
    refused(
        V5,
        &publish(V5, b"t", &response),
        DecodeError::InvalidTopicName(TopicError::Empty),
    );
}

#[test]
fn section_3_3_2_1_v5_empty_topic_name_needs_a_topic_alias() {
    let err = Packet::decode(&publish(V5, b"", b""), V5, u32::MAX).unwrap_err();
    assert_eq!(err, DecodeError::InvalidTopicName(TopicError::Empty));
    let bytes = publish(V5, b"", &[0x23, 0x00, 0x07]);
    let Packet::Publish(p) = accepted(V5, &bytes) else {
        panic!("not a PUBLISH");
    };
    assert!(p.topic.is_empty());
    assert_eq!(p.properties.topic_alias.map(|a| a.get()), Some(7));
}

#[test]
fn mqtt_4_7_3_2_topic_names_and_filters_have_no_null_character() {
    for version in ALL {
        refused(
            version,
            &publish(version, b"\0", b""),
            DecodeError::NullCharacter,
        );
        refused(
            version,
            &unsubscribe(version, b"a\0/#"),
            DecodeError::NullCharacter,
        );
    }
    assert_eq!(TopicName::new("a\0"), Err(TopicError::NullCharacter));
    assert_eq!(TopicFilter::new("\0/#"), Err(TopicError::NullCharacter));
}

#[test]
fn mqtt_4_8_2_1_shared_subscription_has_a_share_name() {
    for version in ALL {
        for bad in ["$share/", "$share//a", "$share//#"] {
            refused(
                version,
                &subscribe(version, bad.as_bytes(), 0),
                DecodeError::InvalidTopicFilter(TopicError::InvalidShare),
            );
        }
    }
}

#[test]
fn mqtt_4_8_2_2_share_name_is_followed_by_a_slash_and_a_filter() {
    for version in ALL {
        for bad in [
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
            "$share/g#/a",
        ] {
            refused(
                version,
                &subscribe(version, bad.as_bytes(), 0),
                DecodeError::InvalidTopicFilter(TopicError::InvalidShare),
            );
        }
        refused(
            version,
            &subscribe(version, b"$share/g/a/#/b", 0),
            DecodeError::InvalidTopicFilter(TopicError::MisplacedWildcard),
        );
        let bytes = subscribe(version, b"$share/g/a/+", 0);
        let Packet::Subscribe(sub) = accepted(version, &bytes) else {
            panic!("not a SUBSCRIBE");
        };
        let first = sub.subscriptions.iter().next().unwrap();
        assert_eq!(first.filter.shared(), Some(("g", "a/+")));
    }
}

// ---------------------------------------------------------------------------------------------
// Subscription options
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_3_8_3_4_no_local_on_a_shared_subscription_is_refused() {
    refused(
        V5,
        &subscribe(V5, b"$share/g/a", 0x04),
        DecodeError::InvalidSubscriptionOptions(0x04),
    );
    let bytes = subscribe(V5, b"a", 0x04);
    let Packet::Subscribe(sub) = accepted(V5, &bytes) else {
        panic!("not a SUBSCRIBE");
    };
    assert!(sub.subscriptions.iter().next().unwrap().options.no_local);
}

#[test]
fn mqtt_3_8_3_5_reserved_subscription_option_bits_are_malformed() {
    for options in [0x40, 0x80, 0xC1] {
        let err = Packet::decode(&subscribe(V5, b"a", options), V5, u32::MAX).unwrap_err();
        assert_eq!(err, DecodeError::InvalidSubscriptionOptions(options));
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }
    accepted(V5, &subscribe(V5, b"a", 0x2E));
}

#[test]
fn v311_mqtt_3_8_3_4_reserved_option_bits_and_qos_3_are_malformed() {
    for version in V3 {
        for options in [0x04, 0x08, 0x10, 0x20, 0x80] {
            refused(
                version,
                &subscribe(version, b"a", options),
                DecodeError::InvalidSubscriptionOptions(options),
            );
        }
        refused(
            version,
            &subscribe(version, b"a", 0x03),
            DecodeError::InvalidQoS,
        );
    }
}

#[test]
fn section_3_8_3_1_maximum_qos_3_and_retain_handling_3_are_refused() {
    refused(V5, &subscribe(V5, b"a", 0x03), DecodeError::InvalidQoS);
    refused(
        V5,
        &subscribe(V5, b"a", 0x30),
        DecodeError::InvalidSubscriptionOptions(0x30),
    );
}

// ---------------------------------------------------------------------------------------------
// PUBLISH flags and packet identifiers
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_3_3_1_4_publish_with_both_qos_bits_set_is_malformed() {
    for version in ALL {
        for first in [0x36, 0x37, 0x3E, 0x3F] {
            let mut bytes = publish(version, b"t", b"");
            bytes[0] = first;
            let err = Packet::decode(&bytes, version, u32::MAX).unwrap_err();
            assert_eq!(err, DecodeError::InvalidQoS, "{first:#04x}");
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        }
    }
}

#[test]
fn mqtt_3_3_1_2_dup_is_zero_on_qos_0() {
    for version in ALL {
        for first in [0x38, 0x39] {
            let mut bytes = publish(version, b"t", b"");
            bytes[0] = first;
            refused(version, &bytes, DecodeError::DupOnQoS0);
        }
    }
}

#[test]
fn mqtt_2_2_1_2_qos_0_publish_has_no_packet_identifier() {
    // The two bytes after the topic of a QoS 0 PUBLISH are payload, not an identifier.
    let bytes = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A];
    let Packet::Publish(p) = accepted(V311, &bytes) else {
        panic!("not a PUBLISH");
    };
    assert_eq!(p.packet_id(), None);
    assert_eq!(p.payload, &[0x00, 0x0A]);
    let mut buf = [0u8; 9];
    assert_eq!(Packet::Publish(p).encode(V311, &mut buf), Ok(9));
    assert_eq!(buf, bytes);
}

#[test]
fn mqtt_2_2_1_3_packet_identifier_zero_is_refused() {
    for version in ALL {
        let props = if version.is_v5() { &[0x00][..] } else { &[] };
        let body = |rest: &[u8]| [&[0x00, 0x01, b't', 0x00, 0x00][..], props, rest].concat();
        let cases = [
            packet(0x32, &body(b"x")),
            packet(0x34, &body(b"x")),
            packet(
                0x82,
                &[&[0x00, 0x00][..], props, &s(b"a"), &[0x00]].concat(),
            ),
            packet(0xA2, &[&[0x00, 0x00][..], props, &s(b"a")].concat()),
            vec![0x40, 0x02, 0x00, 0x00],
            vec![0x50, 0x02, 0x00, 0x00],
            vec![0x62, 0x02, 0x00, 0x00],
            vec![0x70, 0x02, 0x00, 0x00],
            packet(0x90, &[&[0x00, 0x00][..], props, &[0x00]].concat()),
            packet(0xB0, &[&[0x00, 0x00][..], props].concat()),
        ];
        for bytes in cases {
            let err = Packet::decode(&bytes, version, u32::MAX).unwrap_err();
            assert_eq!(err, DecodeError::ZeroPacketId, "{version} {bytes:02X?}");
            assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
        }
    }
    assert_eq!(PacketId::new(0), None);
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_2_2_2_1_property_length_is_present_even_when_zero() {
    let cases = [
        vec![0x20, 0x02, 0x00, 0x00],
        [&[0x30, 0x05][..], &s(b"a/b")].concat(),
        [&[0x82, 0x08, 0x00, 0x0A][..], &s(b"a/b"), &[0x01]].concat(),
        [&[0xA2, 0x07, 0x00, 0x0A][..], &s(b"a/b")].concat(),
        vec![0x90, 0x03, 0x00, 0x0A, 0x01],
        vec![0xB0, 0x02, 0x00, 0x0A],
        connect(V311, 0x02, &[], &s(b""))
            .into_iter()
            .enumerate()
            .map(|(i, b)| if i == 8 { 5 } else { b })
            .collect(),
    ];
    for bytes in cases {
        refused(V5, &bytes, DecodeError::LengthMismatch);
    }
    // The encoder always writes it.
    let mut buf = [0u8; 8];
    let n = Packet::ConnAck(ConnAck::new(ReasonCode::Success))
        .encode(V5, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &[0x20, 0x03, 0x00, 0x00, 0x00]);
}

#[test]
fn section_2_2_2_2_property_not_valid_for_the_packet_is_malformed() {
    let will_payload =
        |will_props: &[u8]| [&s(b"c")[..], &props(will_props), &s(b"w"), &s(b"")].concat();
    let cases = [
        (
            publish(V5, b"t", &[0x11, 0, 0, 0, 1]),
            0x11,
            PacketType::Publish,
        ),
        (
            connect(V5, 0x02, &[0x18, 0, 0, 0, 1], &s(b"c")),
            0x18,
            PacketType::Connect,
        ),
        (
            connect(V5, 0x06, &[], &will_payload(&[0x11, 0, 0, 0, 1])),
            0x11,
            PacketType::Connect,
        ),
        (
            packet(
                0x20,
                &[&[0x00, 0x00][..], &props(&[0x23, 0x00, 0x01])].concat(),
            ),
            0x23,
            PacketType::ConnAck,
        ),
        (puback_v5(&[0x0B, 0x01]), 0x0B, PacketType::PubAck),
        (
            packet(
                0x50,
                &[&[0x00, 0x01, 0x00][..], &props(&[0x01, 0x01])].concat(),
            ),
            0x01,
            PacketType::PubRec,
        ),
        (
            packet(
                0x62,
                &[&[0x00, 0x01, 0x00][..], &props(&[0x02, 0, 0, 0, 1])].concat(),
            ),
            0x02,
            PacketType::PubRel,
        ),
        (
            packet(
                0x70,
                &[&[0x00, 0x01, 0x00][..], &props(&[0x23, 0x00, 0x01])].concat(),
            ),
            0x23,
            PacketType::PubComp,
        ),
        (
            packet(
                0x82,
                &[&[0x00, 0x01][..], &props(&[0x1F, 0, 0]), &s(b"a"), &[0]].concat(),
            ),
            0x1F,
            PacketType::Subscribe,
        ),
        (
            packet(
                0x90,
                &[&[0x00, 0x01][..], &props(&[0x0B, 0x01]), &[0x00]].concat(),
            ),
            0x0B,
            PacketType::SubAck,
        ),
        (
            packet(
                0xA2,
                &[&[0x00, 0x01][..], &props(&[0x0B, 0x01]), &s(b"a")].concat(),
            ),
            0x0B,
            PacketType::Unsubscribe,
        ),
        (
            packet(
                0xB0,
                &[&[0x00, 0x01][..], &props(&[0x21, 0x00, 0x01]), &[0x00]].concat(),
            ),
            0x21,
            PacketType::UnsubAck,
        ),
        (
            packet(0xE0, &[&[0x00][..], &props(&[0x23, 0x00, 0x01])].concat()),
            0x23,
            PacketType::Disconnect,
        ),
        (
            packet(0xF0, &[&[0x18][..], &props(&[0x11, 0, 0, 0, 1])].concat()),
            0x11,
            PacketType::Auth,
        ),
    ];
    for (bytes, id, packet_type) in cases {
        let err = Packet::decode(&bytes, V5, u32::MAX).unwrap_err();
        assert_eq!(
            err,
            DecodeError::PropertyNotAllowed { id, packet_type },
            "{bytes:02X?}"
        );
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }
}

#[test]
fn section_2_2_2_2_unknown_property_identifier_is_malformed() {
    for (property, id) in [
        (&[0x00, 0x00][..], 0x00),
        (&[0x04, 0x00], 0x04),
        (&[0x2B, 0x00], 0x2B),
        (&[0x7F, 0x00], 0x7F),
        (&[0x80, 0x01, 0x00], 0x80),
    ] {
        for bytes in [publish(V5, b"t", property), puback_v5(property)] {
            let err = Packet::decode(&bytes, V5, u32::MAX).unwrap_err();
            assert_eq!(err, DecodeError::UnknownProperty(id));
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        }
    }
}

#[test]
fn properties_included_more_than_once_are_a_protocol_error() {
    let twice = |p: &[u8]| [p, p].concat();
    let cases = [
        (publish(V5, b"t", &twice(&[0x02, 0, 0, 0, 1])), 0x02),
        (publish(V5, b"", &twice(&[0x23, 0, 1])), 0x23),
        (connect(V5, 0x02, &twice(&[0x21, 0, 1]), &s(b"c")), 0x21),
        (
            connect(
                V5,
                0x06,
                &[],
                &[
                    &s(b"c")[..],
                    &props(&twice(&[0x18, 0, 0, 0, 1])),
                    &s(b"w"),
                    &s(b""),
                ]
                .concat(),
            ),
            0x18,
        ),
        (
            packet(
                0x20,
                &[&[0x00, 0x00][..], &props(&twice(&[0x24, 0x01]))].concat(),
            ),
            0x24,
        ),
        (puback_v5(&twice(&[0x1F, 0x00, 0x00])), 0x1F),
        (
            packet(
                0x82,
                &[
                    &[0x00, 0x01][..],
                    &props(&twice(&[0x0B, 0x01])),
                    &s(b"a"),
                    &[0],
                ]
                .concat(),
            ),
            0x0B,
        ),
        (
            packet(
                0xE0,
                &[&[0x00][..], &props(&twice(&[0x1C, 0x00, 0x01, b'h']))].concat(),
            ),
            0x1C,
        ),
        (
            packet(
                0xF0,
                &[&[0x18][..], &props(&twice(&[0x15, 0x00, 0x01, b'm']))].concat(),
            ),
            0x15,
        ),
    ];
    for (bytes, id) in cases {
        let err = Packet::decode(&bytes, V5, u32::MAX).unwrap_err();
        assert_eq!(err, DecodeError::DuplicateProperty(id), "{bytes:02X?}");
        assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
    }
    // User properties may repeat anywhere, subscription identifiers in PUBLISH.
    let user = [0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v'];
    accepted(V5, &publish(V5, b"t", &twice(&user)));
    accepted(V5, &puback_v5(&twice(&user)));
    let bytes = publish(V5, b"t", &[0x0B, 0x01, 0x0B, 0x02]);
    let Packet::Publish(p) = accepted(V5, &bytes) else {
        panic!("not a PUBLISH");
    };
    let ids: Vec<u32> = p
        .properties
        .subscription_identifiers
        .iter()
        .map(|i| i.get())
        .collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn property_values_out_of_range_are_a_protocol_error() {
    let connack = |p: &[u8]| packet(0x20, &[&[0x00, 0x00][..], &props(p)].concat());
    let cases = [
        (connect(V5, 0x02, &[0x21, 0x00, 0x00], &s(b"c")), 0x21),
        (connect(V5, 0x02, &[0x27, 0, 0, 0, 0], &s(b"c")), 0x27),
        (connect(V5, 0x02, &[0x17, 0x02], &s(b"c")), 0x17),
        (connect(V5, 0x02, &[0x19, 0xFF], &s(b"c")), 0x19),
        (connack(&[0x21, 0x00, 0x00]), 0x21),
        (connack(&[0x27, 0, 0, 0, 0]), 0x27),
        (connack(&[0x24, 0x02]), 0x24),
        (connack(&[0x25, 0x02]), 0x25),
        (connack(&[0x28, 0x02]), 0x28),
        (connack(&[0x29, 0x02]), 0x29),
        (connack(&[0x2A, 0x02]), 0x2A),
        (publish(V5, b"t", &[0x01, 0x02]), 0x01),
    ];
    for (bytes, id) in cases {
        let err = Packet::decode(&bytes, V5, u32::MAX).unwrap_err();
        assert_eq!(err, DecodeError::InvalidPropertyValue(id), "{bytes:02X?}");
        assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
    }
}

#[test]
fn mqtt_3_3_2_8_topic_alias_zero_is_refused() {
    refused(
        V5,
        &publish(V5, b"t", &[0x23, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x23),
    );
    refused(
        V5,
        &publish(V5, b"", &[0x23, 0x00, 0x00]),
        DecodeError::InvalidPropertyValue(0x23),
    );
}

#[test]
fn section_3_8_2_1_2_subscription_identifier_zero_is_a_protocol_error() {
    let sub = packet(
        0x82,
        &[&[0x00, 0x01][..], &props(&[0x0B, 0x00]), &s(b"a"), &[0]].concat(),
    );
    refused(V5, &sub, DecodeError::InvalidPropertyValue(0x0B));
    refused(
        V5,
        &publish(V5, b"t", &[0x0B, 0x00]),
        DecodeError::InvalidPropertyValue(0x0B),
    );
}

// ---------------------------------------------------------------------------------------------
// Lengths
// ---------------------------------------------------------------------------------------------

#[test]
fn lengths_that_disagree_with_the_remaining_length_are_malformed() {
    let mut connect_trailing = connect(V311, 0x02, &[], &s(b"c"));
    connect_trailing[1] += 1;
    connect_trailing.push(0x00);
    let cases_v3: Vec<Vec<u8>> = vec![
        vec![0xC0, 0x01, 0x00],
        vec![0xD0, 0x01, 0x00],
        vec![0xE0, 0x01, 0x00],
        vec![0x40, 0x03, 0x00, 0x0A, 0x00],
        vec![0x40, 0x01, 0x0A],
        vec![0x20, 0x03, 0x00, 0x00, 0x00],
        vec![0x20, 0x01, 0x00],
        vec![0x30, 0x03, 0x00, 0x05, b'a'],
        vec![0x30, 0x01, 0x00],
        vec![0x32, 0x04, 0x00, 0x01, b'a', 0x00],
        [&[0x82, 0x05, 0x00, 0x0A][..], &[0x00, 0x01, b'a']].concat(),
        vec![0xA2, 0x05, 0x00, 0x0A, 0x00, 0x02, b'a'],
        connect_trailing,
    ];
    for version in V3 {
        for bytes in &cases_v3 {
            refused(version, bytes, DecodeError::LengthMismatch);
        }
    }
    let cases_v5: Vec<Vec<u8>> = vec![
        vec![0xC0, 0x01, 0x00],
        packet(0x30, &[&s(b"a")[..], &[0x09, 0x01, 0x01]].concat()),
        vec![0x40, 0x07, 0x00, 0x0A, 0x80, 0x03, 0x1F, 0x00, 0x05],
        vec![0x40, 0x05, 0x00, 0x0A, 0x80, 0x01, 0x1F],
        vec![0xE0, 0x03, 0x00, 0x00, 0x00],
        vec![0xF0, 0x02, 0x18, 0x05],
        vec![0x20, 0x04, 0x00, 0x00, 0x00, 0x00],
    ];
    for bytes in &cases_v5 {
        refused(V5, bytes, DecodeError::LengthMismatch);
    }
    assert_eq!(
        DecodeError::LengthMismatch.reason_code(),
        ReasonCode::MalformedPacket
    );
}

// ---------------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------------

fn connect_named(name: &[u8], level: u8) -> Vec<u8> {
    let body = [&s(name)[..], &[level, 0x02, 0x00, 0x3C], &s(b"c")].concat();
    packet(0x10, &body)
}

#[test]
fn mqtt_3_1_2_1_protocol_name_must_match_the_version() {
    for (name, level) in [
        (&b"MQTX"[..], 4),
        (b"mqtt", 4),
        (b"MQTT", 3),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
    ] {
        for told in ALL {
            let err = Packet::decode(&connect_named(name, level), told, u32::MAX).unwrap_err();
            assert_eq!(err, DecodeError::UnsupportedProtocol { level });
            assert_eq!(err.reason_code(), ReasonCode::UnsupportedProtocolVersion);
        }
    }
}

#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level_is_refused() {
    for level in [0, 1, 2, 6, 0x84, 0xFF] {
        refused(
            V5,
            &connect_named(b"MQTT", level),
            DecodeError::UnsupportedProtocol { level },
        );
    }
    for (name, level, version) in [
        (&b"MQIsdp"[..], 3, V31),
        (b"MQTT", 4, V311),
        (b"MQTT", 5, V5),
    ] {
        let mut body = [&s(name)[..], &[level, 0x02, 0x00, 0x3C]].concat();
        if version.is_v5() {
            body.push(0x00);
        }
        body.extend(s(b"c"));
        let bytes = packet(0x10, &body);
        let Packet::Connect(c) = accepted(V311, &bytes) else {
            panic!("not a CONNECT");
        };
        assert_eq!(c.protocol, version);
    }
}

#[test]
fn mqtt_3_1_2_3_reserved_connect_flag_is_malformed() {
    for version in ALL {
        for flags in [0x01, 0x03, 0xC3] {
            let payload = if flags & 0x80 != 0 {
                [&s(b"c")[..], &s(b"u"), &s(b"p")].concat()
            } else {
                s(b"c")
            };
            let err = Packet::decode(&connect(version, flags, &[], &payload), version, u32::MAX)
                .unwrap_err();
            assert_eq!(err, DecodeError::InvalidConnectFlags(flags));
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        }
    }
}

/// CONNECT flags 3.1.1 numbers [MQTT-3.1.2-13], [MQTT-3.1.2-14] and [MQTT-3.1.2-15].
fn will_flag_case(flags: u8) {
    for version in ALL {
        refused(
            version,
            &connect(version, flags, &[], &s(b"c")),
            DecodeError::InvalidConnectFlags(flags),
        );
    }
}

#[test]
fn mqtt_3_1_2_11_will_qos_is_zero_without_a_will() {
    will_flag_case(0x0A);
    will_flag_case(0x12);
    will_flag_case(0x18);
}

#[test]
fn mqtt_3_1_2_12_will_qos_3_is_malformed() {
    for version in ALL {
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        let payload = [&s(b"c")[..], &will_props, &s(b"w"), &s(b"")].concat();
        refused(
            version,
            &connect(version, 0x1E, &[], &payload),
            DecodeError::InvalidConnectFlags(0x1E),
        );
        for qos in 0..3u8 {
            let bytes = connect(version, 0x06 | (qos << 3), &[], &payload);
            let Packet::Connect(c) = accepted(version, &bytes) else {
                panic!("not a CONNECT");
            };
            assert_eq!(c.will.unwrap().qos as u8, qos);
        }
    }
}

#[test]
fn mqtt_3_1_2_13_will_retain_is_zero_without_a_will() {
    will_flag_case(0x22);
}

#[test]
fn v311_mqtt_3_1_2_22_password_needs_a_user_name() {
    let payload = [&s(b"c")[..], &s(b"p")].concat();
    for version in V3 {
        refused(
            version,
            &connect(version, 0x42, &[], &payload),
            DecodeError::InvalidConnectFlags(0x42),
        );
    }
    // 5.0 allows a password alone.
    let bytes = connect(V5, 0x42, &[], &payload);
    let Packet::Connect(c) = accepted(V5, &bytes) else {
        panic!("not a CONNECT");
    };
    assert_eq!((c.username, c.password), (None, Some(&b"p"[..])));
    // And the encoder refuses to write one for 3.1.1.
    let connect = Connect {
        password: Some(b"p"),
        ..Connect::new(V311, "c")
    };
    assert!(matches!(
        Packet::Connect(connect).encoded_len(V311),
        Err(EncodeError::NotInVersion(_))
    ));
}

#[test]
fn mqtt_3_1_2_9_will_topic_and_payload_are_present_with_the_will_flag() {
    for version in ALL {
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        for payload in [
            s(b"c"),
            [&s(b"c")[..], &will_props].concat(),
            [&s(b"c")[..], &will_props, &s(b"w")].concat(),
        ] {
            refused(
                version,
                &connect(version, 0x06, &[], &payload),
                DecodeError::LengthMismatch,
            );
        }
    }
}

#[test]
fn mqtt_3_1_2_16_no_user_name_without_its_flag() {
    for version in ALL {
        let payload = [&s(b"c")[..], &s(b"u")].concat();
        refused(
            version,
            &connect(version, 0x02, &[], &payload),
            DecodeError::LengthMismatch,
        );
    }
}

#[test]
fn mqtt_3_1_2_17_user_name_is_present_with_its_flag() {
    for version in ALL {
        refused(
            version,
            &connect(version, 0x82, &[], &s(b"c")),
            DecodeError::LengthMismatch,
        );
    }
}

#[test]
fn mqtt_3_1_2_18_no_password_without_its_flag() {
    for version in ALL {
        let payload = [&s(b"c")[..], &s(b"u"), &s(b"p")].concat();
        refused(
            version,
            &connect(version, 0x82, &[], &payload),
            DecodeError::LengthMismatch,
        );
    }
}

#[test]
fn mqtt_3_1_2_19_password_is_present_with_its_flag() {
    for version in ALL {
        let payload = [&s(b"c")[..], &s(b"u")].concat();
        refused(
            version,
            &connect(version, 0xC2, &[], &payload),
            DecodeError::LengthMismatch,
        );
    }
}

#[test]
fn mqtt_3_1_3_1_payload_fields_come_in_order() {
    for version in ALL {
        let will_props = if version.is_v5() { vec![0x00] } else { vec![] };
        let payload = [
            &s(b"id")[..],
            &will_props,
            &s(b"will/t"),
            &s(b"bye"),
            &s(b"user"),
            &s(b"pass"),
        ]
        .concat();
        let bytes = connect(version, 0xCE, &[], &payload);
        let Packet::Connect(c) = accepted(version, &bytes) else {
            panic!("not a CONNECT");
        };
        let will = c.will.unwrap();
        assert_eq!(c.client_id, "id");
        assert_eq!(will.topic.as_str(), "will/t");
        assert_eq!(will.payload, b"bye");
        assert_eq!(c.username, Some("user"));
        assert_eq!(c.password, Some(&b"pass"[..]));
    }
}

// ---------------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_3_2_2_1_connack_reserved_flag_bits_are_zero() {
    for flags in [0x02, 0x80, 0xFE, 0x03] {
        for version in V3 {
            refused(
                version,
                &[0x20, 0x02, flags, 0x00],
                DecodeError::InvalidConnAckFlags(flags),
            );
        }
        let err = Packet::decode(&[0x20, 0x03, flags, 0x00, 0x00], V5, u32::MAX).unwrap_err();
        assert_eq!(err, DecodeError::InvalidConnAckFlags(flags));
        assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
    }
}

#[test]
fn mqtt_3_2_2_6_session_present_is_zero_with_a_failure_code() {
    for code in [0x80, 0x87, 0x9F] {
        refused(
            V5,
            &[0x20, 0x03, 0x01, code, 0x00],
            DecodeError::InvalidConnAckFlags(0x01),
        );
    }
    let bytes = [0x20, 0x03, 0x01, 0x00, 0x00];
    let Packet::ConnAck(c) = accepted(V5, &bytes) else {
        panic!("not a CONNACK");
    };
    assert!(c.session_present);
}

#[test]
fn v311_mqtt_3_2_2_4_session_present_is_zero_with_a_failure_code() {
    for version in V3 {
        for code in 1..=5 {
            refused(
                version,
                &[0x20, 0x02, 0x01, code],
                DecodeError::InvalidConnAckFlags(0x01),
            );
        }
    }
}

#[test]
fn section_3_2_2_3_v311_connack_return_codes_6_to_255_are_reserved() {
    for version in V3 {
        for code in 0..=255u8 {
            let bytes = [0x20, 0x02, 0x00, code];
            let result = Packet::decode(&bytes, version, u32::MAX);
            if code <= 5 {
                assert!(result.is_ok(), "{code}");
            } else {
                assert_eq!(
                    result,
                    Err(DecodeError::InvalidReasonCode {
                        packet_type: PacketType::ConnAck,
                        code
                    })
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reason codes per packet (5.0 Tables 3-1, 3-4 to 3-10 and 3-13)
// ---------------------------------------------------------------------------------------------

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

/// Decodes the packet `make` builds around every byte value and checks that exactly the codes
/// in `valid` are accepted, each as itself; then builds the packet from every defined reason
/// code and checks that exactly those encode.
fn check_reason_codes(
    version: ProtocolVersion,
    packet_type: PacketType,
    valid: &[u8],
    make: impl Fn(u8) -> Vec<u8>,
    build: impl Fn(ReasonCode) -> Packet<'static>,
    reason_of: impl Fn(Packet<'_>) -> ReasonCode,
) {
    for code in 0..=255u8 {
        let bytes = make(code);
        let result = Packet::decode(&bytes, version, u32::MAX);
        if valid.contains(&code) {
            let Ok(Decoded::Packet { packet, .. }) = result else {
                panic!("{packet_type:?} code {code:#04x} refused: {result:?}");
            };
            assert_eq!(reason_of(packet).as_u8(), code);
        } else {
            let err = result.unwrap_err();
            assert_eq!(
                err,
                DecodeError::InvalidReasonCode { packet_type, code },
                "{packet_type:?} code {code:#04x}"
            );
            assert_eq!(err.reason_code(), ReasonCode::MalformedPacket);
        }
        if let Some(reason) = ReasonCode::from_u8(code) {
            let encoded = build(reason).encoded_len(version);
            if valid.contains(&code) {
                assert!(encoded.is_ok(), "{packet_type:?} {reason:?}");
            } else {
                assert_eq!(
                    encoded,
                    Err(EncodeError::InvalidReasonCode(reason)),
                    "{packet_type:?}"
                );
            }
        }
    }
}

fn pub_response_reason(p: Packet<'_>) -> ReasonCode {
    match p {
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            r.reason_code
        }
        other => panic!("{other:?}"),
    }
}

fn pub_response_with(reason: ReasonCode) -> PubResponse<'static> {
    PubResponse {
        reason_code: reason,
        ..PubResponse::new(pid(1))
    }
}

#[test]
fn mqtt_3_2_2_8_connack_uses_connect_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::ConnAck,
        CONNACK_CODES,
        |c| vec![0x20, 0x03, 0x00, c, 0x00],
        |r| Packet::ConnAck(ConnAck::new(r)),
        |p| match p {
            Packet::ConnAck(c) => c.reason_code,
            other => panic!("{other:?}"),
        },
    );
}

#[test]
fn mqtt_3_4_2_1_puback_uses_puback_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::PubAck,
        PUBACK_CODES,
        |c| vec![0x40, 0x03, 0x00, 0x01, c],
        |r| Packet::PubAck(pub_response_with(r)),
        pub_response_reason,
    );
}

#[test]
fn mqtt_3_5_2_1_pubrec_uses_pubrec_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::PubRec,
        PUBACK_CODES,
        |c| vec![0x50, 0x03, 0x00, 0x01, c],
        |r| Packet::PubRec(pub_response_with(r)),
        pub_response_reason,
    );
}

#[test]
fn mqtt_3_6_2_1_pubrel_uses_pubrel_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::PubRel,
        PUBREL_CODES,
        |c| vec![0x62, 0x03, 0x00, 0x01, c],
        |r| Packet::PubRel(pub_response_with(r)),
        pub_response_reason,
    );
}

#[test]
fn mqtt_3_7_2_1_pubcomp_uses_pubcomp_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::PubComp,
        PUBREL_CODES,
        |c| vec![0x70, 0x04, 0x00, 0x01, c, 0x00],
        |r| Packet::PubComp(pub_response_with(r)),
        pub_response_reason,
    );
}

fn leak_codes(reason: ReasonCode) -> &'static [ReasonCode] {
    Box::leak(Box::new([reason]))
}

fn first_code(codes: mqtt_sansio::Seq<'_, ReasonCode>) -> ReasonCode {
    codes.iter().next().unwrap()
}

#[test]
fn mqtt_3_9_3_2_suback_uses_subscribe_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::SubAck,
        SUBACK_CODES,
        |c| vec![0x90, 0x05, 0x00, 0x01, 0x00, 0x00, c],
        |r| Packet::SubAck(SubAck::new(pid(1), leak_codes(r))),
        |p| match p {
            Packet::SubAck(s) => s.reason_codes.iter().nth(1).unwrap(),
            other => panic!("{other:?}"),
        },
    );
    // 3.1.1 numbers the same statement [MQTT-3.9.3-2]: 0x00, 0x01, 0x02 and 0x80 only.
    for version in V3 {
        check_reason_codes(
            version,
            PacketType::SubAck,
            &[0x00, 0x01, 0x02, 0x80],
            |c| vec![0x90, 0x03, 0x00, 0x01, c],
            |r| Packet::SubAck(SubAck::new(pid(1), leak_codes(r))),
            |p| match p {
                Packet::SubAck(s) => first_code(s.reason_codes),
                other => panic!("{other:?}"),
            },
        );
    }
}

#[test]
fn mqtt_3_11_3_2_unsuback_uses_unsubscribe_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::UnsubAck,
        UNSUBACK_CODES,
        |c| vec![0xB0, 0x04, 0x00, 0x01, 0x00, c],
        |r| Packet::UnsubAck(UnsubAck::new(pid(1), leak_codes(r))),
        |p| match p {
            Packet::UnsubAck(s) => first_code(s.reason_codes),
            other => panic!("{other:?}"),
        },
    );
    // 3.1.1's UNSUBACK has no payload.
    for version in V3 {
        refused(
            version,
            &[0xB0, 0x03, 0x00, 0x01, 0x00],
            DecodeError::InvalidReasonCode {
                packet_type: PacketType::UnsubAck,
                code: 0,
            },
        );
    }
}

#[test]
fn mqtt_3_14_2_1_disconnect_uses_disconnect_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::Disconnect,
        DISCONNECT_CODES,
        |c| vec![0xE0, 0x01, c],
        |r| Packet::Disconnect(Disconnect::new(r)),
        |p| match p {
            Packet::Disconnect(d) => d.reason_code,
            other => panic!("{other:?}"),
        },
    );
}

#[test]
fn mqtt_3_15_2_1_auth_uses_authenticate_reason_codes() {
    check_reason_codes(
        V5,
        PacketType::Auth,
        AUTH_CODES,
        |c| vec![0xF0, 0x02, c, 0x00],
        |r| {
            Packet::Auth(mqtt_sansio::Auth {
                reason_code: r,
                properties: Default::default(),
            })
        },
        |p| match p {
            Packet::Auth(a) => a.reason_code,
            other => panic!("{other:?}"),
        },
    );
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE and UNSUBSCRIBE payloads
// ---------------------------------------------------------------------------------------------

#[test]
fn mqtt_3_8_3_2_subscribe_has_at_least_one_filter() {
    // 3.1.1 numbers this [MQTT-3.8.3-3].
    for version in V3 {
        refused(
            version,
            &[0x82, 0x02, 0x00, 0x0A],
            DecodeError::NoTopicFilters,
        );
    }
    let err = Packet::decode(&[0x82, 0x03, 0x00, 0x0A, 0x00], V5, u32::MAX).unwrap_err();
    assert_eq!(err, DecodeError::NoTopicFilters);
    assert_eq!(err.reason_code(), ReasonCode::ProtocolError);
    for version in ALL {
        assert_eq!(
            Packet::Subscribe(Subscribe::new(pid(1), &[])).encoded_len(version),
            Err(EncodeError::NoTopicFilters)
        );
    }
    let subs = [Subscription::new(
        TopicFilter::new("a").unwrap(),
        QoS::AtMostOnce,
    )];
    assert!(Packet::Subscribe(Subscribe::new(pid(1), &subs))
        .encoded_len(V5)
        .is_ok());
}

#[test]
fn mqtt_3_10_3_2_unsubscribe_has_at_least_one_filter() {
    for version in V3 {
        refused(
            version,
            &[0xA2, 0x02, 0x00, 0x0A],
            DecodeError::NoTopicFilters,
        );
    }
    refused(
        V5,
        &[0xA2, 0x03, 0x00, 0x0A, 0x00],
        DecodeError::NoTopicFilters,
    );
    for version in ALL {
        assert_eq!(
            Packet::Unsubscribe(Unsubscribe::new(pid(1), &[])).encoded_len(version),
            Err(EncodeError::NoTopicFilters)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reason codes of decode errors (5.0 section 4.13)
// ---------------------------------------------------------------------------------------------

#[test]
fn decode_errors_map_to_the_reason_codes_of_section_4_13() {
    use DecodeError as E;
    use ReasonCode as R;
    let cases = [
        (E::ReservedPacketType(0), R::MalformedPacket),
        (
            E::InvalidHeaderFlags {
                packet_type: PacketType::PubRel,
                flags: 0,
            },
            R::MalformedPacket,
        ),
        (E::VarIntTooLong, R::MalformedPacket),
        (E::PacketTooLarge { size: 2, max: 1 }, R::PacketTooLarge),
        (E::LengthMismatch, R::MalformedPacket),
        (E::InvalidUtf8, R::MalformedPacket),
        (E::NullCharacter, R::MalformedPacket),
        (E::InvalidQoS, R::MalformedPacket),
        (E::DupOnQoS0, R::MalformedPacket),
        (
            E::InvalidTopicName(TopicError::Wildcard),
            R::TopicNameInvalid,
        ),
        (
            E::InvalidTopicFilter(TopicError::MisplacedWildcard),
            R::TopicFilterInvalid,
        ),
        (E::ZeroPacketId, R::ProtocolError),
        (E::UnknownProperty(0x7F), R::MalformedPacket),
        (
            E::PropertyNotAllowed {
                id: 0x23,
                packet_type: PacketType::ConnAck,
            },
            R::MalformedPacket,
        ),
        (E::DuplicateProperty(0x02), R::ProtocolError),
        (E::InvalidPropertyValue(0x21), R::ProtocolError),
        (
            E::InvalidReasonCode {
                packet_type: PacketType::PubAck,
                code: 0x01,
            },
            R::MalformedPacket,
        ),
        (E::NoTopicFilters, R::ProtocolError),
        (E::InvalidSubscriptionOptions(0xC0), R::MalformedPacket),
        (
            E::UnsupportedProtocol { level: 6 },
            R::UnsupportedProtocolVersion,
        ),
        (E::InvalidConnectFlags(0x01), R::MalformedPacket),
        (E::InvalidConnAckFlags(0x02), R::MalformedPacket),
    ];
    for (error, reason) in cases {
        assert_eq!(error.reason_code(), reason, "{error:?}");
        // Every code can be sent: in a DISCONNECT, or (the CONNECT-only one) in a CONNACK.
        let sendable = reason.is_valid_for(PacketType::Disconnect)
            || (matches!(error, E::UnsupportedProtocol { .. })
                && reason.is_valid_for(PacketType::ConnAck));
        assert!(sendable, "{reason:?} for {error:?}");
        assert!(reason.is_error());
    }
}

#[test]
fn decode_errors_are_displayable() {
    let text = DecodeError::PacketTooLarge { size: 9, max: 8 }.to_string();
    assert!(text.contains('9') && text.contains('8'), "{text}");
    let _: &dyn std::error::Error = &DecodeError::InvalidUtf8;
}

#[test]
fn publish_round_trip_keeps_flags() {
    // A sanity check that the refusals above are not refusing everything: each flag combination
    // the specification allows decodes, and as itself.
    for version in ALL {
        for first in [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x3A, 0x3B, 0x3C, 0x3D] {
            let qos = (first >> 1) & 3;
            let mut body = s(b"t");
            if qos > 0 {
                body.extend_from_slice(&[0x00, 0x07]);
            }
            if version.is_v5() {
                body.push(0x00);
            }
            let bytes = packet(first, &body);
            let Packet::Publish(p) = accepted(version, &bytes) else {
                panic!("not a PUBLISH");
            };
            assert_eq!(p.dup, first & 0x08 != 0);
            assert_eq!(p.retain, first & 0x01 != 0);
            assert_eq!(p.qos_pid.qos() as u8, qos);
            let mut buf = vec![0u8; bytes.len()];
            Packet::Publish(p).encode(version, &mut buf).unwrap();
            assert_eq!(buf, bytes);
        }
    }
}

#[test]
fn bad_publish_flags_and_auth_before_5_are_refused_from_the_fixed_header_alone() {
    use mqtt_sansio::{Decoded, Packet, ProtocolVersion};
    // Only the first two bytes have arrived; the body would be 100 bytes.
    let cases: [(&[u8], ProtocolVersion, DecodeError); 3] = [
        (
            &[0x36, 100],
            ProtocolVersion::V3_1_1,
            DecodeError::InvalidQoS,
        ),
        (&[0x38, 100], ProtocolVersion::V5, DecodeError::DupOnQoS0),
        (
            &[0xF0, 100],
            ProtocolVersion::V3_1_1,
            DecodeError::ReservedPacketType(15),
        ),
    ];
    for (bytes, version, error) in cases {
        assert_eq!(Packet::decode(bytes, version, u32::MAX), Err(error));
    }
    assert!(matches!(
        Packet::decode(&[0xF0, 100], ProtocolVersion::V5, u32::MAX),
        Ok(Decoded::Incomplete { .. })
    ));
}
