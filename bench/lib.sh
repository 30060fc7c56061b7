# Helpers for bench/run.sh (sourced): servers, wrk runs, CPU accounting, recording results.
# Expects WORK, RESULTS, DURATION and RUNS to be set.

log() { echo "bench: $*" >&2; }

# put KEY VALUE: one result for bench/report.py.
put() { echo "$1=$2" >>"$RESULTS"; }

# Every server started here; stopped on exit.
PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # url
  for _ in $(seq 1 1200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  return 1
}

# start_serving NAME CMD...: starts a server that prints `Serving http://ADDR` (Boson,
# native-hello); sets ADDR and LAST_PID.
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

# start_wasmtime NAME WASM [FLAG...]: `wasmtime serve` with its defaults and FLAGs; sets ADDR
# and LAST_PID.
start_wasmtime() {
  local name=$1 wasm=$2 port; shift 2
  port=$(free_port)
  "$WASMTIME" serve "$@" --addr "127.0.0.1:$port" "$wasm" >"$WORK/$name.log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  ADDR="127.0.0.1:$port"
  wait_http "http://$ADDR/" || { log "wasmtime serve did not start"; cat "$WORK/$name.log" >&2; return 1; }
}

# proxy_app DIR WASM UPSTREAM: writes DIR/spin.toml, an app whose one component (WASM, the C
# test guest) answers /outbound by fetching x-target-url, allowed to reach http://UPSTREAM.
proxy_app() {
  mkdir -p "$1"
  printf 'spin_manifest_version = 2\n[application]\nname = "proxy"\n[[trigger.http]]\nroute = "/outbound"\ncomponent = "proxy"\n[component.proxy]\nsource = "%s"\nallowed_outbound_hosts = ["http://%s"]\n' \
    "$2" "$3" >"$1/spin.toml"
}

# need_wrk: installs wrk from Debian's packages unless it is there.
need_wrk() {
  command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
}

# wrk_once URL CONNECTIONS: one wrk run; prints "rps p50 p99 p999 errors" (ms; errors are
# socket errors plus non-2xx responses).
wrk_once() {
  local threads=2; [ "$2" -lt 2 ] && threads=1
  wrk -t"$threads" -c"$2" -d"${DURATION}s" -s bench/percentiles.lua "$1" 2>/dev/null |
    sed -n 's/^wrk-result //p' |
    awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
           print v["rps"], v["p50_ms"], v["p99_ms"], v["p999_ms"], v["socket_errors"] + v["non2xx"] }'
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# measure_load KEY URL CONNECTIONS: a 1 s warm-up (not counted), then RUNS wrk runs; records
# the median of each figure as KEY.{rps,p50,p99,p999} and the errors summed as KEY.errors.
measure_load() {
  local key=$1 url=$2 c=$3 rs=() p50s=() p99s=() p999s=() errors=0 rps p50 p99 p999 err
  wrk -t1 -c"$c" -d1s "$url" >/dev/null 2>&1 || true
  for _ in $(seq 1 "$RUNS"); do
    read -r rps p50 p99 p999 err < <(wrk_once "$url" "$c")
    rs+=("$rps"); p50s+=("$p50"); p99s+=("$p99"); p999s+=("$p999"); errors=$((errors + err))
  done
  put "$key.rps" "$(median "${rs[@]}")"
  put "$key.p50" "$(median "${p50s[@]}")"
  put "$key.p99" "$(median "${p99s[@]}")"
  put "$key.p999" "$(median "${p999s[@]}")"
  put "$key.errors" "$errors"
  log "$key: $(median "${rs[@]}") req/s, p99 $(median "${p99s[@]}") ms, $errors errors"
}

# cpu_ticks PID: user + system time the process has used so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# context_switches PID: voluntary and involuntary context switches of all the process's threads
# so far, summed ("<voluntary> <involuntary>"). Involuntary ones are the thread being preempted
# (on a shared 2-core machine, mostly by the load generator's threads waking up).
context_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt_switches/ { v += $2 } /^nonvoluntary_ctxt_switches/ { n += $2 } END { print v + 0, n + 0 }'
}

# measure_cpu KEY PID URL: CPU the server at PID spends per request while `load` sends RATE
# requests per second for CPU_SECONDS; records KEY.{us_per_request,rate,failed,p50,p99}.
measure_cpu() {
  local key=$1 pid=$2 url=$3 before after out
  "$LOAD" "$url" "$RATE" 2 >/dev/null   # warm-up, not counted
  before=$(cpu_ticks "$pid")
  out=$("$LOAD" "$url" "$RATE" "$CPU_SECONDS")
  after=$(cpu_ticks "$pid")
  local ok failed rate p50 p99
  ok=$(grep -o 'ok=[0-9]*' <<<"$out" | cut -d= -f2)
  failed=$(grep -o 'failed=[0-9]*' <<<"$out" | cut -d= -f2)
  rate=$(grep -o 'rate=[0-9.]*' <<<"$out" | cut -d= -f2)
  p50=$(grep -o 'p50_ms=[0-9.]*' <<<"$out" | cut -d= -f2)
  p99=$(grep -o 'p99_ms=[0-9.]*' <<<"$out" | cut -d= -f2)
  put "$key.us_per_request" "$(python3 -c "import sys; t, hz, n = map(float, sys.argv[1:]); print(round(t / hz / n * 1e6, 2))" "$((after - before))" "$(getconf CLK_TCK)" "$((ok + failed))")"
  put "$key.rate" "$rate"; put "$key.failed" "$failed"; put "$key.p50" "$p50"; put "$key.p99" "$p99"
  log "$key: $out, $((after - before)) ticks"
}

# put_probe PREFIX OUTPUT: records a probe.py output's key=value lines under PREFIX.
put_probe() {
  local line
  while IFS= read -r line; do put "$1.${line%%=*}" "${line#*=}"; done <<<"$2"
}
