#!/usr/bin/env bash
# The other candidate, measured: the NONOS SDK's own mbedTLS 2.2.1 rebuilt with ECDHE-ECDSA,
# P-256 and GCM (mbedtls_config.h), one client session against a real Mosquitto configured by
# `provision broker`, every allocation counted (mbedtls_heap.c). docs/esp8266-tls.md quotes
# the figures. Not part of CI: the project vendors BearSSL, not the SDK's mbedTLS sources.
#
#   bash esp-client/esp8266/tls/measure/measure-mbedtls.sh SDK_GIT_DIR [CONTENT_LEN...]
#
# SDK_GIT_DIR: a clone (or bare mirror) of github.com/espressif/ESP8266_NONOS_SDK at 8e13865.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
SDK_GIT=${1:?usage: measure-mbedtls.sh SDK_GIT_DIR [CONTENT_LEN...]}
shift
LENS=("$@")
[ ${#LENS[@]} -gt 0 ] || LENS=(2048 4096)
WORK=$ROOT/target/mbedtls-measure
rm -rf "$WORK"
mkdir -p "$WORK/sdk"
# (git archive also complains about the snapshot's missing lib/libc.a blob: harmless here)
git --git-dir="$SDK_GIT" archive 8e13865 third_party/mbedtls/library third_party/include/mbedtls \
  2>/dev/null | tar -x -C "$WORK/sdk"
# The SDK's oid.c has the ecdsa-with-SHA* signature OIDs commented out (lines 353-372): without
# them no ECDSA-signed certificate parses (X509_UNKNOWN_SIG_ALG). Patching mbedTLS means this.
sed -i '353,372s|^//||' "$WORK/sdk/third_party/mbedtls/library/oid.c"
grep -q '^        { ADD_LEN( MBEDTLS_OID_ECDSA_SHA256 )' "$WORK/sdk/third_party/mbedtls/library/oid.c" \
  || { echo "oid.c patch did not apply" >&2; exit 1; }
INC=$WORK/inc
mkdir -p "$INC/mbedtls"
# The SDK's headers, minus its config (ours is mbedtls_config.h) and the SDK-only glue.
cp "$WORK"/sdk/third_party/include/mbedtls/*.h "$INC/mbedtls/"
cp "$HERE/mbedtls_config.h" "$INC/mbedtls/config.h"
# The SDK's sources include its headers for flash attributes and os_* wrappers: host stand-ins.
cat >"$INC/c_types.h" <<'H'
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#define ICACHE_FLASH_ATTR
#define ICACHE_RODATA_ATTR
#define STORE_ATTR __attribute__((aligned(4)))
H
: >"$INC/mem.h"
: >"$INC/user_interface.h"
# The SDK reads byte tables in flash through this accessor (in its libmain).
cat >"$WORK/sdk_host.c" <<'H'
unsigned char system_get_data_of_array_8(const void *a, int i) { return ((const unsigned char *)a)[i]; }
H
cat >"$INC/osapi.h" <<'H'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define os_calloc calloc
#define os_free free
#define os_printf printf
#define os_snprintf snprintf
#define os_memcpy memcpy
#define os_memset memset
#define os_strlen strlen
H
LIB=$WORK/sdk/third_party/mbedtls/library
srcs=()
for f in aes asn1parse asn1write base64 bignum cipher cipher_wrap ctr_drbg ecdh ecdsa ecp \
  ecp_curves entropy gcm hmac_drbg md md_wrap oid pem pk pk_wrap pkparse platform sha256 \
  sha512 ssl_ciphersuites ssl_cli ssl_tls x509 x509_crt; do
  srcs+=("$LIB/$f.c")
done
gcc -O2 -w -I"$INC" -include "$INC/c_types.h" -o "$WORK/mbedtls_heap" "$HERE/mbedtls_heap.c" "$WORK/sdk_host.c" "${srcs[@]}"

P="cargo run -q -p provision-cli --"
PKI=$WORK/pki
$P --dir "$PKI" init --ca-name "measure CA" >/dev/null
$P --dir "$PKI" device add dev1 >/dev/null
chmod 755 "$WORK" "$PKI" "$PKI"/*
for f in ca/ca.crt devices/dev1/device.crt; do openssl x509 -in "$PKI/$f" -outform DER -out "$WORK/$(basename "$f").der"; done
openssl pkey -in "$PKI/devices/dev1/device.key" -outform DER -out "$WORK/device.key.der"

for try in 1 2 3 4 5; do
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $P --dir "$PKI" broker --host localhost --ip 127.0.0.1 --port "$PORT" --bind 127.0.0.1 >/dev/null
  /usr/sbin/mosquitto -c "$PKI/broker/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
  BROKER=$!
  trap 'kill $BROKER 2>/dev/null || true' EXIT
  for _ in $(seq 100); do grep -q " running" "$WORK/mosquitto.log" && break; sleep 0.05; done
  grep -q " running" "$WORK/mosquitto.log" && break
  kill $BROKER 2>/dev/null || true
done
for len in "${LENS[@]}"; do
  echo "== mbedTLS 2.2.1 (NONOS SDK 8e13865), content length $len"
  "$WORK/mbedtls_heap" "$PORT" localhost "$WORK/ca.crt.der" "$WORK/device.crt.der" "$WORK/device.key.der" "$len"
done
kill $BROKER
wait $BROKER 2>/dev/null || true
