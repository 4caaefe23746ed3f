//! Wire primitives shared by every packet: integers, variable byte integers, length-prefixed
//! strings and binary data, in both directions.
//!
//! Decoders run on a body that the fixed header has already delimited, so running out of input
//! inside a body means its lengths disagree with the remaining length: a malformed packet, never
//! "incomplete".

use nom::error::{ErrorKind, ParseError};

use crate::{DecodeError, EncodeError, PacketId};

/// Result of a body parser: the rest of the input and the value.
pub(crate) type IResult<'a, T> = nom::IResult<&'a [u8], T, DecodeError>;

impl<'a> ParseError<&'a [u8]> for DecodeError {
    fn from_error_kind(_input: &'a [u8], _kind: ErrorKind) -> Self {
        DecodeError::LengthMismatch
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Fails a body parser with `error`.
pub(crate) fn fail<'a, T>(error: DecodeError) -> IResult<'a, T> {
    Err(nom::Err::Failure(error))
}

/// Turns a body parser's result into the codec's error type, requiring that the parser used
/// the whole body: bytes left over mean the lengths disagree.
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
pub(crate) fn finish<T>(result: IResult<'_, T>) -> Result<T, DecodeError> {
    match result {
        Ok(([], value)) => Ok(value),
        Ok(_) => Err(DecodeError::LengthMismatch),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(e),
        Err(nom::Err::Incomplete(_)) => Err(DecodeError::LengthMismatch),
    }
}

/// Input ended inside a body: its lengths disagree (what nom's `complete` parsers report). The
/// primitives below are plain slice operations that inline into their callers; compiled for
/// size, the multi-byte ones stay out of line, as nom's were, which saves flash in every parser.
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
fn short<'a, T>() -> IResult<'a, T> {
    Err(nom::Err::Error(DecodeError::LengthMismatch))
}

#[cfg_attr(not(mqtt_sansio_small), inline)]
pub(crate) fn u8(input: &[u8]) -> IResult<'_, u8> {
    match input.split_first() {
        Some((&byte, rest)) => Ok((rest, byte)),
        None => short(),
    }
}

#[cfg_attr(not(mqtt_sansio_small), inline)]
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(crate) fn u16(input: &[u8]) -> IResult<'_, u16> {
    match input.split_first_chunk() {
        Some((bytes, rest)) => Ok((rest, u16::from_be_bytes(*bytes))),
        None => short(),
    }
}

#[cfg_attr(not(mqtt_sansio_small), inline)]
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(crate) fn u32(input: &[u8]) -> IResult<'_, u32> {
    match input.split_first_chunk() {
        Some((bytes, rest)) => Ok((rest, u32::from_be_bytes(*bytes))),
        None => short(),
    }
}

#[cfg_attr(not(mqtt_sansio_small), inline)]
#[cfg_attr(mqtt_sansio_small, inline(never))]
pub(crate) fn take(input: &[u8], len: usize) -> IResult<'_, &[u8]> {
    match input.split_at_checked(len) {
        Some((taken, rest)) => Ok((rest, taken)),
        None => short(),
    }
}

/// A variable byte integer of at most four bytes (section 1.5.5).
#[inline]
pub(crate) fn var_int(input: &[u8]) -> IResult<'_, u32> {
    let mut value = 0u32;
    for (i, &byte) in input.iter().enumerate().take(4) {
        value |= u32::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((&input[i + 1..], value));
        }
    }
    if input.len() >= 4 {
        fail(DecodeError::VarIntTooLong)
    } else {
        fail(DecodeError::LengthMismatch)
    }
}

/// Two-byte length then that many bytes.
#[inline]
pub(crate) fn binary(input: &[u8]) -> IResult<'_, &[u8]> {
    let (input, len) = u16(input)?;
    take(input, usize::from(len))
}

/// A UTF-8 encoded string: well-formed [MQTT-1.5.4-1] and free of U+0000 [MQTT-1.5.4-2].
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
#[cfg_attr(mqtt_sansio_small, inline)]
pub(crate) fn string(input: &[u8]) -> IResult<'_, &str> {
    let (rest, bytes) = binary(input)?;
    match utf8(bytes) {
        Ok(s) => Ok((rest, s)),
        Err(e) => fail(e),
    }
}

/// Whether `bytes` holds any of `needles` (each below 0x80), eight bytes at a time. Fields are
/// mostly shorter than the 32 bytes an auto-vectorised loop needs before its vector body runs,
/// and `<[u8]>::contains` costs a call into `memchr` per needle.
///
/// A first pass only asks whether any byte is at most the largest needle, one subtraction per
/// word whatever the number of needles. The needles this crate looks for (U+0000, `#`, `+`) are
/// below every letter, digit, `-`, `.`, `/` and `_`, so a topic or string field normally passes
/// with that alone; the exact search runs only when it fires.
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
#[cfg_attr(mqtt_sansio_small, inline)]
pub(crate) fn contains_any<const N: usize>(bytes: &[u8], needles: [u8; N]) -> bool {
    // Compiled for size, a byte loop: the word-at-a-time passes take several times its code
    // on a 32-bit microcontroller, for topics of a few dozen bytes.
    // Each needle compared in turn: `<[u8]>::contains` would call `memchr` for three bytes.
    #[cfg(mqtt_sansio_small)]
    {
        bytes.iter().any(|b| needles.iter().any(|n| n == b))
    }
    #[cfg(not(mqtt_sansio_small))]
    {
        let bound = needles.iter().fold(0, |max, &n| max.max(n)) + 1;
        debug_assert!(bound <= 0x80, "needles are ASCII");
        if !any_below(bytes, bound) {
            return false;
        }
        contains_any_exact(bytes, needles)
    }
}

#[cfg(not(mqtt_sansio_small))]
const LO: u64 = 0x0101_0101_0101_0101;
#[cfg(not(mqtt_sansio_small))]
const HI: u64 = 0x8080_8080_8080_8080;

/// An eight-byte word of a chunk of eight bytes.
#[cfg(not(mqtt_sansio_small))]
#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

/// Whether any byte of `bytes` is below `bound` (at most 0x80).
#[cfg(not(mqtt_sansio_small))]
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
fn any_below(bytes: &[u8], bound: u8) -> bool {
    // The high bit of a byte of the result is set where `x` has a byte below `bound` (a borrow
    // only propagates upwards from a real one, so "any" is exact).
    let below = |x: u64| x.wrapping_sub(LO * u64::from(bound)) & !x & HI;
    if bytes.len() < 8 {
        // Four to seven bytes (a client id, a user name): two overlapping half-words in one
        // word, instead of a byte loop.
        if let (Some(head), Some(tail)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
            let word =
                u64::from(u32::from_le_bytes(*head)) | u64::from(u32::from_le_bytes(*tail)) << 32;
            return below(word) != 0;
        }
        return bytes.iter().any(|&b| b < bound);
    }
    let mut chunks = bytes.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut chunks {
        found |= below(word(chunk));
    }
    let tail = chunks.remainder();
    if bytes.len() >= 8 && !tail.is_empty() {
        // The last eight bytes, overlapping the last chunk: one word instead of a byte loop.
        found |= below(word(&bytes[bytes.len() - 8..]));
        return found != 0;
    }
    found != 0 || tail.iter().any(|&b| b < bound)
}

/// [`contains_any`] without the first pass.
#[cfg(not(mqtt_sansio_small))]
#[inline]
fn contains_any_exact<const N: usize>(bytes: &[u8], needles: [u8; N]) -> bool {
    // The high bit of a byte of the result is set where `x` has a byte equal to a needle (as in
    // `any_below`, "any" is exact).
    let matches = |x: u64| {
        needles.iter().fold(0, |acc, &n| {
            let y = x ^ (LO * u64::from(n));
            acc | (y.wrapping_sub(LO) & !y & HI)
        })
    };
    let mut chunks = bytes.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut chunks {
        found |= matches(word(chunk));
    }
    // The last 0 to 7 bytes one at a time: a variable-length copy into a word costs a call to
    // memcpy, more than this loop.
    found != 0 || chunks.remainder().iter().any(|b| needles.contains(b))
}

/// `bytes` as a `&str` when every byte is ASCII and at least `bound` (at most 0x80), else
/// `None`: one pass of eight bytes at a time, where `core::str::from_utf8` walks short fields
/// byte by byte (a third of a 3.1.1 CONNECT's decoding, measured with callgrind) and the
/// field's own check for U+0000 (and wildcards) is a second pass. Callers fall back to the
/// full checks when it says `None`, so it decides only how fast a field is accepted.
#[cfg(not(mqtt_sansio_small))]
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn ascii_at_least(bytes: &[u8], bound: u8) -> Option<&str> {
    debug_assert!(bound <= 0x80);
    // The high bit of a byte of `flags` is set where a byte is not ASCII or is below `bound`
    // (as in `any_below`, a borrow only propagates from a real one, so "any" is exact).
    let flags = |x: u64| (x | (x.wrapping_sub(LO * u64::from(bound)) & !x)) & HI;
    let mut chunks = bytes.chunks_exact(8);
    let mut found = 0;
    for chunk in &mut chunks {
        found |= flags(word(chunk));
    }
    let tail = chunks.remainder();
    let clean = if bytes.len() >= 8 && !tail.is_empty() {
        // The last eight bytes, overlapping the last chunk.
        found | flags(word(&bytes[bytes.len() - 8..])) == 0
    } else {
        found == 0 && tail.iter().all(|&b| b < 0x80 && b >= bound)
    };
    if !clean {
        return None;
    }
    // SAFETY: every byte of `bytes` is below 0x80 (checked above, word by word and byte by
    // byte), and a sequence of ASCII bytes is valid UTF-8.
    Some(unsafe { core::str::from_utf8_unchecked(bytes) })
}

/// Validates a UTF-8 string field's content.
#[cfg_attr(not(mqtt_sansio_small), inline(always))]
#[cfg_attr(mqtt_sansio_small, inline)]
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    #[cfg(not(mqtt_sansio_small))]
    if let Some(s) = ascii_at_least(bytes, 1) {
        return Ok(s);
    }
    // [MQTT-1.5.4-1] ill-formed UTF-8, including encoded surrogates, is malformed
    let s = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    // [MQTT-1.5.4-2] a string must not contain U+0000
    if contains_any(bytes, [0]) {
        return Err(DecodeError::NullCharacter);
    }
    Ok(s)
}

/// A non-zero packet identifier [MQTT-2.2.1-3].
#[inline]
pub(crate) fn packet_id(input: &[u8]) -> IResult<'_, PacketId> {
    let (rest, id) = u16(input)?;
    match PacketId::new(id) {
        Some(id) => Ok((rest, id)),
        None => fail(DecodeError::ZeroPacketId),
    }
}

/// Number of bytes of `value` as a variable byte integer.
pub(crate) const fn var_int_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Encoded size of a string field, checking the length limit and U+0000.
#[cfg_attr(not(mqtt_sansio_small), inline)]
pub(crate) fn string_len(s: &str) -> Result<usize, EncodeError> {
    if contains_any(s.as_bytes(), [0]) {
        return Err(EncodeError::NullCharacter);
    }
    binary_len(s.as_bytes())
}

/// Encoded size of a binary field, checking the length limit.
#[cfg_attr(not(mqtt_sansio_small), inline)]
pub(crate) fn binary_len(b: &[u8]) -> Result<usize, EncodeError> {
    if b.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong(b.len()));
    }
    Ok(2 + b.len())
}

/// Where encoded bytes go. Every packet is length-checked before writing starts, so writes
/// cannot fail half-way.
pub(crate) trait Write {
    fn put_slice(&mut self, bytes: &[u8]);

    fn put_u8(&mut self, value: u8) {
        self.put_slice(&[value]);
    }

    fn put_u16(&mut self, value: u16) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_u32(&mut self, value: u32) {
        self.put_slice(&value.to_be_bytes());
    }

    fn put_var_int(&mut self, value: usize) {
        // Most packets are under 128 bytes: one byte, without the loop's shifts and tests.
        #[cfg(not(mqtt_sansio_small))]
        if value < 0x80 {
            // The guard just checked it fits.
            self.put_u8(value as u8);
            return;
        } else if value < 0x4000 {
            // Two bytes (up to 16 KiB), as one write; truncation keeps the low seven bits.
            self.put_slice(&[(value as u8) | 0x80, (value >> 7) as u8]);
            return;
        }
        let mut value = value;
        loop {
            // Truncation is the point: the low seven bits go in this byte.
            let mut byte = (value & 0x7F) as u8;
            value >>= 7;
            if value > 0 {
                byte |= 0x80;
            }
            self.put_u8(byte);
            if value == 0 {
                break;
            }
        }
    }

    /// Writes a binary field whose length `binary_len` has already checked.
    fn put_binary(&mut self, bytes: &[u8]) {
        // Callers checked the length against u16::MAX through binary_len or string_len.
        self.put_u16(bytes.len() as u16);
        self.put_slice(bytes);
    }

    fn put_string(&mut self, s: &str) {
        self.put_binary(s.as_bytes());
    }
}

/// Writes into a caller slice. Running out of room sets `overflow` instead of panicking, which
/// can only happen if a length computation is wrong.
pub(crate) struct SliceWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    pub(crate) overflow: bool,
}

impl<'b> SliceWriter<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            overflow: false,
        }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

impl Write for SliceWriter<'_> {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
            }
            None => self.overflow = true,
        }
    }

    // One copy where size matters: every field writer calls it.
    #[cfg_attr(not(mqtt_sansio_small), inline)]
    #[cfg_attr(mqtt_sansio_small, inline(never))]
    fn put_u8(&mut self, value: u8) {
        match self.buf.get_mut(self.pos) {
            Some(dst) => {
                *dst = value;
                self.pos += 1;
            }
            None => self.overflow = true,
        }
    }
}

#[cfg(feature = "bytes")]
pub(crate) struct BufMutWriter<'b, B: bytes::BufMut>(pub(crate) &'b mut B);

#[cfg(feature = "bytes")]
impl<B: bytes::BufMut> Write for BufMutWriter<'_, B> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0.put_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_int_examples_from_the_spec() {
        let cases: &[(&[u8], u32)] = &[
            (&[0x00], 0),
            (&[0x7F], 127),
            (&[0x80, 0x01], 128),
            (&[0xFF, 0x7F], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xFF, 0xFF, 0x7F], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xFF, 0xFF, 0xFF, 0x7F], 268_435_455),
        ];
        for &(bytes, value) in cases {
            assert_eq!(var_int(bytes).unwrap(), (&[][..], value));
            let mut buf = [0u8; 4];
            let mut w = SliceWriter::new(&mut buf);
            w.put_var_int(value as usize);
            let n = w.position();
            assert_eq!(&buf[..n], bytes);
            assert_eq!(var_int_len(value as usize), bytes.len());
        }
    }

    #[test]
    fn var_int_of_five_bytes_is_malformed() {
        assert_eq!(
            finish(var_int(&[0xFF, 0xFF, 0xFF, 0xFF, 0x01])),
            Err(DecodeError::VarIntTooLong)
        );
    }

    #[test]
    fn mqtt_1_5_4_1_ill_formed_utf8_and_surrogates_are_malformed() {
        assert_eq!(
            finish(string(&[0, 2, 0xC3, 0x28])),
            Err(DecodeError::InvalidUtf8)
        );
        // U+D800 encoded as if it were a scalar value
        assert_eq!(
            finish(string(&[0, 3, 0xED, 0xA0, 0x80])),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn mqtt_1_5_4_2_null_character_is_malformed() {
        assert_eq!(
            finish(string(&[0, 3, b'a', 0, b'b'])),
            Err(DecodeError::NullCharacter)
        );
        assert_eq!(string_len("a\0b"), Err(EncodeError::NullCharacter));
    }

    #[test]
    fn mqtt_1_5_4_3_bom_is_kept_not_stripped() {
        let (_, s) = string(&[0, 4, 0xEF, 0xBB, 0xBF, b'a']).unwrap();
        assert_eq!(s, "\u{FEFF}a");
    }

    #[test]
    fn short_string_is_a_length_mismatch() {
        assert_eq!(
            finish(string(&[0, 5, b'a'])),
            Err(DecodeError::LengthMismatch)
        );
    }

    #[test]
    fn mqtt_2_2_1_3_packet_id_zero_is_refused() {
        assert_eq!(finish(packet_id(&[0, 0])), Err(DecodeError::ZeroPacketId));
    }

    #[test]
    fn contains_any_agrees_with_a_byte_search_at_every_length_and_position() {
        // Bytes on both sides of the first pass's bound (`+` + 1 = 0x2C), the needles, and
        // non-ASCII bytes (which are above every bound).
        let fill = [b'a', b',', b'$', b' ', b'/', 0xC3, 0xFF, 0x7F];
        for len in 0..40 {
            for &f in &fill {
                let mut bytes = [f; 40];
                let bytes = &mut bytes[..len];
                let expect = |b: &[u8], n: &[u8]| b.iter().any(|x| n.contains(x));
                assert_eq!(contains_any(bytes, [0, b'+', b'#']), expect(bytes, b"\0+#"));
                for pos in 0..len {
                    for needle in [0, b'+', b'#'] {
                        bytes[pos] = needle;
                        assert!(contains_any(bytes, [0, b'+', b'#']), "{bytes:?}");
                        assert_eq!(contains_any(bytes, [0]), needle == 0, "{bytes:?}");
                        bytes[pos] = f;
                    }
                    // Just above and below the needles: no false positive.
                    for other in [1, b'"', b'$', b'*', b','] {
                        bytes[pos] = other;
                        assert_eq!(
                            contains_any(bytes, [0, b'+', b'#']),
                            expect(bytes, b"\0+#"),
                            "{bytes:?}"
                        );
                        bytes[pos] = f;
                    }
                }
            }
        }
    }

    /// The fast path says `Some` exactly when every byte is ASCII and at least the bound, and
    /// then gives the same string as `from_utf8`: every length up to 40 (the word loop, the
    /// overlapping last word and the byte loop), every position, every interesting byte.
    #[cfg(not(mqtt_sansio_small))]
    #[test]
    fn ascii_fast_path_agrees_with_a_byte_check_at_every_length_and_position() {
        let base = b"sensors/esp32-001/temperature/celsius/xy";
        for bound in [1u8, b'+' + 1] {
            for len in 0..=base.len() {
                let clean = &base[..len];
                assert_eq!(
                    ascii_at_least(clean, bound),
                    core::str::from_utf8(clean).ok()
                );
                for pos in 0..len {
                    for b in [0u8, 1, b'#', b'+', b',', b'$', 0x7F, 0x80, 0xC3, 0xFF] {
                        let mut bytes = [0u8; 40];
                        bytes[..len].copy_from_slice(clean);
                        bytes[pos] = b;
                        let bytes = &bytes[..len];
                        let ok = bytes.iter().all(|&x| x < 0x80 && x >= bound);
                        let got = ascii_at_least(bytes, bound);
                        assert_eq!(got.is_some(), ok, "{bytes:?} bound {bound}");
                        if let Some(s) = got {
                            assert_eq!(s.as_bytes(), bytes);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn slice_writer_reports_overflow_instead_of_panicking() {
        let mut buf = [0u8; 2];
        let mut w = SliceWriter::new(&mut buf);
        w.put_u32(7);
        assert!(w.overflow);
    }

    #[test]
    fn field_over_65535_bytes_cannot_be_encoded() {
        let long = [b'a'; 65_536];
        assert_eq!(binary_len(&long), Err(EncodeError::FieldTooLong(65_536)));
        assert_eq!(binary_len(&long[..65_535]), Ok(65_537));
    }
}
