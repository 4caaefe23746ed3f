//! Wall-clock time in the local time zone, formatted by the C library's `strftime`, as
//! mosquitto_sub does for `%I`, `%j`/`%J` and `@` formats (same time zone rules, same
//! spellings of `%a`, `%b`, `%Z` ...).

use std::ffi::CString;
use std::time::{SystemTime, UNIX_EPOCH};

/// One reading of the clock, shared by every time field of a message.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Seconds since the Unix epoch.
    pub secs: libc::time_t,
    /// Nanoseconds within the second.
    pub nanos: u32,
}

impl Now {
    /// The current time.
    pub fn read() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            secs: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            nanos: d.subsec_nanos(),
        }
    }

    /// `strftime(format)` of this time in the local time zone; empty when the C library
    /// cannot convert it or the result is longer than 255 bytes.
    pub fn strftime(&self, format: &str) -> String {
        let Ok(format) = CString::new(format) else {
            return String::new();
        };
        let t = self.secs;
        // SAFETY: `tm` is plain old data for which all-zero bytes are a valid value.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; localtime_r is the reentrant form.
        if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
            return String::new();
        }
        let mut buf = [0u8; 256];
        // SAFETY: `buf` has `buf.len()` writable bytes, `format` is NUL-terminated and `tm`
        // was filled by localtime_r; strftime writes at most `buf.len()` bytes.
        let n = unsafe { libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm) };
        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
    }

    /// mosquitto's `tst` of `%j`/`%J`: `2024-05-06T21:48:00.123456Z+0200` (local time, the
    /// `Z` is mosquitto's, not UTC).
    pub fn json_timestamp(&self) -> String {
        let micros = self.nanos / 1000;
        format!(
            "{}.{micros:06}Z{}",
            self.strftime("%Y-%m-%dT%H:%M:%S"),
            self.strftime("%z")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_formats_in_the_local_zone() {
        let t = Now {
            secs: 86_400 * 365,
            nanos: 5_000,
        };
        assert_eq!(t.strftime("%s"), (86_400 * 365).to_string());
        let ts = t.json_timestamp();
        assert!(ts.starts_with("197"), "{ts}");
        assert!(ts.contains(".000005Z"), "{ts}");
        assert_eq!(t.strftime(""), "");
    }
}
