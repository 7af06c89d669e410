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
# One build at a time per output directory (a test and `just firmware` may run together).
exec 9>"$OUT/.lock"
flock 9

# One binary of esp-client/esp8266/firmware to an object: rustc -> .s -> GNU as. LLVM's own
# Xtensa object writer misplaces literal pools, so it is never used. `-C linker=true`: rustc's
# link step is skipped, the real link is below.
rust_object() {
  local bin=$1 s=$OBJ/$1.s o=$OBJ/$1.o
  CARGO_TARGET_DIR=$OUT/cargo cargo +nightly rustc -q "${@:2}" \
    --manifest-path "$FW/Cargo.toml" --bin "$bin" --release \
    --target "$TARGET_SPEC" -Zjson-target-spec -Zbuild-std=core \
    -- --emit=asm="$s" -C linker=true -Z emit-stack-sizes
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
  xtensa-lx106-elf-gcc --specs="$PICOLIBC/picolibc.specs" -Os -std=gnu11 -Wall -Wextra -Werror \
    -mlongcalls -ffunction-sections -fdata-sections "${@:3}" -c -o "$OBJ/$2" "$1"
}

# --- the core's scenarios on the LX106 (QEMU, semihosting) ---
rust_object lx106-sim
c_object "$HERE/qemu/rt.c" qemu_rt.o
xtensa-lx106-elf-gcc -nostdlib -T "$FW/ld/qemu.ld" -Wl,--gc-sections -Wl,--no-warn-execstack \
  -o "$OUT/lx106-sim.elf" "$OBJ/lx106-sim.o" "$OBJ/qemu_rt.o" "$PICOLIBC/lib/libc.a" -lgcc
echo "esp8266 build: $OUT/lx106-sim.elf"
[ "$WHAT" = sim ] && exit 0

# --- the application over the NONOS SDK ---
(cd "$SDK" && sha256sum --check --quiet SHA256SUMS) ||
  die "the vendored SDK differs from its manifest (esp-client/esp8266/vendor/nonos-sdk/SHA256SUMS)"
command -v esptool >/dev/null || die "esptool not found: pip install esptool"
SDK_INC=(-I "$FW/c/include" -I "$SDK/include")
# The Rust bindings' struct layouts and register addresses against the SDK headers.
xtensa-lx106-elf-gcc -std=gnu11 -Wall -Werror "${SDK_INC[@]}" -fsyntax-only "$FW/c/sdk_layout.c"
# Firmware build time: the lowest the device's TLS time floor can be. The last commit's time,
# so that a rebuild of the same commit gives the same image.
ESP8266_BUILD_UNIX=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
export ESP8266_BUILD_UNIX
# The chip's TLS library (BearSSL + esptls + the espconn transport), when this tree has it.
TLS_DIR=$HERE/tls
app_features=()
tls_link=()
if [ -f "$TLS_DIR/build-lx106.sh" ]; then
  bash "$TLS_DIR/build-lx106.sh" "$OUT/tls" >"$OBJ/tls-build.log" 2>&1 ||
    die "the TLS library did not build: $(tail -20 "$OBJ/tls-build.log")"
  app_features=(--features tls)
  tls_link=("$OUT/tls/libesptls.a")
else
  echo "esp8266 build: NOTE: no TLS library in this tree ($TLS_DIR/build-lx106.sh): the image cannot connect" >&2
fi
rust_object app "${app_features[@]}"
c_object "$FW/c/app_glue.c" app_glue.o "${SDK_INC[@]}"
# Our Cache_Read_Enable_New (maps the booted slot's window) replaces libmain's.
mkdir -p "$OBJ/sdk"
xtensa-lx106-elf-objcopy -W Cache_Read_Enable_New "$SDK/lib/libmain.a" "$OBJ/sdk/libmain.a"
xtensa-lx106-elf-gcc -nostdlib -T "$FW/ld/app.ld" -L "$SDK/ld" -L "$OBJ/sdk" -L "$SDK/lib" \
  -Wl,--gc-sections -Wl,--no-warn-execstack -Wl,--no-warn-rwx-segments -Wl,-Map="$OBJ/app.map" \
  -u call_user_start1 \
  -o "$OUT/app.elf" -Wl,--start-group "$OBJ/app.o" "$OBJ/app_glue.o" "${tls_link[@]}" \
  -lmain -lnet80211 -lwpa -llwip -lpp -lphy -lcrypto -ldriver -lhal -lgcc \
  "$PICOLIBC/lib/libc.a" -Wl,--end-group


# --- the second-stage loader ---
rust_object loader
c_object "$FW/c/loader_rt.c" loader_rt.o
xtensa-lx106-elf-gcc -nostdlib -T "$FW/ld/loader.ld" -L "$SDK/ld" -Wl,--gc-sections \
  -Wl,--no-warn-execstack -o "$OUT/loader.elf" "$OBJ/loader.o" "$OBJ/loader_rt.o" -lgcc
# The same loader object on the LX106 in QEMU: the ROM's flash and UART functions played by
# c/qemu_loader.c over a flash image in RAM (tests/firmware.rs boots it through every case).
c_object "$FW/c/qemu_loader.c" qemu_loader.o
xtensa-lx106-elf-gcc -nostdlib -T "$FW/ld/loader.ld" -L "$SDK/ld" -Wl,--gc-sections \
  -Wl,--no-warn-execstack -Wl,-e,_start -Wl,--defsym=_stack_top=0x3FFFFFF0 \
  -Wl,--defsym=_bss_start=0 -Wl,--defsym=_bss_end=0 -o "$OUT/loader-sim.elf" \
  "$OBJ/loader.o" "$OBJ/qemu_loader.o" "$OBJ/qemu_rt.o" "$PICOLIBC/lib/libc.a" -lgcc

# --- images: what esptool writes as they are (docs/esp8266.md, "Flashing") ---
# The loader: a plain (v1) image the ROM boots. Its header tells the SDK the flash size and
# map (4MB-c1: 1024 KiB + 1024 KiB), which user_pre_init registers too.
esptool --chip esp8266 elf2image --version 1 --flash-mode dio --flash-size 4MB-c1 \
  --flash-freq 40m -o "$OBJ/loader-" "$OUT/loader.elf" >/dev/null
mv "$OBJ/loader-0x00000.bin" "$OUT/loader.bin"
# The application: a v2 image (irom0 first, then the RAM segments and a CRC-32) for either slot.
esptool --chip esp8266 elf2image --version 2 --flash-mode dio --flash-size 4MB-c1 \
  --flash-freq 40m -o "$OUT/app.bin" "$OUT/app.elf" >/dev/null
cp "$SDK/bin/esp_init_data_default_v08.bin" "$OUT/esp_init_data_default_v08.bin"
for img in loader.bin app.bin; do
  esptool --chip esp8266 image-info "$OUT/$img" >"$OBJ/$img.info" 2>&1 ||
    die "esptool image-info refuses $img: $(cat "$OBJ/$img.info")"
  grep -q "(valid)" "$OBJ/$img.info" || die "esptool image-info: $img checksum not valid"
done

# --- size gates (docs/benchmarks.md, "ESP8266 image") ---
sym() { xtensa-lx106-elf-nm "$1" | awk -v s="$2" '$3 == s { print "0x" $1 }'; }
sec() { xtensa-lx106-elf-size -A "$1" | awk -v s="$2" '$1 == s { print $2 }'; }
APP=$OUT/app.elf
lit4=$(sec "$APP" .lit4)
iram=$(($(sec "$APP" .text) + ${lit4:-0}))
irom=$(($(sym "$APP" _irom0_text_end) - $(sym "$APP" _irom0_text_start)))
dram_static=$(($(sym "$APP" _heap_start) - 0x3FFE8000))
heap=$((0x3FFFC000 - $(sym "$APP" _heap_start)))
app_bin=$(stat -c %s "$OUT/app.bin")
loader_bin=$(stat -c %s "$OUT/loader.bin")
loader_bss=$(($(sym "$OUT/loader.elf" _loader_bss_end) - $(sym "$OUT/loader.elf" _loader_bss_start)))
{
  echo "iram_bytes $iram limit 32768"
  echo "irom0_bytes $irom"
  echo "app_image_bytes $app_bin limit $((0xFD000))"
  echo "dram_static_bytes $dram_static (.data $(sec "$APP" .data) .rodata $(sec "$APP" .rodata) .bss $(sec "$APP" .bss))"
  echo "heap_free_at_boot_bytes $heap minimum 28672"
  echo "loader_image_bytes $loader_bin limit 8192"
  # The deepest frames of the application (the SDK's stack is shared with its own callbacks).
  python3 "$HERE/stack_frames.py" "$OBJ/app.s" 3
} | tee "$OUT/sizes.txt"
fail=0
gate() { if [ "$2" -gt "$3" ]; then echo "esp8266 build: SIZE GATE: $1 is $2 bytes, the limit is $3" >&2; fail=1; fi; }
gate "IRAM (.text + .lit4)" "$iram" 32768
gate "the application image (slot size)" "$app_bin" $((0xFD000))
gate "the loader image" "$loader_bin" 8192
gate "the loader's .bss (it zeroes nothing)" "$loader_bss" 0
if [ "$heap" -lt 28672 ]; then
  echo "esp8266 build: SIZE GATE: heap free at boot is $heap bytes, the minimum is 28672 (28 KiB)" >&2
  fail=1
fi
[ "$fail" = 0 ] || exit 1

echo "esp8266 build: done: $OUT/{loader.bin,app.bin,esp_init_data_default_v08.bin}"
