#!/bin/sh
# Instructions per packet of our codec for every workload of benches/codec, counted by
# callgrind on examples/codec_loop.rs: (instructions of 2N iterations - of N) / N, so setup
# and the fixtures' construction cancel out. Needs valgrind.
#
#   benches/callgrind.sh [N]          (default N = 20000)
set -eu
cd "$(dirname "$0")/.."
N=${1:-20000}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p benches --example codec_loop
BIN=$TARGET/release/examples/codec_loop
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$2" "$3" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for dir in decode encode; do
    for w in pub_qos0_64B pub_qos1_1KiB pub_qos1_64KiB pub_v5_props_256B connect_v311 connect_v5 \
        subscribe10_v311 subscribe10_v5 puback pingreq; do
        a=$(count "$dir" "$w" "$N")
        b=$(count "$dir" "$w" $((2 * N)))
        echo "$dir $w $(((b - a) / N))"
    done
done
