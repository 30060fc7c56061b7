//! The runtime: Wasmtime engines (pooling allocator, copy-on-write memory, epoch deadlines),
//! their linkers with every host interface, and each component compiled once — or loaded from
//! the on-disk cache of compiled code — and pre-instantiated.
//!
//! Two engines, because Wasmtime's support for the component model's concurrency costs every
//! call into and out of a guest some bookkeeping (about a fifth of a hello world's instructions)
//! whether the guest uses it or not: the plain engine serves components that do not (every WASI
//! 0.2 component), the concurrent engine, built when the first component needs it, serves the
//! rest (WASI 0.3, Spin SDK 5).

use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sha2::{Digest as _, Sha256};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, ResourceType};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

use crate::app::{ResolvedApp, ResolvedComponent};
use crate::capability::key_value::KeyValue;
use crate::capability::mqtt::MqttConnections;
use crate::capability::rdbms::RdbmsConnections;
use crate::capability::redis::RedisConnections;
use crate::capability::sqlite::Sqlite;
use crate::guest_threads::{GuestThreads, Placement};
use crate::host::{GuestLogs, HostState};
use crate::ready::ReadyState;

/// How often the epoch ticks; request deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Use the pooling allocator (the default); off means on-demand allocation.
    pub pooling: bool,
    /// Component instances the pool holds (concurrent requests across all components).
    pub pool_instances: u32,
    /// The largest memory any component may grow to (the pool reserves this per slot).
    pub max_memory: usize,
    /// Where compiled code is cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of each pooled memory and table reset in place (memset) and kept resident between
    /// instances instead of being returned to the system: faster reuse, more resident memory.
    pub keep_resident: usize,
    /// How long a request may wait for a free instance slot before it gets 503.
    pub queue_timeout: Duration,
    /// How many requests may wait for a slot at once; beyond, they get 503 at once.
    pub max_queued: usize,
    /// Instances built ahead of their request ([`crate::ready`]), at most
    /// [`crate::ready::PER_THREAD`] per connection thread: the pool holds this many slots beyond
    /// `pool_instances`. 0 turns them off.
    pub ready_instances: u32,
}

/// A component ready to serve: its pre-instance and its sandbox description.
pub struct LoadedComponent {
    pub spec: ResolvedComponent,
    /// The component linked against every host interface; triggers wrap it in the typed
    /// pre-instance of the export they call.
    pub pre: InstancePre<HostState>,
    /// The HTTP handler, when the component exports one.
    pub http: Option<HandlerPre>,
    /// The names the component exports (for start-up errors).
    pub exports: Vec<String>,
    pub logs: GuestLogs,
    /// The key-value stores this component may open.
    pub key_value: KeyValue,
    /// The SQLite databases this component may open.
    pub sqlite: Sqlite,
    /// Outbound Redis connections, shared by the component's instances.
    pub redis: RedisConnections,
    /// Outbound PostgreSQL and MySQL connections, shared by the component's instances.
    pub rdbms: RdbmsConnections,
    /// Outbound MQTT connections, shared by the component's instances.
    pub mqtt: MqttConnections,
    /// Its outbound HTTP requests, checked against its grants, and the connections its
    /// instances keep open.
    pub outbound_http: Arc<crate::outbound::HttpClient>,
    /// Where its next guests start (see [`GuestThreads::spawn`]).
    pub placement: Placement,
    /// Its engine's pool slots for instances built ahead of their request, and whether
    /// building its instances ahead still works ([`crate::ready`]).
    pub ready: ReadyState,
}

/// The two handler shapes Boson serves.
pub enum HandlerPre {
    /// `wasi:http/incoming-handler@0.2.x`
    P2(wasmtime_wasi_http::p2::bindings::ProxyPre<HostState>),
    /// `wasi:http/handler@0.3.x`
    P3(wasmtime_wasi_http::p3::bindings::ServicePre<HostState>),
}

/// The app's opened backends (stores, databases), shared by every component that lists them.
#[derive(Clone, Default)]
pub struct Backends {
    pub key_value: BTreeMap<String, boson_kv::Store>,
    pub sqlite: BTreeMap<String, boson_sqlite::Database>,
    /// Limits on outbound database and broker connections.
    pub outbound: crate::runtime_config::OutboundConnectionsConfig,
    /// Where `http://self` requests go: the address the HTTP listener is bound to.
    pub self_origin: Option<std::net::SocketAddr>,
    /// Outbound HTTP settings (`[outbound_http]`).
    pub outbound_http: crate::runtime_config::OutboundHttpConfig,
    /// Outbound TLS settings per component and host (`[[client_tls]]`).
    pub client_tls: Arc<crate::outbound::ClientTls>,
}

/// The engines, their linkers and instance pools, admission and the guest threads: everything
/// that outlives one version of the app. `boson watch` loads each new version's components into
/// the same runtime. Each engine has a pool of `pool_instances` slots; admission bounds the
/// instances of both together.
pub struct Runtime {
    /// For components that use none of the component model's concurrency.
    plain: Flavor,
    /// For the rest; built when the first such component loads.
    concurrent: std::sync::Mutex<Option<Arc<Flavor>>>,
    options: EngineOptions,
    /// How the engines reset a finished instance's memory (decided once, at start).
    reset: MemoryReset,
    /// Admission to the instance pool.
    pub admission: Admission,
    /// Where guests run.
    pub guests: GuestThreads,
}

/// An engine and its linker.
struct Flavor {
    engine: Engine,
    linker: Linker<HostState>,
    /// Pool slots left for instances built ahead of their request (`ready_instances` free at
    /// first), shared by the engine's components.
    ready_slots: Arc<AtomicUsize>,
}

impl Flavor {
    fn new(options: &EngineOptions, concurrent: bool, reset: MemoryReset) -> anyhow::Result<Self> {
        let engine = build_engine(options, concurrent, reset)?;
        let linker = build_linker(&engine, concurrent)?;
        Ok(Self {
            engine,
            linker,
            ready_slots: Arc::new(AtomicUsize::new(options.ready_instances as usize)),
        })
    }
}

/// One version of the app's components, by id, ready to serve. Requests hold the `Arc` of the
/// component they run, so a version replaced while they run stays alive until they end.
pub type Components = BTreeMap<String, Arc<LoadedComponent>>;

/// Admission to the instance pool: at most `pool_instances` instances exist at once. A request
/// finding the pool full waits in a bounded queue for a slot, up to a timeout; when the queue is
/// full or the wait times out it fails with [`FailureKind::NoCapacity`] (503 + `Retry-After`).
pub struct Admission {
    slots: Arc<tokio::sync::Semaphore>,
    size: usize,
    /// Instances admitted so far (tells the memory trimmer whether anything ran).
    admitted: std::sync::atomic::AtomicU64,
    waiting: std::sync::atomic::AtomicUsize,
    max_queued: usize,
    timeout: Duration,
}

impl Admission {
    /// Whether no instance runs now.
    fn idle(&self) -> bool {
        self.slots.available_permits() == self.size
    }
}

impl Runtime {
    /// Gives memory freed after a burst back to the system: when instances ran since the last
    /// look and none runs now, the allocator's free pages are returned (`malloc_trim`). Without
    /// it, a burst of hundreds of requests leaves the host's RSS tens of MiB above its baseline
    /// (allocator arenas of the threads that served them). It also watches for swap turned on
    /// after start, which the engines' reset of only the written pages is not safe with
    /// ([`MemoryReset`]), and says so once.
    pub fn spawn_memory_trimmer(self: &Arc<Self>) {
        let runtime = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = 0;
            let mut swap_told = false;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(runtime) = runtime.upgrade() else {
                    return;
                };
                if runtime.reset == MemoryReset::WrittenPages
                    && !swap_told
                    && let Some(areas) = crate::swap::in_use()
                {
                    swap_told = true;
                    tracing::error!(
                        "swap was turned on after start ({areas}): a page the kernel swaps out while its instance runs is not reset when the instance ends, and the next instance in that slot can read it; restart Boson, which then resets instances' memory in full"
                    );
                }
                let admitted = runtime
                    .admission
                    .admitted
                    .load(std::sync::atomic::Ordering::Relaxed);
                if admitted != seen && runtime.admission.idle() {
                    seen = admitted;
                    let _ = tokio::task::spawn_blocking(|| {
                        // SAFETY: malloc_trim only releases free memory of the allocator.
                        unsafe { libc::malloc_trim(0) }
                    })
                    .await;
                }
            }
        });
    }
}

/// A slot in the instance pool, held for the life of one instance.
pub type InstanceSlot = tokio::sync::OwnedSemaphorePermit;

impl Admission {
    pub fn new(slots: usize, max_queued: usize, timeout: Duration) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
            size: slots.max(1),
            admitted: Default::default(),
            waiting: Default::default(),
            max_queued,
            timeout,
        }
    }

    /// A slot now, or after waiting in the queue; `NoCapacity` when the queue is full or the
    /// wait times out.
    pub async fn admit(&self) -> Result<InstanceSlot, GuestFailure> {
        use std::sync::atomic::Ordering;
        self.admitted.fetch_add(1, Ordering::Relaxed);
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let busy = |cause: String| GuestFailure {
            kind: FailureKind::NoCapacity,
            cause,
        };
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy(format!(
                "no free instance slot and {} requests already waiting",
                self.max_queued
            )));
        }
        let waited = tokio::time::timeout(self.timeout, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(slot)) => Ok(slot),
            Ok(Err(_closed)) => Err(busy("the instance pool is closed".into())),
            Err(_elapsed) => Err(busy(format!(
                "no free instance slot within {:?}",
                self.timeout
            ))),
        }
    }

    /// A slot, waiting as long as it takes (message triggers: their own concurrency limit
    /// bounds how many wait).
    pub async fn admit_patiently(&self) -> Result<InstanceSlot, GuestFailure> {
        self.admitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| GuestFailure::failed("the instance pool is closed"))
    }
}

/// How a pooled memory or table is reset when its instance ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryReset {
    /// Only the pages the instance wrote (`PAGEMAP_SCAN`, Linux 6.7+). Safe only while none of
    /// the process's pages can be swapped out: Wasmtime 48.0.10's scan does not see a written
    /// page the kernel swapped out, which keeps its contents.
    WrittenPages,
    /// The whole kept-resident part in place, the rest returned to the system.
    Whole,
}

impl MemoryReset {
    /// The name `/.well-known/boson/status` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::WrittenPages => "written-pages",
            Self::Whole => "whole",
        }
    }

    /// `WrittenPages` where the kernel has `PAGEMAP_SCAN` and cannot swap this process out
    /// ([`crate::swap::in_use`]); says why when not.
    pub fn detect() -> Self {
        if let Some(areas) = crate::swap::in_use() {
            tracing::warn!(
                "swap is on ({areas}): a finished instance's memory is reset in full, not only the pages it wrote, so no page swapped out while it ran can reach the next instance; for the faster reset run Boson where it cannot swap (swap off, or a cgroup with memory.swap.max = 0)"
            );
            return Self::Whole;
        }
        if !pagemap_scan_available() {
            tracing::info!(
                "the kernel has no PAGEMAP_SCAN (Linux 6.7+): a finished instance's memory is reset in full, not only the pages it wrote, which costs guests with large stacks or heaps more CPU per request"
            );
            return Self::Whole;
        }
        Self::WrittenPages
    }
}

/// Whether Wasmtime can reset pooled memory with `PAGEMAP_SCAN` here: Wasmtime's own probe,
/// run by building an engine with a one-slot pool that requires it.
fn pagemap_scan_available() -> bool {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(1)
        .total_core_instances(1)
        .total_memories(1)
        .total_tables(1)
        .total_stacks(1)
        .max_memory_size(1 << 16)
        .pagemap_scan(wasmtime::Enabled::Yes);
    let mut config = Config::new();
    config
        .memory_reservation(1 << 16)
        .memory_guard_size(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).is_ok()
}

/// Builds an engine, with the component model's concurrency or without; falls back to
/// on-demand allocation if the pool cannot be reserved.
pub fn build_engine(
    options: &EngineOptions,
    concurrent: bool,
    reset: MemoryReset,
) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    if concurrent {
        config.wasm_component_model_async(true);
    } else {
        config.concurrency_support(false);
    }
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .max_wasm_stack(1 << 20)
        .parallel_compilation(true);
    if options.pooling {
        let mut pool = PoolingAllocationConfig::new();
        // Admission bounds the instances that run; the instances built ahead of their request
        // have slots of their own, so one never takes a running request's.
        let n = options
            .pool_instances
            .max(1)
            .saturating_add(options.ready_instances);
        // Interpreted languages ship components with a dozen core instances and several
        // memories; size the pool so each component instance can have that many.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(16))
            .total_memories(n.saturating_mul(4))
            .total_tables(n.saturating_mul(16))
            .total_stacks(n)
            .max_memory_size(options.max_memory)
            .max_core_instance_size(8 << 20)
            .max_component_instance_size(8 << 20)
            .max_tables_per_module(16)
            .max_memories_per_module(4)
            .table_elements(100_000)
            // Reset small instances with memset instead of madvise: fewer syscalls per request.
            // Decommits are not batched: a batch waits until it is full, so after a burst of
            // big instances (memory bombs) up to a batch of whole memories stayed resident.
            // Where the kernel has PAGEMAP_SCAN (Linux 6.7+) and cannot swap the pool out,
            // reset only the pages an instance dirtied, instead of memsetting the whole
            // kept-resident prefix: a Rust guest's 1 MiB stack region would otherwise be
            // cleared in full after every request.
            .pagemap_scan(match reset {
                MemoryReset::WrittenPages => wasmtime::Enabled::Auto,
                MemoryReset::Whole => wasmtime::Enabled::No,
            })
            .linear_memory_keep_resident(options.keep_resident)
            .table_keep_resident(options.keep_resident)
            .async_stack_keep_resident(64 << 10)
            .decommit_batch_size(1);
        let mut pooled = config.clone();
        pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&pooled) {
            Ok(engine) => return Ok(start_ticker(engine)),
            Err(e) => tracing::warn!(
                "the pooling allocator could not reserve its memory ({e:#}); using on-demand allocation — lower --pool-instances or --max-memory to keep pooling"
            ),
        }
    }
    Ok(start_ticker(Engine::new(&config)?))
}

/// One thread per engine advances the epoch; it stops when the engine is dropped.
fn start_ticker(engine: Engine) -> Engine {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("boson-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
    engine
}

/// A linker with WASI 0.2 (cli, clocks, random, filesystem, sockets, io), `wasi:http` and the
/// synchronous capabilities, all backed by [`HostState`]; with `concurrent`, also WASI 0.3,
/// its `wasi:http` and the asynchronous capabilities.
pub fn build_linker(engine: &Engine, concurrent: bool) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    if concurrent {
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    }
    crate::capability::add_to_linker(&mut linker, concurrent)?;
    // Interfaces that only define the types of a trigger's export: a component imports them,
    // but there is nothing to implement.
    for name in TRIGGER_TYPE_INTERFACES {
        linker.instance(name)?;
    }
    Ok(linker)
}

/// The type-only interfaces of the triggers' exports (see `crates/boson/wit`).
const TRIGGER_TYPE_INTERFACES: [&str; 4] = [
    "fermyon:spin/redis-types",
    "spin:mqtt-trigger/spin-mqtt-types",
    "fermyon:spin-cron/cron-types@2.0.0",
    "boson:nats/types@0.1.0",
];

impl Runtime {
    /// Builds the plain engine and its linker, and sizes the instance pool.
    pub fn new(options: &EngineOptions) -> anyhow::Result<Self> {
        let reset = MemoryReset::detect();
        Ok(Self {
            plain: Flavor::new(options, false, reset)?,
            concurrent: Default::default(),
            options: options.clone(),
            reset,
            admission: Admission::new(
                options.pool_instances as usize,
                options.max_queued,
                options.queue_timeout,
            ),
            guests: GuestThreads::new()?,
        })
    }

    /// How the engines reset a finished instance's memory.
    pub fn memory_reset(&self) -> MemoryReset {
        self.reset
    }

    /// Compiles (or loads from cache) and pre-instantiates every component of `app`.
    pub fn load_components(
        &self,
        app: &ResolvedApp,
        follow: &Follow,
        backends: &Backends,
    ) -> anyhow::Result<Components> {
        let mut components = BTreeMap::new();
        let logs_dir = app.state_dir.join("logs");
        for (id, spec) in &app.components {
            let Prepared {
                pre,
                http,
                exports,
                ready_slots,
            } = self
                .prepare(&spec.wasm_path)
                .with_context(|| format!("component `{id}` ({})", spec.wasm_path.display()))?;
            let logs = GuestLogs::open(&logs_dir, id, follow.includes(id))?;
            let granted = spec
                .key_value_stores
                .iter()
                .filter_map(|label| {
                    backends
                        .key_value
                        .get(label)
                        .map(|s| (label.clone(), s.clone()))
                })
                .collect();
            let databases = spec
                .sqlite_databases
                .iter()
                .filter_map(|label| {
                    backends
                        .sqlite
                        .get(label)
                        .map(|d| (label.clone(), d.clone()))
                })
                .collect();
            components.insert(
                id.clone(),
                Arc::new(LoadedComponent {
                    spec: spec.clone(),
                    pre,
                    http,
                    exports,
                    logs,
                    key_value: KeyValue {
                        granted: Arc::new(granted),
                    },
                    sqlite: Sqlite {
                        granted: Arc::new(databases),
                    },
                    redis: RedisConnections::new(backends.outbound),
                    rdbms: RdbmsConnections::new(backends.outbound),
                    mqtt: MqttConnections::new(backends.outbound),
                    outbound_http: Arc::new(crate::outbound::HttpClient::new(
                        spec.allowed_hosts.clone(),
                        spec.id.clone(),
                        backends.self_origin,
                        backends.outbound_http.connection_pooling,
                        backends.client_tls.for_component(&spec.id),
                    )),
                    placement: Placement::default(),
                    ready: ReadyState::new(ready_slots),
                }),
            );
        }
        Ok(components)
    }

    /// Compiles (or loads from the cache) and pre-instantiates the component at `path`: on the
    /// plain engine when it can be, else on the concurrent one (whose error is the one shown).
    fn prepare(&self, path: &Path) -> anyhow::Result<Prepared> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        check_binary(&bytes, path)?;
        let cache = self.options.cache_dir.as_deref();
        let on = |flavor: &Flavor, name: &str| {
            let component = compile_cached(&flavor.engine, &bytes, path, cache)?;
            let prepared = pre_instantiate(flavor, &component)?;
            tracing::info!(path = %path.display(), engine = %name, "component ready");
            anyhow::Ok(prepared)
        };
        match on(&self.plain, "plain") {
            Ok(prepared) => Ok(prepared),
            Err(plain) => {
                tracing::debug!(path = %path.display(), "not for the plain engine: {plain:#}");
                on(&*self.concurrent()?, "concurrent")
            }
        }
    }

    /// The concurrent engine and its linker, built on first use.
    fn concurrent(&self) -> anyhow::Result<Arc<Flavor>> {
        let mut slot = self
            .concurrent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(flavor) = &*slot {
            return Ok(flavor.clone());
        }
        let flavor = Arc::new(Flavor::new(&self.options, true, self.reset)?);
        *slot = Some(flavor.clone());
        Ok(flavor)
    }
}

/// A pre-instantiated component: its pre-instance, its HTTP handler if it exports one, the
/// names it exports, and its engine's pool slots for instances built ahead.
struct Prepared {
    pre: InstancePre<HostState>,
    http: Option<HandlerPre>,
    exports: Vec<String>,
    ready_slots: Arc<AtomicUsize>,
}

/// Which components' output goes to the terminal.
#[derive(Debug, Clone, Default)]
pub enum Follow {
    #[default]
    None,
    All,
    Some(Vec<String>),
}

impl Follow {
    pub fn includes(&self, id: &str) -> bool {
        match self {
            Follow::None => false,
            Follow::All => true,
            Follow::Some(ids) => ids.iter().any(|i| i == id),
        }
    }
}

/// Checks what the binary is before handing it to Wasmtime, to say what is wrong in user terms.
fn check_binary(bytes: &[u8], path: &Path) -> anyhow::Result<()> {
    if wasmparser::Parser::is_component(bytes) {
        return Ok(());
    }
    if !wasmparser::Parser::is_core_wasm(bytes) {
        bail!("{} is not a WebAssembly file", path.display());
    }
    let mut has_start = false;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::ExportSection(exports)) = payload {
            has_start |= exports.into_iter().flatten().any(|e| e.name == "_start");
        }
    }
    let kind = if has_start {
        "a core WebAssembly module with `_start` (a wasip1 command)"
    } else {
        "a core WebAssembly module"
    };
    bail!(
        "{} is {kind}, not a component. Boson serves components that export `wasi:http/incoming-handler`: build with an HTTP SDK (Spin SDKs, componentize-py, componentize-js, wasi crate), or wrap a reactor module that implements the handler with `wasm-tools component new module.wasm --adapt wasi_snapshot_preview1.proxy.wasm -o component.wasm`",
        path.display()
    )
}

/// The cache key: the component's bytes plus everything that makes compiled code incompatible.
fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut engine_hash = std::hash::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut h = Sha256::new();
    h.update(b"boson-compiled-v1\0");
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(engine_hash.finish().to_le_bytes());
    h.update(bytes);
    hex::encode(h.finalize())
}

/// Compiles `bytes` (read from `path`), or loads their compiled code from `cache_dir` when
/// present.
fn compile_cached(
    engine: &Engine,
    bytes: &[u8],
    path: &Path,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Component> {
    let Some(cache_dir) = cache_dir else {
        return compile(engine, bytes, path);
    };
    let dir = cache_dir.join("compiled");
    let cached = dir.join(format!("{}.cwasm", cache_key(engine, bytes)));
    if cached.is_file() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash (it is part of the file name) into Boson's own cache directory.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => {
                tracing::info!(path = %path.display(), "loaded compiled component from cache");
                return Ok(component);
            }
            Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e:#}", cached.display()),
        }
    }
    let component = compile(engine, bytes, path)?;
    if let Err(e) = write_cache(&dir, &cached, &component) {
        tracing::warn!(
            "could not write the compile cache at {}: {e:#}",
            dir.display()
        );
    }
    Ok(component)
}

fn compile(engine: &Engine, bytes: &[u8], path: &Path) -> anyhow::Result<Component> {
    let start = Instant::now();
    let component = Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("compiling {}", path.display()))?;
    tracing::info!(path = %path.display(), elapsed_ms = start.elapsed().as_millis() as u64, "compiled component");
    Ok(component)
}

fn write_cache(dir: &Path, target: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), next_temp_id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, target)?;
    Ok(())
}

fn next_temp_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Pre-instantiates `component` and finds its HTTP handler, if it exports one.
fn pre_instantiate(flavor: &Flavor, component: &Component) -> anyhow::Result<Prepared> {
    let Flavor {
        engine,
        linker,
        ready_slots,
    } = flavor;
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports_p3 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/handler@0.3"));
    let exports_p2 = exports
        .iter()
        .any(|e| e.starts_with("wasi:http/incoming-handler@0.2"));
    let linker = link_pending_imports(engine, linker, component)?;
    let pre = linker.instantiate_pre(component).map_err(|e| {
        anyhow::anyhow!("{e:#} — the component imports an interface Boson does not provide; `wasm-tools component wit` on the file lists its imports")
    })?;
    let http = if exports_p3 {
        Some(HandlerPre::P3(
            wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone())?,
        ))
    } else if exports_p2 {
        Some(HandlerPre::P2(
            wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone())?,
        ))
    } else {
        None
    };
    Ok(Prepared {
        pre,
        http,
        exports,
        ready_slots: ready_slots.clone(),
    })
}

impl LoadedComponent {
    /// Explains, for a start-up error, that the component lacks the export a trigger needs.
    pub fn missing_export(&self, trigger: &str, needed: &str) -> anyhow::Error {
        let list = if self.exports.is_empty() {
            "nothing".to_string()
        } else {
            self.exports.join(", ")
        };
        anyhow::anyhow!(
            "component `{}` is run by {trigger}, which needs it to export {needed}, but it exports {list} — build it for that trigger (with the SDK's handler for it)",
            self.spec.id
        )
    }
}

/// Why a guest produced no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// It ran past its deadline and was interrupted.
    Deadline,
    /// It trapped, or returned an error.
    Failed,
    /// No instance slot was free (the pool is full).
    NoCapacity,
}

/// A guest failure: what kind, and a cause for the log line.
#[derive(Debug, Clone)]
pub struct GuestFailure {
    pub kind: FailureKind,
    pub cause: String,
}

impl GuestFailure {
    pub fn failed(cause: impl Into<String>) -> Self {
        Self {
            kind: FailureKind::Failed,
            cause: cause.into(),
        }
    }

    pub fn deadline(timeout: Duration) -> Self {
        Self {
            kind: FailureKind::Deadline,
            cause: format!("deadline of {timeout:?} exceeded (guest interrupted)"),
        }
    }

    /// Classifies an error from instantiating or calling a guest.
    pub fn from_error(error: &wasmtime::Error, timeout: Duration) -> Self {
        if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
            return match trap {
                wasmtime::Trap::Interrupt => Self::deadline(timeout),
                other => Self::failed(format!("guest trapped: {other}")),
            };
        }
        let text = format!("{error:#}");
        if text.contains("maximum concurrent") {
            return Self {
                kind: FailureKind::NoCapacity,
                cause: format!("no free instance slot: {text}"),
            };
        }
        Self::failed(text)
    }
}

impl LoadedComponent {
    /// A store for one fresh instance of this component: its host state, its memory cap, and
    /// its deadline ([`LoadedComponent::arm`]).
    pub fn new_store(&self) -> anyhow::Result<Store<HostState>> {
        let state = HostState::new(self)?;
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        self.arm(&mut store);
        Ok(store)
    }

    /// Starts the store's deadline now: an epoch callback ([`EpochTicks`]) that yields to the
    /// scheduler every tick (a busy guest never holds a worker thread for long) and interrupts
    /// the guest once the component's timeout has passed.
    pub fn arm(&self, store: &mut Store<HostState>) {
        store.set_epoch_deadline(1);
        let mut ticks = EpochTicks::new(Instant::now() + self.spec.limits.timeout);
        store.epoch_deadline_callback(move |_| ticks.reached(Instant::now()));
    }
}

/// What a store does each time it reaches its epoch deadline (one tick after the last).
struct EpochTicks {
    /// Wall-clock time from the store's creation: a guest that waited for a thread (hundreds of
    /// busy guests on two cores) is interrupted at its first tick past it.
    deadline: Instant,
    /// Whether the first deadline was reached.
    started: bool,
}

impl EpochTicks {
    fn new(deadline: Instant) -> Self {
        Self {
            deadline,
            started: false,
        }
    }

    /// Past the deadline, interrupt the guest; else yield to the scheduler (a busy guest never
    /// holds a thread for long), except the first time. The first deadline is set when the
    /// store is built, not when its guest starts: a guest that waited for its turn finds it
    /// already passed at its first check, which says nothing of its work, so it only re-arms.
    /// Yielding there would send a guest that just got its turn to the back of the queue
    /// before it did anything.
    fn reached(&mut self, now: Instant) -> wasmtime::Result<UpdateDeadline> {
        if now >= self.deadline {
            Err(wasmtime::Trap::Interrupt.into())
        } else if !std::mem::replace(&mut self.started, true) {
            Ok(UpdateDeadline::Continue(1))
        } else {
            crate::guest_threads::epoch_yield();
            Ok(UpdateDeadline::Yield(1))
        }
    }
}

/// Interfaces Spin's SDKs import that Boson does not implement yet. A component importing them
/// still starts (SDK-built components import every platform interface whether they use it or
/// not); a call to one of them traps, failing that request with a log line.
/// `wasi:*@0.3.0-rc-*` are the WASI 0.3 release candidates spin-sdk 5 imports beside 0.3.0.
const PENDING_INTERFACES: [&str; 3] = ["fermyon:spin/", "spin:", "wasi:*@0.3.0-rc-"];

/// The placeholder behind every resource of a pending interface.
struct PendingResource;

fn is_pending(import: &str) -> bool {
    PENDING_INTERFACES
        .iter()
        .any(|prefix| match prefix.strip_prefix("wasi:*") {
            Some(version) => import.starts_with("wasi:") && import.contains(version),
            None => import.starts_with(prefix),
        })
}

/// Whether the linker provides `import`: WASI and `wasi:http` at 0.2.x or exactly 0.3.0, and
/// the capability interfaces.
fn is_provided(import: &str) -> bool {
    crate::capability::PROVIDED_INTERFACES.contains(&import)
        || TRIGGER_TYPE_INTERFACES.contains(&import)
        || import.starts_with("wasi:") && (import.contains("@0.2.") || import.ends_with("@0.3.0"))
}

/// Returns the linker to use for `component`: the shared one, or a copy with the component's
/// pending imports defined as traps. Imports that are neither provided nor pending fail here.
fn link_pending_imports(
    engine: &Engine,
    linker: &Linker<HostState>,
    component: &Component,
) -> anyhow::Result<Linker<HostState>> {
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .filter(|name| !is_provided(name))
        .collect();
    if imports.is_empty() {
        return Ok(linker.clone());
    }
    let unknown: Vec<&String> = imports.iter().filter(|i| !is_pending(i)).collect();
    if !unknown.is_empty() {
        let list: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        bail!(
            "the component imports {}, which Boson does not provide — build it against WASI 0.2/0.3 and wasi:http only, or drop those imports",
            list.join(", ")
        );
    }
    tracing::warn!(
        "component imports interfaces Boson does not implement yet; calls to them will fail: {}",
        imports.join(", ")
    );
    let mut linker = linker.clone();
    // Stub each pending instance by hand: every function traps with its name, every resource is
    // a placeholder type (no function can ever create one).
    for (name, item) in component.component_type().imports(engine) {
        if !imports.iter().any(|i| i == name) {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        let mut stub = linker.instance(name)?;
        for (export, export_item) in instance.exports(engine) {
            match export_item.ty {
                ComponentItem::Resource(_) => {
                    stub.resource(export, ResourceType::host::<PendingResource>(), |_, _| {
                        Ok(())
                    })?;
                }
                ComponentItem::ComponentFunc(func) if func.async_() => {
                    let what = format!("{name}#{export}");
                    stub.func_new_concurrent(export, move |_, _, _, _| {
                        let what = what.clone();
                        Box::pin(async move {
                            wasmtime::bail!("`{what}` is not implemented by Boson yet")
                        })
                    })?;
                }
                ComponentItem::ComponentFunc(_) => {
                    let what = format!("{name}#{export}");
                    stub.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!("`{what}` is not implemented by Boson yet")
                    })?;
                }
                _ => {}
            }
        }
    }
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pagemap_probe_finds_the_scan_on_a_kernel_that_has_it() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().unwrap_or(0));
        let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        // PAGEMAP_SCAN came with Linux 6.7.
        assert_eq!(pagemap_scan_available(), version >= (6, 7), "{release}");
    }

    #[test]
    fn the_first_epoch_deadline_re_arms_later_ones_yield_and_the_wall_clock_deadline_interrupts() {
        let start = Instant::now();
        let mut ticks = EpochTicks::new(start + Duration::from_millis(100));
        // A guest that waited 50 ms for its turn reaches its first deadline at once.
        let at = |ms| start + Duration::from_millis(ms);
        assert!(matches!(
            ticks.reached(at(50)),
            Ok(UpdateDeadline::Continue(1))
        ));
        assert!(matches!(
            ticks.reached(at(60)),
            Ok(UpdateDeadline::Yield(1))
        ));
        assert!(matches!(
            ticks.reached(at(70)),
            Ok(UpdateDeadline::Yield(1))
        ));
        let interrupted = ticks.reached(at(100)).err().expect("interrupted");
        assert_eq!(
            interrupted.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
    }
}
