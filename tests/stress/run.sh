#!/usr/bin/env bash
# Runs the stress scripts (bounded, loopback only, about a minute in all) against the debug
# build of boson, then the fuzz targets (fuzz.sh: 20 s each, plus their first build, about two
# minutes). Called by scripts/test.sh after the test suite; figures in docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")"
status=0
for script in loop_flood.py hostile_guests.py slowloris.py; do
  echo "== $script"
  python3 "$script" || status=1
done
echo "== fuzz.sh"
bash fuzz.sh || status=1
exit $status
