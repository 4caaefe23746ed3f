//! Incoming QoS 2 messages not yet released, in a fixed table in the store: ids awaiting PUBREL
//! (so a resent PUBLISH is not delivered twice), and, in manual-ack mode, ids awaiting the
//! application's acknowledgement. QoS 1 needs no receiver state and is not tracked.

use crate::QoS;

/// Bytes per entry: packet id (2), state (1), QoS (1).
pub(crate) const ENTRY: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum InState {
    /// Delivered; the application has not acknowledged it yet (manual acks): PUBREC waits.
    AwaitingApp = 1,
    /// QoS 2: PUBREC queued or sent, waiting for PUBREL.
    AwaitingRel = 2,
}

#[derive(Debug, Default)]
pub(crate) struct Incoming {
    count: usize,
}

impl Incoming {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Slot index, state and QoS of the entry for `pid`.
    pub(crate) fn find(&self, region: &[u8], pid: u16) -> Option<(usize, InState, QoS)> {
        let pid = pid.to_le_bytes();
        // Entries fill the first free slots, so the live ones sit near the front: stop once
        // all of them were seen instead of walking a large, mostly empty table (the tokio
        // client keeps 1,024 slots, and every QoS 1 acknowledgement asks).
        let mut live = self.count;
        region
            .chunks_exact(ENTRY)
            .enumerate()
            .take_while(|(_, e)| {
                let more = live > 0;
                live -= usize::from(e[2] != 0);
                more
            })
            .find(|(_, e)| e[2] != 0 && e[..2] == pid)
            .map(|(i, e)| {
                let state = if e[2] == 1 {
                    InState::AwaitingApp
                } else {
                    InState::AwaitingRel
                };
                let qos = QoS::from_u8(e[3]).unwrap_or(QoS::ExactlyOnce);
                (i, state, qos)
            })
    }

    /// Bytes of `region` up to the end of its last live entry.
    pub(crate) fn extent(&self, region: &[u8]) -> usize {
        region
            .chunks_exact(ENTRY)
            .rposition(|e| e[2] != 0)
            .map_or(0, |i| (i + 1) * ENTRY)
    }

    /// Adds an entry; `false` when the table is full.
    pub(crate) fn insert(&mut self, region: &mut [u8], pid: u16, state: InState, qos: QoS) -> bool {
        let Some(e) = region.chunks_exact_mut(ENTRY).find(|e| e[2] == 0) else {
            return false;
        };
        e[..2].copy_from_slice(&pid.to_le_bytes());
        e[2] = state as u8;
        e[3] = qos as u8;
        self.count += 1;
        true
    }

    pub(crate) fn set_state(&mut self, region: &mut [u8], slot: usize, state: InState) {
        if let Some(e) = region.chunks_exact_mut(ENTRY).nth(slot) {
            e[2] = state as u8;
        }
    }

    pub(crate) fn remove(&mut self, region: &mut [u8], slot: usize) {
        if let Some(e) = region.chunks_exact_mut(ENTRY).nth(slot) {
            if e[2] != 0 {
                e[2] = 0;
                self.count -= 1;
            }
        }
    }

    pub(crate) fn clear(&mut self, region: &mut [u8]) {
        // Only write when something is set: a fresh zeroed store (a `vec![0; n]`) then keeps
        // its untouched pages unmapped instead of costing resident memory per client.
        if region.iter().any(|&b| b != 0) {
            region.fill(0);
        }
        self.count = 0;
    }
}
