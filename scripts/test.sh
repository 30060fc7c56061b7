#!/usr/bin/env bash
# Runs every test of Boson on a fresh machine: installs the guest toolchains (cached under
# ~/.cache/boson/tools), builds the test guests from source (cached by content hash), then
# starts the services the tests talk to (Redis, PostgreSQL, MariaDB, Mosquitto, NATS), runs the
# workspace's tests, then the bounded stress scripts and fuzz targets under tests/stress/.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}"
bash scripts/services.sh
bash tests/guests/install-toolchains.sh
bash tests/guests/build.sh
cargo test --workspace --locked
# Bounded stress scripts and fuzz targets (about three minutes; figures in docs/RELIABILITY.md).
bash tests/stress/run.sh
