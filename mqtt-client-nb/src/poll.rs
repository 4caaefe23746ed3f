//! The driver loop: feed the session what the transport and the clock say, write what it
//! produces, and report its events.
//!
//! # How `poll` stays cancel-safe
//!
//! Every piece of progress is stored in the client before the next `.await`:
//! - the session holds all protocol state (it is only called synchronously);
//! - received bytes live in `rx[rx_start..rx_end]`, and a read that completes is recorded in
//!   `rx_end` right after its `.await` returns, before any other suspension point;
//! - bytes to send live in `tx[tx_start..tx_end]`: a packet leaves the session into the
//!   transmit buffer, and `tx_start` advances by what each completed `write` took;
//! - events are taken from the session only at the moment `poll` returns them, and the
//!   bytes an event borrows are released at the start of the next `poll`.
//!
//! The only `.await`s are one `read`, `write` or `flush` of the transport raced against
//! [`Clock::sleep_until`], and the journal's [`Journal::persist`]: a journal whose write is
//! cancelled knows it is behind and writes a whole snapshot at the next call, before
//! anything is transmitted. Dropping the `poll` future there drops those futures; per the
//! `embedded-io-async` contract for cancel-safe implementations (which `embassy-net`'s
//! `TcpSocket` and `embedded-io-adapters`' tokio adapter are), an unfinished `read` has
//! consumed nothing and an unfinished `write` has written nothing, so nothing is lost or
//! sent twice.

use core::pin::pin;

use embedded_io_async::{Error as _, ErrorKind, Read, Write};
use mqtt_sansio::auth::Authenticator;
use mqtt_sansio::session::{self, Instant, LostReason};
use mqtt_sansio::{EncodeError, Publish};

use crate::client::{Ending, Link};
use crate::event::{DeleteReason, Event};
use crate::reconnect::Reference;
use crate::select::{select, Either};
use crate::{Client, Clock, Error, Journal};

/// Whether the session may stream a PUBLISH larger than `rx` (`receive-streaming`).
const STREAMING: bool = cfg!(feature = "receive-streaming");
/// Whether the session renews subscriptions (`subscription-renewal`).
const RENEWAL: bool = cfg!(feature = "subscription-renewal");

impl<'b, S: Read + Write, J: Journal> Client<'b, S, J> {
    /// Drives the connection until there is something to report, and returns it: writes
    /// queued packets, reads and processes the broker's packets, keeps the keep alive and
    /// CONNACK/PINGRESP deadlines with `clock`, and ends the connection when it fails.
    ///
    /// Call it in a loop. Commands ([`Client::publish`] etc.) need `&mut self`, so to act
    /// while waiting, race `poll` against your own future (a timer, a channel, a button)
    /// with a `select` and issue commands when yours wins: `poll` is cancel-safe.
    ///
    /// Without a transport it returns what is left to report from the last connection, then
    /// [`Event::Error`] with [`Error::NotConnected`] at once: hand in a transport with
    /// [`Client::connect`] instead of polling again, or use [`Client::poll_reconnecting`].
    ///
    /// # Cancel safety
    /// Cancel-safe, provided the transport's `read`, `write` and `flush` and the clock's
    /// `sleep_until` are (as `embedded-io-async` asks of implementations; `embassy-net`
    /// sockets and the tokio adapter are). Dropping the future loses no received byte and
    /// no event, and never writes a byte twice; the next call carries on where this one
    /// stopped. The crate documentation's *Cancel safety* section says how.
    pub async fn poll<C: Clock>(&mut self, clock: &C) -> Event<'_> {
        // Each step below changes state without borrowing, and only a branch that returns
        // borrows the event it returns: the borrow checker accepts that inside a loop.
        let this = self;
        this.rx_start += core::mem::take(&mut this.rx_lent);
        if let Some((len, last)) = this.rx_chunk.take().filter(|_| STREAMING) {
            this.release_chunk(len, last);
        }
        loop {
            // Write-ahead: what the last input or command changed is durable before
            // anything it caused is transmitted (the session holds it back until then).
            // Without a journal there is nothing to await: no state of the future for it.
            if J::ENABLED {
                if let Err(error) = this.journal.persist(&mut this.session).await {
                    crate::fmt::warning!("mqtt: journal write failed");
                    return Event::Error(Error::Storage(error));
                }
            }
            let now = Instant::from_millis(clock.now_ms());
            this.last_now = now;
            if this.link.live && this.link.ending != Some(Ending::Now) {
                this.session.handle_timeout(now);
                match this.read_step(now) {
                    ReadStep::Nothing => {}
                    ReadStep::Report(len) => return this.read_event(len),
                    ReadStep::Fail(event) => return event,
                }
                if let Some(error) = this.fill_tx(now) {
                    return this.fail(error);
                }
            }
            if let Some(event) = this.link.take_notice() {
                return event;
            }
            if let Some(event) = this.session_step() {
                return this.session_event(event);
            }
            if this.ending_due() {
                this.end();
                continue;
            }
            if !this.link.live {
                return Event::Error(Error::NotConnected);
            }
            if core::mem::take(&mut this.link.progress) {
                continue;
            }
            if let Some(event) = this.wait_io(clock).await {
                return event;
            }
        }
    }

    /// What is left to report without a transport: pending notices, then session events.
    /// Like the steps of [`Client::poll`], it borrows nothing unless it returns an event.
    pub(crate) fn offline_step(&mut self) -> Option<OfflineEvent> {
        if let Some(event) = self.link.take_notice() {
            return Some(OfflineEvent::Notice(event));
        }
        self.session_step().map(OfflineEvent::Session)
    }

    /// The event an [`OfflineEvent`] stands for.
    pub(crate) fn offline_event(&self, event: OfflineEvent) -> Event<'_> {
        match event {
            OfflineEvent::Notice(event) => event,
            OfflineEvent::Session(event) => self.session_event(event),
        }
    }

    /// Drops a chunk of a streamed PUBLISH from behind its header, and the header with the
    /// last chunk.
    fn release_chunk(&mut self, len: usize, last: bool) {
        let payload = self.rx_start + self.rx_header;
        self.rx.copy_within(payload + len..self.rx_end, payload);
        self.rx_end -= len;
        self.rx_stream_left -= len;
        if last {
            self.rx_start += self.rx_header;
            self.rx_header = 0;
            self.rx_stream_left = 0;
        }
    }

    /// Whether a streamed PUBLISH's payload should wait for more bytes before a chunk is
    /// handed over: chunks fill the receive buffer unless the message ends sooner.
    fn chunk_pending(&self) -> bool {
        if !STREAMING || self.rx_header == 0 {
            return false;
        }
        let buffered = self.rx_end - self.rx_start;
        let payload = buffered - self.rx_header;
        payload < self.rx_stream_left && buffered < self.rx.len()
    }

    /// Hands one buffered packet (or chunk of a streamed one) to the session.
    fn read_step(&mut self, now: Instant) -> ReadStep {
        if !self.rx_ready || self.link.ending.is_some() || self.rx_start == self.rx_end {
            return ReadStep::Nothing;
        }
        if self.chunk_pending() {
            self.rx_ready = false;
            return ReadStep::Nothing;
        }
        // The offsets keep rx_start <= rx_end <= rx.len(): `get` only leaves out the panic.
        let input = self.rx.get(self.rx_start..self.rx_end).unwrap_or_default();
        // The event borrows the session and `rx`: everything it decides is taken out of it
        // (disjoint fields only) before the session is used again.
        let (len, auth, reported) = match self.session.handle_read(now, input) {
            Ok(session::Read::Packet { len, event }) => {
                let auth = match (&event, self.authenticator.as_deref_mut()) {
                    (Some(event), Some(auth)) => {
                        run_authenticator(auth, event, &mut self.tx[self.tx_end..])
                    }
                    _ => AuthAction::Pass,
                };
                let reported = matches!(auth, AuthAction::Pass)
                    && event.is_some_and(|e| effect(&mut self.link, &mut self.reference, &e));
                (len, auth, reported)
            }
            Ok(session::Read::Incomplete { .. } | session::Read::Closing) => {
                self.rx_ready = false;
                return ReadStep::Nothing;
            }
            // Acknowledgements wait: `fill_tx` takes them, then the packet is retried.
            Ok(session::Read::Blocked) => return ReadStep::Nothing,
            // Without `receive-streaming` the session streams nothing: these two are left out.
            Ok(session::Read::Stream { .. } | session::Read::Chunk { .. }) if !STREAMING => {
                return ReadStep::Nothing;
            }
            Ok(session::Read::Stream {
                header_len,
                payload_len,
            }) => {
                // The header stays at the front; the payload passes behind it.
                self.rx_header = header_len;
                self.rx_stream_left = payload_len;
                self.link.progress = true;
                return ReadStep::Nothing;
            }
            Ok(session::Read::Chunk { len, last, event }) => {
                let reported =
                    event.is_some_and(|e| effect(&mut self.link, &mut self.reference, &e));
                if reported {
                    self.rx_chunk = Some((len, last));
                    return ReadStep::Report(self.rx_header + len);
                }
                self.release_chunk(len, last);
                self.link.progress = true;
                return ReadStep::Nothing;
            }
            Ok(session::Read::Skip { len }) => {
                // Larger than `rx` can ever hold: dropped here and as the rest arrives.
                let dropped = len.min(self.rx_end - self.rx_start);
                self.rx_start += dropped;
                self.rx_skip = len - dropped;
                self.link.progress = true;
                return ReadStep::Nothing;
            }
            Err(error) => {
                crate::fmt::warning!("mqtt: protocol error from the broker");
                self.rx_start = self.rx_end;
                self.rx_ready = false;
                // The session queued a DISCONNECT (5.0): send it, then drop the transport.
                self.link.end(Ending::AfterWrite);
                return ReadStep::Fail(Event::Error(Error::Protocol(error)));
            }
        };
        match self.authenticated(auth) {
            AuthStep::Pass => {}
            AuthStep::Answered => {
                self.rx_start += len;
                self.link.progress = true;
                return ReadStep::Nothing;
            }
            AuthStep::Failed(error) => {
                self.rx_start += len;
                // The session queued DISCONNECT Not Authorized: send it, then close.
                self.link.end(Ending::AfterWrite);
                return ReadStep::Fail(Event::Error(Error::Authentication(error)));
            }
        }
        if reported {
            self.rx_lent = len;
            ReadStep::Report(len)
        } else {
            self.rx_start += len;
            self.link.progress = true;
            ReadStep::Nothing
        }
    }

    /// Carries out what the authenticator decided: sends its answer to a challenge (written
    /// in the transmit buffer's free part) in the session's AUTH, or fails the broker.
    fn authenticated(&mut self, action: AuthAction) -> AuthStep {
        let n = match action {
            AuthAction::Pass => return AuthStep::Pass,
            AuthAction::Answered => return AuthStep::Answered,
            AuthAction::Failed(e) => return self.refuse_broker(e),
            // Challenges come in AUTH, which a build without `v5` never reads: its code is
            // left out. A 3.1.1 CONNACK still reaches `finish`, hence the arm above.
            AuthAction::Respond(_) if !cfg!(feature = "v5") => return AuthStep::Pass,
            AuthAction::Respond(n) => n,
        };
        let Some(auth) = self.authenticator.as_deref() else {
            return AuthStep::Pass;
        };
        let data = &self.tx[self.tx_end..self.tx_end + n];
        let step = mqtt_sansio::Auth::new(
            mqtt_sansio::ReasonCode::ContinueAuthentication,
            auth.method(),
            data,
        );
        match self.session.auth(&step) {
            Ok(()) => AuthStep::Answered,
            // The store's control region is too small: `Options::authentication_room`.
            Err(mqtt_sansio::session::CommandError::Encode(_)) => {
                self.refuse_broker(mqtt_sansio::auth::AuthError::BufferTooSmall)
            }
            Err(_) => self.refuse_broker(mqtt_sansio::auth::AuthError::OutOfOrder),
        }
    }

    fn refuse_broker(&mut self, error: mqtt_sansio::auth::AuthError) -> AuthStep {
        crate::fmt::warning!("mqtt: enhanced authentication failed");
        self.session.authentication_failed();
        AuthStep::Failed(error)
    }

    /// The event of the packet `read_step` reported; its `len` bytes (a streamed PUBLISH's
    /// header and chunk) stay lent until the next poll.
    fn read_event(&self, len: usize) -> Event<'_> {
        let packet = &self.rx[self.rx_start..self.rx_start + len];
        match self.session.event(packet) {
            Some(event) => convert(event, None),
            // Unreachable: read_step saw this event a moment ago and nothing changed since.
            None => Event::Error(Error::ConnectionLost),
        }
    }

    /// Takes the next event the session queued itself, if the application is to see it.
    fn session_step(&mut self) -> Option<session::Event<'static>> {
        while let Some(event) = self.session.poll_event() {
            self.link.progress = true;
            if effect(&mut self.link, &mut self.reference, &event) {
                return Some(event);
            }
        }
        None
    }

    /// The client event for a session event `session_step` returned.
    fn session_event(&self, event: session::Event<'static>) -> Event<'_> {
        convert(event, self.session.abandoned_message())
    }

    /// Moves packets from the session into the transmit buffer while they fit.
    pub(crate) fn fill_tx(&mut self, now: Instant) -> Option<Error> {
        if self.tx_start == self.tx_end {
            self.tx_start = 0;
            self.tx_end = 0;
        } else if self.tx_start > 0 {
            self.tx.copy_within(self.tx_start..self.tx_end, 0);
            self.tx_end -= self.tx_start;
            self.tx_start = 0;
        }
        loop {
            let free = self.tx.get_mut(self.tx_end..).unwrap_or_default();
            match self.session.poll_transmit(now, free) {
                Ok(Some(transmit)) => {
                    if let Some(piece) = transmit.payload() {
                        // A piece of a streamed payload: the session says which, the
                        // application's source supplies it.
                        let end = self.tx_end + transmit.len;
                        let dst = self.tx.get_mut(self.tx_end..end).unwrap_or_default();
                        let filled = match self.payload_source.as_deref_mut() {
                            Some(source) => {
                                crate::payload::fill(source, piece.packet_id, piece.offset, dst)
                            }
                            None => false,
                        };
                        if !filled {
                            crate::fmt::warning!("mqtt: the payload source gave no bytes");
                            return Some(Error::PayloadSource);
                        }
                    }
                    self.tx_end += transmit.len;
                }
                Ok(None) => return None,
                // It fits once the buffer is written out.
                Err(EncodeError::BufferTooSmall { .. }) if self.tx_end > 0 => return None,
                Err(EncodeError::BufferTooSmall { needed, .. }) => {
                    return Some(Error::TxBufferTooSmall {
                        needed,
                        capacity: self.tx.len(),
                    })
                }
                Err(e) => return Some(Error::Command(e.into())),
            }
        }
    }

    fn ending_due(&self) -> bool {
        match self.link.ending {
            Some(Ending::Now) => true,
            Some(Ending::AfterWrite) => self.tx_start == self.tx_end && !self.unflushed,
            None => false,
        }
    }

    /// Ends the connection: the session learns the transport is gone (and will resend what
    /// is unacknowledged on the next one); the transport stays for [`Client::close`].
    fn end(&mut self) {
        crate::fmt::debug!("mqtt: connection ended");
        self.next_connect = Some(self.session.handle_transport_closed(self.last_now));
        self.reset_buffers();
        self.link = Link {
            disconnected: true,
            ..Link::default()
        };
    }

    /// Ends the connection because of `error`, which is reported first.
    fn fail(&mut self, error: Error) -> Event<'static> {
        self.link.end(Ending::Now);
        Event::Error(error)
    }

    /// Waits for one transport operation, or the session's next deadline, whichever comes
    /// first. Writing (and flushing) comes before reading. One race of one future, whichever
    /// operation it runs: a `select` per operation would be compiled three times over.
    async fn wait_io<C: Clock>(&mut self, clock: &C) -> Option<Event<'static>> {
        let deadline = self.session.poll_timeout().map(Instant::as_millis);
        let Some(transport) = self.transport.as_mut() else {
            return Some(Event::Error(Error::NotConnected));
        };
        let op = if self.tx_start < self.tx_end {
            Io::Write
        } else if self.unflushed {
            Io::Flush
        } else {
            if self.rx_start > 0 {
                self.rx.copy_within(self.rx_start..self.rx_end, 0);
                self.rx_end -= self.rx_start;
                self.rx_start = 0;
            }
            if self.rx_end == self.rx.len() {
                return Some(self.fail(Error::RxBufferFull));
            }
            Io::Read
        };
        // The future holds the transport and the one buffer its operation takes.
        let buf = match op {
            Io::Write => IoBuf::Write(self.tx.get(self.tx_start..self.tx_end).unwrap_or_default()),
            Io::Flush => IoBuf::Flush,
            Io::Read => IoBuf::Read(self.rx.get_mut(self.rx_end..).unwrap_or_default()),
        };
        let io = async move {
            match buf {
                IoBuf::Write(pending) => transport.write(pending).await,
                IoBuf::Flush => transport.flush().await.map(|()| 0),
                IoBuf::Read(free) => transport.read(free).await,
            }
        };
        // No deadline, no sleep: only the transport can end the wait. The pinned futures,
        // and the borrows they hold, end with this block.
        let sleep = deadline.map(|at| clock.sleep_until(at));
        let raced = {
            let (io, sleep) = (pin!(io), pin!(sleep));
            select(io, sleep).await
        };
        let n = match raced {
            Either::First(Ok(n)) => n,
            Either::First(Err(e)) => return Some(self.fail(Error::Transport(e.kind()))),
            Either::Second(()) => return None,
        };
        match op {
            Io::Write if n == 0 => return Some(self.fail(Error::Transport(ErrorKind::WriteZero))),
            Io::Write => {
                self.tx_start += n;
                self.unflushed = true;
            }
            Io::Flush => self.unflushed = false,
            Io::Read if n == 0 => return Some(self.fail(Error::ConnectionClosed)),
            Io::Read => {
                let skipped = self.rx_skip.min(n);
                self.rx_skip -= skipped;
                let end = self.rx_end;
                self.rx.copy_within(end + skipped..end + n, end);
                self.rx_end += n - skipped;
                self.rx_ready = n > skipped;
            }
        }
        None
    }
}

/// The transport operation [`Client::wait_io`] races against the deadline.
#[derive(Clone, Copy)]
enum Io {
    Write,
    Flush,
    Read,
}

/// An [`Io`] with the buffer it takes.
enum IoBuf<'a> {
    Write(&'a [u8]),
    Flush,
    Read(&'a mut [u8]),
}

/// What the authenticator made of a packet.
/// What the authenticator made of a packet's event.
enum AuthAction {
    /// Not its business.
    Pass,
    /// The final proof checked out (AUTH Success).
    Answered,
    /// Its answer to a challenge: this many bytes, written at the transmit buffer's end.
    Respond(usize),
    /// The broker failed.
    Failed(mqtt_sansio::auth::AuthError),
}

/// Runs the authenticator on the event of the packet just read: answers a challenge into
/// `scratch`, checks the final proof of CONNACK or of AUTH Success.
fn run_authenticator(
    auth: &mut (dyn Authenticator + Send),
    event: &session::Event<'_>,
    scratch: &mut [u8],
) -> AuthAction {
    // AUTH comes from 5.0 servers only: a build without `v5` never sees one.
    let result = match event {
        session::Event::Auth(_) if !cfg!(feature = "v5") => return AuthAction::Pass,
        session::Event::Auth(a)
            if a.reason_code == mqtt_sansio::ReasonCode::ContinueAuthentication =>
        {
            let challenge = a.properties.authentication_data.unwrap_or_default();
            return match auth.respond(challenge, scratch) {
                Ok(n) => AuthAction::Respond(n),
                Err(e) => AuthAction::Failed(e),
            };
        }
        session::Event::Auth(a) => auth
            .finish(a.properties.authentication_data)
            .map(|()| AuthAction::Answered),
        session::Event::Connected { properties, .. } => auth
            .finish(properties.authentication_data)
            .map(|()| AuthAction::Pass),
        _ => return AuthAction::Pass,
    };
    result.unwrap_or_else(AuthAction::Failed)
}

enum AuthStep {
    /// Not its business: report the packet as usual.
    Pass,
    /// Answered or verified: nothing to report.
    Answered,
    /// The broker failed.
    Failed(mqtt_sansio::auth::AuthError),
}

/// What `read_step` found.
enum ReadStep {
    Nothing,
    /// A packet of this length has an event to report.
    Report(usize),
    /// The broker broke the protocol.
    Fail(Event<'static>),
}

/// An event to report while there is no transport.
pub(crate) enum OfflineEvent {
    Notice(Event<'static>),
    Session(session::Event<'static>),
}

/// Notes on `link` what a session event does to the connection, and whether the application
/// sees it (not PINGRESP, nor the end of our own DISCONNECT).
fn effect(link: &mut Link, reference: &mut Reference, event: &session::Event<'_>) -> bool {
    use session::Event as S;
    match event {
        // A Server Reference is 5.0's: without `v5` there is never one to keep (nor kept).
        S::ConnectionRefused { properties, .. } => {
            if cfg!(feature = "v5") {
                reference.keep(properties.server_reference);
            }
            link.end(Ending::Now);
        }
        // Only a 5.0 server sends DISCONNECT: a build without `v5` never sees one.
        S::Disconnected { properties, .. } if cfg!(feature = "v5") => {
            reference.keep(properties.server_reference);
            link.end(Ending::Now);
        }
        S::ConnectionLost(reason) => match reason {
            // Our DISCONNECT, or the one reporting a protocol error or a failed authentication
            // (already reported), is in the transmit buffer: send it first.
            LostReason::DisconnectSent
            | LostReason::Resync
            | LostReason::ClosedForWill
            | LostReason::AuthenticationFailed
            | LostReason::ProtocolError(_) => {
                link.end(Ending::AfterWrite);
                return false;
            }
            _ if !link.live => return false,
            _ => link.end(Ending::Now),
        },
        S::Pong { .. } => return false,
        _ => {}
    }
    is_reported(event)
}

/// Whether the application sees a session event at all.
fn is_reported(event: &session::Event<'_>) -> bool {
    use session::Event as S;
    matches!(
        event,
        S::Connected { .. }
            | S::ConnectionRefused { .. }
            | S::Message(_)
            | S::MessageChunk(_)
            | S::Published { .. }
            | S::Subscribed { .. }
            | S::Resubscribed { .. }
            | S::Unsubscribed { .. }
            | S::Auth(_)
            | S::Disconnected { .. }
            | S::ConnectionLost(_)
            | S::PublishAbandoned { .. }
            | S::PublishDropped { .. }
            | S::RequestDropped { .. }
            | S::Notice(_)
    )
}

/// Turns a session event into the client's; `abandoned` is the message of a
/// `PublishAbandoned`, when the session still has it.
fn convert<'a>(event: session::Event<'a>, abandoned: Option<Publish<'a>>) -> Event<'a> {
    use session::Event as S;
    match event {
        S::Connected {
            session_present,
            properties,
        } => {
            crate::fmt::debug!("mqtt: connected, session present {}", session_present);
            Event::Connected {
                session_present,
                properties,
            }
        }
        S::ConnectionRefused { reason_code, .. } => Event::Error(Error::Refused(reason_code)),
        S::Message(publish) => Event::Message(publish),
        S::MessageChunk(chunk) if STREAMING => Event::MessageChunk(chunk),
        S::Published {
            packet_id,
            qos,
            reason_code,
            properties,
        } => Event::Published {
            packet_id,
            qos,
            reason_code,
            properties,
        },
        S::Subscribed {
            packet_id,
            reason_codes,
            ..
        } => Event::Subscribed {
            packet_id,
            reason_codes,
        },
        S::Resubscribed {
            packet_id,
            subscriptions,
            reason_codes,
            ..
        } if RENEWAL => Event::Resubscribed {
            packet_id,
            subscriptions,
            reason_codes,
        },
        S::Unsubscribed {
            packet_id,
            reason_codes,
            ..
        } => Event::Unsubscribed {
            packet_id,
            reason_codes,
        },
        // AUTH and DISCONNECT come from 5.0 servers only: a build without `v5` has neither.
        S::Auth(auth) if cfg!(feature = "v5") => Event::Auth(auth),
        S::Disconnected { reason_code, .. } if cfg!(feature = "v5") => {
            Event::Error(Error::ServerDisconnect(reason_code))
        }
        S::ConnectionLost(reason) => Event::Error(match reason {
            LostReason::ConnAckTimeout => Error::ConnAckTimeout,
            LostReason::KeepAliveTimeout => Error::KeepAliveTimeout,
            _ => Error::ConnectionLost,
        }),
        S::PublishAbandoned { packet_id, .. } => Event::Deleted {
            packet_id: Some(packet_id),
            reason: DeleteReason::SessionLost,
            message: abandoned,
        },
        // Refusals by the broker's limits are 5.0's.
        S::PublishDropped {
            packet_id,
            reason_code,
        } if cfg!(feature = "v5") => Event::Deleted {
            packet_id,
            reason: DeleteReason::Refused(reason_code),
            message: None,
        },
        S::RequestDropped {
            packet_id,
            reason_code,
        } if cfg!(feature = "v5") => Event::RequestDropped {
            packet_id,
            reason_code,
        },
        S::Notice(notice) => Event::Notice(notice),
        // Unreachable: `is_reported` let only the events above through, and the build has
        // the features of those it can see.
        _ => Event::Error(Error::ConnectionLost),
    }
}
