//! Keeping a connection: reconnect with exponential backoff.

use core::future::Future;
use core::time::Duration;

use embedded_io_async::{Read, Write};

use crate::{Client, Clock, Error, Event};

/// Exponential backoff between connection attempts, for [`Client::poll_reconnecting`].
///
/// The first attempt is immediate. After each attempt the delay doubles, from `initial` up
/// to `max`; once the broker accepts a connection it drops back to `initial`, so even a
/// connection that keeps being accepted and then lost is retried at most once per
/// `initial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial_ms: u64,
    max_ms: u64,
    delay_ms: u64,
    /// When the next attempt is due (kept across cancellation).
    retry_at: Option<u64>,
}

impl Backoff {
    /// A backoff from `initial` to `max` (`max` is raised to `initial` if lower).
    pub const fn new(initial: Duration, max: Duration) -> Self {
        let initial_ms = initial.as_millis() as u64;
        let max_ms = max.as_millis() as u64;
        Self {
            initial_ms,
            max_ms: if max_ms < initial_ms {
                initial_ms
            } else {
                max_ms
            },
            delay_ms: 0,
            retry_at: None,
        }
    }

    /// The delay before the next attempt.
    pub const fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms)
    }

    /// Sets the delay back to `initial` (the helper does so on [`Event::Connected`]).
    pub fn reset(&mut self) {
        self.delay_ms = self.initial_ms;
        self.retry_at = None;
    }

    /// When the next attempt is due, scheduling it from `now` if it is not yet.
    fn due(&mut self, now: u64) -> u64 {
        *self
            .retry_at
            .get_or_insert(now.saturating_add(self.delay_ms))
    }

    /// An attempt was made: double the delay.
    fn attempted(&mut self) {
        self.retry_at = None;
        self.delay_ms = self
            .delay_ms
            .saturating_mul(2)
            .clamp(self.initial_ms, self.max_ms);
    }
}

impl Default for Backoff {
    /// From 1 s up to 60 s.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(60))
    }
}

impl<'b, S: Read + Write> Client<'b, S> {
    /// [`Client::poll`] that keeps the client connected: whenever there is no transport, it
    /// waits for `backoff`, calls `open` for a new transport and hands it to
    /// [`Client::connect`]. `open` receives the transport of the connection that ended (if
    /// any) to reuse or drop, e.g. `embassy-net`'s `TcpSocket::abort` then `connect`, or a
    /// fresh `TcpStream`.
    ///
    /// Returns every event `poll` returns, plus [`Event::Error`] with [`Error::OpenFailed`]
    /// when `open` fails (log the cause inside `open`), and the error of
    /// [`Client::connect`] if it refuses.
    ///
    /// ```no_run
    /// # async fn run<S, C>(mut client: mqtt_client_nb::Client<'_, S>, clock: C)
    /// # where S: embedded_io_async::Read + embedded_io_async::Write, C: mqtt_client_nb::Clock {
    /// # async fn open_tcp<S>() -> Result<S, ()> { Err(()) }
    /// use mqtt_client_nb::{Backoff, Event};
    ///
    /// let mut backoff = Backoff::default();
    /// loop {
    ///     match client.poll_reconnecting(&clock, &mut backoff, |_old| open_tcp()).await {
    ///         Event::Connected { .. } => { /* subscribe if !session_present */ }
    ///         Event::Data(message) => { /* handle message.topic, message.payload */ }
    ///         _ => {}
    ///     }
    /// }
    /// # }
    /// ```
    ///
    /// # Cancel safety
    /// Cancel-safe as [`Client::poll`]. The retry time is kept in `backoff`, so a cancelled
    /// wait resumes towards the same deadline. Cancelling while `open` runs drops the
    /// half-opened transport (and the old one it was given); the next call opens again
    /// without waiting.
    pub async fn poll_reconnecting<C, F, Fut, E>(
        &mut self,
        clock: &C,
        backoff: &mut Backoff,
        mut open: F,
    ) -> Event<'_>
    where
        C: Clock,
        F: FnMut(Option<S>) -> Fut,
        Fut: Future<Output = Result<S, E>>,
    {
        let this = self;
        loop {
            if this.link.live {
                let event = this.poll(clock).await;
                if matches!(event, Event::Connected { .. }) {
                    backoff.reset();
                }
                return event;
            }
            if let Some(event) = this.offline_step() {
                return this.offline_event(event);
            }
            let now = clock.now_ms();
            let due = backoff.due(now);
            if now < due {
                clock.sleep_until(due).await;
                continue;
            }
            let opened = open(this.close()).await;
            backoff.attempted();
            match opened {
                Ok(transport) => {
                    if let Err(error) = this.connect(transport) {
                        return Event::Error(error);
                    }
                }
                Err(_) => {
                    crate::fmt::warning!("mqtt: opening a transport failed");
                    return Event::Error(Error::OpenFailed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_max_and_resets_to_initial() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        assert_eq!(b.due(1000), 1000, "the first attempt is immediate");
        b.attempted();
        assert_eq!(b.due(1000), 1100);
        assert_eq!(b.due(1050), 1100, "a cancelled wait keeps its deadline");
        let delays: [u64; 4] = core::array::from_fn(|_| {
            b.attempted();
            b.delay_ms
        });
        assert_eq!(delays, [200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.delay(), Duration::from_millis(100));
    }
}
