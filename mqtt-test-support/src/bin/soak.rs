//! Soak: several minutes of MQTT clients publishing to and subscribing from each other at
//! QoS 0, 1 and 2, all through a fault-injecting proxy in front of a private mosquitto, then a
//! count of what was lost and duplicated.
//!
//! ```text
//! cargo run --release -p mqtt-test-support --features client-nb,client-tokio --bin soak -- --duration 3m
//! ```
//!
//! Without `client-tokio` every client is `mqtt-client-nb`; with it, clients 0 and 1 are
//! `mqtt-client-nb` and 2 and 3 `mqtt-client-tokio` (and so on for more clients).
//!
//! Options: `--duration 180s|3m` (default 3 min), `--rate N` messages per second per client
//! (default 100), `--clients N` (default 4), `--seed N` (default 1).
//!
//! Client `i` publishes numbered messages to `soak/to/{i+1}` (QoS 0, 1, 2 in turn) and
//! subscribes to `soak/to/{i}` at QoS 2, with a persistent session; even clients speak 5.0,
//! odd ones 3.1.1. The proxy cuts each connection after a random 1–5 s, and every 3–8 s one
//! more fault hits all connections: a cut, a 4 s stall (noticed by the 2 s keep alive), a few
//! seconds of writes split into single bytes or coalesced, or a drop during CONNECT. At the
//! end the faults stop and the clients get 60 s to deliver what is outstanding.
//!
//! It exits with status 1 when a QoS 1 message was lost or a QoS 2 message lost or
//! duplicated. QoS 0 losses are reported, not failures. Peak memory is the process's VmHWM
//! (clients, proxy and the reference bookkeeping; mosquitto runs in its own process).

use std::process::ExitCode;
use std::time::Duration;

use mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_test_support::reliability::nb::NbClient;
use mqtt_test_support::reliability::{
    payload, ClientConfig, ClientUnderTest, Cut, ErrorKind, Verdict,
};
use mqtt_test_support::{Broker, FaultMode, FaultProxy};
use tokio::time::Instant;

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
const TICK: Duration = Duration::from_millis(10);
const PROGRESS: Duration = Duration::from_secs(15);
const DRAIN: Duration = Duration::from_secs(60);
const STALL: Duration = Duration::from_secs(4);
const SHAPING: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
struct Args {
    duration: Duration,
    rate: u32,
    clients: usize,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        duration: Duration::from_secs(180),
        rate: 100,
        clients: 4,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--duration" => {
                args.duration = match value.strip_suffix('m') {
                    Some(m) => Duration::from_secs(number(m)? * 60),
                    None => Duration::from_secs(number(value.trim_end_matches('s'))?),
                }
            }
            "--rate" => args.rate = number(&value)? as u32,
            "--clients" => args.clients = (number(&value)? as usize).max(2),
            "--seed" => args.seed = number(&value)?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

/// xorshift64*: the fault schedule, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.next() % (span + 1))
    }
}

/// The clients under test: `mqtt-client-nb` in every slot, or, with the `client-tokio`
/// feature, `mqtt-client-nb` and `mqtt-client-tokio` in turn (each on both versions).
fn clients(n: usize) -> Vec<Box<dyn ClientUnderTest>> {
    (0..n)
        .map(|i| {
            #[cfg(feature = "client-tokio")]
            if (i / 2) % 2 == 1 {
                return Box::new(
                    mqtt_test_support::reliability::tokio_client::TokioClient::default(),
                ) as Box<dyn ClientUnderTest>;
            }
            let _ = i;
            Box::new(NbClient::default()) as Box<dyn ClientUnderTest>
        })
        .collect()
}

fn version(i: usize) -> ProtocolVersion {
    if i.is_multiple_of(2) {
        ProtocolVersion::V5
    } else {
        ProtocolVersion::V3_1_1
    }
}

/// Peak and current resident memory of this process, in KiB (VmHWM, VmRSS).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[derive(Debug, Default)]
struct Faults {
    extra_cuts: u64,
    stalls: u64,
    split: u64,
    coalesce: u64,
    connect_drops: u64,
}

/// Drives the extra faults: one every 3–8 s, each undone before the next.
struct Injector {
    rng: Rng,
    base: FaultMode,
    next_at: Instant,
    undo_at: Option<Instant>,
    faults: Faults,
}

impl Injector {
    fn step(&mut self, proxy: &FaultProxy, now: Instant) {
        if let Some(at) = self.undo_at {
            if now >= at {
                proxy.stall(false);
                proxy.set_mode(self.base.clone());
                self.undo_at = None;
            }
            return;
        }
        if now < self.next_at {
            return;
        }
        self.next_at = now
            + self
                .rng
                .between(Duration::from_secs(3), Duration::from_secs(8));
        match self.rng.next() % 5 {
            0 => {
                proxy.cut_all();
                self.faults.extra_cuts += 1;
            }
            1 => {
                proxy.stall(true);
                self.undo_at = Some(now + STALL);
                self.faults.stalls += 1;
            }
            2 => {
                proxy.set_mode(self.base.clone().split_writes(true));
                self.undo_at = Some(now + SHAPING);
                self.faults.split += 1;
            }
            3 => {
                proxy.set_mode(self.base.clone().coalesce(Duration::from_millis(20)));
                self.undo_at = Some(now + SHAPING);
                self.faults.coalesce += 1;
            }
            _ => {
                // The next connection (after this cut) is dropped during CONNECT.
                proxy.set_mode(FaultMode::new().drop_during_connect(7).connections(1));
                proxy.cut_all();
                self.undo_at = Some(now + Duration::from_secs(1));
                self.faults.connect_drops += 1;
            }
        }
    }
}

struct Publisher {
    topic: String,
    source: u16,
    sent: [u32; 3],
    credit: f64,
    turn: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let broker = Broker::builder()
        .max_queued_messages(0)
        .start()
        .map_err(|e| e.to_string())?;
    let base = FaultMode::new()
        .random_cuts(Duration::from_secs(1), Duration::from_secs(5))
        .seed(args.seed);
    let proxy = FaultProxy::start(broker.addr(), base.clone())
        .await
        .map_err(|e| e.to_string())?;
    let kinds = clients(args.clients);
    let n = kinds.len();
    let mut cuts = Vec::new();
    let mut publishers = Vec::new();
    let mut names = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let mut config = ClientConfig::new(proxy.addr(), version(i), format!("soak-{i}"));
        config.keep_alive = 2;
        config.backoff_initial = Duration::from_millis(20);
        config.backoff_max = Duration::from_millis(500);
        let cut = Cut::start(kind.as_ref(), config);
        cut.send(mqtt_test_support::reliability::Command::Subscribe {
            filter: format!("soak/to/{i}"),
            qos: QoS::ExactlyOnce,
        });
        names.push(format!("{} {:?}", kind.name(), version(i)));
        cuts.push(cut);
        publishers.push(Publisher {
            topic: format!("soak/to/{}", (i + 1) % n),
            source: i as u16 + 1,
            sent: [0; 3],
            credit: 0.0,
            turn: 0,
        });
    }
    for cut in &mut cuts {
        cut.wait_until(Duration::from_secs(30), "SUBACK", |l| {
            l.subscribed.iter().any(|ok| *ok)
        })
        .await?;
    }
    let (hwm_start, _) = memory();
    println!(
        "soak: {} s, {n} clients ({}), {} msg/s each, seed {}; VmHWM after setup {} KiB",
        args.duration.as_secs(),
        names.join(", "),
        args.rate,
        args.seed,
        hwm_start
    );
    let start = Instant::now();
    let mut injector = Injector {
        rng: Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        base: base.clone(),
        next_at: start + Duration::from_secs(3),
        undo_at: None,
        faults: Faults::default(),
    };
    let mut next_progress = start + PROGRESS;
    // Linux keeps RSS counters per thread and folds them in lazily, so VmHWM readings can
    // jitter by a few pages: report the largest seen.
    let mut peak = hwm_start;
    let per_tick = f64::from(args.rate) * TICK.as_secs_f64();
    // Publishing phase: one pass per tick, bounded by the duration.
    while start.elapsed() < args.duration {
        let now = Instant::now();
        for (cut, p) in cuts.iter_mut().zip(&mut publishers) {
            cut.drain();
            p.credit += per_tick;
            while p.credit >= 1.0 {
                p.credit -= 1.0;
                let q = p.turn % 3;
                p.turn += 1;
                cut.publish(&p.topic, payload(p.source, QOS[q], p.sent[q], 32), QOS[q]);
                p.sent[q] += 1;
            }
        }
        injector.step(&proxy, now);
        if now >= next_progress {
            next_progress += PROGRESS;
            peak = peak.max(progress(start, &cuts, &publishers, &proxy));
        }
        tokio::time::sleep(TICK).await;
    }
    // Drain: no more faults; everything outstanding must arrive.
    proxy.stall(false);
    proxy.set_mode(FaultMode::new());
    let publish_end = start.elapsed();
    let deadline = Instant::now() + DRAIN;
    // One pass per tick, bounded by the drain deadline.
    while Instant::now() < deadline {
        for cut in &mut cuts {
            cut.drain();
        }
        if complete(&cuts, &publishers) {
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for cut in &mut cuts {
        cut.stop(Duration::from_secs(5)).await;
    }
    let drained = start.elapsed() - publish_end;
    let run = Run {
        args,
        names,
        faults: injector.faults,
        drained,
        peak,
    };
    Ok(report(&run, &cuts, &publishers, &proxy))
}

/// Whether every QoS 1/2 message was acknowledged to its publisher and received by its
/// subscriber.
fn complete(cuts: &[Cut], publishers: &[Publisher]) -> bool {
    let n = cuts.len();
    publishers.iter().enumerate().all(|(i, p)| {
        let receiver = &cuts[(i + 1) % n];
        [1, 2].iter().all(|&q| {
            let want = p.sent[q] as usize;
            cuts[i].log.acked.distinct(p.source, QOS[q]) >= want
                && receiver.log.received.distinct(p.source, QOS[q]) >= want
        })
    })
}

/// Prints a progress line; returns the VmHWM read for it.
fn progress(start: Instant, cuts: &[Cut], publishers: &[Publisher], proxy: &FaultProxy) -> u64 {
    let sent: u32 = publishers.iter().map(|p| p.sent.iter().sum::<u32>()).sum();
    let n = cuts.len();
    let received: u64 = publishers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let log = &cuts[(i + 1) % n].log;
            QOS.iter()
                .map(|&q| log.received.deliveries(p.source, q))
                .sum::<u64>()
        })
        .sum();
    let connects: usize = cuts.iter().map(|c| c.log.connects.len()).sum();
    let stats = proxy.stats();
    let hwm = memory().0;
    println!(
        "  {:>4} s: sent {sent}, delivered {received}, connections {connects}, cuts {}, stalls {}; VmHWM {hwm} KiB",
        start.elapsed().as_secs(),
        stats.cuts,
        stats.stalls,
    );
    hwm
}

/// What the report needs besides the clients' logs.
struct Run {
    args: Args,
    names: Vec<String>,
    faults: Faults,
    drained: Duration,
    peak: u64,
}

fn report(run: &Run, cuts: &[Cut], publishers: &[Publisher], proxy: &FaultProxy) -> bool {
    let (args, names, faults, drained) = (&run.args, &run.names, &run.faults, run.drained);
    let n = cuts.len();
    let stats = proxy.stats();
    println!();
    println!(
        "faults: {} connections cut (random 1-5 s lifetimes, cut-alls, CONNECT drops), {} stalls; \
         events: {} cut-alls, {} stalls of {} s, {} split-write and {} coalesce windows of {} s, \
         {} drops during CONNECT",
        stats.cuts,
        stats.stalls,
        faults.extra_cuts,
        faults.stalls,
        STALL.as_secs(),
        faults.split,
        faults.coalesce,
        SHAPING.as_secs(),
        faults.connect_drops
    );
    println!(
        "proxy: {} connections accepted, {} bytes to broker, {} bytes to clients",
        stats.accepted, stats.bytes_to_broker, stats.bytes_to_client
    );
    let mut totals: Vec<Verdict> = QOS
        .iter()
        .map(|&qos| Verdict {
            qos,
            ..Verdict::default()
        })
        .collect();
    let mut ok = true;
    for (i, p) in publishers.iter().enumerate() {
        let receiver = &cuts[(i + 1) % n];
        let log = &cuts[i].log;
        let keepalive = log
            .errors
            .iter()
            .filter(|(_, k, _)| *k == ErrorKind::KeepAliveTimeout)
            .count();
        println!(
            "client {i} ({}): {} reconnects ({} keep-alive timeouts), sessions lost {}, abandoned {}, refused {}, command failures {}",
            names[i],
            log.connects.len().saturating_sub(1),
            keepalive,
            log.sessions_lost(),
            log.abandoned,
            log.refused,
            log.command_failures.len()
        );
        if log.sessions_lost() > 0 || log.abandoned > 0 || !log.command_failures.is_empty() {
            ok = false;
        }
        for (q, total) in totals.iter_mut().enumerate() {
            let v = receiver.log.received.verdict(p.source, QOS[q], p.sent[q]);
            println!("    to client {}: {v}", (i + 1) % n);
            if q > 0 && !v.holds() {
                ok = false;
            }
            total.sent += v.sent;
            total.received += v.received;
            total.deliveries += v.deliveries;
            total.lost += v.lost;
            total.duplicated += v.duplicated;
            total.unexpected += v.unexpected;
        }
    }
    println!("totals:");
    for v in &totals {
        println!("    {v}");
    }
    let reconnects: usize = cuts
        .iter()
        .map(|c| c.log.connects.len().saturating_sub(1))
        .sum();
    let (hwm, rss) = memory();
    let hwm = hwm.max(run.peak);
    println!(
        "reconnects: {reconnects}; drain after publishing: {:.1} s",
        drained.as_secs_f64()
    );
    println!(
        "peak memory of this process (VmHWM): {hwm} KiB ({:.1} MiB); VmRSS at end {rss} KiB",
        hwm as f64 / 1024.0
    );
    println!(
        "result: {} ({} s, seed {})",
        if ok { "PASS" } else { "FAIL" },
        args.duration.as_secs(),
        args.seed
    );
    ok
}
