//! Streamed reception: PUBLISHes larger than the driver's receive buffer, handed over in
//! chunks behind their header, acknowledged after the last chunk.

mod support;

use mqtt_sansio::session::SessionConfig;
use mqtt_sansio::{DecodeError, Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

fn streaming(v: ProtocolVersion, capacity: usize) -> Harness {
    let mut config = SessionConfig::new(v);
    config.maximum_packet_size = 1 << 20;
    config.receive_capacity = capacity;
    let mut h = Harness::with(config, 16 * 1024);
    h.connect(true, false);
    h
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
}

/// The chunks' bytes, checking that they are contiguous and all name `topic` and `total`.
fn joined(events: &[Ev], topic_name: &str, total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Ev::Chunk {
                topic,
                data,
                offset,
                total: t,
                ..
            } => {
                assert_eq!(topic, topic_name);
                assert_eq!(*t, total);
                assert_eq!(*offset, out.len(), "chunks in order, without gaps");
                assert!(!data.is_empty());
                out.extend_from_slice(data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

#[test]
fn chunks_carry_the_whole_payload_whatever_the_read_sizes() {
    for v in BOTH {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            for (capacity, piece) in [(64, 1), (64, 7), (100, 64), (1024, 1460), (48, 1000)] {
                let mut h = streaming(v, capacity);
                let body = payload(5_000);
                let bytes = enc(incoming("fw/image", &body, qos, 9), v);
                h.feed_wire(&bytes, piece).unwrap();
                let events = h.take_events();
                assert_eq!(
                    joined(&events, "fw/image", body.len()),
                    body,
                    "{v:?} {qos:?}"
                );
                let sent = h.take_sent();
                let expected: Vec<Vec<u8>> = match qos {
                    QoS::AtMostOnce => vec![],
                    QoS::AtLeastOnce => vec![enc(puback(9), v)],
                    QoS::ExactlyOnce => vec![enc(pubrec(9), v)],
                };
                assert_eq!(sent, expected);
                assert!(!h.s.is_streaming());
                assert!(h.rx.is_empty());
            }
        }
    }
}

#[test]
fn the_ack_goes_only_after_the_last_chunk() {
    for v in BOTH {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut h = streaming(v, 128);
            let body = payload(1_000);
            let bytes = enc(incoming("t", &body, qos, 3), v);
            let (most, last) = bytes.split_at(bytes.len() - 1);
            h.feed_wire(most, 128).unwrap();
            assert!(
                h.take_sent().is_empty(),
                "nothing acknowledged before the end"
            );
            assert!(h.s.is_streaming());
            assert_eq!(h.s.incoming_inflight(), 0);
            h.feed_wire(last, 128).unwrap();
            assert_eq!(h.take_sent().len(), 1);
            let events = h.take_events();
            assert_eq!(joined(&events, "t", body.len()), body);
        }
    }
}

#[test]
fn v5_properties_and_topic_alias_come_with_every_chunk() {
    let v = ProtocolVersion::V5;
    let mut config = SessionConfig::new(v);
    config.maximum_packet_size = 1 << 20;
    config.receive_capacity = 200;
    config.topic_alias_maximum = 4;
    config.incoming_alias_bytes = 64;
    let mut h = Harness::with(config, 16 * 1024);
    h.connect(true, false);
    let body = payload(3_000);
    let user = [("part", "1")];
    let Packet::Publish(mut p) = incoming("ota/fw", &body, QoS::AtLeastOnce, 1) else {
        unreachable!()
    };
    p.properties.content_type = Some("application/octet-stream");
    p.properties.user_properties = mqtt_sansio::Seq::from_slice(&user);
    p.properties.topic_alias = std::num::NonZeroU16::new(2);
    let first = enc(Packet::Publish(p), v);
    // The same message again, named by its alias only.
    p.topic = mqtt_sansio::TopicName::EMPTY;
    p.qos_pid = mqtt_sansio::QosPid::new(QoS::AtLeastOnce, pid(2));
    let second = enc(Packet::Publish(p), v);
    let mut wire = first.clone();
    wire.extend_from_slice(&second);
    // Check every chunk's properties straight from the session.
    let mut rx: Vec<u8> = Vec::new();
    let mut header = 0;
    let mut chunks = 0;
    let mut data = Vec::new();
    for piece in wire.chunks(90) {
        rx.extend_from_slice(piece);
        loop {
            let now = h.instant();
            match h.s.handle_read(now, &rx).unwrap() {
                mqtt_sansio::session::Read::Stream { header_len, .. } => header = header_len,
                mqtt_sansio::session::Read::Chunk { len, last, event } => {
                    let Some(mqtt_sansio::session::Event::MessageChunk(c)) = event else {
                        panic!("{event:?}")
                    };
                    assert_eq!(c.message.topic.as_str(), "ota/fw");
                    assert_eq!(
                        c.message.properties.content_type,
                        Some("application/octet-stream")
                    );
                    let users: Vec<_> = c.message.properties.user_properties.iter().collect();
                    assert_eq!(users, user);
                    assert_eq!(c.is_last(), last);
                    data.extend_from_slice(c.message.payload);
                    chunks += 1;
                    rx.drain(header..header + len);
                    if last {
                        rx.drain(..header);
                    }
                }
                mqtt_sansio::session::Read::Incomplete { .. } => break,
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(chunks > 2 * 3_000 / 200);
    let mut both = body.clone();
    both.extend_from_slice(&body);
    assert_eq!(data, both);
    assert_eq!(
        h.take_sent(),
        vec![enc(puback(1), v), enc(puback(2), v)],
        "one PUBACK per message"
    );
}

#[test]
fn a_connection_lost_mid_message_acknowledges_nothing_and_the_resend_is_delivered_whole() {
    for v in BOTH {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut h = streaming(v, 256);
            let body = payload(4_000);
            let bytes = enc(incoming("big", &body, qos, 5), v);
            h.feed_wire(&bytes[..2_000], 256).unwrap();
            let partial = h.take_events();
            assert!(!partial.is_empty());
            assert!(h.take_sent().is_empty());
            h.transport_closed();
            assert!(!h.s.is_streaming());
            // The broker resumes the session and sends the message again, with DUP.
            h.connect(false, true);
            let Packet::Publish(mut p) = incoming("big", &body, qos, 5) else {
                unreachable!()
            };
            p.dup = true;
            let again = enc(Packet::Publish(p), v);
            h.feed_wire(&again, 256).unwrap();
            let events = h.take_events();
            assert!(events
                .iter()
                .all(|e| matches!(e, Ev::Chunk { dup: true, .. })));
            assert_eq!(joined(&events, "big", body.len()), body, "{v:?} {qos:?}");
            let ack = if qos == QoS::AtLeastOnce {
                puback(5)
            } else {
                pubrec(5)
            };
            assert_eq!(h.take_sent(), vec![enc(ack, v)]);
        }
    }
}

#[test]
fn a_qos2_message_streamed_twice_is_delivered_once() {
    for v in BOTH {
        let mut h = streaming(v, 100);
        let body = payload(900);
        let bytes = enc(incoming("q2", &body, QoS::ExactlyOnce, 7), v);
        h.feed_wire(&bytes, 100).unwrap();
        assert_eq!(joined(&h.take_events(), "q2", 900), body);
        assert_eq!(h.take_sent(), vec![enc(pubrec(7), v)]);
        // PUBREC lost: the broker sends the PUBLISH again before PUBREL.
        h.feed_wire(&bytes, 100).unwrap();
        assert!(h.take_events().is_empty(), "not delivered twice");
        assert_eq!(h.take_sent(), vec![enc(pubrec(7), v)], "acknowledged again");
        h.feed_packet(pubrel(7)).unwrap();
        assert_eq!(h.take_sent(), vec![enc(pubcomp(7), v)]);
        assert_eq!(h.s.incoming_inflight(), 0);
    }
}

#[test]
fn packets_after_a_streamed_message_are_read_as_usual() {
    for v in BOTH {
        let mut h = streaming(v, 64);
        let body = payload(300);
        let mut wire = enc(incoming("a", &body, QoS::AtMostOnce, 1), v);
        wire.extend(enc(incoming("b", b"small", QoS::AtLeastOnce, 2), v));
        wire.extend(enc(incoming("c", &body, QoS::AtLeastOnce, 3), v));
        h.feed_wire(&wire, 50).unwrap();
        let events = h.take_events();
        let small = Ev::Message {
            topic: "b".into(),
            payload: b"small".to_vec(),
            qos: QoS::AtLeastOnce,
            dup: false,
            pid: Some(2),
        };
        let at = events
            .iter()
            .position(|e| *e == small)
            .expect("small message");
        assert_eq!(joined(&events[..at], "a", 300), body);
        assert_eq!(joined(&events[at + 1..], "c", 300), body);
        assert_eq!(h.take_sent(), vec![enc(puback(2), v), enc(puback(3), v)]);
    }
}

#[test]
fn a_message_over_the_maximum_packet_size_is_still_skipped() {
    for v in BOTH {
        let mut config = SessionConfig::new(v);
        config.maximum_packet_size = 2_000;
        config.receive_capacity = 100;
        let mut h = Harness::with(config, 16 * 1024);
        h.connect(true, false);
        let body = payload(3_000);
        let bytes = enc(incoming("x", &body, QoS::AtLeastOnce, 4), v);
        h.feed_wire(&bytes, 100).unwrap();
        let events = h.take_events();
        assert!(
            matches!(events[..], [Ev::Skipped { pid: Some(4), .. }]),
            "{events:?}"
        );
        assert_eq!(h.take_sent(), vec![enc(puback(4), v)]);
    }
}

#[test]
fn a_header_larger_than_the_receive_buffer_is_skipped_and_acknowledged() {
    // 5.0: the topic and packet id fit the 48-byte buffer, the properties do not.
    let v = ProtocolVersion::V5;
    let mut h = streaming(v, 48);
    let body = payload(500);
    let name = "m".repeat(30);
    let Packet::Publish(mut p) = incoming(&name, &body, QoS::AtLeastOnce, 6) else {
        unreachable!()
    };
    p.properties.content_type = Some("application/x-very-long-content-type");
    let mut wire = enc(Packet::Publish(p), v);
    wire.extend(enc(incoming("ok", b"fine", QoS::AtMostOnce, 1), v));
    h.feed_wire(&wire, 48).unwrap();
    let events = h.take_events();
    // The notice is the session's own event, taken after the packets' by the harness.
    assert!(
        matches!(
            events[..],
            [
                Ev::Message { .. },
                Ev::Skipped {
                    pid: Some(6),
                    qos: QoS::AtLeastOnce,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(h.take_sent(), vec![enc(puback(6), v)]);
}

#[test]
fn a_topic_length_past_the_packet_end_is_a_decode_error() {
    for v in BOTH {
        let mut h = streaming(v, 64);
        // PUBLISH QoS 0, remaining length 200, topic length 0x0400 (past the end).
        let mut bytes = vec![0x30, 0xC8, 0x01, 0x04, 0x00];
        bytes.extend(std::iter::repeat_n(b'a', 59));
        let err = h.feed_wire(&bytes, 64).unwrap_err();
        assert_eq!(
            err,
            mqtt_sansio::session::ProtocolError::Decode(DecodeError::LengthMismatch)
        );
        assert!(!h.s.is_streaming());
        if v.is_v5() {
            let sent = h.take_sent();
            assert_eq!(sent.len(), 1, "a DISCONNECT");
            assert_eq!(sent[0][0], 0xE0);
        }
    }
}

#[test]
fn a_v5_property_length_past_the_packet_end_is_a_decode_error() {
    let v = ProtocolVersion::V5;
    let mut h = streaming(v, 64);
    // PUBLISH QoS 0, remaining length 100, topic "t", property length 0x7F7F7F (huge).
    let mut bytes = vec![0x30, 0x64, 0x00, 0x01, b't', 0xFF, 0xFF, 0x7F];
    bytes.extend(std::iter::repeat_n(0u8, 50));
    let err = h.feed_wire(&bytes, 64).unwrap_err();
    assert_eq!(
        err,
        mqtt_sansio::session::ProtocolError::Decode(DecodeError::LengthMismatch)
    );
    let _ = ReasonCode::Success;
}

#[test]
fn streaming_is_off_without_a_receive_capacity() {
    let v = ProtocolVersion::V5;
    let mut config = SessionConfig::new(v);
    config.maximum_packet_size = 1 << 20;
    let mut h = Harness::with(config, 16 * 1024);
    h.connect(true, false);
    let body = payload(10_000);
    h.feed_packet(incoming("whole", &body, QoS::AtLeastOnce, 1))
        .unwrap();
    let events = h.take_events();
    assert!(matches!(&events[..], [Ev::Message { payload, .. }] if *payload == body));
}

// Streamed sending: the log keeps the header, the driver supplies the payload.

fn streamed(h: &mut Harness, t: &str, body: &[u8], qos: QoS) -> Option<u16> {
    let message = mqtt_sansio::session::Message::new(topic(t), &[], qos);
    let id =
        h.s.publish_streamed(&message, body.len())
            .unwrap()
            .map(|p| p.get());
    h.payloads.push((id, body.to_vec()));
    id
}

fn published(bytes: &[u8], v: ProtocolVersion) -> (String, Vec<u8>, bool, Option<u16>) {
    match dec(bytes, v) {
        Packet::Publish(p) => (
            p.topic.as_str().to_string(),
            p.payload.to_vec(),
            p.dup,
            p.packet_id().map(|i| i.get()),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_streamed_payload_goes_out_through_a_small_transmit_buffer() {
    for v in BOTH {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut config = SessionConfig::new(v);
            config.transmit_capacity = 100;
            let mut h = Harness::with(config, 4096);
            h.tx_cap = 100;
            h.connect(true, false);
            let body = payload(10_000);
            let id = streamed(&mut h, "fw/up", &body, qos);
            // A whole message could not even be queued.
            let whole = h.publish("fw/up", &body, qos);
            assert!(whole.is_err(), "{whole:?}");
            let sent = h.take_sent();
            assert_eq!(sent.len(), 1);
            assert_eq!(
                published(&sent[0], v),
                ("fw/up".to_string(), body.clone(), false, id)
            );
            assert_eq!(h.pieces, 10_000usize.div_ceil(100));
            assert!(!h.s.is_sending_payload());
            match qos {
                QoS::AtMostOnce => assert_eq!(h.s.store_usage().0, 0, "done once written"),
                QoS::AtLeastOnce => {
                    h.feed_packet(puback(id.unwrap())).unwrap();
                    let events = h.take_events();
                    assert!(matches!(events[..], [Ev::Published { .. }]), "{events:?}");
                }
                QoS::ExactlyOnce => {
                    h.feed_packet(pubrec(id.unwrap())).unwrap();
                    assert_eq!(h.take_sent(), vec![enc(pubrel(id.unwrap()), v)]);
                    h.feed_packet(pubcomp(id.unwrap())).unwrap();
                    let events = h.take_events();
                    assert!(matches!(events[..], [Ev::Published { .. }]), "{events:?}");
                }
            }
        }
    }
}

#[test]
fn nothing_cuts_into_a_streamed_payload() {
    let v = ProtocolVersion::V3_1_1;
    let mut config = SessionConfig::new(v);
    config.transmit_capacity = 64;
    let mut h = Harness::with(config, 4096);
    h.tx_cap = 64;
    h.connect(true, false);
    let body = payload(1_000);
    let id = streamed(&mut h, "s", &body, QoS::AtLeastOnce).unwrap();
    h.publish("after", b"x", QoS::AtLeastOnce).unwrap();
    h.transmit(3); // the header and two pieces
    assert!(h.s.is_sending_payload());
    // The broker's QoS 1 message asks for a PUBACK, and keep alive for a PINGREQ: both
    // wait until the payload is out.
    h.feed_packet(incoming("in", b"y", QoS::AtLeastOnce, 9))
        .unwrap();
    h.advance(10_000);
    let sent = h.take_sent();
    assert_eq!(published(&sent[0], v).1, body);
    assert_eq!(sent[0].len(), dec_len(&sent[0]));
    assert_eq!(published(&sent[0], v).3, Some(id));
    assert_eq!(sent[1], enc(puback(9), v));
    assert_eq!(
        published(&sent[2], v).0,
        "after",
        "queued packets after the streamed one"
    );
    assert_eq!(sent[3], vec![0xC0, 0x00], "PINGREQ");
}

fn dec_len(bytes: &[u8]) -> usize {
    match mqtt_sansio::Packet::decode(bytes, ProtocolVersion::V5, u32::MAX) {
        Ok(mqtt_sansio::Decoded::Packet { len, .. }) => len,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_streamed_send_cut_by_a_reconnect_is_resent_whole_with_dup() {
    for v in BOTH {
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let mut config = SessionConfig::new(v);
            config.transmit_capacity = 128;
            let mut h = Harness::with(config, 4096);
            h.tx_cap = 128;
            h.connect(false, false);
            let body = payload(5_000);
            let id = streamed(&mut h, "ota", &body, qos).unwrap();
            h.transmit(10); // the header and nine pieces
            assert!(h.s.is_sending_payload());
            let partial = std::mem::take(&mut h.sent);
            assert_eq!(partial.len(), 1);
            assert!(partial[0].len() < body.len());
            h.transport_closed();
            assert!(!h.s.is_sending_payload());
            h.pieces = 0;
            let sent = h.connect(false, true);
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(
                published(&sent[0], v),
                ("ota".to_string(), body.clone(), true, Some(id)),
                "whole again, with DUP"
            );
            assert_eq!(h.pieces, 5_000usize.div_ceil(128), "from offset 0");
        }
    }
}

#[test]
fn a_streamed_message_over_the_brokers_maximum_is_refused_or_dropped() {
    let v = ProtocolVersion::V5;
    let mut h = Harness::new(v);
    // Queued before CONNACK, which then announces a 1,000-byte maximum.
    let body = payload(2_000);
    let id = streamed(&mut h, "big", &body, QoS::AtLeastOnce);
    let mut c = mqtt_sansio::Connect::new(v, "client-1");
    c.keep_alive = 10;
    h.s.connect(&c).unwrap();
    h.take_sent();
    let mut ack = mqtt_sansio::ConnAck::new(ReasonCode::Success);
    ack.properties.maximum_packet_size = std::num::NonZeroU32::new(1_000);
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    let events = h.take_events();
    assert!(
        events.contains(&Ev::Dropped {
            pid: id,
            reason: ReasonCode::PacketTooLarge
        }),
        "{events:?}"
    );
    // While connected, the command itself refuses it.
    let message = mqtt_sansio::session::Message::new(topic("big"), &[], QoS::AtLeastOnce);
    assert!(matches!(
        h.s.publish_streamed(&message, 2_000),
        Err(mqtt_sansio::session::CommandError::PacketTooLarge { .. })
    ));
}

#[test]
fn a_streamed_payload_beyond_mqtts_largest_packet_is_refused() {
    let mut h = Harness::new(ProtocolVersion::V3_1_1);
    let message = mqtt_sansio::session::Message::new(topic("huge"), &[], QoS::AtMostOnce);
    assert!(matches!(
        h.s.publish_streamed(&message, 268_435_455),
        Err(mqtt_sansio::session::CommandError::Encode(
            mqtt_sansio::EncodeError::PacketTooLarge(_)
        ))
    ));
    assert_eq!(h.s.store_usage().0, 0);
    // The largest that fits MQTT's 4-byte remaining length is accepted.
    let largest = 268_435_455 - 2 - 4;
    assert!(h.s.publish_streamed(&message, largest).is_ok());
}

#[test]
fn an_empty_streamed_payload_is_just_its_header() {
    for v in BOTH {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let mut h = Harness::new(v);
            h.connect(true, false);
            let id = streamed(&mut h, "empty", &[], qos);
            let mut buf = vec![0u8; 64];
            let t = h.s.poll_transmit(h.instant(), &mut buf).unwrap().unwrap();
            assert_eq!(t.payload(), None);
            assert_eq!(t.completes_qos0, qos == QoS::AtMostOnce);
            assert!(!h.s.is_sending_payload());
            assert_eq!(
                published(&buf[..t.len], v),
                ("empty".to_string(), vec![], false, id)
            );
            assert_eq!(h.s.poll_transmit(h.instant(), &mut buf).unwrap(), None);
        }
    }
}
