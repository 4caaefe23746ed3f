//! The session renews the subscriptions the broker granted when a broker comes back without
//! our session ([`SessionConfig::subscription_bytes`]), against a scripted broker.

mod support;

use core::num::NonZeroU32;

use mqtt_sansio::session::SessionConfig;
use mqtt_sansio::{
    ConnAck, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, RetainHandling, Seq, SubAck,
    Subscribe, SubscribeProperties, Subscription, SubscriptionOptions, TopicFilter, UnsubAck,
    UnsubscribeProperties,
};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;
const V3: ProtocolVersion = ProtocolVersion::V3_1_1;

fn config(version: ProtocolVersion, subscription_bytes: usize) -> SessionConfig {
    let mut config = SessionConfig::new(version);
    config.subscription_bytes = subscription_bytes;
    config
}

fn sub(filter: &str, qos: QoS) -> Subscription<'_> {
    Subscription::new(TopicFilter::new(filter).unwrap(), qos)
}

fn with_id(id: u32) -> SubscribeProperties<'static> {
    SubscribeProperties {
        subscription_identifier: NonZeroU32::new(id),
        ..Default::default()
    }
}

fn granted(subs: &[Subscription<'_>]) -> Vec<ReasonCode> {
    subs.iter()
        .map(|s| match s.options.qos {
            QoS::AtMostOnce => ReasonCode::Success,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        })
        .collect()
}

/// Subscribes, and answers with `codes`; returns the SUBSCRIBE's id.
fn subscribe(
    h: &mut Harness,
    subs: &[Subscription<'_>],
    props: SubscribeProperties<'_>,
    codes: &[ReasonCode],
) -> PacketId {
    let id = h.s.subscribe(subs, props).unwrap();
    assert_eq!(h.take_sent().len(), 1);
    h.feed_packet(Packet::SubAck(SubAck::new(id, codes)))
        .unwrap();
    let events = h.take_events();
    assert!(
        events.contains(&Ev::Subscribed {
            pid: id.get(),
            codes: codes.to_vec()
        }),
        "{events:?}"
    );
    id
}

/// The transport drops and the broker comes back with `session_present`; returns what the
/// session sent after CONNACK.
fn reconnect(h: &mut Harness, session_present: bool) -> Vec<Vec<u8>> {
    h.transport_closed();
    h.connect(false, session_present)
}

/// The SUBSCRIBE the session should send, encoded by the codec.
fn expected(
    v: ProtocolVersion,
    id: PacketId,
    subs: &[Subscription<'_>],
    props: SubscribeProperties<'_>,
) -> Vec<u8> {
    enc(
        Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: props,
            subscriptions: Seq::from_slice(subs),
        }),
        v,
    )
}

fn subscribe_id(bytes: &[u8], v: ProtocolVersion) -> PacketId {
    match dec(bytes, v) {
        Packet::Subscribe(s) => s.packet_id,
        other => panic!("expected SUBSCRIBE, got {other:?}"),
    }
}

#[test]
fn a_lost_session_is_renewed_with_the_same_filters_options_and_identifier() {
    let mut h = Harness::with(config(V5, 256), 16 * 1024);
    h.connect(false, false);
    let mut options = SubscriptionOptions::new(QoS::AtLeastOnce);
    options.no_local = true;
    options.retain_as_published = true;
    options.retain_handling = RetainHandling::DoNotSend;
    let a = Subscription {
        filter: TopicFilter::new("a/b").unwrap(),
        options,
    };
    let first = [a, sub("c/#", QoS::ExactlyOnce)];
    let mut props = with_id(7);
    props.user_properties = Seq::from_slice(&[("not", "renewed")]);
    subscribe(&mut h, &first, props, &granted(&first));
    let second = [sub("d", QoS::AtMostOnce)];
    subscribe(&mut h, &second, Default::default(), &granted(&second));

    let sent = reconnect(&mut h, false);
    assert_eq!(sent.len(), 2, "one SUBSCRIBE per identifier");
    let r1 = subscribe_id(&sent[0], V5);
    let r2 = subscribe_id(&sent[1], V5);
    assert_eq!(sent[0], expected(V5, r1, &first, with_id(7)));
    assert_eq!(sent[1], expected(V5, r2, &second, Default::default()));
    assert!(r1.get() > 2 && r2 != r1, "fresh packet identifiers");

    h.feed_packet(Packet::SubAck(SubAck::new(r1, &granted(&first))))
        .unwrap();
    h.feed_packet(Packet::SubAck(SubAck::new(r2, &granted(&second))))
        .unwrap();
    assert_eq!(
        h.take_events(),
        vec![
            Ev::Resubscribed {
                pid: r1.get(),
                filters: vec!["a/b".into(), "c/#".into()],
                codes: granted(&first),
            },
            Ev::Resubscribed {
                pid: r2.get(),
                filters: vec!["d".into()],
                codes: granted(&second),
            },
        ]
    );
    // Renewed subscriptions stay kept: the next lost session renews them again.
    let sent = reconnect(&mut h, false);
    assert_eq!(sent.len(), 2);
}

#[test]
fn on_3_1_1_every_kept_filter_is_renewed_in_one_subscribe() {
    let mut h = Harness::with(config(V3, 256), 16 * 1024);
    h.connect(false, false);
    let first = [sub("a/b", QoS::AtLeastOnce), sub("c/+", QoS::ExactlyOnce)];
    subscribe(&mut h, &first, Default::default(), &granted(&first));
    let second = [sub("d", QoS::AtMostOnce)];
    subscribe(&mut h, &second, Default::default(), &granted(&second));
    let sent = reconnect(&mut h, false);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let r = subscribe_id(&sent[0], V3);
    let all = [first[0], first[1], second[0]];
    assert_eq!(sent[0], expected(V3, r, &all, Default::default()));
    h.feed_packet(Packet::SubAck(SubAck::new(r, &granted(&all))))
        .unwrap();
    assert_eq!(
        h.take_events(),
        vec![Ev::Resubscribed {
            pid: r.get(),
            filters: vec!["a/b".into(), "c/+".into(), "d".into()],
            codes: granted(&all),
        }]
    );
}

#[test]
fn a_resumed_session_renews_nothing() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 256), 16 * 1024);
        h.connect(false, false);
        let subs = [sub("a", QoS::AtLeastOnce)];
        subscribe(&mut h, &subs, Default::default(), &granted(&subs));
        assert!(reconnect(&mut h, true).is_empty(), "{v:?}");
        assert!(h.take_events().is_empty());
    }
}

#[test]
fn without_a_table_nothing_is_renewed() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 0), 16 * 1024);
        h.connect(false, false);
        let subs = [sub("a", QoS::AtLeastOnce)];
        subscribe(&mut h, &subs, Default::default(), &granted(&subs));
        assert!(reconnect(&mut h, false).is_empty(), "{v:?}");
        assert!(h.take_events().is_empty(), "{v:?}: no notice either");
    }
}

#[test]
fn an_unsubscribe_the_broker_confirms_removes_the_filter() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 256), 16 * 1024);
        h.connect(false, false);
        let subs = [
            sub("a", QoS::AtLeastOnce),
            sub("b", QoS::AtLeastOnce),
            sub("c", QoS::AtLeastOnce),
        ];
        subscribe(&mut h, &subs, Default::default(), &granted(&subs));
        let filters = [subs[0].filter, subs[2].filter];
        let id =
            h.s.unsubscribe(&filters, UnsubscribeProperties::default())
                .unwrap();
        h.take_sent();
        // 5.0: "a" was not subscribed as far as the broker knows (gone either way); "c"
        // could not be removed, so the broker still has it.
        let codes: &[ReasonCode] = if v.is_v5() {
            &[ReasonCode::NoSubscriptionExisted, ReasonCode::NotAuthorized]
        } else {
            &[]
        };
        h.feed_packet(Packet::UnsubAck(UnsubAck::new(id, codes)))
            .unwrap();
        h.take_events();
        let sent = reconnect(&mut h, false);
        let r = subscribe_id(&sent[0], v);
        let left: &[Subscription<'_>] = if v.is_v5() {
            &[subs[1], subs[2]]
        } else {
            &[subs[1]]
        };
        assert_eq!(sent, [expected(v, r, left, Default::default())], "{v:?}");
    }
}

#[test]
fn refused_filters_are_not_kept_and_a_refused_renewal_is_forgotten() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 256), 16 * 1024);
        h.connect(false, false);
        let subs = [sub("a", QoS::AtLeastOnce), sub("b", QoS::AtLeastOnce)];
        let codes = [ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError];
        subscribe(&mut h, &subs, Default::default(), &codes);
        let sent = reconnect(&mut h, false);
        let r = subscribe_id(&sent[0], v);
        assert_eq!(sent, [expected(v, r, &subs[..1], Default::default())]);
        // Now the broker refuses "a" too: reported, and no longer kept.
        h.feed_packet(Packet::SubAck(SubAck::new(
            r,
            &[ReasonCode::UnspecifiedError],
        )))
        .unwrap();
        assert_eq!(
            h.take_events(),
            vec![Ev::Resubscribed {
                pid: r.get(),
                filters: vec!["a".into()],
                codes: vec![ReasonCode::UnspecifiedError],
            }]
        );
        assert!(reconnect(&mut h, false).is_empty(), "{v:?}");
    }
}

#[test]
fn subscribing_a_kept_filter_again_replaces_its_options() {
    let mut h = Harness::with(config(V5, 256), 16 * 1024);
    h.connect(false, false);
    let old = [sub("a", QoS::AtMostOnce), sub("b", QoS::AtMostOnce)];
    subscribe(&mut h, &old, with_id(1), &granted(&old));
    let new = [sub("a", QoS::ExactlyOnce)];
    subscribe(&mut h, &new, with_id(2), &granted(&new));
    let sent = reconnect(&mut h, false);
    assert_eq!(sent.len(), 2);
    let (r1, r2) = (subscribe_id(&sent[0], V5), subscribe_id(&sent[1], V5));
    assert_eq!(sent[0], expected(V5, r1, &old[1..], with_id(1)));
    assert_eq!(sent[1], expected(V5, r2, &new, with_id(2)));
}

#[test]
fn a_full_table_still_subscribes_and_says_what_it_cannot_renew() {
    for v in BOTH {
        // Room for "a/b" (8 + 3 bytes) and "e" (8 + 1), not for "c/dddd" (8 + 6): "e" is
        // not kept either, so that what is not renewed is one run of filters.
        let mut h = Harness::with(config(v, 22), 16 * 1024);
        h.connect(false, false);
        let subs = [
            sub("a/b", QoS::AtLeastOnce),
            sub("c/dddd", QoS::AtLeastOnce),
            sub("e", QoS::AtLeastOnce),
        ];
        let id = h.s.subscribe(&subs, Default::default()).unwrap();
        assert_eq!(h.take_sent().len(), 1);
        h.feed_packet(Packet::SubAck(SubAck::new(id, &granted(&subs))))
            .unwrap();
        assert_eq!(
            h.take_events(),
            vec![
                Ev::Subscribed {
                    pid: id.get(),
                    codes: granted(&subs)
                },
                Ev::NotRenewable {
                    pid: id.get(),
                    index: 1
                },
            ],
            "{v:?}"
        );
        let sent = reconnect(&mut h, false);
        let r = subscribe_id(&sent[0], v);
        assert_eq!(sent, [expected(v, r, &subs[..1], Default::default())]);
    }
}

/// The broker's queue of our requests replays what the application did while the session
/// was lost: renewals first, then an UNSUBSCRIBE queued while disconnected.
#[test]
fn renewals_go_before_requests_queued_while_disconnected() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 256), 16 * 1024);
        h.connect(false, false);
        let subs = [sub("a", QoS::AtLeastOnce)];
        subscribe(&mut h, &subs, Default::default(), &granted(&subs));
        h.transport_closed();
        let queued = h.publish("t", b"m", QoS::AtLeastOnce).unwrap().unwrap();
        let un =
            h.s.unsubscribe(&[subs[0].filter], UnsubscribeProperties::default())
                .unwrap();
        let sent = h.connect(false, false);
        let kinds: Vec<_> = sent.iter().map(|b| dec(b, v).packet_type()).collect();
        use mqtt_sansio::PacketType as T;
        assert_eq!(kinds, [T::Subscribe, T::Publish, T::Unsubscribe], "{v:?}");
        let r = subscribe_id(&sent[0], v);
        h.feed_packet(Packet::SubAck(SubAck::new(r, &granted(&subs))))
            .unwrap();
        h.feed_packet(puback(queued.get())).unwrap();
        let codes: &[ReasonCode] = if v.is_v5() {
            &[ReasonCode::Success]
        } else {
            &[]
        };
        h.feed_packet(Packet::UnsubAck(UnsubAck::new(un, codes)))
            .unwrap();
        h.take_events();
        assert!(reconnect(&mut h, false).is_empty(), "{v:?}: unsubscribed");
    }
}

#[test]
fn a_renewal_lost_with_the_connection_goes_again_once() {
    for v in BOTH {
        let mut h = Harness::with(config(v, 256), 16 * 1024);
        h.connect(false, false);
        let subs = [sub("a", QoS::AtLeastOnce)];
        subscribe(&mut h, &subs, Default::default(), &granted(&subs));
        let sent = reconnect(&mut h, false);
        assert_eq!(sent.len(), 1);
        // No SUBACK: the broker resumes the session next time and gets the renewal again.
        let again = reconnect(&mut h, true);
        assert_eq!(again, sent, "{v:?}");
        // Lost again: one renewal, not the old one and a new one.
        let third = reconnect(&mut h, false);
        assert_eq!(third.len(), 1, "{v:?}");
        let r = subscribe_id(&third[0], v);
        assert_eq!(third[0], expected(v, r, &subs, Default::default()));
    }
}

#[test]
fn renewals_respect_the_brokers_maximum_packet_size() {
    let mut h = Harness::with(config(V5, 256), 16 * 1024);
    h.connect(false, false);
    let subs = [
        sub("aaaaaaaa", QoS::AtLeastOnce),
        sub("bbbbbbbb", QoS::AtLeastOnce),
        sub("cccccccc", QoS::AtLeastOnce),
    ];
    subscribe(&mut h, &subs, Default::default(), &granted(&subs));
    h.transport_closed();
    h.s.connect(&mqtt_sansio::Connect::new(V5, "client-1"))
        .unwrap();
    h.take_sent();
    let mut ack = ConnAck::new(ReasonCode::Success);
    // A SUBSCRIBE of two filters is 2 + 2 + 1 + 2 × 11 = 27 bytes: two fit in 27, not three.
    ack.properties.maximum_packet_size = NonZeroU32::new(27);
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    let sent = h.take_sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|p| p.len() <= 27));
    let (r1, r2) = (subscribe_id(&sent[0], V5), subscribe_id(&sent[1], V5));
    assert_eq!(sent[0], expected(V5, r1, &subs[..2], Default::default()));
    assert_eq!(sent[1], expected(V5, r2, &subs[2..], Default::default()));
}

#[test]
fn a_subscription_the_new_broker_cannot_take_is_dropped_and_reported() {
    let mut h = Harness::with(config(V5, 256), 16 * 1024);
    h.connect(false, false);
    let subs = [sub("a/#", QoS::AtLeastOnce), sub("b", QoS::AtLeastOnce)];
    subscribe(&mut h, &subs, Default::default(), &granted(&subs));
    h.transport_closed();
    h.s.connect(&mqtt_sansio::Connect::new(V5, "client-1"))
        .unwrap();
    h.take_sent();
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.properties.wildcard_subscription_available = Some(false);
    h.feed_packet(Packet::ConnAck(ack)).unwrap();
    let sent = h.take_sent();
    let r = subscribe_id(&sent[0], V5);
    assert_eq!(sent, [expected(V5, r, &subs[1..], Default::default())]);
    let events = h.take_events();
    assert!(
        events.contains(&Ev::RenewalDropped(
            ReasonCode::WildcardSubscriptionsNotSupported
        )),
        "{events:?}"
    );
}

#[test]
fn renewals_wait_for_room_in_a_full_log() {
    let mut h = Harness::with(config(V3, 256), 1024);
    h.connect(false, false);
    let subs = [sub("a", QoS::AtLeastOnce)];
    subscribe(&mut h, &subs, Default::default(), &granted(&subs));
    h.transport_closed();
    // Fill the log while disconnected.
    let mut queued = Vec::new();
    while let Ok(Some(id)) = h.publish("t", &[0u8; 40], QoS::AtLeastOnce) {
        queued.push(id);
    }
    let sent = h.connect(false, false);
    assert!(
        sent.iter()
            .all(|b| !matches!(dec(b, V3), Packet::Subscribe(_))),
        "no room for the renewal yet"
    );
    h.take_events();
    // The messages are acknowledged (those sent), which frees the log for the renewal.
    for id in &queued {
        h.feed_packet(puback(id.get())).unwrap();
    }
    let sent = h.take_sent();
    let renewals: Vec<_> = sent
        .iter()
        .filter(|b| matches!(dec(b, V3), Packet::Subscribe(_)))
        .collect();
    assert_eq!(renewals.len(), 1, "{sent:?}");
    let r = subscribe_id(renewals[0], V3);
    assert_eq!(*renewals[0], expected(V3, r, &subs, Default::default()));
}

#[test]
fn renewals_fit_the_drivers_transmit_buffer() {
    let mut config = config(V3, 256);
    config.transmit_capacity = 27;
    let mut h = Harness::with(config, 16 * 1024);
    h.connect(false, false);
    let subs = [
        sub("aaaaaaaa", QoS::AtLeastOnce),
        sub("bbbbbbbb", QoS::AtLeastOnce),
        sub("cccccccc", QoS::AtLeastOnce),
    ];
    for s in &subs {
        let one = [*s];
        subscribe(&mut h, &one, Default::default(), &granted(&one));
    }
    // Two filters make 2 + 2 + 2 × 11 = 26 bytes, three 37.
    let sent = reconnect(&mut h, false);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (r1, r2) = (subscribe_id(&sent[0], V3), subscribe_id(&sent[1], V3));
    assert_eq!(sent[0], expected(V3, r1, &subs[..2], Default::default()));
    assert_eq!(sent[1], expected(V3, r2, &subs[2..], Default::default()));
}

/// The renewal's event lends its filters from the store; a command issued between the read
/// and the event (which may compact the store) must not take them away.
#[test]
fn a_renewal_event_survives_a_command_between_read_and_event() {
    let mut h = Harness::with(config(V5, 256), 2048);
    h.connect(false, false);
    let subs = [sub("a/b", QoS::AtLeastOnce)];
    subscribe(&mut h, &subs, Default::default(), &granted(&subs));
    // Dead records ahead of the renewal, so that the next append compacts.
    for _ in 0..8 {
        let id = h
            .publish("t", &[0u8; 64], QoS::AtLeastOnce)
            .unwrap()
            .unwrap();
        h.take_sent();
        h.feed_packet(puback(id.get())).unwrap();
    }
    h.take_events();
    let sent = reconnect(&mut h, false);
    let r = subscribe_id(&sent[0], V5);
    let ack = enc(Packet::SubAck(SubAck::new(r, &granted(&subs))), V5);
    let expected = Ev::Resubscribed {
        pid: r.get(),
        filters: vec!["a/b".into()],
        codes: granted(&subs),
    };
    let read = h.s.handle_read(h.instant(), &ack).unwrap();
    match read {
        mqtt_sansio::session::Read::Packet {
            len,
            event: Some(e),
        } if len == ack.len() => assert_eq!(copy_event(&e), expected),
        other => panic!("{other:?}"),
    }
    // The escape hatch for drivers that let the event go: still there after a command.
    h.publish("t", &[1u8; 700], QoS::AtLeastOnce).unwrap();
    let event = h.s.event(&ack).expect("the SUBACK's event");
    assert_eq!(copy_event(&event), expected);
}

/// Random subscribes, unsubscribes, refusals and lost sessions against a plain model of the
/// table: every renewal renews exactly what the model kept, each filter once, with its options
/// and identifier, one identifier per SUBSCRIBE; with a small table, what finds no room is
/// reported where the model says.
#[test]
fn renewals_match_a_model_of_the_granted_subscriptions() {
    use std::collections::BTreeMap;
    type Kept = (QoS, Option<u32>);
    const FILTERS: [&str; 6] = ["a", "a/+", "b/#", "c/d/e", "+/x", "long/filter/name/here"];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for (v, room) in [(V3, 4096), (V5, 4096), (V3, 40), (V5, 40)] {
        let mut h = Harness::with(config(v, room), 64 * 1024);
        h.connect(false, false);
        // The table in its order (entries take 8 bytes and the filter's).
        let mut model: Vec<(&str, Kept)> = Vec::new();
        let used = |m: &[(&str, Kept)]| -> usize { m.iter().map(|(f, _)| 8 + f.len()).sum() };
        let mut renewals_checked = 0;
        for step in 0..400 {
            match rnd(10) {
                0..=4 => {
                    let n = 1 + rnd(3) as usize;
                    let subs: Vec<_> = (0..n)
                        .map(|_| {
                            let f = FILTERS[rnd(6) as usize];
                            sub(f, QoS::from_u8(rnd(3) as u8).unwrap())
                        })
                        .collect();
                    let id = if v.is_v5() { rnd(3) as u32 } else { 0 };
                    let codes: Vec<_> = subs
                        .iter()
                        .map(|s| match rnd(4) {
                            0 if v.is_v5() => ReasonCode::NotAuthorized,
                            0 => ReasonCode::UnspecifiedError,
                            _ => granted(&[*s])[0],
                        })
                        .collect();
                    let pid = h.s.subscribe(&subs, with_id(id)).unwrap();
                    h.take_sent();
                    h.feed_packet(Packet::SubAck(SubAck::new(pid, &codes)))
                        .unwrap();
                    let mut not_kept = None;
                    for (index, (s, c)) in subs.iter().zip(&codes).enumerate() {
                        let f = *FILTERS.iter().find(|f| **f == s.filter.as_str()).unwrap();
                        model.retain(|(g, _)| *g != f);
                        if c.is_error() || not_kept.is_some() {
                            continue;
                        }
                        if used(&model) + 8 + f.len() <= room {
                            model.push((f, (s.options.qos, NonZeroU32::new(id).map(|i| i.get()))));
                        } else {
                            not_kept = Some(index as u16);
                        }
                    }
                    let mut expected = vec![Ev::Subscribed {
                        pid: pid.get(),
                        codes: codes.clone(),
                    }];
                    if let Some(index) = not_kept {
                        expected.push(Ev::NotRenewable {
                            pid: pid.get(),
                            index,
                        });
                    }
                    assert_eq!(h.take_events(), expected, "{v:?} {room} step {step}");
                }
                5..=6 => {
                    let f = FILTERS[rnd(6) as usize];
                    let pid =
                        h.s.unsubscribe(&[TopicFilter::new(f).unwrap()], Default::default())
                            .unwrap();
                    h.take_sent();
                    let codes: &[ReasonCode] = if !v.is_v5() {
                        &[]
                    } else {
                        match rnd(3) {
                            0 => &[ReasonCode::Success],
                            1 => &[ReasonCode::NoSubscriptionExisted],
                            _ => &[ReasonCode::NotAuthorized],
                        }
                    };
                    h.feed_packet(Packet::UnsubAck(UnsubAck::new(pid, codes)))
                        .unwrap();
                    h.take_events();
                    if codes.first().is_none_or(|c| !c.is_error()) {
                        model.retain(|(g, _)| *g != f);
                    }
                }
                7 => assert!(
                    reconnect(&mut h, true).is_empty(),
                    "{v:?} {room} step {step}"
                ),
                _ => {
                    let sent = reconnect(&mut h, false);
                    let expected: BTreeMap<String, Kept> =
                        model.iter().map(|(f, e)| (f.to_string(), *e)).collect();
                    let mut renewed: BTreeMap<String, Kept> = BTreeMap::new();
                    let mut answers = Vec::new();
                    for bytes in &sent {
                        let Packet::Subscribe(s) = dec(bytes, v) else {
                            panic!("{v:?} {room} step {step}: {bytes:?}");
                        };
                        let id = s.properties.subscription_identifier.map(|i| i.get());
                        let mut codes = Vec::new();
                        for one in s.subscriptions.iter() {
                            let f = one.filter.as_str().to_string();
                            assert!(
                                renewed.insert(f, (one.options.qos, id)).is_none(),
                                "{v:?} {room} step {step}: a filter renewed twice"
                            );
                            codes.push(if rnd(5) == 0 {
                                ReasonCode::UnspecifiedError
                            } else {
                                granted(&[one])[0]
                            });
                            if codes.last().is_some_and(|c| c.is_error()) {
                                model.retain(|(g, _)| *g != one.filter.as_str());
                            }
                        }
                        answers.push((s.packet_id, codes));
                    }
                    assert_eq!(renewed, expected, "{v:?} {room} step {step}");
                    renewals_checked += usize::from(!sent.is_empty());
                    for (pid, codes) in answers {
                        h.feed_packet(Packet::SubAck(SubAck::new(pid, &codes)))
                            .unwrap();
                        let events = h.take_events();
                        let expected = [Ev::Resubscribed {
                            pid: pid.get(),
                            filters: match dec(
                                sent.iter().find(|b| subscribe_id(b, v) == pid).unwrap(),
                                v,
                            ) {
                                Packet::Subscribe(s) => s
                                    .subscriptions
                                    .iter()
                                    .map(|s| s.filter.as_str().to_string())
                                    .collect(),
                                _ => unreachable!(),
                            },
                            codes,
                        }];
                        assert_eq!(events, expected, "{v:?} {room} step {step}");
                    }
                }
            }
        }
        assert!(
            renewals_checked > 10,
            "{v:?} {room}: {renewals_checked} renewals checked"
        );
    }
}
