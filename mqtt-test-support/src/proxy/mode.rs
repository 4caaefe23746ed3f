//! What the proxy does to the traffic.

use std::time::Duration;

/// A direction of traffic through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client to the broker (CONNECT, PUBLISH, ...).
    ToBroker,
    /// From the broker to the client (CONNACK, PUBACK, ...).
    ToClient,
}

/// The faults a [`FaultProxy`](crate::FaultProxy) injects. Built with chained methods from
/// [`FaultMode::new`] (a transparent proxy); every fault is off unless set.
///
/// Two kinds of fault:
/// - *connection faults* ([`cut_after`](Self::cut_after), [`stall_after`](Self::stall_after),
///   [`random_cuts`](Self::random_cuts), [`drop_during_connect`](Self::drop_during_connect))
///   are fixed for a connection when it is accepted, and apply to the first
///   [`connections`](Self::connections) connections accepted after the mode was set (all, by
///   default);
/// - *shaping* ([`delay`](Self::delay), [`split_writes`](Self::split_writes),
///   [`coalesce`](Self::coalesce)) is read for every chunk, so a new mode changes it on live
///   connections too.
///
/// Random choices (cut times, delay jitter) come from a PRNG seeded by
/// [`seed`](Self::seed) and the connection's number, so a run is reproducible in what is
/// chosen; *when* things happen still depends on the scheduler and the peers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct FaultMode {
    pub(crate) cut_after: Option<(Direction, u64)>,
    pub(crate) stall_after: Option<(Direction, u64)>,
    pub(crate) random_cuts: Option<(Duration, Duration)>,
    pub(crate) drop_during_connect: Option<usize>,
    pub(crate) connections: Option<u32>,
    pub(crate) delay: Duration,
    pub(crate) jitter: Duration,
    pub(crate) split_writes: bool,
    pub(crate) coalesce: Option<Duration>,
    pub(crate) seed: u64,
}

impl FaultMode {
    /// A transparent proxy: no faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forwards exactly `bytes` bytes in `direction`, then closes both sides of the
    /// connection. `cut_after(Direction::ToClient, 4)` delivers a 3.1.1 CONNACK and nothing
    /// more; `0` cuts when the first byte arrives.
    pub fn cut_after(mut self, direction: Direction, bytes: u64) -> Self {
        self.cut_after = Some((direction, bytes));
        self
    }

    /// Forwards exactly `bytes` bytes in `direction`, then stops forwarding both ways without
    /// closing anything (like a dead network path): the peers see silence until their
    /// timeouts fire. The connection stays so until [`FaultProxy::cut_all`] or drop.
    ///
    /// [`FaultProxy::cut_all`]: crate::FaultProxy::cut_all
    pub fn stall_after(mut self, direction: Direction, bytes: u64) -> Self {
        self.stall_after = Some((direction, bytes));
        self
    }

    /// Cuts each connection after a lifetime drawn uniformly from `min..=max` (e.g. 100 ms to
    /// 400 ms), so a reconnecting client is cut again and again at varying points.
    pub fn random_cuts(mut self, min: Duration, max: Duration) -> Self {
        self.random_cuts = Some((min, max.max(min)));
        self
    }

    /// Drops the connection during the CONNECT/CONNACK exchange: forwards only the first
    /// `bytes` bytes of the first client→broker chunk (normally the CONNECT; all of it if it
    /// is shorter), then closes both sides before the broker's answer is forwarded.
    pub fn drop_during_connect(mut self, bytes: usize) -> Self {
        self.drop_during_connect = Some(bytes);
        self
    }

    /// Applies the connection faults only to the first `n` connections accepted after this
    /// mode is set; later ones pass untouched (shaping still applies). For "cut once, then let
    /// the reconnect through".
    pub fn connections(mut self, n: u32) -> Self {
        self.connections = Some(n);
        self
    }

    /// Holds each chunk (each byte, with [`split_writes`](Self::split_writes)) for `delay`
    /// plus a random `0..=jitter` before writing it. Order is kept; throughput drops to about
    /// one chunk per delay.
    pub fn delay(mut self, delay: Duration, jitter: Duration) -> Self {
        self.delay = delay;
        self.jitter = jitter;
        self
    }

    /// Writes every byte with its own write call (TCP_NODELAY is on, so mostly its own
    /// segment). A fast reader may still get several bytes per read; add a
    /// [`delay`](Self::delay) of a few milliseconds to make the peer's decoder see packets
    /// arrive one byte at a time.
    pub fn split_writes(mut self, on: bool) -> Self {
        self.split_writes = on;
        self
    }

    /// Gathers what arrives within `window` after a chunk's first byte (up to 64 KiB) and
    /// writes it at once: several packets arrive in one read.
    pub fn coalesce(mut self, window: Duration) -> Self {
        self.coalesce = Some(window);
        self
    }

    /// Seeds the random choices (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}
