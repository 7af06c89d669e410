#!/usr/bin/env bash
# Runs a program built for the LX106 (with qemu/rt.c) in `qemu-system-xtensa -M sim -cpu lx106`:
# semihosting for its output and exit status, instructions counted (`-icount shift=0`: one
# instruction is one nanosecond of virtual time, so a run repeats exactly and can be timed in
# instructions), and a time limit: a hung program is stopped after QEMU_TIMEOUT seconds (default
# 120; exit status 124). Prints the program's output and exits with its status; 127 when QEMU
# is missing.
#
#   bash esp-client/esp8266/qemu/run.sh ELF [FLASH]    # FLASH: a raw image at 0x50000000
set -euo pipefail
ELF=${1:?usage: run.sh ELF [FLASH]}
command -v qemu-system-xtensa >/dev/null \
  || { echo "qemu/run.sh: qemu-system-xtensa not found: apt-get install qemu-system-misc" >&2; exit 127; }
args=(-M sim -cpu lx106 -nographic -monitor none -semihosting -icount shift=0
  -device "loader,file=$ELF,cpu-num=0")
if [ -n "${2:-}" ]; then
  args+=(-device "loader,file=$2,addr=0x50000000,force-raw=on")
fi
exec timeout "${QEMU_TIMEOUT:-120}" qemu-system-xtensa "${args[@]}"
