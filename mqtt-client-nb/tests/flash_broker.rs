//! The flash journal against a real mosquitto: a device (an nb client whose session lives in
//! a `FlashJournal` on a RAM flash) publishes QoS 1 and QoS 2 messages and is killed (the
//! client dropped, no DISCONNECT, the socket closed) at several points: before it ever
//! connected, right after publishing, and after polling for a few milliseconds (messages
//! in flight, QoS 2 handshakes half done). Each restart comes from the same flash. A
//! subscriber connected throughout must see every accepted message, QoS 2 exactly once.
//! Also `flush_for_sleep`, with and without a journal.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use mqtt_client_nb::flash::FlashJournal;
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
use mqtt_client_nb::{Client, Clock as _, Journal, Options};
use mqtt_test_support::Broker;
use support::flash::MockFlash;
use support::{poll_for, poll_until, tcp, Ev, Tcp, TokioClock};
use tokio::sync::mpsc;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
/// Four 4 KiB pages, as a small flash partition would give.
const RANGE: Range<u32> = 0..4 * 4096;
const TOPIC: &str = "flash/device/telemetry";

/// What survives a reset: the flash. The RAM buffers are made anew for every life.
struct Device {
    flash: MockFlash,
    version: ProtocolVersion,
    id: String,
}

/// One life's RAM.
struct Ram {
    journal: Vec<u8>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    store: Vec<u8>,
}

impl Ram {
    fn new() -> Self {
        Self {
            journal: vec![0; 512],
            rx: vec![0; 1024],
            tx: vec![0; 1024],
            store: vec![0; 8192],
        }
    }
}

type FlashClient<'b> = Client<'b, Tcp, FlashJournal<'b, &'b mut MockFlash>>;

impl Device {
    /// Boots: the client and the session it restores from the flash.
    async fn boot<'b>(&'b mut self, ram: &'b mut Ram) -> FlashClient<'b> {
        let journal = FlashJournal::new(&mut self.flash, RANGE, &mut ram.journal).unwrap();
        let mut options = Options::new(self.version);
        options.client_id = Some(&self.id);
        Client::with_journal(options, &mut ram.rx, &mut ram.tx, &mut ram.store, journal)
            .await
            .unwrap()
    }
}

async fn connect<J: Journal>(
    client: &mut Client<'_, Tcp, J>,
    clock: &TokioClock,
    addr: SocketAddr,
) {
    client.connect(tcp(addr).await).unwrap();
    let seen = poll_until(client, clock, 5, |e| {
        matches!(e, Ev::Connected { .. } | Ev::Error(_))
    })
    .await;
    assert!(
        matches!(seen.last(), Some(Ev::Connected { .. })),
        "{seen:?}"
    );
}

/// A subscriber on its own task, connected throughout: every payload it receives, in order.
async fn subscriber(
    version: ProtocolVersion,
    addr: SocketAddr,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<(Vec<u8>, QoS)>,
) {
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let clock = TokioClock::new();
        let mut ram = Ram::new();
        let mut options = Options::new(version);
        options.client_id = Some("flash-subscriber");
        let mut client: Client<'_, Tcp> =
            Client::new(options, &mut ram.rx, &mut ram.tx, &mut ram.store).unwrap();
        connect(&mut client, &clock, addr).await;
        client.subscribe("flash/#", QoS::ExactlyOnce).unwrap();
        poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Subscribed { .. })
        })
        .await;
        ready_tx.send(()).unwrap();
        loop {
            match support::copy(&client.poll(&clock).await) {
                Ev::Message { payload, qos, .. } => {
                    // The test is over once nobody listens.
                    let _ = tx.send((payload, qos));
                }
                Ev::Error(e) => panic!("subscriber: {e:?}"),
                _ => {}
            }
        }
    });
    ready_rx.await.unwrap();
    (task, rx)
}

/// How a life ends.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Publishes while never connected, then dies.
    Offline,
    /// Connects, publishes, polls this long, then dies.
    After(u64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_arrives_across_kills_qos2_once() {
    let broker = Broker::start().expect("mosquitto");
    for version in BOTH {
        let clock = TokioClock::new();
        let (task, mut received) = subscriber(version, broker.addr()).await;
        let mut device = Device {
            flash: MockFlash::new(4),
            version,
            id: format!("flash-device-{version:?}"),
        };
        let mut accepted: BTreeMap<Vec<u8>, QoS> = BTreeMap::new();
        let lives = [
            Kill::Offline,
            Kill::After(0),
            Kill::After(2),
            Kill::After(5),
            Kill::After(20),
            Kill::After(100),
        ];
        for (life, kill) in lives.into_iter().enumerate() {
            let mut ram = Ram::new();
            let mut client = device.boot(&mut ram).await;
            if let Kill::After(_) = kill {
                connect(&mut client, &clock, broker.addr()).await;
            }
            for i in 0..10 {
                let qos = if i % 2 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                let payload = format!("{version:?} life {life} message {i:02} {:>40}", "");
                client
                    .publish(TOPIC, qos, false, payload.as_bytes())
                    .unwrap();
                // Accepted: its record is in flash.
                client.persist().await.unwrap();
                accepted.insert(payload.into_bytes(), qos);
            }
            if let Kill::After(ms) = kill {
                poll_for(&mut client, &clock, ms).await;
            }
            // Killed: no DISCONNECT; the socket goes with the client.
            drop(client);
        }
        // The last life stays up until everything arrived.
        let mut ram = Ram::new();
        let mut client = device.boot(&mut ram).await;
        connect(&mut client, &clock, broker.addr()).await;
        let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while accepted.keys().any(|m| !counts.contains_key(m)) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{version:?}: missing {:?}",
                accepted
                    .keys()
                    .filter(|m| !counts.contains_key(*m))
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect::<Vec<_>>()
            );
            tokio::select! {
                _ = client.poll(&clock) => {}
                got = received.recv() => {
                    let (payload, _) = got.unwrap();
                    *counts.entry(payload).or_default() += 1;
                }
            }
        }
        // Late duplicates, if any, arrive within a moment.
        poll_for(&mut client, &clock, 300).await;
        while let Ok((payload, _)) = received.try_recv() {
            *counts.entry(payload).or_default() += 1;
        }
        for (payload, n) in &counts {
            let text = String::from_utf8_lossy(payload);
            let qos = accepted
                .get(payload)
                .unwrap_or_else(|| panic!("invented {text}"));
            if *qos == QoS::ExactlyOnce {
                assert_eq!(*n, 1, "{version:?}: QoS 2 {text} arrived {n} times");
            }
        }
        let dups = counts.values().filter(|&&n| n > 1).count();
        println!(
            "{version:?}: {} messages accepted over {} kills, all arrived; {dups} QoS 1 duplicates",
            accepted.len(),
            lives.len()
        );
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_for_sleep_with_a_journal_stores_and_the_next_boot_delivers() {
    let broker = Broker::start().expect("mosquitto");
    let version = ProtocolVersion::V5;
    let clock = TokioClock::new();
    let (task, mut received) = subscriber(version, broker.addr()).await;
    let mut device = Device {
        flash: MockFlash::new(4),
        version,
        id: "flash-sleeper".into(),
    };
    {
        let mut ram = Ram::new();
        let mut client = device.boot(&mut ram).await;
        connect(&mut client, &clock, broker.addr()).await;
        for i in 0..5 {
            let payload = format!("sleep {i}");
            client
                .publish(TOPIC, QoS::ExactlyOnce, false, payload.as_bytes())
                .unwrap();
        }
        // Nothing polled since: the records are in RAM only until this returns.
        let wake = client.flush_for_sleep(&clock).await.unwrap();
        let now = clock.now_ms();
        // The keep alive (120 s) is the next thing the session needs.
        let wake = wake.expect("a keep alive deadline");
        assert!(
            wake > now && wake <= now + 120_000,
            "wake at {wake}, now {now}"
        );
        // Deep sleep: RAM is gone.
    }
    let mut ram = Ram::new();
    let mut client = device.boot(&mut ram).await;
    connect(&mut client, &clock, broker.addr()).await;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "got only {got:?}");
        tokio::select! {
            _ = client.poll(&clock) => {}
            m = received.recv() => got.push(String::from_utf8(m.unwrap().0).unwrap()),
        }
    }
    got.sort();
    assert_eq!(got, ["sleep 0", "sleep 1", "sleep 2", "sleep 3", "sleep 4"]);
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_for_sleep_without_a_journal_waits_for_every_acknowledgement() {
    let broker = Broker::start().expect("mosquitto");
    for version in BOTH {
        let clock = TokioClock::new();
        let mut ram = Ram::new();
        let mut options = Options::new(version);
        options.client_id = Some("ram-sleeper");
        let mut client: Client<'_, Tcp> =
            Client::new(options, &mut ram.rx, &mut ram.tx, &mut ram.store).unwrap();
        connect(&mut client, &clock, broker.addr()).await;
        for i in 0..6 {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            client.publish(TOPIC, qos, false, b"x").unwrap();
        }
        let wake = tokio::time::timeout(Duration::from_secs(5), client.flush_for_sleep(&clock))
            .await
            .expect("flush_for_sleep in time")
            .unwrap();
        assert!(wake.is_some(), "{version:?}: the keep alive is due next");
        assert_eq!(client.session().inflight(), 0, "{version:?}");
        // Nothing left to send: polling finds nothing to do but wait.
        let seen = poll_for(&mut client, &clock, 100).await;
        assert!(seen.is_empty(), "{version:?}: {seen:?}");
    }
}
