//! Time for the client: a millisecond clock and a way to sleep until a deadline.

/// The client's source of time.
///
/// `now_ms` counts milliseconds from an epoch the implementation picks (boot, program start)
/// and must never go backwards. `sleep_until` completes at or after the given instant of that
/// same clock.
///
/// With the `embassy-time` feature, [`EmbassyClock`] implements it. On a host, an
/// implementation over `tokio::time` is a few lines (see the crate's tests).
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// Milliseconds since the clock's epoch.
    fn now_ms(&self) -> u64;

    /// Completes once `now_ms() >= deadline_ms`; immediately if that already holds.
    ///
    /// # Cancel safety
    /// Must be cancel-safe: [`Client::poll`](crate::Client::poll) drops this future whenever
    /// the socket becomes ready first, and creates a new one later.
    async fn sleep_until(&self, deadline_ms: u64);
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn sleep_until(&self, deadline_ms: u64) -> impl core::future::Future<Output = ()> {
        (**self).sleep_until(deadline_ms)
    }
}

/// [`Clock`] over `embassy-time`: milliseconds since boot, sleeping with `Timer::at`.
///
/// Needs an `embassy-time` driver in the final binary (the HAL's, e.g. `esp-hal`'s).
#[cfg(feature = "embassy-time")]
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        embassy_time::Instant::now().as_millis()
    }

    /// # Cancel safety
    /// Cancel-safe: an `embassy_time::Timer` holds no state but its deadline.
    // The timer itself, not an `async fn` around it: no state machine of its own.
    fn sleep_until(&self, deadline_ms: u64) -> impl core::future::Future<Output = ()> {
        embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline_ms))
    }
}
