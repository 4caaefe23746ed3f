#!/bin/sh
# Instructions per packet of our codec for every workload of benches/codec, counted by
# callgrind on examples/codec_loop.rs: (instructions of 2N iterations - of N) / N, so setup
# and the fixtures' construction cancel out. Each line also has the peers that have the
# workload (mqttrs, mqtt-protocol, and rumqttc's encoders), counted the same way: instruction
# counts are not times, but unlike times no other job on the machine moves them. Needs
# valgrind.
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
        line="$dir $w"
        for peer in "" mqttrs: mqtt-protocol: rumqttc:; do
            # A peer without this workload (or direction) exits non-zero at once.
            "$BIN" "$peer$dir" "$w" 1 >/dev/null 2>&1 || continue
            a=$(count "$peer$dir" "$w" "$N")
            b=$(count "$peer$dir" "$w" $((2 * N)))
            line="$line ${peer:-ours:}$(((b - a) / N))"
        done
        echo "$line"
    done
done
