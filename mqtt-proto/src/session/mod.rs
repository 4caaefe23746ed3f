//! The sans-IO client session: every piece of MQTT behaviour a client needs, with no I/O, no
//! clock and no allocator.
//!
//! A driver feeds the session received bytes ([`Session::handle_read`]), the passing of time
//! ([`Session::handle_timeout`]) and the end of a transport
//! ([`Session::handle_transport_closed`]), issues commands ([`Session::connect`],
//! [`Session::publish`], ...), and drains the outputs until they are empty: bytes to write
//! ([`Session::poll_transmit`]), events ([`Session::event`] for the packet just read,
//! [`Session::poll_event`] for the session's own) and the next deadline
//! ([`Session::poll_timeout`]).
//!
//! All state lives in one caller-provided store (any `AsRef<[u8]> + AsMut<[u8]>`: an array, a
//! `&mut [u8]`, a boxed slice), split into fixed regions by [`SessionConfig`]: incoming
//! in-flight ids, topic alias tables, the CONNECT/DISCONNECT/AUTH being sent, the
//! subscriptions kept for renewal, and a log of queued and in-flight packets. Nothing is ever
//! dropped silently: a command that does not fit fails with [`CommandError::StoreFull`]. A
//! store that can grow (a `Vec<u8>`) can start small: [`Session::resize_store`] changes the
//! log's room, and [`Session::wants_room`] and [`Session::resize_region`] let the incoming
//! and subscription tables grow as the session asks.

mod acks;
mod alias;
mod config;
mod error;
mod event;
mod incoming;
mod journal;
mod read;
mod reconnect;
mod room;
mod store;
mod stream;
mod stream_out;
mod subscriptions;
mod time;
mod transmit;

use core::num::{NonZeroU16, NonZeroU32, NonZeroUsize};
use core::ops::Range;

pub use config::{BrokerLimits, SessionConfig};
pub use error::{CommandError, ProtocolError};
pub use event::{Event, LostReason, Notice};
pub use reconnect::{EndCause, Reaction, Reconnect, ReconnectPolicy};
pub use room::Region;
pub use stream::Chunk;
pub use stream_out::PayloadRequest;
pub use time::Instant;

use crate::properties::{SubscribeProperties, UnsubscribeProperties};
use crate::{
    Auth, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS,
    QosPid, Seq, Subscribe, Subscription, TopicFilter, TopicName, Unsubscribe,
};
use acks::Acks;
use alias::Aliases;
use incoming::{InState, Incoming};
use reconnect::Backoff;
use store::{Entry, Kind, Log, Record, State};
use subscriptions::Subscriptions;

/// A message to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Topic.
    pub topic: TopicName<'a>,
    /// Payload.
    pub payload: &'a [u8],
    /// Delivery guarantee.
    pub qos: QoS,
    /// Whether the broker retains it.
    pub retain: bool,
    /// 5.0 properties; the topic alias and subscription identifiers must stay empty.
    pub properties: PublishProperties<'a>,
}

impl<'a> Message<'a> {
    /// A non-retained message without properties.
    pub fn new(topic: TopicName<'a>, payload: &'a [u8], qos: QoS) -> Self {
        Self {
            topic,
            payload,
            qos,
            retain: false,
            properties: PublishProperties::default(),
        }
    }
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// No transport; commands are queued.
    Disconnected,
    /// CONNECT is queued or sent, CONNACK not received yet.
    Connecting,
    /// CONNACK accepted the connection.
    Connected,
    /// The connection is ending: transmit what is left, then close the transport and call
    /// [`Session::handle_transport_closed`].
    Closing,
}

/// Outcome of [`Session::handle_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read<'a> {
    /// One packet was processed: drop `len` bytes from the front of the input.
    Packet {
        /// Bytes used.
        len: usize,
        /// What the packet means for the application, decoded once: it borrows the input
        /// and the session, so handle or copy it before feeding the session again.
        event: Option<Event<'a>>,
    },
    /// The input holds part of a packet: read more. `needed` as in
    /// [`Decoded::Incomplete`](crate::Decoded::Incomplete).
    Incomplete {
        /// Bytes still missing, when the fixed header says.
        needed: Option<NonZeroUsize>,
    },
    /// Acknowledgements are waiting to be transmitted: drain [`Session::poll_transmit`]
    /// first. Nothing was consumed.
    Blocked,
    /// The connection is closing; input is ignored.
    Closing,
    /// The packet at the front is a PUBLISH larger than the session accepts
    /// ([`Notice::MessageSkipped`] reports it): drop `len` bytes from the front of the input,
    /// including those not received yet, then go on.
    Skip {
        /// Length of the whole packet.
        len: usize,
    },
    /// The packet at the front is a PUBLISH larger than
    /// [`SessionConfig::receive_capacity`] (and within
    /// [`SessionConfig::maximum_packet_size`]): its payload is handed over in chunks. Keep
    /// its first `header_len` bytes (fixed header, topic, packet identifier, properties) at
    /// the front of the input, and call [`Session::handle_read`] again with that header
    /// followed by the payload bytes received so far; each call answers [`Read::Chunk`]
    /// until the last of the `payload_len` bytes passed.
    Stream {
        /// Bytes of the header to keep at the front of the input.
        header_len: usize,
        /// Payload bytes that follow it.
        payload_len: usize,
    },
    /// `len` payload bytes behind the header of a streamed PUBLISH were handed over: drop
    /// them from the input, keeping the header in front, unless `last`, which completes the
    /// message (acknowledged per its QoS now): then drop the header as well.
    Chunk {
        /// Payload bytes handed over.
        len: usize,
        /// They end the message.
        last: bool,
        /// [`Event::MessageChunk`] with these bytes; `None` for a QoS 2 message delivered
        /// before (or one left with the broker for lack of room), whose bytes are dropped.
        event: Option<Event<'a>>,
    },
}

/// One packet for the driver to write, from [`Session::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit {
    /// Bytes written into the buffer.
    pub len: usize,
    /// It is the oldest queued QoS 0 publish: once written, that publish is complete. QoS 0
    /// publishes go out (or are dropped, [`Event::PublishDropped`]) in the order they were
    /// queued, so a driver completes them first in, first out. For a streamed QoS 0
    /// publish, set on its payload's last piece.
    pub completes_qos0: bool,
    /// A piece of a streamed payload ([`Session::publish_streamed`]): the session wrote
    /// nothing, and the driver must fill the first `len` bytes of the buffer with the
    /// message's payload from [`PayloadRequest::offset`], then write them as any transmit.
    /// If it cannot, it must close the transport (the message was cut short; a QoS 1 or 2
    /// one is resent whole on the next connection).
    pub payload: Option<PayloadRequest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disconnected,
    /// CONNECT waits in the control region.
    ConnectQueued,
    AwaitConnAck,
    Connected,
    Closing,
}

/// What the control region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    None,
    Connect,
    Auth,
    /// A graceful DISCONNECT, sent once everything queued before it is sent.
    Disconnect,
    /// A DISCONNECT reporting a protocol error, sent before anything else.
    ErrorDisconnect,
}

/// The regions of the store, in this order, each from where the one before ends to its
/// end: the bounds alone (the first always 0), about half the room of a range each, and
/// contiguous by construction.
#[derive(Debug, Default)]
struct Layout {
    bounds: [usize; 8],
}

/// The packet-identifier allocator's state ([`Session::id_mark`]).
#[derive(Debug, Clone, Copy)]
struct IdMark {
    next: PacketId,
    wrapped: bool,
    free: u16,
}

/// A region of the [`Layout`], by its index there.
#[derive(Debug, Clone, Copy)]
enum Part {
    Incoming = 0,
    Assigned,
    InAlias,
    OutAlias,
    Control,
    Subscriptions,
    Log,
}

impl Layout {
    /// From the end of each region.
    fn new(ends: [usize; 7]) -> Self {
        let mut bounds = [0; 8];
        bounds[1..].copy_from_slice(&ends);
        Self { bounds }
    }

    #[inline]
    fn range(&self, part: Part) -> Range<usize> {
        let i = part as usize;
        self.bounds[i]..self.bounds[i + 1]
    }

    /// Moves the end of `part` to `end`, and the regions behind it with it.
    fn set_end(&mut self, part: Part, end: usize) {
        let i = part as usize + 1;
        let old = self.bounds[i];
        for b in &mut self.bounds[i..] {
            *b = *b - old + end;
        }
    }

    fn incoming(&self) -> Range<usize> {
        self.range(Part::Incoming)
    }
    fn assigned(&self) -> Range<usize> {
        self.range(Part::Assigned)
    }
    fn in_alias(&self) -> Range<usize> {
        self.range(Part::InAlias)
    }
    fn out_alias(&self) -> Range<usize> {
        self.range(Part::OutAlias)
    }
    fn control(&self) -> Range<usize> {
        self.range(Part::Control)
    }
    fn subscriptions(&self) -> Range<usize> {
        self.range(Part::Subscriptions)
    }
    fn log(&self) -> Range<usize> {
        self.range(Part::Log)
    }
}

/// Per-connection state, reset when a transport ends.
#[derive(Debug)]
struct Conn {
    phase: Phase,
    control: Control,
    control_len: usize,
    clean_start: bool,
    uses_auth: bool,
    last_tx: Instant,
    last_rx: Instant,
    ping_due: bool,
    ping_sent: Option<Instant>,
    connack_deadline: Instant,
    /// Why the connection is closing, reported once the last packet is out.
    closing: Option<LostReason>,
    /// Why the connection ended, for the reconnect decision (the first cause wins).
    cause: Option<EndCause>,
    /// The refusal or DISCONNECT named a Server Reference.
    reference: bool,
    /// When CONNACK accepted the connection.
    up_since: Option<Instant>,
    /// When the graceful DISCONNECT began to wait for open handshakes.
    drain_since: Option<Instant>,
    /// The drain timeout passed: the DISCONNECT goes now.
    drain_expired: bool,
    /// The graceful end closes without DISCONNECT (3.1.1 asking for the will).
    close_for_will: bool,
    /// `Event::ReceiveMaximumExceeded` was raised on this connection (without, with deferral).
    overrun_reported: bool,
    deferral_reported: bool,
    /// The queued DISCONNECT is a resync: a message was left with the broker for lack of
    /// room, and a broker only sends it again on a new connection.
    resync: bool,
    /// Renewal SUBSCRIBEs may wait in the log: they go before anything else.
    renewing: bool,
    /// The payload of a streamed PUBLISH whose header went out, still to go.
    owed: Option<stream_out::Owed>,
    /// The payload piece the last transmit asks the driver for.
    piece: Option<PayloadRequest>,
    /// The broker refused 5.0 and the session falls back to 3.1.1 once this transport ends.
    fall_back: bool,
}

impl Conn {
    fn new() -> Self {
        Self {
            phase: Phase::Disconnected,
            control: Control::None,
            control_len: 0,
            clean_start: true,
            uses_auth: false,
            last_tx: Instant::ZERO,
            last_rx: Instant::ZERO,
            ping_due: false,
            ping_sent: None,
            connack_deadline: Instant::ZERO,
            closing: None,
            cause: None,
            reference: false,
            up_since: None,
            drain_since: None,
            drain_expired: false,
            close_for_will: false,
            overrun_reported: false,
            deferral_reported: false,
            resync: false,
            renewing: false,
            fall_back: false,
            owed: None,
            piece: None,
        }
    }
}

const EVENT_QUEUE: usize = 4;

/// An event the session raised on its own, kept small: the public [`Event`] is much larger
/// because of the borrowed properties it can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Raised {
    Lost(LostReason),
    Dropped(Option<PacketId>, crate::ReasonCode),
    RequestDropped(PacketId, crate::ReasonCode),
    Retrying(PacketId, crate::ReasonCode, u8),
    Overrun { in_flight: u16, deferred: bool },
    Skipped(Option<PacketId>, QoS, u32),
    NotRenewable(PacketId, u16),
    RenewalDropped(crate::ReasonCode),
    FellBack,
}

impl Raised {
    fn event(self, receive_maximum: u16) -> Event<'static> {
        // Refusals by the broker's limits or reason codes, retries and the fallback are 5.0's,
        // renewals need their feature: the guards leave the arms a build cannot reach out.
        const V5: bool = cfg!(feature = "v5");
        const RENEWAL: bool = cfg!(feature = "subscription-renewal");
        match self {
            Self::Dropped(packet_id, reason_code) if V5 => Event::PublishDropped {
                packet_id,
                reason_code,
            },
            Self::RequestDropped(packet_id, reason_code) if V5 => Event::RequestDropped {
                packet_id,
                reason_code,
            },
            Self::Retrying(packet_id, reason_code, retry) if V5 => {
                Event::Notice(Notice::PublishRetrying {
                    packet_id,
                    reason_code,
                    retry,
                })
            }
            Self::Overrun {
                in_flight,
                deferred,
            } => Event::Notice(Notice::ReceiveMaximumExceeded {
                receive_maximum,
                in_flight,
                deferred,
            }),
            Self::Skipped(packet_id, qos, size) => Event::Notice(Notice::MessageSkipped {
                packet_id,
                qos,
                size,
            }),
            Self::NotRenewable(packet_id, index) if RENEWAL => {
                Event::Notice(Notice::SubscriptionNotRenewable { packet_id, index })
            }
            Self::RenewalDropped(reason_code) if RENEWAL => {
                Event::Notice(Notice::RenewalDropped { reason_code })
            }
            Self::FellBack if V5 => Event::Notice(Notice::FellBackToV311),
            Self::Lost(reason) => Event::ConnectionLost(reason),
            // Unreachable: only code the build leaves out raises the others.
            other => {
                debug_assert!(false, "{other:?} raised without its feature");
                Event::ConnectionLost(LostReason::DisconnectSent)
            }
        }
    }
}

/// A sans-IO MQTT client session over the caller's store `B`.
pub struct Session<B> {
    config: SessionConfig,
    /// The version spoken: `config.version` until a fallback to 3.1.1.
    version: ProtocolVersion,
    store: B,
    layout: Layout,
    log: Log,
    incoming: Incoming,
    in_aliases: Aliases,
    out_aliases: Aliases,
    alias_clock: u32,
    acks: Acks,
    conn: Conn,
    limits: BrokerLimits,
    keep_alive: u16,
    session_expiry: u32,
    next_pid: PacketId,
    /// Whether `next_pid` wrapped past 65,535 since the log was last empty.
    ids_wrapped: bool,
    /// After the wrap: identifiers from `next_pid` on known to be free, so that a long
    /// queue is walked once per run of free identifiers instead of once per publish.
    free_ids: u16,
    /// The log generation, in-flight count and window at which a scan of the log, with the
    /// window full, found nothing to send: until one of them changes, there is nothing.
    idle_scan: Option<(u32, u16, u16)>,
    /// While restoring: the log generation after the last restored record, and the largest
    /// packet identifier live in the log then, so that a record for a larger one (the
    /// common case: identifiers are handed out in order) needs no walk of the log.
    restore_max: Option<(u32, u16)>,
    /// QoS 1 and 2 publishes transmitted and not acknowledged, plus PUBRELs outstanding.
    inflight: u16,
    raised: [Option<Raised>; EVENT_QUEUE],
    /// Abandoned records waiting to be reported.
    abandoned: usize,
    /// The abandoned record `poll_event` reported last, for `abandoned_message`; its bytes
    /// stay intact until the next append, which clears this.
    reported: Option<usize>,
    /// What the last packet `handle_read` processed means, for [`Session::event`].
    last_read: read::Outcome,
    /// Reconnect pacing across connections.
    backoff: Backoff,
    /// Length of the broker-assigned client identifier kept in its region.
    assigned_len: usize,
    /// A CONNACK accepted a connection of this session before: 5.0 reconnects resume.
    connected_before: bool,
    /// When transiently refused messages are due to go again.
    retry_at: Option<Instant>,
    /// Subscriptions kept for renewal.
    subscriptions: Subscriptions,
    /// The PUBLISH being received in chunks, if any.
    stream: Option<stream::Stream>,
    /// The log generation at which a renewal SUBSCRIBE found no room: until the log changes,
    /// there is none.
    renew_blocked: Option<u32>,
    /// Table bytes the filters of SUBSCRIBEs awaiting SUBACK would take once granted: the
    /// room [`Session::wants_room`] asks for ahead of the SUBACK.
    sub_outstanding: usize,
    /// Slots the incoming table was created with, the size it shrinks back to.
    incoming_initial: usize,
    /// The renewal SUBSCRIBE whose SUBACK the last read processed, kept readable for its
    /// event until the next input.
    answered: Option<PacketId>,
    /// Changes the journal has not taken yet, beyond those the state marks itself.
    journal: journal::JournalFlags,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Creates a session over `store`: [`SessionConfig::check`], then
    /// [`Session::from_checked`].
    ///
    /// # Errors
    /// As [`SessionConfig::check`].
    pub fn new(config: SessionConfig, store: B) -> Result<Self, CommandError> {
        config.check(store.as_ref().len())?;
        Ok(Self::from_checked(config, store))
    }

    /// Creates a session over `store` with a configuration that [`SessionConfig::check`]
    /// accepted for a store of its length: [`Session::new`] without the `Result`. A driver
    /// that builds the session into a structure of its own checks first and creates the
    /// session last, so that the session (several hundred bytes) does not pass through a
    /// `Result` (on a microcontroller, a move and the code around it: about 300 bytes of
    /// flash).
    ///
    /// With a configuration `check` refuses, the session is not the one configured but is
    /// still safe: when the store is too small for its fixed regions, they are all empty and
    /// the log takes the whole store (it queues little or nothing); a 5.0 configuration in a
    /// build without `v5` cannot encode its CONNECT ([`Session::connect`] returns
    /// [`EncodeError::FeatureDisabled`](crate::EncodeError)).
    // Called once, from the driver's constructor: kept out of line where size matters, so
    // that the caller's state machine does not copy the configuration field by field.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn from_checked(config: SessionConfig, store: B) -> Self {
        let available = store.as_ref().len();
        let incoming_end = config.incoming_table() * incoming::ENTRY;
        let assigned_end = incoming_end + config.assigned_id_bytes;
        let in_alias_end = assigned_end + config.incoming_alias_bytes;
        let out_alias_end = in_alias_end + config.outgoing_alias_bytes;
        // The control region also has room for an assigned identifier to replace an empty
        // one in a later CONNECT.
        let control_end = out_alias_end + config.control_region();
        let subscriptions_end = control_end + config.subscription_bytes;
        // With a store `check` refuses, every region is empty and the log takes the store:
        // a session that queues little or nothing, and never reaches past the store.
        let layout = if subscriptions_end <= available {
            Layout::new([
                incoming_end,
                assigned_end,
                in_alias_end,
                out_alias_end,
                control_end,
                subscriptions_end,
                available,
            ])
        } else {
            Layout::new([0, 0, 0, 0, 0, 0, available])
        };
        let mut session = Self {
            config,
            version: config.version,
            store,
            layout,
            log: Log::new(usize::from(config.index_slots)),
            incoming: Incoming::default(),
            in_aliases: Aliases::default(),
            out_aliases: Aliases::default(),
            alias_clock: 0,
            acks: Acks::default(),
            conn: Conn::new(),
            limits: BrokerLimits::defaults(0, 0),
            keep_alive: 0,
            session_expiry: 0,
            next_pid: PacketId::MIN,
            ids_wrapped: false,
            free_ids: 0,
            idle_scan: None,
            restore_max: None,
            inflight: 0,
            raised: [None; EVENT_QUEUE],
            abandoned: 0,
            reported: None,
            last_read: read::Outcome::Silent,
            backoff: Backoff::new(config.reconnect.seed),
            assigned_len: 0,
            connected_before: false,
            retry_at: None,
            subscriptions: Subscriptions::default(),
            stream: None,
            renew_blocked: None,
            sub_outstanding: 0,
            incoming_initial: incoming_end / incoming::ENTRY,
            answered: None,
            journal: journal::JournalFlags::default(),
        };
        if !cfg!(feature = "receive-streaming") && config.receive_capacity > 0 {
            // Nothing is streamed: what the driver cannot hold is over the limit. Set here,
            // not on a copy of `config`: a copy costs a move of the whole configuration.
            let capacity = u32::try_from(config.receive_capacity).unwrap_or(u32::MAX);
            let max = &mut session.config.maximum_packet_size;
            *max = (*max).min(capacity);
        }
        // 3.1.1 has no subscription identifiers.
        session.limits.subscription_identifier_available = config.version.v5();
        let r = session.layout.incoming();
        session.incoming.clear(&mut session.store.as_mut()[r]);
        session
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The protocol version the session speaks: [`SessionConfig::version`], or 3.1.1 once
    /// a 5.0 broker refusal made it fall back ([`SessionConfig::fallback_to_v311`]). Every
    /// CONNECT and every packet is encoded in it, whatever version a [`Connect`] names.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Where the connection stands.
    pub fn state(&self) -> ConnectionState {
        match self.conn.phase {
            Phase::Disconnected => ConnectionState::Disconnected,
            Phase::ConnectQueued | Phase::AwaitConnAck => ConnectionState::Connecting,
            Phase::Connected => ConnectionState::Connected,
            Phase::Closing => ConnectionState::Closing,
        }
    }

    /// The broker's limits for the current (or last) connection.
    pub fn limits(&self) -> &BrokerLimits {
        &self.limits
    }

    /// QoS 1 and 2 messages transmitted and not yet acknowledged (PUBRELs included).
    pub fn inflight(&self) -> u16 {
        self.inflight
    }

    /// Bytes of the log in use, and its capacity.
    pub fn store_usage(&self) -> (usize, usize) {
        let region = store_region(&self.store, &self.layout.log());
        (self.log.used(), self.log.capacity(region))
    }

    /// Gives the session a store of `new_len` bytes: larger to queue more, smaller to give
    /// memory back. The queue of outgoing packets is the last region of the store, so only it
    /// changes size; it is compacted first when it shrinks. `resize(store, new_len)` must
    /// leave the store `new_len` bytes long with its first bytes unchanged (for a `Vec<u8>`,
    /// `resize` and `truncate`).
    ///
    /// Any message lent by [`Session::abandoned_message`] is no longer available afterwards.
    ///
    /// # Errors
    /// [`CommandError::StoreFull`] when what is queued does not fit `new_len`, or `new_len` is
    /// below [`Session::reserved_len`]; the store is then not
    /// touched. [`CommandError::InvalidState`] when `resize` did not leave `new_len` bytes:
    /// give the session a store of the old length again before using it.
    pub fn resize_store(
        &mut self,
        new_len: usize,
        resize: impl FnOnce(&mut B, usize),
    ) -> Result<(), CommandError> {
        let start = self.layout.log().start;
        if new_len < self.layout.log().end {
            let region = store_region_mut(&mut self.store, &self.layout.log());
            let index = region.len() - self.log.capacity(region);
            let available = new_len.saturating_sub(start + index);
            if new_len < start + index || self.log.live() > available {
                return Err(CommandError::StoreFull {
                    needed: self.log.live(),
                    available,
                });
            }
            // Live records to the front of the region, so the end can go.
            self.log.compact(region);
            self.reported = None;
        }
        resize(&mut self.store, new_len);
        if self.store.as_ref().len() != new_len {
            return Err(CommandError::InvalidState);
        }
        self.layout.set_end(Part::Log, new_len);
        // Renewals and scans that waited for room look again.
        self.log.touch();
        self.renew_blocked = None;
        Ok(())
    }

    /// Incoming QoS 1 and 2 messages not yet fully acknowledged.
    pub fn incoming_inflight(&self) -> usize {
        self.incoming.len()
    }

    /// Queues CONNECT for a new transport. The session sets the protocol version and, on 5.0,
    /// the Receive Maximum, Maximum Packet Size and Topic Alias Maximum properties from its
    /// configuration. Queued and unacknowledged messages stay queued: they are resent if the
    /// broker resumes the session and reported as [`Event::PublishAbandoned`] if it does not.
    ///
    /// Two lifecycle rules apply across reconnects: an empty client identifier is replaced by
    /// the one a broker assigned earlier ([`Session::assigned_client_id`]), and on 5.0 a
    /// session with a Session Expiry Interval resumes (Clean Start 0) once a broker has
    /// accepted it, whatever `clean_start` says: Clean Start means a fresh session for the
    /// first connection, not for every reconnect. 3.1.1 keeps the caller's Clean Session, since
    /// Clean Session 0 makes the broker keep a session the caller may not want, and leaves
    /// out the 5.0 properties of the CONNECT and its will, which it cannot carry. With
    /// [`SessionConfig::journal`] the session is kept by the broker too: Clean Session 0 on
    /// 3.1.1, and on 5.0 a Session Expiry Interval of 0 becomes `u32::MAX` (never expires).
    ///
    /// # Errors
    /// [`CommandError::InvalidState`] unless disconnected; [`CommandError::StoreFull`] when
    /// the CONNECT does not fit the control region (see [`Region::Control`]);
    /// [`CommandError::Encode`] when it cannot be encoded.
    pub fn connect(&mut self, connect: &Connect<'_>) -> Result<(), CommandError> {
        if self.conn.phase != Phase::Disconnected {
            return Err(CommandError::InvalidState);
        }
        let mut c = self.prepared(connect);
        // The layout is inside the store (`Session::new`): nothing here comes out empty.
        let store = self.store.as_mut();
        let (front, back) = store
            .split_at_mut_checked(self.layout.control().start)
            .unwrap_or_default();
        let control = back
            .get_mut(..self.layout.control().len())
            .unwrap_or_default();
        if c.client_id.is_empty() && self.assigned_len > 0 {
            let assigned = front
                .get(self.layout.assigned())
                .and_then(|a| a.get(..self.assigned_len))
                .unwrap_or_default();
            // Only ever filled from a validated UTF-8 string (see `keep_assigned_id`).
            c.client_id = core::str::from_utf8(assigned).unwrap_or_default();
        }
        let packet = Packet::Connect(c);
        let len = packet.encoded_len(self.version)?;
        transmit_fits(self.config.transmit_capacity, len)?;
        control_fits(len, control.len())?;
        let len = packet.encode(self.version, control)?;
        self.conn.control = Control::Connect;
        self.conn.control_len = len;
        self.conn.phase = Phase::ConnectQueued;
        self.conn.clean_start = c.clean_start;
        self.conn.uses_auth = c.properties.authentication_method.is_some();
        self.keep_alive = c.keep_alive;
        self.session_expiry = c.properties.session_expiry_interval.unwrap_or(0);
        Ok(())
    }

    /// Length of the CONNECT [`Session::connect`] would transmit for `connect`, with the
    /// properties the session adds, and room for an identifier a broker may assign later.
    /// A driver sizes its transmit buffer with it.
    ///
    /// # Errors
    /// [`EncodeError`](crate::EncodeError) when `connect` cannot be encoded.
    pub fn connect_len(&self, connect: &Connect<'_>) -> Result<usize, crate::EncodeError> {
        let c = self.prepared(connect);
        let assigned = if c.client_id.is_empty() {
            self.config.assigned_id_bytes
        } else {
            0
        };
        Ok(Packet::Connect(c).encoded_len(self.version)? + assigned)
    }

    /// `connect` as this session sends it: its protocol version, on 5.0 its limits and the
    /// resume rule, on 3.1.1 without the properties it cannot carry.
    fn prepared<'c>(&self, connect: &Connect<'c>) -> Connect<'c> {
        let mut c = *connect;
        c.protocol = self.version;
        if self.config.journal {
            // A session that outlives the process must be kept by the broker too, else a
            // restored session resends to a broker that forgot it.
            if c.protocol.v5() {
                if c.properties.session_expiry_interval.unwrap_or(0) == 0 {
                    c.properties.session_expiry_interval = Some(u32::MAX);
                }
            } else {
                c.clean_start = false;
            }
        }
        if c.protocol.v5() {
            c.properties.receive_maximum = NonZeroU16::new(self.config.receive_maximum);
            c.properties.maximum_packet_size = NonZeroU32::new(self.config.maximum_packet_size);
            c.properties.topic_alias_maximum =
                Some(self.config.topic_alias_maximum).filter(|&m| m > 0);
            let expiry = c.properties.session_expiry_interval.unwrap_or(0);
            if self.connected_before && expiry > 0 {
                c.clean_start = false;
            }
        } else {
            c.properties = crate::ConnectProperties::default();
            if let Some(will) = &mut c.will {
                will.properties = crate::WillProperties::default();
            }
        }
        c
    }

    /// Queues a message. QoS 1 and 2 messages stay in the store until acknowledged, across
    /// reconnects; their packet identifier is returned and reappears in [`Event::Published`].
    ///
    /// # Errors
    /// [`CommandError::StoreFull`] when the store has no room (nothing was queued),
    /// [`CommandError::PacketIdsExhausted`], [`CommandError::ManagedProperty`] when the
    /// message sets a topic alias or subscription identifiers, and while connected to a
    /// broker that announced them: [`CommandError::QoSNotSupported`],
    /// [`CommandError::RetainNotSupported`], [`CommandError::PacketTooLarge`].
    pub fn publish(&mut self, message: &Message<'_>) -> Result<Option<PacketId>, CommandError> {
        self.check_publish(message)?;
        let mark = self.id_mark();
        let pid = match message.qos {
            QoS::AtMostOnce => None,
            _ => Some(self.allocate_packet_id()?),
        };
        let publish = Publish {
            dup: false,
            qos_pid: pid.map_or(QosPid::AtMostOnce, |id| QosPid::new(message.qos, id)),
            retain: message.retain,
            topic: message.topic,
            properties: message.properties,
            payload: message.payload,
        };
        let kind = if pid.is_some() {
            Kind::Publish
        } else {
            Kind::Publish0
        };
        self.append(&Packet::Publish(publish), kind, pid, message.qos)
            .inspect_err(|_| self.restore_ids(mark))?;
        Ok(pid)
    }

    /// What a message may not use, by its properties and the broker's limits.
    fn check_publish(&self, message: &Message<'_>) -> Result<(), CommandError> {
        let props = &message.properties;
        if props.topic_alias.is_some() || !props.subscription_identifiers.is_empty() {
            return Err(CommandError::ManagedProperty);
        }
        // Without `v5` the broker's limits are 3.1.1's: QoS 2 and retain allowed.
        if cfg!(feature = "v5") && self.conn.phase == Phase::Connected {
            if message.qos > self.limits.maximum_qos {
                return Err(CommandError::QoSNotSupported(self.limits.maximum_qos));
            }
            if message.retain && !self.limits.retain_available {
                return Err(CommandError::RetainNotSupported);
            }
        }
        Ok(())
    }

    /// Queues a SUBSCRIBE; [`Event::Subscribed`] reports the outcome. Unanswered subscribes
    /// are sent again after a reconnect. One queued before CONNACK that the broker turns out
    /// not to support is dropped and reported ([`Event::RequestDropped`]). With
    /// [`SessionConfig::subscription_bytes`], the filters the broker grants are kept and
    /// renewed by the session after a lost session ([`Event::Resubscribed`]).
    ///
    /// # Errors
    /// [`CommandError::StoreFull`], [`CommandError::PacketIdsExhausted`],
    /// [`CommandError::Encode`] for an empty list or options 3.1.1 cannot express, and while
    /// connected to a broker whose CONNACK said so, [`CommandError::Unsupported`] (shared
    /// subscriptions, wildcards, subscription identifiers) or
    /// [`CommandError::PacketTooLarge`].
    pub fn subscribe(
        &mut self,
        subscriptions: &[Subscription<'_>],
        properties: SubscribeProperties<'_>,
    ) -> Result<PacketId, CommandError> {
        if self.conn.phase == Phase::Connected {
            // Without `v5` the broker's limits are 3.1.1's: shared subscriptions and
            // wildcards allowed, subscription identifiers not.
            let refused = if cfg!(feature = "v5") {
                self.limits
                    .refuses(subscriptions.iter().copied(), &properties)
            } else {
                properties
                    .subscription_identifier
                    .map(|_| crate::ReasonCode::SubscriptionIdentifiersNotSupported)
            };
            if let Some(code) = refused {
                return Err(CommandError::Unsupported(code));
            }
        }
        let mark = self.id_mark();
        let packet_id = self.allocate_packet_id()?;
        let subscribe = Subscribe {
            packet_id,
            properties,
            subscriptions: Seq::from_slice(subscriptions),
        };
        self.append(
            &Packet::Subscribe(subscribe),
            Kind::Subscribe,
            Some(packet_id),
            QoS::AtMostOnce,
        )
        .inspect_err(|_| self.restore_ids(mark))?;
        if self.keeps_subscriptions() {
            self.sub_outstanding += room::table_bytes(subscriptions.iter().map(|s| s.filter));
        }
        Ok(packet_id)
    }

    /// Queues an UNSUBSCRIBE; [`Event::Unsubscribed`] reports the outcome. Filters the
    /// broker reports gone are no longer kept for renewal.
    ///
    /// # Errors
    /// As [`Session::subscribe`].
    pub fn unsubscribe(
        &mut self,
        filters: &[TopicFilter<'_>],
        properties: UnsubscribeProperties<'_>,
    ) -> Result<PacketId, CommandError> {
        let mark = self.id_mark();
        let packet_id = self.allocate_packet_id()?;
        let unsubscribe = Unsubscribe {
            packet_id,
            properties,
            filters: Seq::from_slice(filters),
        };
        self.append(
            &Packet::Unsubscribe(unsubscribe),
            Kind::Unsubscribe,
            Some(packet_id),
            QoS::AtMostOnce,
        )
        .inspect_err(|_| self.restore_ids(mark))?;
        Ok(packet_id)
    }

    /// Queues a graceful DISCONNECT. It drains first: it waits until the messages sent are
    /// acknowledged and the broker's QoS 2 handshakes are complete (a PUBREL answered with
    /// PUBCOMP), for at most [`SessionConfig::drain_timeout`], so that ending a run never
    /// abandons a handshake half-way; messages queued before are sent meanwhile as the window
    /// allows. Once the DISCONNECT is out, [`Event::ConnectionLost`] with
    /// [`LostReason::DisconnectSent`] asks the driver to close the transport. On 5.0,
    /// [`ReasonCode::DisconnectWithWillMessage`](crate::ReasonCode) keeps the will.
    ///
    /// 3.1.1's DISCONNECT carries neither reason code nor properties and always discards
    /// the will: there the properties are left out, and any reason code but Success (asking
    /// for the will) ends the connection after the drain without DISCONNECT
    /// ([`LostReason::ClosedForWill`]), which makes the broker publish the will.
    ///
    /// # Errors
    /// [`CommandError::InvalidState`] unless connected; [`CommandError::Encode`];
    /// [`CommandError::PacketTooLarge`] beyond the broker's Maximum Packet Size (leave out
    /// the properties); [`CommandError::StoreFull`] beyond the control region
    /// ([`Region::Control`]).
    pub fn disconnect(&mut self, disconnect: &Disconnect<'_>) -> Result<(), CommandError> {
        if self.conn.phase != Phase::Connected {
            return Err(CommandError::InvalidState);
        }
        // The application's end replaces a resync waiting to go, and drains for the whole
        // timeout from now: a resync's drain, begun earlier, waits for the broker's
        // handshakes only and would cut this one short. (A second `disconnect` does not
        // start the drain again.)
        if core::mem::replace(&mut self.conn.resync, false) {
            self.conn.drain_since = None;
            self.conn.drain_expired = false;
        }
        if !self.version().v5() {
            self.conn.close_for_will = disconnect.reason_code != crate::ReasonCode::Success;
            let plain = Disconnect::default();
            return self.write_control(&Packet::Disconnect(plain), Control::Disconnect);
        }
        self.write_control(&Packet::Disconnect(*disconnect), Control::Disconnect)
    }

    /// Acknowledges a message delivered in manual-ack mode: PUBREC for a QoS 2 message the
    /// session holds, PUBACK otherwise (QoS 1 messages need no receiver state, so any other
    /// id is taken as a QoS 1 message). Acknowledge in the order messages arrived
    /// [MQTT-4.6.0-2]; an acknowledgement given while disconnected goes out on the next
    /// connection if the broker resumes the session. After [`Event::Connected`] with
    /// `session_present` false, do not acknowledge messages of the old session: their ids
    /// may name new messages now, and the session cannot tell QoS 1 ids apart.
    ///
    /// # Errors
    /// [`CommandError::UnknownPacketId`] for a QoS 2 message already acknowledged;
    /// [`CommandError::WouldBlock`] when the transmit queue is full.
    pub fn ack(&mut self, packet_id: PacketId) -> Result<(), CommandError> {
        let region = store_region_mut(&mut self.store, &self.layout.incoming());
        let packet_type = match self.incoming.find(region, packet_id.get()) {
            Some((_, InState::AwaitingRel, _)) => return Err(CommandError::UnknownPacketId),
            Some((slot, InState::AwaitingApp, _)) => {
                if self.acks.is_full() {
                    return Err(CommandError::WouldBlock);
                }
                self.incoming.set_state(region, slot, InState::AwaitingRel);
                crate::PacketType::PubRec
            }
            None => crate::PacketType::PubAck,
        };
        if !self.acks.push(acks::Ack {
            packet_type,
            packet_id,
            reason_code: crate::ReasonCode::Success,
        }) {
            return Err(CommandError::WouldBlock);
        }
        Ok(())
    }

    /// Queues an AUTH packet (5.0 enhanced authentication or re-authentication).
    ///
    /// # Errors
    /// [`CommandError::InvalidState`] before CONNECT is transmitted or when another control
    /// packet waits; [`CommandError::Encode`] on 3.1.1; [`CommandError::PacketTooLarge`]
    /// beyond the broker's Maximum Packet Size once connected; [`CommandError::StoreFull`]
    /// beyond the control region ([`Region::Control`]).
    pub fn auth(&mut self, auth: &Auth<'_>) -> Result<(), CommandError> {
        let ready = matches!(self.conn.phase, Phase::AwaitConnAck | Phase::Connected);
        if !ready || self.conn.control != Control::None {
            return Err(CommandError::InvalidState);
        }
        self.write_control(&Packet::Auth(*auth), Control::Auth)
    }

    /// The application's authenticator refused the broker during enhanced authentication: its
    /// challenge was malformed, or its final proof wrong, so it does not hold the credentials
    /// (or is not the broker it claims). Ends the connection with a DISCONNECT Not Authorized
    /// (5.0), reported as [`LostReason::AuthenticationFailed`], and the reconnect decision is
    /// to stop. Does nothing unless connecting or connected.
    pub fn authentication_failed(&mut self) {
        if !matches!(self.conn.phase, Phase::AwaitConnAck | Phase::Connected) {
            return;
        }
        self.conn.cause = Some(EndCause::Lost(LostReason::AuthenticationFailed));
        self.close_with(
            LostReason::AuthenticationFailed,
            crate::ReasonCode::NotAuthorized,
        );
    }

    /// Ends the connection on our side for `lost`: nothing more is read or sent but a
    /// DISCONNECT with `reason` (5.0), and the driver is told to close once it is out.
    fn close_with(&mut self, lost: LostReason, reason: crate::ReasonCode) {
        self.conn.phase = Phase::Closing;
        self.conn.closing = Some(lost);
        self.acks.clear();
        self.conn.control = Control::None;
        if self.version().v5() {
            let disconnect = Packet::Disconnect(Disconnect::new(reason));
            if self
                .write_control(&disconnect, Control::ErrorDisconnect)
                .is_err()
            {
                self.conn.control = Control::None;
            }
        }
    }

    /// The transport ended (closed by either side, or failed), or a transport could not be
    /// opened. Unacknowledged messages are kept and marked for resending with DUP;
    /// per-connection state is reset. Returns what to do next, from why the connection ended
    /// and [`SessionConfig::reconnect`]: when to call [`Session::connect`] with a new
    /// transport, whether to follow the broker's Server Reference, or to stop. After a
    /// refusal of 5.0 with [`SessionConfig::fallback_to_v311`] set, the session switches to
    /// 3.1.1 here and asks for a reconnect now.
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn handle_transport_closed(&mut self, now: Instant) -> Reconnect {
        let cause = self.conn.cause.unwrap_or(EndCause::Transport);
        let resync = cause == EndCause::Lost(LostReason::Resync);
        // Only a 5.0 session falls back, or has a Server Reference to follow: a build
        // without `v5` leaves that code out.
        let fall_back = cfg!(feature = "v5") && self.conn.fall_back;
        let next = if fall_back || resync {
            if fall_back {
                self.fall_back_to_v311();
            } else {
                // The connection worked; we ended it to have the broker resend.
                self.backoff.reset();
            }
            // Not a failure of the broker: the next attempt can go at once.
            Reconnect::At {
                at: now,
                attempt: 1,
                cause,
            }
        } else {
            self.backoff.next(
                &self.config.reconnect,
                now,
                cause,
                self.conn.up_since,
                cfg!(feature = "v5") && self.conn.reference,
            )
        };
        self.conn = Conn::new();
        self.drop_stream();
        self.acks.clear();
        // Topic aliases are 5.0's: without `v5` the tables stay empty.
        if cfg!(feature = "v5") {
            self.in_aliases.clear();
            self.out_aliases.clear();
        }
        let region = store_region_mut(&mut self.store, &self.layout.log());
        let mut inflight = 0u16;
        let mut at = self.log.head();
        while let Some(r) = self.log.record(region, at) {
            at = r.next();
            match (r.kind, r.state) {
                // Resent with DUP (`sent_before`); refused ones go again on the new connection.
                (Kind::Publish, State::Sent | State::Delayed) => {
                    self.log.set_state(region, r.at, State::Unsent);
                }
                (Kind::PubRel, State::Sent) => {
                    inflight += 1;
                    self.log.set_state(region, r.at, State::Unsent);
                }
                (Kind::PubRel, State::Unsent) => inflight += 1,
                (Kind::Subscribe | Kind::Unsubscribe | Kind::Resubscribe, State::Sent) => {
                    self.log.set_state(region, r.at, State::Unsent);
                }
                (Kind::Resubscribe, State::Answered) => {
                    self.log.set_state(region, r.at, State::Dead);
                }
                _ => {}
            }
        }
        self.inflight = inflight;
        self.retry_at = None;
        self.answered = None;
        self.renew_blocked = None;
        self.log.rewind();
        next
    }

    /// Speaks 3.1.1 from now on. Queued packets keep their 5.0 encoding and are re-encoded
    /// as they are sent; per-connection state (aliases, the broker's limits) starts afresh
    /// with the next CONNACK anyway, and 3.1.1 brokers cannot announce their window, so the
    /// 5.0 default of no window of our own becomes the 3.1.1 default.
    fn fall_back_to_v311(&mut self) {
        self.version = ProtocolVersion::V3_1_1;
        if self.config.max_inflight == SessionConfig::new(ProtocolVersion::V5).max_inflight {
            self.config.max_inflight = SessionConfig::new(ProtocolVersion::V3_1_1).max_inflight;
        }
        self.limits = BrokerLimits::defaults(0, 0);
        self.limits.subscription_identifier_available = false;
    }

    /// Whether the application must choose a client identifier for this session to survive a
    /// reconnect. A 5.0 broker reports the identifier it assigns to an empty one and the
    /// session reuses it ([`Session::assigned_client_id`]); a 3.1.1 broker assigns one only to
    /// a clean session and never says which, and a 3.1 broker refuses an empty identifier. A
    /// driver that can make up a unique identifier does so when this is `true` and the
    /// application gave none; one that cannot leaves the choice to the application.
    pub fn needs_client_id(&self) -> bool {
        !self.version.v5()
    }

    /// The client identifier a 5.0 broker assigned (Assigned Client Identifier), used by
    /// [`Session::connect`] when the application gives none.
    pub fn assigned_client_id(&self) -> Option<&str> {
        let bytes = self.store.as_ref().get(self.layout.assigned())?;
        let id = core::str::from_utf8(bytes.get(..self.assigned_len)?).ok()?;
        (!id.is_empty()).then_some(id)
    }

    /// Keeps `id` as the client identifier that [`Session::connect`] uses when the
    /// application gives none, as for one a broker assigned, and journals it: a driver that
    /// makes up an identifier for a session it persists keeps it here, so that the session
    /// comes back under the same name after a restart.
    ///
    /// # Errors
    /// [`CommandError::StoreFull`] when `id` is longer than
    /// [`SessionConfig::assigned_id_bytes`].
    pub fn keep_client_id(&mut self, id: &str) -> Result<(), CommandError> {
        let region = store_region_mut(&mut self.store, &self.layout.assigned());
        let available = region.len();
        let dst = region.get_mut(..id.len()).ok_or(CommandError::StoreFull {
            needed: id.len(),
            available,
        })?;
        dst.copy_from_slice(id.as_bytes());
        self.assigned_len = id.len();
        self.journal.identity = true;
        Ok(())
    }

    /// Advances timers to `now`: queues PINGREQ when the keep alive is due, and gives up on the
    /// connection (reported by [`Session::poll_event`]) when CONNACK or PINGRESP is late.
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.retry_at().is_some_and(|at| now >= at) {
            self.retry_at = None;
            self.release_delayed();
        }
        if self.drain_deadline().is_some_and(|at| now >= at) {
            self.conn.drain_expired = true;
        }
        // The deadline `poll_timeout` reports, so that the two cannot disagree.
        if self.connection_timeout().is_some_and(|at| now >= at) {
            match (self.conn.phase, self.conn.ping_sent) {
                (Phase::AwaitConnAck, _) => self.lose(LostReason::ConnAckTimeout),
                (_, Some(_)) => self.lose(LostReason::KeepAliveTimeout),
                (_, None) => self.conn.ping_due = true,
            }
        }
    }

    /// The next instant at which [`Session::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // Not an iterator over the three: its adapters take several times the code.
        let earlier = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        earlier(
            earlier(self.connection_timeout(), self.retry_at()),
            self.drain_deadline(),
        )
    }

    /// When transiently refused messages go again: only 5.0 refuses with a reason code, so a
    /// build without `v5` never has them (nor the code that releases them).
    fn retry_at(&self) -> Option<Instant> {
        self.retry_at.filter(|_| cfg!(feature = "v5"))
    }

    fn drain_deadline(&self) -> Option<Instant> {
        match self.conn.drain_since {
            Some(since) if !self.conn.drain_expired => Some(since + self.config.drain_timeout),
            _ => None,
        }
    }

    fn connection_timeout(&self) -> Option<Instant> {
        match self.conn.phase {
            Phase::AwaitConnAck => Some(self.conn.connack_deadline),
            Phase::Connected if self.limits.keep_alive > 0 => match self.conn.ping_sent {
                Some(sent) => Some(sent.plus_millis(self.ping_timeout_ms())),
                None if self.conn.ping_due => None,
                None => Some(self.ping_at()),
            },
            _ => None,
        }
    }

    /// Whether [`Session::poll_event`] has something to return. Lets a driver check before
    /// taking the borrowing event, e.g. to return it from inside a loop.
    pub fn has_event(&self) -> bool {
        self.abandoned > 0 || self.raised.iter().any(Option::is_some)
    }

    /// The next event that does not come straight from a received packet: a lost connection,
    /// a dropped or abandoned message. It borrows nothing, so a driver can take it anywhere;
    /// the message of a [`Event::PublishAbandoned`] is lent by [`Session::abandoned_message`].
    // Called from one driver loop: kept out of line where size matters, so that the
    // loop's async state machine does not carry a copy of it.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub fn poll_event(&mut self) -> Option<Event<'static>> {
        self.reported = None;
        if let Some(slot) = self.raised.iter_mut().find(|e| e.is_some()) {
            let receive_maximum = self.config.receive_maximum;
            return slot.take().map(|r| r.event(receive_maximum));
        }
        if self.abandoned == 0 {
            return None;
        }
        let region = store_region_mut(&mut self.store, &self.layout.log());
        let Some(r) = self.log.find(region, |r| r.state == State::Abandoned) else {
            self.abandoned = 0;
            return None;
        };
        self.abandoned -= 1;
        // Marking it dead moves no bytes: they stay readable until the next append.
        self.log.set_state(region, r.at, State::Dead);
        let reached_broker = r.kind == Kind::PubRel;
        if !reached_broker {
            self.reported = Some(r.at);
        }
        Some(Event::PublishAbandoned {
            packet_id: PacketId::new(r.pid)?,
            reached_broker,
        })
    }

    /// The message of the [`Event::PublishAbandoned`] that [`Session::poll_event`] just
    /// returned, as it was queued (DUP clear), so the application can publish it again. `None` once another command, input or `poll_event` came in
    /// between, or when the broker had already received the message (a QoS 2 message past
    /// PUBREC).
    pub fn abandoned_message(&self) -> Option<Publish<'_>> {
        let region = store_region(&self.store, &self.layout.log());
        let (packet, v5) = store::Log::bytes_at(region, self.reported?)?;
        match decode_stored(packet, record_version(v5)) {
            Some((Packet::Publish(p), _)) => Some(p),
            _ => None,
        }
    }

    fn ping_at(&self) -> Instant {
        // At most 65,535,000 ms: 32-bit arithmetic.
        let ka = u32::from(self.limits.keep_alive) * 1000;
        self.conn
            .last_tx
            .min(self.conn.last_rx)
            .plus_millis(ka.into())
    }

    /// The PINGRESP timeout in the whole milliseconds `Instant + Duration` keeps of it.
    fn ping_timeout_ms(&self) -> u64 {
        let half_keep_alive = u32::from(self.limits.keep_alive) * 500;
        self.config
            .ping_timeout
            .map_or(half_keep_alive.into(), time::millis)
    }

    /// Ends the connection for `reason`: nothing more is read or sent but a pending error
    /// DISCONNECT, and the driver is told to close.
    fn lose(&mut self, reason: LostReason) {
        self.conn.phase = Phase::Closing;
        self.conn.closing = None;
        self.conn.cause.get_or_insert(EndCause::Lost(reason));
        self.acks.clear();
        self.raise(Raised::Lost(reason));
    }

    fn raise(&mut self, event: Raised) -> bool {
        match self.raised.iter_mut().find(|e| e.is_none()) {
            Some(slot) => {
                *slot = Some(event);
                true
            }
            None => false,
        }
    }

    fn write_control(&mut self, packet: &Packet<'_>, kind: Control) -> Result<(), CommandError> {
        let len = packet.encoded_len(self.version)?;
        self.check_transmit_len(len)?;
        if self.conn.phase == Phase::Connected {
            self.check_broker_size(len)?;
        }
        let region = store_region_mut(&mut self.store, &self.layout.control());
        control_fits(len, region.len())?;
        let len = packet.encode(self.version, region)?;
        self.conn.control = kind;
        self.conn.control_len = len;
        Ok(())
    }

    fn append(
        &mut self,
        packet: &Packet<'_>,
        kind: Kind,
        pid: Option<PacketId>,
        qos: QoS,
    ) -> Result<(), CommandError> {
        let version = self.version;
        let len = packet.encoded_len(version)?;
        // A topic alias the session may add takes at most 3 bytes, and 1 of property length.
        let aliased = matches!(kind, Kind::Publish | Kind::Publish0);
        let slack = if aliased && self.config.outgoing_topic_aliases {
            4
        } else {
            0
        };
        self.check_transmit_len(len + slack)?;
        if self.conn.phase == Phase::Connected {
            self.check_broker_size(len)?;
        }
        self.reported = None;
        self.append_record(packet, kind, pid.map_or(0, PacketId::get), qos, len)
    }

    /// Appends `packet` (`len` bytes encoded) to the log as an unsent record, unchecked:
    /// also the PUBREL that replaces its PUBLISH. One copy of the log's append for both.
    fn append_record(
        &mut self,
        packet: &Packet<'_>,
        kind: Kind,
        pid: u16,
        qos: QoS,
        len: usize,
    ) -> Result<(), CommandError> {
        let version = self.version;
        let region = store_region_mut(&mut self.store, &self.layout.log());
        let mut result = Ok(0);
        self.log.append(
            region,
            Entry {
                kind,
                state: State::Unsent,
                pid,
                qos,
                v5: version.v5(),
                streamed: false,
            },
            len,
            |buf| {
                result = packet.encode(version, buf);
            },
        )?;
        result?;
        Ok(())
    }

    /// Nothing the driver's transmit buffer cannot hold is queued.
    fn check_transmit_len(&self, len: usize) -> Result<(), CommandError> {
        transmit_fits(self.config.transmit_capacity, len)
    }

    /// [MQTT-3.2.2-15] nothing larger than the broker's Maximum Packet Size is sent.
    fn check_broker_size(&self, len: usize) -> Result<(), CommandError> {
        // Without `v5` no CONNACK sets one (3.1.1 has no properties).
        let max = self
            .limits
            .maximum_packet_size
            .filter(|_| cfg!(feature = "v5"));
        match max {
            Some(max) if len > max.get() as usize => Err(CommandError::PacketTooLarge {
                size: len,
                max: max.get(),
            }),
            _ => Ok(()),
        }
    }

    /// The next packet identifier not used by a queued or in-flight packet.
    /// Where the identifier allocator stands, to give back an identifier whose command
    /// failed ([`Session::restore_ids`]).
    fn id_mark(&self) -> IdMark {
        IdMark {
            next: self.next_pid,
            wrapped: self.ids_wrapped,
            free: self.free_ids,
        }
    }

    /// Gives back the identifiers allocated since `mark`: a command that fails (a
    /// `StoreFull` that the driver answers by growing the store and calling again) leaves
    /// the identifiers as they were, so the retry gets the one the first call took instead
    /// of skipping it (a trace then numbers as mosquitto's clients do).
    fn restore_ids(&mut self, mark: IdMark) {
        self.next_pid = mark.next;
        self.ids_wrapped = mark.wrapped;
        self.free_ids = mark.free;
    }

    fn allocate_packet_id(&mut self) -> Result<PacketId, CommandError> {
        if self.log.used() == 0 {
            self.ids_wrapped = false;
            self.free_ids = 0;
        }
        if !self.ids_wrapped {
            // Identifiers are handed out in increasing order, so until they wrap past 65,535
            // every identifier in use is below `next_pid`: no need to look.
            let id = self.next_pid;
            self.next_pid = id.next();
            self.ids_wrapped = self.next_pid == PacketId::MIN;
            return Ok(id);
        }
        // The first identifier from `next_pid` on that no live record uses, and how many
        // free ones follow it: one walk of the log per identifier in use on the way.
        let start = self.next_pid;
        let mut candidate = start;
        for _ in 0..u16::MAX {
            if self.free_ids > 0 {
                break;
            }
            self.next_pid = candidate;
            self.free_ids = self.free_run(candidate);
            candidate = candidate.next();
        }
        if self.free_ids > 0 {
            // Only allocation puts identifiers in use, so the run stays free as it is used up.
            self.free_ids -= 1;
            let id = self.next_pid;
            self.next_pid = id.next();
            return Ok(id);
        }
        self.next_pid = start;
        Err(CommandError::PacketIdsExhausted)
    }

    /// How many identifiers from `from` on (cyclically, 65,535 after 1) no live record uses:
    /// one walk of the log. 0 when `from` itself is in use.
    fn free_run(&self, from: PacketId) -> u16 {
        let region = store_region(&self.store, &self.layout.log());
        let start = u32::from(from.get() - 1);
        let nearest = self
            .log
            .iter(region)
            .filter(|r| r.state != State::Dead && r.kind != Kind::Publish0 && r.pid != 0)
            .map(|r| (u32::from(r.pid - 1) + 65_535 - start) % 65_535)
            .min()
            .unwrap_or(65_535);
        u16::try_from(nearest).unwrap_or(u16::MAX)
    }

    /// Transiently refused messages whose delay passed go back to the queue.
    fn release_delayed(&mut self) {
        let region = store_region_mut(&mut self.store, &self.layout.log());
        let mut at = self.log.head();
        while let Some(r) = self.log.record(region, at) {
            at = r.next();
            if r.state == State::Delayed {
                self.log.set_state(region, r.at, State::Unsent);
            }
        }
    }
}

/// The region `r` of the store (`Session::layout`, which `Session::new` checked against
/// the store's length): empty rather than a panic should the store have shrunk since.
/// Compiled for size, one copy of the bounds check for every use.
#[cfg_attr(mqtt_sansio_small, inline(never))]
fn store_region<'s, B: AsRef<[u8]>>(store: &'s B, r: &Range<usize>) -> &'s [u8] {
    store.as_ref().get(r.clone()).unwrap_or_default()
}

/// [`store_region`], writable.
#[cfg_attr(mqtt_sansio_small, inline(never))]
fn store_region_mut<'s, B: AsMut<[u8]>>(store: &'s mut B, r: &Range<usize>) -> &'s mut [u8] {
    store.as_mut().get_mut(r.clone()).unwrap_or_default()
}

/// The version a log record was encoded in (3.1 and 3.1.1 packets are alike but for CONNECT,
/// which the log never holds).
fn record_version(v5: bool) -> ProtocolVersion {
    // Without `v5` no record is 5.0 (a journal's 5.0 records are refused).
    if cfg!(feature = "v5") && v5 {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    }
}

/// A log record's packet, decoded in the version it was encoded in.
fn decode_record<'r>(region: &'r [u8], r: &Record) -> Option<Packet<'r>> {
    decode_stored(r.packet(region), record_version(r.v5)).map(|(packet, _)| packet)
}

/// Decodes a packet the session wrote into its store (a PUBLISH, PUBREL, SUBSCRIBE or
/// UNSUBSCRIBE), and its length; `None` for malformed bytes. Through the client session's
/// own decoder (`read::decode_client`), not [`Packet::decode`], so that a client build
/// links one dispatch over packet types, without the server's packets.
fn decode_stored(bytes: &[u8], version: ProtocolVersion) -> Option<(Packet<'_>, usize)> {
    match read::decode_client(bytes, version, u32::MAX) {
        Ok(crate::Decoded::Packet { packet, len }) => Some((packet, len)),
        _ => None,
    }
}

/// Whether a `len`-byte control packet fits a control region of `available` bytes:
/// [`CommandError::StoreFull`] says how large the region must be ([`Region::Control`]).
fn control_fits(len: usize, available: usize) -> Result<(), CommandError> {
    if len > available {
        return Err(CommandError::StoreFull {
            needed: len,
            available,
        });
    }
    Ok(())
}

/// Whether a `len`-byte packet fits a transmit buffer of `capacity` (0: no limit).
fn transmit_fits(capacity: usize, len: usize) -> Result<(), CommandError> {
    if capacity > 0 && len > capacity {
        return Err(CommandError::TransmitBufferTooSmall {
            needed: len,
            capacity,
        });
    }
    Ok(())
}
