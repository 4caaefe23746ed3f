//! Exit codes, and the failures that lead to them.

use std::fmt;
use std::process::ExitCode;

use mqtt_client_tokio::Error;

/// The exit-code table printed by `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   success
  1   other error (a message could not be sent, the connection was lost for good, I/O)
  2   usage error (bad or missing flags)
  3   could not connect: broker unreachable, TLS handshake failed, no CONNACK in time
  4   the broker refused the connection (CONNACK failure, e.g. bad user name or password)
  5   the broker refused every subscription (SUBACK failure)
  6   the broker refused a message (5.0 PUBACK/PUBREC failure, or too large / QoS too high)
  27  -W timeout: the messages asked for did not arrive in time (as mosquitto_sub)";

/// Why the program stops, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Success = 0,
    /// 1: anything not listed below.
    Error = 1,
    /// 2: bad or missing flags.
    Usage = 2,
    /// 3: the broker could not be reached or did not answer CONNECT.
    Unreachable = 3,
    /// 4: CONNACK with a failure code.
    ConnectionRefused = 4,
    /// 5: SUBACK refused every filter.
    SubscriptionRefused = 5,
    /// 6: a message was refused (PUBACK/PUBREC failure) or cannot be sent to this broker.
    PublishRefused = 6,
    /// 27: `-W` expired.
    Timeout = 27,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
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

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// The first connection failed.
    pub fn connect(error: &Error) -> Self {
        let exit = match error {
            Error::ConnectionRefused(_) => Exit::ConnectionRefused,
            Error::InvalidUrl { .. } | Error::InvalidOptions(_) | Error::InvalidTopic(_) => {
                Exit::Usage
            }
            _ => Exit::Unreachable,
        };
        Self::new(exit, format!("Connection error: {error}"))
    }

    /// An operation failed after connecting (publish, subscribe, the connection stopped).
    pub fn operation(what: &str, error: &Error) -> Self {
        let exit = match error {
            Error::ConnectionRefused(_) => Exit::ConnectionRefused,
            Error::Rejected(_) | Error::Dropped(_) | Error::TooLarge { .. } => Exit::PublishRefused,
            Error::InvalidTopic(_) => Exit::Usage,
            _ => Exit::Error,
        };
        Self::new(exit, format!("{what}: {error}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self::new(Exit::Error, format!("I/O error: {e}"))
    }
}
