#!/usr/bin/env bash
# Boson's benchmark suite: one command, writes docs/BENCHMARKS.md.
#
# Peers: the same hello-world components served by Boson (defaults) and by `wasmtime serve`
# (wasmtime-cli 48.0.8, the CLI's newest 48.x release), and a native hyper server
# (bench/native-hello) as the floor. Measures, in this order:
#   1. in-process cost of one request (criterion: crates/boson/benches/instantiate.rs), and
#      where it goes (store, instantiate, call, drop) for the C and Python hellos;
#   2. throughput and latency (wrk on loopback, bench/percentiles.lua for p99.9): fixed
#      duration, connection counts, a 1 s warm-up excluded, the median of several runs and its
#      ratio to the native server in this run — for C and Rust hellos, and (fewer connection
#      counts) Python (componentize-py) and JavaScript (componentize-js) hellos;
#   3. CPU per request at a fixed rate (bench/load) for Boson, wasmtime serve and native;
#      2 and 3 also measure Boson serving a static response: its HTTP path with no guest, which
#      splits Boson's distance from native into the HTTP path's share and the guest's;
#   6. outbound HTTP: a component that fetches a page of native-hello for each request, served by
#      Boson (connections kept, and not) and by `wasmtime serve`;
#   4. memory: RSS of the example app idle, peak RSS of the C hello server over the loads;
#   5. cold start (bench/probe.py): new process to first 200 with an empty and a warm compile
#      cache; the first request to a component that has not run yet in a running process;
#      the first request to the Python and JavaScript hellos once `boson up` says `Serving`.
# The results go to a key=value file that bench/report.py turns into docs/BENCHMARKS.md.
#
# Installs what it needs on a fresh machine (wrk from Debian, wasmtime-cli from crates.io into
# ~/.cache/boson/tools — about 15 minutes once; the guest toolchains). Knobs: BENCH_DURATION (s,
# default 5), BENCH_RUNS (default 3), BENCH_CONNECTIONS (default "1 16 64 256"),
# BENCH_CONNECTIONS_INTERPRETED (default "16 64"), BENCH_RATE (req/s, default 5000),
# BENCH_SAMPLES (fresh processes per start-up probe, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/boson/target}"
TOOLS=${BOSON_TOOLS_DIR:-$HOME/.cache/boson/tools}
GUESTS=${BOSON_GUESTS_DIR:-$HOME/.cache/boson/guests}
DURATION=${BENCH_DURATION:-5}
RUNS=${BENCH_RUNS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-"1 16 64 256"}
CONNECTIONS_INTERPRETED=${BENCH_CONNECTIONS_INTERPRETED:-"16 64"}
RATE=${BENCH_RATE:-5000}
CPU_SECONDS=10
SAMPLES=${BENCH_SAMPLES:-10}
# The newest 48.x wasmtime-cli on crates.io. Boson's wasmtime is 48.0.10: its patch releases
# since 48.0.8 add checks (component-model async, memory growth, export lookup), no speed work.
WASMTIME_VERSION=48.0.8
WORK=$(mktemp -d)
RESULTS=$WORK/results
CACHE=$WORK/cache
. bench/lib.sh
trap 'stop_all; rm -rf "$WORK"' EXIT
STARTED=$(date +%s)
put load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- tools and builds
need_wrk
# Built with Wasmtime's own `fastest-runtime` profile (fat LTO, one codegen unit), as Boson is
# built with fat LTO: the peer at its best.
WASMTIME_PROFILE=fastest-runtime
WASMTIME="$TOOLS/wasmtime-cli-$WASMTIME_PROFILE/bin/wasmtime"
if ! "$WASMTIME" --version 2>/dev/null | grep -q "$WASMTIME_VERSION"; then
  log "cargo install wasmtime-cli $WASMTIME_VERSION (once; ~15 minutes on 2 cores)"
  cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --profile "$WASMTIME_PROFILE" \
    --root "$TOOLS/wasmtime-cli-$WASMTIME_PROFILE" \
    --no-default-features \
    --features "run,serve,component-model,component-model-async,wasi-http,pooling-allocator,cranelift,parallel-compilation,cache"
fi
bash tests/guests/install-toolchains.sh >/dev/null
bash tests/guests/build.sh >/dev/null
# Boson and its criterion bench as they ship, with the execution profile (pgo/cargo.sh), and
# Boson's code laid out by how it runs (pgo/bolt.sh); the native server and the load generator
# without either. The bench's build makes a boson binary of its own (with the features its
# dev-dependencies turn on) and copies it to release/boson; the shipped build runs after it so
# that release/boson is the one `cargo build` makes, as scripts/serve-example.sh does.
cargo build --release --locked -p native-hello -p load
bash pgo/cargo.sh bench --locked -p boson --bench instantiate --no-run
bash pgo/cargo.sh build --release --locked -p boson
BOSON=$(bash pgo/bolt.sh "$CARGO_TARGET_DIR/release/boson")
NATIVE="$CARGO_TARGET_DIR/release/native-hello"
LOAD="$CARGO_TARGET_DIR/release/load"
MEASURING=$(date +%s)
declare -A HELLO=([c]="$GUESTS/c/hello.wasm" [rust]="$GUESTS/rust/hello.wasm"
  [python]="$GUESTS/python/hello.wasm" [js]="$GUESTS/js/hello.wasm")

# ---- 1. in-process cost of one request (criterion)
# criterion_put LANG ID...: criterion's median and its interval (ns) for <LANG>_hello/<ID>
criterion_put() {
  local lang=$1 id estimates; shift
  for id in "$@"; do
    estimates="$CARGO_TARGET_DIR/criterion/${lang}_hello/$id/new/estimates.json"
    put "criterion.$lang.$id" "$(python3 -c 'import json,sys; m = json.load(open(sys.argv[1]))["median"]; print(m["point_estimate"], m["confidence_interval"]["lower_bound"], m["confidence_interval"]["upper_bound"])' "$estimates")"
  done
}
PHASES="phase_store phase_instantiate phase_call phase_drop"
log "criterion: instantiate + call + drop, C hello, and the phases of the C and Python hellos"
BOSON_BENCH_WASM=${HELLO[c]} bash pgo/cargo.sh bench --locked -p boson --bench instantiate >"$WORK/criterion.log" 2>&1 ||
  { cat "$WORK/criterion.log" >&2; exit 1; }
# shellcheck disable=SC2086 # PHASES is a list of words
criterion_put c one_thread all_cores $PHASES
BOSON_BENCH_WASM=${HELLO[python]} bash pgo/cargo.sh bench --locked -p boson --bench instantiate -- \
  'python_hello/(one_thread|phase_)' >"$WORK/criterion-python.log" 2>&1 ||
  { cat "$WORK/criterion-python.log" >&2; exit 1; }
# shellcheck disable=SC2086
criterion_put python one_thread $PHASES

# ---- 2. throughput and latency
log "throughput: compiled hellos at $CONNECTIONS connections, interpreted at $CONNECTIONS_INTERPRETED"
start_serving native "$NATIVE"
NATIVE_ADDR=$ADDR; NATIVE_PID=$LAST_PID
mkdir -p "$WORK/static"
printf '%s\n' 'spin_manifest_version = 2' '[application]' 'name = "static"' '[[trigger.http]]' \
  'route = "/..."' 'static_response = { status_code = 200, body = "Hello from static!" }' \
  >"$WORK/static/spin.toml"
start_serving boson-static "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$WORK/static" \
  --cache-dir "$CACHE" --state-dir "$WORK/state-static"
STATIC_ADDR=$ADDR; STATIC_PID=$LAST_PID
declare -A BOSON_ADDR BOSON_PID WT_ADDR WT_PID
for lang in c rust python js; do
  start_serving "boson-$lang" "$BOSON" up --quiet --listen 127.0.0.1:0 --from "${HELLO[$lang]}" \
    --cache-dir "$CACHE" --state-dir "$WORK/state-$lang"
  BOSON_ADDR[$lang]=$ADDR; BOSON_PID[$lang]=$LAST_PID
  # componentize-py and componentize-js output imports wasi:cli, which `wasmtime serve` links
  # only with -S cli; the compiled hellos need nothing but its defaults.
  cli=(); case $lang in python | js) cli=(-S cli) ;; esac
  start_wasmtime "wasmtime-$lang" "${HELLO[$lang]}" "${cli[@]}"
  WT_ADDR[$lang]=$ADDR; WT_PID[$lang]=$LAST_PID
done
for c in $CONNECTIONS; do
  measure_load "load.native.$c" "http://$NATIVE_ADDR/" "$c"
  # The guest-free path at the interpreted hellos' counts only, to keep the suite's time.
  case " $CONNECTIONS_INTERPRETED " in
    *" $c "*) measure_load "load.boson-static.$c" "http://$STATIC_ADDR/" "$c" ;;
  esac
  for lang in c rust; do
    measure_load "load.wasmtime-$lang.$c" "http://${WT_ADDR[$lang]}/" "$c"
    measure_load "load.boson-$lang.$c" "http://${BOSON_ADDR[$lang]}/" "$c"
  done
done
for c in $CONNECTIONS_INTERPRETED; do
  for lang in python js; do
    measure_load "load.wasmtime-$lang.$c" "http://${WT_ADDR[$lang]}/" "$c"
    measure_load "load.boson-$lang.$c" "http://${BOSON_ADDR[$lang]}/" "$c"
  done
done
put rss.peak_kib "$(awk '/VmHWM/ {print $2}' "/proc/${BOSON_PID[c]}/status")"

# ---- 3. CPU per request at a fixed rate
log "CPU per request at $RATE req/s"
measure_cpu cpu.native "$NATIVE_PID" "http://$NATIVE_ADDR/"
measure_cpu cpu.wasmtime "${WT_PID[c]}" "http://${WT_ADDR[c]}/"
measure_cpu cpu.boson "${BOSON_PID[c]}" "http://${BOSON_ADDR[c]}/"
measure_cpu cpu.boson-static "$STATIC_PID" "http://$STATIC_ADDR/"
stop_all; PIDS=()

# ---- 6. outbound HTTP: the C test guest's /outbound fetches native-hello's page
log "outbound HTTP at $CONNECTIONS_INTERPRETED connections"
PROXY_WASM=$GUESTS/c/guest.wasm
start_serving upstream "$NATIVE"
UPSTREAM=$ADDR
proxy_app "$WORK/proxy" "$PROXY_WASM" "$UPSTREAM"
start_serving boson-proxy "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$WORK/proxy" --cache-dir "$CACHE"
BOSON_PROXY=$ADDR
# The same app with `[outbound_http] connection_pooling = false`: a connection per request.
printf '[outbound_http]\nconnection_pooling = false\n' >"$WORK/proxy/unpooled.toml"
start_serving boson-unpooled "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$WORK/proxy" \
  --cache-dir "$CACHE" --runtime-config-file "$WORK/proxy/unpooled.toml"
BOSON_UNPOOLED=$ADDR
# The test guest imports wasi:cli (it reads its environment), which `wasmtime serve` links only
# with -S cli; outbound HTTP is on by default there.
start_wasmtime wasmtime-proxy "$PROXY_WASM" -S cli
WT_PROXY=$ADDR
export BENCH_HEADER="x-target-url: http://$UPSTREAM/"
for server in "$BOSON_PROXY" "$BOSON_UNPOOLED" "$WT_PROXY"; do
  curl -sf -H "$BENCH_HEADER" "http://$server/outbound" | grep -q 'Hello from native' ||
    { log "the proxy at $server does not answer"; exit 1; }
done
for c in $CONNECTIONS_INTERPRETED; do
  measure_load "outbound.wasmtime.$c" "http://$WT_PROXY/outbound" "$c"
  measure_load "outbound.unpooled.$c" "http://$BOSON_UNPOOLED/outbound" "$c"
  measure_load "outbound.boson.$c" "http://$BOSON_PROXY/outbound" "$c"
done
unset BENCH_HEADER
stop_all; PIDS=()

# ---- 4. memory of the example app, idle
log "memory: examples/hello idle"
cp -r examples/hello "$WORK/example"
cp "${HELLO[c]}" "$WORK/example/hello.wasm"
start_serving example "$BOSON" up --quiet --listen 127.0.0.1:0 --from "$WORK/example" --cache-dir "$CACHE"
curl -sf -o /dev/null "http://$ADDR/hello"
sleep 2   # the memory trimmer runs every second after a request
put rss.idle_kib "$(awk '/VmRSS/ {print $2}' "/proc/$LAST_PID/status")"
stop_all; PIDS=()

# ---- 5. start-up
log "cold start: $SAMPLES fresh processes per probe"
put_probe cold.empty "$(python3 bench/probe.py cold-start "$BOSON" "${HELLO[c]}" "$WORK/empty" "$SAMPLES" --empty-cache)"
put_probe cold.warm "$(python3 bench/probe.py cold-start "$BOSON" "${HELLO[c]}" "$CACHE" "$SAMPLES")"
# Two components from the same C hello (different ids): `first` has served, `second` has not.
mkdir -p "$WORK/two"
cp "${HELLO[c]}" "$WORK/two/hello.wasm"
cat >"$WORK/two/spin.toml" <<'EOF'
spin_manifest_version = 2
[application]
name = "two"
[[trigger.http]]
route = "/first"
component = "first"
[[trigger.http]]
route = "/second"
component = "second"
[component.first]
source = "hello.wasm"
[component.second]
source = "hello.wasm"
EOF
put_probe not_yet_run "$(python3 bench/probe.py first-request "$BOSON" "$WORK/two" "$CACHE" "$((SAMPLES * 2))" /first /second)"
for lang in python js; do   # their compiled code is in $CACHE since step 2
  put_probe "ready.$lang" "$(python3 bench/probe.py after-ready "$BOSON" "${HELLO[$lang]}" "$CACHE" "$SAMPLES" /)"
done

# ---- report
put date "$(date -u +%Y-%m-%d)"
put cpu_model "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
put cores "$(nproc)"
put mem_gib "$(free -g | awk '/Mem:/ {print $2}')"
put swap "$(awk 'NR > 1 {print $1}' /proc/swaps | paste -sd, -)"
put boson_version "$("$BOSON" --version | cut -d' ' -f2-)"
put boson_bolt "$([ "${BOSON%-bolt}" != "$BOSON" ] && echo yes || echo no)"
put wasmtime_version "$("$WASMTIME" --version)"
put wasmtime_profile "$WASMTIME_PROFILE"
put wrk_version "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
put rustc_version "$(rustc --version | cut -d' ' -f2)"
put load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
put duration "$DURATION"; put runs "$RUNS"; put rate "$RATE"; put cpu_seconds "$CPU_SECONDS"
put samples "$SAMPLES"; put connections "$CONNECTIONS"; put connections_interpreted "$CONNECTIONS_INTERPRETED"
put elapsed_s "$(( $(date +%s) - STARTED ))"
put measuring_s "$(( $(date +%s) - MEASURING ))"
# Kept, so a change to report.py can be tried on this run's figures.
cp "$RESULTS" "$CARGO_TARGET_DIR/bench-results.txt"
python3 bench/report.py "$RESULTS" >docs/BENCHMARKS.md
log "wrote docs/BENCHMARKS.md in $(( $(date +%s) - STARTED )) s"
