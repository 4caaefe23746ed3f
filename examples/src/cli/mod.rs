//! The `mqtt` command line (`src/bin/mqtt.rs`): `mqtt pub`, `mqtt sub` and `mqtt rr` with
//! mosquitto_pub's, mosquitto_sub's and mosquitto_rr's flags, output, `-d` packet trace and
//! exit codes, over `mqtt-client-tokio`.
//!
//! ```text
//! mqtt sub -h broker -t 'sensors/#' -v -C 10 -W 30
//! mqtt pub -h broker -t sensors/1/temp -m 21.5 -q 1 -r
//! tail -f log | mqtt pub -t logs -l -q 1      # one connection, survives reconnects
//! mqtt pub -V 5 -t t -m x -D publish user-property k v -D publish message-expiry-interval 60
//! mqtt rr -t service/time -e replies/me -m now -W 5
//! ```
//!
//! Differences from mosquitto's clients: a lost connection is re-established (backoff up
//! to 10 s, unless `--no-reconnect`) and the session resumed, so `pub -l` at QoS 1/2 loses
//! nothing; `-j` prints one JSON object per message; exit codes and the remaining
//! differences are listed in [`exit::EXIT_CODES_HELP`].
//!
//! On 5.0 without `-c`, the session is kept by the broker for 5 minutes while the program
//! runs (so a reconnect resumes it) and ended by the final DISCONNECT.

pub mod args;
pub mod bench;
pub mod cjson;
pub mod connect;
pub mod exit;
pub mod format;
pub mod props;
pub mod publish;
pub mod rr;
pub mod subscribe;
pub mod time;
pub mod trace;

use args::{Cli, Command};
use exit::{Exit, Failure};

/// Runs a parsed command line; returns the exit code.
pub async fn run(cli: Cli) -> Exit {
    let (quiet, name, outcome) = match cli.command {
        Command::Pub(args) => (args.conn.quiet, "pub", publish::run(args).await),
        Command::Sub(args) => (args.conn.quiet, "sub", subscribe::run(args).await),
        Command::Rr(args) => (args.conn.quiet, "rr", rr::run(args).await),
        Command::Bench(args) => (false, "bench", bench::run(args).await),
    };
    match outcome {
        Ok(()) => Exit::Success,
        Err(Failure { exit, message }) => {
            // mosquitto prints usage errors even with --quiet.
            if !quiet || exit == Exit::Usage {
                trace::print_stderr(&message);
            }
            if exit == Exit::Usage {
                trace::print_stderr(&format!("\nUse 'mqtt {name} --help' to see usage."));
            }
            exit
        }
    }
}
