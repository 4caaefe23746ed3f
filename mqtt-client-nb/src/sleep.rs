//! Durability on demand, and getting ready for deep sleep.

use embedded_io_async::{Read, Write};
use mqtt_sansio::session::Instant;

use crate::{Client, Clock, Error, Event, Journal};

impl<'b, S: Read + Write, J: Journal> Client<'b, S, J> {
    /// Hands what the session journaled since the last [`Client::poll`] to the journal now
    /// (a [`Client::with_journal`] client; without a journal it does nothing). A QoS 1 or 2
    /// message published before is accepted once this returns `Ok`: a reset from then on
    /// does not lose it. `poll` does the same before it transmits.
    ///
    /// # Errors
    /// [`Error::Storage`]; retry later (nothing is transmitted meanwhile).
    pub async fn persist(&mut self) -> Result<(), Error> {
        Ok(self.journal.persist(&mut self.session).await?)
    }

    /// Gets ready for deep sleep: returns once everything the client holds is either
    /// acknowledged by the broker or durably stored, with the instant (milliseconds of
    /// `clock`) at which the session needs to run next: its next keep alive PINGREQ, or a
    /// retry. `None` means nothing is due.
    ///
    /// With a journal ([`Client::with_journal`]) that is as soon as the journal holds the
    /// session ([`Client::persist`]): unacknowledged messages are resent by the session
    /// that is restored after waking. Without one it polls until the broker acknowledged
    /// every message sent and to be sent, and released every incoming QoS 2 message; events
    /// that arrive meanwhile (messages included) are acknowledged as usual but not
    /// reported, so handle what you expect first.
    ///
    /// A device that sleeps past the keep alive (one and a half times it) finds its
    /// connection closed by the broker when it wakes; [`Client::poll_reconnecting`] opens a
    /// new one and the session resumes.
    ///
    /// # Errors
    /// [`Error::Storage`] when the journal cannot be written; without a journal,
    /// [`Error::NotConnected`] when there is no connection to finish on, and the error that
    /// ends the connection while waiting.
    pub async fn flush_for_sleep<C: Clock>(&mut self, clock: &C) -> Result<Option<u64>, Error> {
        loop {
            self.persist().await?;
            if J::ENABLED || self.settled(clock) {
                return Ok(self.session.poll_timeout().map(Instant::as_millis));
            }
            if !self.link.live {
                return Err(Error::NotConnected);
            }
            if let Event::Error(error) = self.poll(clock).await {
                return Err(error);
            }
        }
    }

    /// Whether nothing waits to be sent or acknowledged, in either direction.
    fn settled<C: Clock>(&mut self, clock: &C) -> bool {
        if self.link.live {
            if let Some(error) = self.fill_tx(Instant::from_millis(clock.now_ms())) {
                crate::fmt::warning!("mqtt: {}", error);
                return false;
            }
        }
        self.tx_start == self.tx_end
            && !self.unflushed
            && self.session.inflight() == 0
            && self.session.incoming_inflight() == 0
    }
}
