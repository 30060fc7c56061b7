#!/usr/bin/env bash
# Compares two boson binaries on one component (the C hello unless AB_WASM names another):
# both serve at once, their wrk runs interleave (A, B, A, B, ...), so a busy moment of a shared
# machine hits both alike. Prints, per run, requests/s, p50, p99, the server's CPU (user +
# sys) per request and its threads' context switches per request (voluntary: it slept;
# involuntary: it was preempted), then the medians. Servers and wrk runs go through bench/lib.sh.
#
#   bash bench/ab.sh BOSON_A BOSON_B     (e.g. a release build of main and of a change)
# Building A in a second checkout (git worktree) with the same CARGO_TARGET_DIR: cargo's
# fingerprints compare file times and ignore the checkout's path, so it may reuse the other
# checkout's newer build of a crate. Touch the sources first (find crates -name '*.rs' -exec
# touch {} +) in the checkout being built, or give it a target dir of its own.
# Knobs: AB_CONNECTIONS (default "1 16 64"), AB_RUNS (3), AB_DURATION (5 s), AB_WASM (the
# component; default the C hello), AB_COMPONENTS (default 1: served with `--from` the .wasm;
# N > 1: an app of N components of that .wasm, routed at /1 … /N, and each wrk connection's
# requests go to them in turn), AB_UPSTREAM (a native-hello binary: the component, by default
# the C test guest, answers /outbound by fetching the page of that server, started here, so
# the runs measure outbound HTTP requests).
set -euo pipefail
A=$(realpath "${1:?usage: bench/ab.sh BOSON_A BOSON_B}")
B=$(realpath "${2:?usage: bench/ab.sh BOSON_A BOSON_B}")
GUESTS=${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}
HELLO=${AB_WASM:-"$GUESTS/c/$([ -n "${AB_UPSTREAM:-}" ] && echo guest || echo hello).wasm"}
[ -f "$HELLO" ] || { echo "$HELLO is missing: run tests/guests/build.sh" >&2; exit 1; }
HELLO=$(realpath "$HELLO")
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
RESULTS=$WORK/results DURATION=${AB_DURATION:-5} RUNS=${AB_RUNS:-3}
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
need_wrk

APP=$HELLO COMPONENTS=${AB_COMPONENTS:-1}
if [ "$COMPONENTS" -gt 1 ]; then
  APP=$WORK/app BENCH_PATHS=""
  mkdir "$APP"
  printf 'spin_manifest_version = 2\n[application]\nname = "ab"\n' >"$APP/spin.toml"
  for i in $(seq 1 "$COMPONENTS"); do
    printf '[[trigger.http]]\nroute = "/%s"\ncomponent = "c%s"\n[component.c%s]\nsource = "%s"\n' \
      "$i" "$i" "$i" "$HELLO" >>"$APP/spin.toml"
    BENCH_PATHS="$BENCH_PATHS /$i"
  done
  export BENCH_PATHS
fi
if [ -n "${AB_UPSTREAM:-}" ]; then
  start_serving upstream "$AB_UPSTREAM"
  APP=$WORK/app
  proxy_app "$APP" "$HELLO" "$ADDR"
  export BENCH_PATHS=/outbound BENCH_HEADER="x-target-url: http://$ADDR/"
fi
start_serving a "$A" up --quiet --listen 127.0.0.1:0 --from "$APP" --cache-dir "$WORK/cache"
ADDR_A=$ADDR PID_A=$LAST_PID
start_serving b "$B" up --quiet --listen 127.0.0.1:0 --from "$APP" --cache-dir "$WORK/cache"
ADDR_B=$ADDR PID_B=$LAST_PID
TCK=$(getconf CLK_TCK)
if [ -n "${AB_UPSTREAM:-}" ]; then
  for addr in "$ADDR_A" "$ADDR_B"; do
    curl -sf -H "$BENCH_HEADER" "http://$addr/outbound" | grep -q 'Hello from native' ||
      { echo "the proxy at $addr does not answer" >&2; exit 1; }
  done
fi

for c in ${AB_CONNECTIONS:-1 16 64}; do
  for addr in "$ADDR_A" "$ADDR_B"; do wrk -t1 -c"$c" -d1s -s bench/percentiles.lua "http://$addr/" >/dev/null 2>&1 || true; done
  for run in $(seq 1 "$RUNS"); do
    for side in a b; do
      if [ $side = a ]; then addr=$ADDR_A pid=$PID_A; else addr=$ADDR_B pid=$PID_B; fi
      before=$(cpu_ticks "$pid") switches_before=$(context_switches "$pid")
      read -r rps p50 p99 _ _ < <(wrk_once "http://$addr/" "$c")
      after=$(cpu_ticks "$pid") switches_after=$(context_switches "$pid")
      # requests = requests/s × the run's duration
      python3 -c 'import sys; c, run, side, rps, p50, p99, ticks, tck, secs, sb, sa = sys.argv[1:]; rps = float(rps)
requests = rps * float(secs)
switches = [(int(a) - int(b)) / requests for a, b in zip(sa.split(), sb.split())]
print(c, run, side, round(rps), round(float(p50), 3), round(float(p99), 3),
      round(int(ticks) / int(tck) * 1e6 / requests, 1), round(switches[0], 3), round(switches[1], 3))' \
        "$c" "$run" "$side" "$rps" "$p50" "$p99" "$((after - before))" "$TCK" "$DURATION" \
        "$switches_before" "$switches_after"
    done
  done
done | tee "$WORK/runs" | awk '{printf "c=%s run=%s %s: %s req/s, p50 %s ms, p99 %s ms, %s µs CPU/request, %s + %s switches/request\n", $1, $2, toupper($3), $4, $5, $6, $7, $8, $9}'
echo "medians (connections, side, req/s, p50 ms, p99 ms, µs CPU/request, voluntary and involuntary context switches/request):"
python3 - "$WORK/runs" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    c, _, side, *vals = line.split()
    rows[(int(c), side)].append([float(v) for v in vals])
for (c, side), runs in sorted(rows.items()):
    med = [statistics.median(col) for col in zip(*runs)]
    print(f"  {c:>3} {side.upper()} {med[0]:>8.0f} {med[1]:>7.3f} {med[2]:>7.3f} {med[3]:>7.1f}"
          f" {med[4]:>6.3f} {med[5]:>6.3f}")
PY
