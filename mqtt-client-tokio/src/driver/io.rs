//! The connected loop: one task reads, writes, keeps time and wakes up for the handles'
//! commands; the shared state (and the session in it) decides what every byte means.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::Driver;
use crate::state::{room, End, OUTBOX_LIMIT};
use crate::transport::Stream;
use crate::Error;

/// Largest read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// Smallest read buffer growth step: an idle connection (CONNACK, PINGRESP, the odd message)
/// never needs more; reads that fill the buffer double the step up to [`READ_CHUNK`], reads
/// that use little of it halve it again, and once the step is back to this, an empty buffer
/// is given back: an idle client holds none, and reads into [`IDLE_READ`] bytes of the stack.
const MIN_READ: usize = 128;
/// Bytes read at once by a client that holds no read buffer: on the stack of the poll, not
/// in the task, and copied into a buffer of the size read.
const IDLE_READ: usize = 1024;
/// Time allowed to write the last packets and close the transport cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Scheduler rounds the driver gives the application, after a command woke it, to queue
/// more before the bytes go out (see [`Driver::gather`]).
const GATHER: usize = 64;

/// What woke the loop.
enum Step {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    Flushed(std::io::Result<()>),
    /// The earliest of the session's, the journal's and the close deadline.
    Timer,
    Woken,
    Room(bool),
}

impl Driver {
    /// Runs a connection whose CONNECT is queued, until it ends.
    // The stream is borrowed: an `async fn` keeps an argument it owns twice in its future
    // (as the argument and as the local it moves to), and every idle client's task keeps
    // this future for its life.
    pub(super) async fn drive(&self, stream: &mut Stream) -> End {
        // One stream, read and written by one poll (`Transfer`): no split halves to allocate.
        let mut rbuf = BytesMut::new();
        let mut read_size = MIN_READ;
        // What is being written, taken out of the shared state: written without the lock.
        let mut out = BytesMut::new();
        let mut need_flush = false;
        let mut close_at = None;
        // One timer for the three deadlines (each `Sleep` is 112 bytes of every client's task
        // for its life), kept across turns and moved only when the deadline does: a `Sleep`
        // made afresh each turn registers with the runtime's timer each time, and one due
        // sooner than the timer's next wake-up costs a write to the runtime's eventfd and one
        // more epoll_wait (strace: a tenth of a system call per published message).
        let timer_at = tokio::time::sleep_until(tokio::time::Instant::now());
        tokio::pin!(timer_at);
        let mut read_first = false;
        loop {
            // The values of this turn in a block of their own: what is not needed once the
            // select below waits is then not kept in the task while it does.
            let (timed, waiter, reading, writing, flushing) = {
                let (deadline, waiter, reading, journaled) = {
                    let mut state = self.shared.lock();
                    state.start_shutdown();
                    state.retry_waiting();
                    state.process_input(&mut rbuf);
                    state.pump(false);
                    if out.is_empty() {
                        out = state.take_output();
                    }
                    // Quiet (reads small, after a burst too: a flood's odd short read does not
                    // count, and all read is consumed): the read buffer, and what the messages
                    // shared of it, go, and the next read takes the stack's; once everything is
                    // also written and flushed, the write buffers go too.
                    let quiet = rbuf.is_empty() && read_size == MIN_READ;
                    if quiet {
                        rbuf = BytesMut::new();
                        if out.is_empty() && !need_flush {
                            out = BytesMut::new();
                            state.release_output();
                        }
                    } else if rbuf.capacity() - rbuf.len() < read_size / 4 {
                        rbuf.reserve(read_size);
                    }
                    if state.conn_end.is_some() {
                        if out.is_empty() && !need_flush {
                            break;
                        }
                        close_at.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_GRACE);
                    }
                    let timer = state.session.poll_timeout().map(|t| state.to_tokio(t));
                    // A slow consumer does not stop reading (SUBACK, PINGRESP and PUBREL must get
                    // through); its unacknowledged messages hold the broker back. Only a broker
                    // that ignores its window could fill the outbox to this bound.
                    let reading = state.conn_end.is_none() && state.outbox.len() < OUTBOX_LIMIT;
                    let journaled = state.journal.is_some();
                    let deadline = [timer, state.journal_sync_at(), close_at]
                        .into_iter()
                        .flatten()
                        .min();
                    (deadline, state.room_waiter(), reading, journaled)
                };
                // Write-ahead: what the session journaled up to the output taken above is written
                // before that output goes out.
                if let Err(error) = self.persist(journaled).await {
                    return End::failed(error);
                }
                let writing = !out.is_empty();
                let flushing = !writing && need_flush;
                // The timer's own deadline says where it is armed: no copy kept in the task.
                if let Some(at) = deadline.filter(|&at| timer_at.deadline() != at) {
                    timer_at.as_mut().reset(at);
                }
                (deadline.is_some(), waiter, reading, writing, flushing)
            };
            let has_outbox = waiter.is_some();
            read_first = !read_first;
            let transfer = Transfer {
                stream,
                rbuf: &mut rbuf,
                out: &out,
                reading,
                writing: writing || flushing,
                read_first,
            };
            let step = tokio::select! {
                step = transfer, if reading || writing || flushing => step,
                () = &mut timer_at, if timed => Step::Timer,
                () = self.shared.wake.notified() => Step::Woken,
                open = room(&self.shared, waiter), if has_outbox => Step::Room(open),
            };
            match step {
                Step::Read(Ok(0)) => {
                    let lost = End::failed(Error::ConnectionClosed);
                    return self.shared.lock().end_or(lost);
                }
                Step::Read(Ok(n)) => {
                    if n >= read_size / 2 {
                        read_size = (read_size * 2).min(READ_CHUNK);
                    } else if n < read_size / 8 {
                        read_size = (read_size / 2).max(MIN_READ);
                    }
                }
                Step::Wrote(Ok(0)) => {
                    let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return self.shared.lock().end_or(End::failed(e));
                }
                Step::Read(Err(e)) | Step::Wrote(Err(e)) | Step::Flushed(Err(e)) => {
                    return self.shared.lock().end_or(End::failed(e));
                }
                Step::Wrote(Ok(n)) => {
                    out.advance(n);
                    self.shared.lock().wrote(n);
                    need_flush = true;
                }
                Step::Flushed(Ok(())) => {
                    need_flush = false;
                    self.shared.lock().flushed();
                }
                // A due journal sync is the next turn's `persist`.
                Step::Timer => {
                    let reached = |at: Option<tokio::time::Instant>| {
                        at.is_some_and(|at| at <= tokio::time::Instant::now())
                    };
                    if reached(close_at) {
                        break;
                    }
                    let mut state = self.shared.lock();
                    let timer = state.session.poll_timeout().map(|t| state.to_tokio(t));
                    if reached(timer) {
                        let now = state.now();
                        state.session.handle_timeout(now);
                    }
                }
                Step::Woken => self.gather().await,
                Step::Room(open) => self.shared.lock().on_room(open),
            }
        }
        // TLS close_notify, WebSocket close frame, TCP FIN; then read until the broker closes
        // too. Closing a socket with unread bytes in it sends a TCP reset, and a broker that
        // sees the reset before our DISCONNECT publishes the will. Bounded.
        let graceful = self.shared.lock().shutdown.is_some();
        // Read into the heap buffer: an array here would be part of every client's task for
        // its life (a future is as large as its largest state).
        let linger = async {
            let _ = stream.shutdown().await;
            rbuf.clear();
            rbuf.reserve(MIN_READ);
            while graceful && matches!(stream.read_buf(&mut rbuf).await, Ok(n) if n > 0) {
                rbuf.clear();
            }
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, linger).await;
        self.shared.lock().end_or(End::Closed)
    }

    /// After a command woke the driver on a live connection, lets the application's tasks run
    /// while they keep queuing, up to [`GATHER`] rounds: a stream of publishes then leaves in
    /// one write instead of one write (and one system call) each. Costs one scheduler round
    /// per wake-up (`yield_now`, which also lets a `block_on` future run); stops as soon as
    /// nothing new came.
    async fn gather(&self) {
        for _ in 0..GATHER {
            let seen = {
                let state = self.shared.lock();
                if state.shutdown.is_some() || state.conn_end.is_some() {
                    return;
                }
                state.commands_seen
            };
            tokio::task::yield_now().await;
            if self.shared.lock().commands_seen == seen {
                return;
            }
        }
    }
}

impl Driver {
    /// Carries out the journal's pending writes, for a client with a journal (`journaled`):
    /// without one there is nothing to write. Boxed: inline, the state of the writes would
    /// stay in every client's task for good.
    pub(super) async fn persist(&self, journaled: bool) -> Result<(), crate::Error> {
        if !journaled {
            return Ok(());
        }
        Box::pin(self.persist_journal()).await
    }

    /// The journal's pending writes: small appends in place, syncs and snapshots off the
    /// runtime's threads. An error stops the client.
    async fn persist_journal(&self) -> Result<(), crate::Error> {
        loop {
            let work = {
                let mut state = self.shared.lock();
                // A write made on a handle's thread failed.
                if let Some(error) = &state.fatal {
                    return Err(Error::clone(error));
                }
                state.journal_work()
            };
            let Some(work) = work else {
                return Ok(());
            };
            let result = if work.inline() {
                work.run()
            } else {
                tokio::task::spawn_blocking(move || work.run())
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            };
            self.shared.lock().journal_done(result)?;
        }
    }
}

/// One transfer on the stream: a write of some of `out` (or a flush once it is empty) when
/// `writing`, a read into `rbuf` when `reading`, whichever is ready first; when both are,
/// `read_first` says which goes (the loop alternates it, so neither starves the other).
/// Cancel safe: an unfinished read or write has moved no byte.
struct Transfer<'a> {
    stream: &'a mut Stream,
    rbuf: &'a mut BytesMut,
    out: &'a [u8],
    reading: bool,
    writing: bool,
    read_first: bool,
}

impl Future for Transfer<'_> {
    type Output = Step;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Step> {
        let this = self.get_mut();
        for read in [this.read_first, !this.read_first] {
            let step = if read {
                if !this.reading {
                    continue;
                }
                poll_read(this.stream, this.rbuf, cx).map(Step::Read)
            } else {
                if !this.writing {
                    continue;
                }
                let wr = Pin::new(&mut **this.stream);
                if this.out.is_empty() {
                    wr.poll_flush(cx).map(Step::Flushed)
                } else {
                    wr.poll_write(cx, this.out).map(Step::Wrote)
                }
            };
            if step.is_ready() {
                return step;
            }
        }
        Poll::Pending
    }
}

/// Reads into `rbuf`'s spare room, or, when it has none (an idle client gave its buffer
/// back), into [`IDLE_READ`] bytes of this call's stack, then copied into `rbuf`.
fn poll_read(
    stream: &mut Stream,
    rbuf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if rbuf.capacity() > rbuf.len() {
        // `read_buf` keeps no state between polls: made afresh, it picks up where it was.
        let read = std::pin::pin!(stream.read_buf(rbuf));
        return read.poll(cx);
    }
    let mut stack = [0u8; IDLE_READ];
    let mut buf = ReadBuf::new(&mut stack);
    match Pin::new(&mut **stream).poll_read(cx, &mut buf) {
        Poll::Ready(Ok(())) => {
            rbuf.extend_from_slice(buf.filled());
            Poll::Ready(Ok(buf.filled().len()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

pub(super) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
