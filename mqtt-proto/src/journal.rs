//! The session's journal: its durable state as a sequence of small records.
//!
//! A [`Session`](crate::session::Session) configured with
//! [`SessionConfig::journal`](crate::session::SessionConfig::journal) describes every change
//! of the state that must survive a crash as a [`Record`]: a message accepted for delivery,
//! a QoS 2 handshake that moved on, an incoming QoS 2 message whose release is awaited, the
//! subscriptions it renews, the client identifier. A backend (a file on the PC, wear-levelled
//! NOR flash on a microcontroller) appends the records in the order
//! [`Session::poll_journal`](crate::session::Session::poll_journal) hands them out; a new
//! session is rebuilt from them with [`Session::restore`](crate::session::Session::restore).
//! [`Session::snapshot`](crate::session::Session::snapshot) writes the whole state as records
//! between [`Record::SnapshotBegin`] and [`Record::SnapshotEnd`], which is how a backend
//! compacts its journal.
//!
//! # Format
//! A record on the medium is `length | tag | body | crc`: the length of tag and body as a
//! variable byte integer (as in MQTT's fixed header), a tag byte, the body, and a CRC-32C
//! (Castagnoli) of everything before it, little-endian. A journal cut anywhere (a torn write,
//! a power cut) ends in a record that is incomplete or fails its checksum: [`Replay`] stops
//! there and says how many bytes were whole, so recovery returns to the last complete change
//! and never reads garbage.
//!
//! # What a backend must guarantee
//! Records are applied in order. The session only transmits a packet after every record
//! handed out before it (write-ahead): a backend writes what `poll_journal` gave it, and
//! makes it as durable as its policy promises, before the driver calls `poll_transmit`.

use crate::wire::{self, Write};
use crate::{PacketId, QoS};

/// The checksum of a record: CRC-32C, which detects every burst error shorter than 32 bits.
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Largest tag-and-body length a record may declare: a PUBLISH of the largest size MQTT allows
/// and its header. Anything larger is corruption.
pub const MAX_RECORD_LEN: usize = crate::MAX_REMAINING_LENGTH as usize + 16;

const QUEUED: u8 = 1;
const RELEASED: u8 = 2;
const DONE: u8 = 3;
const RECEIVED: u8 = 4;
const COMPLETED: u8 = 5;
const SUBSCRIPTIONS: u8 = 6;
const CLIENT_ID: u8 = 7;
const RESUMABLE: u8 = 8;
const NEXT_PACKET_ID: u8 = 9;
const SNAPSHOT_BEGIN: u8 = 10;
const SNAPSHOT_END: u8 = 11;

/// One change of the session's durable state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Record<'a> {
    /// A QoS 1 or 2 message was accepted: its PUBLISH, encoded with DUP clear, in the version
    /// `v5` says (else 3.1.1). It is delivered until acknowledged.
    Queued {
        /// Its packet identifier.
        packet_id: PacketId,
        /// QoS 1 or 2.
        qos: QoS,
        /// Encoded as 5.0.
        v5: bool,
        /// It was transmitted before: a resend carries DUP, and a broker that lost the
        /// session may have delivered it. Only a snapshot can say so; a record written as the
        /// message is accepted comes before its first transmission.
        sent_before: bool,
        /// The encoded PUBLISH.
        packet: &'a [u8],
    },
    /// The broker received the QoS 2 message `packet_id` (PUBREC): it is never sent again;
    /// its PUBREL is, until PUBCOMP.
    Released(PacketId),
    /// The outgoing flow of `packet_id` ended (PUBACK, PUBCOMP, a refusal, or the broker lost
    /// the session): nothing of it is sent again.
    Done(PacketId),
    /// An incoming QoS 2 message was received under `packet_id` and handed to the
    /// application: a resend of it is not delivered again until the broker releases it.
    Received(PacketId),
    /// The broker released the incoming QoS 2 message `packet_id` (PUBREL): the identifier
    /// may name a new message now.
    Completed(PacketId),
    /// The subscriptions the session renews after a lost session, replacing the previous
    /// list (the session's own encoding, checked when restored).
    Subscriptions(&'a [u8]),
    /// The client identifier the session connects with when the application gives none
    /// (one the broker assigned, or one a driver made up and keeps).
    ClientId(&'a str),
    /// A broker accepted a connection of this session: a 5.0 reconnect resumes it (Clean
    /// Start 0) when it has a Session Expiry Interval.
    Resumable,
    /// The packet identifier the session hands out next.
    NextPacketId(PacketId),
    /// A snapshot of the whole state follows: everything before it is superseded once the
    /// matching [`Record::SnapshotEnd`] is written.
    SnapshotBegin,
    /// The snapshot begun by the last [`Record::SnapshotBegin`] is complete.
    SnapshotEnd,
}

/// Why a journal could not be read or applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum JournalError {
    /// The record's checksum does not match, or its length is impossible: the medium holds
    /// something other than what was written.
    #[error("journal record fails its checksum")]
    Checksum,
    /// The record is whole and its checksum matches, but its content is not a record this
    /// version understands (an unknown tag, a body of the wrong length, a PUBLISH that does
    /// not decode or does not match its header).
    #[error("journal record not understood")]
    Malformed,
    /// The session's store has no room for the recovered state: recover into a session with
    /// at least the store and regions the journal was written with.
    #[error("recovered state does not fit the store: {needed} bytes needed, {available} free")]
    StoreFull {
        /// Bytes needed.
        needed: usize,
        /// Bytes free.
        available: usize,
    },
    /// A session can only be restored before its first connection.
    #[error("a session can only be restored before it connects")]
    InvalidState,
    /// The buffer given to hold a record is smaller than the record.
    #[error("journal buffer too small: {needed} bytes needed, {available} given")]
    BufferTooSmall {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The record needs code this build of the crate leaves out: a message encoded as 5.0
    /// ([`Record::Queued`] with `v5`) restored without the `v5` feature. Names the feature.
    /// Such a journal was written by a 5.0 session; a 3.1.1-only build cannot resume it.
    #[error("needs the `{0}` feature of mqtt-sansio, which this build leaves out")]
    FeatureDisabled(&'static str),
}

impl Record<'_> {
    fn tag(&self) -> u8 {
        match self {
            Self::Queued { .. } => QUEUED,
            Self::Released(_) => RELEASED,
            Self::Done(_) => DONE,
            Self::Received(_) => RECEIVED,
            Self::Completed(_) => COMPLETED,
            Self::Subscriptions(_) => SUBSCRIPTIONS,
            Self::ClientId(_) => CLIENT_ID,
            Self::Resumable => RESUMABLE,
            Self::NextPacketId(_) => NEXT_PACKET_ID,
            Self::SnapshotBegin => SNAPSHOT_BEGIN,
            Self::SnapshotEnd => SNAPSHOT_END,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            Self::Queued { packet, .. } => 3 + packet.len(),
            Self::Released(_)
            | Self::Done(_)
            | Self::Received(_)
            | Self::Completed(_)
            | Self::NextPacketId(_) => 2,
            Self::Subscriptions(table) => table.len(),
            Self::ClientId(id) => id.len(),
            Self::Resumable | Self::SnapshotBegin | Self::SnapshotEnd => 0,
        }
    }

    /// Bytes the record takes on the medium.
    pub fn encoded_len(&self) -> usize {
        let inner = 1 + self.body_len();
        wire::var_int_len(inner) + inner + 4
    }

    /// Writes the record into `buf` and returns its length.
    ///
    /// # Errors
    /// [`JournalError::BufferTooSmall`] when `buf` is shorter than
    /// [`Record::encoded_len`]; nothing was written then.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, JournalError> {
        let len = self.encoded_len();
        let available = buf.len();
        let out = buf.get_mut(..len).ok_or(JournalError::BufferTooSmall {
            needed: len,
            available,
        })?;
        let mut w = wire::SliceWriter::new(out);
        w.put_var_int(1 + self.body_len());
        w.put_u8(self.tag());
        match *self {
            Self::Queued {
                packet_id,
                qos,
                v5,
                sent_before,
                packet,
            } => {
                w.put_u8(qos as u8 | u8::from(v5) << 2 | u8::from(sent_before) << 3);
                w.put_u16(packet_id.get());
                w.put_slice(packet);
            }
            Self::Released(id)
            | Self::Done(id)
            | Self::Received(id)
            | Self::Completed(id)
            | Self::NextPacketId(id) => w.put_u16(id.get()),
            Self::Subscriptions(table) => w.put_slice(table),
            Self::ClientId(id) => w.put_slice(id.as_bytes()),
            Self::Resumable | Self::SnapshotBegin | Self::SnapshotEnd => {}
        }
        let at = w.position();
        let crc = CRC.checksum(&out[..at]);
        out[at..].copy_from_slice(&crc.to_le_bytes());
        Ok(len)
    }

    /// Reads the record at the start of `bytes` and its length, or `None` when `bytes` ends
    /// before the record does (a torn tail).
    ///
    /// # Errors
    /// [`JournalError::Checksum`] for bytes that are not a whole record as written,
    /// [`JournalError::Malformed`] for a record this version does not understand.
    pub fn decode(bytes: &[u8]) -> Result<Option<(Record<'_>, usize)>, JournalError> {
        let (rest, inner) = match wire::var_int(bytes) {
            Ok(v) => v,
            Err(_) if bytes.len() < 4 => return Ok(None),
            Err(_) => return Err(JournalError::Checksum),
        };
        let inner = inner as usize;
        if inner == 0 || inner > MAX_RECORD_LEN {
            return Err(JournalError::Checksum);
        }
        let head = bytes.len() - rest.len();
        let total = head + inner + 4;
        let Some(record) = bytes.get(..total) else {
            return Ok(None);
        };
        let (covered, crc) = record.split_at(head + inner);
        if CRC.checksum(covered) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(JournalError::Checksum);
        }
        let tag = covered[head];
        let body = &covered[head + 1..];
        let id = || match body {
            &[a, b] => PacketId::new(u16::from_be_bytes([a, b])).ok_or(JournalError::Malformed),
            _ => Err(JournalError::Malformed),
        };
        let empty = |r: Record<'static>| {
            if body.is_empty() {
                Ok(r)
            } else {
                Err(JournalError::Malformed)
            }
        };
        let record = match tag {
            QUEUED => {
                let &[flags, a, b, ..] = body else {
                    return Err(JournalError::Malformed);
                };
                let qos = match flags & 3 {
                    1 => QoS::AtLeastOnce,
                    2 => QoS::ExactlyOnce,
                    _ => return Err(JournalError::Malformed),
                };
                if flags & !15 != 0 {
                    return Err(JournalError::Malformed);
                }
                Record::Queued {
                    packet_id: PacketId::new(u16::from_be_bytes([a, b]))
                        .ok_or(JournalError::Malformed)?,
                    qos,
                    v5: flags & 4 != 0,
                    sent_before: flags & 8 != 0,
                    packet: &body[3..],
                }
            }
            RELEASED => Record::Released(id()?),
            DONE => Record::Done(id()?),
            RECEIVED => Record::Received(id()?),
            COMPLETED => Record::Completed(id()?),
            SUBSCRIPTIONS => Record::Subscriptions(body),
            CLIENT_ID => {
                Record::ClientId(core::str::from_utf8(body).map_err(|_| JournalError::Malformed)?)
            }
            NEXT_PACKET_ID => Record::NextPacketId(id()?),
            RESUMABLE => empty(Record::Resumable)?,
            SNAPSHOT_BEGIN => empty(Record::SnapshotBegin)?,
            SNAPSHOT_END => empty(Record::SnapshotEnd)?,
            _ => return Err(JournalError::Malformed),
        };
        Ok(Some((record, total)))
    }
}

/// Why a [`Replay`] stopped before the end of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Stop {
    /// The bytes end inside a record: the write was cut. Recovery is complete up to it.
    Torn,
    /// A record fails its checksum or is not understood. Nothing from it on is used.
    Bad(JournalError),
}

/// The records of a journal held in one slice, in order, up to the first record that is not
/// whole. [`Replay::valid_len`] is where a backend truncates the journal before it appends
/// again, so that a torn tail never sits between complete records.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    bytes: &'a [u8],
    at: usize,
    stop: Option<Stop>,
}

impl<'a> Replay<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            stop: None,
        }
    }

    /// Bytes of whole, valid records read so far.
    pub fn valid_len(&self) -> usize {
        self.at
    }

    /// Why reading stopped before the end, once the iterator returned `None`.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }
}

impl<'a> Iterator for Replay<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.stop.is_some() {
            return None;
        }
        let rest = self.bytes.get(self.at..).unwrap_or_default();
        if rest.is_empty() {
            return None;
        }
        match Record::decode(rest) {
            Ok(Some((record, len))) => {
                self.at += len;
                Some(record)
            }
            Ok(None) => {
                self.stop = Some(Stop::Torn);
                None
            }
            Err(e) => {
                self.stop = Some(Stop::Bad(e));
                None
            }
        }
    }
}

/// Finds which records of a journal to apply, for a backend that cannot drop superseded
/// records and write a snapshot in one atomic step (a flash queue appends the snapshot, then
/// erases what it supersedes): feed it every record in order, then apply the records whose
/// index lies in [`Scan::range`].
///
/// The range starts at the last snapshot that was completed, and ends before a snapshot that
/// was begun and never completed (its write was cut): what precedes that one still holds.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    seen: usize,
    open: Option<usize>,
    start: usize,
}

impl Scan {
    /// A scan that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next record in journal order.
    pub fn see(&mut self, record: &Record<'_>) {
        match record {
            Record::SnapshotBegin => self.open = Some(self.seen),
            Record::SnapshotEnd => {
                if let Some(begin) = self.open.take() {
                    self.start = begin;
                }
            }
            _ => {}
        }
        self.seen += 1;
    }

    /// Indices of the records to apply, in order.
    pub fn range(&self) -> core::ops::Range<usize> {
        self.start..self.open.unwrap_or(self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn id(n: u16) -> PacketId {
        PacketId::new(n).unwrap()
    }

    fn all() -> Vec<Record<'static>> {
        std::vec![
            Record::SnapshotBegin,
            Record::ClientId("device-1"),
            Record::Resumable,
            Record::NextPacketId(id(9)),
            Record::Queued {
                packet_id: id(7),
                qos: QoS::ExactlyOnce,
                v5: true,
                sent_before: true,
                packet: b"\x34\x05\x00\x01t\x00\x07",
            },
            Record::Subscriptions(b"\x01\x02\x03"),
            Record::SnapshotEnd,
            Record::Released(id(7)),
            Record::Done(id(7)),
            Record::Received(id(3)),
            Record::Completed(id(3)),
        ]
    }

    fn encode_all(records: &[Record<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            let mut buf = std::vec![0; r.encoded_len()];
            assert_eq!(r.encode(&mut buf).unwrap(), buf.len());
            out.extend_from_slice(&buf);
        }
        out
    }

    #[test]
    fn every_record_round_trips() {
        let records = all();
        let bytes = encode_all(&records);
        let mut replay = Replay::new(&bytes);
        let back: Vec<_> = replay.by_ref().collect();
        assert_eq!(back, records);
        assert_eq!(replay.valid_len(), bytes.len());
        assert_eq!(replay.stop(), None);
    }

    #[test]
    fn a_cut_anywhere_recovers_the_records_before_it() {
        let records = all();
        let bytes = encode_all(&records);
        let ends: Vec<usize> = records
            .iter()
            .scan(0, |at, r| {
                *at += r.encoded_len();
                Some(*at)
            })
            .collect();
        for cut in 0..bytes.len() {
            let mut replay = Replay::new(&bytes[..cut]);
            let n = replay.by_ref().count();
            let whole = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(n, whole, "cut at {cut}");
            assert_eq!(
                replay.valid_len(),
                if whole == 0 { 0 } else { ends[whole - 1] }
            );
            let expect = if cut == replay.valid_len() {
                None
            } else {
                Some(Stop::Torn)
            };
            assert_eq!(replay.stop(), expect, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_is_never_read_as_a_record() {
        let records = all();
        let bytes = encode_all(&records);
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                let back: Vec<_> = Replay::new(&bad).collect();
                // Every record read is one that was written, in place: none is invented.
                assert!(back.len() <= records.len());
                assert_eq!(&back[..], &records[..back.len()], "flip {at}:{bit}");
                assert!(back.len() < records.len(), "flip {at}:{bit} went unnoticed");
            }
        }
    }

    #[test]
    fn scan_starts_at_the_last_complete_snapshot_and_ignores_a_cut_one() {
        let seq = [
            Record::Done(id(1)),
            Record::SnapshotBegin,
            Record::Done(id(2)),
            Record::SnapshotEnd,
            Record::Done(id(3)),
            Record::SnapshotBegin,
            Record::Done(id(4)),
        ];
        let mut scan = Scan::new();
        seq.iter().for_each(|r| scan.see(r));
        assert_eq!(scan.range(), 1..5);
        let mut plain = Scan::new();
        seq[..1].iter().for_each(|r| plain.see(r));
        assert_eq!(plain.range(), 0..1);
    }

    #[test]
    fn impossible_lengths_and_unknown_tags_are_refused() {
        let mut buf = [0u8; 16];
        let n = Record::Done(id(1)).encode(&mut buf).unwrap();
        let mut bad = buf;
        bad[1] = 99;
        let crc = CRC.checksum(&bad[..n - 4]);
        bad[n - 4..n].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Record::decode(&bad[..n]), Err(JournalError::Malformed));
        // A length beyond the bytes there is reads as a cut write; one no record can have
        // (five bytes of length, or none) as corruption.
        assert_eq!(Record::decode(&[0xFF, 0xFF, 0xFF, 0x7F, 0]), Ok(None));
        assert_eq!(
            Record::decode(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(JournalError::Checksum)
        );
        assert_eq!(
            Record::decode(&[0x00, 1, 2, 3]),
            Err(JournalError::Checksum)
        );
        assert!(matches!(
            Record::Done(id(1)).encode(&mut buf[..3]),
            Err(JournalError::BufferTooSmall { needed: 8, .. })
        ));
    }
}
