//! The in-process cost of one request: a fresh instance of the C hello component from its
//! pre-instance, one call to `wasi:http/incoming-handler.handle` with a real `wasi:http`
//! request, its response body read, and the store dropped — the path `http.rs`'s `run_guest`
//! takes, minus the sockets and hyper.
//!
//! `cargo bench -p boson --bench instantiate` (bench/run.sh runs it and reads criterion's
//! `estimates.json`). Two measures: one thread alone, and one loop per core at once (each
//! iteration's time as one thread sees it while every core is busy). Then where one thread's
//! time goes: four more measures (`phase_*`) run the same loop and count only one phase of each
//! request — the store, instantiation, the call, the drop ([`Phase`]).
//!
//! The component is `$BOSON_BENCH_WASM`, else `<guests dir>/c/hello.wasm` as
//! tests/guests/build.sh writes it; the criterion group is named `<folder>_<file stem>` after it
//! (`c_hello`, `python_hello`). The runtime is built from `boson up`'s own flag defaults, and
//! logs as `boson up --quiet` does.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use boson::app::{AppLocation, resolve};
use boson::cli::{Cli, Command};
use boson::runtime::{Backends, Follow, HandlerPre, LoadedComponent, Runtime};
use bytes::Bytes;
use clap::Parser as _;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt as _, Empty};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};

/// A runtime with the hello component loaded, as `boson up --from hello.wasm` would have it.
struct Loaded {
    runtime: Arc<Runtime>,
    component: Arc<LoadedComponent>,
    _dirs: tempfile::TempDir,
    _logs: Option<boson::log_writer::LogGuard<std::io::Stderr>>,
}

fn hello_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os("BOSON_BENCH_WASM") {
        return path.into();
    }
    let guests = std::env::var_os("BOSON_GUESTS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/boson/guests"),
        PathBuf::from,
    );
    guests.join("c/hello.wasm")
}

fn load() -> anyhow::Result<Loaded> {
    let wasm = hello_wasm();
    if !wasm.is_file() {
        bail!(
            "{} is missing — run tests/guests/build.sh, or set BOSON_BENCH_WASM",
            wasm.display()
        );
    }
    let dirs = tempfile::tempdir()?;
    let cli = Cli::try_parse_from([
        "boson".as_ref(),
        "up".as_ref(),
        "--quiet".as_ref(),
        "--from".as_ref(),
        wasm.as_os_str(),
        "--state-dir".as_ref(),
        dirs.path().join("state").as_os_str(),
        "--cache-dir".as_ref(),
        dirs.path().join("cache").as_os_str(),
    ])?;
    // The server's own log subscriber (bench/run.sh starts `boson up --quiet`): with none, every
    // span the WASI bindings open on a host call is offered to the `log` crate instead, a cost
    // the server does not pay.
    let logs = boson::cli::init_logging(&cli);
    let Command::Up(args) = cli.command else {
        unreachable!("parsed `boson up`")
    };
    let (resolve_options, engine_options) = args.options()?;
    let location = AppLocation::find(args.from.as_deref())?;
    let app = tokio::runtime::Builder::new_current_thread()
        .build()?
        .block_on(resolve(&location, &resolve_options))?;
    let runtime = Runtime::new(&engine_options)?;
    let components = runtime.load_components(&app, &Follow::None, &Backends::default())?;
    let component = components
        .into_values()
        .next()
        .context("the app has no component")?;
    Ok(Loaded {
        runtime: Arc::new(runtime),
        component,
        _dirs: dirs,
        _logs: logs,
    })
}

/// The phases of one request, in order.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// A pool slot, the store, the request and the response outparam.
    Store,
    /// `instantiate_async` from the pre-instance.
    Instantiate,
    /// `handle`, then the response and its body read.
    Call,
    /// The store dropped (the instance's memory and tables reset) and the slot given back.
    Drop,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Store, Phase::Instantiate, Phase::Call, Phase::Drop];

    fn id(self) -> &'static str {
        match self {
            Phase::Store => "phase_store",
            Phase::Instantiate => "phase_instantiate",
            Phase::Call => "phase_call",
            Phase::Drop => "phase_drop",
        }
    }
}

/// A stopwatch for one phase: it adds up the time from each [`Laps::lap`] call to the next that
/// ends that phase (the first phase counts from the previous request's end). With none, it
/// reads no clock.
struct Laps {
    phase: Option<Phase>,
    last: Instant,
    total: Duration,
}

impl Laps {
    fn new(phase: Option<Phase>) -> Self {
        Self {
            phase,
            last: Instant::now(),
            total: Duration::ZERO,
        }
    }

    /// Marks the end of `ended`.
    fn lap(&mut self, ended: Phase) {
        if let Some(phase) = self.phase {
            let now = Instant::now();
            if phase == ended {
                self.total += now - self.last;
            }
            self.last = now;
        }
    }
}

/// One request, as `run_guest` serves it: a pool slot, a store, the request and response
/// resources, instantiate, call, then the response and its body, and everything dropped.
async fn one_request(
    runtime: &Runtime,
    component: &LoadedComponent,
    laps: &mut Laps,
) -> anyhow::Result<()> {
    let Some(HandlerPre::P2(pre)) = &component.http else {
        bail!("the component does not export wasi:http/incoming-handler@0.2");
    };
    let slot = runtime
        .admission
        .admit()
        .await
        .map_err(|failure| anyhow!(failure.cause))?;
    let mut store = component.new_store()?;
    let request = http::Request::get("http://127.0.0.1:3000/")
        .header(http::header::HOST, "127.0.0.1:3000")
        .header("spin-full-url", "http://127.0.0.1:3000/")
        .header("spin-path-info", "/")
        .body(Empty::<Bytes>::new().map_err(|never| -> ErrorCode { match never {} }))?;
    let incoming = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let out = store
        .data_mut()
        .http()
        .new_response_outparam_from_callback(move |result| {
            _ = tx.send(result);
        })?;
    laps.lap(Phase::Store);
    let proxy = pre.instantiate_async(&mut store).await?;
    laps.lap(Phase::Instantiate);
    proxy
        .wasi_http_incoming_handler()
        .call_handle(&mut store, incoming, out)
        .await?;
    let response = rx
        .await
        .context("the guest sent no response")?
        .map_err(|code| anyhow!("guest returned error {code:?}"))?;
    if response.status() != http::StatusCode::OK {
        bail!("status {}", response.status());
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|code| anyhow!("reading the body: {code:?}"))?;
    std::hint::black_box(body.to_bytes());
    laps.lap(Phase::Call);
    drop(store);
    drop(slot);
    laps.lap(Phase::Drop);
    Ok(())
}

/// Runs `iters` requests back to back on a single-threaded tokio runtime; their wall time, or
/// with `phase` the time spent in that phase alone. With `start`, the clock starts once every
/// loop sharing the barrier is ready.
fn run_loop(
    loaded: &Loaded,
    iters: u64,
    start: Option<&Barrier>,
    phase: Option<Phase>,
) -> Duration {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Some(barrier) = start {
        barrier.wait();
    }
    rt.block_on(async {
        let mut laps = Laps::new(phase);
        let start = Instant::now();
        for _ in 0..iters {
            one_request(&loaded.runtime, &loaded.component, &mut laps)
                .await
                .expect("one request");
        }
        match phase {
            Some(_) => laps.total,
            None => start.elapsed(),
        }
    })
}

fn instantiate(c: &mut Criterion) {
    let loaded = load().expect("loading the component");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut group = c.benchmark_group(group_name(&hello_wasm()));
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));

    group.bench_function("one_thread", |b| {
        b.iter_custom(|iters| run_loop(&loaded, iters, None, None))
    });

    // One loop per core, started together; the time of the slowest loop over its `iters`
    // requests is each request's time while all cores are busy.
    group.bench_function("all_cores", |b| {
        b.iter_custom(|iters| {
            let start = Barrier::new(cores);
            std::thread::scope(|s| {
                let loops: Vec<_> = (0..cores)
                    .map(|_| s.spawn(|| run_loop(&loaded, iters, Some(&start), None)))
                    .collect();
                loops
                    .into_iter()
                    .map(|l| l.join().expect("a request loop"))
                    .max()
                    .unwrap_or_default()
            })
        })
    });

    for phase in Phase::ALL {
        group.bench_function(phase.id(), |b| {
            b.iter_custom(|iters| run_loop(&loaded, iters, None, Some(phase)))
        });
    }
    group.finish();
}

/// `<folder>_<file stem>` of the component's path: `c_hello` for `<guests>/c/hello.wasm`.
fn group_name(wasm: &std::path::Path) -> String {
    let part = |p: Option<&std::ffi::OsStr>| {
        p.map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    };
    let folder = part(wasm.parent().and_then(|p| p.file_name()));
    format!("{folder}_{}", part(wasm.file_stem()))
}

criterion_group!(benches, instantiate);
criterion_main!(benches);
