//! The client over tokio `TcpStream`s (through `embedded-io-adapters`) against a real
//! mosquitto on a free loopback port: QoS 0/1/2 both ways, will, retained messages, keep
//! alive, credentials, and reconnects that lose nothing. Both protocol versions.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS, TopicName};
use mqtt_client_nb::{Client, Error, Options, Will};
use mqtt_test_support::{Broker, FaultMode, FaultProxy};
use support::{copy, poll_for, poll_until, tcp, Ev, Tcp, TokioClock};
use tokio::net::TcpStream;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// Caller-owned memory for one client.
struct Mem {
    rx: Vec<u8>,
    tx: Vec<u8>,
    store: Vec<u8>,
}

impl Mem {
    fn new() -> Self {
        Self {
            rx: vec![0; 1024],
            tx: vec![0; 1024],
            store: vec![0; 8192],
        }
    }

    fn client<'b>(&'b mut self, options: Options<'b>) -> Client<'b, Tcp> {
        Client::new(options, &mut self.rx, &mut self.tx, &mut self.store).unwrap()
    }
}

fn options(v: ProtocolVersion, id: &str) -> Options<'_> {
    let mut o = Options::new(v);
    o.client_id = Some(id);
    o
}

/// Connects `client` to `addr` and waits for CONNACK.
async fn connect(client: &mut Client<'_, Tcp>, clock: &TokioClock, addr: SocketAddr) {
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

/// Subscribes and waits for SUBACK.
async fn subscribe(client: &mut Client<'_, Tcp>, clock: &TokioClock, filter: &str, qos: QoS) {
    let id = client.subscribe(filter, qos).unwrap().get();
    let seen = poll_until(client, clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;
    assert!(
        matches!(seen.last(), Some(Ev::Subscribed { pid, codes }) if *pid == id && !codes[0].is_error()),
        "{seen:?}"
    );
}

/// Polls two clients at once (each `poll` is cancelled whenever the other one has an event)
/// until `done` holds for what they reported, at most `secs` seconds.
async fn pump(
    a: &mut Client<'_, Tcp>,
    b: &mut Client<'_, Tcp>,
    clock: &TokioClock,
    secs: u64,
    mut done: impl FnMut(&[Ev], &[Ev]) -> bool,
) -> (Vec<Ev>, Vec<Ev>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    for _ in 0..100_000 {
        if done(&ea, &eb) {
            return (ea, eb);
        }
        tokio::select! {
            ev = async { copy(&a.poll(clock).await) } => ea.push(ev),
            ev = async { copy(&b.poll(clock).await) } => eb.push(ev),
            _ = tokio::time::sleep_until(deadline) => panic!("timed out: a {ea:?}, b {eb:?}"),
        }
        for ev in ea.iter().chain(&eb) {
            assert!(!matches!(ev, Ev::Error(_)), "a {ea:?}, b {eb:?}");
        }
    }
    panic!("too many events: a {ea:?}, b {eb:?}");
}

fn data(events: &[Ev]) -> Vec<(String, Vec<u8>, QoS, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Message {
                topic,
                payload,
                qos,
                retain,
                ..
            } => Some((topic.clone(), payload.clone(), *qos, *retain)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn qos_0_1_2_both_directions() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let (mut ma, mut mb) = (Mem::new(), Mem::new());
        let mut a = ma.client(options(v, "nb-qos-a"));
        let mut b = mb.client(options(v, "nb-qos-b"));
        connect(&mut a, &clock, broker.addr()).await;
        connect(&mut b, &clock, broker.addr()).await;
        subscribe(&mut a, &clock, "nb/qos/to-a/#", QoS::ExactlyOnce).await;
        subscribe(&mut b, &clock, "nb/qos/to-b/#", QoS::ExactlyOnce).await;
        let mut ids = (Vec::new(), Vec::new());
        for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
            .into_iter()
            .enumerate()
        {
            ids.0.extend(
                a.publish(
                    &format!("nb/qos/to-b/{i}"),
                    qos,
                    false,
                    format!("from a {i}").as_bytes(),
                )
                .unwrap(),
            );
            ids.1.extend(
                b.publish(
                    &format!("nb/qos/to-a/{i}"),
                    qos,
                    false,
                    format!("from b {i}").as_bytes(),
                )
                .unwrap(),
            );
        }
        let complete = |e: &[Ev]| {
            data(e).len() == 3
                && e.iter()
                    .filter(|e| matches!(e, Ev::Published { .. }))
                    .count()
                    == 2
        };
        let (ea, eb) = pump(&mut a, &mut b, &clock, 10, |ea, eb| {
            complete(ea) && complete(eb)
        })
        .await;
        for (events, from, ids) in [(&ea, "b", &ids.0), (&eb, "a", &ids.1)] {
            let got = data(events);
            let expect: Vec<_> = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
                .into_iter()
                .enumerate()
                .map(|(i, qos)| {
                    let to = if from == "a" { "b" } else { "a" };
                    (
                        format!("nb/qos/to-{to}/{i}"),
                        format!("from {from} {i}").into_bytes(),
                        qos,
                        false,
                    )
                })
                .collect();
            assert_eq!(got, expect, "{v:?}");
            let published: Vec<(u16, QoS)> = events
                .iter()
                .filter_map(|e| match e {
                    Ev::Published { pid, qos, reason } => {
                        assert!(!reason.is_error());
                        Some((*pid, *qos))
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(
                published,
                [
                    (ids[0].get(), QoS::AtLeastOnce),
                    (ids[1].get(), QoS::ExactlyOnce)
                ]
            );
        }
        a.disconnect().unwrap();
        b.disconnect().unwrap();
        poll_until(&mut a, &clock, 5, |e| *e == Ev::Disconnected).await;
        poll_until(&mut b, &clock, 5, |e| *e == Ev::Disconnected).await;
    }
}

#[tokio::test]
async fn will_is_published_on_abrupt_disconnect_only() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let (mut mw, mut ms) = (Mem::new(), Mem::new());
        let mut o = options(v, "nb-will");
        let mut will = Will::new(TopicName::new("nb/will").unwrap(), b"gone");
        will.qos = QoS::AtLeastOnce;
        o.will = Some(will);
        let mut dying = mw.client(o);
        let mut watcher = ms.client(options(v, "nb-will-watcher"));
        connect(&mut watcher, &clock, broker.addr()).await;
        subscribe(&mut watcher, &clock, "nb/will", QoS::AtLeastOnce).await;

        // A graceful DISCONNECT discards the will.
        connect(&mut dying, &clock, broker.addr()).await;
        dying.disconnect().unwrap();
        poll_until(&mut dying, &clock, 5, |e| *e == Ev::Disconnected).await;
        let quiet = poll_for(&mut watcher, &clock, 300).await;
        assert!(data(&quiet).is_empty(), "{quiet:?}");

        // Dropping the transport without DISCONNECT has the broker publish it.
        connect(&mut dying, &clock, broker.addr()).await;
        drop(dying.close());
        let seen = poll_until(&mut watcher, &clock, 5, |e| matches!(e, Ev::Message { .. })).await;
        assert_eq!(
            data(&seen),
            [("nb/will".into(), b"gone".to_vec(), QoS::AtLeastOnce, false)]
        );
        watcher.disconnect().unwrap();
        poll_until(&mut watcher, &clock, 5, |e| *e == Ev::Disconnected).await;
    }
}

#[tokio::test]
async fn retained_message_reaches_a_later_subscriber() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let (mut mp, mut ms) = (Mem::new(), Mem::new());
        let mut publisher = mp.client(options(v, "nb-retain-pub"));
        connect(&mut publisher, &clock, broker.addr()).await;
        let topic = format!("nb/retained/{v:?}");
        publisher
            .publish(&topic, QoS::AtLeastOnce, true, b"kept")
            .unwrap();
        poll_until(&mut publisher, &clock, 5, |e| {
            matches!(e, Ev::Published { .. })
        })
        .await;

        let mut late = ms.client(options(v, "nb-retain-sub"));
        connect(&mut late, &clock, broker.addr()).await;
        late.subscribe(&topic, QoS::AtLeastOnce).unwrap();
        let seen = poll_until(&mut late, &clock, 5, |e| matches!(e, Ev::Message { .. })).await;
        assert_eq!(
            data(&seen),
            [(topic.clone(), b"kept".to_vec(), QoS::AtLeastOnce, true)]
        );
        // Clear it for the next run.
        publisher
            .publish(&topic, QoS::AtLeastOnce, true, b"")
            .unwrap();
        poll_until(&mut publisher, &clock, 5, |e| {
            matches!(e, Ev::Published { .. })
        })
        .await;
    }
}

#[tokio::test]
async fn keepalive_v3_1_1_keeps_an_idle_connection_and_detects_a_dead_one() {
    keepalive(ProtocolVersion::V3_1_1).await;
}

#[tokio::test]
async fn keepalive_v5_keeps_an_idle_connection_and_detects_a_dead_one() {
    keepalive(ProtocolVersion::V5).await;
}

/// Keep alive 2 s: idle for 4 s without being dropped, then a stalled path is noticed
/// within 1.5 keep alives.
async fn keepalive(v: ProtocolVersion) {
    let broker = Broker::start().unwrap();
    {
        let clock = TokioClock::new();
        let proxy = FaultProxy::start(broker.addr(), FaultMode::new())
            .await
            .unwrap();
        let mut mem = Mem::new();
        let mut o = options(v, "nb-keepalive");
        o.keep_alive = Duration::from_secs(2);
        let mut client = mem.client(o);
        connect(&mut client, &clock, proxy.addr()).await;
        // 4 s idle: without PINGREQ the broker would drop us after 3 s.
        let idle = poll_for(&mut client, &clock, 4_000).await;
        assert!(idle.is_empty(), "{idle:?}");
        subscribe(&mut client, &clock, "nb/keepalive", QoS::AtMostOnce).await;
        let stats = proxy.stats();
        // A silent network path: the next PINGREQ goes unanswered.
        proxy.stall(true);
        let start = tokio::time::Instant::now();
        let seen = poll_until(&mut client, &clock, 6, |e| *e == Ev::Disconnected).await;
        assert_eq!(
            seen,
            [Ev::Error(Error::KeepAliveTimeout), Ev::Disconnected],
            "{v:?}"
        );
        assert!(
            start.elapsed() <= Duration::from_millis(3_500),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(stats.cuts, 0);
        proxy.stall(false);
    }
}

#[tokio::test]
async fn username_and_password() {
    let broker = Broker::builder()
        .credentials("device", "s3cret")
        .start()
        .unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let mut mem = Mem::new();
        let mut o = options(v, "nb-auth");
        o.username = Some("device");
        o.password = Some(b"wrong");
        let mut client = mem.client(o);
        client.connect(tcp(broker.addr()).await).unwrap();
        let seen = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
        assert!(
            matches!(seen[..], [Ev::BeforeConnect, Ev::Error(Error::Refused(rc)), Ev::Disconnected] if rc.is_error()),
            "{seen:?}"
        );
        drop(client);

        let mut o = options(v, "nb-auth");
        o.username = Some("device");
        o.password = Some(b"s3cret");
        let mut client = mem.client(o);
        connect(&mut client, &clock, broker.addr()).await;
        client.disconnect().unwrap();
        poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
    }
}

/// A publisher behind a proxy that cuts its connection at random moments, reconnecting with
/// `poll_reconnecting` and a persistent session, while a subscriber listens directly: every
/// QoS 1 message arrives at least once, every QoS 2 message exactly once.
#[tokio::test]
async fn reconnects_resend_and_lose_nothing() {
    const N: usize = 60;
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let mode = FaultMode::new()
            .random_cuts(Duration::from_millis(40), Duration::from_millis(160))
            .seed(if v.is_v5() { 5 } else { 4 });
        let proxy = FaultProxy::start(broker.addr(), mode).await.unwrap();
        let (mut mp, mut ms) = (Mem::new(), Mem::new());
        let (pub_id, sub_id) = (
            format!("nb-resend-pub-{}", v.level()),
            format!("nb-resend-sub-{}", v.level()),
        );
        let mut o = options(v, &pub_id);
        o.clean_start = false;
        o.session_expiry = 300;
        o.reconnect.initial = Duration::from_millis(10);
        o.reconnect.max = Duration::from_millis(100);
        let mut publisher = mp.client(o);
        let mut so = options(v, &sub_id);
        so.clean_start = false;
        so.session_expiry = 300;
        let mut subscriber = ms.client(so);
        connect(&mut subscriber, &clock, broker.addr()).await;
        let topic = format!("nb/resend/{v:?}");
        subscribe(&mut subscriber, &clock, &topic, QoS::ExactlyOnce).await;

        let addr = proxy.addr();
        let (mut queued, mut completed, mut received) =
            (0usize, 0usize, BTreeMap::<Vec<u8>, u32>::new());
        let (mut cuts, mut connects) = (0u32, 0u32);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let mut last_publish = tokio::time::Instant::now();
        for _ in 0..200_000 {
            if completed == N && received.len() == N {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "queued {queued}, completed {completed}, received {}, cuts {cuts}",
                received.len()
            );
            // One message every 10 ms, so that the cuts fall in the middle of the stream.
            let due = tokio::time::Instant::now() >= last_publish + Duration::from_millis(10);
            if queued < N && due && publisher.session().store_usage().0 < 4096 {
                last_publish = tokio::time::Instant::now();
                let qos = if queued % 2 == 0 {
                    QoS::AtLeastOnce
                } else {
                    QoS::ExactlyOnce
                };
                publisher
                    .publish(&topic, qos, false, format!("m{queued:03}").as_bytes())
                    .unwrap();
                queued += 1;
            }
            tokio::select! {
                ev = async {
                    copy(&publisher.poll_reconnecting(&clock, |_old, _redirect| async move {
                        TcpStream::connect(addr).await.map(FromTokio::new)
                    }).await)
                } => match ev {
                    Ev::Published { reason, .. } => { assert!(!reason.is_error()); completed += 1 }
                    Ev::Connected { session_present } => { connects += 1; assert_eq!(session_present, connects > 1, "{v:?}") }
                    Ev::Disconnected => cuts += 1,
                    Ev::BeforeConnect | Ev::Error(Error::ConnectionClosed | Error::Transport(_) | Error::OpenFailed) => {}
                    other => panic!("publisher: {other:?}"),
                },
                ev = async { copy(&subscriber.poll(&clock).await) } => match ev {
                    Ev::Message { payload, qos, .. } => {
                        *received.entry(payload.clone()).or_default() += 1;
                        let n: usize = std::str::from_utf8(&payload[1..]).unwrap().parse().unwrap();
                        let expected = if n.is_multiple_of(2) { QoS::AtLeastOnce } else { QoS::ExactlyOnce };
                        assert_eq!(qos, expected);
                    }
                    other => panic!("subscriber: {other:?}"),
                },
                // Publish more now and then, even when nothing happens.
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        assert_eq!(completed, N, "every publish completed");
        assert_eq!(received.len(), N, "every message arrived: {received:?}");
        for (payload, count) in &received {
            let n: usize = std::str::from_utf8(&payload[1..]).unwrap().parse().unwrap();
            if n % 2 == 1 {
                assert_eq!(*count, 1, "QoS 2 message m{n:03} delivered {count} times");
            }
        }
        assert!(
            cuts >= 2,
            "the proxy cut only {cuts} times; the test proves nothing"
        );
        println!("{v:?}: {N} messages over {connects} connections");
        drop(publisher.close());
        subscriber.disconnect().unwrap();
        poll_until(&mut subscriber, &clock, 5, |e| *e == Ev::Disconnected).await;
    }
}
