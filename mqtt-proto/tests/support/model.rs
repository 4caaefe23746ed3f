//! Reference model for `session_model.rs`: a simulated broker behind a lossy transport on a
//! virtual clock, and the bookkeeping that checks every packet the session transmits and every
//! event it reports against the specification.
//!
//! The world has three parts:
//! - the session under test, driven the way a driver would: after every input or command,
//!   `poll_transmit` until `None`, then `poll_event` until `None`;
//! - a transport: two queues of packets. A packet transmitted by the session waits in
//!   `to_broker` until the broker reads it; a packet of the broker waits in `to_client` until
//!   the client's driver reads it, possibly only in part. When the transport drops, the broker
//!   reads a prefix of `to_broker` and everything else in flight is lost;
//! - a broker that keeps a session (QoS 2 ids awaiting PUBREL, outgoing messages awaiting
//!   acknowledgement) and answers what it read whenever an operation tells it to, in any
//!   order, sometimes twice, sometimes with a failure reason code (5.0). It resends with DUP
//!   on a resumed session [MQTT-4.4.0-1] and, like a 3.1.1 broker may, at other times, and
//!   reuses a packet id once no late duplicate can refer to it.
//!
//! The model predicts the event of every packet the client reads, and checks each packet the
//! client transmits against what the client may send at that point; a run ends with a
//! well-behaved broker finishing every flow, then checks that nothing was lost.
//!
//! One simplification: the broker only reports a session as present once the client has
//! processed a CONNACK for it, so a CONNACK lost in a transport drop cannot leave the two
//! sides disagreeing about which session they share.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use mqtt_sansio::session::{
    CommandError, ConnectionState, EndCause, Event, Instant, LostReason, Message, Read, Reconnect,
    Session, SessionConfig,
};
use mqtt_sansio::{
    ConnAck, Connect, Decoded, Disconnect, EncodeError, Packet, PacketId, PacketType,
    ProtocolVersion, PubResponse, Publish, QoS, QosPid, ReasonCode, SubAck, Subscribe,
    SubscribeProperties, Subscription, TopicFilter, TopicName, UnsubAck, Unsubscribe,
    UnsubscribeProperties,
};

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// What the broker answers in the CONNACK of a (re)connection, and how the client connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnParams {
    /// Clean Start (5.0) / Clean Session (3.1.1) in CONNECT.
    pub clean_start: bool,
    /// Whether the broker kept the session (session present 1 when it has one).
    pub keep_session: bool,
    /// The broker's Receive Maximum (5.0).
    pub receive_maximum: u16,
    /// The broker's Maximum QoS (5.0); 2 leaves the property out.
    pub maximum_qos: u8,
    /// The broker's Maximum Packet Size (5.0).
    pub maximum_packet_size: Option<u32>,
    /// The broker's Topic Alias Maximum (5.0).
    pub topic_alias_maximum: u16,
}

impl ConnParams {
    /// A broker without limits that keeps the session.
    pub const RESUME: Self = Self {
        clean_start: false,
        keep_session: true,
        receive_maximum: 5,
        maximum_qos: 2,
        maximum_packet_size: None,
        topic_alias_maximum: 0,
    };
}

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The application publishes message number n (the payload carries n) at `qos % 3` with
    /// `len` bytes of padding on topic `c/{topic % 3}`.
    Publish { qos: u8, len: u8, topic: u8 },
    /// The application subscribes to one filter.
    Subscribe,
    /// The application unsubscribes from two filters.
    Unsubscribe,
    /// The application acknowledges a delivered message (manual acks).
    AppAck { pick: u8 },
    /// The broker reads up to `n` packets from the transport.
    BrokerRead { n: u8 },
    /// The client reads up to `n` packets from the transport into its buffer; with `cut`, the
    /// last `cut % len` bytes stay in flight, so the buffer may end inside a packet.
    ClientRead { n: u8, cut: u8 },
    /// The application disconnects gracefully; the client reconnects once DISCONNECT is out.
    Disconnect,
    /// The broker answers one of the packets it owes an answer (any order), maybe twice,
    /// maybe with a failure reason code (5.0, PUBACK and PUBREC only).
    BrokerAck { pick: u8, dup: bool, fail: bool },
    /// The broker publishes `count` new messages to the client (QoS 1 and 2 only while the
    /// client's Receive Maximum allows).
    BrokerPublish { qos: u8, count: u8 },
    /// The broker breaks [MQTT-3.3.4-8]: `count` QoS 2 messages whatever our Receive Maximum
    /// says (mosquitto resuming a session). The session takes what it can track and leaves
    /// the rest with the broker, which sends them again on the next connection.
    BrokerOverrun { count: u8 },
    /// The broker sends an unacknowledged QoS 1 message, or a QoS 2 message before its PUBREL,
    /// again with DUP.
    BrokerResend { pick: u8 },
    /// The broker sends PUBREL for a QoS 2 message the client received (again, if it did).
    BrokerPubRel { pick: u8, dup: bool },
    /// The transport drops: the broker reads `deliver` packets still in flight to it, the rest
    /// is lost both ways. Then the client reconnects at once, or stays disconnected.
    Drop {
        deliver: u8,
        reconnect: Option<ConnParams>,
    },
    /// Reconnects if disconnected.
    Connect(ConnParams),
    /// The clock moves on; the driver calls `handle_timeout` for the deadlines passed.
    Advance { ms: u32 },
}

/// Fixed for one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub version: ProtocolVersion,
    /// Our Receive Maximum (incoming in-flight QoS 1 and 2 messages).
    pub receive_maximum: u16,
    /// Our own cap on outgoing QoS 1 and 2 messages in flight (`SessionConfig::max_inflight`).
    pub max_inflight: u16,
    /// Packet-id index slots (`SessionConfig::index_slots`).
    pub index_slots: u16,
    pub manual_acks: bool,
    /// Bytes of the store left for the outgoing log.
    pub log_bytes: usize,
    /// Assign outgoing topic aliases (5.0).
    pub topic_aliases: bool,
    pub keep_alive: u16,
    /// Size of the buffer handed to `poll_transmit` first; on `BufferTooSmall` the driver
    /// retries with a buffer of the size asked for.
    pub tx_buf: usize,
    /// The application publishes an abandoned message again as soon as it is reported, before
    /// polling the next event.
    pub republish_abandoned: bool,
    /// The driver's store can grow: the incoming table starts at the Receive Maximum and the
    /// driver answers `Session::wants_room` after every packet read, up to the 32 slots a
    /// fixed table has, so the session must behave exactly as with the fixed table while the
    /// regions behind the table (the log among them) move.
    pub grow_tables: bool,
    /// The first connection.
    pub first: ConnParams,
}

impl Setup {
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            version,
            receive_maximum: 4,
            max_inflight: u16::MAX,
            index_slots: 0,
            manual_acks: false,
            log_bytes: 512,
            topic_aliases: false,
            keep_alive: 10,
            tx_buf: 4096,
            republish_abandoned: false,
            grow_tables: false,
            first: ConnParams::RESUME,
        }
    }
}

/// What happened in a run, to see that the generators reach the interesting cases.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub published: usize,
    pub completed: usize,
    pub abandoned: usize,
    pub dropped: usize,
    pub store_full: usize,
    pub resent_dup: usize,
    pub reconnects: usize,
    pub session_lost: usize,
    pub delivered: usize,
    pub duplicate_qos2_suppressed: usize,
    pub keep_alive_lost: usize,
    pub blocked: usize,
    pub buffer_too_small: usize,
    /// QoS 2 messages the broker sent past our Receive Maximum.
    pub overruns: usize,
}

/// Runs `ops` against a fresh session, then lets a well-behaved broker finish every flow, and
/// checks the outcome. Panics (with a trace of the last steps) on the first violation.
pub fn run(setup: &Setup, ops: &[Op]) -> Stats {
    let mut w = World::new(*setup);
    for (i, op) in ops.iter().enumerate() {
        w.note(format!("== op {i}: {op:?}"));
        w.apply(*op);
        w.check_invariants();
    }
    w.note("== settle".to_string());
    w.settle();
    w.final_checks();
    if std::env::var_os("MODEL_TRACE").is_some() {
        let trace: Vec<&str> = w.trace.iter().map(String::as_str).collect();
        println!("{}", trace.join("\n"));
    }
    w.stats
}

// ---------------------------------------------------------------------------------------------
// Model state
// ---------------------------------------------------------------------------------------------

/// An event copied out of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Connected {
        session_present: bool,
    },
    Refused(ReasonCode),
    Message {
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
        pid: Option<u16>,
        dup: bool,
    },
    Published {
        pid: u16,
        qos: QoS,
        reason: ReasonCode,
    },
    Subscribed {
        pid: u16,
        codes: Vec<ReasonCode>,
    },
    Unsubscribed {
        pid: u16,
        codes: Vec<ReasonCode>,
    },
    Pong,
    Disconnected(ReasonCode),
    Lost(LostReason),
    Abandoned {
        pid: u16,
        payload: Option<Vec<u8>>,
    },
    Dropped {
        pid: Option<u16>,
        reason: ReasonCode,
    },
    Other(String),
}

fn copy_event(e: &Event<'_>) -> Ev {
    match *e {
        Event::Connected {
            session_present, ..
        } => Ev::Connected { session_present },
        Event::ConnectionRefused { reason_code, .. } => Ev::Refused(reason_code),
        Event::Message(p) => Ev::Message {
            topic: p.topic.as_str().to_owned(),
            payload: p.payload.to_vec(),
            qos: p.qos_pid.qos(),
            pid: p.packet_id().map(PacketId::get),
            dup: p.dup,
        },
        Event::Published {
            packet_id,
            qos,
            reason_code,
            ..
        } => Ev::Published {
            pid: packet_id.get(),
            qos,
            reason: reason_code,
        },
        Event::Subscribed {
            packet_id,
            reason_codes,
            ..
        } => Ev::Subscribed {
            pid: packet_id.get(),
            codes: reason_codes.iter().collect(),
        },
        Event::Unsubscribed {
            packet_id,
            reason_codes,
            ..
        } => Ev::Unsubscribed {
            pid: packet_id.get(),
            codes: reason_codes.iter().collect(),
        },
        Event::Pong { .. } => Ev::Pong,
        Event::Disconnected { reason_code, .. } => Ev::Disconnected(reason_code),
        Event::ConnectionLost(r) => Ev::Lost(r),
        // The payload is filled in from `Session::abandoned_message` by the caller.
        Event::PublishAbandoned { packet_id, .. } => Ev::Abandoned {
            pid: packet_id.get(),
            payload: None,
        },
        Event::PublishDropped {
            packet_id,
            reason_code,
        } => Ev::Dropped {
            pid: packet_id.map(PacketId::get),
            reason: reason_code,
        },
        ref other => Ev::Other(format!("{other:?}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Down,
    Connecting,
    Up,
}

/// The broker's limits on the current connection, as the client must apply them.
#[derive(Debug, Clone, Copy)]
struct Limits {
    receive_maximum: u16,
    maximum_qos: QoS,
    maximum_packet_size: Option<u32>,
    topic_alias_maximum: u16,
}

impl Limits {
    const NONE: Self = Self {
        receive_maximum: u16::MAX,
        maximum_qos: QoS::ExactlyOnce,
        maximum_packet_size: None,
        topic_alias_maximum: 0,
    };
}

/// Where a message published by the client stands, as far as the client may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Queued or in flight, PUBLISH not acknowledged.
    Live,
    /// QoS 0, transmitted.
    Sent0,
    /// QoS 2 after a successful PUBREC: only PUBREL may be sent for it.
    PubRel,
    /// The broker lost the session after the message was transmitted: it must be reported as
    /// abandoned (`released`: past PUBREC, reported without the message).
    MustAbandon {
        released: bool,
    },
    Published(ReasonCode),
    Abandoned,
    Dropped,
}

#[derive(Debug)]
struct OutMsg {
    qos: QoS,
    pid: Option<u16>,
    topic: String,
    payload: Vec<u8>,
    /// Encoded size without topic alias.
    size: usize,
    st: St,
    /// Order of the first transmission.
    first_sent: Option<u64>,
    /// PUBLISH transmitted on the current connection (and not yet acknowledged).
    sent_conn: bool,
    /// PUBREL transmitted on the current connection.
    rel_sent_conn: bool,
    /// Completed by a failure PUBREC (never released to subscribers).
    rec_failed: bool,
    /// Order in which its successful PUBREC was processed.
    rec_order: u64,
    // Broker side.
    /// Times the broker passed it to subscribers.
    bdelivered: u32,
    /// The broker received its PUBREL.
    breleased: bool,
}

#[derive(Debug)]
struct Req {
    pid: u16,
    subscribe: bool,
    filters: usize,
    /// Encoded size.
    size: usize,
    done: bool,
    sent_conn: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InSt {
    /// Delivered, waiting for the application's ack (manual acks).
    App,
    /// PUBREC queued or sent, waiting for PUBREL.
    Rel,
}

/// A message published by the broker to the client.
#[derive(Debug)]
struct BMsg {
    qos: QoS,
    pid: Option<u16>,
    topic: String,
    payload: Vec<u8>,
    /// Times the client delivered it to the application.
    delivered: u32,
    /// The flow completed (PUBACK or PUBCOMP received by the broker).
    acked: bool,
    /// Dropped with the broker's session before completing.
    discarded: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutSt {
    AwaitAck,
    RecReceived,
    RelSent,
}

#[derive(Debug, Clone, Copy)]
struct Out {
    id: usize,
    qos: QoS,
    st: OutSt,
    /// PUBLISH and PUBREL packets sent for it.
    copies: u32,
    rel_copies: u32,
}

/// An answer the broker owes on the current connection.
#[derive(Debug, Clone, Copy)]
enum Pending {
    PubAck(u16),
    PubRec(u16),
    PubComp(u16, ReasonCode),
    SubAck(u16, usize),
    UnsubAck(u16, usize),
}

#[derive(Debug, Clone, Copy)]
struct Inbound {
    id: usize,
    /// A successful PUBREC was sent: the broker owns the message.
    accepted: bool,
}

#[derive(Debug, Default)]
struct Broker {
    /// CONNECT received on the current transport.
    up: bool,
    has_session: bool,
    rx_aliases: HashMap<u16, String>,
    pending: Vec<Pending>,
    /// Client QoS 2 messages awaiting PUBREL.
    inbound: HashMap<u16, Inbound>,
    /// Client QoS 2 ids released in this broker session.
    released: HashSet<u16>,
    /// Messages to the client awaiting acknowledgement, by packet id (send order).
    outbound: BTreeMap<u16, Out>,
    /// Packet ids of QoS 1 and 2 messages sent to the client in this broker session.
    sent_pids: HashMap<u16, QoS>,
    /// Packet ids PUBREL was sent for in this broker session.
    rel_pids: HashSet<u16>,
    next_pid: u16,
    /// Packet ids free for reuse: their flow completed with a single copy of each packet,
    /// so no late duplicate acknowledgement can arrive for them.
    free_pids: BTreeSet<u16>,
}

struct World {
    setup: Setup,
    v: ProtocolVersion,
    s: Session<Vec<u8>>,
    now: u64,
    to_broker: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    /// Bytes the client's driver read but the session has not consumed (a partial packet).
    rx_pending: Vec<u8>,

    phase: Phase,
    /// DISCONNECT queued, and transmitted.
    disconnecting: bool,
    disconnect_sent: bool,
    /// A QoS 2 message was left with the broker on this connection (at this time): the
    /// session disconnects to have it resent, once its incoming handshakes are done.
    resync_due: Option<u64>,
    /// The DISCONNECT transmitted was that resync.
    resyncing: bool,
    /// When the application asked for the graceful DISCONNECT.
    disconnect_requested: u64,
    /// Failed attempts since the last stable connection, as the session must count them.
    reconnect_attempts: u32,
    /// When CONNACK accepted the current connection.
    up_since: Option<u64>,
    connect_sent: bool,
    /// A CONNACK accepted a connection: a 5.0 session with an expiry resumes from now on.
    ever_connected: bool,
    params: ConnParams,
    limits: Limits,
    msgs: Vec<OutMsg>,
    reqs: Vec<Req>,
    send_seq: u64,
    /// First-send order of the last PUBLISH resent (DUP) on this connection.
    last_resend: Option<u64>,
    /// PUBRECs processed, and the PUBREC order of the last PUBREL sent on this connection.
    rec_seq: u64,
    last_rel: Option<u64>,
    tx_aliases: HashMap<u16, String>,
    /// PUBACK, PUBREC and PUBCOMP the session must transmit, in order.
    expected_acks: VecDeque<(PacketType, u16, ReasonCode)>,
    /// Incoming QoS 2 messages the session must remember (mirrors its incoming table).
    client_in: BTreeMap<u16, InSt>,
    /// QoS 1 messages delivered in manual-ack mode and not yet acknowledged by the
    /// application: its state, not the session's (QoS 1 needs no receiver state).
    app_q1: BTreeSet<u16>,
    ping_outstanding: bool,
    lost: bool,
    /// When the session last transmitted, and transmitted CONNECT.
    last_tx: u64,
    connect_tx: u64,

    b: Broker,
    bmsgs: Vec<BMsg>,

    trace: VecDeque<String>,
    /// Lines ever noted, to tell whether a settle round did anything.
    noted: usize,
    stats: Stats,
}

macro_rules! check {
    ($w:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $w.fail(format!($($arg)+))
        }
    };
}

/// Bytes of a record header in the session's log (length, kind, state, packet id, QoS,
/// flags).
const HEADER: usize = 12;
/// The session's default drain timeout before a graceful DISCONNECT.
const DRAIN_MS: u64 = 5_000;
/// The reconnect policy's defaults: first delay, cap, and how long a connection must last to
/// reset the backoff.
const BACKOFF_INITIAL_MS: u64 = 1_000;
const BACKOFF_MAX_MS: u64 = 60_000;
const STABLE_MS: u64 = 10_000;

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero packet id")
}

/// The number a test payload carries after its one-byte tag.
fn payload_id(payload: &[u8], tag: u8) -> Option<usize> {
    if payload.len() < 5 || payload[0] != tag {
        return None;
    }
    Some(u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]) as usize)
}

fn make_payload(tag: u8, id: usize, pad: usize) -> Vec<u8> {
    let mut p = vec![tag];
    p.extend_from_slice(&(id as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(b'.', pad));
    p
}

fn qos_of(n: u8) -> QoS {
    QoS::from_u8(n % 3).expect("0..=2")
}

impl World {
    fn new(setup: Setup) -> Self {
        let v = setup.version;
        let mut config = SessionConfig::new(v);
        config.receive_maximum = setup.receive_maximum;
        config.max_inflight = setup.max_inflight;
        config.index_slots = setup.index_slots;
        config.manual_acks = setup.manual_acks;
        config.outgoing_topic_aliases = setup.topic_aliases;
        config.outgoing_alias_bytes = if setup.topic_aliases { 24 } else { 0 };
        config.control_bytes = 128;
        config.connack_timeout = Duration::from_secs(5);
        if setup.grow_tables {
            config.incoming_slots = 1;
            config.incoming_slots_limit = 32;
        }
        let store = vec![0u8; config.reserved_bytes() + setup.log_bytes];
        let s = Session::new(config, store).expect("store large enough");
        let mut w = World {
            setup,
            v,
            s,
            now: 1_000,
            to_broker: VecDeque::new(),
            to_client: VecDeque::new(),
            rx_pending: Vec::new(),
            phase: Phase::Down,
            disconnecting: false,
            resync_due: None,
            resyncing: false,
            disconnect_sent: false,
            disconnect_requested: 0,
            reconnect_attempts: 0,
            up_since: None,
            connect_sent: false,
            ever_connected: false,
            params: setup.first,
            limits: Limits::NONE,
            msgs: Vec::new(),
            reqs: Vec::new(),
            send_seq: 0,
            last_resend: None,
            rec_seq: 0,
            last_rel: None,
            tx_aliases: HashMap::new(),
            expected_acks: VecDeque::new(),
            client_in: BTreeMap::new(),
            app_q1: BTreeSet::new(),
            ping_outstanding: false,
            lost: false,
            last_tx: 0,
            connect_tx: 0,
            b: Broker {
                next_pid: 1,
                ..Broker::default()
            },
            bmsgs: Vec::new(),
            trace: VecDeque::new(),
            noted: 0,
            stats: Stats::default(),
        };
        w.connect(setup.first);
        w.drain();
        w
    }

    fn note(&mut self, line: String) {
        if self.trace.len() == 80 {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
        self.noted += 1;
    }

    fn fail(&self, msg: String) -> ! {
        let trace: Vec<&str> = self.trace.iter().map(String::as_str).collect();
        panic!(
            "MODEL VIOLATION ({:?}): {msg}\n--- last steps:\n{}\n--- end of trace",
            self.v,
            trace.join("\n")
        );
    }

    fn instant(&self) -> Instant {
        Instant::from_millis(self.now)
    }

    fn enc(&self, packet: Packet<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; packet.encoded_len(self.v).expect("broker packet encodes")];
        packet
            .encode(self.v, &mut buf)
            .expect("broker packet encodes");
        buf
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish { qos, len, topic } => self.publish(qos_of(qos), len.into(), topic % 3),
            Op::Subscribe => self.subscribe(),
            Op::Unsubscribe => self.unsubscribe(),
            Op::AppAck { pick } => self.app_ack(pick.into()),
            Op::BrokerRead { n } => self.broker_read(n.into()),
            Op::ClientRead { n, cut } => self.client_read(n.into(), cut),
            Op::Disconnect => self.disconnect(),
            Op::BrokerAck { pick, dup, fail } => self.broker_ack(pick.into(), dup, fail),
            Op::BrokerPublish { qos, count } => {
                for _ in 0..count {
                    self.broker_publish(qos_of(qos), false);
                }
            }
            Op::BrokerOverrun { count } => {
                // What finds no room may be fetched by a resync. Its notice is not proof
                // enough: the session's four event slots may be full when it is raised.
                if self.b.up {
                    self.resync_due.get_or_insert(self.now);
                }
                for _ in 0..count {
                    self.broker_publish(QoS::ExactlyOnce, true);
                }
            }
            Op::BrokerResend { pick } => self.broker_resend(pick.into()),
            Op::BrokerPubRel { pick, dup } => self.broker_pubrel(pick.into(), dup),
            Op::Drop { deliver, reconnect } => {
                self.close_transport(deliver.into());
                if let Some(p) = reconnect {
                    self.connect(p);
                }
            }
            Op::Connect(p) => self.connect(p),
            Op::Advance { ms } => self.advance(ms),
        }
        self.drain();
    }

    // -----------------------------------------------------------------------------------------
    // The driver
    // -----------------------------------------------------------------------------------------

    /// Drains transmits and events until both are empty, reacting to events like a driver.
    fn drain(&mut self) {
        for _ in 0..64 {
            let sent = self.flush_transmit();
            let mut events = 0;
            while let Some(e) = self.s.poll_event() {
                let mut ev = copy_event(&e);
                if let Ev::Abandoned { payload, .. } = &mut ev {
                    *payload = self.s.abandoned_message().map(|m| m.payload.to_vec());
                }
                events += 1;
                check!(self, events < 1000, "poll_event never returns None");
                self.on_polled(ev);
            }
            if self.lost {
                self.lost = false;
                self.close_transport(usize::MAX);
                let p = ConnParams {
                    clean_start: false,
                    ..self.params
                };
                self.connect(p);
                continue;
            }
            if sent == 0 && events == 0 {
                return;
            }
        }
        self.fail("the session keeps producing output".to_string());
    }

    /// `poll_transmit` until `None`; returns how many packets went out.
    fn flush_transmit(&mut self) -> usize {
        let mut count = 0;
        loop {
            check!(self, count < 10_000, "poll_transmit never returns None");
            let now = self.instant();
            let mut buf = vec![0u8; self.setup.tx_buf];
            let n = match self.s.poll_transmit(now, &mut buf) {
                Ok(Some(t)) => t.len,
                Ok(None) => return count,
                Err(EncodeError::BufferTooSmall { needed, available }) => {
                    self.stats.buffer_too_small += 1;
                    check!(
                        self,
                        available == buf.len() && needed > available,
                        "BufferTooSmall {{ needed: {needed}, available: {available} }} with a \
                         {}-byte buffer",
                        buf.len()
                    );
                    buf = vec![0u8; needed];
                    match self.s.poll_transmit(now, &mut buf) {
                        Ok(Some(t)) => t.len,
                        other => self.fail(format!(
                            "retry with the {needed} bytes asked for gave {other:?}"
                        )),
                    }
                }
                Err(e) => self.fail(format!("poll_transmit failed: {e:?}")),
            };
            buf.truncate(n);
            self.on_transmit(buf);
            count += 1;
        }
    }

    fn connect(&mut self, mut p: ConnParams) {
        if self.s.state() != ConnectionState::Disconnected {
            return;
        }
        // The session's rule: Clean Start is for the first connection of a 5.0 session with an
        // expiry; reconnects resume.
        if self.v.is_v5() && self.ever_connected {
            p.clean_start = false;
        }
        let mut c = Connect::new(self.v, "model");
        c.clean_start = p.clean_start;
        c.keep_alive = self.setup.keep_alive;
        if self.v.is_v5() {
            c.properties.session_expiry_interval = Some(3600);
        }
        if let Err(e) = self.s.connect(&c) {
            self.fail(format!("connect refused: {e:?}"));
        }
        self.note(format!("client connects {p:?}"));
        self.stats.reconnects += 1;
        self.params = p;
        self.phase = Phase::Connecting;
        self.connect_sent = false;
    }

    /// The transport ends: the broker reads up to `deliver` packets still in flight to it
    /// (never a CONNECT: a connection the client gives up on is not accepted late), everything
    /// else in flight is lost.
    fn close_transport(&mut self, deliver: usize) {
        if self.phase == Phase::Down {
            return;
        }
        self.note(format!(
            "transport drops; {} to broker, {} to client in flight",
            self.to_broker.len(),
            self.to_client.len()
        ));
        for _ in 0..deliver {
            let Some(bytes) = self.to_broker.pop_front() else {
                break;
            };
            if bytes.first().is_some_and(|b| b >> 4 == 1) {
                break;
            }
            self.broker_handle(&bytes);
        }
        self.to_broker.clear();
        self.to_client.clear();
        self.rx_pending.clear();
        let resync = self.disconnect_sent && self.resyncing;
        let graceful = self.disconnect_sent && !resync;
        self.disconnecting = false;
        self.disconnect_sent = false;
        self.resyncing = false;
        self.resync_due = None;
        let was_up = self.b.up;
        self.b.up = false;
        self.b.pending.clear();
        self.b.rx_aliases.clear();
        if was_up && !self.v.is_v5() && self.params.clean_start {
            // 3.1.1: a clean session lasts as long as its network connection.
            self.broker_discard();
        }
        let next = self.s.handle_transport_closed(self.instant());
        if resync {
            // At once, and the backoff starts over: the connection worked.
            check!(
                self,
                matches!(next, Reconnect::At { at, .. } if at.as_millis() == self.now),
                "after a resync: {next:?}"
            );
            self.up_since = None;
            self.reconnect_attempts = 0;
        } else {
            self.check_reconnect(next, graceful);
        }
        self.phase = Phase::Down;
        self.connect_sent = false;
        for m in &mut self.msgs {
            m.sent_conn = false;
            m.rel_sent_conn = false;
        }
        for r in &mut self.reqs {
            r.sent_conn = false;
        }
        self.tx_aliases.clear();
        self.expected_acks.clear();
        self.last_resend = None;
        self.last_rel = None;
        self.ping_outstanding = false;
    }

    /// The session's reconnect decision: a graceful end stops; anything else retries after
    /// the backoff, which grows with each connection that did not stay up and resets after
    /// one that did.
    fn check_reconnect(&mut self, next: Reconnect, graceful: bool) {
        let stable = self
            .up_since
            .take()
            .is_some_and(|t| self.now - t >= STABLE_MS);
        if stable {
            self.reconnect_attempts = 0;
        }
        match next {
            Reconnect::Stop(EndCause::Closed) => {
                check!(
                    self,
                    graceful,
                    "stopped after a connection that was not closed by us"
                );
            }
            Reconnect::At { at, attempt, .. } => {
                check!(self, !graceful, "reconnect after our own DISCONNECT");
                self.reconnect_attempts += 1;
                check!(
                    self,
                    attempt == self.reconnect_attempts,
                    "attempt {attempt}, expected {}",
                    self.reconnect_attempts
                );
                let full = (BACKOFF_INITIAL_MS << (attempt - 1).min(20)).min(BACKOFF_MAX_MS);
                let delay = at.as_millis() - self.now;
                check!(
                    self,
                    delay >= full / 2 && delay <= full,
                    "delay {delay} ms for attempt {attempt}, expected {}..={full}",
                    full / 2
                );
            }
            other => self.fail(format!("reconnect decision {other:?}")),
        }
    }

    fn advance(&mut self, ms: u32) {
        self.now += u64::from(ms);
        self.note(format!("clock at {} ms", self.now));
        for _ in 0..4 {
            match self.s.poll_timeout() {
                Some(t) if t.as_millis() <= self.now => {
                    let now = self.instant();
                    self.s.handle_timeout(now);
                    self.drain();
                }
                _ => break,
            }
        }
        let keep_alive = u64::from(self.setup.keep_alive) * 1000;
        if self.phase == Phase::Up && keep_alive > 0 {
            // [MQTT-3.1.2-23] a control packet at least every keep alive interval
            check!(
                self,
                self.now - self.last_tx < keep_alive,
                "nothing transmitted for {} ms with a keep alive of {keep_alive} ms",
                self.now - self.last_tx
            );
        }
        if self.phase == Phase::Connecting && self.connect_sent {
            check!(
                self,
                self.now - self.connect_tx < 5_000,
                "still waiting for CONNACK {} ms after CONNECT, timeout 5000 ms",
                self.now - self.connect_tx
            );
        }
    }

    // -----------------------------------------------------------------------------------------
    // Application commands
    // -----------------------------------------------------------------------------------------

    fn pid_in_use(&self, p: u16) -> bool {
        let msg = self.msgs.iter().any(|m| {
            m.pid == Some(p) && matches!(m.st, St::Live | St::PubRel | St::MustAbandon { .. })
        });
        msg || self.reqs.iter().any(|r| r.pid == p && !r.done)
    }

    fn publish(&mut self, qos: QoS, pad: usize, topic: u8) {
        let id = self.msgs.len();
        let topic = format!("c/{topic}");
        let payload = make_payload(b'c', id, pad);
        let message = Message::new(TopicName::new(&topic).expect("valid topic"), &payload, qos);
        let stored = Publish {
            dup: false,
            qos_pid: QosPid::new(qos, PacketId::MIN),
            retain: false,
            topic: message.topic,
            properties: message.properties,
            payload: &payload,
        };
        let size = Packet::Publish(stored)
            .encoded_len(self.v)
            .expect("publish encodes");
        let result = self.s.publish(&message);
        self.note(format!("publish #{id} {qos:?} {size}B -> {result:?}"));
        match result {
            Ok(p) => {
                check!(
                    self,
                    p.is_some() == (qos != QoS::AtMostOnce),
                    "publish at {qos:?} returned packet id {p:?}"
                );
                if let Some(p) = p {
                    check!(
                        self,
                        !self.pid_in_use(p.get()),
                        "publish got packet id {} which is still in use",
                        p.get()
                    );
                }
                self.check_room(size);
                self.stats.published += 1;
                self.msgs.push(OutMsg {
                    qos,
                    pid: p.map(PacketId::get),
                    topic,
                    payload,
                    size,
                    st: St::Live,
                    first_sent: None,
                    sent_conn: false,
                    rel_sent_conn: false,
                    rec_failed: false,
                    rec_order: 0,
                    bdelivered: 0,
                    breleased: false,
                });
            }
            Err(CommandError::StoreFull { needed, available }) => {
                self.stats.store_full += 1;
                self.check_store_full(size, needed, available);
            }
            Err(CommandError::QoSNotSupported(max)) => {
                check!(
                    self,
                    self.phase == Phase::Up
                        && qos > self.limits.maximum_qos
                        && max == self.limits.maximum_qos,
                    "QoSNotSupported({max:?}) for {qos:?} with limits {:?}",
                    self.limits
                );
            }
            Err(CommandError::PacketTooLarge { size: s, max }) => {
                check!(
                    self,
                    self.phase == Phase::Up
                        && self.limits.maximum_packet_size == Some(max)
                        && s == size
                        && s > max as usize,
                    "PacketTooLarge {{ size: {s}, max: {max} }} for a {size}-byte packet with \
                     limits {:?}",
                    self.limits
                );
            }
            Err(e) => self.fail(format!("publish failed: {e:?}")),
        }
    }

    /// Bytes of the log the session must still hold: every record not yet finished.
    fn live_bytes(&self) -> usize {
        let pubrel = Packet::PubRel(PubResponse::new(PacketId::MIN))
            .encoded_len(self.v)
            .expect("pubrel encodes");
        let msgs: usize = self
            .msgs
            .iter()
            .map(|m| match m.st {
                St::Live | St::MustAbandon { released: false } => HEADER + m.size,
                St::PubRel | St::MustAbandon { released: true } => HEADER + pubrel,
                _ => 0,
            })
            .sum();
        let reqs: usize = self
            .reqs
            .iter()
            .filter(|r| !r.done)
            .map(|r| HEADER + r.size)
            .sum();
        msgs + reqs
    }

    /// A `size`-byte packet was just queued, so it must have fit.
    fn check_room(&self, size: usize) {
        let (_, capacity) = self.s.store_usage();
        let live = self.live_bytes();
        check!(
            self,
            live + HEADER + size <= capacity,
            "a {size}-byte packet was queued with {live} of {capacity} bytes live"
        );
    }

    /// `StoreFull` is only right when the packet does not fit beside what is live.
    fn check_store_full(&self, size: usize, needed: usize, available: usize) {
        let (_, capacity) = self.s.store_usage();
        let live = self.live_bytes();
        check!(
            self,
            needed == HEADER + size && available == capacity - live && needed > available,
            "StoreFull {{ needed: {needed}, available: {available} }} for a {size}-byte packet \
             with {live} of {capacity} bytes live"
        );
    }

    fn disconnect(&mut self) {
        if self.phase != Phase::Up || self.disconnecting {
            return;
        }
        let result = self.s.disconnect(&Disconnect::new(ReasonCode::Success));
        self.note(format!("disconnect -> {result:?}"));
        if let Err(e) = result {
            self.fail(format!("disconnect while connected failed: {e:?}"));
        }
        self.disconnecting = true;
        self.disconnect_requested = self.now;
    }

    fn subscribe(&mut self) {
        let filter = TopicFilter::new("s/#").expect("valid filter");
        let subs = [Subscription::new(filter, QoS::ExactlyOnce)];
        let size = Packet::Subscribe(Subscribe::new(PacketId::MIN, &subs))
            .encoded_len(self.v)
            .expect("subscribe encodes");
        let result = self.s.subscribe(&subs, SubscribeProperties::default());
        self.note(format!("subscribe -> {result:?}"));
        self.request_result(result, true, 1, size);
    }

    fn unsubscribe(&mut self) {
        let filters = [
            TopicFilter::new("s/#").expect("valid filter"),
            TopicFilter::new("c/+").expect("valid filter"),
        ];
        let size = Packet::Unsubscribe(Unsubscribe::new(PacketId::MIN, &filters))
            .encoded_len(self.v)
            .expect("unsubscribe encodes");
        let result = self
            .s
            .unsubscribe(&filters, UnsubscribeProperties::default());
        self.note(format!("unsubscribe -> {result:?}"));
        self.request_result(result, false, 2, size);
    }

    fn request_result(
        &mut self,
        result: Result<PacketId, CommandError>,
        subscribe: bool,
        filters: usize,
        size: usize,
    ) {
        match result {
            Ok(p) => {
                check!(
                    self,
                    !self.pid_in_use(p.get()),
                    "request got packet id {} which is still in use",
                    p.get()
                );
                self.check_room(size);
                self.reqs.push(Req {
                    pid: p.get(),
                    subscribe,
                    filters,
                    size,
                    done: false,
                    sent_conn: false,
                });
            }
            Err(CommandError::StoreFull { needed, available }) => {
                self.stats.store_full += 1;
                self.check_store_full(size, needed, available);
            }
            Err(e) => self.fail(format!("(un)subscribe failed: {e:?}")),
        }
    }

    fn app_ack(&mut self, pick: usize) {
        let mut waiting: Vec<u16> = self
            .client_in
            .iter()
            .filter(|(_, st)| **st == InSt::App)
            .map(|(p, _)| *p)
            .collect();
        waiting.extend(self.app_q1.iter().copied());
        if waiting.is_empty() {
            return;
        }
        let p = waiting[pick % waiting.len()];
        let result = self.s.ack(pid(p));
        self.note(format!("app acks {p} -> {result:?}"));
        match result {
            Ok(()) => {
                if self.app_q1.remove(&p) {
                    self.expected_acks
                        .push_back((PacketType::PubAck, p, ReasonCode::Success));
                } else {
                    self.client_in.insert(p, InSt::Rel);
                    self.expected_acks
                        .push_back((PacketType::PubRec, p, ReasonCode::Success));
                }
            }
            Err(CommandError::WouldBlock) => {}
            Err(e) => self.fail(format!("ack({p}) of a delivered message failed: {e:?}")),
        }
    }

    // -----------------------------------------------------------------------------------------
    // What the session transmits
    // -----------------------------------------------------------------------------------------

    fn on_transmit(&mut self, bytes: Vec<u8>) {
        let packet = match Packet::decode(&bytes, self.v, u32::MAX) {
            Ok(Decoded::Packet { packet, len }) if len == bytes.len() => packet,
            other => self.fail(format!(
                "transmitted bytes {bytes:02x?} are not exactly one packet: {other:?}"
            )),
        };
        self.note(format!("client -> {packet:?}"));
        self.last_tx = self.now;
        check!(
            self,
            !self.disconnect_sent,
            "[MQTT-3.14.4-1] {:?} transmitted after DISCONNECT",
            packet.packet_type()
        );
        if self.phase == Phase::Up {
            if let Some(max) = self.limits.maximum_packet_size {
                check!(
                    self,
                    bytes.len() <= max as usize,
                    "[MQTT-3.1.2-24] {}-byte packet exceeds the broker's Maximum Packet Size {max}",
                    bytes.len()
                );
            }
        }
        match packet {
            Packet::Connect(c) => {
                check!(
                    self,
                    self.phase == Phase::Connecting && !self.connect_sent,
                    "CONNECT transmitted in phase {:?} (already sent: {})",
                    self.phase,
                    self.connect_sent
                );
                self.connect_sent = true;
                self.connect_tx = self.now;
                check!(
                    self,
                    c.protocol == self.v
                        && c.clean_start == self.params.clean_start
                        && c.keep_alive == self.setup.keep_alive,
                    "CONNECT does not match the command: {c:?}"
                );
                if self.v.is_v5() {
                    check!(
                        self,
                        c.properties.receive_maximum == NonZeroU16::new(self.setup.receive_maximum),
                        "CONNECT announces Receive Maximum {:?}, configured {}",
                        c.properties.receive_maximum,
                        self.setup.receive_maximum
                    );
                }
            }
            other if self.phase != Phase::Up => self.fail(format!(
                "[MQTT-3.1.4-?] {:?} transmitted before CONNACK (phase {:?})",
                other.packet_type(),
                self.phase
            )),
            Packet::Publish(p) => self.check_tx_publish(&p),
            Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubComp(r) => {
                let got = (packet.packet_type(), r.packet_id.get(), r.reason_code);
                let expected = self.expected_acks.pop_front();
                check!(
                    self,
                    expected == Some(got),
                    "[MQTT-4.6.0-2/3] acknowledgement {got:?} transmitted, expected {expected:?}"
                );
            }
            Packet::PubRel(r) => self.check_tx_pubrel(r),
            Packet::Subscribe(s) => {
                let n = s.subscriptions.len();
                self.check_tx_request(s.packet_id.get(), true, n);
            }
            Packet::Unsubscribe(u) => {
                let n = u.filters.len();
                self.check_tx_request(u.packet_id.get(), false, n);
            }
            Packet::PingReq => self.ping_outstanding = true,
            Packet::Disconnect(d) if !self.disconnecting && self.resync_due.is_some() => {
                check!(
                    self,
                    d.reason_code == ReasonCode::Success,
                    "resync DISCONNECT {:?}",
                    d.reason_code
                );
                // It waits for the broker's QoS 2 handshakes only; ours are resent with DUP.
                let open = self.client_in.len();
                let since = self.resync_due.unwrap_or(self.now);
                check!(
                    self,
                    open == 0 || self.now >= since + DRAIN_MS,
                    "resync DISCONNECT with {open} incoming handshakes open"
                );
                self.disconnect_sent = true;
                self.resyncing = true;
            }
            Packet::Disconnect(d) => {
                check!(
                    self,
                    self.disconnecting && d.reason_code == ReasonCode::Success,
                    "DISCONNECT {:?} transmitted unasked",
                    d.reason_code
                );
                self.check_nothing_left_to_send();
                // The graceful DISCONNECT drains: nothing of ours unacknowledged and no QoS 2
                // handshake of the broker's open, unless the drain timeout passed.
                let open = self.client_inflight() + self.client_in.len();
                let expired = self.now >= self.disconnect_requested + DRAIN_MS;
                check!(
                    self,
                    open == 0 || expired,
                    "DISCONNECT with {open} handshakes open {} ms after disconnect",
                    self.now - self.disconnect_requested
                );
                self.disconnect_sent = true;
            }
            other => self.fail(format!("unexpected packet transmitted: {other:?}")),
        }
        self.to_broker.push_back(bytes);
    }

    fn check_tx_publish(&mut self, p: &Publish<'_>) {
        let alias = p.properties.topic_alias.map(NonZeroU16::get);
        if let Some(a) = alias {
            check!(
                self,
                self.setup.topic_aliases && a <= self.limits.topic_alias_maximum,
                "[MQTT-3.3.2-9] topic alias {a} with Topic Alias Maximum {}",
                self.limits.topic_alias_maximum
            );
        }
        let topic = if p.topic.is_empty() {
            match alias.and_then(|a| self.tx_aliases.get(&a)) {
                Some(t) => t.clone(),
                None => self.fail(format!(
                    "[MQTT-3.3.2-12] PUBLISH without topic uses alias {alias:?} never set on \
                     this connection"
                )),
            }
        } else {
            if let Some(a) = alias {
                self.tx_aliases.insert(a, p.topic.as_str().to_owned());
            }
            p.topic.as_str().to_owned()
        };
        let Some(id) = payload_id(p.payload, b'c').filter(|&id| id < self.msgs.len()) else {
            self.fail(format!("PUBLISH with an unknown payload {:?}", p.payload));
        };
        let m = &self.msgs[id];
        check!(
            self,
            topic == m.topic
                && p.payload == m.payload
                && p.qos_pid.qos() == m.qos
                && p.packet_id().map(PacketId::get) == m.pid
                && !p.retain,
            "PUBLISH of #{id} differs from what was published: {p:?} vs {m:?}"
        );
        check!(
            self,
            m.qos <= self.limits.maximum_qos,
            "[MQTT-3.2.2-11] {:?} PUBLISH above the broker's Maximum QoS",
            m.qos
        );
        if m.qos == QoS::AtMostOnce {
            check!(
                self,
                m.st == St::Live,
                "QoS 0 message #{id} transmitted twice"
            );
            self.msgs[id].st = St::Sent0;
            return;
        }
        check!(
            self,
            m.st == St::Live,
            "PUBLISH of #{id} transmitted in state {:?}",
            m.st
        );
        check!(
            self,
            !m.sent_conn,
            "PUBLISH of #{id} transmitted twice on one connection"
        );
        check!(
            self,
            p.dup == m.first_sent.is_some(),
            "[MQTT-3.3.1-1] DUP is {} on {} transmission of #{id}",
            p.dup,
            if m.first_sent.is_some() {
                "a repeated"
            } else {
                "the first"
            }
        );
        if let Some(first) = m.first_sent {
            if let Some(last) = self.last_resend {
                check!(
                    self,
                    first > last,
                    "[MQTT-4.6.0-1] #{id} resent after a message first sent later"
                );
            }
            self.last_resend = Some(first);
            self.stats.resent_dup += 1;
        }
        let inflight = self.client_inflight();
        check!(
            self,
            inflight < usize::from(self.limits.receive_maximum),
            "[MQTT-3.3.4-7] PUBLISH #{id} with {inflight} already in flight, broker Receive \
             Maximum {}",
            self.limits.receive_maximum
        );
        let m = &mut self.msgs[id];
        m.sent_conn = true;
        if m.first_sent.is_none() {
            m.first_sent = Some(self.send_seq);
            self.send_seq += 1;
        }
    }

    /// A graceful DISCONNECT goes after everything queued that may be sent now.
    fn check_nothing_left_to_send(&self) {
        let window_open = self.client_inflight() < usize::from(self.limits.receive_maximum);
        let waiting = self.msgs.iter().position(|m| match m.st {
            St::Live if m.qos == QoS::AtMostOnce => true,
            St::Live => window_open && !m.sent_conn,
            St::PubRel => !m.rel_sent_conn,
            _ => false,
        });
        let request = self.reqs.iter().any(|r| !r.done && !r.sent_conn);
        check!(
            self,
            waiting.is_none() && !request && self.expected_acks.is_empty(),
            "DISCONNECT transmitted before #{waiting:?} (requests waiting: {request}, acks \
             waiting: {:?})",
            self.expected_acks
        );
    }

    /// A PUBREL answers a repeated PUBREC (from the ack queue, which goes first), or is the
    /// stored PUBREL of a message past PUBREC: once per connection, in PUBREC order
    /// [MQTT-4.6.0-4].
    fn check_tx_pubrel(&mut self, r: PubResponse<'_>) {
        let p = r.packet_id.get();
        let got = (PacketType::PubRel, p, r.reason_code);
        if self.expected_acks.front() == Some(&got) {
            self.expected_acks.pop_front();
            return;
        }
        let Some(i) = self
            .msgs
            .iter()
            .position(|m| m.pid == Some(p) && m.st == St::PubRel)
        else {
            self.fail(format!(
                "PUBREL {p} for no message past PUBREC (acks owed: {:?})",
                self.expected_acks
            ));
        };
        let m = &self.msgs[i];
        check!(
            self,
            r.reason_code == ReasonCode::Success && !m.rel_sent_conn,
            "PUBREL {p} with reason {:?}, already sent on this connection: {}",
            r.reason_code,
            m.rel_sent_conn
        );
        if let Some(last) = self.last_rel {
            check!(
                self,
                m.rec_order > last,
                "[MQTT-4.6.0-4] PUBREL {p} sent after the PUBREL of a later PUBREC"
            );
        }
        self.last_rel = Some(m.rec_order);
        self.msgs[i].rel_sent_conn = true;
    }

    fn check_tx_request(&mut self, p: u16, subscribe: bool, filters: usize) {
        let Some(i) = self
            .reqs
            .iter()
            .position(|r| r.pid == p && r.subscribe == subscribe && !r.done)
        else {
            self.fail(format!("request {p} transmitted but none is outstanding"));
        };
        check!(
            self,
            !self.reqs[i].sent_conn && self.reqs[i].filters == filters,
            "request {p} transmitted twice on one connection, or altered"
        );
        self.reqs[i].sent_conn = true;
    }

    /// QoS 1 and 2 messages the broker counts against its Receive Maximum: PUBLISH transmitted
    /// on this connection and unacknowledged, plus those past PUBREC awaiting PUBCOMP.
    fn client_inflight(&self) -> usize {
        self.msgs
            .iter()
            .filter(|m| (m.st == St::Live && m.sent_conn) || m.st == St::PubRel)
            .count()
    }

    // -----------------------------------------------------------------------------------------
    // Events the session reports outside handle_read
    // -----------------------------------------------------------------------------------------

    fn on_polled(&mut self, ev: Ev) {
        self.note(format!("event {ev:?}"));
        match ev {
            Ev::Lost(reason) => {
                let expected = match reason {
                    LostReason::KeepAliveTimeout => {
                        self.phase == Phase::Up && self.ping_outstanding
                    }
                    LostReason::ConnAckTimeout => self.phase == Phase::Connecting,
                    LostReason::DisconnectSent => self.disconnect_sent && !self.resyncing,
                    LostReason::Resync => self.disconnect_sent && self.resyncing,
                    _ => false,
                };
                check!(
                    self,
                    expected,
                    "connection lost for {reason:?} in phase {:?}",
                    self.phase
                );
                if reason == LostReason::KeepAliveTimeout {
                    self.stats.keep_alive_lost += 1;
                }
                self.expected_acks.clear();
                self.lost = true;
            }
            Ev::Abandoned { pid: p, payload } => {
                let Some(i) = self
                    .msgs
                    .iter()
                    .position(|m| m.pid == Some(p) && matches!(m.st, St::MustAbandon { .. }))
                else {
                    self.fail(format!(
                        "PublishAbandoned {p} for no message the broker may have seen before \
                         losing the session"
                    ));
                };
                let St::MustAbandon { released } = self.msgs[i].st else {
                    unreachable!()
                };
                let expected = (!released).then(|| self.msgs[i].payload.clone());
                check!(
                    self,
                    payload == expected,
                    "PublishAbandoned {p} carries {payload:?}, expected {expected:?}"
                );
                self.msgs[i].st = St::Abandoned;
                self.stats.abandoned += 1;
                if self.setup.republish_abandoned && !released {
                    let m = &self.msgs[i];
                    let (qos, pad) = (m.qos, m.payload.len() - 5);
                    let topic = m.topic.as_bytes()[2] - b'0';
                    self.publish(qos, pad, topic);
                }
            }
            Ev::Dropped { pid: p, reason } => {
                let max_size = self
                    .limits
                    .maximum_packet_size
                    .map_or(usize::MAX, |m| m as usize);
                let found = self.msgs.iter().position(|m| {
                    m.st == St::Live && m.pid == p && (p.is_some() || m.size > max_size)
                });
                let Some(i) = found else {
                    self.fail(format!("PublishDropped for no queued message: {p:?}"));
                };
                let m = &self.msgs[i];
                let valid = match reason {
                    ReasonCode::QoSNotSupported => m.qos > self.limits.maximum_qos,
                    ReasonCode::PacketTooLarge => m.size > max_size,
                    _ => false,
                };
                check!(
                    self,
                    valid,
                    "PublishDropped {reason:?} for #{i} ({:?}, {} bytes) with limits {:?}",
                    m.qos,
                    m.size,
                    self.limits
                );
                self.msgs[i].st = St::Dropped;
                self.stats.dropped += 1;
            }
            Ev::Other(e) if e.starts_with("Notice(ReceiveMaximumExceeded") => {
                check!(
                    self,
                    self.stats.overruns > 0,
                    "{e} while the broker kept to our Receive Maximum"
                );
                if e.contains("deferred: true") && self.phase == Phase::Up {
                    self.resync_due.get_or_insert(self.now);
                }
            }
            other => self.fail(format!("unexpected event from poll_event: {other:?}")),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The client reads
    // -----------------------------------------------------------------------------------------

    fn client_read(&mut self, n: usize, cut: u8) {
        let count = n.min(self.to_client.len());
        if count == 0 {
            return;
        }
        let mut bytes = std::mem::take(&mut self.rx_pending);
        for chunk in self.to_client.drain(..count) {
            bytes.extend_from_slice(&chunk);
        }
        if cut > 0 {
            let keep = usize::from(cut) % bytes.len();
            let tail = bytes.split_off(bytes.len() - keep);
            if !tail.is_empty() {
                self.to_client.push_front(tail);
            }
        }
        let mut at = 0;
        let mut blocked = 0;
        while at < bytes.len() {
            let now = self.instant();
            let outcome = match self.s.handle_read(now, &bytes[at..]) {
                Ok(Read::Packet { len, event }) => Ok(Some((len, event.as_ref().map(copy_event)))),
                Ok(Read::Blocked) => Ok(None),
                // Our DISCONNECT went out (a resync in the middle of a batch): the driver
                // closes the transport, and what the broker sent after is dropped with it.
                Ok(Read::Closing) if self.disconnect_sent => break,
                Ok(Read::Incomplete { .. }) => {
                    let rest = Packet::decode(&bytes[at..], self.v, u32::MAX);
                    check!(
                        self,
                        matches!(rest, Ok(Decoded::Incomplete { .. })),
                        "handle_read said Incomplete for {rest:?}"
                    );
                    break;
                }
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(format!("protocol error {e:?}")),
            };
            match outcome {
                Ok(Some((len, ev))) => {
                    let packet = match Packet::decode(&bytes[at..], self.v, u32::MAX) {
                        Ok(Decoded::Packet { len: l, .. }) => l,
                        _ => 0,
                    };
                    check!(
                        self,
                        len == packet,
                        "handle_read consumed {len} bytes of a {packet}-byte packet"
                    );
                    self.after_client_read(&bytes[at..at + len], ev);
                    at += len;
                    blocked = 0;
                    if self.setup.grow_tables {
                        self.answer_room();
                    }
                }
                Ok(None) => {
                    self.stats.blocked += 1;
                    blocked += 1;
                    check!(
                        self,
                        blocked < 3,
                        "handle_read stays Blocked after draining"
                    );
                    self.flush_transmit();
                }
                Err(what) => {
                    let packet = Packet::decode(&bytes[at..], self.v, u32::MAX);
                    self.fail(format!("handle_read of {packet:?} gave {what}"));
                }
            }
        }
        self.rx_pending = bytes.split_off(at);
    }

    fn after_client_read(&mut self, bytes: &[u8], ev: Option<Ev>) {
        let packet = match Packet::decode(bytes, self.v, u32::MAX) {
            Ok(Decoded::Packet { packet, .. }) => packet,
            other => self.fail(format!("broker packet does not decode: {other:?}")),
        };
        self.note(format!("client <- {packet:?} => {ev:?}"));
        let predicted = match packet {
            Packet::ConnAck(c) => self.client_connack(&c),
            Packet::Publish(p) => self.client_publish(&p),
            Packet::PubRel(r) => {
                let p = r.packet_id.get();
                let reason = match self.client_in.get(&p) {
                    Some(&st) => {
                        check!(
                            self,
                            st == InSt::Rel,
                            "model: broker sent PUBREL {p} before PUBREC"
                        );
                        self.client_in.remove(&p);
                        ReasonCode::Success
                    }
                    _ if self.v.is_v5() => ReasonCode::PacketIdentifierNotFound,
                    _ => ReasonCode::Success,
                };
                self.expected_acks
                    .push_back((PacketType::PubComp, p, reason));
                None
            }
            Packet::PubAck(r) => {
                let p = r.packet_id.get();
                let found = self.msgs.iter().position(|m| {
                    m.pid == Some(p) && m.qos == QoS::AtLeastOnce && m.st == St::Live && m.sent_conn
                });
                found.map(|i| {
                    self.msgs[i].st = St::Published(r.reason_code);
                    self.stats.completed += 1;
                    Ev::Published {
                        pid: p,
                        qos: QoS::AtLeastOnce,
                        reason: r.reason_code,
                    }
                })
            }
            Packet::PubRec(r) => {
                let p = r.packet_id.get();
                let found = self.msgs.iter().position(|m| {
                    m.pid == Some(p) && m.qos == QoS::ExactlyOnce && m.st == St::Live && m.sent_conn
                });
                match found {
                    Some(i) if r.reason_code.is_error() => {
                        // [MQTT-4.4.0-2] a failure PUBREC ends the flow.
                        self.msgs[i].st = St::Published(r.reason_code);
                        self.msgs[i].rec_failed = true;
                        self.stats.completed += 1;
                        Some(Ev::Published {
                            pid: p,
                            qos: QoS::ExactlyOnce,
                            reason: r.reason_code,
                        })
                    }
                    Some(i) => {
                        self.msgs[i].st = St::PubRel;
                        self.msgs[i].sent_conn = false;
                        self.msgs[i].rec_order = self.rec_seq;
                        self.rec_seq += 1;
                        None
                    }
                    None if r.reason_code.is_error() => None,
                    None => {
                        // A repeated PUBREC: PUBREL again, straight from the ack queue.
                        let known = self
                            .msgs
                            .iter()
                            .any(|m| m.pid == Some(p) && m.st == St::PubRel);
                        let reason = if known || !self.v.is_v5() {
                            ReasonCode::Success
                        } else {
                            ReasonCode::PacketIdentifierNotFound
                        };
                        self.expected_acks
                            .push_back((PacketType::PubRel, p, reason));
                        None
                    }
                }
            }
            Packet::PubComp(r) => {
                let p = r.packet_id.get();
                let found = self
                    .msgs
                    .iter()
                    .position(|m| m.pid == Some(p) && m.st == St::PubRel && m.rel_sent_conn);
                found.map(|i| {
                    self.msgs[i].st = St::Published(r.reason_code);
                    self.stats.completed += 1;
                    Ev::Published {
                        pid: p,
                        qos: QoS::ExactlyOnce,
                        reason: r.reason_code,
                    }
                })
            }
            Packet::SubAck(s) => {
                self.client_request_ack(s.packet_id.get(), true, s.reason_codes.iter().collect())
            }
            Packet::UnsubAck(u) => {
                self.client_request_ack(u.packet_id.get(), false, u.reason_codes.iter().collect())
            }
            Packet::PingResp => {
                let pong = self.ping_outstanding.then_some(Ev::Pong);
                self.ping_outstanding = false;
                pong
            }
            other => self.fail(format!("model: broker sent {other:?}")),
        };
        check!(
            self,
            ev == predicted,
            "after {:?} the session reported {ev:?}, expected {predicted:?}",
            packet.packet_type()
        );
    }

    fn client_connack(&mut self, c: &ConnAck<'_>) -> Option<Ev> {
        check!(
            self,
            self.phase == Phase::Connecting && self.connect_sent,
            "model: CONNACK in phase {:?}",
            self.phase
        );
        let sp = c.session_present;
        let mut limits = if self.v.is_v5() {
            let p = &c.properties;
            Limits {
                receive_maximum: p.receive_maximum.map_or(u16::MAX, NonZeroU16::get),
                maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
                maximum_packet_size: p.maximum_packet_size.map(NonZeroU32::get),
                topic_alias_maximum: p.topic_alias_maximum.unwrap_or(0),
            }
        } else {
            Limits::NONE
        };
        limits.receive_maximum = limits.receive_maximum.min(self.setup.max_inflight.max(1));
        self.limits = limits;
        if !sp {
            // [MQTT-3.2.2-5] the session state is discarded: what the broker may have seen is
            // abandoned, what was never transmitted is still to be sent.
            for m in &mut self.msgs {
                m.st = match m.st {
                    St::Live if m.qos != QoS::AtMostOnce && m.first_sent.is_some() => {
                        St::MustAbandon { released: false }
                    }
                    St::PubRel => St::MustAbandon { released: true },
                    other => other,
                };
            }
            self.client_in.clear();
            // The application forgets what it owes the lost session (Connected tells it), and
            // acknowledgements it queued for that session go with it.
            self.app_q1.clear();
            self.expected_acks.clear();
            self.stats.session_lost += 1;
        }
        self.phase = Phase::Up;
        self.ever_connected = true;
        self.up_since = Some(self.now);
        self.b.has_session = self.v.is_v5() || !self.params.clean_start;
        Some(Ev::Connected {
            session_present: sp,
        })
    }

    fn client_publish(&mut self, p: &Publish<'_>) -> Option<Ev> {
        let Some(id) = payload_id(p.payload, b'b').filter(|&id| id < self.bmsgs.len()) else {
            self.fail(format!(
                "model: broker PUBLISH with payload {:?}",
                p.payload
            ));
        };
        let message = Ev::Message {
            topic: self.bmsgs[id].topic.clone(),
            payload: self.bmsgs[id].payload.clone(),
            qos: p.qos_pid.qos(),
            pid: p.packet_id().map(PacketId::get),
            dup: p.dup,
        };
        let manual = self.setup.manual_acks;
        let predicted = match p.qos_pid {
            QosPid::AtMostOnce => Some(message),
            QosPid::AtLeastOnce(i) => {
                let i = i.get();
                if manual {
                    self.app_q1.insert(i);
                } else {
                    self.expected_acks
                        .push_back((PacketType::PubAck, i, ReasonCode::Success));
                }
                Some(message)
            }
            QosPid::ExactlyOnce(i) => {
                let i = i.get();
                match self.client_in.get(&i) {
                    Some(e) => {
                        if *e == InSt::Rel {
                            self.expected_acks.push_back((
                                PacketType::PubRec,
                                i,
                                ReasonCode::Success,
                            ));
                        }
                        self.stats.duplicate_qos2_suppressed += 1;
                        None
                    }
                    // Beyond what the session can track: left with the broker, unanswered.
                    None if self.client_in.len() >= self.incoming_table() => None,
                    None if manual => {
                        self.insert_in(i, InSt::App);
                        Some(message)
                    }
                    None => {
                        self.insert_in(i, InSt::Rel);
                        self.expected_acks
                            .push_back((PacketType::PubRec, i, ReasonCode::Success));
                        Some(message)
                    }
                }
            }
        };
        if predicted.is_some() {
            self.bmsgs[id].delivered += 1;
            self.stats.delivered += 1;
            if p.qos_pid.qos() == QoS::ExactlyOnce {
                check!(
                    self,
                    self.bmsgs[id].delivered == 1,
                    "incoming QoS 2 message b#{id} delivered to the application twice"
                );
            }
        }
        predicted
    }

    fn insert_in(&mut self, p: u16, st: InSt) {
        check!(
            self,
            self.client_in.len() < self.incoming_table(),
            "model: more incoming QoS 2 messages than the session's table"
        );
        self.client_in.insert(p, st);
    }

    /// Resizes the session's tables as it asks, as a driver with a growable store does.
    fn answer_room(&mut self) {
        let mut asked = 0;
        while let Some((region, len)) = self.s.wants_room() {
            asked += 1;
            check!(self, asked <= 8, "the session keeps asking for room");
            let resized = self.s.resize_region(region, len, |store, len| {
                store.resize(len, 0);
            });
            check!(
                self,
                resized.is_ok(),
                "resize_region refused what wants_room asked: {resized:?}"
            );
        }
    }

    /// Incoming QoS 2 messages the session tracks: its `incoming_slots` (default 32), at
    /// least the Receive Maximum (with `grow_tables`, the table's limit, also 32).
    fn incoming_table(&self) -> usize {
        usize::from(self.setup.receive_maximum).max(32)
    }

    fn client_request_ack(
        &mut self,
        p: u16,
        subscribe: bool,
        codes: Vec<ReasonCode>,
    ) -> Option<Ev> {
        let i = self
            .reqs
            .iter()
            .position(|r| r.pid == p && r.subscribe == subscribe && !r.done && r.sent_conn)?;
        self.reqs[i].done = true;
        Some(if subscribe {
            Ev::Subscribed { pid: p, codes }
        } else {
            Ev::Unsubscribed { pid: p, codes }
        })
    }

    // -----------------------------------------------------------------------------------------
    // The broker
    // -----------------------------------------------------------------------------------------

    fn broker_read(&mut self, n: usize) {
        for _ in 0..n {
            let Some(bytes) = self.to_broker.pop_front() else {
                return;
            };
            self.broker_handle(&bytes);
        }
    }

    fn broker_handle(&mut self, bytes: &[u8]) {
        let packet = match Packet::decode(bytes, self.v, u32::MAX) {
            Ok(Decoded::Packet { packet, .. }) => packet,
            other => self.fail(format!("broker cannot decode {bytes:02x?}: {other:?}")),
        };
        self.note(format!("broker <- {packet:?}"));
        if !self.b.up {
            match packet {
                Packet::Connect(c) => self.broker_connect(&c),
                other => self.fail(format!(
                    "[MQTT-3.1.0-1] {:?} is the first packet on a connection",
                    other.packet_type()
                )),
            }
            return;
        }
        match packet {
            Packet::Publish(p) => self.broker_publish_in(&p),
            Packet::PubAck(r) => self.broker_puback(r),
            Packet::PubRec(r) => self.broker_pubrec(r),
            Packet::PubRel(r) => self.broker_pubrel_in(r),
            Packet::PubComp(r) => self.broker_pubcomp(r),
            Packet::Subscribe(s) => {
                let n = s.subscriptions.len();
                self.b.pending.push(Pending::SubAck(s.packet_id.get(), n));
            }
            Packet::Unsubscribe(u) => {
                let n = u.filters.len();
                self.b.pending.push(Pending::UnsubAck(u.packet_id.get(), n));
            }
            Packet::PingReq => {
                let pong = self.enc(Packet::PingResp);
                self.to_client.push_back(pong);
            }
            Packet::Disconnect(_) => {}
            other => self.fail(format!("broker received {other:?}")),
        }
    }

    fn broker_discard(&mut self) {
        for out in self.b.outbound.values() {
            self.bmsgs[out.id].discarded = true;
        }
        self.b.outbound.clear();
        self.b.inbound.clear();
        self.b.released.clear();
        self.b.sent_pids.clear();
        self.b.rel_pids.clear();
        self.b.free_pids.clear();
        self.b.has_session = false;
    }

    fn broker_connect(&mut self, c: &Connect<'_>) {
        let p = self.params;
        let sp = !c.clean_start && p.keep_session && self.b.has_session;
        if !sp {
            self.broker_discard();
        }
        self.b.up = true;
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.session_present = sp;
        if self.v.is_v5() {
            let props = &mut ack.properties;
            props.receive_maximum = NonZeroU16::new(p.receive_maximum);
            props.maximum_qos = (p.maximum_qos < 2).then(|| qos_of(p.maximum_qos));
            props.maximum_packet_size = p.maximum_packet_size.and_then(NonZeroU32::new);
            props.topic_alias_maximum =
                (p.topic_alias_maximum > 0).then_some(p.topic_alias_maximum);
        }
        let bytes = self.enc(Packet::ConnAck(ack));
        self.to_client.push_back(bytes);
        if sp {
            // More than our Receive Maximum resent at once: what finds no room may be
            // fetched by a resync on this connection too.
            if self.b.outbound.len() > usize::from(self.setup.receive_maximum) {
                self.resync_due.get_or_insert(self.now);
            }
            // [MQTT-4.4.0-1] resend unacknowledged PUBLISH and PUBREL packets, in order.
            let mut outbound: Vec<(u16, Out)> =
                self.b.outbound.iter().map(|(k, v)| (*k, *v)).collect();
            outbound.sort_by_key(|(_, out)| out.id);
            for (p, out) in outbound {
                match out.st {
                    OutSt::AwaitAck => self.send_bmsg(out.id, true),
                    OutSt::RelSent => self.send_pubrel(p, false),
                    OutSt::RecReceived => {}
                }
            }
        }
    }

    fn broker_publish_in(&mut self, p: &Publish<'_>) {
        let alias = p.properties.topic_alias.map(NonZeroU16::get);
        let topic = if p.topic.is_empty() {
            match alias.and_then(|a| self.b.rx_aliases.get(&a)) {
                Some(t) => t.clone(),
                None => self.fail(format!("broker: unknown topic alias {alias:?}")),
            }
        } else {
            if let Some(a) = alias {
                self.b.rx_aliases.insert(a, p.topic.as_str().to_owned());
            }
            p.topic.as_str().to_owned()
        };
        let Some(id) = payload_id(p.payload, b'c').filter(|&id| id < self.msgs.len()) else {
            self.fail(format!(
                "broker: PUBLISH with unknown payload {:?}",
                p.payload
            ));
        };
        check!(
            self,
            topic == self.msgs[id].topic,
            "broker: #{id} arrived on topic {topic}"
        );
        match p.qos_pid {
            QosPid::AtMostOnce => {
                self.msgs[id].bdelivered += 1;
                check!(
                    self,
                    self.msgs[id].bdelivered == 1,
                    "QoS 0 message #{id} reached the broker twice"
                );
            }
            QosPid::AtLeastOnce(i) => {
                self.msgs[id].bdelivered += 1;
                self.b.pending.push(Pending::PubAck(i.get()));
            }
            QosPid::ExactlyOnce(i) => {
                let i = i.get();
                if let Some(inb) = self.b.inbound.get(&i) {
                    check!(
                        self,
                        inb.id == id,
                        "[MQTT-2.2.1-?] packet id {i} of #{} reused for #{id} before PUBCOMP",
                        inb.id
                    );
                } else {
                    check!(
                        self,
                        self.msgs[id].bdelivered == 0,
                        "QoS 2 message #{id} reached the broker's subscribers twice"
                    );
                    self.msgs[id].bdelivered = 1;
                    self.b.inbound.insert(
                        i,
                        Inbound {
                            id,
                            accepted: false,
                        },
                    );
                }
                self.b.pending.push(Pending::PubRec(i));
            }
        }
    }

    fn broker_puback(&mut self, r: PubResponse<'_>) {
        let p = r.packet_id.get();
        check!(
            self,
            r.reason_code == ReasonCode::Success,
            "client PUBACK {p} with reason {:?}",
            r.reason_code
        );
        match self.b.outbound.get(&p).copied() {
            Some(out) if out.qos == QoS::AtLeastOnce => {
                check!(
                    self,
                    self.bmsgs[out.id].delivered >= 1,
                    "client acknowledged b#{} before delivering it",
                    out.id
                );
                self.complete_out(p);
            }
            Some(out) => self.fail(format!("client PUBACK for {:?} message {p}", out.qos)),
            None => check!(
                self,
                self.b.sent_pids.get(&p) == Some(&QoS::AtLeastOnce),
                "client PUBACK {p}: no QoS 1 message with this id in the broker's session"
            ),
        }
    }

    fn broker_pubrec(&mut self, r: PubResponse<'_>) {
        let p = r.packet_id.get();
        check!(
            self,
            r.reason_code == ReasonCode::Success,
            "client PUBREC {p} with reason {:?}",
            r.reason_code
        );
        match self.b.outbound.get(&p).copied() {
            Some(out) if out.qos == QoS::ExactlyOnce => {
                check!(
                    self,
                    self.bmsgs[out.id].delivered >= 1,
                    "client acknowledged b#{} before delivering it",
                    out.id
                );
                if out.st == OutSt::AwaitAck {
                    self.b.outbound.get_mut(&p).expect("present").st = OutSt::RecReceived;
                }
            }
            Some(out) => self.fail(format!("client PUBREC for {:?} message {p}", out.qos)),
            None => check!(
                self,
                self.b.sent_pids.get(&p) == Some(&QoS::ExactlyOnce),
                "client PUBREC {p}: no QoS 2 message with this id in the broker's session"
            ),
        }
    }

    fn broker_pubcomp(&mut self, r: PubResponse<'_>) {
        let p = r.packet_id.get();
        match self.b.outbound.get(&p).copied() {
            Some(out) if out.st == OutSt::RelSent => self.complete_out(p),
            Some(out) => self.fail(format!("client PUBCOMP {p} before PUBREL ({out:?})")),
            None => check!(
                self,
                self.b.rel_pids.contains(&p),
                "client PUBCOMP {p}: no PUBREL with this id in the broker's session"
            ),
        }
    }

    fn broker_pubrel_in(&mut self, r: PubResponse<'_>) {
        let p = r.packet_id.get();
        let reason = match self.b.inbound.get(&p).copied() {
            Some(inb) => {
                check!(
                    self,
                    inb.accepted,
                    "[MQTT-4.3.3-?] client PUBREL {p} before the broker sent PUBREC"
                );
                self.b.inbound.remove(&p);
                self.b.released.insert(p);
                self.msgs[inb.id].breleased = true;
                ReasonCode::Success
            }
            None => {
                check!(
                    self,
                    self.b.released.contains(&p),
                    "client PUBREL {p}: no QoS 2 message with this id in the broker's session"
                );
                if self.v.is_v5() {
                    ReasonCode::PacketIdentifierNotFound
                } else {
                    ReasonCode::Success
                }
            }
        };
        self.b.pending.push(Pending::PubComp(p, reason));
    }

    fn broker_ack(&mut self, pick: usize, dup: bool, fail: bool) {
        if !self.b.up || self.b.pending.is_empty() {
            return;
        }
        let fail = fail && self.v.is_v5();
        let answer = self.b.pending.remove(pick % self.b.pending.len());
        let failure = ReasonCode::UnspecifiedError;
        let packet = match answer {
            Pending::PubAck(p) => {
                let mut r = PubResponse::new(pid(p));
                if fail {
                    r.reason_code = failure;
                }
                Packet::PubAck(r)
            }
            Pending::PubRec(p) => {
                let mut r = PubResponse::new(pid(p));
                match self.b.inbound.get(&p).copied() {
                    Some(inb) if fail && !inb.accepted => {
                        self.b.inbound.remove(&p);
                        self.msgs[inb.id].bdelivered -= 1;
                        r.reason_code = failure;
                    }
                    Some(_) => self.b.inbound.get_mut(&p).expect("present").accepted = true,
                    None => {}
                }
                Packet::PubRec(r)
            }
            Pending::PubComp(p, reason) => {
                let mut r = PubResponse::new(pid(p));
                r.reason_code = reason;
                Packet::PubComp(r)
            }
            Pending::SubAck(p, n) => {
                let codes = vec![ReasonCode::GrantedQoS2; n];
                let bytes = self.enc(Packet::SubAck(SubAck::new(pid(p), &codes)));
                self.push_answer(bytes, dup);
                return;
            }
            Pending::UnsubAck(p, n) => {
                let codes = if self.v.is_v5() {
                    vec![ReasonCode::Success; n]
                } else {
                    Vec::new()
                };
                let bytes = self.enc(Packet::UnsubAck(UnsubAck::new(pid(p), &codes)));
                self.push_answer(bytes, dup);
                return;
            }
        };
        let bytes = self.enc(packet);
        self.push_answer(bytes, dup);
    }

    fn push_answer(&mut self, bytes: Vec<u8>, dup: bool) {
        if dup {
            self.to_client.push_back(bytes.clone());
        }
        self.to_client.push_back(bytes);
    }

    fn send_bmsg(&mut self, id: usize, dup: bool) {
        let m = &self.bmsgs[id];
        let mut p = Publish::new(TopicName::new(&m.topic).expect("valid topic"), &m.payload);
        if let Some(i) = m.pid {
            p.qos_pid = QosPid::new(m.qos, pid(i));
        }
        p.dup = dup;
        let bytes = self.enc(Packet::Publish(p));
        self.to_client.push_back(bytes);
        if let Some(out) = m.pid.and_then(|i| self.b.outbound.get_mut(&i)) {
            out.copies += 1;
        }
    }

    /// A completed flow's packet id may be reused when no late duplicate can refer to it.
    fn complete_out(&mut self, p: u16) {
        let out = self.b.outbound.remove(&p).expect("present");
        self.bmsgs[out.id].acked = true;
        if out.copies == 1 && out.rel_copies <= 1 {
            self.b.sent_pids.remove(&p);
            self.b.rel_pids.remove(&p);
            self.b.free_pids.insert(p);
        }
    }

    fn send_pubrel(&mut self, p: u16, dup: bool) {
        let out = self.b.outbound.get_mut(&p).expect("present");
        out.st = OutSt::RelSent;
        out.rel_copies += 1 + u32::from(dup);
        self.b.rel_pids.insert(p);
        let bytes = self.enc(Packet::PubRel(PubResponse::new(pid(p))));
        self.push_answer(bytes, dup);
    }

    fn broker_publish(&mut self, qos: QoS, overrun: bool) {
        if !self.b.up {
            return;
        }
        if overrun && self.b.outbound.len() >= usize::from(self.setup.receive_maximum) {
            self.stats.overruns += 1;
        }
        if qos != QoS::AtMostOnce
            && !overrun
            && self.b.outbound.len() >= usize::from(self.setup.receive_maximum)
        {
            return;
        }
        let id = self.bmsgs.len();
        let p = (qos != QoS::AtMostOnce).then(|| {
            let p = self.b.free_pids.pop_first().unwrap_or_else(|| {
                self.b.next_pid += 1;
                self.b.next_pid - 1
            });
            self.b.outbound.insert(
                p,
                Out {
                    id,
                    qos,
                    st: OutSt::AwaitAck,
                    copies: 0,
                    rel_copies: 0,
                },
            );
            self.b.sent_pids.insert(p, qos);
            p
        });
        self.bmsgs.push(BMsg {
            qos,
            pid: p,
            topic: format!("s/{}", id % 2),
            payload: make_payload(b'b', id, id % 7),
            delivered: 0,
            acked: false,
            discarded: false,
        });
        self.send_bmsg(id, false);
    }

    fn broker_resend(&mut self, pick: usize) {
        if !self.b.up {
            return;
        }
        let candidates: Vec<usize> = self
            .b
            .outbound
            .values()
            .filter(|o| {
                o.st == OutSt::AwaitAck || (o.qos == QoS::ExactlyOnce && o.st == OutSt::RecReceived)
            })
            .map(|o| o.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        self.send_bmsg(candidates[pick % candidates.len()], true);
    }

    fn broker_pubrel(&mut self, pick: usize, dup: bool) {
        if !self.b.up {
            return;
        }
        let candidates: Vec<u16> = self
            .b
            .outbound
            .iter()
            .filter(|(_, o)| matches!(o.st, OutSt::RecReceived | OutSt::RelSent))
            .map(|(p, _)| *p)
            .collect();
        if candidates.is_empty() {
            return;
        }
        self.send_pubrel(candidates[pick % candidates.len()], dup);
    }

    // -----------------------------------------------------------------------------------------
    // Invariants and the end of a run
    // -----------------------------------------------------------------------------------------

    fn check_invariants(&mut self) {
        let (used, capacity) = self.s.store_usage();
        check!(
            self,
            used <= capacity,
            "store usage {used} exceeds capacity {capacity}"
        );
        let live = self.live_bytes();
        check!(
            self,
            used >= live,
            "store usage {used} is below the {live} bytes of records still needed: a queued \
             or unacknowledged packet was freed without an event"
        );
        check!(
            self,
            capacity == self.setup.log_bytes,
            "store capacity {capacity}, expected {}",
            self.setup.log_bytes
        );
        let inflight = self.client_inflight();
        check!(
            self,
            usize::from(self.s.inflight()) == inflight,
            "inflight() is {}, the model counts {inflight}",
            self.s.inflight()
        );
        check!(
            self,
            self.s.incoming_inflight() == self.client_in.len()
                && self.client_in.len() <= self.incoming_table(),
            "incoming_inflight() is {}, the model counts {}",
            self.s.incoming_inflight(),
            self.client_in.len()
        );
        let state = match self.phase {
            Phase::Down => ConnectionState::Disconnected,
            Phase::Connecting => ConnectionState::Connecting,
            Phase::Up => ConnectionState::Connected,
        };
        check!(
            self,
            self.s.state() == state,
            "session state {:?}, model phase {:?}",
            self.s.state(),
            self.phase
        );
    }

    fn quiescent(&self) -> bool {
        let resolved = self.msgs.iter().all(|m| {
            matches!(
                m.st,
                St::Sent0 | St::Published(_) | St::Abandoned | St::Dropped
            )
        });
        self.phase == Phase::Up
            && self.to_broker.is_empty()
            && self.to_client.is_empty()
            && self.rx_pending.is_empty()
            && self.b.pending.is_empty()
            && self.b.outbound.is_empty()
            && self.client_in.is_empty()
            && self.app_q1.is_empty()
            && self.expected_acks.is_empty()
            && resolved
            && self.reqs.iter().all(|r| r.done)
            && self.s.store_usage().0 == 0
    }

    /// A well-behaved broker on a steady connection answers everything until nothing is left.
    fn settle(&mut self) {
        for round in 0..300 {
            if self.quiescent() {
                return;
            }
            let before = self.noted;
            if self.phase == Phase::Down {
                self.connect(ConnParams {
                    clean_start: false,
                    ..self.params
                });
                self.drain();
            }
            self.broker_read(usize::MAX);
            while !self.b.pending.is_empty() {
                self.broker_ack(0, false, false);
            }
            let recs: Vec<u16> = self
                .b
                .outbound
                .iter()
                .filter(|(_, o)| o.st == OutSt::RecReceived)
                .map(|(p, _)| *p)
                .collect();
            for _ in recs {
                self.broker_pubrel(0, false);
            }
            self.client_read(usize::MAX, 0);
            self.drain();
            if self.setup.manual_acks {
                while !self.app_q1.is_empty() || self.client_in.values().any(|st| *st == InSt::App)
                {
                    self.app_ack(0);
                    self.drain();
                }
            }
            self.check_invariants();
            if self.noted == before {
                let left_with_broker = self
                    .b
                    .outbound
                    .values()
                    .any(|o| o.st == OutSt::AwaitAck && o.copies > 0);
                if left_with_broker && self.phase == Phase::Up {
                    // Messages the session could not track when the broker overran its
                    // Receive Maximum: the broker sends them again on the next connection.
                    self.note(format!("-- settle round {round}: reconnect for the rest"));
                    self.close_transport(0);
                    continue;
                }
                self.note(format!("-- settle round {round}: nothing moved"));
                break;
            }
        }
        let stuck: Vec<String> = self
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                !matches!(
                    m.st,
                    St::Sent0 | St::Published(_) | St::Abandoned | St::Dropped
                )
            })
            .map(|(i, m)| format!("#{i} {:?} pid {:?} {:?}", m.qos, m.pid, m.st))
            .collect();
        self.fail(format!(
            "a well-behaved broker cannot finish: unresolved messages {stuck:?}, requests {:?}, \
             store {:?}, inflight {}, broker outbound {:?}, pending {:?}",
            self.reqs.iter().filter(|r| !r.done).collect::<Vec<_>>(),
            self.s.store_usage(),
            self.s.inflight(),
            self.b.outbound,
            self.b.pending
        ));
    }

    fn final_checks(&mut self) {
        check!(
            self,
            self.s.inflight() == 0,
            "inflight() {} at rest",
            self.s.inflight()
        );
        for (i, m) in self.msgs.iter().enumerate() {
            match (m.qos, m.st) {
                (QoS::AtMostOnce, St::Sent0 | St::Dropped) => {}
                (QoS::AtLeastOnce, St::Published(r)) if !r.is_error() => check!(
                    self,
                    m.bdelivered >= 1,
                    "QoS 1 #{i} acknowledged but the broker never received it"
                ),
                (QoS::ExactlyOnce, St::Published(_)) if m.rec_failed => check!(
                    self,
                    m.bdelivered == 0,
                    "QoS 2 #{i} refused by PUBREC yet delivered"
                ),
                (QoS::ExactlyOnce, St::Published(_)) => check!(
                    self,
                    m.bdelivered == 1 && m.breleased,
                    "QoS 2 #{i} completed with {} deliveries, PUBREL received: {}",
                    m.bdelivered,
                    m.breleased
                ),
                (_, St::Published(_) | St::Abandoned | St::Dropped) => {}
                (qos, st) => self.fail(format!("#{i} ({qos:?}) ends in state {st:?}")),
            }
        }
        for (i, m) in self.bmsgs.iter().enumerate() {
            if m.qos != QoS::AtMostOnce && !m.discarded {
                check!(
                    self,
                    m.acked && m.delivered >= 1,
                    "broker message b#{i} ({:?}) acked {} delivered {}",
                    m.qos,
                    m.acked,
                    m.delivered
                );
            }
        }
    }
}
