#!/usr/bin/env python3
"""Code bytes of the firmware by the source crate (or file) they were compiled from.

    ./attribute.py ELF [BASE_ELF] [--files PREFIX]

Symbol sizes (`nm`) put generic and inlined code in the caller: most of `mqtt-client-nb`'s
`poll` and the session it drives is compiled into `app::connection`. The DWARF line table
(release builds here keep `debug = 2`) instead says, for every instruction, which source file
it came from, inlined or not. This sums .text/.rwtext bytes per crate of that file; with
BASE_ELF (e.g. `target/size-compare/device` after `./size.sh --compare`) it prints the
difference. `--files mqtt` lists files of crates whose name starts with `mqtt` instead.

`core` code (Result and Option combinators, slice bounds checks, integer formatting, ...)
inlined into a crate's functions counts as `core`. Needs `llvm-dwarfdump` (any LLVM) and
Python 3.
"""
import collections
import re
import subprocess
import sys

LOCAL = ("mqtt-proto", "mqtt-client-nb", "led-device", "esp32-c3")


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def origin(path, files):
    """Crate (or, with `files`, crate:file) a source path belongs to."""
    m = re.search(r"library/([a-z_\-]+)/(src/.*)?", path)
    if "/rustc/" in path or m:
        return "core" if not m else m.group(1) + (":" + (m.group(2) or "") if files else "")
    if "/COMPONENT_" in path or path.endswith((".c", ".h")):
        return "C (Wi-Fi libraries)"
    m = re.search(r"registry/src/[^/]+/([A-Za-z0-9_\-]+?)-\d+\.\d+[^/]*/", path)
    if m:
        return m.group(1)
    for crate in LOCAL:
        m = re.search("/" + crate + "/(.*)", path)
        if m:
            name = {"esp32-c3": "firmware", "mqtt-proto": "mqtt-sansio"}.get(crate, crate)
            return name + (":" + m.group(1) if files else "")
    return "other"


def comp_dirs(elf):
    """Line-table offset -> compilation directory, for relative paths."""
    dirs, stmt = {}, None
    for line in run("llvm-dwarfdump", "--debug-info", "--recurse-depth=0", elf).splitlines():
        m = re.search(r"DW_AT_stmt_list\s+\((0x[0-9a-f]+)\)", line)
        if m:
            stmt = int(m.group(1), 16)
        m = re.search(r'DW_AT_comp_dir\s+\("(.*)"\)', line)
        if m and stmt is not None:
            dirs[stmt], stmt = m.group(1), None
    return dirs


def attribute(elf, files=False):
    cds = comp_dirs(elf)
    total = collections.Counter()
    dirs, names, cur, seq, base = {}, {}, None, [], ""
    for line in run("llvm-dwarfdump", "--debug-line", elf).splitlines():
        if line.startswith("debug_line["):
            base = cds.get(int(line[11:21], 16), "")
            dirs, names, cur = {0: base}, {}, None
            continue
        m = re.match(r'include_directories\[\s*(\d+)\] = "(.*)"', line)
        if m:
            d = m.group(2)
            dirs[int(m.group(1))] = d if d.startswith("/") else base + "/" + d
            continue
        m = re.match(r"file_names\[\s*(\d+)\]:", line)
        if m:
            cur = int(m.group(1))
            names[cur] = ["?", 0]
            continue
        m = re.match(r'\s+name: "(.*)"', line)
        if m and cur is not None:
            names[cur][0] = m.group(1)
            continue
        m = re.match(r"\s+dir_index: (\d+)", line)
        if m and cur is not None:
            names[cur][1] = int(m.group(1))
            continue
        if line.startswith("0x"):
            fields = line.split()
            name, d = names.get(int(fields[3]), ["?", 0])
            path = name if name.startswith("/") else dirs.get(d, "") + "/" + name
            seq.append((int(fields[0], 16), origin(path, files)))
            if "end_sequence" in line:
                for (a, crate), (b, _) in zip(seq, seq[1:]):
                    total[crate] += max(b - a, 0)
                seq = []
    return total


def main(argv):
    files = None
    if "--files" in argv:
        i = argv.index("--files")
        files = argv[i + 1]
        del argv[i : i + 2]
    if not argv:
        sys.exit(__doc__)
    new = attribute(argv[0], files is not None)
    old = attribute(argv[1], files is not None) if len(argv) > 1 else collections.Counter()
    rows = [(new[k] - old[k], k) for k in set(new) | set(old)]
    if files is not None:
        rows = [r for r in rows if r[1].startswith(files)]
    rows.sort(reverse=True)
    for delta, key in rows:
        if delta:
            print(f"{delta:+9d} {key}" if len(argv) > 1 else f"{delta:9d} {key}")
    print(f"{sum(d for d, _ in rows):+9d} total" if len(argv) > 1 else f"{sum(d for d, _ in rows):9d} total")


if __name__ == "__main__":
    main(sys.argv[1:])
