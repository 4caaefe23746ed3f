//! The session's journal in a directory: what keeps QoS 1 and 2 promises across a crash.
//!
//! The directory holds `journal`, the records the session hands out
//! ([`Session::poll_journal`](mqtt_sansio::session::Session::poll_journal)), appended in
//! order, and `lock`, held with an exclusive lock while a client uses the directory. On open,
//! the records from the last snapshot on are applied to a new session, and the file is
//! rewritten as one snapshot (a new file renamed over the old, then the directory synced), so
//! that a torn tail never sits between whole records. The file is compacted the same way once
//! it has grown to four times its last snapshot.
//!
//! Writing is the driver's, off the runtime's threads (`spawn_blocking`), and always before
//! the packets those records cover go out: the session itself sends nothing while records
//! wait. What "durable" means is the [`SyncPolicy`]'s.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_sansio::journal::{JournalError, Record, Replay, Scan};
use mqtt_sansio::session::Session;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::options::{Persistence, SyncPolicy};
use crate::Error;

const JOURNAL: &str = "journal";
const TEMPORARY: &str = "journal.new";
const LOCK: &str = "lock";
/// The journal is compacted once it is this many times its last snapshot, and at least
/// [`MIN_COMPACT`] long.
const COMPACT_FACTOR: u64 = 4;
const MIN_COMPACT: u64 = 256 * 1024;

/// Bytes for the journal, in the order they go to the file.
enum Segment {
    Append(Vec<u8>),
    /// A snapshot that replaces the whole file.
    Replace(Vec<u8>),
}

/// The journal of one client: the open file, what waits to be written, and who waits for
/// it.
pub(crate) struct FileJournal {
    dir: PathBuf,
    /// Held for the life of the client: a second process on the directory is refused.
    _lock: File,
    /// The file appended to. Shared with a write that runs off the runtime: appends may go
    /// on beside its sync, but not beside a snapshot that replaces the file.
    file: Arc<File>,
    /// A write runs off the runtime, and whether it replaces the file.
    busy: Option<bool>,
    sync: SyncPolicy,
    segments: Vec<Segment>,
    /// Bytes ever handed to the journal (snapshots included), how many of them reached the
    /// operating system, and how many are synced.
    handed: u64,
    written: u64,
    synced: u64,
    /// Publishes waiting until the journal is durable up to a position.
    waiters: VecDeque<(u64, oneshot::Sender<()>)>,
    /// Length of the file, with what waits to be appended.
    file_len: u64,
    snapshot_len: u64,
    /// When writes not yet synced began (periodic sync).
    unsynced_since: Option<Instant>,
    /// Scratch the session writes records into.
    scratch: Vec<u8>,
}

/// A write of the journal, carried out off the runtime by [`Work::run`].
pub(crate) struct Work {
    dir: PathBuf,
    file: Arc<File>,
    segments: Vec<Segment>,
    sync: bool,
    /// The position the journal is durable at once the work is done.
    end: u64,
}

/// Appends up to this many bytes without a sync are written on the driver's own thread: a
/// copy into the page cache costs microseconds, a hop to the blocking pool tens of them.
const INLINE_BYTES: usize = 64 * 1024;

impl Work {
    /// Whether the work is cheap enough to run on the runtime's thread: appends only, no
    /// sync, at most [`INLINE_BYTES`].
    pub(crate) fn inline(&self) -> bool {
        let mut bytes = 0;
        !self.sync
            && self.segments.iter().all(|s| match s {
                Segment::Append(b) => {
                    bytes += b.len();
                    bytes <= INLINE_BYTES
                }
                Segment::Replace(_) => false,
            })
    }

    /// Writes the segments in order, a snapshot through a renamed file, and syncs if asked.
    pub(crate) fn run(mut self) -> io::Result<Self> {
        for segment in std::mem::take(&mut self.segments) {
            match segment {
                Segment::Append(bytes) => (&*self.file).write_all(&bytes)?,
                Segment::Replace(bytes) => {
                    self.file = Arc::new(replace(&self.dir, &bytes, self.sync)?);
                }
            }
        }
        if self.sync {
            self.file.sync_data()?;
        }
        Ok(self)
    }
}

/// Writes `bytes` as the new journal: a temporary file, synced, renamed over the old one,
/// and the directory synced so that the rename itself survives a power cut (unless `sync`
/// is off, when the operating system decides).
fn replace(dir: &Path, bytes: &[u8], sync: bool) -> io::Result<File> {
    let temporary = dir.join(TEMPORARY);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_data()?;
    }
    std::fs::rename(&temporary, dir.join(JOURNAL))?;
    if sync {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(dir.join(JOURNAL))
}

impl FileJournal {
    /// Opens (or creates) the directory, locks it, and restores `session` from its journal;
    /// `grow` makes the session's store larger when the recovered queue needs it. Returns the
    /// journal and how many messages came back.
    ///
    /// Blocks on the file system: a client is created once, and recovery is bounded by the
    /// size of the journal.
    pub(crate) fn open(
        persistence: &Persistence,
        session: &mut Session<Vec<u8>>,
        mut grow: impl FnMut(&mut Session<Vec<u8>>, usize) -> bool,
    ) -> Result<(Self, usize), Error> {
        let dir = persistence.dir.clone();
        std::fs::create_dir_all(&dir).map_err(persist_error)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK))
            .map_err(persist_error)?;
        if let Err(e) = lock.try_lock() {
            let reason = match e {
                std::fs::TryLockError::WouldBlock => io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another client", dir.display()),
                ),
                std::fs::TryLockError::Error(e) => e,
            };
            return Err(persist_error(reason));
        }
        let mut bytes = Vec::new();
        match File::open(dir.join(JOURNAL)) {
            Ok(mut f) => {
                f.read_to_end(&mut bytes).map_err(persist_error)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(persist_error(e)),
        }
        let mut replay = Replay::new(&bytes);
        let records: Vec<Record<'_>> = replay.by_ref().collect();
        if let Some(stop) = replay.stop() {
            warn!(
                ?stop,
                valid = replay.valid_len(),
                len = bytes.len(),
                "journal ends in an incomplete or damaged record: recovering up to it"
            );
        }
        let mut scan = Scan::new();
        records.iter().for_each(|r| scan.see(r));
        for record in &records[scan.range()] {
            loop {
                match session.restore(record) {
                    Ok(()) => break,
                    Err(JournalError::StoreFull { needed, .. }) if grow(session, needed) => {}
                    Err(e) => {
                        return Err(persist_error(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("cannot restore the session from its journal: {e}"),
                        )))
                    }
                }
            }
        }
        let restored = records[scan.range()]
            .iter()
            .filter(|r| matches!(r, Record::Queued { .. }))
            .count();
        // Start from one snapshot of what was recovered.
        let snapshot = encode_snapshot(session);
        let file = replace(&dir, &snapshot, persistence.sync != SyncPolicy::Never)
            .map_err(persist_error)?;
        let len = snapshot.len() as u64;
        let journal = Self {
            dir,
            _lock: lock,
            file: Arc::new(file),
            busy: None,
            sync: persistence.sync,
            segments: Vec::new(),
            handed: len,
            written: len,
            synced: len,
            waiters: VecDeque::new(),
            file_len: len,
            snapshot_len: len,
            unsynced_since: None,
            scratch: vec![0; 1024],
        };
        if !records.is_empty() {
            info!(
                records = records.len(),
                messages = restored,
                "session recovered from its journal"
            );
        }
        Ok((journal, restored))
    }

    /// Takes what the session journaled since the last call (and a snapshot when it asks
    /// for one, or when the file has grown enough to compact). Call before every
    /// `poll_transmit`.
    pub(crate) fn drain(&mut self, session: &mut Session<Vec<u8>>) {
        loop {
            match session.poll_journal(&mut self.scratch) {
                Ok(0) => break,
                Ok(n) => self.append(n),
                Err(JournalError::BufferTooSmall { needed, .. }) => {
                    let len = needed.max(self.scratch.len() * 2);
                    self.scratch.resize(len, 0);
                }
                Err(e) => {
                    warn!(error = %e, "journal record not written");
                    break;
                }
            }
        }
        let compact = self.file_len > MIN_COMPACT.max(COMPACT_FACTOR * self.snapshot_len);
        if session.wants_snapshot() || compact {
            let snapshot = encode_snapshot(session);
            debug!(len = snapshot.len(), "journal snapshot");
            self.handed += snapshot.len() as u64;
            self.file_len = snapshot.len() as u64;
            self.snapshot_len = self.file_len;
            self.segments.push(Segment::Replace(snapshot));
        }
    }

    fn append(&mut self, n: usize) {
        let bytes = &self.scratch[..n];
        match self.segments.last_mut() {
            Some(Segment::Append(buf)) => buf.extend_from_slice(bytes),
            _ => self.segments.push(Segment::Append(bytes.to_vec())),
        }
        self.handed += n as u64;
        self.file_len += n as u64;
    }

    /// Bytes as durable as the policy promises.
    fn durable(&self) -> u64 {
        match self.sync {
            SyncPolicy::Always => self.synced,
            // Written counts for a crash of the process.
            _ => self.written,
        }
    }

    /// Writes what waits to the operating system now, on the calling thread, unless a
    /// snapshot is involved (then the driver does it): a write to the page cache, no sync.
    /// Acknowledging a received message does this, so that its record is safe from a crash
    /// of the process microseconds after the application handled the message, instead of a
    /// round through the driver and a sync later.
    ///
    /// # Errors
    /// The write failed; the client must stop.
    pub(crate) fn write_through(&mut self, session: &mut Session<Vec<u8>>) -> io::Result<()> {
        self.drain(session);
        let appends_only = self
            .segments
            .iter()
            .all(|s| matches!(s, Segment::Append(_)));
        if self.busy == Some(true) || !appends_only || self.segments.is_empty() {
            return Ok(());
        }
        for segment in std::mem::take(&mut self.segments) {
            if let Segment::Append(bytes) = segment {
                (&*self.file).write_all(&bytes)?;
            }
        }
        self.written = self.handed;
        if self.sync != SyncPolicy::Never {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        self.wake_waiters();
        Ok(())
    }

    fn wake_waiters(&mut self) {
        let durable = self.durable();
        while let Some((at, _)) = self.waiters.front() {
            if *at > durable {
                break;
            }
            if let Some((_, tx)) = self.waiters.pop_front() {
                let _ = tx.send(());
            }
        }
    }

    /// Completes `tx` once everything handed so far is durable.
    pub(crate) fn notify_stored(&mut self, tx: oneshot::Sender<()>) {
        if self.durable() >= self.handed {
            let _ = tx.send(());
        } else {
            self.waiters.push_back((self.handed, tx));
        }
    }

    /// The next write to carry out, if any: waiting segments, or a sync the policy owes.
    pub(crate) fn work(&mut self) -> Option<Work> {
        if self.busy.is_some() {
            return None;
        }
        let unsynced = self.synced < self.handed;
        let sync = match self.sync {
            SyncPolicy::Always => unsynced,
            SyncPolicy::Periodic(every) => {
                unsynced
                    && self
                        .unsynced_since
                        .is_some_and(|since| since.elapsed() >= every)
            }
            SyncPolicy::Never => false,
        };
        if self.segments.is_empty() && !sync {
            return None;
        }
        let segments = std::mem::take(&mut self.segments);
        self.busy = Some(segments.iter().any(|s| matches!(s, Segment::Replace(_))));
        Some(Work {
            dir: self.dir.clone(),
            file: Arc::clone(&self.file),
            segments,
            sync,
            end: self.handed,
        })
    }

    /// A write finished: the file comes back (a new one after a snapshot), and publishes
    /// stored up to its end complete.
    pub(crate) fn done(&mut self, work: Work) {
        self.file = work.file;
        self.busy = None;
        self.written = self.written.max(work.end);
        if work.sync {
            // Everything written before the sync began is synced; later write-throughs wait
            // for the next one.
            self.synced = self.synced.max(work.end);
            if self.written <= self.synced {
                self.unsynced_since = None;
            }
        } else if self.sync != SyncPolicy::Never {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        self.wake_waiters();
    }

    /// A write failed: whatever it held is not durable, and the client stops.
    pub(crate) fn failed(&mut self) {
        self.busy = None;
    }

    /// Writes (and syncs, unless the policy never does) what waits, on the calling thread:
    /// the client is stopping. Waiters not completed by it learn the stop reason.
    pub(crate) fn close(mut self, session: &mut Session<Vec<u8>>) {
        self.drain(session);
        let work = Work {
            dir: self.dir.clone(),
            file: Arc::clone(&self.file),
            segments: std::mem::take(&mut self.segments),
            sync: self.sync != SyncPolicy::Never,
            end: self.handed,
        };
        match work.run() {
            Ok(work) => self.done(work),
            Err(e) => warn!(error = %e, "journal not written at stop"),
        }
    }

    /// When a periodic sync is owed.
    pub(crate) fn sync_at(&self) -> Option<Instant> {
        match self.sync {
            SyncPolicy::Periodic(every) => self.unsynced_since.map(|t| t + every),
            _ => None,
        }
    }
}

/// The session's whole state as journal records, from `SnapshotBegin` to `SnapshotEnd`.
fn encode_snapshot(session: &mut Session<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in session.snapshot() {
        let at = out.len();
        out.resize(at + record.encoded_len(), 0);
        // Sized by encoded_len: cannot fail.
        let _ = record.encode(&mut out[at..]);
    }
    out
}

/// The error a client stops with when its journal cannot be read or written.
pub(crate) fn persist_error(e: io::Error) -> Error {
    Error::Persistence(std::sync::Arc::new(e))
}

/// Checks the policy's interval.
pub(crate) fn check(persistence: &Persistence) -> Result<(), Error> {
    if let SyncPolicy::Periodic(every) = persistence.sync {
        if every.is_zero() || every > Duration::from_secs(3600) {
            return Err(Error::InvalidOptions(
                "SyncPolicy::Periodic needs an interval between 1 ms and 1 hour".into(),
            ));
        }
    }
    Ok(())
}
