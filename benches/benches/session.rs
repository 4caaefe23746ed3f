//! The sans-IO session alone, driven the way a driver drives it: a command or received bytes,
//! then `poll_transmit` and `poll_event` until they are empty. Everything the broker sends is
//! encoded before the clock starts (acknowledgements of our publishes get the packet id written
//! into a pre-encoded template, as a broker echoes it); the measured loops do not allocate,
//! which is checked before anything is timed. Times are per message: the pipelined workloads
//! run 16 messages per round and report a sixteenth of it.
//!
//! Workloads, for 3.1.1 and 5.0, 64-byte payload on `sensors/esp32-001/temperature`:
//! - `publish_qos0`: publish, PUBLISH transmitted;
//! - `publish_qos1`: publish, PUBLISH transmitted, PUBACK read, `Published` event;
//! - `publish_qos2`: publish, PUBLISH out, PUBREC in, PUBREL out, PUBCOMP in, `Published`;
//! - `deliver_qos0/1/2`: PUBLISH read, `Message` event, PUBACK / PUBREC transmitted (QoS 2:
//!   then PUBREL read, PUBCOMP transmitted);
//! - `pipelined16_publish_qos1/2`: 16 publishes, 16 PUBLISHes out, then the 16 acknowledgements
//!   read from one buffer (QoS 2: 16 PUBRECs, 16 PUBRELs out, 16 PUBCOMPs);
//! - `pipelined16_deliver_qos1`: 16 PUBLISHes read from one buffer, 16 PUBACKs transmitted;
//! - `backlog_publish_qos2/depth{0,1000,10000}`: one QoS 2 publish completed per round with
//!   that many more queued behind a full window of 16 (the cost must not grow with depth).
//!
//! See benches/README.md ("Session") for results.

#[path = "codec/clock.rs"]
mod clock;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use mqtt_sansio::session::{Event, Instant, Message, Read, Session, SessionConfig};
use mqtt_sansio::{
    ConnAck, Connect, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS, QosPid,
    ReasonCode, TopicName,
};

use clock::BenchClock;

const TOPIC: &str = "sensors/esp32-001/temperature";
const PAYLOAD: [u8; 64] =
    *b"{\"t\":21.5,\"rh\":40.2,\"p\":1013.2,\"id\":\"esp32-001\",\"seq\":123456789}";
/// Messages per round of the pipelined workloads.
const PIPELINE: usize = 16;

// ---- allocation counting ----

/// The system allocator, counting allocations, so the workloads can be shown not to allocate.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the same arguments.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- the rig: a connected session and the broker's packets ----

/// What one round did, to check it before timing.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Done {
    transmitted: usize,
    events: usize,
}

/// A connected session, its buffers, and the broker's packets, encoded up front.
struct Rig {
    s: Session<Vec<u8>>,
    now: Instant,
    topic: TopicName<'static>,
    tx: Vec<u8>,
    /// A PUBACK, PUBREC or PUBCOMP template; bytes 2..4 take the packet id.
    ack: [u8; 4],
    /// `PIPELINE` acknowledgements back to back.
    acks: Vec<u8>,
    /// Incoming PUBLISH at QoS 0, 1, 2 (packet id 1).
    incoming: [Vec<u8>; 3],
    /// PUBREL for the incoming QoS 2 message.
    pubrel: Vec<u8>,
    /// `PIPELINE` QoS 1 PUBLISHes, packet ids 1 to 16.
    incoming_burst: Vec<u8>,
}

fn encode(packet: Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(version).expect("encodable")];
    packet.encode(version, &mut buf).expect("encodes");
    buf
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

fn incoming_publish(version: ProtocolVersion, qos: QoS, id: u16) -> Vec<u8> {
    let mut p = Publish::new(TopicName::new(TOPIC).expect("valid topic"), &PAYLOAD);
    p.qos_pid = match qos {
        QoS::AtMostOnce => QosPid::AtMostOnce,
        q => QosPid::new(q, pid(id)),
    };
    encode(Packet::Publish(p), version)
}

impl Rig {
    fn new(version: ProtocolVersion) -> Self {
        Self::with(version, 16 * 1024, None, 0)
    }

    /// A rig whose store holds `log_bytes` of queued packets, with at most `max_inflight`
    /// QoS 1 and 2 messages in flight (the session's default when `None`) and a packet-id
    /// index of `index_slots`.
    fn with(
        version: ProtocolVersion,
        log_bytes: usize,
        max_inflight: Option<u16>,
        index_slots: u16,
    ) -> Self {
        let mut config = SessionConfig::new(version);
        if let Some(n) = max_inflight {
            config.max_inflight = n;
        }
        config.index_slots = index_slots;
        let store = vec![0u8; config.reserved_bytes() + log_bytes];
        let mut s = Session::new(config, store).expect("store large enough");
        let now = Instant::from_millis(1_000);
        let mut connect = Connect::new(version, "bench");
        connect.keep_alive = 0;
        s.connect(&connect).expect("connect");
        let mut tx = vec![0u8; 4096];
        assert!(s.poll_transmit(now, &mut tx).expect("CONNECT").is_some());
        let connack = encode(Packet::ConnAck(ConnAck::new(ReasonCode::Success)), version);
        let read = s.handle_read(now, &connack).expect("CONNACK accepted");
        assert!(
            matches!(read, Read::Packet { len, event: Some(Event::Connected { .. }) } if len == connack.len()),
            "{read:?}"
        );
        let incoming = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .map(|qos| incoming_publish(version, qos, 1));
        let incoming_burst = (1..=PIPELINE as u16)
            .flat_map(|id| incoming_publish(version, QoS::AtLeastOnce, id))
            .collect();
        Self {
            s,
            now,
            topic: TopicName::new(TOPIC).expect("valid topic"),
            tx,
            ack: [0; 4],
            acks: vec![0; 4 * PIPELINE],
            incoming,
            pubrel: encode(Packet::PubRel(PubResponse::new(pid(1))), version),
            incoming_burst,
        }
    }

    fn publish(&mut self, qos: QoS) -> Option<PacketId> {
        let message = Message::new(self.topic, &PAYLOAD, qos);
        self.s.publish(&message).expect("publish")
    }

    /// Transmits until nothing is left; returns the number of packets.
    fn transmit(&mut self) -> usize {
        let mut n = 0;
        while let Some(t) = self.s.poll_transmit(self.now, &mut self.tx).expect("fits") {
            black_box(&self.tx[..t.len]);
            n += 1;
        }
        n
    }

    /// Drains the session's own events (none are expected).
    fn events(&mut self) -> usize {
        let mut n = 0;
        while let Some(e) = self.s.poll_event() {
            black_box(e);
            n += 1;
        }
        n
    }

    /// Reads one whole packet from `buf` and takes its event; returns the bytes used and
    /// whether an event came, checking it is the one expected.
    fn read(s: &mut Session<Vec<u8>>, now: Instant, buf: &[u8], expect: Expect) -> (usize, bool) {
        match s.handle_read(now, buf) {
            Ok(Read::Packet { len, event: None }) => (len, false),
            Ok(Read::Packet { len, event }) => {
                match (event, expect) {
                    (Some(Event::Published { packet_id, .. }), Expect::Published(id)) => {
                        assert_eq!(packet_id, id, "Published for another message");
                        black_box(packet_id);
                    }
                    (Some(Event::Message(p)), Expect::Message) => {
                        black_box((p.topic, p.payload));
                    }
                    (other, _) => panic!("unexpected event {other:?}"),
                }
                (len, true)
            }
            other => panic!("unexpected read {other:?}"),
        }
    }

    /// Reads a broker acknowledgement of `id` from the template `header`.
    fn read_ack(&mut self, header: u8, id: PacketId, expect: Expect) -> bool {
        self.ack = [header, 2, 0, 0];
        self.ack[2..].copy_from_slice(&id.get().to_be_bytes());
        let (len, event) = Self::read(&mut self.s, self.now, &self.ack, expect);
        assert_eq!(len, 4);
        event
    }
}

/// The event a read must produce, if any.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Published(PacketId),
    Message,
    Nothing,
}

const PUBACK: u8 = 0x40;
const PUBREC: u8 = 0x50;
const PUBCOMP: u8 = 0x70;

// ---- workloads: one round each ----

fn publish_qos0(r: &mut Rig) -> Done {
    r.publish(QoS::AtMostOnce);
    Done {
        transmitted: r.transmit(),
        events: r.events(),
    }
}

fn publish_qos1(r: &mut Rig) -> Done {
    let id = r.publish(QoS::AtLeastOnce).expect("packet id");
    let transmitted = r.transmit();
    let event = r.read_ack(PUBACK, id, Expect::Published(id));
    Done {
        transmitted: transmitted + r.transmit(),
        events: usize::from(event) + r.events(),
    }
}

fn publish_qos2(r: &mut Rig) -> Done {
    let id = r.publish(QoS::ExactlyOnce).expect("packet id");
    let mut transmitted = r.transmit();
    let mut events = usize::from(r.read_ack(PUBREC, id, Expect::Nothing));
    transmitted += r.transmit();
    events += usize::from(r.read_ack(PUBCOMP, id, Expect::Published(id)));
    Done {
        transmitted: transmitted + r.transmit(),
        events: events + r.events(),
    }
}

fn deliver(r: &mut Rig, qos: usize) -> Done {
    let (_, event) = Rig::read(&mut r.s, r.now, &r.incoming[qos], Expect::Message);
    let mut transmitted = r.transmit();
    if qos == 2 {
        let (_, released) = Rig::read(&mut r.s, r.now, &r.pubrel, Expect::Nothing);
        assert!(!released);
        transmitted += r.transmit();
    }
    Done {
        transmitted,
        events: usize::from(event) + r.events(),
    }
}

fn pipelined_publish(r: &mut Rig, qos: QoS) -> Done {
    let mut ids = [PacketId::MIN; PIPELINE];
    for id in &mut ids {
        *id = r.publish(qos).expect("packet id");
    }
    let mut transmitted = r.transmit();
    let mut events = 0;
    let rounds: &[(u8, bool)] = match qos {
        QoS::ExactlyOnce => &[(PUBREC, false), (PUBCOMP, true)],
        _ => &[(PUBACK, true)],
    };
    for &(header, reports) in rounds {
        for (ack, id) in r.acks.chunks_exact_mut(4).zip(ids) {
            let [hi, lo] = id.get().to_be_bytes();
            ack.copy_from_slice(&[header, 2, hi, lo]);
        }
        let mut rest = &r.acks[..];
        for id in ids {
            let expect = if reports {
                Expect::Published(id)
            } else {
                Expect::Nothing
            };
            let (len, event) = Rig::read(&mut r.s, r.now, rest, expect);
            rest = &rest[len..];
            events += usize::from(event);
        }
        transmitted += r.transmit();
    }
    Done {
        transmitted,
        events: events + r.events(),
    }
}

fn pipelined_deliver(r: &mut Rig) -> Done {
    let mut rest = &r.incoming_burst[..];
    let mut events = 0;
    while !rest.is_empty() {
        let (len, event) = Rig::read(&mut r.s, r.now, rest, Expect::Message);
        rest = &rest[len..];
        events += usize::from(event);
    }
    Done {
        transmitted: r.transmit(),
        events: events + r.events(),
    }
}

/// A workload: name, messages per round, the round, and what one round must do.
struct Workload {
    name: &'static str,
    messages: usize,
    round: fn(&mut Rig) -> Done,
    expected: Done,
}

const fn done(transmitted: usize, events: usize) -> Done {
    Done {
        transmitted,
        events,
    }
}

const WORKLOADS: [Workload; 9] = [
    Workload {
        name: "publish_qos0",
        messages: 1,
        round: publish_qos0,
        expected: done(1, 0),
    },
    Workload {
        name: "publish_qos1",
        messages: 1,
        round: publish_qos1,
        expected: done(1, 1),
    },
    Workload {
        name: "publish_qos2",
        messages: 1,
        round: publish_qos2,
        expected: done(2, 1),
    },
    Workload {
        name: "deliver_qos0",
        messages: 1,
        round: |r| deliver(r, 0),
        expected: done(0, 1),
    },
    Workload {
        name: "deliver_qos1",
        messages: 1,
        round: |r| deliver(r, 1),
        expected: done(1, 1),
    },
    Workload {
        name: "deliver_qos2",
        messages: 1,
        round: |r| deliver(r, 2),
        expected: done(2, 1),
    },
    Workload {
        name: "pipelined16_publish_qos1",
        messages: PIPELINE,
        round: |r| pipelined_publish(r, QoS::AtLeastOnce),
        expected: done(PIPELINE, PIPELINE),
    },
    Workload {
        name: "pipelined16_publish_qos2",
        messages: PIPELINE,
        round: |r| pipelined_publish(r, QoS::ExactlyOnce),
        expected: done(2 * PIPELINE, PIPELINE),
    },
    Workload {
        name: "pipelined16_deliver_qos1",
        messages: PIPELINE,
        round: pipelined_deliver,
        expected: done(PIPELINE, PIPELINE),
    },
];

/// A publisher with `depth` QoS 2 messages queued behind a full window of [`WINDOW`]: each
/// round publishes one more and the broker completes the oldest in flight (PUBREC in, PUBREL
/// out, PUBCOMP in, `Published`), which lets one queued message out. The queue stays `depth`
/// long, so a cost per message that grows with the queue shows as a slope across depths.
struct Backlog {
    rig: Rig,
    /// Packet ids in publish order: the first `WINDOW` are in flight, the rest queued.
    ids: std::collections::VecDeque<PacketId>,
}

/// In-flight window of the backlog workload (the session's `max_inflight`).
const WINDOW: u16 = 16;
/// Packet-id index slots of the backlog workload (what mqtt-client-tokio configures).
const INDEX: u16 = 256;
/// Queue depths the backlog workload runs at.
const DEPTHS: [usize; 3] = [0, 1_000, 10_000];

impl Backlog {
    fn new(version: ProtocolVersion, depth: usize) -> Self {
        // A queued 64-byte PUBLISH takes under 128 bytes with its record header.
        let room = (depth + usize::from(WINDOW) + 64) * 128;
        let mut rig = Rig::with(version, room, Some(WINDOW), INDEX);
        let mut ids = std::collections::VecDeque::with_capacity(depth + usize::from(WINDOW) + 1);
        for _ in 0..depth + usize::from(WINDOW) {
            ids.push_back(rig.publish(QoS::ExactlyOnce).expect("packet id"));
        }
        assert_eq!(
            rig.transmit(),
            usize::from(WINDOW),
            "a full window goes out"
        );
        Self { rig, ids }
    }

    fn round(&mut self) -> Done {
        let r = &mut self.rig;
        self.ids
            .push_back(r.publish(QoS::ExactlyOnce).expect("packet id"));
        let oldest = self.ids.pop_front().expect("a message in flight");
        let mut events = usize::from(r.read_ack(PUBREC, oldest, Expect::Nothing));
        let mut transmitted = r.transmit();
        events += usize::from(r.read_ack(PUBCOMP, oldest, Expect::Published(oldest)));
        transmitted += r.transmit();
        Done {
            transmitted,
            events: events + r.events(),
        }
    }
}

/// The backlog workload at each depth: checked (a PUBREL and the next PUBLISH per round, one
/// event, no allocation, the depth kept), then timed per message.
fn backlog(c: &mut Criterion<BenchClock>) {
    let mut g = c.benchmark_group("session_backlog_publish_qos2");
    for (label, version) in [
        ("v311", ProtocolVersion::V3_1_1),
        ("v5", ProtocolVersion::V5),
    ] {
        for depth in DEPTHS {
            let mut b = Backlog::new(version, depth);
            let before = ALLOCATIONS.load(Ordering::Relaxed);
            for _ in 0..1_000 {
                assert_eq!(b.round(), done(2, 1), "backlog {depth}");
            }
            assert_eq!(
                ALLOCATIONS.load(Ordering::Relaxed),
                before,
                "backlog allocated"
            );
            assert_eq!(b.rig.s.inflight(), WINDOW);
            g.bench_function(format!("{label}/depth{depth}"), |bench| {
                bench.iter_custom(|iters| {
                    let start = clock::now();
                    for _ in 0..iters {
                        black_box(b.round());
                    }
                    clock::now().saturating_sub(start)
                });
            });
        }
    }
    g.finish();
}

/// Runs `w` long enough to wrap packet ids around, checking every round and that no round
/// allocates; leaves the session as it found it (empty store, nothing in flight).
fn check(w: &Workload, r: &mut Rig) {
    let rounds = 70_000 / w.messages;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..rounds {
        let got = (w.round)(r);
        assert_eq!(got, w.expected, "{}", w.name);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "{} allocated {allocations} times", w.name);
    assert_eq!(
        r.s.store_usage().0,
        0,
        "{} left records in the store",
        w.name
    );
    assert_eq!(r.s.inflight(), 0, "{}", w.name);
    assert_eq!(r.s.incoming_inflight(), 0, "{}", w.name);
}

/// Times `w` per message: a round of `w.messages` messages counts as that many iterations.
fn time(b: &mut Bencher<'_, BenchClock>, w: &Workload, r: &mut Rig) {
    let per_round = w.messages as u64;
    b.iter_custom(|iters| {
        let rounds = iters.div_ceil(per_round);
        let start = clock::now();
        for _ in 0..rounds {
            black_box((w.round)(black_box(&mut *r)));
        }
        let elapsed = clock::now().saturating_sub(start);
        elapsed.mul_f64(iters as f64 / (rounds * per_round) as f64)
    });
}

fn session(c: &mut Criterion<BenchClock>) {
    for w in &WORKLOADS {
        let mut g = c.benchmark_group(format!("session_{}", w.name));
        for (label, version) in [
            ("v311", ProtocolVersion::V3_1_1),
            ("v5", ProtocolVersion::V5),
        ] {
            let mut rig = Rig::new(version);
            check(w, &mut rig);
            g.bench_function(label, |b| time(b, w, &mut rig));
        }
        g.finish();
    }
}

/// Whether criterion runs in `--quick` mode.
fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// On the thread's CPU clock (see `codec/clock.rs`). The rounds take well under a microsecond
/// and vary little, so 1 s of warm-up and 3 s of measurement suffice; `--quick` (no warm-up)
/// stops at 0.5 s, as for the codec benches.
fn config() -> Criterion<BenchClock> {
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
    config = config();
    targets = session, backlog
}
criterion_main!(benches);
