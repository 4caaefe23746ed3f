//! End-to-end benchmark against a private mosquitto: mqtt-client-tokio, rumqttc 0.25 and a
//! hand-written raw-socket client (the floor) in the same run, over MQTT 3.1.1 and 5.0.
//!
//! ```text
//! cargo bench -p mqtt-client-tokio --bench e2e            # full run (~5 min)
//! cargo bench -p mqtt-client-tokio --bench e2e -- --quick # smaller counts, one repetition
//! ```
//!
//! What it measures, for each client and each protocol version (rumqttc: `rumqttc` for
//! 3.1.1, `rumqttc::v5` for 5.0), 64-byte payloads, 50k / 20k / 10k messages at QoS 0 / 1 / 2:
//! - **throughput**: its publisher process to its subscriber process, messages per second
//!   from "go" until both are done;
//! - **client CPU per message**: each client runs in a process of its own on a
//!   single-threaded tokio runtime (rumqttc's event loop is polled in the same runtime), and
//!   the process's `getrusage(RUSAGE_SELF)` user+system time over the measured window is
//!   divided by the message count. The publisher is measured publishing alone (the broker
//!   acknowledges; nobody subscribes), the subscriber fed by the same publisher (rumqttc's)
//!   for every client, so no side's figure depends on the other client's pacing. The
//!   harness around the client (a counter, a loop) is the same for all;
//! - **round-trip latency at QoS 0, 1 and 2**: one client publishes to a topic it subscribes
//!   to, one message at a time, and waits for its acknowledgement (PUBACK / PUBCOMP) before
//!   the next; p50 / p99 of publish-to-receive;
//! - **memory per idle connection**: a process opens 2,000 connections and idles; (RSS after
//!   − RSS before) / 2,000. Measured in a fresh process, and after one client was connected
//!   and dropped first (which changes how glibc serves the session store, see the README).
//!
//! The raw client is the floor for latency and idle memory (a socket and nothing else); its
//! CPU per message counts its system calls, one read and one write per wake-up, so where a
//! library batches more acknowledgements per read it can cost less than the floor.
//!
//! Settings, equal for all three clients: in-flight window 20 QoS 1/2 messages
//! (mosquitto's `max_inflight_messages`, which it also announces as Receive Maximum on 5.0;
//! ours: `max_inflight`, rumqttc: `set_inflight` / `set_outgoing_inflight_upper_limit`,
//! raw: counted by hand), a 64-command request queue, and at most 84 unacknowledged
//! messages (ours: the publisher awaits its oldest `Delivery` beyond that; rumqttc: its
//! request queue plus window; raw: the window alone, and QoS 0 written 64 messages to a
//! write). Keep alive 60 s, Nagle off, clean sessions, no properties on 5.0.
//! mosquitto runs with `max_queued_messages 0` so no QoS 0 message is dropped, and without
//! its per-packet log. Each measurement is repeated (3×, the clients alternating) and the
//! median reported. Every child process and wait is bounded; loopback only.
//!
//! Besides the markdown tables on stdout, the results are written as JSON to `$E2E_REPORT`
//! (a relative path is taken from this package's directory, where cargo runs the bench), or
//! else to `e2e-report.json` in the target directory, with the date, the commit, the rumqttc
//! version in `Cargo.lock` and mosquitto's: `python3 scripts/perf_tables.py` makes the
//! README's tables from it.

#[path = "e2e/peer.rs"]
mod peer;
#[path = "e2e/raw.rs"]
mod raw;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mqtt_test_support::Broker;

/// Bound of one child's phase (connect, run, report).
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Payload size.
const PAYLOAD: usize = 64;
/// In-flight window of every client (mosquitto's default `max_inflight_messages`).
const INFLIGHT: u16 = 20;
/// Request queue of the clients (ours is fixed at 64).
const REQUESTS: usize = 64;
/// Connections of the idle-memory measurement.
const IDLE_CONNECTIONS: usize = 2_000;
/// Messages of the throughput runs per QoS (divided by 5 with `--quick`).
const MESSAGES: [(u8, usize); 3] = [(0, 50_000), (1, 20_000), (2, 10_000)];
/// Round trips of the latency measurement (divided by 5 with `--quick`).
const ROUND_TRIPS: usize = 2_000;
/// The workspace's lock file: the rumqttc version this binary was built with.
const CARGO_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock"));

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--role") {
        child::main(&args[i + 1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    orchestrate(quick);
}

/// The clients: ours, the peer library, and the raw-socket floor.
const LIBS: [&str; 3] = ["ours", "rumqttc", "raw"];
/// The protocol versions: their names in the report and on the children's command lines.
const VERSIONS: [(&str, &str); 2] = [("3.1.1", "311"), ("5.0", "5")];

/// Everything measured for one protocol version.
struct Results {
    version: &'static str,
    /// Per QoS, one entry per client (in `LIBS` order).
    throughput: Vec<(u8, Vec<Throughput>)>,
    latency: Vec<(u8, Vec<Latency>)>,
    /// Fresh, then after one client was dropped; KiB per connection per client.
    memory: [Vec<f64>; 2],
}

fn orchestrate(quick: bool) {
    raise_fd_limit();
    let reps = if quick { 1 } else { 3 };
    let scale = if quick { 5 } else { 1 };
    let started = std::time::SystemTime::now();
    let (commit, dirty) = git_commit();
    let load = load_average();
    let broker = Broker::builder()
        .max_queued_messages(0)
        .config_line("max_connections -1")
        // The test broker logs every packet (`log_type all`); that would slow it down and
        // change how acknowledgements are paced. `none` resets the types set before; the
        // launcher waits for the "running" line, which is `information`.
        .config_line("log_type none")
        .config_line("log_type information")
        .start()
        .expect("mosquitto (apt-get install mosquitto)");
    let port = broker.port();
    let mosquitto = mosquitto_version(&broker);
    println!(
        "# e2e benchmark, mosquitto on 127.0.0.1:{port}, 3.1.1 and 5.0, {PAYLOAD}-byte payloads"
    );
    println!("# {}", machine());

    let mut results: Vec<Results> = VERSIONS
        .iter()
        .map(|(version, _)| Results {
            version,
            throughput: Vec::new(),
            latency: Vec::new(),
            memory: [Vec::new(), Vec::new()],
        })
        .collect();
    for ((name, ver), results) in VERSIONS.iter().zip(&mut results) {
        for (qos, n) in MESSAGES {
            let n = n / scale;
            // Alternate the clients run by run, so load from elsewhere hits all alike.
            let mut runs: Vec<Vec<Throughput>> = vec![Vec::new(); LIBS.len()];
            for r in 0..reps {
                for (i, lib) in LIBS.iter().enumerate() {
                    runs[i].push(Throughput::measure(lib, ver, qos, n, port, r));
                }
            }
            let medians: Vec<Throughput> = runs.into_iter().map(Throughput::median).collect();
            for (lib, t) in LIBS.iter().zip(&medians) {
                eprintln!("{name} {lib} QoS {qos}: {t:?}");
            }
            results.throughput.push((qos, medians));
        }
        for qos in 0..=2u8 {
            let mut runs: Vec<Vec<Latency>> = vec![Vec::new(); LIBS.len()];
            for _ in 0..reps {
                for (i, lib) in LIBS.iter().enumerate() {
                    runs[i].push(latency(lib, ver, qos, ROUND_TRIPS / scale, port));
                }
            }
            let medians: Vec<Latency> = runs.into_iter().map(Latency::median).collect();
            for (lib, l) in LIBS.iter().zip(&medians) {
                eprintln!(
                    "{name} {lib} QoS {qos} latency: p50 {:.1} us, p99 {:.1} us",
                    l.p50_us, l.p99_us
                );
            }
            results.latency.push((qos, medians));
        }
    }
    drop(broker);
    let idle_count = IDLE_CONNECTIONS / scale;
    for ((name, ver), results) in VERSIONS.iter().zip(&mut results) {
        for (slot, churn) in [false, true].into_iter().enumerate() {
            for lib in LIBS {
                let broker = Broker::builder()
                    .config_line("max_connections -1")
                    .start()
                    .expect("mosquitto");
                let kb = idle_memory(lib, ver, idle_count, broker.port(), churn);
                eprintln!("{name} {lib} idle (churn {churn}): {kb:.2} KiB per connection");
                results.memory[slot].push(kb);
            }
        }
    }
    for results in &results {
        report(results, idle_count);
    }
    let meta = Meta {
        command: format!(
            "cargo bench -p mqtt-client-tokio --bench e2e{}",
            if quick { " -- --quick" } else { "" }
        ),
        date: utc_date(started),
        seconds: started.elapsed().map_or(0, |d| d.as_secs()),
        commit,
        dirty,
        rumqttc: rumqttc_version(),
        mosquitto,
        rustc: command_line("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
        machine: machine(),
        load,
        quick,
        reps,
        scale,
        idle_count,
    };
    let path = report_path();
    match std::fs::write(&path, json(&meta, &results)) {
        Ok(()) => println!("\n# JSON report: {}", path.display()),
        Err(e) => {
            eprintln!("cannot write the JSON report to {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// What the JSON report says about the run besides the figures.
struct Meta {
    command: String,
    /// UTC, when the run started.
    date: String,
    seconds: u64,
    /// `git rev-parse --short HEAD`, and whether tracked files had uncommitted changes.
    commit: Option<String>,
    dirty: Option<bool>,
    rumqttc: String,
    mosquitto: String,
    rustc: String,
    machine: String,
    load: String,
    quick: bool,
    reps: usize,
    scale: usize,
    idle_count: usize,
}

/// Where the JSON report goes: `$E2E_REPORT`, else `e2e-report.json` in the target directory.
fn report_path() -> PathBuf {
    if let Some(path) = std::env::var_os("E2E_REPORT").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    target_dir().join("e2e-report.json")
}

/// The target directory this binary was built in: the ancestor of the executable that holds
/// cargo's `CACHEDIR.TAG` (`<target>/release/deps/e2e-…`, or `<target>/<triple>/release/…`),
/// else `$CARGO_TARGET_DIR`, else the workspace's `target`.
fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe
            .ancestors()
            .skip(1)
            .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        {
            return dir.to_path_buf();
        }
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// The version(s) of rumqttc in the workspace's `Cargo.lock`, the one this bench links.
fn rumqttc_version() -> String {
    let versions: Vec<&str> = CARGO_LOCK
        .split("[[package]]")
        .filter(|block| block.lines().any(|l| l.trim() == "name = \"rumqttc\""))
        .filter_map(|block| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
        })
        .collect();
    if versions.is_empty() {
        "unknown".into()
    } else {
        versions.join(", ")
    }
}

/// The first line of `mosquitto -h` for the binary the broker runs (`/proc/<pid>/exe`), else
/// for the `mosquitto` on `PATH` or in /usr/sbin.
fn mosquitto_version(broker: &Broker) -> String {
    let exe = broker
        .pid()
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok());
    let candidates = exe
        .into_iter()
        .chain(std::env::var_os("MOSQUITTO_BIN").map(PathBuf::from))
        .chain([
            PathBuf::from("mosquitto"),
            PathBuf::from("/usr/sbin/mosquitto"),
        ]);
    for bin in candidates {
        // `mosquitto -h` prints its usage and exits with a failure status.
        if let Ok(out) = Command::new(&bin).arg("-h").stdin(Stdio::null()).output() {
            if let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next() {
                if !line.trim().is_empty() {
                    return line.trim().to_string();
                }
            }
        }
    }
    "unknown".into()
}

/// The commit of the checkout the bench was built from, and whether tracked files differ
/// from it.
fn git_commit() -> (Option<String>, Option<bool>) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let commit = command_line("git", &["-C", dir, "rev-parse", "--short", "HEAD"]);
    let dirty = Command::new("git")
        .args(["-C", dir, "status", "--porcelain", "--untracked-files=no"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| !out.stdout.is_empty());
    (commit, dirty)
}

/// The first line of a command's standard output, if it succeeded.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), when the run started.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `2026-12-07T14:05:09Z` (the civil calendar from the Unix day, Howard Hinnant's
/// `civil_from_days`).
fn utc_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number; `null` for a figure that could not be measured (NaN).
fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// `{"ours": …, "rumqttc": …, "raw": …}` for one figure of the three clients.
fn json_clients(values: impl Iterator<Item = f64>) -> String {
    let fields: Vec<String> = LIBS
        .iter()
        .zip(values)
        .map(|(lib, v)| format!("{}: {}", json_str(lib), json_num(v)))
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// The JSON report: the run's settings and every figure of the markdown tables.
fn json(m: &Meta, results: &[Results]) -> String {
    let opt_str = |s: &Option<String>| s.as_deref().map_or("null".into(), json_str);
    let mut fields: Vec<(&str, String)> = vec![
        ("schema", "1".into()),
        ("bench", json_str("mqtt-client-tokio e2e")),
        ("command", json_str(&m.command)),
        ("date", json_str(&m.date)),
        ("seconds", m.seconds.to_string()),
        ("commit", opt_str(&m.commit)),
        ("dirty", m.dirty.map_or("null".into(), |d| d.to_string())),
        ("rumqttc", json_str(&m.rumqttc)),
        ("mosquitto", json_str(&m.mosquitto)),
        ("rustc", json_str(&m.rustc)),
        ("machine", json_str(&m.machine)),
        ("load_average", json_str(&m.load)),
        ("mode", json_str(if m.quick { "quick" } else { "full" })),
        ("repetitions", m.reps.to_string()),
        ("payload_bytes", PAYLOAD.to_string()),
        ("inflight", INFLIGHT.to_string()),
        ("requests", REQUESTS.to_string()),
        (
            "max_unacknowledged",
            (REQUESTS + usize::from(INFLIGHT)).to_string(),
        ),
        (
            "messages",
            format!(
                "{{{}}}",
                MESSAGES
                    .iter()
                    .map(|(qos, n)| format!("\"{qos}\": {}", n / m.scale))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        ("round_trips", (ROUND_TRIPS / m.scale).to_string()),
        ("idle_connections", m.idle_count.to_string()),
        ("feeder", json_str(FEEDER)),
        (
            "clients",
            format!(
                "[{}]",
                LIBS.iter()
                    .map(|l| json_str(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ];
    let mut versions = Vec::new();
    for r in results {
        let mut v = Vec::new();
        for (qos, t) in &r.throughput {
            let l = &r.latency.iter().find(|(q, _)| q == qos).expect("latency").1;
            let figures = [
                ("msg_per_s", json_clients(t.iter().map(|t| t.rate))),
                (
                    "pub_cpu_us_per_msg",
                    json_clients(t.iter().map(|t| t.pub_cpu_us)),
                ),
                (
                    "sub_cpu_us_per_msg",
                    json_clients(t.iter().map(|t| t.sub_cpu_us)),
                ),
                ("latency_p50_us", json_clients(l.iter().map(|l| l.p50_us))),
                ("latency_p99_us", json_clients(l.iter().map(|l| l.p99_us))),
            ];
            let figures: Vec<String> = figures
                .iter()
                .map(|(k, v)| format!("        \"{k}\": {v}"))
                .collect();
            v.push(format!(
                "      \"qos{qos}\": {{\n{}\n      }}",
                figures.join(",\n")
            ));
        }
        v.push(format!(
            "      \"idle_kib\": {}",
            json_clients(r.memory[0].iter().copied())
        ));
        v.push(format!(
            "      \"idle_kib_after_churn\": {}",
            json_clients(r.memory[1].iter().copied())
        ));
        versions.push(format!(
            "    {}: {{\n{}\n    }}",
            json_str(r.version),
            v.join(",\n")
        ));
    }
    fields.push(("versions", format!("{{\n{}\n  }}", versions.join(",\n"))));
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("  {}: {v}", json_str(k)))
        .collect();
    format!("{{\n{}\n}}\n", body.join(",\n"))
}

/// One client at one QoS.
#[derive(Debug, Clone, Copy)]
struct Throughput {
    /// Messages per second, its own publisher to its own subscriber.
    rate: f64,
    /// Publisher CPU µs per message, publishing alone (the broker acknowledges, nobody
    /// subscribes).
    pub_cpu_us: f64,
    /// Subscriber CPU µs per message, fed by the same publisher (rumqttc's) for all.
    sub_cpu_us: f64,
}

impl Throughput {
    /// The three runs of one measurement.
    fn measure(lib: &str, ver: &str, qos: u8, n: usize, port: u16, rep: usize) -> Self {
        let e2e = run_pair(lib, Some(lib), ver, qos, n, port, rep);
        let alone = run_pair(lib, None, ver, qos, n, port, rep);
        let fed = run_pair(FEEDER, Some(lib), ver, qos, n, port, rep);
        Self {
            rate: e2e.rate,
            pub_cpu_us: alone.pub_cpu_us,
            sub_cpu_us: fed.sub_cpu_us.unwrap_or(f64::NAN),
        }
    }

    fn median(runs: Vec<Self>) -> Self {
        let mut rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
        let mut pubs: Vec<f64> = runs.iter().map(|r| r.pub_cpu_us).collect();
        let mut subs: Vec<f64> = runs.iter().map(|r| r.sub_cpu_us).collect();
        Self {
            rate: median(&mut rates),
            pub_cpu_us: median(&mut pubs),
            sub_cpu_us: median(&mut subs),
        }
    }
}

/// The publisher that feeds every subscriber in the subscriber-CPU runs.
const FEEDER: &str = "rumqttc";

/// One publisher/subscriber run.
struct Run {
    rate: f64,
    pub_cpu_us: f64,
    sub_cpu_us: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
}

impl Latency {
    fn median(runs: Vec<Self>) -> Self {
        let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_us).collect();
        let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_us).collect();
        Self {
            p50_us: median(&mut p50),
            p99_us: median(&mut p99),
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A publisher process and, unless `sub_lib` is `None`, a subscriber process; the clock runs
/// from "go" to the subscriber's last message (or the publisher's last acknowledgement).
fn run_pair(
    pub_lib: &str,
    sub_lib: Option<&str>,
    ver: &str,
    qos: u8,
    n: usize,
    port: u16,
    rep: usize,
) -> Run {
    let topic = format!(
        "bench/{ver}/{pub_lib}/{}/{qos}/{rep}",
        sub_lib.unwrap_or("none")
    );
    let args = |role: &'static str, lib: &str| -> Vec<String> {
        let qos = qos.to_string();
        let (n, port) = (n.to_string(), port.to_string());
        [role, lib, ver, &qos, &n, &port, &topic]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let sub = sub_lib.map(|lib| Proc::spawn(&args("sub", lib)));
    if let Some(sub) = &sub {
        sub.expect("ready");
    }
    let mut publisher = Proc::spawn(&args("pub", pub_lib));
    publisher.expect("ready");
    let start = Instant::now();
    publisher.send("go");
    let sub_report = sub.as_ref().map(|s| s.expect("done"));
    let pub_report = publisher.expect("done");
    let elapsed = start.elapsed();
    let cpu = |report: &str| -> f64 { report.split_whitespace().nth(1).unwrap().parse().unwrap() };
    Run {
        rate: n as f64 / elapsed.as_secs_f64(),
        pub_cpu_us: cpu(&pub_report) / n as f64,
        sub_cpu_us: sub_report.map(|r| cpu(&r) / n as f64),
    }
}

fn latency(lib: &str, ver: &str, qos: u8, n: usize, port: u16) -> Latency {
    let p = Proc::spawn(&[
        "lat",
        lib,
        ver,
        &qos.to_string(),
        &n.to_string(),
        &port.to_string(),
    ]);
    let report = p.expect("done");
    let v: Vec<f64> = report
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    Latency {
        p50_us: v[0],
        p99_us: v[1],
    }
}

/// KiB of resident memory per idle connection.
fn idle_memory(lib: &str, ver: &str, count: usize, port: u16, churn: bool) -> f64 {
    let churn = if churn { "churn" } else { "fresh" };
    let p = Proc::spawn(&[
        "idle",
        lib,
        ver,
        &count.to_string(),
        &port.to_string(),
        churn,
    ]);
    let report = p.expect("done");
    let v: Vec<f64> = report
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    (v[1] - v[0]) / count as f64
}

/// One table per protocol version: ours, rumqttc, raw, and ours / rumqttc.
fn report(r: &Results, idle_count: usize) {
    println!();
    println!("## MQTT {}", r.version);
    println!();
    println!(
        "| measurement | mqtt-client-tokio | rumqttc {} | raw socket (floor) | ours / rumqttc |",
        rumqttc_version()
    );
    println!("|---|---:|---:|---:|---:|");
    let row = |name: String, values: [f64; 3], digits: usize| {
        println!(
            "| {name} | {:.digits$} | {:.digits$} | {:.digits$} | {:.2} |",
            values[0],
            values[1],
            values[2],
            values[0] / values[1]
        );
    };
    for (qos, t) in &r.throughput {
        let pick = |f: fn(&Throughput) -> f64| [f(&t[0]), f(&t[1]), f(&t[2])];
        row(format!("QoS {qos}: msg/s, end to end"), pick(|t| t.rate), 0);
        row(
            format!("QoS {qos}: publisher CPU µs/msg (publishing alone)"),
            pick(|t| t.pub_cpu_us),
            2,
        );
        row(
            format!("QoS {qos}: subscriber CPU µs/msg (same feeder)"),
            pick(|t| t.sub_cpu_us),
            2,
        );
    }
    for (qos, l) in &r.latency {
        row(
            format!("QoS {qos} round trip p50 µs"),
            [l[0].p50_us, l[1].p50_us, l[2].p50_us],
            0,
        );
        row(
            format!("QoS {qos} round trip p99 µs"),
            [l[0].p99_us, l[1].p99_us, l[2].p99_us],
            0,
        );
    }
    for (memory, when) in r.memory.iter().zip(["", ", after one client was dropped"]) {
        row(
            format!("RSS per idle connection ({idle_count}{when}), KiB"),
            [memory[0], memory[1], memory[2]],
            1,
        );
    }
}

/// `uname`, CPU model and core count, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// Raises the open-file limit to its hard limit (children inherit it).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A child process of this benchmark, speaking lines on stdin/stdout; killed when dropped.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .arg("--role")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdin = child.stdin.take();
        let out: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Waits for a line starting with `word`; returns it.
    fn expect(&self, word: &str) -> String {
        let line = self
            .lines
            .recv_timeout(PHASE_TIMEOUT)
            .unwrap_or_else(|_| panic!("child did not say {word:?} in time"));
        assert!(line.starts_with(word), "expected {word:?}, got {line:?}");
        line
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The measured side: one client per process.
mod child {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::Notify;

    use super::peer::{Peer, Seen};
    use super::{raw, INFLIGHT, PAYLOAD, REQUESTS};

    /// How long a child may take for its whole job.
    const JOB_TIMEOUT: Duration = Duration::from_secs(100);

    /// Messages the `sub` role has received so far, for the report of a stalled child.
    static RECEIVED: AtomicUsize = AtomicUsize::new(0);

    pub(super) fn main(args: &[String]) {
        // `MQTT_BENCH_LOG=debug` (a level) logs the client's decisions to stderr, for a child
        // that stalls.
        if let Ok(level) = std::env::var("MQTT_BENCH_LOG") {
            let level: tracing::Level = level.parse().expect("MQTT_BENCH_LOG: a tracing level");
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::stderr)
                .init();
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let v5 = |ver: &str| ver == "5";
        let job = async {
            let local = tokio::task::LocalSet::new();
            local
                .run_until(async {
                    match a.as_slice() {
                        ["sub", lib, ver, qos, n, port, topic] => {
                            let (qos, n, port) = (
                                qos.parse().unwrap(),
                                n.parse().unwrap(),
                                port.parse().unwrap(),
                            );
                            sub(lib, v5(ver), qos, n, port, topic).await
                        }
                        ["pub", lib, ver, qos, n, port, topic] => {
                            let (qos, n, port) = (
                                qos.parse().unwrap(),
                                n.parse().unwrap(),
                                port.parse().unwrap(),
                            );
                            publish(lib, v5(ver), qos, n, port, topic).await
                        }
                        ["lat", lib, ver, qos, n, port] => {
                            let (qos, n, port) = (
                                qos.parse().unwrap(),
                                n.parse().unwrap(),
                                port.parse().unwrap(),
                            );
                            latency(lib, v5(ver), qos, n, port).await
                        }
                        ["idle", lib, ver, count, port, churn] => {
                            let (count, port) = (count.parse().unwrap(), port.parse().unwrap());
                            idle(lib, v5(ver), count, port, *churn == "churn").await
                        }
                        _ => panic!("unknown role {a:?}"),
                    }
                })
                .await;
        };
        rt.block_on(async {
            // Which child stalled is the first thing to know when one does.
            if tokio::time::timeout(JOB_TIMEOUT, job).await.is_err() {
                let received = RECEIVED.load(Ordering::Relaxed);
                panic!(
                    "child job timed out: --role {} (received {received})",
                    a.join(" ")
                );
            }
        });
        // Leave without waiting for clients to shut down: the measurement is over.
        std::process::exit(0);
    }

    /// User + system CPU time of this process, in microseconds.
    pub(crate) fn cpu_us() -> f64 {
        // SAFETY: getrusage with a valid pointer to a zeroed local struct.
        let usage = unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut usage);
            usage
        };
        let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
        tv(usage.ru_utime) + tv(usage.ru_stime)
    }

    /// Resident set size in KiB.
    fn rss_kib() -> f64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
        let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as f64;
        pages * page / 1024.0
    }

    pub(crate) fn say(line: &str) {
        println!("{line}");
    }

    /// Waits for a line on stdin (blocking the single runtime thread is fine here: nothing
    /// else needs to run before "go").
    pub(crate) fn wait_for_go() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).expect("stdin");
    }

    fn ours_options(port: u16, v5: bool) -> mqtt_client_tokio::Options {
        use mqtt_client_tokio::ProtocolVersion;
        let mut o = mqtt_client_tokio::Options::new(&format!("mqtt://127.0.0.1:{port}")).unwrap();
        o.protocol.version = if v5 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        };
        o.protocol.max_inflight = Some(INFLIGHT);
        o.protocol.keep_alive = Duration::from_secs(60);
        o.policy.queue_full = mqtt_client_tokio::QueueFull::Wait;
        o
    }

    async fn ours_client(port: u16, v5: bool) -> mqtt_client_tokio::Client {
        let (client, events) = mqtt_client_tokio::Client::connect(ours_options(port, v5))
            .await
            .unwrap();
        drop(events);
        client
    }

    fn ours_qos(q: u8) -> mqtt_client_tokio::QoS {
        mqtt_client_tokio::QoS::from_u8(q).unwrap()
    }

    async fn sub(lib: &str, v5: bool, qos: u8, n: usize, port: u16, topic: &str) {
        match lib {
            "ours" => {
                let client = ours_client(port, v5).await;
                let mut sub = client.subscribe(topic, ours_qos(qos)).await.unwrap();
                say("ready");
                let cpu0 = cpu_us();
                for _ in 0..n {
                    sub.recv().await.expect("message");
                    RECEIVED.fetch_add(1, Ordering::Relaxed);
                }
                say(&format!("done {:.0}", cpu_us() - cpu0));
            }
            "raw" => raw::subscribe_n(v5, qos, n, port, topic).await,
            _ => {
                let received = Arc::new(AtomicUsize::new(0));
                let all = Arc::new(Notify::new());
                let (count, done) = (Arc::clone(&received), Arc::clone(&all));
                let subscribed = Arc::new(Notify::new());
                let suback = Arc::clone(&subscribed);
                let client = Peer::connect(v5, "bench-sub".into(), port, move |e| match e {
                    Seen::Publish if count.fetch_add(1, Ordering::Relaxed) + 1 == n => {
                        done.notify_one();
                    }
                    Seen::SubAck => suback.notify_one(),
                    _ => {}
                })
                .await;
                client.subscribe(topic, qos).await;
                subscribed.notified().await;
                say("ready");
                let cpu0 = cpu_us();
                all.notified().await;
                say(&format!("done {:.0}", cpu_us() - cpu0));
            }
        }
    }

    async fn publish(lib: &str, v5: bool, qos: u8, n: usize, port: u16, topic: &str) {
        let payload = vec![0x5a; PAYLOAD];
        match lib {
            "ours" => {
                let client = ours_client(port, v5).await;
                let payload = mqtt_client_tokio::Bytes::from(payload);
                say("ready");
                wait_for_go();
                let cpu0 = cpu_us();
                // At most as many unacknowledged messages as rumqttc can hold (its request
                // queue plus its in-flight window): `publish_queued` alone would fill the
                // whole 1 MiB offline queue.
                let mut pending = std::collections::VecDeque::new();
                for _ in 0..n {
                    let m = mqtt_client_tokio::Message::new(topic, payload.clone(), ours_qos(qos));
                    pending.push_back(client.publish_queued(m).await.unwrap());
                    if pending.len() > REQUESTS + usize::from(INFLIGHT) {
                        pending.pop_front().unwrap().await.unwrap();
                    }
                }
                for delivery in pending {
                    delivery.await.unwrap();
                }
                say(&format!("done {:.0}", cpu_us() - cpu0));
            }
            "raw" => raw::publish_n(v5, qos, n, port, topic).await,
            _ => {
                let acked = Arc::new(AtomicUsize::new(0));
                let all = Arc::new(Notify::new());
                let (count, done) = (Arc::clone(&acked), Arc::clone(&all));
                let client = Peer::connect(v5, "bench-pub".into(), port, move |e| {
                    let finished = match (qos, e) {
                        (0, Seen::Sent) | (1, Seen::PubAck) | (2, Seen::PubComp) => {
                            count.fetch_add(1, Ordering::Relaxed) + 1 == n
                        }
                        _ => false,
                    };
                    if finished {
                        done.notify_one();
                    }
                })
                .await;
                say("ready");
                wait_for_go();
                let cpu0 = cpu_us();
                for _ in 0..n {
                    client.publish(topic, qos, payload.clone()).await;
                }
                all.notified().await;
                say(&format!("done {:.0}", cpu_us() - cpu0));
            }
        }
    }

    /// Publishes to its own subscription at `qos`, one at a time, waiting for the
    /// acknowledgement before the next: p50 and p99 of publish→receive in µs.
    async fn latency(lib: &str, v5: bool, qos: u8, n: usize, port: u16) {
        let topic = format!("bench/latency/{lib}/{qos}");
        let payload = vec![0x5a; PAYLOAD];
        let mut samples = Vec::with_capacity(n);
        match lib {
            "ours" => {
                let client = ours_client(port, v5).await;
                let mut sub = client
                    .subscribe(topic.as_str(), ours_qos(qos))
                    .await
                    .unwrap();
                let payload = mqtt_client_tokio::Bytes::from(payload);
                for _ in 0..n {
                    let t0 = Instant::now();
                    let m = mqtt_client_tokio::Message::new(
                        topic.as_str(),
                        payload.clone(),
                        ours_qos(qos),
                    );
                    let delivery = client.publish_queued(m).await.unwrap();
                    sub.recv().await.unwrap();
                    samples.push(t0.elapsed());
                    delivery.await.unwrap();
                }
            }
            "raw" => samples = raw::latency(v5, qos, n, port, &topic).await,
            _ => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let (ack_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
                let subscribed = Arc::new(Notify::new());
                let suback = Arc::clone(&subscribed);
                let client = Peer::connect(v5, "bench-lat".into(), port, move |e| match e {
                    Seen::Publish => {
                        let _ = tx.send(Instant::now());
                    }
                    Seen::PubAck | Seen::PubComp => {
                        let _ = ack_tx.send(());
                    }
                    Seen::SubAck => suback.notify_one(),
                    _ => {}
                })
                .await;
                client.subscribe(&topic, qos).await;
                subscribed.notified().await;
                for _ in 0..n {
                    let t0 = Instant::now();
                    client.publish(&topic, qos, payload.clone()).await;
                    let t1 = rx.recv().await.unwrap();
                    samples.push(t1 - t0);
                    if qos > 0 {
                        acks.recv().await.unwrap();
                    }
                }
            }
        }
        samples.sort();
        let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        say(&format!(
            "done {:.1} {:.1}",
            pct(0.50).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6
        ));
    }

    /// Opens `count` idle connections; reports RSS before and after, in KiB. With `churn`,
    /// one client is connected and dropped before the measurement.
    async fn idle(lib: &str, v5: bool, count: usize, port: u16, churn: bool) {
        super::raise_fd_limit();
        if churn && lib == "ours" {
            // One client connected and dropped first: glibc then raises its mmap threshold
            // past the session store's size, and later stores come from the heap, zeroed
            // (resident), instead of fresh mmap'ed pages.
            let c = ours_client(port, v5).await;
            c.disconnect().await.unwrap();
            drop(c);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib();
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        let mut raws = Vec::new();
        const BATCH: usize = 50;
        for start in (0..count).step_by(BATCH) {
            let batch = start..(start + BATCH).min(count);
            match lib {
                "ours" => {
                    let set = batch.map(|_| ours_client(port, v5)).collect();
                    ours.extend(futures_join(set).await);
                }
                "raw" => {
                    let set =
                        batch
                            .map(|i| async move {
                                raw::Raw::connect(port, v5, &format!("idle-{i}")).await
                            })
                            .collect();
                    raws.extend(futures_join(set).await);
                }
                _ => {
                    let set = batch
                        .map(|i| Peer::connect(v5, format!("idle-{i}"), port, |_| {}))
                        .collect();
                    theirs.extend(futures_join(set).await);
                }
            }
        }
        // Let connections settle (CONNACKs processed, buffers at rest).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_kib();
        say(&format!("done {before:.0} {after:.0}"));
        std::hint::black_box((ours.len(), theirs.len(), raws.len()));
    }

    /// Awaits every future concurrently (a tiny `join_all` on the local set).
    async fn futures_join<F: std::future::Future + 'static>(futures: Vec<F>) -> Vec<F::Output>
    where
        F::Output: 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::task::spawn_local).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    }
}
