//! A fault-injecting TCP proxy between a client under test and a broker.

mod conn;
mod mode;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use mode::{Direction, FaultMode};

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Poll interval of [`FaultProxy::wait_for`].
const POLL: Duration = Duration::from_millis(5);

/// Counters of a [`FaultProxy`] since it started. A snapshot: read it again to see progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Connections open right now (accepted and not yet closed).
    pub active: u64,
    /// Connections the proxy closed on purpose: `cut_after`, random cuts,
    /// `drop_during_connect`, [`FaultProxy::cut_all`].
    pub cuts: u64,
    /// Stalls begun: each [`FaultProxy::stall`]`(true)` that was not already stalled, and each
    /// connection that hit `stall_after`.
    pub stalls: u64,
    /// Accepted connections closed because the broker could not be reached.
    pub upstream_failures: u64,
    /// Bytes forwarded from clients to the broker.
    pub bytes_to_broker: u64,
    /// Bytes forwarded from the broker to clients.
    pub bytes_to_client: u64,
}

/// A TCP proxy on `127.0.0.1:<free port>` that forwards each accepted connection to one
/// upstream address and injects the faults of its [`FaultMode`].
///
/// It works below TLS and WebSockets, so it serves every listener of a
/// [`Broker`](crate::Broker). It runs as tasks on the tokio runtime that started it: a test
/// that blocks that runtime (e.g. a `current_thread` test calling [`Broker::restart`]) also
/// pauses the proxy meanwhile. Dropping it stops accepting and closes every connection.
///
/// [`Broker::restart`]: crate::Broker::restart
///
/// ```no_run
/// # use std::time::Duration;
/// # use mqtt_test_support::{Broker, Direction, FaultMode, FaultProxy};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = Broker::start()?;
/// // Cut the first connection right after its CONNACK; let reconnects through.
/// let proxy = FaultProxy::start(
///     broker.addr(),
///     FaultMode::new().cut_after(Direction::ToClient, 4).connections(1),
/// )
/// .await?;
/// // ... connect the client under test to proxy.addr() ...
/// proxy.wait_for(Duration::from_secs(5), |s| s.cuts == 1 && s.accepted == 2).await
///     .map_err(|s| format!("client did not reconnect: {s:?}"))?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Binds `127.0.0.1:0` and starts forwarding every accepted connection to `upstream`,
    /// with the faults of `mode`.
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when binding the listener fails.
    pub async fn start(upstream: SocketAddr, mode: FaultMode) -> io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(ModeState { mode, faulted: 0 }),
            stall: watch::channel(false).0,
            cut: watch::channel(0).0,
            counters: Counters::default(),
        });
        let task = runtime.spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self { addr, shared, task })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `mqtt://127.0.0.1:PORT`. (For TLS or WebSocket upstreams, build the URL from
    /// [`FaultProxy::port`].)
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.addr.port())
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Replaces the mode. Shaping changes at once on live connections; connection faults apply
    /// to connections accepted from now on, and the [`FaultMode::connections`] budget restarts.
    pub fn set_mode(&self, mode: FaultMode) {
        *self.shared.mode() = ModeState { mode, faulted: 0 };
    }

    /// The current mode.
    pub fn mode(&self) -> FaultMode {
        self.shared.mode().mode.clone()
    }

    /// Stops (`true`) or resumes (`false`) forwarding on every connection, live and new,
    /// without closing any. Data read while stalled is held and delivered on resume; the
    /// proxy stops reading, so TCP flow control pushes back on the peers.
    pub fn stall(&self, on: bool) {
        let was = self.shared.stall.send_replace(on);
        if on && !was {
            self.shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes every open connection now (each counts as a cut). New connections are accepted
    /// as usual.
    pub fn cut_all(&self) {
        self.shared.cut.send_modify(|generation| *generation += 1);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Polls the counters until `condition` holds, at most `timeout`.
    ///
    /// # Errors
    /// The last snapshot, when `timeout` passed first.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        condition: impl Fn(&ProxyStats) -> bool,
    ) -> Result<ProxyStats, ProxyStats> {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if condition(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                return Err(stats);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept task drops its listener and its JoinSet, which aborts every
        // connection task and so closes their sockets.
        self.task.abort();
    }
}

/// State shared by the handle and the tasks.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    mode: Mutex<ModeState>,
    stall: watch::Sender<bool>,
    /// Bumped by `cut_all`; connections watch it.
    cut: watch::Sender<u64>,
    counters: Counters,
}

#[derive(Debug)]
struct ModeState {
    mode: FaultMode,
    /// Connections given the connection faults since the mode was set.
    faulted: u32,
}

/// Connection faults fixed when a connection is accepted.
#[derive(Debug, Clone, Default)]
struct Plan {
    cut_after: Option<(Direction, u64)>,
    stall_after: Option<(Direction, u64)>,
    /// Random cut: how long after being accepted the connection is cut.
    lifetime: Option<Duration>,
    drop_during_connect: Option<usize>,
    seed: u64,
}

/// Shaping read for each chunk.
#[derive(Debug, Clone, Copy)]
struct Shaping {
    delay: Duration,
    jitter: Duration,
    split_writes: bool,
    coalesce: Option<Duration>,
}

impl Shared {
    fn mode(&self) -> MutexGuard<'_, ModeState> {
        // Nothing panics while holding the lock; recover the value if something ever does.
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plan(&self, index: u64) -> Plan {
        let mut state = self.mode();
        let seed = state.mode.seed;
        if state.mode.connections.is_some_and(|n| state.faulted >= n) {
            return Plan {
                seed,
                ..Plan::default()
            };
        }
        state.faulted = state.faulted.saturating_add(1);
        let mode = &state.mode;
        let lifetime = mode.random_cuts.map(|(min, max)| {
            crate::rng::Rng::new(seed, index.wrapping_mul(3)).duration_between(min, max)
        });
        Plan {
            cut_after: mode.cut_after,
            stall_after: mode.stall_after,
            lifetime,
            drop_during_connect: mode.drop_during_connect,
            seed,
        }
    }

    fn shaping(&self) -> Shaping {
        let state = self.mode();
        Shaping {
            delay: state.mode.delay,
            jitter: state.mode.jitter,
            split_writes: state.mode.split_writes,
            coalesce: state.mode.coalesce,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicU64,
    cuts: AtomicU64,
    stalls: AtomicU64,
    upstream_failures: AtomicU64,
    bytes_to_broker: AtomicU64,
    bytes_to_client: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            accepted: get(&self.accepted),
            active: get(&self.active),
            cuts: get(&self.cuts),
            stalls: get(&self.stalls),
            upstream_failures: get(&self.upstream_failures),
            bytes_to_broker: get(&self.bytes_to_broker),
            bytes_to_client: get(&self.bytes_to_client),
        }
    }

    fn add_bytes(&self, direction: Direction, n: usize) {
        let counter = match direction {
            Direction::ToBroker => &self.bytes_to_broker,
            Direction::ToClient => &self.bytes_to_client,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Accepts until the proxy is dropped (the task is aborted then).
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    let index = shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(conn::run(Arc::clone(&shared), client, index));
                }
                Err(_) => tokio::time::sleep(ACCEPT_BACKOFF).await,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn connect_upstream(addr: SocketAddr) -> io::Result<TcpStream> {
    tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream connect timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(mode: FaultMode) -> Shared {
        Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            mode: Mutex::new(ModeState { mode, faulted: 0 }),
            stall: watch::channel(false).0,
            cut: watch::channel(0).0,
            counters: Counters::default(),
        }
    }

    #[test]
    fn random_cut_lifetimes_are_reproducible_from_the_seed() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(400));
        let mode = |seed| FaultMode::new().random_cuts(min, max).seed(seed);
        let lifetimes = |seed| {
            let s = shared(mode(seed));
            (0..8)
                .map(|i| s.plan(i).lifetime.unwrap())
                .collect::<Vec<_>>()
        };
        let a = lifetimes(1);
        assert_eq!(a, lifetimes(1));
        assert_ne!(a, lifetimes(2));
        assert!(a.iter().all(|d| (min..=max).contains(d)), "{a:?}");
        assert!(a.windows(2).any(|w| w[0] != w[1]), "no jitter: {a:?}");
    }

    #[test]
    fn the_connection_budget_limits_connection_faults_only() {
        let s = shared(
            FaultMode::new()
                .cut_after(Direction::ToClient, 4)
                .split_writes(true)
                .connections(2),
        );
        let cuts: Vec<_> = (0..4).map(|i| s.plan(i).cut_after.is_some()).collect();
        assert_eq!(cuts, [true, true, false, false]);
        assert!(s.shaping().split_writes);
        // A new mode restarts the budget.
        *s.mode() = ModeState {
            mode: FaultMode::new()
                .cut_after(Direction::ToBroker, 1)
                .connections(1),
            faulted: 0,
        };
        assert_eq!(s.plan(4).cut_after, Some((Direction::ToBroker, 1)));
        assert_eq!(s.plan(5).cut_after, None);
    }
}
