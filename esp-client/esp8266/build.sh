#!/usr/bin/env bash
# Builds the ESP8266 binaries with the stock nightly rustc (docs/esp8266.md, "How it is built"):
# rustc emits one assembly file per binary (fat LTO, one codegen unit), GNU xtensa-lx106-elf-as
# assembles it, xtensa-lx106-elf-gcc links it (with the NONOS SDK for the application), esptool
# packs the images, and the size gates check the linked ELF.
#
#   build.sh [sim|all]        sim: only the core's scenarios for QEMU; all (default): everything
#
# Output in $ESP8266_OUT (default <repo>/target/esp8266).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/esp-client/esp8266
FW=$HERE/firmware
SDK=$HERE/vendor/nonos-sdk
OUT=${ESP8266_OUT:-$ROOT/target/esp8266}
OBJ=$OUT/obj
WHAT=${1:-all}
PICOLIBC=/usr/lib/xtensa-lx106-elf
TARGET_SPEC=$ROOT/esp-client/targets/xtensa-esp8266-none-elf.json

die() { echo "esp8266 build: $*" >&2; exit 1; }

case "$WHAT" in sim | all) ;; *) die "unknown argument '$WHAT' (want sim or all)" ;; esac

# The outer cargo (when a test runs this) exports its toolchain and flags; the firmware uses its
# own. Keep CARGO_HOME and RUSTUP_HOME.
for v in $(env | sed -n 's/^\(\(CARGO\|RUSTC\|RUSTUP_TOOLCHAIN\|RUSTFLAGS\|RUSTDOCFLAGS\)[A-Z_]*\)=.*/\1/p'); do
  case "$v" in CARGO_HOME) ;; *) unset "$v" ;; esac
done

for t in xtensa-lx106-elf-gcc xtensa-lx106-elf-as xtensa-lx106-elf-objcopy xtensa-lx106-elf-objdump xtensa-lx106-elf-nm; do
  command -v "$t" >/dev/null ||
    die "$t not found: install Debian's gcc-xtensa-lx106 and binutils-xtensa-lx106 (apt-get install gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf)"
done
[ -f "$PICOLIBC/lib/libc.a" ] || die "picolibc for the lx106 is missing ($PICOLIBC/lib/libc.a): apt-get install picolibc-xtensa-lx106-elf"
SYSROOT=$(rustup run nightly rustc --print sysroot 2>/dev/null) ||
  die "the nightly Rust toolchain is missing: rustup toolchain install nightly --component rust-src"
[ -d "$SYSROOT/lib/rustlib/src/rust/library/core" ] ||
  die "nightly has no rust-src: rustup component add rust-src --toolchain nightly"

mkdir -p "$OBJ"

# One binary of esp-client/esp8266/firmware to an object: rustc -> .s -> GNU as. LLVM's own
# Xtensa object writer misplaces literal pools, so it is never used. `-C linker=true`: rustc's
# link step is skipped, the real link is below.
rust_object() {
  local bin=$1 s=$OBJ/$1.s o=$OBJ/$1.o
  CARGO_TARGET_DIR=$OUT/cargo cargo +nightly rustc -q \
    --manifest-path "$FW/Cargo.toml" --bin "$bin" --release \
    --target "$TARGET_SPEC" -Zjson-target-spec -Zbuild-std=core \
    -- --emit=asm="$s" -C linker=true
  xtensa-lx106-elf-as -o "$o.raw" "$s"
  # Literal pools that LLVM names `.rodata.<fn>.literal` are GNU as `.literal.<fn>` sections, so
  # the linker script keeps them next to their code (l32r reaches at most 256 KiB back).
  local args=()
  while read -r name; do
    local fn=${name#.rodata.}
    args+=(--rename-section "$name=.literal.${fn%.literal}")
  done < <(xtensa-lx106-elf-objdump -h "$o.raw" | awk '$2 ~ /^\.rodata\..*\.literal$/ {print $2}')
  xtensa-lx106-elf-objcopy "${args[@]}" "$o.raw" "$o"
  rm -f "$o.raw"
}

c_object() {
  xtensa-lx106-elf-gcc --specs="$PICOLIBC/picolibc.specs" -Os -std=c11 -Wall -Wextra -Werror \
    -mlongcalls -ffunction-sections -fdata-sections "${@:3}" -c -o "$OBJ/$2" "$1"
}

# --- the core's scenarios on the LX106 (QEMU, semihosting) ---
rust_object lx106-sim
c_object "$FW/c/qemu_rt.c" qemu_rt.o
xtensa-lx106-elf-gcc -nostdlib -T "$FW/ld/qemu.ld" -Wl,--gc-sections -Wl,--no-warn-execstack \
  -o "$OUT/lx106-sim.elf" "$OBJ/lx106-sim.o" "$OBJ/qemu_rt.o" "$PICOLIBC/lib/libc.a" -lgcc
echo "esp8266 build: $OUT/lx106-sim.elf"
[ "$WHAT" = sim ] && exit 0

echo "esp8266 build: done"
