//! What can go wrong when starting or controlling the broker.

use std::fmt;
use std::io;

/// How to install the broker, quoted in [`BrokerError::NotInstalled`].
pub(crate) const INSTALL_HINT: &str =
    "apt-get update && apt-get install -y mosquitto mosquitto-clients";

/// An error from [`Broker`](crate::Broker). Messages carry the tail of mosquitto's log when
/// it explains the failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerError {
    /// A mosquitto program (`mosquitto`, `mosquitto_passwd`) was not found. The message says
    /// how to install it; tests must fail rather than skip on this.
    NotInstalled {
        /// The missing program.
        program: &'static str,
        /// Where it was looked for.
        searched: String,
    },
    /// Preparing files, picking ports, spawning or signalling the process failed.
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Generating the TLS certificates failed.
    Certificates(rcgen::Error),
    /// `mosquitto_passwd` failed to create the password file.
    Passwd(String),
    /// mosquitto exited, or did not accept connections on every port within the start timeout.
    Start {
        /// What was observed.
        reason: String,
        /// mosquitto's log and output so far (the last few kB).
        log: String,
    },
    /// The call does not fit the broker's configuration, e.g. [`Broker::save`](crate::Broker::save)
    /// without persistence, or on a stopped broker.
    Usage(&'static str),
    /// Waiting for the broker (to exit, to save, for a log line) took too long.
    Timeout {
        /// What was awaited.
        what: String,
        /// mosquitto's log so far (the last few kB).
        log: String,
    },
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled { program, searched } => write!(
                f,
                "`{program}` is not installed (searched {searched}); install it with \
                 `{INSTALL_HINT}`, or point ${} at the broker binary",
                super::process::MOSQUITTO_BIN_ENV
            ),
            Self::Io { action, source } => write!(f, "{action}: {source}"),
            Self::Certificates(e) => write!(f, "generating test certificates: {e}"),
            Self::Passwd(msg) => write!(f, "mosquitto_passwd failed: {msg}"),
            Self::Start { reason, log } => {
                write!(
                    f,
                    "mosquitto did not start: {reason}\n--- mosquitto log ---\n{log}"
                )
            }
            Self::Usage(msg) => f.write_str(msg),
            Self::Timeout { what, log } => {
                write!(
                    f,
                    "timed out waiting for {what}\n--- mosquitto log ---\n{log}"
                )
            }
        }
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Certificates(e) => Some(e),
            _ => None,
        }
    }
}

impl BrokerError {
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let action = action.into();
        move |source| Self::Io { action, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_installed_says_how_to_install() {
        let e = BrokerError::NotInstalled {
            program: "mosquitto",
            searched: "/usr/sbin".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("apt-get update && apt-get install -y mosquitto mosquitto-clients"));
        assert!(msg.contains("MOSQUITTO_BIN"));
    }
}
