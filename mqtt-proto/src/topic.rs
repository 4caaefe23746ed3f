//! Validated topic names and topic filters, filter matching and shared subscriptions.

/// Why a string is not a valid topic name or topic filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TopicError {
    /// Topic names and filters are at least one character long [MQTT-4.7.3-1].
    #[error("empty")]
    Empty,
    /// Longer than a string field can hold (65,535 bytes) [MQTT-4.7.3-3].
    #[error("longer than 65,535 bytes")]
    TooLong,
    /// Contains U+0000 [MQTT-4.7.3-2].
    #[error("contains U+0000")]
    NullCharacter,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2].
    #[error("topic name contains a wildcard")]
    Wildcard,
    /// `#` is not alone in the last level [MQTT-4.7.1-1], or `+` does not fill its level
    /// [MQTT-4.7.1-2].
    #[error("misplaced wildcard")]
    MisplacedWildcard,
    /// `$share/` without a share name, with a share name holding `/`, `+` or `#`, or without a
    /// filter after it [MQTT-4.8.2-1] [MQTT-4.8.2-2].
    #[error("invalid shared subscription")]
    InvalidShare,
}

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    if crate::wire::contains_any(s.as_bytes(), [0]) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// A topic name a message is published to: no wildcards, no U+0000, at most 65,535 bytes.
///
/// Only [`TopicName::EMPTY`] is empty: a 5.0 PUBLISH that relies on a topic alias carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TopicName<'a>(&'a str);

impl<'a> TopicName<'a> {
    /// The empty topic name of a 5.0 PUBLISH that names its topic by alias.
    pub const EMPTY: TopicName<'static> = TopicName("");

    /// Validates `name`.
    ///
    /// # Errors
    /// [`TopicError`] when `name` is empty, too long, holds U+0000 or a wildcard.
    pub fn new(name: &'a str) -> Result<Self, TopicError> {
        // Compiled for speed: one pass for U+0000 and the wildcards, and which one it was is
        // looked up only on failure. Compiled for size: the checks shared with filters, then
        // the wildcards, with less code.
        #[cfg(not(mqtt_sansio_small))]
        {
            if name.is_empty() {
                return Err(TopicError::Empty);
            }
            if name.len() > usize::from(u16::MAX) {
                return Err(TopicError::TooLong);
            }
            if !crate::wire::contains_any(name.as_bytes(), [0, b'+', b'#']) {
                return Ok(Self(name));
            }
            if name.as_bytes().contains(&0) {
                return Err(TopicError::NullCharacter);
            }
        }
        #[cfg(mqtt_sansio_small)]
        check_common(name)?;
        // [MQTT-3.3.2-2] the topic name in a PUBLISH must not contain wildcard characters
        if name.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::Wildcard);
        }
        Ok(Self(name))
    }

    /// Wraps a string the caller has checked for wildcards and U+0000 (used by [`decode_name`],
    /// which checks everything in one pass).
    pub(crate) const fn from_validated(name: &'a str) -> Self {
        Self(name)
    }

    /// The name as a string slice.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// Whether this is [`TopicName::EMPTY`].
    pub const fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Size as a string field. Nothing to check: the name was validated when built (at most
    /// 65,535 bytes, no U+0000).
    pub(crate) const fn field_len(&self) -> usize {
        2 + self.0.len()
    }
}

impl core::fmt::Display for TopicName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

impl<'a> TryFrom<&'a str> for TopicName<'a> {
    type Error = TopicError;
    fn try_from(s: &'a str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

/// A topic filter a client subscribes to: wildcards only where the rules allow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TopicFilter<'a>(&'a str);

impl<'a> TopicFilter<'a> {
    /// Validates `filter`, including the `$share/{ShareName}/{filter}` form.
    ///
    /// # Errors
    /// [`TopicError`] when `filter` is empty, too long, holds U+0000, misplaces a wildcard or is
    /// a malformed shared subscription.
    pub fn new(filter: &'a str) -> Result<Self, TopicError> {
        check_common(filter)?;
        let plain = match split_share(filter)? {
            Some((_, inner)) => inner,
            None => filter,
        };
        check_wildcards(plain)?;
        Ok(Self(filter))
    }

    /// The filter as a string slice.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// Size as a string field. Nothing to check: the filter was validated when built (at most
    /// 65,535 bytes, no U+0000).
    pub(crate) const fn field_len(&self) -> usize {
        2 + self.0.len()
    }

    /// For `$share/{ShareName}/{filter}`, the share name and the inner filter.
    pub fn shared(&self) -> Option<(&'a str, &'a str)> {
        split_share(self.0).ok().flatten()
    }

    /// Whether the filter holds `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.0.bytes().any(|b| b == b'+' || b == b'#')
    }

    /// Whether a message published to `topic` matches this filter. A shared subscription matches
    /// through its inner filter. Filters that start with a wildcard do not match topics that
    /// start with `$` [MQTT-4.7.2-1].
    pub fn matches(&self, topic: &str) -> bool {
        let filter = self.shared().map_or(self.0, |(_, inner)| inner);
        if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
            return false;
        }
        let mut topic_levels = topic.split('/');
        for level in filter.split('/') {
            match level {
                "#" => return true,
                "+" => {
                    if topic_levels.next().is_none() {
                        return false;
                    }
                }
                exact => {
                    if topic_levels.next() != Some(exact) {
                        return false;
                    }
                }
            }
        }
        topic_levels.next().is_none()
    }
}

impl core::fmt::Display for TopicFilter<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

impl<'a> TryFrom<&'a str> for TopicFilter<'a> {
    type Error = TopicError;
    fn try_from(s: &'a str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

fn check_wildcards(filter: &str) -> Result<(), TopicError> {
    let bytes = filter.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'+' && b != b'#' {
            continue;
        }
        let before = i.checked_sub(1).and_then(|j| bytes.get(j));
        let after = bytes.get(i + 1);
        let last = after.is_none();
        let alone = before.is_none_or(|&c| c == b'/') && after.is_none_or(|&c| c == b'/');
        // [MQTT-4.7.1-1] '#' must be the last character and on its own in its level
        // [MQTT-4.7.1-2] '+' must occupy an entire level
        if !alone || (b == b'#' && !last) {
            return Err(TopicError::MisplacedWildcard);
        }
    }
    Ok(())
}

fn split_share(filter: &str) -> Result<Option<(&str, &str)>, TopicError> {
    let Some(rest) = filter.strip_prefix("$share/") else {
        return Ok(None);
    };
    // [MQTT-4.8.2-1] the share name is at least one character and holds no '/', '+' or '#'
    // [MQTT-4.8.2-2] it is followed by '/' and a topic filter
    #[cfg(not(mqtt_sansio_small))]
    let (name, inner) = rest.split_once('/').ok_or(TopicError::InvalidShare)?;
    // A byte scan: `split_once` and the char-set `contains` link `memchr` and two pattern
    // searchers, about 400 bytes a microcontroller spends on a check made once per filter.
    #[cfg(mqtt_sansio_small)]
    let (name, inner) = {
        let slash = rest.bytes().position(|b| b == b'/');
        let split = slash.and_then(|i| Some((rest.get(..i)?, rest.get(i + 1..)?)));
        split.ok_or(TopicError::InvalidShare)?
    };
    #[cfg(not(mqtt_sansio_small))]
    let wildcard = name.contains(['+', '#']);
    #[cfg(mqtt_sansio_small)]
    let wildcard = name.bytes().any(|b| b == b'+' || b == b'#');
    if name.is_empty() || wildcard || inner.is_empty() {
        return Err(TopicError::InvalidShare);
    }
    Ok(Some((name, inner)))
}

/// Decodes a topic name field of PUBLISH or of a will: UTF-8 [MQTT-1.5.4-1], no U+0000
/// [MQTT-1.5.4-2], no wildcard [MQTT-3.3.2-2], in one `from_utf8` and one scan. Emptiness is
/// left to the caller (a 5.0 PUBLISH may have an empty topic with an alias).
#[cfg_attr(not(mqtt_sansio_small), inline)]
pub(crate) fn decode_name(bytes: &[u8]) -> Result<TopicName<'_>, crate::DecodeError> {
    use crate::{wire, DecodeError};
    // Bytes from ',' up: no U+0000, '#' or '+'; most topics are that and ASCII.
    #[cfg(not(mqtt_sansio_small))]
    if let Some(s) = wire::ascii_at_least(bytes, b'+' + 1) {
        return Ok(TopicName::from_validated(s));
    }
    let s = core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    if wire::contains_any(bytes, [0, b'+', b'#']) {
        // Compiled for size, the same byte loop again rather than `memchr`.
        #[cfg(mqtt_sansio_small)]
        let null = wire::contains_any(bytes, [0]);
        #[cfg(not(mqtt_sansio_small))]
        let null = bytes.contains(&0);
        return Err(if null {
            DecodeError::NullCharacter
        } else {
            DecodeError::InvalidTopicName(TopicError::Wildcard)
        });
    }
    Ok(TopicName::from_validated(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(filter: &str, topic: &str) -> bool {
        TopicFilter::new(filter).unwrap().matches(topic)
    }

    #[test]
    fn mqtt_3_3_2_2_topic_name_has_no_wildcards() {
        assert_eq!(TopicName::new("a/+/b"), Err(TopicError::Wildcard));
        assert_eq!(TopicName::new("a/#"), Err(TopicError::Wildcard));
        assert!(TopicName::new("a/b c/$d").is_ok());
    }

    #[test]
    fn topic_name_checks_every_byte_in_both_passes() {
        // Wildcards and U+0000 in the first eight-byte word, in the overlapping last word and in
        // a short name; next to non-ASCII characters and bytes just above and below them.
        for (name, expected) in [
            ("sensors/esp32-001/temperature", Ok(())),
            ("sensors/esp32-001/temperatur+", Err(TopicError::Wildcard)),
            ("#ensors/esp32-001/temperature", Err(TopicError::Wildcard)),
            (
                "sensors/esp32-001/\0emperature",
                Err(TopicError::NullCharacter),
            ),
            ("a+\0", Err(TopicError::NullCharacter)),
            ("\u{e9}t\u{e9}/caf\u{e9}/\u{1F600}", Ok(())),
            ("\u{e9}t\u{e9}/caf\u{e9}/+", Err(TopicError::Wildcard)),
            ("$SYS/a,b*c\"d!e%f'g(h)", Ok(())),
            ("$SYS/a,b*c\"d!e%f'g(#)", Err(TopicError::Wildcard)),
            ("+", Err(TopicError::Wildcard)),
            ("x", Ok(())),
        ] {
            assert_eq!(TopicName::new(name).map(|_| ()), expected, "{name:?}");
        }
    }

    #[test]
    fn decoded_topic_names_are_checked_like_built_ones() {
        use crate::DecodeError;
        let cases: &[(&[u8], Result<(), DecodeError>)] = &[
            (b"sensors/esp32-001/temperature", Ok(())),
            ("caf\u{e9}/\u{1F600}/\u{e9}t\u{e9}".as_bytes(), Ok(())),
            (b"", Ok(())),
            (
                b"a/+",
                Err(DecodeError::InvalidTopicName(TopicError::Wildcard)),
            ),
            (
                "caf\u{e9}/temperature/#".as_bytes(),
                Err(DecodeError::InvalidTopicName(TopicError::Wildcard)),
            ),
            (b"sensors/esp32-001\0/temp", Err(DecodeError::NullCharacter)),
            (b"+\0", Err(DecodeError::NullCharacter)),
            // Ill-formed UTF-8 and an encoded surrogate, short and past the first word.
            (b"caf\xC3(", Err(DecodeError::InvalidUtf8)),
            (
                b"sensors/esp32-001/\xED\xA0\x80",
                Err(DecodeError::InvalidUtf8),
            ),
            (b"sensors/esp32-001/\xFF+", Err(DecodeError::InvalidUtf8)),
        ];
        for (bytes, expected) in cases {
            let decoded = decode_name(bytes);
            assert_eq!(decoded.map(|_| ()), *expected, "{bytes:?}");
            if let Ok(name) = decoded {
                assert_eq!(name.as_str().as_bytes(), *bytes);
            }
        }
    }

    #[test]
    fn mqtt_4_7_3_1_topics_are_not_empty() {
        assert_eq!(TopicName::new(""), Err(TopicError::Empty));
        assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    }

    #[test]
    fn mqtt_4_7_3_2_topics_have_no_null_character() {
        assert_eq!(TopicName::new("a\0"), Err(TopicError::NullCharacter));
        assert_eq!(TopicFilter::new("a/\0"), Err(TopicError::NullCharacter));
    }

    #[test]
    fn mqtt_4_7_1_1_multi_level_wildcard_is_last_and_alone() {
        for ok in ["#", "a/#", "a/b/#", "/#"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in ["a/#/b", "a#", "a/b#", "#/a"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::MisplacedWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn mqtt_4_7_1_2_single_level_wildcard_fills_its_level() {
        for ok in ["+", "+/+", "a/+/b", "+/a/#", "/+"] {
            assert!(TopicFilter::new(ok).is_ok(), "{ok}");
        }
        for bad in ["a+", "a/b+/c", "+a"] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::MisplacedWildcard),
                "{bad}"
            );
        }
    }

    #[test]
    fn filter_matching_follows_the_spec_examples() {
        assert!(matches("sport/tennis/player1/#", "sport/tennis/player1"));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/ranking"
        ));
        assert!(matches(
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon"
        ));
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        assert!(matches("#", "a/b/c"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
    }

    #[test]
    fn mqtt_4_7_2_1_wildcards_do_not_match_dollar_topics() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
    }

    #[test]
    fn mqtt_4_8_2_1_shared_subscription_parses_share_name_and_filter() {
        let f = TopicFilter::new("$share/group/sensors/+/temp").unwrap();
        assert_eq!(f.shared(), Some(("group", "sensors/+/temp")));
        assert!(f.matches("sensors/a/temp"));
        for bad in [
            "$share/",
            "$share//a",
            "$share/g",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(
                TopicFilter::new(bad),
                Err(TopicError::InvalidShare),
                "{bad}"
            );
        }
        assert_eq!(
            TopicFilter::new("$share/g/a/#/b"),
            Err(TopicError::MisplacedWildcard)
        );
        assert_eq!(TopicFilter::new("$shared/a").unwrap().shared(), None);
    }

    #[test]
    fn mqtt_4_7_3_3_topics_are_at_most_65535_bytes() {
        let long = "a".repeat(65_536);
        assert_eq!(TopicName::new(&long), Err(TopicError::TooLong));
        assert!(TopicName::new(&long[..65_535]).is_ok());
    }
}
