#!/usr/bin/env bash
# Lays out a release boson's machine code by how it runs (BOLT, LLVM's post-link optimiser):
# instruments a copy, serves pgo/train.sh's workload with it, then rewrites the binary with
# the hot functions packed together, their blocks in the order they ran and the cold code moved
# aside. The binary must come from pgo/cargo.sh, which links it with its relocations kept.
# Prints the path of the optimised binary, BOSON-bolt, made once per input binary; if
# anything on the way fails it says why and prints BOSON itself, which serves the same.
# About 3 minutes on 2 cores; needs the test guests (tests/guests/build.sh) and, for the
# workload's outbound requests, native-hello built next to BOSON.
#
#   BOSON=$(bash pgo/bolt.sh "$CARGO_TARGET_DIR/release/boson")
set -euo pipefail
BOSON=$(realpath "${1:?usage: pgo/bolt.sh BOSON}")
OUT=$BOSON-bolt
STAMP=$OUT.source
cd "$(dirname "$0")/.."
say() { echo "pgo/bolt.sh: $*" >&2; }
# give_up WHY: shows the last step's log, says why, and hands back BOSON unchanged.
give_up() {
  [ -s "${WORK:-}/log" ] && tail -20 "$WORK/log" >&2
  say "$1; not optimised"
  echo "$BOSON"
  exit 0
}

SUM=$(sha256sum "$BOSON" | cut -d' ' -f1)
if [ -x "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$SUM" ]; then
  echo "$OUT"
  exit 0
fi
rm -f "$OUT" "$STAMP"
readelf -S "$BOSON" | grep -q '\.rela\.text' ||
  give_up "$BOSON was linked without its relocations (build it with pgo/cargo.sh)"
NATIVE=$(dirname "$BOSON")/native-hello
[ -x "$NATIVE" ] || give_up "$NATIVE is missing (cargo build --release -p native-hello)"

# BOLT reads what rustc's LLVM writes: the same major version.
LLVM=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
BIN=/usr/lib/llvm-$LLVM/bin
if [ ! -x "$BIN/llvm-bolt" ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "bolt-$LLVM"; } >/dev/null 2>&1 ||
    give_up "cannot install bolt-$LLVM"
fi

WORK=$(mktemp -d) RESULTS=/dev/null
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
say "instrumenting $BOSON"
"$BIN/llvm-bolt" "$BOSON" -o "$WORK/boson" -instrument \
  --instrumentation-file="$WORK/profile" --instrumentation-file-append-pid >"$WORK/log" 2>&1 ||
  give_up "instrumenting failed"
say "serving the training workload (pgo/train.sh)"
# Each boson the workload starts writes its counts when it stops.
PGO_DURATION=${BOLT_DURATION:-2} bash pgo/train.sh "$WORK/boson" "$NATIVE" >"$WORK/log" 2>&1 ||
  give_up "the training workload failed"
"$BIN/merge-fdata" "$WORK"/profile.*.fdata >"$WORK/merged.fdata" 2>"$WORK/log" ||
  give_up "no profile was written"
say "optimising"
"$BIN/llvm-bolt" "$BOSON" -o "$WORK/optimised" -data="$WORK/merged.fdata" \
  -reorder-blocks=ext-tsp -reorder-functions=cdsort -split-functions -split-all-cold -split-eh \
  -icf=all -use-gnu-stack >"$WORK/log" 2>&1 ||
  give_up "optimising failed"
# The rewritten binary must still serve before it is used.
start_serving check "$WORK/optimised" up --quiet --listen 127.0.0.1:0 \
  --from "${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}/c/hello.wasm" \
  --cache-dir "$WORK/cache" --state-dir "$WORK/state" &&
  curl -sf "http://$ADDR/" | grep -q Hello ||
  give_up "the optimised binary does not serve the C hello"
mv "$WORK/optimised" "$OUT"
echo "$SUM" >"$STAMP"
echo "$OUT"
