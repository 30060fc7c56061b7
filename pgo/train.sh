#!/usr/bin/env bash
# The workload pgo/generate.sh profiles: an instrumented boson serves what a deployment serves
# most — the C and Rust hellos at 1, 16 and 64 connections; the Python, JavaScript and WASI 0.3
# Python hellos, a static route, outbound HTTP to a native server and key-value reads at 1 and
# 16 — each through wrk on loopback, then stops on SIGTERM so its counters are written.
#
#   bash pgo/train.sh BOSON NATIVE_HELLO     (guests from tests/guests/build.sh)
set -euo pipefail
BOSON=$(realpath "${1:?usage: pgo/train.sh BOSON NATIVE_HELLO}")
NATIVE=$(realpath "${2:?usage: pgo/train.sh BOSON NATIVE_HELLO}")
GUESTS=${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}
cd "$(dirname "$0")/.."
WORK=$(mktemp -d) RESULTS=/dev/null DURATION=${PGO_DURATION:-4} RUNS=1
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
need_wrk

# load URL CONNECTIONS...: a wrk run per connection count (BENCH_HEADER adds a header).
load() {
  local url=$1 c rps errors; shift
  for c in "$@"; do
    read -r rps _ _ _ errors < <(wrk_once "$url" "$c")
    log "$url at $c connections: $rps req/s, $errors errors"
  done
}
# serve NAME SOURCE: boson up on SOURCE (a .wasm or an app directory); sets ADDR and LAST_PID.
serve() {
  start_serving "$1" "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$2" \
    --cache-dir "$WORK/cache" --state-dir "$WORK/state-$1"
}
# stop PID: a graceful shutdown, which writes the instrumented binary's counters.
stop() { kill -TERM "$1"; wait "$1" || true; }

for lang in c rust; do
  serve "$lang" "$GUESTS/$lang/hello.wasm"
  load "http://$ADDR/" 1 16 64
  stop "$LAST_PID"
done
for guest in python/hello js/hello python/p3-hello; do
  serve "${guest/\//-}" "$GUESTS/$guest.wasm"
  load "http://$ADDR/" 1 16
  stop "$LAST_PID"
done

start_serving upstream "$NATIVE"
UPSTREAM=$ADDR
mkdir -p "$WORK/app"
cat >"$WORK/app/spin.toml" <<EOF
spin_manifest_version = 2
[application]
name = "pgo"
[[trigger.http]]
route = "/"
static_response = { status_code = 200, body = "Hello from static!" }
[[trigger.http]]
route = "/outbound"
component = "proxy"
[[trigger.http]]
route = "/kv/..."
component = "kv"
[component.proxy]
source = "$GUESTS/c/guest.wasm"
allowed_outbound_hosts = ["http://$UPSTREAM"]
[component.kv]
source = "$GUESTS/c/kv.wasm"
key_value_stores = ["default"]
EOF
serve app "$WORK/app"
load "http://$ADDR/" 1 16
curl -sf -X PUT --data-binary 'a value' "http://$ADDR/kv/default/set/key" >/dev/null
load "http://$ADDR/kv/default/get/key" 1 16
BENCH_HEADER="x-target-url: http://$UPSTREAM/" load "http://$ADDR/outbound" 1 16
stop "$LAST_PID"
