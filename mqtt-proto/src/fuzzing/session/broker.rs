//! The fake broker: packets onto the wire, and the driver's read loop.

use core::num::{NonZeroU16, NonZeroU32};
use std::vec;
use std::vec::Vec;

use super::outputs::Seen;
use super::{build_packet, encode, qos, Fuzz, Input, Recent, LOOP_LIMIT, PAYLOAD};
use crate::session::{ConnectionState, Read};
use crate::{
    AckProperties, Auth, AuthProperties, ConnAck, ConnAckProperties, Decoded, Disconnect, Packet,
    PacketId, PacketType, ProtocolVersion, PubResponse, Publish, QoS, QosPid, ReasonCode, SubAck,
    TopicName, UnsubAck,
};

impl Fuzz {
    /// The version index [`build_packet`] reads first.
    pub(super) fn build_version(&self) -> u8 {
        match self.version {
            ProtocolVersion::V3_1 => 0,
            ProtocolVersion::V3_1_1 => 1,
            ProtocolVersion::V5 => 2,
        }
    }

    /// Encodes `packet` onto the wire and lets the bytes arrive (see [`Fuzz::deliver`]). A
    /// packet the codec refuses is not sent.
    pub(super) fn broker_send(&mut self, packet: &Packet<'_>, i: &mut Input<'_>) {
        if let Some(bytes) = encode(packet, self.version) {
            self.wire.extend_from_slice(&bytes);
        }
        self.deliver(i);
    }

    pub(super) fn broker_connack(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let built: Vec<u8> = if flags & 5 != 0 {
            let len = usize::from(i.byte());
            let mut data = vec![self.build_version(), 1];
            data.extend_from_slice(i.take(len));
            data
        } else {
            Vec::new()
        };
        let version = self.version;
        let limits = if flags & 8 != 0 && version.is_v5() {
            Some(ConnAckLimits::read(i))
        } else {
            None
        };
        let bytes = build_packet(&built, |packet, _| {
            let mut c = ConnAck::new(ReasonCode::Success);
            if let Packet::ConnAck(b) = packet {
                if flags & 1 != 0 {
                    c.reason_code = b.reason_code;
                }
                if flags & 4 != 0 && version.is_v5() {
                    c.properties = b.properties;
                }
            }
            c.session_present = flags & 2 != 0;
            if let Some(l) = limits {
                l.apply(&mut c.properties);
            }
            encode(&Packet::ConnAck(c), version)
        });
        self.wire.extend(bytes.unwrap_or_default());
        self.deliver(i);
    }

    pub(super) fn broker_publish(&mut self, i: &mut Input<'_>) {
        let flags = i.byte();
        let pid = match i.byte() {
            b @ 0..=239 => 1 + u16::from(b % 8),
            _ => i.u16().max(1),
        };
        let len = match i.byte() {
            255 => usize::from(i.u16()),
            n => usize::from(n),
        };
        let topic = self.topic(flags >> 6, i);
        let mut p = Publish::new(topic, &PAYLOAD[..len]);
        let pid = PacketId::new(pid).unwrap_or(PacketId::MIN);
        p.qos_pid = match qos(flags) {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            q => QosPid::new(q, pid),
        };
        p.dup = flags & 4 != 0 && p.qos_pid != QosPid::AtMostOnce;
        p.retain = flags & 8 != 0;
        if self.v5() && flags & 16 != 0 {
            p.properties.topic_alias = NonZeroU16::new(u16::from(i.byte() % 8));
            if flags & 32 != 0 {
                p.topic = TopicName::EMPTY;
            }
        }
        self.broker_send(&Packet::Publish(p), i);
    }

    pub(super) fn broker_ack(&mut self, packet_type: PacketType, i: &mut Input<'_>) {
        let selector = i.byte();
        let recent = match packet_type {
            PacketType::PubAck | PacketType::PubRec => &self.sent_publishes,
            PacketType::PubRel => &self.sent_pubrecs,
            _ => &self.sent_pubrels,
        };
        let pid = match recent.pick(selector) {
            Some(pid) if selector < 240 => pid,
            _ => i.u16().max(1),
        };
        let mut r = PubResponse::new(PacketId::new(pid).unwrap_or(PacketId::MIN));
        let reason = i.byte();
        if self.v5() && reason >= 128 {
            let code = ReasonCode::from_u8(reason & 0x9F).unwrap_or(ReasonCode::UnspecifiedError);
            if code.is_valid_for(packet_type) {
                r.reason_code = code;
            }
            if reason & 0x40 != 0 {
                r.properties = AckProperties {
                    reason_string: Some("why"),
                    ..AckProperties::default()
                };
            }
        }
        let packet = match packet_type {
            PacketType::PubAck => Packet::PubAck(r),
            PacketType::PubRec => Packet::PubRec(r),
            PacketType::PubRel => Packet::PubRel(r),
            _ => Packet::PubComp(r),
        };
        self.broker_send(&packet, i);
    }

    /// The packet id and code count of a SUBACK or UNSUBACK for a recent request: mostly the
    /// request's count, sometimes one more or one fewer.
    pub(super) fn request_ack(
        recent: &Recent<(u16, usize)>,
        i: &mut Input<'_>,
    ) -> (PacketId, usize) {
        let selector = i.byte();
        let (pid, count) = match recent.pick(selector) {
            Some(request) if selector < 240 => request,
            _ => (i.u16(), 1),
        };
        let count = match i.byte() {
            0xE0.. => count + 1,
            0xC0.. => count.saturating_sub(1),
            _ => count,
        };
        (PacketId::new(pid).unwrap_or(PacketId::MIN), count)
    }

    pub(super) fn broker_suback(&mut self, i: &mut Input<'_>) {
        let (pid, count) = Self::request_ack(&self.sent_subscribes, i);
        let granted = [
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ];
        let codes: Vec<_> = (0..count)
            .map(|_| granted[usize::from(i.byte() & 3)])
            .collect();
        self.broker_send(&Packet::SubAck(SubAck::new(pid, &codes)), i);
    }

    pub(super) fn broker_unsuback(&mut self, i: &mut Input<'_>) {
        let (pid, count) = Self::request_ack(&self.sent_unsubscribes, i);
        let options = [
            ReasonCode::Success,
            ReasonCode::NoSubscriptionExisted,
            ReasonCode::UnspecifiedError,
        ];
        let codes: Vec<_> = if self.v5() {
            (0..count)
                .map(|_| options[usize::from(i.byte() % 3)])
                .collect()
        } else {
            Vec::new()
        };
        self.broker_send(&Packet::UnsubAck(UnsubAck::new(pid, &codes)), i);
    }

    pub(super) fn broker_disconnect(&mut self, i: &mut Input<'_>) {
        let reason_code = [
            ReasonCode::ServerShuttingDown,
            ReasonCode::Success,
            ReasonCode::SessionTakenOver,
            ReasonCode::KeepAliveTimeout,
        ][usize::from(i.byte() & 3)];
        let d = if self.v5() {
            Disconnect::new(reason_code)
        } else {
            Disconnect::default()
        };
        self.broker_send(&Packet::Disconnect(d), i);
    }

    pub(super) fn broker_auth(&mut self, i: &mut Input<'_>) {
        let reason_code = [
            ReasonCode::ContinueAuthentication,
            ReasonCode::Success,
            ReasonCode::ReAuthenticate,
            ReasonCode::ContinueAuthentication,
        ][usize::from(i.byte() & 3)];
        let a = Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: Some("SCRAM-SHA-256"),
                authentication_data: Some(b"server-first"),
                ..AuthProperties::default()
            },
        };
        self.broker_send(&Packet::Auth(a), i);
    }

    /// Any packet [`build_packet`] builds for the session's version, from the next bytes.
    pub(super) fn broker_built(&mut self, i: &mut Input<'_>) {
        let len = usize::from(i.byte());
        let mut data = vec![self.build_version()];
        data.extend_from_slice(i.take(len));
        let version = self.version;
        if let Some(bytes) = build_packet(&data, |packet, _| encode(&packet, version)) {
            self.wire.extend_from_slice(&bytes);
        }
        self.deliver(i);
    }

    /// Lets the wire's bytes arrive, all of them or (one time in eight) all but up to 32.
    pub(super) fn deliver(&mut self, i: &mut Input<'_>) {
        let hold = match i.byte() {
            b @ 224.. => usize::from(b - 223),
            _ => 0,
        };
        self.arrive(self.wire.len().saturating_sub(hold));
    }

    /// Moves `n` bytes from the wire to the read buffer and reads. With a receive capacity
    /// the buffer holds at most that much, as a driver's fixed one: bytes arrive as room
    /// frees up, and a buffer full of a packet the session cannot take is the driver's end
    /// of the connection (as `mqtt-client-nb`'s `RxBufferFull`).
    pub(super) fn arrive(&mut self, n: usize) {
        let cap = self.setup.config.receive_capacity;
        if cap == 0 {
            self.rx.extend(self.wire.drain(..n));
            self.read();
            return;
        }
        let mut left = n;
        // A round moves at least one byte from the wire, or (the buffer full) reads some
        // out of the buffer, or ends the connection.
        for _ in 0..2 * n + 2 {
            let k = left.min(cap.saturating_sub(self.rx.len()));
            self.rx.extend(self.wire.drain(..k));
            left -= k;
            self.read();
            assert!(self.rx.len() <= cap, "the receive buffer overflowed");
            if matches!(
                self.s.state(),
                ConnectionState::Closing | ConnectionState::Disconnected
            ) {
                // Input is ignored now: let the rest arrive at once.
                let rest = left.min(self.wire.len());
                self.wire.drain(..rest);
                self.rx.clear();
                return;
            }
            // A skipped packet's rest left the wire without arriving.
            left = left.min(self.wire.len());
            if left == 0 {
                return;
            }
            if self.rx.len() == cap {
                self.stats.rx_full += 1;
                self.transport_closed();
                return;
            }
        }
        panic!("arrival of {n} bytes did not end in {} rounds", 2 * n + 2);
    }

    /// The driver's read loop over the bytes that arrived.
    pub(super) fn read(&mut self) {
        for _ in 0..LOOP_LIMIT {
            if self.rx.is_empty() {
                return;
            }
            let now = self.instant();
            match self.s.handle_read(now, &self.rx) {
                Ok(Read::Packet { len, event }) => {
                    let seen = event.map(|e| Seen::of(&e));
                    assert!(
                        len > 0 && len <= self.rx.len(),
                        "read {len} of {} bytes",
                        self.rx.len()
                    );
                    if let Some(t) = self.rx.first() {
                        self.stats.read[usize::from(t >> 4)] += 1;
                    }
                    if let Ok(Decoded::Packet {
                        packet: Packet::PubRel(r),
                        ..
                    }) = Packet::decode(&self.rx[..len], self.version, u32::MAX)
                    {
                        // Released: the broker may use the id for a new message.
                        self.incoming_qos2.remove(&r.packet_id.get());
                    }
                    // The escape hatch for loop-returning drivers decodes again: same event.
                    let again = self.s.event(&self.rx[..len]).map(|e| Seen::of(&e));
                    assert_eq!(seen, again, "handle_read's event and event() differ");
                    self.rx.drain(..len);
                    if let Some(seen) = seen {
                        self.on_event(seen);
                    }
                }
                Ok(Read::Incomplete { .. }) => return,
                Ok(Read::Stream {
                    header_len,
                    payload_len,
                }) => {
                    let cap = self.setup.config.receive_capacity;
                    assert!(cap > 0, "streamed without a receive capacity");
                    assert!(self.stream_in.is_none(), "a stream inside a stream");
                    assert!(
                        header_len < cap && header_len <= self.rx.len() && payload_len > 0,
                        "stream of {header_len} + {payload_len} bytes, {} buffered, cap {cap}",
                        self.rx.len()
                    );
                    self.stream_in = Some(StreamIn {
                        header: header_len,
                        offset: 0,
                        left: payload_len,
                    });
                }
                Ok(Read::Chunk { len, last, event }) => {
                    let seen = event.map(|e| Seen::of(&e));
                    let Some(stream) = self.stream_in else {
                        panic!("a chunk outside a stream")
                    };
                    assert!(
                        len > 0 && len <= stream.left && stream.header + len <= self.rx.len(),
                        "chunk of {len}: {stream:?}, {} buffered",
                        self.rx.len()
                    );
                    assert_eq!(last, len == stream.left, "last chunk misreported");
                    if let Some(Seen::Chunk { offset, total, .. }) = seen {
                        assert_eq!(offset, stream.offset, "chunks out of order");
                        assert_eq!(total, stream.offset + stream.left, "total changed");
                    }
                    let again = self
                        .s
                        .event(&self.rx[..stream.header + len])
                        .map(|e| Seen::of(&e));
                    assert_eq!(seen, again, "handle_read's chunk and event() differ");
                    self.rx.drain(stream.header..stream.header + len);
                    self.stream_in = if last {
                        self.rx.drain(..stream.header);
                        self.stats.read[3] += 1;
                        None
                    } else {
                        Some(StreamIn {
                            offset: stream.offset + len,
                            left: stream.left - len,
                            ..stream
                        })
                    };
                    if let Some(seen) = seen {
                        self.on_event(seen);
                    }
                }
                Ok(Read::Skip { len }) => {
                    // The rest of the packet is still on the wire: the driver drops it as it
                    // arrives.
                    let from_rx = len.min(self.rx.len());
                    self.rx.drain(..from_rx);
                    let rest = (len - from_rx).min(self.wire.len());
                    self.wire.drain(..rest);
                }
                Ok(Read::Blocked) => {
                    self.stats.blocked += 1;
                    let sent = self.drain_transmit(None);
                    assert!(sent > 0, "Read::Blocked, and nothing to transmit");
                }
                Ok(Read::Closing) => {
                    self.rx.clear();
                    return;
                }
                Err(e) => {
                    self.stats.protocol_errors += 1;
                    let state = self.s.state();
                    assert_eq!(
                        state,
                        ConnectionState::Closing,
                        "{e:?} left the session {state:?}"
                    );
                    let again = self.s.handle_read(now, &self.rx);
                    assert_eq!(again, Ok(Read::Closing), "input after {e:?}");
                    self.rx.clear();
                    self.wire.clear();
                    return;
                }
            }
        }
        panic!("the read loop did not end in {LOOP_LIMIT} rounds");
    }
}

/// A PUBLISH being received in chunks: its header's length, and where its payload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StreamIn {
    header: usize,
    offset: usize,
    left: usize,
}

/// CONNACK limits chosen by the input (5.0).
#[derive(Debug, Clone, Copy)]
struct ConnAckLimits {
    receive_maximum: u8,
    maximum_packet_size: u8,
    topic_alias_maximum: u8,
    flags: u8,
}

impl ConnAckLimits {
    pub(super) fn read(i: &mut Input<'_>) -> Self {
        Self {
            receive_maximum: i.byte(),
            maximum_packet_size: i.byte(),
            topic_alias_maximum: i.byte(),
            flags: i.byte(),
        }
    }

    pub(super) fn apply(&self, p: &mut ConnAckProperties<'_>) {
        p.receive_maximum = NonZeroU16::new(u16::from(self.receive_maximum));
        p.maximum_packet_size = match self.maximum_packet_size {
            0 => None,
            n @ 1..=127 => NonZeroU32::new(u32::from(n)),
            n => NonZeroU32::new(u32::from(n) * 16),
        };
        p.topic_alias_maximum = Some(u16::from(self.topic_alias_maximum & 7));
        p.maximum_qos = match self.flags & 3 {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            _ => None,
        };
        p.retain_available = Some(self.flags & 4 == 0);
        p.server_keep_alive = match (self.flags >> 3) & 3 {
            0 => None,
            1 => Some(0),
            2 => Some(1),
            _ => Some(5),
        };
    }
}
