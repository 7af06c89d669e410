#!/usr/bin/env bash
# esp-client benchmark (docs/benchmarks.md, "esp-client"): connect latency of the host device vs
# mosquitto_pub and rumqttc, QoS 1 throughput vs rumqttc, against one loopback Mosquitto that
# `provision broker` configured. Needs mosquitto and mosquitto-clients.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -q -p esp-client-host --bench connect_publish
