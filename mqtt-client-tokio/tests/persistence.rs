//! The session kept in a directory (`Options::persistence`), against a real mosquitto: a
//! client that crashes with messages stored, queued or half-way through their handshakes is
//! followed by one on the same directory, and every stored message arrives, QoS 2 exactly
//! once. A crash is a runtime dropped mid-flight: no task runs to its end, nothing is
//! flushed, the directory's lock goes with the process's file. (The `mqtt` CLI's tests kill
//! a real process with SIGKILL.)

use std::path::Path;
use std::time::Duration;

use mqtt_client_tokio::{Client, Error, Options, Persistence, ProtocolVersion, QoS, SyncPolicy};
use mqtt_test_support::reliability::{payload, RefClient, RefConfig};
use mqtt_test_support::Broker;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const WAIT: Duration = Duration::from_secs(20);
const TOPIC: &str = "persist/t";

fn options(url: &str, version: ProtocolVersion, dir: &Path, sync: SyncPolicy) -> Options {
    let mut o = Options::new(url).unwrap();
    o.protocol.version = version;
    o.protocol.clean_start = false;
    o.protocol.session_expiry_interval = Some(3600);
    o.policy.backoff_min = Duration::from_millis(50);
    o.policy.backoff_max = Duration::from_millis(200);
    o.persistence = Some(Persistence::new(dir).sync(sync));
    o
}

/// Publishes `n` QoS 1 and `n` QoS 2 messages on a runtime of its own, waits until each is
/// stored, then drops the runtime: the crash.
fn publish_then_crash(o: Options, first: u32, n: u32) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handles = rt.block_on(async {
            let (client, events) = reopen(o).await;
            let mut deliveries = Vec::new();
            for seq in first..first + n {
                for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
                    let message =
                        mqtt_client_tokio::Message::new(TOPIC, payload(1, qos, seq, 16), qos);
                    deliveries.push(client.publish_queued(message).await.unwrap());
                }
            }
            for d in &mut deliveries {
                tokio::time::timeout(WAIT, d.stored())
                    .await
                    .unwrap()
                    .unwrap();
            }
            // Crash with some gone out and some acknowledgements back, some not.
            tokio::time::sleep(Duration::from_millis(2)).await;
            (client, events)
        });
        // Every task is dropped where it stands; then the handles go, as with the process.
        rt.shutdown_background();
        drop(handles);
    })
    .join()
    .unwrap();
}

/// Waits until the subscriber has every message `0..sent` of both QoS, then checks the
/// guarantees.
async fn expect_all(sub: &RefClient, sent: u32) {
    let stats = sub
        .wait_for(WAIT, |s| {
            s.tally.distinct(1, QoS::AtLeastOnce) >= sent as usize
                && s.tally.distinct(1, QoS::ExactlyOnce) >= sent as usize
        })
        .await;
    // Duplicates of QoS 2 would arrive right behind: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stats = match stats {
        Ok(_) => sub.stats(),
        Err(s) => s,
    };
    for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let v = stats.tally.verdict(1, qos, sent);
        assert!(v.holds(), "{v} ({:?})", stats.problems);
    }
}

fn subscriber(broker: &Broker, version: ProtocolVersion, id: &str) -> RefClient {
    let sub = RefClient::start(RefConfig::new(broker.addr(), version, id));
    sub.subscribe(TOPIC, QoS::ExactlyOnce);
    sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_messages_survive_crashes_offline_and_mid_flight() {
    for version in VERSIONS {
        let broker = Broker::start().unwrap();
        let dir = tempdir("crash");
        let sub = subscriber(&broker, version, "persist-sub");
        sub.wait_for(WAIT, |s| s.subscribed > 0).await.unwrap();
        // 1. Offline: the broker is not reachable; everything is stored, nothing sent.
        let dead = format!("mqtt://127.0.0.1:{}", free_port());
        publish_then_crash(options(&dead, version, &dir, SyncPolicy::Always), 0, 30);
        // 2. Mid-flight: connected, the crash comes while handshakes are open.
        let o = options(
            &broker.url(),
            version,
            &dir,
            SyncPolicy::Periodic(Duration::from_millis(20)),
        );
        publish_then_crash(o, 30, 200);
        // 3. A client on the same directory, straight to the broker, delivers all of it.
        let (client, _events) =
            reopen(options(&broker.url(), version, &dir, SyncPolicy::Never)).await;
        expect_all(&sub, 230).await;
        client.disconnect().await.unwrap();
        drop(sub);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_on_the_directory_is_refused() {
    let broker = Broker::start().unwrap();
    let dir = tempdir("lock");
    let o = options(&broker.url(), ProtocolVersion::V5, &dir, SyncPolicy::Always);
    let (first, _e) = Client::new(o.clone()).unwrap();
    match Client::new(o.clone()) {
        Err(Error::Persistence(e)) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
        other => panic!("second client: {other:?}"),
    }
    // Once the first stops, the directory is free.
    first.disconnect().await.unwrap();
    let (second, _e) = Client::new(o).unwrap();
    second.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_and_another_client_id_are_handled() {
    let broker = Broker::start().unwrap();
    let dir = tempdir("torn");
    let version = ProtocolVersion::V3_1_1;
    let dead = format!("mqtt://127.0.0.1:{}", free_port());
    publish_then_crash(options(&dead, version, &dir, SyncPolicy::Always), 0, 5);
    // A write cut in the middle of a record, then garbage.
    let mut bytes = std::fs::read(dir.join("journal")).unwrap();
    bytes.extend_from_slice(&[0x40, 1, 2, 3]);
    std::fs::write(dir.join("journal"), &bytes).unwrap();
    // The directory belongs to the client identifier it made up.
    let mut other = options(&broker.url(), version, &dir, SyncPolicy::Always);
    other.protocol.client_id = "someone-else".into();
    let refused = loop {
        match Client::new(other.clone()) {
            // The crashed runtime's threads still hold the lock (see `reopen`).
            Err(Error::Persistence(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    assert!(
        matches!(refused, Err(Error::InvalidOptions(_))),
        "{refused:?}"
    );
    let sub = subscriber(&broker, version, "torn-sub");
    sub.wait_for(WAIT, |s| s.subscribed > 0).await.unwrap();
    let (client, _e) = reopen(options(&broker.url(), version, &dir, SyncPolicy::Always)).await;
    expect_all(&sub, 5).await;
    client.disconnect().await.unwrap();
}

/// A client on a directory a crashed one used: the crashed runtime's worker threads drop its
/// tasks (and with them the directory's lock) in the background, where a process's death
/// would have done it at once.
async fn reopen(o: Options) -> (Client, mqtt_client_tokio::Events) {
    for _ in 0..100 {
        match Client::new(o.clone()) {
            Err(Error::Persistence(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other.unwrap(),
        }
    }
    panic!("the crashed client's lock was never released");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mqtt-persist-{name}-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fastrand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
