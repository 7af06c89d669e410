#!/usr/bin/env python3
"""Prints the largest stack frames of a binary from the assembly rustc emitted with
-Z emit-stack-sizes (`.stack_sizes` entries: a function's start label, then its frame size in
ULEB128). Usage: stack_frames.py FILE.s [N]"""
import re
import subprocess
import sys


def frames(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    label, begin = None, {}
    for line in lines:
        m = re.match(r"^([A-Za-z_][\w$.]*):$", line)
        if m:
            label = m.group(1)
        m = re.match(r"^(\.Lfunc_begin\d+):$", line)
        if m:
            begin[m.group(1)] = label
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"\s*\.long\s+(\.Lfunc_begin\d+)$", line)
        if not (m and i > 0 and ".stack_sizes" in lines[i - 1]):
            continue
        v = lines[i + 1].strip()
        if v.startswith(".ascii"):
            raw = v.split('"', 1)[1].rsplit('"', 1)[0]
            b = raw.encode("ascii").decode("unicode_escape").encode("latin1")
        else:
            b = bytes([int(v.split()[1], 0)])
        n, shift = 0, 0
        for c in b:
            n |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
        out.append((n, begin.get(m.group(1), m.group(1))))
    return sorted(out, reverse=True)


def readable(symbol):
    """Demangled with binutils' c++filt, without crate hashes and generic arguments."""
    try:
        name = subprocess.run(["xtensa-lx106-elf-c++filt", symbol], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return symbol
    name = re.sub(r"\[[0-9a-f]+\]", "", name)
    # Drop turbofish arguments (`::<...>`), keep `<Type>::method`.
    out, depth, i = [], 0, 0
    while i < len(name):
        if depth == 0 and name.startswith("::<", i):
            depth, i = 1, i + 3
            continue
        c = name[i]
        if depth:
            depth += (c == "<") - (c == ">")
        else:
            out.append(c)
        i += 1
    return "".join(out)


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    for size, fn in frames(sys.argv[1])[:n]:
        print(f"stack_frame_bytes {size} {readable(fn)}")
