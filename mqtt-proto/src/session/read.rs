//! Received packets: what each one does to the session, then what it tells the application.
//!
//! Processing is split in two so that no borrow outlives an error: `apply` changes the session
//! and may fail; `event_for` then builds the event from the packet (and, for a PUBLISH named
//! by topic alias, from the alias table).

use core::time::Duration;

use super::acks::Ack;
use super::incoming::InState;
use super::store::{Kind, Record, State};
use super::{
    decode_record, Control, EndCause, Event, Instant, LostReason, Phase, ProtocolError, Raised,
    Read, Session,
};
use crate::{
    Auth, ConnAck, ConnAckProperties, DecodeError, Decoded, Disconnect, FixedHeader, Packet,
    PacketId, PacketType, ProtocolVersion, PubResponse, Publish, QoS, QosPid, ReasonCode, Seq,
    SubAck, TopicName, UnsubAck,
};
use core::num::NonZeroUsize;

/// What the last processed packet means for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing to report.
    Silent,
    /// Report the packet's own event (Message, Published, Subscribed, ...).
    Report,
    /// PINGRESP with this round trip.
    Pong(Duration),
    /// A 3.1.1 CONNACK refused our 5.0 CONNECT, with this (mapped) code.
    RefusedOlder(ReasonCode),
    /// SUBACK answered a renewal SUBSCRIBE, which waits in the log as `Answered`.
    Renewed,
    /// A chunk of a streamed PUBLISH: `len` payload bytes from `offset` of `total`, after
    /// a header of `header_len` bytes.
    Chunk {
        header_len: usize,
        offset: usize,
        len: usize,
        total: usize,
    },
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Processes the packet at the front of `buf`, decoding it once. On [`Read::Packet`],
    /// handle (or copy) its event, which borrows `buf` and the session; then drop `len`
    /// bytes from the front of the input and call again with the rest until
    /// [`Read::Incomplete`].
    ///
    /// A driver that must return the event from inside a loop over its input (as a no-alloc
    /// driver lending its receive buffer does) cannot keep this borrow under today's borrow
    /// checker: it can note whether there was an event, let the borrow go, and take the event
    /// again with [`Session::event`] in the branch that returns.
    ///
    /// # Errors
    /// [`ProtocolError`] when the broker broke the protocol: the session has queued a
    /// DISCONNECT with the matching reason code (5.0); transmit it, then close the transport.
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn handle_read<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a [u8],
    ) -> Result<Read<'a>, ProtocolError> {
        self.last_read = Outcome::Silent;
        self.reported = None;
        self.retire_answered();
        match self.conn.phase {
            Phase::Disconnected | Phase::Closing | Phase::ConnectQueued => {
                return Ok(Read::Closing)
            }
            Phase::AwaitConnAck | Phase::Connected => {}
        }
        // Acks only go out once connected; before, no packet the session accepts queues one.
        if self.conn.phase == Phase::Connected && self.acks.is_full() {
            return Ok(Read::Blocked);
        }
        if let Some(stream) = self.stream.filter(|_| cfg!(feature = "receive-streaming")) {
            return self.read_chunk(now, buf, stream);
        }
        // A packet only a server receives (or AUTH where we use none) is refused from its
        // first byte, whatever its body: decoding it would only tell a malformed one apart.
        if let Some(unexpected) = buf.first().and_then(|&first| self.never_received(first)) {
            return Err(self.fail(ProtocolError::UnexpectedPacket(unexpected)));
        }
        if let Some(read) = self.older_refusal(now, buf) {
            return Ok(read);
        }
        if let Some(read) = self.start_stream(now, buf) {
            return read;
        }
        let decoded = decode_client(buf, self.version(), self.config.maximum_packet_size);
        let (packet, len) = match decoded {
            Ok(Decoded::Packet { packet, len }) => (packet, len),
            Ok(Decoded::Incomplete { needed }) => return Ok(Read::Incomplete { needed }),
            Err(ProtocolError::Decode(DecodeError::PacketTooLarge { size, .. }))
                if self.conn.phase == Phase::Connected =>
            {
                return self.skip_oversized(now, buf, size);
            }
            Err(e) => return Err(self.fail(e)),
        };
        self.conn.last_rx = now;
        match self.apply(now, &packet) {
            Ok(outcome) => {
                self.last_read = outcome;
                let this: &'a Self = self;
                let event = match outcome {
                    Outcome::Silent => None,
                    Outcome::Report => this.event_for(packet),
                    Outcome::Renewed => this.renewed_event(packet),
                    other => this.outcome_event(other),
                };
                Ok(Read::Packet { len, event })
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The event of the packet the last [`Session::handle_read`] processed, again, given
    /// that packet's bytes (the first `len` bytes of the input it was handed; for a
    /// [`Read::Chunk`], the header followed by the chunk's `len` bytes): for drivers
    /// that had to let go of the event `handle_read` returned. It decodes the packet a
    /// second time. Call it before feeding more input; it borrows the packet and the session
    /// (a topic named by alias). `None` when that packet has nothing to report, or when
    /// `packet` is not its bytes.
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn event<'s>(&'s self, packet: &'s [u8]) -> Option<Event<'s>> {
        match self.last_read {
            Outcome::Silent => None,
            Outcome::Report | Outcome::Renewed => {
                match decode_client(packet, self.version(), u32::MAX) {
                    Ok(Decoded::Packet { packet, .. }) if self.last_read == Outcome::Renewed => {
                        self.renewed_event(packet)
                    }
                    Ok(Decoded::Packet { packet, .. }) => self.event_for(packet),
                    _ => None,
                }
            }
            Outcome::Chunk { .. } => self.chunk_event(packet),
            other => self.outcome_event(other),
        }
    }

    /// The event of an outcome that needs no packet bytes.
    fn outcome_event(&self, outcome: Outcome) -> Option<Event<'static>> {
        match outcome {
            Outcome::Silent | Outcome::Report | Outcome::Renewed | Outcome::Chunk { .. } => None,
            Outcome::Pong(round_trip) => Some(Event::Pong { round_trip }),
            // Only a 5.0 CONNECT meets a 3.1.1 refusal it cannot parse (`older_refusal`).
            Outcome::RefusedOlder(_) if !cfg!(feature = "v5") => None,
            Outcome::RefusedOlder(reason_code) => Some(Event::ConnectionRefused {
                reason_code,
                properties: ConnAckProperties::default(),
            }),
        }
    }

    /// The event of a renewal's SUBACK: its codes with the filters of the renewal.
    fn renewed_event<'s>(&'s self, packet: Packet<'s>) -> Option<Event<'s>> {
        if !cfg!(feature = "subscription-renewal") {
            return None;
        }
        let Packet::SubAck(ack) = packet else {
            return None;
        };
        let region = super::store_region(&self.store, &self.layout.log());
        let renewal = self.log.find(region, |r| {
            r.kind == Kind::Resubscribe
                && r.pid == ack.packet_id.get()
                && r.state == State::Answered
        })?;
        let Some(Packet::Subscribe(s)) = decode_record(region, &renewal) else {
            return None;
        };
        Some(Event::Resubscribed {
            packet_id: ack.packet_id,
            subscriptions: s.subscriptions,
            reason_codes: ack.reason_codes,
            properties: ack.properties,
        })
    }

    /// Turns a protocol error into a closing connection with a DISCONNECT (5.0).
    pub(super) fn fail(&mut self, error: ProtocolError) -> ProtocolError {
        let reason = error.reason_code();
        let lost = LostReason::ProtocolError(reason);
        self.conn.cause.get_or_insert(EndCause::Lost(lost));
        self.close_with(lost, reason);
        error
    }

    fn apply(&mut self, now: Instant, packet: &Packet<'_>) -> Result<Outcome, ProtocolError> {
        let connected = self.conn.phase == Phase::Connected;
        match packet {
            Packet::ConnAck(c) if !connected => self.on_connack(now, c),
            // The broker may only use AUTH when we named an authentication method, and
            // DISCONNECT in 5.0: `never_received` refused them otherwise.
            // Neither reaches a build without `v5`: saying so leaves their arms out.
            Packet::Auth(_) if cfg!(feature = "v5") => Ok(Outcome::Report),
            Packet::Disconnect(d) if cfg!(feature = "v5") => {
                self.conn.phase = Phase::Closing;
                self.conn
                    .cause
                    .get_or_insert(EndCause::Disconnected(d.reason_code));
                self.conn.reference = d.properties.server_reference.is_some();
                self.acks.clear();
                Ok(Outcome::Report)
            }
            Packet::Publish(p) if connected => self.on_publish(p),
            Packet::PubAck(r) if connected => Ok(self.on_puback(now, r)),
            Packet::PubRec(r) if connected => Ok(self.on_pubrec(now, r)),
            Packet::PubRel(r) if connected => Ok(self.on_pubrel(r)),
            Packet::PubComp(r) if connected => Ok(self.on_pubcomp(r)),
            Packet::SubAck(s) if connected => {
                self.on_request_ack(Kind::Subscribe, s.packet_id, &s.reason_codes)
            }
            Packet::UnsubAck(u) if connected => {
                self.on_request_ack(Kind::Unsubscribe, u.packet_id, &u.reason_codes)
            }
            Packet::PingResp if connected => Ok(match self.conn.ping_sent.take() {
                Some(sent) => Outcome::Pong(now.saturating_duration_since(sent)),
                None => Outcome::Silent,
            }),
            other => Err(ProtocolError::UnexpectedPacket(other.packet_type())),
        }
    }

    /// Builds the event of a packet that `apply` chose to report.
    fn event_for<'s>(&'s self, packet: Packet<'s>) -> Option<Event<'s>> {
        Some(match packet {
            Packet::ConnAck(c) => connack_event(c),
            Packet::Auth(a) if cfg!(feature = "v5") => Event::Auth(a),
            Packet::Disconnect(d) if cfg!(feature = "v5") => disconnect_event(d),
            Packet::Publish(p) => self.message_event(p),
            Packet::PubAck(r) => published(r, QoS::AtLeastOnce),
            Packet::PubRec(r) | Packet::PubComp(r) => published(r, QoS::ExactlyOnce),
            Packet::SubAck(s) => Event::Subscribed {
                packet_id: s.packet_id,
                reason_codes: s.reason_codes,
                properties: s.properties,
            },
            Packet::UnsubAck(u) => Event::Unsubscribed {
                packet_id: u.packet_id,
                reason_codes: u.reason_codes,
                properties: u.properties,
            },
            _ => return None,
        })
    }

    /// The event of a PUBLISH, its topic resolved. Not inlined, like [`connack_event`]: built
    /// in the caller's return slot instead of in registers merged across every arm.
    #[inline(never)]
    fn message_event<'s>(&'s self, mut p: Publish<'s>) -> Event<'s> {
        self.resolve_alias(&mut p);
        Event::Message(p)
    }

    /// Fills in the topic of a PUBLISH that names it by alias only, in place: passing the
    /// message through would copy it twice.
    pub(super) fn resolve_alias<'s>(&'s self, p: &mut Publish<'s>) {
        let alias = p.properties.topic_alias.filter(|_| cfg!(feature = "v5"));
        if let (true, Some(alias)) = (p.topic.is_empty(), alias) {
            let region = super::store_region(&self.store, &self.layout.in_alias());
            // `apply` checked that the alias is known; its topic was validated when stored.
            if let Some(topic) = self.in_aliases.topic_of(region, alias.get()) {
                p.topic = TopicName::from_validated(topic);
            }
        }
    }

    fn on_connack(
        &mut self,
        now: Instant,
        c: &crate::ConnAck<'_>,
    ) -> Result<Outcome, ProtocolError> {
        let session_present = c.session_present;
        if c.reason_code.is_error() {
            self.conn.phase = Phase::Closing;
            self.conn
                .cause
                .get_or_insert(EndCause::Refused(c.reason_code));
            // A Server Reference is a 5.0 property.
            self.conn.reference = cfg!(feature = "v5") && c.properties.server_reference.is_some();
            self.fall_back_if_refused(c.reason_code);
            return Ok(Outcome::Report);
        }
        // [MQTT-3.2.2-4] a client without session state must not accept session present
        if session_present && self.conn.clean_start {
            return Err(ProtocolError::UnexpectedSessionPresent);
        }
        self.limits = super::BrokerLimits::defaults(self.keep_alive, self.session_expiry);
        // A 3.1.1 CONNACK has no properties: the defaults are its limits.
        if self.version().v5() {
            self.limits.apply(&c.properties);
        }
        // 3.1.1 has no subscription identifiers.
        self.limits.subscription_identifier_available &= self.version().v5();
        // Our own cap on top of the broker's; 0 would stall every QoS 1/2 publish.
        self.limits.receive_maximum = self
            .limits
            .receive_maximum
            .min(self.config.max_inflight.max(1));
        if !session_present {
            // [MQTT-3.2.2-5] without the broker's session, ours is discarded
            self.abandon_session();
            self.subscriptions_lost();
        }
        // Renewals left from an earlier connection go first too (none without the feature).
        self.conn.renewing = cfg!(feature = "subscription-renewal");
        let assigned = c.properties.assigned_client_identifier;
        if let Some(id) = assigned.filter(|_| self.version().v5()) {
            self.keep_assigned_id(id);
        }
        self.conn.phase = Phase::Connected;
        self.conn.control = Control::None;
        self.conn.up_since = Some(now);
        let resumable = self.resumable();
        self.connected_before = true;
        // Journaled once, on the first connection that makes the session resumable.
        self.journal.resumable |= !resumable && self.resumable();
        self.log.rewind();
        Ok(Outcome::Report)
    }

    /// Keeps a broker-assigned client identifier for the next connections, if it fits.
    fn keep_assigned_id(&mut self, id: &str) {
        let region = super::store_region_mut(&mut self.store, &self.layout.assigned());
        match region.get_mut(..id.len()) {
            Some(dst) => {
                dst.copy_from_slice(id.as_bytes());
                self.assigned_len = id.len();
            }
            None => self.assigned_len = 0,
        }
        self.journal.identity = true;
    }

    /// The type of a packet whose first byte is `first`, if a client never receives it on
    /// this connection: CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ go to servers only,
    /// DISCONNECT comes from the server in 5.0 only, and AUTH only in 5.0 after a CONNECT
    /// that named an authentication method. Reserved type 0 is left to the decoder (malformed).
    fn never_received(&self, first: u8) -> Option<PacketType> {
        use PacketType as T;
        let packet_type = T::from_u8(first >> 4)?;
        let received = match packet_type {
            T::Connect | T::Subscribe | T::Unsubscribe | T::PingReq => false,
            T::Disconnect => self.version().v5(),
            T::Auth => self.version().v5() && self.conn.uses_auth,
            _ => true,
        };
        (!received).then_some(packet_type)
    }

    /// A 5.0 CONNECT answered by a 3.1.1-only broker: its CONNACK (`20 02 00 01`, Unacceptable
    /// Protocol Version) is malformed in 5.0, and reporting it as such would hide the cause.
    fn older_refusal(&mut self, now: Instant, buf: &[u8]) -> Option<Read<'static>> {
        if self.conn.phase != Phase::AwaitConnAck || !self.version().v5() {
            return None;
        }
        let [0x20, 0x02, 0x00, code, ..] = *buf else {
            return None;
        };
        let reason = ReasonCode::from_v3_connack(code).filter(|r| r.is_error())?;
        self.conn.last_rx = now;
        self.conn.phase = Phase::Closing;
        self.conn.cause.get_or_insert(EndCause::Refused(reason));
        self.fall_back_if_refused(reason);
        self.last_read = Outcome::RefusedOlder(reason);
        Some(Read::Packet {
            len: 4,
            event: self.outcome_event(self.last_read),
        })
    }

    /// A 5.0 CONNECT refused as Unsupported Protocol Version, with
    /// [`SessionConfig::fallback_to_v311`](super::SessionConfig) set: the next connection
    /// speaks 3.1.1 (the switch happens in `handle_transport_closed`, so that this refusal's
    /// event still decodes as 5.0).
    fn fall_back_if_refused(&mut self, reason: ReasonCode) {
        let refused = reason == ReasonCode::UnsupportedProtocolVersion;
        if refused && self.version().v5() && self.config.fallback_to_v311 {
            self.conn.fall_back = true;
            self.raise(Raised::FellBack);
        }
    }

    /// A PUBLISH over our maximum packet size: acknowledged per its QoS (so it does not come
    /// back on every connection) and reported, not delivered. Its topic and packet identifier
    /// are read from the front of `buf`.
    pub(super) fn skip_oversized(
        &mut self,
        now: Instant,
        buf: &[u8],
        size: u32,
    ) -> Result<Read<'static>, ProtocolError> {
        let header = match FixedHeader::decode(buf) {
            Ok(Some(h)) if h.packet_type == PacketType::Publish => h,
            _ => {
                let max = self.config.maximum_packet_size;
                return Err(
                    self.fail(ProtocolError::Decode(DecodeError::PacketTooLarge {
                        size,
                        max,
                    })),
                );
            }
        };
        let qos = QoS::from_u8((header.flags >> 1) & 3).unwrap_or(QoS::AtMostOnce);
        let body = buf
            .get(usize::from(header.header_len)..)
            .unwrap_or_default();
        let pid = if qos == QoS::AtMostOnce {
            None
        } else {
            let topic_len = match body.get(..2) {
                Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
                None => return Ok(Read::Incomplete { needed: None }),
            };
            match body.get(2 + topic_len..4 + topic_len) {
                Some(b) => PacketId::new(u16::from_be_bytes([b[0], b[1]])),
                None => return Ok(Read::Incomplete { needed: None }),
            }
        };
        self.conn.last_rx = now;
        match (qos, pid) {
            (QoS::AtLeastOnce, Some(pid)) => {
                self.queue_ack(PacketType::PubAck, pid, ReasonCode::Success)
            }
            (QoS::ExactlyOnce, Some(pid)) => {
                let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
                if self.incoming.find(region, pid.get()).is_none()
                    && !self
                        .incoming
                        .insert(region, pid.get(), InState::AwaitingRel, qos)
                {
                    // No room to remember it: leave it with the broker, as for any overrun.
                    self.report_overrun(true);
                    return Ok(Read::Skip {
                        len: header.packet_len(),
                    });
                }
                self.queue_ack(PacketType::PubRec, pid, ReasonCode::Success);
            }
            // [MQTT-2.2.1-2] QoS 1 and 2 need a non-zero packet identifier.
            (QoS::AtLeastOnce | QoS::ExactlyOnce, None) => {
                return Err(self.fail(ProtocolError::Decode(DecodeError::ZeroPacketId)));
            }
            _ => {}
        }
        self.raise(Raised::Skipped(pid, qos, size));
        Ok(Read::Skip {
            len: header.packet_len(),
        })
    }

    /// Notes once per connection that the broker exceeds our Receive Maximum.
    pub(super) fn report_overrun(&mut self, deferred: bool) {
        let reported = if deferred {
            &mut self.conn.deferral_reported
        } else {
            &mut self.conn.overrun_reported
        };
        if !core::mem::replace(reported, true) {
            let in_flight = u16::try_from(self.incoming.len()).unwrap_or(u16::MAX);
            self.raise(Raised::Overrun {
                in_flight,
                deferred,
            });
        }
        if deferred {
            self.begin_resync();
        }
    }

    /// A message was left with the broker for lack of room. Brokers send an unacknowledged
    /// PUBLISH again only on a new connection (MQTT-4.4.0-1), and mosquitto holds a place in
    /// its window for it meanwhile, so without a new connection the flow stalls for good.
    /// Once the incoming handshakes are done (the table has room for what comes back), a
    /// DISCONNECT goes out and the session reconnects at once, resuming its session. Every
    /// such connection delivers at least a table's worth of messages, so this cannot loop
    /// without progress.
    fn begin_resync(&mut self) {
        if self.conn.phase != Phase::Connected
            || self.conn.resync
            || self.conn.control != Control::None
            || self.conn.cause.is_some()
        {
            return;
        }
        let disconnect = crate::Disconnect::default();
        if self
            .write_control(&Packet::Disconnect(disconnect), Control::Disconnect)
            .is_ok()
        {
            self.conn.resync = true;
        }
    }

    /// Marks every message the broker may have seen as abandoned, and forgets incoming ids.
    fn abandon_session(&mut self) {
        // Acknowledgements the application gave while disconnected belong to the lost session.
        self.acks.clear();
        // Every incoming identifier is forgotten at once: only a snapshot says so.
        self.journal.snapshot = true;
        let incoming = super::store_region_mut(&mut self.store, &self.layout.incoming());
        self.incoming.clear(incoming);
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let mut at = self.log.head();
        while let Some(r) = self.log.record(region, at) {
            at = r.next();
            let seen_by_broker = match r.kind {
                Kind::Publish => r.sent_before,
                Kind::PubRel => true,
                _ => false,
            };
            if seen_by_broker && !matches!(r.state, State::Dead | State::Abandoned) {
                self.log.set_state(region, r.at, State::Abandoned);
                self.abandoned += 1;
            }
        }
        self.inflight = 0;
    }

    fn on_publish(&mut self, p: &Publish<'_>) -> Result<Outcome, ProtocolError> {
        self.take_alias(p)?;
        self.qos_bookkeeping(p)
    }

    /// Checks a PUBLISH's topic alias and learns the topic it sets.
    pub(super) fn take_alias(&mut self, p: &Publish<'_>) -> Result<(), ProtocolError> {
        if let Some(alias) = p.properties.topic_alias.filter(|_| cfg!(feature = "v5")) {
            // [MQTT-3.3.2-10] an alias must be between 1 and our Topic Alias Maximum
            if alias.get() > self.config.topic_alias_maximum {
                return Err(ProtocolError::TopicAliasInvalid);
            }
            let region = super::store_region_mut(&mut self.store, &self.layout.in_alias());
            if p.topic.is_empty() {
                // [MQTT-3.3.2-12] an alias used before the broker set it is a protocol error
                if self.in_aliases.topic_of(region, alias.get()).is_none() {
                    return Err(ProtocolError::TopicAliasInvalid);
                }
            } else {
                // A topic too long for the table is still delivered; a later use of the
                // alias then fails as unknown.
                self.in_aliases
                    .set(region, alias.get(), p.topic.as_str(), 0);
            }
        }
        Ok(())
    }

    /// Acknowledgement and exactly-once bookkeeping of a whole PUBLISH.
    fn qos_bookkeeping(&mut self, p: &Publish<'_>) -> Result<Outcome, ProtocolError> {
        let (pid, qos) = match p.qos_pid {
            QosPid::AtMostOnce => return Ok(Outcome::Report),
            QosPid::AtLeastOnce(id) => (id, QoS::AtLeastOnce),
            QosPid::ExactlyOnce(id) => (id, QoS::ExactlyOnce),
        };
        let manual = self.config.manual_acks;
        if qos == QoS::AtLeastOnce {
            // QoS 1 needs no receiver state: a resend is simply delivered again. Not tracking
            // it also keeps a resend that crosses our PUBACK from looking like a Receive
            // Maximum violation.
            if !manual {
                self.queue_ack(PacketType::PubAck, pid, ReasonCode::Success);
            }
            return Ok(Outcome::Report);
        }
        let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
        if let Some((_, state, _)) = self.incoming.find(region, pid.get()) {
            // A resent QoS 2 PUBLISH before PUBREL: acknowledge again but deliver nothing,
            // so the application sees it exactly once.
            if state == InState::AwaitingRel {
                self.queue_ack(PacketType::PubRec, pid, ReasonCode::Success);
            }
            return Ok(Outcome::Silent);
        }
        let state = if manual {
            InState::AwaitingApp
        } else {
            InState::AwaitingRel
        };
        // [MQTT-3.3.4-8] the broker must respect our Receive Maximum. Many do not (mosquitto
        // resuming a session), and disconnecting only brings the same flood back: accept
        // what the table can track, and leave the rest with the broker, which sends it again.
        if self.incoming.len() >= usize::from(self.config.receive_maximum) {
            self.report_overrun(false);
        }
        let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
        if !self.incoming.insert(region, pid.get(), state, qos) {
            self.report_overrun(true);
            return Ok(Outcome::Silent);
        }
        if !manual {
            self.queue_ack(PacketType::PubRec, pid, ReasonCode::Success);
        }
        Ok(Outcome::Report)
    }

    pub(super) fn queue_ack(
        &mut self,
        packet_type: PacketType,
        packet_id: PacketId,
        reason: ReasonCode,
    ) {
        // handle_read only processes a packet when the ring has room for its answer.
        let _queued = self.acks.push(Ack {
            packet_type,
            packet_id,
            reason_code: reason,
        });
    }

    /// The live record of `kind` for `pid` that waits for its acknowledgement.
    fn sent_record(&mut self, kind: Kind, pid: PacketId) -> Option<Record> {
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        self.log.find_sent(region, kind, pid.get())
    }

    fn finish_record(&mut self, at: usize) {
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        self.log.set_state(region, at, State::Dead);
        self.inflight = self.inflight.saturating_sub(1);
    }

    /// A transient refusal (PUBACK or PUBREC ≥ 0x80 that may pass) of a message with retries
    /// left: the message goes back to the queue after a delay, as a new delivery, under the
    /// same packet identifier. Whether it was taken.
    fn retry_refused(&mut self, now: Instant, rec: &Record, code: ReasonCode) -> bool {
        let transient = matches!(
            code,
            ReasonCode::QuotaExceeded | ReasonCode::ServerBusy | ReasonCode::MessageRateTooHigh
        );
        if !transient || rec.refusals >= self.config.refused_retries {
            return false;
        }
        let Some(pid) = PacketId::new(rec.pid) else {
            return false;
        };
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let retry = self.log.add_refusal(region, rec.at);
        // The broker ended this flow: the retry is a new delivery, without DUP.
        self.log.set_sent_before(region, rec.at, false);
        self.log
            .set_state(region, rec.at, super::store::State::Delayed);
        self.inflight = self.inflight.saturating_sub(1);
        // `now + refused_retry_delay · 2^(retry-1)`, in whole milliseconds.
        let shift = u32::from(retry.saturating_sub(1)).min(16);
        let delay = super::time::millis_times(self.config.refused_retry_delay, shift, false);
        let at = now.plus_millis(delay);
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.min(at)));
        self.raise(Raised::Retrying(pid, code, retry));
        true
    }

    /// Whether a PUBACK or PUBREC refuses its message: only 5.0 has reason codes (a 3.1.1
    /// one always decodes as Success), so a build without `v5` leaves the refusal paths out.
    fn refused(&self, r: &PubResponse<'_>) -> bool {
        self.version().v5() && r.reason_code.is_error()
    }

    fn on_puback(&mut self, now: Instant, r: &PubResponse<'_>) -> Outcome {
        let record = self
            .sent_record(Kind::Publish, r.packet_id)
            .filter(|rec| rec.qos == QoS::AtLeastOnce);
        match record {
            Some(rec) if self.refused(r) && self.retry_refused(now, &rec, r.reason_code) => {
                Outcome::Silent
            }
            Some(rec) => {
                self.finish_record(rec.at);
                Outcome::Report
            }
            // A late or duplicate PUBACK: nothing waits for it.
            None => Outcome::Silent,
        }
    }

    fn on_pubrec(&mut self, now: Instant, r: &PubResponse<'_>) -> Outcome {
        let pid = r.packet_id;
        let Some(record) = self
            .sent_record(Kind::Publish, pid)
            .filter(|rec| rec.qos == QoS::ExactlyOnce)
        else {
            // A repeated PUBREC answers a PUBREL we sent; an unknown one gets 0x92 (5.0).
            let region = super::store_region(&self.store, &self.layout.log());
            let known = self
                .log
                .find(region, |rec| {
                    rec.kind == Kind::PubRel && rec.pid == pid.get()
                })
                .is_some();
            let reason = if known || !self.version().v5() {
                ReasonCode::Success
            } else {
                ReasonCode::PacketIdentifierNotFound
            };
            if !self.refused(r) {
                self.queue_ack(PacketType::PubRel, pid, reason);
            }
            return Outcome::Silent;
        };
        if self.refused(r) {
            if self.retry_refused(now, &record, r.reason_code) {
                return Outcome::Silent;
            }
            // [MQTT-4.4.0-2] a failure PUBREC ends the flow: acknowledged, never resent
            self.finish_record(record.at);
            return Outcome::Report;
        }
        let version = self.version();
        self.reported = None;
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        // The PUBLISH is freed before the PUBREL is appended, so the append always fits; the
        // PUBREL goes to the end so PUBRELs are resent in PUBREC order [MQTT-4.6.0-4].
        self.log.replace(region, record.at);
        let pubrel = Packet::PubRel(PubResponse::new(pid));
        let len = pubrel.encoded_len(version).unwrap_or(4);
        let appended = self.append_record(&pubrel, Kind::PubRel, pid.get(), QoS::ExactlyOnce, len);
        if appended.is_err() {
            // Unreachable (see above); an immediate PUBREL beats losing it.
            self.queue_ack(PacketType::PubRel, pid, ReasonCode::Success);
        }
        Outcome::Silent
    }

    fn on_pubrel(&mut self, r: &PubResponse<'_>) -> Outcome {
        let pid = r.packet_id;
        let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
        let reason = match self.incoming.find(region, pid.get()) {
            Some((slot, _, QoS::ExactlyOnce)) => {
                self.incoming.remove(region, slot);
                ReasonCode::Success
            }
            // 3.1.1 has no reason code: completing an unknown id is harmless.
            _ if !self.version().v5() => ReasonCode::Success,
            _ => ReasonCode::PacketIdentifierNotFound,
        };
        self.queue_ack(PacketType::PubComp, pid, reason);
        Outcome::Silent
    }

    fn on_pubcomp(&mut self, r: &PubResponse<'_>) -> Outcome {
        match self.sent_record(Kind::PubRel, r.packet_id) {
            Some(rec) => {
                self.finish_record(rec.at);
                Outcome::Report
            }
            None => Outcome::Silent,
        }
    }

    /// SUBACK or UNSUBACK: one reason code per filter [MQTT-3.9.3-1] [MQTT-3.11.3-1] (none
    /// in a 3.1.1 UNSUBACK).
    fn on_request_ack(
        &mut self,
        kind: Kind,
        pid: PacketId,
        codes: &Seq<'_, ReasonCode>,
    ) -> Result<Outcome, ProtocolError> {
        let record = match kind {
            // Renewals exist only with the feature.
            Kind::Subscribe => self.sent_record(Kind::Subscribe, pid).or_else(|| {
                cfg!(feature = "subscription-renewal")
                    .then(|| self.sent_record(Kind::Resubscribe, pid))
                    .flatten()
            }),
            _ => self.sent_record(kind, pid),
        };
        let Some(record) = record else {
            return Ok(Outcome::Silent);
        };
        let check = kind == Kind::Subscribe || self.version().v5();
        if check && self.request_len(&record) != codes.len() {
            return Err(ProtocolError::AckMismatch);
        }
        match record.kind {
            Kind::Unsubscribe => self.forget_unsubscribed(&record, codes),
            _ => self.keep_granted(&record, codes),
        }
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        if record.kind == Kind::Resubscribe {
            self.log.set_state(region, record.at, State::Answered);
            self.answered = Some(pid);
            return Ok(Outcome::Renewed);
        }
        self.log.set_state(region, record.at, State::Dead);
        Ok(Outcome::Report)
    }

    /// Number of filters in a queued SUBSCRIBE or UNSUBSCRIBE record: decoded where the
    /// decoders are linked anyway, counted from the length prefixes where they are not.
    fn request_len(&self, r: &Record) -> usize {
        let region = super::store_region(&self.store, &self.layout.log());
        if !STORED_REQUESTS {
            return r.request_len(region);
        }
        match decode_record(region, r) {
            Some(Packet::Subscribe(s)) => s.subscriptions.len(),
            Some(Packet::Unsubscribe(u)) => u.filters.len(),
            _ => 0,
        }
    }
}

/// Whether the session reads its SUBSCRIBE and UNSUBSCRIBE records back as packets.
const STORED_REQUESTS: bool = cfg!(any(feature = "v5", feature = "subscription-renewal"));

/// Decodes the packet at the front of `buf` as [`Packet::decode`] does, with the arms of
/// the packets a client session decodes only: those it receives (`handle_read` refused the
/// others from their first byte, `never_received`) and the SUBSCRIBE and UNSUBSCRIBE of its
/// own store (`decode_stored`). A client build then links no CONNECT or PINGREQ decoder, nor
/// a second dispatch over all packet types.
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(super) fn decode_client(
    buf: &[u8],
    version: ProtocolVersion,
    max_packet_size: u32,
) -> Result<Decoded<'_>, ProtocolError> {
    // A session never runs a version the build leaves out; this tells the optimiser so.
    if !version.is_built() {
        return Err(ProtocolError::Decode(DecodeError::FeatureDisabled("v5")));
    }
    let Some(header) = FixedHeader::decode(buf)? else {
        return Ok(Decoded::Incomplete { needed: None });
    };
    header.check(version)?;
    let len = header.packet_len();
    if len > max_packet_size as usize {
        return Err(ProtocolError::Decode(DecodeError::PacketTooLarge {
            // packet_len is at most 268,435,460 and fits.
            size: len as u32,
            max: max_packet_size,
        }));
    }
    let Some(body) = buf.get(usize::from(header.header_len)..len) else {
        return Ok(Decoded::Incomplete {
            needed: NonZeroUsize::new(len - buf.len()),
        });
    };
    let packet = match decode_body(header.packet_type, header.flags, body, version) {
        Ok(Some(packet)) => packet,
        Ok(None) => return Err(ProtocolError::UnexpectedPacket(header.packet_type)),
        Err(e) => return Err(ProtocolError::Decode(e)),
    };
    Ok(Decoded::Packet { packet, len })
}

/// The body of a packet `decode_client` accepts, `None` for one it refuses; the decoders'
/// errors are converted once, by the caller.
fn decode_body(
    packet_type: PacketType,
    flags: u8,
    body: &[u8],
    version: ProtocolVersion,
) -> Result<Option<Packet<'_>>, DecodeError> {
    use PacketType as T;
    let response = |t| PubResponse::decode(t, body, version);
    Ok(Some(match packet_type {
        T::ConnAck => Packet::ConnAck(ConnAck::decode(body, version)?),
        T::Publish => Packet::Publish(Publish::decode(flags, body, version)?),
        T::PubAck => Packet::PubAck(response(T::PubAck)?),
        T::PubRec => Packet::PubRec(response(T::PubRec)?),
        T::PubRel => Packet::PubRel(response(T::PubRel)?),
        T::PubComp => Packet::PubComp(response(T::PubComp)?),
        T::SubAck => Packet::SubAck(SubAck::decode(body, version)?),
        T::UnsubAck => Packet::UnsubAck(UnsubAck::decode(body, version)?),
        // The session's own records (`decode_stored`), read back by the fallback to 3.1.1
        // and by renewal only: a build with neither links no decoder for them.
        T::Subscribe if STORED_REQUESTS => {
            Packet::Subscribe(crate::Subscribe::decode(body, version)?)
        }
        T::Unsubscribe if STORED_REQUESTS => {
            Packet::Unsubscribe(crate::Unsubscribe::decode(body, version)?)
        }
        T::PingResp if body.is_empty() => Packet::PingResp,
        T::PingResp => return Err(DecodeError::LengthMismatch),
        // `never_received` refused DISCONNECT and AUTH before 5.0 (the guards leave their
        // decoders out of a build without `v5`).
        T::Disconnect if version.v5() => Packet::Disconnect(Disconnect::decode(body, version)?),
        T::Auth if version.v5() => Packet::Auth(Auth::decode(body)?),
        // Refused from the first byte by `handle_read`.
        _ => return Ok(None),
    }))
}

/// The event of a CONNACK. Not inlined: `event_for` would otherwise load every property into
/// registers and store them in a tail shared by all its arms, one field at a time.
#[inline(never)]
fn connack_event(c: ConnAck<'_>) -> Event<'_> {
    // One arm for both outcomes: the properties are copied once.
    let properties = c.properties;
    if c.reason_code.is_error() {
        Event::ConnectionRefused {
            reason_code: c.reason_code,
            properties,
        }
    } else {
        Event::Connected {
            session_present: c.session_present,
            properties,
        }
    }
}

/// The event of a DISCONNECT, not inlined for the reason [`connack_event`] gives.
#[inline(never)]
fn disconnect_event(d: Disconnect<'_>) -> Event<'_> {
    Event::Disconnected {
        reason_code: d.reason_code,
        properties: d.properties,
    }
}

fn published<'s>(r: PubResponse<'s>, qos: QoS) -> Event<'s> {
    Event::Published {
        packet_id: r.packet_id,
        qos,
        reason_code: r.reason_code,
        properties: r.properties,
    }
}
