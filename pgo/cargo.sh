#!/usr/bin/env bash
# Runs cargo with Boson's execution profile: rustc optimises the release build for the paths
# pgo/train.sh exercised (profile-guided optimisation: hot branches laid out straight, hot
# calls inlined, cold code kept aside). The profile, pgo/boson.profdata.xz, is made by
# pgo/generate.sh; it is sparse, so code the workload never ran is optimised as without it.
# A profile older than the code still applies to every function that has not changed since.
# The binaries keep their relocations (`--emit-relocs`), so pgo/bolt.sh can then lay out their
# code by how it runs; that changes no instruction, only adds sections.
#
#   bash pgo/cargo.sh build --release -p boson
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PACKED=$ROOT/pgo/boson.profdata.xz
# Unpacked once per profile, named by its hash: a new profile is a new RUSTFLAGS, so cargo
# rebuilds what it optimised.
PROFILE=$TARGET/pgo/boson-$(sha256sum "$PACKED" | cut -c1-16).profdata
if [ ! -f "$PROFILE" ]; then
  command -v xz >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xz-utils >/dev/null; }
  mkdir -p "$TARGET/pgo"
  xz -dc "$PACKED" >"$PROFILE.tmp"
  mv "$PROFILE.tmp" "$PROFILE"
fi
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C link-arg=-Wl,--emit-relocs -Cprofile-use=$PROFILE"
exec cargo "$@"
