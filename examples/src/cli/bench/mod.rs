//! `mqtt bench`: a load generator (as emqtt-bench and `mqttx bench`) over
//! `mqtt-client-tokio`.
//!
//! - `conn`: opens `-c` connections at `--conn-rate` per second, then reports the process's
//!   resident memory per connection (from /proc/self/status) and holds them for `--duration`.
//! - `pub`: `-c` publishers, each sending every `-I` ms (or `--rate` per second) to `-t`
//!   (`%i` client index, `%c` client id), until `-L` messages in all or `--duration`;
//!   publish→ack latency at QoS 1 and 2.
//! - `sub`: `-c` subscribers; publish→receive latency from the header that `pub` writes
//!   into each payload ([`args::HEADER_HELP`]), lost and duplicated messages.
//!
//! A progress line goes to stderr every second, the summary to stdout at the end (also on
//! Ctrl-C). Every phase is bounded: connects by `--connect-timeout`, the run by
//! `--duration`, draining acknowledgements and disconnecting by [`DRAIN`] each.

pub mod args;
pub mod header;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mqtt_client_tokio::{Client, Delivery, Message, Options, ProtocolVersion, QoS};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use self::args::{BenchArgs, Mode};
use self::header::{now_ns, Header, Tracker};
use self::stats::{bump, read, Counters, Latency, Memory};
use super::connect::{Kind, Plan};
use super::exit::{Exit, Failure};
use super::props::PropertySet;
use super::trace::print_stderr;

/// Bound of draining outstanding acknowledgements, and then of disconnecting, at the end.
pub const DRAIN: Duration = Duration::from_secs(5);
/// Pause between the last connection and the memory reading of `conn` (CONNACKs handled,
/// buffers at rest).
const SETTLE: Duration = Duration::from_secs(1);

/// Runs `mqtt bench`; the summary is printed on stdout.
///
/// # Errors
/// Usage errors; exit 1 when a client failed to connect or an operation failed; 27 when
/// `-L` was not reached within `--duration`.
pub async fn run(args: BenchArgs) -> Result<(), Failure> {
    let fd_limit = stats::raise_fd_limit();
    if u64::from(args.clients) + 32 > fd_limit {
        print_stderr(&format!(
            "Warning: the open-file limit is {fd_limit}, too low for {} clients (raise the \
             hard limit: ulimit -Hn)",
            args.clients
        ));
    }
    let bench = Arc::new(Bench::new(args)?);
    let outcome = match bench.args.mode {
        Mode::Conn => conn(&bench).await,
        Mode::Pub | Mode::Sub => traffic(&bench).await,
    };
    bench.summary(&outcome);
    bench.exit(&outcome)
}

/// Everything the client tasks share.
#[derive(Debug)]
struct Bench {
    args: BenchArgs,
    /// Options of every client but its identifier.
    options: Options,
    version: ProtocolVersion,
    prefix: String,
    /// Identifies this process's messages in payload headers.
    run_id: u32,
    started: Instant,
    counters: Counters,
    latency: Latency,
    /// `pub` with `-L`: messages still to send.
    budget: AtomicU64,
    /// `sub`: gaps and repeats in the publishers' sequence numbers, messages without header.
    lost: AtomicU64,
    duplicates: AtomicU64,
    untimed: AtomicU64,
    /// When the last client connected or failed, µs since `started`.
    connected_us: AtomicU64,
    /// First and last message sent/acknowledged or received, µs since `started` (+1).
    first_us: AtomicU64,
    last_us: AtomicU64,
    /// `-L` reached.
    done: Notify,
    /// The first connection error, for the summary.
    first_error: Mutex<Option<String>>,
}

/// How a run ended.
#[derive(Debug, Default)]
struct Outcome {
    elapsed: Duration,
    interrupted: bool,
    /// `-L` given and not reached.
    short: bool,
    /// `conn`: memory before connecting and once all clients are up.
    memory: Option<(Memory, Memory)>,
}

impl Bench {
    fn new(args: BenchArgs) -> Result<Self, Failure> {
        if args.mode == Mode::Sub && args.limit.is_some_and(|l| l == 0) {
            return Err(Failure::usage("-L must be at least 1"));
        }
        let plan = Plan::new(&args.conn_args(), &PropertySet::default(), Kind::Pub)?;
        let mut options = plan.options;
        options.protocol.max_inflight = Some(args.inflight);
        if let Some(bytes) = args.store_bytes {
            options.policy.offline_queue_bytes = bytes;
        }
        let prefix = args
            .prefix
            .clone()
            .unwrap_or_else(|| format!("bench-{}-", std::process::id()));
        Ok(Self {
            budget: AtomicU64::new(args.limit.unwrap_or(u64::MAX)),
            options,
            version: plan.version,
            prefix,
            run_id: run_id(),
            started: Instant::now(),
            counters: Counters::default(),
            latency: Latency::default(),
            lost: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            untimed: AtomicU64::new(0),
            connected_us: AtomicU64::new(0),
            first_us: AtomicU64::new(u64::MAX),
            last_us: AtomicU64::new(0),
            done: Notify::new(),
            first_error: Mutex::new(None),
            args,
        })
    }

    fn client_id(&self, index: u32) -> String {
        format!("{}{index}", self.prefix)
    }

    /// `-t` with `%i` and `%c` replaced.
    fn topic(&self, index: u32, client_id: &str) -> String {
        expand_topic(&self.args.topic, index, client_id)
    }

    /// Connects client `index` (bounded by the client's connect timeout, twice: transport,
    /// then CONNACK).
    async fn connect(&self, index: u32) -> Option<(Client, String)> {
        let mut options = self.options.clone();
        let id = self.client_id(index);
        options.protocol.client_id.clone_from(&id);
        let bound = options.policy.connect_timeout * 2 + Duration::from_secs(1);
        let result = timeout(bound, Client::connect(options)).await;
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.connected_us.fetch_max(us, Ordering::Relaxed);
        let error = match result {
            Ok(Ok((client, _events))) => {
                bump(&self.counters.connected);
                return Some((client, id));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no CONNACK within {bound:?}"),
        };
        bump(&self.counters.connect_errors);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(error);
        }
        None
    }

    /// Takes one message from the `-L` budget; false once it is spent.
    fn take_budget(&self) -> bool {
        self.budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_ok()
    }

    /// Notes that a message was sent or received now (for the rate in the summary).
    fn mark(&self) {
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX - 1) + 1;
        self.first_us.fetch_min(us, Ordering::Relaxed);
        self.last_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Messages per second between the first and the last message.
    fn rate(&self, count: u64) -> f64 {
        let (first, last) = (
            self.first_us.load(Ordering::Relaxed),
            self.last_us.load(Ordering::Relaxed),
        );
        if count < 2 || last <= first {
            return 0.0;
        }
        (count - 1) as f64 / ((last - first) as f64 / 1e6)
    }

    fn exit(&self, outcome: &Outcome) -> Result<(), Failure> {
        let c = &self.counters;
        let (connect_errors, errors) = (read(&c.connect_errors), read(&c.errors));
        if outcome.short && !outcome.interrupted {
            return Err(Failure::new(
                Exit::Timeout,
                "Error: -L not reached within --duration",
            ));
        }
        if connect_errors + errors > 0 {
            return Err(Failure::new(
                Exit::Error,
                format!("Error: {connect_errors} connection errors, {errors} failed operations"),
            ));
        }
        Ok(())
    }
}

/// `-t` with `%i` (client index) and `%c` (client identifier) replaced; `%%` is a `%`.
fn expand_topic(pattern: &str, index: u32, client_id: &str) -> String {
    let mut topic = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            topic.push(ch);
            continue;
        }
        match chars.next() {
            Some('i') => topic.push_str(&index.to_string()),
            Some('c') => topic.push_str(client_id),
            Some('%') => topic.push('%'),
            Some(other) => {
                topic.push('%');
                topic.push(other);
            }
            None => topic.push('%'),
        }
    }
    topic
}

/// An identifier of this process's messages: the clock and the process id mixed, which
/// tells apart `pub` processes started on one host.
fn run_id() -> u32 {
    let nanos = now_ns();
    let mixed = nanos ^ (nanos >> 32) ^ u64::from(std::process::id()).rotate_left(17);
    mixed.to_le_bytes()[..4]
        .iter()
        .fold(0, |id, b| (id << 8) | u32::from(*b))
}

/// Paces client starts at `--conn-rate`.
struct Pacer {
    next: Instant,
    step: Duration,
    started: u32,
    total: u32,
}

impl Pacer {
    fn new(rate: u32, total: u32) -> Self {
        let step = if rate == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / rate
        };
        Self {
            next: Instant::now(),
            step,
            started: 0,
            total,
        }
    }

    fn pending(&self) -> bool {
        self.started < self.total
    }

    /// Indices of the clients whose start time has come.
    fn due(&mut self) -> std::ops::Range<u32> {
        let now = Instant::now();
        let first = self.started;
        while self.started < self.total && self.next <= now {
            self.started += 1;
            self.next += self.step;
        }
        first..self.started
    }
}

/// Prints the progress line once a second.
struct Progress {
    tick: tokio::time::Interval,
    last: [u64; 3],
    last_at: Instant,
}

impl Progress {
    fn new() -> Self {
        let start = Instant::now();
        let mut tick =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self {
            tick,
            last: [0; 3],
            last_at: start,
        }
    }

    fn print(&mut self, bench: &Bench) {
        let c = &bench.counters;
        let now = [read(&c.sent), read(&c.acked), read(&c.received)];
        let secs = self.last_at.elapsed().as_secs_f64().max(1e-3);
        let per_sec = |i: usize| (now[i] - self.last[i]) as f64 / secs;
        print_stderr(&format!(
            "[{:.0}s] connected {}/{}, sent {:.0}/s, acked {:.0}/s, received {:.0}/s, \
             connection errors {}, errors {}",
            bench.started.elapsed().as_secs_f64(),
            read(&c.connected),
            bench.args.clients,
            per_sec(0),
            per_sec(1),
            per_sec(2),
            read(&c.connect_errors),
            read(&c.errors),
        ));
        self.last = now;
        self.last_at = Instant::now();
    }
}

/// `conn`: connect every client, read the memory, hold, disconnect.
async fn conn(bench: &Arc<Bench>) -> Outcome {
    let before = Memory::read();
    let mut outcome = Outcome::default();
    let mut clients = Vec::with_capacity(bench.args.clients as usize);
    let mut tasks = JoinSet::new();
    let mut pacer = Pacer::new(bench.args.conn_rate, bench.args.clients);
    let mut progress = Progress::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let total = u64::from(bench.args.clients);
    let c = &bench.counters;
    while read(&c.connected) + read(&c.connect_errors) < total {
        tokio::select! {
            _ = &mut ctrl_c => {
                outcome.interrupted = true;
                break;
            }
            () = sleep_until(pacer.next), if pacer.pending() => {
                for index in pacer.due() {
                    let bench = Arc::clone(bench);
                    tasks.spawn(async move { bench.connect(index).await });
                }
            }
            Some(joined) = tasks.join_next() => {
                if let Ok(Some((client, _id))) = joined {
                    clients.push(client);
                }
            }
            _ = progress.tick.tick() => progress.print(bench),
        }
    }
    if !outcome.interrupted {
        // Let the connections settle, then read the memory.
        tokio::select! {
            _ = &mut ctrl_c => outcome.interrupted = true,
            () = sleep(SETTLE) => {}
        }
        outcome.memory = Some((before, Memory::read()));
        print_memory(bench, &outcome);
        let hold = bench.args.duration();
        let until = Instant::now() + hold;
        loop {
            tokio::select! {
                _ = &mut ctrl_c => {
                    outcome.interrupted = true;
                    break;
                }
                () = sleep_until(until) => break,
                _ = progress.tick.tick() => progress.print(bench),
            }
        }
    }
    tasks.abort_all();
    let lost = clients.iter().filter(|c| !c.is_connected()).count() as u64;
    c.connect_errors.fetch_add(lost, Ordering::Relaxed);
    c.connected.fetch_sub(lost, Ordering::Relaxed);
    outcome.elapsed = bench.started.elapsed();
    disconnect_all(clients).await;
    outcome
}

/// The memory lines of `conn`, printed as soon as all clients are up.
fn print_memory(bench: &Bench, outcome: &Outcome) {
    let Some((before, after)) = outcome.memory else {
        return;
    };
    let n = read(&bench.counters.connected).max(1) as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n;
    println!(
        "memory: RSS {:.1} MiB with {} connections ({:.1} MiB before connecting): {:.2} KiB \
         per connection (anonymous {:.2} KiB, file-backed {:.2} KiB)",
        mib(after.rss),
        read(&bench.counters.connected),
        mib(before.rss),
        per(after.rss, before.rss),
        per(after.anon, before.anon),
        per(after.file, before.file),
    );
}

/// Disconnects every client at once, bounded by [`DRAIN`].
async fn disconnect_all(clients: Vec<Client>) {
    let mut set = JoinSet::new();
    for client in clients {
        set.spawn(async move { client.disconnect().await });
    }
    let _ = timeout(DRAIN, async { while set.join_next().await.is_some() {} }).await;
    set.abort_all();
}

/// `pub` and `sub`: start the clients, report progress, stop at the limit, the duration or
/// Ctrl-C, then let them drain and disconnect.
async fn traffic(bench: &Arc<Bench>) -> Outcome {
    let mut outcome = Outcome::default();
    let (stop_tx, stop) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut pacer = Pacer::new(bench.args.conn_rate, bench.args.clients);
    let mut progress = Progress::new();
    let deadline = bench.started + bench.args.duration();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                outcome.interrupted = true;
                break;
            }
            () = sleep_until(deadline) => break,
            () = bench.done.notified() => break,
            () = sleep_until(pacer.next), if pacer.pending() => {
                for index in pacer.due() {
                    let (bench, stop) = (Arc::clone(bench), stop.clone());
                    match bench.args.mode {
                        Mode::Sub => tasks.spawn(subscriber(bench, index, stop)),
                        _ => tasks.spawn(publisher(bench, index, stop)),
                    };
                }
            }
            Some(_) = tasks.join_next() => {}
            _ = progress.tick.tick() => progress.print(bench),
        }
        if !pacer.pending() && tasks.is_empty() {
            break;
        }
    }
    let _ = stop_tx.send(true);
    // Each task drains and disconnects within DRAIN twice.
    let _ = timeout(DRAIN * 3, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    outcome.elapsed = bench.started.elapsed();
    outcome.short = match (bench.args.mode, bench.args.limit) {
        (Mode::Pub, Some(limit)) => read(&bench.counters.acked) < limit,
        (Mode::Sub, Some(limit)) => read(&bench.counters.received) < limit,
        _ => false,
    };
    outcome
}

/// Waits until `stop` says so (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One publisher: connect, publish at the pace asked until stopped or the budget is
/// spent, wait for the acknowledgements (bounded), disconnect.
async fn publisher(bench: Arc<Bench>, index: u32, mut stop: watch::Receiver<bool>) {
    let connected = tokio::select! {
        () = stopped(&mut stop) => None,
        c = bench.connect(index) => c,
    };
    let Some((client, id)) = connected else {
        return;
    };
    let topic = bench.topic(index, &id);
    let (tx, rx) = mpsc::channel(usize::from(bench.args.inflight));
    let acker = tokio::spawn(acks(Arc::clone(&bench), rx));
    let period = bench.args.period();
    let size = bench.args.size as usize;
    let mut next = Instant::now();
    let mut seq = 0u32;
    while bench.take_budget() {
        let step = async {
            if !period.is_zero() {
                sleep_until(next).await;
                // Behind by more than a period (a slow broker): skip, do not burst.
                next += period;
                if let Some(floor) = Instant::now().checked_sub(period) {
                    next = next.max(floor);
                }
            }
            let header = Header {
                sent_ns: now_ns(),
                run: bench.run_id,
                client: index,
                seq,
            };
            let message = Message::new(topic.as_str(), header.payload(size), bench.args.qos);
            let sent = Instant::now();
            match client.publish_queued(message).await {
                Ok(delivery) => {
                    bump(&bench.counters.sent);
                    seq = seq.wrapping_add(1);
                    tx.send((sent, delivery)).await.is_ok()
                }
                Err(e) => {
                    bump(&bench.counters.errors);
                    note_error(&bench, &e);
                    client.is_connected()
                }
            }
        };
        let go_on = tokio::select! {
            () = stopped(&mut stop) => false,
            go_on = step => go_on,
        };
        if !go_on {
            break;
        }
    }
    drop(tx);
    let _ = timeout(DRAIN, acker).await;
    if !client.is_connected() {
        bump(&bench.counters.connect_errors);
    }
    let _ = timeout(DRAIN, client.disconnect()).await;
}

/// Awaits a publisher's deliveries in order; records publish→ack latency at QoS 1 and 2.
async fn acks(bench: Arc<Bench>, mut deliveries: mpsc::Receiver<(Instant, Delivery)>) {
    while let Some((sent, delivery)) = deliveries.recv().await {
        match delivery.await {
            Ok(code) if !code.is_error() => {
                bump(&bench.counters.acked);
                bench.mark();
                if bench.args.qos != QoS::AtMostOnce {
                    bench.latency.record(sent.elapsed());
                }
            }
            Ok(code) => {
                bump(&bench.counters.errors);
                note_error(&bench, &format!("publish refused: {code:?}"));
            }
            Err(e) => {
                bump(&bench.counters.errors);
                note_error(&bench, &e);
            }
        }
    }
}

/// Keeps the first error for the summary.
fn note_error(bench: &Bench, error: &dyn std::fmt::Display) {
    if let Ok(mut first) = bench.first_error.lock() {
        first.get_or_insert_with(|| error.to_string());
    }
}

/// One subscriber: connect, subscribe, count and time messages until stopped, disconnect.
async fn subscriber(bench: Arc<Bench>, index: u32, mut stop: watch::Receiver<bool>) {
    let connected = tokio::select! {
        () = stopped(&mut stop) => None,
        c = bench.connect(index) => c,
    };
    let Some((client, id)) = connected else {
        return;
    };
    let filter = bench.topic(index, &id);
    let subscribed = tokio::select! {
        () = stopped(&mut stop) => None,
        s = timeout(DRAIN * 2, client.subscribe(filter.as_str(), bench.args.qos)) => Some(s),
    };
    let mut subscription = match subscribed {
        None => return,
        Some(Ok(Ok(s))) => s,
        Some(Ok(Err(e))) => {
            bump(&bench.counters.errors);
            note_error(&bench, &format!("subscribe {filter}: {e}"));
            return;
        }
        Some(Err(_)) => {
            bump(&bench.counters.errors);
            note_error(&bench, &format!("subscribe {filter}: no SUBACK in time"));
            return;
        }
    };
    let subscribed = bench.counters.subscribed.fetch_add(1, Ordering::Relaxed) + 1;
    if subscribed == u64::from(bench.args.clients) {
        println!("subscribed: {subscribed} clients");
    }
    let mut tracker = Tracker::default();
    let limit = bench.args.limit.unwrap_or(u64::MAX);
    loop {
        let message = tokio::select! {
            () = stopped(&mut stop) => break,
            m = subscription.recv() => m,
        };
        let Some(message) = message else {
            // The client stopped: the connection was lost (no reconnect in a bench).
            bump(&bench.counters.connect_errors);
            note_error(
                &bench,
                &format!("{id}: connection lost (see the broker's log)"),
            );
            break;
        };
        let received_ns = now_ns();
        bench.mark();
        match Header::parse(&message.payload) {
            Some(header) => {
                if tracker.record(&header) {
                    bump(&bench.duplicates);
                }
                bench.latency.record_ns(header.sent_ns, received_ns);
            }
            None => bump(&bench.untimed),
        }
        if bench.counters.received.fetch_add(1, Ordering::Relaxed) + 1 == limit {
            bench.done.notify_one();
        }
    }
    bench.lost.fetch_add(tracker.lost(), Ordering::Relaxed);
    let _ = timeout(DRAIN, client.disconnect()).await;
}

impl Bench {
    /// The final report, on stdout.
    fn summary(&self, outcome: &Outcome) {
        let a = &self.args;
        let c = &self.counters;
        let version = match self.version {
            ProtocolVersion::V5 => "5.0",
            ProtocolVersion::V3_1_1 => "3.1.1",
            _ => "3.1",
        };
        let mode = match a.mode {
            Mode::Conn => "conn",
            Mode::Pub => "pub",
            Mode::Sub => "sub",
        };
        let load = match a.mode {
            Mode::Conn => String::new(),
            Mode::Pub => format!(", QoS {}, {}-byte payloads", a.qos as u8, a.size),
            Mode::Sub => format!(", QoS {}", a.qos as u8),
        };
        println!(
            "bench {mode}: {} clients, MQTT {version}{load}, {:.2} s{}",
            a.clients,
            outcome.elapsed.as_secs_f64(),
            if outcome.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let connected = read(&c.connected);
        let connect_secs = self.connected_us.load(Ordering::Relaxed).max(1) as f64 / 1e6;
        println!(
            "connected {connected}/{} in {connect_secs:.2} s ({:.0}/s), connection errors {}",
            a.clients,
            connected as f64 / connect_secs,
            read(&c.connect_errors)
        );
        match a.mode {
            Mode::Conn => print_memory(self, outcome),
            Mode::Pub => {
                let acked = read(&c.acked);
                println!(
                    "sent {}, acknowledged {acked} ({:.0} msg/s), errors {}",
                    read(&c.sent),
                    self.rate(acked),
                    read(&c.errors)
                );
                if let Some(line) = self.latency.line() {
                    println!("publish->ack latency: {line}");
                }
            }
            Mode::Sub => {
                let received = read(&c.received);
                println!(
                    "received {received} ({:.0} msg/s), lost {}, duplicates {}, without header {}, \
                     errors {}",
                    self.rate(received),
                    self.lost.load(Ordering::Relaxed),
                    self.duplicates.load(Ordering::Relaxed),
                    self.untimed.load(Ordering::Relaxed),
                    read(&c.errors)
                );
                if let Some(line) = self.latency.line() {
                    println!("publish->receive latency: {line}");
                }
            }
        }
        if let Ok(first) = self.first_error.lock() {
            if let Some(error) = first.as_ref() {
                println!("first error: {error}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns_expand() {
        assert_eq!(expand_topic("bench/%i/x", 7, "c-7"), "bench/7/x");
        assert_eq!(expand_topic("%c/%i", 12, "me"), "me/12");
        assert_eq!(expand_topic("a/100%%/%q%", 1, "c"), "a/100%/%q%");
        assert_eq!(expand_topic("bench/#", 3, "c"), "bench/#");
    }

    #[test]
    fn pacer_spreads_starts_at_the_rate() {
        let mut p = Pacer::new(0, 5);
        assert_eq!(p.due(), 0..5);
        assert!(!p.pending());
        let mut p = Pacer::new(10, 5);
        assert_eq!(p.due(), 0..1);
        assert!(p.pending());
        assert!(p.next <= Instant::now() + Duration::from_millis(100));
    }
}
