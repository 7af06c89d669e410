#!/usr/bin/env bash
# Builds the TLS library for the LX106 (../build-lx106.sh), links the replay of a recorded
# broker session (replay.c + the transcript header a host test wrote) with the bare runtime of
# every QEMU run (esp8266/qemu/rt.c), and runs it on the LX106 core with esp8266/qemu/run.sh.
# Prints the replay's line; exit status is the replay's, 2 when it could not be built or run.
#
#   bash esp-client/esp8266/tls/qemu/run-replay.sh TRANSCRIPT_H OUT_DIR
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TLS=$(cd "$HERE/.." && pwd)
QEMU=$(cd "$TLS/../qemu" && pwd)
TRANSCRIPT=${1:?usage: run-replay.sh TRANSCRIPT_H OUT_DIR}
OUT=${2:?usage: run-replay.sh TRANSCRIPT_H OUT_DIR}
PICOLIBC=/usr/lib/xtensa-lx106-elf
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
xtensa-lx106-elf-gcc "${CFLAGS[@]}" -c -o "$OUT/rt.o" "$QEMU/rt.c"
xtensa-lx106-elf-gcc -nostdlib -T "$HERE/replay.ld" -Wl,--gc-sections -Wl,--no-warn-execstack \
  -o "$OUT/replay.elf" "$OUT/replay.o" "$OUT/tls_stack.o" "$OUT/rt.o" \
  "$OUT/libesptls.a" "$PICOLIBC/lib/libc.a" -lgcc
trap - ERR
status=0
bash "$QEMU/run.sh" "$OUT/replay.elf" || status=$?
# 127: QEMU is missing, which is "could not run" here.
[ "$status" -ne 127 ] || exit 2
exit "$status"
