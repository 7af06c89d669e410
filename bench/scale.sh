#!/usr/bin/env bash
# Benchmark: how `provision` scales with the fleet. Prints the curve of a bulk
# `device add --from-file` into a fresh directory (per-device cost and peak memory at each size),
# then, on the largest directory, the one-device operations (registry load via `device show`,
# `device list --json`, `device revoke`, `device add` of one more), then a CRL with REVOKED
# revoked entries checked with `openssl crl` and loaded by a real Mosquitto.
#
#   bash bench/scale.sh [SIZES] [REVOKED]      # default: "1000 10000 100000" 10000
#   PROVISION_BIN=/path/to/provision bash bench/scale.sh   # another build, e.g. to compare
#
# Needs /usr/bin/time (GNU time, package `time`) for peak memory, openssl and mosquitto.
set -euo pipefail
SIZES=${1:-"1000 10000 100000"}
REVOKED=${2:-10000}
cd "$(dirname "$0")/.."
if [ -z "${PROVISION_BIN:-}" ]; then
    cargo build --release -q -p provision-cli
fi
BIN=${PROVISION_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/provision}
WORK=$(mktemp -d)
# The broker drops to user mosquitto before it reads its files: the tree must be traversable.
chmod 755 "$WORK"
MOSQ_PID=
cleanup() {
    if [ -n "$MOSQ_PID" ]; then kill "$MOSQ_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
# `timed LABEL CMD...`: wall time and peak RSS of one run.
timed() {
    local label=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >/dev/null
    read -r secs user sys kb < "$WORK/time"
    printf '%-34s %7.2f s wall  %6.2f s user  %6.2f s sys  peak %5d MiB\n' \
        "$label" "$secs" "$user" "$sys" "$((kb / 1024))"
}

echo "== device add --from-file into a fresh directory (load average $(cut -d' ' -f1-3 /proc/loadavg))"
LAST=
for n in $SIZES; do
    dir="$WORK/pki-$n"
    "$BIN" --dir "$dir" init >/dev/null
    "$BIN" --dir "$dir" broker --host localhost --ip 127.0.0.1 >/dev/null
    seq -f "dev-%g" 1 "$n" > "$WORK/ids-$n.txt"
    /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" \
        "$BIN" --dir "$dir" device add --from-file "$WORK/ids-$n.txt" >/dev/null
    read -r secs user sys kb < "$WORK/time"
    printf '%7d devices: %7.2f s wall (%6.3f ms/device)  CPU %6.2f s user + %6.2f s sys (%6.3f ms/device)  peak %5d MiB\n' \
        "$n" "$secs" "$(echo "$secs * 1000 / $n" | bc -l)" "$user" "$sys" \
        "$(echo "($user + $sys) * 1000 / $n" | bc -l)" "$((kb / 1024))"
    # Kept until the end: deleting 100,000 files just before the next run slows ext4's inode
    # allocation (it skips recently freed inodes) and would be measured as ours.
    LAST=$dir
done

dir=$LAST
echo "== one-device operations on the $(wc -l < "$WORK/ids-${SIZES##* }.txt")-device directory"
timed "device show (loads the registry)" "$BIN" --dir "$dir" device show dev-1
timed "device list --json" "$BIN" --dir "$dir" device list --json
timed "device add (one more)" "$BIN" --dir "$dir" device add one-more
timed "device revoke" "$BIN" --dir "$dir" device revoke one-more

echo "== a CRL with $REVOKED revoked entries"
crl_dir="$WORK/crl"
"$BIN" --dir "$crl_dir" init >/dev/null
"$BIN" --dir "$crl_dir" broker --host localhost --ip 127.0.0.1 --bind 127.0.0.1 >/dev/null
seq -f "rev-%g" 1 "$REVOKED" > "$WORK/rev.txt"
"$BIN" --dir "$crl_dir" device add --from-file "$WORK/rev.txt" >/dev/null
"$BIN" --dir "$crl_dir" device add keep-1 >/dev/null
# Revoke all but one through the registry's own path would take REVOKED runs; revoke the last
# one with the CLI after marking the rest revoked (the CLI then signs the whole CRL).
python3 - "$crl_dir/registry" <<'EOF'
import glob, json, sys
for path in glob.glob(sys.argv[1] + '/devices-*.json'):
    shard = json.load(open(path))
    for id, dev in shard['devices'].items():
        if id.startswith('rev-') and id != 'rev-1':
            dev['status'] = 'revoked'
            dev['revoked_at'] = '2026-01-01T00:00:00Z'
    json.dump(shard, open(path, 'w'))
EOF
timed "device revoke (signs $REVOKED)" "$BIN" --dir "$crl_dir" device revoke rev-1
entries=$(openssl crl -in "$crl_dir/crl.pem" -noout -text | grep -c 'Serial Number:')
openssl crl -in "$crl_dir/crl.pem" -noout -CAfile "$crl_dir/ca/ca.crt" 2>&1 | grep -q 'verify OK' \
    && echo "openssl crl: verify OK, $entries entries, $(wc -c < "$crl_dir/crl.pem") bytes"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -i "s/^listener 8883/listener $port/" "$crl_dir/broker/mosquitto.conf"
/usr/sbin/mosquitto -c "$crl_dir/broker/mosquitto.conf" > "$WORK/mosq.log" 2>&1 &
MOSQ_PID=$!
sleep 1
out=$(mosquitto_pub -h 127.0.0.1 -p "$port" --cafile "$crl_dir/ca/ca.crt" \
    --cert "$crl_dir/devices/keep-1/device.crt" --key "$crl_dir/devices/keep-1/device.key" \
    -t devices/keep-1/telemetry -m x 2>&1) \
    && echo "mosquitto loaded the CRL: an active device publishes" \
    || { echo "ERROR: an active device was refused: $out"; cat "$WORK/mosq.log"; exit 1; }
if mosquitto_pub -h 127.0.0.1 -p "$port" --cafile "$crl_dir/ca/ca.crt" \
    --cert "$crl_dir/devices/rev-2/device.crt" --key "$crl_dir/devices/rev-2/device.key" \
    -t devices/rev-2/telemetry -m x >/dev/null 2>&1; then
    echo "ERROR: a revoked device connected"; exit 1
else
    echo "mosquitto refuses a revoked device"
fi
echo "machine: $(uname -m), $(nproc) cores; $(openssl version); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
