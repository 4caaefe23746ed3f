use std::format;
use std::fs;
use std::path::{Path, PathBuf};
use std::string::String;

use super::*;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/session")
}

/// `MQTT_PROTO_WRITE_CORPUS=1 cargo test -p mqtt-sansio --features fuzzing seed_corpus`
/// rewrites the seeds under `fuzz/corpus/session` (remove stale ones by hand).
#[test]
fn session_seed_corpus_is_committed_and_up_to_date() {
    if !corpus_dir().parent().is_some_and(Path::exists) {
        return; // not in the repository (e.g. a packaged crate)
    }
    let write = std::env::var_os("MQTT_PROTO_WRITE_CORPUS").is_some();
    for seed in session_seeds() {
        let path = corpus_dir().join(&seed.name);
        if write {
            fs::create_dir_all(corpus_dir()).unwrap();
            fs::write(&path, &seed.data).unwrap();
        } else {
            assert!(
                fs::read(&path).ok() == Some(seed.data),
                "{} is missing or stale: MQTT_PROTO_WRITE_CORPUS=1 cargo test -p \
                 mqtt-sansio --features fuzzing seed_corpus",
                path.display()
            );
        }
    }
}

#[test]
fn every_committed_session_corpus_file_passes() {
    let Ok(entries) = fs::read_dir(corpus_dir()) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        session(&fs::read(&path).unwrap());
    }
}

fn seed_stats() -> Vec<(String, Stats)> {
    session_seeds()
        .into_iter()
        .map(|seed| (seed.name, run(&seed.data)))
        .collect()
}

fn stats_of<'a>(all: &'a [(String, Stats)], name: &str) -> &'a Stats {
    &all.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {name}"))
        .1
}

#[test]
fn session_seeds_are_few_and_run_their_scenarios() {
    let all = seed_stats();
    assert!(all.len() < 50, "{} seeds", all.len());
    for (name, stats) in &all {
        assert!(stats.ops > 0, "{name}");
        if !name.contains("connack-timeout") {
            assert!(stats.connected > 0, "{name} does not connect: {stats:?}");
        }
    }
    for v in ["v311", "v5"] {
        let s = stats_of(&all, &format!("{v}-qos-flows"));
        assert_eq!(s.published, [0, 1, 1], "{v} qos-flows: {s:?}");
        let s = stats_of(&all, &format!("{v}-incoming"));
        assert_eq!(s.messages, [1, 1, 2], "{v} incoming: {s:?}");
        assert_eq!(
            s.sent[PacketType::PubComp as usize],
            1,
            "{v} incoming: {s:?}"
        );
        let s = stats_of(&all, &format!("{v}-streamed-receive"));
        assert_eq!(s.messages, [1, 1, 2], "{v} streamed-receive: {s:?}");
        assert!(s.chunks > 6_500 / 128, "{v} streamed-receive: {s:?}");
        assert_eq!(s.sent[PacketType::PubRec as usize], 2, "{v}: {s:?}");
        let s = stats_of(&all, &format!("{v}-streamed-send"));
        assert_eq!(s.published, [0, 1, 1], "{v} streamed-send: {s:?}");
        assert_eq!(s.sent[PacketType::Publish as usize], 3, "{v}: {s:?}");
        let s = stats_of(&all, &format!("{v}-subscribe"));
        assert_eq!(s.subscribed, 2, "{v} subscribe: {s:?}");
        let s = stats_of(&all, &format!("{v}-resubscribe"));
        assert_eq!(s.resubscribed, 1, "{v} resubscribe: {s:?}");
        assert_eq!(
            s.sent[PacketType::Subscribe as usize],
            3,
            "{v} resubscribe: two of the application's, one renewal: {s:?}"
        );
        let s = stats_of(&all, &format!("{v}-keepalive"));
        assert_eq!(
            s.sent[PacketType::PingReq as usize],
            2,
            "{v} keepalive: {s:?}"
        );
        assert_eq!(s.lost, 1, "{v} keepalive: {s:?}");
        let s = stats_of(&all, &format!("{v}-resume"));
        assert_eq!(s.published, [0, 1, 1], "{v} resume: {s:?}");
        let s = stats_of(&all, &format!("{v}-session-lost"));
        assert_eq!(s.abandoned, 3, "{v} session-lost: {s:?}");
        assert_eq!(s.published[1], 1, "{v} session-lost: {s:?}");
        let s = stats_of(&all, &format!("{v}-manual-acks"));
        assert_eq!(
            s.sent[PacketType::PubAck as usize],
            1,
            "{v} manual-acks: {s:?}"
        );
        assert_eq!(
            s.sent[PacketType::PubComp as usize],
            1,
            "{v} manual-acks: {s:?}"
        );
        let s = stats_of(&all, &format!("{v}-small-buffers"));
        assert_eq!(s.published[1], 1, "{v} small-buffers: {s:?}");
        let s = stats_of(&all, &format!("{v}-disconnect"));
        assert_eq!(
            s.sent[PacketType::Disconnect as usize],
            1,
            "{v} disconnect: {s:?}"
        );
        let s = stats_of(&all, &format!("{v}-disconnect-drain-timeout"));
        assert_eq!(
            s.sent[PacketType::Disconnect as usize],
            1,
            "{v} disconnect-drain-timeout: {s:?}"
        );
        assert_eq!(
            s.published,
            [0, 0, 0],
            "{v} disconnect-drain-timeout: {s:?}"
        );
        let s = stats_of(&all, &format!("{v}-protocol-error"));
        assert_eq!(s.protocol_errors, 1, "{v} protocol-error: {s:?}");
        let s = stats_of(&all, &format!("{v}-connack-timeout"));
        assert_eq!(s.lost, 1, "{v} connack-timeout: {s:?}");
        let s = stats_of(&all, &format!("{v}-blocked"));
        assert!(s.blocked > 0, "{v} blocked: {s:?}");
        assert_eq!(s.messages[1], 18, "{v} blocked: {s:?}");
    }
    let s = stats_of(&all, "v5-flow-control");
    assert_eq!(s.published, [0, 2, 1], "flow-control: {s:?}");
    let s = stats_of(&all, "v5-broker-limits");
    assert_eq!(s.dropped, 1, "broker-limits: {s:?}");
    let s = stats_of(&all, "v5-aliases");
    assert_eq!(s.messages, [3, 1, 0], "aliases: {s:?}");
    assert_eq!(s.protocol_errors, 0, "aliases: {s:?}");
    let s = stats_of(&all, "v5-fallback");
    assert_eq!(s.connected, 1, "fallback: {s:?}");
    assert_eq!(
        s.published[1], 1,
        "fallback: the message queued in 5.0, sent in 3.1.1: {s:?}"
    );
    let s = stats_of(&all, "v5-auth");
    assert_eq!(s.sent[PacketType::Auth as usize], 2, "auth: {s:?}");
}

// Regressions: inputs the fuzzer found, written as scripts.

/// `handle_read` answered `Read::Blocked` to the CONNACK when 16 acknowledgements given
/// while disconnected filled the ack ring, although acks only go out once connected: the
/// driver could neither read the CONNACK nor transmit, until the CONNACK timeout.
#[test]
fn regression_acks_queued_while_disconnected_do_not_block_the_connack() {
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let script = script::acks_before_connack(version);
        let stats = run(&script.bytes());
        assert_eq!(stats.connected, 1, "{version}: {stats:?}");
        assert_eq!(
            stats.sent[PacketType::PubAck as usize],
            16,
            "{version}: {stats:?}"
        );
    }
}

/// `auth` and `disconnect` while connected queued an AUTH or DISCONNECT larger than the
/// broker's Maximum Packet Size, and `poll_transmit` sent it [MQTT-3.2.2-15]: unlike
/// `publish`, `subscribe` and `unsubscribe` (checked in `Session::append`), the control packets
/// went through `Session::write_control` unchecked. Now refused with `PacketTooLarge`.
#[test]
fn regression_auth_and_disconnect_respect_maximum_packet_size() {
    let script = script::control_packets_over_the_limit();
    let stats = run(&script.bytes());
    assert_eq!(stats.sent[PacketType::Auth as usize], 1, "{stats:?}");
    assert_eq!(stats.sent[PacketType::Disconnect as usize], 1, "{stats:?}");
}

/// A SUBSCRIBE queued before the CONNACK must not be sent when it exceeds the Maximum Packet
/// Size the CONNACK announces [MQTT-3.2.2-15] (the same for an UNSUBSCRIBE, and for either one
/// resent after a reconnect to a broker with a smaller limit): it is dropped and reported as
/// `Event::RequestDropped`. Found by the fuzzer; fixed with that event.
#[test]
fn regression_subscribe_queued_before_connack_respects_maximum_packet_size() {
    let script = script::requests_over_the_limit();
    run(&script.bytes());
}

#[test]
fn empty_and_short_inputs_are_fine() {
    for len in 0..64 {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        session(&data);
        for first in 0..=255u8 {
            let mut with = vec![first; SETUP_LEN];
            with.extend_from_slice(&data);
            session(&with);
        }
    }
}

#[test]
fn pseudo_random_inputs_are_fine() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for n in 0..400 {
        let len = 16 + n % 700;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        session(&data);
    }
}
