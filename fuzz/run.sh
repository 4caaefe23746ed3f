#!/usr/bin/env bash
# Builds and runs every cargo-fuzz target for SECONDS each (default 60) on its committed seed
# corpus, and exits non-zero if any target crashes (the input is then in fuzz/artifacts/<target>/).
#
#   bash fuzz/run.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Uses the nightly toolchain when rustup
# has one, and otherwise the default toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags).
# Environment:
#   FUZZ_SANITIZER  address (default) or none; `none` runs about twice as fast. The stable
#                   fallback drops to `none` by itself if an AddressSanitizer build fails.
#   FUZZ_JOBS       parallel fuzzing processes per target (default 1).
#   FUZZ_STABLE=1   use the RUSTC_BOOTSTRAP fallback even when nightly is installed.
#
# New inputs the fuzzer finds go to fuzz/target/corpus/<target> (git-ignored), not into the
# committed seeds; the committed seeds are only read. Logs are in fuzz/target/logs/.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
'' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2 && exit 2 ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."
# The fuzz crate is its own workspace; keep its instrumented builds out of the main target dir.
# FUZZ_TARGET_DIR moves it elsewhere (CI keeps it in a cache outside the clone).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"
sanitizer="${FUZZ_SANITIZER:-address}"
jobs="${FUZZ_JOBS:-1}"

if [ -z "${FUZZ_STABLE:-}" ] && rustup run nightly true >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
    echo "fuzz: $(rustup run nightly rustc -V)"
else
    # cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP lets a stable compiler take them.
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    echo "fuzz: no nightly toolchain, using $(rustc -V) with RUSTC_BOOTSTRAP=1"
fi

if ! "${fuzz[@]}" build --sanitizer "$sanitizer"; then
    if [ "$sanitizer" = none ] || [ -z "${RUSTC_BOOTSTRAP:-}" ]; then
        echo "fuzz: build failed" >&2
        exit 1
    fi
    echo "fuzz: the $sanitizer sanitizer build failed on this toolchain; retrying without" >&2
    sanitizer=none
    "${fuzz[@]}" build --sanitizer none
fi

mkdir -p "$CARGO_TARGET_DIR/logs"
failed=()
summary=()
for target in $("${fuzz[@]}" list); do
    work="$CARGO_TARGET_DIR/corpus/$target"
    log="$CARGO_TARGET_DIR/logs/$target.log"
    mkdir -p "$work" "fuzz/corpus/$target"
    echo "fuzz: running $target for ${seconds}s (sanitizer: $sanitizer, jobs: $jobs)"
    status=0
    # The first corpus directory receives new inputs; the committed seeds are read only.
    "${fuzz[@]}" run --sanitizer "$sanitizer" --jobs "$jobs" "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -dict="fuzz/mqtt.dict" \
        2>&1 | tee "$log" || status=$?
    stats="$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb):' "$log" |
        awk '{printf "%s ", $0}' || true)"
    summary+=("$target: exit $status; $stats")
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
    fi
done

echo
echo "fuzz: summary (${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (crashing inputs are in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: no crash"
