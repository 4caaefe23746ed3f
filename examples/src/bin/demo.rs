//! `demo`: the quick start. A simulated ESP32 LED device and a controller talk through an
//! MQTT broker; the controller switches the LED, sends an invalid command, and sees the
//! device's last will after a power cut. See [`examples::demo`].
//!
//! ```text
//! cargo run -p examples --bin demo
//! cargo run -p examples --bin demo -- --keep-running
//! cargo run -p examples --bin demo -- --broker mqtt://broker.local:1883 --username u --password p
//! ```
//!
//! Exit status: 0 when every step happened, 1 when one did not (the transcript says which),
//! 2 for a bad command line.

use std::process::ExitCode;

use examples::demo::{self, DemoOptions};

const USAGE: &str = "\
Usage: demo [options]

Starts a private mosquitto on a free loopback port (installing it with apt-get when it is
missing and the demo runs as root), a simulated ESP32 LED device and a controller, and
shows them talking: the controller switches the LED on, off, toggles it, sends an invalid
command, and receives the device's last will after a power cut. Takes a few seconds.
When the wasm bundle is built (bash scripts/build-wasm.sh), it also serves a control page
(the browser client, mqtt-client-wasm) and prints its URL.

Options:
  --broker URL          use this broker (mqtt://host:port) instead of starting mosquitto
  --username NAME       MQTT user name (default for the started broker: demo)
  --password SECRET     MQTT password (default for the started broker: made up per run)
  --id ID               device id (1-23 of A-Z a-z 0-9 _ -); default esp32-xxxxxx
  --keep-running        after the story, power the device on again and keep the broker,
                        the device and the control page up; type cut, power,
                        restart-broker or quit on stdin, or press Ctrl-C
  --lan                 serve the control page and the broker's WebSocket listener on
                        every interface (for a phone on the same network), not loopback
  -v, --verbose         also show the device's publishes and the broker's whole log
  -h, --help            show this help

Colour when stdout is a terminal, unless NO_COLOR is set.
Exit status: 0 if every step happened, 1 if one did not, 2 for a bad command line.";

/// Parses the command line; `Ok(None)` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<DemoOptions>, String> {
    let mut options = DemoOptions::default();
    while let Some(arg) = args.next() {
        // `--flag=value` and `--flag value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--broker" => options.broker = Some(value()?),
            "--username" => options.username = Some(value()?),
            "--password" => options.password = Some(value()?),
            "--id" => options.device_id = Some(value()?),
            "-v" | "--verbose" => options.verbose = true,
            "--keep-running" => options.keep_running = true,
            "--lan" => options.lan = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if options.password.is_some() && options.username.is_none() {
        return Err("--password needs --username (MQTT 3.1.1 sends no password alone)".into());
    }
    Ok(Some(options))
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("demo: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    options.color = demo::color_wanted();
    match demo::run(&options).await {
        Ok(_) => ExitCode::SUCCESS,
        // The transcript already says what failed.
        Err(_) => ExitCode::FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<DemoOptions>, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_all_flags() {
        let options = parse(&[
            "--broker=mqtt://10.0.0.5:1883",
            "--username",
            "u",
            "--password",
            "p",
            "--id",
            "lamp-1",
            "-v",
            "--keep-running",
            "--lan",
        ])
        .unwrap()
        .unwrap();
        assert!(options.keep_running && options.lan);
        assert_eq!(options.broker.as_deref(), Some("mqtt://10.0.0.5:1883"));
        assert_eq!(options.username.as_deref(), Some("u"));
        assert_eq!(options.password.as_deref(), Some("p"));
        assert_eq!(options.device_id.as_deref(), Some("lamp-1"));
        assert!(options.verbose);
    }

    #[test]
    fn defaults_start_a_broker() {
        let options = parse(&[]).unwrap().unwrap();
        assert!(options.broker.is_none() && options.username.is_none());
        assert!(!options.keep_running && !options.lan);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert!(parse(&["--broker"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--password", "p"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
