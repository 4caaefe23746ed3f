//! The session's side of the wire: received bytes in, packets to write out, the graceful
//! stop. The driver moves the bytes; what they mean is decided here and in the session.

use bytes::{Buf, BytesMut};
use mqtt_sansio::session::Read;
use mqtt_sansio::{Disconnect, EncodeError, ReasonCode};
use tracing::{error, info, warn};

use super::dispatch::Incoming;
use super::{End, State};
use crate::Error;

/// Stop asking the session for packets while this much waits to be written.
const HIGH_WATER: usize = 256 * 1024;
/// Messages waiting for full subscription streams before reading stops (a broker that
/// respects its window never gets there).
pub(crate) const OUTBOX_LIMIT: usize = 65_536;
/// QoS 0 messages kept for full subscription streams; more are dropped and reported (QoS 0
/// promises at most once, and nothing else bounds them).
pub(super) const OUTBOX_QOS0_LIMIT: usize = 4096;

/// A packet's effect, taken out of the session's borrow.
#[allow(clippy::large_enum_variant)] // one lives at a time, on the stack
enum Input {
    Packet(usize, Option<Incoming>),
    Blocked,
    Violation(mqtt_sansio::session::ProtocolError),
}

impl State {
    /// The bytes to write next, taken out of the state so that the driver writes them without
    /// holding the lock. Empty when there is nothing to write.
    pub(crate) fn take_output(&mut self) -> BytesMut {
        self.wbuf.split()
    }

    /// Gives back the buffers packets are encoded and gathered in, when nothing waits in
    /// them: the driver calls this once a connection is quiet, so that an idle client keeps
    /// none. They grow again with the next packet (the encoding scratch by the session's
    /// `BufferTooSmall`, as it always grows).
    pub(crate) fn release_output(&mut self) {
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
            self.scratch = Vec::new();
        }
    }

    /// `n` more bytes of what [`State::take_output`] gave were written.
    pub(crate) fn wrote(&mut self, n: usize) {
        self.written_bytes += n as u64;
    }

    /// The reason the session gave for ending, or `fallback`.
    pub(crate) fn end_or(&mut self, fallback: End) -> End {
        self.conn_end.take().map_or(fallback, |end| *end)
    }

    /// Begins a requested stop: DISCONNECT if connected, otherwise just close.
    pub(crate) fn start_shutdown(&mut self) {
        let Some(shutdown) = &mut self.shutdown else {
            return;
        };
        if shutdown.started {
            return;
        }
        shutdown.started = true;
        let options = shutdown.options.clone();
        if !self.connected {
            self.conn_end = Some(Box::new(End::Closed));
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
        match super::with_control_room(&mut self.session, |s| s.disconnect(&disconnect)) {
            Ok(()) => info!(?reason, "disconnecting"),
            Err(error) => {
                warn!(%error, "cannot send DISCONNECT; closing");
                self.conn_end = Some(Box::new(End::Closed));
            }
        }
    }

    /// Hands buffered input to the session, one packet at a time, while the application keeps
    /// up.
    pub(crate) fn process_input(&mut self, rbuf: &mut BytesMut) {
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
                    Input::Packet(len, event.map(|e| Incoming::new(&e, &rbuf[..])))
                }
                Ok(Read::Incomplete { needed }) => {
                    if let Some(n) = needed {
                        rbuf.reserve(n.get());
                    }
                    return;
                }
                Ok(Read::Blocked) => Input::Blocked,
                // The buffer grows to any packet: no receive capacity is set, so the session
                // never streams.
                Ok(Read::Closing | Read::Stream { .. } | Read::Chunk { .. }) => return,
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
                    self.fit_room();
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
    pub(crate) fn pump(&mut self, force: bool) {
        // One clock reading for every packet taken in this pass.
        let now = self.now();
        self.fit_room();
        let mut refitted = false;
        loop {
            let _ = self.drain_events();
            if !force && self.wbuf.len() >= HIGH_WATER {
                break;
            }
            // Write-ahead: the session sends nothing while records wait for the journal.
            self.drain_journal();
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
                // A renewal SUBSCRIBE found the queue too small during this pass: grown (at
                // most once a pass), it goes now rather than at the next wake-up.
                Ok(None) if !refitted && self.session.wants_room().is_some() => {
                    refitted = true;
                    if !self.fit_room() {
                        break;
                    }
                }
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

    /// What was written so far is flushed: the QoS 0 publishes in it are done.
    pub(crate) fn flushed(&mut self) {
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
