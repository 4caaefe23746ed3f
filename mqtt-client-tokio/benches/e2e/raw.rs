//! The floor: a hand-written MQTT client over a tokio `TcpStream`, no library. PUBLISH
//! packets are encoded once and only their packet identifier is patched; acknowledgements
//! are parsed just enough (type, packet identifier) to keep the same in-flight window as the
//! clients (`INFLIGHT`). QoS 0 messages are written 64 to a write (the clients' request
//! queue), QoS 1/2 messages as the window opens. What the clients add on top (sessions,
//! futures, queues, resend state) is what their figures show above this one.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::child::{cpu_us, say, wait_for_go};
use super::{INFLIGHT, PAYLOAD, REQUESTS};

/// A connection and its input: bytes from `start` on are not parsed yet.
pub(crate) struct Raw {
    stream: TcpStream,
    input: Vec<u8>,
    start: usize,
    v5: bool,
}

/// What the benchmark needs of a received packet, parsed without copying.
#[derive(Debug, Clone, Copy)]
struct Packet {
    first: u8,
    /// The packet identifier (acknowledgements; PUBLISH at QoS 1/2), else 0.
    id: u16,
    /// CONNACK's return code, SUBACK's (first) return code, else 0.
    code: u8,
}

impl Packet {
    fn kind(&self) -> u8 {
        self.first >> 4
    }

    fn qos(&self) -> u8 {
        (self.first >> 1) & 3
    }

    fn new(first: u8, body: &[u8]) -> Self {
        let u16_at = |i: usize| u16::from_be_bytes([body[i], body[i + 1]]);
        let (id, code) = match first >> 4 {
            CONNACK => (0, body[1]),
            PUBLISH if (first >> 1) & 3 > 0 => (u16_at(2 + usize::from(u16_at(0))), 0),
            PUBLISH => (0, 0),
            // 5.0: after the property length, which is 0 from mosquitto (one filter).
            SUBACK => (u16_at(0), body[if body.len() > 3 { 3 } else { 2 }]),
            _ => (u16_at(0), 0),
        };
        Self { first, id, code }
    }
}

const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const PUBREC: u8 = 5;
const PUBREL: u8 = 6;
const PUBCOMP: u8 = 7;
const SUBACK: u8 = 9;

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// A PUBLISH and the offset of its packet identifier (0 at QoS 0).
fn publish(topic: &str, qos: u8, v5: bool, payload: &[u8]) -> (Vec<u8>, usize) {
    let mut body = Vec::new();
    string(topic, &mut body);
    let id_at = body.len();
    if qos > 0 {
        body.extend_from_slice(&[0, 1]);
    }
    if v5 {
        body.push(0);
    }
    body.extend_from_slice(payload);
    let out = packet(0x30 | (qos << 1), &body);
    let header = out.len() - body.len();
    (out, if qos > 0 { header + id_at } else { 0 })
}

fn ack(kind: u8, id: u16) -> [u8; 4] {
    let first = if kind == PUBREL { 0x62 } else { kind << 4 };
    let id = id.to_be_bytes();
    [first, 2, id[0], id[1]]
}

/// The identifier of the `seq`-th message (1 ..= 65535, cycling).
fn id_of(seq: usize) -> u16 {
    (seq % 65_535) as u16 + 1
}

impl Raw {
    /// TCP connect (Nagle off, as the clients), CONNECT, CONNACK.
    pub(crate) async fn connect(port: u16, v5: bool, id: &str) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut body = Vec::new();
        string("MQTT", &mut body);
        body.extend_from_slice(&[if v5 { 5 } else { 4 }, 0x02, 0, 60]);
        if v5 {
            body.push(0);
        }
        string(id, &mut body);
        let mut raw = Self {
            stream,
            input: Vec::new(),
            start: 0,
            v5,
        };
        raw.stream.write_all(&packet(0x10, &body)).await.unwrap();
        let connack = raw.next().await;
        assert_eq!(connack.kind(), CONNACK);
        assert_eq!(connack.code, 0, "connection accepted");
        // Idle: no read buffer held (the floor of the idle-memory row).
        raw.input = Vec::new();
        raw.start = 0;
        raw
    }

    async fn subscribe(&mut self, filter: &str, qos: u8) {
        let mut body = vec![0, 1];
        if self.v5 {
            body.push(0);
        }
        string(filter, &mut body);
        body.push(qos);
        self.stream.write_all(&packet(0x82, &body)).await.unwrap();
        let suback = self.next().await;
        assert_eq!(suback.kind(), SUBACK);
        assert!(suback.code < 0x80, "subscription refused");
    }

    /// The next packet, reading as needed.
    async fn next(&mut self) -> Packet {
        loop {
            if let Some(p) = self.parse() {
                return p;
            }
            // Keep only the unparsed tail (part of a packet) before reading more.
            self.input.drain(..self.start);
            self.start = 0;
            self.input.reserve(16 * 1024);
            let n = self.stream.read_buf(&mut self.input).await.unwrap();
            assert!(n > 0, "broker closed the connection");
        }
    }

    /// A whole packet from the input, if there is one.
    fn parse(&mut self) -> Option<Packet> {
        let input = &self.input[self.start..];
        let mut len = 0usize;
        let mut at = 1;
        loop {
            let byte = *input.get(at)?;
            len |= usize::from(byte & 0x7f) << (7 * (at - 1));
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let body = input.get(at..at + len)?;
        let packet = Packet::new(input[0], body);
        self.start += at + len;
        if self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        }
        Some(packet)
    }

    /// Answers a packet as a receiver does (PUBACK / PUBREC / PUBCOMP) into `out`; true for
    /// a PUBLISH.
    fn answer(p: &Packet, out: &mut Vec<u8>) -> bool {
        match (p.kind(), p.qos()) {
            (PUBLISH, 1) => out.extend_from_slice(&ack(PUBACK, p.id)),
            (PUBLISH, 2) => out.extend_from_slice(&ack(PUBREC, p.id)),
            (PUBREL, _) => out.extend_from_slice(&ack(PUBCOMP, p.id)),
            _ => {}
        }
        p.kind() == PUBLISH
    }
}

/// Publishes `n` messages: QoS 0 64 to a write, QoS 1/2 within the in-flight window.
pub(crate) async fn publish_n(v5: bool, qos: u8, n: usize, port: u16, topic: &str) {
    let mut raw = Raw::connect(port, v5, "bench-pub-raw").await;
    let (template, id_at) = publish(topic, qos, v5, &[0x5a; PAYLOAD]);
    say("ready");
    wait_for_go();
    let cpu0 = cpu_us();
    let mut out = Vec::with_capacity(template.len() * REQUESTS);
    if qos == 0 {
        let mut sent = 0;
        while sent < n {
            out.clear();
            for _ in 0..REQUESTS.min(n - sent) {
                out.extend_from_slice(&template);
            }
            sent += REQUESTS.min(n - sent);
            raw.stream.write_all(&out).await.unwrap();
        }
    } else {
        let (mut sent, mut done, mut inflight) = (0, 0, 0);
        let mut message = template.clone();
        while done < n {
            out.clear();
            while inflight < usize::from(INFLIGHT) && sent < n {
                message[id_at..id_at + 2].copy_from_slice(&id_of(sent).to_be_bytes());
                out.extend_from_slice(&message);
                sent += 1;
                inflight += 1;
            }
            if !out.is_empty() {
                raw.stream.write_all(&out).await.unwrap();
                out.clear();
            }
            let p = raw.next().await;
            match p.kind() {
                PUBACK | PUBCOMP => {
                    inflight -= 1;
                    done += 1;
                }
                PUBREC => out.extend_from_slice(&ack(PUBREL, p.id)),
                other => panic!("unexpected packet type {other}"),
            }
            // Answer PUBRECs and take every acknowledgement already read before writing.
            while let Some(p) = raw.parse() {
                match p.kind() {
                    PUBACK | PUBCOMP => {
                        inflight -= 1;
                        done += 1;
                    }
                    PUBREC => out.extend_from_slice(&ack(PUBREL, p.id)),
                    other => panic!("unexpected packet type {other}"),
                }
            }
            if !out.is_empty() {
                raw.stream.write_all(&out).await.unwrap();
            }
        }
    }
    say(&format!("done {:.0}", cpu_us() - cpu0));
}

/// Receives `n` messages, acknowledging them.
pub(crate) async fn subscribe_n(v5: bool, qos: u8, n: usize, port: u16, topic: &str) {
    let mut raw = Raw::connect(port, v5, "bench-sub-raw").await;
    raw.subscribe(topic, qos).await;
    say("ready");
    let cpu0 = cpu_us();
    let mut received = 0;
    let mut out = Vec::with_capacity(4096);
    while received < n {
        let p = raw.next().await;
        received += usize::from(Raw::answer(&p, &mut out));
        while let Some(p) = raw.parse() {
            received += usize::from(Raw::answer(&p, &mut out));
        }
        if !out.is_empty() {
            raw.stream.write_all(&out).await.unwrap();
            out.clear();
        }
    }
    say(&format!("done {:.0}", cpu_us() - cpu0));
}

/// One message at a time to its own subscription: publish→receive, waiting for the
/// acknowledgement before the next one. Returns the samples.
pub(crate) async fn latency(
    v5: bool,
    qos: u8,
    n: usize,
    port: u16,
    topic: &str,
) -> Vec<std::time::Duration> {
    let mut raw = Raw::connect(port, v5, "bench-lat-raw").await;
    raw.subscribe(topic, qos).await;
    let (mut message, id_at) = publish(topic, qos, v5, &[0x5a; PAYLOAD]);
    let mut samples = Vec::with_capacity(n);
    let mut out = Vec::new();
    for seq in 0..n {
        if qos > 0 {
            message[id_at..id_at + 2].copy_from_slice(&id_of(seq).to_be_bytes());
        }
        let t0 = Instant::now();
        raw.stream.write_all(&message).await.unwrap();
        let (mut received, mut acked) = (false, qos == 0);
        while !(received && acked) {
            let p = raw.next().await;
            match p.kind() {
                PUBLISH => {
                    samples.push(t0.elapsed());
                    received = true;
                    Raw::answer(&p, &mut out);
                }
                PUBREL => {
                    Raw::answer(&p, &mut out);
                }
                PUBACK | PUBCOMP => acked = true,
                PUBREC => out.extend_from_slice(&ack(PUBREL, p.id)),
                other => panic!("unexpected packet type {other}"),
            }
            if !out.is_empty() {
                raw.stream.write_all(&out).await.unwrap();
                out.clear();
            }
        }
    }
    samples
}
