//! Keeping a connection: reconnect when, where and whether the session says.

use core::future::Future;

use embedded_io_async::{Read, Write};
use mqtt_sansio::session::Reconnect;

use crate::{Client, Clock, Error, Event, Journal};

/// Room for a Server Reference (5.0 redirection), `host[:port]`.
pub(crate) const REFERENCE_BYTES: usize = 96;

/// Where [`Client::poll_reconnecting`] asks `open` to connect instead of the usual broker:
/// the broker's Server Reference (5.0 Use Another Server or Server Moved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect<'a> {
    /// The Server Reference as the broker sent it: `host`, `host:port`, or several
    /// space-separated references (try the first).
    pub reference: &'a str,
    /// Server Moved: use the reference for every later connection too. Otherwise (Use
    /// Another Server) only for this one.
    pub moved: bool,
}

impl<'b, S: Read + Write, J: Journal> Client<'b, S, J> {
    /// [`Client::poll`] that keeps the client connected: whenever there is no transport, it
    /// waits as long as the session's reconnect policy
    /// ([`Options::reconnect`](crate::Options::reconnect)) says, calls `open` for a new
    /// transport and hands it to [`Client::connect`]. The policy backs off after failed
    /// attempts and after connections that did not stay up, so a broker that accepts and then
    /// drops the client never sees a reconnect storm.
    ///
    /// `open` receives the transport of the connection that ended (if any) to reuse or drop,
    /// e.g. `embassy-net`'s `TcpSocket::abort` then `connect`, and the broker's
    /// [`Redirect`] when it named another server; copy what you need from it before
    /// returning the future.
    ///
    /// Returns every event `poll` returns, plus [`Event::Error`] with [`Error::OpenFailed`]
    /// when `open` fails (log the cause inside `open`), the error of [`Client::connect`] if
    /// it refuses, and [`Error::Stopped`] once when retrying cannot help (bad credentials,
    /// not authorized, banned, session taken over, our own DISCONNECT): after that it waits
    /// until the application connects again itself.
    ///
    /// ```no_run
    /// # async fn run<S, C>(mut client: mqtt_client_nb::Client<'_, S>, clock: C)
    /// # where S: embedded_io_async::Read + embedded_io_async::Write, C: mqtt_client_nb::Clock {
    /// # async fn open_tcp<S>(_host: Option<&str>) -> Result<S, ()> { Err(()) }
    /// use mqtt_client_nb::Event;
    ///
    /// loop {
    ///     let event = client
    ///         .poll_reconnecting(&clock, |_old, redirect| {
    ///             // A real device copies `redirect.reference` into its own buffer here.
    ///             let elsewhere = redirect.is_some();
    ///             async move { open_tcp(if elsewhere { Some("other") } else { None }).await }
    ///         })
    ///         .await;
    ///     match event {
    ///         Event::Connected { .. } => { /* subscribe if !session_present */ }
    ///         Event::Message(message) => { /* handle message.topic, message.payload */ }
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Cancel-safe as [`Client::poll`]. The retry time is the session's, so a cancelled wait
    /// resumes towards the same deadline. Cancelling while `open` runs drops the half-opened
    /// transport (and the old one it was given); the next call opens again without waiting.
    pub async fn poll_reconnecting<C, F, Fut, E>(&mut self, clock: &C, mut open: F) -> Event<'_>
    where
        C: Clock,
        F: FnMut(Option<S>, Option<Redirect<'_>>) -> Fut,
        Fut: Future<Output = Result<S, E>>,
    {
        let this = self;
        loop {
            if this.link.live {
                return this.poll(clock).await;
            }
            if let Some(event) = this.offline_step() {
                return this.offline_event(event);
            }
            let now = clock.now_ms();
            let (due, redirect) = match this.next_connect {
                None => (now, None),
                Some(Reconnect::At { at, .. }) => (at.as_millis(), None),
                Some(Reconnect::Redirect { at, moved }) => (at.as_millis(), Some(moved)),
                Some(Reconnect::Stop(cause)) => {
                    if !core::mem::replace(&mut this.stop_reported, true) {
                        crate::fmt::warning!("mqtt: not reconnecting");
                        return Event::Error(Error::Stopped(cause));
                    }
                    // Nothing to do until the application connects again itself.
                    core::future::pending::<()>().await;
                    continue;
                }
                Some(_) => (now, None),
            };
            if now < due {
                clock.sleep_until(due).await;
                continue;
            }
            let old = this.close();
            let target = match redirect {
                Some(moved) => this
                    .reference
                    .get()
                    .map(|reference| Redirect { reference, moved }),
                None => None,
            };
            let opened = open(old, target).await;
            match opened {
                Ok(transport) => {
                    if let Err(error) = this.connect(transport) {
                        return Event::Error(error);
                    }
                }
                Err(_) => {
                    crate::fmt::warning!("mqtt: opening a transport failed");
                    this.open_failed(clock.now_ms());
                    return Event::Error(Error::OpenFailed);
                }
            }
        }
    }
}

/// The Server Reference of the last refusal or DISCONNECT, kept for the next `open`.
#[derive(Debug)]
pub(crate) struct Reference {
    bytes: [u8; REFERENCE_BYTES],
    len: u8,
}

impl Reference {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; REFERENCE_BYTES],
            len: 0,
        }
    }

    /// Keeps `reference`, or forgets the last one; one too long for the buffer is dropped.
    pub(crate) fn keep(&mut self, reference: Option<&str>) {
        self.len = 0;
        if let Some(r) = reference {
            if let (Some(dst), Ok(len)) = (self.bytes.get_mut(..r.len()), u8::try_from(r.len())) {
                dst.copy_from_slice(r.as_bytes());
                self.len = len;
            }
        }
    }

    pub(crate) fn get(&self) -> Option<&str> {
        let bytes = self.bytes.get(..usize::from(self.len))?;
        core::str::from_utf8(bytes).ok().filter(|r| !r.is_empty())
    }
}
