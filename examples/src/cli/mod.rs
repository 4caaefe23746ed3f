//! The `mqtt` command line (`src/bin/mqtt.rs`): `mqtt pub` and `mqtt sub` with
//! mosquitto_pub's and mosquitto_sub's flags, over `mqtt-client-tokio`.
//!
//! ```text
//! mqtt sub -h broker -t 'sensors/#' -v -C 10 -W 30
//! mqtt pub -h broker -t sensors/1/temp -m 21.5 -q 1 -r
//! tail -f log | mqtt pub -t logs -l -q 1      # one connection, survives reconnects
//! mqtt pub -V 5 -t t -m x -D publish user-property k v -D publish message-expiry-interval 60
//! ```
//!
//! Differences from mosquitto's clients: a lost connection is re-established (backoff up
//! to 10 s) and the session resumed, so `pub -l` at QoS 1/2 loses nothing; `-j` prints one
//! JSON object per message; exit codes are listed in [`exit::EXIT_CODES_HELP`].
//!
//! On 5.0 without `-c`, the session is kept by the broker for 5 minutes while the program
//! runs (so a reconnect resumes it) and ended by the final DISCONNECT.

pub mod args;
pub mod connect;
pub mod exit;
pub mod format;
pub mod props;
pub mod publish;
pub mod subscribe;

use args::{Cli, Command};
use exit::{Exit, Failure};

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> Exit {
    let (quiet, outcome) = match cli.command {
        Command::Pub(args) => (args.conn.quiet, publish::run(args).await),
        Command::Sub(args) => (args.conn.quiet, subscribe::run(args).await),
    };
    match outcome {
        Ok(()) => Exit::Success,
        Err(Failure { exit, message }) => {
            if !quiet {
                eprintln!("{message}");
                if exit == Exit::Usage {
                    eprintln!("\nUse 'mqtt pub --help' or 'mqtt sub --help' to see usage.");
                }
            }
            exit
        }
    }
}
