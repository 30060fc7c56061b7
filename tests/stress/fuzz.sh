#!/usr/bin/env bash
# Runs each cargo-fuzz target of fuzz/ (manifest, router, request) for a bounded time —
# FUZZ_SECONDS each, 20 by default — and fails if one crashes. Called by run.sh; figures of longer
# runs in docs/RELIABILITY.md (item 7).
#
# libFuzzer needs -Z flags, which stable Rust takes with RUSTC_BOOTSTRAP=1; AddressSanitizer and
# debug assertions (-a: overflow checks) are on. cargo-fuzz is installed once, into
# ~/.cache/boson/tools/cargo-fuzz. The corpus grows in ~/.cache/boson/fuzz-corpus between runs on
# a machine, starting from the committed seeds in fuzz/seeds/; a crashing input is written to
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds="${FUZZ_SECONDS:-20}"
tools="$HOME/.cache/boson/tools/cargo-fuzz"
export PATH="$tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz into $tools"
  cargo install cargo-fuzz --locked --version 0.13.2 --root "$tools"
fi
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/boson/target-fuzz}"
corpora="$HOME/.cache/boson/fuzz-corpus"

# cargo fuzz has no --locked: check that fuzz/Cargo.lock is up to date first.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build -a

status=0
for target in manifest router request; do
  mkdir -p "$corpora/$target"
  log="$(mktemp)"
  # The first corpus directory receives new inputs; the seeds are only read.
  if cargo fuzz run -a "$target" "$corpora/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -dict="dicts/$target.dict" >"$log" 2>&1; then
    # libFuzzer's last line: "#<execs> DONE cov: <edges> ft: <features> corp: <inputs>/<size> ...".
    echo "fuzz $target: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1) in ${seconds} s"
  else
    status=1
    echo "fuzz $target: FAILED"
    grep -m1 -A4 'panicked at' "$log" || true
    grep -E '^(==[0-9]+==ERROR|SUMMARY)' "$log" || true
    echo "... the fuzzer's output ends:"
    tail -12 "$log"
  fi
  rm -f "$log"
done
exit $status
