#!/usr/bin/env bash
# The whole chain on this machine, in one command:
#   provision a CA, a broker and a device into a fresh folder, start Mosquitto with the generated
#   config on loopback, run the host device (the ESP8266 core over mutual TLS), follow it with
#   `provision watch`, send commands with `provision cmd`, update it over the air with
#   `provision ota push` (signed bundle, A/B slots, trial boot, confirm), and stop everything on
#   Ctrl-C.
#
# Usage: esp-client/host/demo.sh [DIR]     (DIR must not exist; default: a new temp folder)
#        DEMO_SECONDS=20 esp-client/host/demo.sh   stops by itself after 20 s (for scripts/CI)
#        DEMO_PROFILE=debug ...                     uses the debug build instead of release
set -euo pipefail
cd "$(dirname "$0")/../.."

MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
ID=demo-device-1
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ -x "$MOSQUITTO" ] || die "$MOSQUITTO not found (apt-get install mosquitto)"

DIR=${1:-}
if [ -z "$DIR" ]; then DIR=$(mktemp -d /tmp/esp-demo.XXXXXX); rmdir "$DIR"; fi
[ -e "$DIR" ] && die "$DIR exists; give a new folder"
mkdir -p "$DIR"
# Mosquitto reads its files after dropping to user mosquitto: the folder must be traversable.
chmod 755 "$DIR"
DIR=$(cd "$DIR" && pwd)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# DEMO_PROFILE=debug reuses the binaries `cargo test` built (the CI check, demo-test.sh).
PROFILE=${DEMO_PROFILE:-release}
case "$PROFILE" in
    release) FLAG=--release ;;
    debug) FLAG= ;;
    *) die "DEMO_PROFILE must be release or debug, not \"$PROFILE\"" ;;
esac
say "building provision and esp-client-host ($PROFILE)"
cargo build $FLAG -q -p provision-cli -p esp-client-host
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
provision() { "$BIN/provision" --dir "$DIR/pki" "$@"; }

say "provisioning into $DIR/pki"
provision init --ca-name "demo CA"
provision operator add _demo-watch >/dev/null   # its own identity: watch and cmd run at once
provision broker --host localhost --ip 127.0.0.1 --port "$PORT" --bind 127.0.0.1 >/dev/null
echo "broker config: $DIR/pki/broker/mosquitto.conf (127.0.0.1:$PORT, mTLS, ACL, CRL)"
provision device add "$ID"
provision ota keygen >/dev/null   # the device config carries its public key
provision device config "$ID" --wifi-ssid demo-wifi --telemetry-period 2 -o "$DIR/$ID.flash"

PIDS=()
cleanup() {
    trap - INT TERM EXIT
    say "stopping"
    # Device first (SIGTERM: it says offline and disconnects), then the subscriber, then the broker.
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; sleep 0.3; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    echo "logs and files kept in $DIR"
}
trap cleanup INT TERM EXIT

say "starting mosquitto on 127.0.0.1:$PORT"
# setsid: Ctrl-C reaches only this script, which then stops everything in order.
setsid "$MOSQUITTO" -c "$DIR/pki/broker/mosquitto.conf" >"$DIR/mosquitto.log" 2>&1 &
BROKER=$!
for _ in $(seq 100); do grep -q ' running' "$DIR/mosquitto.log" && break; sleep 0.1; done
grep -q ' running' "$DIR/mosquitto.log" || { cat "$DIR/mosquitto.log"; die "mosquitto did not start"; }

say "operator: provision watch $ID --operator _demo-watch (lines marked [operator])"
setsid "$BIN/provision" --dir "$DIR/pki" watch "$ID" --operator _demo-watch \
    2> >(trap '' INT; exec tee "$DIR/watch.err") > >(trap '' INT; exec sed -u 's/^/[operator] /') &
SUB=$!
PIDS=("$SUB" "$BROKER")
# Let the subscription land before the device says anything ("watching on" comes once subscribed).
for _ in $(seq 300); do grep -q '^watching on' "$DIR/watch.err" 2>/dev/null && break; sleep 0.1; done
grep -q '^watching on' "$DIR/watch.err" || die "provision watch did not subscribe (see $DIR/watch.err)"

say "starting the host device (lines marked [device])"
setsid "$BIN/esp-client-host" --flash "$DIR/$ID.flash" \
    2> >(trap '' INT; tee "$DIR/device.log" | sed -u 's/^/[device]   /' >&2) &
DEVICE=$!
PIDS=("$DEVICE" "$SUB" "$BROKER")

for _ in $(seq 150); do grep -q '=> Online' "$DIR/device.log" 2>/dev/null && break; sleep 0.1; done
grep -q '=> Online' "$DIR/device.log" || die "the device did not come online (see $DIR/device.log)"

sleep 3
say "provision cmd $ID set-pin pin=9 level=1   (PC1 high on the AVR)"
provision cmd "$ID" set-pin pin=9 level=1
sleep 3
say "provision cmd $ID read-adc channel=2"
provision cmd "$ID" read-adc channel=2

sleep 2
say "over the air: provision ota build + provision ota push $ID (signed v2.0.0, 64 KiB)"
head -c 65536 /dev/urandom >"$DIR/app-v2.bin"
provision ota build "$DIR/app-v2.bin" --version 2.0.0 --target esp8266 --security-counter 2 \
    -o "$DIR/app-v2.bundle" >/dev/null
provision ota push "$DIR/app-v2.bundle" --device "$ID" --timeout 120
say "provision ota status $ID"
provision ota status "$ID"

if [ -n "${DEMO_SECONDS:-}" ]; then
    sleep "$DEMO_SECONDS"
else
    say "running; telemetry every 2 s. Ctrl-C stops everything."
    wait "$DEVICE"
fi
