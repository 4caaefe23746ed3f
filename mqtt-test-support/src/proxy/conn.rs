//! One proxied connection: two pumps, one per direction, and the faults that end or freeze them.

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{connect_upstream, Direction, Plan, Shaping, Shared};
use crate::rng::Rng;

/// Largest chunk read (and gathered when coalescing) at once.
const CHUNK: usize = 64 * 1024;

/// Why a pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The reader saw EOF; the write side was shut down in turn.
    Eof,
    /// A read or write failed (reset by a peer).
    Error,
    /// A fault asks to close the connection.
    Cut,
}

/// What a pump does after forwarding a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Continue,
    Cut,
    Freeze,
}

/// Decrements `active` however the connection task ends (also when aborted).
struct Active<'a>(&'a Shared);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one connection until both directions end, a fault cuts it, or the proxy is dropped.
pub(super) async fn run(shared: Arc<Shared>, client: TcpStream, index: u64) {
    let accepted = tokio::time::Instant::now();
    shared.counters.active.fetch_add(1, Ordering::Relaxed);
    let _active = Active(&shared);
    let mut cut_rx = shared.cut.subscribe();
    let plan = shared.plan(index);
    let upstream = tokio::select! {
        upstream = connect_upstream(shared.upstream) => upstream,
        _ = cut_rx.changed() => {
            shared.counters.cuts.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let Ok(upstream) = upstream else {
        shared
            .counters
            .upstream_failures
            .fetch_add(1, Ordering::Relaxed);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_rx, client_tx) = client.into_split();
    let (broker_rx, broker_tx) = upstream.into_split();

    // Set once by a pump that reaches `stall_after`; freezes both pumps for good.
    let (frozen, _) = watch::channel(false);
    let to_broker = Pump::new(Direction::ToBroker, &plan, index, &shared, &frozen);
    let to_client = Pump::new(Direction::ToClient, &plan, index, &shared, &frozen);
    let mut to_broker = pin!(to_broker.run(client_rx, broker_tx));
    let mut to_client = pin!(to_client.run(broker_rx, client_tx));
    // With drop_during_connect nothing flows to the client before the first client chunk
    // has been handled, so the CONNACK can never slip through.
    let gated = plan.drop_during_connect.is_some();
    let mut cut_at = pin!(async {
        match plan.lifetime {
            Some(lifetime) => tokio::time::sleep_until(accepted + lifetime).await,
            None => std::future::pending().await,
        }
    });
    let (mut broker_done, mut client_done) = (false, false);
    // Each pass ends a pump or breaks, so this loop runs at most three times.
    let end = loop {
        if broker_done && (client_done || gated) {
            break End::Eof;
        }
        let end = tokio::select! {
            end = &mut to_broker, if !broker_done => {
                broker_done = true;
                end
            }
            end = &mut to_client, if !client_done && !gated => {
                client_done = true;
                end
            }
            _ = cut_rx.changed() => End::Cut,
            () = &mut cut_at => End::Cut,
        };
        if end != End::Eof {
            break end;
        }
    };
    if end == End::Cut {
        shared.counters.cuts.fetch_add(1, Ordering::Relaxed);
    }
    // Returning drops the pumps and with them all four socket halves.
}

/// Forwards one direction, applying the plan's limits and the live shaping.
///
/// A pump never returns to stall: returning drops its socket halves, and dropping a write half
/// sends FIN. It waits instead, holding both halves open.
struct Pump<'a> {
    direction: Direction,
    shared: &'a Shared,
    frozen: &'a watch::Sender<bool>,
    cut_after: Option<u64>,
    stall_after: Option<u64>,
    connect_drop: Option<usize>,
    rng: Rng,
}

impl<'a> Pump<'a> {
    fn new(
        direction: Direction,
        plan: &Plan,
        index: u64,
        shared: &'a Shared,
        frozen: &'a watch::Sender<bool>,
    ) -> Self {
        let mine = |limit: Option<(Direction, u64)>| {
            limit.and_then(|(d, n)| (d == direction).then_some(n))
        };
        let stream = index.wrapping_mul(3) + 1 + u64::from(direction == Direction::ToClient);
        Self {
            direction,
            shared,
            frozen,
            cut_after: mine(plan.cut_after),
            stall_after: mine(plan.stall_after),
            connect_drop: plan
                .drop_during_connect
                .filter(|_| direction == Direction::ToBroker),
            rng: Rng::new(plan.seed, stream),
        }
    }

    async fn run(mut self, mut rx: OwnedReadHalf, mut tx: OwnedWriteHalf) -> End {
        let mut stalled = self.shared.stall.subscribe();
        let mut frozen = self.frozen.subscribe();
        let mut buf = vec![0u8; CHUNK];
        let mut forwarded: u64 = 0;
        // Each pass forwards one chunk; the loop ends with the stream or a fault.
        loop {
            if !flowing(&mut stalled, &mut frozen).await {
                return End::Cut;
            }
            let shaping = self.shared.shaping();
            let (len, eof) = match rx.read(&mut buf).await {
                Ok(0) => {
                    let _ = tx.shutdown().await;
                    return End::Eof;
                }
                Ok(n) => match shaping.coalesce {
                    Some(window) => gather(&mut rx, &mut buf, n, window).await,
                    None => (n, false),
                },
                Err(_) => return End::Error,
            };
            let (len, after) = self.limit(len, forwarded);
            // A stall that began while this chunk was being read holds it here.
            if !flowing(&mut stalled, &mut frozen).await {
                return End::Cut;
            }
            if self.write(&mut tx, &buf[..len], shaping).await.is_err() {
                return End::Error;
            }
            forwarded += len as u64;
            match after {
                After::Continue => {}
                After::Cut => return End::Cut,
                After::Freeze => {
                    self.shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
                    self.frozen.send_replace(true);
                    // Hold the halves open until the connection task drops this future.
                    std::future::pending::<()>().await;
                }
            }
            if eof {
                let _ = tx.shutdown().await;
                return End::Eof;
            }
        }
    }

    /// How much of a `len`-byte chunk may go out, and what follows it.
    fn limit(&mut self, len: usize, forwarded: u64) -> (usize, After) {
        let mut out = (len, After::Continue);
        if let Some(k) = self.connect_drop.take() {
            out = (len.min(k), After::Cut);
        }
        // Stall first, so that when both limits fall in one chunk the cut (checked last)
        // wins if it is not later than the stall.
        for (limit, after) in [
            (self.stall_after, After::Freeze),
            (self.cut_after, After::Cut),
        ] {
            let Some(limit) = limit else { continue };
            let room = usize::try_from(limit.saturating_sub(forwarded)).unwrap_or(usize::MAX);
            if room <= out.0 {
                out = (room, after);
            }
        }
        out
    }

    /// Writes `data` after the shaping's delay; split, each byte gets its own delay and write.
    async fn write(
        &mut self,
        tx: &mut OwnedWriteHalf,
        data: &[u8],
        shaping: Shaping,
    ) -> std::io::Result<()> {
        let piece_len = if shaping.split_writes { 1 } else { CHUNK };
        for piece in data.chunks(piece_len) {
            let jitter = self.rng.duration_between(Duration::ZERO, shaping.jitter);
            let pause = shaping.delay + jitter;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            tx.write_all(piece).await?;
            self.shared.counters.add_bytes(self.direction, piece.len());
        }
        Ok(())
    }
}

/// Waits until neither the whole proxy nor this connection is stalled; `false` when the
/// connection is being torn down.
async fn flowing(stalled: &mut watch::Receiver<bool>, frozen: &mut watch::Receiver<bool>) -> bool {
    // Each pass waits for a change of either flag.
    loop {
        if !*stalled.borrow_and_update() && !*frozen.borrow_and_update() {
            return true;
        }
        let changed = tokio::select! {
            changed = stalled.changed() => changed,
            changed = frozen.changed() => changed,
        };
        if changed.is_err() {
            return false;
        }
    }
}

/// Reads more into `buf[filled..]` until `window` has passed, the buffer is full, or the
/// stream ends. Returns the total length and whether EOF was seen. Errors end the gathering;
/// the next read reports them.
async fn gather(
    rx: &mut OwnedReadHalf,
    buf: &mut [u8],
    mut filled: usize,
    window: Duration,
) -> (usize, bool) {
    let deadline = tokio::time::Instant::now() + window;
    // Each pass reads at least one byte or ends the gathering.
    while filled < buf.len() {
        match tokio::time::timeout_at(deadline, rx.read(&mut buf[filled..])).await {
            Ok(Ok(0)) => return (filled, true),
            Ok(Ok(n)) => filled += n,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    (filled, false)
}
