#!/usr/bin/env bash
# Runs the whole test suite: unit, property, scripted-session, integration (against a
# mosquitto that the tests start themselves on free loopback ports) and doc tests.
# Installs mosquitto from Debian's packages first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "mosquitto is not installed; installing it (apt-get)..."
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update
  $SUDO apt-get install -y mosquitto mosquitto-clients
fi

cargo test --workspace "$@"
# What mqtt-sansio does without its optional features (tests/features.rs): with none, and
# with only `server`, which the scripted broker of the session checks needs.
cargo test -p mqtt-sansio --no-default-features --test features "$@"
# Its unit tests without them too: a test that needs 5.0 must say so.
cargo test -p mqtt-sansio --no-default-features --lib "$@"
cargo test -p mqtt-sansio --no-default-features --features server --test features "$@"
# What mqtt-client-nb does without `v5` where it must match a 5.0 build (tests/authenticator.rs).
cargo test -p mqtt-client-nb --no-default-features --test authenticator "$@"
# The flash journal's tests need mqtt-client-nb's `flash` feature, which nothing in the
# workspace turns on.
cargo test -p mqtt-client-nb --features flash --test flash_journal --test flash_broker \
  --test flash_wear --test flash_kill "$@"
# The fuzz targets' checks and every crash the fuzzers ever found, replayed as plain tests.
cargo test -p mqtt-sansio --features fuzzing --lib "$@"
