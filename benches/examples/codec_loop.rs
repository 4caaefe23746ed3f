//! One codec workload in a plain loop, for instruction counts under callgrind, which other
//! jobs on the machine cannot disturb (criterion's times can move by ±40 % on a busy machine):
//!
//! ```sh
//! cargo build --release -p benches --example codec_loop
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/codec_loop decode pub_qos0_64B 200000
//! ```
//!
//! Instructions per packet: the difference between runs of 2N and N iterations, divided by N
//! (`benches/callgrind.sh` does that for every workload).

use std::hint::black_box;

use mqtt_sansio::{Decoded, Packet};

#[allow(dead_code)]
#[path = "../benches/codec/fixtures.rs"]
mod fixtures;

#[allow(dead_code)]
#[path = "../benches/codec/peers.rs"]
mod peers;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, direction, name, iterations] = args.as_slice() else {
        eprintln!("usage: codec_loop [PEER:]decode|encode WORKLOAD ITERATIONS");
        eprintln!("PEER is mqttrs, mqtt-protocol or rumqttc; ours without it");
        std::process::exit(2);
    };
    let iterations: u64 = iterations.parse().expect("a number of iterations");
    let workloads = fixtures::workloads();
    let Some(w) = workloads.iter().find(|w| w.name == name) else {
        let names: Vec<_> = workloads.iter().map(|w| w.name).collect();
        eprintln!("unknown workload {name}; one of {names:?}");
        std::process::exit(2);
    };
    let mut buf = vec![0u8; w.bytes.len()];
    if let Some((peer, direction)) = direction.split_once(':') {
        peer_loop(peer, direction, w, iterations);
        return;
    }
    match direction.as_str() {
        "decode" => {
            for _ in 0..iterations {
                let decoded = Packet::decode(black_box(&w.bytes), w.version, u32::MAX);
                assert!(matches!(decoded, Ok(Decoded::Packet { .. })));
                black_box(&decoded);
            }
        }
        "encode" => {
            for _ in 0..iterations {
                let n = black_box(&w.packet).encode(w.version, &mut buf);
                black_box(&buf);
                assert_eq!(n, Ok(w.bytes.len()));
            }
        }
        _ => {
            eprintln!("direction is decode or encode");
            std::process::exit(2);
        }
    }
}

/// The same loop through a peer codec, so that its instruction count sits beside ours.
fn peer_loop(peer: &str, direction: &str, w: &fixtures::Workload, iterations: u64) {
    let bytes = &w.bytes[..];
    let mut buf = vec![0u8; bytes.len() + 64];
    let unsupported = || -> ! {
        eprintln!("{peer} has no {} of {}", direction, w.name);
        std::process::exit(3);
    };
    // mqttrs and mqtt-protocol speak 3.1.1 only; rumqttc's decoders consume their buffer, so
    // they are timed by the criterion bench alone.
    if w.version.is_v5() && peer != "rumqttc" {
        unsupported();
    }
    match (peer, direction) {
        ("mqttrs", "decode") => {
            for _ in 0..iterations {
                black_box(&peers::mqttrs::decode(black_box(bytes)));
            }
        }
        ("mqttrs", "encode") => {
            let Some(p) = peers::mqttrs::convert(&w.packet) else {
                unsupported()
            };
            for _ in 0..iterations {
                let n = peers::mqttrs::encode(black_box(&p), black_box(&mut buf[..]));
                assert_eq!(n.ok(), Some(bytes.len()));
            }
        }
        ("mqtt-protocol", "decode") => {
            for _ in 0..iterations {
                let mut rest = black_box(bytes);
                black_box(&peers::mqtt_sansiocol::decode(&mut rest));
            }
        }
        ("mqtt-protocol", "encode") => {
            let Some(p) = peers::mqtt_sansiocol::convert(&w.packet).filter(|_| !w.version.is_v5())
            else {
                unsupported()
            };
            for _ in 0..iterations {
                peers::mqtt_sansiocol::encode(black_box(&p), black_box(&mut buf[..]))
                    .expect("encodes");
            }
        }
        ("rumqttc", "encode") if !w.version.is_v5() => {
            let Some(p) = peers::rumqttc_v4::convert(&w.packet) else {
                unsupported()
            };
            let mut out = bytes::BytesMut::with_capacity(2 * bytes.len() + 64);
            for _ in 0..iterations {
                out.clear();
                peers::rumqttc_v4::encode(black_box(&p), black_box(&mut out)).expect("encodes");
            }
        }
        ("rumqttc", "encode") => {
            let Some(p) = peers::rumqttc_v5::convert(&w.packet) else {
                unsupported()
            };
            let mut out = bytes::BytesMut::with_capacity(2 * bytes.len() + 64);
            for _ in 0..iterations {
                out.clear();
                peers::rumqttc_v5::encode(black_box(&p), black_box(&mut out)).expect("encodes");
            }
        }
        _ => unsupported(),
    }
}
