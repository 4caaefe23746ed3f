//! The scenarios: numbered QoS 1 and QoS 2 streams through faults, counted at the other end.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mqtt_sansio::{ProtocolVersion, QoS};
use tokio::time::Instant;

use super::{
    payload, scale, scaled, ClientConfig, ClientUnderTest, Cut, ErrorKind, Ms, RefClient,
    RefConfig, Tally, Verdict,
};
use crate::{Broker, FaultMode, FaultProxy};

/// Messages per QoS in the cut scenarios at scale 1.
const CUT_MESSAGES: u32 = 2_000;
/// Messages per QoS in the restart scenario at scale 1.
const RESTART_MESSAGES: u32 = 1_000;
/// Messages per QoS in the stall scenario at scale 1.
const STALL_MESSAGES: u32 = 500;
/// The stream's pace: one batch per tick.
const TICK: Duration = Duration::from_millis(5);
/// The cut scenarios spread their messages over at least this long, so cuts hit mid-stream.
const STREAM_SPAN: Duration = Duration::from_secs(2);
/// Random cut lifetimes of the proxy (unless [`CUTS_ENV`] says otherwise).
const CUT_MIN: Duration = Duration::from_millis(100);
const CUT_MAX: Duration = Duration::from_millis(400);
/// Environment variable overriding the cut lifetimes, in milliseconds: `"20-100"`.
pub const CUTS_ENV: &str = "MQTT_RELIABILITY_CUTS_MS";
/// Environment variable added to every scenario's seed, to explore other cut schedules.
pub const SEED_ENV: &str = "MQTT_RELIABILITY_SEED";
/// How long a scenario waits after everything arrived, for late duplicates.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the broker stays down in the restart scenario.
const DOWNTIME: Duration = Duration::from_secs(1);
/// Keep alive of the stall scenario.
const STALL_KEEP_ALIVE: u16 = 2;
/// Scheduling slack allowed on top of the computed bounds.
const SLACK: Duration = Duration::from_millis(400);
/// The source number of the stream's messages.
const SOURCE: u16 = 1;
const QOS_1_2: [QoS; 2] = [QoS::AtLeastOnce, QoS::ExactlyOnce];

/// What a scenario measured, and what went wrong.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summary {
    /// Scenario name.
    pub scenario: &'static str,
    /// The client under test.
    pub client: String,
    /// Protocol version.
    pub version: ProtocolVersion,
    /// Per QoS, at the receiving end.
    pub verdicts: Vec<Verdict>,
    /// Faults injected (cuts, stalls, restarts).
    pub faults: u64,
    /// What the faults were.
    pub fault_kind: &'static str,
    /// Connections the client under test made that the broker accepted.
    pub connections: usize,
    /// Reconnect times measured (broker back up / stall noticed → connected again).
    pub reconnect_times: Vec<Duration>,
    /// Connection attempts during broker downtime.
    pub attempts_while_down: Vec<u64>,
    /// Keep alive detection times (stall begun → client noticed).
    pub detection_times: Vec<Duration>,
    /// Wall time.
    pub elapsed: Duration,
    /// Every expectation that failed (empty when the scenario passed).
    pub failures: Vec<String>,
}

impl Summary {
    fn new(scenario: &'static str, client: String, version: ProtocolVersion) -> Self {
        Self {
            scenario,
            client,
            version,
            verdicts: Vec::new(),
            faults: 0,
            fault_kind: "",
            connections: 0,
            reconnect_times: Vec::new(),
            attempts_while_down: Vec::new(),
            detection_times: Vec::new(),
            elapsed: Duration::ZERO,
            failures: Vec::new(),
        }
    }

    /// Panics with the summary when an expectation failed.
    pub fn assert_ok(&self) {
        assert!(self.failures.is_empty(), "{self}");
    }

    fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }

    /// Records the verdicts and fails on broken guarantees.
    fn judge(&mut self, tally: &Tally, sent: u32) {
        for qos in QOS_1_2 {
            let v = tally.verdict(SOURCE, qos, sent);
            if !v.holds() {
                self.fail(format!("guarantee broken: {v}"));
            }
            self.verdicts.push(v);
        }
        if tally.qos_mismatch > 0 {
            self.fail(format!("{} deliveries at another QoS", tally.qos_mismatch));
        }
    }

    /// Common checks of the client under test's log.
    fn check_client(&mut self, cut: &Cut, sent: u32) {
        let log = &cut.log;
        self.connections = log.connects.len();
        if log.sessions_lost() > 0 {
            self.fail(format!(
                "{} reconnects lost the session",
                log.sessions_lost()
            ));
        }
        if log.abandoned > 0 || log.refused > 0 {
            self.fail(format!(
                "{} messages abandoned, {} refused",
                log.abandoned, log.refused
            ));
        }
        if !log.command_failures.is_empty() {
            self.fail(format!("command failures: {:?}", log.command_failures));
        }
        for qos in QOS_1_2 {
            let acked = log.acked.verdict(SOURCE, qos, sent);
            if acked.duplicated > 0 || acked.unexpected > 0 {
                self.fail(format!("publishes acknowledged twice: {acked}"));
            }
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "[{} {:?}] {}: {:.1} s, {} {}, {} client connections",
            self.client,
            self.version,
            self.scenario,
            self.elapsed.as_secs_f64(),
            self.faults,
            self.fault_kind,
            self.connections
        )?;
        for v in &self.verdicts {
            writeln!(f, "    {v}")?;
        }
        if !self.reconnect_times.is_empty() {
            let times: Vec<String> = self
                .reconnect_times
                .iter()
                .map(|d| Ms(*d).to_string())
                .collect();
            writeln!(f, "    reconnect times: {}", times.join(", "))?;
        }
        if !self.attempts_while_down.is_empty() {
            writeln!(
                f,
                "    connection attempts while down: {:?}",
                self.attempts_while_down
            )?;
        }
        if !self.detection_times.is_empty() {
            let times: Vec<String> = self
                .detection_times
                .iter()
                .map(|d| Ms(*d).to_string())
                .collect();
            writeln!(f, "    keep alive detection: {}", times.join(", "))?;
        }
        for failure in &self.failures {
            writeln!(f, "    FAILED: {failure}")?;
        }
        Ok(())
    }
}

/// A numbered stream of QoS 1 and QoS 2 messages, sent a batch per tick.
struct Stream {
    topic: String,
    per_qos: u32,
    next: u32,
    per_tick: u32,
}

impl Stream {
    fn new(topic: String, per_qos: u32, span: Duration) -> Self {
        let ticks = (span.as_millis() / TICK.as_millis()).max(1) as u32;
        Self {
            topic,
            per_qos,
            next: 0,
            per_tick: (2 * per_qos).div_ceil(ticks).max(1),
        }
    }

    fn total(&self) -> u32 {
        2 * self.per_qos
    }

    /// Sends the next batch through `publish`.
    fn step(&mut self, mut publish: impl FnMut(&str, Vec<u8>, QoS)) {
        for _ in 0..self.per_tick {
            if self.next >= self.total() {
                return;
            }
            let qos = QOS_1_2[(self.next % 2) as usize];
            publish(&self.topic, payload(SOURCE, qos, self.next / 2, 0), qos);
            self.next += 1;
        }
    }

    fn sent_all(&self) -> bool {
        self.next >= self.total()
    }

    /// Every message of the stream arrived at least once according to `tally`.
    fn arrived(&self, tally: &Tally) -> bool {
        QOS_1_2
            .iter()
            .all(|&q| tally.distinct(SOURCE, q) >= self.per_qos as usize)
    }
}

/// The proxy's random cuts: lifetimes from [`CUTS_ENV`] or 100–400 ms, seed plus [`SEED_ENV`].
fn cut_mode(seed: u64) -> FaultMode {
    let env_seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (min, max) = std::env::var(CUTS_ENV)
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once('-')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .map_or((CUT_MIN, CUT_MAX), |(a, b)| {
            (Duration::from_millis(a), Duration::from_millis(b))
        });
    FaultMode::new()
        .random_cuts(min, max)
        .seed(seed.wrapping_add(env_seed))
}

fn start_broker(persistence: bool) -> Result<Broker, String> {
    Broker::builder()
        .persistence(persistence)
        // Never drop queued messages for an offline persistent session.
        .max_queued_messages(0)
        .start()
        .map_err(|e| e.to_string())
}

/// How long a stream of `total` messages may take in all.
fn deadline_for(base: Duration) -> Instant {
    Instant::now() + base.mul_f64(scale().max(1.0))
}

fn client_id(client: &str, version: ProtocolVersion, role: &str) -> String {
    format!("rel-{client}-{}-{role}", version.level())
}

/// (a) The client under test publishes `2,000 × scale` numbered QoS 1 and as many QoS 2
/// messages through a proxy that cuts its connection every 100–400 ms; a [`RefClient`]
/// subscribed directly to the broker (persistent session, QoS 2) counts them. QoS 1 must lose
/// none, QoS 2 lose none and duplicate none.
pub async fn publish_through_cuts(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    seed: u64,
) -> Summary {
    let mut summary = Summary::new("publish through random cuts", client.name(), version);
    summary.fault_kind = "cuts";
    let started = Instant::now();
    if let Err(e) = publish_through_cuts_inner(client, version, seed, &mut summary).await {
        summary.fail(e);
    }
    summary.elapsed = started.elapsed();
    summary
}

async fn publish_through_cuts_inner(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    seed: u64,
    summary: &mut Summary,
) -> Result<(), String> {
    let name = client.name();
    let broker = start_broker(false)?;
    let topic = format!("rel/{name}/{}/up", version.level());
    let sub = RefClient::start(RefConfig::new(
        broker.addr(),
        version,
        client_id(&name, version, "ref-sub"),
    ));
    sub.subscribe(topic.clone(), QoS::ExactlyOnce);
    sub.wait_for(Duration::from_secs(10), |s| s.subscribed > 0)
        .await
        .map_err(|s| format!("reference subscriber: no SUBACK: {:?}", s.problems))?;
    let mode = cut_mode(seed);
    let proxy = FaultProxy::start(broker.addr(), mode)
        .await
        .map_err(|e| e.to_string())?;
    let config = ClientConfig::new(proxy.addr(), version, client_id(&name, version, "pub"));
    let mut cut = Cut::start(client, config);
    let mut stream = Stream::new(topic, scaled(CUT_MESSAGES), STREAM_SPAN);
    let deadline = deadline_for(Duration::from_secs(40));
    // Each pass is one tick; the deadline bounds it.
    loop {
        cut.drain();
        stream.step(|t, p, q| cut.publish(t, p, q));
        let stats = sub.stats();
        if stream.sent_all() && stream.arrived(&cut.log.acked) && stream.arrived(&stats.tally) {
            break;
        }
        if Instant::now() >= deadline {
            summary.fail(format!(
                "not complete in time: acked {}+{}, received {}+{}",
                cut.log.acked.distinct(SOURCE, QoS::AtLeastOnce),
                cut.log.acked.distinct(SOURCE, QoS::ExactlyOnce),
                stats.tally.distinct(SOURCE, QoS::AtLeastOnce),
                stats.tally.distinct(SOURCE, QoS::ExactlyOnce),
            ));
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    tokio::time::sleep(SETTLE).await;
    cut.stop(Duration::from_secs(5)).await;
    let stats = sub.stop().await;
    summary.faults = proxy.stats().cuts;
    summary.judge(&stats.tally, stream.per_qos);
    summary.check_client(&cut, stream.per_qos);
    if stats.session_lost > 0 || !stats.problems.is_empty() {
        summary.fail(format!("reference subscriber: {:?}", stats.problems));
    }
    if summary.faults < 3 {
        summary.fail(format!(
            "only {} cuts: the run proves little",
            summary.faults
        ));
    }
    Ok(())
}

/// (b) The client under test subscribes (persistent session, QoS 2) through a proxy that cuts
/// its connection every 100–400 ms, while a [`RefClient`] connected directly publishes
/// `2,000 × scale` numbered QoS 1 and as many QoS 2 messages. Every QoS 1 message must arrive
/// at least once, every QoS 2 message exactly once.
pub async fn subscribe_through_cuts(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    seed: u64,
) -> Summary {
    let mut summary = Summary::new("subscribe through random cuts", client.name(), version);
    summary.fault_kind = "cuts";
    let started = Instant::now();
    if let Err(e) = subscribe_through_cuts_inner(client, version, seed, &mut summary).await {
        summary.fail(e);
    }
    summary.elapsed = started.elapsed();
    summary
}

async fn subscribe_through_cuts_inner(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    seed: u64,
    summary: &mut Summary,
) -> Result<(), String> {
    let name = client.name();
    let broker = start_broker(false)?;
    let topic = format!("rel/{name}/{}/down", version.level());
    let mode = cut_mode(seed);
    let proxy = FaultProxy::start(broker.addr(), mode)
        .await
        .map_err(|e| e.to_string())?;
    let config = ClientConfig::new(proxy.addr(), version, client_id(&name, version, "sub"));
    let mut cut = Cut::start(client, config);
    cut.send(super::Command::Subscribe {
        filter: topic.clone(),
        qos: QoS::ExactlyOnce,
    });
    cut.wait_until(Duration::from_secs(15), "SUBACK", |l| {
        l.subscribed.iter().any(|ok| *ok)
    })
    .await?;
    let publisher = RefClient::start(RefConfig::new(
        broker.addr(),
        version,
        client_id(&name, version, "ref-pub"),
    ));
    let mut stream = Stream::new(topic, scaled(CUT_MESSAGES), STREAM_SPAN);
    let deadline = deadline_for(Duration::from_secs(40));
    // Each pass is one tick; the deadline bounds it.
    loop {
        cut.drain();
        stream.step(|t, p, q| publisher.publish(t, p, q));
        let acked = publisher.stats().acked;
        if stream.sent_all()
            && acked >= u64::from(stream.total())
            && stream.arrived(&cut.log.received)
        {
            break;
        }
        if Instant::now() >= deadline {
            summary.fail(format!(
                "not complete in time: published {acked}, received {}+{}",
                cut.log.received.distinct(SOURCE, QoS::AtLeastOnce),
                cut.log.received.distinct(SOURCE, QoS::ExactlyOnce),
            ));
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    tokio::time::sleep(SETTLE).await;
    cut.drain();
    cut.stop(Duration::from_secs(5)).await;
    let stats = publisher.stop().await;
    summary.faults = proxy.stats().cuts;
    summary.judge(&cut.log.received, stream.per_qos);
    summary.check_client(&cut, stream.per_qos);
    if !stats.problems.is_empty() || stats.failed > 0 {
        summary.fail(format!(
            "reference publisher: {} failed, {:?}",
            stats.failed, stats.problems
        ));
    }
    if summary.faults < 3 {
        summary.fail(format!(
            "only {} cuts: the run proves little",
            summary.faults
        ));
    }
    Ok(())
}

/// How the broker goes down in [`broker_restart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// `SIGTERM` ([`Broker::stop`]): mosquitto saves its database and exits.
    Stop,
    /// Traffic paused (both proxies stalled), [`Broker::save`], then `SIGKILL`
    /// ([`Broker::kill`]): a crash right after a completed save.
    SaveKill,
}

/// (c) The client under test publishes `1,000 × scale` numbered QoS 1 and as many QoS 2 messages
/// while mosquitto (persistence on) goes down twice mid-stream, once per [`Restart`] way, for
/// a second each, and comes back on the same port. The client must reconnect by itself within
/// its backoff bound (largest delay plus slack, measured from the broker accepting again), not
/// hammer the broker while it is down, and nothing may be lost. The reference subscriber
/// (persistent session) reaches the broker through a fault-free proxy, so that it can be
/// paused for the save.
pub async fn broker_restart(client: &dyn ClientUnderTest, version: ProtocolVersion) -> Summary {
    let mut summary = Summary::new("broker restarts", client.name(), version);
    summary.fault_kind = "restarts";
    let started = Instant::now();
    if let Err(e) = broker_restart_inner(client, version, &mut summary).await {
        summary.fail(e);
    }
    summary.elapsed = started.elapsed();
    summary
}

async fn broker_restart_inner(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    summary: &mut Summary,
) -> Result<(), String> {
    let name = client.name();
    let broker = Arc::new(start_broker(true)?);
    let topic = format!("rel/{name}/{}/restart", version.level());
    let client_proxy = FaultProxy::start(broker.addr(), FaultMode::new())
        .await
        .map_err(|e| e.to_string())?;
    let ref_proxy = FaultProxy::start(broker.addr(), FaultMode::new())
        .await
        .map_err(|e| e.to_string())?;
    let sub = RefClient::start(RefConfig::new(
        ref_proxy.addr(),
        version,
        client_id(&name, version, "ref-sub"),
    ));
    sub.subscribe(topic.clone(), QoS::ExactlyOnce);
    sub.wait_for(Duration::from_secs(10), |s| s.subscribed > 0)
        .await
        .map_err(|s| format!("reference subscriber: no SUBACK: {:?}", s.problems))?;
    let mut config = ClientConfig::new(
        client_proxy.addr(),
        version,
        client_id(&name, version, "pub"),
    );
    config.backoff_initial = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(800);
    let mut cut = Cut::start(client, config.clone());
    cut.wait_until(Duration::from_secs(10), "first connection", |l| {
        !l.connects.is_empty()
    })
    .await?;
    // Spread over ~3 s so that both restarts fall mid-stream.
    let mut stream = Stream::new(topic, scaled(RESTART_MESSAGES), Duration::from_secs(3));
    let restarts = [
        (stream.total() / 3, Restart::Stop),
        (2 * stream.total() / 3, Restart::SaveKill),
    ];
    let mut done_restarts = 0;
    let deadline = deadline_for(Duration::from_secs(60));
    // Each pass is one tick; the deadline bounds it.
    loop {
        cut.drain();
        stream.step(|t, p, q| cut.publish(t, p, q));
        if let Some(&(at, how)) = restarts.get(done_restarts) {
            if stream.next >= at {
                done_restarts += 1;
                restart(
                    &broker,
                    how,
                    &client_proxy,
                    &ref_proxy,
                    &mut cut,
                    &config,
                    summary,
                )
                .await?;
                continue;
            }
        }
        let stats = sub.stats();
        if stream.sent_all() && stream.arrived(&cut.log.acked) && stream.arrived(&stats.tally) {
            break;
        }
        if Instant::now() >= deadline {
            summary.fail(format!(
                "not complete in time: acked {}+{}, received {}+{}; broker log tail:\n{}",
                cut.log.acked.distinct(SOURCE, QoS::AtLeastOnce),
                cut.log.acked.distinct(SOURCE, QoS::ExactlyOnce),
                stats.tally.distinct(SOURCE, QoS::AtLeastOnce),
                stats.tally.distinct(SOURCE, QoS::ExactlyOnce),
                tail(&broker.log(), 2000),
            ));
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    tokio::time::sleep(SETTLE).await;
    cut.stop(Duration::from_secs(5)).await;
    let stats = sub.stop().await;
    summary.faults = done_restarts as u64;
    summary.judge(&stats.tally, stream.per_qos);
    summary.check_client(&cut, stream.per_qos);
    if stats.session_lost > 0 {
        summary.fail("the reference subscriber's session was lost: persistence failed");
    }
    Ok(())
}

/// Takes the broker down `how`, for [`DOWNTIME`], brings it back and measures the client's
/// reconnect.
async fn restart(
    broker: &Arc<Broker>,
    how: Restart,
    client_proxy: &FaultProxy,
    ref_proxy: &FaultProxy,
    cut: &mut Cut,
    config: &ClientConfig,
    summary: &mut Summary,
) -> Result<(), String> {
    let blocking = |f: fn(&Broker) -> Result<(), crate::BrokerError>| {
        let broker = Arc::clone(broker);
        async move {
            tokio::task::spawn_blocking(move || f(&broker))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        }
    };
    match how {
        Restart::Stop => blocking(Broker::stop).await?,
        Restart::SaveKill => {
            // Nothing may reach the broker between the save and the kill.
            client_proxy.stall(true);
            ref_proxy.stall(true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            blocking(Broker::save).await?;
            blocking(Broker::kill).await?;
            for proxy in [client_proxy, ref_proxy] {
                proxy.cut_all();
                proxy.stall(false);
            }
        }
    }
    let down = Instant::now();
    let failures_before = client_proxy.stats().upstream_failures;
    tokio::time::sleep(DOWNTIME).await;
    blocking(Broker::restart).await?;
    let up = Instant::now();
    let attempts = client_proxy.stats().upstream_failures - failures_before;
    summary.attempts_while_down.push(attempts);
    cut.wait_until(
        Duration::from_secs(10),
        "reconnect after the restart",
        |l| l.connected_after(down).is_some(),
    )
    .await?;
    let connected = cut.log.connected_after(down).unwrap_or(up);
    let reconnect = connected.saturating_duration_since(up);
    summary.reconnect_times.push(reconnect);
    let bound = config.backoff_max + SLACK;
    if reconnect > bound {
        summary.fail(format!(
            "{how:?}: reconnected {} after the broker was back, bound {}",
            Ms(reconnect),
            Ms(bound)
        ));
    }
    // Exponential backoff: about log2(max/initial) attempts to reach the largest delay, then
    // one per largest delay.
    let doublings = (config.backoff_max.as_secs_f64() / config.backoff_initial.as_secs_f64())
        .log2()
        .ceil()
        .max(0.0) as u64;
    let down_for = up.saturating_duration_since(down);
    let at_max = (down_for.as_secs_f64() / config.backoff_max.as_secs_f64()).ceil() as u64;
    let allowed = doublings + at_max + 3;
    if attempts > allowed {
        summary.fail(format!(
            "{how:?}: {attempts} connection attempts in {} of downtime (at most {allowed} with backoff)",
            Ms(down_for)
        ));
    }
    Ok(())
}

/// (d) The client under test (keep alive 2 s) publishes `500 × scale` numbered QoS 1 and as
/// many QoS 2 messages through a proxy that stalls mid-stream: both directions stop without
/// the connection closing. The client must notice within 1.5 keep alives (plus slack),
/// reconnect once the path is back, and deliver everything.
pub async fn stalled_connection(client: &dyn ClientUnderTest, version: ProtocolVersion) -> Summary {
    let mut summary = Summary::new("stalled connection", client.name(), version);
    summary.fault_kind = "stalls";
    let started = Instant::now();
    if let Err(e) = stalled_inner(client, version, &mut summary).await {
        summary.fail(e);
    }
    summary.elapsed = started.elapsed();
    summary
}

async fn stalled_inner(
    client: &dyn ClientUnderTest,
    version: ProtocolVersion,
    summary: &mut Summary,
) -> Result<(), String> {
    let name = client.name();
    let broker = start_broker(false)?;
    let topic = format!("rel/{name}/{}/stall", version.level());
    let sub = RefClient::start(RefConfig::new(
        broker.addr(),
        version,
        client_id(&name, version, "ref-sub"),
    ));
    sub.subscribe(topic.clone(), QoS::ExactlyOnce);
    sub.wait_for(Duration::from_secs(10), |s| s.subscribed > 0)
        .await
        .map_err(|s| format!("reference subscriber: no SUBACK: {:?}", s.problems))?;
    let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
        .await
        .map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(proxy.addr(), version, client_id(&name, version, "pub"));
    config.keep_alive = STALL_KEEP_ALIVE;
    let mut cut = Cut::start(client, config);
    cut.wait_until(Duration::from_secs(10), "first connection", |l| {
        !l.connects.is_empty()
    })
    .await?;
    let keep_alive = Duration::from_secs(u64::from(STALL_KEEP_ALIVE));
    let bound = keep_alive.mul_f64(1.5) + SLACK;
    // The stream runs through the stall and the recovery.
    let mut stream = Stream::new(topic, scaled(STALL_MESSAGES), Duration::from_secs(2));
    let stall_at = Instant::now() + Duration::from_secs(1);
    let mut stalled: Option<Instant> = None;
    let mut detected: Option<Instant> = None;
    let deadline = deadline_for(Duration::from_secs(40));
    // Each pass is one tick; the deadline bounds it.
    loop {
        cut.drain();
        stream.step(|t, p, q| cut.publish(t, p, q));
        let now = Instant::now();
        match (stalled, detected) {
            (None, _) if now >= stall_at => {
                proxy.stall(true);
                stalled = Some(now);
            }
            (Some(s), None) => {
                if let Some(at) = cut.log.error_after(s, ErrorKind::KeepAliveTimeout) {
                    detected = Some(at);
                    summary
                        .detection_times
                        .push(at.saturating_duration_since(s));
                    // Drop the frozen connection (its held bytes with it) and open the path.
                    proxy.cut_all();
                    proxy.stall(false);
                } else if now.saturating_duration_since(s) > bound + Duration::from_secs(2) {
                    summary.fail(format!(
                        "stall not noticed in {}; errors {}",
                        Ms(now.saturating_duration_since(s)),
                        cut.log.error_summary()
                    ));
                    proxy.cut_all();
                    proxy.stall(false);
                    detected = Some(now);
                }
            }
            _ => {}
        }
        let stats = sub.stats();
        let complete = detected.is_some()
            && stream.sent_all()
            && stream.arrived(&cut.log.acked)
            && stream.arrived(&stats.tally);
        if complete {
            break;
        }
        if now >= deadline {
            summary.fail(format!(
                "not complete in time: acked {}+{}, received {}+{}",
                cut.log.acked.distinct(SOURCE, QoS::AtLeastOnce),
                cut.log.acked.distinct(SOURCE, QoS::ExactlyOnce),
                stats.tally.distinct(SOURCE, QoS::AtLeastOnce),
                stats.tally.distinct(SOURCE, QoS::ExactlyOnce),
            ));
            break;
        }
        tokio::time::sleep(TICK).await;
    }
    if let Some(d) = detected {
        if let Some(c) = cut.log.connected_after(d) {
            summary.reconnect_times.push(c.saturating_duration_since(d));
        } else {
            summary.fail("no reconnect after the stall");
        }
    }
    for t in &summary.detection_times {
        if *t > bound {
            summary.failures.push(format!(
                "stall noticed after {}, bound {}",
                Ms(*t),
                Ms(bound)
            ));
        }
    }
    tokio::time::sleep(SETTLE).await;
    cut.stop(Duration::from_secs(5)).await;
    let stats = sub.stop().await;
    summary.faults = proxy.stats().stalls;
    summary.judge(&stats.tally, stream.per_qos);
    summary.check_client(&cut, stream.per_qos);
    Ok(())
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
