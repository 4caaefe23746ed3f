//! Numbered payloads, and counting them on arrival.

use std::collections::BTreeMap;
use std::fmt;

use mqtt_sansio::QoS;

/// The payload of message `seq` at `qos` from `source`: `"{source}:{qos}:{seq}"`, padded with
/// `.` to `size` bytes when that is longer.
pub fn payload(source: u16, qos: QoS, seq: u32, size: usize) -> Vec<u8> {
    let mut p = format!("{source}:{}:{seq}", qos as u8).into_bytes();
    if p.len() < size {
        p.resize(size, b'.');
    }
    p
}

/// The `(source, qos, seq)` of a [`payload`], or `None` for anything else.
pub fn parse_payload(payload: &[u8]) -> Option<(u16, QoS, u32)> {
    let end = payload
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(payload.len());
    let text = std::str::from_utf8(&payload[..end]).ok()?;
    let mut parts = text.split(':');
    let source = parts.next()?.parse().ok()?;
    let qos = QoS::from_u8(parts.next()?.parse().ok()?)?;
    let seq = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((source, qos, seq))
}

/// Deliveries of numbered messages: how often each `(source, qos, seq)` arrived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    seen: BTreeMap<(u16, u8), BTreeMap<u32, u32>>,
    /// Deliveries with a payload that is not a numbered one.
    pub foreign: u64,
    /// Deliveries that carried the DUP flag.
    pub dup_flagged: u64,
    /// Deliveries whose QoS differs from the one in the payload.
    pub qos_mismatch: u64,
}

impl Tally {
    /// Counts one delivery.
    pub fn record(&mut self, payload: &[u8], qos: Option<QoS>, dup: bool) {
        let Some((source, sent_qos, seq)) = parse_payload(payload) else {
            self.foreign += 1;
            return;
        };
        if dup {
            self.dup_flagged += 1;
        }
        if qos.is_some_and(|q| q != sent_qos) {
            self.qos_mismatch += 1;
        }
        *self
            .seen
            .entry((source, sent_qos as u8))
            .or_default()
            .entry(seq)
            .or_default() += 1;
    }

    /// How many distinct messages of `source` at `qos` arrived.
    pub fn distinct(&self, source: u16, qos: QoS) -> usize {
        self.seen.get(&(source, qos as u8)).map_or(0, BTreeMap::len)
    }

    /// All deliveries of `source` at `qos`.
    pub fn deliveries(&self, source: u16, qos: QoS) -> u64 {
        self.seen
            .get(&(source, qos as u8))
            .map_or(0, |m| m.values().map(|&c| u64::from(c)).sum())
    }

    /// What happened to messages `0..sent` of `source` at `qos`.
    pub fn verdict(&self, source: u16, qos: QoS, sent: u32) -> Verdict {
        let empty = BTreeMap::new();
        let seen = self.seen.get(&(source, qos as u8)).unwrap_or(&empty);
        let mut v = Verdict {
            qos,
            sent,
            ..Verdict::default()
        };
        for seq in 0..sent {
            match seen.get(&seq).copied().unwrap_or(0) {
                0 => {
                    v.lost += 1;
                    if v.first_lost.len() < 10 {
                        v.first_lost.push(seq);
                    }
                }
                n => {
                    v.received += 1;
                    v.deliveries += u64::from(n);
                    if n > 1 {
                        v.duplicated += 1;
                    }
                }
            }
        }
        v.unexpected = seen.keys().filter(|&&s| s >= sent).count() as u32;
        v
    }
}

/// What happened to a numbered stream at one QoS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The QoS.
    pub qos: QoS,
    /// Messages sent (numbered `0..sent`).
    pub sent: u32,
    /// Distinct messages received.
    pub received: u32,
    /// Deliveries in all (with duplicates).
    pub deliveries: u64,
    /// Messages never received.
    pub lost: u32,
    /// Messages received more than once.
    pub duplicated: u32,
    /// Numbers outside `0..sent` received.
    pub unexpected: u32,
    /// The first few lost numbers.
    pub first_lost: Vec<u32>,
}

impl Default for Verdict {
    fn default() -> Self {
        Self {
            qos: QoS::AtMostOnce,
            sent: 0,
            received: 0,
            deliveries: 0,
            lost: 0,
            duplicated: 0,
            unexpected: 0,
            first_lost: Vec::new(),
        }
    }
}

impl Verdict {
    /// Whether the QoS guarantee held: QoS 1 lost none, QoS 2 lost none and duplicated none
    /// (QoS 0 promises nothing), and nothing unexpected arrived.
    pub fn holds(&self) -> bool {
        let guarantee = match self.qos {
            QoS::AtMostOnce => true,
            QoS::AtLeastOnce => self.lost == 0,
            QoS::ExactlyOnce => self.lost == 0 && self.duplicated == 0,
        };
        guarantee && self.unexpected == 0
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "QoS {}: sent {}, received {} ({} deliveries), lost {}, duplicated {}",
            self.qos as u8, self.sent, self.received, self.deliveries, self.lost, self.duplicated
        )?;
        if self.unexpected > 0 {
            write!(f, ", unexpected {}", self.unexpected)?;
        }
        if !self.first_lost.is_empty() {
            write!(f, " (first lost {:?})", self.first_lost)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_count() {
        let p = payload(3, QoS::ExactlyOnce, 41, 32);
        assert_eq!(p.len(), 32);
        assert_eq!(parse_payload(&p), Some((3, QoS::ExactlyOnce, 41)));
        assert_eq!(parse_payload(b"hello"), None);
        let mut t = Tally::default();
        for seq in [0, 1, 1, 3] {
            t.record(
                &payload(3, QoS::ExactlyOnce, seq, 0),
                Some(QoS::ExactlyOnce),
                false,
            );
        }
        t.record(b"x", None, false);
        let v = t.verdict(3, QoS::ExactlyOnce, 4);
        assert_eq!(
            (v.received, v.lost, v.duplicated, v.deliveries),
            (3, 1, 1, 4)
        );
        assert_eq!(v.first_lost, [2]);
        assert!(!v.holds());
        assert_eq!(t.foreign, 1);
        let v = t.verdict(3, QoS::AtLeastOnce, 0);
        assert!(v.holds());
    }
}
