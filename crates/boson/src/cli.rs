//! Command-line interface: the flags of each command and what running it does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::app::{AppLocation, ResolveOptions, resolve};
use crate::http::{HttpRoutes, HttpTrigger, ServerOptions};
use crate::limits::{Limits, LimitsConfig, parse_duration, parse_size};
use crate::log_writer::LogGuard;
use crate::runtime::{Backends, EngineOptions, Follow, Runtime};
use crate::runtime_config::RuntimeConfig;

const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (wasmtime 48.0.10)");

/// Boson runs WebAssembly components as HTTP handlers: a fresh, sandboxed instance per request.
#[derive(Debug, Parser)]
#[command(name = "boson", version = VERSION, about)]
pub struct Cli {
    /// Only print warnings and errors (RUST_LOG, when set, takes precedence).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve an app: a folder with spin.toml or boson.toml, a manifest file, a bare .wasm, or an
    /// app in an OCI registry.
    Up(UpArgs),
    /// Push apps to OCI registries, pull them, and log in (Spin's artifact layout).
    #[command(subcommand)]
    Registry(crate::registry::command::RegistryCommand),
    /// Create an app from a built-in template: `boson new http-python hello` (`--list` shows the
    /// templates).
    New(crate::new::command::NewArgs),
    /// Add a component from a built-in template to an existing app: `boson add http-c api`.
    Add(crate::new::command::AddArgs),
    /// Run each component's `[component.<id>.build]` command in its `workdir`.
    Build(BuildArgs),
    /// Check an app without serving it: manifest, sources, build tools, runtime-config labels,
    /// reachable services, and everything `boson up` checks at start. Each problem with its fix.
    Doctor(DoctorArgs),
    /// Serve an app like `up`, rebuild a component when its `build.watch` files change, and
    /// swap the new version in without restarting or failing requests in flight.
    Watch(crate::watch::WatchArgs),
    /// Print a shell completion script, e.g. `boson completions bash > /etc/bash_completion.d/boson`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The app: a manifest or a folder holding one (default: the current folder).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// Build only this component. Repeatable.
    #[arg(long, short = 'c', value_name = "ID")]
    pub component: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The app: a manifest or a folder holding one (default: the current folder).
    #[arg(long, short = 'f', value_name = "PATH")]
    pub from: Option<PathBuf>,
    /// The runtime-config file `boson up` will be given.
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,
    /// Cache for compiled code (as for `boson up`).
    #[arg(long, value_name = "DIR", env = "BOSON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl DoctorArgs {
    async fn run(&self) -> anyhow::Result<()> {
        let manifest = match AppLocation::find(self.from.as_deref())? {
            AppLocation::Manifest(path) => path,
            AppLocation::Wasm(_) => {
                anyhow::bail!("`boson doctor` checks an app: give it a manifest or its folder")
            }
        };
        let cache = self.cache_dir.clone().unwrap_or_else(default_cache_dir);
        let problems =
            crate::doctor::examine(&manifest, self.runtime_config_file.as_deref(), cache).await;
        if problems.is_empty() {
            println!("{}: no problems found", manifest.display());
            return Ok(());
        }
        for p in &problems {
            println!(
                "problem: {}
    fix: {}",
                p.what, p.fix
            );
        }
        anyhow::bail!(
            "{} problem(s) found in {}",
            problems.len(),
            manifest.display()
        )
    }
}

impl BuildArgs {
    fn run(&self) -> anyhow::Result<()> {
        let manifest = match AppLocation::find(self.from.as_deref())? {
            AppLocation::Manifest(path) => path,
            AppLocation::Wasm(path) => anyhow::bail!(
                "{} is a component, not an app: `boson build` needs a manifest with [component.<id>.build] sections",
                path.display()
            ),
        };
        let steps = crate::build::plan(&manifest, &self.component)?;
        crate::build::run(&steps)
    }
}

#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The app: a manifest, a folder holding one, a component .wasm (served at `/...`), or a
    /// registry reference (`host[:port]/repository[:tag|@digest]`, when no such path exists).
    #[arg(long, short = 'f', value_name = "PATH|REFERENCE")]
    pub from: Option<PathBuf>,
    /// Run the app at this registry reference (`--from` also takes one).
    #[arg(long, value_name = "REFERENCE", conflicts_with = "from")]
    pub from_registry: Option<String>,
    /// Talk plain HTTP to the registry instead of HTTPS (a local registry, say).
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// Run `boson build` on the app first.
    #[arg(long)]
    pub build: bool,
    /// Address to listen on; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:3000", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where the app's data and logs live (default: `.boson/` next to the manifest; for an app
    /// from a registry, `<cache dir>/registry/state/<registry>/<repository>/`).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Cache for compiled code and downloaded sources (default: $BOSON_CACHE_DIR, else ~/.cache/boson).
    #[arg(long, value_name = "DIR", env = "BOSON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every component afresh and write nothing to the compile cache.
    #[arg(long)]
    pub disable_cache: bool,
    /// Echo a component's stdout/stderr to the terminal (`all` for every component). Repeatable.
    #[arg(long, value_name = "COMPONENT|all")]
    pub follow: Vec<String>,
    /// Host settings file (Spin's layout): `[key_value_store.<label>]`, `[sqlite_database.<label>]`,
    /// `[[variables_provider]]`, and `[limits]` / `[limits.component.<id>]`.
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,
    /// Seed the `default` key-value store before serving. Repeatable.
    #[arg(long = "key-value", value_name = "KEY=VALUE")]
    pub key_values: Vec<String>,
    /// Run SQL on the `default` SQLite database before serving: a statement, or `@file.sql`.
    /// Repeatable; runs in order.
    #[arg(long = "sqlite", value_name = "SQL|@FILE")]
    pub sqlite: Vec<String>,
    /// Set an application variable (highest priority). Repeatable.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// Deadline for one request, e.g. `30s` or `500ms`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Memory cap per instance, e.g. `256MiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Largest request body accepted, e.g. `16MiB` (413 beyond).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_request_body: Option<u64>,
    /// Instances the pooling allocator holds (concurrent requests across all components).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub pool_instances: u32,
    /// How long a request may wait for a free instance when the pool is full (503 after).
    #[arg(long, default_value = "1s", value_name = "DURATION", value_parser = parse_duration)]
    pub queue_timeout: Duration,
    /// How many requests may wait for a free instance at once (503 at once beyond).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_queued: usize,
    /// Open client connections served at once; further ones wait in the listen backlog.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,
    /// Bytes of each pooled memory and table kept resident between instances (reset in place
    /// rather than returned to the system): higher is faster to reuse, lower gives memory back.
    #[arg(long, default_value = "1MiB", value_name = "SIZE", value_parser = parse_size)]
    pub pool_keep_resident: u64,
    /// Allocate instances on demand instead of from a pre-reserved pool.
    #[arg(long)]
    pub no_pooling: bool,
    /// Instantiate a component only when its request arrives. By default, once a response is
    /// written, its connection's thread builds the next fresh instance of that component (for
    /// up to four components per thread), so a request finds its instance ready.
    #[arg(long)]
    pub no_ready_instances: bool,
    /// Time in-flight requests get to finish after SIGINT/SIGTERM.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub grace_period: Duration,
    /// Time a client gets to send its request headers.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A connection whose response writes make no progress for this long is closed (a client
    /// that stopped reading).
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub write_stall_timeout: Duration,
}

/// Logging to stderr: `RUST_LOG` if set, else info (warn with `--quiet`).
///
/// Lines are written in batches ([`crate::log_writer`]); keep the guard until exit, dropping it
/// writes the lines still waiting. Without a thread for that, each line is written as it comes.
#[must_use = "dropping the guard stops the batching of log lines"]
pub fn init_logging(cli: &Cli) -> Option<LogGuard<std::io::Stderr>> {
    let default = if cli.quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match crate::log_writer::stderr() {
        Ok((writer, guard)) => {
            logs.with_writer(writer).init();
            Some(guard)
        }
        Err(e) => {
            logs.with_writer(std::io::stderr).init();
            tracing::warn!("log lines are written one by one: no thread to batch them ({e})");
            None
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up(args).await,
        Command::Registry(command) => {
            crate::registry::command::run(command, default_cache_dir()).await
        }
        Command::New(args) => args.run(),
        Command::Add(args) => args.run(),
        Command::Build(args) => tokio::task::spawn_blocking(move || args.run()).await?,
        Command::Doctor(args) => args.run().await,
        Command::Watch(args) => crate::watch::watch(args).await,
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "boson", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("boson");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("boson"))
        .unwrap_or_else(|| std::env::temp_dir().join("boson-cache"))
}

/// What `up` and `watch` settle from the flags before loading the app.
pub(crate) struct Settings {
    pub limits: LimitsConfig,
    pub runtime_config: Option<RuntimeConfig>,
    pub cache_dir: PathBuf,
}

impl Settings {
    pub fn from_args(args: &UpArgs) -> anyhow::Result<Self> {
        let mut defaults = Limits::default();
        if let Some(t) = args.timeout {
            defaults.timeout = t;
        }
        if let Some(m) = args.max_memory {
            defaults.memory = usize::try_from(m).context("--max-memory is too large")?;
        }
        if let Some(b) = args.max_request_body {
            defaults.max_request_body = b;
        }
        let runtime_config = args
            .runtime_config_file
            .as_deref()
            .map(RuntimeConfig::load)
            .transpose()?;
        let limits = match (&runtime_config, &args.runtime_config_file) {
            (Some(rc), Some(path)) => LimitsConfig::from_section(&rc.limits, defaults, path)?,
            _ => LimitsConfig {
                defaults,
                per_component: Default::default(),
            },
        };
        Ok(Self {
            limits,
            runtime_config,
            cache_dir: args.cache_dir.clone().unwrap_or_else(default_cache_dir),
        })
    }

    pub fn resolve_options(&self, args: &UpArgs, state_dir: Option<PathBuf>) -> ResolveOptions {
        ResolveOptions {
            state_dir: args.state_dir.clone().or(state_dir),
            cache_dir: self.cache_dir.clone(),
            limits: self.limits.clone(),
            runtime_config: self.runtime_config.clone(),
            variables: args.variables.clone(),
        }
    }

    pub fn engine_options(&self, args: &UpArgs) -> anyhow::Result<EngineOptions> {
        let limits = &self.limits;
        let max_memory = std::iter::once(limits.defaults.memory)
            .chain(limits.per_component.values().map(|l| l.memory))
            .max()
            .unwrap_or(limits.defaults.memory);
        Ok(EngineOptions {
            pooling: !args.no_pooling,
            pool_instances: args.pool_instances,
            max_memory,
            cache_dir: (!args.disable_cache).then(|| self.cache_dir.clone()),
            queue_timeout: args.queue_timeout,
            max_queued: args.max_queued,
            keep_resident: usize::try_from(args.pool_keep_resident)
                .context("--pool-keep-resident is too large")?,
            ready_instances: if args.no_ready_instances {
                0
            } else {
                crate::ready::per_process()
            },
        })
    }
}

impl UpArgs {
    /// The resolve and engine options `boson up` settles from these flags. Public so the
    /// benchmarks (`crates/boson/benches`) start a runtime exactly as `boson up` would.
    pub fn options(&self) -> anyhow::Result<(ResolveOptions, EngineOptions)> {
        let settings = Settings::from_args(self)?;
        Ok((
            settings.resolve_options(self, None),
            settings.engine_options(self)?,
        ))
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args)?;
    let reference = match (&args.from_registry, &args.from) {
        (Some(text), _) => Some(crate::registry::parse_reference(text)),
        (None, Some(from)) => crate::registry::app_reference(from),
        (None, None) => None,
    };
    let (location, registry_state_dir) = match reference {
        Some(reference) => {
            let reference = reference?;
            let options = crate::registry::RegistryOptions {
                cache_dir: settings.cache_dir.clone(),
                insecure: args.insecure,
            };
            let pulled = crate::registry::pull_for_up(&reference, &options).await?;
            tracing::info!("running {reference} ({})", pulled.digest);
            (
                AppLocation::Manifest(pulled.manifest),
                Some(pulled.state_dir),
            )
        }
        None => {
            if args.build {
                let build = BuildArgs {
                    from: args.from.clone(),
                    component: Vec::new(),
                };
                tokio::task::spawn_blocking(move || build.run()).await??;
            }
            (AppLocation::find(args.from.as_deref())?, None)
        }
    };
    let app = resolve(
        &location,
        &settings.resolve_options(&args, registry_state_dir),
    )
    .await?;
    let listener = bind(args.listen).await?;
    let bound = listener.local_addr()?;
    let follow = follow(&args, &app)?;
    let mut backends = open_backends(&app, settings.runtime_config.as_ref(), &args, true).await?;
    backends.self_origin = Some(self_origin(bound));
    let engine_options = settings.engine_options(&args)?;
    let (runtime, components) = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            let runtime = Runtime::new(&engine_options)?;
            let components = runtime.load_components(&app, &follow, &backends)?;
            anyhow::Ok((runtime, components))
        })
        .await??
    };
    let runtime = Arc::new(runtime);
    runtime.spawn_memory_trimmer();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let routes = HttpRoutes::new(&app, &components, &metrics)?;
    let triggers = crate::trigger::Triggers::new(&app.triggers, &runtime, &components, &metrics)?;
    let trigger = Arc::new(HttpTrigger::new(routes, runtime.clone(), metrics.clone()));
    print_routes(bound, &app);

    let shutdown = stop_token();
    let messages = tokio::spawn(triggers.run(shutdown.clone(), args.grace_period));
    let served = trigger
        .serve(
            listener,
            server_options(&args, bound),
            shutdown.clone().cancelled_owned(),
        )
        .await;
    if let Err(e) = messages.await {
        tracing::error!("the message triggers ended abnormally: {e}");
    }
    served
}

/// Binds before compiling, so a busy port fails fast.
pub(crate) async fn bind(listen: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} — pick another address with --listen"))
}

/// Which components' output `--follow` echoes; names no component the app lacks.
pub(crate) fn follow(args: &UpArgs, app: &crate::app::ResolvedApp) -> anyhow::Result<Follow> {
    if args.follow.iter().any(|f| f == "all") {
        return Ok(Follow::All);
    }
    if args.follow.is_empty() {
        return Ok(Follow::None);
    }
    for id in &args.follow {
        if !app.components.contains_key(id) {
            anyhow::bail!(
                "--follow {id}: the app has no component `{id}` (it has: {})",
                app.components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(Follow::Some(args.follow.clone()))
}

pub(crate) fn server_options(args: &UpArgs, bound: SocketAddr) -> ServerOptions {
    ServerOptions {
        listen: bound,
        header_read_timeout: args.header_read_timeout,
        write_stall_timeout: args.write_stall_timeout,
        grace_period: args.grace_period,
        max_connections: args.max_connections,
    }
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub(crate) fn stop_token() -> tokio_util::sync::CancellationToken {
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            stop_signal().await;
            shutdown.cancel();
        }
    });
    shutdown
}

/// Prints the bound address (tests and scripts read it) and what the app serves.
pub(crate) fn print_routes(bound: SocketAddr, app: &crate::app::ResolvedApp) {
    println!("Serving http://{bound}");
    println!("Available Routes:");
    for t in &app.http_triggers {
        let what = match &t.target {
            crate::app::HttpTargetSpec::Component(id) => id.clone(),
            crate::app::HttpTargetSpec::Static(_) => "(static response)".into(),
        };
        match &t.route {
            Some(route) => println!("  {what}: http://{bound}{}", route.trim_end_matches("/...")),
            None => println!("  {what}: (private)"),
        }
    }
    if !app.triggers.is_empty() {
        println!("Triggers:");
        for t in &app.triggers {
            println!("  {}", t.describe());
        }
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Opens every store and database the components list, then, when `seed` is set, applies
/// `--key-value` and `--sqlite` to the `default` ones (once per process: a reload by `boson
/// watch` opens them again without seeding).
pub(crate) async fn open_backends(
    app: &crate::app::ResolvedApp,
    runtime_config: Option<&RuntimeConfig>,
    args: &UpArgs,
    seed: bool,
) -> anyhow::Result<Backends> {
    let mut kv_labels: Vec<String> = app
        .components
        .values()
        .flat_map(|c| c.key_value_stores.iter().cloned())
        .collect();
    let mut db_labels: Vec<String> = app
        .components
        .values()
        .flat_map(|c| c.sqlite_databases.iter().cloned())
        .collect();
    // Seeding names the default store/database even if no component lists it yet.
    if !args.key_values.is_empty() {
        kv_labels.push("default".into());
    }
    if !args.sqlite.is_empty() {
        db_labels.push("default".into());
    }
    let key_value =
        crate::capability::key_value::open_stores(kv_labels, runtime_config, &app.state_dir)
            .await?;
    let sqlite =
        crate::capability::sqlite::open_databases(db_labels, runtime_config, &app.state_dir)?;
    let (key_values, statements) = if seed {
        (&args.key_values[..], &args.sqlite[..])
    } else {
        (&[][..], &[][..])
    };
    for pair in key_values {
        let (k, v) = pair
            .split_once('=')
            .with_context(|| format!("--key-value `{pair}`: write it as key=value"))?;
        key_value["default"]
            .set(k, v.as_bytes())
            .await
            .with_context(|| format!("--key-value {k}"))?;
    }
    for sql in statements {
        let text = match sql.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("--sqlite @{path}: cannot read the file"))?,
            None => sql.clone(),
        };
        sqlite["default"]
            .execute_batch(&text)
            .await
            .with_context(|| format!("--sqlite {sql}"))?;
    }
    let component_ids: Vec<&str> = app.components.keys().map(String::as_str).collect();
    let client_tls = match runtime_config {
        Some(rc) => crate::outbound::ClientTls::load(rc, &component_ids)?,
        None => Default::default(),
    };
    Ok(Backends {
        key_value,
        sqlite,
        outbound: runtime_config
            .map(|rc| rc.outbound_connections)
            .unwrap_or_default(),
        self_origin: None,
        outbound_http: runtime_config
            .map(|rc| rc.outbound_http)
            .unwrap_or_default(),
        client_tls: Arc::new(client_tls),
    })
}

/// The address `http://self` requests connect to: the bound listener, with a wildcard address
/// replaced by loopback.
pub(crate) fn self_origin(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        crate::log_writer::write_stderr_now();
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}
