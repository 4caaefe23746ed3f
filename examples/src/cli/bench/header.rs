//! The send-time header of `mqtt bench pub` payloads (see
//! [`HEADER_HELP`](super::args::HEADER_HELP)), and the per-publisher sequence tracking that
//! counts lost and duplicated messages on the `sub` side.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The first four bytes of a timed payload.
pub const MAGIC: &[u8; 4] = b"MQB1";
/// Bytes of the header; shorter payloads carry none.
pub const LEN: usize = 24;

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Send time, nanoseconds since the Unix epoch.
    pub sent_ns: u64,
    /// The publishing process.
    pub run: u32,
    /// The publisher's client index.
    pub client: u32,
    /// The message's number within its publisher, from 0.
    pub seq: u32,
}

impl Header {
    /// Writes the header and filler into a payload of `size` bytes (the header alone is
    /// left out when it does not fit).
    pub fn payload(&self, size: usize) -> Vec<u8> {
        let mut payload = Vec::with_capacity(size);
        if size >= LEN {
            payload.extend_from_slice(MAGIC);
            payload.extend_from_slice(&self.sent_ns.to_be_bytes());
            payload.extend_from_slice(&self.run.to_be_bytes());
            payload.extend_from_slice(&self.client.to_be_bytes());
            payload.extend_from_slice(&self.seq.to_be_bytes());
        }
        payload.resize(size, b'x');
        payload
    }

    /// Reads the header of a payload, if it has one.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let bytes = payload.get(..LEN)?;
        if &bytes[..4] != MAGIC {
            return None;
        }
        let u32_at =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut sent = [0; 8];
        sent.copy_from_slice(&bytes[4..12]);
        Some(Self {
            sent_ns: u64::from_be_bytes(sent),
            run: u32_at(12),
            client: u32_at(16),
            seq: u32_at(20),
        })
    }
}

/// Nanoseconds since the Unix epoch (the wall clock, which both sides of a pub/sub pair
/// share on one host).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Which sequence numbers of each publisher one subscriber has seen.
#[derive(Debug, Default)]
pub struct Tracker {
    publishers: HashMap<(u32, u32), Seen>,
}

/// One publisher's sequence numbers: a bit each.
#[derive(Debug, Default)]
struct Seen {
    bits: Vec<u64>,
    unique: u64,
    highest: u32,
}

impl Tracker {
    /// Records one message; returns whether it was seen before.
    pub fn record(&mut self, header: &Header) -> bool {
        let seen = self
            .publishers
            .entry((header.run, header.client))
            .or_default();
        let seq = header.seq as usize;
        let (word, bit) = (seq / 64, seq % 64);
        if seen.bits.len() <= word {
            seen.bits.resize(word + 1, 0);
        }
        let duplicate = seen.bits[word] & (1 << bit) != 0;
        if !duplicate {
            seen.bits[word] |= 1 << bit;
            seen.unique += 1;
            seen.highest = seen.highest.max(header.seq);
        }
        duplicate
    }

    /// Messages missing so far (gaps below each publisher's highest sequence number).
    pub fn lost(&self) -> u64 {
        self.publishers
            .values()
            .map(|s| u64::from(s.highest) + 1 - s.unique)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u32) -> Header {
        Header {
            sent_ns: 1_700_000_000_123_456_789,
            run: 7,
            client: 3,
            seq,
        }
    }

    #[test]
    fn header_round_trips_and_short_payloads_have_none() {
        let payload = header(9).payload(64);
        assert_eq!(payload.len(), 64);
        assert_eq!(Header::parse(&payload), Some(header(9)));
        let short = header(9).payload(23);
        assert_eq!(short.len(), 23);
        assert_eq!(Header::parse(&short), None);
        assert_eq!(Header::parse(&[b'x'; 64]), None);
        assert_eq!(header(1).payload(LEN).len(), LEN);
    }

    #[test]
    fn tracker_counts_gaps_and_duplicates() {
        let mut t = Tracker::default();
        for seq in [0, 1, 3, 3, 200] {
            t.record(&header(seq));
        }
        // 0..=200 is 201 numbers; 4 distinct were seen.
        assert_eq!(t.lost(), 197);
        assert!(t.record(&header(1)));
        assert!(!t.record(&header(2)));
        assert_eq!(t.lost(), 196);
        let mut other = header(0);
        other.client = 4;
        t.record(&other);
        assert_eq!(t.lost(), 196);
    }
}
