//! Acknowledgements waiting to be transmitted: a small fixed ring, so a flood of incoming
//! messages applies back-pressure instead of growing memory.

use crate::{PacketId, PacketType, ReasonCode};

/// Capacity of the ring.
pub(crate) const CAPACITY: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ack {
    pub(crate) packet_type: PacketType,
    pub(crate) packet_id: PacketId,
    pub(crate) reason_code: ReasonCode,
}

#[derive(Debug)]
pub(crate) struct Acks {
    items: [Option<Ack>; CAPACITY],
    head: usize,
    len: usize,
    /// The first `journaled` acknowledgements were looked at by the journal.
    journaled: usize,
}

impl Default for Acks {
    fn default() -> Self {
        Self {
            items: [None; CAPACITY],
            head: 0,
            len: 0,
            journaled: 0,
        }
    }
}

impl Acks {
    pub(crate) fn is_full(&self) -> bool {
        self.len == CAPACITY
    }

    /// Queues `ack`; `false` when full.
    pub(crate) fn push(&mut self, ack: Ack) -> bool {
        if self.is_full() {
            return false;
        }
        self.items[(self.head + self.len) % CAPACITY] = Some(ack);
        self.len += 1;
        true
    }

    pub(crate) fn front(&self) -> Option<Ack> {
        if self.len == 0 {
            return None;
        }
        // `head` is always below CAPACITY; the modulo says so to the compiler.
        self.items[self.head % CAPACITY]
    }

    pub(crate) fn pop(&mut self) {
        if self.len > 0 {
            self.items[self.head % CAPACITY] = None;
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
            self.journaled = self.journaled.saturating_sub(1);
        }
    }

    /// The first acknowledgement the journal has not looked at.
    pub(crate) fn next_unjournaled(&self) -> Option<Ack> {
        if self.journaled >= self.len {
            return None;
        }
        self.items[(self.head + self.journaled) % CAPACITY]
    }

    /// The journal looked at [`Acks::next_unjournaled`].
    pub(crate) fn mark_journaled(&mut self) {
        self.journaled = (self.journaled + 1).min(self.len);
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}
