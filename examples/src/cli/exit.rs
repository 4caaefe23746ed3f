//! Exit codes, and the failures that lead to them. The codes are mosquitto_pub's,
//! mosquitto_sub's and mosquitto_rr's (2.0), measured against them, so that scripts that test
//! `$?` carry over.

use std::fmt;
use std::process::ExitCode;

use mqtt_client_tokio::{Error, ProtocolVersion, ReasonCode};

use super::trace::v3_return_code;

/// The exit-code table and the remaining differences from mosquitto, printed by `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (as mosquitto_pub, mosquitto_sub and mosquitto_rr 2.0):
  0    success; also when the broker refuses a 5.0 publish (PUBACK/PUBREC failure: a
       warning is printed) or every subscription, as mosquitto_pub and mosquitto_sub do
  1    any other error: usage error, broker unreachable, TLS handshake failed
       (\"Unable to connect (A TLS error occurred.).\"), connection lost
  1-5  MQTT 3.1/3.1.1: the broker refused the connection with this CONNACK return code
       (4 bad user name or password, 5 not authorised)
  128+ MQTT 5.0: the broker refused the connection with this CONNACK reason code
       (134 bad user name or password, 135 not authorized, 138 banned ...)
  27   -W timeout: the messages asked for did not arrive in time

Differences from mosquitto's clients:
  - A lost connection is re-established (backoff up to 10 s) and the session resumed,
    unless --no-reconnect is given.
  - `pub -l` at QoS 1/2 keeps every line across a dropped connection.
  - Without -i, a 3.1.1 client identifier is a random `mqttrs-...` one (mosquitto sends
    an empty one), so -d prints it instead of `(null)`; on 5.0 the broker assigns one,
    as with mosquitto.
  - -D subscribe subscription-identifier is accepted but not sent (the library numbers
    subscriptions itself; a warning says so); user properties are sent.
  - With -U and -E, mosquitto_sub leaves without waiting for the UNSUBACKs; mqtt sub
    waits for them (at most the connect timeout) before its DISCONNECT.
  - After the response, mosquitto_rr 2.0 closes the connection without DISCONNECT (so
    the broker publishes its will); mqtt rr sends DISCONNECT.
  - The broker refusing every subscription (SUBACK failure) prints \"All subscription
    requests were denied.\" and exits with 0, as mosquitto_sub does.
  - -j (one JSON object per message) is ours; mosquitto_sub has only -F %j / %J.
  - --nodelay is accepted: Nagle's algorithm is always off.
  - -k accepts 0 (no keep alive) and values below 5, which mosquitto refuses.
  - -d interleaves the trace with the messages as libmosquitto does (a QoS 1/2
    message is printed once its PUBACK/PUBCOMP is sent), but a burst may interleave
    differently.
  - --tls-version: tlsv1.2 or tlsv1.3 (TLS 1.1 is not supported); --insecure accepts
    a certificate issued for another name, the chain is still verified.
  - A failed TLS handshake always exits 1; mosquitto's clients exit 8 (\"Error: A TLS
    error occurred.\") in the rare runs where they notice the failure after connecting.
  - 5.0 properties in %j / %J are listed in the order this client encodes them, not in
    the order the broker sent them.
  - -d also prints `received DISCONNECT (reason)` and `AUTH` packets, which libmosquitto
    2.0 does not log.
  - Usage errors other than an unknown option are worded by the argument parser, and
    mqtt pub without a message does not print the whole usage text.
  - Not supported: --psk, --psk-identity, --ciphers, --tls-engine, --keyform, -o, -S.";

/// Why the program stops, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Success,
    /// 1: anything not listed below.
    Error,
    /// 1: bad or missing flags (the help hint is printed).
    Usage,
    /// 1: the broker could not be reached or did not answer CONNECT.
    Unreachable,
    /// The CONNACK return code (3.1.1) or reason code (5.0) of a refused connection.
    ConnectionRefused(u8),
    /// 27: `-W` expired.
    Timeout,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Error | Self::Usage | Self::Unreachable => 1,
            Self::ConnectionRefused(code) => code,
            Self::Timeout => 27,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// A failure: its exit code and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub exit: Exit,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    /// A failure with this code and message.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }

    /// A usage error; mosquitto's words start with "Error: ".
    pub fn usage(message: impl Into<String>) -> Self {
        let message = message.into();
        let message = if message.starts_with("Error: ") {
            message
        } else {
            format!("Error: {message}")
        };
        Self::new(Exit::Usage, message)
    }

    /// The first connection failed, in mosquitto's words.
    pub fn connect(error: &Error, version: ProtocolVersion) -> Self {
        match error {
            Error::ConnectionRefused(code) => {
                let (exit, text) = if version == ProtocolVersion::V5 {
                    (code.as_u8(), reason_string(*code).to_string())
                } else {
                    let rc = v3_return_code(*code);
                    (rc, connack_string(rc).to_string())
                };
                Self::new(
                    Exit::ConnectionRefused(exit),
                    format!("Connection error: {text}"),
                )
            }
            Error::InvalidUrl { .. } | Error::InvalidOptions(_) | Error::InvalidTopic(_) => {
                Self::usage(error.to_string())
            }
            // mosquitto's clients fail the handshake inside mosquitto_connect (exit 1; when
            // it fails later in their loop, which is rare, they exit 8).
            Error::Io(e) if is_tls(e) => Self::new(
                Exit::Unreachable,
                "Unable to connect (A TLS error occurred.).",
            ),
            Error::Io(e) => Self::new(Exit::Unreachable, format!("Error: {}", io_text(e))),
            _ => Self::new(Exit::Unreachable, format!("Error: {error}")),
        }
    }

    /// An operation failed after connecting (publish, subscribe, the connection stopped).
    pub fn operation(what: &str, error: &Error) -> Self {
        let exit = match error {
            Error::InvalidTopic(_) => Exit::Usage,
            _ => Exit::Error,
        };
        Self::new(exit, format!("{what}: {error}"))
    }
}

/// Whether rustls failed the handshake (tokio-rustls reports it as an I/O error).
fn is_tls(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<mqtt_client_tokio::rustls::Error>())
}

/// An I/O error as C's `strerror` words it ("Connection refused"), without Rust's
/// "(os error 111)".
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// `mosquitto_connack_string`: the 3.1.1 return codes.
pub fn connack_string(code: u8) -> &'static str {
    match code {
        0 => "Connection Accepted.",
        1 => "Connection Refused: unacceptable protocol version.",
        2 => "Connection Refused: identifier rejected.",
        3 => "Connection Refused: broker unavailable.",
        4 => "Connection Refused: bad user name or password.",
        5 => "Connection Refused: not authorised.",
        _ => "Connection Refused: unknown reason.",
    }
}

/// `mosquitto_reason_string`: the 5.0 reason codes.
pub fn reason_string(code: ReasonCode) -> &'static str {
    reason_text(code.as_u8())
}

/// `mosquitto_reason_string` of a raw code.
pub fn reason_text(code: u8) -> &'static str {
    match code {
        0 => "Success",
        1 => "Granted QoS 1",
        2 => "Granted QoS 2",
        4 => "Disconnect with Will Message",
        16 => "No matching subscribers",
        17 => "No subscription existed",
        24 => "Continue authentication",
        25 => "Re-authenticate",
        128 => "Unspecified error",
        129 => "Malformed Packet",
        130 => "Protocol Error",
        131 => "Implementation specific error",
        132 => "Unsupported Protocol Version",
        133 => "Client Identifier not valid",
        134 => "Bad User Name or Password",
        135 => "Not authorized",
        136 => "Server unavailable",
        137 => "Server busy",
        138 => "Banned",
        139 => "Server shutting down",
        140 => "Bad authentication method",
        141 => "Keep Alive timeout",
        142 => "Session taken over",
        143 => "Topic Filter invalid",
        144 => "Topic Name invalid",
        145 => "Packet Identifier in use",
        146 => "Packet Identifier not found",
        147 => "Receive Maximum exceeded",
        148 => "Topic Alias invalid",
        149 => "Packet too large",
        150 => "Message rate too high",
        151 => "Quota exceeded",
        152 => "Administrative action",
        153 => "Payload format invalid",
        154 => "Retain not supported",
        155 => "QoS not supported",
        156 => "Use another server",
        157 => "Server moved",
        158 => "Shared Subscriptions not supported",
        159 => "Connection rate exceeded",
        160 => "Maximum connect time",
        161 => "Subscription identifiers not supported",
        162 => "Wildcard Subscriptions not supported",
        _ => "Unknown reason",
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::new(Exit::Error, format!("Error: {}", io_text(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_exit_with_the_connack_code() {
        let e = Error::ConnectionRefused(ReasonCode::NotAuthorized);
        let f = Failure::connect(&e, ProtocolVersion::V3_1_1);
        assert_eq!(f.exit.code(), 5);
        assert_eq!(
            f.message,
            "Connection error: Connection Refused: not authorised."
        );
        let f = Failure::connect(&e, ProtocolVersion::V5);
        assert_eq!(f.exit.code(), 135);
        assert_eq!(f.message, "Connection error: Not authorized");
        let io = Error::Io(std::sync::Arc::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(Failure::connect(&io, ProtocolVersion::V5).exit.code(), 1);
        assert_eq!(Exit::Timeout.code(), 27);
        assert_eq!(Exit::Usage.code(), 1);
    }
}
