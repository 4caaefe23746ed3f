//! The device simulator against a real mosquitto with username and password: a controller
//! (a second `mqtt-client-nb` client on tokio) drives the simulated LED device through its
//! MQTT interface and watches what it publishes, including the will after a kill and the
//! re-announcement after a broker restart. Loopback only, on ports the test support picks;
//! every wait is bounded.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use examples::device_sim::{ConfigError, DeviceSim, SimConfig, SimEvent, SimHandle};
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_client_nb::{Client, Clock, Event, Options};
use mqtt_test_support::Broker;
use tokio::net::TcpStream;
use tokio::time::Instant;

const USER: &str = "device";
const PASSWORD: &str = "s3cret-pw";
/// Upper bound of any single wait.
const WAIT: Duration = Duration::from_secs(10);

type Tcp = FromTokio<TcpStream>;

/// Fails the test if `future` takes longer than `WAIT`.
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn broker() -> Arc<Broker> {
    Arc::new(
        Broker::builder()
            .credentials(USER, PASSWORD)
            .start()
            .expect("mosquitto (apt-get install mosquitto)"),
    )
}

fn sim_config(broker: &Broker, id: &str, protocol: ProtocolVersion) -> SimConfig {
    let mut config = SimConfig::from_url(&broker.url())
        .unwrap()
        .credentials(USER, PASSWORD);
    config.device_id = Some(id.to_owned());
    config.protocol = protocol;
    config.telemetry_interval = Duration::from_secs(1);
    config.backoff_initial = Duration::from_millis(100);
    config.backoff_max = Duration::from_millis(500);
    config.connect_timeout = Duration::from_secs(2);
    config
}

/// Waits until the simulator reports an event matching `want`; returns everything up to it.
async fn sim_until(
    sim: &mut SimHandle,
    what: &str,
    want: impl Fn(&SimEvent) -> bool,
) -> Vec<SimEvent> {
    let mut seen = Vec::new();
    within(what, async {
        while let Some(event) = sim.next_event().await {
            let done = want(&event);
            seen.push(event);
            if done {
                return;
            }
        }
        panic!("simulator ended before {what}: {seen:?}");
    })
    .await;
    seen
}

/// A `Clock` over tokio time for the controller.
#[derive(Clone, Copy)]
struct TestClock(Instant);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline_ms)).await;
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
}

/// The controller: an `mqtt-client-nb` client (3.1.1) subscribed to everything of a device.
struct Controller {
    client: Client<'static, Tcp>,
    clock: TestClock,
    seen: Vec<Msg>,
}

impl Controller {
    /// Connects with the test credentials and subscribes to `filter` (QoS 1).
    async fn connect(addr: SocketAddr, client_id: &str, filter: &str) -> Self {
        let leak = |n: usize| Box::leak(vec![0u8; n].into_boxed_slice());
        let mut options = Options::new(ProtocolVersion::V3_1_1);
        options.client_id = Some(Box::leak(client_id.to_owned().into_boxed_str()));
        options.username = Some(USER);
        options.password = Some(PASSWORD.as_bytes());
        let mut client = Client::new(options, leak(1024), leak(1024), leak(4096)).unwrap();
        let stream = within("controller TCP", TcpStream::connect(addr))
            .await
            .unwrap();
        client.connect(FromTokio::new(stream)).unwrap();
        let mut this = Self {
            client,
            clock: TestClock(Instant::now()),
            seen: Vec::new(),
        };
        this.client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        this.poll_until("controller SUBACK", |e| {
            matches!(e, Event::Subscribed { .. })
        })
        .await;
        this
    }

    /// Polls until `want` matches an event, recording messages; panics on errors.
    async fn poll_until(&mut self, what: &str, mut want: impl FnMut(&Event<'_>) -> bool) {
        let (client, clock, seen) = (&mut self.client, &self.clock, &mut self.seen);
        within(what, async {
            for _ in 0..10_000 {
                let event = client.poll(clock).await;
                record(&event, seen);
                if want(&event) {
                    return;
                }
            }
            panic!("no {what} in 10,000 events");
        })
        .await;
    }

    /// Waits for a message on `topic` matching `want` (possibly received earlier); returns
    /// it and forgets everything received up to it.
    async fn expect(&mut self, topic: &str, want: impl Fn(&str) -> bool) -> Msg {
        let find = |seen: &[Msg]| {
            seen.iter()
                .position(|m| m.topic == topic && want(&m.payload))
        };
        let what = format!("a message on {topic}; saw {:?}", self.seen);
        let (client, clock, seen) = (&mut self.client, &self.clock, &mut self.seen);
        let at = within(&what, async {
            for _ in 0..10_000 {
                if let Some(at) = find(seen) {
                    return at;
                }
                record(&client.poll(clock).await, seen);
            }
            panic!("no {what} in 10,000 events");
        })
        .await;
        let msg = self.seen[at].clone();
        self.seen.drain(..=at);
        msg
    }

    /// Waits until a message on `topic` with `payload` was received (possibly earlier),
    /// leaving what was received in place.
    async fn saw(&mut self, topic: &str, payload: &str) {
        let what = format!("{payload:?} on {topic}");
        let (client, clock, seen) = (&mut self.client, &self.clock, &mut self.seen);
        within(&what, async {
            while !seen
                .iter()
                .any(|m| m.topic == topic && m.payload == payload)
            {
                record(&client.poll(clock).await, seen);
            }
        })
        .await;
    }

    /// Publishes a command (QoS 1, not retained); sent by the next poll.
    fn send(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes())
            .unwrap();
    }
}

/// Records a message event; panics on anything that ends the controller's connection.
fn record(event: &Event<'_>, seen: &mut Vec<Msg>) {
    assert!(
        !matches!(event, Event::Error(_) | Event::Disconnected),
        "controller: {event:?}"
    );
    if let Event::Message(p) = event {
        seen.push(Msg {
            topic: p.topic.as_str().to_owned(),
            payload: String::from_utf8_lossy(p.payload).into_owned(),
            retain: p.retain,
        });
    }
}

/// The retained message on `topic`, as a fresh subscriber sees it.
async fn retained(addr: SocketAddr, topic: &str) -> String {
    let mut fresh = Controller::connect(addr, "retained-check", topic).await;
    let msg = fresh.expect(topic, |_| true).await;
    assert!(msg.retain, "not retained: {msg:?}");
    msg.payload
}

/// The whole story: online, on/off/toggle and a bad command, retained state, the error report,
/// telemetry, then a power cut and the will.
async fn scenario(protocol: ProtocolVersion, id: &str) {
    let broker = broker();
    let topic = |suffix: &str| format!("devices/{id}/{suffix}");
    let mut ctl = Controller::connect(broker.addr(), &format!("ctl-{id}"), &topic("#")).await;

    let mut sim = DeviceSim::spawn(sim_config(&broker, id, protocol)).unwrap();
    assert_eq!(sim.device_id(), id);
    let mut led = sim.led();
    assert!(!*led.borrow(), "the LED starts off");
    let before = sim_until(&mut sim, "the command subscription", |e| {
        matches!(e, SimEvent::Subscribed { granted: true, .. })
    })
    .await;
    assert!(
        matches!(before[0], SimEvent::Connecting { .. }),
        "{before:?}"
    );
    assert!(before.contains(&SimEvent::Connected {
        session_present: false
    }));
    assert!(*sim.connected().borrow());

    ctl.expect(&topic("status"), |p| p == "online").await;
    ctl.expect(&topic("led/state"), |p| p == "off").await;
    assert_eq!(retained(broker.addr(), &topic("status")).await, "online");

    for (command, state) in [("on", true), ("off", false), ("toggle", true)] {
        ctl.send(&topic("led/set"), command);
        let want = if state { "on" } else { "off" };
        ctl.expect(&topic("led/state"), |p| p == want).await;
        within("the LED watch", led.wait_for(|&on| on == state))
            .await
            .unwrap();
    }
    assert_eq!(retained(broker.addr(), &topic("led/state")).await, "on");

    ctl.send(&topic("led/set"), "blink");
    let error = ctl.expect(&topic("led/error"), |_| true).await;
    assert_eq!(
        error.payload,
        r#"unknown command "blink" (expected on, off or toggle)"#
    );
    assert!(!error.retain);
    assert!(*sim.led().borrow(), "a bad command leaves the LED alone");

    // Telemetry every second; wait for one that counts all four commands.
    let telemetry = ctl
        .expect(&topic("telemetry"), |p| p.contains(r#""rejected":1"#))
        .await;
    let json: serde_json::Value = serde_json::from_str(&telemetry.payload).unwrap();
    assert_eq!(json["messages"], 4, "{json}");
    assert_eq!(json["led"], "on", "{json}");
    assert!(json["uptime_s"].as_u64().is_some(), "{json}");
    let heap = json["free_heap"].as_u64().unwrap();
    assert!((100_000..300_000).contains(&heap), "{json}");
    let rssi = json["rssi"].as_i64().unwrap();
    assert!((-90..0).contains(&rssi), "{json}");

    let log = sim_until(
        &mut sim,
        "the error report in the log",
        |e| matches!(e, SimEvent::Published { topic, .. } if topic.ends_with("/led/error")),
    )
    .await;
    for expected in [
        SimEvent::CommandReceived {
            payload: "toggle".into(),
        },
        SimEvent::Led {
            on: true,
            changed: true,
        },
        SimEvent::CommandRejected {
            payload: "blink".into(),
        },
    ] {
        assert!(log.contains(&expected), "{expected:?} not in {log:?}");
    }
    assert!(
        log.iter().any(
            |e| matches!(e, SimEvent::Published { topic, payload, retain: true }
                if topic.ends_with("/led/state") && payload == "on")
        ),
        "{log:?}"
    );
    sim_until(
        &mut sim,
        "telemetry in the log",
        |e| matches!(e, SimEvent::Telemetry { json } if json.contains(r#""rejected":1"#)),
    )
    .await;

    // Power cut: no DISCONNECT, so the broker publishes the will.
    within("kill", sim.kill()).await;
    assert!(!sim.is_running());
    let will = ctl.expect(&topic("status"), |p| p == "offline").await;
    assert_eq!(will.payload, "offline");
    assert_eq!(retained(broker.addr(), &topic("status")).await, "offline");
    let rest = sim_until(&mut sim, "the kill in the log", |e| *e == SimEvent::Killed).await;
    assert!(rest.contains(&SimEvent::Disconnected), "{rest:?}");
    assert!(!*sim.connected().borrow());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_story_over_3_1_1() {
    scenario(ProtocolVersion::V3_1_1, "sim-v311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_story_over_5() {
    scenario(ProtocolVersion::V5, "sim-v5").await;
}

/// The broker goes away and comes back empty (no persistence): the device reconnects and
/// announces itself again, so `online` and the LED state are retained once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_broker_restart() {
    let broker = broker();
    let id = "sim-restart";
    let topic = |suffix: &str| format!("devices/{id}/{suffix}");
    let mut config = sim_config(&broker, id, ProtocolVersion::V3_1_1);
    config.initial_led = true;
    let mut sim = DeviceSim::spawn(config).unwrap();
    sim_until(&mut sim, "the first subscription", |e| {
        matches!(e, SimEvent::Subscribed { granted: true, .. })
    })
    .await;
    assert_eq!(retained(broker.addr(), &topic("status")).await, "online");

    let b = broker.clone();
    within("broker stop", tokio::task::spawn_blocking(move || b.stop()))
        .await
        .unwrap()
        .unwrap();
    let down = sim_until(&mut sim, "the disconnect", |e| *e == SimEvent::Disconnected).await;
    assert!(!*sim.connected().borrow(), "{down:?}");
    // Let at least one reconnect attempt fail while the broker is down.
    sim_until(&mut sim, "a failed reconnect", |e| {
        matches!(e, SimEvent::ConnectFailed { .. })
    })
    .await;

    let b = broker.clone();
    within(
        "broker restart",
        tokio::task::spawn_blocking(move || b.restart()),
    )
    .await
    .unwrap()
    .unwrap();
    let back = sim_until(&mut sim, "the second subscription", |e| {
        matches!(e, SimEvent::Subscribed { granted: true, .. })
    })
    .await;
    assert!(
        back.iter().any(|e| matches!(e, SimEvent::Connected { .. })),
        "{back:?}"
    );
    assert!(*sim.connected().borrow());
    assert_eq!(retained(broker.addr(), &topic("status")).await, "online");
    assert_eq!(retained(broker.addr(), &topic("led/state")).await, "on");

    // And it still obeys.
    let mut ctl = Controller::connect(broker.addr(), "ctl-restart", &topic("led/state")).await;
    ctl.send(&topic("led/set"), "toggle");
    ctl.expect(&topic("led/state"), |p| p == "off").await;
    within("kill", sim.kill()).await;
}

/// A network glitch publishes the will and the device comes back by itself; a graceful stop
/// publishes `offline` from the device and disconnects cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connection_then_graceful_stop() {
    let broker = broker();
    let id = "sim-cut";
    let topic = |suffix: &str| format!("devices/{id}/{suffix}");
    let mut ctl = Controller::connect(broker.addr(), "ctl-cut", &topic("status")).await;
    let mut sim = DeviceSim::spawn(sim_config(&broker, id, ProtocolVersion::V5)).unwrap();
    ctl.expect(&topic("status"), |p| p == "online").await;

    sim.cut_connection();
    ctl.expect(&topic("status"), |p| p == "offline").await;
    ctl.expect(&topic("status"), |p| p == "online").await;
    let log = sim_until(&mut sim, "the cut", |e| *e == SimEvent::ConnectionCut).await;
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e, SimEvent::Connected { .. }))
            .count(),
        1,
        "{log:?}"
    );
    let log = sim_until(&mut sim, "the reconnect", |e| {
        matches!(e, SimEvent::Connected { .. })
    })
    .await;
    assert!(
        log.iter().any(|e| matches!(e, SimEvent::Connecting { .. })),
        "{log:?}"
    );

    within("stop", sim.stop()).await;
    ctl.expect(&topic("status"), |p| p == "offline").await;
    let log = sim_until(&mut sim, "the stop", |e| *e == SimEvent::Stopped).await;
    assert!(
        !log.iter().any(|e| matches!(e, SimEvent::Error { .. })),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|e| matches!(e, SimEvent::Published { topic, payload, .. }
                if topic.ends_with("/status") && payload == "offline")),
        "the device published offline itself: {log:?}"
    );
    within("the end of the log", async {
        while sim.next_event().await.is_some() {}
    })
    .await;
    // A clean DISCONNECT: mosquitto logs the client as disconnected, not as lost.
    let b = broker.clone();
    let needle = format!("Client {id} disconnected.");
    let seen = tokio::task::spawn_blocking(move || b.wait_for_log(&needle, WAIT)).await;
    assert!(seen.unwrap().is_ok(), "{}", broker.log());
}

/// With a flash image, a killed simulator started again on the same file resumes its MQTT
/// session: the broker kept it (Clean Session 0 / Clean Start 0), so a command sent while the
/// device was dead is delivered when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_simulator_resumes_its_session_from_the_flash_image() {
    let broker = broker();
    for protocol in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let id = format!("sim-flash-{}", protocol.level());
        let topic = |suffix: &str| format!("devices/{id}/{suffix}");
        let image = std::env::temp_dir().join(format!(
            "device-sim-{}-{}.flash",
            std::process::id(),
            protocol.level()
        ));
        let _ = std::fs::remove_file(&image);
        let mut config = sim_config(&broker, &id, protocol);
        config.flash_image = Some(image.clone());
        let mut ctl = Controller::connect(broker.addr(), &format!("ctl-{id}"), &topic("#")).await;

        let mut sim = DeviceSim::spawn(config.clone()).unwrap();
        let log = sim_until(&mut sim, "subscribed", |e| {
            matches!(e, SimEvent::Subscribed { .. })
        })
        .await;
        assert!(
            log.contains(&SimEvent::Connected {
                session_present: false
            }),
            "{protocol:?}: a new image starts a new session: {log:?}"
        );
        sim.kill().await;
        ctl.expect(&topic("status"), |p| p == "offline").await;
        assert_eq!(std::fs::metadata(&image).unwrap().len(), 16 * 1024);

        // Sent while the device is dead: the broker keeps it in the device's session.
        ctl.send(&topic("led/set"), "on");
        ctl.poll_until("the command's PUBACK", |e| {
            matches!(e, Event::Published { .. })
        })
        .await;

        let mut sim = DeviceSim::spawn(config).unwrap();
        let log = sim_until(&mut sim, "the LED", |e| {
            matches!(e, SimEvent::Led { on: true, .. })
        })
        .await;
        assert!(
            log.contains(&SimEvent::Connected {
                session_present: true
            }),
            "{protocol:?}: resumed from the image: {log:?}"
        );
        ctl.expect(&topic("led/state"), |p| p.contains("on")).await;
        sim.kill().await;
        let _ = std::fs::remove_file(&image);
    }
}

/// Sleeping between readings: every wake boots a fresh client from the flash image,
/// publishes a reading at QoS 1, disconnects and flushes for sleep. Every reading reaches a
/// QoS 1 subscriber, and a command sent while the device sleeps is delivered at its next wake
/// (the broker kept the session: Clean Session 0, resumed from the image).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_between_readings_loses_no_reading_and_no_command() {
    let broker = broker();
    for protocol in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        sleep_cycles(&broker, protocol).await;
    }
}

/// Three wakes of [`sleeping_between_readings_loses_no_reading_and_no_command`].
async fn sleep_cycles(broker: &Broker, protocol: ProtocolVersion) {
    let id = format!("sim-sleep-{}", protocol.level());
    let topic = |suffix: &str| format!("devices/{id}/{suffix}");
    let image = std::env::temp_dir().join(format!(
        "device-sim-{}-sleep-{}.flash",
        std::process::id(),
        protocol.level()
    ));
    let _ = std::fs::remove_file(&image);
    let mut config = sim_config(broker, &id, protocol);
    config.flash_image = Some(image.clone());
    config.sleep_between = Some(Duration::from_secs(1));
    let mut ctl = Controller::connect(broker.addr(), &format!("ctl-{id}"), &topic("#")).await;

    let mut sim = DeviceSim::spawn(config).unwrap();
    let mut readings = Vec::new();
    for wake in 1..=3 {
        let log = sim_until(&mut sim, &format!("sleep {wake}"), |e| {
            matches!(e, SimEvent::Asleep { .. })
        })
        .await;
        assert_eq!(
            log.first(),
            Some(&SimEvent::Woke { wake }),
            "{protocol:?}: {log:?}"
        );
        assert!(
            log.contains(&SimEvent::Connected {
                session_present: wake > 1
            }),
            "{protocol:?}, wake {wake}: {log:?}"
        );
        let reading: Vec<_> = log
            .iter()
            .filter_map(|e| match e {
                SimEvent::Telemetry { json } => Some(json.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(reading.len(), 1, "one reading per wake: {log:?}");
        readings.extend(reading);
        match wake {
            1 => {
                // The device sleeps (1 s): the broker keeps the command in its session.
                ctl.send(&topic("led/set"), "on");
                ctl.poll_until("the command's PUBACK", |e| {
                    matches!(e, Event::Published { .. })
                })
                .await;
                assert!(
                    !*sim.connected().borrow(),
                    "asleep while the command went out"
                );
            }
            2 => {
                assert!(
                    log.contains(&SimEvent::CommandReceived {
                        payload: "on".into()
                    }) && log.contains(&SimEvent::Led {
                        on: true,
                        changed: true
                    }),
                    "the command sent while asleep, at the next wake: {log:?}"
                );
                ctl.saw(&topic("led/state"), "on").await;
            }
            _ => {}
        }
    }
    sim.kill().await;
    let distinct: std::collections::BTreeSet<_> = readings.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "readings tell the wakes apart: {readings:?}"
    );
    for json in &readings {
        ctl.saw(&topic("telemetry"), json).await;
    }
    let _ = std::fs::remove_file(&image);
}

/// How long a wake of the sleep-between-readings mode takes, from the boot from the flash
/// image to `flush_for_sleep` returning, over 20 wakes against the local mosquitto. Printed
/// (`--nocapture`), not asserted: it depends on the machine and the build profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_to_sleep_time() {
    const WAKES: u32 = 20;
    let broker = broker();
    let image = std::env::temp_dir().join(format!("device-sim-{}-wakes.flash", std::process::id()));
    let _ = std::fs::remove_file(&image);
    let mut config = sim_config(&broker, "sim-wakes", ProtocolVersion::V3_1_1);
    config.flash_image = Some(image.clone());
    config.sleep_between = Some(Duration::from_millis(50));
    let mut sim = DeviceSim::spawn(config).unwrap();
    let mut awake = Vec::new();
    // The first wake starts a new session on a new image; the others resume it.
    for wake in 0..=WAKES {
        let log = sim_until(&mut sim, "a sleep", |e| {
            matches!(e, SimEvent::Asleep { .. })
        })
        .await;
        assert!(
            !log.iter().any(|e| matches!(e, SimEvent::Error { .. })),
            "{log:?}"
        );
        if let (Some(SimEvent::Asleep { awake: time, .. }), true) = (log.last(), wake > 0) {
            awake.push(*time);
        }
    }
    sim.kill().await;
    let _ = std::fs::remove_file(&image);
    awake.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "wake to sleep over {} resumed wakes ({} build): median {:.1} ms, min {:.1}, max {:.1}",
        awake.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        ms(awake[awake.len() / 2]),
        ms(awake[0]),
        ms(awake[awake.len() - 1])
    );
}

/// Wrong credentials: the broker refuses, the device says why, and does not hammer the
/// broker with the same password (the session's reconnect policy stops on a refusal that
/// retrying cannot fix, and says so).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_reported_and_not_retried() {
    let broker = broker();
    let mut config = sim_config(&broker, "sim-badpw", ProtocolVersion::V3_1_1);
    config.password = Some("wrong".into());
    let mut sim = DeviceSim::spawn(config).unwrap();
    let mut reasons = Vec::new();
    let mut attempts = 0;
    within("refused, then stopped", async {
        while reasons.len() < 2 {
            match sim.next_event().await.expect("running") {
                SimEvent::Error { reason } => reasons.push(reason),
                SimEvent::Connecting { .. } => attempts += 1,
                SimEvent::Connected { .. } => panic!("connected with a wrong password"),
                _ => {}
            }
        }
    })
    .await;
    assert!(reasons[0].contains("refused"), "{reasons:?}");
    assert!(reasons[1].contains("not reconnecting"), "{reasons:?}");
    // No further attempt (the backoff's first step would be well within this).
    let quiet = tokio::time::timeout(Duration::from_millis(1500), async {
        loop {
            if let Some(SimEvent::Connecting { .. }) = sim.next_event().await {
                return;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "retried a refused password");
    assert_eq!(attempts, 1);
    assert!(!*sim.connected().borrow());
    within("kill", sim.kill()).await;
}

#[test]
fn invalid_settings_are_refused_up_front() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let mut config = SimConfig::new("127.0.0.1", 9);
    config.device_id = Some("no/slashes".into());
    assert!(DeviceSim::spawn(config).is_err());
    let mut config = SimConfig::new("127.0.0.1", 9);
    config.password = Some("x".repeat(600));
    config.username = Some("u".into());
    assert!(
        DeviceSim::spawn(config).is_err(),
        "CONNECT larger than the device's buffer"
    );
    let mut config = SimConfig::new("127.0.0.1", 9);
    config.sleep_between = Some(Duration::from_secs(1));
    assert!(
        matches!(
            DeviceSim::spawn(config),
            Err(ConfigError::SleepNeedsFlashImage)
        ),
        "sleeping without a flash image"
    );
}
