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

/// Whole milliseconds of `d`, saturating at `u64::MAX`: `Duration::as_millis` without its
/// `u128`, which costs a 32-bit microcontroller more code than the rest of the arithmetic.
pub(crate) fn millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_millis()))
}
