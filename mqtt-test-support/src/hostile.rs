//! A hostile broker: a scripted TCP peer that accepts one client, reads its CONNECT and answers
//! with bytes no real broker should send, recording what the client does about it.
//!
//! [`HostileBroker::start`] binds `127.0.0.1:0` and serves a [`Script`]: after the client's
//! CONNECT, each [`Step`] is written in order (a valid CONNACK, then a malformed packet, a flood,
//! ...). Meanwhile everything the client sends is parsed into packets and kept in a
//! [`Transcript`]: the DISCONNECT reason code a 5.0 client reports, and when the client closed
//! the connection. After the script the broker keeps the connection open and silent, so a
//! client that is not closing by itself is caught by the test's timeout.
//!
//! [`cases`] is the catalogue of misbehaviours every client is tested against, each with the
//! [`ProtocolError`] the client must end with and the 5.0 reason code of its DISCONNECT;
//! [`Case::verify`] checks a client's outcome against it. A client's test is then a loop over
//! the cases that runs the client against [`HostileBroker::start`]`(case.script(...))`.
//!
//! ```no_run
//! use mqtt_sansio::ProtocolVersion;
//! use mqtt_test_support::hostile::{cases, ClientLimits, HostileBroker};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let limits = ClientLimits { receive_maximum: 20, maximum_packet_size: 1024 };
//! for case in cases(ProtocolVersion::V5) {
//!     let broker = HostileBroker::start(case.script(&limits)).await?;
//!     // ... run the client against broker.addr() until it reports an error ...
//!     let transcript = broker.wait_closed(std::time::Duration::from_secs(5)).await;
//!     # let _ = transcript;
//! }
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mqtt_sansio::session::ProtocolError;
use mqtt_sansio::{DecodeError, PacketType, ProtocolVersion, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the broker waits for the client's CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest CONNECT accepted (a client's CONNECT is small; this bounds a confused peer).
const MAX_CONNECT: usize = 64 * 1024;
/// Packets of the client kept in full in the transcript; later ones are only counted.
const KEPT_PACKETS: usize = 1_000;
/// Largest write of a repeated step.
const CHUNK: usize = 64 * 1024;
/// Poll interval of [`HostileBroker::wait_closed`].
const POLL: Duration = Duration::from_millis(5);

/// What the hostile broker writes after the client's CONNECT, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Script {
    /// An empty script: the broker reads CONNECT and stays silent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends writing `bytes`.
    #[must_use]
    pub fn send(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.steps.push(Step::Send(bytes.into()));
        self
    }

    /// Appends writing `bytes` `times` times, as fast as the client reads.
    #[must_use]
    pub fn repeat(mut self, bytes: impl Into<Vec<u8>>, times: usize) -> Self {
        self.steps.push(Step::Repeat {
            bytes: bytes.into(),
            times,
        });
        self
    }

    /// Appends a pause.
    #[must_use]
    pub fn pause(mut self, duration: Duration) -> Self {
        self.steps.push(Step::Pause(duration));
        self
    }
}

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write `bytes` `times` times (gathered into writes of up to 64 KiB).
    Repeat {
        /// One repetition.
        bytes: Vec<u8>,
        /// How many.
        times: usize,
    },
    /// Wait.
    Pause(Duration),
}

/// What the client sent in its CONNECT, as far as the scripts care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectInfo {
    /// Protocol level: 4 for 3.1.1, 5 for 5.0.
    pub level: u8,
    /// Keep alive in seconds.
    pub keep_alive: u16,
    /// Clean session / clean start flag.
    pub clean_start: bool,
    /// 5.0 Receive Maximum property.
    pub receive_maximum: Option<u16>,
    /// 5.0 Maximum Packet Size property.
    pub maximum_packet_size: Option<u32>,
    /// 5.0 Topic Alias Maximum property.
    pub topic_alias_maximum: Option<u16>,
}

/// A packet the client sent after its CONNECT: type, flags and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPacket {
    /// Packet type (high nibble of the first byte).
    pub packet_type: u8,
    /// Flags (low nibble).
    pub flags: u8,
    /// Everything after the fixed header.
    pub body: Vec<u8>,
}

/// What happened on the hostile broker's first connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transcript {
    /// The client's CONNECT, once read.
    pub connect: Option<ConnectInfo>,
    /// The first 1,000 packets the client sent after CONNECT.
    pub packets: Vec<RawPacket>,
    /// Packets the client sent after CONNECT, by type (index = packet type).
    pub counts: [u64; 16],
    /// Bytes the client sent that do not parse as packets (should stay 0).
    pub garbage: u64,
    /// Bytes of the script written to the client.
    pub bytes_written: u64,
    /// Every step of the script was written.
    pub script_done: bool,
    /// A write failed: the client had closed (or reset) the connection.
    pub write_failed: bool,
    /// When the client closed the connection (EOF or reset), from the end of its CONNECT.
    pub closed_after: Option<Duration>,
    /// Connections accepted, the first included (a reconnecting client makes more; they are
    /// closed at once).
    pub connections: u32,
}

impl Transcript {
    /// The reason code of the first DISCONNECT the client sent (0x00 when it carries none).
    pub fn disconnect_reason(&self) -> Option<u8> {
        self.packets
            .iter()
            .find(|p| p.packet_type == 14)
            .map(|p| p.body.first().copied().unwrap_or(0))
    }

    /// How many packets of `packet_type` the client sent after CONNECT.
    pub fn count(&self, packet_type: PacketType) -> u64 {
        self.counts[usize::from(packet_type as u8 & 0x0f)]
    }
}

/// A scripted peer on `127.0.0.1:<free port>`. Serves the script on the first connection;
/// later connections are counted and closed. Dropping it closes everything.
#[derive(Debug)]
pub struct HostileBroker {
    addr: SocketAddr,
    transcript: Arc<Mutex<Transcript>>,
    task: JoinHandle<()>,
}

impl HostileBroker {
    /// Binds `127.0.0.1:0` and waits for a client in the background.
    ///
    /// # Errors
    /// Outside a tokio runtime, or when binding fails.
    pub async fn start(script: Script) -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let transcript = Arc::new(Mutex::new(Transcript::default()));
        let task = tokio::spawn(serve(listener, script, Arc::clone(&transcript)));
        Ok(Self {
            addr,
            transcript,
            task,
        })
    }

    /// The address the client connects to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the transcript.
    pub fn transcript(&self) -> Transcript {
        lock(&self.transcript).clone()
    }

    /// Waits until the client has closed the first connection, at most `timeout`; returns the
    /// transcript either way (check [`Transcript::closed_after`]).
    pub async fn wait_closed(&self, timeout: Duration) -> Transcript {
        let deadline = Instant::now() + timeout;
        loop {
            let transcript = self.transcript();
            if transcript.closed_after.is_some() || Instant::now() >= deadline {
                return transcript;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for HostileBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(t: &Mutex<Transcript>) -> MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(listener: TcpListener, script: Script, transcript: Arc<Mutex<Transcript>>) {
    let Ok((stream, _)) = listener.accept().await else {
        return;
    };
    lock(&transcript).connections = 1;
    // Later connections (a client reconnecting) are counted and closed.
    let extra = {
        let transcript = Arc::clone(&transcript);
        tokio::spawn(async move {
            // Bounded by the broker's life: the task is aborted with it.
            while let Ok((s, _)) = listener.accept().await {
                lock(&transcript).connections += 1;
                drop(s);
            }
        })
    };
    let _ = stream.set_nodelay(true);
    let (mut rx, tx) = stream.into_split();
    let mut pending = Vec::new();
    let connect = tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut rx, &mut pending)).await;
    let Ok(Ok(connect)) = connect else {
        extra.abort();
        return;
    };
    lock(&transcript).connect = Some(connect);
    let start = Instant::now();
    let reader = tokio::spawn(record(rx, pending, Arc::clone(&transcript), start));
    play(tx, &script, &transcript, &reader).await;
    extra.abort();
}

/// Writes the script, then holds the write half open until the client closes.
async fn play(
    mut tx: OwnedWriteHalf,
    script: &Script,
    transcript: &Mutex<Transcript>,
    reader: &JoinHandle<()>,
) {
    for step in &script.steps {
        let written = match step {
            Step::Send(bytes) => write(&mut tx, bytes, transcript).await,
            Step::Repeat { bytes, times } => repeat(&mut tx, bytes, *times, transcript).await,
            Step::Pause(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
        };
        if written.is_err() {
            lock(transcript).write_failed = true;
            break;
        }
    }
    let failed = lock(transcript).write_failed;
    if !failed {
        lock(transcript).script_done = true;
    }
    // Keep the connection open (silent) until the client closes it or we are dropped.
    while !reader.is_finished() {
        tokio::time::sleep(POLL).await;
    }
}

async fn write(tx: &mut OwnedWriteHalf, bytes: &[u8], t: &Mutex<Transcript>) -> io::Result<()> {
    tx.write_all(bytes).await?;
    lock(t).bytes_written += bytes.len() as u64;
    Ok(())
}

async fn repeat(
    tx: &mut OwnedWriteHalf,
    bytes: &[u8],
    times: usize,
    t: &Mutex<Transcript>,
) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let per_chunk = (CHUNK / bytes.len()).max(1);
    let chunk: Vec<u8> = bytes.repeat(per_chunk.min(times));
    let mut left = times;
    // Each pass writes at least one repetition.
    while left > 0 {
        let n = per_chunk.min(left);
        write(tx, &chunk[..n * bytes.len()], t).await?;
        left -= n;
    }
    Ok(())
}

/// Records the client's packets until it closes the connection.
async fn record(
    mut rx: OwnedReadHalf,
    mut buf: Vec<u8>,
    transcript: Arc<Mutex<Transcript>>,
    start: Instant,
) {
    let mut chunk = vec![0u8; 16 * 1024];
    // Each pass reads at least one byte, or ends with the connection.
    loop {
        while let Some((packet, len)) = split_packet(&buf) {
            let mut t = lock(&transcript);
            t.counts[usize::from(packet.packet_type)] += 1;
            if t.packets.len() < KEPT_PACKETS {
                t.packets.push(packet);
            }
            drop(t);
            buf.drain(..len);
        }
        if buf.len() > MAX_CONNECT {
            lock(&transcript).garbage += buf.len() as u64;
            buf.clear();
        }
        match rx.read(&mut chunk).await {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let mut t = lock(&transcript);
    t.garbage += buf.len() as u64;
    t.closed_after = Some(start.elapsed());
}

/// Reads the CONNECT (the first packet) and leaves what follows it in `rest`.
async fn read_connect(rx: &mut OwnedReadHalf, rest: &mut Vec<u8>) -> io::Result<ConnectInfo> {
    let mut chunk = [0u8; 4096];
    // Each pass reads at least one byte or fails.
    loop {
        if let Some((packet, len)) = split_packet(rest) {
            rest.drain(..len);
            if packet.packet_type != 1 {
                return Err(io::Error::other("the first packet is not CONNECT"));
            }
            return parse_connect(&packet.body).ok_or_else(|| io::Error::other("bad CONNECT"));
        }
        if rest.len() > MAX_CONNECT {
            return Err(io::Error::other("CONNECT too large"));
        }
        let n = rx.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        rest.extend_from_slice(&chunk[..n]);
    }
}

/// Splits one whole packet off the front of `buf`: the packet and its length.
fn split_packet(buf: &[u8]) -> Option<(RawPacket, usize)> {
    let first = *buf.first()?;
    let (remaining, header) = read_varint(&buf[1..])?;
    let start = 1 + header;
    let end = start.checked_add(remaining)?;
    let body = buf.get(start..end)?;
    Some((
        RawPacket {
            packet_type: first >> 4,
            flags: first & 0x0f,
            body: body.to_vec(),
        },
        end,
    ))
}

/// A variable byte integer: its value and length (`None` if incomplete or over 4 bytes).
fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (i, b) in bytes.iter().take(4).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The fields of a CONNECT body the scripts use.
fn parse_connect(body: &[u8]) -> Option<ConnectInfo> {
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let mut at = 2 + name_len;
    let level = *body.get(at)?;
    let flags = *body.get(at + 1)?;
    let keep_alive = u16::from_be_bytes([*body.get(at + 2)?, *body.get(at + 3)?]);
    at += 4;
    let mut info = ConnectInfo {
        level,
        keep_alive,
        clean_start: flags & 0b10 != 0,
        ..ConnectInfo::default()
    };
    if level == 5 {
        let (props_len, n) = read_varint(body.get(at..)?)?;
        at += n;
        let props = body.get(at..at + props_len)?;
        parse_connect_properties(props, &mut info)?;
    }
    Some(info)
}

fn parse_connect_properties(mut props: &[u8], info: &mut ConnectInfo) -> Option<()> {
    let u16_at = |p: &[u8]| Some(u16::from_be_bytes([*p.get(1)?, *p.get(2)?]));
    // Each pass consumes one property.
    while let Some(&id) = props.first() {
        let len = match id {
            0x11 | 0x27 => 5,
            0x21 | 0x22 => 3,
            0x17 | 0x19 => 2,
            // Authentication method/data, user properties: stop; the scripts need none.
            _ => return Some(()),
        };
        match id {
            0x21 => info.receive_maximum = u16_at(props),
            0x22 => info.topic_alias_maximum = u16_at(props),
            0x27 => {
                let b = props.get(1..5)?;
                info.maximum_packet_size = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            }
            _ => {}
        }
        props = props.get(len..)?;
    }
    Some(())
}

// --- Packet bytes -----------------------------------------------------------------------------

/// A packet with first byte `first` and `body`, with a correct remaining length.
pub fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    // At most four bytes for any body this module builds.
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A successful CONNACK (no session present; on 5.0 without properties).
pub fn connack(version: ProtocolVersion) -> Vec<u8> {
    if version.is_v5() {
        packet(0x20, &[0x00, 0x00, 0x00])
    } else {
        packet(0x20, &[0x00, 0x00])
    }
}

/// PINGRESP.
pub fn pingresp() -> Vec<u8> {
    vec![0xd0, 0x00]
}

/// A PUBLISH with raw topic bytes, QoS, packet id (for QoS 1/2), raw 5.0 properties (ignored
/// on 3.1.1) and payload.
pub fn publish(
    version: ProtocolVersion,
    topic: &[u8],
    qos: u8,
    packet_id: u16,
    properties: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(topic.len() + payload.len() + properties.len() + 8);
    body.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    body.extend_from_slice(topic);
    if qos > 0 {
        body.extend_from_slice(&packet_id.to_be_bytes());
    }
    if version.is_v5() {
        body.push(properties.len() as u8);
        body.extend_from_slice(properties);
    }
    body.extend_from_slice(payload);
    packet(0x30 | (qos << 1), &body)
}

// --- The catalogue of cases -----------------------------------------------------------------

/// The limits the client under test announces or enforces, which some scripts depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// The client's Receive Maximum (incoming unacknowledged QoS 2 messages it allows).
    pub receive_maximum: u16,
    /// The largest packet the client accepts.
    pub maximum_packet_size: u32,
}

/// Which error the client must end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A decode error of this kind (compared by variant).
    Decode(DecodeError),
    /// [`ProtocolError::UnexpectedPacket`].
    UnexpectedPacket,
    /// [`ProtocolError::TopicAliasInvalid`].
    TopicAliasInvalid,
}

impl Expected {
    /// Whether `error` is the expected one.
    pub fn matches(&self, error: &ProtocolError) -> bool {
        use core::mem::discriminant;
        match (self, error) {
            (Self::Decode(want), ProtocolError::Decode(got)) => {
                discriminant(want) == discriminant(got)
            }
            (Self::UnexpectedPacket, ProtocolError::UnexpectedPacket(_)) => true,
            (Self::TopicAliasInvalid, ProtocolError::TopicAliasInvalid) => true,
            _ => false,
        }
    }
}

/// How a script is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    VarIntTooLong,
    ConnAckTooLong,
    ConnAckTooShort,
    InvalidUtf8Topic,
    WildcardTopic,
    Huge,
    ZeroPacketId,
    Reserved0,
    Reserved15,
    AuthWithoutMethod,
    RepeatedProperty,
    RepeatedConnAckProperty,
    UnknownTopicAlias,
    PingRespFlood,
    PublishFlood,
}

/// One misbehaviour, for one protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    /// Short name, for messages.
    pub name: &'static str,
    /// The protocol version the client speaks.
    pub version: ProtocolVersion,
    /// The error the client must end with.
    pub expected: Expected,
    /// The reason code of the DISCONNECT a 5.0 client must send (a 3.1.1 client sends no
    /// DISCONNECT); also what [`ProtocolError::reason_code`] must say.
    pub reason: ReasonCode,
    kind: Kind,
}

/// Packets in the flood cases.
pub const FLOOD: usize = 100_000;
/// Bytes the 256 MiB case sends after its fixed header (the client must not wait for more).
pub const HUGE_SENT: usize = 16;

/// Every case for `version`.
pub fn cases(version: ProtocolVersion) -> Vec<Case> {
    use DecodeError as D;
    use Kind as K;
    use ReasonCode as R;
    let topic_err = D::InvalidTopicName(mqtt_sansio::TopicError::Wildcard);
    let mut all = vec![
        (
            "5-byte remaining length",
            K::VarIntTooLong,
            Expected::Decode(D::VarIntTooLong),
            R::MalformedPacket,
        ),
        (
            "CONNACK too long",
            K::ConnAckTooLong,
            Expected::Decode(D::LengthMismatch),
            R::MalformedPacket,
        ),
        (
            "CONNACK too short",
            K::ConnAckTooShort,
            Expected::Decode(D::LengthMismatch),
            R::MalformedPacket,
        ),
        (
            "PUBLISH topic invalid UTF-8",
            K::InvalidUtf8Topic,
            Expected::Decode(D::InvalidUtf8),
            R::MalformedPacket,
        ),
        (
            "PUBLISH wildcard topic",
            K::WildcardTopic,
            Expected::Decode(topic_err),
            R::TopicNameInvalid,
        ),
        (
            "remaining length 256 MiB",
            K::Huge,
            Expected::Decode(D::PacketTooLarge { size: 0, max: 0 }),
            R::PacketTooLarge,
        ),
        (
            "QoS 1 PUBLISH with packet id 0",
            K::ZeroPacketId,
            Expected::Decode(D::ZeroPacketId),
            R::ProtocolError,
        ),
        (
            "packet type 0",
            K::Reserved0,
            Expected::Decode(D::ReservedPacketType(0)),
            R::MalformedPacket,
        ),
        (
            "100k PINGRESPs, then a malformed packet",
            K::PingRespFlood,
            Expected::Decode(D::VarIntTooLong),
            R::MalformedPacket,
        ),
        (
            "100k QoS 0 PUBLISHes, then a malformed packet",
            K::PublishFlood,
            Expected::Decode(D::VarIntTooLong),
            R::MalformedPacket,
        ),
    ];
    if version.is_v5() {
        all.extend([
            (
                "AUTH without authentication method",
                K::AuthWithoutMethod,
                Expected::UnexpectedPacket,
                R::ProtocolError,
            ),
            (
                "PUBLISH with a repeated property",
                K::RepeatedProperty,
                Expected::Decode(D::DuplicateProperty(0)),
                R::ProtocolError,
            ),
            (
                "CONNACK with a repeated property",
                K::RepeatedConnAckProperty,
                Expected::Decode(D::DuplicateProperty(0)),
                R::ProtocolError,
            ),
            (
                "unknown topic alias",
                K::UnknownTopicAlias,
                Expected::TopicAliasInvalid,
                R::TopicAliasInvalid,
            ),
        ]);
    } else {
        // Reserved in 3.1.1, AUTH in 5.0: a packet a 3.1.1 client never receives, refused
        // from its first byte as a protocol error.
        all.push((
            "packet type 15",
            K::Reserved15,
            Expected::UnexpectedPacket,
            R::ProtocolError,
        ));
    }
    all.into_iter()
        .map(|(name, kind, expected, reason)| Case {
            name,
            version,
            expected,
            reason,
            kind,
        })
        .collect()
}

/// What a client under test did against a case, as its test observed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The protocol error the client reported, for a client whose error type carries
    /// `mqtt-sansio`'s [`ProtocolError`] (checked against [`Case::expected`]).
    pub error: Option<ProtocolError>,
    /// The reason code of the protocol error the client reported (for a client whose error
    /// carries only that; derived from `error` when it is set).
    pub reason: Option<ReasonCode>,
    /// Messages the client delivered to the application.
    pub deliveries: u64,
    /// From the first event to the error.
    pub elapsed: Duration,
}

impl Outcome {
    /// No error seen yet, nothing delivered.
    pub fn new() -> Self {
        Self {
            error: None,
            reason: None,
            deliveries: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// The reason code reported: `reason`, or that of `error`.
    pub fn reason_code(&self) -> Option<ReasonCode> {
        self.reason.or(self.error.map(|e| e.reason_code()))
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

impl Case {
    /// Messages the client must deliver to the application before the error: the flood's,
    /// or the QoS 2 messages within its receive maximum.
    pub fn deliveries(&self, _limits: &ClientLimits) -> u64 {
        match self.kind {
            Kind::PublishFlood => FLOOD as u64,
            _ => 0,
        }
    }

    /// The bytes the hostile broker writes for this case.
    pub fn script(&self, _limits: &ClientLimits) -> Script {
        let v = self.version;
        let ok = connack(v);
        let malformed = vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
        let s = Script::new();
        match self.kind {
            Kind::VarIntTooLong => s.send(ok).send(malformed),
            Kind::ConnAckTooLong if v.is_v5() => s.send(packet(0x20, &[0, 0, 0, 0])),
            Kind::ConnAckTooLong => s.send(packet(0x20, &[0, 0, 0])),
            Kind::ConnAckTooShort if v.is_v5() => s.send(packet(0x20, &[0, 0, 5, 0x21])),
            Kind::ConnAckTooShort => s.send(packet(0x20, &[0])),
            Kind::InvalidUtf8Topic => {
                s.send(ok)
                    .send(publish(v, &[b'a', 0xc3, 0x28], 0, 0, &[], b"x"))
            }
            Kind::WildcardTopic => s.send(ok).send(publish(v, b"a/+/b", 0, 0, &[], b"x")),
            Kind::Huge => {
                // A SUBACK of 268,435,455 bytes announced; only a few follow. (A PUBLISH that
                // large is skipped rather than refused: see the poison-message tests.)
                let mut bytes = vec![0x90, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, b't'];
                bytes.resize(5 + HUGE_SENT, b'x');
                s.send(ok).send(bytes)
            }
            Kind::ZeroPacketId => s.send(ok).send(publish(v, b"t", 1, 0, &[], b"x")),
            Kind::Reserved0 => s.send(ok).send(vec![0x00, 0x00]),
            Kind::Reserved15 | Kind::AuthWithoutMethod => s.send(ok).send(vec![0xf0, 0x00]),
            // Message Expiry Interval twice.
            Kind::RepeatedProperty => {
                let props = [0x02, 0, 0, 0, 9, 0x02, 0, 0, 0, 9];
                s.send(ok).send(publish(v, b"t", 0, 0, &props, b"x"))
            }
            // Receive Maximum twice.
            Kind::RepeatedConnAckProperty => {
                s.send(packet(0x20, &[0, 0, 6, 0x21, 0, 10, 0x21, 0, 10]))
            }
            // Alias 1 (never set), empty topic.
            Kind::UnknownTopicAlias => s.send(ok).send(publish(v, b"", 0, 0, &[0x23, 0, 1], b"x")),
            Kind::PingRespFlood => s.send(ok).repeat(pingresp(), FLOOD).send(malformed),
            Kind::PublishFlood => s
                .send(ok)
                .repeat(publish(v, b"f", 0, 0, &[], b"x"), FLOOD)
                .send(malformed),
        }
    }

    /// Checks what the client did: the expected error (and its reason code), a DISCONNECT with
    /// that reason code on 5.0 and none on 3.1.1, the connection closed by the client, and the
    /// expected deliveries.
    ///
    /// # Errors
    /// A description of every expectation that failed.
    pub fn verify(
        &self,
        limits: &ClientLimits,
        outcome: &Outcome,
        transcript: &Transcript,
    ) -> Result<(), String> {
        let mut failures = Vec::new();
        if let Some(e) = &outcome.error {
            if !self.expected.matches(e) {
                failures.push(format!("error {e:?}, expected {:?}", self.expected));
            }
        }
        if outcome.reason_code() != Some(self.reason) {
            failures.push(format!(
                "error {:?} (reason {:?}), expected reason {:?}",
                outcome.error,
                outcome.reason_code(),
                self.reason
            ));
        }
        let disconnect = transcript.disconnect_reason();
        if self.version.is_v5() {
            if disconnect != Some(self.reason as u8) {
                failures.push(format!(
                    "DISCONNECT reason {disconnect:02x?}, expected {:#04x}",
                    self.reason as u8
                ));
            }
        } else if disconnect.is_some() {
            failures.push("a 3.1.1 client sent DISCONNECT after a protocol error".into());
        }
        if transcript.closed_after.is_none() {
            failures.push("the client did not close the connection".into());
        }
        if outcome.deliveries != self.deliveries(limits) {
            failures.push(format!(
                "{} messages delivered, expected {}",
                outcome.deliveries,
                self.deliveries(limits)
            ));
        }
        if transcript.garbage > 0 {
            failures.push(format!(
                "{} unparsable bytes from the client",
                transcript.garbage
            ));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{:?} {}: {}",
                self.version,
                self.name,
                failures.join("; ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_have_the_right_remaining_length() {
        assert_eq!(packet(0xd0, &[]), [0xd0, 0x00]);
        let big = packet(0x30, &[0; 200]);
        assert_eq!(&big[..3], &[0x30, 0xc8, 0x01]);
        assert_eq!(
            split_packet(&big).map(|(p, n)| (p.body.len(), n)),
            Some((200, 203))
        );
        assert_eq!(
            read_varint(&[0xff, 0xff, 0xff, 0x7f]),
            Some((268_435_455, 4))
        );
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    #[test]
    fn connect_fields_are_parsed() {
        // 5.0 CONNECT, keep alive 60, clean start, Receive Maximum 20, Maximum Packet Size 1024.
        let body = [
            0, 4, b'M', b'Q', b'T', b'T', 5, 0b10, 0, 60, 8, 0x21, 0, 20, 0x27, 0, 0, 4, 0, 0, 1,
            b'c',
        ];
        let info = parse_connect(&body).unwrap();
        assert_eq!(info.level, 5);
        assert_eq!(info.keep_alive, 60);
        assert!(info.clean_start);
        assert_eq!(info.receive_maximum, Some(20));
        assert_eq!(info.maximum_packet_size, Some(1024));
    }

    #[test]
    fn every_script_decodes_to_the_expected_error_with_mqtt_sansio() {
        use mqtt_sansio::{Decoded, Packet};
        let limits = ClientLimits {
            receive_maximum: 3,
            maximum_packet_size: 1024,
        };
        for v in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            for case in cases(v) {
                let Expected::Decode(want) = case.expected else {
                    continue;
                };
                let bytes: Vec<u8> = case
                    .script(&limits)
                    .steps
                    .iter()
                    .flat_map(|s| match s {
                        Step::Send(b) => b.clone(),
                        Step::Repeat { bytes, times } => bytes.repeat((*times).min(3)),
                        Step::Pause(_) => Vec::new(),
                    })
                    .collect();
                let mut at = 0;
                let error = loop {
                    match Packet::decode(&bytes[at..], v, limits.maximum_packet_size) {
                        Ok(Decoded::Packet { len, .. }) => at += len,
                        Ok(Decoded::Incomplete { .. }) => panic!("{}: incomplete", case.name),
                        Err(e) => break e,
                    }
                };
                assert_eq!(
                    core::mem::discriminant(&error),
                    core::mem::discriminant(&want),
                    "{v:?} {}: {error:?}",
                    case.name
                );
                assert_eq!(error.reason_code(), case.reason, "{v:?} {}", case.name);
            }
        }
    }
}
