#!/usr/bin/env bash
# Builds the TLS library for the LX106 (../build-lx106.sh), links the replay of a recorded
# broker session (replay.c + the transcript header a host test wrote) with its own bare runtime
# (rt.c), and runs it on the LX106 core in QEMU. Prints the replay's line; exit status is the
# replay's.
#
#   bash esp-client/esp8266/tls/qemu/run-replay.sh TRANSCRIPT_H OUT_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TLS=$(cd "$HERE/.." && pwd)
TRANSCRIPT=${1:?usage: run-replay.sh TRANSCRIPT_H OUT_DIR}
OUT=${2:?usage: run-replay.sh TRANSCRIPT_H OUT_DIR}
PICOLIBC=/usr/lib/xtensa-lx106-elf
command -v qemu-system-xtensa >/dev/null \
  || { echo "run-replay: qemu-system-xtensa not found: apt-get install qemu-system-misc" >&2; exit 2; }

# Any build failure is exit 2 ("could not build"), apart from the replay's own verdict.
trap 'echo "run-replay: build failed" >&2; exit 2' ERR
# The library once per OUT_DIR (a second replay into the same directory reuses it).
if [ ! -f "$OUT/libesptls.a" ]; then
  bash "$TLS/build-lx106.sh" "$OUT" >"$OUT.build.log" 2>&1 \
    || { cat "$OUT.build.log" >&2; exit 2; }
fi
CFLAGS=(--specs="$PICOLIBC/picolibc.specs" -Os -std=gnu99 -Wall -Wextra -Werror -mlongcalls
  -mtext-section-literals -ffunction-sections -fdata-sections -DESP8266
  -I"$TLS/lx106" -I"$TLS/../vendor/bearssl/inc" -I"$TLS" -I"$(dirname "$TRANSCRIPT")")
xtensa-lx106-elf-gcc "${CFLAGS[@]}" -c -o "$OUT/replay.o" "$HERE/replay.c"
xtensa-lx106-elf-gcc "${CFLAGS[@]}" -c -o "$OUT/tls_stack.o" "$TLS/tls_stack.S"
xtensa-lx106-elf-gcc "${CFLAGS[@]}" -c -o "$OUT/rt.o" "$HERE/rt.c"
xtensa-lx106-elf-gcc -nostdlib -T "$HERE/replay.ld" -Wl,--gc-sections -Wl,--no-warn-execstack \
  -o "$OUT/replay.elf" "$OUT/replay.o" "$OUT/tls_stack.o" "$OUT/rt.o" \
  "$OUT/libesptls.a" "$PICOLIBC/lib/libc.a" -lgcc
trap - ERR
timeout 120 qemu-system-xtensa -M sim -cpu lx106 -nographic -monitor none -semihosting -icount shift=0 \
  -device loader,file="$OUT/replay.elf",cpu-num=0
