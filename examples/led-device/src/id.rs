//! The device id: client id and topic segment in one.

use core::fmt::{self, Write};

use crate::buf::TextBuf;

/// Longest accepted device id, in bytes.
///
/// 23 bytes is the longest client id every MQTT 3.1.1 broker must accept ([MQTT-3.1.3-5]); the
/// id doubles as the client id, so longer ones are refused up front rather than by the broker.
pub const MAX_ID_LEN: usize = 23;

/// A validated device id such as `esp32-a1b2c3`.
///
/// It is used unchanged as the MQTT client id and as the `<id>` segment of every topic
/// (`devices/<id>/...`), so it is limited to ASCII letters, digits, `-` and `_`, and to
/// [`MAX_ID_LEN`] bytes: no `/`, no wildcards, nothing a broker could reject.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeviceId(TextBuf<MAX_ID_LEN>);

/// Why a string is not a valid [`DeviceId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong,
    /// The id contains something other than ASCII letters, digits, `-` and `_`.
    InvalidChar,
}

impl DeviceId {
    /// Validates `id`.
    pub fn new(id: &str) -> Result<Self, IdError> {
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.len() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if !id.bytes().all(allowed) {
            return Err(IdError::InvalidChar);
        }
        let mut buf = TextBuf::new();
        buf.write_str(id).map_err(|_| IdError::TooLong)?;
        Ok(Self(buf))
    }

    /// `esp32-` followed by the last three bytes of the MAC address in lower-case hex, e.g.
    /// `esp32-a1b2c3` for `24:6f:28:a1:b2:c3`: unique per board and stable across reboots.
    pub fn from_mac(mac: [u8; 6]) -> Self {
        let mut buf = TextBuf::new();
        // Cannot fail: "esp32-" plus six hex digits is 12 bytes, within MAX_ID_LEN.
        let _ = write!(buf, "esp32-{:02x}{:02x}{:02x}", mac[3], mac[4], mac[5]);
        Self(buf)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Empty => "device id is empty",
            IdError::TooLong => "device id is longer than 23 bytes",
            IdError::InvalidChar => "device id may only hold ASCII letters, digits, '-' and '_'",
        })
    }
}

impl core::error::Error for IdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_mac_uses_last_three_bytes_in_lower_hex() {
        let id = DeviceId::from_mac([0x24, 0x6f, 0x28, 0xa1, 0xb2, 0xc3]);
        assert_eq!(id.as_str(), "esp32-a1b2c3");
        let id = DeviceId::from_mac([0, 0, 0, 0, 0x0a, 0xff]);
        assert_eq!(id.as_str(), "esp32-000aff");
    }

    #[test]
    fn accepts_letters_digits_dash_underscore() {
        assert_eq!(
            DeviceId::new("Kitchen_lamp-2").unwrap().as_str(),
            "Kitchen_lamp-2"
        );
        assert!(DeviceId::new(&"a".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(DeviceId::new(""), Err(IdError::Empty));
        assert_eq!(
            DeviceId::new(&"a".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong)
        );
        for bad in ["a/b", "a+", "#", "a b", "caf\u{e9}", "x\0"] {
            assert_eq!(DeviceId::new(bad), Err(IdError::InvalidChar), "{bad:?}");
        }
    }
}
