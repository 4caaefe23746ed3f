//! Time, the transport, and draining the outputs with their checks.

use core::num::NonZeroU32;
use std::string::String;

use super::{topic_name, Fuzz, Input, Pending, LOOP_LIMIT, PAYLOAD, TX_BUF};
use crate::session::{ConnectionState, Event, Instant, Message};
use crate::{Decoded, DisconnectProperties, EncodeError, Packet, PacketId, PacketType, QoS};

impl Fuzz {
    // ---- time and transport ----

    pub(super) fn advance(&mut self, to: u64) {
        self.now = self.now.max(to);
        let now = self.instant();
        self.s.handle_timeout(now);
        if let Some(next) = self.s.poll_timeout() {
            assert!(
                next > now,
                "deadline {next:?} not after handle_timeout({now:?})"
            );
        }
    }

    pub(super) fn jump(&mut self, i: &mut Input<'_>) {
        let selector = i.byte();
        let to = match selector % 4 {
            0 => self.now.saturating_add(u64::from(i.u16()) * 1000),
            1 => u64::MAX - u64::from(i.u16()),
            2 => self.now.saturating_add(1 << 40),
            _ => self.s.poll_timeout().map_or(self.now, Instant::as_millis),
        };
        self.advance(to);
    }

    pub(super) fn transport_closed(&mut self) {
        let _ = self.s.handle_transport_closed(self.instant());
        self.wire.clear();
        self.rx.clear();
        self.stream_in = None;
        // A streamed PUBLISH cut short never reached the broker.
        self.stream_out = None;
        assert!(
            !self.s.is_sending_payload(),
            "a payload outlived its transport"
        );
        assert!(!self.s.is_streaming(), "a stream outlived its transport");
        assert_eq!(self.s.state(), ConnectionState::Disconnected);
        // A fallback to 3.1.1 changes the language of everything from here on.
        let version = self.s.version();
        assert!(
            version == self.version || (self.version.is_v5() && self.setup.config.fallback_to_v311),
            "the session went from {:?} to {version:?}",
            self.version
        );
        self.version = version;
    }

    // ---- outputs ----

    /// Drains `poll_transmit` with buffers of `size` (default: the current size); a refused
    /// buffer is replaced by one of the size asked for. Returns the packets transmitted.
    pub(super) fn drain_transmit(&mut self, size: Option<usize>) -> usize {
        let size = size.unwrap_or(self.tx_size).min(TX_BUF);
        // Pieces of streamed payloads do not count: a 70,000-byte payload through a 2-byte
        // buffer takes 35,000 of them, bounded by the payload, not by the loop.
        let mut count = 0;
        let mut pieces = 0usize;
        while count < LOOP_LIMIT {
            let now = self.instant();
            let state = self.s.state();
            let limit = self.s.limits().maximum_packet_size;
            let t = match self.s.poll_transmit(now, &mut self.tx[..size]) {
                Ok(Some(t)) if t.len <= size => t,
                Ok(Some(t)) => panic!("{} bytes transmitted from a buffer of {size}", t.len),
                Ok(None) => return count,
                Err(EncodeError::BufferTooSmall { needed, available }) => {
                    assert!(
                        available == size && needed > size && needed <= TX_BUF,
                        "buffer of {size} refused: {needed} needed, {available} available"
                    );
                    match self.s.poll_transmit(now, &mut self.tx[..needed]) {
                        Ok(Some(t)) if t.len <= needed => t,
                        other => panic!("{needed} bytes asked for, then {other:?}"),
                    }
                }
                Err(e) => panic!("poll_transmit failed: {e:?}"),
            };
            if t.payload().is_some() {
                pieces += 1;
                assert!(
                    pieces <= LOOP_LIMIT * PAYLOAD.len(),
                    "endless payload pieces"
                );
            } else {
                count += 1;
            }
            self.streamed_transmit(t, state, limit);
        }
        panic!("poll_transmit did not run dry in {LOOP_LIMIT} calls");
    }

    /// A transmit, which may be a streamed PUBLISH's header or a piece of its payload: those
    /// are put together and checked as one packet once the last piece is out, and nothing
    /// else may come between them.
    fn streamed_transmit(
        &mut self,
        t: crate::session::Transmit,
        state: ConnectionState,
        limit: Option<NonZeroU32>,
    ) {
        let n = t.len;
        match (t.payload(), self.stream_out.take()) {
            (Some(piece), Some((mut packet, state, limit))) => {
                let header = crate::FixedHeader::decode(&packet).ok().flatten();
                let header = header.expect("a streamed PUBLISH's header");
                let offset = packet.len() - (header.packet_len() - piece.total_len);
                assert_eq!(piece.offset, offset, "payload pieces out of order");
                assert!(
                    n > 0 && piece.offset + n <= piece.total_len,
                    "{piece:?} of {n}"
                );
                // The fuzz payload is all one byte, whatever the offset.
                packet.extend_from_slice(&PAYLOAD[..n]);
                if self.s.is_sending_payload() {
                    assert!(!piece.is_last(n), "more asked for after the last piece");
                    self.stream_out = Some((packet, state, limit));
                } else {
                    assert!(piece.is_last(n), "the payload ended early");
                    assert_eq!(packet.len(), header.packet_len());
                    self.tx[..packet.len()].copy_from_slice(&packet);
                    self.on_transmit(packet.len(), state, limit);
                }
            }
            (Some(piece), None) => panic!("{piece:?} without a streamed header"),
            (None, Some(_)) => panic!("a packet cut into a streamed payload"),
            (None, None) if self.s.is_sending_payload() => {
                self.stream_out = Some((self.tx[..n].to_vec(), state, limit));
            }
            (None, None) => self.on_transmit(n, state, limit),
        }
    }

    /// Checks and remembers a transmitted packet, sent in `state` under the broker's `limit`.
    pub(super) fn on_transmit(
        &mut self,
        n: usize,
        state: ConnectionState,
        limit: Option<NonZeroU32>,
    ) {
        let bytes = &self.tx[..n];
        let packet = match Packet::decode(bytes, self.version, u32::MAX) {
            Ok(Decoded::Packet { packet, len }) if len == n => packet,
            other => panic!(
                "transmitted {n} bytes {:02x?} that are not one packet: {other:?}",
                &bytes[..n.min(32)]
            ),
        };
        let t = packet.packet_type();
        self.stats.sent[t as usize] += 1;
        let allowed = match state {
            ConnectionState::Disconnected => false,
            ConnectionState::Connecting => matches!(t, PacketType::Connect | PacketType::Auth),
            ConnectionState::Connected => t != PacketType::Connect,
            ConnectionState::Closing => t == PacketType::Disconnect,
        };
        assert!(allowed, "{t:?} transmitted while {state:?}");
        if let (ConnectionState::Connected, Some(max)) = (state, limit) {
            assert!(
                n <= max.get() as usize || irreducible(&packet),
                "{t:?} of {n} bytes sent to a broker with maximum packet size {max}"
            );
        }
        match packet {
            Packet::Publish(p) => {
                if let Some(pid) = p.packet_id() {
                    self.sent_publishes.push(pid.get());
                    let inflight = self.s.inflight();
                    let limit = self.s.limits().receive_maximum;
                    assert!(
                        inflight <= limit,
                        "PUBLISH sent with {inflight} in flight, receive maximum {limit}"
                    );
                }
            }
            Packet::PubRel(r) => self.sent_pubrels.push(r.packet_id.get()),
            Packet::PubRec(r) => self.sent_pubrecs.push(r.packet_id.get()),
            Packet::Subscribe(s) => self
                .sent_subscribes
                .push((s.packet_id.get(), s.subscriptions.len())),
            Packet::Unsubscribe(u) => self
                .sent_unsubscribes
                .push((u.packet_id.get(), u.filters.len())),
            _ => {}
        }
    }

    /// Drains transmits and events until both are empty, as a driver does after every input
    /// and command (handling an event can queue packets: a republished message).
    pub(super) fn drain(&mut self) {
        for _ in 0..LOOP_LIMIT {
            if self.drain_transmit(None) + self.drain_events() == 0 {
                return;
            }
        }
        panic!("transmits and events did not run dry in {LOOP_LIMIT} rounds");
    }

    /// Drains `poll_event`; returns the number of events.
    pub(super) fn drain_events(&mut self) -> usize {
        for count in 0..LOOP_LIMIT {
            let announced = self.s.has_event();
            let Some(event) = self.s.poll_event() else {
                return count;
            };
            assert!(
                announced,
                "poll_event returned {event:?} after has_event() false"
            );
            if let Event::PublishAbandoned {
                packet_id,
                reached_broker,
            } = event
            {
                self.abandoned(packet_id, reached_broker);
            } else {
                self.on_event(Seen::of(&event));
            }
        }
        panic!("poll_event did not run dry in {LOOP_LIMIT} calls");
    }

    /// An abandoned message is lent back as it was queued (unless the broker had it), and
    /// published again when the setup says so.
    pub(super) fn abandoned(&mut self, pid: PacketId, reached_broker: bool) {
        self.stats.abandoned += 1;
        let streamed = self.streamed.contains(&pid.get());
        self.finished(pid, Pending::Publish);
        let lent = self.s.abandoned_message();
        if streamed {
            assert!(
                lent.is_none(),
                "a streamed message has no bytes to lend back"
            );
            return;
        }
        if reached_broker {
            assert!(lent.is_none(), "a message past PUBREC lent back");
            return;
        }
        let Some(p) = lent else {
            panic!("abandoned message {pid:?} not lent back");
        };
        assert_eq!(
            p.packet_id(),
            Some(pid),
            "abandoned message under another id"
        );
        assert!(
            !p.dup,
            "an abandoned message is lent as it was queued, without DUP"
        );
        if self.setup.republish {
            let topic = String::from(p.topic.as_str());
            let payload = p.payload.to_vec();
            let mut message = Message::new(topic_name(&topic), &payload, p.qos_pid.qos());
            message.retain = p.retain;
            self.publish_message(&message, false);
        }
    }

    pub(super) fn on_event(&mut self, seen: Seen) {
        match seen {
            Seen::Connected { session_present } => {
                self.stats.connected += 1;
                self.carried = self.s.inflight();
                if !session_present {
                    self.incoming_qos2.clear();
                }
            }
            Seen::Chunk {
                qos,
                pid,
                topic,
                last,
                ..
            } => {
                assert!(topic, "a chunk without topic delivered");
                self.stats.chunks += 1;
                if last {
                    // Delivered once its last chunk is.
                    self.on_event(Seen::Message { qos, pid, topic });
                }
            }
            Seen::Message { qos, pid, topic } => {
                assert!(topic, "a message without topic delivered");
                self.stats.messages[qos as usize] += 1;
                if let Some(pid) = pid {
                    self.delivered.push(pid);
                    let first = qos != QoS::ExactlyOnce || self.incoming_qos2.insert(pid);
                    assert!(first, "QoS 2 message {pid} delivered twice before PUBREL");
                }
            }
            Seen::Published { pid, qos } => {
                self.stats.published[qos as usize] += 1;
                self.finished(pid, Pending::Publish);
            }
            Seen::Subscribed(pid) => {
                self.stats.subscribed += 1;
                self.finished(pid, Pending::Subscribe);
            }
            Seen::Unsubscribed(pid) => {
                self.stats.subscribed += 1;
                self.finished(pid, Pending::Unsubscribe);
            }
            Seen::Dropped(pid) => {
                self.stats.dropped += 1;
                if let Some(pid) = pid {
                    self.finished(pid, Pending::Publish);
                }
            }
            Seen::RequestDropped(pid) => {
                self.stats.dropped += 1;
                // A SUBSCRIBE or UNSUBSCRIBE: whichever the id held.
                let kind = match self.outstanding.get(&pid.get()) {
                    Some(Pending::Unsubscribe) => Pending::Unsubscribe,
                    _ => Pending::Subscribe,
                };
                self.finished(pid, kind);
            }
            Seen::Resubscribed(pid) => {
                self.stats.resubscribed += 1;
                assert!(
                    !self.outstanding.contains_key(&pid.get()),
                    "a renewal under the id of an application request: {pid:?}"
                );
            }
            Seen::Lost => self.stats.lost += 1,
            Seen::Other => {}
        }
    }
}

/// What an event says, copied out of its borrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    Connected {
        session_present: bool,
    },
    Message {
        qos: QoS,
        pid: Option<u16>,
        /// Whether the topic is non-empty.
        topic: bool,
    },
    Published {
        pid: PacketId,
        qos: QoS,
    },
    /// A chunk of a streamed message.
    Chunk {
        qos: QoS,
        pid: Option<u16>,
        topic: bool,
        offset: usize,
        total: usize,
        last: bool,
    },
    Subscribed(PacketId),
    Resubscribed(PacketId),
    Unsubscribed(PacketId),
    Dropped(Option<PacketId>),
    RequestDropped(PacketId),
    Lost,
    Other,
}

impl Seen {
    pub(super) fn of(event: &Event<'_>) -> Self {
        match *event {
            Event::Connected {
                session_present, ..
            } => Self::Connected { session_present },
            Event::Message(p) => Self::Message {
                qos: p.qos_pid.qos(),
                pid: p.packet_id().map(PacketId::get),
                topic: !p.topic.is_empty(),
            },
            Event::MessageChunk(c) => Self::Chunk {
                qos: c.message.qos_pid.qos(),
                pid: c.message.packet_id().map(PacketId::get),
                topic: !c.message.topic.is_empty(),
                offset: c.offset,
                total: c.total_len,
                last: c.is_last(),
            },
            Event::Published { packet_id, qos, .. } => Self::Published {
                pid: packet_id,
                qos,
            },
            Event::Subscribed { packet_id, .. } => Self::Subscribed(packet_id),
            Event::Resubscribed { packet_id, .. } => Self::Resubscribed(packet_id),
            Event::Unsubscribed { packet_id, .. } => Self::Unsubscribed(packet_id),
            Event::PublishDropped { packet_id, .. } => Self::Dropped(packet_id),
            Event::RequestDropped { packet_id, .. } => Self::RequestDropped(packet_id),
            Event::ConnectionLost(_) => Self::Lost,
            _ => Self::Other,
        }
    }
}

/// Whether `packet` is one the session must send and cannot make smaller: an acknowledgement
/// (at most 5 bytes), PINGREQ, or DISCONNECT without properties. A broker whose Maximum Packet
/// Size is below these leaves the session no compliant choice, so they are not held to it.
fn irreducible(packet: &Packet<'_>) -> bool {
    match packet {
        Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubRel(_) | Packet::PubComp(_) => true,
        Packet::PingReq => true,
        Packet::Disconnect(d) => d.properties == DisconnectProperties::default(),
        _ => false,
    }
}
