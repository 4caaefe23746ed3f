//! 5.0 limits from CONNACK and topic aliases, against a scripted broker.

mod support;

use core::num::{NonZeroU16, NonZeroU32};

use mqtt_sansio::session::{CommandError, ConnectionState, Message, Read, SessionConfig};
use mqtt_sansio::{ConnAck, Connect, Packet, ProtocolVersion, QoS, ReasonCode};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

fn connect_with(h: &mut Harness, ack: ConnAck<'_>) {
    h.s.connect(&Connect::new(V5, "c")).unwrap();
    h.take_sent();
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    h.take_events();
}

#[test]
fn mqtt_4_9_0_2_in_flight_never_exceeds_the_broker_receive_maximum() {
    let mut h = Harness::new(V5);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.receive_maximum = NonZeroU16::new(2);
    connect_with(&mut h, ack);
    let ids: Vec<u16> = (0..5)
        .map(|i| {
            h.publish("t", &[i], QoS::AtLeastOnce)
                .unwrap()
                .unwrap()
                .get()
        })
        .collect();
    h.publish("t", b"qos0 is not limited", QoS::AtMostOnce)
        .unwrap();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 3, "two QoS 1 and the QoS 0");
    assert_eq!(h.s.inflight(), 2);
    h.feed_packet(puback(ids[0])).unwrap();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let Packet::Publish(p) = dec(&sent[0], V5) else {
        panic!()
    };
    assert_eq!(p.packet_id().unwrap().get(), ids[2], "in order");
    assert_eq!(h.s.inflight(), 2);
}

/// [MQTT-3.3.4-8] binds the broker; a broker that breaks it (mosquitto resuming a session
/// with hundreds in flight) is served as far as the store can track, reported, and never
/// disconnected: a disconnect only brings the same flood back on the next connection.
#[test]
fn broker_exceeding_our_receive_maximum_is_accepted_while_the_store_can_track_it() {
    let mut config = SessionConfig::new(V5);
    config.receive_maximum = 2;
    config.incoming_slots = 3;
    let mut h = Harness::with(config, 8192);
    h.connect(true, false);
    for id in 1..=2 {
        h.feed_packet(incoming("t", b"m", QoS::ExactlyOnce, id))
            .unwrap();
    }
    h.take_sent();
    h.take_events();
    // Over the limit, within the table: accepted, delivered, reported once.
    h.feed_packet(incoming("t", b"3", QoS::ExactlyOnce, 3))
        .unwrap();
    let sent = h.take_sent();
    assert!(matches!(dec(&sent[0], V5), Packet::PubRec(r) if r.packet_id.get() == 3));
    let events = h.take_events();
    assert!(
        events.contains(&Ev::Overrun {
            in_flight: 2,
            deferred: false
        }),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Ev::Message { pid: Some(3), .. })));
    // Beyond the table: left with the broker (no PUBREC, not delivered), reported once.
    for _ in 0..2 {
        h.feed_packet(incoming("t", b"4", QoS::ExactlyOnce, 4))
            .unwrap();
    }
    assert!(
        h.take_sent().is_empty(),
        "no answer for a message we cannot track"
    );
    let events = h.take_events();
    assert_eq!(
        events,
        vec![Ev::Overrun {
            in_flight: 3,
            deferred: true
        }]
    );
    assert_eq!(h.s.state(), ConnectionState::Connected);
    // Once a slot frees up, the broker's resend is taken.
    h.feed_packet(pubrel(1)).unwrap();
    h.take_sent();
    let mut again = incoming("t", b"4", QoS::ExactlyOnce, 4);
    if let Packet::Publish(p) = &mut again {
        p.dup = true;
    }
    h.feed_packet(again).unwrap();
    let sent = h.take_sent();
    assert!(matches!(dec(&sent[0], V5), Packet::PubRec(r) if r.packet_id.get() == 4));
    assert!(h
        .take_events()
        .iter()
        .any(|e| matches!(e, Ev::Message { pid: Some(4), .. })));
}

#[test]
fn oversized_incoming_publish_is_skipped_and_other_packets_refused_with_0x95() {
    for v in BOTH {
        let mut h = Harness::new(v);
        h.connect(true, false);
        // A PUBLISH announcing 256 MiB: skipped from its header, nothing buffered.
        let now = h.instant();
        let read =
            h.s.handle_read(now, &[0x30, 0xFF, 0xFF, 0xFF, 0x7F])
                .unwrap();
        assert_eq!(
            read,
            Read::Skip {
                len: 5 + 268_435_455
            }
        );
        assert_eq!(
            h.take_events(),
            vec![Ev::Skipped {
                pid: None,
                qos: QoS::AtMostOnce,
                size: 268_435_460
            }]
        );
        assert_eq!(h.s.state(), ConnectionState::Connected);
        // Any other packet that large ends the connection.
        let err =
            h.s.handle_read(now, &[0x90, 0xFF, 0xFF, 0xFF, 0x7F])
                .unwrap_err();
        assert_eq!(err.reason_code(), ReasonCode::PacketTooLarge);
        let expected: Vec<Vec<u8>> = if v.is_v5() {
            vec![vec![0xE0, 0x01, 0x95]]
        } else {
            vec![]
        };
        assert_eq!(h.take_sent(), expected);
    }
}

#[test]
fn outgoing_packets_over_the_broker_maximum_are_refused() {
    let mut h = Harness::new(V5);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.maximum_packet_size = NonZeroU32::new(64);
    connect_with(&mut h, ack);
    let big = [0u8; 100];
    assert!(matches!(
        h.publish("t", &big, QoS::AtLeastOnce),
        Err(CommandError::PacketTooLarge { max: 64, .. })
    ));
    assert!(h.take_sent().is_empty());
}

#[test]
fn message_queued_offline_and_too_large_for_the_broker_is_dropped_with_an_event() {
    let mut h = Harness::new(V5);
    let id = h
        .publish("t", &[0u8; 100], QoS::AtLeastOnce)
        .unwrap()
        .unwrap()
        .get();
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.maximum_packet_size = NonZeroU32::new(64);
    h.s.connect(&Connect::new(V5, "c")).unwrap();
    h.take_sent();
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    assert!(h.take_sent().is_empty());
    assert!(h.take_events().contains(&Ev::Dropped {
        pid: Some(id),
        reason: ReasonCode::PacketTooLarge
    }));
}

#[test]
fn maximum_qos_and_retain_available_refuse_commands() {
    let mut h = Harness::new(V5);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.maximum_qos = Some(QoS::AtLeastOnce);
    ack.properties.retain_available = Some(false);
    connect_with(&mut h, ack);
    assert_eq!(
        h.publish("t", b"", QoS::ExactlyOnce),
        Err(CommandError::QoSNotSupported(QoS::AtLeastOnce))
    );
    let mut m = Message::new(topic("t"), b"", QoS::AtMostOnce);
    m.retain = true;
    assert_eq!(h.s.publish(&m), Err(CommandError::RetainNotSupported));
    let limits = h.s.limits();
    assert_eq!(limits.maximum_qos, QoS::AtLeastOnce);
    assert!(!limits.retain_available);
}

#[test]
fn the_session_manages_aliases_and_subscription_ids() {
    let mut h = Harness::new(V5);
    h.connect(true, false);
    let mut m = Message::new(topic("t"), b"", QoS::AtMostOnce);
    m.properties.topic_alias = NonZeroU16::new(1);
    assert_eq!(h.s.publish(&m), Err(CommandError::ManagedProperty));
}

fn alias_config() -> SessionConfig {
    let mut config = SessionConfig::new(V5);
    config.topic_alias_maximum = 4;
    config.incoming_alias_bytes = 256;
    config.outgoing_topic_aliases = true;
    config.outgoing_alias_bytes = 256;
    config
}

#[test]
fn incoming_topic_alias_is_learned_and_resolved() {
    let mut h = Harness::with(alias_config(), 8192);
    h.connect(true, false);
    let Packet::Publish(mut first) = incoming("long/topic/name", b"1", QoS::AtMostOnce, 0) else {
        panic!()
    };
    first.properties.topic_alias = NonZeroU16::new(3);
    h.feed_packet(Packet::Publish(first)).unwrap();
    let mut second = first;
    second.topic = mqtt_sansio::TopicName::EMPTY;
    second.payload = b"2";
    h.feed_packet(Packet::Publish(second)).unwrap();
    let topics: Vec<String> = h
        .take_events()
        .into_iter()
        .map(|e| match e {
            Ev::Message { topic, .. } => topic,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(topics, ["long/topic/name", "long/topic/name"]);
}

#[test]
fn mqtt_3_3_2_12_unknown_incoming_alias_is_disconnected_with_0x94() {
    let mut h = Harness::with(alias_config(), 8192);
    h.connect(true, false);
    let Packet::Publish(mut p) = incoming("x", b"", QoS::AtMostOnce, 0) else {
        panic!()
    };
    p.topic = mqtt_sansio::TopicName::EMPTY;
    p.properties.topic_alias = NonZeroU16::new(2);
    let err = h.feed_packet(Packet::Publish(p)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::TopicAliasInvalid);
    assert_eq!(h.take_sent(), vec![vec![0xE0, 0x01, 0x94]]);
}

#[test]
fn mqtt_3_3_2_10_alias_above_our_maximum_is_disconnected_with_0x94() {
    let mut h = Harness::with(alias_config(), 8192);
    h.connect(true, false);
    let Packet::Publish(mut p) = incoming("x", b"", QoS::AtMostOnce, 0) else {
        panic!()
    };
    p.properties.topic_alias = NonZeroU16::new(5);
    let err = h.feed_packet(Packet::Publish(p)).unwrap_err();
    assert_eq!(err.reason_code(), ReasonCode::TopicAliasInvalid);
}

#[test]
fn outgoing_aliases_replace_repeated_topics_least_recently_used_first() {
    let mut h = Harness::with(alias_config(), 8192);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.topic_alias_maximum = Some(2);
    connect_with(&mut h, ack);
    for t in ["a/1", "a/1", "b/2", "a/1", "c/3", "a/1", "b/2"] {
        h.publish(t, b"p", QoS::AtMostOnce).unwrap();
    }
    let seen: Vec<(String, u16)> = h
        .take_sent()
        .iter()
        .map(|bytes| match dec(bytes, V5) {
            Packet::Publish(p) => (
                p.topic.as_str().to_string(),
                p.properties.topic_alias.map_or(0, NonZeroU16::get),
            ),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected = [
        ("a/1", 1), // new alias 1
        ("", 1),    // known: topic left out
        ("b/2", 2), // new alias 2
        ("", 1),
        ("c/3", 2), // table full: b/2 was used least recently, its alias is recycled
        ("", 1),
        ("b/2", 1), // c/3 and a/1... a/1 is older than c/3 now? no: a/1 was just used
    ];
    let expected: Vec<(String, u16)> = expected.iter().map(|(t, a)| (t.to_string(), *a)).collect();
    // The last line: after "a/1" (alias 1, used most recently) the least recent is c/3
    // (alias 2), so b/2 takes alias 2.
    let mut expected = expected;
    expected[6] = ("b/2".to_string(), 2);
    assert_eq!(seen, expected);
}

#[test]
fn aliases_start_afresh_on_a_new_connection() {
    let mut h = Harness::with(alias_config(), 8192);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.topic_alias_maximum = Some(2);
    connect_with(&mut h, ack);
    h.publish("a", b"", QoS::AtMostOnce).unwrap();
    h.take_sent();
    h.transport_closed();
    connect_with(&mut h, ack);
    h.publish("a", b"", QoS::AtMostOnce).unwrap();
    let sent = h.take_sent();
    let Packet::Publish(p) = dec(&sent[0], V5) else {
        panic!()
    };
    assert_eq!(
        p.topic.as_str(),
        "a",
        "the topic is sent again with its alias"
    );
}

#[test]
fn unsendable_messages_wait_until_the_application_can_be_told() {
    // Six messages too large for the broker, four event slots: the rest wait in the store
    // until the application drains its events; none disappears unreported.
    let mut h = Harness::new(V5);
    let ids: Vec<u16> = (0..6)
        .map(|_| {
            h.publish("t", &[0u8; 100], QoS::AtLeastOnce)
                .unwrap()
                .unwrap()
                .get()
        })
        .collect();
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.maximum_packet_size = NonZeroU32::new(64);
    h.s.connect(&Connect::new(V5, "c")).unwrap();
    h.take_sent();
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    let mut dropped = Vec::new();
    for _ in 0..4 {
        for e in h.take_events() {
            if let Ev::Dropped {
                pid: Some(id),
                reason: ReasonCode::PacketTooLarge,
            } = e
            {
                dropped.push(id);
            }
        }
    }
    assert_eq!(dropped, ids);
    assert_eq!(h.s.store_usage().0, 0);
}

#[test]
fn packets_queued_behind_a_full_window_still_go_out_at_once() {
    // The session remembers a fruitless scan of a full window; anything queued afterwards
    // must invalidate that memory.
    let mut h = Harness::new(V5);
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.receive_maximum = NonZeroU16::new(1);
    connect_with(&mut h, ack);
    let first = h
        .publish("t", b"1", QoS::AtLeastOnce)
        .unwrap()
        .unwrap()
        .get();
    for _ in 0..50 {
        h.publish("t", b"queued", QoS::AtLeastOnce).unwrap();
    }
    assert_eq!(h.take_sent().len(), 1, "the window holds one");
    assert!(h.take_sent().is_empty());
    h.publish("t", b"qos0", QoS::AtMostOnce).unwrap();
    let f = mqtt_sansio::TopicFilter::new("x").unwrap();
    h.s.subscribe(
        &[mqtt_sansio::Subscription::new(f, QoS::AtMostOnce)],
        Default::default(),
    )
    .unwrap();
    assert_eq!(
        h.take_sent().len(),
        2,
        "QoS 0 and SUBSCRIBE are not held by the window"
    );
    h.feed_packet(puback(first)).unwrap();
    assert_eq!(
        h.take_sent().len(),
        1,
        "the next QoS 1 once the window opens"
    );
}
