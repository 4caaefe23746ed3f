//! The subscriptions the broker granted, kept so that the session can renew them when a broker
//! comes back without our session (CONNACK session present 0).
//!
//! A region of the store holds entries of `[identifier u32][flags u8][options u8][len u16]
//! [filter bytes]`, in the order the broker granted them. The identifier is the 5.0
//! Subscription Identifier of the SUBSCRIBE (0: none); the options are the subscription
//! options byte as sent. A flag marks an entry the broker's session lacks as far as we know,
//! which the session turns into renewal SUBSCRIBEs as the log has room for them.

use core::num::NonZeroU32;

use super::store::{self, Entry, Kind, Record, State};
use super::{decode_record, Raised, Session};
use crate::wire::{self, SliceWriter, Write};
use crate::{
    Packet, PacketId, ProtocolVersion, QoS, ReasonCode, Seq, Subscription, SubscriptionOptions,
    TopicFilter,
};

const HEADER: usize = 8;
/// The entry is not known to be in the broker's session: it waits to be renewed.
const UNRENEWED: u8 = 1;
/// Property identifier of the Subscription Identifier.
const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;

/// Bookkeeping of the table; the entries live in the region.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    used: usize,
    unrenewed: usize,
    /// Entries were added or removed since the journal last took the table.
    pub(crate) changed: bool,
}

/// An entry's header, read from the region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kept {
    at: usize,
    pub(crate) identifier: u32,
    flags: u8,
    pub(crate) options: u8,
    len: usize,
}

impl Kept {
    fn size(&self) -> usize {
        HEADER + self.len
    }

    pub(crate) fn filter<'r>(&self, region: &'r [u8]) -> &'r [u8] {
        region
            .get(self.at + HEADER..self.at + HEADER + self.len)
            .unwrap_or_default()
    }

    fn unrenewed(&self) -> bool {
        self.flags & UNRENEWED != 0
    }

    /// Bytes of this filter in a SUBSCRIBE payload: length, filter, options.
    fn wire_len(&self) -> usize {
        2 + self.len + 1
    }
}

impl Subscriptions {
    /// The entry at offset `at`, if one starts there.
    fn entry_at(&self, region: &[u8], at: usize) -> Option<Kept> {
        let h = region.get(at..at + HEADER).filter(|_| at < self.used)?;
        Some(Kept {
            at,
            identifier: u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            flags: h[4],
            options: h[5],
            len: usize::from(u16::from_le_bytes([h[6], h[7]])),
        })
    }

    pub(crate) fn entries<'r>(&'r self, region: &'r [u8]) -> impl Iterator<Item = Kept> + 'r {
        let mut at = 0;
        core::iter::from_fn(move || {
            let e = self.entry_at(region, at)?;
            at += e.size();
            Some(e)
        })
    }

    /// Whether any entry waits to be renewed.
    pub(crate) fn has_unrenewed(&self) -> bool {
        cfg!(feature = "subscription-renewal") && self.unrenewed > 0
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Bytes of the region the entries take.
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    fn find(&self, region: &[u8], filter: &str) -> Option<Kept> {
        self.entries(region)
            .find(|e| e.filter(region) == filter.as_bytes())
    }

    /// Forgets `filter`; whether it was kept.
    pub(crate) fn remove(&mut self, region: &mut [u8], filter: &str) -> bool {
        match self.find(region, filter) {
            Some(e) => {
                self.remove_entry(region, &e);
                true
            }
            None => false,
        }
    }

    /// Forgets the entry `e` just read from the region.
    pub(crate) fn remove_entry(&mut self, region: &mut [u8], e: &Kept) {
        region.copy_within(e.at + e.size()..self.used, e.at);
        self.used -= e.size();
        self.changed = true;
        if e.unrenewed() {
            self.unrenewed -= 1;
        }
    }

    /// Keeps `filter` with its options byte and identifier, replacing an entry for the same
    /// filter (whose room it then has). `false` when the region has no room.
    pub(crate) fn insert(
        &mut self,
        region: &mut [u8],
        filter: &str,
        options: u8,
        identifier: Option<NonZeroU32>,
    ) -> bool {
        self.remove(region, filter);
        let size = HEADER + filter.len();
        let Ok(len) = u16::try_from(filter.len()) else {
            return false;
        };
        let Some(dst) = region.get_mut(self.used..self.used + size) else {
            return false;
        };
        let identifier = identifier.map_or(0, NonZeroU32::get);
        dst[..4].copy_from_slice(&identifier.to_le_bytes());
        dst[4] = 0;
        dst[5] = options;
        dst[6..8].copy_from_slice(&len.to_le_bytes());
        dst[HEADER..].copy_from_slice(filter.as_bytes());
        self.used += size;
        self.changed = true;
        true
    }

    /// The table's bytes as the journal keeps them: the entries, each marked renewed.
    pub(crate) fn table<'r>(&self, region: &'r [u8]) -> &'r [u8] {
        region.get(..self.used).unwrap_or_default()
    }

    /// Replaces the table with `table`, a journal's copy; `None` when it is not a table of
    /// valid filters or does not fit.
    pub(crate) fn restore(&mut self, region: &mut [u8], table: &[u8]) -> Option<()> {
        let dst = region.get_mut(..table.len())?;
        let mut at = 0;
        while at < table.len() {
            let h = table.get(at..at + HEADER)?;
            let len = usize::from(u16::from_le_bytes([h[6], h[7]]));
            let filter = table.get(at + HEADER..at + HEADER + len)?;
            TopicFilter::new(core::str::from_utf8(filter).ok()?).ok()?;
            at += HEADER + len;
        }
        dst.copy_from_slice(table);
        self.used = table.len();
        self.unrenewed = 0;
        let mut at = 0;
        while let Some(e) = self.entry_at(region, at) {
            region[at + 4] &= !UNRENEWED;
            at += e.size();
        }
        Some(())
    }

    /// Forgets every entry.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The broker has none of our subscriptions: every entry waits to be renewed.
    pub(crate) fn mark_all_unrenewed(&mut self, region: &mut [u8]) {
        let mut count = 0;
        let mut at = 0;
        while let Some(e) = self.entry_at(region, at) {
            region[e.at + 4] |= UNRENEWED;
            at += e.size();
            count += 1;
        }
        self.unrenewed = count;
    }

    /// The next renewal to send: the identifier of the first unrenewed entry, and the offset
    /// up to which the unrenewed entries with that identifier fit a SUBSCRIBE of at most `max`
    /// bytes. Together they name a [`Renewal`]. `Err` with the entry when even that entry
    /// alone does not fit.
    pub(crate) fn next_renewal(
        &self,
        region: &[u8],
        version: ProtocolVersion,
        max: usize,
    ) -> Option<Result<Renewal, Kept>> {
        let first = self.entries(region).find(Kept::unrenewed)?;
        let mut renewal = Renewal {
            identifier: first.identifier,
            end: first.at,
            payload: 0,
            version,
        };
        let identifier = first.identifier;
        let same = |e: &Kept| e.unrenewed() && e.identifier == identifier;
        for e in self.entries(region).filter(same) {
            let grown = Renewal {
                payload: renewal.payload + e.wire_len(),
                end: e.at + e.size(),
                ..renewal
            };
            if grown.encoded_len() > max {
                break;
            }
            renewal = grown;
        }
        if renewal.payload == 0 {
            return Some(Err(first));
        }
        Some(Ok(renewal))
    }

    /// Writes the SUBSCRIBE that renews `renewal` into `buf`, which is exactly
    /// [`Renewal::encoded_len`] long.
    pub(crate) fn encode(&self, region: &[u8], renewal: &Renewal, pid: PacketId, buf: &mut [u8]) {
        let mut w = SliceWriter::new(buf);
        w.put_u8(0x82);
        w.put_var_int(renewal.remaining_len());
        w.put_u16(pid.get());
        if renewal.version.v5() {
            let props = renewal.properties_len();
            w.put_var_int(props);
            if props > 0 {
                w.put_u8(SUBSCRIPTION_IDENTIFIER);
                w.put_var_int(renewal.identifier as usize);
            }
        }
        for e in self.entries(region).filter(|e| renewal.takes(e)) {
            w.put_binary(e.filter(region));
            w.put_u8(e.options);
        }
    }

    /// The entries of `renewal` were queued: they no longer wait.
    pub(crate) fn mark_queued(&mut self, region: &mut [u8], renewal: &Renewal) {
        let mut at = 0;
        while let Some(e) = self.entry_at(region, at) {
            if renewal.takes(&e) {
                region[e.at + 4] &= !UNRENEWED;
                self.unrenewed -= 1;
            }
            at += e.size();
        }
    }
}

/// One renewal SUBSCRIBE: the unrenewed entries before `end` that carry `identifier`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Renewal {
    identifier: u32,
    end: usize,
    /// Bytes of the filters and options.
    payload: usize,
    version: ProtocolVersion,
}

impl Renewal {
    fn takes(&self, e: &Kept) -> bool {
        e.unrenewed() && e.identifier == self.identifier && e.at < self.end
    }

    fn properties_len(&self) -> usize {
        match self.identifier {
            0 => 0,
            id => 1 + wire::var_int_len(id as usize),
        }
    }

    fn remaining_len(&self) -> usize {
        let props = if self.version.v5() {
            let p = self.properties_len();
            wire::var_int_len(p) + p
        } else {
            0
        };
        2 + props + self.payload
    }

    /// Size of the SUBSCRIBE, fixed header included.
    pub(crate) fn encoded_len(&self) -> usize {
        let remaining = self.remaining_len();
        1 + wire::var_int_len(remaining) + remaining
    }
}

/// How the session fills and uses the table.
impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    pub(super) fn keeps_subscriptions(&self) -> bool {
        cfg!(feature = "subscription-renewal") && !self.layout.subscriptions().is_empty()
    }

    /// SUBACK answered the SUBSCRIBE (or renewal) `record`: granted filters are kept,
    /// refused ones forgotten. Once one granted filter finds no room, it and the later
    /// granted ones are not kept (an older entry of theirs is dropped, since it no longer
    /// says what the broker has), and a notice names the first.
    pub(super) fn keep_granted(&mut self, record: &Record, codes: &Seq<'_, ReasonCode>) {
        if !self.keeps_subscriptions() {
            return;
        }
        let store = self.store.as_mut();
        let (head, log) = store.split_at_mut(self.layout.log().start);
        let table = &mut head[self.layout.subscriptions()];
        let Some(Packet::Subscribe(s)) = decode_record(log, record) else {
            return;
        };
        if record.kind == Kind::Subscribe {
            let bytes = super::room::table_bytes(s.subscriptions.iter().map(|s| s.filter));
            self.sub_outstanding = self.sub_outstanding.saturating_sub(bytes);
        }
        let identifier = s.properties.subscription_identifier;
        let mut not_kept = None;
        for (index, (sub, code)) in s.subscriptions.iter().zip(codes.iter()).enumerate() {
            let filter = sub.filter.as_str();
            if code.is_error() || not_kept.is_some() {
                self.subscriptions.remove(table, filter);
            } else if !self
                .subscriptions
                .insert(table, filter, sub.options.to_byte(), identifier)
            {
                not_kept = Some(u16::try_from(index).unwrap_or(u16::MAX));
            }
        }
        if let (Some(index), Some(pid)) = (not_kept, PacketId::new(record.pid)) {
            self.raise(Raised::NotRenewable(pid, index));
        }
    }

    /// The application's SUBSCRIBE `record` left the log unanswered (dropped as unsendable):
    /// the table room it was counted for ahead of its SUBACK is no longer wanted.
    pub(super) fn subscribe_dropped(&mut self, record: &Record) {
        if !self.keeps_subscriptions() {
            return;
        }
        let log = &self.store.as_ref()[self.layout.log()];
        if let Some(Packet::Subscribe(s)) = decode_record(log, record) {
            let bytes = super::room::table_bytes(s.subscriptions.iter().map(|s| s.filter));
            self.sub_outstanding = self.sub_outstanding.saturating_sub(bytes);
        }
    }

    /// UNSUBACK answered the UNSUBSCRIBE `record`: filters the broker no longer has (Success,
    /// No Subscription Existed; every filter on 3.1.1, whose UNSUBACK has no codes) are
    /// forgotten.
    pub(super) fn forget_unsubscribed(&mut self, record: &Record, codes: &Seq<'_, ReasonCode>) {
        if !self.keeps_subscriptions() {
            return;
        }
        let v5 = self.version().v5();
        let store = self.store.as_mut();
        let (head, log) = store.split_at_mut(self.layout.log().start);
        let table = &mut head[self.layout.subscriptions()];
        let Some(Packet::Unsubscribe(u)) = decode_record(log, record) else {
            return;
        };
        let mut codes = codes.iter();
        for filter in u.filters.iter() {
            let gone = match codes.next() {
                Some(code) => matches!(
                    code,
                    ReasonCode::Success | ReasonCode::NoSubscriptionExisted
                ),
                None => !v5,
            };
            if gone {
                self.subscriptions.remove(table, filter.as_str());
            }
        }
    }

    /// The broker came back without our session: it has none of the kept subscriptions.
    /// Renewals queued for an earlier connection are superseded.
    pub(super) fn subscriptions_lost(&mut self) {
        // Without the feature none are kept, and no renewal is ever queued.
        if !cfg!(feature = "subscription-renewal") || self.subscriptions.is_empty() {
            return;
        }
        let store = self.store.as_mut();
        let (head, log) = store.split_at_mut(self.layout.log().start);
        let mut at = self.log.head();
        while let Some(r) = self.log.record(log, at) {
            at = r.next();
            if r.kind == Kind::Resubscribe {
                self.log.set_state(log, r.at, State::Dead);
            }
        }
        let table = &mut head[self.layout.subscriptions()];
        self.subscriptions.mark_all_unrenewed(table);
        self.renew_blocked = None;
    }

    /// Queues renewal SUBSCRIBEs for the kept subscriptions the broker lacks, as many as the
    /// log has room for; the rest wait until it has more. A subscription this broker cannot
    /// take is removed and reported instead.
    pub(super) fn queue_renewals(&mut self) {
        while self.subscriptions.has_unrenewed()
            && self.renew_blocked != Some(self.log.generation())
        {
            if !self.drop_unrenewable() {
                return;
            }
            let max = self.renewal_max();
            let region = super::store_region(&self.store, &self.layout.subscriptions());
            let renewal = match self.subscriptions.next_renewal(region, self.version(), max) {
                None => return,
                Some(Ok(renewal)) => renewal,
                Some(Err(too_large)) => {
                    if !self.raise(Raised::RenewalDropped(ReasonCode::PacketTooLarge)) {
                        return;
                    }
                    let table =
                        super::store_region_mut(&mut self.store, &self.layout.subscriptions());
                    self.subscriptions.remove_entry(table, &too_large);
                    continue;
                }
            };
            let mark = self.id_mark();
            let Ok(pid) = self.allocate_packet_id() else {
                return;
            };
            let version = self.version();
            let store = self.store.as_mut();
            let (head, log) = store.split_at_mut(self.layout.log().start);
            let table = &mut head[self.layout.subscriptions()];
            let entry = Entry {
                kind: Kind::Resubscribe,
                state: State::Unsent,
                pid: pid.get(),
                qos: QoS::AtMostOnce,
                v5: version.v5(),
                streamed: false,
            };
            let subscriptions = &self.subscriptions;
            let appended = self.log.append(log, entry, renewal.encoded_len(), |buf| {
                subscriptions.encode(table, &renewal, pid, buf);
            });
            if appended.is_err() {
                self.restore_ids(mark);
                self.renew_blocked = Some(self.log.generation());
                return;
            }
            // The append may have compacted over an abandoned message's bytes.
            self.reported = None;
            self.subscriptions.mark_queued(table, &renewal);
            self.conn.renewing = true;
        }
    }

    /// The largest renewal SUBSCRIBE: within the broker's Maximum Packet Size, the driver's
    /// transmit buffer and the log, or the log it may grow to
    /// ([`SessionConfig::queue_bytes_limit`](super::SessionConfig::queue_bytes_limit)).
    pub(super) fn renewal_max(&self) -> usize {
        let broker = self
            .limits
            .maximum_packet_size
            .map_or(usize::MAX, |m| m.get() as usize);
        let transmit = match self.config.transmit_capacity {
            0 => usize::MAX,
            n => n,
        };
        let region = super::store_region(&self.store, &self.layout.log());
        let capacity = self.log.capacity(region).max(self.config.queue_bytes_limit);
        let log = capacity.saturating_sub(store::HEADER);
        // The largest packet MQTT can frame: 1 byte of type, 4 of length.
        let mqtt = crate::MAX_REMAINING_LENGTH as usize + 5;
        broker.min(transmit).min(log).min(mqtt)
    }

    /// Removes the unrenewed subscriptions this broker refuses (shared subscriptions,
    /// wildcards, subscription identifiers it lacks; 5.0 options on 3.1.1), reporting each.
    /// `false` when the events are full: the rest waits until they are taken.
    fn drop_unrenewable(&mut self) -> bool {
        loop {
            let region = super::store_region(&self.store, &self.layout.subscriptions());
            let refused = self.subscriptions.entries(region).find_map(|e| {
                let reason = e.unrenewed().then(|| self.renewal_refusal(region, &e))??;
                Some((e, reason))
            });
            let Some((e, reason)) = refused else {
                return true;
            };
            if !self.raise(Raised::RenewalDropped(reason)) {
                return false;
            }
            let table = super::store_region_mut(&mut self.store, &self.layout.subscriptions());
            self.subscriptions.remove_entry(table, &e);
        }
    }

    /// Why this broker would refuse to renew `e`, if it would.
    fn renewal_refusal(&self, region: &[u8], e: &Kept) -> Option<ReasonCode> {
        let refused = Some(ReasonCode::UnsupportedProtocolVersion);
        let filter = core::str::from_utf8(e.filter(region)).ok();
        let Some(filter) = filter.and_then(|f| TopicFilter::new(f).ok()) else {
            return refused;
        };
        let Ok(options) = SubscriptionOptions::from_byte(e.options, self.version()) else {
            return refused;
        };
        if !self.version().v5() && options != SubscriptionOptions::new(options.qos) {
            return refused;
        }
        let properties = crate::SubscribeProperties {
            subscription_identifier: NonZeroU32::new(e.identifier),
            ..Default::default()
        };
        self.limits
            .refuses([Subscription { filter, options }], &properties)
    }

    /// A renewal SUBSCRIBE queued for an earlier connection that this broker cannot take: its
    /// filters are forgotten and reported instead.
    pub(super) fn renewal_unsendable(&mut self, record: &Record) {
        let store = self.store.as_mut();
        let (head, log) = store.split_at_mut(self.layout.log().start);
        let table = &mut head[self.layout.subscriptions()];
        if let Some(Packet::Subscribe(s)) = decode_record(log, record) {
            for sub in s.subscriptions.iter() {
                self.subscriptions.remove(table, sub.filter.as_str());
            }
        }
    }

    /// The renewal whose SUBACK an earlier read reported is done with.
    pub(super) fn retire_answered(&mut self) {
        // Only a renewal is answered, and only the feature queues renewals.
        let answered = self
            .answered
            .take()
            .filter(|_| cfg!(feature = "subscription-renewal"));
        let Some(pid) = answered else {
            return;
        };
        let region = super::store_region_mut(&mut self.store, &self.layout.log());
        let answered = self.log.find(region, |r| {
            r.kind == Kind::Resubscribe && r.pid == pid.get() && r.state == State::Answered
        });
        if let Some(r) = answered {
            self.log.set_state(region, r.at, State::Dead);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(all(feature = "v5", feature = "server"))]
    use crate::{Decoded, Packet, QoS, Subscription};
    #[cfg(all(feature = "v5", feature = "server"))]
    use std::string::ToString;

    fn id(n: u32) -> Option<NonZeroU32> {
        NonZeroU32::new(n)
    }

    #[test]
    fn insert_replaces_and_remove_closes_the_gap() {
        let mut region = [0u8; 64];
        let mut t = Subscriptions::default();
        assert!(t.insert(&mut region, "a/b", 1, None));
        assert!(t.insert(&mut region, "c", 2, id(7)));
        assert!(t.insert(&mut region, "a/b", 0, id(3)));
        let kept: std::vec::Vec<_> = t
            .entries(&region)
            .map(|e| (e.filter(&region).to_vec(), e.options, e.identifier))
            .collect();
        assert_eq!(kept, [(b"c".to_vec(), 2, 7), (b"a/b".to_vec(), 0, 3)]);
        assert!(t.remove(&mut region, "c"));
        assert!(!t.remove(&mut region, "c"));
        assert_eq!(t.entries(&region).count(), 1);
    }

    #[test]
    fn a_full_region_refuses_a_new_filter_but_not_a_replacement() {
        let mut region = [0u8; 24];
        let mut t = Subscriptions::default();
        assert!(t.insert(&mut region, "abcd", 1, None));
        assert!(!t.insert(&mut region, "efghijklm", 1, None));
        assert!(t.insert(&mut region, "x", 0, None));
        assert_eq!(t.entries(&region).count(), 2);
        // A replacement has the room of the entry it replaces.
        assert!(t.insert(&mut region, "abcd", 2, id(1)));
    }

    // 5.0 renewals, read back with the server's decoder.
    #[cfg(all(feature = "v5", feature = "server"))]
    #[test]
    fn renewals_group_by_identifier_split_by_size_and_decode() {
        let mut region = [0u8; 256];
        let mut t = Subscriptions::default();
        for (f, n) in [("a", 5), ("b", 0), ("c", 5), ("dd", 5)] {
            assert!(t.insert(&mut region, f, QoS::AtLeastOnce as u8, id(n)));
        }
        t.mark_all_unrenewed(&mut region);
        let v = ProtocolVersion::V5;
        let mut seen = std::vec::Vec::new();
        // 15 bytes hold two one-letter filters with an identifier, not three.
        while let Some(r) = t.next_renewal(&region, v, 15) {
            let r = r.unwrap();
            let mut buf = std::vec![0u8; r.encoded_len()];
            t.encode(&region, &r, PacketId::MIN, &mut buf);
            t.mark_queued(&mut region, &r);
            let Ok(Decoded::Packet {
                packet: Packet::Subscribe(s),
                len,
            }) = Packet::decode(&buf, v, u32::MAX)
            else {
                panic!("{buf:?}")
            };
            assert_eq!(len, buf.len());
            let filters: std::vec::Vec<_> = s
                .subscriptions
                .iter()
                .map(|s: Subscription<'_>| s.filter.as_str().to_string())
                .collect();
            seen.push((s.properties.subscription_identifier, filters));
        }
        assert_eq!(
            seen,
            [
                (id(5), std::vec!["a".to_string(), "c".to_string()]),
                (None, std::vec!["b".to_string()]),
                (id(5), std::vec!["dd".to_string()]),
            ]
        );
        assert!(!t.has_unrenewed());
        // An entry too large for any SUBSCRIBE of `max` bytes is named.
        t.mark_all_unrenewed(&mut region);
        assert!(matches!(t.next_renewal(&region, v, 8), Some(Err(_))));
    }
}
