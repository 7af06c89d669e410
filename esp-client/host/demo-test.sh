#!/usr/bin/env bash
# CI check of the README's main job (`just demo`): runs demo.sh for a few seconds on the debug
# build `cargo test` already made, and checks that the operator saw telemetry and both command
# round trips, that the over-the-air update to v2.0.0 confirmed, and that the device stopped in
# order.
set -euo pipefail
cd "$(dirname "$0")/../.."

work=$(mktemp -d /tmp/esp-demo-test.XXXXXX)
chmod 755 "$work"  # Mosquitto runs as user mosquitto and must reach the broker files
trap 'rm -rf "$work"' EXIT
out=$work/demo.out
if ! DEMO_SECONDS=3 DEMO_PROFILE=debug bash esp-client/host/demo.sh "$work/demo" >"$out" 2>&1; then
    cat "$out"
    echo "error: demo.sh failed" >&2
    exit 1
fi
for want in \
    '=> Online' \
    'demo-device-1 status online' \
    'demo-device-1 telemetry seq=1 ' \
    'demo-device-1 set-pin: ok pin=9 level=1' \
    'demo-device-1 read-adc: ok channel=2 value=' \
    'demo-device-1 reply/set-pin req=' \
    'demo-device-1 reply/read-adc req=' \
    'loader: boot slot B (Trial { attempt: 1 })' \
    'ota: confirmed 2.0.0 in slot B' \
    'demo-device-1 confirmed 2.0.0, running 2.0.0' \
    'stopping: saying offline and disconnecting'; do
    # The device's and the operator's lines reach $out through tee/sed pipes that may still be
    # flushing when demo.sh returns: give them a few seconds on a loaded machine.
    for _ in $(seq 100); do grep -qF -- "$want" "$out" && break; sleep 0.1; done
    if ! grep -qF -- "$want" "$out"; then
        cat "$out"
        echo "error: the demo's output lacks: $want" >&2
        exit 1
    fi
done
echo "demo: online, telemetry, set-pin and read-adc round trips, OTA v2.0.0 confirmed, orderly stop"
