//! What keeping the session in a directory costs, against a private mosquitto, in one run:
//!
//! ```text
//! cargo bench -p mqtt-client-tokio --bench persistence            # full run (~1 min)
//! cargo bench -p mqtt-client-tokio --bench persistence -- --quick # smaller counts, one round
//! ```
//!
//! - **publish throughput per sync policy**: one client publishes 64-byte messages at QoS 1
//!   and QoS 2 with at most 84 unacknowledged (it awaits its oldest `Delivery` beyond that, as
//!   the e2e bench does; mosquitto's window is 20), from the first publish until the last
//!   acknowledgement. In memory (no persistence), then `SyncPolicy::Never`,
//!   `Periodic(10 ms)` and `Always` on a directory under `MQTT_BENCH_DIR` (default: the
//!   system's temporary directory; its file system decides what a sync costs, so the run
//!   prints it). Rounds alternate the modes; the median of the rounds is reported, with each
//!   mode's ratio to the in-memory figure of the same run.
//! - **time to stored**: per mode, the median and 99th percentile from `publish_queued` to
//!   `Delivery::stored`, one message at a time: the latency of "accepted" (with `Always`,
//!   accepted means it survives a power cut).
//! - **recovery**: a client created on a directory whose journal holds 10,000 records (10,000
//!   QoS 1 messages published while no broker was reachable), from `Client::new` until its
//!   first publish is accepted (the session restored and the file rewritten as one snapshot).
//!
//! Every wait is bounded; loopback only.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mqtt_client_tokio::{Client, Message, Options, Persistence, ProtocolVersion, QoS, SyncPolicy};
use mqtt_test_support::Broker;

const PAYLOAD: [u8; 64] = [b'x'; 64];
const UNACKED: usize = 84;
const WAIT: Duration = Duration::from_secs(120);
const RECOVERY_RECORDS: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Memory,
    Sync(SyncPolicy),
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Memory => "in memory",
            Mode::Sync(SyncPolicy::Never) => "Never",
            Mode::Sync(SyncPolicy::Periodic(_)) => "Periodic(10 ms)",
            Mode::Sync(SyncPolicy::Always) => "Always",
            Mode::Sync(_) => "other",
        }
    }
}

const MODES: [Mode; 4] = [
    Mode::Memory,
    Mode::Sync(SyncPolicy::Never),
    Mode::Sync(SyncPolicy::Periodic(Duration::from_millis(10))),
    Mode::Sync(SyncPolicy::Always),
];

fn bench_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("MQTT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!(
        "mqtt-persistence-bench-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn options(url: &str, mode: Mode, dir: &std::path::Path) -> Options {
    let mut o = Options::new(url).expect("url");
    o.protocol.version = ProtocolVersion::V3_1_1;
    if let Mode::Sync(sync) = mode {
        o.protocol.clean_start = false;
        o.persistence = Some(Persistence::new(dir).sync(sync));
    }
    o
}

async fn connect(url: &str, mode: Mode, dir: &std::path::Path) -> Client {
    let (client, _events) = tokio::time::timeout(WAIT, Client::connect(options(url, mode, dir)))
        .await
        .expect("connect in time")
        .expect("connect");
    client
}

/// Messages per second with up to [`UNACKED`] unacknowledged.
async fn throughput(url: &str, mode: Mode, qos: QoS, n: usize, round: usize) -> f64 {
    let dir = bench_dir(&format!("{}-{round}-{}", qos as u8, mode.name().len()));
    let client = connect(url, mode, &dir).await;
    let mut outstanding = std::collections::VecDeque::new();
    let start = Instant::now();
    for _ in 0..n {
        let delivery = client
            .publish_queued(Message::new("bench/persist", &PAYLOAD[..], qos))
            .await
            .expect("queued");
        outstanding.push_back(delivery);
        if outstanding.len() > UNACKED {
            let oldest = outstanding.pop_front().expect("one");
            tokio::time::timeout(WAIT, oldest)
                .await
                .expect("acknowledged in time")
                .expect("acknowledged");
        }
    }
    for d in outstanding {
        tokio::time::timeout(WAIT, d)
            .await
            .expect("acknowledged in time")
            .expect("acknowledged");
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = client.disconnect().await;
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// Publish to stored, one message at a time, for `n` messages.
async fn to_stored(url: &str, mode: Mode, n: usize) -> Vec<Duration> {
    let dir = bench_dir(&format!("stored-{}", mode.name().len()));
    let client = connect(url, mode, &dir).await;
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let mut delivery = client
            .publish_queued(Message::new(
                "bench/persist",
                &PAYLOAD[..],
                QoS::AtLeastOnce,
            ))
            .await
            .expect("queued");
        tokio::time::timeout(WAIT, delivery.stored())
            .await
            .expect("stored in time")
            .expect("stored");
        took.push(start.elapsed());
        tokio::time::timeout(WAIT, delivery)
            .await
            .expect("acknowledged in time")
            .expect("acknowledged");
    }
    let _ = client.disconnect().await;
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    took
}

/// Time from `Client::new` on a journal of [`RECOVERY_RECORDS`] records until a new publish
/// is stored, and the journal's size.
async fn recovery() -> (Duration, u64) {
    let dir = bench_dir("recovery");
    // Nothing listens on a port just bound and closed: the messages stay queued.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let mode = Mode::Sync(SyncPolicy::Never);
    {
        let mut o = options(&url, mode, &dir);
        o.policy.offline_queue_bytes = 16 << 20;
        let (client, _events) = Client::new(o).expect("client");
        let mut last = None;
        for _ in 0..RECOVERY_RECORDS {
            let d = client
                .publish_queued(Message::new(
                    "bench/persist",
                    &PAYLOAD[..],
                    QoS::AtLeastOnce,
                ))
                .await
                .expect("queued");
            last = Some(d);
        }
        if let Some(mut d) = last {
            d.stored().await.expect("stored");
        }
    }
    // The first client's driver lets go of the directory's lock as it stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let size = std::fs::metadata(dir.join("journal")).map_or(0, |m| m.len());
    let mut o = options(&url, mode, &dir);
    o.policy.offline_queue_bytes = 16 << 20;
    let start = Instant::now();
    let (client, _events) = Client::new(o).expect("recovered client");
    let mut d = client
        .publish_queued(Message::new(
            "bench/persist",
            &PAYLOAD[..],
            QoS::AtLeastOnce,
        ))
        .await
        .expect("queued");
    d.stored().await.expect("stored");
    let took = start.elapsed();
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
    (took, size)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn file_system(dir: &std::path::Path) -> String {
    std::process::Command::new("df")
        .args(["--output=fstype,target"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" on "))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, rounds) = if quick { (1_000, 1) } else { (5_000, 3) };
    let broker = Broker::builder()
        .max_queued_messages(0)
        .start()
        .expect("mosquitto");
    let url = broker.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let base = bench_dir("probe");
    let _ = std::fs::create_dir_all(&base);
    println!(
        "persistence bench: {n} messages of 64 B per run, {rounds} round(s), directory on {}",
        file_system(&base)
    );
    let _ = std::fs::remove_dir_all(&base);
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut rates = vec![Vec::new(); MODES.len()];
        for round in 0..rounds {
            for (i, mode) in MODES.into_iter().enumerate() {
                rates[i].push(rt.block_on(throughput(&url, mode, qos, n, round)));
            }
        }
        let memory = median(rates[0].clone());
        println!(
            "\nQoS {} publish, 3.1.1, median msg/s (ratio to in memory):",
            qos as u8
        );
        for (mode, r) in MODES.iter().zip(&rates) {
            let m = median(r.clone());
            println!("  {:<16} {:>8.0}  ({:.2}x)", mode.name(), m, m / memory);
        }
    }
    println!(
        "\npublish to stored, one QoS 1 message at a time ({} messages):",
        n / 5
    );
    for mode in MODES {
        let mut took = rt.block_on(to_stored(&url, mode, n / 5));
        println!(
            "  {:<16} p50 {:>10.1?}  p99 {:>10.1?}",
            mode.name(),
            percentile(&mut took, 0.5),
            percentile(&mut took, 0.99)
        );
    }
    let (took, size) = rt.block_on(recovery());
    println!(
        "\nrecovery: {RECOVERY_RECORDS} records ({} KiB journal) to the first new message stored: {:?}",
        size / 1024,
        took
    );
}
