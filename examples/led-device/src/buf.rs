//! A fixed-capacity text buffer that `core::fmt::Write` can fill, so topics and payloads are
//! built without a heap.

use core::fmt;

/// Up to `N` bytes of UTF-8 text stored inline.
///
/// Writing past the capacity fails with [`fmt::Error`] and leaves the buffer holding the text
/// that fitted before the failing `write_str` call, never a partial UTF-8 sequence.
#[derive(Clone, Copy)]
pub struct TextBuf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> TextBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Invariant: only whole `&str`s are ever copied in (`write_str`), so the filled
        // prefix is valid UTF-8. Fall back to "" rather than panic should that ever break.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// The text written so far, as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Forgets the contents.
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for TextBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for TextBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for TextBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> PartialEq for TextBuf<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl<const N: usize> Eq for TextBuf<N> {}

#[cfg(test)]
mod tests {
    use core::fmt::Write;

    use super::*;

    #[test]
    fn writes_until_full() {
        let mut buf = TextBuf::<8>::new();
        write!(buf, "ab{}", 12).unwrap();
        assert_eq!(buf.as_str(), "ab12");
        assert!(buf.write_str("12345").is_err());
        assert_eq!(
            buf.as_str(),
            "ab12",
            "a failed write leaves the earlier text"
        );
        buf.write_str("5678").unwrap();
        assert_eq!(buf.as_str(), "ab125678");
        buf.clear();
        assert_eq!(buf.as_bytes(), b"");
    }

    #[test]
    fn never_splits_a_multibyte_char() {
        let mut buf = TextBuf::<3>::new();
        buf.write_str("a").unwrap();
        assert!(buf.write_str("\u{e9}\u{e9}").is_err());
        assert_eq!(buf.as_str(), "a");
    }
}
