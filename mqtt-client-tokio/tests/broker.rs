//! The client against a real mosquitto (started per test by `mqtt-test-support` on free
//! loopback ports). Every wait is bounded.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::time::Duration;

use bytes::Bytes;
use mqtt_client_tokio::{
    Client, DisconnectOptions, Error, Event, Events, Message, Notice, Options, Properties,
    ProtocolVersion, QoS, QueueFull, ReasonCode, Subscription, SubscriptionOptions, Will,
};
use mqtt_test_support::{Broker, Direction, FaultMode, FaultProxy, TlsMaterial};
use tokio::time::timeout;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
/// Bound of any single wait for something that should happen.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that should not happen.
const QUIET: Duration = Duration::from_millis(400);

/// Client logs on stderr when `MQTT_TEST_LOG` is set (`debug`, `trace`, ...).
fn init_log() {
    if let Ok(level) = std::env::var("MQTT_TEST_LOG") {
        let level = level.parse().unwrap_or(tracing::Level::DEBUG);
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_test_writer()
            .try_init();
    }
}

fn options(url: &str, version: ProtocolVersion) -> Options {
    init_log();
    let mut o = Options::new(url).expect("valid url");
    o.protocol.version = version;
    o.policy.backoff_min = Duration::from_millis(50);
    o.policy.backoff_max = Duration::from_millis(400);
    o.policy.connect_timeout = Duration::from_secs(5);
    o
}

fn named(url: &str, version: ProtocolVersion, id: &str) -> Options {
    let mut o = options(url, version);
    o.protocol.client_id = id.to_string();
    o
}

async fn connect(o: Options) -> (Client, Events) {
    timeout(WAIT, Client::connect(o))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

async fn recv(sub: &mut Subscription) -> Message {
    timeout(WAIT, sub.recv())
        .await
        .expect("no message in time")
        .expect("subscription ended")
}

/// Asserts that no message arrives for a while.
async fn quiet(sub: &mut Subscription) {
    if let Ok(Some(m)) = timeout(QUIET, sub.recv()).await {
        panic!("unexpected message on {}: {:?}", m.topic, m.payload);
    }
}

/// Waits for the first event that `pick` accepts.
async fn event<T>(events: &mut Events, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("expected event did not come")
            .expect("event stream ended");
        if let Some(t) = pick(e) {
            return t;
        }
    }
}

/// Waits for a connection whose broker has no session for us.
async fn connected_without_session(events: &mut Events) {
    event(events, |e| match e {
        Event::Connected {
            session_present: false,
            ..
        } => Some(()),
        _ => None,
    })
    .await;
}

fn credentials(url: &str, v: ProtocolVersion, password: &'static str) -> Options {
    let mut o = options(url, v);
    o.protocol.username = Some("alice".into());
    o.protocol.password = Some(Bytes::from_static(password.as_bytes()));
    o
}

/// A loopback port nothing listens on.
fn dead_url() -> String {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("mqtt://127.0.0.1:{port}")
}

fn payloads() -> Vec<Bytes> {
    let mut big = vec![0u8; 200_000];
    let mut x = 0x1234_5678u32;
    for b in &mut big {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    vec![
        Bytes::new(),
        Bytes::from_static(b"hello"),
        Bytes::from((0..=255u8).collect::<Vec<_>>()),
        Bytes::from(big),
    ]
}

/// `from` publishes every payload at every QoS under `prefix`; `to` must get each intact.
async fn exchange(from: &Client, to: &mut Subscription, prefix: &str, v5: bool) {
    let mut expected = HashMap::new();
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        for (i, payload) in payloads().into_iter().enumerate() {
            let topic = format!("{prefix}/{}/{i}", qos as u8);
            let code = from
                .publish(topic.clone(), qos, false, payload.clone())
                .await
                .expect("publish");
            assert_eq!(code, ReasonCode::Success, "{topic} (v5: {v5})");
            expected.insert(topic, (payload, qos));
        }
    }
    while !expected.is_empty() {
        let m = recv(to).await;
        let (payload, qos) = expected
            .remove(&m.topic)
            .unwrap_or_else(|| panic!("unexpected or duplicate {}", m.topic));
        assert_eq!(m.payload, payload, "payload of {}", m.topic);
        assert_eq!(m.qos, qos, "qos of {}", m.topic);
        assert!(!m.retain);
    }
    quiet(to).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_both_directions_keep_payloads_intact() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (a, _) = connect(options(&broker.url(), v)).await;
        let (b, _) = connect(options(&broker.url(), v)).await;
        let mut to_b = b.subscribe("ab/#", QoS::ExactlyOnce).await.unwrap();
        let mut to_a = a.subscribe("ba/#", QoS::ExactlyOnce).await.unwrap();
        assert_eq!(to_b.reason_codes(), &[ReasonCode::GrantedQoS2]);
        exchange(&a, &mut to_b, "ab", v.is_v5()).await;
        exchange(&b, &mut to_a, "ba", v.is_v5()).await;
        a.disconnect().await.unwrap();
        b.disconnect().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_reaches_a_later_subscriber() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (a, _) = connect(options(&broker.url(), v)).await;
        a.publish("ret/t", QoS::AtLeastOnce, true, "kept")
            .await
            .unwrap();
        let (b, _) = connect(options(&broker.url(), v)).await;
        let mut sub = b.subscribe("ret/#", QoS::AtLeastOnce).await.unwrap();
        let m = recv(&mut sub).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..], m.retain),
            ("ret/t", &b"kept"[..], true)
        );
        // A live message is not flagged retained.
        a.publish("ret/t", QoS::AtLeastOnce, false, "live")
            .await
            .unwrap();
        let m = recv(&mut sub).await;
        assert_eq!((&m.payload[..], m.retain), (&b"live"[..], false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_is_published_on_abrupt_disconnect_only() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (watcher, _) = connect(options(&broker.url(), v)).await;
        let mut wills = watcher.subscribe("will/#", QoS::AtLeastOnce).await.unwrap();
        let with_will = |id: &str, url: &str| {
            let mut o = named(url, v, id);
            o.protocol.will = Some(Will::new(
                format!("will/{id}"),
                "gone",
                QoS::AtLeastOnce,
                false,
            ));
            o
        };

        // The network drops the connection: the broker publishes the will.
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let (abrupt, _) = connect(with_will("abrupt", &proxy.url())).await;
        proxy.cut_all();
        let m = recv(&mut wills).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            ("will/abrupt", &b"gone"[..])
        );
        drop(abrupt);

        // A graceful DISCONNECT discards it.
        let (graceful, _) = connect(with_will("graceful", &broker.url())).await;
        graceful.disconnect().await.unwrap();
        quiet(&mut wills).await;

        // Dropping every handle disconnects gracefully too.
        let (dropped, _) = connect(with_will("dropped", &broker.url())).await;
        drop(dropped);
        quiet(&mut wills).await;

        // Asking for the will: reason 0x04 on 5.0, a close without DISCONNECT on 3.1.1.
        let (asks, _) = connect(with_will("asks", &broker.url())).await;
        let keep = DisconnectOptions {
            publish_will: true,
            ..DisconnectOptions::default()
        };
        asks.disconnect_with(keep).await.unwrap();
        assert_eq!(recv(&mut wills).await.topic, "will/asks");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_ends_the_stream_and_the_flow() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (c, mut events) = connect(options(&broker.url(), v)).await;
        let mut sub = c.subscribe("u/t", QoS::AtLeastOnce).await.unwrap();
        c.publish("u/t", QoS::AtLeastOnce, false, "1")
            .await
            .unwrap();
        assert_eq!(&recv(&mut sub).await.payload[..], b"1");
        assert_eq!(c.unsubscribe("u/t").await.unwrap(), ReasonCode::Success);
        assert!(
            timeout(WAIT, sub.recv()).await.unwrap().is_none(),
            "stream ended"
        );
        while let Ok(Some(_)) = timeout(Duration::from_millis(50), events.recv()).await {}
        c.publish("u/t", QoS::AtLeastOnce, false, "2")
            .await
            .unwrap();
        let late = timeout(
            QUIET,
            event(&mut events, |e| match e {
                Event::Message(m) => Some(m),
                _ => None,
            }),
        )
        .await;
        assert!(late.is_err(), "no message after unsubscribing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_accepted_and_refused_and_refusal_stops_reconnecting() {
    let broker = Broker::builder()
        .credentials("alice", "wonder")
        .start()
        .unwrap();
    for v in VERSIONS {
        let (c, _) = connect(credentials(&broker.url(), v, "wonder")).await;
        c.publish("x", QoS::AtLeastOnce, false, "in").await.unwrap();

        // Credentials in the URL work too.
        let url = broker.url().replace("mqtt://", "mqtt://alice:wonder@");
        connect(options(&url, v)).await;

        let bad = credentials(&broker.url(), v, "wrong");
        let err = timeout(WAIT, Client::connect(bad))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, Error::ConnectionRefused(ReasonCode::NotAuthorized)),
            "{err}"
        );
        assert!(err.is_fatal());

        // In the background with reconnect on: one attempt, then a stop with the reason.
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let (client, mut events) = Client::new(credentials(&proxy.url(), v, "wrong")).unwrap();
        let refused = event(&mut events, |e| match e {
            Event::Error(Error::ConnectionRefused(code)) => Some(code),
            _ => None,
        })
        .await;
        assert_eq!(refused, ReasonCode::NotAuthorized);
        assert!(
            timeout(WAIT, async { while events.recv().await.is_some() {} })
                .await
                .is_ok()
        );
        let err = client
            .publish("x", QoS::AtMostOnce, false, "no")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ConnectionRefused(_)), "{err}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(proxy.stats().accepted, 1, "no retry after a fatal refusal");
    }
}

/// An empty client identifier with a session that outlives the connection: 3.1 and 3.1.1
/// brokers refuse it (mosquitto: Identifier Rejected), so the client makes one up; a 5.0
/// broker assigns one and says which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_client_identifier_connects_on_every_version() {
    let broker = Broker::start().unwrap();
    for v in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        let mut o = persistent(&broker.url(), v, "");
        o.protocol.client_id.clear();
        let (c, mut events) = connect(o).await;
        let assigned = event(&mut events, |e| match e {
            Event::Connected { connack, .. } => Some(connack.assigned_client_identifier),
            _ => None,
        })
        .await;
        assert_eq!(assigned.is_some(), v.is_v5(), "{v}: {assigned:?}");
        loopback(&c, &format!("empty-id/{v}")).await;
        c.disconnect().await.unwrap();
    }
}

/// Subscribes, publishes one QoS 1 message to itself and checks it arrives.
async fn loopback(c: &Client, topic: &str) {
    let mut sub = c.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    c.publish(topic, QoS::AtLeastOnce, false, "ping")
        .await
        .unwrap();
    assert_eq!(&recv(&mut sub).await.payload[..], b"ping");
}

fn tls_options(url: &str, v: ProtocolVersion, ca: &TlsMaterial) -> Options {
    let mut o = options(url, v);
    o.transport.tls.ca_pem = Some(ca.ca_pem().as_bytes().to_vec());
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verifies_the_server_and_refuses_an_untrusted_one() {
    let broker = Broker::builder().tls().start().unwrap();
    let url = broker.tls_url().unwrap();
    let material = broker.tls().unwrap();
    for v in VERSIONS {
        let (c, _) = connect(tls_options(&url, v, material)).await;
        loopback(&c, "tls/t").await;

        // SNI and verification against another name the certificate holds.
        let mut named = tls_options(&url, v, material);
        named.transport.tls.server_name = Some(TlsMaterial::SERVER_NAME.into());
        named.transport.tls.alpn = vec![b"mqtt".to_vec()];
        connect(named).await;

        let stranger = TlsMaterial::generate().unwrap();
        let mut untrusted = tls_options(&url, v, &stranger);
        untrusted.policy.reconnect = false;
        let err = timeout(WAIT, Client::connect(untrusted))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, Error::Io(_)), "{err}");
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let broker = Broker::builder().mutual_tls().start().unwrap();
    let url = broker.tls_url().unwrap();
    let material = broker.tls().unwrap();
    for v in VERSIONS {
        let mut o = tls_options(&url, v, material);
        o.transport.tls.client_cert_pem = Some(material.client_cert_pem().as_bytes().to_vec());
        o.transport.tls.client_key_pem = Some(material.client_key_pem().as_bytes().to_vec());
        let (c, _) = connect(o).await;
        loopback(&c, "mtls/t").await;

        let without = tls_options(&url, v, material);
        let result = timeout(WAIT, Client::connect(without)).await.unwrap();
        assert!(result.is_err(), "connected without a client certificate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_carry_mqtt() {
    let broker = Broker::builder().websockets().start().unwrap();
    let url = broker.ws_url().unwrap();
    for v in VERSIONS {
        let (c, _) = connect(options(&url, v)).await;
        let (plain, _) = connect(options(&broker.url(), v)).await;
        let mut sub = c.subscribe("ws/#", QoS::ExactlyOnce).await.unwrap();
        exchange(&plain, &mut sub, "ws", v.is_v5()).await;
        loopback(&c, "ws/self").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_over_tls_carry_mqtt_and_verify_the_broker() {
    let broker = Broker::builder().tls().websockets().start().unwrap();
    let url = broker.wss_url().expect("a wss listener");
    let material = broker.tls().unwrap();
    for v in VERSIONS {
        let (c, _) = connect(tls_options(&url, v, material)).await;
        let (plain, _) = connect(options(&broker.url(), v)).await;
        let mut sub = c.subscribe("wss/#", QoS::ExactlyOnce).await.unwrap();
        exchange(&plain, &mut sub, "wss", v.is_v5()).await;
        loopback(&c, "wss/self").await;

        let stranger = TlsMaterial::generate().unwrap();
        let mut untrusted = tls_options(&url, v, &stranger);
        untrusted.policy.reconnect = false;
        let err = timeout(WAIT, Client::connect(untrusted))
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    }
}

/// Publisher and subscriber with sessions that outlive connections.
fn persistent(url: &str, v: ProtocolVersion, id: &str) -> Options {
    let mut o = named(url, v, id);
    o.protocol.clean_start = false;
    o.protocol.session_expiry_interval = Some(300);
    o.protocol.receive_maximum = 32;
    o
}

/// Collects messages until every id in `0..count` arrived; asserts no QoS 2 duplicate.
async fn collect_ids(sub: &mut Subscription, count: usize) {
    let mut seen = vec![0u32; count];
    while seen.contains(&0) {
        let Ok(Some(m)) = timeout(WAIT, sub.recv()).await else {
            let missing: Vec<usize> = (0..count).filter(|&i| seen[i] == 0).collect();
            panic!("messages never arrived: {missing:?}");
        };
        let id: usize = m.payload_str().unwrap().parse().unwrap();
        seen[id] += 1;
        if m.qos == QoS::ExactlyOnce {
            assert_eq!(seen[id], 1, "QoS 2 message {id} delivered twice");
        }
    }
    // Late duplicates of QoS 2 messages would show up now.
    while let Ok(Some(m)) = timeout(Duration::from_millis(200), sub.recv()).await {
        let id: usize = m.payload_str().unwrap().parse().unwrap();
        assert_ne!(
            m.qos,
            QoS::ExactlyOnce,
            "QoS 2 message {id} delivered twice"
        );
    }
}

fn qos_of(i: usize) -> QoS {
    if i.is_multiple_of(2) {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_loses_no_message_and_duplicates_no_qos2() {
    const N: usize = 40;
    for v in VERSIONS {
        let broker = Broker::builder().persistence(true).start().unwrap();
        let (s, mut s_events) = connect(persistent(&broker.url(), v, "restart-sub")).await;
        let mut sub = s.subscribe("rk/#", QoS::ExactlyOnce).await.unwrap();
        let (p, mut p_events) = connect(persistent(&broker.url(), v, "restart-pub")).await;

        let mut deliveries = Vec::new();
        for i in 0..N / 2 {
            let m = Message::new(format!("rk/{i}"), i.to_string(), qos_of(i));
            deliveries.push(p.publish_queued(m).await.unwrap());
        }
        for d in deliveries.drain(..) {
            timeout(WAIT, d).await.unwrap().unwrap();
        }
        // mosquitto autosaves after every change; give it a moment, then crash it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        broker.kill().unwrap();
        event(&mut p_events, |e| {
            matches!(e, Event::Disconnected { .. }).then_some(())
        })
        .await;
        // Queued while the broker is down, sent after the restart.
        for i in N / 2..N {
            let m = Message::new(format!("rk/{i}"), i.to_string(), qos_of(i));
            deliveries.push(p.publish_queued(m).await.unwrap());
        }
        let _broker = tokio::task::spawn_blocking(move || {
            broker.restart().unwrap();
            broker
        })
        .await
        .unwrap();
        event(&mut s_events, |e| {
            matches!(e, Event::Disconnected { .. }).then_some(())
        })
        .await;
        let present = event(&mut s_events, |e| match e {
            Event::Connected {
                session_present, ..
            } => Some(session_present),
            _ => None,
        })
        .await;
        assert!(present, "the broker kept the subscriber's session");
        for d in deliveries {
            let code = timeout(WAIT, d)
                .await
                .expect("acknowledged in time")
                .unwrap();
            assert!(!code.is_error());
        }
        collect_ids(&mut sub, N).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_again_and_again_loses_nothing() {
    const N: usize = 200;
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (s, _) = connect(persistent(&broker.url(), v, "cut-sub")).await;
        let mut sub = s.subscribe("cut/#", QoS::ExactlyOnce).await.unwrap();
        let mode = FaultMode::new()
            .random_cuts(Duration::from_millis(30), Duration::from_millis(120))
            .seed(7);
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let (p, _) = connect(persistent(&proxy.url(), v, "cut-pub")).await;
        proxy.set_mode(mode);
        proxy.cut_all();
        let mut deliveries = Vec::new();
        for i in 0..N {
            let m = Message::new(format!("cut/{i}"), i.to_string(), qos_of(i));
            deliveries.push(p.publish_queued(m).await.unwrap());
        }
        for d in deliveries {
            timeout(WAIT * 2, d)
                .await
                .expect("acknowledged in time")
                .unwrap();
        }
        collect_ids(&mut sub, N).await;
        assert!(proxy.stats().cuts >= 2, "{:?}", proxy.stats());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_next_broker() {
    let broker = Broker::start().unwrap();
    let o = Options::with_brokers([dead_url().as_str(), broker.url().as_str()]).unwrap();
    let (c, _) = connect(o).await;
    loopback(&c, "fo/t").await;
    let all_dead = Options::with_brokers([dead_url().as_str(), dead_url().as_str()]).unwrap();
    let err = timeout(WAIT, Client::connect(all_dead))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
}

/// A fake 5.0 broker: answers the first CONNECT with `answer` (encoded packets), once.
async fn fake_broker(answer: Vec<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        for packet in answer {
            socket.write_all(&packet).await.unwrap();
        }
        let _ = timeout(WAIT, socket.read(&mut buf)).await;
    });
    url
}

fn encode(packet: mqtt_sansio::Packet<'_>) -> Vec<u8> {
    let v = ProtocolVersion::V5;
    let mut buf = vec![0u8; packet.encoded_len(v).unwrap()];
    packet.encode(v, &mut buf).unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_server_redirection_is_followed() {
    let broker = Broker::start().unwrap();
    let reference = format!("127.0.0.1:{}", broker.port());

    // CONNACK "Use another server".
    let mut ack = mqtt_sansio::ConnAck::new(ReasonCode::UseAnotherServer);
    ack.properties.server_reference = Some(&reference);
    let fake = fake_broker(vec![encode(mqtt_sansio::Packet::ConnAck(ack))]).await;
    let (c, _) = connect(options(&fake, ProtocolVersion::V5)).await;
    loopback(&c, "redirect/a").await;

    // Connected, then DISCONNECT "Server moved".
    let mut moved = mqtt_sansio::Disconnect::new(ReasonCode::ServerMoved);
    moved.properties.server_reference = Some(&reference);
    let fake = fake_broker(vec![
        encode(mqtt_sansio::Packet::ConnAck(mqtt_sansio::ConnAck::new(
            ReasonCode::Success,
        ))),
        encode(mqtt_sansio::Packet::Disconnect(moved)),
    ])
    .await;
    let (c, mut events) = connect(options(&fake, ProtocolVersion::V5)).await;
    let error = event(&mut events, |e| match e {
        Event::Disconnected { error } => Some(error),
        _ => None,
    })
    .await;
    assert!(matches!(
        error,
        Error::ServerDisconnected {
            reason_code: ReasonCode::ServerMoved,
            ..
        }
    ));
    let to = event(&mut events, |e| match e {
        Event::Connected { broker, .. } => Some(broker),
        _ => None,
    })
    .await;
    assert_eq!(to, broker.url());
    loopback(&c, "redirect/b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_queue_is_bounded_and_can_wait_for_room() {
    let broker = Broker::start().unwrap();
    // Every connection is cut at once until the mode changes: the client stays offline.
    let proxy = FaultProxy::start(
        broker.addr(),
        FaultMode::new().cut_after(Direction::ToBroker, 0),
    )
    .await
    .unwrap();
    let mut o = options(&proxy.url(), ProtocolVersion::V5);
    o.policy.offline_queue_bytes = 2048;
    let (c, _) = Client::new(o.clone()).unwrap();
    let mut queued = Vec::new();
    let full = loop {
        match c
            .publish_queued(Message::new("q/t", vec![7u8; 200], QoS::AtLeastOnce))
            .await
        {
            Ok(d) => queued.push(d),
            Err(e) => break e,
        }
        assert!(queued.len() < 20, "the queue never filled");
    };
    assert!(matches!(full, Error::QueueFull), "{full}");

    // Waiting policy: the publish waits until the queue drains after connecting.
    o.policy.queue_full = QueueFull::Wait;
    o.protocol.client_id = "waiter".into();
    let (w, _) = Client::new(o).unwrap();
    let mut waiting = Vec::new();
    for _ in 0..queued.len() {
        waiting.push(
            w.publish_queued(Message::new("q/w", vec![7u8; 200], QoS::AtLeastOnce))
                .await
                .unwrap(),
        );
    }
    let blocked = w.publish_message(Message::new("q/w", "last", QoS::AtLeastOnce));
    tokio::pin!(blocked);
    assert!(
        timeout(QUIET, &mut blocked).await.is_err(),
        "waits while full"
    );
    proxy.set_mode(FaultMode::new());
    timeout(WAIT, &mut blocked).await.unwrap().unwrap();
    for d in waiting.into_iter().chain(queued) {
        timeout(WAIT, d).await.unwrap().unwrap();
    }
    // Larger than the whole queue: fails at once, even under the waiting policy.
    let big = Message::new("q/big", vec![0u8; 4096], QoS::AtLeastOnce);
    let err = timeout(WAIT, w.publish_queued(big))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_ack_mode_acknowledges_only_when_told() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let mut o = named(&broker.url(), v, "manual");
        o.protocol.manual_acks = true;
        let (c, _) = connect(o).await;
        let mut sub = c.subscribe("ma/#", QoS::ExactlyOnce).await.unwrap();
        let (p, _) = connect(options(&broker.url(), v)).await;
        for qos in [QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let done = p
                .publish_queued(Message::new("ma/t", "x", qos))
                .await
                .unwrap();
            let m = recv(&mut sub).await;
            assert_eq!(m.qos, qos);
            let id = m.packet_id().expect("QoS 1 and 2 carry an id").get();
            let ack = if qos == QoS::AtLeastOnce {
                "PUBACK"
            } else {
                "PUBREC"
            };
            let acked = format!("Received {ack} from manual (Mid: {id}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!broker.log().contains(&acked), "acknowledged before ack()");
            c.ack(&m).await.unwrap();
            timeout(WAIT, done).await.unwrap().unwrap();
            broker.wait_for_log(&acked, WAIT).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_properties_request_response_and_expiry() {
    let v = ProtocolVersion::V5;
    let broker = Broker::start().unwrap();
    let (requester, _) = connect(options(&broker.url(), v)).await;
    let (responder, _) = connect(options(&broker.url(), v)).await;
    let mut requests = responder
        .subscribe("svc/req", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut responses = requester
        .subscribe("svc/resp/me", QoS::AtLeastOnce)
        .await
        .unwrap();

    let props = Properties {
        response_topic: Some("svc/resp/me".into()),
        correlation_data: Some(Bytes::from_static(b"corr-1")),
        content_type: Some("text/plain".into()),
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(100),
        ..Properties::default()
    }
    .user_property("k", "v1")
    .user_property("k", "v2");
    let request = Message::new("svc/req", "2+2", QoS::AtLeastOnce).properties(props);
    requester.publish_message(request).await.unwrap();

    let got = recv(&mut requests).await;
    let p = &got.properties;
    assert_eq!(
        p.user_properties,
        vec![("k".into(), "v1".into()), ("k".into(), "v2".into())]
    );
    assert_eq!(p.content_type.as_deref(), Some("text/plain"));
    assert_eq!(p.payload_format_indicator, Some(true));
    assert!(p.message_expiry_interval.is_some_and(|s| s <= 100));
    let reply_props = Properties {
        correlation_data: p.correlation_data.clone(),
        ..Properties::default()
    };
    let reply = Message::new(p.response_topic.clone().unwrap(), "4", QoS::AtLeastOnce)
        .properties(reply_props);
    responder.publish_message(reply).await.unwrap();
    let answer = recv(&mut responses).await;
    assert_eq!(&answer.payload[..], b"4");
    assert_eq!(
        answer.properties.correlation_data.as_deref(),
        Some(&b"corr-1"[..])
    );

    // A retained message with a 1 s lifetime is gone 2 s later.
    let expiring = Properties {
        message_expiry_interval: Some(1),
        ..Properties::default()
    };
    let m = Message::new("svc/exp", "short-lived", QoS::AtLeastOnce)
        .retain(true)
        .properties(expiring);
    requester.publish_message(m).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut late = responder
        .subscribe("svc/exp", QoS::AtLeastOnce)
        .await
        .unwrap();
    quiet(&mut late).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_topic_aliases_shrink_repeated_publishes() {
    let v = ProtocolVersion::V5;
    let broker = Broker::start().unwrap();
    let topic = format!("alias/{}", "x".repeat(200));
    let (s, _) = connect(options(&broker.url(), v)).await;
    let mut sub = s.subscribe("alias/#", QoS::AtLeastOnce).await.unwrap();
    let mut sent = Vec::new();
    for aliases in [false, true] {
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let mut o = options(&proxy.url(), v);
        o.protocol.outgoing_topic_aliases = aliases;
        let (p, _) = connect(o).await;
        let before = proxy.stats().bytes_to_broker;
        for i in 0..10 {
            p.publish(topic.clone(), QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
            let m = recv(&mut sub).await;
            assert_eq!(
                (&m.topic, m.payload_str()),
                (&topic, Some(i.to_string().as_str()))
            );
        }
        sent.push(proxy.stats().bytes_to_broker - before);
    }
    assert!(
        sent[1] + 9 * 190 < sent[0],
        "with aliases {} bytes, without {}",
        sent[1],
        sent[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_subscription_identifiers_route_overlapping_subscriptions() {
    let v = ProtocolVersion::V5;
    let broker = Broker::start().unwrap();
    let (c, _) = connect(options(&broker.url(), v)).await;
    let mut narrow = c.subscribe("si/a", QoS::AtLeastOnce).await.unwrap();
    let mut wide = c.subscribe("si/#", QoS::AtLeastOnce).await.unwrap();
    c.publish("si/a", QoS::AtLeastOnce, false, "both")
        .await
        .unwrap();
    c.publish("si/b", QoS::AtLeastOnce, false, "wide")
        .await
        .unwrap();
    let n = recv(&mut narrow).await;
    assert_eq!(&n.payload[..], b"both");
    assert_eq!(n.properties.subscription_identifiers.len(), 1);
    let w1 = recv(&mut wide).await;
    let w2 = recv(&mut wide).await;
    let mut got = vec![
        w1.payload_str().unwrap().to_string(),
        w2.payload_str().unwrap().to_string(),
    ];
    got.sort();
    assert_eq!(got, vec!["both", "wide"]);
    assert_ne!(
        n.properties.subscription_identifiers,
        w2.properties.subscription_identifiers
    );
    quiet(&mut narrow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_shared_subscription_delivers_each_message_once() {
    let v = ProtocolVersion::V5;
    let broker = Broker::start().unwrap();
    let (a, _) = connect(options(&broker.url(), v)).await;
    let (b, _) = connect(options(&broker.url(), v)).await;
    let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
    let mut sa = a.subscribe_many([("$share/g/sh/t", opts)]).await.unwrap();
    let mut sb = b.subscribe_many([("$share/g/sh/t", opts)]).await.unwrap();
    let (p, _) = connect(options(&broker.url(), v)).await;
    for i in 0..20 {
        p.publish("sh/t", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut from_a = 0;
    while seen.len() < 20 {
        tokio::select! {
            Some(m) = sa.recv() => { seen.push(m.payload_str().unwrap().to_string()); from_a += 1; }
            Some(m) = sb.recv() => seen.push(m.payload_str().unwrap().to_string()),
            () = tokio::time::sleep(WAIT) => panic!("only {} of 20 messages", seen.len()),
        }
    }
    seen.sort_by_key(|s| s.parse::<u32>().unwrap());
    seen.dedup();
    assert_eq!(seen.len(), 20, "each message once");
    assert!(
        from_a > 0 && from_a < 20,
        "both members got some ({from_a} of 20 to a)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_that_lost_the_session_gets_qos1_again_fails_qos2_and_renews_subscriptions() {
    for v in VERSIONS {
        // No persistence: a restart forgets every session.
        let broker = Broker::start().unwrap();
        let (s, mut s_events) = connect(persistent(&broker.url(), v, "lost-sub")).await;
        let mut sub = s.subscribe("lost/#", QoS::AtLeastOnce).await.unwrap();
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let (p, mut p_events) = connect(persistent(&proxy.url(), v, "lost-pub")).await;

        // Both publishes are written, but the proxy holds them: no acknowledgement comes.
        proxy.stall(true);
        let once = p
            .publish_queued(Message::new("lost/1", "q1", QoS::AtLeastOnce))
            .await
            .unwrap();
        let twice = p
            .publish_queued(Message::new("lost/2", "q2", QoS::ExactlyOnce))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // The publisher stays away until the subscriber is back.
        proxy.set_mode(FaultMode::new().cut_after(Direction::ToBroker, 0));

        let broker = tokio::task::spawn_blocking(move || {
            broker.restart().unwrap();
            broker
        })
        .await
        .unwrap();
        // The subscriber comes back to an empty broker and its session subscribes again.
        event(&mut s_events, |e| {
            matches!(e, Event::Disconnected { .. }).then_some(())
        })
        .await;
        connected_without_session(&mut s_events).await;
        let renewed = event(&mut s_events, |e| match e {
            Event::Resubscribed { reason_codes, .. } => Some(reason_codes.clone()),
            _ => None,
        })
        .await;
        assert_eq!(renewed, [ReasonCode::GrantedQoS1]);

        // Cut first, then let connections through: a reconnect accepted between the two
        // (the publisher saw the broker go and keeps trying) would otherwise carry its
        // CONNECT to the new broker and be cut before its CONNACK, leaving the broker a
        // session that the next connection resumes (session present, the QoS 2 message then
        // rightly sent again: not what this test is about).
        proxy.stall(false);
        proxy.cut_all();
        proxy.set_mode(FaultMode::new());
        connected_without_session(&mut p_events).await;
        timeout(WAIT, once)
            .await
            .unwrap()
            .expect("QoS 1 published again");
        let err = timeout(WAIT, twice).await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Abandoned), "{err}");
        let m = recv(&mut sub).await;
        assert_eq!((m.topic.as_str(), &m.payload[..]), ("lost/1", &b"q1"[..]));
        quiet(&mut sub).await;
        drop(broker);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_pings_when_idle_and_detects_a_dead_path() {
    let broker = Broker::start().unwrap();
    let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
        .await
        .unwrap();
    let mut o = named(&proxy.url(), ProtocolVersion::V5, "pinger");
    o.protocol.keep_alive = Duration::from_secs(1);
    let (c, mut events) = connect(o).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        broker.log().contains("Received PINGREQ from pinger"),
        "idle client pings"
    );
    assert!(c.is_connected());

    // Silence on the path: no PINGRESP within 1.5 keep alives ends the connection.
    proxy.stall(true);
    let error = event(&mut events, |e| match e {
        Event::Disconnected { error } => Some(error),
        _ => None,
    })
    .await;
    assert!(matches!(error, Error::KeepAliveTimeout), "{error}");
    proxy.stall(false);
    proxy.cut_all();
    event(&mut events, |e| {
        matches!(e, Event::Connected { .. }).then_some(())
    })
    .await;
    loopback(&c, "ka/t").await;
}

/// The session's queue starts at 256 bytes and grows as records need it. A publish grew it;
/// a SUBSCRIBE or UNSUBSCRIBE larger than what was free failed with "offline queue full" (the
/// demo's controller did, once the queue started smaller). Both now grow it too.
#[tokio::test]
async fn a_subscribe_and_unsubscribe_larger_than_the_first_queue_go_out() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let (c, _events) = connect(options(&broker.url(), v)).await;
        // 24 filters of 40 bytes: a SUBSCRIBE of about 1 KiB.
        let filters: Vec<String> = (0..24)
            .map(|i| format!("site/building-{i:02}/floor/room/sensor/temp/#"))
            .collect();
        assert!(filters.iter().all(|f| f.len() >= 40));
        let options = SubscriptionOptions::new(QoS::AtLeastOnce);
        let mut sub = c
            .subscribe_many(filters.iter().map(|f| (f.clone(), options)))
            .await
            .unwrap_or_else(|e| panic!("{v:?}: subscribe: {e}"));
        c.publish(
            "site/building-23/floor/room/sensor/temp/now",
            QoS::AtLeastOnce,
            false,
            "21.5",
        )
        .await
        .unwrap();
        assert_eq!(&recv(&mut sub).await.payload[..], b"21.5");
        let codes = c
            .unsubscribe_many(filters.iter().cloned())
            .await
            .unwrap_or_else(|e| panic!("{v:?}: unsubscribe: {e}"));
        assert_eq!(codes.len(), 24, "{v:?}");
    }
}

/// The queue starts small and gives memory back once drained, so a SUBSCRIBE that grew it is
/// larger than the queue when the session renews it on the next connection. The renewal grew
/// it too: before, a filter longer than the queue was dropped (`RenewalDropped`, Packet Too
/// Large) and its messages stopped.
#[tokio::test]
async fn a_filter_longer_than_the_queue_is_renewed_on_the_next_connection() {
    for v in VERSIONS {
        let broker = Broker::start().unwrap();
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let (c, mut events) = connect(options(&proxy.url(), v)).await;
        let long = format!("site/{}/#", "building-".repeat(40));
        assert!(long.len() > 300);
        let mut sub = c.subscribe(&long, QoS::AtLeastOnce).await.unwrap();
        // The clean session is gone with the connection: the session renews the filter.
        proxy.cut_all();
        connected_without_session(&mut events).await;
        let renewed = event(&mut events, |e| match e {
            Event::Resubscribed { reason_codes, .. } => Some(reason_codes.clone()),
            Event::Notice(n @ Notice::RenewalDropped { .. }) => panic!("{v:?}: {n:?}"),
            _ => None,
        })
        .await;
        assert_eq!(renewed, [ReasonCode::GrantedQoS1], "{v:?}");
        let (p, _p_events) = connect(options(&broker.url(), v)).await;
        let topic = format!("{}now", &long[..long.len() - 1]);
        p.publish(topic, QoS::AtLeastOnce, false, "21.5")
            .await
            .unwrap();
        assert_eq!(&recv(&mut sub).await.payload[..], b"21.5", "{v:?}");
    }
}
