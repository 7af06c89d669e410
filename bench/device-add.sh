#!/usr/bin/env bash
# Benchmark: `provision device add` for N devices (default 1000) against the mosquitto-tls(7) man
# page's openssl recipe (P-256 variant: genkey, req, x509 -req; three processes per device) for
# the same ids, side by side in one run. Results go to stdout; copy them to docs/benchmarks.md.
#
#   bash bench/device-add.sh [N]
set -euo pipefail
N=${1:-1000}
cd "$(dirname "$0")/.."
cargo build --release -q -p provision-cli
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/provision
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

seq -f "bench-device-%g" 1 "$N" > "$WORK/ids.txt"
now() { date +%s.%N; }

# ours: one process, N certificates + keys, registry, all-or-nothing
"$BIN" --dir "$WORK/ours" init >/dev/null
t0=$(now)
"$BIN" --dir "$WORK/ours" device add --from-file "$WORK/ids.txt" >/dev/null
t1=$(now)
ours=$(echo "$t1 - $t0" | bc -l)

# the man page's recipe, P-256, against the same kind of CA
mkdir -p "$WORK/ossl"
cd "$WORK/ossl"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -new -x509 -days 3650 -key ca.key -out ca.crt -subj "/CN=bench CA" 2>/dev/null
t0=$(now)
while read -r id; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$id.key" 2>/dev/null
  openssl req -new -key "$id.key" -out "$id.csr" -subj "/CN=$id" 2>/dev/null
  openssl x509 -req -in "$id.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$id.crt" -days 1825 2>/dev/null
done < "$WORK/ids.txt"
t1=$(now)
ossl=$(echo "$t1 - $t0" | bc -l)
cd - >/dev/null

printf 'devices: %d\n' "$N"
printf 'provision device add --from-file: %8.3f s (%6.2f ms/device)\n' "$ours" "$(echo "$ours * 1000 / $N" | bc -l)"
printf 'openssl man-page recipe:          %8.3f s (%6.2f ms/device)\n' "$ossl" "$(echo "$ossl * 1000 / $N" | bc -l)"
printf 'ratio: %.1fx\n' "$(echo "$ossl / $ours" | bc -l)"
printf 'machine: %s, %s cores; %s\n' "$(uname -m)" "$(nproc)" "$(openssl version)"
