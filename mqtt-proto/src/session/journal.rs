//! The session's side of the journal: which changes it hands out, in which order, and how a
//! new session takes them back (the records themselves are [`crate::journal`]'s).
//!
//! Nothing is kept twice: what waits to be journaled is read from the state itself. A log
//! record carries a flag once journaled and a cursor passes the ones before it; the
//! acknowledgement ring counts how many of its entries were looked at; the log keeps the
//! identifiers of journaled records that died until the journal takes them (more than it
//! holds, or a broker that lost the session, asks for a snapshot instead); the subscription
//! table and the client identifier carry a changed flag.

use super::acks::Ack;
use super::incoming::{InState, ENTRY};
use super::store::{Entry, Kind, Record as LogRecord, State};
use super::{Phase, Session};
use crate::journal::{JournalError, Record};
use crate::{Packet, PacketId, PacketType, QoS, QosPid, ReasonCode};

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// Writes the journal records of the changes since the last call into `buf`, as many
    /// whole records as fit, and returns how many bytes it wrote (0: nothing to journal).
    /// With [`SessionConfig::journal`](super::SessionConfig::journal) set, call it until it
    /// returns 0 after every input and command, append what it wrote to the backend and make
    /// it durable, and only then call [`Session::poll_transmit`]: a packet is only
    /// transmitted once the records before it were handed out (write-ahead), and
    /// `poll_transmit` sends nothing while any wait. A QoS 1 or 2 message is accepted in the
    /// journal's sense once the bytes holding its [`Record::Queued`] are durable.
    ///
    /// Then check [`Session::wants_snapshot`].
    ///
    /// # Errors
    /// [`JournalError::BufferTooSmall`] when the next record does not fit `buf` (it holds a
    /// whole PUBLISH): nothing was taken, retry with a larger buffer.
    pub fn poll_journal(&mut self, buf: &mut [u8]) -> Result<usize, JournalError> {
        let mut written = 0;
        while let Some(n) = self.journal_one(&mut buf[written..], written == 0)? {
            written += n;
        }
        Ok(written)
    }

    /// Writes the next pending record into `buf`; `None` when nothing is pending or, unless
    /// `first`, the record does not fit.
    fn journal_one(&mut self, buf: &mut [u8], first: bool) -> Result<Option<usize>, JournalError> {
        if !self.config.journal {
            return Ok(None);
        }
        let fits = |r: &Record<'_>, buf: &mut [u8]| -> Result<Option<usize>, JournalError> {
            match r.encode(buf) {
                Ok(n) => Ok(Some(n)),
                Err(e) if first => Err(e),
                Err(_) => Ok(None),
            }
        };
        if self.journal.identity {
            let region = super::store_region(&self.store, &self.layout.assigned());
            let id = core::str::from_utf8(&region[..self.assigned_len]).unwrap_or_default();
            let Some(n) = fits(&Record::ClientId(id), buf)? else {
                return Ok(None);
            };
            self.journal.identity = false;
            return Ok(Some(n));
        }
        if self.journal.resumable {
            let Some(n) = fits(&Record::Resumable, buf)? else {
                return Ok(None);
            };
            self.journal.resumable = false;
            return Ok(Some(n));
        }
        let (gone, _) = self.log.gone();
        if let Some(pid) = gone.first().and_then(|&p| PacketId::new(p)) {
            let Some(n) = fits(&Record::Done(pid), buf)? else {
                return Ok(None);
            };
            self.log.take_gone(1);
            return Ok(Some(n));
        }
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let wanted =
            |r: &LogRecord| r.kind == Kind::PubRel || (r.kind == Kind::Publish && !r.streamed);
        if let Some(r) = self.log.next_unjournaled(region, wanted) {
            let pid = PacketId::new(r.pid).ok_or(JournalError::Malformed)?;
            let record = match r.kind {
                Kind::PubRel => Record::Released(pid),
                _ => Record::Queued {
                    packet_id: pid,
                    qos: r.qos,
                    v5: r.v5,
                    sent_before: r.sent_before,
                    packet: r.packet(region),
                },
            };
            let Some(n) = fits(&record, buf)? else {
                return Ok(None);
            };
            self.log.set_journaled(region, r.at);
            return Ok(Some(n));
        }
        if let Some(ack) = self.acks.next_unjournaled() {
            let record = match ack {
                Ack {
                    packet_type: PacketType::PubRec,
                    reason_code: ReasonCode::Success,
                    packet_id,
                } => Some(Record::Received(packet_id)),
                Ack {
                    packet_type: PacketType::PubComp,
                    packet_id,
                    ..
                } => Some(Record::Completed(packet_id)),
                _ => None,
            };
            let n = match record {
                Some(r) => match fits(&r, buf)? {
                    Some(n) => n,
                    None => return Ok(None),
                },
                None => 0,
            };
            self.acks.mark_journaled();
            return Ok(Some(n));
        }
        if self.subscriptions.changed {
            let region = super::store_region(&self.store, &self.layout.subscriptions());
            let table = self.subscriptions.table(region);
            let Some(n) = fits(&Record::Subscriptions(table), buf)? else {
                return Ok(None);
            };
            self.subscriptions.changed = false;
            return Ok(Some(n));
        }
        Ok(None)
    }

    /// Whether changes wait for [`Session::poll_journal`] or a snapshot, which holds back
    /// [`Session::poll_transmit`].
    pub(super) fn journal_pending(&self) -> bool {
        self.config.journal
            && (self.log.journal_behind()
                || !self.log.gone().0.is_empty()
                || self.acks.next_unjournaled().is_some()
                || self.wants_snapshot())
    }

    /// Whether the journal can no longer describe the state change by change: more records
    /// died at once than the session keeps track of, or the broker lost the session (every
    /// incoming identifier was forgotten). Write a [`Session::snapshot`] before the next
    /// `poll_transmit`, which sends nothing until then.
    pub fn wants_snapshot(&self) -> bool {
        self.config.journal && (self.journal.snapshot || self.log.gone().1)
    }

    /// The whole durable state as journal records, from [`Record::SnapshotBegin`] to
    /// [`Record::SnapshotEnd`]: write them all, then what they supersede may go (a new file
    /// renamed over the old one, or the flash pages before the begin record). Call it after
    /// [`Session::poll_journal`] returned 0, so that nothing is left pending; it clears
    /// [`Session::wants_snapshot`].
    pub fn snapshot(&mut self) -> impl Iterator<Item = Record<'_>> + '_ {
        self.journal.snapshot = false;
        self.journal.identity = false;
        self.journal.resumable = false;
        self.subscriptions.changed = false;
        self.log.clear_gone();
        let this = &*self;
        let store = this.store.as_ref();
        let log = &store[this.layout.log()];
        let assigned = &store[this.layout.assigned()][..this.assigned_len];
        let client_id = core::str::from_utf8(assigned)
            .ok()
            .filter(|id| !id.is_empty())
            .map(Record::ClientId);
        let resumable = this.resumable().then_some(Record::Resumable);
        let messages = this.log.iter(log).filter_map(move |r| {
            let pid = PacketId::new(r.pid)?;
            match (r.kind, r.state) {
                (_, State::Dead | State::Abandoned) => None,
                (Kind::PubRel, _) => Some(Record::Released(pid)),
                (Kind::Publish, _) if !r.streamed => Some(Record::Queued {
                    packet_id: pid,
                    qos: r.qos,
                    v5: r.v5,
                    sent_before: r.sent_before,
                    packet: r.packet(log),
                }),
                _ => None,
            }
        });
        let incoming = store[this.layout.incoming()]
            .chunks_exact(ENTRY)
            .filter(|e| e[2] == InState::AwaitingRel as u8)
            .filter_map(|e| PacketId::new(u16::from_le_bytes([e[0], e[1]])))
            .map(Record::Received);
        let table = this
            .subscriptions
            .table(&store[this.layout.subscriptions()]);
        let subscriptions = (!table.is_empty()).then_some(Record::Subscriptions(table));
        core::iter::once(Record::SnapshotBegin)
            .chain(client_id)
            .chain(resumable)
            .chain(messages)
            // After the messages: restoring a queued message moves the counter past its
            // identifier, which would undo the counter restored before it.
            .chain(core::iter::once(Record::NextPacketId(this.next_pid)))
            .chain(incoming)
            .chain(subscriptions)
            .chain(core::iter::once(Record::SnapshotEnd))
    }

    /// Applies one record of a journal, in journal order, to a session that has not
    /// connected yet: how a session is recovered after a crash. A backend that keeps
    /// snapshots beside older records picks what to apply with [`crate::journal::Scan`].
    /// Queued messages come back unsent, in their order, and go out once connected;
    /// [`Record::Resumable`] makes a 5.0 session resume the broker's session. Without the
    /// `subscription-renewal` feature, which keeps no subscriptions, a
    /// [`Record::Subscriptions`] is accepted and left out.
    ///
    /// # Errors
    /// [`JournalError::InvalidState`] once the session connected;
    /// [`JournalError::Malformed`] for a record whose content contradicts itself (a PUBLISH
    /// that does not decode as the QoS and packet identifier it is filed under, a
    /// subscription table that is not one); [`JournalError::StoreFull`] when the store or one
    /// of its regions is smaller than the state; [`JournalError::FeatureDisabled`] for a
    /// message encoded as 5.0 without the `v5` feature. The session is unchanged by a failed
    /// record.
    pub fn restore(&mut self, record: &Record<'_>) -> Result<(), JournalError> {
        if self.conn.phase != Phase::Disconnected {
            return Err(JournalError::InvalidState);
        }
        let result = self.apply_record(record);
        // What restoring kills was journaled already.
        self.log.clear_gone();
        self.subscriptions.changed = false;
        self.journal = JournalFlags::default();
        result
    }

    fn apply_record(&mut self, record: &Record<'_>) -> Result<(), JournalError> {
        match *record {
            Record::SnapshotBegin => {
                let store = self.store.as_mut();
                self.log = super::store::Log::new(usize::from(self.config.index_slots));
                self.restore_max = None;
                let log = &mut store[self.layout.log()];
                if let Some(index) = log.get_mut(..usize::from(self.config.index_slots) * 6) {
                    index.fill(0);
                }
                self.incoming.clear(&mut store[self.layout.incoming()]);
                self.subscriptions.clear();
                self.assigned_len = 0;
                self.inflight = 0;
                self.connected_before = false;
                self.next_pid = PacketId::MIN;
                self.ids_wrapped = false;
                self.free_ids = 0;
            }
            Record::SnapshotEnd => {}
            Record::Queued {
                packet_id,
                qos,
                v5,
                sent_before,
                packet,
            } => self.restore_publish(packet_id, qos, v5, sent_before, packet)?,
            Record::Released(pid) => {
                self.forget(pid);
                let version = self.version();
                let pubrel = Packet::PubRel(crate::PubResponse::new(pid));
                let len = pubrel.encoded_len(version).unwrap_or(4);
                self.restore_entry(
                    Kind::PubRel,
                    pid,
                    QoS::ExactlyOnce,
                    version.is_v5(),
                    len,
                    |buf| {
                        let _ = pubrel.encode(version, buf);
                    },
                )?;
                // A PUBREL holds a place in the broker's window until PUBCOMP, as after a
                // reconnect: a broker that counts it (mosquitto's incoming quota) refuses
                // what goes beyond, and a 3.1.1 PUBACK cannot say so.
                self.inflight += 1;
            }
            Record::Done(pid) => self.forget(pid),
            Record::Received(pid) => {
                let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
                if self.incoming.find(region, pid.get()).is_none()
                    && !self.incoming.insert(
                        region,
                        pid.get(),
                        InState::AwaitingRel,
                        QoS::ExactlyOnce,
                    )
                {
                    return Err(JournalError::StoreFull {
                        needed: (self.incoming.len() + 1) * ENTRY,
                        available: region.len(),
                    });
                }
            }
            Record::Completed(pid) => {
                let region = super::store_region_mut(&mut self.store, &self.layout.incoming());
                if let Some((slot, _, _)) = self.incoming.find(region, pid.get()) {
                    self.incoming.remove(region, slot);
                }
            }
            // Without renewal none are kept (as with `subscription_bytes` 0, but a journal from
            // a build that kept them still restores).
            Record::Subscriptions(_) if !cfg!(feature = "subscription-renewal") => {}
            Record::Subscriptions(table) => {
                let region = super::store_region_mut(&mut self.store, &self.layout.subscriptions());
                if table.len() > region.len() {
                    return Err(JournalError::StoreFull {
                        needed: table.len(),
                        available: region.len(),
                    });
                }
                self.subscriptions
                    .restore(region, table)
                    .ok_or(JournalError::Malformed)?;
            }
            Record::ClientId(id) => {
                let region = super::store_region_mut(&mut self.store, &self.layout.assigned());
                let available = region.len();
                let dst = region.get_mut(..id.len()).ok_or(JournalError::StoreFull {
                    needed: id.len(),
                    available,
                })?;
                dst.copy_from_slice(id.as_bytes());
                self.assigned_len = id.len();
            }
            Record::Resumable => self.connected_before = true,
            Record::NextPacketId(pid) => self.next_pid = pid,
        }
        Ok(())
    }

    fn restore_publish(
        &mut self,
        pid: PacketId,
        qos: QoS,
        v5: bool,
        sent_before: bool,
        packet: &[u8],
    ) -> Result<(), JournalError> {
        // [`JournalError::FeatureDisabled`], not `Malformed`: the record is whole, this build
        // cannot decode it.
        if v5 && !cfg!(feature = "v5") {
            return Err(JournalError::FeatureDisabled("v5"));
        }
        let version = super::record_version(v5);
        let expected = QosPid::new(qos, pid);
        match super::decode_stored(packet, version) {
            Some((Packet::Publish(p), len))
                if len == packet.len() && p.qos_pid == expected && !p.dup => {}
            _ => return Err(JournalError::Malformed),
        }
        // An identifier is only reused once its earlier flow ended.
        self.forget(pid);
        let at = self.restore_entry(Kind::Publish, pid, qos, v5, packet.len(), |buf| {
            buf.copy_from_slice(packet);
        })?;
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        self.log.set_sent_before(region, at, sent_before);
        self.next_pid = pid.next();
        Ok(())
    }

    /// Appends a restored record, journaled already.
    fn restore_entry(
        &mut self,
        kind: Kind,
        pid: PacketId,
        qos: QoS,
        v5: bool,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, JournalError> {
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let entry = Entry {
            kind,
            state: State::Unsent,
            pid: pid.get(),
            qos,
            v5,
            streamed: false,
        };
        let at = self
            .log
            .append(region, entry, len, fill)
            .map_err(|e| match e {
                super::CommandError::StoreFull { needed, available } => {
                    JournalError::StoreFull { needed, available }
                }
                _ => JournalError::Malformed,
            })?;
        self.log.set_journaled(region, at);
        self.log.journal_all();
        if let Some((_, max)) = self.restore_max {
            self.restore_max = Some((self.log.generation(), max.max(pid.get())));
        }
        // Identifiers may now be in use anywhere: allocation looks before it hands one out.
        self.ids_wrapped = true;
        self.free_ids = 0;
        Ok(at)
    }

    /// Whether a reconnect would resume the broker's session, which [`Record::Resumable`]
    /// says: only 5.0 decides that from the journal (a 3.1.1 session resumes by its
    /// configured Clean Session), so a 3.1.1 session, and a build without `v5`, writes none.
    pub(super) fn resumable(&self) -> bool {
        self.connected_before && self.version.v5()
    }

    /// Ends what the log holds for `pid`.
    /// Ends the flow of `pid`, whose record is live at most once (a restored identifier's
    /// earlier flow is forgotten before it is appended again).
    fn forget(&mut self, pid: PacketId) {
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let max = match self.restore_max {
            Some((generation, max)) if generation == self.log.generation() => max,
            // Something other than a restore changed the log: find its largest identifier.
            _ => self
                .log
                .iter(region)
                .filter(|r| r.state != State::Dead)
                .map(|r| r.pid)
                .max()
                .unwrap_or(0),
        };
        if pid.get() <= max {
            // Records are acknowledged mostly in order, so the walk from the front is short.
            if let Some(r) = self.log.find(region, |r| {
                r.pid == pid.get() && matches!(r.kind, Kind::Publish | Kind::PubRel)
            }) {
                self.log.set_state(region, r.at, State::Dead);
                if r.kind == Kind::PubRel {
                    self.inflight = self.inflight.saturating_sub(1);
                }
            }
        }
        self.restore_max = Some((self.log.generation(), max));
    }
}

/// Changes of the session's identity that wait for the journal, and whether it must write a
/// snapshot.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct JournalFlags {
    pub(super) identity: bool,
    pub(super) resumable: bool,
    pub(super) snapshot: bool,
}
