# Quick start: `just demo` runs the main job, `just test` runs every test.
# Each recipe is a thin wrapper; CI (.ci/run) calls `just test`.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Provisions a CA, a broker and a device into a fresh folder, starts Mosquitto on loopback with
# the generated config, runs the host device (the ESP8266 core over mutual TLS, AVR in-process),
# shows telemetry and command round trips. Ctrl-C stops everything; DEMO_SECONDS=20 stops by itself.
# Main job: the whole chain on this machine
demo:
    bash esp-client/host/demo.sh

# Provision a home setup in ./certs (CA, broker config for this host, one device); rerunnable
home host="localhost":
    cargo run --release -q -p provision-cli -- --dir certs device list >/dev/null 2>&1 || cargo run --release -q -p provision-cli -- --dir certs init
    cargo run --release -q -p provision-cli -- --dir certs broker --host {{host}} --ip 127.0.0.1
    cargo run --release -q -p provision-cli -- --dir certs device show kitchen-sensor-1 >/dev/null 2>&1 || cargo run --release -q -p provision-cli -- --dir certs device add kitchen-sensor-1
    cargo run --release -q -p provision-cli -- --dir certs device list

# Man pages for provision and every subcommand into target/man/man1 (read one with
# `man -l target/man/man1/provision-status.1`, or add target/man to MANPATH)
# Man pages of provision
man:
    cargo run -q -p provision-cli -- man --out-dir target/man/man1

# Unit, CLI and integration tests of every crate (real Mosquitto, a three-node RabbitMQ cluster on
# loopback, the AVR firmware built for both chips and run in simavr), the no_std builds for the
# chips, the demo (`just demo`), lints.
# Every test
test: lint test-host check-nostd test-demo

# All workspace tests
test-host:
    cargo test --workspace --all-targets

# no_std, no-alloc builds of the OTA verifier (wire-format + soft-compact crypto) for the ATmega168
# and the LX106 (spec: esp-client/targets/). Library only, nothing links: no cross gcc needed.
# opt-level s: LLVM's Xtensa backend fails at opt-level 3 on curve25519-dalek (register scavenger).
# The esp-client core for the LX106 is built (and run in QEMU) by the firmware test in test-host.
# no_std builds for the ATmega168 and the ESP8266
check-nostd:
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s RUSTFLAGS="-C target-cpu=atmega168" cargo +nightly build -q -p wire-format --lib --release --features soft-compact --target avr-none -Zbuild-std=core
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo +nightly build -q -p wire-format --lib --release --features soft-compact --target esp-client/targets/xtensa-esp8266-none-elf.json -Zjson-target-spec -Zbuild-std=core

# ESP8266 images in target/esp8266/ (nightly rustc -> asm -> GNU as -> SDK link -> esptool), with
# their size gates; docs/esp8266.md says how to flash them. Needs Debian's gcc-xtensa-lx106,
# picolibc-xtensa-lx106-elf and esptool (pip).
# ESP8266 firmware images + size gates
firmware:
    bash esp-client/esp8266/build.sh all

# The firmware build (its images and size gates) and the core on the LX106 in QEMU; part of
# test-host, this runs only them.
# ESP8266 build + the core on the LX106 in QEMU
test-lx106:
    cargo test -p esp8266-board --test firmware

# The main job (demo.sh) end to end on the debug build: telemetry, command round trips, clean stop
test-demo:
    bash esp-client/host/demo-test.sh

# The ESP8266's TLS stack (BearSSL): the host build against a real Mosquitto, the espconn glue
# over a simulated espconn, the LX106 build replayed in QEMU, the memory gate (also in test-host)
# Only the ESP8266 TLS stack
test-tls:
    cargo test -p esp8266-tls

# Firmware for atmega168 and atmega328p (fails loudly without
# avr-gcc or nightly's rust-src), flash/SRAM budget, the real ELF in simavr, the link driver.
# Only the ATmega side
test-avr:
    cargo test -p wire-format --lib spi_link
    cargo test -p avr-slave -p avr-sim-tests
    cargo test -p esp-client --lib avr_link

# rustfmt and clippy, warnings are errors
lint:
    cargo fmt --all -- --check
    rustfmt +stable --edition 2021 --check avr-slave/firmware/src/main.rs
    rustfmt +stable --edition 2021 --check esp-client/esp8266/firmware/src/bin/*.rs
    # the ESP8266 binaries and the board layer's chip-only code, as built for the LX106
    CARGO_TARGET_DIR=target/esp8266/clippy ESP8266_BUILD_UNIX=0 cargo +nightly clippy -q --manifest-path esp-client/esp8266/firmware/Cargo.toml --release --target esp-client/targets/xtensa-esp8266-none-elf.json -Zjson-target-spec -Zbuild-std=core --features tls -- -D warnings
    cargo clippy --workspace --all-targets -- -D warnings
