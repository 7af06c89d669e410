#!/usr/bin/env bash
# OTA benchmark (docs/benchmarks.md, "## OTA"): everything side by side in one run.
#   1. `provision ota build` of a 1 MiB and a 4 MiB image vs `imgtool sign` (MCUboot, PyPI)
#      vs `openssl dgst -sha256` + `openssl pkeyutl -sign` (all Ed25519).
#   2. verifier throughput (in-process, cargo bench) vs `openssl speed -elapsed -evp sha256`
#      (-elapsed: wall clock like ours; plain `openssl speed` reports CPU time).
# Usage: bash bench/ota.sh [RUNS]   (default 15 runs per command, median reported)
# Not part of `just test`. Needs: cargo, python3 (venv), openssl, network access to PyPI once.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-15}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "==> build (release)"
cargo build --release -q -p provision-cli
PROVISION="$TARGET_DIR/release/provision"

VENV="$TARGET_DIR/bench-venv"
if [ ! -x "$VENV/bin/imgtool" ]; then
  echo "==> imgtool into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet imgtool
fi
IMGTOOL="$VENV/bin/imgtool"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$PROVISION" --dir pki init >/dev/null
"$PROVISION" --dir pki ota keygen >/dev/null
"$IMGTOOL" keygen -k imgtool-ed25519.pem -t ed25519
openssl genpkey -algorithm ed25519 -out openssl-ed25519.pem 2>/dev/null
head -c $((1 << 20)) /dev/urandom >img-1m.bin
head -c $((4 << 20)) /dev/urandom >img-4m.bin

echo "==> machine"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "load average: $(cut -d" " -f1-3 /proc/loadavg) (the machine may be shared)"
echo "$(openssl version); imgtool $("$IMGTOOL" version); $("$PROVISION" --version)"

echo "==> signing: median of $RUNS runs (wall clock, whole process)"
"$VENV/bin/python3" - "$RUNS" "$PROVISION" "$IMGTOOL" <<'PY'
import statistics, subprocess, sys, time
runs, provision, imgtool = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def median(cmds):
    """Median wall time of running `cmds` (one or more commands, in sequence)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        for c in cmds:
            subprocess.run(c, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return statistics.median(times)

print(f"{'image':>6} {'provision ota build':>20} {'imgtool sign':>13} {'openssl dgst+pkeyutl':>21} {'vs imgtool':>11} {'vs openssl':>11}")
for size in ("1m", "4m"):
    img = f"img-{size}.bin"
    ours = median([[provision, "--dir", "pki", "ota", "build", img, "--version", "1.2.3",
                    "--target", "esp8266", "-o", f"ours-{size}.bundle"]])
    mcuboot = median([[imgtool, "sign", "-k", "imgtool-ed25519.pem", "--version", "1.2.3",
                       "--header-size", "0x200", "--pad-header", "--align", "4",
                       "--slot-size", "0x800000", img, f"imgtool-{size}.bin"]])
    ossl = median([["openssl", "dgst", "-sha256", "-binary", "-out", f"d-{size}.bin", img],
                   ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", "openssl-ed25519.pem",
                    "-in", f"d-{size}.bin", "-out", f"s-{size}.bin"]])
    print(f"{size.upper()+'iB':>6} {ours*1e3:>17.1f} ms {mcuboot*1e3:>10.1f} ms {ossl*1e3:>18.1f} ms"
          f" {mcuboot/ours:>10.1f}x {ossl/ours:>10.1f}x")

# Where the time goes: the same build writing to tmpfs, where fsync costs nothing.
import os, tempfile
if os.path.isdir("/dev/shm"):
    shm = tempfile.mkdtemp(dir="/dev/shm")
    for size in ("1m", "4m"):
        t = median([[provision, "--dir", "pki", "ota", "build", f"img-{size}.bin", "--version", "1.2.3",
                     "--target", "esp8266", "-o", f"{shm}/ours-{size}.bundle"]])
        print(f"{size.upper()+'iB':>6} {t*1e3:>17.1f} ms  (provision ota build with -o on tmpfs: no fsync cost)")
    subprocess.run(["rm", "-rf", shm], check=True)

print()
print(f"{'image':>6} {'provision ota verify':>21} {'openssl dgst -sha256':>21} {'ratio':>6}")
for size in ("1m", "4m"):
    ours = median([[provision, "--dir", "pki", "ota", "verify", f"ours-{size}.bundle"]])
    ossl = median([["openssl", "dgst", "-sha256", "-binary", "-out", f"d-{size}.bin", f"img-{size}.bin"]])
    print(f"{size.upper()+'iB':>6} {ours*1e3:>18.1f} ms {ossl*1e3:>18.1f} ms {ossl/ours:>5.2f}x")
PY
"$PROVISION" --dir pki ota verify ours-4m.bundle

echo "==> verification throughput vs raw SHA-256 (3 interleaved rounds; compare the best of each)"
cd - >/dev/null
for round in 1 2 3; do
  echo "-- round $round"
  cargo bench -q -p wire-format --features fast --bench ota_verify 2>/dev/null
  openssl speed -elapsed -evp sha256 -bytes 16384 -seconds 2 2>/dev/null |
    awk '/^sha256/ {sub("k","",$2); printf "openssl speed -elapsed -evp sha256, 16 KiB blocks: %.1f MB/s\n", $2/1000}'
done
