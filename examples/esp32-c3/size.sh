#!/bin/sh
# Prints the flash and RAM use of the release firmware, per output section group.
#
#   ./size.sh [ELF]       (default: the release build of this folder)
#   ./size.sh --compare   also builds the firmware without MQTT (features `device` only) and
#                         without MQTT and led-device (no features), then prints the three
#                         side by side with what MQTT and led-device add, and the symbol bytes
#                         named after each crate. Three warm builds of this crate (about a
#                         minute); leaves the default build in target/ as it found it.
#
# Needs only `readelf` and `nm` (binutils), so it runs in CI without an embedded toolchain.
# Section groups follow esp-hal's linker script for the ESP32-C3:
#   .text    code executed in place from flash (.text)
#   .rwtext  code copied to internal RAM at boot (.trap, .rwtext, .rwtext.wifi): flash AND RAM
#   .rodata  constants read from flash (.rodata*, .flash.appdesc)
#   .data    initialised statics: stored in flash, copied to RAM. esp-hal also puts switch
#            tables and constant pools here (ESP_HAL_CONFIG_PLACE_SWITCH_TABLES_IN_RAM)
#   .bss     zeroed statics (includes the esp-alloc heap arenas declared with heap_allocator!,
#            and the futures of the embassy tasks, so the buffers declared in them)
#   stack    what the linker left of internal RAM for the stack
# The `*_dummy` sections only reserve address space (IRAM and DRAM alias the same SRAM on the
# C3) and are not counted.
set -eu

cd "$(dirname "$0")"
TARGET=${CARGO_TARGET_DIR:-target}
OUT=$TARGET/riscv32imc-unknown-none-elf/release/esp32-c3-led

# Prints "text rwtext rodata data bss stack" of ELF $1, in bytes, on one line.
sections() {
    readelf -S -W "$1" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk '
        # Portable hex parsing: mawk, the default awk on Debian, has no strtonum.
        function hex(s,    i, v) {
            v = 0
            for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
            return v
        }
        function add(group, h) { size[group] += hex(h) }
        # fields: name type addr off size ...
        $1 ~ /_dummy$/                                  { next }
        $1 ~ /^\.(trap|rwtext)/                         { add("rwtext", $5); next }
        $1 ~ /^\.text/ || $1 == ".rtc_fast.text"        { add("text", $5); next }
        $1 ~ /^\.rodata/ || $1 == ".flash.appdesc"      { add("rodata", $5); next }
        $1 ~ /^\.data/ || $1 == ".rtc_fast.data"        { add("data", $5); next }
        $1 ~ /^\.(bss|noinit)/ || $1 ~ /^\.rtc_fast\.(bss|persistent)/ { add("bss", $5); next }
        $1 == ".stack"                                  { add("stack", $5); next }
        END { printf "%d %d %d %d %d %d\n", size["text"], size["rwtext"], size["rodata"], size["data"], size["bss"], size["stack"] }'
}

if [ "${1:-}" != "--compare" ]; then
    ELF=${1:-$OUT}
    if [ ! -f "$ELF" ]; then
        echo "size.sh: $ELF not found; run 'cargo build --release --locked' first" >&2
        exit 1
    fi
    sections "$ELF" | awk '{
        printf "%-8s %9s %9s\n", "section", "bytes", "KiB"
        n = split("text rwtext rodata data bss", name, " ")
        for (i = 1; i <= n; i++) printf ".%-7s %9d %9.1f\n", name[i], $i, $i / 1024
        flash = $1 + $2 + $3 + $4; ram = $2 + $4 + $5
        printf "%-8s %9d %9.1f   (.text + .rwtext + .rodata + .data)\n", "flash", flash, flash / 1024
        printf "%-8s %9d %9.1f   (.rwtext + .data + .bss, static)\n", "ram", ram, ram / 1024
        printf "%-8s %9d %9.1f   (left for the main stack)\n", "stack", $6, $6 / 1024
    }'
    exit 0
fi

# --compare: build the variants, the default one last so that it stays in target/.
DIR=$TARGET/size-compare
mkdir -p "$DIR"
build() {
    echo "size.sh: cargo build --release --locked $*" >&2
    cargo build --release --locked "$@" >&2
}
build --no-default-features
cp "$OUT" "$DIR/bare"
build --no-default-features --features device
cp "$OUT" "$DIR/device"
build
cp "$OUT" "$DIR/mqtt"

{
    sections "$DIR/mqtt"
    sections "$DIR/device"
    sections "$DIR/bare"
} | awk '
    { for (i = 1; i <= 6; i++) v[NR, i] = $i }
    function row(label, a, b, c) {
        printf "%-22s %9d %9d %9d %9d %9d\n", label, a, b, c, a - b, b - c
    }
    END {
        printf "%-22s %9s %9s %9s %9s %9s\n", "bytes", "mqtt", "device", "bare", "MQTT", "led-dev"
        n = split("text rwtext rodata data bss", name, " ")
        for (i = 1; i <= n; i++) row("." name[i], v[1, i], v[2, i], v[3, i])
        for (k = 1; k <= 3; k++) {
            flash[k] = v[k, 1] + v[k, 2] + v[k, 3] + v[k, 4]
            ram[k] = v[k, 2] + v[k, 4] + v[k, 5]
        }
        row("flash (text..data)", flash[1], flash[2], flash[3])
        row("ram (rwtext+data+bss)", ram[1], ram[2], ram[3])
        print ""
        print "mqtt: the firmware (default features); device: led-device behind a plain-text"
        print "TCP stub instead of MQTT; bare: the stub toggles the LED, no led-device."
        print "MQTT = mqtt - device (mqtt-client-nb, mqtt-sansio and the MQTT glue in src/app.rs);"
        print "led-dev = device - bare. .bss includes the buffers the tasks declare."
    }'

# Code in functions named after each crate, in the default build. Generic and inlined code
# is compiled into its caller (most of the client's poll ends up in app::connection), and
# string constants are anonymous, so this is only a rough split; README.md attributes the
# code by source line instead.
echo
nm -C -S "$DIR/mqtt" | awk '
    function hex(s,    i, v) {
        v = 0
        for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
        return v
    }
    NF >= 4 && $3 ~ /^[tT]$/ {
        name = $4
        for (i = 5; i <= NF; i++) name = name " " $i
        sub(/^</, "", name)
        if (name ~ /^mqtt_sansio::/) crate = "mqtt_sansio"
        else if (name ~ /^mqtt_client_nb::/) crate = "mqtt_client_nb"
        else if (name ~ /^led_device::/) crate = "led_device"
        else if (name ~ /^esp32_c3_led::app::/) crate = "esp32_c3_led::app"
        else next
        size[crate] += hex($2)
    }
    END {
        printf "%-22s %9s   (functions named after the crate, default build)\n", "crate", "code"
        n = split("mqtt_sansio mqtt_client_nb esp32_c3_led::app led_device", c, " ")
        for (i = 1; i <= n; i++) printf "%-22s %9d\n", c[i], size[c[i]]
    }'
