#!/usr/bin/env bash
# Builds the device's TLS stack for the ESP8266 as a static library the firmware links:
# the vendored BearSSL subset + esptls.c (the same sources and defines as the host build in
# host/build.rs) + espconn_tls.c (the transport over the NONOS SDK's espconn) + tls_stack.S
# (runs the engine on its own stack).
#
#   bash esp-client/esp8266/tls/build-lx106.sh [OUT_DIR]     (default target/esp8266/tls)
#
# Output: OUT_DIR/libesptls.a, OUT_DIR/sizes.txt (the figures docs/esp8266-tls.md quotes:
# sizeof of the contexts on the LX106, the library's sections, the largest stack frames).
# Warnings are errors, for BearSSL too. The firmware's linker script must place this library's
# .text/.literal in irom0 (like the SDK's libmbedtls.a: `*libesptls.a:(.literal.* .text.*)`).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
OUT=${1:-$ROOT/target/esp8266/tls}
VENDOR=$HERE/../vendor/bearssl
SDK=$HERE/../vendor/nonos-sdk
PICOLIBC=/usr/lib/xtensa-lx106-elf

die() { echo "esptls lx106 build: $*" >&2; exit 1; }
for t in xtensa-lx106-elf-gcc xtensa-lx106-elf-ar xtensa-lx106-elf-nm xtensa-lx106-elf-size; do
  command -v "$t" >/dev/null \
    || die "$t not found: apt-get install gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf"
done
[ -f "$PICOLIBC/picolibc.specs" ] || die "picolibc for the lx106 is missing: apt-get install picolibc-xtensa-lx106-elf"
[ -f "$SDK/include/espconn.h" ] || die "the vendored NONOS SDK headers are missing ($SDK/include)"

# bearssl.flags: one flag per line, no comments (the firmware's build.sh reads it too).
# -fno-strict-aliasing: BearSSL's T0 interpreters reach their context through a second struct
# type, and GCC 12 -Os dropped a store in br_x509_decoder_init on the LX106 under strict
# aliasing (found by the QEMU replay, qemu/).
mapfile -t DEFINES < <(grep -v -e '^\s*$' -e '^#' "$HERE/bearssl.flags")
# The chip flags from docs/esp8266.md (SDK code model), PROGMEM on (the fork's ESP8266 path).
# -fno-jump-tables: switch tables (the T0 interpreters' dispatch) would be .rodata, i.e. DRAM on
# this chip; without them the code is a little larger, in flash, and DRAM keeps ~900 bytes.
CFLAGS=(--specs="$PICOLIBC/picolibc.specs" -Os -std=gnu99 -Wall -Wextra -Werror
  -Wno-unused-parameter -mlongcalls -mtext-section-literals -ffunction-sections -fdata-sections
  -fno-jump-tables -fstack-usage -DICACHE_FLASH -DESP8266 "${DEFINES[@]}"
  -I"$HERE/lx106" -I"$VENDOR/inc" -I"$VENDOR/src" -I"$HERE")

OBJ=$OUT/obj
rm -rf "$OBJ"
mkdir -p "$OBJ"

objs=()
compile() { # source object-name [extra flags]
  xtensa-lx106-elf-gcc "${CFLAGS[@]}" "${@:3}" -c -o "$OBJ/$2" "$1"
  objs+=("$OBJ/$2")
}
while IFS= read -r src; do
  rel=${src#"$VENDOR/src/"}
  compile "$src" "br_${rel//\//_}.o"
done < <(find "$VENDOR/src" -name '*.c' | sort)
compile "$HERE/esptls.c" esptls.o
compile "$HERE/espconn_tls.c" espconn_tls.o -I"$SDK/include"
compile "$HERE/tls_stack.S" tls_stack.o

rm -f "$OUT/libesptls.a"
xtensa-lx106-elf-ar rcs "$OUT/libesptls.a" "${objs[@]}"

# No allocator, clock or RNG of its own: the library may only need what the SDK and the
# mem functions give. (The SDK symbols come from espconn_tls.o.)
undefined=$(xtensa-lx106-elf-nm -u "${objs[@]}" | awk 'NF==2 {print $2}' | sort -u)
for bad in malloc calloc realloc free time gettimeofday rand random getentropy; do
  if grep -qx "$bad" <<<"$undefined"; then die "the TLS library references $bad()"; fi
done

# sizeof on the LX106: a probe object whose .bss symbols have the sizes.
cat >"$OBJ/probe.c" <<'EOF'
#include "espconn_tls.h"
struct esptls probe_esptls;
struct espconn_tls probe_espconn_tls;
br_ssl_client_context probe_br_ssl_client_context;
br_x509_minimal_context probe_br_x509_minimal_context;
unsigned char probe_ibuf[ESPTLS_IBUF_LEN];
unsigned char probe_obuf[ESPTLS_OBUF_LEN];
EOF
xtensa-lx106-elf-gcc "${CFLAGS[@]}" -I"$SDK/include" -fno-common -c -o "$OBJ/probe.o" "$OBJ/probe.c"

{
  echo "# esptls on the LX106 ($(xtensa-lx106-elf-gcc -dumpversion), -Os), written by build-lx106.sh"
  xtensa-lx106-elf-nm -S "$OBJ/probe.o" | while read -r _ size _ name; do
    case "$name" in probe_*) echo "sizeof ${name#probe_} $((16#$size))" ;; esac
  done
  # Section totals over the whole archive (before the firmware's --gc-sections drops unused).
  xtensa-lx106-elf-size -A -d "${objs[@]}" | awk '
    $1 ~ /^\.(text|literal)/ {text += $2}
    $1 ~ /^\.irom\.text/ {irom += $2}
    $1 ~ /^\.rodata/ {rodata += $2}
    $1 ~ /^\.data/ {data += $2}
    $1 ~ /^\.bss/ {bss += $2}
    END {
      printf "section code %d\n", text
      printf "section progmem %d\n", irom
      printf "section rodata %d\n", rodata
      printf "section data %d\n", data
      printf "section bss %d\n", bss
    }'
  # The largest single stack frames (gcc -fstack-usage), deepest first. awk takes the first 12
  # and reads on: `head` would close the pipe early, and sort's SIGPIPE fails the build under
  # pipefail whenever sort is still writing.
  cat "$OBJ"/*.su | sort -t$'\t' -k2 -n -r | awk -F'\t' 'NR <= 12 {split($1, a, ":"); printf "frame %s %d\n", a[length(a)], $2}'
} >"$OUT/sizes.txt"
cat "$OUT/sizes.txt"
echo "esptls lx106 build: $OUT/libesptls.a"
