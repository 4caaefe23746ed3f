//! The flash journal under power cuts. A device (a session and its `FlashJournal` on a RAM
//! flash) runs a scenario against a scripted broker; the power goes in the middle of one
//! write or erase; the device boots again from the flash, carries on for a while, and is
//! checked by a third boot. At every operation of a small scenario (compactions included),
//! and at random operations of long ones:
//! - never loses: a message whose `persist` returned (accepted) comes back until the broker
//!   acknowledged it;
//! - never invents: what comes back was published;
//! - never twice: a QoS 2 message whose PUBREL went out never comes back as PUBLISH;
//! - incoming QoS 2 identifiers whose PUBREC went out stay suppressed until PUBCOMP went out,
//!   and are free after.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use embassy_futures::block_on;
use mqtt_client_nb::flash::FlashJournal;
use mqtt_client_nb::mqtt_sansio::session::{Event, Instant, Message, Read, Session, SessionConfig};
use mqtt_client_nb::mqtt_sansio::{
    ConnAck, Connect, Decoded, Packet, PacketId, ProtocolVersion, PubResponse, Publish, QoS,
    QosPid, ReasonCode, TopicName,
};
use mqtt_client_nb::{Journal, StorageError};
use support::flash::{Keep, MockFlash};

const PAGE: usize = 256;
/// 2.5 KiB: a snapshot of the long scenarios' state (up to ten messages in flight and the ids
/// awaiting PUBREL) fits in half of it with room to spare, as a journal must be sized.
const PAGES: usize = 10;
/// Records on their way to flash: items of at most this many bytes. The small scenario
/// uses smaller ones, so that its snapshots take several items (and a cut can fall between
/// them).
const BUF: usize = 128;
const SMALL_BUF: usize = 48;
type Flash = MockFlash<PAGE>;
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

fn config(version: ProtocolVersion) -> SessionConfig {
    let mut c = SessionConfig::new(version);
    c.journal = true;
    c.max_inflight = u16::MAX;
    c
}

/// An incoming QoS 2 flow, as the broker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum In {
    /// Our PUBREC went out: the broker may send the PUBLISH again (it may not have received
    /// the PUBREC), which must not be delivered again.
    Received,
    /// The broker sent PUBREL: it never sends this PUBLISH again, only the PUBREL until our
    /// PUBCOMP.
    Released,
    /// Our PUBCOMP went out: the identifier names a new message next time.
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// A QoS 1 PUBLISH awaits PUBACK.
    Ack,
    /// A QoS 2 PUBLISH awaits PUBREC.
    Rec,
    /// A PUBREL awaits PUBCOMP.
    Comp,
}

/// What the broker saw and did, across the device's lives.
#[derive(Default)]
struct World {
    published: BTreeSet<Vec<u8>>,
    accepted: Vec<Vec<u8>>,
    /// Acknowledged to the device (PUBACK or PUBCOMP fed to it).
    answered: BTreeSet<Vec<u8>>,
    /// The last PUBLISH the broker saw under each packet identifier.
    by_pid: BTreeMap<u16, Vec<u8>>,
    /// Outgoing flows the broker may answer in this life.
    open_out: BTreeMap<u16, Stage>,
    /// Payloads whose PUBREL went out.
    released: BTreeSet<Vec<u8>>,
    /// Incoming QoS 2 identifiers and how far their flow went.
    incoming: BTreeMap<u16, In>,
    next_in: u16,
    counter: u64,
    rng: u64,
}

impl World {
    fn new(seed: u64) -> Self {
        Self {
            next_in: 100,
            rng: seed.wrapping_mul(6364136223846793005).wrapping_add(1),
            ..Self::default()
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.rng = self
            .rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.rng >> 33) % n
    }

    /// Notes a packet the device transmitted.
    fn saw(&mut self, packet: &Packet<'_>) {
        match packet {
            Packet::Publish(p) => {
                if let Some(pid) = p.qos_pid.packet_id() {
                    let stage = match p.qos_pid.qos() {
                        QoS::AtLeastOnce => Stage::Ack,
                        _ => Stage::Rec,
                    };
                    self.by_pid.insert(pid.get(), p.payload.to_vec());
                    self.open_out.insert(pid.get(), stage);
                }
            }
            Packet::PubRel(r) => {
                let pid = r.packet_id.get();
                self.released.insert(self.by_pid[&pid].clone());
                self.open_out.insert(pid, Stage::Comp);
            }
            Packet::PubRec(r) => {
                self.incoming.insert(r.packet_id.get(), In::Received);
            }
            Packet::PubComp(r) => {
                self.incoming.insert(r.packet_id.get(), In::Completed);
            }
            _ => {}
        }
    }
}

/// What a device sent: PUBLISH (pid, payload) and PUBREL pid.
#[derive(Debug, Default)]
struct Sent {
    publishes: Vec<(u16, Vec<u8>)>,
    pubrels: Vec<u16>,
}

/// One life of the device: a session and its journal on the flash.
struct Device<'f> {
    s: Session<Vec<u8>>,
    j: FlashJournal<'f, &'f mut Flash>,
    version: ProtocolVersion,
    delivered: Vec<Vec<u8>>,
}

impl<'f> Device<'f> {
    async fn boot(
        flash: &'f mut Flash,
        buf: &'f mut [u8],
        version: ProtocolVersion,
    ) -> Result<Self, StorageError> {
        let mut s = Session::new(config(version), vec![0u8; 8 * 1024]).unwrap();
        let mut j = FlashJournal::new(flash, 0..(PAGES * PAGE) as u32, buf).unwrap();
        j.recover(&mut s).await?;
        Ok(Self {
            s,
            j,
            version,
            delivered: Vec::new(),
        })
    }

    /// Persists; `false` once the power is gone (any other failure fails the test).
    async fn persist(&mut self) -> bool {
        match self.j.persist(&mut self.s).await {
            Ok(()) => true,
            Err(e) => {
                let j = format!("{:?}", self.j);
                assert!(
                    self.j.flash().is_dead(),
                    "persist failed: {e} {j} inflight {}",
                    self.s.inflight()
                );
                false
            }
        }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(1_000)
    }

    /// Transmits everything the session lets go, noting it in `w`.
    fn transmit(&mut self, w: &mut World) -> Sent {
        let mut buf = vec![0u8; 1024];
        let mut sent = Sent::default();
        while let Some(t) = self.s.poll_transmit(self.now(), &mut buf).unwrap() {
            let packet = match Packet::decode(&buf[..t.len], self.version, u32::MAX).unwrap() {
                Decoded::Packet { packet, .. } => packet,
                other => panic!("incomplete transmit {other:?}"),
            };
            match &packet {
                Packet::Publish(p) => {
                    if let Some(pid) = p.qos_pid.packet_id() {
                        sent.publishes.push((pid.get(), p.payload.to_vec()));
                    }
                }
                Packet::PubRel(r) => sent.pubrels.push(r.packet_id.get()),
                _ => {}
            }
            w.saw(&packet);
        }
        while self.s.poll_event().is_some() {}
        sent
    }

    /// Feeds one packet from the broker.
    fn feed(&mut self, packet: Packet<'_>) {
        let mut bytes = vec![0u8; packet.encoded_len(self.version).unwrap()];
        packet.encode(self.version, &mut bytes).unwrap();
        let now = self.now();
        match self.s.handle_read(now, &bytes).unwrap() {
            Read::Packet { len, event } => {
                assert_eq!(len, bytes.len());
                if let Some(Event::Message(p)) = event {
                    self.delivered.push(p.payload.to_vec());
                }
            }
            other => panic!("unexpected read {other:?}"),
        }
    }

    /// Connects; what the session sent once the broker accepted (its resends).
    async fn connect(&mut self, w: &mut World, first: bool) -> Option<Sent> {
        w.open_out.clear();
        let mut c = Connect::new(self.version, "device");
        c.clean_start = first;
        c.keep_alive = 0;
        if self.version.is_v5() {
            c.properties.session_expiry_interval = Some(3600);
        }
        self.s.connect(&c).unwrap();
        if !self.persist().await {
            return None;
        }
        self.transmit(w);
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.session_present = !first;
        self.feed(Packet::ConnAck(ack));
        if !self.persist().await {
            return None;
        }
        Some(self.transmit(w))
    }

    /// One random step of the scenario; `false` once the power is gone.
    async fn step(&mut self, w: &mut World) -> bool {
        match w.next(8) {
            0 | 1 if w.open_out.len() < 10 => {
                let qos = if w.next(2) == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                w.counter += 1;
                let payload = format!("m{}", w.counter).into_bytes();
                let message = Message::new(TopicName::new("t").unwrap(), &payload, qos);
                if self.s.publish(&message).unwrap().is_none() {
                    return true;
                }
                w.published.insert(payload.clone());
                if !self.persist().await {
                    return false;
                }
                w.accepted.push(payload);
            }
            2..=4 if !w.open_out.is_empty() => {
                let k = w.next(w.open_out.len() as u64) as usize;
                let (&pid, &stage) = w.open_out.iter().nth(k).unwrap();
                let id = PacketId::new(pid).unwrap();
                // Answered once; a PUBREL on the wire opens the next step.
                w.open_out.remove(&pid);
                match stage {
                    Stage::Ack => {
                        w.answered.insert(w.by_pid[&pid].clone());
                        self.feed(Packet::PubAck(PubResponse::new(id)));
                    }
                    Stage::Rec => self.feed(Packet::PubRec(PubResponse::new(id))),
                    Stage::Comp => {
                        w.answered.insert(w.by_pid[&pid].clone());
                        self.feed(Packet::PubComp(PubResponse::new(id)));
                    }
                }
            }
            5 => {
                w.next_in += 1;
                let payload = format!("in{}", w.next_in).into_bytes();
                self.feed(incoming(w.next_in, &payload));
            }
            6 => {
                let open: Vec<u16> = w
                    .incoming
                    .iter()
                    .filter(|(_, &state)| state != In::Completed)
                    .map(|(&id, _)| id)
                    .collect();
                if !open.is_empty() {
                    let id = open[w.next(open.len() as u64) as usize];
                    w.incoming.insert(id, In::Released);
                    self.feed(Packet::PubRel(PubResponse::new(PacketId::new(id).unwrap())));
                }
            }
            7 if w.next(4) == 0 => {
                self.s.handle_transport_closed(self.now());
                return self.connect(w, false).await.is_some();
            }
            _ => {}
        }
        if !self.persist().await {
            return false;
        }
        self.transmit(w);
        true
    }
}

fn incoming(id: u16, payload: &[u8]) -> Packet<'_> {
    let mut p = Publish::new(TopicName::new("in").unwrap(), payload);
    p.qos_pid = QosPid::new(QoS::ExactlyOnce, PacketId::new(id).unwrap());
    Packet::Publish(p)
}

/// What one run did: writes and erases of its first life, snapshots written.
struct Run {
    ops: usize,
    erases: u64,
    compactions: u32,
}

/// Life A (the power goes at `cut`), life B (boots, reconnects, `steps_b` more steps, then
/// the power goes once more, between operations), life C checks.
fn scenario(
    buf_len: usize,
    version: ProtocolVersion,
    seed: u64,
    steps_a: usize,
    cut: Option<(usize, Keep)>,
    steps_b: usize,
) -> Run {
    block_on(async {
        let mut flash = Flash::new(PAGES);
        let mut w = World::new(seed);
        let ctx = format!("{version:?} seed {seed} cut {cut:?}");
        let run = {
            if let Some((op, keep)) = cut {
                flash.cut_at(op, keep);
            }
            let mut buf = vec![0u8; buf_len];
            let mut d = Device::boot(&mut flash, &mut buf, version).await.unwrap();
            if d.connect(&mut w, true).await.is_some() {
                for _ in 0..steps_a {
                    if !d.step(&mut w).await {
                        break;
                    }
                }
            }
            Run {
                ops: d.j.flash().ops(),
                erases: d.j.flash().stats.erases,
                compactions: d.j.compactions(),
            }
        };
        flash.reboot();
        {
            let mut buf = vec![0u8; buf_len];
            let mut d = Device::boot(&mut flash, &mut buf, version)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: recovery failed: {e}"));
            assert!(d.connect(&mut w, false).await.is_some());
            for _ in 0..steps_b {
                assert!(d.step(&mut w).await, "{ctx}: life B died");
            }
        }
        flash.reboot();
        let mut buf = vec![0u8; buf_len];
        let mut d = Device::boot(&mut flash, &mut buf, version)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: second recovery failed: {e}"));
        let sent = d.connect(&mut w, false).await.unwrap();
        check(&ctx, &mut d, &mut w, &sent).await;
        run
    })
}

async fn check(ctx: &str, d: &mut Device<'_>, w: &mut World, sent: &Sent) {
    let resent: BTreeSet<&Vec<u8>> = sent.publishes.iter().map(|(_, m)| m).collect();
    let released: BTreeSet<&Vec<u8>> = sent.pubrels.iter().map(|p| &w.by_pid[p]).collect();
    for m in &resent {
        assert!(w.published.contains(*m), "{ctx}: invented {m:?}");
        assert!(
            !w.released.contains(*m),
            "{ctx}: QoS 2 message {m:?} sent again after its PUBREL"
        );
    }
    for m in &w.accepted {
        if !w.answered.contains(m) {
            assert!(
                resent.contains(m) || released.contains(m),
                "{ctx}: lost {:?}",
                String::from_utf8_lossy(m)
            );
        }
    }
    let incoming: Vec<(u16, In)> = w.incoming.iter().map(|(&id, &s)| (id, s)).collect();
    for (id, state) in incoming {
        let pid = PacketId::new(id).unwrap();
        if state != In::Released {
            // The broker sends the PUBLISH again (it may have missed our PUBREC), or a new
            // message under the identifier it completed.
            d.delivered.clear();
            d.feed(incoming_again(id));
            let delivered = !d.delivered.is_empty();
            assert_eq!(
                delivered,
                state == In::Completed,
                "{ctx}: incoming {id} {state:?}"
            );
        }
        d.feed(Packet::PubRel(PubResponse::new(pid)));
        assert!(d.persist().await);
        d.transmit(w);
    }
}

fn incoming_again(id: u16) -> Packet<'static> {
    incoming(id, b"again")
}

#[test]
fn a_power_cut_at_every_write_and_erase_of_a_small_scenario() {
    for version in VERSIONS {
        let full = scenario(SMALL_BUF, version, 1, 100, None, 0);
        assert!(full.erases >= 1, "the scenario should reuse a page");
        assert!(
            full.compactions >= 2,
            "the scenario should compact: {}",
            full.compactions
        );
        for op in 0..full.ops {
            for keep in [Keep::Nothing, Keep::Part, Keep::All] {
                scenario(SMALL_BUF, version, 1, 100, Some((op, keep)), 12);
            }
        }
        println!(
            "{version:?}: {} operations ({} erases), {} compactions, each cut three ways",
            full.ops, full.erases, full.compactions
        );
    }
}

#[test]
fn power_cuts_at_random_points_of_long_scenarios() {
    for seed in 2..5u64 {
        for version in VERSIONS {
            let full = scenario(BUF, version, seed, 500, None, 0);
            let mut x = seed;
            for i in 0..25 {
                x = x.wrapping_mul(2862933555777941757).wrapping_add(3037000493);
                let op = (x >> 20) as usize % full.ops;
                let keep = [Keep::Nothing, Keep::Part, Keep::All][i % 3];
                scenario(BUF, version, seed, 500, Some((op, keep)), 40);
            }
        }
    }
}
