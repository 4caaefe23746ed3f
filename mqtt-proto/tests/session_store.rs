//! The store changes size under a live session (`Session::resize_store`): it grows to queue
//! more and shrinks to give memory back, and nothing queued or in flight is lost or reordered.

mod support;

use mqtt_sansio::session::{CommandError, SessionConfig};
use mqtt_sansio::{Packet, ProtocolVersion, QoS};
use support::{dec, puback, Ev, Harness};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

fn resize(h: &mut Harness, len: usize) -> Result<(), CommandError> {
    h.s.resize_store(len, |store, len| store.resize(len, 0))
}

/// The packet ids of the PUBLISHes in `sent`, in order.
fn publish_ids(sent: &[Vec<u8>], v: ProtocolVersion) -> Vec<u16> {
    sent.iter()
        .filter_map(|b| match dec(b, v) {
            Packet::Publish(p) => p.packet_id().map(|id| id.get()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_full_store_grows_and_everything_queued_goes_out_in_order() {
    for v in VERSIONS {
        let mut config = SessionConfig::new(v);
        config.max_inflight = 4;
        config.index_slots = 8;
        let small = config.reserved_bytes() + 8 * 8 + 512;
        let mut h = Harness::with(config, small);
        h.connect(false, false);
        let payload = [7u8; 60];
        let mut ids = Vec::new();
        let full = loop {
            match h.publish("t", &payload, QoS::AtLeastOnce) {
                Ok(id) => ids.push(id.unwrap().get()),
                Err(e) => break e,
            }
        };
        assert!(matches!(full, CommandError::StoreFull { .. }), "{full:?}");
        let (_, before) = h.s.store_usage();
        resize(&mut h, small + 4096).unwrap();
        assert_eq!(h.s.store_usage().1, before + 4096);
        for _ in 0..20 {
            ids.push(
                h.publish("t", &payload, QoS::AtLeastOnce)
                    .unwrap()
                    .unwrap()
                    .get(),
            );
        }
        // Everything goes out in order as the broker acknowledges.
        let mut sent = Vec::new();
        for _ in 0..ids.len() {
            let out = h.take_sent();
            let got = publish_ids(&out, v);
            for id in &got {
                h.feed_packet(puback(*id)).unwrap();
            }
            sent.extend(got);
            if sent.len() == ids.len() {
                break;
            }
        }
        assert_eq!(sent, ids, "{v:?}");
        let published = h
            .take_events()
            .iter()
            .filter(|e| matches!(e, Ev::Published { .. }))
            .count();
        assert_eq!(published, ids.len());
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn a_store_shrinks_under_live_records_or_refuses() {
    for v in VERSIONS {
        let config = SessionConfig::new(v);
        let large = config.reserved_bytes() + 8192;
        let mut h = Harness::with(config, large);
        h.connect(false, false);
        // Six in flight, acknowledge the even ones: dead records between live ones.
        let ids: Vec<u16> = (0..6)
            .map(|_| {
                h.publish("t", &[1u8; 100], QoS::AtLeastOnce)
                    .unwrap()
                    .unwrap()
                    .get()
            })
            .collect();
        assert_eq!(publish_ids(&h.take_sent(), v), ids);
        for id in ids.iter().step_by(2) {
            h.feed_packet(puback(*id)).unwrap();
        }
        h.take_events();
        let (used, _) = h.s.store_usage();
        // Too small for the three left: refused, nothing changed.
        let too_small = config.reserved_bytes() + 100;
        let refused = resize(&mut h, too_small);
        assert!(
            matches!(refused, Err(CommandError::StoreFull { .. })),
            "{refused:?}"
        );
        assert_eq!(h.s.store_usage(), (used, 8192));
        // Enough for them: compacted, then cut.
        let fits = config.reserved_bytes() + 512;
        resize(&mut h, fits).unwrap();
        assert_eq!(h.s.store_usage().1, 512);
        // They are still the broker's to acknowledge, and go again with DUP on a new
        // connection, in order.
        h.transport_closed();
        let resent = h.connect(false, true);
        let again: Vec<u16> = ids.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(publish_ids(&resent, v), again, "{v:?}");
        for id in &again {
            h.feed_packet(puback(*id)).unwrap();
        }
        assert_eq!(h.s.store_usage().0, 0);
    }
}

#[test]
fn a_resize_that_does_not_take_is_reported() {
    let config = SessionConfig::new(ProtocolVersion::V5);
    let len = config.reserved_bytes() + 1024;
    let mut h = Harness::with(config, len);
    let refused = h.s.resize_store(len + 1024, |_store, _len| {});
    assert_eq!(refused, Err(CommandError::InvalidState));
}

#[test]
fn a_session_from_a_configuration_check_refuses_never_panics() {
    use mqtt_sansio::session::{Instant, Message, Session};
    use mqtt_sansio::{Connect, TopicName};

    for v in VERSIONS {
        let mut config = SessionConfig::new(v);
        config.journal = true;
        let needed = config.reserved_bytes() + 64;
        for len in (0..needed).step_by(7) {
            assert!(
                matches!(config.check(len), Err(CommandError::StoreFull { .. })),
                "{len}"
            );
            let mut s = Session::from_checked(config, vec![0u8; len]);
            let now = Instant::from_millis(0);
            let _ = s.connect(&Connect::new(v, "id"));
            let mut buf = [0u8; 256];
            while let Ok(Some(_)) = s.poll_transmit(now, &mut buf) {}
            let connack: &[u8] = if v == ProtocolVersion::V5 {
                &[0x20, 3, 0, 0, 0]
            } else {
                &[0x20, 2, 0, 0]
            };
            let _ = s.handle_read(now, connack);
            let topic = TopicName::new("t").unwrap();
            let _ = s.publish(&Message::new(topic, b"x", QoS::AtLeastOnce));
            let _ = s.subscribe(
                &[mqtt_sansio::Subscription::new(
                    mqtt_sansio::TopicFilter::new("f").unwrap(),
                    QoS::AtLeastOnce,
                )],
                Default::default(),
            );
            while let Ok(Some(_)) = s.poll_transmit(now, &mut buf) {}
            let _ = s.handle_read(now, &[0x40, 2, 0, 1]);
            s.handle_timeout(Instant::from_millis(1_000_000));
            while s.poll_event().is_some() {}
            let _ = s.handle_transport_closed(now);
            while s.poll_event().is_some() {}
            let _ = s.store_usage();
        }
        assert!(config.check(needed).is_ok());
    }
}

/// A command refused for want of room leaves the packet identifiers as they were: the driver
/// that grows the store and calls again gets the identifier the first call took (a trace then
/// numbers 1, 2, 3 as mosquitto's clients do, not 1, 2, 4).
#[test]
fn a_command_refused_for_room_gives_its_identifier_back() {
    for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let config = SessionConfig::new(v);
        let mut h = Harness::with(config, config.reserved_bytes() + 64);
        h.connect(false, false);
        let filter = |f| [mqtt_sansio::TopicFilter::new(f).unwrap()];
        let sub = [mqtt_sansio::Subscription::new(
            mqtt_sansio::TopicFilter::new("u/1").unwrap(),
            QoS::AtMostOnce,
        )];
        assert_eq!(h.s.subscribe(&sub, Default::default()).unwrap().get(), 1);
        let first =
            h.s.unsubscribe(&filter("gone/1"), Default::default())
                .unwrap();
        assert_eq!(first.get(), 2);
        let long = "gone/".repeat(20);
        let needed = match h.s.unsubscribe(&filter(&long), Default::default()) {
            Err(CommandError::StoreFull { needed, .. }) => needed,
            other => panic!("{v:?}: {other:?}"),
        };
        let message = mqtt_sansio::session::Message::new(
            mqtt_sansio::TopicName::new("t").unwrap(),
            &[0u8; 100],
            QoS::AtLeastOnce,
        );
        assert!(matches!(
            h.s.publish(&message),
            Err(CommandError::StoreFull { .. })
        ));
        let reserved = h.s.reserved_len();
        h.s.resize_store(reserved + 4 * needed + 256, |s, n| s.resize(n, 0))
            .unwrap();
        let retried = h.s.unsubscribe(&filter(&long), Default::default()).unwrap();
        assert_eq!(retried.get(), 3, "{v:?}");
        assert_eq!(h.s.publish(&message).unwrap().unwrap().get(), 4, "{v:?}");
    }
}
