//! The session's journal, in memory, without a medium: what journaling adds to a publish, and
//! what recovering a session from a long journal costs.
//!
//! - `publish_qos1/{memory,journaled}`: publish, `poll_journal` until empty (journaled only),
//!   PUBLISH transmitted, PUBACK read, `poll_journal` again, `Published` event; 3.1.1, 64-byte
//!   payload. The difference is the journal's CPU cost per message, beside the medium's.
//! - `recover/10000`: a journal of 10,000 records (5,000 QoS 1 messages queued offline, 2,500
//!   of them acknowledged after a connection, so queued, done and the identity are all there)
//!   replayed with `Replay` and `Scan` and restored into a new session.
//!
//! See benches/README.md ("Journal") for results.

#[path = "codec/clock.rs"]
mod clock;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use mqtt_sansio::journal::{Record, Replay, Scan};
use mqtt_sansio::session::{Event, Instant, Message, Read, Session, SessionConfig};
use mqtt_sansio::{
    ConnAck, Connect, Packet, PacketId, ProtocolVersion, PubResponse, QoS, ReasonCode, TopicName,
};

use clock::BenchClock;

const V: ProtocolVersion = ProtocolVersion::V3_1_1;
const TOPIC: &str = "sensors/esp32-001/temperature";
const PAYLOAD: [u8; 64] = [b'x'; 64];
const STORE: usize = 1 << 20;
const RECORDS: usize = 10_000;

fn config(journal: bool) -> SessionConfig {
    let mut c = SessionConfig::new(V);
    c.journal = journal;
    c.assigned_id_bytes = 64;
    c.max_inflight = u16::MAX;
    c
}

fn encode(packet: Packet<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(V).expect("encodable")];
    packet.encode(V, &mut buf).expect("encodes");
    buf
}

/// The session and the buffers a driver keeps for it.
struct Rig {
    s: Session<Vec<u8>>,
    now: Instant,
    tx: Vec<u8>,
    jbuf: Vec<u8>,
    /// What the journal handed out.
    log: Vec<u8>,
}

impl Rig {
    fn new(journal: bool, store: usize) -> Self {
        let s = Session::new(config(journal), vec![0u8; store]).expect("store large enough");
        Self {
            s,
            now: Instant::from_millis(1_000),
            tx: vec![0u8; 1 << 17],
            jbuf: vec![0u8; 4096],
            log: Vec::new(),
        }
    }

    /// Takes the journal's records, and a snapshot when the session asks for one, as a
    /// backend does before transmitting.
    fn drain(&mut self) {
        while let Ok(n @ 1..) = self.s.poll_journal(&mut self.jbuf) {
            self.log.extend_from_slice(&self.jbuf[..n]);
        }
        if self.s.wants_snapshot() {
            for record in self.s.snapshot() {
                let at = self.log.len();
                self.log.resize(at + record.encoded_len(), 0);
                record.encode(&mut self.log[at..]).expect("sized");
            }
        }
    }

    fn transmit(&mut self) {
        self.drain();
        while let Some(t) = self.s.poll_transmit(self.now, &mut self.tx).expect("fits") {
            black_box(&self.tx[..t.len]);
        }
    }

    /// Reads whole packets from `bytes`, taking their events.
    fn read(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            match self.s.handle_read(self.now, &bytes[at..]) {
                Ok(Read::Packet { len, event }) => {
                    black_box(matches!(event, Some(Event::Published { .. })));
                    at += len;
                }
                other => panic!("unexpected read {other:?}"),
            }
            self.drain();
        }
    }

    fn connect(&mut self) {
        let mut connect = Connect::new(V, "bench-journal");
        connect.keep_alive = 0;
        self.s.connect(&connect).expect("connect");
        self.transmit();
        self.read(&encode(Packet::ConnAck(ConnAck::new(ReasonCode::Success))));
    }

    fn publish(&mut self, topic: TopicName<'_>) -> PacketId {
        let message = Message::new(topic, &PAYLOAD, QoS::AtLeastOnce);
        let pid = self.s.publish(&message).expect("publish").expect("QoS 1");
        self.drain();
        pid
    }
}

fn puback(pid: PacketId) -> Vec<u8> {
    encode(Packet::PubAck(PubResponse::new(pid)))
}

fn publish_qos1(c: &mut Criterion<BenchClock>) {
    let mut group = c.benchmark_group("journal/publish_qos1");
    for journal in [false, true] {
        let name = if journal { "journaled" } else { "memory" };
        let mut r = Rig::new(journal, 64 * 1024);
        r.connect();
        let topic = TopicName::new(TOPIC).expect("valid topic");
        group.bench_function(name, |b| {
            b.iter(|| {
                r.log.clear();
                let pid = r.publish(topic);
                r.transmit();
                r.read(&puback(pid));
                while let Some(e) = r.s.poll_event() {
                    black_box(e);
                }
                black_box(r.log.len())
            });
        });
    }
    group.finish();
}

/// A journal of [`RECORDS`] records: the identity, QoS 1 messages queued offline, then half
/// of them acknowledged.
fn long_journal() -> Vec<u8> {
    let mut r = Rig::new(true, STORE * 4);
    r.s.keep_client_id("bench-journal").expect("fits");
    r.drain();
    let topic = TopicName::new(TOPIC).expect("valid topic");
    let pids: Vec<PacketId> = (0..RECORDS / 2).map(|_| r.publish(topic)).collect();
    r.connect();
    r.transmit();
    for pid in pids {
        if Replay::new(&r.log).count() >= RECORDS {
            break;
        }
        r.read(&puback(pid));
    }
    r.log
}

fn recover(c: &mut Criterion<BenchClock>) {
    let journal = long_journal();
    let records = Replay::new(&journal).count();
    println!(
        "journal/recover: {records} records, {} KiB",
        journal.len() / 1024
    );
    c.bench_function("journal/recover/10000", |b| {
        b.iter(|| {
            let mut s = Session::new(config(true), vec![0u8; STORE * 4]).expect("store");
            let all: Vec<Record<'_>> = Replay::new(&journal).collect();
            let mut scan = Scan::new();
            all.iter().for_each(|r| scan.see(r));
            for r in &all[scan.range()] {
                s.restore(r).expect("restores");
            }
            black_box(s.store_usage())
        });
    });
}

fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// On the thread's CPU clock (see `codec/clock.rs`), as the session benches.
fn config_criterion() -> Criterion<BenchClock> {
    let criterion = Criterion::default().with_measurement(BenchClock::new());
    if quick() {
        criterion.measurement_time(Duration::from_millis(500))
    } else {
        criterion
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
    }
}

criterion_group! {
    name = benches;
    config = config_criterion();
    targets = publish_qos1, recover
}
criterion_main!(benches);
