//! The life of a connection, for the failures real brokers caused: a graceful end that drains
//! the QoS 2 handshake, reconnects that back off, a broker over our Receive Maximum, requests
//! the broker cannot serve, a poison message, transient refusals, a broker without 5.0 (with
//! and without the fallback to 3.1.1), and the session's lifecycle features reached from the
//! client (assigned identifier, authentication method, Server Reference, subscriptions
//! renewed after a lost session). Against mosquitto where it shows the case, and a
//! scripted broker over an in-memory stream otherwise.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use mqtt_client_nb::mqtt_sansio::session::{EndCause, Notice};
use mqtt_client_nb::mqtt_sansio::{
    ConnAck, Decoded, Packet, ProtocolVersion, PubResponse, QoS, ReasonCode, SubAck,
};
use mqtt_client_nb::{Client, Error, Options};
use mqtt_test_support::Broker;
use support::{copy, poll_for, poll_until, tcp, Ev, Tcp, TokioClock};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const V5: ProtocolVersion = ProtocolVersion::V5;

type Mem = FromTokio<DuplexStream>;

fn enc(packet: Packet<'_>, v: ProtocolVersion) -> Vec<u8> {
    let mut buf = vec![0u8; packet.encoded_len(v).unwrap()];
    packet.encode(v, &mut buf).unwrap();
    buf
}

/// The broker's end of an in-memory connection: reads whole packets, writes encoded ones.
struct Peer {
    rd: ReadHalf<DuplexStream>,
    wr: WriteHalf<DuplexStream>,
    buf: Vec<u8>,
    v: ProtocolVersion,
}

impl Peer {
    fn pair(v: ProtocolVersion) -> (Mem, Self) {
        let (ours, theirs) = tokio::io::duplex(4096);
        let (rd, wr) = tokio::io::split(theirs);
        let peer = Self {
            rd,
            wr,
            buf: Vec::new(),
            v,
        };
        (FromTokio::new(ours), peer)
    }

    /// The next packet's bytes, or `None` once the client closed.
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Decoded::Packet { len, .. }) = Packet::decode(&self.buf, self.v, u32::MAX) {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(10), self.rd.read(&mut chunk))
                .await
                .expect("client silent for 10 s")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, packet: Packet<'_>) {
        let bytes = enc(packet, self.v);
        self.wr.write_all(&bytes).await.unwrap();
    }
}

fn decode(bytes: &[u8], v: ProtocolVersion) -> Packet<'_> {
    match Packet::decode(bytes, v, u32::MAX).unwrap() {
        Decoded::Packet { packet, .. } => packet,
        other => panic!("{other:?}"),
    }
}

struct Bufs {
    rx: Vec<u8>,
    tx: Vec<u8>,
    store: Vec<u8>,
}

impl Bufs {
    fn new(rx: usize) -> Self {
        Self {
            rx: vec![0; rx],
            tx: vec![0; 1024],
            store: vec![0; 8192],
        }
    }

    fn client<'b, S: embedded_io_async::Read + embedded_io_async::Write>(
        &'b mut self,
        options: Options<'b>,
    ) -> Client<'b, S> {
        Client::new(options, &mut self.rx, &mut self.tx, &mut self.store).unwrap()
    }
}

/// Failure 1: `sub -q 2 -C 1` sent DISCONNECT without PUBCOMP. mosquitto's log shows the
/// order of what it received.
#[tokio::test]
async fn disconnect_completes_the_incoming_qos2_handshake_first() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let sub_id = format!("nb-drain-sub-{v:?}");
        let mut sb = Bufs::new(1024);
        let mut o = Options::new(v);
        o.client_id = Some(&sub_id);
        let mut sub: Client<'_, Tcp> = sb.client(o);
        sub.connect(tcp(broker.addr()).await).unwrap();
        poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Connected { .. })).await;
        let topic = format!("nb/drain/{v:?}");
        sub.subscribe(&topic, QoS::ExactlyOnce).unwrap();
        poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;

        let mut pb = Bufs::new(1024);
        let pub_id = format!("nb-drain-pub-{v:?}");
        let mut po = Options::new(v);
        po.client_id = Some(&pub_id);
        let mut publisher: Client<'_, Tcp> = pb.client(po);
        publisher.connect(tcp(broker.addr()).await).unwrap();
        poll_until(&mut publisher, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        publisher
            .publish(&topic, QoS::ExactlyOnce, false, b"once")
            .unwrap();
        poll_until(&mut publisher, &clock, 5, |e| {
            matches!(e, Ev::Published { .. })
        })
        .await;

        // The subscriber's application takes one message and ends at once, as `-C 1` does.
        poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Message { .. })).await;
        sub.disconnect().unwrap();
        poll_until(&mut sub, &clock, 5, |e| *e == Ev::Disconnected).await;
        broker
            .wait_for_log(
                &format!("Received DISCONNECT from {sub_id}"),
                Duration::from_secs(5),
            )
            .unwrap();
        let log = broker.log();
        let pubcomp = log
            .find(&format!("Received PUBCOMP from {sub_id}"))
            .expect("PUBCOMP received");
        let disconnect = log
            .find(&format!("Received DISCONNECT from {sub_id}"))
            .unwrap();
        assert!(pubcomp < disconnect, "{v:?}: PUBCOMP after DISCONNECT");
    }
}

/// Failure 3: a broker that accepts and then drops every connection 50 ms after CONNACK got
/// 2 to 8 connections a second. On paused time: 20 s of it.
#[tokio::test(start_paused = true)]
async fn a_broker_that_drops_after_connack_sees_the_attempts_back_off() {
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut client: Client<'_, Mem> = bufs.client(Options::new(V5));
    let connections = Arc::new(Mutex::new(0u32));
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let count = connections.clone();
        let ev = client
            .poll_reconnecting(&clock, |_old, _redirect| {
                let (ours, mut peer) = Peer::pair(V5);
                *count.lock().unwrap() += 1;
                tokio::spawn(async move {
                    peer.next().await;
                    peer.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                        .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                });
                async move { Ok::<_, ()>(ours) }
            })
            .await;
        let ev = copy(&ev);
        assert!(
            !matches!(ev, Ev::Error(Error::Stopped(_))),
            "a dropped connection is retried"
        );
    }
    let n = *connections.lock().unwrap();
    println!("connections in 20 s against a broker dropping 50 ms after CONNACK: {n}");
    assert!(n <= 6, "{n} connections in 20 s");
}

/// Failure 4: a broker over our Receive Maximum. mosquitto, asked to send more in flight
/// than the client can track, never ends the connection; everything arrives exactly once,
/// what was left with the broker after the next connection, which the session makes itself
/// (a resync: DISCONNECT once what it took is released) rather than wait for the application
/// to reconnect for another reason.
#[tokio::test]
async fn a_broker_over_the_receive_maximum_is_served_without_a_disconnect_loop() {
    let broker = Broker::builder().max_inflight_messages(60).start().unwrap();
    let clock = TokioClock::new();
    let v = V5;
    let topic = "nb/overrun";
    let sub_id = "nb-overrun-sub";
    let mut sb = Bufs::new(1024);
    let mut o = Options::new(v);
    o.client_id = Some(sub_id);
    o.clean_start = false;
    o.session_expiry = 600;
    o.receive_maximum = 60;
    o.incoming_slots = 60;
    let mut sub: Client<'_, Tcp> = sb.client(o);
    sub.connect(tcp(broker.addr()).await).unwrap();
    poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Connected { .. })).await;
    sub.subscribe(topic, QoS::ExactlyOnce).unwrap();
    poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;
    drop(sub.close());
    // 200 QoS 2 messages wait for the subscriber at the broker.
    let mut pb = Bufs::new(1024);
    let mut po = Options::new(v);
    po.client_id = Some("nb-overrun-pub");
    po.max_inflight = 50;
    let mut publisher: Client<'_, Tcp> = pb.client(po);
    publisher.connect(tcp(broker.addr()).await).unwrap();
    poll_until(&mut publisher, &clock, 5, |e| {
        matches!(e, Ev::Connected { .. })
    })
    .await;
    let mut done = 0;
    for i in 0..200 {
        while publisher
            .publish(topic, QoS::ExactlyOnce, false, format!("{i}").as_bytes())
            .is_err()
        {
            let e = copy(&publisher.poll(&clock).await);
            done += usize::from(matches!(e, Ev::Published { .. }));
        }
    }
    while done < 200 {
        let e = copy(&publisher.poll(&clock).await);
        done += usize::from(matches!(e, Ev::Published { .. }));
    }
    drop(publisher);
    drop(pb);
    // The subscriber comes back with a smaller table than the broker's window.
    let mut sb = Bufs::new(1024);
    let mut o = Options::new(v);
    o.client_id = Some(sub_id);
    o.clean_start = false;
    o.session_expiry = 600;
    o.receive_maximum = 10;
    o.incoming_slots = 16;
    let mut sub: Client<'_, Tcp> = sb.client(o);
    let mut got = std::collections::BTreeMap::<Vec<u8>, u32>::new();
    let (mut connections, mut notices, mut resyncs) = (0, 0, 0);
    for _ in 0..40 {
        if got.len() == 200 {
            break;
        }
        sub.connect(tcp(broker.addr()).await).unwrap();
        connections += 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while tokio::time::Instant::now() < deadline {
            let Ok(event) = tokio::time::timeout_at(deadline, sub.poll(&clock)).await else {
                break;
            };
            match copy(&event) {
                Ev::Message { payload, .. } => *got.entry(payload).or_default() += 1,
                Ev::Notice(Notice::ReceiveMaximumExceeded { .. }) => notices += 1,
                // The session ended the connection to have the rest resent.
                Ev::Disconnected => {
                    resyncs += 1;
                    break;
                }
                Ev::Error(e) => panic!("{e:?}"),
                _ => {}
            }
        }
        drop(sub.close());
    }
    println!(
        "200 messages in {connections} connections ({resyncs} resyncs), {notices} overrun \
         notices"
    );
    assert!(resyncs > 0, "the session resyncs by itself");
    assert_eq!(
        got.len(),
        200,
        "every message, after {connections} connections"
    );
    assert!(got.values().all(|&n| n == 1), "exactly once");
}

/// Failure 5: SUBSCRIBE `$share/...` to a broker that said Shared Subscription Available 0.
#[tokio::test]
async fn requests_the_broker_cannot_serve_are_refused_not_sent() {
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut client: Client<'_, Mem> = bufs.client(Options::new(V5));
    let queued = client.subscribe("$share/g/a", QoS::AtLeastOnce).unwrap();
    let (ours, mut peer) = Peer::pair(V5);
    client.connect(ours).unwrap();
    let broker = tokio::spawn(async move {
        peer.next().await.unwrap();
        let mut ack = ConnAck::new(ReasonCode::Success);
        ack.properties.shared_subscription_available = Some(false);
        peer.send(Packet::ConnAck(ack)).await;
        // Nothing but the PINGREQ-free silence of a refused request, then our DISCONNECT.
        let next = peer.next().await.unwrap();
        assert!(
            matches!(decode(&next, V5), Packet::Disconnect(_)),
            "{next:?}"
        );
    });
    let seen = poll_until(&mut client, &clock, 5, |e| {
        matches!(e, Ev::RequestDropped { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&Ev::RequestDropped {
            pid: queued.get(),
            reason: ReasonCode::SharedSubscriptionsNotSupported
        })
    );
    assert!(matches!(
        client.subscribe("$share/g/a", QoS::AtLeastOnce),
        Err(Error::Command(_))
    ));
    client.disconnect().unwrap();
    poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
    broker.await.unwrap();
}

/// Failure 6: a retained message larger than the receive buffer ended every connection.
#[tokio::test]
async fn a_poison_message_larger_than_the_receive_buffer_is_skipped() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let topic = format!("nb/poison/{v:?}");
        let big = vec![b'x'; 2035];
        // A retained message too large for the subscriber, and a small one after it.
        let mut pb = Bufs::new(4096);
        pb.tx = vec![0; 4096];
        let mut publisher: Client<'_, Tcp> = pb.client(Options::new(v));
        publisher.connect(tcp(broker.addr()).await).unwrap();
        poll_until(&mut publisher, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. })
        })
        .await;
        publisher
            .publish(&format!("{topic}/big"), QoS::AtLeastOnce, true, &big)
            .unwrap();
        publisher
            .publish(&format!("{topic}/small"), QoS::AtLeastOnce, true, b"ok")
            .unwrap();
        for _ in 0..2 {
            poll_until(&mut publisher, &clock, 5, |e| {
                matches!(e, Ev::Published { .. })
            })
            .await;
        }
        let mut sb = Bufs::new(512);
        let mut sub: Client<'_, Tcp> = sb.client(Options::new(v));
        sub.connect(tcp(broker.addr()).await).unwrap();
        poll_until(&mut sub, &clock, 5, |e| matches!(e, Ev::Connected { .. })).await;
        sub.subscribe(&format!("{topic}/#"), QoS::AtLeastOnce)
            .unwrap();
        let seen = poll_for(&mut sub, &clock, 1500).await;
        // A 5.0 broker knows our Maximum Packet Size and drops the message itself
        // (mosquitto does); a 3.1.1 broker cannot know, and sends it.
        let skipped = seen
            .iter()
            .any(|e| matches!(e, Ev::Notice(Notice::MessageSkipped { size, .. }) if *size > 2035));
        assert!(skipped || v.is_v5(), "{v:?}: {seen:?}");
        assert!(
            seen.iter()
                .any(|e| matches!(e, Ev::Message { payload, .. } if payload == b"ok")),
            "{v:?}: {seen:?}"
        );
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e, Ev::Disconnected | Ev::Error(_))),
            "{v:?}: {seen:?}"
        );
        // Acknowledged once: a new connection of the same (clean) client does not loop on it.
        assert!(sub.is_connected());
    }
}

/// Failure 7: PUBREC with Quota Exceeded ended `mqtt pub`; now the message goes again.
#[tokio::test(start_paused = true)]
async fn a_quota_exceeded_refusal_is_retried_and_then_delivered() {
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut client: Client<'_, Mem> = bufs.client(Options::new(V5));
    let (ours, mut peer) = Peer::pair(V5);
    client.connect(ours).unwrap();
    let broker = tokio::spawn(async move {
        peer.next().await.unwrap();
        peer.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
            .await;
        for answer in [ReasonCode::QuotaExceeded, ReasonCode::Success] {
            let publish = peer.next().await.unwrap();
            let Packet::Publish(p) = decode(&publish, V5) else {
                panic!()
            };
            let mut rec = PubResponse::new(p.packet_id().unwrap());
            rec.reason_code = answer;
            peer.send(Packet::PubRec(rec)).await;
        }
        let rel = peer.next().await.unwrap();
        let Packet::PubRel(r) = decode(&rel, V5) else {
            panic!()
        };
        peer.send(Packet::PubComp(PubResponse::new(r.packet_id)))
            .await;
        peer
    });
    poll_until(&mut client, &clock, 5, |e| {
        matches!(e, Ev::Connected { .. })
    })
    .await;
    let id = client
        .publish("t", QoS::ExactlyOnce, false, b"m")
        .unwrap()
        .unwrap();
    let seen = poll_until(&mut client, &clock, 30, |e| {
        matches!(e, Ev::Published { .. })
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Ev::Notice(Notice::PublishRetrying {
            reason_code: ReasonCode::QuotaExceeded,
            retry: 1,
            ..
        })
    )));
    assert_eq!(
        seen.last(),
        Some(&Ev::Published {
            pid: id.get(),
            qos: QoS::ExactlyOnce,
            reason: ReasonCode::Success
        })
    );
    drop(broker.await.unwrap());
}

/// Failure 8: aedes answers a 5.0 CONNECT with a 3.1.1 CONNACK (`20 02 00 01`).
#[tokio::test]
async fn a_broker_without_5_0_is_reported_and_not_retried() {
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut client: Client<'_, Mem> = bufs.client(Options::new(V5));
    let mut events = Vec::new();
    for _ in 0..10 {
        let ev = client
            .poll_reconnecting(&clock, |_old, _redirect| {
                let (ours, mut peer) = Peer::pair(V5);
                tokio::spawn(async move {
                    peer.next().await;
                    peer.wr.write_all(&[0x20, 0x02, 0x00, 0x01]).await.unwrap();
                    let _ = peer.next().await;
                });
                async move { Ok::<_, ()>(ours) }
            })
            .await;
        let ev = copy(&ev);
        let stopped = matches!(ev, Ev::Error(Error::Stopped(_)));
        events.push(ev);
        if stopped {
            break;
        }
    }
    let refused = ReasonCode::UnsupportedProtocolVersion;
    assert_eq!(
        events,
        [
            Ev::BeforeConnect,
            Ev::Error(Error::Refused(refused)),
            Ev::Disconnected,
            Ev::Error(Error::Stopped(EndCause::Refused(refused))),
        ]
    );
}

/// Failure 9: the session's lifecycle reached from the client: the identifier a broker
/// assigned is reused, the authentication method goes out, and a Server Reference reaches
/// `open`.
#[tokio::test(start_paused = true)]
async fn assigned_id_auth_method_and_server_reference_reach_the_wire_and_the_app() {
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut options = Options::new(V5);
    options.session_expiry = 300;
    options.authentication_method = Some("SCRAM-SHA-256");
    options.reconnect.jitter = false;
    let mut client: Client<'_, Mem> = bufs.client(options);
    let connects = Arc::new(Mutex::new(Vec::<(String, bool, Option<String>)>::new()));
    let redirects = Arc::new(Mutex::new(Vec::<(String, bool)>::new()));
    let mut attempts = 0;
    for _ in 0..50 {
        let (log, hops) = (connects.clone(), redirects.clone());
        let n = attempts;
        let ev = client
            .poll_reconnecting(&clock, |_old, redirect| {
                if let Some(r) = redirect {
                    hops.lock()
                        .unwrap()
                        .push((r.reference.to_string(), r.moved));
                }
                let (ours, mut peer) = Peer::pair(V5);
                let log = log.clone();
                tokio::spawn(async move {
                    let connect = peer.next().await.unwrap();
                    let Packet::Connect(c) = decode(&connect, V5) else {
                        panic!()
                    };
                    let method = c.properties.authentication_method.map(str::to_string);
                    log.lock()
                        .unwrap()
                        .push((c.client_id.to_string(), c.clean_start, method));
                    let mut ack = match n {
                        1 => {
                            let mut a = ConnAck::new(ReasonCode::ServerMoved);
                            a.properties.server_reference = Some("other.example:1884");
                            a
                        }
                        _ => ConnAck::new(ReasonCode::Success),
                    };
                    if n == 0 {
                        ack.properties.assigned_client_identifier = Some("auto-77");
                    }
                    peer.send(Packet::ConnAck(ack)).await;
                    // The first connection drops at once; the last stays.
                    if n == 2 {
                        let _ = peer.next().await;
                    }
                });
                async move { Ok::<_, ()>(ours) }
            })
            .await;
        match ev {
            mqtt_client_nb::Event::BeforeConnect => attempts += 1,
            mqtt_client_nb::Event::Connected { .. } if attempts == 3 => break,
            _ => {}
        }
    }
    let connects = connects.lock().unwrap().clone();
    let method = Some("SCRAM-SHA-256".to_string());
    assert_eq!(connects[0], (String::new(), true, method.clone()));
    assert_eq!(connects[1], ("auto-77".to_string(), false, method.clone()));
    assert_eq!(connects[2].0, "auto-77");
    assert_eq!(
        *redirects.lock().unwrap(),
        [("other.example:1884".to_string(), true)]
    );
}

/// SCRAM-SHA-256 through the authenticator hook: RFC 7677's exchange (its nonce fixed), and a
/// broker whose final proof is wrong ends the connection with DISCONNECT Not Authorized and
/// no retry.
#[tokio::test(start_paused = true)]
async fn scram_sha_256_runs_through_the_authenticator_hook() {
    use mqtt_client_nb::mqtt_sansio::auth::{AuthError, ScramSha256};
    use mqtt_test_support::scram::{broker as scram, CLIENT_NONCE};
    for honest in [true, false] {
        let clock = TokioClock::new();
        let mut bufs = Bufs::new(512);
        let mut scram = ScramSha256::new("user", b"pencil", [3; 32]);
        scram.fixed_nonce(CLIENT_NONCE);
        let mut options = Options::new(V5);
        options.authentication_room = 160;
        let mut client: Client<'_, Mem> = bufs.client(options);
        client.set_authenticator(&mut scram);
        let (ours, mut peer) = Peer::pair(V5);
        client.connect(ours).unwrap();
        let broker = tokio::spawn(async move {
            scram::check_client_first(&peer.next().await.unwrap());
            peer.send(scram::server_first()).await;
            scram::check_client_final(&peer.next().await.unwrap());
            peer.send(scram::server_final(honest)).await;
            // What the client sends next: nothing (honest), or DISCONNECT Not Authorized.
            let next = tokio::time::timeout(Duration::from_millis(500), peer.next()).await;
            next.ok().flatten()
        });
        let seen = poll_until(&mut client, &clock, 5, |e| {
            matches!(e, Ev::Connected { .. } | Ev::Error(_))
        })
        .await;
        if honest {
            assert!(
                matches!(seen.last(), Some(Ev::Connected { .. })),
                "{seen:?}"
            );
            assert_eq!(broker.await.unwrap(), None);
        } else {
            assert_eq!(
                seen.last(),
                Some(&Ev::Error(Error::Authentication(
                    AuthError::ServerNotVerified
                )))
            );
            let rest = poll_until(&mut client, &clock, 5, |e| *e == Ev::Disconnected).await;
            assert_eq!(rest, [Ev::Disconnected]);
            let after = broker.await.unwrap();
            assert_eq!(after.as_deref(), Some(&[0xE0, 0x01, 0x87][..]));
            assert!(matches!(
                client.reconnect(),
                Some(mqtt_client_nb::mqtt_sansio::session::Reconnect::Stop(_))
            ));
        }
    }
}

/// A broker that comes back without our session (restarted, or the session expired): the
/// client renews its subscription with no application code, byte for byte as the
/// application made it but for the packet identifier.
#[tokio::test(start_paused = true)]
async fn a_lost_session_is_renewed_by_the_client_itself() {
    for v in BOTH {
        let clock = TokioClock::new();
        let mut bufs = Bufs::new(512);
        let mut options = Options::new(v);
        options.client_id = Some("renew");
        options.subscription_bytes = 128;
        options.reconnect.jitter = false;
        let mut client: Client<'_, Mem> = bufs.client(options);
        let received = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let mut connections = 0;
        let mut events = Vec::new();
        for _ in 0..50 {
            let n = connections;
            let received = received.clone();
            let ev = client
                .poll_reconnecting(&clock, |_old, _redirect| {
                    let (ours, mut peer) = Peer::pair(v);
                    let received = received.clone();
                    tokio::spawn(async move {
                        peer.next().await.unwrap();
                        // A broker without our session, every time.
                        peer.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                            .await;
                        while let Some(p) = peer.next().await {
                            let Packet::Subscribe(s) = decode(&p, v) else {
                                continue;
                            };
                            let codes: Vec<_> = s
                                .subscriptions
                                .iter()
                                .map(|_| ReasonCode::GrantedQoS1)
                                .collect();
                            let ack = SubAck::new(s.packet_id, &codes);
                            peer.send(Packet::SubAck(ack)).await;
                            received.lock().unwrap().push(p);
                            // The first connection ends right after its SUBACK.
                            if n == 0 {
                                return;
                            }
                        }
                    });
                    async move { Ok::<_, ()>(ours) }
                })
                .await;
            let ev = copy(&ev);
            match ev {
                Ev::BeforeConnect => connections += 1,
                Ev::Connected { .. } if connections == 1 => {
                    client.subscribe("a/b", QoS::AtLeastOnce).unwrap();
                }
                _ => {}
            }
            let done = matches!(ev, Ev::Resubscribed { .. });
            events.push(ev);
            if done {
                break;
            }
        }
        assert_eq!(connections, 2, "{v:?}: {events:?}");
        let Some(Ev::Resubscribed { filters, codes, .. }) = events.last() else {
            panic!("{v:?}: no renewal in {events:?}");
        };
        assert_eq!(filters, &["a/b".to_string()]);
        assert_eq!(codes, &[ReasonCode::GrantedQoS1]);
        let received = received.lock().unwrap();
        let [first, renewal] = &received[..] else {
            panic!("{v:?}: {received:?}");
        };
        // The same packet but for its identifier (bytes 2 and 3).
        assert_eq!(first[..2], renewal[..2]);
        assert_eq!(first[4..], renewal[4..]);
        assert_ne!(first[2..4], renewal[2..4]);
    }
}

/// With `fallback_to_v311`, a 3.1.1-only broker (aedes answers a 5.0 CONNECT with `20 02 00
/// 01`) is reconnected to at once in 3.1.1, and the client then works.
#[tokio::test(start_paused = true)]
async fn a_broker_without_5_0_is_spoken_to_in_3_1_1_when_allowed() {
    const V3: ProtocolVersion = ProtocolVersion::V3_1_1;
    let clock = TokioClock::new();
    let mut bufs = Bufs::new(512);
    let mut options = Options::new(V5);
    options.client_id = Some("old-broker");
    options.fallback_to_v311 = true;
    let mut client: Client<'_, Mem> = bufs.client(options);
    let connects = Arc::new(Mutex::new(Vec::<(u64, Vec<u8>)>::new()));
    let mut events = Vec::new();
    let mut opened = 0;
    for _ in 0..20 {
        let log = connects.clone();
        let now = tokio::time::Instant::now();
        let ev = client
            .poll_reconnecting(&clock, |_old, _redirect| {
                opened += 1;
                let (ours, mut peer) = Peer::pair(V3);
                let log = log.clone();
                tokio::spawn(async move {
                    let connect = peer.next().await.unwrap();
                    let level = connect[8];
                    log.lock()
                        .unwrap()
                        .push((now.elapsed().as_millis() as u64, connect));
                    if level == 5 {
                        peer.wr.write_all(&[0x20, 0x02, 0x00, 0x01]).await.unwrap();
                        let _ = peer.next().await;
                        return;
                    }
                    peer.send(Packet::ConnAck(ConnAck::new(ReasonCode::Success)))
                        .await;
                    while let Some(p) = peer.next().await {
                        if let Packet::Publish(m) = decode(&p, V3) {
                            let id = m.packet_id().unwrap();
                            peer.send(Packet::PubAck(PubResponse::new(id))).await;
                        }
                    }
                });
                async move { Ok::<_, ()>(ours) }
            })
            .await;
        let ev = copy(&ev);
        if matches!(ev, Ev::Connected { .. }) {
            client.publish("t", QoS::AtLeastOnce, false, b"m").unwrap();
        }
        let done = matches!(ev, Ev::Published { .. } | Ev::Error(Error::Stopped(_)));
        events.push(ev);
        if done {
            break;
        }
    }
    let refused = ReasonCode::UnsupportedProtocolVersion;
    assert!(
        events.contains(&Ev::Error(Error::Refused(refused))),
        "{events:?}"
    );
    assert!(
        events.contains(&Ev::Notice(Notice::FellBackToV311)),
        "{events:?}"
    );
    assert!(
        matches!(
            events.last(),
            Some(Ev::Published {
                qos: QoS::AtLeastOnce,
                reason: ReasonCode::Success,
                ..
            })
        ),
        "{events:?}"
    );
    assert_eq!(opened, 2);
    let connects = connects.lock().unwrap();
    assert_eq!(connects.len(), 2);
    assert_eq!(connects[0].1[8], 5);
    let mut v3 = mqtt_client_nb::mqtt_sansio::Connect::new(V3, "old-broker");
    v3.keep_alive = 120;
    assert_eq!(
        connects[1].1,
        enc(Packet::Connect(v3), V3),
        "a 3.1.1 CONNECT"
    );
    // No backoff before the 3.1.1 attempt.
    assert_eq!(connects[1].0, 0);
}
