//! The reference client: `mqtt-sansio`'s sans-IO session over a tokio `TcpStream`, meant for a
//! direct, fault-free connection to the broker. It counts what it receives and what the
//! broker acknowledged, and reconnects by itself (persistent session) when the broker goes
//! away, as in a restart scenario.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mqtt_sansio::session::{CommandError, Event, Instant, Message, Read, Session, SessionConfig};
use mqtt_sansio::{
    Connect, Decoded, Disconnect, Packet, ProtocolVersion, QoS, SubscribeProperties, Subscription,
    TopicFilter, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Tally;

/// Session store: room for thousands of small queued publishes.
const STORE: usize = 1 << 20;
/// Largest packet accepted.
const MAX_PACKET: usize = 128 * 1024;
/// Transmit buffer.
const TX: usize = 64 * 1024;
/// Pause between connection attempts.
const RETRY: Duration = Duration::from_millis(50);
/// Connection attempts before the reference client gives up (about 2.5 min at [`RETRY`]).
const ATTEMPTS: u32 = 3_000;
/// Poll interval of [`RefClient::wait_for`].
const POLL: Duration = Duration::from_millis(5);

/// How the reference client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefConfig {
    /// The broker (directly, or through a fault-free proxy).
    pub addr: SocketAddr,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Client identifier.
    pub client_id: String,
    /// Persistent session (clean session 0, 5.0 session expiry of an hour).
    pub persistent: bool,
}

impl RefConfig {
    /// A persistent session.
    pub fn new(addr: SocketAddr, version: ProtocolVersion, client_id: impl Into<String>) -> Self {
        Self {
            addr,
            version,
            client_id: client_id.into(),
            persistent: true,
        }
    }
}

/// What the reference client has seen so far.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RefStats {
    /// Messages received.
    pub tally: Tally,
    /// QoS 1/2 publishes acknowledged without error.
    pub acked: u64,
    /// Publishes acknowledged with an error reason code, or abandoned.
    pub failed: u64,
    /// SUBACKs received (all filters granted).
    pub subscribed: u64,
    /// Connections the broker accepted.
    pub connects: u64,
    /// Reconnects where the broker had lost the persistent session.
    pub session_lost: u64,
    /// Anything odd: refusals, protocol errors, rejected subscriptions.
    pub problems: Vec<String>,
}

#[derive(Debug)]
enum RefCommand {
    Subscribe(String, QoS),
    Publish(String, Vec<u8>, QoS),
    Stop,
}

/// A running reference client (a tokio task). Dropping it aborts the task.
#[derive(Debug)]
pub struct RefClient {
    commands: mpsc::UnboundedSender<RefCommand>,
    stats: Arc<Mutex<RefStats>>,
    task: Option<JoinHandle<()>>,
}

impl RefClient {
    /// Starts the client on the current tokio runtime; it connects at once.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(config: RefConfig) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Mutex::new(RefStats::default()));
        let task = tokio::spawn(run(config, rx, Arc::clone(&stats)));
        Self {
            commands,
            stats,
            task: Some(task),
        }
    }

    /// Queues a SUBSCRIBE.
    pub fn subscribe(&self, filter: impl Into<String>, qos: QoS) {
        let _ = self
            .commands
            .send(RefCommand::Subscribe(filter.into(), qos));
    }

    /// Queues a message (kept until the broker acknowledges it, across reconnects).
    pub fn publish(&self, topic: impl Into<String>, payload: Vec<u8>, qos: QoS) {
        let _ = self
            .commands
            .send(RefCommand::Publish(topic.into(), payload, qos));
    }

    /// A snapshot of what it has seen.
    pub fn stats(&self) -> RefStats {
        lock(&self.stats).clone()
    }

    /// Waits until `condition` holds, at most `timeout`.
    ///
    /// # Errors
    /// The last snapshot when `timeout` passed first.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&RefStats) -> bool,
    ) -> Result<RefStats, RefStats> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return Ok(stats);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(stats);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Disconnects gracefully (at most 5 s) and returns the final stats.
    pub async fn stop(mut self) -> RefStats {
        let _ = self.commands.send(RefCommand::Stop);
        if let Some(task) = self.task.take() {
            let aborter = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                aborter.abort();
            }
        }
        self.stats()
    }
}

impl Drop for RefClient {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn lock(stats: &Mutex<RefStats>) -> MutexGuard<'_, RefStats> {
    stats.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Lost,
    Stop,
}

struct Driver {
    config: RefConfig,
    session: Session<Vec<u8>>,
    commands: mpsc::UnboundedReceiver<RefCommand>,
    pending: VecDeque<RefCommand>,
    stats: Arc<Mutex<RefStats>>,
    epoch: tokio::time::Instant,
    stopping: bool,
}

async fn run(
    config: RefConfig,
    commands: mpsc::UnboundedReceiver<RefCommand>,
    stats: Arc<Mutex<RefStats>>,
) {
    let mut session_config = SessionConfig::new(config.version);
    session_config.receive_maximum = 100;
    session_config.maximum_packet_size = MAX_PACKET as u32;
    session_config.max_inflight = 20;
    session_config.connack_timeout = Duration::from_secs(5);
    let session = match Session::new(session_config, vec![0u8; STORE]) {
        Ok(s) => s,
        Err(e) => {
            lock(&stats).problems.push(format!("session: {e}"));
            return;
        }
    };
    let mut driver = Driver {
        config,
        session,
        commands,
        pending: VecDeque::new(),
        stats,
        epoch: tokio::time::Instant::now(),
        stopping: false,
    };
    for _ in 0..ATTEMPTS {
        let addr = driver.config.addr;
        let connected = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr));
        if let Ok(Ok(stream)) = connected.await {
            let _ = stream.set_nodelay(true);
            let end = driver.connection(stream).await;
            let now = driver.now();
            let _ = driver.session.handle_transport_closed(now);
            if end == End::Stop {
                return;
            }
        }
        // Commands keep arriving while disconnected.
        if driver.drain_commands() == End::Stop {
            return;
        }
        tokio::time::sleep(RETRY).await;
    }
    driver.problem("gave up reconnecting".into());
}

impl Driver {
    fn now(&self) -> Instant {
        Instant::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    fn problem(&self, p: String) {
        lock(&self.stats).problems.push(p);
    }

    /// Takes queued commands off the channel; `Stop` when asked to stop while disconnected.
    fn drain_commands(&mut self) -> End {
        while let Ok(c) = self.commands.try_recv() {
            self.pending.push_back(c);
        }
        if self.session.state() == mqtt_sansio::session::ConnectionState::Disconnected
            && self.pending.iter().any(|c| matches!(c, RefCommand::Stop))
        {
            return End::Stop;
        }
        End::Lost
    }

    /// Hands pending commands to the session while it has room.
    fn feed(&mut self) {
        while let Some(command) = self.pending.front() {
            let result = match command {
                RefCommand::Subscribe(filter, qos) => match TopicFilter::new(filter) {
                    Ok(f) => self
                        .session
                        .subscribe(
                            &[Subscription::new(f, *qos)],
                            SubscribeProperties::default(),
                        )
                        .map(|_| ()),
                    Err(e) => {
                        self.problem(format!("filter {filter}: {e}"));
                        Ok(())
                    }
                },
                RefCommand::Publish(topic, payload, qos) => match TopicName::new(topic) {
                    Ok(t) => self
                        .session
                        .publish(&Message::new(t, payload, *qos))
                        .map(|_| ()),
                    Err(e) => {
                        self.problem(format!("topic {topic}: {e}"));
                        Ok(())
                    }
                },
                RefCommand::Stop => {
                    if self.session.state() == mqtt_sansio::session::ConnectionState::Connected {
                        let _ = self.session.disconnect(&Disconnect::default());
                        self.stopping = true;
                    }
                    Ok(())
                }
            };
            match result {
                Err(CommandError::StoreFull { .. }) => return,
                Err(e) => self.problem(format!("command: {e}")),
                Ok(()) => {}
            }
            self.pending.pop_front();
        }
    }
}

/// Counts what the broker sent in a packet the session reported (decoded here from its
/// bytes, so that the count is of what was on the wire).
fn on_packet(stats: &Mutex<RefStats>, persistent: bool, packet: &Packet<'_>) {
    let mut stats = lock(stats);
    match packet {
        Packet::ConnAck(c) if c.reason_code.is_error() => {
            stats.problems.push(format!("refused: {:?}", c.reason_code));
        }
        Packet::ConnAck(c) => {
            stats.connects += 1;
            if stats.connects > 1 && persistent && !c.session_present {
                stats.session_lost += 1;
            }
        }
        Packet::Publish(p) => stats.tally.record(p.payload, Some(p.qos_pid.qos()), p.dup),
        Packet::PubAck(r) | Packet::PubComp(r) if !r.reason_code.is_error() => stats.acked += 1,
        // Reported only with a failure code.
        Packet::PubAck(_) | Packet::PubComp(_) | Packet::PubRec(_) => stats.failed += 1,
        Packet::SubAck(s) if s.reason_codes.iter().any(|c| c.is_error()) => {
            stats.problems.push("subscription refused".into());
        }
        Packet::SubAck(_) => stats.subscribed += 1,
        Packet::Disconnect(d) => {
            stats
                .problems
                .push(format!("DISCONNECT from the broker: {:?}", d.reason_code));
        }
        _ => {}
    }
}

/// Counts an event the session raised itself; `Some` when the connection is over.
fn on_session_event(stats: &Mutex<RefStats>, stopping: bool, event: &Event<'_>) -> Option<End> {
    match event {
        Event::PublishAbandoned { .. } | Event::PublishDropped { .. } => lock(stats).failed += 1,
        Event::ConnectionLost(_) => return Some(if stopping { End::Stop } else { End::Lost }),
        _ => {}
    }
    None
}

impl Driver {
    /// Runs one connection until it ends.
    async fn connection(&mut self, stream: TcpStream) -> End {
        let mut connect = Connect::new(self.config.version, &self.config.client_id);
        connect.clean_start = !self.config.persistent;
        connect.keep_alive = 30;
        if self.config.version.is_v5() && self.config.persistent {
            connect.properties.session_expiry_interval = Some(3600);
        }
        if let Err(e) = self.session.connect(&connect) {
            self.problem(format!("connect: {e}"));
            return End::Lost;
        }
        let (mut rd, mut wr) = stream.into_split();
        let mut rx = vec![0u8; MAX_PACKET];
        let mut tx = vec![0u8; TX];
        let (mut start, mut end) = (0usize, 0usize);
        // Each pass reads, times out or takes a command; the connection's life bounds it.
        loop {
            let now = self.now();
            self.session.handle_timeout(now);
            self.feed();
            // Process buffered input, transmitting acknowledgements when they block it.
            let mut lost = None;
            loop {
                if start == end {
                    break;
                }
                match self.session.handle_read(now, &rx[start..end]) {
                    Ok(Read::Packet { len, event }) => {
                        if event.is_some() {
                            let bytes = &rx[start..start + len];
                            if let Ok(Decoded::Packet { packet, .. }) =
                                Packet::decode(bytes, self.config.version, u32::MAX)
                            {
                                on_packet(&self.stats, self.config.persistent, &packet);
                            }
                        }
                        start += len;
                    }
                    Ok(Read::Blocked) => {
                        if self.transmit(now, &mut tx, &mut wr).await.is_err() {
                            return End::Lost;
                        }
                    }
                    Ok(Read::Incomplete { .. } | Read::Closing) => break,
                    Ok(Read::Skip { .. } | Read::Stream { .. } | Read::Chunk { .. }) => {
                        // The reference client's buffers hold every packet of the run (it
                        // sets no receive capacity, so nothing is streamed).
                        self.problem("the broker sent a packet over the maximum size".into());
                        start = end;
                    }
                    Err(e) => {
                        self.problem(format!("protocol error from the broker: {e}"));
                        start = end;
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                if let Some(e) = on_session_event(&self.stats, self.stopping, &event) {
                    lost = Some(e);
                }
            }
            if self.transmit(now, &mut tx, &mut wr).await.is_err() {
                return End::Lost;
            }
            if let Some(end) = lost {
                return end;
            }
            if start > 0 {
                rx.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            let deadline = self
                .session
                .poll_timeout()
                .map(|at| self.epoch + Duration::from_millis(at.as_millis()));
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = rd.read(&mut rx[end..]) => match read {
                    Ok(n) if n > 0 => end += n,
                    _ => return End::Lost,
                },
                command = self.commands.recv() => match command {
                    Some(c) => self.pending.push_back(c),
                    None => self.pending.push_back(RefCommand::Stop),
                },
                () = sleep => {}
            }
        }
    }

    /// Writes everything the session has to send.
    async fn transmit(
        &mut self,
        now: Instant,
        tx: &mut [u8],
        wr: &mut tokio::net::tcp::OwnedWriteHalf,
    ) -> std::io::Result<()> {
        // Each pass writes at least one packet, or returns.
        loop {
            let mut n = 0;
            loop {
                match self.session.poll_transmit(now, &mut tx[n..]) {
                    Ok(Some(t)) => n += t.len,
                    Ok(None) => break,
                    Err(_) if n > 0 => break,
                    Err(e) => {
                        self.problem(format!("transmit: {e}"));
                        return Err(std::io::Error::other(e.to_string()));
                    }
                }
            }
            if n == 0 {
                return Ok(());
            }
            wr.write_all(&tx[..n]).await?;
        }
    }
}
