//! `-d`: mosquitto's packet trace ("Client id sending PUBLISH (d0, q1, r0, m1, 't', ... (5
//! bytes))"), printed on stdout as mosquitto's clients do. The client library does not parse
//! what it sends, so the trace taps the raw bytes of the connection
//! ([`TransportOptions::tap`](mqtt_client_tokio::TransportOptions::tap)), cuts them into
//! packets and decodes each with the codec.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use mqtt_client_tokio::{Direction, ProtocolVersion, ReasonCode, Tap};
use mqtt_sansio::{Decoded, Packet};
use tokio::sync::Notify;

/// Set once stdout is closed (e.g. `| head -1`): nothing more is printed and `mqtt sub`
/// stops quietly.
pub static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Woken when stdout is found closed.
fn closed_notify() -> &'static Notify {
    static CLOSED: OnceLock<Notify> = OnceLock::new();
    CLOSED.get_or_init(Notify::new)
}

/// Writes `bytes` to stdout and flushes; remembers a closed stdout instead of failing.
pub fn print_stdout(bytes: &[u8]) -> bool {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return false;
    }
    let mut out = std::io::stdout().lock();
    let ok = out.write_all(bytes).and_then(|()| out.flush()).is_ok();
    if !ok {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        closed_notify().notify_waiters();
    }
    ok
}

/// Returns once a write to stdout failed (the reader went away).
pub async fn stdout_closed() {
    loop {
        let notified = closed_notify().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if STDOUT_CLOSED.load(Ordering::Relaxed) {
            return;
        }
        notified.await;
    }
}

/// Writes a line to stderr, ignoring a closed stderr (no panic, unlike `eprintln!`).
pub fn print_stderr(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// How long a message waits for its acknowledgement to be traced before it is printed.
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// The tracer shared with the tap.
#[derive(Debug)]
pub struct Trace {
    state: Mutex<State>,
    /// Woken when an acknowledgement of a received message is sent.
    acked: Notify,
}

#[derive(Debug)]
struct State {
    /// Printed after "Client": the CONNECT's identifier, `(null)` when empty, replaced by
    /// one the broker assigns.
    client_id: String,
    version: ProtocolVersion,
    /// mosquitto numbers every message it sends, QoS 0 included; this follows the packet
    /// identifiers seen to number QoS 0 publishes the same way.
    last_mid: u16,
    /// Print mosquitto_sub's "Subscribed (mid: 1): 0" after each SUBACK.
    print_subscribed: bool,
    /// Packet ids of received QoS 1 and 2 messages whose PUBACK / PUBCOMP was not sent yet.
    unacked: Vec<u16>,
    sent: Vec<u8>,
    received: Vec<u8>,
}

impl Trace {
    /// A tracer; `print_subscribed` for `mqtt sub` (mosquitto_sub's SUBACK line).
    pub fn new(print_subscribed: bool) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                client_id: "(null)".into(),
                version: ProtocolVersion::V3_1_1,
                last_mid: 0,
                print_subscribed,
                unacked: Vec::new(),
                sent: Vec::new(),
                received: Vec::new(),
            }),
            acked: Notify::new(),
        })
    }

    /// Waits (at most 2 s) until the acknowledgement of the received message `packet_id`
    /// was sent: mosquitto's clients print a message after its PUBACK (QoS 1) or PUBCOMP
    /// (QoS 2), so the trace and the messages interleave the same way.
    pub async fn settled(&self, packet_id: u16) {
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        loop {
            let notified = self.acked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let waiting = self
                .state
                .lock()
                .is_ok_and(|s| s.unacked.contains(&packet_id));
            if !waiting {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// The tap that feeds this tracer.
    pub fn tap(self: &Arc<Self>) -> Tap {
        let trace = Arc::clone(self);
        Tap::new(move |direction, bytes| trace.feed(direction, bytes))
    }

    /// Takes bytes of one direction; prints a line for each whole packet.
    pub fn feed(&self, direction: Direction, bytes: &[u8]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut lines = Vec::new();
        let unacked = state.unacked.len();
        state.feed(direction, bytes, &mut lines);
        let acked = state.unacked.len() < unacked;
        drop(state);
        for line in lines {
            print_stdout(line.as_bytes());
        }
        if acked {
            self.acked.notify_waiters();
        }
    }
}

impl State {
    fn feed(&mut self, direction: Direction, bytes: &[u8], lines: &mut Vec<String>) {
        let mut buf = std::mem::take(match direction {
            Direction::Sent => &mut self.sent,
            Direction::Received => &mut self.received,
        });
        buf.extend_from_slice(bytes);
        let mut used = 0;
        loop {
            let rest = buf.get(used..).unwrap_or_default();
            match Packet::decode(rest, self.version, u32::MAX) {
                Ok(Decoded::Packet { packet, len }) => {
                    used += len;
                    self.describe(direction, &packet, lines);
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(_) => {
                    used = buf.len();
                    break;
                }
            }
        }
        buf.drain(..used);
        match direction {
            Direction::Sent => self.sent = buf,
            // A CONNECT seen while this was taken starts a new connection: keep it empty.
            Direction::Received => self.received = buf,
        }
    }

    fn describe(&mut self, direction: Direction, packet: &Packet<'_>, lines: &mut Vec<String>) {
        let sent = direction == Direction::Sent;
        if let (true, Packet::PubAck(r) | Packet::PubComp(r)) = (sent, packet) {
            let id = r.packet_id.get();
            self.unacked.retain(|u| *u != id);
        }
        if let Packet::Connect(c) = packet {
            self.version = c.protocol;
            self.received.clear();
            self.client_id = if c.client_id.is_empty() {
                "(null)".into()
            } else {
                c.client_id.to_string()
            };
        }
        if let Packet::ConnAck(c) = packet {
            if let Some(id) = c.properties.assigned_client_identifier {
                self.client_id = id.to_string();
            }
        }
        let what = if sent { "sending" } else { "received" };
        let mut line = |text: String| {
            lines.push(format!("Client {} {what} {text}\n", self.client_id));
        };
        match packet {
            Packet::Connect(_) => line("CONNECT".into()),
            Packet::ConnAck(c) => line(format!("CONNACK ({})", self.connack_code(c.reason_code))),
            Packet::Publish(p) => {
                let mid = match p.packet_id() {
                    Some(id) => id.get(),
                    None if sent => self.last_mid.wrapping_add(1).max(1),
                    None => 0,
                };
                if sent {
                    self.last_mid = mid;
                } else if mid != 0 {
                    self.unacked.push(mid);
                }
                line(format!(
                    "PUBLISH (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
                    u8::from(p.dup),
                    p.qos_pid.qos() as u8,
                    u8::from(p.retain),
                    p.topic,
                    p.payload.len()
                ));
            }
            Packet::PubAck(r) if sent => line(format!(
                "PUBACK (m{}, rc{})",
                r.packet_id.get(),
                r.reason_code.as_u8()
            )),
            Packet::PubRec(r) if sent => line(format!(
                "PUBREC (m{}, rc{})",
                r.packet_id.get(),
                r.reason_code.as_u8()
            )),
            Packet::PubRel(r) if sent => line(format!("PUBREL (m{})", r.packet_id.get())),
            Packet::PubComp(r) if sent => line(format!("PUBCOMP (m{})", r.packet_id.get())),
            Packet::PubAck(r) => line(format!(
                "PUBACK (Mid: {}, RC:{})",
                r.packet_id.get(),
                r.reason_code.as_u8()
            )),
            Packet::PubComp(r) => line(format!(
                "PUBCOMP (Mid: {}, RC:{})",
                r.packet_id.get(),
                r.reason_code.as_u8()
            )),
            Packet::PubRec(r) => line(format!("PUBREC (Mid: {})", r.packet_id.get())),
            Packet::PubRel(r) => line(format!("PUBREL (Mid: {})", r.packet_id.get())),
            Packet::Subscribe(s) => {
                self.last_mid = s.packet_id.get();
                for sub in s.subscriptions.iter() {
                    let o = sub.options;
                    let options = (u8::from(o.no_local) << 2)
                        | (u8::from(o.retain_as_published) << 3)
                        | ((o.retain_handling as u8) << 4);
                    line(format!(
                        "SUBSCRIBE (Mid: {}, Topic: {}, QoS: {}, Options: 0x{options:02x})",
                        s.packet_id.get(),
                        sub.filter,
                        o.qos as u8
                    ));
                }
            }
            Packet::SubAck(s) => {
                line("SUBACK".into());
                if self.print_subscribed {
                    let codes: Vec<String> = s
                        .reason_codes
                        .iter()
                        .map(|c| c.as_u8().to_string())
                        .collect();
                    lines.push(format!(
                        "Subscribed (mid: {}): {}\n",
                        s.packet_id.get(),
                        codes.join(", ")
                    ));
                }
            }
            Packet::Unsubscribe(u) => {
                self.last_mid = u.packet_id.get();
                for filter in u.filters.iter() {
                    line(format!(
                        "UNSUBSCRIBE (Mid: {}, Topic: {filter})",
                        u.packet_id.get()
                    ));
                }
            }
            Packet::UnsubAck(_) => line("UNSUBACK".into()),
            Packet::PingReq => line("PINGREQ".into()),
            Packet::PingResp => line("PINGRESP".into()),
            Packet::Disconnect(d) if sent => {
                let _ = d;
                line("DISCONNECT".into());
            }
            Packet::Disconnect(d) => line(format!("DISCONNECT ({})", d.reason_code.as_u8())),
            Packet::Auth(_) => line("AUTH".into()),
        }
    }

    /// CONNACK's code as mosquitto prints it: the 3.1.1 return code, or the 5.0 reason code.
    fn connack_code(&self, code: ReasonCode) -> u8 {
        if self.version == ProtocolVersion::V5 {
            code.as_u8()
        } else {
            v3_return_code(code)
        }
    }
}

/// The 3.1/3.1.1 CONNACK return code for a reason code.
pub fn v3_return_code(code: ReasonCode) -> u8 {
    match code {
        ReasonCode::Success => 0,
        ReasonCode::UnsupportedProtocolVersion => 1,
        ReasonCode::ClientIdentifierNotValid => 2,
        ReasonCode::ServerUnavailable => 3,
        ReasonCode::BadUserNameOrPassword => 4,
        ReasonCode::NotAuthorized => 5,
        other => other.as_u8(),
    }
}

#[cfg(test)]
mod tests {
    use mqtt_sansio::{QoS, TopicName};

    use super::*;

    fn encode(packet: &Packet<'_>, version: ProtocolVersion) -> Vec<u8> {
        let mut buf = vec![0u8; packet.encoded_len(version).unwrap()];
        packet.encode(version, &mut buf).unwrap();
        buf
    }

    #[test]
    fn qos0_publishes_are_numbered_like_mosquitto_and_cut_packets_wait() {
        let mut state = State {
            client_id: "me".into(),
            version: ProtocolVersion::V3_1_1,
            last_mid: 0,
            print_subscribed: false,
            unacked: Vec::new(),
            sent: Vec::new(),
            received: Vec::new(),
        };
        let publish = mqtt_sansio::Publish::new(TopicName::new("a/b").unwrap(), b"hello");
        let bytes = encode(&Packet::Publish(publish), ProtocolVersion::V3_1_1);
        let mut lines = Vec::new();
        let (head, tail) = bytes.split_at(3);
        state.feed(Direction::Sent, head, &mut lines);
        assert!(lines.is_empty());
        state.feed(Direction::Sent, tail, &mut lines);
        state.feed(Direction::Sent, &bytes, &mut lines);
        assert_eq!(
            lines,
            [
                "Client me sending PUBLISH (d0, q0, r0, m1, 'a/b', ... (5 bytes))\n",
                "Client me sending PUBLISH (d0, q0, r0, m2, 'a/b', ... (5 bytes))\n"
            ]
        );
        let _ = QoS::AtMostOnce;
    }
}
