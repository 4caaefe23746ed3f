//! The life of a connection, for the failures real brokers caused: a graceful end that drains
//! the QoS 2 handshake, a resumed backlog larger than a subscription's buffer, reconnects that
//! back off, a broker over our Receive Maximum, requests the broker cannot serve, a poison
//! message, transient refusals, a broker without 5.0, and what CONNACK and acks say. Against
//! mosquitto where it shows the case, a scripted broker on loopback TCP otherwise. Every wait
//! is bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqtt_client_tokio::{
    Client, Error, Event, Events, Notice, Options, ProtocolVersion, QoS, ReasonCode,
};
use mqtt_sansio::{ConnAck, Decoded, Packet, PubResponse};
use mqtt_test_support::Broker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const V5: ProtocolVersion = ProtocolVersion::V5;
const WAIT: Duration = Duration::from_secs(15);

fn options(url: &str, version: ProtocolVersion, id: &str) -> Options {
    let mut o = Options::new(url).expect("valid url");
    o.protocol.version = version;
    o.protocol.client_id = id.to_string();
    o.policy.backoff_min = Duration::from_millis(50);
    o.policy.backoff_max = Duration::from_millis(400);
    o.policy.connect_timeout = Duration::from_secs(5);
    o
}

async fn connect(o: Options) -> (Client, Events) {
    timeout(WAIT, Client::connect(o))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// Every event until `pick` accepts one (bounded).
async fn until(events: &mut Events, mut pick: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let e = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("expected event did not come; saw {seen:?}"))
            .expect("event stream ended");
        let done = pick(&e);
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// A broker on loopback TCP that runs `script` for every connection it accepts.
struct Scripted {
    url: String,
    connections: Arc<AtomicU32>,
}

/// One accepted connection, from the broker's side.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    v: ProtocolVersion,
    /// Which connection this is (0-based).
    n: u32,
}

impl Conn {
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Decoded::Packet { len, .. }) = Packet::decode(&self.buf, self.v, u32::MAX) {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 4096];
            let n = timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, packet: Packet<'_>) {
        let mut bytes = vec![0u8; packet.encoded_len(self.v).unwrap()];
        packet.encode(self.v, &mut bytes).unwrap();
        let _ = self.stream.write_all(&bytes).await;
    }
}

fn decode(bytes: &[u8], v: ProtocolVersion) -> Packet<'_> {
    match Packet::decode(bytes, v, u32::MAX).unwrap() {
        Decoded::Packet { packet, .. } => packet,
        other => panic!("{other:?}"),
    }
}

impl Scripted {
    async fn start<F, Fut>(v: ProtocolVersion, script: F) -> Self
    where
        F: Fn(Conn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("mqtt://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicU32::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let conn = Conn {
                    stream,
                    buf: Vec::new(),
                    v,
                    n,
                };
                tokio::spawn(script(conn));
            }
        });
        Self { url, connections }
    }

    fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Failure 1: `mqtt sub -q 2 -C 1` sent DISCONNECT while the broker's PUBREL was on its way.
#[tokio::test]
async fn disconnect_completes_the_incoming_qos2_handshake_first() {
    let broker = Broker::start().unwrap();
    for v in VERSIONS {
        let sub_id = format!("tokio-drain-sub-{v:?}");
        let (sub, _e) = connect(options(&broker.url(), v, &sub_id)).await;
        let topic = format!("tokio/drain/{v:?}");
        let mut stream = sub.subscribe(&topic, QoS::ExactlyOnce).await.unwrap();
        let (publisher, _pe) = connect(options(&broker.url(), v, &format!("{sub_id}-pub"))).await;
        publisher
            .publish(&topic, QoS::ExactlyOnce, false, "once")
            .await
            .unwrap();
        timeout(WAIT, stream.recv()).await.unwrap().unwrap();
        timeout(WAIT, sub.disconnect()).await.unwrap().unwrap();
        broker
            .wait_for_log(&format!("Received DISCONNECT from {sub_id}"), WAIT)
            .unwrap();
        let log = broker.log();
        let pubcomp = log.find(&format!("Received PUBCOMP from {sub_id}"));
        let disconnect = log.find(&format!("Received DISCONNECT from {sub_id}"));
        assert!(pubcomp.is_some() && pubcomp < disconnect, "{v:?}");
    }
}

/// Failure 2: 1,000 QoS 1 messages queued for a resumed session arrived before SUBACK, filled
/// the subscription's buffer, and the driver stopped reading: SUBACK never came.
#[tokio::test]
async fn a_resumed_backlog_larger_than_the_subscription_buffer_does_not_deadlock() {
    let broker = Broker::builder().max_queued_messages(5000).start().unwrap();
    for v in VERSIONS {
        let id = format!("tokio-backlog-{v:?}");
        let topic = format!("tokio/backlog/{v:?}");
        let mut o = options(&broker.url(), v, &id);
        o.protocol.clean_start = false;
        o.protocol.session_expiry_interval = Some(600);
        let (sub, _e) = connect(o.clone()).await;
        sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        timeout(WAIT, sub.disconnect()).await.unwrap().unwrap();
        let (publisher, _pe) = connect(options(&broker.url(), v, &format!("{id}-pub"))).await;
        for i in 0..1000 {
            // Fire and forget: the last publish below is awaited.
            drop(
                publisher
                    .publish_queued(mqtt_client_tokio::Message::new(
                        topic.clone(),
                        format!("{i}"),
                        QoS::AtLeastOnce,
                    ))
                    .await
                    .unwrap(),
            );
        }
        publisher
            .publish(&topic, QoS::AtLeastOnce, false, "last")
            .await
            .unwrap();
        // Resume with a small buffer: the backlog comes before SUBACK.
        o.policy.subscription_buffer = 16;
        let (sub, mut events) = connect(o).await;
        let mut stream = timeout(WAIT, sub.subscribe(&topic, QoS::AtLeastOnce))
            .await
            .expect("SUBACK despite the backlog")
            .unwrap();
        // What arrived before `subscribe` matched no subscription yet: it is in the events
        // (which also get a copy of every later message, while they have room).
        let mut early = std::collections::BTreeSet::new();
        while let Ok(Some(e)) = timeout(Duration::from_millis(200), events.recv()).await {
            if let Event::Message(m) = e {
                early.insert(String::from_utf8_lossy(&m.payload).into_owned());
            }
        }
        let mut streamed = BTreeMap::<String, u32>::new();
        let complete = |streamed: &BTreeMap<String, u32>| {
            (0..1000)
                .map(|i| i.to_string())
                .chain(["last".to_string()])
                .all(|p| streamed.contains_key(&p) || early.contains(&p))
        };
        while !complete(&streamed) {
            let m = timeout(WAIT, stream.recv())
                .await
                .unwrap_or_else(|_| panic!("{v:?}: stalled after {}", streamed.len()))
                .unwrap();
            *streamed
                .entry(String::from_utf8_lossy(&m.payload).into_owned())
                .or_default() += 1;
            if streamed.len().is_multiple_of(100) {
                // A slow consumer.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        println!(
            "{v:?}: {} messages before SUBACK, {} through the subscription",
            early.len(),
            streamed.len()
        );
        assert!(streamed.values().all(|&n| n == 1), "{v:?}: duplicates");
        assert!(sub.is_connected(), "{v:?}");
        timeout(WAIT, sub.disconnect()).await.unwrap().unwrap();
    }
}

/// Failure 3: a broker that accepts and then drops every connection got 2 to 8 connections a
/// second. `MQTT_FLAP_SECONDS` lengthens the run (the closing note's figure uses 20).
#[tokio::test]
async fn a_broker_that_drops_after_connack_sees_the_attempts_back_off() {
    let seconds: u64 = std::env::var("MQTT_FLAP_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let broker = Scripted::start(V5, |mut c| async move {
        c.next().await;
        c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
    .await;
    let mut o = options(&broker.url, V5, "flap");
    o.policy.backoff_min = Duration::from_millis(250);
    o.policy.backoff_max = Duration::from_secs(30);
    let (client, events) = Client::new(o).unwrap();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let n = broker.connections();
    println!("connections in {seconds} s against a broker dropping 50 ms after CONNACK: {n}");
    // 0, then about 0.25, 0.5, 1, 2, 4, 8, 16 s apart.
    let bound = 2 + (seconds as f64 / 0.2).log2().ceil() as u32;
    assert!(n >= 2 && n <= bound, "{n} connections in {seconds} s");
    drop((client, events));
}

/// Failure 4: mosquitto resumed a session with hundreds of messages against our Receive
/// Maximum and the client disconnected with 0x93, again and again.
#[tokio::test]
async fn a_broker_over_the_receive_maximum_is_served_in_one_connection() {
    let broker = Broker::builder()
        .max_inflight_messages(300)
        .start()
        .unwrap();
    let v = V5;
    let topic = "tokio/overrun";
    let mut o = options(&broker.url(), v, "tokio-overrun");
    o.protocol.clean_start = false;
    o.protocol.session_expiry_interval = Some(600);
    o.protocol.receive_maximum = 10;
    let (sub, _e) = connect(o.clone()).await;
    sub.subscribe(topic, QoS::ExactlyOnce).await.unwrap();
    timeout(WAIT, sub.disconnect()).await.unwrap().unwrap();
    let (publisher, _pe) = connect(options(&broker.url(), v, "tokio-overrun-pub")).await;
    for i in 0..300 {
        // Fire and forget: the last publish below is awaited.
        drop(
            publisher
                .publish_queued(mqtt_client_tokio::Message::new(
                    topic,
                    format!("{i}"),
                    QoS::ExactlyOnce,
                ))
                .await
                .unwrap(),
        );
    }
    publisher
        .publish(topic, QoS::ExactlyOnce, false, "last")
        .await
        .unwrap();
    let (sub, mut events) = connect(o).await;
    let mut got = BTreeMap::<Vec<u8>, u32>::new();
    let mut notices = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 301 {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Message(m))) => *got.entry(m.payload.to_vec()).or_default() += 1,
            Ok(Some(Event::Notice(Notice::ReceiveMaximumExceeded { deferred, .. }))) => {
                assert!(!deferred, "the incoming table grows as the flood needs");
                notices += 1;
            }
            Ok(Some(Event::Disconnected { error })) => panic!("disconnected: {error}"),
            Ok(Some(_)) => {}
            other => panic!("after {} messages: {other:?}", got.len()),
        }
    }
    println!("301 messages, {notices} overrun notice(s)");
    assert!(got.values().all(|&n| n == 1), "exactly once");
    assert!(sub.is_connected());
}

/// Failure 5: `$share/...` to a broker that said Shared Subscription Available 0 looped.
#[tokio::test]
async fn requests_the_broker_cannot_serve_are_refused_locally() {
    let broker = Scripted::start(V5, |mut c| async move {
        c.next().await;
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.properties.shared_subscription_available = Some(false);
        c.send(Packet::ConnAck(ack)).await;
        while let Some(p) = c.next().await {
            assert!(
                !matches!(decode(&p, V5), Packet::Subscribe(_)),
                "SUBSCRIBE sent to a broker that cannot serve it"
            );
        }
    })
    .await;
    // Queued before CONNACK: fails once CONNACK tells.
    let (client, _e) = Client::new(options(&broker.url, V5, "share")).unwrap();
    let queued = timeout(WAIT, client.subscribe("$share/g/a", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(
        matches!(
            queued,
            Err(Error::Rejected(ReasonCode::SharedSubscriptionsNotSupported))
        ),
        "{queued:?}"
    );
    // While connected: refused by the command.
    let now = timeout(WAIT, client.subscribe("$share/g/a", QoS::AtLeastOnce))
        .await
        .unwrap();
    assert!(matches!(now, Err(Error::Command(_))), "{now:?}");
    assert!(client.is_connected());
    assert_eq!(broker.connections(), 1);
}

/// Failure 6: a retained message larger than the receive limit ended every connection.
#[tokio::test]
async fn a_poison_message_over_the_maximum_packet_size_is_skipped() {
    let broker = Broker::start().unwrap();
    let v = ProtocolVersion::V3_1_1;
    let (publisher, _pe) = connect(options(&broker.url(), v, "poison-pub")).await;
    publisher
        .publish("tokio/poison/big", QoS::AtLeastOnce, true, vec![b'x'; 2035])
        .await
        .unwrap();
    publisher
        .publish("tokio/poison/small", QoS::AtLeastOnce, true, "ok")
        .await
        .unwrap();
    let mut o = options(&broker.url(), v, "poison-sub");
    o.protocol.maximum_packet_size = 512;
    let (sub, mut events) = connect(o).await;
    let mut stream = sub
        .subscribe("tokio/poison/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let m = timeout(WAIT, stream.recv()).await.unwrap().unwrap();
    assert_eq!(&m.payload[..], b"ok");
    let seen = until(&mut events, |e| {
        matches!(e, Event::Notice(Notice::MessageSkipped { .. }))
    })
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Disconnected { .. })),
        "{seen:?}"
    );
    assert!(sub.is_connected());
}

/// Failure 7: a PUBREC with Quota Exceeded ended `mqtt pub`; now it goes again.
#[tokio::test]
async fn a_quota_exceeded_refusal_is_retried_and_then_delivered() {
    let broker = Scripted::start(V5, |mut c| async move {
        c.next().await;
        c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
            .await;
        let mut refused = false;
        while let Some(bytes) = c.next().await {
            match decode(&bytes, V5) {
                Packet::Publish(p) => {
                    let mut rec = PubResponse::new(p.packet_id().unwrap());
                    if !refused {
                        rec.reason_code = ReasonCode::QuotaExceeded;
                        refused = true;
                    }
                    c.send(Packet::PubRec(rec)).await;
                }
                Packet::PubRel(r) => {
                    let mut comp = PubResponse::new(r.packet_id);
                    comp.properties.reason_string = Some("stored");
                    c.send(Packet::PubComp(comp)).await;
                }
                _ => {}
            }
        }
    })
    .await;
    let mut o = options(&broker.url, V5, "quota");
    o.policy.event_buffer = 64;
    let (client, mut events) = connect(o).await;
    let code = timeout(WAIT, client.publish("t", QoS::ExactlyOnce, false, "m"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, ReasonCode::Success);
    let seen = until(&mut events, |e| matches!(e, Event::Published { .. })).await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Notice(Notice::PublishRetrying {
            reason_code: ReasonCode::QuotaExceeded,
            ..
        })
    )));
    // What the ack said reaches the application.
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Published { reason_string: Some(s), .. } if s == "stored"
    )));
}

/// Failure 8: aedes answers a 5.0 CONNECT with `20 02 00 01`.
#[tokio::test]
async fn a_broker_without_5_0_is_reported_and_not_retried() {
    let broker = Scripted::start(V5, |mut c| async move {
        c.next().await;
        let _ = c.stream.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
        let _ = c.next().await;
    })
    .await;
    let result = timeout(WAIT, Client::connect(options(&broker.url, V5, "old")))
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(Error::ConnectionRefused(
                ReasonCode::UnsupportedProtocolVersion
            ))
        ),
        "{result:?}"
    );
    // And a client already running stops instead of retrying.
    let (client, mut events) = Client::new(options(&broker.url, V5, "old")).unwrap();
    until(&mut events, |e| {
        matches!(
            e,
            Event::Error(Error::ConnectionRefused(
                ReasonCode::UnsupportedProtocolVersion
            ))
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(broker.connections(), 2, "not retried");
    drop(client);
}

/// The opt-in fallback: the same broker is asked again at once in 3.1.1 (an empty client id
/// then made up, as 3.1.1 needs one), and the connection works.
#[tokio::test]
async fn with_the_fallback_a_broker_without_5_0_is_spoken_to_in_3_1_1() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let broker = Scripted::start(V5, move |mut c| {
        let log = log.clone();
        async move {
            if c.n == 0 {
                c.next().await;
                let _ = c.stream.write_all(&[0x20, 0x02, 0x00, 0x01]).await;
                let _ = c.next().await;
                return;
            }
            c.v = ProtocolVersion::V3_1_1;
            let Some(connect) = c.next().await else {
                return;
            };
            if let Packet::Connect(p) = decode(&connect, c.v) {
                log.lock()
                    .unwrap()
                    .push((p.protocol, p.client_id.to_string()));
            }
            c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                .await;
            while let Some(bytes) = c.next().await {
                if let Packet::Publish(p) = decode(&bytes, c.v) {
                    if let Some(id) = p.packet_id() {
                        c.send(Packet::PubAck(PubResponse::new(id))).await;
                    }
                }
            }
        }
    })
    .await;
    let started = tokio::time::Instant::now();
    let mut o = options(&broker.url, V5, "");
    o.policy.backoff_min = Duration::from_secs(5);
    o.protocol.fallback_to_v311 = true;
    let (client, mut events) = connect(o).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fallback waited for a backoff step"
    );
    until(&mut events, |e| {
        matches!(e, Event::Notice(Notice::FellBackToV311))
    })
    .await;
    let code = timeout(WAIT, client.publish("t", QoS::AtLeastOnce, false, "x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(code, ReasonCode::Success);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].0, ProtocolVersion::V3_1_1);
    assert_eq!(
        seen[0].1.len(),
        23,
        "a 3.1.1 client id was made up: {seen:?}"
    );
    assert_eq!(broker.connections(), 2);
    client.disconnect().await.unwrap();
}

/// Failure 9: CONNACK properties reach the application, and the identifier a broker assigned
/// is reused on reconnect.
#[tokio::test]
async fn connack_properties_are_visible_and_an_assigned_id_is_reused() {
    let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = ids.clone();
    let broker = Scripted::start(V5, move |mut c| {
        let log = log.clone();
        async move {
            let Some(bytes) = c.next().await else {
                return;
            };
            if let Packet::Connect(connect) = decode(&bytes, V5) {
                log.lock()
                    .unwrap()
                    .push((connect.client_id.to_string(), connect.clean_start));
            }
            let mut ack = ConnAck::new(ReasonCode::Success);
            ack.session_present = c.n > 0;
            ack.properties.assigned_client_identifier = Some("auto-42");
            ack.properties.response_information = Some("replies/");
            c.send(Packet::ConnAck(ack)).await;
            if c.n == 0 {
                // Drop the first connection after a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
            while c.next().await.is_some() {}
        }
    })
    .await;
    let mut o = options(&broker.url, V5, "");
    o.protocol.session_expiry_interval = Some(60);
    let (client, mut events) = Client::new(o).unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    let Some(Event::Connected { connack, .. }) = seen.last() else {
        panic!()
    };
    assert_eq!(
        connack.assigned_client_identifier.as_deref(),
        Some("auto-42")
    );
    assert_eq!(connack.response_information.as_deref(), Some("replies/"));
    until(&mut events, |e| {
        matches!(
            e,
            Event::Connected {
                session_present: true,
                ..
            }
        )
    })
    .await;
    let ids = ids.lock().unwrap().clone();
    assert_eq!(ids[0].0, "");
    assert_eq!(ids[1], ("auto-42".to_string(), false));
    drop(client);
}

/// Failure 9: enhanced authentication reached from the client (method and data in CONNECT,
/// the broker's challenge as an event, the answer through `Client::auth`).
#[tokio::test]
async fn enhanced_authentication_steps_reach_the_application() {
    let broker = Scripted::start(V5, |mut c| async move {
        let Some(bytes) = c.next().await else {
            return;
        };
        let Packet::Connect(connect) = decode(&bytes, V5) else {
            panic!()
        };
        assert_eq!(connect.properties.authentication_method, Some("TEST-2STEP"));
        assert_eq!(connect.properties.authentication_data, Some(&b"hello"[..]));
        let mut challenge = mqtt_sansio::Auth {
            reason_code: ReasonCode::ContinueAuthentication,
            properties: Default::default(),
        };
        challenge.properties.authentication_method = Some("TEST-2STEP");
        challenge.properties.authentication_data = Some(b"nonce-1");
        c.send(Packet::Auth(challenge)).await;
        let bytes = c.next().await.unwrap();
        let Packet::Auth(answer) = decode(&bytes, V5) else {
            panic!("{bytes:?}")
        };
        assert_eq!(answer.reason_code, ReasonCode::ContinueAuthentication);
        assert_eq!(answer.properties.authentication_method, Some("TEST-2STEP"));
        assert_eq!(
            answer.properties.authentication_data,
            Some(&b"proof:nonce-1"[..])
        );
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.properties.authentication_method = Some("TEST-2STEP");
        c.send(Packet::ConnAck(ack)).await;
        while c.next().await.is_some() {}
    })
    .await;
    let mut o = options(&broker.url, V5, "auth");
    o.protocol.authentication_method = Some("TEST-2STEP".into());
    o.protocol.authentication_data = Some("hello".into());
    let (client, mut events) = Client::new(o).unwrap();
    let seen = until(&mut events, |e| matches!(e, Event::Auth { .. })).await;
    let Some(Event::Auth { reason_code, data }) = seen.last() else {
        panic!()
    };
    assert_eq!(*reason_code, ReasonCode::ContinueAuthentication);
    let mut proof = b"proof:".to_vec();
    proof.extend_from_slice(data.as_deref().unwrap());
    client.auth(proof).await.unwrap();
    until(&mut events, |e| matches!(e, Event::Connected { .. })).await;
    assert!(client.is_connected());
}

/// SUBSCRIBE and UNSUBSCRIBE carry the application's user properties (the CLI's
/// `-D subscribe|unsubscribe user-property`).
#[tokio::test]
async fn subscribe_and_unsubscribe_carry_user_properties() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let broker = Scripted::start(V5, move |mut c| {
        let log = log.clone();
        async move {
            c.next().await;
            c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                .await;
            while let Some(bytes) = c.next().await {
                match decode(&bytes, V5) {
                    Packet::Subscribe(s) => {
                        let users: Vec<_> = s.properties.user_properties.iter().collect();
                        log.lock().unwrap().push(format!("sub {users:?}"));
                        let codes = [ReasonCode::GrantedQoS1];
                        c.send(Packet::SubAck(mqtt_sansio::SubAck::new(
                            s.packet_id,
                            &codes,
                        )))
                        .await;
                    }
                    Packet::Unsubscribe(u) => {
                        let users: Vec<_> = u.properties.user_properties.iter().collect();
                        log.lock().unwrap().push(format!("unsub {users:?}"));
                        let codes = [ReasonCode::Success];
                        c.send(Packet::UnsubAck(mqtt_sansio::UnsubAck::new(
                            u.packet_id,
                            &codes,
                        )))
                        .await;
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let (client, _e) = connect(options(&broker.url, V5, "props")).await;
    let props = mqtt_client_tokio::RequestProperties::new().user_property("k", "v");
    let filters = [(
        "a/b",
        mqtt_client_tokio::SubscriptionOptions::new(QoS::AtLeastOnce),
    )];
    client.subscribe_with(filters, props.clone()).await.unwrap();
    client.unsubscribe_with(["a/b"], props).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [r#"sub [("k", "v")]"#, r#"unsub [("k", "v")]"#]
    );
}

/// SCRAM-SHA-256 through the authenticator hook: RFC 7677's exchange (its nonce fixed), and a
/// broker whose final proof is wrong stops the client.
#[tokio::test]
async fn scram_sha_256_runs_through_the_authenticator_hook() {
    use mqtt_test_support::scram::{broker as scram, CLIENT_NONCE};
    for honest in [true, false] {
        let broker = Scripted::start(V5, move |mut c| async move {
            let Some(bytes) = c.next().await else {
                return;
            };
            scram::check_client_first(&bytes);
            c.send(scram::server_first()).await;
            scram::check_client_final(&c.next().await.unwrap());
            c.send(scram::server_final(honest)).await;
            while c.next().await.is_some() {}
        })
        .await;
        let mut scram = mqtt_sansio::auth::ScramSha256::new("user", b"pencil", [9; 32]);
        scram.fixed_nonce(CLIENT_NONCE);
        let mut o = options(&broker.url, V5, "scram");
        o.protocol.authenticator(scram);
        let result = timeout(WAIT, Client::connect(o)).await.unwrap();
        if honest {
            assert!(result.unwrap().0.is_connected());
        } else {
            assert!(
                matches!(
                    result,
                    Err(Error::Authentication(
                        mqtt_sansio::auth::AuthError::ServerNotVerified
                    ))
                ),
                "{result:?}"
            );
        }
    }
}

/// A subscription made before CONNACK carries the client's routing identifier; a broker that
/// turns out not to support identifiers gets the same SUBSCRIBE without one, instead of a
/// failed subscribe (or, sent anyway, a protocol error from the broker).
#[tokio::test]
async fn a_subscription_made_before_connack_survives_a_broker_without_identifiers() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let broker = Scripted::start(V5, move |mut c| {
        let log = log.clone();
        async move {
            c.next().await;
            let mut ack = ConnAck::new(ReasonCode::Success);
            ack.properties.subscription_identifier_available = Some(false);
            c.send(Packet::ConnAck(ack)).await;
            while let Some(bytes) = c.next().await {
                if let Packet::Subscribe(s) = decode(&bytes, V5) {
                    log.lock()
                        .unwrap()
                        .push(s.properties.subscription_identifier);
                    let codes = [ReasonCode::GrantedQoS1];
                    c.send(Packet::SubAck(mqtt_sansio::SubAck::new(
                        s.packet_id,
                        &codes,
                    )))
                    .await;
                    let mut p = mqtt_sansio::Publish::new(
                        mqtt_sansio::TopicName::new("a/b").unwrap(),
                        b"routed",
                    );
                    p.qos_pid = mqtt_sansio::QosPid::AtMostOnce;
                    c.send(Packet::Publish(p)).await;
                }
            }
        }
    })
    .await;
    let (client, _e) = Client::new(options(&broker.url, V5, "noids")).unwrap();
    let mut stream = timeout(WAIT, client.subscribe("a/+", QoS::AtLeastOnce))
        .await
        .unwrap()
        .unwrap();
    let m = timeout(WAIT, stream.recv()).await.unwrap().unwrap();
    assert_eq!(&m.payload[..], b"routed");
    assert_eq!(
        *seen.lock().unwrap(),
        [None],
        "only the SUBSCRIBE without an identifier"
    );
}

/// The store keeps a small control region between control packets: a long CONNECT and a
/// DISCONNECT with a reason string larger than any fixed region (it was 512 bytes, and such a
/// DISCONNECT closed the connection without one, which makes the broker publish the will)
/// grow it, and go out whole.
#[tokio::test]
async fn a_disconnect_larger_than_the_idle_control_region_still_goes_out_whole() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Option<String>)>();
    let broker = Scripted::start(V5, move |mut c| {
        let seen = seen_tx.clone();
        async move {
            while let Some(bytes) = c.next().await {
                match decode(&bytes, V5) {
                    Packet::Connect(connect) => {
                        let _ = seen.send(("connect".into(), connect.username.map(str::to_string)));
                        c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                            .await;
                    }
                    Packet::Disconnect(d) => {
                        let reason = d.properties.reason_string.map(str::to_string);
                        let _ = seen.send(("disconnect".into(), reason));
                        return;
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let mut o = options(&broker.url, V5, "control-region");
    let user = "u".repeat(300);
    o.protocol.username = Some(user.clone());
    let (client, _events) = connect(o).await;
    let reason = "r".repeat(900);
    let options = mqtt_client_tokio::DisconnectOptions {
        reason_string: Some(reason.clone()),
        ..Default::default()
    };
    timeout(WAIT, client.disconnect_with(options))
        .await
        .expect("disconnect timed out")
        .expect("disconnect");
    let mut seen = Vec::new();
    while let Ok(Some(s)) = timeout(WAIT, seen_rx.recv()).await {
        let done = s.0 == "disconnect";
        seen.push(s);
        if done {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            ("connect".to_string(), Some(user)),
            ("disconnect".to_string(), Some(reason))
        ]
    );
}

/// A full e2e run stalled: mosquitto had 1,024 QoS 2 messages of a clean session in flight
/// to our subscriber against its Receive Maximum of 64, the table of incoming messages was
/// full at its bound, the session left the next message with the broker and reconnected to
/// have it sent again, and the broker, keeping no session, dropped the rest. The table now
/// grows to every packet identifier there is: nothing is left with the broker, the broker's
/// excess is reported in a notice, and every message arrives once on the one connection.
#[tokio::test]
async fn a_clean_session_flooded_past_any_table_bound_loses_nothing() {
    const FLOOD: u16 = 1_500;
    let completed = Arc::new(AtomicU32::new(0));
    let done = completed.clone();
    let broker = Scripted::start(V5, move |mut c| {
        let done = done.clone();
        async move {
            c.next().await;
            c.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                .await;
            while let Some(bytes) = c.next().await {
                match decode(&bytes, V5) {
                    Packet::Subscribe(s) => {
                        let codes = [ReasonCode::GrantedQoS2];
                        c.send(Packet::SubAck(mqtt_sansio::SubAck::new(
                            s.packet_id,
                            &codes,
                        )))
                        .await;
                        // Every message at once, none of them released yet: the client's
                        // Receive Maximum (64 by default) is ignored.
                        for id in 1..=FLOOD {
                            let payload = id.to_be_bytes();
                            let mut p = mqtt_sansio::Publish::new(
                                mqtt_sansio::TopicName::new("flood").unwrap(),
                                &payload,
                            );
                            let pid = mqtt_sansio::PacketId::new(id).unwrap();
                            p.qos_pid = mqtt_sansio::QosPid::ExactlyOnce(pid);
                            c.send(Packet::Publish(p)).await;
                        }
                    }
                    Packet::PubRec(r) => {
                        c.send(Packet::PubRel(PubResponse::new(r.packet_id))).await;
                    }
                    Packet::PubComp(_) => {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let (client, mut events) = connect(options(&broker.url, V5, "flooded")).await;
    let mut stream = timeout(WAIT, client.subscribe("flood", QoS::ExactlyOnce))
        .await
        .unwrap()
        .unwrap();
    let mut got = BTreeMap::<Vec<u8>, u32>::new();
    let mut received = 0;
    while got.len() < usize::from(FLOOD) {
        let m = timeout(WAIT, stream.recv())
            .await
            .unwrap_or_else(|_| panic!("stalled after {} messages", got.len()))
            .expect("stream open");
        *got.entry(m.payload.to_vec()).or_default() += 1;
        // Bounded: a client that reconnects to have messages sent again gets the flood
        // again, from the start, for ever.
        received += 1;
        assert!(
            received <= 2 * FLOOD,
            "{} connections, {} distinct of {received} messages",
            broker.connections(),
            got.len()
        );
    }
    assert!(got.values().all(|&n| n == 1), "exactly once");
    let deadline = tokio::time::Instant::now() + WAIT;
    while completed.load(Ordering::SeqCst) < u32::from(FLOOD) {
        assert!(tokio::time::Instant::now() < deadline, "PUBCOMPs missing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        broker.connections(),
        1,
        "no reconnect to have a message sent again"
    );
    let mut notices = Vec::new();
    while let Ok(Some(e)) = timeout(Duration::from_millis(200), events.recv()).await {
        if let Event::Notice(n @ Notice::ReceiveMaximumExceeded { .. }) = e {
            notices.push(n);
        }
    }
    assert!(
        matches!(
            notices.as_slice(),
            [Notice::ReceiveMaximumExceeded {
                deferred: false,
                ..
            }]
        ),
        "the excess is reported, once, and nothing is deferred: {notices:?}"
    );
}
