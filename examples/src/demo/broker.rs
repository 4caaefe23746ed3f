//! The broker the demo talks through: a private mosquitto it starts on a free loopback port
//! (installing mosquitto from Debian's packages first when it is missing and the demo runs as
//! root), or a broker the user names with `--broker`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mqtt_test_support::{Broker, BrokerError};

use super::transcript::{Speaker, Tone, Transcript};
use super::DemoError;

/// User name of the broker the demo starts, unless `--username` says otherwise.
pub const DEFAULT_USERNAME: &str = "demo";
/// What a user without root should run (the demo runs it itself as root).
const SUDO_INSTALL: &str =
    "sudo apt-get update && sudo apt-get install -y mosquitto mosquitto-clients";
/// The commands the demo runs, as root, when mosquitto is missing.
const APT_STEPS: [&[&str]; 2] = [
    &["update"],
    &["install", "-y", "mosquitto", "mosquitto-clients"],
];
/// Upper bound for each apt-get step.
const APT_LIMIT: Duration = Duration::from_secs(600);
/// What separates mosquitto's log file from its stdout/stderr in [`Broker::log`].
const OUTPUT_MARKER: &str = "--- mosquitto stdout/stderr ---";

/// Where the device and the controller connect.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// `mqtt://host:port`.
    pub url: String,
    /// User name for both clients.
    pub username: Option<String>,
    /// Password for both clients.
    pub password: Option<String>,
    /// The broker the demo started (killed when this is dropped), or `None` for `--broker`.
    pub started: Option<Arc<Broker>>,
    /// The started broker's WebSocket port for the control page (on every interface with
    /// `--lan`, else on loopback).
    pub ws_port: Option<u16>,
}

/// Starts mosquitto on a free loopback port with a generated config that requires
/// `username` and `password`, with a WebSocket listener beside TCP for the control page (on
/// loopback, and on every interface at `lan_ws_port` when given), installing mosquitto first if it is missing and this process
/// may (root, `apt-get` present, `$MOSQUITTO_BIN` unset). Blocks (mosquitto starts in
/// ~50 ms; an installation takes as long as apt-get does, at most 10 min per step).
///
/// # Errors
/// [`DemoError::BrokerMissing`] with the install command when mosquitto is missing and the
/// demo may not install it; [`DemoError::Broker`] when installing or starting fails.
pub(crate) fn start(
    transcript: &Transcript,
    username: &str,
    password: &str,
    lan_ws_port: Option<u16>,
) -> Result<Arc<Broker>, DemoError> {
    let launch = || {
        let mut builder = Broker::builder()
            .credentials(username, password)
            .websockets();
        if let Some(port) = lan_ws_port {
            // Lines before the builder's own listeners: this listener's block ends at theirs.
            builder = builder.config_line(format!("listener {port} 0.0.0.0\nprotocol websockets"));
        }
        builder.start()
    };
    let broker = match launch() {
        Err(BrokerError::NotInstalled { program, .. }) => {
            may_install().map_err(|why| DemoError::BrokerMissing(missing_message(program, why)))?;
            install(transcript)?;
            launch().map_err(|e| {
                DemoError::Broker(format!(
                    "apt-get succeeded, but starting mosquitto failed: {e}"
                ))
            })?
        }
        other => other.map_err(|e| DemoError::Broker(e.to_string()))?,
    };
    Ok(Arc::new(broker))
}

/// The mosquitto version from the start of the broker's log, e.g. `2.0.11`.
pub(crate) fn version(broker: &Broker) -> Option<String> {
    let log = broker.log();
    let rest = log.split("mosquitto version ").nth(1)?;
    rest.split_whitespace().next().map(str::to_owned)
}

/// A password for the broker the demo starts, different on every run.
pub(crate) fn generated_password() -> String {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// A free TCP port on every interface, for the broker's WebSocket listener with `--lan`.
pub(crate) fn free_lan_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Why the demo may not install mosquitto itself, if it may not.
fn may_install() -> Result<(), &'static str> {
    if std::env::var_os("MOSQUITTO_BIN").is_some() {
        return Err("$MOSQUITTO_BIN names a broker that is not there");
    }
    if !in_path("apt-get") {
        return Err("this system has no apt-get");
    }
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("the demo installs it itself only when run as root");
    }
    Ok(())
}

/// Whether `program` is in `PATH`.
fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

fn missing_message(program: &str, why: &str) -> String {
    format!(
        "`{program}` is not installed, and {why}. Install it with\n\n    {SUDO_INSTALL}\n\n\
         (or your system's mosquitto package), or run the demo against a broker you have:\n\n    \
         cargo run -p examples --bin demo -- --broker mqtt://HOST:PORT --username USER --password PASS\n"
    )
}

/// Runs the apt-get steps, showing each command and its output.
fn install(transcript: &Transcript) -> Result<(), DemoError> {
    transcript.say(
        Speaker::Demo,
        Tone::Plain,
        "mosquitto is not installed; installing it from Debian's packages (running as root)",
    );
    for args in APT_STEPS {
        transcript.say(
            Speaker::Demo,
            Tone::Plain,
            format!("$ apt-get {}", args.join(" ")),
        );
        run_shown(transcript, "apt-get", args)
            .map_err(|e| DemoError::Broker(format!("apt-get {}: {e}", args.join(" "))))?;
    }
    Ok(())
}

/// Runs `program`, printing its merged stdout and stderr line by line; fails on a non-zero
/// exit or after [`APT_LIMIT`] (the process is killed then).
fn run_shown(transcript: &Transcript, program: &str, args: &[&str]) -> io::Result<()> {
    let (reader, writer) = io::pipe()?;
    let mut child = Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .spawn()?;
    // The `Command` (and with it our copies of the pipe's write end) is gone: the reader sees
    // EOF once the child and anything it left running have closed theirs.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
            line.clear();
        }
    });
    let show = |line: String| {
        // Progress counters rewrite their line with '\r'; the last version is the one to keep.
        let text = line.trim_end().rsplit('\r').next().unwrap_or("").to_owned();
        if !text.is_empty() {
            transcript.say(Speaker::Demo, Tone::Dim, format!("| {text}"));
        }
    };
    let deadline = Instant::now() + APT_LIMIT;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => show(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // The output is closed but the child still runs: poll its exit.
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(50)),
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "did not finish within {} s",
                APT_LIMIT.as_secs()
            )));
        }
    };
    // What the child wrote just before it exited; a daemon it started may keep the pipe open,
    // so do not wait for EOF.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        show(line);
    }
    match status.success() {
        true => Ok(()),
        false => Err(io::Error::other(format!("exited with {status}"))),
    }
}

/// Reads the lines mosquitto appends to its log, for the transcript. Only connection events
/// are kept (a client connected, with protocol version and user; closed its connection;
/// disconnected; refused) and warnings and errors, unless `verbose`.
#[derive(Debug)]
pub(crate) struct LogTail {
    broker: Arc<Broker>,
    offset: usize,
    verbose: bool,
}

impl LogTail {
    /// Follows `broker`'s log from now on (what it logged while starting is skipped).
    pub(crate) fn new(broker: Arc<Broker>, verbose: bool) -> Self {
        let offset = log_file_text(&broker).len();
        Self {
            broker,
            offset,
            verbose,
        }
    }

    /// The complete lines logged since the last call, reworded for the transcript.
    pub(crate) fn new_lines(&mut self) -> Vec<String> {
        let log = log_file_text(&self.broker);
        let Some(fresh) = log.get(self.offset..) else {
            return Vec::new();
        };
        // Only whole lines: mosquitto may be half-way through writing the last one.
        let Some(end) = fresh.rfind('\n') else {
            return Vec::new();
        };
        self.offset += end + 1;
        fresh[..end]
            .lines()
            .filter_map(|line| describe(line, self.verbose))
            .collect()
    }

    /// The last `n` lines of the whole log, for a failure report.
    pub(crate) fn last_lines(&self, n: usize) -> Vec<String> {
        let log = self.broker.log();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(n);
        lines[from..].iter().map(|l| (*l).to_owned()).collect()
    }
}

/// The log file's text (without what mosquitto printed to stdout/stderr).
fn log_file_text(broker: &Broker) -> String {
    let mut log = broker.log();
    if let Some(at) = log.find(OUTPUT_MARKER) {
        log.truncate(at);
    }
    log
}

/// One log line for the transcript, or `None` to leave it out.
fn describe(line: &str, verbose: bool) -> Option<String> {
    let text = strip_timestamp(line);
    if verbose {
        // Subscription and will details are indented with a tab.
        return Some(text.replace('\t', "    "));
    }
    if let Some(rest) = text.strip_prefix("New client connected from ") {
        return Some(describe_connect(rest).unwrap_or_else(|| text.to_owned()));
    }
    // A TCP connection without CONNECT: the launcher's readiness probe.
    if text == "Client <unknown> closed its connection." {
        return None;
    }
    let keep = ["Client ", "Socket error", "Error", "Warning"];
    keep.iter()
        .any(|start| text.starts_with(start))
        .then(|| text.to_owned())
}

/// `2024-05-01T12:00:00: text` -> `text`.
fn strip_timestamp(line: &str) -> &str {
    match line.split_once(": ") {
        Some((stamp, text)) if stamp.starts_with(|c: char| c.is_ascii_digit()) => text,
        _ => line,
    }
}

/// `127.0.0.1:40100 as esp32-a1b2c3 (p2, c1, k30, u'demo').` ->
/// `esp32-a1b2c3 connected from 127.0.0.1:40100 (MQTT 3.1.1, user 'demo')`.
fn describe_connect(rest: &str) -> Option<String> {
    let (from, rest) = rest.split_once(" as ")?;
    let (id, params) = rest.rsplit_once(" (")?;
    let params = params.strip_suffix(").")?;
    let mut version = None;
    let mut user = None;
    for param in params.split(", ") {
        match param {
            "p1" => version = Some("3.1"),
            "p2" => version = Some("3.1.1"),
            "p5" => version = Some("5.0"),
            _ => {
                if let Some(u) = param.strip_prefix('u') {
                    user = Some(u);
                }
            }
        }
    }
    let user = match user {
        Some(u) => format!("user {u}"),
        None => "no user name".to_owned(),
    };
    Some(format!(
        "{id} connected from {from} (MQTT {}, {user})",
        version?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewords_connection_lines_and_drops_packet_traces() {
        let line = "2026-01-02T03:04:05: New client connected from 127.0.0.1:40100 as \
                    esp32-a1b2c3 (p2, c1, k30, u'demo').";
        assert_eq!(
            describe(line, false).unwrap(),
            "esp32-a1b2c3 connected from 127.0.0.1:40100 (MQTT 3.1.1, user 'demo')"
        );
        let v5 = "1: New client connected from 127.0.0.1:1 as ctl (p5, c1, k30).";
        assert_eq!(
            describe(v5, false).unwrap(),
            "ctl connected from 127.0.0.1:1 (MQTT 5.0, no user name)"
        );
        let closed = "2026-01-02T03:04:05: Client esp32-a1b2c3 closed its connection.";
        assert_eq!(
            describe(closed, false).unwrap(),
            "Client esp32-a1b2c3 closed its connection."
        );
        let trace =
            "2026-01-02T03:04:05: Received PUBLISH from x (d0, q1, r1, m1, 't', ... (6 bytes))";
        assert_eq!(describe(trace, false), None);
        let probe = "2026-01-02T03:04:05: Client <unknown> closed its connection.";
        assert_eq!(describe(probe, false), None);
        let refused = "2026-01-02T03:04:05: Client <unknown> disconnected, not authorised.";
        assert!(describe(refused, false).is_some());
        assert!(describe(trace, true)
            .unwrap()
            .starts_with("Received PUBLISH"));
    }

    #[test]
    fn odd_connect_lines_are_kept_as_logged() {
        let odd = "New client connected from somewhere.";
        assert_eq!(describe(odd, false).unwrap(), odd);
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(generated_password(), generated_password());
        assert_eq!(generated_password().len(), 16);
    }

    #[test]
    fn the_install_hint_is_the_exact_command() {
        let msg = missing_message(
            "mosquitto",
            "the demo installs it itself only when run as root",
        );
        assert!(msg.contains(
            "sudo apt-get update && sudo apt-get install -y mosquitto mosquitto-clients"
        ));
        assert!(msg.contains("--broker mqtt://HOST:PORT"));
    }
}
