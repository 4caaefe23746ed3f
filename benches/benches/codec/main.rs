//! Decode and encode of representative packets by our codec and by the peer crates, in one run.
//!
//! Every decoder gets the same bytes (encoded once by our codec), and before anything is timed
//! each peer must decode them to the packet it would have built itself, and its own encoding
//! must decode (with our codec) to the original packet. See `benches/README.md` for what each
//! peer's timing includes.

mod clock;
mod fixtures;
mod peers;

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use mqtt_sansio::{Decoded, Packet, ProtocolVersion};

use clock::BenchClock;
use fixtures::Workload;
use peers::{mqtt_sansiocol, mqttrs, rumqttc_v4, rumqttc_v5};

const OURS: &str = "mqtt-sansio";
const RUMQTTC: &str = "rumqttc";
const MQTTRS: &str = "mqttrs";
const MQTT_PROTOCOL: &str = "mqtt-protocol";

fn decode_ours(bytes: &[u8], version: ProtocolVersion) -> Packet<'_> {
    match Packet::decode(bytes, version, u32::MAX) {
        Ok(Decoded::Packet { packet, len }) => {
            assert_eq!(len, bytes.len(), "whole buffer used");
            packet
        }
        other => panic!("our codec failed on its own bytes: {other:?}"),
    }
}

/// A `BytesMut` holding `bytes` in the shared representation that a read loop's buffer has once
/// it split off its first packet, so `split_to` costs a reference count, not an allocation.
fn shared_bytesmut(bytes: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(bytes.len());
    buf.extend_from_slice(bytes);
    drop(buf.split_to(0));
    buf
}

/// Whether criterion runs in `--quick` mode.
fn quick() -> bool {
    std::env::args().any(|arg| arg == "--quick")
}

/// The least the clock reports for two reads in a row: subtracted from each timed batch below.
fn clock_overhead() -> Duration {
    static OVERHEAD: OnceLock<Duration> = OnceLock::new();
    *OVERHEAD.get_or_init(|| {
        (0..10_000)
            .map(|_| {
                let start = clock::now();
                clock::now().saturating_sub(start)
            })
            .min()
            .unwrap_or_default()
    })
}

/// Times `f` on fresh copies of `bytes`, for APIs that consume their input buffer. The copies
/// are made outside the timed part, a batch at a time (at most 256 KiB, so the batch is still in
/// cache as a just-received packet would be); what `f` returns is dropped inside it.
fn iter_on_bytesmut<O>(
    b: &mut criterion::Bencher<'_, BenchClock>,
    bytes: &[u8],
    mut f: impl FnMut(&mut BytesMut) -> O,
) {
    let batch = ((256 << 10) / bytes.len().max(1)).clamp(4, 256);
    let overhead = clock_overhead();
    let mut inputs: Vec<BytesMut> = Vec::with_capacity(batch);
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(batch as u64) as usize;
            inputs.clear();
            inputs.extend((0..n).map(|_| shared_bytesmut(bytes)));
            let start = clock::now();
            for input in &mut inputs {
                let out = f(black_box(input));
                black_box(&out);
            }
            total += clock::now().saturating_sub(start).saturating_sub(overhead);
            left -= n as u64;
        }
        total
    });
}

// ---- consistency checks, run before anything is measured ----

fn check_ours(w: &Workload) {
    assert_eq!(decode_ours(&w.bytes, w.version), w.packet, "{}", w.name);
}

fn check_rumqttc_v4(w: &Workload, expected: &rumqttc::mqttbytes::v4::Packet) {
    let mut buf = shared_bytesmut(&w.bytes);
    let got = rumqttc_v4::decode(&mut buf).expect("rumqttc v4 decodes");
    assert_eq!(&got, expected, "rumqttc v4 decode of {}", w.name);
    assert!(buf.is_empty(), "rumqttc v4 used the whole packet");
    let mut out = BytesMut::new();
    rumqttc_v4::encode(expected, &mut out).expect("rumqttc v4 encodes");
    assert_eq!(
        decode_ours(&out, w.version),
        w.packet,
        "rumqttc v4 encode of {}",
        w.name
    );
}

fn check_rumqttc_v5(w: &Workload, expected: &rumqttc::v5::mqttbytes::v5::Packet) {
    let mut buf = shared_bytesmut(&w.bytes);
    let got = rumqttc_v5::decode(&mut buf).expect("rumqttc v5 decodes");
    assert_eq!(&got, expected, "rumqttc v5 decode of {}", w.name);
    assert!(buf.is_empty(), "rumqttc v5 used the whole packet");
    let mut out = BytesMut::new();
    rumqttc_v5::encode(expected, &mut out).expect("rumqttc v5 encodes");
    assert_eq!(
        decode_ours(&out, w.version),
        w.packet,
        "rumqttc v5 encode of {}",
        w.name
    );
}

fn check_mqttrs(w: &Workload, expected: &::mqttrs::Packet<'_>) {
    let got = mqttrs::decode(&w.bytes).expect("mqttrs decodes");
    assert_eq!(got.as_ref(), Some(expected), "mqttrs decode of {}", w.name);
    let mut out = vec![0; w.bytes.len() + 16];
    let n = mqttrs::encode(expected, &mut out).expect("mqttrs encodes");
    assert_eq!(
        decode_ours(&out[..n], w.version),
        w.packet,
        "mqttrs encode of {}",
        w.name
    );
}

fn check_mqtt_sansiocol(w: &Workload, expected: &mqtt::packet::VariablePacket) {
    let mut rest = &w.bytes[..];
    let got = mqtt_sansiocol::decode(&mut rest).expect("mqtt-protocol decodes");
    assert_eq!(&got, expected, "mqtt-protocol decode of {}", w.name);
    assert!(rest.is_empty(), "mqtt-protocol used the whole packet");
    let mut out = vec![0; w.bytes.len() + 16];
    mqtt_sansiocol::encode(expected, &mut out).expect("mqtt-protocol encodes");
    let n = w.bytes.len();
    assert_eq!(
        decode_ours(&out[..n], w.version),
        w.packet,
        "mqtt-protocol encode of {}",
        w.name
    );
}

// ---- per-packet workloads ----

fn bench_workload(c: &mut Criterion<BenchClock>, w: &Workload) {
    check_ours(w);
    let (v4, v5) = if w.version.is_v5() {
        (None, rumqttc_v5::convert(&w.packet))
    } else {
        (rumqttc_v4::convert(&w.packet), None)
    };
    let rs = (!w.version.is_v5())
        .then(|| mqttrs::convert(&w.packet))
        .flatten();
    let mp = (!w.version.is_v5())
        .then(|| mqtt_sansiocol::convert(&w.packet))
        .flatten();
    if let Some(p) = &v4 {
        check_rumqttc_v4(w, p);
    }
    if let Some(p) = &v5 {
        check_rumqttc_v5(w, p);
    }
    if let Some(p) = &rs {
        check_mqttrs(w, p);
    }
    if let Some(p) = &mp {
        check_mqtt_sansiocol(w, p);
    }

    let bytes = &w.bytes[..];
    let version = w.version;
    let mut g = c.benchmark_group(format!("decode_{}", w.name));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(OURS, |b| {
        b.iter(|| {
            let out = Packet::decode(black_box(bytes), version, u32::MAX);
            black_box(&out);
        })
    });
    if rs.is_some() {
        g.bench_function(MQTTRS, |b| {
            b.iter(|| {
                let out = mqttrs::decode(black_box(bytes));
                black_box(&out);
            })
        });
    }
    if mp.is_some() {
        g.bench_function(MQTT_PROTOCOL, |b| {
            b.iter(|| {
                let mut rest = black_box(bytes);
                let out = mqtt_sansiocol::decode(&mut rest);
                black_box(&out);
            })
        });
    }
    // rumqttc comes last: for large packets it gets shorter times, since each timed iteration
    // costs an untimed copy of the packet, and a group setting would override the command line.
    if (v4.is_some() || v5.is_some()) && bytes.len() > 16 << 10 && !quick() {
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(1));
    }
    if v4.is_some() {
        g.bench_function(RUMQTTC, |b| iter_on_bytesmut(b, bytes, rumqttc_v4::decode));
    }
    if v5.is_some() {
        g.bench_function(RUMQTTC, |b| iter_on_bytesmut(b, bytes, rumqttc_v5::decode));
    }
    g.finish();

    let mut g = c.benchmark_group(format!("encode_{}", w.name));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut buf = vec![0u8; bytes.len() + 64];
    g.bench_function(OURS, |b| {
        b.iter(|| black_box(&w.packet).encode(version, black_box(&mut buf[..])))
    });
    let mut bytes_mut = BytesMut::with_capacity(2 * bytes.len() + 64);
    if let Some(p) = &v4 {
        g.bench_function(RUMQTTC, |b| {
            b.iter(|| {
                let out = black_box(&mut bytes_mut);
                out.clear();
                rumqttc_v4::encode(black_box(p), out)
            })
        });
    }
    if let Some(p) = &v5 {
        g.bench_function(RUMQTTC, |b| {
            b.iter(|| {
                let out = black_box(&mut bytes_mut);
                out.clear();
                rumqttc_v5::encode(black_box(p), out)
            })
        });
    }
    if let Some(p) = &rs {
        g.bench_function(MQTTRS, |b| {
            b.iter(|| mqttrs::encode(black_box(p), black_box(&mut buf[..])))
        });
    }
    if let Some(p) = &mp {
        g.bench_function(MQTT_PROTOCOL, |b| {
            b.iter(|| mqtt_sansiocol::encode(black_box(p), black_box(&mut buf[..])))
        });
    }
    g.finish();
}

fn per_packet(c: &mut Criterion<BenchClock>) {
    for w in fixtures::workloads() {
        bench_workload(c, &w);
    }
}

// ---- 1 MiB of back-to-back QoS 0 publishes, decoded in place ----

fn stream_ours(mut rest: &[u8]) -> usize {
    let mut n = 0;
    while let Ok(Decoded::Packet { packet, len }) =
        Packet::decode(rest, ProtocolVersion::V3_1_1, u32::MAX)
    {
        black_box(&packet);
        rest = &rest[len..];
        n += 1;
    }
    n
}

fn stream_rumqttc(buf: &mut BytesMut) -> usize {
    let mut n = 0;
    while !buf.is_empty() {
        match rumqttc_v4::decode(buf) {
            Ok(packet) => {
                black_box(&packet);
            }
            Err(_) => break,
        }
        n += 1;
    }
    n
}

fn stream_mqttrs(mut rest: &[u8]) -> usize {
    let mut n = 0;
    while !rest.is_empty() {
        let len = mqttrs::frame_len(rest);
        match mqttrs::decode(rest) {
            Ok(Some(packet)) => {
                black_box(&packet);
            }
            _ => break,
        }
        rest = &rest[len..];
        n += 1;
    }
    n
}

fn stream_mqtt_sansiocol(mut rest: &[u8]) -> usize {
    let mut n = 0;
    while !rest.is_empty() {
        match mqtt_sansiocol::decode(&mut rest) {
            Ok(packet) => {
                black_box(&packet);
            }
            Err(_) => break,
        }
        n += 1;
    }
    n
}

fn check_stream(stream: &[u8], count: usize) {
    let one = &stream[..stream.len() / count];
    let expected = decode_ours(one, ProtocolVersion::V3_1_1);
    let mut rest = stream;
    while !rest.is_empty() {
        let Ok(Decoded::Packet { packet, len }) =
            Packet::decode(rest, ProtocolVersion::V3_1_1, u32::MAX)
        else {
            panic!("stream decodes");
        };
        assert_eq!(packet, expected);
        rest = &rest[len..];
    }
    assert_eq!(stream_ours(stream), count);
    assert_eq!(stream_rumqttc(&mut shared_bytesmut(stream)), count);
    assert_eq!(stream_mqttrs(stream), count);
    assert_eq!(stream_mqtt_sansiocol(stream), count);
    // Each peer's last packet is the same publish (the first is checked per packet above).
    let last = &stream[stream.len() - one.len()..];
    let mut buf = shared_bytesmut(last);
    assert_eq!(
        rumqttc_v4::decode(&mut buf).ok(),
        rumqttc_v4::convert(&expected)
    );
    assert_eq!(
        mqttrs::decode(last).ok().flatten(),
        mqttrs::convert(&expected)
    );
    assert_eq!(
        mqtt_sansiocol::decode(&mut &last[..]).ok(),
        mqtt_sansiocol::convert(&expected)
    );
}

fn stream(c: &mut Criterion<BenchClock>) {
    let (stream, count) = fixtures::stream();
    check_stream(&stream, count);
    let stream = &stream[..];
    let mut g: BenchmarkGroup<'_, BenchClock> = c.benchmark_group("stream_1MiB_qos0_64B");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function(OURS, |b| b.iter(|| stream_ours(black_box(stream))));
    g.bench_function(RUMQTTC, |b| {
        b.iter_batched_ref(
            || shared_bytesmut(stream),
            |buf| stream_rumqttc(black_box(buf)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function(MQTTRS, |b| b.iter(|| stream_mqttrs(black_box(stream))));
    g.bench_function(MQTT_PROTOCOL, |b| {
        b.iter(|| stream_mqtt_sansiocol(black_box(stream)))
    });
    g.finish();
}

/// Criterion's defaults on the thread's CPU clock (see `clock.rs`), except that `--quick` (which
/// stops a benchmark once two runs agree within 5 %, or at the measurement time) gets a 0.5 s
/// cap instead of 5 s: on a busy CI machine the cap is what bounds the run.
/// `--measurement-time` on the command line still wins.
fn config() -> Criterion<BenchClock> {
    let criterion = Criterion::default().with_measurement(BenchClock::new());
    if quick() {
        criterion.measurement_time(Duration::from_millis(500))
    } else {
        criterion
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_packet, stream
}
criterion_main!(benches);
