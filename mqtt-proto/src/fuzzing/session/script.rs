//! Writes `session` inputs operation by operation, for the seed corpus and for tests: each
//! method appends the bytes the matching operation of [`super`] reads.
//!
//! The seeds (`corpus/session/<version>-<scenario>`) walk the flows a broker and an application
//! go through, so the fuzzer starts from inputs that connect and exchange messages.

use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use super::{op, SETUP_LEN};
use crate::fuzzing::Seed;
use crate::ProtocolVersion;

/// A `session` input under construction.
#[derive(Debug, Clone)]
pub struct Script {
    setup: [u8; SETUP_LEN],
    ops: Vec<u8>,
    v5: bool,
}

/// Setup bytes.
const FLAGS: usize = 0;
const LIMITS: usize = 1;
const STORE: usize = 2;
const SIZE: usize = 3;
const ALIASES: usize = 4;
const REGIONS: usize = 5;
const TX: usize = 6;

impl Script {
    /// A session for `version` with the defaults: Receive Maximum 16, a 1 KiB log, 4 KiB
    /// packets, a 5 s CONNACK timeout, no aliases, automatic acks, outputs drained after every
    /// operation into a large buffer.
    pub fn new(version: ProtocolVersion) -> Self {
        let flags = match version {
            ProtocolVersion::V3_1_1 => 0,
            ProtocolVersion::V5 => 1,
            ProtocolVersion::V3_1 => 3,
        };
        Self {
            setup: [flags, 5, 120, 5 << 3, 0, 0, 0, 1],
            ops: Vec::new(),
            v5: version.is_v5(),
        }
    }

    /// The input.
    pub fn bytes(&self) -> Vec<u8> {
        let mut data = self.setup.to_vec();
        data.extend_from_slice(&self.ops);
        data
    }

    fn flag(mut self, bit: u8) -> Self {
        self.setup[FLAGS] |= bit;
        self
    }

    /// Manual acks.
    pub fn manual_acks(self) -> Self {
        self.flag(4)
    }

    /// Outputs are drained only by [`Script::transmit`], [`Script::events`] and on
    /// `Read::Blocked`.
    pub fn lazy(self) -> Self {
        self.flag(0x10)
    }

    /// Abandoned messages are published again.
    pub fn republish(self) -> Self {
        self.flag(0x20)
    }

    /// Receive Maximum `[1, 2, 3, 4, 8, 16, 64, 0][selector]`.
    pub fn receive_maximum(mut self, selector: u8) -> Self {
        self.setup[LIMITS] = (self.setup[LIMITS] & !7) | (selector & 7);
        self
    }

    /// Our own cap on messages in flight: `1 + n` (n < 4).
    pub fn max_inflight(mut self, n: u8) -> Self {
        self.setup[LIMITS] = (self.setup[LIMITS] & 7) | ((n & 3) << 3);
        self.flag(0x80)
    }

    /// Subscriptions kept for renewal in `[0, 24, 256, 4096][selector]` bytes.
    pub fn kept_subscriptions(mut self, selector: u8) -> Self {
        self.setup[LIMITS] = (self.setup[LIMITS] & !0x60) | ((selector & 3) << 5);
        self
    }

    /// Fall back to 3.1.1 when a broker refuses 5.0.
    pub fn fallback(mut self) -> Self {
        self.setup[LIMITS] |= 0x80;
        self
    }

    /// A log of `64 + 8 * n` bytes.
    pub fn log(mut self, n: u8) -> Self {
        self.setup[STORE] = n;
        self
    }

    /// Our Maximum Packet Size, `[4096, 64, 128, 256, 1024, 65536, max, 0][selector]`.
    pub fn maximum_packet_size(mut self, selector: u8) -> Self {
        self.setup[SIZE] = (self.setup[SIZE] & !7) | (selector & 7);
        self
    }

    /// Incoming topic aliases up to `maximum` (< 8), with `8 * slots` bytes for their topics.
    pub fn incoming_aliases(mut self, maximum: u8, slots: u8) -> Self {
        self.setup[ALIASES] = (maximum & 7) | (slots << 3);
        self
    }

    /// Outgoing topic aliases, with `8 * slots` (< 32) bytes for their topics.
    pub fn outgoing_aliases(mut self, slots: u8) -> Self {
        self.setup[REGIONS] = (self.setup[REGIONS] & !31) | (slots & 31);
        self.flag(8)
    }

    /// The initial transmit buffer, `[128 KiB, 2, 5, 16, 32, 64, 128, 1024][selector]`.
    pub fn tx_buffer(mut self, selector: u8) -> Self {
        self.setup[TX] = (self.setup[TX] & !7) | (selector & 7);
        self
    }

    /// Packet-id index slots, `[0, 1, 3, 64][selector]`.
    pub fn index_slots(mut self, selector: u8) -> Self {
        self.setup[TX] = (self.setup[TX] & 0x3f) | ((selector & 3) << 6);
        self
    }

    /// The driver's receive buffer, `[none, none, none, none, 48, 128, 512, 2048][selector]`
    /// bytes: larger PUBLISHes are streamed through it in chunks.
    pub fn receive_capacity(mut self, selector: u8) -> Self {
        self.setup[TX] = (self.setup[TX] & !0x38) | ((selector & 7) << 3);
        self
    }

    fn op(mut self, code: u8, args: &[u8]) -> Self {
        self.ops.push(code);
        self.ops.extend_from_slice(args);
        self
    }

    // ---- commands ----

    /// CONNECT with an empty client id and keep alive `[0, 1, 10][keep_alive]` seconds.
    pub fn connect(self, clean_start: bool, keep_alive: u8) -> Self {
        self.op(
            op::CONNECT,
            &[u8::from(clean_start) | (keep_alive.min(2) << 1), 0],
        )
    }

    /// CONNECT (5.0) with an authentication method and empty data.
    pub fn connect_with_auth(self) -> Self {
        self.op(op::CONNECT, &[1 | 64, 0]).raw_args(&[0; 16])
    }

    fn raw_args(mut self, args: &[u8]) -> Self {
        self.ops.extend_from_slice(args);
        self
    }

    /// PUBLISH of `len` (< 200) bytes to topic `["a", "a/b", "sensors/...", "$SYS/x"][topic]`.
    pub fn publish(self, qos: u8, len: u8, topic: u8) -> Self {
        self.op(op::PUBLISH, &[(qos & 3) | ((topic % 3) << 3), len.min(199)])
    }

    /// PUBLISH of `len` bytes (`len * 16` when over 199) to topic `[..][topic]` with the
    /// payload streamed by the driver ([`Session::publish_streamed`](crate::session::Session::publish_streamed)).
    pub fn publish_streamed(self, qos: u8, len: u16, topic: u8) -> Self {
        let flags = 0x80 | (qos & 3) | ((topic % 3) << 3);
        match u8::try_from(len) {
            Ok(small) if small < 200 => self.op(op::PUBLISH, &[flags, small]),
            _ => {
                let [hi, lo] = (len % 4096).to_be_bytes();
                self.op(op::PUBLISH, &[flags, 200, hi, lo])
            }
        }
    }

    /// SUBSCRIBE to `filters` (indices into the filter list, at most 3) at QoS 1.
    pub fn subscribe(self, filters: &[u8]) -> Self {
        let mut args = vec![filters.len().min(3) as u8];
        args.extend(filters.iter().take(3).map(|f| (f % 6) | 0x10));
        self.op(op::SUBSCRIBE, &args)
    }

    /// UNSUBSCRIBE from `filters` (at most 3).
    pub fn unsubscribe(self, filters: &[u8]) -> Self {
        let mut args = vec![filters.len().min(3) as u8];
        args.extend(filters.iter().take(3).map(|f| f % 6));
        self.op(op::UNSUBSCRIBE, &args)
    }

    /// `ack` of the `pick`-th recently delivered message (some must have been delivered).
    pub fn ack(self, pick: u8) -> Self {
        self.op(op::ACK, &[pick % 224])
    }

    /// `ack` of packet id `pid`, whatever was delivered.
    pub fn ack_id(self, pid: u16) -> Self {
        let [hi, lo] = pid.to_be_bytes();
        self.op(op::ACK, &[255, hi, lo])
    }

    /// A graceful DISCONNECT.
    pub fn disconnect(self) -> Self {
        self.op(op::DISCONNECT, &[0])
    }

    /// A graceful DISCONNECT (5.0: with a Reason String of `len` characters).
    pub fn disconnect_with_reason(self, len: u16) -> Self {
        let [hi, lo] = len.to_be_bytes();
        self.op(op::DISCONNECT, &[4, hi, lo])
    }

    /// AUTH with Continue Authentication.
    pub fn auth(self) -> Self {
        self.auth_with_data(&[])
    }

    /// AUTH with Continue Authentication and `data` (at most 255 bytes).
    pub fn auth_with_data(self, data: &[u8]) -> Self {
        let data = &data[..data.len().min(255)];
        self.op(op::AUTH, &[0, data.len() as u8]).raw_args(data)
    }

    // ---- the broker ----

    /// CONNACK accepting the connection, without properties.
    pub fn connack(self, session_present: bool) -> Self {
        self.op(op::CONNACK, &[u8::from(session_present) << 1, 0])
    }

    /// 5.0 CONNACK accepting the connection with these limits (see `ConnAckLimits::apply`:
    /// Receive Maximum, Maximum Packet Size, Topic Alias Maximum, then QoS / retain / keep
    /// alive flags).
    pub fn connack_limits(self, limits: [u8; 4]) -> Self {
        assert!(self.v5, "CONNACK limits are 5.0 properties");
        self.op(op::CONNACK, &[8]).raw_args(&limits).raw_args(&[0])
    }

    /// PUBLISH from the broker to "a", packet id `1 + pid` (< 8).
    pub fn broker_publish(self, qos: u8, pid: u8, len: u8, dup: bool) -> Self {
        let flags = (qos & 3) | (u8::from(dup) << 2);
        self.op(op::BROKER_PUBLISH, &[flags, pid % 8, len.min(254), 0])
    }

    /// PUBLISH from the broker as [`Script::broker_publish`], with a payload of up to
    /// 65,535 bytes, of which the last `held` (up to 32) stay on the wire for now.
    pub fn broker_publish_long(self, qos: u8, pid: u8, len: u16, held: u8) -> Self {
        let [hi, lo] = len.to_be_bytes();
        let hold = if held == 0 { 0 } else { 223 + held.min(32) };
        self.op(op::BROKER_PUBLISH, &[qos & 3, pid % 8, 255, hi, lo, hold])
    }

    /// 5.0 PUBLISH from the broker with topic alias `alias`, naming topic `["a", "a/b",
    /// "sensors/..."][topic]` or (with `topic` 3) none.
    pub fn broker_publish_alias(self, qos: u8, alias: u8, topic: u8) -> Self {
        let flags = match topic {
            3 => (qos & 3) | 16 | 32,
            t => (qos & 3) | 16 | (t << 6),
        };
        self.op(op::BROKER_PUBLISH, &[flags, 0, 4, alias, 0])
    }

    fn broker_ack(self, code: u8, pick: u8) -> Self {
        self.op(code, &[pick % 240, 0, 0])
    }

    /// PUBACK for the `pick`-th recently sent QoS 1 or 2 PUBLISH.
    pub fn puback(self, pick: u8) -> Self {
        self.broker_ack(op::PUBACK, pick)
    }

    /// PUBREC for the `pick`-th recently sent QoS 1 or 2 PUBLISH.
    pub fn pubrec(self, pick: u8) -> Self {
        self.broker_ack(op::PUBREC, pick)
    }

    /// PUBREL for the `pick`-th recently sent PUBREC.
    pub fn pubrel(self, pick: u8) -> Self {
        self.broker_ack(op::PUBREL, pick)
    }

    /// PUBCOMP for the `pick`-th recently sent PUBREL.
    pub fn pubcomp(self, pick: u8) -> Self {
        self.broker_ack(op::PUBCOMP, pick)
    }

    /// SUBACK granting QoS 1 to the `count` filters of the `pick`-th recent SUBSCRIBE.
    pub fn suback(self, pick: u8, count: u8) -> Self {
        let mut args = vec![pick % 240, 0];
        args.extend((0..count).map(|_| 1));
        args.push(0);
        self.op(op::SUBACK, &args)
    }

    /// UNSUBACK for the `pick`-th recent UNSUBSCRIBE of `count` filters.
    pub fn unsuback(self, pick: u8, count: u8) -> Self {
        let mut args = vec![pick % 240, 0];
        if self.v5 {
            args.extend((0..count).map(|_| 0));
        }
        args.push(0);
        self.op(op::UNSUBACK, &args)
    }

    /// PINGRESP.
    pub fn pingresp(self) -> Self {
        self.op(op::PINGRESP, &[0])
    }

    /// DISCONNECT from the broker (Server Shutting Down in 5.0).
    pub fn broker_disconnect(self) -> Self {
        self.op(op::BROKER_DISCONNECT, &[0, 0])
    }

    /// AUTH from the broker (Continue Authentication).
    pub fn broker_auth(self) -> Self {
        self.op(op::BROKER_AUTH, &[0, 0])
    }

    /// Raw bytes from the broker (at most 255).
    pub fn raw(self, bytes: &[u8]) -> Self {
        let bytes = &bytes[..bytes.len().min(255)];
        self.op(op::RAW, &[bytes.len() as u8])
            .raw_args(bytes)
            .raw_args(&[0])
    }

    /// Any packet the `roundtrip` builder makes from `data` (after the version byte).
    pub fn built(self, data: &[u8]) -> Self {
        let data = &data[..data.len().min(255)];
        self.op(op::BUILT, &[data.len() as u8])
            .raw_args(data)
            .raw_args(&[0])
    }

    // ---- time, transport, outputs ----

    /// `ms` milliseconds pass.
    pub fn tick(self, ms: u16) -> Self {
        self.op(op::TICK, &ms.to_be_bytes())
    }

    /// Time jumps to the session's next deadline.
    pub fn to_deadline(self) -> Self {
        self.op(op::JUMP, &[3])
    }

    /// Time jumps to near the end of time.
    pub fn to_end_of_time(self) -> Self {
        self.op(op::JUMP, &[1, 0, 0])
    }

    /// The transport closes.
    pub fn closed(self) -> Self {
        self.op(op::CLOSED, &[])
    }

    /// Drains `poll_transmit` with a buffer of `size` bytes (0: the largest).
    pub fn transmit(self, size: u8) -> Self {
        self.op(op::TRANSMIT, &[size])
    }

    /// Drains `poll_event`.
    pub fn events(self) -> Self {
        self.op(op::EVENTS, &[])
    }
}

fn tag(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "v31",
        ProtocolVersion::V3_1_1 => "v311",
        ProtocolVersion::V5 => "v5",
    }
}

/// The scenarios of the seed corpus for `version`, by name.
fn scenarios(version: ProtocolVersion) -> Vec<(&'static str, Script)> {
    let s = || Script::new(version);
    let connected = || s().connect(true, 2).connack(false);
    let mut list = vec![
        (
            "qos-flows",
            connected()
                .publish(0, 64, 2)
                .publish(1, 64, 2)
                .publish(2, 64, 2)
                .puback(0)
                .pubrec(1)
                .pubcomp(0),
        ),
        (
            "incoming",
            connected()
                .broker_publish(0, 0, 10, false)
                .broker_publish(1, 1, 10, false)
                .broker_publish(2, 2, 10, false)
                .broker_publish(2, 2, 10, true)
                .pubrel(0)
                .broker_publish(2, 2, 10, false),
        ),
        (
            "subscribe",
            connected()
                .subscribe(&[0, 2])
                .suback(0, 2)
                .unsubscribe(&[2])
                .unsuback(0, 1),
        ),
        (
            "keepalive",
            connected()
                .tick(10_000)
                .pingresp()
                .tick(10_000)
                .tick(6_000)
                .closed(),
        ),
        (
            "resume",
            s().publish(1, 20, 0)
                .publish(2, 20, 1)
                .connect(true, 0)
                .connack(false)
                .pubrec(1)
                .closed()
                .connect(false, 0)
                .connack(true)
                .pubcomp(0)
                .puback(0),
        ),
        (
            "session-lost",
            s().republish()
                .connect(true, 0)
                .connack(false)
                .publish(1, 20, 0)
                .publish(2, 20, 1)
                .publish(2, 20, 2)
                .pubrec(2)
                .closed()
                .connect(false, 0)
                .connack(false)
                .puback(3),
        ),
        (
            "manual-acks",
            s().manual_acks()
                .connect(true, 0)
                .connack(false)
                .broker_publish(1, 1, 8, false)
                .broker_publish(2, 2, 8, false)
                .ack(0)
                .ack(1)
                .pubrel(0),
        ),
        (
            "streamed-receive",
            s().receive_capacity(5)
                .connect(false, 0)
                .connack(false)
                .broker_publish_long(1, 1, 3_000, 0)
                .broker_publish_long(2, 2, 1_000, 0)
                .pubrel(0)
                .broker_publish_long(0, 0, 500, 0)
                // Cut mid-message: nothing acknowledged; the resend is delivered whole.
                .broker_publish_long(2, 3, 2_000, 20)
                .closed()
                .connect(false, 0)
                .connack(true)
                .broker_publish_long(2, 3, 2_000, 0)
                .pubrel(0),
        ),
        (
            "streamed-send",
            s().tx_buffer(6)
                .connect(true, 0)
                .connack(false)
                .publish_streamed(1, 3_000, 1)
                .publish_streamed(2, 1_000, 0)
                .publish_streamed(0, 4_000, 2)
                .transmit(0)
                .puback(0)
                .pubrec(1)
                .pubcomp(0),
        ),
        (
            "small-buffers",
            s().tx_buffer(3)
                .connect(true, 2)
                .connack(false)
                .publish(1, 100, 2)
                .transmit(5)
                .puback(0),
        ),
        (
            "disconnect",
            connected().publish(1, 8, 0).disconnect().puback(0).closed(),
        ),
        (
            "disconnect-drain-timeout",
            connected()
                .publish(1, 8, 0)
                .disconnect()
                .to_deadline()
                .closed(),
        ),
        ("protocol-error", connected().raw(&[0xF0, 0x00, 0x20, 0x02])),
        (
            "connack-timeout",
            s().connect(true, 0).transmit(0).to_deadline().closed(),
        ),
        (
            "blocked",
            (0..18)
                .fold(
                    s().lazy().connect(true, 0).transmit(0).connack(false),
                    |s, n| s.broker_publish(1, n, 0, false),
                )
                .transmit(0)
                .events(),
        ),
        (
            "resubscribe",
            s().kept_subscriptions(1)
                .connect(false, 0)
                .connack(false)
                .subscribe(&[0, 1, 2])
                .suback(0, 3)
                .subscribe(&[4])
                .suback(1, 1)
                .unsubscribe(&[4])
                .closed()
                .connect(false, 0)
                .connack(false)
                .suback(2, 2)
                .unsuback(0, 1)
                .closed()
                .connect(false, 0)
                .connack(true),
        ),
        (
            "built-stream",
            connected()
                .built(&[8, 0, 0, 0, 1, 2])
                .built(&[12])
                .tick(60_000)
                .to_end_of_time(),
        ),
    ];
    if version.is_v5() {
        list.extend([
            (
                "flow-control",
                s().connect(true, 0)
                    .connack_limits([1, 0, 0, 2])
                    .publish(1, 8, 0)
                    .publish(1, 8, 1)
                    .publish(2, 8, 2)
                    .puback(0)
                    .puback(1)
                    .pubrec(2)
                    .pubcomp(0),
            ),
            (
                "broker-limits",
                s().publish(2, 150, 0)
                    .publish(1, 10, 0)
                    .connect(true, 0)
                    .connack_limits([0, 64, 0, 1 | 4])
                    .publish(1, 100, 0)
                    .publish(0, 10, 0),
            ),
            (
                "aliases",
                s().outgoing_aliases(8)
                    .incoming_aliases(3, 8)
                    .connect(true, 0)
                    .connack_limits([0, 0, 2, 2])
                    .publish(0, 4, 0)
                    .publish(0, 4, 1)
                    .publish(0, 4, 2)
                    .publish(0, 4, 0)
                    .broker_publish_alias(0, 1, 1)
                    .broker_publish_alias(1, 1, 3)
                    .broker_publish_alias(0, 2, 2)
                    .broker_publish_alias(0, 2, 3),
            ),
            (
                "fallback",
                s().fallback()
                    .kept_subscriptions(2)
                    .publish(1, 8, 0)
                    .connect(true, 0)
                    .raw(&[0x20, 0x02, 0x00, 0x01])
                    .closed()
                    .connect(true, 0)
                    .connack(false)
                    .puback(0),
            ),
            (
                "auth",
                s().connect_with_auth()
                    .transmit(0)
                    .broker_auth()
                    .auth()
                    .connack(false)
                    .auth()
                    .broker_auth()
                    .broker_disconnect(),
            ),
        ]);
    }
    list
}

// ---- regressions (tests.rs) ----

/// 16 acks given while disconnected, then a connection that resumes the session.
pub fn acks_before_connack(version: ProtocolVersion) -> Script {
    (1..=16)
        .fold(Script::new(version), |s, pid| s.ack_id(pid))
        .connect(false, 0)
        .connack(true)
}

/// AUTH and DISCONNECT over a 64-byte Maximum Packet Size, then within it.
pub fn control_packets_over_the_limit() -> Script {
    Script::new(ProtocolVersion::V5)
        .connect_with_auth()
        .connack_limits([0, 64, 0, 2])
        .auth_with_data(&[7; 80])
        .disconnect_with_reason(100)
        .auth_with_data(&[7; 20])
        .disconnect_with_reason(20)
}

/// SUBSCRIBE and UNSUBSCRIBE of 3 filters of 24 bytes (77 and 76 bytes in 5.0) queued before
/// a CONNACK allowing 64.
pub fn requests_over_the_limit() -> Script {
    Script::new(ProtocolVersion::V5)
        .subscribe(&[2, 2, 2])
        .unsubscribe(&[2, 2, 2])
        .connect(true, 0)
        .connack_limits([0, 64, 0, 2])
}

/// The seed corpus of the `session` target: every scenario for 3.1.1 and 5.0, and the inputs
/// of the regression tests as `regression-*`.
pub fn session_seeds() -> Vec<Seed> {
    let seed = |name: String, script: Script| Seed {
        target: "session",
        name,
        data: script.bytes(),
    };
    let mut seeds: Vec<Seed> = [ProtocolVersion::V3_1_1, ProtocolVersion::V5]
        .into_iter()
        .flat_map(|version| {
            scenarios(version)
                .into_iter()
                .map(move |(name, script)| seed(format!("{}-{name}", tag(version)), script))
        })
        .collect();
    seeds.extend([
        seed(
            "regression-acks-before-connack".into(),
            acks_before_connack(ProtocolVersion::V3_1_1),
        ),
        seed(
            "regression-control-packets-over-the-limit".into(),
            control_packets_over_the_limit(),
        ),
        seed(
            "regression-requests-over-the-limit".into(),
            requests_over_the_limit(),
        ),
    ]);
    seeds
}
