#!/usr/bin/env bash
# Builds Boson's test guests from source.
#
#   tests/guests/build.sh            # runs install-toolchains.sh first, then builds
#
# Output: ${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}/
#   c/hello.wasm  c/hello-0.2.0.wasm  c/guest.wasm  c/wasip1-command.wasm
#   python/hello.wasm  python/guest.wasm  python/p3-hello.wasm
#   js/hello.wasm  js/guest.wasm
#   rust/hello.wasm
#
# Each output is cached by content: sha256 over its sources, the WIT it uses, this script and
# the tool versions is stored next to it as <out>.sha256src; an unchanged guest is not rebuilt.
# Prints one line per guest ("built" / "cached"); exits non-zero if any guest fails (its log
# is printed and kept under <out dir>/logs/).
#
# Environment:
#   BOSON_GUESTS_DIR        output directory (default $HOME/.cache/boson/guests)
#   BOSON_TOOLS_DIR         toolchain cache (default $HOME/.cache/boson/tools)
#   BOSON_SKIP_INSTALL=1    do not run install-toolchains.sh (it must have run before)
#   BOSON_BUILD_JOBS=N      guests built in parallel (default: number of cores)
#   BOSON_BUILD_SPIN_SDK_P3=1  also build python/p3-hello-spin-sdk.wasm (spin-sdk 5's own world)
#   BOSON_FORCE_REBUILD=1   ignore the cache
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}
TOOLS=${BOSON_TOOLS_DIR:-$HOME/.cache/boson/tools}
JOBS=${BOSON_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ "${BOSON_SKIP_INSTALL:-}" != 1 ]; then
  BOSON_TOOLS_DIR="$TOOLS" "$HERE/install-toolchains.sh" || { echo "build.sh: ERROR: install-toolchains.sh failed" >&2; exit 1; }
fi
[ -f "$TOOLS/env.sh" ] || { echo "build.sh: ERROR: $TOOLS/env.sh missing: run tests/guests/install-toolchains.sh" >&2; exit 1; }
# shellcheck source=/dev/null
. "$TOOLS/env.sh"

mkdir -p "$OUT/c" "$OUT/python" "$OUT/js" "$OUT/rust" "$OUT/logs"
STATUS_DIR=$(mktemp -d)
trap 'rm -rf "$STATUS_DIR"' EXIT

SCRIPT_HASH=$(sha256sum "$HERE/build.sh" | cut -d' ' -f1)
WIT_STAMP=$(cat "$TOOLS/wit.stamp")

# hash_inputs FILE_OR_DIR... : sha256 of the named files (directories: all files in them, sorted,
# ignoring __pycache__), the tool versions, the WIT stamp and this script.
hash_inputs() {
  {
    echo "$BOSON_TOOL_VERSIONS"
    echo "$WIT_STAMP"
    echo "$SCRIPT_HASH"
    local f
    for f in "$@"; do
      if [ -d "$f" ]; then
        find "$f" -type f -not -path '*/__pycache__/*' | LC_ALL=C sort | while read -r g; do
          echo "== ${g#"$HERE"/}"; cat "$g"
        done
      else
        echo "== ${f#"$HERE"/}"; cat "$f"
      fi
    done
  } | sha256sum | cut -d' ' -f1
}

# ---------------------------------------------------------------- recipes (run in a subshell;
# they get $out = final path, $tmp = scratch dir, write "$tmp/out.wasm")

# ADAPTER "none": no wasip1 adapter (the core module must not import wasi_snapshot_preview1, or
# `component new` fails); the component then imports only what the C code uses, at the WIT's
# version (the 48.x adapters would bring WASI 0.2.12 imports along).
recipe_c_component() { # WIT_DIR WORLD_NAME(proxy-app|guest-app) ADAPTER(proxy|reactor|none) SOURCE [CFLAGS...]
  local wit=$1 world=$2 adapter=$3 src=$4 gen="$tmp/gen" hdr=${2//-/_}; shift 4
  local adapt=()
  [ "$adapter" = none ] || adapt=(--adapt "wasi_snapshot_preview1=$BOSON_ADAPTER_DIR/wasi_snapshot_preview1.$adapter.wasm")
  wit-bindgen c "$wit" --world "local:guest/$world" --out-dir "$gen"
  clang-16 --target=wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror "$@" -I"$gen" \
    "$src" "$gen/$hdr.c" "$gen/${hdr}_component_type.o" -o "$tmp/core.wasm"
  wasm-tools component new "$tmp/core.wasm" "${adapt[@]}" -o "$tmp/out.wasm"
  wasm-tools validate --features all "$tmp/out.wasm"
}

# Debian's rustc 1.96 (not rustup's) with -Zbuild-std; the wasip1 proxy adapter keeps the
# imports to the proxy world (without it std brings wasi:cli/wasi:filesystem along). Its own
# target dir: never the host's.
recipe_rust() { # CRATE_DIR
  local crate=$1 target_dir=${BOSON_RUST_GUEST_TARGET_DIR:-$HOME/.cache/boson/rust-guest-target}
  local name; name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$crate/Cargo.toml" | head -n1)
  (
    cd "$crate"
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" \
    RUSTFLAGS="-L native=/usr/lib/wasm32-wasi -C link-arg=--adapt -C link-arg=wasi_snapshot_preview1=$BOSON_ADAPTER_DIR/wasi_snapshot_preview1.proxy.wasm" \
      /usr/bin/cargo build --locked --release --target wasm32-wasip2 -Zbuild-std=std,panic_abort
  )
  cp "$target_dir/wasm32-wasip2/release/${name//-/_}.wasm" "$tmp/out.wasm"
  wasm-tools validate --features all "$tmp/out.wasm"
}

recipe_c_wasip1() { # SOURCE
  clang-16 --target=wasm32-wasi -O2 -s -Wall -Werror "$1" -o "$tmp/out.wasm"
}

recipe_python() { # WIT_DIR WORLD APP_DIR [EXTRA -p DIRS...]
  local wit=$1 world=$2 app=$3; shift 3
  local extra=() d
  for d in "$@"; do extra+=(-p "$d"); done
  # componentize-py writes __pycache__ into the app dir: work on a copy
  cp -r "$app" "$tmp/app"
  if [ -n "$wit" ]; then
    componentize-py -d "$wit" -w "$world" componentize -p "$tmp/app" "${extra[@]}" app -o "$tmp/out.wasm"
  else
    componentize-py -w "$world" componentize -p "$tmp/app" "${extra[@]}" app -o "$tmp/out.wasm"
  fi
}

recipe_js() { # WORLD SOURCE
  componentize-js "$2" --wit "$BOSON_WIT_0_2_10" --world-name "local:guest/$1" -o "$tmp/out.wasm"
}

# ---------------------------------------------------------------- job runner

NAMES=()
declare -A PIDS=()

# guest NAME(rel path without .wasm) RECIPE "RECIPE ARGS" INPUT...
guest() {
  local name=$1 recipe=$2 args=$3; shift 3
  NAMES+=("$name")
  local out="$OUT/$name.wasm" hash
  hash=$(hash_inputs "$@")
  if [ "${BOSON_FORCE_REBUILD:-}" != 1 ] && [ -f "$out" ] && [ "$(cat "$out.sha256src" 2>/dev/null)" = "$hash" ]; then
    echo cached > "$STATUS_DIR/${name//\//_}"
    return 0
  fi
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
  (
    set -euo pipefail
    log="$OUT/logs/${name//\//_}.log"
    tmp=$(mktemp -d)
    start=$(date +%s)
    # not inside `if`: there bash would ignore `set -e` in the recipe
    set +e
    ( set -euxo pipefail; cd "$tmp"; eval "$recipe $args" ) >"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 0 ] && [ -s "$tmp/out.wasm" ]; then
      mkdir -p "$(dirname "$out")"
      mv "$tmp/out.wasm" "$out.tmp" && mv "$out.tmp" "$out"
      echo "$hash" > "$out.sha256src"
      echo "built ($(( $(date +%s) - start ))s)" > "$STATUS_DIR/${name//\//_}"
    else
      rm -f "$out.sha256src"
      echo "FAILED (log: $log)" > "$STATUS_DIR/${name//\//_}"
    fi
    rm -rf "$tmp"
  ) &
  PIDS[$name]=$!
}

C="$HERE/c" PY="$HERE/python" JS="$HERE/js" RS="$HERE/rust"

# slow ones first so they overlap with the rest
guest rust/hello       recipe_rust        "\"$RS/hello\"" "$RS/hello/Cargo.toml" "$RS/hello/Cargo.lock" "$RS/hello/src"
guest python/guest  recipe_python "\"\$BOSON_WIT_0_2_12\" local:guest/guest-app \"$PY/guest\"" "$PY/guest"
guest js/guest      recipe_js     "guest-app-fs \"$JS/guest.js\"" "$JS/guest.js"
guest python/hello  recipe_python "\"\$BOSON_WIT_0_2_12\" local:guest/proxy-app \"$PY/hello\"" "$PY/hello"
guest js/hello      recipe_js     "proxy-app \"$JS/hello.js\"" "$JS/hello.js"
guest python/p3-hello recipe_python "\"\$BOSON_WIT_0_3_0\" local:guest-p3/p3-app \"$PY/p3-hello\"" "$PY/p3-hello"
if [ "${BOSON_BUILD_SPIN_SDK_P3:-}" = 1 ]; then
  guest python/p3-hello-spin-sdk recipe_python "\"\" spin:up/http-trigger@4.1.0 \"$PY/p3-hello-spin-sdk\" \"\$BOSON_SPIN_SDK_DIR\"" \
    "$PY/p3-hello-spin-sdk"
fi
guest c/hello          recipe_c_component "\"\$BOSON_WIT_0_2_12\" proxy-app proxy \"$C/hello.c\"" "$C/hello.c"
guest c/hello-0.2.0    recipe_c_component "\"\$BOSON_WIT_0_2_0\" proxy-app none \"$C/hello.c\" -DHELLO_WASI_HTTP_0_2_0" "$C/hello.c"
guest c/guest          recipe_c_component "\"\$BOSON_WIT_0_2_12\" guest-app reactor \"$C/guest.c\"" "$C/guest.c"
guest c/wasip1-command recipe_c_wasip1    "\"$C/wasip1-command.c\"" "$C/wasip1-command.c"

wait || true

failed=0
for name in "${NAMES[@]}"; do
  status=$(cat "$STATUS_DIR/${name//\//_}" 2>/dev/null || echo "FAILED (no status)")
  printf '%-28s %s\n' "$name" "$status"
  case $status in
    FAILED*) failed=1 ;;
  esac
done
if ((failed)); then
  for name in "${NAMES[@]}"; do
    if grep -q '^FAILED' "$STATUS_DIR/${name//\//_}" 2>/dev/null; then
      echo "---- $name: last lines of $OUT/logs/${name//\//_}.log" >&2
      tail -n 30 "$OUT/logs/${name//\//_}.log" >&2 || true
    fi
  done
  echo "build.sh: ERROR: some guests failed to build" >&2
  exit 1
fi
echo "guests in $OUT"
