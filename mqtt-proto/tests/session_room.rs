//! Tables that grow and shrink under a live session (`Session::wants_room`,
//! `Session::resize_region`), for a store that can grow: the incoming table takes a flood
//! instead of leaving messages with the broker, the subscription table takes a long list,
//! and nothing queued, in flight or kept moves or is lost while the regions behind them move.

mod support;

use mqtt_sansio::session::{CommandError, Region, SessionConfig};
use mqtt_sansio::{
    Packet, ProtocolVersion, QoS, ReasonCode, SubAck, Subscription, SubscriptionOptions,
    TopicFilter,
};
use support::{dec, incoming, puback, pubrec_ids, pubrel, Ev, Harness};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// Answers every request of the session, as a driver with a growable store does after each
/// packet and command; returns the requests.
fn answer(h: &mut Harness) -> Vec<(Region, usize)> {
    let mut asked = Vec::new();
    while let Some((region, len)) = h.s.wants_room() {
        assert!(asked.len() < 32, "the session keeps asking: {asked:?}");
        h.s.resize_region(region, len, |store, n| store.resize(n, 0))
            .unwrap();
        asked.push((region, len));
    }
    asked
}

fn flood_config(v: ProtocolVersion) -> SessionConfig {
    let mut config = SessionConfig::new(v);
    config.receive_maximum = 4;
    config.incoming_slots = 4;
    config.incoming_slots_limit = 64;
    config.index_slots = 8;
    config
}

#[test]
fn a_full_incoming_table_grows_instead_of_leaving_messages_with_the_broker() {
    for v in VERSIONS {
        let config = flood_config(v);
        let start = config.reserved_bytes() + 2048;
        let mut h = Harness::with(config, start);
        h.connect(false, false);
        // Queued and in-flight messages sit in the log, behind the table that grows.
        let ours: Vec<u16> = (0..3)
            .map(|i| {
                h.publish("out", &[i; 40], QoS::AtLeastOnce)
                    .unwrap()
                    .unwrap()
                    .get()
            })
            .collect();
        h.flush();
        let first = h.take_sent();
        assert_eq!(first.len(), 3);
        let mut grew = Vec::new();
        for id in 1..=40u16 {
            h.feed_packet(incoming("in", b"m", QoS::ExactlyOnce, id))
                .unwrap();
            grew.extend(answer(&mut h));
        }
        // 4 → 8 → 16 → 32 → 64 slots, each asked for once the table was full.
        let slots: Vec<usize> = grew.iter().map(|&(_, len)| len / 4).collect();
        assert_eq!(slots, [8, 16, 32, 64], "{grew:?}");
        let recs = pubrec_ids(&h.take_sent(), v);
        assert_eq!(recs, (1..=40).collect::<Vec<_>>(), "every message taken");
        let events = h.take_events();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Ev::Overrun { deferred: true, .. } | Ev::Lost(_))),
            "nothing left with the broker, no resync: {events:?}"
        );
        let delivered = events
            .iter()
            .filter(|e| matches!(e, Ev::Message { .. }))
            .count();
        assert_eq!(delivered, 40);
        // Our messages moved with the log: a resend after a reconnect is byte for byte the
        // same (with DUP), and their acknowledgements find them.
        h.transport_closed();
        let resent = h.connect(false, true);
        let publishes: Vec<&Vec<u8>> = resent
            .iter()
            .filter(|b| matches!(dec(b, v), Packet::Publish(_)))
            .collect();
        assert_eq!(publishes.len(), 3);
        for (again, before) in publishes.iter().zip(&first) {
            assert_eq!(again[0], before[0] | 0x08, "DUP set");
            assert_eq!(again[1..], before[1..]);
        }
        for id in ours {
            h.feed_packet(puback(id)).unwrap();
        }
        let acked = h
            .take_events()
            .iter()
            .filter(|e| matches!(e, Ev::Published { .. }))
            .count();
        assert_eq!(acked, 3);
        // Released, the table goes back to its first size and the store shrinks with it.
        for id in 1..=40u16 {
            h.feed_packet(pubrel(id)).unwrap();
        }
        assert_eq!(answer(&mut h), [(Region::Incoming, 16)]);
        assert_eq!(h.s.store_usage().0, 0);
        assert_eq!(h.s.reserved_len() + h.s.store_usage().1, start);
    }
}

#[test]
fn a_table_that_can_grow_starts_below_the_receive_maximum_and_takes_a_full_window() {
    for v in VERSIONS {
        let mut config = flood_config(v);
        config.receive_maximum = 16;
        config.incoming_slots = 2;
        let small = config.reserved_bytes();
        config.incoming_slots = 16;
        assert_eq!(small + 14 * 4, config.reserved_bytes(), "2 slots, not 16");
        config.incoming_slots = 2;
        let mut h = Harness::with(config, small + 1024);
        h.connect(false, false);
        let mut grew = Vec::new();
        for id in 1..=16u16 {
            h.feed_packet(incoming("in", b"m", QoS::ExactlyOnce, id))
                .unwrap();
            grew.extend(answer(&mut h));
        }
        // MIN_SLOTS first, then doubling: asked for once full, never beyond need.
        let slots: Vec<usize> = grew.iter().map(|&(_, len)| len / 4).collect();
        assert!(
            slots.windows(2).all(|w| w[0] < w[1]) && slots.len() <= 4,
            "{slots:?}"
        );
        let sent = h.take_sent();
        let recs = sent
            .iter()
            .filter(|b| matches!(dec(b, v), Packet::PubRec(_)))
            .count();
        assert_eq!(recs, 16, "the whole window taken");
        let events = h.take_events();
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Ev::Overrun { .. } | Ev::Lost(_))),
            "within the Receive Maximum: no notice, no resync: {events:?}"
        );
        for id in 1..=16u16 {
            h.feed_packet(pubrel(id)).unwrap();
        }
        assert_eq!(
            answer(&mut h),
            [(Region::Incoming, 8)],
            "back to its first size"
        );
    }
}

#[test]
fn at_its_limit_the_table_stops_growing_and_the_session_resyncs_as_before() {
    let mut config = flood_config(ProtocolVersion::V3_1_1);
    config.incoming_slots_limit = 8;
    let mut h = Harness::with(config, config.reserved_bytes() + 1024);
    h.connect(false, false);
    for id in 1..=9u16 {
        h.feed_packet(incoming("in", b"m", QoS::ExactlyOnce, id))
            .unwrap();
        answer(&mut h);
    }
    let events = h.take_events();
    assert!(
        events.contains(&Ev::Overrun {
            in_flight: 8,
            deferred: true
        }),
        "{events:?}"
    );
    assert_eq!(h.s.reserved_len(), config.reserved_bytes() + 16);
}

#[test]
fn without_limits_nothing_is_asked_for() {
    for v in VERSIONS {
        let mut config = SessionConfig::new(v);
        config.incoming_slots = 2;
        config.receive_maximum = 2;
        config.subscription_bytes = 16;
        let mut h = Harness::with(config, config.reserved_bytes() + 1024);
        h.connect(false, false);
        for id in 1..=3u16 {
            h.feed_packet(incoming("in", b"m", QoS::ExactlyOnce, id))
                .unwrap();
            assert_eq!(h.s.wants_room(), None);
        }
    }
}

fn sub(filter: &str) -> Subscription<'_> {
    Subscription {
        filter: TopicFilter::new(filter).unwrap(),
        options: SubscriptionOptions::new(QoS::AtLeastOnce),
    }
}

#[test]
fn the_subscription_table_grows_before_the_suback_so_every_filter_is_renewed() {
    for v in VERSIONS {
        let mut config = SessionConfig::new(v);
        config.subscription_bytes = 16;
        config.subscription_bytes_limit = 4096;
        let mut h = Harness::with(config, config.reserved_bytes() + 4096);
        h.connect(false, false);
        // Something queued behind the table, to move with it.
        let queued = h
            .publish("out", b"kept", QoS::AtLeastOnce)
            .unwrap()
            .unwrap();
        let names: Vec<String> = (0..10).map(|i| format!("sensors/{i}/+")).collect();
        let subs: Vec<Subscription<'_>> = names.iter().map(|n| sub(n)).collect();
        let pid = h.s.subscribe(&subs, Default::default()).unwrap();
        let asked = answer(&mut h);
        // 10 entries of 8 bytes and an 11-byte filter each.
        assert_eq!(asked, [(Region::Subscriptions, 190)]);
        h.flush();
        h.take_sent();
        let codes = vec![ReasonCode::GrantedQoS1; 10];
        h.feed_packet(Packet::SubAck(SubAck::new(pid, &codes)))
            .unwrap();
        h.feed_packet(puback(queued.get())).unwrap();
        let events = h.take_events();
        assert!(
            !events.iter().any(|e| matches!(e, Ev::NotRenewable { .. })),
            "{events:?}"
        );
        assert!(events.iter().any(|e| matches!(e, Ev::Published { .. })));
        assert_eq!(answer(&mut h), [], "satisfied");
        // The broker lost our session: one renewal carries all ten filters.
        h.transport_closed();
        let sent = h.connect(false, false);
        let Packet::Subscribe(s) = dec(&sent[0], v) else {
            panic!("{sent:?}")
        };
        let renewed: Vec<&str> = s.subscriptions.iter().map(|s| s.filter.as_str()).collect();
        assert_eq!(renewed, names);
    }
}

#[test]
fn a_table_does_not_shrink_below_what_it_holds() {
    let config = flood_config(ProtocolVersion::V5);
    let mut h = Harness::with(config, config.reserved_bytes() + 1024);
    h.connect(false, false);
    for id in 1..=6u16 {
        h.feed_packet(incoming("in", b"m", QoS::ExactlyOnce, id))
            .unwrap();
        answer(&mut h);
    }
    let before = h.s.reserved_len();
    let refused =
        h.s.resize_region(Region::Incoming, 16, |store, n| store.truncate(n));
    assert_eq!(
        refused,
        Err(CommandError::StoreFull {
            needed: 24,
            available: 16
        })
    );
    assert_eq!(h.s.reserved_len(), before, "untouched");
    // Released out of order: the live entries at the back still count.
    for id in 1..=5u16 {
        h.feed_packet(pubrel(id)).unwrap();
    }
    assert!(h
        .s
        .resize_region(Region::Incoming, 16, |store, n| store.truncate(n))
        .is_err());
    h.feed_packet(pubrel(6)).unwrap();
    assert_eq!(answer(&mut h), [(Region::Incoming, 16)]);
}

#[test]
fn a_dropped_subscribe_no_longer_asks_for_room() {
    let mut config = SessionConfig::new(ProtocolVersion::V5);
    config.subscription_bytes = 16;
    config.subscription_bytes_limit = 4096;
    let mut h = Harness::with(config, config.reserved_bytes() + 1024);
    // Queued before CONNACK: 18 table bytes, more than the 16 there are.
    let share = [sub("$share/g/a")];
    h.s.subscribe(&share, Default::default()).unwrap();
    assert_eq!(h.s.wants_room(), Some((Region::Subscriptions, 32)));
    h.s.connect(&mqtt_sansio::Connect::new(ProtocolVersion::V5, "c"))
        .unwrap();
    h.take_sent();
    let mut ack = mqtt_sansio::ConnAck::new(ReasonCode::Success);
    ack.properties.shared_subscription_available = Some(false);
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    let events = h.take_events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Ev::RequestDropped { .. })),
        "{events:?}"
    );
    assert_eq!(
        h.s.wants_room(),
        None,
        "the dropped filter waits for no room"
    );
}

/// Grows the control region to what a command said it needs, and runs it again.
fn with_control_room(
    h: &mut Harness,
    mut command: impl FnMut(&mut Harness) -> Result<(), CommandError>,
) -> Option<usize> {
    match command(h) {
        Ok(()) => None,
        Err(CommandError::StoreFull { needed, available }) => {
            assert!(needed > available, "{needed} {available}");
            h.s.resize_region(Region::Control, needed, |store, n| store.resize(n, 0))
                .unwrap();
            command(h).unwrap();
            Some(needed)
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn a_small_control_region_grows_for_each_control_packet_and_shrinks_once_it_is_sent() {
    let mut config = SessionConfig::new(ProtocolVersion::V5);
    config.control_bytes = 8;
    config.assigned_id_bytes = 0;
    let mut h = Harness::with(config, config.reserved_bytes() + 1024);
    // Queued while disconnected: it sits in the log, behind the region that moves.
    let queued = h.publish("q", &[7; 30], QoS::AtLeastOnce).unwrap().unwrap();
    let mut connect = mqtt_sansio::Connect::new(ProtocolVersion::V5, "a-client-identifier");
    connect.username = Some("user");
    connect.keep_alive = 30;
    let grown = with_control_room(&mut h, |h| h.s.connect(&connect)).expect("grown");
    // The CONNECT waits in the region: it cannot shrink under it.
    assert_eq!(h.s.wants_room(), None);
    assert!(h
        .s
        .resize_region(Region::Control, 8, |store, n| store.truncate(n))
        .is_err());
    let sent = h.take_sent();
    assert_eq!(
        grown,
        sent[0].len(),
        "grown to the CONNECT the session sends"
    );
    match dec(&sent[0], h.version) {
        Packet::Connect(c) => {
            assert_eq!(
                (c.client_id, c.username),
                ("a-client-identifier", Some("user"))
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(answer(&mut h), [(Region::Control, 8)], "back once sent");
    h.feed_packet(Packet::ConnAck(mqtt_sansio::ConnAck::new(
        ReasonCode::Success,
    )))
    .unwrap();
    let sent = h.take_sent();
    assert!(
        matches!(dec(&sent[0], h.version), Packet::Publish(p) if p.packet_id() == Some(queued)),
        "the queued message survived the moves: {sent:?}"
    );
    h.feed_packet(puback(queued.get())).unwrap();
    // A DISCONNECT with a reason string longer than the region.
    let reason = "maintenance window: the device reboots into new firmware";
    let mut disconnect = mqtt_sansio::Disconnect::new(ReasonCode::Success);
    disconnect.properties.reason_string = Some(reason);
    assert!(with_control_room(&mut h, |h| h.s.disconnect(&disconnect)).is_some());
    let sent = h.take_sent();
    match dec(sent.last().unwrap(), h.version) {
        Packet::Disconnect(d) => assert_eq!(d.properties.reason_string, Some(reason)),
        other => panic!("{other:?}"),
    }
    assert_eq!(answer(&mut h), [(Region::Control, 8)]);
}

#[test]
fn a_fixed_control_region_is_never_asked_to_change() {
    for v in VERSIONS {
        let mut h = Harness::new(v);
        h.connect(true, false);
        assert_eq!(h.s.wants_room(), None);
        h.s.disconnect(&mqtt_sansio::Disconnect::default()).unwrap();
        h.take_sent();
        assert_eq!(h.s.wants_room(), None);
    }
}

#[test]
fn a_renewal_longer_than_the_queue_grows_it_instead_of_being_dropped() {
    for v in VERSIONS {
        for limit in [0, 4096] {
            let mut config = SessionConfig::new(v);
            config.subscription_bytes = 512;
            config.queue_bytes_limit = limit;
            let small = config.reserved_bytes() + 128;
            let mut h = Harness::with(config, small);
            h.connect(false, false);
            let long = format!("devices/{}/#", "x".repeat(300));
            let subs = [sub(&long)];
            // The command finds no room and says so; the driver grows the queue and asks
            // again, then gives the memory back once the queue has drained.
            let needed = match h.s.subscribe(&subs, Default::default()) {
                Err(CommandError::StoreFull { needed, .. }) => needed,
                other => panic!("{other:?}"),
            };
            let reserved = h.s.reserved_len();
            h.s.resize_store(reserved + 2 * needed, |s, n| s.resize(n, 0))
                .unwrap();
            let pid = h.s.subscribe(&subs, Default::default()).unwrap();
            h.flush();
            h.take_sent();
            h.feed_packet(Packet::SubAck(SubAck::new(pid, &[ReasonCode::GrantedQoS1])))
                .unwrap();
            h.take_events();
            h.s.resize_store(small, |s, n| s.truncate(n)).unwrap();
            // The broker lost our session.
            h.transport_closed();
            let sent = h.connect(false, false);
            assert!(sent.is_empty(), "{v:?} {limit}: {sent:?}");
            let asked = answer(&mut h);
            h.flush();
            let sent = h.take_sent();
            let events = h.take_events();
            if limit == 0 {
                // A store that cannot grow: the filter is reported, not renewed.
                assert_eq!(asked, [], "{v:?}");
                assert!(sent.is_empty(), "{v:?}: {sent:?}");
                assert!(
                    events.contains(&Ev::RenewalDropped(ReasonCode::PacketTooLarge)),
                    "{v:?}: {events:?}"
                );
                continue;
            }
            assert_eq!(asked.len(), 1, "{v:?}: {asked:?}");
            assert_eq!(asked[0].0, Region::Queue);
            assert!(asked[0].1 > 300 && asked[0].1 <= limit, "{asked:?}");
            assert_eq!(sent.len(), 1, "{v:?}: {sent:?}");
            let Packet::Subscribe(s) = dec(&sent[0], v) else {
                panic!("{sent:?}")
            };
            let renewed: Vec<&str> = s.subscriptions.iter().map(|s| s.filter.as_str()).collect();
            assert_eq!(renewed, [long.as_str()], "{v:?}");
            assert!(
                !events.iter().any(|e| matches!(e, Ev::RenewalDropped(_))),
                "{v:?}: {events:?}"
            );
        }
    }
}
