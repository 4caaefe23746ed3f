//! Where the session's journal goes: the backend the client drains it into before it
//! transmits, and recovers a session from at start.
//!
//! The session decides what is recorded and when ([`mqtt_sansio::journal`]); a backend only
//! makes the records durable and hands them back. [`NoJournal`] keeps nothing (the client
//! of [`Client::new`](crate::Client::new)); with the `flash` feature,
//! [`FlashJournal`](crate::flash::FlashJournal) keeps them on NOR flash.

use mqtt_sansio::journal::JournalError;
use mqtt_sansio::session::Session;

/// Why a journal backend could not make the session's state durable, or read it back.
///
/// Reported by [`Client::poll`](crate::Client::poll) as
/// [`Error::Storage`](crate::Error::Storage). The connection stays, but nothing is
/// transmitted until the state is durable again: each `poll` retries (writing a whole
/// snapshot of the session first, since what was not written is not known record by
/// record any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StorageError {
    /// The medium is full even after compaction: the session's state (its queued messages)
    /// is larger than the journal can hold. Nothing was dropped; give the journal more
    /// room, or let acknowledgements shrink the state.
    #[error("the journal's medium is full")]
    Full,
    /// The range given to the backend is not whole erase pages, or too few of them, or its
    /// buffer too small.
    #[error("the journal's range or buffer is unusable")]
    InvalidLayout,
    /// The medium reported an error (a failed write, read or erase).
    #[error("the journal's medium failed")]
    Medium,
    /// The medium holds something the backend cannot read as a journal (not one it wrote,
    /// or damaged beyond what a cut write leaves). Erase it to start afresh.
    #[error("the journal's medium is corrupted")]
    Corrupted,
    /// A record is larger than the backend's buffer or than what the medium stores in one
    /// piece.
    #[error("journal record of {needed} bytes does not fit the {available} bytes available")]
    RecordTooLarge {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes the backend can take at once.
        available: usize,
    },
    /// A recovered record could not be applied to the session (see
    /// [`Session::restore`]): e.g. its store is smaller than the one the journal was
    /// written with.
    #[error("journal record could not be restored: {0}")]
    Restore(JournalError),
}

impl From<JournalError> for StorageError {
    fn from(e: JournalError) -> Self {
        match e {
            JournalError::BufferTooSmall { needed, available } => {
                Self::RecordTooLarge { needed, available }
            }
            other => Self::Restore(other),
        }
    }
}

/// A durable home for the session's journal.
///
/// The client calls [`Journal::recover`] once, before the first connection, and
/// [`Journal::persist`] after every input and command, before it transmits anything: so a
/// packet only leaves once the state change that caused it is durable (write-ahead). With
/// [`Journal::ENABLED`] false the session journals nothing, and `poll` does not call `persist`.
#[allow(async_fn_in_trait)]
pub trait Journal {
    /// Whether the session journals at all
    /// ([`SessionConfig::journal`](mqtt_sansio::session::SessionConfig::journal)).
    const ENABLED: bool;

    /// The largest record the backend stores in one piece, which limits the size of a
    /// message (a record holds a whole PUBLISH); `None` without a limit.
    fn max_record_len(&self) -> Option<usize>;

    /// Rebuilds `session` (new, not connected yet) from what the backend holds.
    ///
    /// # Errors
    /// A [`StorageError`] when the medium cannot be read or its records not applied.
    async fn recover<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<(), StorageError>;

    /// Makes durable what the session journaled since the last call: drains
    /// [`Session::poll_journal`], and writes a [`Session::snapshot`] when the session asks
    /// for one (or the backend needs to compact). When it returns `Ok`, the session may
    /// transmit.
    ///
    /// # Errors
    /// A [`StorageError`]; nothing may be transmitted then, and the next call retries.
    async fn persist<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<(), StorageError>;

    /// Whether everything the session handed out is durable: `false` after a failed (or
    /// cancelled) [`Journal::persist`] until one succeeds.
    fn is_durable(&self) -> bool;
}

/// No journal: the session lives in RAM only, and a reset loses it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    const ENABLED: bool = false;

    fn max_record_len(&self) -> Option<usize> {
        None
    }

    async fn recover<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        _session: &mut Session<B>,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    async fn persist<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        _session: &mut Session<B>,
    ) -> Result<(), StorageError> {
        Ok(())
    }

    fn is_durable(&self) -> bool {
        true
    }
}
