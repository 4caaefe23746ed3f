//! Brokers that break the protocol: each violation is a typed error, a 5.0 DISCONNECT with the
//! right reason code, and a closing connection. Never a panic.

mod support;

use mqtt_sansio::session::{ConnectionState, LostReason, ProtocolError, Read};
use mqtt_sansio::{ConnAck, Connect, Packet, PacketType, ProtocolVersion, QoS, ReasonCode};
use support::*;

fn connected(v: ProtocolVersion) -> Harness {
    let mut h = Harness::new(v);
    h.connect(true, false);
    h
}

/// Feeds `bytes`, expects `error`, and checks what goes on the wire afterwards.
fn expect_violation(v: ProtocolVersion, h: &mut Harness, bytes: &[u8], code: ReasonCode) {
    let now = h.instant();
    let err = h.s.handle_read(now, bytes).unwrap_err();
    assert_eq!(err.reason_code(), code, "{err}");
    let sent = h.take_sent();
    if v.is_v5() {
        assert_eq!(sent, vec![vec![0xE0, 0x01, code.as_u8()]]);
    } else {
        assert!(sent.is_empty(), "3.1.1 just closes");
    }
    assert_eq!(h.s.state(), ConnectionState::Closing);
    assert!(h
        .take_events()
        .contains(&Ev::Lost(LostReason::ProtocolError(code))));
    // Input after the violation is ignored.
    assert_eq!(h.s.handle_read(now, &[0xD0, 0x00]).unwrap(), Read::Closing);
}

#[test]
fn malformed_packet_is_disconnected_with_0x81() {
    for v in BOTH {
        let mut h = connected(v);
        // PUBLISH with QoS 3
        expect_violation(
            v,
            &mut h,
            &[0x36, 0x03, 0x00, 0x01, b't'],
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn remaining_length_of_five_bytes_is_malformed() {
    for v in BOTH {
        let mut h = connected(v);
        expect_violation(
            v,
            &mut h,
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            ReasonCode::MalformedPacket,
        );
    }
}

#[test]
fn reserved_packet_types_are_malformed() {
    for v in BOTH {
        let mut h = connected(v);
        expect_violation(v, &mut h, &[0x00, 0x00], ReasonCode::MalformedPacket);
    }
}

/// A packet a client never receives is refused from its first byte, whatever its body: a
/// protocol error (0x82), not a malformed packet, even when its body or flags are malformed
/// too. In 3.1.1 that includes DISCONNECT (only 5.0 servers send it) and type 15 (AUTH is
/// 5.0's; reserved in 3.1.1); in 5.0, AUTH without an authentication method.
#[test]
fn packets_a_client_never_receives_are_refused_from_the_first_byte() {
    let refused: &[(&[u8], PacketType)] = &[
        // CONNECT, empty (malformed as a CONNECT)
        (&[0x10, 0x00], PacketType::Connect),
        // SUBSCRIBE with wrong flags and no filter
        (&[0x80, 0x02, 0x00, 0x01], PacketType::Subscribe),
        // SUBSCRIBE, right flags, packet identifier 0 and no filter
        (&[0x82, 0x02, 0x00, 0x00], PacketType::Subscribe),
        // UNSUBSCRIBE without a filter
        (&[0xA2, 0x02, 0x00, 0x01], PacketType::Unsubscribe),
        // PINGREQ, well-formed, and one with a body
        (&[0xC0, 0x00], PacketType::PingReq),
        (&[0xC0, 0x01, 0x00], PacketType::PingReq),
        // Only the first byte arrived
        (&[0x82], PacketType::Subscribe),
    ];
    for v in BOTH {
        for &(bytes, packet_type) in refused {
            let mut h = connected(v);
            let now = h.instant();
            assert_eq!(
                h.s.handle_read(now, bytes),
                Err(ProtocolError::UnexpectedPacket(packet_type)),
                "{v:?} {bytes:02x?}"
            );
            let mut h = connected(v);
            expect_violation(v, &mut h, bytes, ReasonCode::ProtocolError);
        }
        // Before CONNACK too.
        let mut h = Harness::new(v);
        h.s.connect(&Connect::new(v, "c")).unwrap();
        h.take_sent();
        let now = h.instant();
        assert_eq!(
            h.s.handle_read(now, &[0x82, 0x00]),
            Err(ProtocolError::UnexpectedPacket(PacketType::Subscribe))
        );
    }
    // 3.1.1: DISCONNECT, and type 15 (AUTH in 5.0), were it malformed or not.
    for bytes in [&[0xE0, 0x00][..], &[0xE0, 0x01, 0x00], &[0xF0, 0x00]] {
        let mut h = connected(ProtocolVersion::V3_1_1);
        let now = h.instant();
        let expected = if bytes[0] == 0xF0 {
            PacketType::Auth
        } else {
            PacketType::Disconnect
        };
        assert_eq!(
            h.s.handle_read(now, bytes),
            Err(ProtocolError::UnexpectedPacket(expected)),
            "{bytes:02x?}"
        );
    }
    // 5.0 AUTH without an authentication method, malformed or not.
    for bytes in [&[0xF0, 0x00][..], &[0xF0, 0x01, 0x77]] {
        let mut h = connected(ProtocolVersion::V5);
        expect_violation(
            ProtocolVersion::V5,
            &mut h,
            bytes,
            ReasonCode::ProtocolError,
        );
    }
}

#[test]
fn publish_with_wildcard_topic_or_invalid_utf8_or_packet_id_0() {
    for v in BOTH {
        let mut h = connected(v);
        let props = if v.is_v5() { vec![0u8] } else { vec![] };
        let mut wildcard = vec![0x30, 0, 0, 3, b'a', b'/', b'#'];
        wildcard.extend(&props);
        wildcard[1] = (wildcard.len() - 2) as u8;
        expect_violation(v, &mut h, &wildcard, ReasonCode::TopicNameInvalid);

        let mut h = connected(v);
        let mut utf8 = vec![0x30, 0, 0, 2, 0xC3, 0x28];
        utf8.extend(&props);
        utf8[1] = (utf8.len() - 2) as u8;
        expect_violation(v, &mut h, &utf8, ReasonCode::MalformedPacket);

        let mut h = connected(v);
        let mut zero = vec![0x32, 0, 0, 1, b't', 0, 0];
        zero.extend(&props);
        zero[1] = (zero.len() - 2) as u8;
        expect_violation(v, &mut h, &zero, ReasonCode::ProtocolError);
    }
}

#[test]
fn connack_of_the_wrong_length_is_malformed() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.s.connect(&Connect::new(v, "c")).unwrap();
        h.take_sent();
        // 3.1.1's CONNACK is exactly 2 bytes; 5.0's needs at least its property length.
        let bytes: &[u8] = if v.is_v5() {
            &[0x20, 0x02, 0x00, 0x00]
        } else {
            &[0x20, 0x03, 0x00, 0x00, 0x00]
        };
        expect_violation(v, &mut h, bytes, ReasonCode::MalformedPacket);
    }
}

#[test]
fn repeated_v5_property_is_a_protocol_error() {
    let v = ProtocolVersion::V5;
    let mut h = connected(v);
    // PUBLISH "t" with message expiry twice
    let bytes = [
        0x30, 0x0E, 0, 1, b't', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2,
    ];
    expect_violation(v, &mut h, &bytes, ReasonCode::ProtocolError);
}

#[test]
fn publish_before_connack_is_a_protocol_error() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.s.connect(&Connect::new(v, "c")).unwrap();
        h.take_sent();
        let bytes = enc(incoming("t", b"", QoS::AtMostOnce, 0), v);
        expect_violation(v, &mut h, &bytes, ReasonCode::ProtocolError);
    }
}

#[test]
fn second_connack_and_client_only_packets_are_protocol_errors() {
    for v in BOTH {
        let mut h = connected(v);
        let bytes = enc(Packet::ConnAck(ConnAck::new(ReasonCode::Success)), v);
        expect_violation(v, &mut h, &bytes, ReasonCode::ProtocolError);
        let mut h = connected(v);
        expect_violation(v, &mut h, &[0xC0, 0x00], ReasonCode::ProtocolError); // PINGREQ
        let mut h = connected(v);
        let sub = enc(
            Packet::Subscribe(mqtt_sansio::Subscribe::new(
                pid(1),
                &[mqtt_sansio::Subscription::new(
                    mqtt_sansio::TopicFilter::new("a").unwrap(),
                    QoS::AtMostOnce,
                )],
            )),
            v,
        );
        expect_violation(v, &mut h, &sub, ReasonCode::ProtocolError);
    }
}

#[test]
fn mqtt_3_2_2_4_session_present_after_clean_start_is_a_protocol_error() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.s.connect(&Connect::new(v, "c")).unwrap();
        h.take_sent();
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.session_present = true;
        let bytes = enc(Packet::ConnAck(ack), v);
        expect_violation(v, &mut h, &bytes, ReasonCode::ProtocolError);
    }
}

#[test]
fn suback_with_the_wrong_number_of_codes_is_a_protocol_error() {
    for v in BOTH {
        let mut h = connected(v);
        let f = mqtt_sansio::TopicFilter::new("a").unwrap();
        let id =
            h.s.subscribe(
                &[mqtt_sansio::Subscription::new(f, QoS::AtMostOnce)],
                Default::default(),
            )
            .unwrap();
        h.take_sent();
        let codes = [ReasonCode::Success, ReasonCode::Success];
        let bytes = enc(Packet::SubAck(mqtt_sansio::SubAck::new(id, &codes)), v);
        expect_violation(v, &mut h, &bytes, ReasonCode::ProtocolError);
    }
}

#[test]
fn auth_without_an_authentication_method_is_a_protocol_error() {
    let v = ProtocolVersion::V5;
    let mut h = connected(v);
    let auth = mqtt_sansio::Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Default::default(),
    };
    let bytes = enc(Packet::Auth(auth), v);
    let now = h.instant();
    assert_eq!(
        h.s.handle_read(now, &bytes),
        Err(ProtocolError::UnexpectedPacket(PacketType::Auth))
    );
}

#[test]
fn connection_refused_is_reported_with_its_reason() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.s.connect(&Connect::new(v, "c")).unwrap();
        h.take_sent();
        h.feed_packet(Packet::ConnAck(ConnAck::new(
            ReasonCode::BadUserNameOrPassword,
        )))
        .unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Refused(ReasonCode::BadUserNameOrPassword)]
        );
        assert_eq!(h.s.state(), ConnectionState::Closing);
    }
}

#[test]
fn server_disconnect_is_reported_on_v5() {
    let v = ProtocolVersion::V5;
    let mut h = connected(v);
    let mut d = mqtt_sansio::Disconnect::new(ReasonCode::ServerMoved);
    d.properties.server_reference = Some("other:1883");
    h.feed_packet(Packet::Disconnect(d)).unwrap();
    assert_eq!(
        h.take_events(),
        vec![Ev::Disconnected(ReasonCode::ServerMoved)]
    );
    assert_eq!(h.s.state(), ConnectionState::Closing);
}

#[test]
fn enhanced_authentication_exchanges_auth_before_connack() {
    let v = ProtocolVersion::V5;
    let mut h = Harness::new(v);
    let mut c = Connect::new(v, "c");
    c.properties.authentication_method = Some("SCRAM-SHA-1");
    c.properties.authentication_data = Some(b"client-first");
    h.s.connect(&c).unwrap();
    h.take_sent();
    let mut challenge = mqtt_sansio::Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: Default::default(),
    };
    challenge.properties.authentication_method = Some("SCRAM-SHA-1");
    challenge.properties.authentication_data = Some(b"server-first");
    h.feed_packet(Packet::Auth(challenge)).unwrap();
    assert_eq!(
        h.take_events(),
        vec![Ev::Auth(ReasonCode::ContinueAuthentication)]
    );
    let mut answer = challenge;
    answer.properties.authentication_data = Some(b"client-final");
    h.s.auth(&answer).unwrap();
    let sent = h.take_sent();
    let Packet::Auth(a) = dec(&sent[0], v) else {
        panic!()
    };
    assert_eq!(a.properties.authentication_data, Some(&b"client-final"[..]));
    h.feed_packet(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
        .unwrap();
    assert_eq!(
        h.take_events(),
        vec![Ev::Connected {
            session_present: false
        }]
    );
    // Re-authentication while connected.
    let mut again = answer;
    again.reason_code = ReasonCode::ReAuthenticate;
    h.s.auth(&again).unwrap();
    assert_eq!(h.take_sent().len(), 1);
}
