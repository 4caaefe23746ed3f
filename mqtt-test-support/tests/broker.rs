//! The mosquitto launcher: plain TCP, credentials, persistence across kill/stop + restart.

mod common;

use std::time::Duration;

use common::{connect_packet, tcp, TIMEOUT};
use mqtt_sansio::{QoS, ReasonCode};
use mqtt_test_support::Broker;

#[tokio::test]
async fn starts_on_a_loopback_port_and_answers_connect_with_connack() {
    let broker = Broker::start().expect("start mosquitto");
    assert_ne!(broker.port(), 1883);
    assert_eq!(broker.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
    assert!(broker.is_running());
    assert_eq!((broker.tls_port(), broker.ws_port()), (None, None));

    let mut conn = tcp(broker.addr()).await;
    let (session_present, code) = conn.connect(connect_packet("plain")).await.unwrap();
    assert_eq!((session_present, code), (false, ReasonCode::Success));
    conn.disconnect().await.unwrap();

    broker
        .wait_for_log("Client plain disconnected", TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(broker.log().contains("New client connected"));
}

#[tokio::test]
async fn two_brokers_get_distinct_ports_and_drop_kills_the_process() {
    let a = Broker::start().unwrap();
    let b = Broker::start().unwrap();
    assert_ne!(a.port(), b.port());
    let pid = a.pid().unwrap();
    let dir = a.dir().to_path_buf();
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "mosquitto {pid} survived drop"
    );
    assert!(!dir.exists(), "temp dir {dir:?} survived drop");
    assert!(b.is_running());
}

#[tokio::test]
async fn credentials_are_accepted_and_wrong_or_missing_ones_refused() {
    let broker = Broker::builder()
        .credentials("alice", "s3cret")
        .start()
        .unwrap();
    assert_eq!(broker.credentials(), Some(("alice", "s3cret")));

    let mut good = connect_packet("good");
    good.username = Some("alice");
    good.password = Some(b"s3cret");
    let (_, code) = tcp(broker.addr()).await.connect(good).await.unwrap();
    assert_eq!(code, ReasonCode::Success);

    // mosquitto 2.0 answers both refusals with 3.1.1 return code 5 (not authorized); other
    // brokers and versions may say 4 (bad user name or password) for a wrong password.
    let refused = [ReasonCode::NotAuthorized, ReasonCode::BadUserNameOrPassword];
    let mut bad = connect_packet("bad");
    bad.username = Some("alice");
    bad.password = Some(b"wrong");
    let (_, code) = tcp(broker.addr()).await.connect(bad).await.unwrap();
    assert!(refused.contains(&code), "wrong password got {code:?}");

    // Anonymous is off.
    let (_, code) = tcp(broker.addr())
        .await
        .connect(connect_packet("anon"))
        .await
        .unwrap();
    assert!(refused.contains(&code), "anonymous got {code:?}");
}

/// Queues a QoS 1 message for the offline persistent session `sub`: subscribe with clean
/// session 0, disconnect, publish from another client.
async fn queue_for_offline_subscriber(broker: &Broker, topic: &str) {
    let mut sub = tcp(broker.addr()).await;
    let mut connect = connect_packet("sub");
    connect.clean_start = false;
    sub.connect(connect).await.unwrap();
    sub.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    sub.disconnect().await.unwrap();
    broker
        .wait_for_log("Client sub disconnected", TIMEOUT)
        .unwrap();

    let mut publisher = tcp(broker.addr()).await;
    publisher.connect(connect_packet("pub")).await.unwrap();
    publisher.publish_qos1(topic, b"survives").await.unwrap();
    publisher.disconnect().await.unwrap();
}

/// Reconnects `sub` and returns what it is sent within `wait`.
async fn resume_subscriber(
    broker: &Broker,
    wait: Duration,
) -> (bool, std::io::Result<(String, Vec<u8>)>) {
    let mut sub = tcp(broker.addr()).await;
    let mut connect = connect_packet("sub");
    connect.clean_start = false;
    let (session_present, code) = sub.connect(connect).await.unwrap();
    assert_eq!(code, ReasonCode::Success);
    (session_present, sub.expect_publish(wait).await)
}

#[tokio::test]
async fn queued_qos1_message_survives_save_kill_and_restart() {
    let broker = Broker::builder().persistence(true).start().unwrap();
    let port = broker.port();
    queue_for_offline_subscriber(&broker, "t/crash").await;

    broker.save().unwrap_or_else(|e| panic!("{e}"));
    let old_pid = broker.pid().unwrap();
    broker.kill().unwrap();
    assert!(!broker.is_running());
    broker.restart().unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(broker.pid().unwrap(), old_pid);
    assert_eq!(broker.port(), port, "restart must reuse the port");

    let (session_present, message) = resume_subscriber(&broker, TIMEOUT).await;
    assert!(session_present, "session lost:\n{}", broker.log());
    let (topic, payload) = message.unwrap_or_else(|e| panic!("{e}\n{}", broker.log()));
    assert_eq!(
        (topic.as_str(), payload.as_slice()),
        ("t/crash", &b"survives"[..])
    );
}

#[tokio::test]
async fn queued_qos1_message_survives_stop_and_restart() {
    let broker = Broker::builder().persistence(true).start().unwrap();
    queue_for_offline_subscriber(&broker, "t/clean").await;

    broker.stop().unwrap();
    assert!(!broker.is_running());
    // A client connecting now is refused: the broker is really gone.
    assert!(tokio::net::TcpStream::connect(broker.addr()).await.is_err());
    broker.restart().unwrap();

    let (session_present, message) = resume_subscriber(&broker, TIMEOUT).await;
    assert!(session_present);
    assert_eq!(message.unwrap().1, b"survives");
}

#[tokio::test]
async fn without_persistence_a_restart_loses_the_session() {
    let broker = Broker::start().unwrap();
    queue_for_offline_subscriber(&broker, "t/lost").await;
    broker.kill().unwrap();
    broker.restart().unwrap();

    let (session_present, message) = resume_subscriber(&broker, Duration::from_millis(300)).await;
    assert!(!session_present);
    assert_eq!(
        message.unwrap_err().kind(),
        std::io::ErrorKind::TimedOut,
        "nothing may arrive"
    );
    assert!(matches!(
        broker.save(),
        Err(mqtt_test_support::BrokerError::Usage(_))
    ));
}

#[test]
fn a_bad_config_line_fails_with_the_log() {
    let err = Broker::builder()
        .config_line("no_such_directive 1")
        .start_timeout(Duration::from_secs(5))
        .start()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("did not start"), "{msg}");
    assert!(msg.contains("no_such_directive"), "{msg}");
}

#[test]
fn limits_reach_the_config() {
    let broker = Broker::builder()
        .max_inflight_messages(2)
        .max_queued_messages(5)
        .max_packet_size(1024)
        .queue_qos0_messages(true)
        .start()
        .unwrap();
    let config = std::fs::read_to_string(broker.dir().join("mosquitto.conf")).unwrap();
    for line in [
        "max_inflight_messages 2",
        "max_queued_messages 5",
        "max_packet_size 1024",
        "queue_qos0_messages true",
    ] {
        assert!(config.contains(line), "{line} missing from\n{config}");
    }
}
