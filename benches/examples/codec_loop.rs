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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, direction, name, iterations] = args.as_slice() else {
        eprintln!("usage: codec_loop decode|encode WORKLOAD ITERATIONS");
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
