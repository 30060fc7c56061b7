#!/usr/bin/env bash
# Compares two boson binaries on one component (the C hello unless AB_WASM names another): both serve at once, their wrk runs interleave
# (A, B, A, B, ...), so a busy moment of a shared machine hits both alike. Prints, per run,
# requests/s, p50, p99 and the server's CPU (user + sys) per request, then the medians.
#
#   bash bench/ab.sh BOSON_A BOSON_B     (e.g. a release build of main and of a change)
# Knobs: AB_CONNECTIONS (default "1 16 64"), AB_RUNS (3), AB_DURATION (5 s), AB_WASM (the
# component; default the C hello).
set -euo pipefail
A=${1:?usage: bench/ab.sh BOSON_A BOSON_B}
B=${2:?usage: bench/ab.sh BOSON_A BOSON_B}
HELLO=${AB_WASM:-"${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}/c/hello.wasm"}
[ -f "$HELLO" ] || { echo "$HELLO is missing: run tests/guests/build.sh" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

serve() { # binary name -> sets ADDR
  "$1" up --quiet --listen 127.0.0.1:0 --from "$HELLO" --cache-dir "$WORK/cache" >"$WORK/$2.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    ADDR=$(grep -o 'Serving http://[0-9.:]*' "$WORK/$2.log" | head -1 | sed 's|Serving http://||' || true)
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "$1 did not start" >&2; cat "$WORK/$2.log" >&2; exit 1
}
serve "$A" a; ADDR_A=$ADDR; PID_A=${PIDS[-1]}
serve "$B" b; ADDR_B=$ADDR; PID_B=${PIDS[-1]}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

for c in ${AB_CONNECTIONS:-1 16 64}; do
  threads=2; [ "$c" -lt 2 ] && threads=1
  for addr in "$ADDR_A" "$ADDR_B"; do wrk -t1 -c"$c" -d1s "http://$addr/" >/dev/null 2>&1 || true; done
  for run in $(seq 1 "${AB_RUNS:-3}"); do
    for side in a b; do
      if [ $side = a ]; then addr=$ADDR_A pid=$PID_A; else addr=$ADDR_B pid=$PID_B; fi
      before=$(cpu_ticks "$pid")
      out=$(wrk -t"$threads" -c"$c" -d"${AB_DURATION:-5}s" --latency "http://$addr/" 2>/dev/null)
      after=$(cpu_ticks "$pid")
      echo "$out" | python3 -c '
import re, sys
c, run, side, ticks, tck = sys.argv[1:]
text = sys.stdin.read()
def ms(label):
    m = re.search(r"\s" + label + r"%\s+([\d.]+)(us|ms|s)\b", text)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
reqs = int(re.search(r"(\d+) requests in", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50, p99 = ms("50"), ms("99")
print(f"{c} {run} {side} {rps:.0f} {p50:.3f} {p99:.3f} {int(ticks) / int(tck) * 1e6 / reqs:.1f}")
' "$c" "$run" "$side" "$((after - before))" "$TCK"
    done
  done
done | tee "$WORK/runs" | awk '{printf "c=%s run=%s %s: %s req/s, p50 %s ms, p99 %s ms, %s µs CPU/request\n", $1, $2, toupper($3), $4, $5, $6, $7}'
echo "medians (connections, side, req/s, p50 ms, p99 ms, µs CPU/request):"
python3 - "$WORK/runs" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    c, _, side, *vals = line.split()
    rows[(int(c), side)].append([float(v) for v in vals])
for (c, side), runs in sorted(rows.items()):
    med = [statistics.median(col) for col in zip(*runs)]
    print(f"  {c:>3} {side.upper()} {med[0]:>8.0f} {med[1]:>7.3f} {med[2]:>7.3f} {med[3]:>7.1f}")
PY
