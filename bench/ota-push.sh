#!/usr/bin/env bash
# OTA push benchmark (docs/benchmarks.md, "## OTA push"), side by side in one run on one
# Mosquitto configured by `provision broker` (loopback, mutual TLS):
#   1. `provision ota push` of a bundle whose image fills a slot to the host device
#      (esp-client-host, release): device-paced 1 KiB chunks, at most 4 outstanding, each written
#      to the device's flash file as it arrives. Reported: the transfer (offer until the device
#      holds the whole image) and the total (until it confirmed: verify, reboot, trial, confirm).
#   2. `mosquitto_pub -f` of the same bundle file, as one message, to a `mosquitto_sub -C 1` on
#      the same broker (timed from the publisher's start until the subscriber has it).
# Usage: bash bench/ota-push.sh [RUNS]   (default 5; medians reported)
# Not part of `just test`. Needs: cargo, mosquitto, mosquitto-clients, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-5}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
MOSQUITTO="${MOSQUITTO:-/usr/sbin/mosquitto}"
ID=bench-dev
PUB=bench-pub

echo "==> build (release)"
cargo build --release -q -p provision-cli -p esp-client-host
PROVISION="$TARGET_DIR/release/provision"
HOST="$TARGET_DIR/release/esp-client-host"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ota-push-bench.XXXXXX")"
chmod 755 "$WORK" # the broker runs as user mosquitto and reads its files from here
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
p() { "$PROVISION" --dir "$WORK/pki" "$@"; }
now() { date +%s.%N; }
median() { python3 -c 'import sys, statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
p init >/dev/null
p ota keygen >/dev/null
p device add "$ID" "$PUB" >/dev/null
# The baseline sends the bundle as one message: let the broker take packets that large (the
# default, 2 KiB, is the device's receive buffer; the push's chunks fit it).
p broker --host localhost --ip 127.0.0.1 --port "$PORT" --bind 127.0.0.1 --max-packet-size 2097152 >/dev/null
p device config "$ID" --wifi-ssid bench -o "$WORK/$ID.flash" >/dev/null

"$MOSQUITTO" -c "$WORK/pki/broker/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q ' running' "$WORK/mosquitto.log" && break; sleep 0.1; done
grep -q ' running' "$WORK/mosquitto.log" || { cat "$WORK/mosquitto.log"; exit 1; }

"$HOST" --flash "$WORK/$ID.flash" 2>"$WORK/device.log" &
PIDS=("$!" "${PIDS[@]}")
for _ in $(seq 150); do grep -q '=> Online' "$WORK/device.log" && break; sleep 0.1; done
grep -q '=> Online' "$WORK/device.log" || { tail -20 "$WORK/device.log"; exit 1; }

# The largest image a slot takes (docs/flash-layout.md): 1,036,288 bytes.
IMAGE_LEN=$((0xFD000))
head -c "$IMAGE_LEN" /dev/urandom >"$WORK/image.bin"

echo "==> machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "load average: $(cut -d" " -f1-3 /proc/loadavg) (the machine may be shared)"
echo "$("$PROVISION" --version); $("$MOSQUITTO" -h 2>/dev/null | head -1)"

echo "==> provision ota push, $RUNS runs (bundle: $((IMAGE_LEN + 136)) bytes)"
transfer=()
total=()
for i in $(seq "$RUNS"); do
  p ota build "$WORK/image.bin" --version "1.0.$i" --target esp8266 --security-counter "$i" \
    -o "$WORK/v$i.bundle" >/dev/null
  out=$(p ota push "$WORK/v$i.bundle" --device "$ID" --json 2>"$WORK/push.err") || {
    cat "$WORK/push.err"; echo "$out"; tail -30 "$WORK/device.log"; exit 1; }
  t=$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["transfer_seconds"], r["seconds"], r["bytes_sent"])' "$out")
  read -r tr to sent <<<"$t"
  echo "run $i: transfer ${tr} s, total ${to} s, ${sent} bytes sent"
  transfer+=("$tr")
  total+=("$to")
done

echo "==> mosquitto_pub -f of the same bundle to mosquitto_sub -C 1, $RUNS runs"
CLIENT=(-h localhost -p "$PORT" --cafile "$WORK/pki/ca/ca.crt")
OPERATOR=(--cert "$WORK/pki/operator/operator.crt" --key "$WORK/pki/operator/operator.key")
DEVICE=(--cert "$WORK/pki/devices/$PUB/device.crt" --key "$WORK/pki/devices/$PUB/device.key")
baseline=()
for i in $(seq "$RUNS"); do
  mosquitto_sub "${CLIENT[@]}" "${OPERATOR[@]}" -q 1 -C 1 -t "devices/$PUB/telemetry" >"$WORK/sub.out" &
  sub=$!
  sleep 1 # subscribed well before the clock starts
  t0=$(now)
  mosquitto_pub "${CLIENT[@]}" "${DEVICE[@]}" -q 1 -t "devices/$PUB/telemetry" -f "$WORK/v$RUNS.bundle"
  wait "$sub"
  t1=$(now)
  got=$(($(wc -c <"$WORK/sub.out") - 1)) # mosquitto_sub adds a newline
  [ "$got" -eq $((IMAGE_LEN + 136)) ] || { echo "mosquitto_sub got $got bytes"; exit 1; }
  b=$(python3 -c "print('%.3f' % ($t1 - $t0))")
  echo "run $i: ${b} s"
  baseline+=("$b")
done

mt=$(median "${transfer[@]}")
mo=$(median "${total[@]}")
mb=$(median "${baseline[@]}")
echo "==> medians"
echo "provision ota push, transfer:         ${mt} s"
echo "provision ota push, until confirmed:  ${mo} s"
echo "mosquitto_pub -f -> mosquitto_sub:    ${mb} s"
python3 -c "print('ratio (push transfer / mosquitto_pub): %.1fx' % ($mt / $mb))"
python3 -c "print('ratio (push until confirmed / mosquitto_pub): %.1fx' % ($mo / $mb))"
