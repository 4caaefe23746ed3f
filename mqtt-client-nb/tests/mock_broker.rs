//! The client against a scripted broker over an in-memory duplex stream: the connection
//! flow, and `poll` cancelled at arbitrary points while bytes trickle in both directions.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_client_nb::mqtt_sansio::{
    ConnAck, Decoded, Packet, ProtocolVersion, PubResponse, Publish, QoS, QosPid, ReasonCode,
    TopicName,
};
use mqtt_client_nb::{Client, Error, Options};
use support::{copy, poll_until, Ev, TokioClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf};
use tokio::sync::mpsc;

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

type Transport = FromTokio<DuplexStream>;

fn enc(packet: Packet<'_>, v: ProtocolVersion) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(v).unwrap()];
    packet.encode(v, &mut buf).unwrap();
    buf
}

/// Reads one whole packet's bytes from the client.
async fn next_packet(
    rd: &mut ReadHalf<DuplexStream>,
    buf: &mut Vec<u8>,
    v: ProtocolVersion,
) -> Option<Vec<u8>> {
    loop {
        if let Ok(Decoded::Packet { len, .. }) = Packet::decode(buf, v, u32::MAX) {
            return Some(buf.drain(..len).collect());
        }
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut chunk))
            .await
            .expect("client silent for 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn decode(bytes: &[u8], v: ProtocolVersion) -> Packet<'_> {
    match Packet::decode(bytes, v, u32::MAX).unwrap() {
        Decoded::Packet { packet, .. } => packet,
        other => panic!("{other:?}"),
    }
}

struct Buffers {
    rx: [u8; 512],
    tx: [u8; 256],
    store: [u8; 4096],
}

impl Buffers {
    fn new() -> Self {
        Self {
            rx: [0; 512],
            tx: [0; 256],
            store: [0; 4096],
        }
    }
}

#[tokio::test]
async fn connect_subscribe_publish_and_receive_against_a_scripted_broker() {
    for v in BOTH {
        let clock = TokioClock::new();
        let mut bufs = Buffers::new();
        let mut options = Options::new(v);
        options.client_id = Some("mock");
        let mut client: Client<'_, Transport> =
            Client::new(options, &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();
        let (ours, theirs) = tokio::io::duplex(64);
        client.connect(FromTokio::new(ours)).unwrap();
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let broker = tokio::spawn(async move {
            let mut buf = Vec::new();
            let connect = next_packet(&mut rd, &mut buf, v).await.unwrap();
            let Packet::Connect(c) = decode(&connect, v) else {
                panic!()
            };
            assert_eq!(c.client_id, "mock");
            assert_eq!(c.keep_alive, 120);
            wr.write_all(&enc(Packet::ConnAck(ConnAck::new(ReasonCode::Success)), v))
                .await
                .unwrap();
            // PUBLISH QoS 1 from the client: acknowledge; then send one QoS 2 message.
            let publish = next_packet(&mut rd, &mut buf, v).await.unwrap();
            let Packet::Publish(p) = decode(&publish, v) else {
                panic!()
            };
            assert_eq!(p.payload, b"up");
            let id = p.packet_id().unwrap();
            wr.write_all(&enc(Packet::PubAck(PubResponse::new(id)), v))
                .await
                .unwrap();
            let mut down = Publish::new(TopicName::new("t/down").unwrap(), b"down");
            down.qos_pid = QosPid::new(QoS::ExactlyOnce, id);
            wr.write_all(&enc(Packet::Publish(down), v)).await.unwrap();
            let pubrec = next_packet(&mut rd, &mut buf, v).await.unwrap();
            assert!(matches!(decode(&pubrec, v), Packet::PubRec(_)));
            wr.write_all(&enc(Packet::PubRel(PubResponse::new(id)), v))
                .await
                .unwrap();
            let pubcomp = next_packet(&mut rd, &mut buf, v).await.unwrap();
            assert!(matches!(decode(&pubcomp, v), Packet::PubComp(_)));
            let disconnect = next_packet(&mut rd, &mut buf, v).await.unwrap();
            assert!(matches!(decode(&disconnect, v), Packet::Disconnect(_)));
        });
        let seen = poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        assert_eq!(
            seen,
            [
                Ev::BeforeConnect,
                Ev::Connected {
                    session_present: false
                }
            ]
        );
        let id = client
            .publish("t/up", QoS::AtLeastOnce, false, b"up")
            .unwrap()
            .unwrap();
        let seen = poll_until(&mut client, &clock, 5, |e| matches!(e, Ev::Message { .. })).await;
        assert_eq!(
            seen,
            [
                Ev::Published {
                    pid: id.get(),
                    qos: QoS::AtLeastOnce,
                    reason: ReasonCode::Success
                },
                Ev::Message {
                    topic: "t/down".into(),
                    payload: b"down".to_vec(),
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    dup: false
                },
            ]
        );
        // The QoS 2 flow completes, then a graceful disconnect.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = support::poll_for(&mut client, &clock, 100).await;
        client.disconnect().unwrap();
        let seen = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
        assert_eq!(
            seen,
            [Ev::Disconnected],
            "no error on a graceful disconnect"
        );
        assert!(matches!(
            copy(&client.poll(&clock).await),
            Ev::Error(Error::NotConnected)
        ));
        broker.await.unwrap();
    }
}

/// A tiny deterministic generator for chunk sizes and cancellation delays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test]
async fn poll_cancelled_at_random_points_loses_and_duplicates_nothing() {
    const DOWN: u16 = 60;
    const UP: u16 = 40;
    for v in BOTH {
        let clock = TokioClock::new();
        let mut bufs = Buffers::new();
        let mut options = Options::new(v);
        options.client_id = Some("cancel");
        let mut client: Client<'_, Transport> =
            Client::new(options, &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();
        // A 16-byte pipe: writes are partial and block, reads return fragments.
        let (ours, theirs) = tokio::io::duplex(16);
        client.connect(FromTokio::new(ours)).unwrap();
        let (mut rd, mut wr) = tokio::io::split(theirs);

        // One writer task owns the broker's sending half; it trickles bytes in small pieces.
        let (to_client, mut outbox) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            let mut rng = Lcg(7);
            while let Some(bytes) = outbox.recv().await {
                for piece in bytes.chunks(1 + rng.below(5) as usize) {
                    wr.write_all(piece).await.unwrap();
                    if rng.below(4) == 0 {
                        tokio::time::sleep(Duration::from_micros(300)).await;
                    }
                }
            }
        });
        // The reader answers the client's QoS 1 publishes and records everything.
        let received = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let log = received.clone();
        let acks = to_client.clone();
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(bytes) = next_packet(&mut rd, &mut buf, v).await {
                let packet = decode(&bytes, v);
                match packet {
                    Packet::Connect(_) => {
                        acks.send(enc(Packet::ConnAck(ConnAck::new(ReasonCode::Success)), v))
                            .unwrap();
                    }
                    Packet::Publish(p) => {
                        if let Some(id) = p.packet_id() {
                            acks.send(enc(Packet::PubAck(PubResponse::new(id)), v))
                                .unwrap();
                        }
                    }
                    _ => {}
                }
                log.lock().unwrap().push(bytes);
            }
        });
        let seen = poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        assert_eq!(seen.len(), 2);
        // The broker's messages: QoS 1 and QoS 0 alternating, numbered.
        for i in 1..=DOWN {
            let payload = format!("down-{i}");
            let mut p = Publish::new(TopicName::new("d").unwrap(), payload.as_bytes());
            if i % 2 == 1 {
                p.qos_pid = QosPid::new(
                    QoS::AtLeastOnce,
                    mqtt_client_nb::mqtt_sansio::PacketId::new(i).unwrap(),
                );
            }
            to_client.send(enc(Packet::Publish(p), v)).unwrap();
        }

        let mut rng = Lcg(42);
        let mut events = Vec::new();
        let mut queued = 0u16;
        let mut cancelled = 0u32;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let done = |events: &Vec<Ev>| {
            let data = events
                .iter()
                .filter(|e| matches!(e, Ev::Message { .. }))
                .count();
            let acked = events
                .iter()
                .filter(|e| matches!(e, Ev::Published { .. }))
                .count();
            data == usize::from(DOWN) && acked == usize::from(UP)
        };
        for _ in 0..200_000 {
            if done(&events) {
                break;
            }
            let tail = &events[events.len().saturating_sub(8)..];
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck after {} events: {tail:?}",
                events.len()
            );
            assert!(!matches!(events.last(), Some(Ev::Error(_))), "{tail:?}");
            let wait = Duration::from_micros(rng.below(400));
            tokio::select! {
                ev = async { copy(&client.poll(&clock).await) } => events.push(ev),
                _ = tokio::time::sleep(wait) => {
                    cancelled += 1;
                    // Publishing while waiting: the cancelled poll left the client usable.
                    if queued < UP && rng.below(3) == 0 {
                        queued += 1;
                        client.publish("u", QoS::AtLeastOnce, false, format!("up-{queued}").as_bytes()).unwrap();
                    }
                }
            }
        }
        assert!(done(&events), "{} events", events.len());
        assert!(cancelled > 100, "poll was cancelled only {cancelled} times");
        let downs: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Ev::Message { payload, dup, .. } => {
                    assert!(!dup);
                    Some(String::from_utf8(payload.clone()).unwrap())
                }
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (1..=DOWN).map(|i| format!("down-{i}")).collect();
        assert_eq!(downs, expected, "every message once, in order");

        // Let the last acknowledgements out, then look at what the broker got.
        let _ = support::poll_for(&mut client, &clock, 100).await;
        drop(client.close());
        drop(to_client);
        reader.await.unwrap();
        writer.abort();
        let received = received.lock().unwrap();
        let ups: Vec<String> = received
            .iter()
            .filter_map(|b| match decode(b, v) {
                Packet::Publish(p) => Some(String::from_utf8(p.payload.to_vec()).unwrap()),
                _ => None,
            })
            .collect();
        let expected: Vec<String> = (1..=UP).map(|i| format!("up-{i}")).collect();
        assert_eq!(ups, expected, "every publish once, in order, bytes intact");
        let pubacks = received
            .iter()
            .filter(|b| matches!(decode(b, v), Packet::PubAck(_)))
            .count();
        assert_eq!(
            pubacks,
            usize::from(DOWN / 2),
            "one PUBACK per QoS 1 message"
        );
    }
}

/// Accepts the next CONNECT on `theirs` with `session_present`, returning the halves.
async fn accept(
    theirs: DuplexStream,
    v: ProtocolVersion,
    session_present: bool,
) -> (
    ReadHalf<DuplexStream>,
    tokio::io::WriteHalf<DuplexStream>,
    Vec<u8>,
) {
    let (mut rd, mut wr) = tokio::io::split(theirs);
    let mut buf = Vec::new();
    let connect = next_packet(&mut rd, &mut buf, v).await.unwrap();
    assert!(matches!(decode(&connect, v), Packet::Connect(_)));
    let mut ack = ConnAck::new(ReasonCode::Success);
    ack.session_present = session_present;
    wr.write_all(&enc(Packet::ConnAck(ack), v)).await.unwrap();
    (rd, wr, buf)
}

#[tokio::test(start_paused = true)]
async fn unanswered_ping_ends_the_connection_after_one_and_a_half_keepalives() {
    for v in BOTH {
        let clock = TokioClock::new();
        let mut bufs = Buffers::new();
        let mut options = Options::new(v);
        options.keep_alive = Duration::from_secs(2);
        let mut client: Client<'_, Transport> =
            Client::new(options, &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();
        let (ours, theirs) = tokio::io::duplex(256);
        client.connect(FromTokio::new(ours)).unwrap();
        let broker = tokio::spawn(async move {
            let (mut rd, wr, mut buf) = accept(theirs, v, false).await;
            let ping = next_packet(&mut rd, &mut buf, v).await.unwrap();
            assert!(matches!(decode(&ping, v), Packet::PingReq));
            // Kept open (in the task's output) but silent.
            (tokio::time::Instant::now(), rd, wr)
        });
        let start = tokio::time::Instant::now();
        poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        let seen = poll_until(&mut client, &clock, 10, |e| *e == Ev::Disconnected).await;
        assert_eq!(seen, [Ev::Error(Error::KeepAliveTimeout), Ev::Disconnected]);
        let pinged = broker.await.unwrap().0 - start;
        assert_eq!(
            pinged.as_millis(),
            2000,
            "PINGREQ after one keep alive of silence"
        );
        assert_eq!(
            start.elapsed().as_millis(),
            3000,
            "given up half a keep alive later"
        );
    }
}

#[tokio::test]
async fn a_new_transport_resumes_the_session_and_resends_with_dup() {
    for v in BOTH {
        let clock = TokioClock::new();
        let mut bufs = Buffers::new();
        let mut options = Options::new(v);
        options.client_id = Some("resume");
        options.clean_start = false;
        options.session_expiry = 600;
        let mut client: Client<'_, Transport> =
            Client::new(options, &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();

        let (ours, theirs) = tokio::io::duplex(256);
        client.connect(FromTokio::new(ours)).unwrap();
        let first = tokio::spawn(async move {
            let (mut rd, wr, mut buf) = accept(theirs, v, false).await;
            for _ in 0..3 {
                let p = next_packet(&mut rd, &mut buf, v).await.unwrap();
                assert!(matches!(decode(&p, v), Packet::Publish(_)));
            }
            // Drop the connection without acknowledging anything.
            drop((rd, wr));
        });
        poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        let ids: Vec<u16> = (0..3)
            .map(|i| {
                let qos = if i == 1 {
                    QoS::ExactlyOnce
                } else {
                    QoS::AtLeastOnce
                };
                client
                    .publish("r", qos, false, &[i])
                    .unwrap()
                    .unwrap()
                    .get()
            })
            .collect();
        let seen = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
        assert_eq!(seen, [Ev::Error(Error::ConnectionClosed), Ev::Disconnected]);
        first.await.unwrap();

        let (ours, theirs) = tokio::io::duplex(256);
        client.connect(FromTokio::new(ours)).unwrap();
        let second = tokio::spawn(async move {
            let (mut rd, mut wr, mut buf) = accept(theirs, v, true).await;
            let mut resent = Vec::new();
            for _ in 0..3 {
                let bytes = next_packet(&mut rd, &mut buf, v).await.unwrap();
                let Packet::Publish(p) = decode(&bytes, v) else {
                    panic!()
                };
                assert!(p.dup, "a resent PUBLISH carries DUP");
                resent.push((p.payload[0], p.packet_id().unwrap()));
                let ack = match p.qos_pid.qos() {
                    QoS::ExactlyOnce => Packet::PubRec(PubResponse::new(p.packet_id().unwrap())),
                    _ => Packet::PubAck(PubResponse::new(p.packet_id().unwrap())),
                };
                wr.write_all(&enc(ack, v)).await.unwrap();
            }
            let bytes = next_packet(&mut rd, &mut buf, v).await.unwrap();
            let Packet::PubRel(r) = decode(&bytes, v) else {
                panic!()
            };
            wr.write_all(&enc(Packet::PubComp(PubResponse::new(r.packet_id)), v))
                .await
                .unwrap();
            // Keep the connection open until the client is done.
            let _ = next_packet(&mut rd, &mut buf, v).await;
            resent
        });
        let seen = poll_until(&mut client, &clock, 5, |e| {
            matches!(
                e,
                Ev::Published {
                    qos: QoS::ExactlyOnce,
                    ..
                }
            )
        })
        .await;
        assert_eq!(
            seen[..2],
            [
                Ev::BeforeConnect,
                Ev::Connected {
                    session_present: true
                }
            ]
        );
        let mut done: Vec<u16> = seen
            .iter()
            .filter_map(|e| match e {
                Ev::Published { pid, .. } => Some(*pid),
                _ => None,
            })
            .collect();
        done.sort_unstable();
        assert_eq!(done, ids, "every message completed after the resume");
        drop(client.close());
        let resent = second.await.unwrap();
        assert_eq!(
            resent.iter().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 2],
            "in order"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn poll_reconnecting_backs_off_between_failed_attempts() {
    let v = ProtocolVersion::V3_1_1;
    let clock = TokioClock::new();
    let mut bufs = Buffers::new();
    let mut options = Options::new(v);
    options.reconnect.initial = Duration::from_millis(100);
    options.reconnect.max = Duration::from_secs(1);
    options.reconnect.jitter = false;
    let mut client: Client<'_, Transport> =
        Client::new(options, &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let start = tokio::time::Instant::now();
    let mut events = Vec::new();
    let mut broker = None;
    for _ in 0..20 {
        let log = attempts.clone();
        let ev = client
            .poll_reconnecting(&clock, |old: Option<Transport>, _redirect| {
                assert!(old.is_none());
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(start.elapsed().as_millis() as u64);
                    log.len()
                };
                let theirs = (n == 4).then(|| {
                    let (ours, theirs) = tokio::io::duplex(256);
                    (FromTokio::new(ours), theirs)
                });
                let opened = theirs.map(|(ours, theirs)| {
                    broker = Some(tokio::spawn(accept(theirs, v, false)));
                    ours
                });
                async move { opened.ok_or("refused") }
            })
            .await;
        let ev = copy(&ev);
        let connected = matches!(ev, Ev::Connected { .. });
        events.push(ev);
        if connected {
            break;
        }
    }
    assert_eq!(
        events,
        [
            Ev::Error(Error::OpenFailed),
            Ev::Error(Error::OpenFailed),
            Ev::Error(Error::OpenFailed),
            Ev::BeforeConnect,
            Ev::Connected {
                session_present: false
            },
        ]
    );
    assert_eq!(
        *attempts.lock().unwrap(),
        [0, 100, 300, 700],
        "0, then 100, 200, 400 ms apart"
    );
    drop(broker);
}

#[tokio::test]
async fn v5_broker_disconnect_is_reported_then_the_connection_ends() {
    let v = ProtocolVersion::V5;
    let clock = TokioClock::new();
    let mut bufs = Buffers::new();
    let mut client: Client<'_, Transport> =
        Client::new(Options::new(v), &mut bufs.rx, &mut bufs.tx, &mut bufs.store).unwrap();
    let (ours, theirs) = tokio::io::duplex(256);
    client.connect(FromTokio::new(ours)).unwrap();
    let broker = tokio::spawn(async move {
        let (rd, mut wr, _) = accept(theirs, v, false).await;
        let disconnect = mqtt_client_nb::mqtt_sansio::Disconnect::new(ReasonCode::SessionTakenOver);
        wr.write_all(&enc(Packet::Disconnect(disconnect), v))
            .await
            .unwrap();
        (rd, wr)
    });
    let seen = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
    assert_eq!(
        seen[1..],
        [
            Ev::Connected {
                session_present: false
            },
            Ev::Error(Error::ServerDisconnect(ReasonCode::SessionTakenOver)),
            Ev::Disconnected,
        ]
    );
    assert!(
        client.close().is_some(),
        "the ended transport is handed back"
    );
    drop(broker.await.unwrap());
}

#[test]
fn buffers_too_small_are_refused_up_front_and_nothing_is_queued() {
    let v = ProtocolVersion::V3_1_1;
    let (mut rx, mut tx, mut store) = ([0u8; 256], [0u8; 8], [0u8; 1024]);
    let refused = Client::<Transport>::new(Options::new(v), &mut rx, &mut tx, &mut store);
    assert!(matches!(
        refused,
        Err(Error::TxBufferTooSmall { capacity: 8, .. })
    ));

    let (mut rx, mut tx, mut store) = ([0u8; 256], [0u8; 64], [0u8; 100]);
    let refused = Client::<Transport>::new(Options::new(v), &mut rx, &mut tx, &mut store);
    assert!(
        matches!(refused, Err(Error::Command(_))),
        "store below its fixed regions"
    );

    let (mut rx, mut tx, mut store) = ([0u8; 256], [0u8; 64], [0u8; 1024]);
    let mut client =
        Client::<Transport>::new(Options::new(v), &mut rx, &mut tx, &mut store).unwrap();
    let big = client.publish("t", QoS::AtLeastOnce, false, &[0u8; 100]);
    assert!(matches!(
        big,
        Err(Error::TxBufferTooSmall { capacity: 64, .. })
    ));
    assert!(matches!(
        client.publish("#", QoS::AtMostOnce, false, b""),
        Err(Error::Topic(_))
    ));
    assert_eq!(client.session().store_usage().0, 0, "nothing queued");
    // Offline publishes queue until the store is full, then fail without queueing.
    let mut queued = 0;
    let full = loop {
        match client.publish("t", QoS::AtLeastOnce, false, &[0u8; 40]) {
            Ok(_) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued < 100);
    };
    assert!(queued > 0);
    assert!(matches!(
        full,
        Error::Command(mqtt_client_nb::mqtt_sansio::session::CommandError::StoreFull { .. })
    ));
    assert_eq!(client.disconnect(), Err(Error::NotConnected));
}
