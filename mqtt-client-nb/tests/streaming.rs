//! Messages larger than the client's buffers against a real mosquitto: a 1 MiB message
//! received through a 1 KiB receive buffer as chunks, byte-identical (SHA-256), both
//! protocol versions, QoS 0, 1 and 2.

mod support;

use std::time::{Duration, Instant};

use mqtt_client_nb::mqtt_sansio::{ProtocolVersion, QoS};
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
