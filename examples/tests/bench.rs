//! `mqtt bench` against private mosquitto brokers (loopback, ports the test support picks):
//! `conn` connects every client and reports its memory, `pub` and `sub` at QoS 1 deliver
//! every message and report latency histograms. Every child process and wait is bounded: a
//! child still running at its deadline is killed and the test fails.

mod support;

use std::time::Duration;

use mqtt_test_support::Broker;
use support::{mqtt, Running};

/// Upper bound of a bench run (the longest test run asks for `--duration 25`).
const RUN: Duration = Duration::from_secs(30);

/// Waits for a run's end (bounded by `RUN`): the exit code, stdout and stderr.
fn finish(run: Running) -> (Option<i32>, String, String) {
    let done = run.wait(RUN);
    let mut stdout = done.stdout.join("\n");
    stdout.push('\n');
    (done.code, stdout, done.stderr)
}

/// `mqtt` with `args`, running.
fn spawn(args: &str) -> Running {
    Running::spawn(&mut mqtt(args))
}

fn broker() -> Broker {
    Broker::builder()
        .config_line("max_connections -1")
        .start()
        .expect("mosquitto (apt-get install mosquitto mosquitto-clients)")
}

/// The number after `word ` in `text` (e.g. `received 100`).
fn number_after(text: &str, word: &str) -> u64 {
    let at = text
        .find(&format!("{word} "))
        .unwrap_or_else(|| panic!("no {word:?} in:\n{text}"));
    text[at + word.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {word:?} in:\n{text}"))
}

#[test]
fn conn_connects_every_client_and_reports_memory() {
    let broker = broker();
    let run = spawn(&format!(
        "bench conn -h 127.0.0.1 -p {} -c 50 --conn-rate 500",
        broker.port()
    ));
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("connected 50/50 "), "{stdout}");
    assert_eq!(number_after(&stdout, "connection errors"), 0, "{stdout}");
    assert!(stdout.contains("KiB per connection"), "{stdout}");
    // The broker saw them: 50 connections (and their DISCONNECTs).
    let log = broker.log();
    assert!(log.matches("New client connected").count() >= 50, "{log}");
}

#[test]
fn conn_reports_clients_that_cannot_connect() {
    // A port nobody listens on: every client fails, fast, and the exit code says so.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = free.local_addr().expect("addr").port();
    drop(free);
    let run = spawn(&format!(
        "bench conn -h 127.0.0.1 -p {port} -c 3 --connect-timeout 2"
    ));
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("connected 0/3 "), "{stdout}");
    assert_eq!(number_after(&stdout, "connection errors"), 3, "{stdout}");
}

#[test]
fn pub_and_sub_at_qos1_lose_nothing_and_report_latency() {
    let broker = broker();
    let port = broker.port();
    // Two subscribers on one filter: each of the 3 × 40 messages arrives twice. At one
    // message per 30 ms and client the run takes over a second: a progress line.
    let sub = spawn(&format!(
        "bench sub -h 127.0.0.1 -p {port} -c 2 -t bench/test/+ -q 1 -L 240 --duration 25"
    ));
    sub.wait_line("subscribed: 2 clients");
    let publisher = spawn(&format!(
        "bench pub -h 127.0.0.1 -p {port} -c 3 -t bench/test/%i -q 1 -s 64 -I 30 -L 120 \
         --duration 25"
    ));
    let (code, out, err) = finish(publisher);
    assert_eq!(code, Some(0), "pub stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(number_after(&out, "sent"), 120, "{out}");
    assert_eq!(number_after(&out, "acknowledged"), 120, "{out}");
    assert!(out.contains("publish->ack latency: p50 "), "{out}");
    assert!(out.contains("(µs, 120 samples"), "{out}");
    let (code, out, err) = finish(sub);
    assert_eq!(code, Some(0), "sub stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(number_after(&out, "received"), 240, "{out}");
    assert_eq!(number_after(&out, "lost"), 0, "{out}");
    assert_eq!(number_after(&out, "duplicates"), 0, "{out}");
    assert_eq!(number_after(&out, "without header"), 0, "{out}");
    let histogram = out
        .lines()
        .find(|l| l.starts_with("publish->receive latency: "))
        .unwrap_or_else(|| panic!("no histogram line:\n{out}"));
    for field in ["p50", "p90", "p99", "p99.9", "max"] {
        assert!(histogram.contains(&format!(" {field} ")), "{histogram}");
    }
    assert!(histogram.contains("240 samples"), "{histogram}");
    assert!(
        err.contains("connected 2/2"),
        "progress lines on stderr:\n{err}"
    );
}

#[test]
fn sub_short_of_its_limit_times_out_with_27() {
    let broker = broker();
    let run = spawn(&format!(
        "bench sub -h 127.0.0.1 -p {} -t nobody/publishes -L 5 --duration 1.5",
        broker.port()
    ));
    let (code, stdout, stderr) = finish(run);
    assert_eq!(code, Some(27), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(number_after(&stdout, "received"), 0, "{stdout}");
}

#[test]
fn help_documents_every_option() {
    let run = spawn("bench --help");
    let (code, stdout, _) = finish(run);
    assert_eq!(code, Some(0));
    for flag in [
        "--host",
        "--port",
        "--url",
        "--username",
        "--pw",
        "--protocol-version",
        "--keepalive",
        "--connect-timeout",
        "--prefix",
        "--cafile",
        "--insecure",
        "--count",
        "--conn-rate",
        "--topic",
        "--qos",
        "--size",
        "--interval",
        "--rate",
        "--limit",
        "--duration",
        "--inflight",
        "--store-bytes",
        "MQB1",
        "Examples:",
    ] {
        assert!(stdout.contains(flag), "help lacks {flag}:\n{stdout}");
    }
}
