//! Target `session`: a [`Session`] over a small store, driven by the input as a sequence of
//! operations, with the session's invariants checked after every one.
//!
//! The first [`SETUP_LEN`] bytes pick the configuration (`Setup::read`): version (3.1, 3.1.1,
//! 5.0), Receive Maximum, store size, our Maximum Packet Size, incoming and outgoing topic
//! aliases, manual acks, control region, transmit buffer size, the driver's receive buffer
//! (above which PUBLISHes are streamed in chunks), CONNACK and PINGRESP timeouts,
//! the table of subscriptions kept for renewal, the fallback to 3.1.1, the packet-id index
//! (none, one slot, colliding slots, plenty), and whether the driver
//! drains the outputs after every operation. Then each byte names an
//! operation ([`op`]) that reads its own arguments from the bytes after it:
//!
//! - commands: connect, publish (QoS 0/1/2, sizes up to beyond the store, 5.0 properties,
//!   managed properties, payload streamed by the driver), subscribe, unsubscribe, ack, disconnect, auth;
//! - broker input, appended to the "wire" and then read in arbitrary cuts: CONNACK (plain,
//!   with chosen limits, or with arbitrary properties from [`build_packet`]), PUBLISH at every
//!   QoS (small ids that repeat, DUP, topic aliases), PUBACK / PUBREC / PUBCOMP for the ids the
//!   session sent, PUBREL for the ids it received, SUBACK / UNSUBACK with the right or a wrong
//!   number of codes, PINGRESP, DISCONNECT, AUTH, any packet [`build_packet`] builds, raw bytes;
//! - time: small steps, jumps up to the end of time, straight to [`Session::poll_timeout`];
//! - the transport closing; draining [`Session::poll_transmit`] with buffers of any size and
//!   [`Session::poll_event`] (republishing abandoned messages when the setup says so).
//!
//! Checked (a panic is a bug): nothing panics; `store_usage().0 <= store_usage().1`;
//! `incoming_inflight()` within the incoming table (a broker may overrun our Receive Maximum);
//! while connected, `inflight()` stays within the
//! broker's Receive Maximum (or the PUBRELs carried over from the last connection, which must
//! be resent whatever the new limit) and never exceeds the messages outstanding; every
//! transmitted packet decodes as exactly one packet, fits the broker's Maximum Packet Size while
//! connected, and is one the connection state allows; a buffer refused as too small takes the
//! packet once it has the size asked for; `Read::Packet` consumes bytes it was given, and its
//! event is the one `Session::event` gives again; a streamed PUBLISH keeps its header within
//! the receive buffer, and its chunks come in order, fit what was buffered, add up to the
//! payload length, end exactly at `last`, and give the same event again; the receive buffer
//! never overflows and no stream outlives its transport; a streamed PUBLISH's header and
//! payload pieces go out back to back, in order, adding up to the packet its header announces
//! (checked as any transmitted packet), with nothing in between, and a streamed message
//! abandoned with the broker's session has no bytes to lend back; `Read::Blocked` always has something to transmit; after a
//! protocol error the session is closing and ignores input; packet ids are unique among
//! outstanding requests and each completes once, with the kind of event it was issued for; an
//! incoming QoS 2 message is delivered once until PUBREL releases its id; a delivered message
//! has a topic (aliases resolved); an abandoned message is lent back intact; a renewal of kept
//! subscriptions never carries the id of an application request; the version changes only by
//! a fallback the setup allowed; after
//! `handle_timeout(now)` the next deadline is later than `now`; every loop over an output ends
//! within [`LOOP_LIMIT`] rounds.
//!
//! `tests.rs` holds the regressions the fuzzer found, written as [`Script`]s.

mod broker;
mod commands;
mod outputs;
pub mod script;

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::vec;
use std::vec::Vec;

pub use script::{session_seeds, Script};

use super::build_packet;
use crate::session::{ConnectionState, Instant, Session, SessionConfig};
use crate::{Packet, PacketType, ProtocolVersion, QoS, TopicFilter, TopicName};

/// Bytes of the input that pick the configuration.
pub const SETUP_LEN: usize = 8;
/// Most operations one input runs.
const MAX_OPS: usize = 4_096;
/// Most rounds of any loop over an output (transmits, events, reads).
pub const LOOP_LIMIT: usize = 10_000;
/// Size of the largest transmit buffer: more than any packet the session can hold.
const TX_BUF: usize = 1 << 17;

/// Payload bytes for published and received messages.
static PAYLOAD: [u8; 70_000] = [0x5A; 70_000];
/// Characters for long strings (reason strings, client ids).
static TEXT: [u8; 4_096] = [b'r'; 4_096];

const TOPICS: [&str; 4] = ["a", "a/b", "sensors/esp32-001/temperature", "$SYS/x"];
const FILTERS: [&str; 6] = [
    "#",
    "a/+",
    "sensors/+/temperature",
    "$share/g/a/#",
    "a",
    "+/+",
];

/// Target `session`: see the module docs.
pub fn session(data: &[u8]) {
    run(data);
}

/// What a run did, for tests of the seeds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Operations run.
    pub ops: usize,
    /// Transmitted packets, by packet type (index = type number).
    pub sent: [usize; 16],
    /// Packets the session read, by packet type.
    pub read: [usize; 16],
    /// `Connected` events.
    pub connected: usize,
    /// `Message` events, by QoS.
    pub messages: [usize; 3],
    /// `Published` events, by QoS.
    pub published: [usize; 3],
    /// `Subscribed` and `Unsubscribed` events.
    pub subscribed: usize,
    /// `Resubscribed` events: renewals of kept subscriptions answered.
    pub resubscribed: usize,
    /// `PublishAbandoned` events.
    pub abandoned: usize,
    /// `PublishDropped` events.
    pub dropped: usize,
    /// `ConnectionLost` events.
    pub lost: usize,
    /// Protocol errors returned by `handle_read`.
    pub protocol_errors: usize,
    /// `Read::Blocked` answers.
    pub blocked: usize,
    /// `MessageChunk` events.
    pub chunks: usize,
    /// Connections the driver ended with its receive buffer full of a packet the session
    /// could not take (larger than the receive capacity, not a PUBLISH).
    pub rx_full: usize,
}

/// Runs the target on `data` and tells what happened.
pub fn run(data: &[u8]) -> Stats {
    let mut input = Input { data };
    let mut fuzz = Fuzz::new(Setup::read(&mut input));
    while let Some(op) = input.next() {
        if fuzz.stats.ops == MAX_OPS {
            break;
        }
        fuzz.stats.ops += 1;
        fuzz.step(op, &mut input);
        if !fuzz.setup.lazy {
            fuzz.drain();
        }
        fuzz.check();
    }
    fuzz.drain();
    fuzz.check();
    fuzz.stats
}

/// The configuration and driver behaviour an input picks.
#[derive(Debug, Clone, Copy)]
struct Setup {
    config: SessionConfig,
    store: usize,
    /// Outputs are drained only by explicit operations (and on `Read::Blocked`).
    lazy: bool,
    /// Abandoned messages are published again.
    republish: bool,
    tx_size: usize,
    start: u64,
}

/// Transmit buffer sizes a selector picks: the largest, and sizes that cut packets.
fn tx_size(selector: u8) -> usize {
    [TX_BUF, 2, 5, 16, 32, 64, 128, 1024][usize::from(selector & 7)]
}

impl Setup {
    /// Reads [`SETUP_LEN`] bytes; see [`Script::setup`] for the layout.
    fn read(i: &mut Input<'_>) -> Self {
        let [flags, limits, store, size, aliases, regions, tx, start] =
            [(); SETUP_LEN].map(|()| i.byte());
        let version = match flags & 3 {
            0 => ProtocolVersion::V3_1_1,
            3 => ProtocolVersion::V3_1,
            _ => ProtocolVersion::V5,
        };
        let mut config = SessionConfig::new(version);
        config.manual_acks = flags & 4 != 0;
        config.outgoing_topic_aliases = flags & 8 != 0;
        if flags & 0x40 != 0 {
            config.ping_timeout = Some(Duration::from_millis(100));
        }
        config.receive_maximum = [1, 2, 3, 4, 8, 16, 64, 0][usize::from(limits & 7)];
        if flags & 0x80 != 0 {
            config.max_inflight = 1 + u16::from((limits >> 3) & 3);
        }
        config.subscription_bytes = [0, 24, 256, 4096][usize::from((limits >> 5) & 3)];
        config.fallback_to_v311 = limits & 0x80 != 0;
        // None, one slot every identifier shares, collisions, plenty.
        config.index_slots = [0, 1, 3, 64][usize::from(tx >> 6)];
        config.maximum_packet_size =
            [4096, 64, 128, 256, 1024, 65_536, 268_435_460, 0][usize::from(size & 7)];
        config.connack_timeout = Duration::from_millis(u64::from(size >> 3) * 1000);
        config.topic_alias_maximum = u16::from(aliases & 7);
        config.incoming_alias_bytes = usize::from(aliases >> 3) * 8;
        config.outgoing_alias_bytes = usize::from(regions & 31) * 8;
        config.control_bytes = [512, 16, 32, 64, 128, 256, 1024, 4096][usize::from(regions >> 5)];
        // A driver's fixed receive buffer, above which PUBLISHes are streamed (bits of the
        // transmit selector that older seeds leave clear).
        config.receive_capacity = [0, 0, 0, 0, 48, 128, 512, 2048][usize::from((tx >> 3) & 7)];
        let start = match start {
            255 => u64::MAX - 10_000,
            s => u64::from(s) * 1000,
        };
        Self {
            config,
            store: config.reserved_bytes() + 64 + usize::from(store) * 8,
            lazy: flags & 0x10 != 0,
            republish: flags & 0x20 != 0,
            tx_size: tx_size(tx),
            start,
        }
    }
}

/// What an outstanding packet id was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Publish,
    Subscribe,
    Unsubscribe,
}

/// The last few values of something, for the broker to refer to.
#[derive(Debug, Default)]
struct Recent<T>(Vec<T>);

impl<T: Copy> Recent<T> {
    const CAPACITY: usize = 16;

    fn push(&mut self, value: T) {
        if self.0.len() == Self::CAPACITY {
            self.0.remove(0);
        }
        self.0.push(value);
    }

    fn pick(&self, selector: u8) -> Option<T> {
        match self.0.len() {
            0 => None,
            n => Some(self.0[usize::from(selector) % n]),
        }
    }
}

/// The session, the driver around it and what the fake broker remembers.
struct Fuzz {
    setup: Setup,
    version: ProtocolVersion,
    s: Session<Vec<u8>>,
    now: u64,
    /// Broker bytes not yet arrived.
    wire: Vec<u8>,
    /// Bytes arrived and not yet consumed by the session.
    rx: Vec<u8>,
    /// The PUBLISH being streamed, whose header leads `rx`.
    stream_in: Option<broker::StreamIn>,
    /// A streamed PUBLISH being transmitted: its bytes so far (header, then payload), and
    /// the connection state and broker limit when its header went out.
    stream_out: Option<(Vec<u8>, ConnectionState, Option<core::num::NonZeroU32>)>,
    /// Ids of QoS 1 and 2 messages queued with a streamed payload.
    streamed: BTreeSet<u16>,
    tx: Vec<u8>,
    tx_size: usize,
    outstanding: BTreeMap<u16, Pending>,
    /// QoS 1 and 2 PUBLISH ids transmitted.
    sent_publishes: Recent<u16>,
    sent_pubrels: Recent<u16>,
    /// SUBSCRIBE ids transmitted, with their number of filters.
    sent_subscribes: Recent<(u16, usize)>,
    sent_unsubscribes: Recent<(u16, usize)>,
    /// Ids of PUBRECs transmitted (incoming QoS 2), for the broker's PUBREL.
    sent_pubrecs: Recent<u16>,
    /// Ids of QoS 1 and 2 messages delivered, for `ack`.
    delivered: Recent<u16>,
    /// Incoming QoS 2 messages delivered and not yet released by PUBREL.
    incoming_qos2: BTreeSet<u16>,
    /// `inflight()` when the connection was accepted: PUBRELs of the previous connection.
    carried: u16,
    stats: Stats,
}

impl Fuzz {
    fn new(setup: Setup) -> Self {
        let store = vec![0u8; setup.store];
        let s = Session::new(setup.config, store)
            .unwrap_or_else(|e| panic!("a store of {} bytes was refused: {e}", setup.store));
        Self {
            setup,
            version: setup.config.version,
            s,
            now: setup.start,
            wire: Vec::new(),
            rx: Vec::new(),
            stream_in: None,
            stream_out: None,
            streamed: BTreeSet::new(),
            tx: vec![0u8; TX_BUF],
            tx_size: setup.tx_size,
            outstanding: BTreeMap::new(),
            sent_publishes: Recent::default(),
            sent_pubrels: Recent::default(),
            sent_subscribes: Recent::default(),
            sent_unsubscribes: Recent::default(),
            sent_pubrecs: Recent::default(),
            delivered: Recent::default(),
            incoming_qos2: BTreeSet::new(),
            carried: 0,
            stats: Stats::default(),
        }
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn v5(&self) -> bool {
        self.version.is_v5()
    }

    /// Runs operation `op`, reading its arguments from `i`.
    fn step(&mut self, op: u8, i: &mut Input<'_>) {
        match op % op::COUNT {
            op::CONNECT => self.connect(i),
            op::PUBLISH => self.publish(i),
            op::SUBSCRIBE => self.subscribe(i),
            op::UNSUBSCRIBE => self.unsubscribe(i),
            op::ACK => self.ack(i),
            op::DISCONNECT => self.disconnect(i),
            op::AUTH => self.auth(i),
            op::CONNACK => self.broker_connack(i),
            op::BROKER_PUBLISH => self.broker_publish(i),
            op::PUBACK => self.broker_ack(PacketType::PubAck, i),
            op::PUBREC => self.broker_ack(PacketType::PubRec, i),
            op::PUBREL => self.broker_ack(PacketType::PubRel, i),
            op::PUBCOMP => self.broker_ack(PacketType::PubComp, i),
            op::SUBACK => self.broker_suback(i),
            op::UNSUBACK => self.broker_unsuback(i),
            op::PINGRESP => self.broker_send(&Packet::PingResp, i),
            op::BROKER_DISCONNECT => self.broker_disconnect(i),
            op::BROKER_AUTH => self.broker_auth(i),
            op::BUILT => self.broker_built(i),
            op::RAW => {
                let len = usize::from(i.byte());
                self.wire.extend_from_slice(i.take(len));
                self.deliver(i);
            }
            op::ARRIVE => {
                let n = match i.byte() {
                    0 => self.wire.len(),
                    n => usize::from(n).min(self.wire.len()),
                };
                self.arrive(n);
            }
            op::TICK => {
                let ms = u64::from(i.u16());
                self.advance(self.now.saturating_add(ms));
            }
            op::JUMP => self.jump(i),
            op::CLOSED => self.transport_closed(),
            op::TRANSMIT => {
                let size = match i.byte() {
                    0 => TX_BUF,
                    n => usize::from(n),
                };
                self.drain_transmit(Some(size));
            }
            op::EVENTS => {
                self.drain_events();
            }
            _ => self.tx_size = tx_size(i.byte()),
        }
    }

    /// The invariants that hold between operations.
    fn check(&self) {
        let (used, capacity) = self.s.store_usage();
        assert!(used <= capacity, "store usage {used} > capacity {capacity}");
        // A broker may exceed our Receive Maximum; the session tracks up to its table.
        let incoming = self.s.incoming_inflight();
        let table = self.setup.config.incoming_table();
        assert!(
            incoming <= table,
            "{incoming} incoming in flight, table of {table}"
        );
        let inflight = self.s.inflight();
        let publishes = self
            .outstanding
            .values()
            .filter(|&&p| p == Pending::Publish)
            .count();
        assert!(
            usize::from(inflight) <= publishes,
            "inflight {inflight} with {publishes} messages outstanding"
        );
        if self.s.state() == ConnectionState::Connected {
            let limit = self.s.limits().receive_maximum;
            assert!(
                inflight <= limit.max(self.carried),
                "inflight {inflight} > broker receive maximum {limit} (carried {})",
                self.carried
            );
        }
    }

    fn topic<'a>(&self, selector: u8, i: &mut Input<'a>) -> TopicName<'a> {
        match selector & 3 {
            3 => TopicName::new(i.string(64)).unwrap_or(topic_name(TOPICS[0])),
            n => topic_name(TOPICS[usize::from(n)]),
        }
    }
}

/// The operations, by code (the operation byte modulo [`op::COUNT`]).
pub mod op {
    #![allow(missing_docs)]
    pub const CONNECT: u8 = 0;
    pub const PUBLISH: u8 = 1;
    pub const SUBSCRIBE: u8 = 2;
    pub const UNSUBSCRIBE: u8 = 3;
    pub const ACK: u8 = 4;
    pub const DISCONNECT: u8 = 5;
    pub const AUTH: u8 = 6;
    pub const CONNACK: u8 = 7;
    pub const BROKER_PUBLISH: u8 = 8;
    pub const PUBACK: u8 = 9;
    pub const PUBREC: u8 = 10;
    pub const PUBREL: u8 = 11;
    pub const PUBCOMP: u8 = 12;
    pub const SUBACK: u8 = 13;
    pub const UNSUBACK: u8 = 14;
    pub const PINGRESP: u8 = 15;
    pub const BROKER_DISCONNECT: u8 = 16;
    pub const BROKER_AUTH: u8 = 17;
    pub const BUILT: u8 = 18;
    pub const RAW: u8 = 19;
    pub const ARRIVE: u8 = 20;
    pub const TICK: u8 = 21;
    pub const JUMP: u8 = 22;
    pub const CLOSED: u8 = 23;
    pub const TRANSMIT: u8 = 24;
    pub const EVENTS: u8 = 25;
    pub const TX_SIZE: u8 = 26;
    pub const COUNT: u8 = 27;
}

fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; packet.encoded_len(version).ok()?];
    packet.encode(version, &mut buf).ok()?;
    Some(buf)
}

fn qos(selector: u8) -> QoS {
    match selector & 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// A topic name from a valid literal (or one built from validated input).
fn topic_name(name: &str) -> TopicName<'_> {
    TopicName::new(name).unwrap_or(TopicName::EMPTY)
}

fn filter(selector: u8) -> TopicFilter<'static> {
    let literal = FILTERS[usize::from(selector) % FILTERS.len()];
    // Every entry of FILTERS is a valid filter.
    TopicFilter::new(literal).unwrap_or_else(|_| unreachable!("{literal} is a valid filter"))
}

/// `len` characters (at most 4,096).
fn text(len: usize) -> &'static str {
    let bytes = &TEXT[..len.min(TEXT.len())];
    core::str::from_utf8(bytes).unwrap_or_default()
}

/// The fuzzer's bytes, read from the front; reads past the end give zeros.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// Up to `max` bytes (the length is the next byte), cut to their valid UTF-8 prefix.
    fn string(&mut self, max: usize) -> &'a str {
        let len = usize::from(self.byte()) % (max + 1);
        let bytes = self.take(len);
        match core::str::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests;
