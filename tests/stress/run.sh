#!/usr/bin/env bash
# Runs the stress scripts (bounded, loopback only, about two minutes in all) against the debug
# build of boson, then the fuzz targets (fuzz.sh: 20 s each, plus their first build, about two
# minutes). Called by scripts/test.sh after the test suite; figures in docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")"
status=0
for script in loop_flood.py hostile_guests.py slowloris.py; do
  echo "== $script"
  python3 "$script" || status=1
done
echo "== loop_flood.py --pool-keep-resident 0 (the RSS target)"
python3 loop_flood.py --pool-keep-resident 0 || status=1
# 200 cycles take about a minute by hand; CI runs 50 (KILL_CYCLES overrides).
echo "== kill_cycles.py"
KILL_CYCLES=${KILL_CYCLES:-50} python3 kill_cycles.py || status=1
echo "== fuzz.sh"
bash fuzz.sh || status=1
exit $status
