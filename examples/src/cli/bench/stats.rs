//! What a bench run counts: live counters for the progress lines, latency histograms
//! (HdrHistogram, in microseconds) and the process's memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Counters shared by every client task, read by the progress line each second.
#[derive(Debug, Default)]
pub struct Counters {
    /// Clients whose first connection succeeded.
    pub connected: AtomicU64,
    /// Clients whose connection failed or was lost.
    pub connect_errors: AtomicU64,
    /// Subscriptions the broker granted.
    pub subscribed: AtomicU64,
    /// Messages handed to the client (queued).
    pub sent: AtomicU64,
    /// QoS 1/2 messages acknowledged (PUBACK / PUBCOMP), QoS 0 messages written.
    pub acked: AtomicU64,
    /// Messages received.
    pub received: AtomicU64,
    /// Publishes or subscriptions that failed.
    pub errors: AtomicU64,
}

/// Adds one.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Reads.
pub fn read(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A latency histogram that client tasks record into.
#[derive(Debug)]
pub struct Latency {
    histogram: Mutex<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        // 1 µs to one hour at 3 significant digits: about 190 KiB of counters, once per run.
        // Invariant: these bounds are valid (low >= 1, high >= 2 * low, sigfig <= 5).
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        Self {
            histogram: Mutex::new(histogram),
        }
    }
}

impl Latency {
    /// Records one sample.
    pub fn record(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        if let Ok(mut h) = self.histogram.lock() {
            h.saturating_record(us);
        }
    }

    /// Records a sample given in nanoseconds between two wall-clock readings (a clock
    /// step backwards counts as 1 µs).
    pub fn record_ns(&self, sent_ns: u64, received_ns: u64) {
        self.record(Duration::from_nanos(received_ns.saturating_sub(sent_ns)));
    }

    /// `p50 … max` in microseconds, or `None` without samples.
    pub fn line(&self) -> Option<String> {
        let h = self.histogram.lock().ok()?;
        if h.is_empty() {
            return None;
        }
        let q = |q: f64| h.value_at_quantile(q);
        Some(format!(
            "p50 {} p90 {} p99 {} p99.9 {} max {} (µs, {} samples, mean {:.0})",
            q(0.50),
            q(0.90),
            q(0.99),
            q(0.999),
            h.max(),
            h.len(),
            h.mean()
        ))
    }
}

/// The process's memory from /proc/self/status, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// VmRSS: resident set.
    pub rss: u64,
    /// RssAnon: resident anonymous memory (heap, stacks).
    pub anon: u64,
    /// RssFile: resident file mappings (the binary, libraries).
    pub file: u64,
}

impl Memory {
    /// Reads /proc/self/status (zeros where it is missing: not Linux).
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        Self {
            rss: field("VmRSS:"),
            anon: field("RssAnon:"),
            file: field("RssFile:"),
        }
    }
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid local struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the valid local struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_samples() {
        let l = Latency::default();
        assert_eq!(l.line(), None);
        for us in 1..=1000 {
            l.record(Duration::from_micros(us));
        }
        let line = l.line().unwrap();
        assert!(
            line.starts_with("p50 500 p90 900 p99 990 p99.9 999 max 1000"),
            "{line}"
        );
        assert!(line.contains("1000 samples"), "{line}");
    }

    #[test]
    fn memory_is_read_on_linux() {
        let m = Memory::read();
        assert!(m.rss > 0 && m.rss >= m.anon, "{m:?}");
    }
}
