#!/usr/bin/env bash
# The control page's client download beside MQTT.js's browser bundle, in one run, with one
# command: gzip -9 -c FILE | wc -c. Needs the built bundle (scripts/build-wasm.sh) and the
# browser test's npm packages (cd examples/web/test && npm ci), which pin MQTT.js.
set -euo pipefail
cd "$(dirname "$0")/.."
gz() { gzip -9 -c "$1" | wc -c; }
pkg=examples/web/pkg
wasm=$pkg/mqtt_client_wasm_bg.wasm
glue=$pkg/mqtt_client_wasm.js
mqttjs=examples/web/test/node_modules/mqtt/dist/mqtt.min.js
mqttjs_version=$(node -p "require('./examples/web/test/node_modules/mqtt/package.json').version")
printf '%-44s %9s %9s\n' file bytes gzip-9
for f in "$wasm" "$glue"; do printf '%-44s %9d %9d\n' "$f" "$(wc -c <"$f")" "$(gz "$f")"; done
printf '%-44s %9d %9d\n' "mqtt-client-wasm total (wasm + JS glue)" \
  "$(( $(wc -c <"$wasm") + $(wc -c <"$glue") ))" "$(( $(gz "$wasm") + $(gz "$glue") ))"
printf '%-44s %9d %9d\n' "MQTT.js $mqttjs_version dist/mqtt.min.js" "$(wc -c <"$mqttjs")" "$(gz "$mqttjs")"
