//! Time as the session sees it: milliseconds from an epoch the driver picks.

use core::ops::Add;
use core::time::Duration;

/// A point in time, in milliseconds since an epoch chosen by the driver (boot, process start).
/// The session never reads a clock: every input carries the current `Instant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self(0);

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Self;

    /// Saturates at the end of time instead of overflowing.
    // One copy where size matters: it is used at every deadline.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(millis(rhs)))
    }
}

impl Instant {
    /// `self + ms` milliseconds, saturating at the end of time.
    // 64-bit arithmetic on a 32-bit microcontroller: one copy for every deadline.
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    pub(crate) const fn plus_millis(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// Whole milliseconds of `d.saturating_mul(1 << shift)`, or with `half` of that divided by
/// 2 (as `Duration`'s division truncates it), saturating at `u64::MAX`; computed without
/// `Duration`'s arithmetic (and its 64-bit divisions by 10^9 on a 32-bit microcontroller).
/// `s` seconds and `n` nanoseconds times `k` are `1000·s·k + ⌊n·k / 10^6⌋` whole
/// milliseconds, their half `500·s·k + ⌊n·k / (2·10^6)⌋` (a second is a whole number of
/// both), and `n·k < 2^50` for `shift` up to 20.
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(crate) fn millis_times(d: Duration, shift: u32, half: bool) -> u64 {
    let (per_second, nanos) = if half {
        (500, 2_000_000)
    } else {
        (1000, 1_000_000)
    };
    let whole = d.as_secs().saturating_mul(per_second);
    let whole = if whole > u64::MAX >> shift {
        u64::MAX
    } else {
        whole << shift
    };
    whole.saturating_add((u64::from(d.subsec_nanos()) << shift) / nanos)
}

/// Whole milliseconds of `d`, saturating at `u64::MAX`: `Duration::as_millis` without its
/// `u128`, which costs a 32-bit microcontroller more code than the rest of the arithmetic.
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}

#[cfg(test)]
mod millis_tests {
    use super::*;

    #[test]
    fn millis_times_is_the_duration_arithmetic_to_the_millisecond() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999),
            Duration::from_nanos(1_999_999),
            Duration::from_micros(1_500),
            Duration::new(1, 999_999_999),
            Duration::new(7, 3),
            Duration::new(u64::MAX / 3_000, 999_999_999),
            Duration::new(u64::MAX >> 20, 500_000_000),
            Duration::MAX,
        ];
        for d in durations {
            for shift in 0..=20 {
                let product = d.saturating_mul(1 << shift);
                assert_eq!(
                    millis_times(d, shift, false),
                    millis(product),
                    "{d:?} {shift}"
                );
                assert_eq!(
                    millis_times(d, shift, true),
                    millis(product / 2),
                    "{d:?} {shift}"
                );
            }
        }
    }
}
