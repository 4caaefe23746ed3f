//! What the board provides and the PC has to make up: a millisecond clock since "boot", and
//! the free heap and Wi-Fi signal strength reported in telemetry.

use std::future::pending;
use std::time::Duration;

use led_device::PlatformInfo;
use mqtt_client_nb::Clock;
use tokio::time::Instant;

/// [`Clock`] over `tokio::time`, counting from the simulated device's power-on. The device
/// logic's `now_ms` (and so the telemetry's `uptime_s`) uses the same clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    boot: Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            boot: Instant::now(),
        }
    }

    /// Sleeps until `at` (milliseconds since boot), or forever for `None`.
    pub(crate) async fn sleep_until_opt(&self, at: Option<u64>) {
        match at {
            Some(ms) => self.sleep_until(ms).await,
            None => pending().await,
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.boot.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// # Cancel safety
    /// Cancel-safe: a tokio `Sleep` holds nothing but its deadline.
    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.boot + Duration::from_millis(deadline_ms)).await;
    }
}

/// Plausible free-heap and RSSI readings of an ESP32-C3 on Wi-Fi: the heap wobbles around
/// 180 KB, the signal drifts between -75 and -45 dBm. Deterministic per MAC address.
#[derive(Debug, Clone)]
pub(crate) struct FakePlatform {
    state: u64,
    rssi: i32,
}

impl FakePlatform {
    const HEAP_BASE: u32 = 180_000;
    const RSSI_RANGE: (i32, i32) = (-75, -45);

    pub(crate) fn new(mac: [u8; 6]) -> Self {
        let mut seed = [0u8; 8];
        seed[..6].copy_from_slice(&mac);
        Self {
            // xorshift must not start at zero.
            state: u64::from_le_bytes(seed) | 1,
            rssi: -58,
        }
    }

    /// The next reading.
    pub(crate) fn sample(&mut self) -> PlatformInfo {
        let r = self.next();
        let wobble = u32::try_from(r % 4096).unwrap_or(0);
        let step = i32::try_from(r >> 60).unwrap_or(0) % 5 - 2;
        self.rssi = (self.rssi + step).clamp(Self::RSSI_RANGE.0, Self::RSSI_RANGE.1);
        PlatformInfo {
            free_heap: Some(Self::HEAP_BASE - 2048 + wobble),
            rssi: Some(self.rssi),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_stay_plausible() {
        let mut platform = FakePlatform::new([0x02, 0, 0, 0, 0, 1]);
        for _ in 0..1000 {
            let info = platform.sample();
            let heap = info.free_heap.unwrap();
            assert!((177_000..=183_000).contains(&heap), "{heap}");
            assert!((-75..=-45).contains(&info.rssi.unwrap()));
        }
    }
}
