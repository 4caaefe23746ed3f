//! The session's journal on NOR flash, wear-levelled by `sequential-storage`'s queue.
//!
//! # Layout
//! The journal is a [`QueueStorage`] over a range of whole erase pages. Every call of
//! [`Journal::persist`] appends what [`Session::poll_journal`] handed out as one queue
//! item (whole records, each with its own CRC-32C, inside an item with the queue's own
//! CRC), so a burst of changes costs one item header, not one per record. The queue writes
//! pages in turn and erases a page only when every item in it was popped, so writes and
//! erases spread evenly over the range.
//!
//! # Compaction
//! When the session asks for a snapshot ([`Session::wants_snapshot`]) or less than the
//! reserve ([`FlashJournal::set_reserve`], half the range by default) is free, the whole
//! state is appended as a snapshot ([`Record::SnapshotBegin`] .. [`Record::SnapshotEnd`]),
//! and only then are the items before it popped. A power cut in between leaves the old
//! records and a snapshot that is complete or not: recovery ([`Scan`]) applies the last
//! complete snapshot and what follows it, or, for a cut snapshot, what precedes it, then
//! finishes the interrupted compaction (or writes a fresh snapshot, so that later records
//! never follow a cut one).
//!
//! # Guarantee
//! A QoS 1 or 2 message is *accepted* once the item holding its [`Record::Queued`] is
//! written: after the [`Journal::persist`] (a [`Client::poll`](crate::Client::poll), or
//! [`Client::persist`](crate::Client::persist)) that follows the publish returned. From
//! then on a reset at any point (a write or erase cut in the middle included) recovers a
//! session that delivers it, until the broker acknowledged it. A recovered session never
//! sends a message that was not published, never sends again as PUBLISH a QoS 2 message
//! whose PUBREL went out, and keeps suppressing incoming QoS 2 messages whose PUBREC went
//! out until their PUBREL. Nothing is dropped when the flash is full: [`Journal::persist`]
//! fails with [`StorageError::Full`] and the client transmits nothing until it succeeds.

use core::ops::Range;

use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use mqtt_sansio::journal::{Record, Replay, Scan};
use mqtt_sansio::session::Session;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};

use crate::journal::{Journal, StorageError};

type Queue<F> = QueueStorage<F, Cache<Uncached, Uncached, Uncached>>;

/// The session's journal in a range of NOR flash: a [`Journal`] for
/// [`Client::with_journal`](crate::Client::with_journal).
///
/// `F` is the HAL's flash (`esp_storage::FlashStorage` through an async wrapper,
/// `embassy_stm32::flash::Flash`, ...) or `&mut` one; it must allow writing a word twice
/// ([`MultiwriteNorFlash`]), which the queue uses to mark items popped.
///
/// `buf` holds the records on their way to flash and the items read back at recovery: it
/// must hold the largest record, that is the largest PUBLISH the application sends plus 12
/// bytes (the client refuses larger messages). Items are at most this long (and at most a
/// page), so a larger buffer packs more records of a burst into one item.
///
/// Give it at least two pages and twice the session's store: a snapshot is written before
/// the records it supersedes are erased.
pub struct FlashJournal<'a, F: NorFlash> {
    queue: Queue<F>,
    buf: &'a mut [u8],
    /// Longest item: the buffer, in whole words, and at most what a page holds.
    item_len: usize,
    /// Items in the queue.
    items: usize,
    /// Records were taken from the session and are not durable (a failed or cancelled
    /// write), or a cut snapshot ends the journal: a whole snapshot goes first.
    behind: bool,
    /// Free bytes of the queue after the last write.
    free: u32,
    /// Compact once fewer bytes are free.
    reserve: u32,
    /// Free bytes right after the last compaction: a state that takes more than the
    /// reserve leaves less, and compacting again before half of that is used would write
    /// snapshot after snapshot.
    floor: u32,
    /// Pack each `persist`'s records into one item (else one item per record).
    pack: bool,
    /// Snapshots written.
    compactions: u32,
}

impl<'a, F: NorFlash + MultiwriteNorFlash> FlashJournal<'a, F> {
    /// A journal in `range` of `flash` (whole erase pages, at least two), with `buf` for its
    /// records. Nothing is read until [`Journal::recover`].
    ///
    /// # Errors
    /// [`StorageError::InvalidLayout`] when `range` is not whole pages of `flash`, fewer than
    /// two, or `buf` holds less than a small record.
    pub fn new(flash: F, range: Range<u32>, buf: &'a mut [u8]) -> Result<Self, StorageError> {
        let pages = (range.end.saturating_sub(range.start)) as usize / F::ERASE_SIZE;
        let config = QueueConfig::try_new(range).map_err(|_| StorageError::InvalidLayout)?;
        let page_data = F::ERASE_SIZE - 2 * word::<F>() - Queue::<F>::item_overhead_size() as usize;
        let item_len = (buf.len() / word::<F>() * word::<F>()).min(page_data);
        if pages < 2 || item_len < 16 {
            return Err(StorageError::InvalidLayout);
        }
        let capacity = (pages * (F::ERASE_SIZE - 2 * word::<F>())) as u32;
        Ok(Self {
            queue: QueueStorage::new(flash, config, Cache::new_uncached()),
            buf,
            item_len,
            items: 0,
            behind: false,
            free: capacity,
            reserve: capacity / 2,
            floor: capacity,
            pack: true,
            compactions: 0,
        })
    }

    /// Compacts once fewer than `bytes` of the range are free (half the range by default):
    /// the room a snapshot of the whole state is written into. Larger compacts more often
    /// (a snapshot each time); smaller risks [`StorageError::Full`] with a large state.
    pub fn set_reserve(&mut self, bytes: u32) {
        self.reserve = bytes;
    }

    /// Whether the records of one `persist` share a queue item (the default), or each
    /// record takes an item of its own. Packing saves an item header (8 bytes) and the
    /// padding to a word per record whenever several records are written at once; it is
    /// here to measure the difference.
    pub fn set_packing(&mut self, pack: bool) {
        self.pack = pack;
    }

    /// Free bytes of the range, as measured after the last write.
    pub fn free(&self) -> u32 {
        self.free
    }

    /// Snapshots written since the journal was created.
    pub fn compactions(&self) -> u32 {
        self.compactions
    }

    /// The flash, e.g. to read statistics of a test double.
    pub fn flash(&mut self) -> &mut F {
        self.queue.flash()
    }

    /// Erases the whole range: the journal starts empty (the session it held is gone).
    ///
    /// # Errors
    /// [`StorageError::Medium`] when an erase fails.
    pub async fn erase(&mut self) -> Result<(), StorageError> {
        self.queue.erase_all().await.map_err(storage)?;
        self.items = 0;
        self.behind = false;
        self.free = self.queue.space_left().await.map_err(storage)?;
        Ok(())
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.queue.destroy().0
    }

    /// Bytes `len` bytes of records may take at most: an item header and the padding of
    /// each item, and the end of a page that cannot hold the next item.
    fn cost(&self, len: usize) -> u32 {
        let items = if self.pack { 1 } else { len.div_ceil(8) };
        let overhead = Queue::<F>::item_overhead_size() as usize + word::<F>();
        (2 * (len + items * overhead)) as u32
    }

    /// Compaction is due once fewer bytes are free: the reserve, or half of what the last
    /// compaction left when the state is larger than the reserve (else snapshot would
    /// follow snapshot); at least the room of two whole items.
    fn low_water(&self) -> u32 {
        let items = 2 * (self.item_len + Queue::<F>::item_overhead_size() as usize) as u32;
        self.reserve.min(self.floor / 2).max(items)
    }

    /// Appends `buf[..len]` as one item.
    async fn push(&mut self, len: usize) -> Result<(), StorageError> {
        self.queue
            .push(&self.buf[..len], false)
            .await
            .map_err(storage)?;
        self.items += 1;
        Ok(())
    }

    /// Appends the records in `buf[..len]`: one item, or one per record without packing.
    async fn push_records(&mut self, len: usize) -> Result<(), StorageError> {
        if self.pack {
            return self.push(len).await;
        }
        let mut at = 0;
        while at < len {
            let n = match Record::decode(&self.buf[at..len]) {
                Ok(Some((_, n))) => n,
                _ => return Err(StorageError::Corrupted),
            };
            self.buf.copy_within(at..at + n, 0);
            // The records after it lie beyond `at + n`, untouched.
            self.push(n).await?;
            at += n;
        }
        Ok(())
    }

    /// Appends a snapshot of `session`'s whole state, then pops the items before it.
    async fn compact<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<(), StorageError> {
        self.behind = true;
        // What waits is part of the state the snapshot describes.
        while session.poll_journal(&mut self.buf[..self.item_len])? > 0 {}
        let before = self.items;
        let cap = self.item_len;
        let mut at = 0;
        for record in session.snapshot() {
            let len = record.encoded_len();
            if at + len > cap {
                if at == 0 {
                    return Err(StorageError::RecordTooLarge {
                        needed: len,
                        available: cap,
                    });
                }
                self.push(at).await?;
                at = 0;
            }
            at += record.encode(&mut self.buf[at..cap])?;
        }
        self.push(at).await?;
        self.behind = false;
        self.compactions = self.compactions.wrapping_add(1);
        crate::fmt::debug!("mqtt: journal compacted, {} items superseded", before);
        self.pop(before).await?;
        self.free = self.queue.space_left().await.map_err(storage)?;
        self.floor = self.free;
        Ok(())
    }

    /// Pops `n` items from the front.
    async fn pop(&mut self, n: usize) -> Result<(), StorageError> {
        for _ in 0..n {
            if self.queue.pop(self.buf).await.map_err(storage)?.is_none() {
                break;
            }
            self.items -= 1;
        }
        Ok(())
    }

    /// Reads every item in order and hands each record, with its index, to `f`; returns
    /// how many records and items there were, and the index of the item holding the start
    /// of the last complete snapshot (as [`Scan`] decides).
    async fn read_all(
        &mut self,
        mut f: impl FnMut(usize, &Record<'_>) -> Result<(), StorageError>,
    ) -> Result<(usize, usize, usize), StorageError> {
        let (mut records, mut items) = (0, 0);
        let (mut open_item, mut start_item) = (None, 0);
        let mut iter = self.queue.iter().await.map_err(storage)?;
        while let Some(entry) = iter.next(self.buf).await.map_err(storage)? {
            items += 1;
            // The queue's CRC-32 cannot tell a cut item from a whole one when the item is
            // records that end in their own CRC-32C (the same polynomial: every such item
            // has the same queue CRC as an unwritten one of its length). The records'
            // checksums can: an item is applied whole, or not at all.
            let mut replay = Replay::new(&entry);
            if replay.by_ref().count() == 0 || replay.stop().is_some() {
                crate::fmt::debug!("mqtt: journal item {} was cut, skipped", items);
                continue;
            }
            for record in Replay::new(&entry) {
                match record {
                    Record::SnapshotBegin => open_item = Some(items - 1),
                    Record::SnapshotEnd => start_item = open_item.take().unwrap_or(start_item),
                    _ => {}
                }
                f(records, &record)?;
                records += 1;
            }
        }
        Ok((records, items, start_item))
    }
}

impl<F: NorFlash + MultiwriteNorFlash> Journal for FlashJournal<'_, F> {
    const ENABLED: bool = true;

    fn max_record_len(&self) -> Option<usize> {
        Some(self.item_len)
    }

    async fn recover<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<(), StorageError> {
        let mut scan = Scan::new();
        let (records, items, start_item) = self
            .read_all(|_, r| {
                scan.see(r);
                Ok(())
            })
            .await?;
        let range = scan.range();
        self.read_all(|i, r| {
            if range.contains(&i) {
                session.restore(r).map_err(StorageError::Restore)?;
            }
            Ok(())
        })
        .await?;
        self.items = items;
        crate::fmt::debug!(
            "mqtt: journal recovered, {} of {} records in {} items",
            range.len(),
            records,
            items
        );
        // A compaction that was cut after its snapshot: drop what it supersedes.
        self.pop(start_item).await?;
        self.free = self.queue.space_left().await.map_err(storage)?;
        // Compact once half of what is left is used, as after a compaction.
        self.floor = self.free;
        if range.end < records {
            // A cut snapshot ends the journal: records after it would be ignored, so a
            // complete one goes first.
            self.compact(session).await?;
        }
        Ok(())
    }

    async fn persist<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<(), StorageError> {
        while !self.behind {
            // Until they are written, taken records exist nowhere else. Nothing was taken
            // when this fails: all before it is written.
            let n = session.poll_journal(&mut self.buf[..self.item_len])?;
            if n == 0 {
                break;
            }
            self.behind = true;
            if self.free < self.cost(n) + self.low_water() {
                // The room left is the snapshot's, which holds these records too.
                break;
            }
            match self.push_records(n).await {
                Ok(()) => self.behind = false,
                Err(StorageError::Full) => break,
                Err(e) => return Err(e),
            }
            self.free = self.queue.space_left().await.map_err(storage)?;
        }
        if self.behind || session.wants_snapshot() || self.free < self.low_water() {
            self.compact(session).await?;
        }
        Ok(())
    }

    fn is_durable(&self) -> bool {
        !self.behind
    }
}

impl<F: NorFlash> core::fmt::Debug for FlashJournal<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlashJournal")
            .field("items", &self.items)
            .field("free", &self.free)
            .field("reserve", &self.reserve)
            .field("behind", &self.behind)
            .finish_non_exhaustive()
    }
}

/// The unit the queue aligns to (as `sequential-storage` computes it).
const fn word<F: NorFlash>() -> usize {
    if F::READ_SIZE > F::WRITE_SIZE {
        F::READ_SIZE
    } else {
        F::WRITE_SIZE
    }
}

/// The storage error for one of `sequential-storage`.
fn storage<E>(e: sequential_storage::Error<E>) -> StorageError {
    match e {
        sequential_storage::Error::FullStorage => StorageError::Full,
        sequential_storage::Error::Storage { .. } => StorageError::Medium,
        sequential_storage::Error::ItemTooBig => StorageError::RecordTooLarge {
            needed: 0,
            available: 0,
        },
        sequential_storage::Error::BufferTooSmall(needed) => StorageError::RecordTooLarge {
            needed,
            available: 0,
        },
        _ => StorageError::Corrupted,
    }
}
