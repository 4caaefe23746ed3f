//! Commands accepted on `devices/<id>/led/set`.

/// A command for the LED.
///
/// Parsed from a payload after trimming ASCII whitespace, ignoring ASCII case: `on`, ` ON\n`
/// and `On` all switch the LED on. Anything else, including an empty payload, `1`, `true` or
/// JSON, is not a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Switch the LED on.
    On,
    /// Switch the LED off.
    Off,
    /// Invert the LED.
    Toggle,
}

impl Command {
    /// Parses a command payload; `None` if it is not one of `on`, `off`, `toggle`.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let word = payload.trim_ascii();
        [
            (&b"on"[..], Command::On),
            (b"off", Command::Off),
            (b"toggle", Command::Toggle),
        ]
        .into_iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|(_, command)| command)
    }

    /// The LED state after applying the command to an LED that is `led` now.
    pub fn apply(self, led: bool) -> bool {
        match self {
            Command::On => true,
            Command::Off => false,
            Command::Toggle => !led,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_words() {
        assert_eq!(Command::parse(b"on"), Some(Command::On));
        assert_eq!(Command::parse(b"off"), Some(Command::Off));
        assert_eq!(Command::parse(b"toggle"), Some(Command::Toggle));
    }

    #[test]
    fn ignores_case_and_surrounding_whitespace() {
        assert_eq!(Command::parse(b"ON"), Some(Command::On));
        assert_eq!(Command::parse(b"  Off\r\n"), Some(Command::Off));
        assert_eq!(Command::parse(b"\tToGgLe "), Some(Command::Toggle));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            &b""[..],
            b"   ",
            b"o n",
            b"onn",
            b"1",
            b"true",
            b"{\"led\":\"on\"}",
            b"on off",
            b"\xffon",
            b"toggl",
        ] {
            assert_eq!(Command::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn apply_sets_or_inverts() {
        for led in [false, true] {
            assert!(Command::On.apply(led));
            assert!(!Command::Off.apply(led));
            assert_eq!(Command::Toggle.apply(led), !led);
        }
    }
}
