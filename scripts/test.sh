#!/usr/bin/env bash
# Runs every test of Boson on a fresh machine: installs the guest toolchains (cached under
# ~/.cache/boson/tools), builds the test guests from source (cached by content hash), then
# starts the services the tests talk to (Redis, PostgreSQL, MariaDB, Mosquitto, NATS), runs the
# workspace's tests, then the ones that must run alone (they change the machine: swap), then the
# bounded stress scripts and fuzz targets under tests/stress/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}"
phase() { echo "== test.sh: $* (${SECONDS}s)"; }
bash scripts/services.sh
# The tests' build needs none of the guest toolchains, so it runs beside their install and the
# guests' builds: on a fresh machine those spend minutes waiting on downloads, a core left idle.
build_log=$(mktemp)
cargo test --workspace --locked --no-run >"$build_log" 2>&1 &
build=$!
trap 'kill "$build" 2>/dev/null || true; rm -f "$build_log"' EXIT
phase "guest toolchains"
bash tests/guests/install-toolchains.sh
phase "guests"
bash tests/guests/build.sh
phase "waiting for the tests' build"
if ! wait "$build"; then
  cat "$build_log"
  echo "test.sh: building the tests failed" >&2
  exit 1
fi
phase "cargo test"
cargo test --workspace --locked
# Tests that change the whole machine (they turn swap on) run alone, after the others.
phase "tests that run alone"
cargo test -p boson --test e2e --locked -- --ignored --test-threads 1
# Bounded stress scripts and fuzz targets (about three minutes; figures in docs/RELIABILITY.md).
phase "stress and fuzz"
bash tests/stress/run.sh
phase "done"
