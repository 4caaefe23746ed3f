//! Tables of the store that grow while the session lives, for stores that can grow (a
//! `Vec<u8>` on a PC): a client then holds a small store while idle and takes memory only
//! when a flood of QoS 2 messages or a long list of subscriptions needs it. When to grow and
//! by how much is the session's decision ([`Session::wants_room`]); the driver only
//! allocates ([`Session::resize_region`]). A fixed store never grows: leave the limits at 0.

use super::incoming::ENTRY;
use super::{CommandError, Part, Session};
use crate::TopicFilter;

/// Bytes of a subscription table entry beside its filter (see `subscriptions`).
const ENTRY_HEADER: usize = 8;
/// Fewest incoming slots a growing table goes to.
const MIN_SLOTS: usize = 8;

/// A region of the store that [`Session::resize_region`] can resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Region {
    /// The table of incoming QoS 2 messages awaiting PUBREL (and, with manual acks, of
    /// messages awaiting the application), 4 bytes a slot
    /// ([`SessionConfig::incoming_slots`](super::SessionConfig::incoming_slots)).
    Incoming,
    /// The subscriptions kept for renewal
    /// ([`SessionConfig::subscription_bytes`](super::SessionConfig::subscription_bytes)).
    Subscriptions,
    /// The room for the CONNECT, DISCONNECT or AUTH being sent
    /// ([`SessionConfig::control_bytes`](super::SessionConfig::control_bytes)). A command
    /// whose packet does not fit fails with [`CommandError::StoreFull`] saying how large the
    /// region must be; a driver that grows it and calls again needs to keep only a small
    /// region while idle, which the session asks to shrink back to once the packet is sent.
    Control,
    /// The queue of outgoing packets, the last region of the store: its length is the
    /// queue's capacity ([`Session::store_usage`]), and resizing it is
    /// [`Session::resize_store`] to [`Session::reserved_len`] plus that length. Asked for
    /// when a renewal SUBSCRIBE needs more room than the queue has
    /// ([`SessionConfig::queue_bytes_limit`](super::SessionConfig::queue_bytes_limit)).
    Queue,
}

/// Table bytes `filters` take once granted.
pub(super) fn table_bytes<'a>(filters: impl Iterator<Item = TopicFilter<'a>>) -> usize {
    filters.map(|f| ENTRY_HEADER + f.as_str().len()).sum()
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Session<B> {
    /// A region the session wants resized, and the length in bytes it wants for it: larger
    /// when the incoming table is full (the next QoS 2 message would otherwise be left with
    /// the broker, [`LostReason::Resync`](super::LostReason::Resync)) or when the
    /// subscriptions awaiting SUBACK would not fit the table; back to its first size when the
    /// incoming table has emptied after growing. Never beyond
    /// [`SessionConfig::incoming_slots_limit`](super::SessionConfig::incoming_slots_limit) and
    /// [`SessionConfig::subscription_bytes_limit`](super::SessionConfig::subscription_bytes_limit),
    /// so with both at 0 (the default) it is always `None`; and back to its first size for a
    /// control region that a driver grew (see [`Region::Control`]) once its packet is sent. A driver whose store can grow asks
    /// after every packet read and every command, and answers with
    /// [`Session::resize_region`].
    pub fn wants_room(&self) -> Option<(Region, usize)> {
        let slots = self.layout.incoming().len() / ENTRY;
        let limit = usize::from(self.config.incoming_slots_limit);
        let live = self.incoming.len();
        if live >= slots && slots < limit {
            let grown = (slots * 2).clamp(MIN_SLOTS, limit);
            return Some((Region::Incoming, grown * ENTRY));
        }
        if live == 0 && slots > self.incoming_initial {
            return Some((Region::Incoming, self.incoming_initial * ENTRY));
        }
        let table = self.layout.subscriptions().len();
        let limit = self.config.subscription_bytes_limit;
        let needed = self.subscriptions.used() + self.sub_outstanding;
        if self.keeps_subscriptions() && needed > table && table < limit {
            return Some((Region::Subscriptions, (table * 2).max(needed).min(limit)));
        }
        let control = self.config.control_region();
        if self.conn.control == super::Control::None && self.layout.control().len() > control {
            return Some((Region::Control, control));
        }
        self.queue_wanted().map(|len| (Region::Queue, len))
    }

    /// The queue capacity a renewal SUBSCRIBE that found no room needs, when the queue may
    /// grow to it: doubled at least, so that a long list of renewals grows it a few times
    /// rather than once per SUBSCRIBE.
    fn queue_wanted(&self) -> Option<usize> {
        if !cfg!(feature = "subscription-renewal")
            || self.renew_blocked != Some(self.log.generation())
        {
            return None;
        }
        let limit = self.config.queue_bytes_limit;
        let (_, capacity) = self.store_usage();
        if capacity >= limit {
            return None;
        }
        let region = super::store_region(&self.store, &self.layout.subscriptions());
        let renewal = self
            .subscriptions
            .next_renewal(region, self.version(), self.renewal_max())?
            .ok()?;
        let needed = self.log.live() + super::store::HEADER + renewal.encoded_len();
        (needed > capacity).then(|| needed.max(capacity * 2).min(limit))
    }

    /// Resizes `region` to `new_len` bytes, moving the regions behind it (the queue of
    /// outgoing packets among them, unchanged). `resize(store, len)` must leave the store
    /// `len` bytes long with its first bytes unchanged (for a `Vec<u8>`, `resize` and
    /// `truncate`). An incoming table holds whole slots, so `new_len` is rounded down to a
    /// multiple of 4.
    ///
    /// Any message lent by [`Session::abandoned_message`] is no longer available afterwards.
    ///
    /// # Errors
    /// [`CommandError::StoreFull`] when what the region holds does not fit `new_len`; the
    /// store is then not touched. [`CommandError::InvalidState`] when `resize` did not leave
    /// the store the length asked for: give the session a store of the old length back
    /// before using it.
    pub fn resize_region(
        &mut self,
        region: Region,
        new_len: usize,
        resize: impl FnOnce(&mut B, usize),
    ) -> Result<(), CommandError> {
        let part = match region {
            Region::Incoming => Part::Incoming,
            Region::Subscriptions => Part::Subscriptions,
            Region::Control => Part::Control,
            // The last region: the store's length is the queue's.
            Region::Queue => {
                let store_len = self.reserved_len().saturating_add(new_len);
                return self.resize_store(store_len, resize);
            }
        };
        let range = self.layout.range(part);
        let new_len = match part {
            Part::Incoming => new_len - new_len % ENTRY,
            _ => new_len,
        };
        let old_len = range.len();
        if new_len < old_len {
            let held = match part {
                Part::Incoming => self.incoming.extent(&self.store.as_ref()[range.clone()]),
                Part::Subscriptions => self.subscriptions.used(),
                _ => match self.conn.control {
                    super::Control::None => 0,
                    _ => self.conn.control_len,
                },
            };
            if held > new_len {
                return Err(CommandError::StoreFull {
                    needed: held,
                    available: new_len,
                });
            }
        }
        let total = self.store.as_ref().len();
        let new_total = total + new_len - old_len;
        if new_len > old_len {
            resize(&mut self.store, new_total);
            if self.store.as_ref().len() != new_total {
                return Err(CommandError::InvalidState);
            }
            let store = self.store.as_mut();
            store.copy_within(range.end..total, range.start + new_len);
            store[range.end..range.start + new_len].fill(0);
        } else if new_len < old_len {
            let store = self.store.as_mut();
            store.copy_within(range.end..total, range.start + new_len);
            resize(&mut self.store, new_total);
            if self.store.as_ref().len() != new_total {
                return Err(CommandError::InvalidState);
            }
        } else {
            return Ok(());
        }
        // The regions behind move with its end.
        self.layout.set_end(part, range.start + new_len);
        self.reported = None;
        // Renewals that waited for room in the table look again.
        self.renew_blocked = None;
        Ok(())
    }

    /// Bytes of the store that are not the queue's capacity: the tables, the control region
    /// and the packet-id index as they are now (at first
    /// [`SessionConfig::reserved_bytes`](super::SessionConfig::reserved_bytes)). A store of
    /// `reserved_len() + n` bytes queues `n` bytes of packets.
    pub fn reserved_len(&self) -> usize {
        let region = &self.store.as_ref()[self.layout.log()];
        self.store.as_ref().len() - self.log.capacity(region)
    }
}
