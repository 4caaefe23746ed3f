//! The connected loop: one task reads, writes, keeps time and serves commands; the session
//! decides what every byte means.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use mqtt_sansio::session::Read;
use mqtt_sansio::{Disconnect, EncodeError, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{error, info, warn};

use super::dispatch::Incoming;
use super::{room, Driver, End};
use crate::client::Command;
use crate::transport::Stream;
use crate::Error;

/// Largest read buffer growth step.
const READ_CHUNK: usize = 16 * 1024;
/// First read buffer growth step: an idle connection (CONNACK, PINGRESP, the odd message)
/// never needs more, so it holds 1 KiB instead of 16; reads that fill the buffer double the
/// step up to [`READ_CHUNK`].
const MIN_READ: usize = 1024;
/// Stop asking the session for packets while this much waits to be written.
const HIGH_WATER: usize = 256 * 1024;
/// Messages waiting for full subscription streams before reading stops (a broker that
/// respects its window never gets there).
pub(super) const OUTBOX_LIMIT: usize = 65_536;
/// QoS 0 messages kept for full subscription streams; more are dropped and reported (QoS 0
/// promises at most once, and nothing else bounds them).
pub(super) const OUTBOX_QOS0_LIMIT: usize = 4096;
/// Time allowed to write the last packets and close the transport cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What woke the loop.
#[allow(clippy::large_enum_variant)] // one lives at a time, on the stack
enum Step {
    Read(std::io::Result<usize>),
    Wrote(std::io::Result<usize>),
    Flushed(std::io::Result<()>),
    Timer,
    CloseTimer,
    Command(Option<Command>),
    Room(bool),
}

/// A packet's effect, taken out of the session's borrow.
#[allow(clippy::large_enum_variant)] // one lives at a time, on the stack
enum Input {
    Packet(usize, Option<Incoming>),
    Blocked,
    Violation(mqtt_sansio::session::ProtocolError),
}

impl Driver {
    /// Runs a connection whose CONNECT is queued, until it ends.
    pub(super) async fn drive(&mut self, stream: Stream) -> End {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut rbuf = BytesMut::with_capacity(MIN_READ);
        let mut read_size = MIN_READ;
        let mut need_flush = false;
        let mut close_at = None;
        loop {
            self.start_shutdown();
            self.retry_waiting();
            self.process_input(&mut rbuf);
            self.pump(false);
            if self.conn_end.is_some() {
                if self.wbuf.is_empty() && !need_flush {
                    break;
                }
                close_at.get_or_insert_with(|| tokio::time::Instant::now() + CLOSE_GRACE);
            }
            if rbuf.capacity() - rbuf.len() < read_size / 4 {
                rbuf.reserve(read_size);
            }
            let timer = self.session.poll_timeout().map(|t| self.to_tokio(t));
            let waiter = self.room_waiter();
            let has_outbox = waiter.is_some();
            // A slow consumer does not stop reading (SUBACK, PINGRESP and PUBREL must get
            // through); its unacknowledged messages hold the broker back. Only a broker that
            // ignores its window could fill the outbox to this bound.
            let reading = self.conn_end.is_none() && self.outbox.len() < OUTBOX_LIMIT;
            let writing = !self.wbuf.is_empty();
            let flushing = !writing && need_flush;
            let step = tokio::select! {
                r = rd.read_buf(&mut rbuf), if reading => Step::Read(r),
                step = write_or_flush(&mut wr, &self.wbuf), if writing || flushing => step,
                () = sleep_until(timer), if timer.is_some() => Step::Timer,
                () = sleep_until(close_at), if close_at.is_some() => Step::CloseTimer,
                cmd = self.commands.recv(), if !self.commands_closed => Step::Command(cmd),
                open = room(waiter), if has_outbox => Step::Room(open),
            };
            match step {
                Step::Read(Ok(0)) => {
                    return self.end_or(End::failed(Error::ConnectionClosed));
                }
                Step::Read(Ok(n)) => {
                    if n >= read_size / 2 {
                        read_size = (read_size * 2).min(READ_CHUNK);
                    }
                }
                Step::Wrote(Ok(0)) => {
                    let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return self.end_or(End::failed(e));
                }
                Step::Read(Err(e)) | Step::Wrote(Err(e)) | Step::Flushed(Err(e)) => {
                    return self.end_or(End::failed(e));
                }
                Step::Wrote(Ok(n)) => {
                    self.wbuf.advance(n);
                    need_flush = true;
                }
                Step::Flushed(Ok(())) => {
                    need_flush = false;
                    self.flushed();
                }
                Step::Timer => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
                Step::CloseTimer => break,
                Step::Command(cmd) => {
                    self.on_command(cmd);
                    self.gather_commands().await;
                }
                Step::Room(open) => self.on_room(open),
            }
        }
        // TLS close_notify, WebSocket close frame, TCP FIN; then read until the broker closes
        // too. Closing a socket with unread bytes in it sends a TCP reset, and a broker that
        // sees the reset before our DISCONNECT publishes the will. Bounded.
        let graceful = self.shutdown.is_some();
        let linger = async {
            let _ = wr.shutdown().await;
            let mut sink = [0u8; 1024];
            while graceful && matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, linger).await;
        self.end_or(End::Closed)
    }

    /// The reason the session gave for ending, or `fallback`.
    fn end_or(&mut self, fallback: End) -> End {
        self.conn_end.take().unwrap_or(fallback)
    }

    /// Begins a requested stop: DISCONNECT if connected, otherwise just close.
    fn start_shutdown(&mut self) {
        let Some(shutdown) = &mut self.shutdown else {
            return;
        };
        if shutdown.started {
            return;
        }
        shutdown.started = true;
        let options = shutdown.options.clone();
        if !self.connected {
            self.conn_end = Some(End::Closed);
            return;
        }
        // The session leaves out on 3.1.1 what 3.1.1 cannot say, and closes without
        // DISCONNECT when the will is asked for.
        let reason = match (options.reason_code, options.publish_will) {
            (Some(code), _) => code,
            (None, true) => ReasonCode::DisconnectWithWillMessage,
            (None, false) => ReasonCode::Success,
        };
        let mut disconnect = Disconnect::new(reason);
        disconnect.properties.session_expiry_interval = options.session_expiry_interval;
        disconnect.properties.reason_string = options.reason_string.as_deref();
        match self.session.disconnect(&disconnect) {
            Ok(()) => info!(?reason, "disconnecting"),
            Err(error) => {
                warn!(%error, "cannot send DISCONNECT; closing");
                self.conn_end = Some(End::Closed);
            }
        }
    }

    /// Hands buffered input to the session, one packet at a time, while the application keeps
    /// up.
    fn process_input(&mut self, rbuf: &mut BytesMut) {
        let mut blocked = false;
        // One clock reading for the whole batch of packets read together.
        let now = self.now();
        loop {
            if self.rx_skip > 0 {
                let n = self.rx_skip.min(rbuf.len());
                rbuf.advance(n);
                self.rx_skip -= n;
            }
            let full = self.outbox.len() >= OUTBOX_LIMIT;
            if rbuf.is_empty() || full || self.conn_end.is_some() {
                return;
            }
            let input = match self.session.handle_read(now, &rbuf[..]) {
                Ok(Read::Packet { len, event }) => {
                    let event = if event {
                        self.session.event(&rbuf[..len])
                    } else {
                        None
                    };
                    Input::Packet(len, event.map(|e| Incoming::new(&e, &rbuf[..])))
                }
                Ok(Read::Incomplete { needed }) => {
                    if let Some(n) = needed {
                        rbuf.reserve(n.get());
                    }
                    return;
                }
                Ok(Read::Blocked) => Input::Blocked,
                Ok(Read::Closing) => return,
                Ok(Read::Skip { len }) => {
                    // A message over the maximum packet size: the session acknowledged and
                    // reported it; its bytes are dropped as they arrive.
                    self.rx_skip = len;
                    let _ = self.drain_events();
                    continue;
                }
                Err(e) => Input::Violation(e),
            };
            match input {
                Input::Packet(len, incoming) => {
                    blocked = false;
                    let packet = rbuf.split_to(len).freeze();
                    if let Some(incoming) = incoming {
                        self.on_event(incoming, &packet);
                    }
                    let _ = self.drain_events();
                }
                Input::Blocked if !blocked => {
                    blocked = true;
                    self.pump(true);
                }
                Input::Blocked => return,
                Input::Violation(e) => {
                    warn!(error = %e, "the broker broke the protocol; closing");
                    self.events
                        .emit(crate::Event::Error(Error::Protocol(e.reason_code())));
                    self.pump(true);
                    return;
                }
            }
        }
    }

    /// Moves packets from the session into the write buffer and handles the session's
    /// events. `force` ignores the write buffer's high-water mark.
    pub(super) fn pump(&mut self, force: bool) {
        // One clock reading for every packet taken in this pass.
        let now = self.now();
        loop {
            let _ = self.drain_events();
            if !force && self.wbuf.len() >= HIGH_WATER {
                break;
            }
            match self.session.poll_transmit(now, &mut self.scratch) {
                Ok(Some(transmit)) => {
                    // A QoS 0 message dropped before this one is reported first.
                    let _ = self.drain_events();
                    let n = transmit.len;
                    self.wbuf.extend_from_slice(&self.scratch[..n]);
                    self.queued_bytes += n as u64;
                    if transmit.completes_qos0 {
                        self.store_freed = true;
                        if let Some(done) = self.qos0.pop_front() {
                            self.marks.push_back((self.queued_bytes, done));
                        }
                    }
                }
                // The session may hold packets back until its events are taken.
                Ok(None) if self.drain_events() => {}
                Ok(None) => break,
                Err(EncodeError::BufferTooSmall { needed, .. }) => {
                    let len = needed.max(self.scratch.len() * 2);
                    self.scratch.resize(len, 0);
                }
                Err(e) => {
                    error!(error = %e, "cannot encode the next packet");
                    break;
                }
            }
        }
        let _ = self.drain_events();
    }

    /// Everything queued so far is written and flushed: QoS 0 publishes are done.
    fn flushed(&mut self) {
        self.written_bytes = self.queued_bytes - self.wbuf.len() as u64;
        while let Some((mark, _)) = self.marks.front() {
            if *mark > self.written_bytes {
                break;
            }
            if let Some((_, done)) = self.marks.pop_front() {
                let _ = done.send(Ok(ReasonCode::Success));
            }
        }
    }
}

/// Writes some of `buf`, or flushes once it is empty. Cancel safe: an unfinished write or
/// flush has written nothing that is not accounted for.
async fn write_or_flush(wr: &mut (impl AsyncWrite + Unpin), buf: &[u8]) -> Step {
    if buf.is_empty() {
        Step::Flushed(wr.flush().await)
    } else {
        Step::Wrote(wr.write(buf).await)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
