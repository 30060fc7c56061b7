#!/usr/bin/env bash
# Serves the example app in examples/hello on http://127.0.0.1:3000 (Ctrl-C stops it).
# On a fresh machine this first installs the C guest toolchain and builds the example's
# component; both are cached, so later runs start in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}"
bash tests/guests/install-toolchains.sh
bash tests/guests/build.sh
cp "${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}/c/hello.wasm" examples/hello/hello.wasm
# Release Boson is built with its execution profile (pgo/cargo.sh), then its code is laid out
# by how it runs (pgo/bolt.sh, which trains it against native-hello). Both are built as
# bench/run.sh builds them, so the two share one build and one laid-out binary.
cargo build --release --locked -p native-hello
bash pgo/cargo.sh build --release --locked -p boson
exec "$(bash pgo/bolt.sh "$CARGO_TARGET_DIR/release/boson")" up --from examples/hello "$@"
