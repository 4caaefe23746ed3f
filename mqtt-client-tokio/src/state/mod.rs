//! The state a [`Client`](crate::Client) handle and the driver task share: the session and
//! the bookkeeping around it (futures waiting for the broker, subscription routes, held
//! messages, events). Handles run their commands against it directly, under a short lock,
//! and wake the driver; the driver feeds it bytes and time. Nothing here awaits.
//!
//! All MQTT behaviour (QoS flows, keep alive, resending, packet identifiers, topic aliases,
//! reconnect decisions) is the session's; this layer only completes the callers' futures and
//! routes what the session delivers.

mod commands;
mod connect;
mod dispatch;
mod events;
mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use mqtt_sansio::session::{CommandError, Instant, Region, Session, SessionConfig};
use mqtt_sansio::ReasonCode;
use mqtt_sansio::SubscriptionOptions;
use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{info, warn};

use crate::options::{DisconnectOptions, Policy, ProtocolOptions};
use crate::{Error, Event, Message, Options, RequestProperties, Subscription};

pub(crate) use commands::{Done, Queued, Stored};
pub(crate) use events::EventSink;
pub(crate) use wire::OUTBOX_LIMIT;
/// Per-alias room for incoming topic aliases.
const ALIAS_TOPIC_BYTES: usize = 264;
/// Room for outgoing topic aliases when enabled.
const OUTGOING_ALIAS_BYTES: usize = 16 * 1024;
/// Incoming QoS 2 messages a journaled session can track, whatever the Receive Maximum
/// (4 KiB), taken whole at once (see `session_config`).
const INCOMING_SLOTS: u16 = 1024;
/// Incoming QoS 2 messages a new client's table has room for (32 bytes), or the Receive
/// Maximum if lower: it grows (a slot per message in flight) only while QoS 2 messages
/// arrive faster than they are released, and shrinks back once they are.
const INITIAL_INCOMING: u16 = 8;
/// Bytes of subscription table a new client starts with (a filter or two); it grows to
/// `Policy::subscription_bytes` as subscriptions need it.
const INITIAL_SUBSCRIPTIONS: usize = 64;
/// Bytes of queue a new client starts with (a small message); it grows on demand up to
/// `Policy::offline_queue_bytes` and shrinks back when drained. Every record grows it when it
/// does not fit: a publish, a SUBSCRIBE or UNSUBSCRIBE (`with_queue_room`), and a renewal
/// SUBSCRIBE the session queues by itself (`SessionConfig::queue_bytes_limit`).
pub(crate) const INITIAL_LOG: usize = 64;
/// Bytes of the control region between control packets: the DISCONNECT the session sends by
/// itself on a protocol error (reason code, no properties) fits; a CONNECT, a DISCONNECT
/// with properties and an AUTH grow it while they wait to go (`with_control_room`).
const CONTROL_IDLE: usize = 16;
/// Most packet-id index slots: more than any window brokers grant in practice.
const INDEX_SLOTS: u16 = 256;
/// Largest authentication data an authenticator writes in one step.
pub(crate) const AUTH_BUF: usize = 512;

/// The shared authenticator, or an error if a panic while it was held poisoned it.
pub(crate) fn lock_authenticator(
    auth: &crate::SharedAuthenticator,
) -> Result<std::sync::MutexGuard<'_, dyn mqtt_sansio::auth::Authenticator + Send + 'static>, Error>
{
    auth.lock()
        .map_err(|_| Error::InvalidOptions("the authenticator panicked".into()))
}

/// Why a connection (or an attempt) ended.
pub(crate) enum End {
    /// We ended it: disconnect requested, or every handle dropped.
    Closed,
    /// It failed or was lost.
    Failed {
        error: Error,
        /// The 5.0 Server Reference the broker sent; followed when the session's reconnect
        /// decision is to redirect.
        reference: Option<String>,
    },
}

impl End {
    pub(crate) fn failed(error: impl Into<Error>) -> Self {
        Self::Failed {
            error: error.into(),
            reference: None,
        }
    }
}

/// A request waiting for the broker's answer, by packet identifier.
pub(crate) enum Pending {
    Publish(oneshot::Sender<Result<ReasonCode, Error>>),
    Subscribe {
        route: u64,
        rx: mpsc::Receiver<Message>,
        filters: Vec<String>,
        reply: oneshot::Sender<Result<Subscription, Error>>,
    },
    Unsubscribe {
        filters: Vec<String>,
        reply: oneshot::Sender<Result<Vec<ReasonCode>, Error>>,
    },
}

/// Where a held message goes.
pub(crate) enum Target {
    /// A subscription's stream.
    Stream(mpsc::Sender<Message>),
    /// The events stream: a message that matches no subscription (a resumed session's
    /// backlog that arrives before `subscribe`).
    Events,
}

impl Target {
    fn is_stream(&self, tx: &mpsc::Sender<Message>) -> bool {
        matches!(self, Self::Stream(t) if t.same_channel(tx))
    }
}

/// A message waiting for room in a subscription stream or the events stream.
pub(crate) struct Parked {
    pub(crate) target: Target,
    pub(crate) message: Message,
    /// The packet identifier to acknowledge once the stream took it: set on the last stream a
    /// message goes to, when the driver (not the application) acknowledges.
    pub(crate) ack: Option<mqtt_sansio::PacketId>,
}

/// Where the messages of one `subscribe` call go.
pub(crate) struct Route {
    pub(crate) id: u64,
    /// 5.0 subscription identifier, when the broker supports them.
    pub(crate) sub_id: Option<NonZeroU32>,
    pub(crate) filters: Vec<(String, SubscriptionOptions)>,
    /// Sent again with the filters if the broker refuses the subscription identifier.
    pub(crate) properties: RequestProperties,
    pub(crate) tx: mpsc::Sender<Message>,
}

/// A requested stop.
pub(crate) struct Shutdown {
    options: DisconnectOptions,
    replies: Vec<oneshot::Sender<Result<(), Error>>>,
    started: bool,
}

/// Where the driver stands, for handles.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    Connecting,
    Connected,
    /// The driver has stopped for good, for this reason. Boxed: set once in a client's life,
    /// and the status is kept in the state of every client for all of it (8 bytes, not 40).
    Stopped(Box<Error>),
}

/// A publish waiting for room in the store (policy `QueueFull::Wait`): `queued` answers once
/// the session holds it, with its packet identifier; `stored` once it is durable; `done` once
/// it is delivered.
pub(crate) struct WaitingPublish {
    pub(crate) message: Message,
    pub(crate) queued: oneshot::Sender<Result<Option<mqtt_sansio::PacketId>, Error>>,
    pub(crate) stored: oneshot::Sender<()>,
    pub(crate) done: oneshot::Sender<Result<ReasonCode, Error>>,
}

/// What the state reads of the [`Policy`] once the session is made: the rest went into the
/// session's configuration, and every client keeps this for its life (40 bytes, not 120).
pub(crate) struct KeptPolicy {
    pub(crate) connect_timeout: Duration,
    pub(crate) offline_queue_bytes: usize,
    pub(crate) subscription_buffer: usize,
    pub(crate) queue_full: crate::QueueFull,
    pub(crate) reconnect: bool,
    pub(crate) republish_abandoned_qos1: bool,
}

impl KeptPolicy {
    fn new(p: &Policy) -> Self {
        Self {
            connect_timeout: p.connect_timeout,
            offline_queue_bytes: p.offline_queue_bytes,
            subscription_buffer: p.subscription_buffer,
            queue_full: p.queue_full,
            reconnect: p.reconnect,
            republish_abandoned_qos1: p.republish_abandoned_qos1,
        }
    }
}

/// What the handles and the driver share: the state under a lock the driver never holds
/// across an await, and the driver's wake-up call.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Wakes the driver after a command changed the state. `notify_one` keeps one permit, so a
    /// command made while the driver is busy is seen on its next turn.
    pub(crate) wake: Notify,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            wake: Notify::new(),
        }
    }

    /// The state. A panic while it was held (a bug) leaves it as it was; carrying on is
    /// better than failing every handle.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) struct State {
    pub(crate) session: Session<Vec<u8>>,
    pub(crate) protocol: connect::ConnectOptions,
    pub(crate) policy: KeptPolicy,
    epoch: tokio::time::Instant,
    /// Where the driver stands, read by the handles under the lock (a `watch` channel would
    /// cost every client 376 bytes for a value only `Client::connect` waits on).
    pub(crate) status: Status,
    /// `Client::connect`'s wait for the first connection: answered when the status first
    /// becomes `Connected` or `Stopped`, then gone.
    first_outcome: Option<oneshot::Sender<Result<(), Error>>>,
    /// Commands taken so far: the driver waits for more while this keeps growing (see
    /// `Driver::gather`).
    pub(crate) commands_seen: u64,
    pub(crate) events: EventSink,
    /// The broker of the current connection, for events.
    pub(crate) broker: String,
    pub(crate) connected_once: bool,
    /// The current connection reached CONNACK.
    pub(crate) connected: bool,
    /// Boxed, as `conn_end` and `fatal`: set once in a client's life, and kept in the state of
    /// every client for all of it.
    pub(crate) shutdown: Option<Box<Shutdown>>,
    /// Set when the session says the connection is over; acted on once bytes are out.
    pub(crate) conn_end: Option<Box<End>>,

    /// A `BTreeMap`: 24 bytes while empty (a `HashMap` with its hasher's keys is 48), and no
    /// hashing for the few requests a client has in flight.
    pending: BTreeMap<u16, Pending>,
    /// Completions of queued QoS 0 publishes, in the order the session sends them.
    qos0: VecDeque<oneshot::Sender<Result<ReasonCode, Error>>>,
    /// QoS 0 publishes handed to the connection: complete once `written_bytes` reaches the
    /// mark.
    marks: VecDeque<(u64, oneshot::Sender<Result<ReasonCode, Error>>)>,
    /// Publishes waiting for room in the store (policy `QueueFull::Wait`).
    waiting: VecDeque<WaitingPublish>,
    /// Something may have freed room in the store since the last retry.
    store_freed: bool,
    routes: Vec<Route>,
    /// Scratch for the streams a message goes to (see `route`).
    route_targets: Vec<mpsc::Sender<Message>>,
    next_route: u64,
    next_sub_id: u32,
    /// Messages for full subscription streams, in arrival order. Reading goes on: QoS 1 and
    /// 2 messages here are not acknowledged yet, which holds back the broker's window.
    pub(crate) outbox: VecDeque<Parked>,
    /// QoS 0 messages dropped because the outbox was full, not reported yet.
    dropped_qos0: u64,

    /// Bytes still to drop of a packet the session skipped.
    pub(crate) rx_skip: usize,
    /// Bytes to write; the driver takes them (`take_output`) and writes them outside the lock.
    wbuf: BytesMut,
    /// Where `poll_transmit` encodes.
    scratch: Vec<u8>,
    /// Bytes ever put into `wbuf`, and ever written.
    queued_bytes: u64,
    written_bytes: u64,
    /// The session's journal in its directory ([`Options::persistence`]).
    /// Boxed: most clients have none, and the state of every client is kept for its life.
    pub(crate) journal: Option<Box<crate::persist::FileJournal>>,
    /// Why the client must stop, found where no error can be returned (a journal write
    /// while disconnected).
    pub(crate) fatal: Option<Box<Error>>,
}

impl State {
    pub(crate) fn new(
        options: &Options,
        first_outcome: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<Self, Error> {
        let protocol = connect::ConnectOptions::new(&options.protocol);
        let policy = &options.policy;
        let persistence = options.persistence.as_ref();
        let config = session_config(&options.protocol, &protocol, policy, persistence)?;
        // The queue starts small and grows as messages wait (see `grow_store`): a client
        // that never queues much never holds (nor zeroes) `offline_queue_bytes`.
        let log = INITIAL_LOG;
        let mut session = Session::new(config, vec![0u8; config.reserved_bytes() + log])?;
        let limit = policy.offline_queue_bytes.max(INITIAL_LOG);
        let journal = match &options.persistence {
            Some(p) => {
                crate::persist::check(p)?;
                let grow = |s: &mut Session<Vec<u8>>, needed| grow_store(s, needed, limit);
                let (journal, restored) = crate::persist::FileJournal::open(p, &mut session, grow)?;
                if restored > 0 {
                    info!(restored, "messages recovered from the session's directory");
                }
                Some(Box::new(journal))
            }
            None => None,
        };
        let mut state = Self {
            session,
            protocol,
            policy: KeptPolicy::new(policy),
            epoch: tokio::time::Instant::now(),
            status: Status::Connecting,
            first_outcome,
            commands_seen: 0,
            events: EventSink::new(options.policy.event_buffer),
            broker: String::new(),
            connected_once: false,
            connected: false,
            shutdown: None,
            conn_end: None,
            pending: BTreeMap::new(),
            qos0: VecDeque::new(),
            marks: VecDeque::new(),
            waiting: VecDeque::new(),
            store_freed: false,
            routes: Vec::new(),
            route_targets: Vec::new(),
            next_route: 0,
            next_sub_id: 0,
            outbox: VecDeque::new(),
            dropped_qos0: 0,
            rx_skip: 0,
            wbuf: BytesMut::new(),
            // Grows to the largest packet sent (see `pump`); most are small, and an idle
            // client has sent only CONNECT and PINGREQ.
            scratch: Vec::new(),
            queued_bytes: 0,
            written_bytes: 0,
            journal,
            fatal: None,
        };
        state.keep_client_id()?;
        state.ensure_client_id();
        state.drain_journal();
        Ok(state)
    }

    /// With persistence, the session's directory belongs to one client identifier: the one
    /// it recorded is used when none is given, and a different one is refused.
    fn keep_client_id(&mut self) -> Result<(), Error> {
        if self.journal.is_none() {
            return Ok(());
        }
        let kept = self.session.assigned_client_id().map(str::to_owned);
        match kept {
            Some(kept) if self.protocol.client_id.is_empty() && self.session.needs_client_id() => {
                self.protocol.client_id = kept;
            }
            // 5.0 sends an empty identifier and the session fills in the kept one.
            Some(_) if self.protocol.client_id.is_empty() => {}
            Some(kept) if kept != self.protocol.client_id => {
                return Err(Error::InvalidOptions(format!(
                    "the session's directory belongs to client identifier {kept:?}"
                )));
            }
            _ if !self.protocol.client_id.is_empty() => {
                let id = self.protocol.client_id.clone();
                self.session.keep_client_id(&id).map_err(Error::Command)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes up a client identifier when the session needs one and none was given (3.1.1;
    /// also after a fallback to 3.1.1), kept for every reconnect (and in the session's
    /// directory, with persistence).
    fn ensure_client_id(&mut self) {
        if self.protocol.client_id.is_empty() && self.session.needs_client_id() {
            self.protocol.client_id = generate_client_id();
            if self.journal.is_some() {
                let id = self.protocol.client_id.clone();
                if let Err(e) = self.session.keep_client_id(&id) {
                    warn!(error = %e, "made-up client identifier not kept");
                }
            }
        }
    }

    /// Hands what the session journaled to the journal's write queue. Before every
    /// `poll_transmit`, and after a command whose durability someone waits for.
    pub(crate) fn drain_journal(&mut self) {
        if let Some(journal) = &mut self.journal {
            journal.drain(&mut self.session);
        }
    }

    /// Completes `stored` once what the session journaled so far is durable (at once
    /// without persistence).
    pub(crate) fn notify_stored(&mut self, stored: oneshot::Sender<()>) {
        self.drain_journal();
        match &mut self.journal {
            Some(journal) => journal.notify_stored(stored),
            None => {
                let _ = stored.send(());
            }
        }
    }

    /// The next journal write for the driver to carry out.
    pub(crate) fn journal_work(&mut self) -> Option<crate::persist::Work> {
        self.drain_journal();
        self.journal.as_mut()?.work()
    }

    /// A journal write finished (or failed: the client stops).
    pub(crate) fn journal_done(
        &mut self,
        result: std::io::Result<crate::persist::Work>,
    ) -> Result<(), Error> {
        match (result, &mut self.journal) {
            (Ok(work), Some(journal)) => {
                journal.done(work);
                Ok(())
            }
            (Err(e), journal) => {
                if let Some(journal) = journal {
                    journal.failed();
                }
                let error = crate::persist::persist_error(e);
                warn!(%error, "journal write failed: stopping");
                self.fatal = Some(Box::new(error.clone()));
                Err(error)
            }
            (Ok(_), None) => Ok(()),
        }
    }

    /// When the journal owes a periodic sync.
    pub(crate) fn journal_sync_at(&self) -> Option<tokio::time::Instant> {
        let at = self.journal.as_ref()?.sync_at()?;
        Some(tokio::time::Instant::from_std(at))
    }

    /// Tells the application, if it listens.
    pub(crate) fn emit(&mut self, event: Event) -> bool {
        self.events.emit(event)
    }

    /// Reports a failed attempt.
    pub(crate) fn attempt_failed(&mut self, error: Error) -> End {
        warn!(%error, "connection attempt failed");
        self.events.emit(Event::Error(error.clone()));
        End::failed(error)
    }

    /// A new transport is open: resets what belonged to the last one.
    pub(crate) fn connection_opened(&mut self) {
        self.conn_end = None;
        self.rx_skip = 0;
    }
    /// Cleans up after a connection and tells the application.
    pub(crate) fn connection_closed(&mut self, end: &End) {
        self.wbuf.clear();
        self.written_bytes = self.queued_bytes;
        self.rx_skip = 0;
        let error = match end {
            End::Closed => Error::Closed,
            End::Failed { error, .. } => error.clone(),
        };
        // QoS 0 messages handed to the dead connection but not written are gone.
        for (_, done) in self.marks.drain(..) {
            let _ = done.send(Err(Error::NotSent));
        }
        if self.connected {
            info!(%error, "disconnected");
            self.events.emit(Event::Disconnected { error });
        } else if !matches!(end, End::Closed) {
            warn!(%error, "connection attempt failed");
            self.events.emit(Event::Error(error));
        }
        self.set_status(Status::Connecting);
    }

    /// Queues CONNECT for the new transport. Whether it resumes the session (Clean Start
    /// after the first connection) is the session's rule.
    pub(crate) fn send_connect(&mut self) -> Result<(), Error> {
        self.ensure_client_id();
        let p = &self.protocol;
        // A mechanism starts a new exchange on every connection (a fresh nonce for SCRAM).
        let mut data = [0u8; AUTH_BUF];
        let mut started = None;
        if let Some(auth) = &p.authenticator {
            let mut auth = lock_authenticator(auth)?;
            let n = auth.start(&mut data).map_err(Error::Authentication)?;
            started = Some((auth.method().to_string(), n));
        }
        let auth = started
            .as_ref()
            .map(|(method, n)| (method.as_str(), &data[..*n]));
        let session = &mut self.session;
        p.with_packet(p.clean_start, auth, |connect| {
            with_control_room(session, |s| s.connect(connect)).map_err(Error::from)
        })
    }

    pub(crate) fn set_status(&mut self, status: Status) {
        let outcome = match &status {
            Status::Connecting => None,
            Status::Connected => Some(Ok(())),
            Status::Stopped(error) => Some(Err(Error::clone(error))),
        };
        if let Some(outcome) = outcome {
            if let Some(first) = self.first_outcome.take() {
                // `Client::connect` may have given up waiting: nothing to tell then.
                let _ = first.send(outcome);
            }
        }
        self.status = status;
    }

    /// Why the driver stopped, once it has: commands then fail with it at once.
    pub(crate) fn stopped(&self) -> Option<&Error> {
        match &self.status {
            Status::Stopped(error) => Some(error),
            _ => None,
        }
    }

    /// Why the client stopped, or `Closed` while it has not (a handle's request was dropped
    /// unanswered).
    pub(crate) fn stop_reason(&self) -> Error {
        self.stopped().cloned().unwrap_or(Error::Closed)
    }

    /// The session's clock.
    pub(crate) fn now(&self) -> Instant {
        let ms = self.epoch.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    pub(crate) fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_millis(at.as_millis())
    }

    /// Completes everything still waiting with `reason` and publishes the final status.
    pub(crate) fn finish(&mut self, reason: Error) {
        info!(%reason, "client stopped");
        self.set_status(Status::Stopped(Box::new(reason.clone())));
        for (_, pending) in std::mem::take(&mut self.pending) {
            match pending {
                Pending::Publish(done) => {
                    let _ = done.send(Err(reason.clone()));
                }
                Pending::Subscribe { reply, .. } => {
                    let _ = reply.send(Err(reason.clone()));
                }
                Pending::Unsubscribe { reply, .. } => {
                    let _ = reply.send(Err(reason.clone()));
                }
            }
        }
        for done in self.qos0.drain(..) {
            let _ = done.send(Err(reason.clone()));
        }
        for (_, done) in self.marks.drain(..) {
            let _ = done.send(Err(Error::NotSent));
        }
        for p in self.waiting.drain(..) {
            let _ = p.queued.send(Err(reason.clone()));
        }
        // The last records go to the directory, and it is free for the next client.
        if let Some(journal) = self.journal.take() {
            journal.close(&mut self.session);
        }
        let mut lost = 0;
        for parked in std::mem::take(&mut self.outbox) {
            let sent = match parked.target {
                Target::Stream(tx) => tx.try_send(parked.message).is_ok(),
                Target::Events => self.events.emit(Event::Message(parked.message)),
            };
            lost += usize::from(!sent);
        }
        if lost > 0 {
            warn!(
                lost,
                "received messages not delivered: subscription streams full at stop"
            );
        }
        self.routes.clear();
        // The handles keep this state alive: the events stream ends here, once read.
        self.events.end();
        if let Some(shutdown) = self.shutdown.take() {
            for reply in shutdown.replies {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

/// What the first held message waits on.
pub(crate) enum Waiter {
    Stream(mpsc::Sender<Message>),
    Events,
}

/// Waits for room where the first held message goes; `false` when that stream is gone.
pub(crate) async fn room(shared: &Shared, waiter: Option<Waiter>) -> bool {
    // The waits are boxed: they happen only behind a slow consumer, and inline they would
    // keep room in every client's task for good.
    match waiter {
        // The permit is given back at once: the message is then sent with `try_send`, which
        // cannot fail for lack of room, as the driver is the only sender that waits.
        Some(Waiter::Stream(tx)) => Box::pin(tx.reserve()).await.is_ok(),
        Some(Waiter::Events) => std::future::poll_fn(|cx| shared.lock().events.poll_room(cx)).await,
        None => std::future::pending().await,
    }
}

/// The session's configuration and store layout for these options.
fn session_config(
    p: &ProtocolOptions,
    connect: &connect::ConnectOptions,
    policy: &Policy,
    persistence: Option<&crate::Persistence>,
) -> Result<SessionConfig, Error> {
    let mut config = SessionConfig::new(p.version);
    config.journal = persistence.is_some();
    if config.journal {
        // Room for the client identifier the directory keeps, whichever version.
        config.assigned_id_bytes = config.assigned_id_bytes.max(256);
    } else if !p.client_id.is_empty() {
        // A broker assigns an identifier only to a client that sent none.
        config.assigned_id_bytes = 0;
    }
    config.receive_maximum = p.receive_maximum.max(1);
    config.maximum_packet_size = p.maximum_packet_size.max(64);
    // The session's default per version (3.1.1: mosquitto's window of 20) unless set.
    if let Some(n) = p.max_inflight {
        config.max_inflight = n.max(1);
    }
    config.topic_alias_maximum = p.topic_alias_maximum;
    config.incoming_alias_bytes = usize::from(p.topic_alias_maximum) * ALIAS_TOPIC_BYTES;
    config.outgoing_topic_aliases = p.outgoing_topic_aliases;
    if p.outgoing_topic_aliases {
        config.outgoing_alias_bytes = OUTGOING_ALIAS_BYTES;
    }
    // Brokers exceed the Receive Maximum (mosquitto resuming a session sends hundreds, and
    // a live one had 1,024 in flight to a busy subscriber of a clean session): the table of
    // incoming QoS 2 messages (4 bytes a slot) grows to track them, and back once they are
    // released. A message it cannot track is left with the broker, which sends it again
    // only on a new connection, and a session the broker does not keep has lost it then: so
    // it may grow to every packet identifier there is (256 KiB, while a broker floods), and
    // no message is ever left. So does the subscription table, up to the policy's bytes. A
    // journaled session takes both whole at once (a restore fills them), so its table stays
    // at `INCOMING_SLOTS`: the broker keeps that session, and what it holds comes back.
    config.incoming_slots_limit = if config.journal {
        config.receive_maximum.max(INCOMING_SLOTS)
    } else {
        u16::MAX
    };
    config.subscription_bytes_limit = policy.subscription_bytes;
    // A renewal SUBSCRIBE larger than the queue as it is grows it, as a command would.
    config.queue_bytes_limit = policy.offline_queue_bytes.max(INITIAL_LOG);
    if config.journal {
        config.incoming_slots = config.incoming_slots_limit;
        config.subscription_bytes = policy.subscription_bytes;
    } else {
        config.incoming_slots = config.receive_maximum.min(INITIAL_INCOMING);
        config.subscription_bytes = policy.subscription_bytes.min(INITIAL_SUBSCRIPTIONS);
    }
    // The driver acknowledges a message once its subscription streams took it (or the
    // application does, in manual-ack mode): a slow consumer then holds back the broker's
    // window instead of the driver's reads.
    config.manual_acks = true;
    config.connack_timeout = policy.connect_timeout;
    config.drain_timeout = policy.drain_timeout;
    // The session renews granted subscriptions after a lost session (the table is sized
    // above); the routes here only say which stream a message goes to.
    // Acknowledgements find their packet without walking the queue: a slot (6 bytes) per
    // packet in flight, whose identifiers are consecutive and so never share one (3.1.1's
    // window of 20: 120 bytes; 5.0, where only CONNACK tells the window: 1.5 KiB).
    config.index_slots = config.max_inflight.clamp(16, INDEX_SLOTS);
    config.fallback_to_v311 = p.fallback_to_v311;
    config.reconnect.initial = policy.backoff_min;
    config.reconnect.max = policy.backoff_max;
    config.reconnect.stable_after = policy.stable_after;
    config.reconnect.after_takeover = policy.reconnect_after_takeover;
    config.reconnect.seed = fastrand::u64(..);
    // The control region holds CONNECT (with the will), DISCONNECT and AUTH while they wait
    // to go, and grows for each (`with_control_room`); this checks that the CONNECT can be
    // encoded at all.
    connect.with_packet(p.clean_start, None, |connect| {
        SessionConfig::control_len(connect)
            .map_err(|e| Error::InvalidOptions(format!("CONNECT cannot be encoded: {e}")))
    })?;
    config.control_bytes = CONTROL_IDLE;
    Ok(config)
}

/// Runs a command that writes the session's control region (CONNECT, DISCONNECT, AUTH), and
/// once more after growing the region to what the command said it needs: the store keeps only
/// [`CONTROL_IDLE`] bytes there between control packets, and the session asks for the room
/// back once the packet is sent (`fit_room`).
pub(crate) fn with_control_room(
    session: &mut Session<Vec<u8>>,
    command: impl FnMut(&mut Session<Vec<u8>>) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    with_room(session, command, |s, needed| {
        s.resize_region(Region::Control, needed, |store, len| store.resize(len, 0))
            .is_ok()
    })
}

/// Runs a command that queues a record, and once more after growing the queue (up to
/// `limit`) when it had no room.
pub(crate) fn with_queue_room<T>(
    session: &mut Session<Vec<u8>>,
    limit: usize,
    command: impl FnMut(&mut Session<Vec<u8>>) -> Result<T, CommandError>,
) -> Result<T, CommandError> {
    with_room(session, command, |s, needed| {
        needed <= limit && grow_store(s, needed, limit)
    })
}

/// Runs `command`, and once more when it found no room (`StoreFull`) and `grow` made the
/// room it said it needs; the first error stands when `grow` could not.
fn with_room<T>(
    session: &mut Session<Vec<u8>>,
    mut command: impl FnMut(&mut Session<Vec<u8>>) -> Result<T, CommandError>,
    grow: impl FnOnce(&mut Session<Vec<u8>>, usize) -> bool,
) -> Result<T, CommandError> {
    match command(session) {
        Err(CommandError::StoreFull { needed, .. }) if grow(session, needed) => command(session),
        other => other,
    }
}

/// Makes room in `session`'s store for a record of `needed` bytes: doubles the queue (or
/// more), up to `limit`. Whether it grew.
pub(crate) fn grow_store(session: &mut Session<Vec<u8>>, needed: usize, limit: usize) -> bool {
    let (used, capacity) = session.store_usage();
    let target = (capacity * 2).max(used + needed).min(limit);
    if target <= capacity {
        return false;
    }
    let reserved = session.reserved_len();
    session
        .resize_store(reserved + target, |store, len| store.resize(len, 0))
        .is_ok()
}

/// `mqttrs-` and 16 random alphanumerics: 23 characters, what 3.1.1 brokers must accept.
fn generate_client_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let suffix: String = (0..16)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect();
    format!("mqttrs-{suffix}")
}
