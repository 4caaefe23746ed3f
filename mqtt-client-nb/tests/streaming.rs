//! Messages larger than the client's buffers against a real mosquitto, both protocol
//! versions, QoS 0, 1 and 2, byte-identical (SHA-256): 1 MiB received through a 1 KiB
//! receive buffer as chunks; 1 MiB streamed out from a payload source through a 1 KiB
//! transmit buffer; a streamed send cut by a lost connection and resent whole; a source
//! that runs dry.

mod support;

use std::time::{Duration, Instant};

use mqtt_client_nb::mqtt_sansio::{PacketId, ProtocolVersion, QoS};
use mqtt_client_nb::{Client, Options};
use mqtt_test_support::Broker;
use sha2::{Digest, Sha256};
use support::{copy, poll_until, tcp, Ev, Tcp, TokioClock};

const BOTH: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const MIB: usize = 1 << 20;

/// 1 MiB of pseudo-random bytes (xorshift), different per seed.
fn firmware(seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn connect(client: &mut Client<'_, Tcp>, clock: &TokioClock, addr: std::net::SocketAddr) {
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

/// Polls both clients until `done`, at most `secs` seconds, feeding every event to `on`.
async fn pump(
    a: &mut Client<'_, Tcp>,
    b: &mut Client<'_, Tcp>,
    clock: &TokioClock,
    secs: u64,
    mut on: impl FnMut(bool, Ev) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (from_b, ev) = tokio::select! {
            ev = async { copy(&a.poll(clock).await) } => (false, ev),
            ev = async { copy(&b.poll(clock).await) } => (true, ev),
            _ = tokio::time::sleep_until(deadline) => panic!("timed out"),
        };
        assert!(!matches!(ev, Ev::Error(_)), "{ev:?} (from b: {from_b})");
        if on(from_b, ev) {
            return;
        }
    }
}

/// Assembles chunks, checking that they are contiguous and consistent.
#[derive(Default)]
struct Assembly {
    data: Vec<u8>,
    chunks: usize,
    done: bool,
}

impl Assembly {
    fn take(&mut self, ev: &Ev, topic_name: &str, want_qos: QoS) {
        let Ev::Chunk {
            topic,
            data,
            offset,
            total,
            qos,
            last,
            ..
        } = ev
        else {
            panic!("unexpected {ev:?}");
        };
        assert_eq!(topic, topic_name);
        assert_eq!(*qos, want_qos);
        assert_eq!(*total, MIB);
        assert_eq!(*offset, self.data.len(), "chunks in order, no gaps");
        assert!(data.len() <= 1024, "a chunk fits the receive buffer");
        self.data.extend_from_slice(data);
        self.chunks += 1;
        assert_eq!(*last, self.data.len() == MIB);
        self.done = *last;
    }
}

#[tokio::test]
async fn a_1_mib_message_arrives_in_chunks_through_a_1_kib_receive_buffer() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let clock = TokioClock::new();
            // The publisher still needs the whole message in its transmit buffer and store.
            let (mut arx, mut atx, mut astore) =
                (vec![0; 1024], vec![0; MIB + 1024], vec![0; 2 * MIB]);
            let mut ao = Options::new(v);
            ao.client_id = Some("nb-stream-pub");
            let mut a = Client::new(ao, &mut arx, &mut atx, &mut astore).unwrap();
            // The receiver has 1 KiB each way.
            let (mut brx, mut btx, mut bstore) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
            let mut bo = Options::new(v);
            bo.client_id = Some("nb-stream-sub");
            bo.maximum_packet_size = 2 * MIB as u32;
            let mut b = Client::new(bo, &mut brx, &mut btx, &mut bstore).unwrap();
            connect(&mut a, &clock, broker.addr()).await;
            connect(&mut b, &clock, broker.addr()).await;
            let topic = format!("nb/stream/{}/{}", v as u8, qos as u8);
            b.subscribe(&topic, QoS::ExactlyOnce).unwrap();
            poll_until(&mut b, &clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;

            let image = firmware(u64::from(v as u8) << 8 | qos as u64);
            let started = Instant::now();
            let pid = a.publish(&topic, qos, false, &image).unwrap();
            let mut got = Assembly::default();
            let mut acked = pid.is_none();
            pump(&mut a, &mut b, &clock, 60, |from_b, ev| {
                match (&ev, from_b) {
                    (Ev::Published { pid: p, .. }, false) => {
                        assert_eq!(Some(*p), pid.map(|p| p.get()));
                        acked = true;
                    }
                    (_, true) => got.take(&ev, &topic, qos),
                    _ => {}
                }
                got.done && acked
            })
            .await;
            let elapsed = started.elapsed();
            assert_eq!(
                Sha256::digest(&got.data),
                Sha256::digest(&image),
                "byte-identical"
            );
            eprintln!(
                "{v:?} QoS {}: 1 MiB received in {} chunks through 1 KiB in {elapsed:?}",
                qos as u8, got.chunks
            );
            // Nothing more arrives (a QoS 2 message once, no redelivery).
            let later = support::poll_for(&mut b, &clock, 300).await;
            assert!(later.is_empty(), "{later:?}");
            assert_eq!(b.session().incoming_inflight(), 0, "QoS 2 released");
        }
    }
}

/// Serves `image` as the payload of every streamed message.
fn source(image: &[u8]) -> impl FnMut(Option<PacketId>, usize, &mut [u8]) -> usize + Send + '_ {
    move |_, offset, buf| {
        let n = buf.len().min(image.len().saturating_sub(offset));
        buf[..n].copy_from_slice(&image[offset..offset + n]);
        n
    }
}

#[tokio::test]
async fn a_1_mib_message_goes_out_through_a_1_kib_transmit_buffer_and_comes_back_through_1_kib() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let clock = TokioClock::new();
            let image = firmware(0x5EED ^ (u64::from(v as u8) << 4 | qos as u64));
            let mut src = source(&image);
            // 1 KiB each way on both sides, and 4 KiB of session store.
            let (mut arx, mut atx, mut astore) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
            let mut ao = Options::new(v);
            ao.client_id = Some("nb-stream-out");
            let mut a = Client::new(ao, &mut arx, &mut atx, &mut astore).unwrap();
            a.set_payload_source(&mut src);
            let (mut brx, mut btx, mut bstore) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
            let mut bo = Options::new(v);
            bo.client_id = Some("nb-stream-in");
            bo.maximum_packet_size = 2 * MIB as u32;
            let mut b = Client::new(bo, &mut brx, &mut btx, &mut bstore).unwrap();
            connect(&mut a, &clock, broker.addr()).await;
            connect(&mut b, &clock, broker.addr()).await;
            let topic = format!("nb/stream-out/{}/{}", v as u8, qos as u8);
            b.subscribe(&topic, QoS::ExactlyOnce).unwrap();
            poll_until(&mut b, &clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;

            // A whole 1 MiB message does not fit; a streamed one does.
            assert!(a.publish(&topic, qos, false, &image).is_err());
            let started = Instant::now();
            let pid = a.publish_streamed(&topic, qos, false, MIB).unwrap();
            let mut got = Assembly::default();
            let mut acked = pid.is_none();
            pump(&mut a, &mut b, &clock, 60, |from_b, ev| {
                match (&ev, from_b) {
                    (Ev::Published { pid: p, reason, .. }, false) => {
                        assert_eq!(Some(*p), pid.map(|p| p.get()));
                        assert!(!reason.is_error());
                        acked = true;
                    }
                    (_, true) => got.take(&ev, &topic, qos),
                    _ => {}
                }
                got.done && acked
            })
            .await;
            let elapsed = started.elapsed();
            assert_eq!(Sha256::digest(&got.data), Sha256::digest(&image));
            eprintln!(
                "{v:?} QoS {}: 1 MiB sent through 1 KiB and received through 1 KiB in {elapsed:?}",
                qos as u8
            );
            assert_eq!(a.session().store_usage().0, 0, "nothing left in the log");
        }
    }
}

#[tokio::test]
async fn a_streamed_send_cut_by_a_lost_connection_is_resent_whole() {
    let broker = Broker::start().unwrap();
    for v in BOTH {
        let clock = TokioClock::new();
        let image = firmware(0xC0FFEE + v as u64);
        let mut src = source(&image);
        let (mut arx, mut atx, mut astore) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
        let mut ao = Options::new(v);
        ao.client_id = Some("nb-stream-cut");
        ao.clean_start = false;
        ao.session_expiry = 600;
        let mut a = Client::new(ao, &mut arx, &mut atx, &mut astore).unwrap();
        a.set_payload_source(&mut src);
        let (mut brx, mut btx, mut bstore) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
        let mut bo = Options::new(v);
        bo.client_id = Some("nb-stream-cut-in");
        bo.maximum_packet_size = 2 * MIB as u32;
        let mut b = Client::new(bo, &mut brx, &mut btx, &mut bstore).unwrap();
        connect(&mut a, &clock, broker.addr()).await;
        connect(&mut b, &clock, broker.addr()).await;
        let topic = format!("nb/stream-cut/{}", v as u8);
        b.subscribe(&topic, QoS::AtLeastOnce).unwrap();
        poll_until(&mut b, &clock, 5, |e| matches!(e, Ev::Subscribed { .. })).await;

        let pid = a
            .publish_streamed(&topic, QoS::AtLeastOnce, false, MIB)
            .unwrap();
        // Poll the publisher until part of the payload is out, then drop its connection.
        // (`poll` is cancel-safe: each timeout just stops it where it is.)
        for _ in 0..1_000 {
            let _ = tokio::time::timeout(Duration::from_micros(200), async {
                let _ = a.poll(&clock).await;
            })
            .await;
            if a.session().is_sending_payload() {
                break;
            }
        }
        assert!(
            a.session().is_sending_payload(),
            "cut in the middle of the payload"
        );
        drop(a.close());
        connect(&mut a, &clock, broker.addr()).await;
        let mut got = Assembly::default();
        let mut acked = false;
        pump(&mut a, &mut b, &clock, 60, |from_b, ev| {
            match (&ev, from_b) {
                (Ev::Published { pid: p, .. }, false) => {
                    assert_eq!(Some(*p), pid.map(|p| p.get()));
                    acked = true;
                }
                (_, true) => got.take(&ev, &topic, QoS::AtLeastOnce),
                _ => {}
            }
            got.done && acked
        })
        .await;
        // The broker dropped the cut packet and forwarded the resend (with DUP, which the
        // session tests check: brokers do not forward the flag) once, whole.
        assert_eq!(Sha256::digest(&got.data), Sha256::digest(&image));
        let later = support::poll_for(&mut b, &clock, 300).await;
        assert!(later.is_empty(), "{later:?}");
    }
}

#[tokio::test]
async fn a_payload_source_that_runs_dry_ends_the_connection_with_a_typed_error() {
    let broker = Broker::start().unwrap();
    let clock = TokioClock::new();
    let image = firmware(7);
    let mut inner = source(&image[..4096]);
    let mut src = move |pid, offset, buf: &mut [u8]| inner(pid, offset, buf);
    let (mut rx, mut tx, mut store) = (vec![0; 1024], vec![0; 1024], vec![0; 4096]);
    let mut o = Options::new(ProtocolVersion::V5);
    o.client_id = Some("nb-stream-dry");
    let mut a = Client::new(o, &mut rx, &mut tx, &mut store).unwrap();
    a.set_payload_source(&mut src);
    connect(&mut a, &clock, broker.addr()).await;
    // 1 MiB announced, 4 KiB available.
    a.publish_streamed("nb/dry", QoS::AtLeastOnce, false, MIB)
        .unwrap();
    let seen = poll_until(&mut a, &clock, 5, |e| matches!(e, Ev::Error(_))).await;
    assert_eq!(
        seen.last(),
        Some(&Ev::Error(mqtt_client_nb::Error::PayloadSource))
    );
    let seen = poll_until(&mut a, &clock, 5, |e| *e == Ev::Disconnected).await;
    assert_eq!(seen, [Ev::Disconnected]);
    assert_eq!(a.session().inflight(), 0, "kept for the next connection");
    assert!(a.session().store_usage().0 > 0);
}
