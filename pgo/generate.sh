#!/usr/bin/env bash
# Makes pgo/boson.profdata.xz, the execution profile pgo/cargo.sh builds release Boson with:
# builds an instrumented boson (its own target dir), runs pgo/train.sh against it, merges the
# counters into a sparse profile and packs it, and writes where it came from to
# pgo/profile.txt. Run it, and commit both files, after a change to the request path or a
# Wasmtime bump; a stale profile loses only the functions that changed. About 30 minutes on
# 2 cores from nothing, most of it the instrumented build.
#
#   bash pgo/generate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}
INSTRUMENTED=${PGO_TARGET_DIR:-$HOME/.cache/boson/target-pgo-generate}

# The profile's format is LLVM's: merge it with the llvm-profdata of rustc's LLVM.
LLVM=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
PROFDATA=/usr/lib/llvm-$LLVM/bin/llvm-profdata
[ -x "$PROFDATA" ] ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "llvm-$LLVM" >/dev/null; }

bash tests/guests/install-toolchains.sh >/dev/null
bash tests/guests/build.sh >/dev/null
RAW=$(mktemp -d)
trap 'rm -rf "$RAW"' EXIT
# The build scripts and proc macros are instrumented too; their counts go aside, not into the
# checkout.
LLVM_PROFILE_FILE="$RAW/build/%m.profraw" RUSTFLAGS=-Cprofile-generate CARGO_TARGET_DIR=$INSTRUMENTED \
  cargo build --release --locked -p boson
cargo build --release --locked -p native-hello
LLVM_PROFILE_FILE="$RAW/boson-%m.profraw" \
  bash pgo/train.sh "$INSTRUMENTED/release/boson" "$CARGO_TARGET_DIR/release/native-hello"
"$PROFDATA" merge --sparse -o "$RAW/boson.profdata" "$RAW"/*.profraw
xz -9e -T1 -c "$RAW/boson.profdata" >pgo/boson.profdata.xz
{
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates || echo ' (with uncommitted changes)')"
  echo "made: $(date -u +%Y-%m-%d)"
  echo "rustc: $(rustc -V)"
  echo "wasmtime: $(grep -A1 '^name = "wasmtime"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')"
  echo "machine: $(nproc) cores, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)"
  "$PROFDATA" show "$RAW/boson.profdata" | sed -n 's/^Total functions: /functions: /p'
} >pgo/profile.txt
cat pgo/profile.txt
