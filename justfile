# Quick start: `just demo` runs the main job, `just test` runs every test.
# Each recipe is a thin wrapper; CI (.ci/run) calls `just test`.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Main job: provision a home setup (CA, broker config for this host, one device) in ./certs
demo:
    cargo run --release -q -p provision-cli -- --dir certs init
    cargo run --release -q -p provision-cli -- --dir certs broker --host localhost --ip 127.0.0.1
    cargo run --release -q -p provision-cli -- --dir certs device add kitchen-sensor-1
    cargo run --release -q -p provision-cli -- --dir certs device list

# Every test: host crates (unit, CLI, real-Mosquitto integration), lints
test: test-avr test-host check-nostd lint

test-host:
    cargo test --workspace --all-targets

# no_std, no-alloc builds of the OTA verifier (wire-format + soft-compact crypto) for the ATmega168
# and the LX106 (spec: esp-client/targets/). Library only, nothing links: no cross gcc needed.
# opt-level s: LLVM's Xtensa backend fails at opt-level 3 on curve25519-dalek (register scavenger).
check-nostd:
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s RUSTFLAGS="-C target-cpu=atmega168" cargo +nightly build -q -p wire-format --lib --release --features soft-compact --target avr-none -Zbuild-std=core
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo +nightly build -q -p wire-format --lib --release --features soft-compact --target esp-client/targets/xtensa-esp8266-none-elf.json -Zjson-target-spec -Zbuild-std=core
    # the esp-client core (state machine, MQTT, board traits, AVR driver): no_std, no alloc, LX106
    CARGO_PROFILE_RELEASE_OPT_LEVEL=s cargo +nightly build -q -p esp-client --lib --release --target esp-client/targets/xtensa-esp8266-none-elf.json -Zjson-target-spec -Zbuild-std=core

# ATmega slave (issue 4): builds the firmware for atmega168 and atmega328p (fails loudly without
# avr-gcc or nightly's rust-src), checks the flash/SRAM budget, runs the real ELF in simavr as SPI
# master, and tests esp-client's link driver (SPI transcript + against the firmware in simavr).
test-avr:
    rustfmt +stable --edition 2021 --check avr-slave/firmware/src/main.rs
    cargo test -p wire-format --lib spi_link
    cargo test -p avr-slave -p avr-sim-tests
    cargo test -p esp-client --lib avr_link

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
