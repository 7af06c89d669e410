#!/usr/bin/env bash
# Benchmark: a fleet of simulated devices (`esp-fleet`, one process, one device core per config
# blob) against one Mosquitto configured by `provision broker`, with a QoS 1 operator subscriber
# (mosquitto_sub). Two phases: STEADY seconds of telemetry (every 10 s per device), then the
# broker is restarted under the connected fleet and the run goes on for STORM seconds: how long
# until every device is online again, and how the backoff's jitter spreads the TLS handshakes.
#
#   bash bench/fleet.sh [DEVICES] [STEADY] [STORM]      # default: 1000 60 90
#
# Needs mosquitto, mosquitto_sub and python3. Raises the open-file limit (one socket per device
# on each side).
set -euo pipefail
N=${1:-1000}
STEADY=${2:-60}
STORM=${3:-90}
cd "$(dirname "$0")/.."
cargo build --release -q -p provision-cli -p esp-client-host
T=${CARGO_TARGET_DIR:-$PWD/target}/release
WORK=$(mktemp -d)
# Mosquitto reads its files after dropping to user `mosquitto` (when started as root).
chmod 755 "$WORK"
MOSQ_PID=
SUB_PID=
cleanup() {
    for p in $SUB_PID $MOSQ_PID; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -n $((N * 2 + 512))
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
P="$T/provision --dir $WORK/pki"
$P init >/dev/null
$P broker --host localhost --ip 127.0.0.1 --port "$PORT" --bind 127.0.0.1 >/dev/null
seq -f 'sim-%04g' 1 "$N" > "$WORK/ids.txt"
t0=$(date +%s.%N)
$P device add --from-file "$WORK/ids.txt" >/dev/null
mkdir -p "$WORK/fleet"
$P device config --from-file "$WORK/ids.txt" --out-dir "$WORK/fleet" --wifi-ssid lab \
    --telemetry-period 10 >/dev/null 2>&1
echo "provisioned $N devices in $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"

start_broker() {
    mosquitto -c "$WORK/pki/broker/mosquitto.conf" >>"$WORK/mosquitto.log" 2>&1 &
    MOSQ_PID=$!
    for _ in $(seq 100); do
        grep -q ' running' "$WORK/mosquitto.log" 2>/dev/null && return
        sleep 0.05
    done
    echo "mosquitto did not start:"; cat "$WORK/mosquitto.log"; exit 1
}
start_broker
mosquitto_sub -h localhost -p "$PORT" --cafile "$WORK/pki/ca/ca.crt" \
    --cert "$WORK/pki/operator/operator.crt" --key "$WORK/pki/operator/operator.key" \
    -i bench-operator -q 1 -t 'devices/+/telemetry' -v > "$WORK/operator.txt" 2>"$WORK/sub.err" &
SUB_PID=$!
sleep 1

"$T/esp-fleet" --dir "$WORK/fleet" --seconds $((STEADY + STORM)) --report-every 5 --json \
    > "$WORK/report.json" 2> >(tee "$WORK/fleet.log" >&2) &
FLEET_PID=$!
fleet_start=$(date +%s.%N)
sleep "$STEADY"
# Steady-state figures: what the operator holds now against what the devices had acknowledged.
cp "$WORK/operator.txt" "$WORK/operator-steady.txt"
grep -F '[' "$WORK/fleet.log" | tail -1 > "$WORK/steady-line.txt" || true
echo "== restarting the broker under the fleet"
kill "$MOSQ_PID"; wait "$MOSQ_PID" 2>/dev/null || true
restart=$(python3 -c "print($(date +%s.%N) - $fleet_start)")
start_broker
wait "$FLEET_PID"
python3 - "$WORK/report.json" "$WORK/operator-steady.txt" "$WORK/operator.txt" "$restart" "$N" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
restart = float(sys.argv[4])
n = int(sys.argv[5])
def count(path):
    seen, total = set(), 0
    for line in open(path, errors="replace"):
        m = re.match(r"devices/([^/]+)/telemetry (.*)", line.strip())
        if not m:
            continue
        total += 1
        seq = json.loads(m.group(2))["seq"]
        seen.add((m.group(1), seq))
    return total, len(seen)
total, unique = count(sys.argv[3])
series = report["handshakes_per_s"]
after = series[int(restart):]
back = report["all_online_at_s"]
print(f"devices {n}, online at the end {report['online']}, connections {report['connects']}")
print(f"telemetry sent {report['telemetry_sent']}, acknowledged {report['telemetry_acked']}, "
      f"operator received {total} ({unique} unique, {total - unique} duplicates)")
print(f"connect latency ms (first attempt to Online, all connections): {report['connect_ms']}")
print(f"initial connect: peak {max(series[:int(restart)] or [0])} handshakes/s")
print(f"broker restarted at {restart:.1f} s; all online again at "
      f"{back if back is None else round(back, 1)} s "
      f"({'never' if back is None else round(back - restart, 1)} s later); "
      f"peak {max(after or [0])} handshakes/s after the restart")
print("handshakes per second after the restart:", after[:60])
PY
