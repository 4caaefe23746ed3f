//! A tiny deterministic PRNG (SplitMix64). Hand-rolled rather than a crate: the proxy needs a
//! few uniform draws per connection, reproducible from a seed, and nothing cryptographic.

use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): full period, good enough mixing for fault timing.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for stream `stream` of `seed`, so each connection and direction draws from
    /// its own sequence whatever order the tasks run in.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max` (with a negligible modulo bias).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(n) => self.next_u64() % n,
            None => self.next_u64(),
        }
    }

    /// Uniform in `min..=max` at microsecond resolution; `min` when `max <= min`.
    pub(crate) fn duration_between(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_micros();
        let span = u64::try_from(span).unwrap_or(u64::MAX);
        min + Duration::from_micros(self.up_to(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_bounds_hold() {
        let mut a = Rng::new(7, 3);
        let mut b = Rng::new(7, 3);
        let mut c = Rng::new(7, 4);
        let xs: Vec<u64> = (0..16).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..16).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..16).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let (lo, hi) = (Duration::from_millis(5), Duration::from_millis(9));
        for _ in 0..1000 {
            let d = a.duration_between(lo, hi);
            assert!(d >= lo && d <= hi);
        }
        assert_eq!(a.duration_between(hi, lo), hi);
    }
}
