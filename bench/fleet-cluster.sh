#!/usr/bin/env bash
# Benchmark: a fleet of simulated devices (`esp-fleet`) against a three-node RabbitMQ cluster on
# this machine, configured by `provision broker --engine rabbitmq` and run the way the tests run
# it (`rabbitmq-cluster` from broker-testkit: loopback, its own epmd, free ports). Every device's
# config names the three nodes, each list starting at a different node, so the fleet spreads over
# the cluster. A QoS 1 operator subscriber (mosquitto_sub) on node 1 counts the telemetry.
#
# Phases: STEADY seconds of telemetry (every 10 s per device); then node 3 is killed (SIGKILL)
# under the connected fleet: its devices fail over to the other nodes; KILLED seconds later it is
# started again and rejoins; the run goes on to STEADY + STORM seconds.
#
#   bash bench/fleet-cluster.sh [DEVICES] [STEADY] [STORM] [KILLED]   # default: 1000 60 120 30
#
# Needs rabbitmq-server, mosquitto_sub, python3 and ss (iproute2). Raises the open-file limit
# (one socket per device on each side).
set -euo pipefail
N=${1:-1000}
STEADY=${2:-60}
STORM=${3:-120}
KILLED=${4:-30}
cd "$(dirname "$0")/.."
cargo build --release -q -p provision-cli -p esp-client-host -p broker-testkit
T=${CARGO_TARGET_DIR:-$PWD/target}/release
WORK=$(mktemp -d)
SUB_PID=
CLUSTER_PID=
cleanup() {
    if [ -n "$SUB_PID" ]; then kill "$SUB_PID" 2>/dev/null || true; fi
    # End of input stops every node and the cluster's epmd.
    if [ -n "$CLUSTER_PID" ]; then
        exec {CL_IN}>&- 2>/dev/null || true
        wait "$CLUSTER_PID" 2>/dev/null || true
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
ulimit -n $((N * 2 + 4096))
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P="$T/provision --dir $WORK/pki"
$P init >/dev/null
NODES=()
PORTS=()
for i in 1 2 3; do PORTS+=("$(free_port)"); NODES+=(--node "rabbit-$i=127.0.0.1:${PORTS[-1]}"); done
$P broker --engine rabbitmq --host localhost "${NODES[@]}" >/dev/null
seq -f 'sim-%04g' 1 "$N" > "$WORK/ids.txt"
t0=$(date +%s.%N)
$P device add --from-file "$WORK/ids.txt" >/dev/null
mkdir -p "$WORK/fleet"
$P device config --from-file "$WORK/ids.txt" --out-dir "$WORK/fleet" --wifi-ssid lab \
    --telemetry-period 10 >/dev/null 2>&1
echo "provisioned $N devices in $(python3 -c "print(round($(date +%s.%N) - $t0, 2))") s"

# The cluster, driven through a pipe: "kill N", "restart N", "ctl N ..."; its answers come back
# on a fifo.
mkfifo "$WORK/cl.in" "$WORK/cl.out"
"$T/rabbitmq-cluster" --dir "$WORK/pki" < "$WORK/cl.in" > "$WORK/cl.out" 2> "$WORK/cluster.log" &
CLUSTER_PID=$!
exec {CL_IN}>"$WORK/cl.in"
exec {CL_OUT}<"$WORK/cl.out"
t0=$(date +%s.%N)
read -r -u "$CL_OUT" line || { echo "the cluster did not start:"; cat "$WORK/cluster.log"; exit 1; }
[ "$line" = ready ] || { echo "the cluster did not start: $line"; cat "$WORK/cluster.log"; exit 1; }
echo "cluster of 3 nodes started and joined in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
ask() {
    echo "$1" >&"$CL_IN"
    read -r -u "$CL_OUT" answer
    case "$answer" in ok*) ;; *) echo "cluster: $answer"; exit 1 ;; esac
}
PORT1=${PORTS[0]}
mosquitto_sub -h 127.0.0.1 -p "$PORT1" --cafile "$WORK/pki/ca/ca.crt" \
    --cert "$WORK/pki/operator/operator.crt" --key "$WORK/pki/operator/operator.key" \
    -i _operator-bench -q 1 -t 'devices/+/telemetry' -v > "$WORK/operator.txt" 2>"$WORK/sub.err" &
SUB_PID=$!
sleep 1

"$T/esp-fleet" --dir "$WORK/fleet" --seconds $((STEADY + STORM)) --report-every 5 --json \
    > "$WORK/report.json" 2> >(tee "$WORK/fleet.log" >&2) &
FLEET_PID=$!
fleet_start=$(date +%s.%N)
sleep "$STEADY"
for i in 1 2 3; do
    echo "node $i holds $(ss -Htn state established "( sport = :${PORTS[$((i - 1))]} )" | wc -l) connections"
done
echo "== killing node 3 (SIGKILL) under the fleet"
killed=$(python3 -c "print($(date +%s.%N) - $fleet_start)")
ask "kill 3"
echo "cluster: $answer"
sleep "$KILLED"
echo "== restarting node 3"
ask "restart 3"
echo "cluster: $answer"
restarted=$(python3 -c "print($(date +%s.%N) - $fleet_start)")
wait "$FLEET_PID"
python3 - "$WORK/report.json" "$WORK/operator.txt" "$killed" "$restarted" "$N" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
killed, restarted, n = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
seen, total = set(), 0
for line in open(sys.argv[2], errors="replace"):
    m = re.match(r"devices/([^/]+)/telemetry (.*)", line.strip())
    if not m:
        continue
    total += 1
    seen.add((m.group(1), json.loads(m.group(2))["seq"]))
series = report["handshakes_per_s"]
after = series[int(killed):]
back = report["all_online_at_s"]
print(f"devices {n}, online at the end {report['online']}, connections {report['connects']}")
print(f"telemetry sent {report['telemetry_sent']}, acknowledged {report['telemetry_acked']}, "
      f"operator received {total} ({len(seen)} unique, {total - len(seen)} duplicates; "
      f"acknowledged but not received: {max(0, report['telemetry_acked'] - len(seen))})")
print(f"connect latency ms (first attempt to Online, all connections): {report['connect_ms']}")
print(f"initial connect: peak {max(series[:int(killed)] or [0])} handshakes/s")
print(f"node 3 killed at {killed:.1f} s, restarted (rejoined) at {restarted:.1f} s; all online "
      f"again at {back if back is None else round(back, 1)} s "
      f"({'never' if back is None else round(back - killed, 1)} s after the kill); "
      f"peak {max(after or [0])} handshakes/s after the kill")
print("handshakes per second after the kill:", after[:60])
PY
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
