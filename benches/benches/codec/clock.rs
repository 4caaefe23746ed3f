//! The clock the benches run on: the CPU time of the benchmarking thread.
//!
//! The machines these benches run on have two cores shared with builds and test runs. Wall time
//! then counts the time slices other processes took from us, and a median moves by 2x from one
//! minute to the next. Thread CPU time only counts what this thread ran, so contention costs
//! at most cache misses. `BENCH_CLOCK=wall` switches back to criterion's wall clock.

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// CPU time this thread has used, from `CLOCK_THREAD_CPUTIME_ID` (nanosecond resolution).
pub(crate) fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    // Both fields are non-negative for this clock.
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Whether the run uses wall time (`BENCH_CLOCK=wall`) instead of thread CPU time.
pub(crate) fn wall() -> bool {
    std::env::var("BENCH_CLOCK").is_ok_and(|v| v == "wall")
}

/// Reads the clock the run uses.
pub(crate) fn now() -> Duration {
    if wall() {
        // Wall time as a Duration since an arbitrary fixed point.
        use std::sync::OnceLock;
        use std::time::Instant;
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        EPOCH.get_or_init(Instant::now).elapsed()
    } else {
        thread_cpu_time()
    }
}

/// Criterion measurement over [`now`]; values and throughputs are shown like wall time.
pub(crate) struct BenchClock {
    wall: WallTime,
}

impl BenchClock {
    pub(crate) fn new() -> Self {
        Self { wall: WallTime }
    }
}

impl Measurement for BenchClock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        now()
    }

    fn end(&self, start: Duration) -> Duration {
        now().saturating_sub(start)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
