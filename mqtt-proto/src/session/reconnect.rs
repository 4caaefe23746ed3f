//! Whether and when to connect again: a backoff with jitter that resets only after a connection
//! stayed up, and one documented reaction to each way a connection can end.
//!
//! The session learns why each connection ended (a CONNACK refusal, the broker's DISCONNECT,
//! a timeout, a protocol error, or a transport that just closed), and
//! [`Session::handle_transport_closed`](super::Session::handle_transport_closed) turns that into
//! a [`Reconnect`]: when to try again, whether to follow the broker's Server Reference, or to
//! stop because retrying cannot help. Both clients carry out the same decision.

use core::time::Duration;

use super::{Instant, LostReason};
use crate::ReasonCode;

/// How the session paces connection attempts ([`SessionConfig::reconnect`](super::SessionConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReconnectPolicy {
    /// Delay before the first attempt after a connection that had stayed up.
    pub initial: Duration,
    /// Largest delay: each failed attempt doubles the delay up to this.
    pub max: Duration,
    /// A connection that stayed up this long (from CONNACK) resets the backoff. One that ends
    /// sooner counts as a failed attempt, so a broker that accepts and then drops the client
    /// (a twin client id, a poison message, a broker-side limit) sees the attempts back off
    /// instead of a reconnect storm.
    pub stable_after: Duration,
    /// Spread each delay at random over `[delay / 2, delay]`, so that clients cut off together
    /// do not come back together.
    pub jitter: bool,
    /// Reconnect after the broker said another connection took over our client identifier
    /// (5.0 Session Taken Over). Off by default: two clients sharing an identifier would
    /// otherwise take the session from each other forever.
    pub after_takeover: bool,
    /// Consecutive redirections (Use Another Server, Server Moved) followed; after that the
    /// next end counts as a plain failure.
    pub max_redirects: u8,
    /// Seed of the jitter's random numbers. Give each client its own (a hardware random
    /// number, the MAC address, the client identifier's hash): clients with one seed jitter
    /// alike.
    pub seed: u64,
}

impl ReconnectPolicy {
    /// From 1 s up to 60 s, stable after 10 s, with jitter, no reconnect after a takeover,
    /// at most 5 redirections in a row.
    pub const fn new() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            stable_after: Duration::from_secs(10),
            jitter: true,
            after_takeover: false,
            max_redirects: 5,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a connection, or an attempt at one, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EndCause {
    /// The transport closed or failed with no word from the broker, or could not be opened.
    Transport,
    /// CONNACK refused the connection with this reason code (3.1.1 return codes are mapped to
    /// their 5.0 equivalents).
    Refused(ReasonCode),
    /// The broker sent DISCONNECT with this reason code.
    Disconnected(ReasonCode),
    /// The session gave up on the connection: a timeout or the broker broke the protocol.
    Lost(LostReason),
    /// We disconnected gracefully.
    Closed,
}

/// What an end means for the next attempt. See [`EndCause::reaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Reaction {
    /// Try again after the backoff delay.
    Retry,
    /// Follow the broker's Server Reference; `moved` means for good (Server Moved) rather
    /// than for one connection (Use Another Server).
    Redirect {
        /// Server Moved rather than Use Another Server.
        moved: bool,
    },
    /// Do not reconnect: retrying cannot help, or the application asked to stop.
    Stop,
}

impl EndCause {
    /// The session's reaction to this end:
    ///
    /// | cause | reaction |
    /// |---|---|
    /// | transport closed, keep alive or CONNACK timeout, protocol error | retry with backoff |
    /// | server busy, unavailable, quota exceeded, rate too high, connection rate exceeded, administrative action, keep alive timeout, any other code | retry with backoff |
    /// | bad user name or password, not authorized, banned, bad authentication method | stop: credentials or rights must change first |
    /// | unsupported protocol version, client identifier not valid, malformed or protocol error in CONNACK's answer to our CONNECT, topic name invalid, packet too large, retain or QoS not supported, payload format invalid (the will) | stop: the options must change first |
    /// | session taken over | stop, unless [`ReconnectPolicy::after_takeover`] |
    /// | use another server, server moved, with a Server Reference | redirect |
    /// | our own graceful DISCONNECT | stop |
    /// | our authenticator refused the broker (a wrong proof: it does not hold the credentials) | stop |
    ///
    /// `after_takeover` is [`ReconnectPolicy::after_takeover`]; a redirect without a Server
    /// Reference is a plain retry (the session checks that).
    pub const fn reaction(self, after_takeover: bool) -> Reaction {
        use ReasonCode as R;
        match self {
            Self::Closed | Self::Lost(LostReason::AuthenticationFailed) => Reaction::Stop,
            Self::Transport | Self::Lost(_) => Reaction::Retry,
            Self::Refused(code) | Self::Disconnected(code) => match code {
                R::BadUserNameOrPassword
                | R::NotAuthorized
                | R::Banned
                | R::BadAuthenticationMethod
                | R::UnsupportedProtocolVersion
                | R::ClientIdentifierNotValid
                | R::TopicNameInvalid
                | R::PacketTooLarge
                | R::RetainNotSupported
                | R::QoSNotSupported
                | R::PayloadFormatInvalid => match self {
                    // A broker may end a live connection with these for one bad packet of
                    // ours; only a refused CONNECT proves that retrying the same cannot work.
                    Self::Refused(_) => Reaction::Stop,
                    _ => fatal_after_connect(code),
                },
                R::SessionTakenOver if after_takeover => Reaction::Retry,
                R::SessionTakenOver => Reaction::Stop,
                R::UseAnotherServer => Reaction::Redirect { moved: false },
                R::ServerMoved => Reaction::Redirect { moved: true },
                _ => Reaction::Retry,
            },
        }
    }
}

/// The reaction to a DISCONNECT with a code that would be fatal in CONNACK.
const fn fatal_after_connect(code: ReasonCode) -> Reaction {
    match code {
        // The broker revoked our rights or identity: the same credentials fail again.
        ReasonCode::NotAuthorized | ReasonCode::Banned | ReasonCode::BadAuthenticationMethod => {
            Reaction::Stop
        }
        // One packet of ours was refused; the session's checks keep it from being sent again.
        _ => Reaction::Retry,
    }
}

/// What the driver does after a transport ended: the answer of
/// [`Session::handle_transport_closed`](super::Session::handle_transport_closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Reconnect {
    /// Open a new transport (to the same broker, or the next of a failover list) at `at`,
    /// then call [`Session::connect`](super::Session::connect).
    At {
        /// When.
        at: Instant,
        /// Attempts since the last connection that stayed up (1-based).
        attempt: u32,
        /// Why the last connection ended.
        cause: EndCause,
    },
    /// Open a transport to the Server Reference that came with the broker's refusal or
    /// DISCONNECT ([`Event::ConnectionRefused`](super::Event::ConnectionRefused),
    /// [`Event::Disconnected`](super::Event::Disconnected)) at `at`.
    Redirect {
        /// When.
        at: Instant,
        /// Server Moved: use the reference from now on, not just for the next connection.
        moved: bool,
    },
    /// Do not reconnect.
    Stop(EndCause),
}

/// The backoff's state across connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    /// Failed attempts since the last stable connection.
    attempt: u32,
    redirects: u8,
    rng: u64,
}

impl Backoff {
    pub(crate) const fn new(seed: u64) -> Self {
        Self {
            attempt: 0,
            redirects: 0,
            // xorshift must not start at zero.
            rng: if seed == 0 {
                0x2545_F491_4F6C_DD1D
            } else {
                seed
            },
        }
    }

    /// Starts the count of failed attempts again: a connection worked, and we ended it.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
        self.redirects = 0;
    }

    /// Decides what follows a connection that ended at `now` for `cause`; `up_since` is when
    /// its CONNACK was accepted, `reference` whether the broker named a Server Reference.
    pub(crate) fn next(
        &mut self,
        policy: &ReconnectPolicy,
        now: Instant,
        cause: EndCause,
        up_since: Option<Instant>,
        reference: bool,
    ) -> Reconnect {
        let stable =
            up_since.is_some_and(|t| now.saturating_duration_since(t) >= policy.stable_after);
        if stable {
            self.attempt = 0;
        }
        match cause.reaction(policy.after_takeover) {
            Reaction::Stop => return Reconnect::Stop(cause),
            Reaction::Redirect { moved } if reference && self.redirects < policy.max_redirects => {
                self.redirects += 1;
                return Reconnect::Redirect { at: now, moved };
            }
            Reaction::Redirect { .. } | Reaction::Retry => {}
        }
        self.redirects = 0;
        self.attempt = self.attempt.saturating_add(1);
        let delay = self.delay_ms(policy);
        Reconnect::At {
            at: now.plus_millis(delay),
            attempt: self.attempt,
            cause,
        }
    }

    /// `initial · 2^(attempt-1)`, capped at `max`, jittered over its upper half, in the whole
    /// milliseconds the session's clock keeps of it. Computed in milliseconds, not
    /// `Duration`s (whose arithmetic a 32-bit microcontroller pays for in code), with the
    /// same result: whole milliseconds (and their halves) of a minimum or maximum are the
    /// minimum or maximum of the whole milliseconds, and adding whole milliseconds to a
    /// duration adds them to its whole milliseconds.
    fn delay_ms(&mut self, policy: &ReconnectPolicy) -> u64 {
        use super::time::millis_times;
        let exp = self.attempt.saturating_sub(1).min(20);
        // With jitter, the half of the delay that is certain (a random spread follows).
        let jitter = policy.jitter;
        let cap = millis_times(policy.max, 0, jitter).max(millis_times(policy.initial, 0, jitter));
        let base = millis_times(policy.initial, exp, jitter).min(cap);
        if !jitter {
            return base;
        }
        let half = base;
        let spread = match half.checked_add(1) {
            _ if half == 0 => 0,
            Some(range) => self.random() % range,
            // A delay of 2^64 - 1 ms: any value is in range.
            None => self.random(),
        };
        half.saturating_add(spread)
    }

    fn random(&mut self) -> u64 {
        // xorshift64: plenty for spreading delays, and no dependency.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ReconnectPolicy {
        ReconnectPolicy {
            jitter: false,
            ..ReconnectPolicy::new()
        }
    }

    fn at(r: Reconnect) -> (u64, u32) {
        match r {
            Reconnect::At { at, attempt, .. } => (at.as_millis(), attempt),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_resets_only_after_a_stable_connection() {
        let p = policy();
        let mut b = Backoff::new(1);
        let t = Instant::from_millis(100_000);
        // Accepted, then dropped 50 ms later: attempts keep growing.
        let up = Some(t);
        let later = Instant::from_millis(100_050);
        assert_eq!(
            at(b.next(&p, later, EndCause::Transport, up, false)),
            (101_050, 1)
        );
        assert_eq!(
            at(b.next(&p, later, EndCause::Transport, up, false)),
            (102_050, 2)
        );
        assert_eq!(
            at(b.next(&p, later, EndCause::Transport, up, false)),
            (104_050, 3)
        );
        // Up for 10 s: back to the first step.
        let stable = Instant::from_millis(110_000);
        assert_eq!(
            at(b.next(&p, stable, EndCause::Transport, up, false)),
            (111_000, 1)
        );
    }

    /// The delay as it was computed with `Duration`s, to the whole millisecond the session
    /// keeps of it.
    fn duration_delay(b: &mut Backoff, policy: &ReconnectPolicy) -> u64 {
        let exp = b.attempt.saturating_sub(1).min(20);
        let base = policy
            .initial
            .saturating_mul(1u32 << exp)
            .min(policy.max.max(policy.initial));
        if !policy.jitter {
            return super::super::time::millis(base);
        }
        let half = base / 2;
        let millis = super::super::time::millis(half);
        let spread = match millis.checked_add(1) {
            _ if millis == 0 => 0,
            Some(range) => b.random() % range,
            None => b.random(),
        };
        super::super::time::millis(half + Duration::from_millis(spread))
    }

    #[test]
    fn delay_in_milliseconds_is_the_duration_delay_to_the_millisecond() {
        let durations = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_nanos(999_999),
            Duration::from_micros(1_500),
            Duration::from_millis(1),
            Duration::new(1, 999_999_999),
            Duration::from_millis(60_000),
            Duration::new(3_600, 123_456_789),
            Duration::new(u64::MAX / 2_000_000, 987_654_321),
            Duration::MAX,
        ];
        for initial in durations {
            for max in durations {
                for jitter in [false, true] {
                    let policy = ReconnectPolicy {
                        initial,
                        max,
                        jitter,
                        ..ReconnectPolicy::new()
                    };
                    let (mut a, mut b) = (Backoff::new(11), Backoff::new(11));
                    for attempt in 1..25 {
                        a.attempt = attempt;
                        b.attempt = attempt;
                        assert_eq!(
                            a.delay_ms(&policy),
                            duration_delay(&mut b, &policy),
                            "{initial:?} {max:?} {jitter} {attempt}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn delay_is_capped_and_jitter_stays_in_the_upper_half() {
        let p = ReconnectPolicy::new();
        let mut b = Backoff::new(7);
        let now = Instant::ZERO;
        for n in 1..40u32 {
            let (ms, attempt) = at(b.next(&p, now, EndCause::Transport, None, false));
            assert_eq!(attempt, n);
            let full = (1000u64 << (n - 1).min(20)).min(60_000);
            assert!(
                ms >= full / 2 && ms <= full,
                "attempt {n}: {ms} ms of {full}"
            );
        }
    }

    #[test]
    fn fatal_refusals_stop_and_busy_ones_retry() {
        let p = policy();
        let mut b = Backoff::new(1);
        let now = Instant::ZERO;
        for code in [
            ReasonCode::BadUserNameOrPassword,
            ReasonCode::NotAuthorized,
            ReasonCode::Banned,
            ReasonCode::UnsupportedProtocolVersion,
            ReasonCode::ClientIdentifierNotValid,
        ] {
            let cause = EndCause::Refused(code);
            assert_eq!(b.next(&p, now, cause, None, false), Reconnect::Stop(cause));
        }
        for code in [
            ReasonCode::ServerBusy,
            ReasonCode::ServerUnavailable,
            ReasonCode::QuotaExceeded,
            ReasonCode::ConnectionRateExceeded,
        ] {
            assert!(matches!(
                b.next(&p, now, EndCause::Refused(code), None, false),
                Reconnect::At { .. }
            ));
        }
        let taken = EndCause::Disconnected(ReasonCode::SessionTakenOver);
        assert_eq!(b.next(&p, now, taken, None, false), Reconnect::Stop(taken));
        let p2 = ReconnectPolicy {
            after_takeover: true,
            ..p
        };
        assert!(matches!(
            b.next(&p2, now, taken, None, false),
            Reconnect::At { .. }
        ));
    }

    #[test]
    fn redirects_are_followed_a_bounded_number_of_times() {
        let p = policy();
        let mut b = Backoff::new(1);
        let now = Instant::ZERO;
        let moved = EndCause::Refused(ReasonCode::ServerMoved);
        for _ in 0..5 {
            assert_eq!(
                b.next(&p, now, moved, None, true),
                Reconnect::Redirect {
                    at: now,
                    moved: true
                }
            );
        }
        assert!(matches!(
            b.next(&p, now, moved, None, true),
            Reconnect::At { .. }
        ));
        // Without a reference there is nowhere to go.
        let another = EndCause::Disconnected(ReasonCode::UseAnotherServer);
        assert!(matches!(
            b.next(&p, now, another, None, false),
            Reconnect::At { .. }
        ));
    }
}
