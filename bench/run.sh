#!/usr/bin/env bash
# Boson's benchmark suite: one command, writes docs/BENCHMARKS.md.
#
# Serves the same hello-world component (C, from tests/guests) with Boson and with
# `wasmtime serve` (the wasmtime-cli at Boson's wasmtime version), plus a native hyper server
# (bench/native-hello) as the floor, and loads each with wrk on loopback: fixed duration, fixed
# connection counts, a warm-up excluded, several runs, the median reported and divided by the
# native server's figure from the same run (these machines are shared and noisy: only ratios
# from one run compare). Also measures Boson's start-to-first-response with a warm compile cache
# and its memory.
#
# Installs what it needs on a fresh machine (wrk from Debian, wasmtime-cli from crates.io into
# ~/.cache/boson/tools — about 15 minutes once). Knobs: BENCH_DURATION (s, default 5),
# BENCH_RUNS (default 3), BENCH_CONNECTIONS (default "1 16 64 256").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}"
TOOLS=${BOSON_TOOLS_DIR:-$HOME/.cache/boson/tools}
DURATION=${BENCH_DURATION:-5}
RUNS=${BENCH_RUNS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256"}
WASMTIME_VERSION=48.0.8
OUT=docs/BENCHMARKS.md
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

# ---- tools and builds
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
WASMTIME="$TOOLS/wasmtime-cli/bin/wasmtime"
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
  log "cargo install wasmtime-cli $WASMTIME_VERSION (once; ~15 minutes on 2 cores)"
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$TOOLS/wasmtime-cli" \
    --no-default-features \
    --features "run,serve,component-model,component-model-async,wasi-http,pooling-allocator,cranelift,parallel-compilation,cache"
fi
bash tests/guests/install-toolchains.sh >/dev/null
bash tests/guests/build.sh >/dev/null
cargo build --release --locked -p boson -p native-hello
BOSON="$CARGO_TARGET_DIR/release/boson"
NATIVE="$CARGO_TARGET_DIR/release/native-hello"
HELLO="${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}/c/hello.wasm"
CACHE="$WORK/cache"

# Starts a server whose stdout prints `Serving http://ADDR`; sets ADDR and LAST_PID.
start_serving() {
  local logf="$WORK/$1.log"; shift
  "$@" >"$logf" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  for _ in $(seq 1 600); do
    ADDR=$(grep -o 'Serving http://[0-9.:]*' "$logf" | head -1 | sed 's|Serving http://||' || true)
    if [ -n "$ADDR" ]; then return 0; fi
    sleep 0.1
  done
  log "server did not start: $*"; cat "$logf" >&2; return 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  return 1
}

log "starting servers"
start_serving native "$NATIVE"
NATIVE_ADDR=$ADDR
start_serving boson "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$HELLO" --cache-dir "$CACHE"
BOSON_ADDR=$ADDR
BOSON_PID=$LAST_PID
WT_PORT=$(free_port)
"$WASMTIME" serve --addr "127.0.0.1:$WT_PORT" "$HELLO" >"$WORK/wasmtime.log" 2>&1 &
PIDS+=($!)
WT_ADDR="127.0.0.1:$WT_PORT"
wait_http "http://$WT_ADDR/" || { log "wasmtime serve did not start"; cat "$WORK/wasmtime.log" >&2; exit 1; }

# One wrk run: prints "rps p50_ms p99_ms".
load() { # url connections
  local threads=2; [ "$2" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$2" -d"${DURATION}s" --latency "$1" 2>/dev/null | python3 -c '
import re, sys
text = sys.stdin.read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def ms(label):
    m = re.search(r"\s" + label + r"%\s+([\d.]+)(us|ms|s)\b", text)
    if not m: return float("nan")
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
print(rps, ms("50"), ms("99"))'
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

declare -A RPS P50 P99
PEAK_RSS=0
for c in $CONNECTIONS; do
  for name in native boson wasmtime; do
    case $name in native) url="http://$NATIVE_ADDR/";; boson) url="http://$BOSON_ADDR/";; wasmtime) url="http://$WT_ADDR/";; esac
    wrk -t1 -c"$c" -d1s "$url" >/dev/null 2>&1 || true   # warm-up, excluded
    rs=(); p50s=(); p99s=()
    for _ in $(seq 1 "$RUNS"); do
      read -r rps p50 p99 < <(load "$url" "$c")
      rs+=("$rps"); p50s+=("$p50"); p99s+=("$p99")
      if [ "$name" = boson ]; then
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$BOSON_PID/status")
        [ "$rss" -gt "$PEAK_RSS" ] && PEAK_RSS=$rss
      fi
    done
    RPS[$name,$c]=$(median "${rs[@]}"); P50[$name,$c]=$(median "${p50s[@]}"); P99[$name,$c]=$(median "${p99s[@]}")
    log "$name c=$c: ${RPS[$name,$c]} req/s, p50 ${P50[$name,$c]} ms, p99 ${P99[$name,$c]} ms"
  done
done
IDLE_RSS=$(awk '/VmRSS/ {print $2}' "/proc/$BOSON_PID/status")

# Cold start with a warm compile cache: process start -> first 200, median of 10.
starts=()
for _ in $(seq 1 10); do
  port=$(free_port)
  t0=$(date +%s%N)
  "$BOSON" up --quiet --listen "127.0.0.1:$port" --from "$HELLO" --cache-dir "$CACHE" >/dev/null 2>&1 &
  pid=$!
  wait_http "http://127.0.0.1:$port/"
  t1=$(date +%s%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  starts+=("$(( (t1 - t0) / 1000 ))")
done
START_MS=$(python3 -c 'import statistics,sys; print(round(statistics.median(int(x) for x in sys.argv[1:])/1000, 1))' "${starts[@]}")

# ---- report
{
  echo "# Benchmarks"
  echo
  echo "Generated by \`bash bench/run.sh\` on $(date -u +%Y-%m-%d). Do not edit by hand."
  echo
  echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB; shared and noisy, so compare ratios within one run."
  echo "- Boson $("$BOSON" --version | cut -d' ' -f2-), $("$WASMTIME" --version), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), rustc $(rustc --version | cut -d' ' -f2)."
  echo "- Component: \`tests/guests/c/hello.c\` (C, wasi:http 0.2.12), the same \`.wasm\` for Boson and \`wasmtime serve\`."
  echo "- Load: \`wrk -t2 -c<N> -d${DURATION}s --latency\` on loopback after a 1 s warm-up; median of $RUNS runs. Servers: \`boson up --quiet --from hello.wasm\` (defaults), \`wasmtime serve hello.wasm\` (defaults), \`native-hello\` (bench/native-hello)."
  echo
  echo "## Hello-world throughput and latency"
  echo
  echo "| connections | server | requests/s | × native | × wasmtime serve | p50 ms | p99 ms |"
  echo "|---|---|---|---|---|---|---|"
  for c in $CONNECTIONS; do
    for name in native wasmtime boson; do
      python3 -c '
import sys
c, name, rps, p50, p99, native, wt = sys.argv[1:]
rps, native, wt = float(rps), float(native), float(wt)
print(f"| {c} | {name} | {rps:,.0f} | {rps/native:.2f} | {rps/wt:.2f} | {float(p50):.2f} | {float(p99):.2f} |")' \
        "$c" "$name" "${RPS[$name,$c]}" "${P50[$name,$c]}" "${P99[$name,$c]}" "${RPS[native,$c]}" "${RPS[wasmtime,$c]}"
    done
  done
  echo
  echo "## Start and memory (Boson)"
  echo
  echo "- Process start to first 200 with a warm compile cache: **${START_MS} ms** (median of 10)."
  echo "- RSS after the load: $((IDLE_RSS / 1024)) MiB; peak RSS during the load: $((PEAK_RSS / 1024)) MiB."
  echo
  echo "## Not measured yet"
  echo
  echo "p99.9 (wrk reports up to p99), the Python and JavaScript hellos, the in-process instantiate+call cost (criterion), CPU per request at a fixed rate, first request to a not-yet-run component."
} > "$OUT"
log "wrote $OUT"
