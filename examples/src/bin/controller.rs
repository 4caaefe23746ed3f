//! The LED controller: switches a device's LED and prints what the device reports.
//!
//! ```text
//! controller --broker mqtt://127.0.0.1:1883 --username ctl --password s3cret --id esp32-a1b2c3 on
//! controller --id esp32-a1b2c3 toggle --timeout 3
//! controller --id esp32-a1b2c3 watch            # status, LED state, telemetry until Ctrl-C
//! ```
//!
//! A command goes to `devices/<id>/led/set` (QoS 1). The controller first subscribes to the
//! device's topics, so it learns the retained status and LED state, then waits for the
//! device's *new* report on `devices/<id>/led/state` (a live message, not the retained one)
//! and exits 0 when it is the state asked for (`toggle`: the opposite of the retained state,
//! or any report when none was retained). See `--help` for the exit codes.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use mqtt_client_tokio::{
    Client, Error, Message, Options, ProtocolVersion, QoS, Subscription, SubscriptionOptions,
};
use tokio::time::{sleep_until, Instant};

/// How long to collect retained messages after subscribing, before sending the command.
const RETAINED_GRACE: Duration = Duration::from_millis(300);

const EXIT_CODES: &str = "\
Exit codes:
  0  the device reported the state asked for (watch: ended normally)
  1  other error (the connection was lost for good, I/O)
  2  usage error
  3  could not connect (broker unreachable, TLS, no CONNACK in time)
  4  the broker refused the connection (e.g. bad user name or password)
  5  no state report from the device within --timeout (device offline?)
  6  the device reported another state, or an error on led/error";

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "controller",
    version,
    about = "Switch the LED of a device and print what it reports",
    after_help = EXIT_CODES
)]
struct Args {
    /// Broker URL: mqtt://, mqtts://, ws:// or wss://.
    #[arg(long, default_value = "mqtt://localhost:1883")]
    broker: String,
    /// User name.
    #[arg(long)]
    username: Option<String>,
    /// Password.
    #[arg(long)]
    password: Option<String>,
    /// The device's id: its topics are `devices/<ID>/...`.
    #[arg(long = "id", value_name = "DEVICE_ID")]
    device: String,
    /// What to do.
    #[arg(value_enum, default_value_t = Action::Watch)]
    action: Action,
    /// Seconds to wait for the device's state report after a command.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// watch: exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// PEM CA certificates to trust for mqtts:// and wss://.
    #[arg(long, value_name = "FILE")]
    cafile: Option<std::path::PathBuf>,
    /// Speak MQTT 3.1.1 instead of 5.0.
    #[arg(long)]
    mqtt311: bool,
}

/// The argument: a command for the LED, or watching the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Action {
    /// Switch the LED on.
    On,
    /// Switch the LED off.
    Off,
    /// Invert the LED.
    Toggle,
    /// Print the device's status, LED state and telemetry as they arrive.
    Watch,
}

/// Why the controller stops, as an exit code.
#[derive(Debug, Clone, Copy)]
enum Exit {
    Success = 0,
    Error = 1,
    Usage = 2,
    Unreachable = 3,
    Refused = 4,
    NoReport = 5,
    Mismatch = 6,
}

impl Action {
    /// The LED state the device should report after this command, given the retained one.
    fn expected(self, before: Option<bool>) -> Option<bool> {
        match self {
            Action::On => Some(true),
            Action::Off => Some(false),
            Action::Toggle => before.map(|led| !led),
            Action::Watch => None,
        }
    }

    fn payload(self) -> &'static str {
        match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Toggle => "toggle",
            Action::Watch => "",
        }
    }
}

/// The device's topics.
struct Topics {
    prefix: String,
}

impl Topics {
    fn set(&self) -> String {
        format!("{}/led/set", self.prefix)
    }

    fn all(&self) -> Vec<(String, SubscriptionOptions)> {
        ["status", "led/state", "led/error", "telemetry"]
            .iter()
            .map(|t| {
                let filter = format!("{}/{t}", self.prefix);
                (filter, SubscriptionOptions::new(QoS::AtLeastOnce))
            })
            .collect()
    }

    /// `led/state` of `devices/x/led/state`.
    fn kind<'a>(&self, topic: &'a str) -> &'a str {
        topic
            .strip_prefix(self.prefix.as_str())
            .and_then(|t| t.strip_prefix('/'))
            .unwrap_or(topic)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(Exit::Error as u8);
        }
    };
    let exit = runtime.block_on(run(args));
    ExitCode::from(exit as u8)
}

async fn run(args: Args) -> Exit {
    if args.device.is_empty() || args.device.contains(['/', '+', '#']) {
        eprintln!("--id must be a device id without '/', '+' or '#'");
        return Exit::Usage;
    }
    let options = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return Exit::Usage;
        }
    };
    let client = match Client::connect(options).await {
        Ok((client, _events)) => client,
        Err(e) => {
            eprintln!("cannot connect to {}: {e}", args.broker);
            return match e {
                Error::ConnectionRefused(_) => Exit::Refused,
                _ => Exit::Unreachable,
            };
        }
    };
    let topics = Topics {
        prefix: format!("devices/{}", args.device),
    };
    let exit = match client.subscribe_many(topics.all()).await {
        Ok(sub) if args.action == Action::Watch => watch(sub, &topics, args.count).await,
        Ok(sub) => command(&client, sub, &topics, &args).await,
        Err(e) => {
            eprintln!("cannot subscribe: {e}");
            Exit::Error
        }
    };
    let _ = client.disconnect().await;
    exit
}

fn options(args: &Args) -> Result<Options, Error> {
    let mut options = Options::new(&args.broker)?;
    options.protocol.client_id = format!("controller-{}", std::process::id());
    if args.username.is_some() {
        options.protocol.username = args.username.clone();
    }
    if let Some(password) = &args.password {
        options.protocol.password = Some(password.clone().into());
    }
    if args.mqtt311 {
        options.protocol.version = ProtocolVersion::V3_1_1;
    }
    if let Some(path) = &args.cafile {
        let pem = std::fs::read(path)
            .map_err(|e| Error::InvalidOptions(format!("{}: {e}", path.display())))?;
        options.transport.tls.ca_pem = Some(pem);
    }
    Ok(options)
}

/// Prints a message as `kind: payload`, e.g. `led/state: on (retained)`.
fn print(topics: &Topics, message: &Message) {
    let payload = String::from_utf8_lossy(&message.payload);
    let retained = if message.retain { " (retained)" } else { "" };
    println!("{}: {payload}{retained}", topics.kind(&message.topic));
}

/// `watch`: prints everything until Ctrl-C, `--count` messages, or the client stops.
async fn watch(mut sub: Subscription, topics: &Topics, count: Option<u64>) -> Exit {
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        tokio::select! {
            message = sub.recv() => match message {
                Some(m) => print(topics, &m),
                None => return Exit::Error,
            },
            _ = tokio::signal::ctrl_c() => return Exit::Success,
        }
        seen += 1;
    }
    Exit::Success
}

/// Sends the command and waits for the device's new state.
async fn command(client: &Client, mut sub: Subscription, topics: &Topics, args: &Args) -> Exit {
    let state_topic = format!("{}/led/state", topics.prefix);
    let mut before = None;
    // The broker sends retained messages right after SUBACK: note the current state.
    let grace = Instant::now() + RETAINED_GRACE;
    loop {
        tokio::select! {
            Some(m) = sub.recv() => {
                print(topics, &m);
                if m.topic == state_topic {
                    before = parse_state(&m);
                }
            }
            () = sleep_until(grace) => break,
        }
    }
    if let Err(e) = client
        .publish(topics.set(), QoS::AtLeastOnce, false, args.action.payload())
        .await
    {
        eprintln!("cannot send the command: {e}");
        return Exit::Error;
    }
    let expected = args.action.expected(before);
    let deadline = Instant::now() + Duration::from_secs_f64(args.timeout.max(0.0));
    loop {
        let message = tokio::select! {
            m = sub.recv() => m,
            () = sleep_until(deadline) => {
                eprintln!(
                    "no state report from device {} within {} s",
                    &topics.prefix["devices/".len()..],
                    args.timeout
                );
                return Exit::NoReport;
            }
        };
        let Some(m) = message else {
            eprintln!("the client stopped");
            return Exit::Error;
        };
        print(topics, &m);
        let kind = topics.kind(&m.topic);
        if kind == "led/error" && !m.retain {
            return Exit::Mismatch;
        }
        if kind != "led/state" || m.retain {
            continue;
        }
        let reported = parse_state(&m);
        return match (expected, reported) {
            (Some(want), Some(got)) if want == got => Exit::Success,
            (None, Some(_)) => Exit::Success,
            _ => {
                eprintln!(
                    "the device reported {:?}, expected {}",
                    String::from_utf8_lossy(&m.payload),
                    expected.map_or("on or off", |e| if e { "on" } else { "off" })
                );
                Exit::Mismatch
            }
        };
    }
}

/// `on` / `off` (as the device sends them).
fn parse_state(m: &Message) -> Option<bool> {
    match m.payload.trim_ascii() {
        b"on" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}
