#!/usr/bin/env python3
"""MSRV check without the MSRV toolchain: every crate that the library crates build on this
host (normal and build dependencies, all features) must declare a rust-version no newer
than the workspace's, so that a toolchain of that version can compile the locked dependency tree.
Our own code's use of newer std APIs is caught by clippy's incompatible_msrv lint, which
reads the same rust-version. Exits 1 and lists the offenders otherwise."""
import json
import subprocess
import sys

LIBRARIES = {"mqtt-sansio", "mqtt-client-nb", "mqtt-client-tokio"}


def version(text):
    return tuple(int(part) for part in text.split(".")) + (0,) * (3 - len(text.split(".")))


metadata = json.loads(
    subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"], text=True)
)
rust_version = {(p["name"], p["version"]): p["rust_version"] for p in metadata["packages"]}
ours = [p for p in metadata["packages"] if p["name"] in LIBRARIES and p["source"] is None]
msrv = version(ours[0]["rust_version"])
# cargo tree resolves features as a build of the libraries would on this host: without
# their dev-dependencies, which would otherwise switch on optional dependencies.
tree = ["cargo", "tree", "--locked", "--all-features", "-e", "no-dev", "--prefix", "none",
        "--format", "{p}"]
for name in sorted(LIBRARIES):
    tree += ["-p", name]
built = set()
for line in subprocess.check_output(tree, text=True).splitlines():
    fields = line.split()
    if len(fields) >= 2 and fields[1].startswith("v"):
        built.add((fields[0], fields[1][1:]))
newer = sorted(
    f"{name} {ver} needs Rust {rust_version[name, ver]}"
    for name, ver in built
    if rust_version.get((name, ver)) and version(rust_version[name, ver]) > msrv
)
print(f"MSRV {'.'.join(map(str, msrv))}: {len(built)} crates in the libraries' build")
for line in newer:
    print("  " + line)
sys.exit(1 if newer else 0)
