//! The telemetry JSON document.

use core::fmt::{self, Write};

use crate::buf::TextBuf;

/// Longest telemetry document, in bytes; every field at its widest fits.
pub const MAX_TELEMETRY_LEN: usize = 160;

/// Values only the platform knows, passed to [`Device::poll_telemetry`](crate::Device::poll_telemetry).
///
/// A `None` field is left out of the JSON document rather than sent as `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlatformInfo {
    /// Free heap in bytes, if the platform has a heap and can tell.
    pub free_heap: Option<u32>,
    /// Received signal strength of the Wi-Fi access point in dBm, if known.
    pub rssi: Option<i32>,
}

/// What goes into one telemetry message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Telemetry {
    pub uptime_s: u64,
    pub messages: u32,
    pub rejected: u32,
    pub led: bool,
    pub platform: PlatformInfo,
}

impl Telemetry {
    /// Writes the document, e.g.
    /// `{"uptime_s":61,"messages":3,"rejected":1,"led":"on","free_heap":51200,"rssi":-61}`.
    pub(crate) fn write_json(&self, out: &mut TextBuf<MAX_TELEMETRY_LEN>) -> fmt::Result {
        out.clear();
        write!(
            out,
            r#"{{"uptime_s":{},"messages":{},"rejected":{},"led":"{}""#,
            self.uptime_s,
            self.messages,
            self.rejected,
            crate::led_payload(self.led),
        )?;
        if let Some(free_heap) = self.platform.free_heap {
            write!(out, r#","free_heap":{free_heap}"#)?;
        }
        if let Some(rssi) = self.platform.rssi {
            write!(out, r#","rssi":{rssi}"#)?;
        }
        out.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(t: Telemetry) -> std::string::String {
        let mut out = TextBuf::new();
        t.write_json(&mut out).unwrap();
        out.as_str().into()
    }

    const BASE: Telemetry = Telemetry {
        uptime_s: 61,
        messages: 3,
        rejected: 1,
        led: true,
        platform: PlatformInfo {
            free_heap: None,
            rssi: None,
        },
    };

    #[test]
    fn leaves_out_unknown_platform_values() {
        assert_eq!(
            json(BASE),
            r#"{"uptime_s":61,"messages":3,"rejected":1,"led":"on"}"#
        );
    }

    #[test]
    fn includes_known_platform_values() {
        let t = Telemetry {
            led: false,
            platform: PlatformInfo {
                free_heap: Some(51200),
                rssi: Some(-61),
            },
            ..BASE
        };
        assert_eq!(
            json(t),
            r#"{"uptime_s":61,"messages":3,"rejected":1,"led":"off","free_heap":51200,"rssi":-61}"#
        );
        let only_rssi = Telemetry {
            platform: PlatformInfo {
                free_heap: None,
                rssi: Some(-40),
            },
            ..BASE
        };
        assert!(json(only_rssi).ends_with(r#""led":"on","rssi":-40}"#));
    }

    #[test]
    fn widest_values_fit() {
        let t = Telemetry {
            uptime_s: u64::MAX,
            messages: u32::MAX,
            rejected: u32::MAX,
            led: false,
            platform: PlatformInfo {
                free_heap: Some(u32::MAX),
                rssi: Some(i32::MIN),
            },
        };
        let text = json(t);
        assert!(text.len() <= MAX_TELEMETRY_LEN, "{} bytes", text.len());
        assert!(text.starts_with('{') && text.ends_with('}'));
    }

    #[test]
    fn rewriting_replaces_the_previous_document() {
        let mut out = TextBuf::new();
        BASE.write_json(&mut out).unwrap();
        Telemetry {
            uptime_s: 1,
            ..BASE
        }
        .write_json(&mut out)
        .unwrap();
        assert!(out.as_str().starts_with(r#"{"uptime_s":1,"#));
    }
}
