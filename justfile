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
test: test-host lint

test-host:
    cargo test --workspace --all-targets

lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
