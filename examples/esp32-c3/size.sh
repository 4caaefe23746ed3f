#!/bin/sh
# Prints the flash and RAM use of the release firmware, per output section group.
#
#   ./size.sh [ELF]     (default: the release build of this folder)
#
# Needs only `readelf` (binutils), so it runs in CI without an embedded toolchain. Section
# groups follow esp-hal's linker script for the ESP32-C3:
#   .text    code executed in place from flash (.text)
#   .rwtext  code copied to internal RAM at boot (.trap, .rwtext, .rwtext.wifi): flash AND RAM
#   .rodata  constants read from flash (.rodata*, .flash.appdesc)
#   .data    initialised statics: stored in flash, copied to RAM
#   .bss     zeroed statics (includes the esp-alloc heap arenas declared with heap_allocator!)
#   stack    what the linker left of internal RAM for the stack
# The `*_dummy` sections only reserve address space (IRAM and DRAM alias the same SRAM on the
# C3) and are not counted.
set -eu

cd "$(dirname "$0")"
ELF=${1:-target/riscv32imc-unknown-none-elf/release/esp32-c3-led}
if [ ! -f "$ELF" ]; then
    echo "size.sh: $ELF not found; run 'cargo build --release --locked' first" >&2
    exit 1
fi

readelf -S -W "$ELF" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk '
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
    END {
        flash = size["text"] + size["rwtext"] + size["rodata"] + size["data"]
        ram = size["rwtext"] + size["data"] + size["bss"]
        printf "%-8s %9s %9s\n", "section", "bytes", "KiB"
        n = split("text rwtext rodata data bss", order, " ")
        for (i = 1; i <= n; i++)
            printf ".%-7s %9d %9.1f\n", order[i], size[order[i]], size[order[i]] / 1024
        printf "%-8s %9d %9.1f   (.text + .rwtext + .rodata + .data)\n", "flash", flash, flash / 1024
        printf "%-8s %9d %9.1f   (.rwtext + .data + .bss, static)\n", "ram", ram, ram / 1024
        printf "%-8s %9d %9.1f   (left for the main stack)\n", "stack", size["stack"], size["stack"] / 1024
    }'
