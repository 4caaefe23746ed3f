//! The session's journal: a session recovered from what another journaled resends exactly
//! what was open, and a journal cut at any byte (a power cut) recovers a session that never
//! loses an accepted message, never invents one and never delivers a QoS 2 message twice.

mod support;

use mqtt_sansio::journal::{Record, Replay, Scan};
use mqtt_sansio::session::SessionConfig;
use mqtt_sansio::{Packet, ProtocolVersion, QoS};
use support::*;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const STORE: usize = 16 * 1024;

fn config(version: ProtocolVersion) -> SessionConfig {
    let mut c = SessionConfig::new(version);
    c.journal = true;
    c.subscription_bytes = 256;
    c.assigned_id_bytes = 64;
    // No window: a resumed session resends everything at once, for the checks to see.
    c.max_inflight = u16::MAX;
    c
}

/// A session recovered from `journal` (the records of its last complete snapshot on).
fn recover(version: ProtocolVersion, journal: &[u8]) -> Harness {
    let mut h = Harness::with(config(version), STORE);
    let records: Vec<Record<'_>> = Replay::new(journal).collect();
    let mut scan = Scan::new();
    records.iter().for_each(|r| scan.see(r));
    for r in &records[scan.range()] {
        h.s.restore(r).unwrap();
    }
    h
}

/// What a resumed session sends first: (kind, pid, payload) of each PUBLISH and PUBREL, the
/// PUBLISHes first: each kind keeps its order [MQTT-4.6.0-1] [MQTT-4.6.0-4]; how the two
/// interleave is the window's business.
fn resent(h: &mut Harness) -> Vec<(&'static str, u16, Vec<u8>)> {
    let sent = h.connect(false, true);
    let mut out: Vec<_> = sent
        .iter()
        .filter_map(|b| match dec(b, h.version) {
            Packet::Publish(p) => {
                Some(("publish", p.qos_pid.packet_id()?.get(), p.payload.to_vec()))
            }
            Packet::PubRel(r) => Some(("pubrel", r.packet_id.get(), Vec::new())),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(kind, _, _)| *kind);
    out
}

fn messages(events: &[Ev]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Message { payload, .. } => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

/// A session with a bit of everything open: QoS 1 and 2 messages at each step of their
/// flows, an incoming QoS 2 message awaiting PUBREL, a kept subscription.
fn busy(version: ProtocolVersion) -> Harness {
    let mut h = Harness::with(config(version), STORE);
    h.connect(false, false);
    for (payload, qos) in [
        (&b"a"[..], QoS::AtLeastOnce),
        (b"b", QoS::AtLeastOnce),
        (b"c", QoS::ExactlyOnce),
        (b"d", QoS::ExactlyOnce),
        (b"e", QoS::ExactlyOnce),
    ] {
        h.publish("t", payload, qos).unwrap();
    }
    h.take_sent();
    h.feed_packet(puback(1)).unwrap();
    h.feed_packet(pubrec(3)).unwrap();
    h.feed_packet(pubrec(4)).unwrap();
    h.feed_packet(pubcomp(4)).unwrap();
    h.feed_packet(incoming("in", b"x", QoS::ExactlyOnce, 7))
        .unwrap();
    h.take_sent();
    assert_eq!(messages(&h.take_events()), [b"x".to_vec()]);
    h
}

#[test]
fn a_recovered_session_resends_exactly_what_was_open() {
    for version in VERSIONS {
        let mut h = busy(version);
        let journal = h.journal.clone();
        let mut r = recover(version, &journal);
        let expected = vec![
            ("publish", 2, b"b".to_vec()),
            ("publish", 5, b"e".to_vec()),
            ("pubrel", 3, Vec::new()),
        ];
        assert_eq!(resent(&mut r), expected, "{version:?}");
        // The original, reconnected, resends the same, and both count the same in flight
        // (a PUBREL holds a place in the broker's window: mosquitto drops what a 3.1.1
        // client sends beyond its quota, and acknowledges it all the same).
        h.transport_closed();
        assert_eq!(resent(&mut h), expected, "{version:?}");
        assert_eq!(r.s.inflight(), h.s.inflight(), "{version:?}");
        assert_eq!(r.s.inflight(), 3);
        // The incoming QoS 2 message is not delivered again; a new one is.
        r.feed_packet(incoming("in", b"x", QoS::ExactlyOnce, 7))
            .unwrap();
        r.feed_packet(incoming("in", b"y", QoS::ExactlyOnce, 8))
            .unwrap();
        assert_eq!(messages(&r.take_events()), [b"y".to_vec()], "{version:?}");
        // Identifiers go on where the journal left off.
        assert_eq!(
            r.publish("t", b"f", QoS::AtLeastOnce)
                .unwrap()
                .unwrap()
                .get(),
            6
        );
    }
}

#[test]
fn a_snapshot_restores_the_same_state_and_knows_what_was_sent() {
    for version in VERSIONS {
        let mut h = busy(version);
        let records: Vec<Vec<u8>> =
            h.s.snapshot()
                .map(|r| {
                    let mut b = vec![0; r.encoded_len()];
                    r.encode(&mut b).unwrap();
                    b
                })
                .collect();
        let snapshot = records.concat();
        let mut r = recover(version, &snapshot);
        let sent = r.connect(false, true);
        let dups: Vec<(u16, bool)> = sent
            .iter()
            .filter_map(|b| match dec(b, version) {
                Packet::Publish(p) => Some((p.qos_pid.packet_id()?.get(), p.dup)),
                _ => None,
            })
            .collect();
        assert_eq!(dups, [(2, true), (5, true)], "{version:?}: resent with DUP");
        // A snapshot appended after older records supersedes them.
        let mut both = h.journal.clone();
        both.extend_from_slice(&snapshot);
        let mut r = recover(version, &both);
        assert_eq!(resent(&mut r).len(), 3);
    }
}

#[test]
fn nothing_is_transmitted_before_the_journal_took_it() {
    let mut h = Harness::with(config(ProtocolVersion::V3_1_1), STORE);
    h.connect(false, false);
    h.publish("t", b"a", QoS::AtLeastOnce).unwrap();
    let mut buf = [0u8; 256];
    assert!(h.s.poll_transmit(h.instant(), &mut buf).unwrap().is_none());
    let n = h.s.poll_journal(&mut buf).unwrap();
    assert!(matches!(
        Record::decode(&buf[..n]).unwrap().unwrap().0,
        Record::Queued { .. }
    ));
    assert!(h.s.poll_transmit(h.instant(), &mut buf).unwrap().is_some());
    // A buffer too small for the next record takes nothing.
    h.publish("t", &[7; 100], QoS::AtLeastOnce).unwrap();
    assert!(h.s.poll_journal(&mut buf[..50]).is_err());
    assert!(h.s.poll_journal(&mut buf).unwrap() > 100);
}

#[test]
fn a_lost_broker_session_is_journaled_as_a_snapshot() {
    for version in VERSIONS {
        let mut h = busy(version);
        h.transport_closed();
        // The broker comes back without the session: everything it had is abandoned and
        // the incoming identifier forgotten, so id 7 names a new message now.
        h.connect(false, false);
        let journal = h.journal.clone();
        let mut r = recover(version, &journal);
        r.connect(false, true);
        r.feed_packet(incoming("in", b"new", QoS::ExactlyOnce, 7))
            .unwrap();
        assert_eq!(messages(&r.take_events()), [b"new".to_vec()], "{version:?}");
    }
}

#[test]
fn the_client_identifier_and_subscriptions_come_back() {
    let version = ProtocolVersion::V5;
    let mut h = Harness::with(config(version), STORE);
    h.s.keep_client_id("made-up-42").unwrap();
    h.connect(false, false);
    let filter = mqtt_sansio::TopicFilter::new("cmd/#").unwrap();
    let sub = mqtt_sansio::Subscription::new(filter, QoS::ExactlyOnce);
    let pid = h.s.subscribe(&[sub], Default::default()).unwrap();
    h.take_sent();
    let mut ack = mqtt_sansio::SubAck::new(pid, &[mqtt_sansio::ReasonCode::GrantedQoS2]);
    ack.packet_id = pid;
    h.feed_packet(Packet::SubAck(ack)).unwrap();
    h.take_sent();
    let journal = h.journal.clone();
    let mut r = recover(version, &journal);
    assert_eq!(r.s.assigned_client_id(), Some("made-up-42"));
    // The broker lost the session: the recovered session renews the subscription itself.
    let sent = r.connect(false, false);
    let renewed = sent.iter().any(|b| match dec(b, version) {
        Packet::Subscribe(s) => s.subscriptions.iter().any(|x| x.filter.as_str() == "cmd/#"),
        _ => false,
    });
    assert!(renewed, "renewal SUBSCRIBE after recovery");
}

#[test]
fn only_a_5_0_session_journals_that_it_may_be_resumed() {
    let resumable = |journal: &[u8]| {
        Replay::new(journal)
            .filter(|r| *r == Record::Resumable)
            .count()
    };
    for version in VERSIONS {
        let mut h = Harness::with(config(version), STORE);
        h.connect(false, false);
        let first = resumable(&h.journal);
        assert_eq!(first > 0, version.is_v5(), "{version:?}");
        let in_snapshot = h.s.snapshot().any(|r| r == Record::Resumable);
        assert_eq!(in_snapshot, version.is_v5(), "{version:?}");
        // Once: a reconnect that resumes adds none.
        h.transport_closed();
        h.connect(false, true);
        assert_eq!(resumable(&h.journal), first, "{version:?}");
    }
}

/// Journal length at which each thing happened in a run.
#[derive(Default)]
struct Timeline {
    /// (pid, payload, qos, journal length once its Queued record was written)
    accepted: Vec<(u16, Vec<u8>, QoS, usize)>,
    /// (pid, journal length when the broker's PUBACK or PUBCOMP came in)
    answered: Vec<(u16, usize)>,
}

/// Runs a scenario from `seed` against a journaling session and returns it with what the
/// run accepted. Ops: publish QoS 1/2, answer the oldest open flow, an incoming QoS 2 message
/// or its PUBREL, a reconnect that resumes.
fn run(version: ProtocolVersion, seed: u64, steps: usize) -> (Harness, Timeline) {
    let mut rng = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let mut h = Harness::with(config(version), STORE);
    let mut t = Timeline::default();
    h.connect(false, false);
    let mut open_out: Vec<(u16, QoS, bool)> = Vec::new(); // pid, qos, released
    let mut open_in: Vec<u16> = Vec::new();
    let mut in_pid = 100u16;
    for i in 0..steps {
        match next(6) {
            0 | 1 => {
                let qos = if next(2) == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                let payload = format!("m{seed}-{i}").into_bytes();
                if let Ok(Some(pid)) = h.publish("t", &payload, qos) {
                    h.drain_journal();
                    t.accepted.push((pid.get(), payload, qos, h.journal.len()));
                    open_out.push((pid.get(), qos, false));
                }
            }
            2 if !open_out.is_empty() => {
                let k = next(open_out.len() as u64) as usize;
                let (pid, qos, released) = open_out[k];
                match (qos, released) {
                    (QoS::AtLeastOnce, _) => {
                        t.answered.push((pid, h.journal.len()));
                        h.feed_packet(puback(pid)).unwrap();
                        open_out.remove(k);
                    }
                    (_, false) => {
                        h.feed_packet(pubrec(pid)).unwrap();
                        open_out[k].2 = true;
                    }
                    _ => {
                        t.answered.push((pid, h.journal.len()));
                        h.feed_packet(pubcomp(pid)).unwrap();
                        open_out.remove(k);
                    }
                }
            }
            3 => {
                in_pid += 1;
                let payload = format!("in{in_pid}").into_bytes();
                h.feed_packet(incoming("in", &payload, QoS::ExactlyOnce, in_pid))
                    .unwrap();
                open_in.push(in_pid);
            }
            4 if !open_in.is_empty() => {
                let pid = open_in.remove(next(open_in.len() as u64) as usize);
                h.feed_packet(pubrel(pid)).unwrap();
            }
            5 if next(4) == 0 => {
                h.transport_closed();
                h.connect(false, true);
            }
            _ => {}
        }
        h.take_sent();
    }
    (h, t)
}

/// Checks a session recovered from the journal cut at `cut` against what the run did
/// before that point.
fn check_cut(version: ProtocolVersion, h: &Harness, t: &Timeline, cut: usize) {
    let mut r = recover(version, &h.journal[..cut]);
    let back = resent(&mut r);
    let published = |pid: u16, payload: &[u8]| {
        t.accepted
            .iter()
            .any(|(p, m, _, at)| *p == pid && m == payload && *at <= cut)
    };
    // Never invents: every message that comes back was accepted before the cut, unchanged.
    for (kind, pid, payload) in &back {
        if *kind == "publish" {
            assert!(
                published(*pid, payload),
                "cut {cut}: invented {pid} {payload:?}"
            );
        }
    }
    // What the wire saw before the cut.
    let wire: Vec<(usize, Packet<'_>)> = h
        .wire_log
        .iter()
        .filter(|(at, _)| *at <= cut)
        .map(|(at, b)| (*at, dec(b, version)))
        .collect();
    // The broker's answer may have come in before the crash when the journal was no longer
    // than the cut then (the record it causes may be cut off: then the message comes back,
    // which is allowed).
    let acked = |pid: u16| t.answered.iter().any(|&(p, at)| p == pid && at <= cut);
    // Never loses: an accepted message the broker did not answer before the cut comes back.
    for (pid, payload, qos, at) in &t.accepted {
        if *at > cut || acked(*pid) {
            continue;
        }
        let kept = back
            .iter()
            .any(|(k, p, m)| p == pid && (*k == "pubrel" || m == payload));
        assert!(kept, "cut {cut}: lost {pid} {payload:?} ({qos:?})");
    }
    // Never twice: a QoS 2 message whose PUBREL went out does not come back as a PUBLISH.
    for (_, p) in &wire {
        if let Packet::PubRel(rel) = p {
            let pid = rel.packet_id.get();
            // Identifiers are not reused within a run (fewer than 65,535 messages).
            let dup = back.iter().any(|(k, p, _)| *k == "publish" && *p == pid);
            assert!(
                !dup,
                "cut {cut}: QoS 2 message {pid} would be delivered twice"
            );
        }
    }
    // Incoming: an identifier whose PUBREC went out and whose PUBCOMP did not is not
    // delivered again; one whose PUBCOMP went out names a new message.
    let mut received = std::collections::BTreeMap::new();
    for (_, p) in &wire {
        match p {
            Packet::PubRec(a) if a.packet_id.get() >= 100 => {
                received.insert(a.packet_id.get(), true);
            }
            Packet::PubComp(a) if a.packet_id.get() >= 100 => {
                received.insert(a.packet_id.get(), false);
            }
            _ => {}
        }
    }
    for (pid, open) in received {
        r.feed_packet(incoming("in", b"again", QoS::ExactlyOnce, pid))
            .unwrap();
        let delivered = !messages(&r.take_events()).is_empty();
        assert_eq!(delivered, !open, "cut {cut}: incoming {pid} open {open}");
        // Release it, so that the incoming table never fills up during the check.
        r.feed_packet(pubrel(pid)).unwrap();
    }
}

#[test]
fn a_power_cut_at_every_byte_of_a_small_scenario() {
    for version in VERSIONS {
        let (h, t) = run(version, 1, 40);
        assert!(t.accepted.len() >= 5, "scenario too small");
        for cut in 0..=h.journal.len() {
            check_cut(version, &h, &t, cut);
        }
    }
}

#[test]
fn power_cuts_at_random_points_of_long_scenarios() {
    for seed in 2..8 {
        for version in VERSIONS {
            let (h, t) = run(version, seed, 400);
            let len = h.journal.len() as u64;
            let mut x = seed;
            for _ in 0..40 {
                x = x.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
                check_cut(version, &h, &t, ((x >> 20) % (len + 1)) as usize);
            }
        }
    }
}
