//! The outgoing store: a log of encoded packets in a region of the caller's buffer.
//!
//! Every packet that waits to be sent or acknowledged (PUBLISH at any QoS, PUBREL, SUBSCRIBE,
//! UNSUBSCRIBE, the session's own renewal SUBSCRIBEs) is a record: a 12-byte header followed by the encoded packet. The header holds
//! the entry's state as data (kind, state, packet id, QoS, whether it was ever transmitted, how
//! often the broker refused it, whether it is encoded as 5.0); the encoded bytes are only ever copied out, never read back
//! for state. A stored PUBLISH always has DUP clear: the transmit path sets it on the copy. Records are appended in command order, which is the order they are first
//! sent in and so the order they are resent in [MQTT-4.6.0-1]. Finished records are marked
//! dead and reclaimed from the front, or by compaction when an append does not fit.
//!
//! Two things keep the cost of a packet independent of how many wait behind it:
//! - an optional packet-id index at the front of the region, direct-mapped (`pid % slots`),
//!   from a packet identifier to the record that waits for its acknowledgement: a PUBACK,
//!   PUBREC, PUBCOMP or SUBACK finds its record without walking the queue. A slot is only a
//!   hint, checked against the record it names; a miss walks the log as before;
//! - a second cursor for what a full window does not hold back (everything but a QoS 1 or 2
//!   PUBLISH): a PUBREL appended behind a long queue is found without walking the queue.

use crate::session::CommandError;
use crate::QoS;

pub(crate) const HEADER: usize = 12;

/// Bits of the header's last byte.
const V5: u8 = 1;
const STREAMED: u8 = 2;
/// Handed to the journal ([`Log::next_unjournaled`]).
const JOURNALED: u8 = 4;
/// Identifiers of journaled records that died, kept until the journal takes them.
const GONE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// QoS 0 PUBLISH: sent once, then dropped.
    Publish0 = 1,
    /// QoS 1 or 2 PUBLISH: kept until acknowledged.
    Publish = 2,
    /// PUBREL of an outgoing QoS 2 message: kept until PUBCOMP.
    PubRel = 3,
    /// SUBSCRIBE: kept until SUBACK.
    Subscribe = 4,
    /// UNSUBSCRIBE: kept until UNSUBACK.
    Unsubscribe = 5,
    /// SUBSCRIBE the session queued to renew kept subscriptions: kept until SUBACK, and sent
    /// before anything else queued.
    Resubscribe = 6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Dead = 0,
    /// Waits to be transmitted (for the first time, or again after a reconnect).
    Unsent = 1,
    /// Transmitted, waits for its acknowledgement.
    Sent = 2,
    /// Dropped with the broker's session; waits to be reported to the application.
    Abandoned = 3,
    /// Refused by the broker with a transient reason (quota exceeded, server busy): sent
    /// again, as a new delivery, once the session's retry deadline passes.
    Delayed = 4,
    /// A renewal SUBSCRIBE whose SUBACK was just read: its filters stay readable for the
    /// event until the next input.
    Answered = 5,
}

/// What a new record holds besides its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    pub(crate) state: State,
    pub(crate) pid: u16,
    /// QoS of a PUBLISH (QoS 0 for other kinds).
    pub(crate) qos: QoS,
    /// Encoded as 5.0 (else 3.1.1, whose packets 3.1 shares): a session that falls back to
    /// 3.1.1 re-encodes what it queued before.
    pub(crate) v5: bool,
    /// A PUBLISH whose payload is not stored: the record holds its header only (the fixed
    /// header counting the whole payload), and the driver supplies the payload.
    pub(crate) streamed: bool,
}

/// A record's header, read from the region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// Offset of the header in the region.
    pub(crate) at: usize,
    /// Length of the encoded packet.
    pub(crate) len: usize,
    pub(crate) kind: Kind,
    pub(crate) state: State,
    pub(crate) pid: u16,
    /// QoS of a PUBLISH (QoS 0 for other kinds).
    pub(crate) qos: QoS,
    /// Transmitted at least once, on this or an earlier connection: a resend carries DUP, and
    /// a broker that loses the session may have delivered it.
    pub(crate) sent_before: bool,
    /// Times the broker refused it with a transient reason code.
    pub(crate) refusals: u8,
    /// Encoded as 5.0.
    pub(crate) v5: bool,
    /// Holds a PUBLISH's header only; the payload comes from the driver.
    pub(crate) streamed: bool,
    /// Handed to the journal.
    pub(crate) journaled: bool,
}

impl Record {
    pub(crate) fn next(&self) -> usize {
        self.at + HEADER + self.len
    }

    /// Length of the packet on the wire: the stored bytes, or for a streamed PUBLISH its
    /// header and the payload the driver supplies.
    pub(crate) fn wire_len(&self, region: &[u8]) -> usize {
        if !self.streamed {
            return self.len;
        }
        match crate::FixedHeader::decode(self.packet(region)) {
            Ok(Some(h)) => h.packet_len(),
            _ => self.len,
        }
    }

    pub(crate) fn packet<'r>(&self, region: &'r [u8]) -> &'r [u8] {
        region
            .get(self.at + HEADER..self.next())
            .unwrap_or_default()
    }

    /// Number of filters of a SUBSCRIBE or UNSUBSCRIBE record, counted from their length
    /// prefixes rather than decoded: the session encoded the record itself, so there is
    /// nothing to check, and a build that never reads these records back otherwise (without
    /// `v5` and `subscription-renewal`) links no SUBSCRIBE or UNSUBSCRIBE decoder. 0 should
    /// the record not parse, as a failed decode gave.
    pub(crate) fn request_len(&self, region: &[u8]) -> usize {
        let bytes = self.packet(region);
        let Ok(Some(header)) = crate::FixedHeader::decode(bytes) else {
            return 0;
        };
        // After the packet identifier: a 5.0 record's properties, then the entries.
        let mut rest = bytes
            .get(usize::from(header.header_len) + 2..)
            .unwrap_or_default();
        if cfg!(feature = "v5") && self.v5 {
            let Ok((after, len)) = crate::wire::var_int(rest) else {
                return 0;
            };
            rest = after.get(len as usize..).unwrap_or_default();
        }
        // A SUBSCRIBE's filter is followed by its options byte.
        let options = usize::from(self.kind != Kind::Unsubscribe);
        let mut count = 0;
        while let [high, low, entries @ ..] = rest {
            let len = usize::from(u16::from_be_bytes([*high, *low])) + options;
            let Some(after) = entries.get(len..) else {
                return 0;
            };
            rest = after;
            count += 1;
        }
        if rest.is_empty() {
            count
        } else {
            0
        }
    }
}

/// Bytes of one packet-id index slot: the packet identifier and the record's offset.
pub(crate) const SLOT: usize = 6;

/// Offsets of the log inside its region. All records lie in `head..tail`, after the index.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Slots of the packet-id index at the front of the region (0: no index).
    slots: usize,
    head: usize,
    tail: usize,
    /// No record before it is `Unsent`.
    cursor: usize,
    /// No `Unsent` record that a full window does not hold back (anything but a QoS 1 or 2
    /// PUBLISH) lies before it.
    unblocked: usize,
    /// Bytes of dead records still between `head` and `tail`.
    dead: usize,
    /// Changes on every append and state change, so a caller can tell that nothing changed.
    generation: u32,
    /// No record before it waits to be journaled.
    journal: usize,
    /// Packet identifiers of journaled records that died since the journal last took them.
    gone: [u16; GONE],
    gone_len: usize,
    /// More died than `gone` holds: only a snapshot describes the log now.
    gone_overflow: bool,
}

/// The record at `at`, if `at` is before `tail`, the end of the log.
fn record_before(region: &[u8], at: usize, tail: usize) -> Option<Record> {
    if at >= tail {
        return None;
    }
    let h = region.get(at..at + HEADER)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    Some(Record {
        at,
        len,
        kind: kind_from(h[4])?,
        state: state_from(h[5]),
        pid: u16::from_le_bytes([h[6], h[7]]),
        qos: QoS::from_u8(h[8]).unwrap_or(QoS::AtMostOnce),
        sent_before: h[9] != 0,
        refusals: h[10],
        v5: h[11] & V5 != 0,
        streamed: h[11] & STREAMED != 0,
        journaled: h[11] & JOURNALED != 0,
    })
}

fn kind_from(b: u8) -> Option<Kind> {
    Some(match b {
        1 => Kind::Publish0,
        2 => Kind::Publish,
        3 => Kind::PubRel,
        4 => Kind::Subscribe,
        5 => Kind::Unsubscribe,
        6 => Kind::Resubscribe,
        _ => return None,
    })
}

fn state_from(b: u8) -> State {
    match b {
        1 => State::Unsent,
        2 => State::Sent,
        3 => State::Abandoned,
        4 => State::Delayed,
        5 => State::Answered,
        _ => State::Dead,
    }
}

/// Whether a full in-flight window holds a record of this kind back.
fn window_bound(kind: Kind) -> bool {
    kind == Kind::Publish
}

impl Log {
    /// An empty log whose region starts with a packet-id index of `slots` slots.
    pub(crate) fn new(slots: usize) -> Self {
        let base = slots * SLOT;
        Self {
            slots,
            head: base,
            tail: base,
            cursor: base,
            unblocked: base,
            dead: 0,
            generation: 0,
            journal: base,
            gone: [0; GONE],
            gone_len: 0,
            gone_overflow: false,
        }
    }

    /// Where records start: after the index.
    fn base(&self) -> usize {
        self.slots * SLOT
    }

    /// Bytes the records can use.
    pub(crate) fn capacity(&self, region: &[u8]) -> usize {
        region.len().saturating_sub(self.base())
    }

    /// Points the index slot of `pid` at the record at `at`.
    fn index(&self, region: &mut [u8], pid: u16, at: usize) {
        if self.slots == 0 || pid == 0 {
            return;
        }
        let slot = usize::from(pid) % self.slots * SLOT;
        let Ok(at) = u32::try_from(at) else {
            return;
        };
        if let Some(s) = region.get_mut(slot..slot + SLOT) {
            s[..2].copy_from_slice(&pid.to_le_bytes());
            s[2..].copy_from_slice(&at.to_le_bytes());
        }
    }

    /// Empties the index: records moved.
    fn clear_index(&self, region: &mut [u8]) {
        // Guarded: a log without an index empties after every QoS 0 publish.
        if self.slots == 0 {
            return;
        }
        if let Some(index) = region.get_mut(..self.base()) {
            index.fill(0);
        }
    }

    /// The live record of `kind` for `pid` that waits for its acknowledgement (`Sent`): from
    /// the index when its slot names it, else by walking the log (and then remembered).
    pub(crate) fn find_sent(&self, region: &mut [u8], kind: Kind, pid: u16) -> Option<Record> {
        let wanted = |r: &Record| r.kind == kind && r.pid == pid && r.state == State::Sent;
        if self.slots > 0 {
            let slot = usize::from(pid) % self.slots * SLOT;
            if let Some(s) = region.get(slot..slot + SLOT) {
                let at = u32::from_le_bytes([s[2], s[3], s[4], s[5]]) as usize;
                // Only offsets of the live range are record boundaries: compaction, the only
                // move, empties the index.
                if u16::from_le_bytes([s[0], s[1]]) == pid && at >= self.head {
                    if let Some(r) = self.record(region, at).filter(wanted) {
                        return Some(r);
                    }
                }
            }
        }
        let found = self.find(region, |r| wanted(r))?;
        self.index(region, pid, found.at);
        Some(found)
    }

    /// The record at `at`, if `at` is inside the log.
    pub(crate) fn record(&self, region: &[u8], at: usize) -> Option<Record> {
        record_before(region, at, self.tail)
    }

    /// The packet bytes of the record whose header is at `at`, whatever its state and even
    /// outside the live range (a record just marked dead keeps its bytes until the next
    /// append), and whether they are encoded as 5.0.
    pub(crate) fn bytes_at(region: &[u8], at: usize) -> Option<(&[u8], bool)> {
        let h = region.get(at..at + HEADER)?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let v5 = h[11] & V5 != 0;
        if h[11] & STREAMED != 0 {
            // Its payload is not here.
            return None;
        }
        Some((region.get(at + HEADER..at + HEADER + len)?, v5))
    }

    /// Records from `from` on, in order.
    pub(crate) fn iter_from<'r>(
        &self,
        region: &'r [u8],
        from: usize,
    ) -> impl Iterator<Item = Record> + 'r {
        let tail = self.tail;
        let mut at = from;
        core::iter::from_fn(move || {
            let r = record_before(region, at, tail)?;
            at = r.next();
            Some(r)
        })
    }

    /// All records, in order.
    pub(crate) fn iter<'r>(&self, region: &'r [u8]) -> impl Iterator<Item = Record> + 'r {
        self.iter_from(region, self.head)
    }

    /// The first record that is not dead and satisfies `pred`.
    pub(crate) fn find(&self, region: &[u8], pred: impl Fn(&Record) -> bool) -> Option<Record> {
        self.iter(region)
            .find(|r| r.state != State::Dead && pred(r))
    }

    /// A value that changes whenever a record is appended or changes state.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn head(&self) -> usize {
        self.head
    }

    pub(crate) fn cursor(&self) -> usize {
        self.cursor
    }

    pub(crate) fn set_cursor(&mut self, at: usize) {
        self.cursor = at;
    }

    pub(crate) fn unblocked(&self) -> usize {
        self.unblocked
    }

    /// Moves the unblocked cursor forward to `at` (never back: see [`Log::rewind`]).
    pub(crate) fn pass_unblocked(&mut self, at: usize) {
        self.unblocked = self.unblocked.max(at);
    }

    /// Both cursors back to the first record: everything is looked at again (a new
    /// connection).
    pub(crate) fn rewind(&mut self) {
        self.cursor = self.head;
        self.unblocked = self.head;
    }

    /// Bytes in use, dead records included.
    pub(crate) fn used(&self) -> usize {
        self.tail - self.head
    }

    /// Records that the region changed size: scans cached against the generation look again.
    pub(crate) fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Bytes of records still needed: what compaction keeps.
    pub(crate) fn live(&self) -> usize {
        self.used() - self.dead
    }

    /// Appends a record for a `len`-byte packet written by `fill`, compacting first if needed.
    pub(crate) fn append(
        &mut self,
        region: &mut [u8],
        entry: Entry,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, CommandError> {
        let needed = HEADER + len;
        // Compacting once dead records outweigh live ones keeps scans proportional to what
        // is live; compaction only ever happens here, so offsets stay valid between appends.
        if region.len().saturating_sub(self.tail) < needed || self.dead > self.used() / 2 {
            self.compact(region);
        }
        let available = region.len().saturating_sub(self.tail);
        if available < needed {
            return Err(CommandError::StoreFull { needed, available });
        }
        let at = self.tail;
        let Ok(len32) = u32::try_from(len) else {
            return Err(CommandError::StoreFull { needed, available });
        };
        let [l0, l1, l2, l3] = len32.to_le_bytes();
        let [p0, p1] = entry.pid.to_le_bytes();
        let flags = (u8::from(entry.v5) * V5) | (u8::from(entry.streamed) * STREAMED);
        let header = [
            l0,
            l1,
            l2,
            l3,
            entry.kind as u8,
            entry.state as u8,
            p0,
            p1,
            entry.qos as u8,
            0,
            0,
            flags,
        ];
        // `available` covers the record: the split always succeeds.
        let record = region.get_mut(at..at + needed);
        let Some((head, body)) = record.and_then(|r| r.split_first_chunk_mut::<HEADER>()) else {
            return Err(CommandError::StoreFull { needed, available });
        };
        *head = header;
        fill(body);
        self.tail += needed;
        self.generation = self.generation.wrapping_add(1);
        Ok(at)
    }

    /// Changes a record's state, reclaiming dead records at the front. Never moves records.
    pub(crate) fn set_state(&mut self, region: &mut [u8], at: usize, state: State) {
        let Some(r) = self.record(region, at) else {
            return;
        };
        if r.state == State::Dead {
            return;
        }
        if state == State::Dead {
            self.dead += HEADER + r.len;
            if r.journaled {
                self.note_gone(r.pid);
            }
        }
        // `record` read the header at `at`: the byte is there.
        if let Some(b) = region.get_mut(at + 5) {
            *b = state as u8;
        }
        self.generation = self.generation.wrapping_add(1);
        if state == State::Unsent && at < self.cursor {
            self.cursor = at;
        }
        if state == State::Unsent && !window_bound(r.kind) && at < self.unblocked {
            self.unblocked = at;
        }
        if state == State::Sent {
            self.index(region, r.pid, at);
        }
        if state == State::Dead && at == self.head {
            self.trim(region);
        }
    }

    /// Remembers that the journaled record of `pid` died, for the journal.
    fn note_gone(&mut self, pid: u16) {
        match self.gone.get_mut(self.gone_len) {
            Some(slot) => {
                *slot = pid;
                self.gone_len += 1;
            }
            None => self.gone_overflow = true,
        }
    }

    /// Identifiers of journaled records that died since the last [`Log::take_gone`], and
    /// whether more died than were kept.
    pub(crate) fn gone(&self) -> (&[u16], bool) {
        let gone = self.gone.get(..self.gone_len).unwrap_or_default();
        (gone, self.gone_overflow)
    }

    /// The journal took the first `n` of [`Log::gone`].
    pub(crate) fn take_gone(&mut self, n: usize) {
        let n = n.min(self.gone_len);
        self.gone.copy_within(n..self.gone_len, 0);
        self.gone_len -= n;
    }

    /// Forgets what died, and the overflow: a snapshot describes the log now.
    pub(crate) fn clear_gone(&mut self) {
        self.gone_len = 0;
        self.gone_overflow = false;
    }

    /// The first live record from the journal cursor on that `wanted` says the journal needs
    /// and that it was not handed yet; the cursor moves past everything before it.
    pub(crate) fn next_unjournaled(
        &mut self,
        region: &[u8],
        wanted: impl Fn(&Record) -> bool,
    ) -> Option<Record> {
        while let Some(r) = self.record(region, self.journal) {
            if r.state != State::Dead && !r.journaled && wanted(&r) {
                return Some(r);
            }
            self.journal = r.next();
        }
        None
    }

    /// Every record so far was journaled (a restore appends journaled records only).
    pub(crate) fn journal_all(&mut self) {
        self.journal = self.tail;
    }

    /// Whether records were appended that the journal has not looked at.
    pub(crate) fn journal_behind(&self) -> bool {
        self.journal < self.tail
    }

    /// Marks the record at `at` as handed to the journal.
    pub(crate) fn set_journaled(&mut self, region: &mut [u8], at: usize) {
        if let Some(flags) = region.get_mut(at + 11) {
            *flags |= JOURNALED;
        }
    }

    /// Marks the record at `at` dead without telling the journal: a record appended in its
    /// place says more (a PUBREL that replaces a PUBLISH is journaled as `Released`, which a
    /// `Done` before it would contradict if the journal were cut between the two).
    pub(crate) fn replace(&mut self, region: &mut [u8], at: usize) {
        if let Some(flags) = region.get_mut(at + 11) {
            *flags &= !JOURNALED;
        }
        self.set_state(region, at, State::Dead);
    }

    /// Records that the entry at `at` was transmitted.
    pub(crate) fn set_sent_before(&mut self, region: &mut [u8], at: usize, sent: bool) {
        if let Some(flag) = region.get_mut(at + 9) {
            *flag = u8::from(sent);
        }
    }

    /// Counts a transient refusal of the entry at `at`; returns the new count.
    pub(crate) fn add_refusal(&mut self, region: &mut [u8], at: usize) -> u8 {
        match region.get_mut(at + 10) {
            Some(count) => {
                *count = count.saturating_add(1);
                *count
            }
            None => u8::MAX,
        }
    }

    fn trim(&mut self, region: &mut [u8]) {
        while let Some(r) = self.record(region, self.head) {
            if r.state != State::Dead {
                break;
            }
            self.head = r.next();
            self.dead -= HEADER + r.len;
        }
        self.cursor = self.cursor.max(self.head);
        self.unblocked = self.unblocked.max(self.head);
        self.journal = self.journal.max(self.head);
        if self.head == self.tail {
            // Empty: start again at the front, where old offsets are no longer records.
            let generation = self.generation;
            let (gone, gone_len, overflow) = (self.gone, self.gone_len, self.gone_overflow);
            *self = Self::new(self.slots);
            self.generation = generation;
            (self.gone, self.gone_len, self.gone_overflow) = (gone, gone_len, overflow);
            self.clear_index(region);
        }
    }

    /// Moves every live record to the front of the region, keeping their order.
    pub(crate) fn compact(&mut self, region: &mut [u8]) {
        self.clear_index(region);
        let mut write = self.base();
        let mut read = self.head;
        let mut cursor = None;
        let mut unblocked = None;
        let mut journal = None;
        while let Some(r) = self.record(region, read) {
            if r.at >= self.journal {
                journal.get_or_insert(write);
            }
            read = r.next();
            if r.state == State::Dead {
                continue;
            }
            let size = HEADER + r.len;
            if r.state == State::Unsent {
                cursor.get_or_insert(write);
                if !window_bound(r.kind) {
                    unblocked.get_or_insert(write);
                }
            }
            region.copy_within(r.at..r.at + size, write);
            if r.state == State::Sent {
                self.index(region, r.pid, write);
            }
            write += size;
        }
        self.head = self.base();
        self.tail = write;
        self.cursor = cursor.unwrap_or(write);
        self.unblocked = unblocked.unwrap_or(write);
        self.journal = journal.unwrap_or(write);
        self.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(log: &mut Log, region: &mut [u8], pid: u16, len: usize) -> Result<usize, CommandError> {
        let entry = Entry {
            kind: Kind::Publish,
            state: State::Unsent,
            pid,
            qos: QoS::AtLeastOnce,
            v5: false,
            streamed: false,
        };
        log.append(region, entry, len, |b| b.fill(pid as u8))
    }

    #[test]
    fn append_find_and_reclaim_from_the_front() {
        let mut region = [0u8; 64];
        let mut log = Log::default();
        let a = push(&mut log, &mut region, 1, 8).unwrap();
        let b = push(&mut log, &mut region, 2, 8).unwrap();
        assert_eq!(log.used(), 2 * (HEADER + 8));
        assert_eq!(log.find(&region, |r| r.pid == 2).unwrap().at, b);
        log.set_state(&mut region, a, State::Dead);
        assert_eq!(log.head(), b);
        log.set_state(&mut region, b, State::Dead);
        assert_eq!(log.used(), 0);
    }

    #[test]
    fn compaction_keeps_order_and_makes_room() {
        let mut region = [0u8; 3 * HEADER + 16];
        let mut log = Log::default();
        let a = push(&mut log, &mut region, 1, 8).unwrap();
        let b = push(&mut log, &mut region, 2, 8).unwrap();
        let _c = push(&mut log, &mut region, 3, 0).unwrap();
        assert!(matches!(
            push(&mut log, &mut region, 4, 8),
            Err(CommandError::StoreFull { .. })
        ));
        // Freeing a record in the middle (b) lets the next append compact into its room.
        log.set_state(&mut region, b, State::Dead);
        push(&mut log, &mut region, 4, 8).unwrap();
        let pids: std::vec::Vec<u16> = log.iter(&region).map(|r| r.pid).collect();
        assert_eq!(pids, [1, 3, 4]);
        let first = log.record(&region, log.head()).unwrap();
        assert_eq!(first.at, a);
        assert_eq!(first.packet(&region), &[1u8; 8]);
    }

    /// The index slot of `pid` names `at`.
    fn slot_names(log: &Log, region: &[u8], pid: u16, at: usize) -> bool {
        let slot = usize::from(pid) % log.slots * SLOT;
        let s = &region[slot..slot + SLOT];
        u16::from_le_bytes([s[0], s[1]]) == pid
            && u32::from_le_bytes([s[2], s[3], s[4], s[5]]) as usize == at
    }

    #[test]
    fn the_index_finds_sent_records_and_follows_compaction() {
        let mut region = [0u8; 8 * SLOT + 6 * (HEADER + 8)];
        let mut log = Log::new(8);
        assert_eq!(log.head(), 8 * SLOT, "records start after the index");
        let ats: std::vec::Vec<usize> = (1..=4)
            .map(|pid| push(&mut log, &mut region, pid, 8).unwrap())
            .collect();
        for &at in &ats {
            log.set_state(&mut region, at, State::Sent);
        }
        assert!(slot_names(&log, &region, 3, ats[2]));
        let r = log.find_sent(&mut region, Kind::Publish, 3).unwrap();
        assert_eq!((r.at, r.pid), (ats[2], 3));
        // Not waiting any more, or another kind: not found, index or not.
        assert!(log.find_sent(&mut region, Kind::PubRel, 3).is_none());
        log.set_state(&mut region, ats[2], State::Unsent);
        assert!(log.find_sent(&mut region, Kind::Publish, 3).is_none());
        // Records move on compaction: the index follows them.
        log.set_state(&mut region, ats[1], State::Dead);
        log.compact(&mut region);
        let moved = log.find_sent(&mut region, Kind::Publish, 4).unwrap();
        assert!(moved.at < ats[3], "record 4 moved forward");
        assert!(slot_names(&log, &region, 4, moved.at));
        assert_eq!(moved.packet(&region), &[4u8; 8]);
    }

    #[test]
    fn colliding_and_stale_slots_fall_back_to_the_walk() {
        let mut region = [0u8; SLOT + 4 * (HEADER + 8)];
        // One slot: every identifier shares it.
        let mut log = Log::new(1);
        let a = push(&mut log, &mut region, 7, 8).unwrap();
        let b = push(&mut log, &mut region, 9, 8).unwrap();
        log.set_state(&mut region, a, State::Sent);
        log.set_state(&mut region, b, State::Sent);
        assert!(slot_names(&log, &region, 9, b));
        assert_eq!(log.find_sent(&mut region, Kind::Publish, 7).unwrap().at, a);
        assert!(
            slot_names(&log, &region, 7, a),
            "the walk's answer is remembered"
        );
        assert_eq!(log.find_sent(&mut region, Kind::Publish, 9).unwrap().at, b);
        // Emptied, the log starts again at the front: old offsets name nothing.
        log.set_state(&mut region, a, State::Dead);
        log.set_state(&mut region, b, State::Dead);
        assert_eq!(log.used(), 0);
        let c = push(&mut log, &mut region, 9, 0).unwrap();
        assert_eq!(c, a);
        assert!(log.find_sent(&mut region, Kind::Publish, 9).is_none());
    }

    #[test]
    fn the_unblocked_cursor_skips_queued_publishes_only() {
        let mut region = [0u8; 8 * (HEADER + 8)];
        let mut log = Log::default();
        let first = push(&mut log, &mut region, 1, 8).unwrap();
        for pid in 2..=4 {
            push(&mut log, &mut region, pid, 8).unwrap();
        }
        let pubrel = Entry {
            kind: Kind::PubRel,
            state: State::Unsent,
            pid: 1,
            qos: QoS::ExactlyOnce,
            v5: false,
            streamed: false,
        };
        let rel = log.append(&mut region, pubrel, 4, |_| {}).unwrap();
        // A walk that passes the queued PUBLISHes moves the unblocked cursor to the PUBREL.
        for r in log.iter(&region).take(4) {
            log.pass_unblocked(r.next());
        }
        assert_eq!(log.unblocked(), rel);
        // A record the window does not hold back turning unsent again pulls it back; a
        // PUBLISH does not.
        log.set_state(&mut region, rel, State::Sent);
        log.set_state(&mut region, first, State::Sent);
        log.set_state(&mut region, first, State::Unsent);
        assert_eq!(log.unblocked(), rel);
        log.set_state(&mut region, rel, State::Unsent);
        assert_eq!(log.unblocked(), rel);
        log.rewind();
        assert_eq!((log.cursor(), log.unblocked()), (log.head(), log.head()));
    }

    #[test]
    fn request_len_counts_the_filters_of_subscribe_and_unsubscribe_records() {
        use crate::properties::{SubscribeProperties, UnsubscribeProperties};
        use crate::{Packet, PacketId, ProtocolVersion, Seq, Subscribe, Subscription};
        use crate::{TopicFilter, Unsubscribe};
        let user = [("k", "v"), ("key", "value")];
        let filters = [
            TopicFilter::new("a").unwrap(),
            TopicFilter::new("b/+/c").unwrap(),
            TopicFilter::new("$share/g/d/#").unwrap(),
        ];
        let subs = filters.map(|f| Subscription::new(f, QoS::AtLeastOnce));
        let pid = PacketId::new(7).unwrap();
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let v5 = version == ProtocolVersion::V5;
            if v5 && !cfg!(feature = "v5") {
                continue;
            }
            for n in 1..=filters.len() {
                let mut sub = Subscribe::new(pid, &subs[..n]);
                let mut unsub = Unsubscribe::new(pid, &filters[..n]);
                if v5 {
                    sub.properties = SubscribeProperties {
                        subscription_identifier: core::num::NonZeroU32::new(300),
                        user_properties: Seq::from_slice(&user),
                    };
                    unsub.properties = UnsubscribeProperties {
                        user_properties: Seq::from_slice(&user),
                    };
                }
                for (packet, kind) in [
                    (Packet::Subscribe(sub), Kind::Subscribe),
                    (Packet::Subscribe(sub), Kind::Resubscribe),
                    (Packet::Unsubscribe(unsub), Kind::Unsubscribe),
                ] {
                    let mut region = [0u8; 256];
                    let mut log = Log::default();
                    let len = packet.encoded_len(version).unwrap();
                    let entry = Entry {
                        kind,
                        state: State::Unsent,
                        pid: 7,
                        qos: QoS::AtLeastOnce,
                        v5,
                        streamed: false,
                    };
                    let at = log
                        .append(&mut region, entry, len, |b| {
                            packet.encode(version, b).unwrap();
                        })
                        .unwrap();
                    let record = log.record(&region, at).unwrap();
                    assert_eq!(record.request_len(&region), n, "{version:?} {kind:?}");
                    // A record cut short (never written so) counts as none, as a failed
                    // decode did.
                    let short = Record {
                        len: record.len - 1,
                        ..record
                    };
                    assert_eq!(short.request_len(&region), 0, "{version:?} {kind:?}");
                }
            }
        }
    }
}
