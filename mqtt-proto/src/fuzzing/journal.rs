//! Target `journal`: arbitrary bytes read as a session journal, as a backend reads its file or
//! flash after a crash, and applied to a new session.
//!
//! The first byte picks the protocol version of the recovering session (bit 0: 3.1.1 or 5.0)
//! and its store size (bits 1-3); the rest is the journal. Checked (a panic is a bug):
//! - [`Replay`] never reads past its bytes, stops at the first record that is torn or bad, and
//!   every record it yields encodes again to exactly the bytes it was read from;
//! - a journal cut anywhere (every cut of a short one, a spread of cuts of a long one)
//!   replays to a prefix of the records of the whole one: a cut loses changes from the end,
//!   never invents or alters one;
//! - applying the records that [`Scan`] picks to a new session gives a typed result for each
//!   and never panics, whatever they say (ids that were never sent, releases of nothing,
//!   snapshots cut short);
//! - the recovered session's [`Session::snapshot`] encodes to a journal that replays whole
//!   and, restored into another new session, gives the same snapshot again;
//! - packet identifiers the recovered session hands out for new messages are not ones it
//!   still has in flight.

use std::collections::BTreeSet;
use std::format;
use std::string::String;
use std::vec;
use std::vec::Vec;

use crate::journal::{Record, Replay, Scan};
use crate::session::{Message, Session, SessionConfig};
use crate::{ProtocolVersion, QoS, TopicName};

/// Cuts checked on a journal longer than this: a spread of them, not every one.
const EVERY_CUT_UP_TO: usize = 512;
/// New messages published into the recovered session to check its packet identifiers.
const NEW_MESSAGES: usize = 24;

/// The recovering session's configuration for a selector byte.
fn config(selector: u8) -> (SessionConfig, usize) {
    let version = if selector & 1 == 0 {
        ProtocolVersion::V3_1_1
    } else {
        ProtocolVersion::V5
    };
    let mut config = SessionConfig::new(version);
    config.journal = true;
    config.subscription_bytes = 256;
    config.assigned_id_bytes = 64;
    let store = 1024 << ((selector >> 1) & 7);
    (config, store)
}

/// Target `journal`.
pub fn journal(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let records = replay_checked(bytes);
    check_cuts(bytes, &records);
    let (config, store) = config(selector);
    let Ok(mut session) = Session::new(config, vec![0u8; store]) else {
        return;
    };
    let mut scan = Scan::new();
    records.iter().for_each(|r| scan.see(r));
    let range = scan.range();
    assert!(range.start <= range.end && range.end <= records.len());
    for record in &records[range] {
        // Any typed refusal is fine: a backend reports it and stops recovering.
        if session.restore(record).is_err() {
            break;
        }
    }
    let first = snapshot_bytes(&mut session);
    let again = replay_checked(&first);
    assert_eq!(
        Replay::new(&first).count(),
        again.len(),
        "a snapshot replays whole"
    );
    let Ok(mut copy) = Session::new(config, vec![0u8; store]) else {
        return;
    };
    for record in &again {
        copy.restore(record)
            .unwrap_or_else(|e| panic!("a snapshot does not restore: {e:?} at {record:?}"));
    }
    assert_eq!(
        snapshot_bytes(&mut copy),
        first,
        "restoring a snapshot gives it back"
    );
    check_new_ids(&mut session);
}

/// The records of `bytes`, each checked to encode again to the bytes it came from.
fn replay_checked(bytes: &[u8]) -> Vec<Record<'_>> {
    let mut replay = Replay::new(bytes);
    let mut records = Vec::new();
    let mut at = 0;
    #[allow(clippy::while_let_on_iterator)] // valid_len is read inside the loop
    while let Some(record) = replay.next() {
        let len = record.encoded_len();
        assert_eq!(replay.valid_len(), at + len, "record length {record:?}");
        let mut out = vec![0u8; len];
        assert_eq!(record.encode(&mut out), Ok(len));
        assert_eq!(out, bytes[at..at + len], "{record:?} encodes differently");
        at += len;
        records.push(record);
    }
    assert!(replay.valid_len() <= bytes.len());
    assert_eq!(
        replay.stop().is_none(),
        replay.valid_len() == bytes.len(),
        "stops early exactly when something was not whole"
    );
    records
}

/// Every cut of `bytes` (or a spread of them) replays to a prefix of `records`.
fn check_cuts(bytes: &[u8], records: &[Record<'_>]) {
    let cuts: BTreeSet<usize> = if bytes.len() <= EVERY_CUT_UP_TO {
        (0..bytes.len()).collect()
    } else {
        let step = bytes.len() / 64;
        (0..bytes.len())
            .step_by(step)
            .chain(bytes.len() - 8..bytes.len())
            .collect()
    };
    for cut in cuts {
        let mut replay = Replay::new(&bytes[..cut]);
        for (n, record) in replay.by_ref().enumerate() {
            assert_eq!(
                Some(&record),
                records.get(n),
                "cut at {cut}: record {n} differs"
            );
        }
        assert!(replay.valid_len() <= cut);
    }
}

/// The session's snapshot as journal bytes.
fn snapshot_bytes(session: &mut Session<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in session.snapshot() {
        let start = out.len();
        out.resize(start + record.encoded_len(), 0);
        record
            .encode(&mut out[start..])
            .unwrap_or_else(|e| panic!("snapshot record does not encode: {e:?}"));
    }
    out
}

/// Publishes new messages into the recovered session: none gets an identifier that one of its
/// messages or releases still holds.
fn check_new_ids(session: &mut Session<Vec<u8>>) {
    let held: BTreeSet<u16> = session
        .snapshot()
        .filter_map(|r| match r {
            Record::Queued { packet_id, .. } | Record::Released(packet_id) => Some(packet_id.get()),
            _ => None,
        })
        .collect();
    let Ok(topic) = TopicName::new("fuzz/journal") else {
        return;
    };
    let mut given = BTreeSet::new();
    for _ in 0..NEW_MESSAGES {
        let message = Message::new(topic, b"x", QoS::AtLeastOnce);
        match session.publish(&message) {
            Ok(Some(pid)) => {
                assert!(!held.contains(&pid.get()), "id {pid:?} given while held");
                assert!(given.insert(pid.get()), "id {pid:?} given twice");
            }
            Ok(None) => panic!("a QoS 1 message without an id"),
            Err(_) => break,
        }
        // Keep the journal drained, as a backend does.
        let mut buf = vec![0u8; 256];
        while matches!(session.poll_journal(&mut buf), Ok(n) if n > 0) {}
    }
}

/// Seeds for the `journal` target: journals a real session wrote (identity, queued messages
/// of both QoS, a snapshot, changes after it), and hand-made records of every kind.
pub fn journal_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (selector, name) in [(0u8, "v311"), (1, "v5")] {
        let (config, store) = config(selector | 4);
        let Ok(mut session) = Session::new(config, vec![0u8; store]) else {
            continue;
        };
        let mut journal = Vec::new();
        let mut buf = vec![0u8; 512];
        let mut drain = |session: &mut Session<Vec<u8>>, journal: &mut Vec<u8>| {
            while let Ok(n @ 1..) = session.poll_journal(&mut buf) {
                journal.extend_from_slice(&buf[..n]);
            }
        };
        let _ = session.keep_client_id("sensor-7");
        let topic = TopicName::new("devices/esp32/telemetry").expect("valid topic");
        for (i, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
            .into_iter()
            .enumerate()
        {
            let payload = [b'0' + i as u8; 12];
            let _ = session.publish(&Message::new(topic, &payload, qos));
            drain(&mut session, &mut journal);
        }
        journal.extend(snapshot_bytes(&mut session));
        let _ = session.publish(&Message::new(topic, b"after", QoS::ExactlyOnce));
        drain(&mut session, &mut journal);
        let mut data = vec![selector];
        data.extend_from_slice(&journal);
        seeds.push((format!("session-{name}"), data));
    }
    let pid = |n| crate::PacketId::new(n).expect("non-zero");
    let records = [
        Record::SnapshotBegin,
        Record::ClientId("c"),
        Record::Resumable,
        Record::NextPacketId(pid(9)),
        Record::Released(pid(3)),
        Record::Received(pid(4)),
        Record::SnapshotEnd,
        Record::Done(pid(3)),
        Record::Completed(pid(4)),
        Record::Received(pid(5)),
    ];
    let mut data = vec![1u8];
    for record in records {
        let start = data.len();
        data.resize(start + record.encoded_len(), 0);
        let _ = record.encode(&mut data[start..]);
    }
    seeds.push(("records".into(), data));
    seeds
}
