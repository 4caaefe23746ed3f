#!/usr/bin/env python3
"""Prints the README's result tables from criterion's estimates of the last `cargo bench` run.

usage: python3 benches/report.py [CRITERION_DIR...]   (default: target/criterion)

Each cell is the median time per packet (or per 1 MiB buffer for the stream), and for a peer
its ratio peer/us: above 1 means we are faster. The last column is the fastest peer's ratio
against the target (decode at least 2x, encode at least 1.5x faster than the fastest peer).

Given several criterion directories (copies of target/criterion taken after each run), a cell
is the lowest of the runs' medians: on a shared machine the slower runs are the ones a
neighbour disturbed.
"""

import json
import os
import sys

OURS = "mqtt-sansio"
PEERS = ["rumqttc", "mqttrs", "mqtt-protocol"]
WORKLOADS = [
    ("pub_qos0_64B", "3.1.1 PUBLISH QoS 0, 64 B"),
    ("pub_qos1_1KiB", "3.1.1 PUBLISH QoS 1, 1 KiB"),
    ("pub_qos1_64KiB", "3.1.1 PUBLISH QoS 1, 64 KiB"),
    ("pub_v5_props_256B", "5.0 PUBLISH QoS 1 + properties, 256 B"),
    ("connect_v311", "3.1.1 CONNECT, will + credentials"),
    ("connect_v5", "5.0 CONNECT, properties + will"),
    ("subscribe10_v311", "3.1.1 SUBSCRIBE, 10 filters"),
    ("subscribe10_v5", "5.0 SUBSCRIBE, 10 filters"),
    ("puback", "3.1.1 PUBACK"),
    ("pingreq", "PINGREQ"),
]
TARGET = {"decode": 2.0, "encode": 1.5}


def median_ns(roots, group, bench):
    medians = []
    for root in roots:
        path = os.path.join(root, group, bench, "new", "estimates.json")
        try:
            with open(path) as f:
                medians.append(json.load(f)["median"]["point_estimate"])
        except FileNotFoundError:
            pass
    return min(medians) if medians else None


def fmt_time(ns):
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns:.1f} ns"


def table(roots, direction):
    rows = [
        f"| {direction} | {OURS} | " + " | ".join(PEERS) + " | fastest peer / us (target) |",
        "|---|---:|" + "---:|" * len(PEERS) + "---|",
    ]
    for key, label in WORKLOADS:
        group = f"{direction}_{key}"
        ours = median_ns(roots, group, OURS)
        if ours is None:
            continue
        cells, best = [], None
        for peer in PEERS:
            t = median_ns(roots, group, peer)
            if t is None:
                cells.append("n/a")
                continue
            cells.append(f"{fmt_time(t)} ({t / ours:.2f}x)")
            best = t if best is None else min(best, t)
        if best is None:
            verdict = "no peer"
        else:
            ratio = best / ours
            mark = "met" if ratio >= TARGET[direction] else "**missed**"
            verdict = f"{ratio:.2f}x ({TARGET[direction]}x: {mark})"
        rows.append(f"| {label} | {fmt_time(ours)} | " + " | ".join(cells) + f" | {verdict} |")
    return "\n".join(rows)


def stream_table(roots):
    group = "stream_1MiB_qos0_64B"
    ours = median_ns(roots, group, OURS)
    if ours is None:
        return ""
    mib = 1 << 20
    # The buffer holds as many 97-byte publishes as fit in 1 MiB.
    count = mib // 97
    size = count * 97
    rows = [
        "| 1 MiB of 64 B QoS 0 publishes | time per buffer | throughput | packets/s | peer / us |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in [OURS] + PEERS:
        t = median_ns(roots, group, name)
        if t is None:
            continue
        gib_s = size / t * 1e9 / (1 << 30)
        mpps = count / t * 1e3
        ratio = "" if name == OURS else f"{t / ours:.2f}x"
        rows.append(f"| {name} | {fmt_time(t)} | {gib_s:.2f} GiB/s | {mpps:.1f} M | {ratio} |")
    return "\n".join(rows)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    roots = sys.argv[1:] or [os.path.join(here, "..", "target", "criterion")]
    print(table(roots, "decode"))
    print()
    print(table(roots, "encode"))
    print()
    print(stream_table(roots))


if __name__ == "__main__":
    main()
