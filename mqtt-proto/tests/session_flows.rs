//! The session against a scripted broker on a virtual clock: each QoS flow both ways, both
//! protocol versions, byte-exact where the specification fixes the bytes.

mod support;

use mqtt_sansio::session::{CommandError, LostReason, SessionConfig};
use mqtt_sansio::{Packet, ProtocolVersion, PubResponse, QoS, ReasonCode};
use support::*;

#[test]
fn connect_transmits_connect_first_then_connack_connects() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.publish("t", b"queued before connect", QoS::AtLeastOnce)
            .unwrap();
        let mut c = mqtt_sansio::Connect::new(v, "dev");
        c.keep_alive = 30;
        h.s.connect(&c).unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        let Packet::Connect(connect) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(connect.client_id, "dev");
        if v.is_v5() {
            assert_eq!(connect.properties.receive_maximum.unwrap().get(), 16);
            assert_eq!(connect.properties.maximum_packet_size.unwrap().get(), 4096);
        }
        h.feed_packet(Packet::ConnAck(mqtt_sansio::ConnAck::new(
            ReasonCode::Success,
        )))
        .unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1, "the queued publish goes out after CONNACK");
        assert!(matches!(dec(&sent[0], v), Packet::Publish(_)));
    }
}

#[test]
fn qos0_publish_is_sent_once_and_forgotten() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        assert_eq!(h.publish("a/b", b"x", QoS::AtMostOnce).unwrap(), None);
        let sent = h.take_sent();
        assert_eq!(
            sent,
            vec![vec![0x30, 0x06, 0x00, 0x03, b'a', b'/', b'b', b'x']]
                .into_iter()
                .map(|mut p| {
                    if v.is_v5() {
                        // 5.0 adds an empty property length after the topic.
                        p.insert(7, 0);
                        p[1] += 1;
                    }
                    p
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn qos1_publish_completes_on_puback() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let id = h.publish("t", b"1", QoS::AtLeastOnce).unwrap().unwrap();
        let sent = h.take_sent();
        let Packet::Publish(p) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(p.packet_id(), Some(id));
        assert!(!p.dup);
        assert_eq!(h.s.inflight(), 1);
        h.feed_packet(puback(id.get())).unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Published {
                pid: id.get(),
                qos: QoS::AtLeastOnce,
                reason: ReasonCode::Success
            }]
        );
        assert_eq!(h.s.inflight(), 0);
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn qos2_publish_runs_pubrec_pubrel_pubcomp() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let id = h
            .publish("t", b"2", QoS::ExactlyOnce)
            .unwrap()
            .unwrap()
            .get();
        assert_eq!(h.take_sent().len(), 1);
        h.feed_packet(pubrec(id)).unwrap();
        assert!(h.take_events().is_empty());
        let sent = h.take_sent();
        assert_eq!(
            sent,
            vec![vec![0x62, 0x02, 0x00, id as u8]],
            "PUBREL, flags 0010"
        );
        h.feed_packet(pubcomp(id)).unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Published {
                pid: id,
                qos: QoS::ExactlyOnce,
                reason: ReasonCode::Success
            }]
        );
        assert_eq!(h.s.inflight(), 0);
    }
}

#[test]
fn v5_puback_error_reason_is_reported_and_ends_the_flow() {
    let v = ProtocolVersion::V5;
    let mut h = Harness::new(v);
    h.connect(true, false);
    let id = h
        .publish("t", b"1", QoS::AtLeastOnce)
        .unwrap()
        .unwrap()
        .get();
    h.take_sent();
    let mut ack = PubResponse::new(pid(id));
    ack.reason_code = ReasonCode::NotAuthorized;
    h.feed_packet(Packet::PubAck(ack)).unwrap();
    assert_eq!(
        h.take_events(),
        vec![Ev::Published {
            pid: id,
            qos: QoS::AtLeastOnce,
            reason: ReasonCode::NotAuthorized
        }]
    );
    assert_eq!(h.s.store_usage().0, 0);
}

#[test]
fn mqtt_4_4_0_2_failed_pubrec_ends_the_flow_without_pubrel() {
    let v = ProtocolVersion::V5;
    let mut h = Harness::new(v);
    h.connect(true, false);
    let id = h
        .publish("t", b"2", QoS::ExactlyOnce)
        .unwrap()
        .unwrap()
        .get();
    h.take_sent();
    let mut rec = PubResponse::new(pid(id));
    // Not a transient code: the session does not retry it.
    rec.reason_code = ReasonCode::NotAuthorized;
    h.feed_packet(Packet::PubRec(rec)).unwrap();
    assert!(h.take_sent().is_empty(), "no PUBREL after a failure PUBREC");
    assert_eq!(
        h.take_events(),
        vec![Ev::Published {
            pid: id,
            qos: QoS::ExactlyOnce,
            reason: ReasonCode::NotAuthorized
        }]
    );
    // And it is not resent after a reconnect.
    h.transport_closed();
    assert!(h.connect(false, true).is_empty());
}

#[test]
fn packet_ids_skip_ids_in_use_and_wrap_past_65535() {
    let v = ProtocolVersion::V3_1_1;
    let mut h = Harness::new(v);
    h.connect(true, false);
    let held = h.publish("t", b"held", QoS::AtLeastOnce).unwrap().unwrap();
    assert_eq!(held.get(), 1);
    h.take_sent();
    let mut last = 0;
    let mut buf = [0u8; 64];
    let t = topic("t");
    for _ in 0..65_535u32 {
        let message = mqtt_sansio::session::Message::new(t, b"", QoS::AtLeastOnce);
        let id = h.s.publish(&message).unwrap().unwrap().get();
        assert_ne!(id, held.get(), "id 1 is still in flight");
        let now = h.instant();
        while h.s.poll_transmit(now, &mut buf).unwrap().is_some() {}
        let ack = [0x40, 0x02, (id >> 8) as u8, id as u8];
        assert!(matches!(
            h.s.handle_read(now, &ack).unwrap(),
            mqtt_sansio::session::Read::Packet {
                len: 4,
                event: Some(_)
            }
        ));
        last = id;
    }
    // 65,535 ids were handed out after 1: 2..=65535, then the wrap skipped 1 and took 2.
    assert_eq!(last, 2);
}

#[test]
fn incoming_qos0_and_qos1_are_delivered_and_qos1_acked() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        h.feed_packet(incoming("a", b"zero", QoS::AtMostOnce, 0))
            .unwrap();
        h.feed_packet(incoming("b", b"one", QoS::AtLeastOnce, 7))
            .unwrap();
        let ev = h.take_events();
        assert_eq!(ev.len(), 2);
        assert!(matches!(&ev[0], Ev::Message { topic, qos: QoS::AtMostOnce, .. } if topic == "a"));
        assert!(matches!(&ev[1], Ev::Message { pid: Some(7), .. }));
        assert_eq!(
            h.take_sent(),
            vec![vec![0x40, 0x02, 0x00, 0x07]],
            "PUBACK 7"
        );
    }
}

#[test]
fn incoming_qos2_is_delivered_exactly_once_across_resends() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        h.feed_packet(incoming("q2", b"once", QoS::ExactlyOnce, 9))
            .unwrap();
        assert_eq!(h.take_events().len(), 1);
        assert_eq!(
            h.take_sent(),
            vec![vec![0x50, 0x02, 0x00, 0x09]],
            "PUBREC 9"
        );
        // The broker did not see our PUBREC and resends with DUP: acknowledged, not delivered.
        let Packet::Publish(mut again) = incoming("q2", b"once", QoS::ExactlyOnce, 9) else {
            panic!()
        };
        again.dup = true;
        h.feed_packet(Packet::Publish(again)).unwrap();
        assert!(h.take_events().is_empty(), "not delivered twice");
        assert_eq!(h.take_sent(), vec![vec![0x50, 0x02, 0x00, 0x09]]);
        h.feed_packet(pubrel(9)).unwrap();
        assert_eq!(
            h.take_sent(),
            vec![vec![0x70, 0x02, 0x00, 0x09]],
            "PUBCOMP 9"
        );
        assert_eq!(h.s.incoming_inflight(), 0);
        // After PUBREL the id is free: the same id is a new message.
        h.feed_packet(incoming("q2", b"next", QoS::ExactlyOnce, 9))
            .unwrap();
        assert_eq!(h.take_events().len(), 1);
    }
}

#[test]
fn incoming_qos2_survives_a_reconnect_without_redelivery() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(false, false);
        h.feed_packet(incoming("q2", b"x", QoS::ExactlyOnce, 3))
            .unwrap();
        assert_eq!(h.take_events().len(), 1);
        h.take_sent();
        h.transport_closed();
        h.connect(false, true);
        let Packet::Publish(mut again) = incoming("q2", b"x", QoS::ExactlyOnce, 3) else {
            panic!()
        };
        again.dup = true;
        h.feed_packet(Packet::Publish(again)).unwrap();
        assert!(h.take_events().is_empty());
        assert_eq!(h.take_sent(), vec![vec![0x50, 0x02, 0x00, 0x03]]);
    }
}

#[test]
fn v5_pubrel_for_unknown_id_gets_pubcomp_0x92() {
    let mut h = Harness::new(ProtocolVersion::V5);
    h.connect(true, false);
    h.feed_packet(pubrel(44)).unwrap();
    assert_eq!(h.take_sent(), vec![vec![0x70, 0x03, 0x00, 44, 0x92]]);
}

#[test]
fn manual_ack_mode_waits_for_the_application() {
    for v in BOTH {
        let mut config = SessionConfig::new(v);
        config.manual_acks = true;
        let mut h = Harness::with(config, 8192);
        h.connect(true, false);
        h.feed_packet(incoming("m", b"1", QoS::AtLeastOnce, 5))
            .unwrap();
        h.feed_packet(incoming("m", b"2", QoS::ExactlyOnce, 6))
            .unwrap();
        assert_eq!(h.take_events().len(), 2);
        assert!(h.take_sent().is_empty(), "no ack before the application's");
        h.s.ack(pid(6)).unwrap();
        h.s.ack(pid(5)).unwrap();
        assert_eq!(
            h.take_sent(),
            vec![vec![0x50, 0x02, 0x00, 0x06], vec![0x40, 0x02, 0x00, 0x05]]
        );
        // The QoS 2 message was acknowledged already; it now waits for PUBREL.
        assert_eq!(h.s.ack(pid(6)), Err(CommandError::UnknownPacketId));
        assert_eq!(h.s.incoming_inflight(), 1, "QoS 1 holds no receiver state");
    }
}

#[test]
fn mqtt_4_4_0_1_resume_resends_publishes_with_dup_and_pubrels_in_order() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(false, false);
        let a = h
            .publish("t", b"a", QoS::AtLeastOnce)
            .unwrap()
            .unwrap()
            .get();
        let b = h
            .publish("t", b"b", QoS::ExactlyOnce)
            .unwrap()
            .unwrap()
            .get();
        let c = h
            .publish("t", b"c", QoS::ExactlyOnce)
            .unwrap()
            .unwrap()
            .get();
        let d = h
            .publish("t", b"d", QoS::AtLeastOnce)
            .unwrap()
            .unwrap()
            .get();
        assert_eq!(h.take_sent().len(), 4);
        h.feed_packet(pubrec(b)).unwrap();
        assert_eq!(h.take_sent().len(), 1, "PUBREL b");
        h.transport_closed();
        let resent = h.connect(false, true);
        let summary: Vec<(u8, u16, bool)> = resent
            .iter()
            .map(|bytes| match dec(bytes, v) {
                Packet::Publish(p) => (3, p.packet_id().unwrap().get(), p.dup),
                Packet::PubRel(r) => (6, r.packet_id.get(), false),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // Publishes in their original order with DUP; the PUBREL where its PUBREC put it.
        assert_eq!(
            summary,
            vec![(3, a, true), (3, c, true), (3, d, true), (6, b, false)]
        );
        h.feed_packet(puback(a)).unwrap();
        h.feed_packet(pubcomp(b)).unwrap();
        h.feed_packet(pubrec(c)).unwrap();
        h.feed_packet(pubcomp(c)).unwrap();
        h.feed_packet(puback(d)).unwrap();
        let done: Vec<u16> = h
            .take_events()
            .iter()
            .filter_map(|e| match e {
                Ev::Published { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        assert_eq!(done, vec![a, b, c, d]);
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn mqtt_3_2_2_5_session_not_present_abandons_what_the_broker_saw() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(false, false);
        let sent_one = h
            .publish("t", b"sent", QoS::AtLeastOnce)
            .unwrap()
            .unwrap()
            .get();
        let past_rec = h
            .publish("t", b"rec", QoS::ExactlyOnce)
            .unwrap()
            .unwrap()
            .get();
        h.take_sent();
        h.feed_packet(pubrec(past_rec)).unwrap();
        h.take_sent();
        h.transport_closed();
        let never_sent = h
            .publish("t", b"queued", QoS::AtLeastOnce)
            .unwrap()
            .unwrap()
            .get();
        let after = h.connect(false, false);
        let events = h.take_events();
        assert!(events.contains(&Ev::Abandoned {
            pid: sent_one,
            payload: Some(b"sent".to_vec())
        }));
        assert!(events.contains(&Ev::Abandoned {
            pid: past_rec,
            payload: None
        }));
        assert_eq!(after.len(), 1, "the never-sent message still goes out");
        let Packet::Publish(p) = dec(&after[0], v) else {
            panic!()
        };
        assert_eq!(
            (p.packet_id().unwrap().get(), p.dup, p.payload),
            (never_sent, false, &b"queued"[..])
        );
    }
}

#[test]
fn keepalive_pings_after_silence_and_reports_the_round_trip() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        assert_eq!(h.s.poll_timeout().unwrap().as_millis(), h.now + 10_000);
        h.advance(9_999);
        assert!(h.take_sent().is_empty());
        h.advance(1);
        assert_eq!(h.take_sent(), vec![vec![0xC0, 0x00]], "PINGREQ");
        h.advance(40);
        h.feed(&[0xD0, 0x00]).unwrap();
        assert_eq!(h.take_events(), vec![Ev::Pong(40)]);
    }
}

#[test]
fn missing_pingresp_loses_the_connection_within_one_and_a_half_keepalives() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let start = h.now;
        let mut lost_at = None;
        for _ in 0..200 {
            h.advance(100);
            h.take_sent();
            if h.take_events()
                .contains(&Ev::Lost(LostReason::KeepAliveTimeout))
            {
                lost_at = Some(h.now - start);
                break;
            }
        }
        let lost_at = lost_at.expect("connection declared dead");
        assert!(
            lost_at <= 15_000,
            "detected after {lost_at} ms, keep alive 10 s"
        );
        assert_eq!(h.s.state(), mqtt_sansio::session::ConnectionState::Closing);
    }
}

#[test]
fn a_receiving_only_connection_still_pings() {
    // Keep alive counts what we sent: a busy subscriber must still send PINGREQ.
    let mut h = Harness::new(ProtocolVersion::V3_1_1);
    h.connect(true, false);
    for i in 0..11 {
        h.advance(1_000);
        h.feed_packet(incoming("t", b"x", QoS::AtMostOnce, 0))
            .unwrap();
        if i < 9 {
            assert!(h.take_sent().is_empty());
        }
    }
    assert!(h.take_sent().contains(&vec![0xC0, 0x00]));
}

#[test]
fn connack_timeout_gives_up_on_the_connection() {
    let mut h = Harness::new(ProtocolVersion::V5);
    h.s.connect(&mqtt_sansio::Connect::new(ProtocolVersion::V5, "c"))
        .unwrap();
    assert_eq!(h.take_sent().len(), 1);
    h.advance(29_999);
    assert!(h.take_events().is_empty());
    h.advance(1);
    assert_eq!(h.take_events(), vec![Ev::Lost(LostReason::ConnAckTimeout)]);
}

#[test]
fn server_keep_alive_overrides_ours() {
    let mut h = Harness::new(ProtocolVersion::V5);
    h.s.connect(&mqtt_sansio::Connect::new(ProtocolVersion::V5, "c"))
        .unwrap();
    h.take_sent();
    let mut ack = mqtt_sansio::ConnAck::new(ReasonCode::Success);
    ack.properties.server_keep_alive = Some(2);
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    assert_eq!(h.s.limits().keep_alive, 2);
    h.advance(2_000);
    assert_eq!(h.take_sent(), vec![vec![0xC0, 0x00]]);
}

#[test]
fn subscribe_and_unsubscribe_report_reason_codes() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        let f1 = mqtt_sansio::TopicFilter::new("a/+").unwrap();
        let f2 = mqtt_sansio::TopicFilter::new("b/#").unwrap();
        let subs = [
            mqtt_sansio::Subscription::new(f1, QoS::AtLeastOnce),
            mqtt_sansio::Subscription::new(f2, QoS::ExactlyOnce),
        ];
        let id = h.s.subscribe(&subs, Default::default()).unwrap();
        let sent = h.take_sent();
        let Packet::Subscribe(s) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(s.subscriptions.len(), 2);
        let codes = [ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError];
        h.feed_packet(Packet::SubAck(mqtt_sansio::SubAck::new(id, &codes)))
            .unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Subscribed {
                pid: id.get(),
                codes: codes.to_vec()
            }]
        );
        let id = h.s.unsubscribe(&[f1], Default::default()).unwrap();
        h.take_sent();
        let codes: &[ReasonCode] = if v.is_v5() {
            &[ReasonCode::Success]
        } else {
            &[]
        };
        h.feed_packet(Packet::UnsubAck(mqtt_sansio::UnsubAck::new(id, codes)))
            .unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Unsubscribed {
                pid: id.get(),
                codes: codes.to_vec()
            }]
        );
    }
}

#[test]
fn unanswered_subscribe_is_sent_again_after_reconnect() {
    let v = ProtocolVersion::V3_1_1;
    let mut h = Harness::new(v);
    h.connect(false, false);
    let f = mqtt_sansio::TopicFilter::new("x").unwrap();
    let id =
        h.s.subscribe(
            &[mqtt_sansio::Subscription::new(f, QoS::AtMostOnce)],
            Default::default(),
        )
        .unwrap();
    assert_eq!(h.take_sent().len(), 1);
    h.transport_closed();
    let again = h.connect(false, true);
    let Packet::Subscribe(s) = dec(&again[0], v) else {
        panic!()
    };
    assert_eq!(s.packet_id, id);
}

#[test]
fn full_store_refuses_publish_and_drops_nothing() {
    let v = ProtocolVersion::V3_1_1;
    let config = SessionConfig::new(v);
    let mut h = Harness::with(config, config.reserved_bytes() + 200);
    h.connect(true, false);
    let mut ids = Vec::new();
    loop {
        match h.publish("t", &[0u8; 40], QoS::AtLeastOnce) {
            Ok(id) => ids.push(id.unwrap().get()),
            Err(CommandError::StoreFull { .. }) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(ids.len() < 100);
    }
    assert!(!ids.is_empty());
    assert_eq!(h.take_sent().len(), ids.len());
    for id in &ids {
        h.feed_packet(puback(*id)).unwrap();
    }
    assert_eq!(
        h.take_events().len(),
        ids.len(),
        "every accepted message completed"
    );
    assert!(
        h.publish("t", &[0u8; 40], QoS::AtLeastOnce).is_ok(),
        "room again"
    );
}

#[test]
fn graceful_disconnect_goes_after_queued_packets() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        h.publish("t", b"last words", QoS::AtMostOnce).unwrap();
        h.s.disconnect(&mqtt_sansio::Disconnect::default()).unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1], vec![0xE0, 0x00]);
        assert_eq!(h.take_events(), vec![Ev::Lost(LostReason::DisconnectSent)]);
    }
}

#[test]
fn input_split_at_every_byte_gives_the_same_events() {
    for v in BOTH {
        let mut whole = Vec::new();
        whole.extend(enc(
            incoming("s/p/l/i/t", b"payload", QoS::AtLeastOnce, 1),
            v,
        ));
        whole.extend(enc(incoming("s", b"", QoS::AtMostOnce, 0), v));
        whole.extend(enc(Packet::PingResp, v));
        let mut h = Harness::new(v);
        h.connect(true, false);
        let mut buffered: Vec<u8> = Vec::new();
        let mut delivered = 0;
        for &byte in &whole {
            buffered.push(byte);
            loop {
                let now = h.instant();
                match h.s.handle_read(now, &buffered).unwrap() {
                    mqtt_sansio::session::Read::Packet { len, event } => {
                        delivered += usize::from(event.is_some());
                        buffered.drain(..len);
                    }
                    mqtt_sansio::session::Read::Incomplete { .. } => break,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(buffered.is_empty());
        assert_eq!(
            delivered, 2,
            "two messages; the unsolicited PINGRESP is silent"
        );
        assert_eq!(h.take_sent(), vec![vec![0x40, 0x02, 0x00, 0x01]]);
    }
}

#[test]
fn a_flood_of_qos1_applies_back_pressure_instead_of_growing() {
    let v = ProtocolVersion::V3_1_1;
    let mut h = Harness::new(v);
    h.connect(true, false);
    let mut stream = Vec::new();
    for i in 1..=40u16 {
        stream.extend(enc(incoming("f", b"x", QoS::AtLeastOnce, i), v));
    }
    let mut rest = &stream[..];
    let mut blocked = 0;
    let mut delivered = 0;
    while !rest.is_empty() {
        let now = h.instant();
        match h.s.handle_read(now, rest).unwrap() {
            mqtt_sansio::session::Read::Packet { len, .. } => {
                delivered += 1;
                rest = &rest[len..];
            }
            mqtt_sansio::session::Read::Blocked => {
                blocked += 1;
                let sent = h.take_sent();
                assert_eq!(sent.len(), 16, "the ack ring holds 16");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delivered, 40);
    assert_eq!(blocked, 2);
}

#[test]
fn max_inflight_caps_publishes_in_flight_below_the_broker_limit() {
    for v in BOTH {
        let mut config = SessionConfig::new(v);
        config.max_inflight = 2;
        let mut h = Harness::with(config, 16 * 1024);
        // A 3.1.1 broker announces nothing; a 5.0 one here allows 65,535.
        h.connect(true, false);
        let ids: Vec<u16> = (0..5u8)
            .map(|i| {
                h.publish("t", &[i], QoS::ExactlyOnce)
                    .unwrap()
                    .unwrap()
                    .get()
            })
            .collect();
        assert_eq!(h.take_sent().len(), 2, "only max_inflight go out");
        assert_eq!(h.s.inflight(), 2);
        // PUBREC turns a PUBLISH into a PUBREL, which stays in flight until PUBCOMP.
        h.feed_packet(pubrec(ids[0])).unwrap();
        assert_eq!(h.take_sent().len(), 1, "the PUBREL, nothing more");
        h.feed_packet(pubcomp(ids[0])).unwrap();
        let sent = h.take_sent();
        assert_eq!(sent.len(), 1);
        let Packet::Publish(p) = dec(&sent[0], v) else {
            panic!()
        };
        assert_eq!(p.packet_id().unwrap().get(), ids[2], "next in order");
    }
}
