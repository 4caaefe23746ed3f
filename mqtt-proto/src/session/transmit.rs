//! What to send next: the session decides, the driver writes.

use super::acks::Ack;
use super::store::{Kind, Record, State};
use super::{
    decode_record, Control, EndCause, Instant, LostReason, Phase, Raised, Session, Transmit,
};
use crate::{
    EncodeError, Packet, PacketId, PacketType, PubResponse, Publish, ReasonCode, TopicName,
};

const V5: bool = cfg!(feature = "v5");

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Writes the next packet to transmit into `buf` and says how long it is and what it
    /// completes, or `None` when nothing is ready. Call until `None` after every input and
    /// command. `now` is when the bytes go out; it drives keep alive and the drain before a
    /// graceful DISCONNECT.
    ///
    /// Order: a DISCONNECT reporting an error; CONNECT; acknowledgements; PINGREQ; queued
    /// packets in the order they were queued (QoS 1 and 2 publishes only while the broker's
    /// Receive Maximum allows, [MQTT-4.9.0-2]); a graceful DISCONNECT last, once drained.
    ///
    /// # Errors
    /// [`EncodeError::BufferTooSmall`] when the next packet does not fit `buf`; nothing was
    /// consumed, so retry with a larger buffer.
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, EncodeError> {
        let mut completes_qos0 = false;
        let n = match self.conn.phase {
            Phase::Disconnected => None,
            Phase::Closing => self.transmit_closing(buf)?,
            Phase::ConnectQueued => {
                let n = self.transmit_control(buf)?;
                self.conn.phase = Phase::AwaitConnAck;
                self.conn.connack_deadline = now + self.config.connack_timeout;
                self.conn.last_rx = now;
                Some(n)
            }
            // AUTH, and a DISCONNECT reporting an error, are 5.0's: a build without `v5`
            // never queues them (`auth` cannot encode AUTH for 3.1.1, `close_with` sends none).
            Phase::AwaitConnAck => match self.conn.control {
                Control::Auth if V5 => Some(self.transmit_control(buf)?),
                _ => None,
            },
            // Write-ahead: nothing goes out before the journal took what precedes it.
            Phase::Connected if self.journal_pending() => None,
            Phase::Connected => self.transmit_connected(now, buf, &mut completes_qos0)?,
        };
        if n.is_some() {
            self.conn.last_tx = now;
        }
        let payload = self.conn.piece.take();
        Ok(n.map(|len| Transmit {
            len,
            completes_qos0,
            payload,
        }))
    }

    fn transmit_closing(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        let n = if V5 && self.conn.control == Control::ErrorDisconnect {
            Some(self.transmit_control(buf)?)
        } else {
            None
        };
        if let Some(reason) = self.conn.closing.take() {
            self.raise(Raised::Lost(reason));
        }
        Ok(n)
    }

    /// Copies the control packet out and empties the control region.
    fn transmit_control(&mut self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let control = super::store_region(&self.store, &self.layout.control());
        // `control_len` is at most the region's length, which `connect` checked.
        let src = control.get(..self.conn.control_len).unwrap_or_default();
        let len = src.len();
        let available = buf.len();
        let dst = buf.get_mut(..len).ok_or(EncodeError::BufferTooSmall {
            needed: len,
            available,
        })?;
        dst.copy_from_slice(src);
        self.conn.control = Control::None;
        self.conn.control_len = 0;
        Ok(len)
    }

    fn transmit_connected(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        completes_qos0: &mut bool,
    ) -> Result<Option<usize>, EncodeError> {
        // A streamed payload under way goes before anything else: nothing may cut into it.
        if let Some(owed) = self.conn.owed {
            return self.transmit_payload(owed, buf, completes_qos0).map(Some);
        }
        if V5 && self.conn.control == Control::Auth {
            return self.transmit_control(buf).map(Some);
        }
        if let Some(ack) = self.acks.front() {
            let n = self.encode_ack(ack, buf)?;
            self.acks.pop();
            return Ok(Some(n));
        }
        if self.conn.ping_due {
            let n = Packet::PingReq.encode(self.version(), buf)?;
            self.conn.ping_due = false;
            self.conn.ping_sent = Some(now);
            return Ok(Some(n));
        }
        if self.subscriptions.has_unrenewed() {
            self.queue_renewals();
        }
        if let Some(n) = self.transmit_log(buf, completes_qos0)? {
            return Ok(Some(n));
        }
        // Not while events wait to be taken: a queued message may still be waiting for a free
        // event slot to report that it cannot be sent, and the end of the connection must be
        // reportable too.
        let events_taken = self.raised.iter().all(Option::is_none);
        if self.conn.control == Control::Disconnect && events_taken && self.drained(now) {
            if self.conn.close_for_will {
                self.conn.phase = Phase::Closing;
                self.conn.cause.get_or_insert(EndCause::Closed);
                self.conn.control = Control::None;
                self.raise(Raised::Lost(LostReason::ClosedForWill));
                return Ok(None);
            }
            // Nothing changes before the DISCONNECT is in `buf`: a buffer too small is retried.
            let n = self.transmit_control(buf)?;
            self.conn.phase = Phase::Closing;
            let (cause, lost) = if self.conn.resync {
                (EndCause::Lost(LostReason::Resync), LostReason::Resync)
            } else {
                (EndCause::Closed, LostReason::DisconnectSent)
            };
            self.conn.cause.get_or_insert(cause);
            self.raise(Raised::Lost(lost));
            return Ok(Some(n));
        }
        Ok(None)
    }

    /// Whether a graceful DISCONNECT may go: no message of ours waits for its acknowledgement
    /// and no incoming handshake is open, or the drain timeout passed.
    fn drained(&mut self, now: Instant) -> bool {
        self.conn.drain_since.get_or_insert(now);
        let incoming_done = self.incoming.len() == 0 && self.acks.front().is_none();
        // A resync waits for the incoming handshakes only: ours are resent with DUP.
        let idle = incoming_done && (self.conn.resync || self.inflight == 0);
        idle || self.conn.drain_expired
    }

    fn encode_ack(&self, ack: Ack, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let mut response = PubResponse::new(ack.packet_id);
        response.reason_code = ack.reason_code;
        let packet = match ack.packet_type {
            PacketType::PubAck => Packet::PubAck(response),
            PacketType::PubRec => Packet::PubRec(response),
            PacketType::PubRel => Packet::PubRel(response),
            _ => Packet::PubComp(response),
        };
        packet.encode(self.version(), buf)
    }

    /// Sends the first queued record that may go now.
    fn transmit_log(
        &mut self,
        buf: &mut [u8],
        completes_qos0: &mut bool,
    ) -> Result<Option<usize>, EncodeError> {
        // Bounded: a pass is only repeated after it dropped a record.
        loop {
            match self.transmit_log_pass(buf, completes_qos0)? {
                Pass::Sent(n) => return Ok(Some(n)),
                Pass::Nothing => return Ok(None),
                Pass::Again => {}
            }
        }
    }

    /// One pass of [`Session::transmit_log`]; `Again` when a dropped record made room for
    /// renewals that now go first.
    fn transmit_log_pass(
        &mut self,
        buf: &mut [u8],
        completes_qos0: &mut bool,
    ) -> Result<Pass, EncodeError> {
        // Renewals restore what the broker had before the application's queued requests
        // change it (an UNSUBSCRIBE queued while disconnected must come after).
        while self.conn.renewing {
            let region = super::store_region(&self.store, &self.layout.log());
            let renewal = self.log.find(region, |r| {
                r.kind == Kind::Resubscribe && r.state == State::Unsent
            });
            let Some(r) = renewal else {
                self.conn.renewing = false;
                break;
            };
            match self.offer(&r, buf, completes_qos0)? {
                Offer::Sent(n) => return Ok(Pass::Sent(n)),
                Offer::Blocked => return Ok(Pass::Nothing),
                Offer::Dropped => {
                    if self.renewals_fit_now() {
                        return Ok(Pass::Again);
                    }
                }
            }
        }
        // With the window full, a long queue of PUBLISHes would be walked on every call for
        // nothing: remember a fruitless scan until the log or the window changes.
        let key = || {
            (
                self.log.generation(),
                self.inflight,
                self.limits.receive_maximum,
            )
        };
        let window_full = self.inflight >= self.limits.receive_maximum;
        if window_full && self.idle_scan == Some(key()) {
            return Ok(Pass::Nothing);
        }
        // A full window holds QoS 1 and 2 PUBLISHes back: start where the first record it
        // does not hold back may be (a PUBREL behind a long queue), not at the queue's front.
        let mut at = self.log.cursor();
        let mut cursor_settled = false;
        if window_full && self.log.unblocked() > at {
            at = self.log.unblocked();
            cursor_settled = true;
        }
        let mut unblocked_settled = false;
        loop {
            let region = super::store_region(&self.store, &self.layout.log());
            let Some(r) = self.log.record(region, at) else {
                break;
            };
            at = r.next();
            if r.state != State::Unsent {
                if !cursor_settled {
                    self.log.set_cursor(at);
                }
                if !unblocked_settled {
                    self.log.pass_unblocked(at);
                }
                continue;
            }
            cursor_settled = true;
            let window_full = self.inflight >= self.limits.receive_maximum;
            if r.kind == Kind::Publish {
                if !unblocked_settled {
                    self.log.pass_unblocked(at);
                }
                if window_full {
                    continue;
                }
            } else {
                unblocked_settled = true;
            }
            match self.offer(&r, buf, completes_qos0)? {
                Offer::Sent(n) => return Ok(Pass::Sent(n)),
                Offer::Blocked => return Ok(Pass::Nothing),
                Offer::Dropped => {
                    if self.renewals_fit_now() {
                        return Ok(Pass::Again);
                    }
                }
            }
        }
        if self.inflight >= self.limits.receive_maximum {
            self.idle_scan = Some((
                self.log.generation(),
                self.inflight,
                self.limits.receive_maximum,
            ));
        }
        Ok(Pass::Nothing)
    }

    /// After a record was dropped: whether renewals that waited for room in the log were
    /// queued now. They go before anything else, so the pass starts again; otherwise a
    /// buffer refused as too small for one packet would be handed another, larger one.
    fn renewals_fit_now(&mut self) -> bool {
        if !self.subscriptions.has_unrenewed() {
            return false;
        }
        let before = self.conn.renewing;
        self.queue_renewals();
        self.conn.renewing && !before
    }

    /// Sends the unsent record `r`, or drops it when it cannot go on this connection.
    fn offer(
        &mut self,
        r: &Record,
        buf: &mut [u8],
        completes_qos0: &mut bool,
    ) -> Result<Offer, EncodeError> {
        if let Some(reason) = self.unsendable(r) {
            // Dropped only once the application can be told; until it polls its events,
            // the record waits.
            let pid = PacketId::new(r.pid);
            let event = match (r.kind, pid) {
                (Kind::Resubscribe, _) => Raised::RenewalDropped(reason),
                (Kind::Subscribe | Kind::Unsubscribe, Some(pid)) => {
                    Raised::RequestDropped(pid, reason)
                }
                _ => Raised::Dropped(pid, reason),
            };
            if !self.raise(event) {
                return Ok(Offer::Blocked);
            }
            if cfg!(feature = "subscription-renewal") && r.kind == Kind::Resubscribe {
                self.renewal_unsendable(r);
            }
            if r.kind == Kind::Subscribe {
                self.subscribe_dropped(r);
            }
            let region = super::store_region_mut(&mut self.store, &self.layout.log());
            self.log.set_state(region, r.at, State::Dead);
            return Ok(Offer::Dropped);
        }
        let n = self.send_record(r, buf)?;
        if r.kind == Kind::Publish && r.sent_before {
            // [MQTT-3.3.1-1] a re-delivered PUBLISH carries DUP
            if let Some(first) = buf.first_mut() {
                *first |= 0b1000;
            }
        }
        if r.streamed {
            self.owe_payload(buf.get(..n).unwrap_or_default(), r.kind, r.pid);
        }
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let next = match r.kind {
            Kind::Publish0 => State::Dead,
            _ => State::Sent,
        };
        self.log.set_state(region, r.at, next);
        self.log.set_sent_before(region, r.at, true);
        match r.kind {
            Kind::Publish => self.inflight += 1,
            // A streamed one completes with its payload's last piece, if it has any.
            Kind::Publish0 => *completes_qos0 = self.conn.owed.is_none(),
            _ => {}
        }
        Ok(Offer::Sent(n))
    }

    /// Why a queued packet cannot go on this connection, if it cannot: the broker's limits
    /// arrived with CONNACK, after it was queued, or the session fell back to 3.1.1, which
    /// cannot express it.
    fn unsendable(&self, r: &Record) -> Option<ReasonCode> {
        let refused = self.refused_by_limits(r);
        if refused.is_some() || !self.encoded_otherwise(r) {
            return refused;
        }
        let region = super::store_region(&self.store, &self.layout.log());
        let packet = decode_record(region, r).map(for_v311);
        match packet.map(|p| p.encoded_len(self.version())) {
            Some(Ok(_)) => None,
            _ => Some(ReasonCode::UnsupportedProtocolVersion),
        }
    }

    fn refused_by_limits(&self, r: &Record) -> Option<ReasonCode> {
        // Without `v5` the limits are 3.1.1's, which refuse nothing: no maximum packet size,
        // QoS 2, wildcards and shared subscriptions allowed, and no SUBSCRIBE of the log
        // carries a subscription identifier (3.1.1 has no properties).
        if !cfg!(feature = "v5") || r.kind == Kind::PubRel {
            return None;
        }
        if let Some(max) = self.limits.maximum_packet_size {
            let region = super::store_region(&self.store, &self.layout.log());
            if r.wire_len(region) > max.get() as usize {
                return Some(ReasonCode::PacketTooLarge);
            }
        }
        match r.kind {
            Kind::Publish0 | Kind::Publish => {
                (r.qos > self.limits.maximum_qos).then_some(ReasonCode::QoSNotSupported)
            }
            Kind::Subscribe | Kind::Resubscribe => {
                let region = super::store_region(&self.store, &self.layout.log());
                match decode_record(region, r) {
                    Some(Packet::Subscribe(s)) => {
                        self.limits.refuses(s.subscriptions.iter(), &s.properties)
                    }
                    _ => None,
                }
            }
            Kind::Unsubscribe | Kind::PubRel => None,
        }
    }

    /// Whether `r` was queued as 5.0 before a fallback to 3.1.1. Without `v5` every record
    /// is 3.1.1 (a journal's 5.0 records are refused), so this is never so.
    fn encoded_otherwise(&self, r: &Record) -> bool {
        cfg!(feature = "v5") && r.v5 != self.version().v5()
    }

    /// Writes a record's packet into `buf`, assigning a topic alias on the way when enabled.
    fn send_record(&mut self, r: &Record, buf: &mut [u8]) -> Result<usize, EncodeError> {
        if self.encoded_otherwise(r) {
            let region = super::store_region(&self.store, &self.layout.log());
            // `unsendable` checked that it decodes and can be encoded.
            let packet = decode_record(region, r).map(for_v311);
            return match packet {
                Some(p) => p.encode(self.version(), buf),
                None => Err(EncodeError::NotInVersion(
                    "a packet queued before the fallback",
                )),
            };
        }
        let aliasing = cfg!(feature = "v5")
            && self.config.outgoing_topic_aliases
            && self.limits.topic_alias_maximum > 0
            && matches!(r.kind, Kind::Publish0 | Kind::Publish)
            && !r.streamed;
        if aliasing {
            if let Some(n) = self.send_with_alias(r, buf)? {
                return Ok(n);
            }
        }
        let region = super::store_region(&self.store, &self.layout.log());
        let packet = r.packet(region);
        let available = buf.len();
        let dst = buf
            .get_mut(..packet.len())
            .ok_or(EncodeError::BufferTooSmall {
                needed: packet.len(),
                available,
            })?;
        dst.copy_from_slice(packet);
        Ok(packet.len())
    }

    /// Re-encodes a stored PUBLISH with a topic alias: the topic is left out when the broker
    /// already knows the alias, and otherwise sent along with a new (or recycled, least
    /// recently used) alias. `None` sends the stored packet as it is: the topic does not fit
    /// the alias table, or the alias property would push the packet past the broker's
    /// Maximum Packet Size. The table changes only once the packet is sure to be sent.
    fn send_with_alias(
        &mut self,
        r: &Record,
        buf: &mut [u8],
    ) -> Result<Option<usize>, EncodeError> {
        let version = self.version();
        let store = self.store.as_mut();
        let (head, log_region) = store.split_at_mut(self.layout.log().start);
        let alias_region = &mut head[self.layout.out_alias()];
        let Some((Packet::Publish(stored), _)) =
            super::decode_stored(r.packet(log_region), version)
        else {
            return Ok(None);
        };
        let topic = stored.topic.as_str();
        let known = self.out_aliases.alias_of(alias_region, topic);
        let alias = match known {
            Some(alias) => alias,
            None if self.out_aliases.count() < self.limits.topic_alias_maximum => {
                self.out_aliases.count() + 1
            }
            None => match self.out_aliases.least_recent(alias_region) {
                Some(alias) => alias,
                None => return Ok(None),
            },
        };
        let mut publish: Publish<'_> = stored;
        publish.properties.topic_alias = core::num::NonZeroU16::new(alias);
        if known.is_some() {
            publish.topic = TopicName::EMPTY;
        }
        let packet = Packet::Publish(publish);
        let len = packet.encoded_len(version)?;
        let max = self
            .limits
            .maximum_packet_size
            .map_or(usize::MAX, |m| m.get() as usize);
        if len > max {
            return Ok(None);
        }
        if len > buf.len() {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: buf.len(),
            });
        }
        self.alias_clock = self.alias_clock.wrapping_add(1);
        let stamp = self.alias_clock;
        if known.is_some() {
            self.out_aliases.touch(alias_region, alias, stamp);
        } else if !self.out_aliases.set(alias_region, alias, topic, stamp) {
            return Ok(None);
        }
        packet.encode(version, buf).map(Some)
    }
}

/// What one pass over the log found.
enum Pass {
    Sent(usize),
    Nothing,
    /// Renewals were queued meanwhile: look again from the start.
    Again,
}

/// What became of a queued record offered for transmission.
enum Offer {
    /// Written: this many bytes.
    Sent(usize),
    /// Dropped (and reported): it cannot go on this connection.
    Dropped,
    /// It cannot go, and the events are full: it waits until they are taken.
    Blocked,
}

/// A packet queued in 5.0 without what 3.1.1 cannot carry: properties and a PUBREL's reason.
fn for_v311(packet: Packet<'_>) -> Packet<'_> {
    match packet {
        Packet::Publish(mut p) => {
            p.properties = Default::default();
            Packet::Publish(p)
        }
        Packet::Subscribe(mut s) => {
            s.properties = Default::default();
            Packet::Subscribe(s)
        }
        Packet::Unsubscribe(mut u) => {
            u.properties = Default::default();
            Packet::Unsubscribe(u)
        }
        Packet::PubRel(r) => Packet::PubRel(PubResponse::new(r.packet_id)),
        other => other,
    }
}
