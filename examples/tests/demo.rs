//! The quick-start demo end to end: runs the built `demo` binary with `NO_COLOR=1` and checks
//! its transcript, line by line and in order. The default run starts its own mosquitto (it
//! must be installed, or the demo installs it when run as root); the `--broker` runs use a
//! broker the test starts. Each run is killed after 60 s.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mqtt_test_support::Broker;

/// Upper bound for one run of the demo (it takes ~2 s).
const LIMIT: Duration = Duration::from_secs(60);

/// What one run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The transcript's timestamped lines as (speaker, text).
    fn lines(&self) -> Vec<(&str, &str)> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix('[')?.split_once("s] ")?.1;
                let (speaker, text) = rest.split_once("  ")?;
                Some((speaker.trim(), text.trim_start()))
            })
            .collect()
    }

    fn dump(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs the demo binary with `args`, killing it after [`LIMIT`].
fn demo(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the demo binary");
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let status = wait_bounded(&mut child);
    Run {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_bounded(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let status = child.wait().expect("reap the demo");
            eprintln!("the demo did not finish within {LIMIT:?}; killed it");
            return status;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Finds the first line at or after `from` by `speaker` whose text matches `want`; returns
/// the index after it.
fn expect(
    run: &Run,
    lines: &[(&str, &str)],
    from: usize,
    speaker: &str,
    what: &str,
    want: impl Fn(&str) -> bool,
) -> usize {
    lines[from..]
        .iter()
        .position(|&(s, text)| s == speaker && want(text))
        .map(|i| from + i + 1)
        .unwrap_or_else(|| {
            panic!(
                "no {speaker} line for {what} (after line {from})\n{}",
                run.dump()
            )
        })
}

/// Checks the whole story after the broker line at `from`.
fn check_story(run: &Run, lines: &[(&str, &str)], from: usize) {
    let mut at = expect(run, lines, from, "controller", "device online", |t| {
        t == "<- status  online"
    });
    for (command, state) in [("on", "on"), ("off", "off"), ("toggle", "on")] {
        at = expect(run, lines, at, "controller", command, |t| {
            t == format!("-> led/set  {command}")
        });
        at = expect(run, lines, at, "device", "the LED switching", |t| {
            t.starts_with(&format!("{command:?} -> LED"))
        });
        at = expect(run, lines, at, "controller", "the state report", |t| {
            t == format!("<- led/state  {state}")
        });
    }
    at = expect(run, lines, at, "controller", "the invalid command", |t| {
        t == "-> led/set  blink"
    });
    at = expect(run, lines, at, "controller", "the error report", |t| {
        t.starts_with("<- led/error  ") && t.contains("blink")
    });
    expect(run, lines, from, "controller", "telemetry", |t| {
        t.starts_with("<- telemetry  {\"uptime_s\":")
    });
    at = expect(run, lines, at, "demo", "the power cut", |t| {
        t.starts_with("power cut")
    });
    at = expect(run, lines, at, "controller", "the will", |t| {
        t.starts_with("<- status  offline") && t.contains("last will")
    });
    expect(run, lines, at, "demo", "the summary", |t| {
        t.starts_with("OK in ")
    });
}

#[test]
fn the_demo_starts_a_broker_and_tells_the_whole_story() {
    let run = demo(&[]);
    assert!(run.status.success(), "exit status\n{}", run.dump());
    assert!(
        !run.stdout.contains('\x1b'),
        "NO_COLOR means no colour\n{}",
        run.dump()
    );
    let lines = run.lines();
    let at = expect(&run, &lines, 0, "broker", "the broker starting", |t| {
        t.starts_with("started mosquitto") && t.contains("login required")
    });
    expect(&run, &lines, at, "broker", "the device logging in", |t| {
        t.contains("connected from 127.0.0.1") && t.contains("MQTT 3.1.1, user 'demo'")
    });
    check_story(&run, &lines, at);
}

#[test]
fn the_demo_uses_a_broker_it_is_given() {
    let broker = Broker::builder()
        .credentials("alice", "wonderland")
        .start()
        .expect("mosquitto (apt-get install mosquitto)");
    let url = broker.url();
    let run = demo(&[
        "--broker",
        &url,
        "--username",
        "alice",
        "--password",
        "wonderland",
        "--id",
        "lamp-7",
    ]);
    assert!(run.status.success(), "exit status\n{}", run.dump());
    let lines = run.lines();
    assert!(
        !lines
            .iter()
            .any(|(_, t)| t.starts_with("started mosquitto")),
        "started a broker of its own\n{}",
        run.dump()
    );
    let at = expect(&run, &lines, 0, "broker", "the given broker", |t| {
        t.starts_with(&format!("using {url}"))
    });
    expect(&run, &lines, at, "controller", "the device's topics", |t| {
        t.starts_with("watching devices/lamp-7/")
    });
    check_story(&run, &lines, at);
}

#[test]
fn a_wrong_password_fails_clearly() {
    let broker = Broker::builder()
        .credentials("alice", "wonderland")
        .start()
        .expect("mosquitto (apt-get install mosquitto)");
    let run = demo(&[
        "--broker",
        &broker.url(),
        "--username",
        "alice",
        "--password",
        "wrong",
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", run.dump());
    let lines = run.lines();
    expect(&run, &lines, 0, "demo", "the failure", |t| {
        t.starts_with("FAILED:") && t.contains("--password")
    });
}

#[test]
fn bad_command_lines_exit_with_2() {
    let run = demo(&["--bogus"]);
    assert_eq!(run.status.code(), Some(2), "{}", run.dump());
    assert!(run.stderr.contains("Usage: demo"), "{}", run.dump());
}
