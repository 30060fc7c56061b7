//! `boson watch`: serves the app like `boson up`, rebuilds a component when a file matching its
//! `build.watch` globs changes, and swaps the new version into the running server.
//!
//! One process, one listener, one engine. A change (after the debounce) runs the affected
//! components' builds, then loads a new version of the app — manifest resolved again, components
//! compiled (unchanged ones come from the compile cache), routes and message triggers rebuilt —
//! and swaps it in. Requests already routed keep the `Arc` of the component they run, so they
//! finish on the old code; the next request gets the new one. A failed build or reload is
//! reported and the running version keeps serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use globset::{GlobBuilder, GlobMatcher};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{AppLocation, ResolvedApp, resolve};
use crate::cli::{Settings, UpArgs};
use crate::http::{HttpRoutes, HttpTrigger};
use crate::metrics::Metrics;
use crate::runtime::{Backends, Runtime};
use crate::trigger::Triggers;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// How long the files must stay quiet after a change before Boson rebuilds, e.g. `100ms`.
    #[arg(long, default_value = "100ms", value_name = "DURATION", value_parser = crate::limits::parse_duration)]
    pub debounce: Duration,
    /// Do not run the build commands: only reload when sources, files or the manifest change.
    #[arg(long)]
    pub skip_build: bool,
}

/// What a changed file asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    /// The manifest changed: resolve the app again.
    Manifest,
    /// A file of a component's `build.watch` changed: build it, then reload.
    Build(String),
    /// A component's source (when it has no build) or one of its `files` changed: reload.
    Reload,
}

/// One glob and what a match means.
struct Rule {
    glob: GlobMatcher,
    change: Change,
}

/// The files one version of the app watches, and the directories holding them.
struct WatchSet {
    rules: Vec<Rule>,
    /// Paths never acted on: build outputs (a component's `source` when it has a build) and the
    /// app's state directory.
    ignored: Vec<PathBuf>,
    ignored_dirs: Vec<PathBuf>,
    dirs: BTreeSet<(PathBuf, bool)>,
}

impl WatchSet {
    fn new(ignored_dirs: Vec<PathBuf>) -> Self {
        Self {
            rules: Vec::new(),
            ignored: Vec::new(),
            ignored_dirs,
            dirs: BTreeSet::new(),
        }
    }

    /// Reads the manifest's watch globs, sources and files. Paths are made absolute against the
    /// manifest's (canonical) folder, as file events name them.
    fn from_manifest(manifest_path: &Path, state_dir: &Path) -> anyhow::Result<Self> {
        let manifest = boson_manifest::load(manifest_path)?;
        let (mut set, base) = WatchSet::manifest_only(manifest_path, state_dir)?;
        for component in manifest.components.values() {
            let source = match &component.source {
                boson_manifest::Source::Path(p) => Some(base.join(p)),
                _ => None,
            };
            match &component.build {
                Some(build) => {
                    let workdir = base.join(build.workdir.as_deref().unwrap_or(Path::new("")));
                    for pattern in &build.watch {
                        set.add(&workdir, pattern, Change::Build(component.id.clone()))
                            .with_context(|| {
                                format!("[component.{}.build] watch `{pattern}`", component.id)
                            })?;
                    }
                    set.ignored.extend(source);
                }
                None => {
                    if let Some(source) = source {
                        let name = source.to_string_lossy().into_owned();
                        set.add(Path::new("/"), &globset::escape(&name), Change::Reload)?;
                    }
                }
            }
            for mount in &component.files {
                let pattern = match mount {
                    boson_manifest::FileMount::Glob(glob) => glob.clone(),
                    boson_manifest::FileMount::Mount { source, .. } => {
                        format!("{}/**", globset::escape(&source.to_string_lossy()))
                    }
                };
                set.add(&base, &pattern, Change::Reload)?;
            }
        }
        Ok(set)
    }

    /// A set watching only the manifest, and the manifest's (canonical) folder.
    fn manifest_only(manifest_path: &Path, state_dir: &Path) -> anyhow::Result<(Self, PathBuf)> {
        let base = manifest_path
            .parent()
            .unwrap_or(Path::new("."))
            .canonicalize()
            .with_context(|| format!("finding the folder of {}", manifest_path.display()))?;
        let mut set = WatchSet::new(vec![state_dir.to_path_buf()]);
        let file_name = manifest_path
            .file_name()
            .context("the manifest path has no file name")?;
        set.add(&base, &file_name.to_string_lossy(), Change::Manifest)?;
        Ok((set, base))
    }

    /// Adds `pattern` (relative to `dir`, or absolute) and the directory its events come from:
    /// the pattern's longest literal prefix, watched recursively when the rest spans folders.
    fn add(&mut self, dir: &Path, pattern: &str, change: Change) -> anyhow::Result<()> {
        let full = dir.join(pattern);
        let glob = GlobBuilder::new(&full.to_string_lossy())
            .literal_separator(true)
            .build()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .compile_matcher();
        let mut root = PathBuf::new();
        let mut rest = Vec::new();
        for part in full.components() {
            let text = part.as_os_str().to_string_lossy();
            if rest.is_empty() && !text.contains(['*', '?', '[', '{']) {
                root.push(part);
            } else {
                rest.push(text.into_owned());
            }
        }
        // A literal path names one file: watch its folder (editors replace files by renaming).
        let (root, recursive) = if rest.is_empty() {
            (root.parent().map(Path::to_path_buf).unwrap_or(root), false)
        } else {
            (
                root,
                rest.len() > 1 || rest.iter().any(|r| r.contains("**")),
            )
        };
        self.dirs.insert((root, recursive));
        self.rules.push(Rule { glob, change });
        Ok(())
    }

    fn changes_for(&self, path: &Path) -> impl Iterator<Item = &Change> {
        let ignored = self.ignored.iter().any(|p| p == path)
            || self.ignored_dirs.iter().any(|d| path.starts_with(d));
        self.rules
            .iter()
            .filter(move |r| !ignored && r.glob.is_match(path))
            .map(|r| &r.change)
    }

    /// Starts watching; events arrive on the returned channel. A folder that does not exist yet
    /// is skipped with a warning.
    fn start(
        &self,
    ) -> anyhow::Result<(notify::RecommendedWatcher, mpsc::UnboundedReceiver<PathBuf>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
                Ok(event) if !matches!(event.kind, EventKind::Access(_)) => {
                    for path in event.paths {
                        let _ = tx.send(path);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("watching files: {e}"),
            })
            .context("starting the file watcher")?;
        for (dir, recursive) in &self.dirs {
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            if let Err(e) = watcher.watch(dir, mode) {
                tracing::warn!("cannot watch {}: {e}", dir.display());
            }
        }
        Ok((watcher, rx))
    }
}

/// A watch set with its running watcher. Built anew after a manifest change; when the
/// manifest does not parse, only the manifest itself is watched until it does.
struct Watching {
    set: WatchSet,
    events: mpsc::UnboundedReceiver<PathBuf>,
    _watcher: notify::RecommendedWatcher,
}

impl Watching {
    fn start(manifest: &Path, state_dir: &Path) -> anyhow::Result<Self> {
        let set = match WatchSet::from_manifest(manifest, state_dir) {
            Ok(set) => set,
            Err(e) => {
                tracing::error!("{e:#}");
                WatchSet::manifest_only(manifest, state_dir)?.0
            }
        };
        let (watcher, events) = set.start()?;
        Ok(Self {
            set,
            events,
            _watcher: watcher,
        })
    }
}

/// Waits for the first relevant change, then until the files have been quiet for `debounce`;
/// returns every change seen. `None` when the watcher is gone.
async fn next_changes(
    set: &WatchSet,
    events: &mut mpsc::UnboundedReceiver<PathBuf>,
    debounce: Duration,
) -> Option<BTreeSet<Change>> {
    let mut changes = BTreeSet::new();
    while changes.is_empty() {
        let path = events.recv().await?;
        changes.extend(set.changes_for(&path).cloned());
    }
    loop {
        match tokio::time::timeout(debounce, events.recv()).await {
            Ok(Some(path)) => changes.extend(set.changes_for(&path).cloned()),
            Ok(None) | Err(_) => return Some(changes),
        }
    }
}

/// One loaded version of the app: its routes and message triggers, built and checked.
struct Version {
    app: ResolvedApp,
    routes: HttpRoutes,
    triggers: Triggers,
}

/// Everything a reload needs, kept from start-up.
struct Loader {
    args: UpArgs,
    settings: Settings,
    manifest: PathBuf,
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
    self_origin: std::net::SocketAddr,
}

impl Loader {
    async fn load(&self, seed: bool) -> anyhow::Result<Version> {
        let app = resolve(
            &AppLocation::Manifest(self.manifest.clone()),
            &self.settings.resolve_options(&self.args, None),
        )
        .await?;
        let follow = crate::cli::follow(&self.args, &app)?;
        let backends = Backends {
            self_origin: Some(self.self_origin),
            ..crate::cli::open_backends(
                &app,
                self.settings.runtime_config.as_ref(),
                &self.args,
                seed,
            )
            .await?
        };
        let components = {
            let (runtime, app) = (self.runtime.clone(), app.clone());
            tokio::task::spawn_blocking(move || runtime.load_components(&app, &follow, &backends))
                .await??
        };
        let routes = HttpRoutes::new(&app, &components, &self.metrics)?;
        let triggers = Triggers::new(&app.triggers, &self.runtime, &components, &self.metrics)?;
        Ok(Version {
            app,
            routes,
            triggers,
        })
    }
}

/// Runs the message triggers of one version until its token is cancelled.
struct RunningTriggers {
    token: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningTriggers {
    fn start(triggers: Triggers, shutdown: &CancellationToken, grace: Duration) -> Self {
        let token = shutdown.child_token();
        let task = tokio::spawn(triggers.run(token.clone(), grace));
        Self { token, task }
    }

    /// Stops the subscriptions and waits (up to the grace period) for running events.
    async fn stop(self) {
        self.token.cancel();
        if let Err(e) = self.task.await {
            tracing::error!("the message triggers ended abnormally: {e}");
        }
    }
}

pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let WatchArgs {
        up: args,
        debounce,
        skip_build,
    } = args;
    if args.from_registry.is_some() {
        anyhow::bail!(
            "`boson watch` serves a local app; run an app from a registry with `boson up`"
        );
    }
    let manifest = match AppLocation::find(args.from.as_deref())? {
        AppLocation::Manifest(path) => path,
        AppLocation::Wasm(path) => anyhow::bail!(
            "{} is a component, not an app: `boson watch` needs a manifest (run a bare component with `boson up`)",
            path.display()
        ),
    };
    // Watch from the start: a save during the first build or load is not missed.
    let settings = Settings::from_args(&args)?;
    let state_dir = crate::app::state_dir_for(
        &manifest.parent().unwrap_or(Path::new(".")).canonicalize()?,
        &settings.resolve_options(&args, None),
    );
    let mut watching = Watching::start(&manifest, &state_dir)?;
    let build = |only: Vec<String>| {
        let manifest = manifest.clone();
        async move {
            let steps = crate::build::plan(&manifest, &only)?;
            tokio::task::spawn_blocking(move || crate::build::run(&steps)).await?
        }
    };
    if !skip_build && let Err(e) = build(Vec::new()).await {
        tracing::error!("{e:#}");
        tracing::warn!("the build failed; serving what the last successful build left");
    }
    let engine_options = settings.engine_options(&args)?;
    let listener = crate::cli::bind(args.listen).await?;
    let bound = listener.local_addr()?;
    let runtime =
        Arc::new(tokio::task::spawn_blocking(move || Runtime::new(&engine_options)).await??);
    runtime.spawn_memory_trimmer();
    let metrics = Arc::new(Metrics::default());
    let server_options = crate::cli::server_options(&args, bound);
    let grace = args.grace_period;
    let loader = Loader {
        args,
        settings,
        manifest: manifest.clone(),
        runtime: runtime.clone(),
        metrics: metrics.clone(),
        self_origin: crate::cli::self_origin(bound),
    };
    let first = loader.load(true).await?;
    crate::cli::print_routes(bound, &first.app);
    let trigger = Arc::new(HttpTrigger::new(first.routes, runtime, metrics));
    let shutdown = crate::cli::stop_token();
    let server = tokio::spawn({
        let trigger = trigger.clone();
        let stop = shutdown.clone().cancelled_owned();
        async move { trigger.serve(listener, server_options, stop).await }
    });
    let mut messages = RunningTriggers::start(first.triggers, &shutdown, grace);
    tracing::info!(
        "watching {} for changes (debounce {debounce:?})",
        manifest.display()
    );
    loop {
        let changes = tokio::select! {
            changes = next_changes(&watching.set, &mut watching.events, debounce) => changes,
            () = shutdown.cancelled() => break,
        };
        let Some(changes) = changes else { break };
        let started = Instant::now();
        if changes.contains(&Change::Manifest) {
            watching = Watching::start(&manifest, &state_dir)?;
        }
        let to_build: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Build(id) if !skip_build => Some(id.clone()),
                _ => None,
            })
            .collect();
        if !to_build.is_empty() {
            tracing::info!("rebuilding {}", to_build.join(", "));
            if let Err(e) = build(to_build).await {
                tracing::error!("{e:#}");
                tracing::warn!("the build failed; still serving the previous version");
                continue;
            }
        }
        match loader.load(false).await {
            Ok(version) => {
                trigger.replace_routes(version.routes);
                messages.stop().await;
                messages = RunningTriggers::start(version.triggers, &shutdown, grace);
                tracing::info!(
                    "reloaded the app in {:.0} ms; new requests get the new version",
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            Err(e) => {
                tracing::error!("{e:#}");
                tracing::warn!("the reload failed; still serving the previous version");
            }
        }
    }
    messages.stop().await;
    server.await?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_with(dir: &Path, pattern: &str) -> WatchSet {
        let mut set = WatchSet::new(vec![dir.join(".boson")]);
        set.add(dir, pattern, Change::Build("a".into())).unwrap();
        set
    }

    #[test]
    fn globs_match_below_their_folder_and_pick_the_folder_to_watch() {
        let dir = Path::new("/app/a");
        let set = set_with(dir, "src/**/*.c");
        assert!(
            set.changes_for(Path::new("/app/a/src/x.c"))
                .next()
                .is_some()
        );
        assert!(
            set.changes_for(Path::new("/app/a/src/deep/y.c"))
                .next()
                .is_some()
        );
        assert!(
            set.changes_for(Path::new("/app/a/other/x.c"))
                .next()
                .is_none()
        );
        assert!(set.dirs.contains(&(PathBuf::from("/app/a/src"), true)));

        let set = set_with(dir, "*.py");
        assert!(set.changes_for(Path::new("/app/a/app.py")).next().is_some());
        // `*` stays inside one folder.
        assert!(
            set.changes_for(Path::new("/app/a/lib/x.py"))
                .next()
                .is_none()
        );
        assert!(set.dirs.contains(&(PathBuf::from("/app/a"), false)));

        let set = set_with(dir, "Cargo.toml");
        assert!(
            set.changes_for(Path::new("/app/a/Cargo.toml"))
                .next()
                .is_some()
        );
        assert!(set.dirs.contains(&(PathBuf::from("/app/a"), false)));
    }

    #[test]
    fn ignores_build_outputs_and_state() {
        let dir = Path::new("/app");
        let mut set = set_with(dir, "**/*");
        set.ignored.push(PathBuf::from("/app/out.wasm"));
        assert!(set.changes_for(Path::new("/app/src.c")).next().is_some());
        assert!(set.changes_for(Path::new("/app/out.wasm")).next().is_none());
        assert!(
            set.changes_for(Path::new("/app/.boson/logs/a.log"))
                .next()
                .is_none()
        );
    }
}
