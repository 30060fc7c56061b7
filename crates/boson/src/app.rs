//! Resolving an app: from a parsed manifest (or a bare `.wasm`) to everything the runtime needs,
//! with paths made absolute, URL sources fetched and verified, files materialised read-only,
//! outbound hosts parsed and every not-yet-supported feature refused up front.
//!
//! Nothing here knows about Wasmtime: this step only checks and gathers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use boson_manifest::{FileMount, HttpRoute, HttpTarget, Manifest, Source, StaticResponse};
use sha2::{Digest as _, Sha256};

use crate::limits::LimitsConfig;
use crate::outbound::AllowedHosts;
use crate::runtime_config::RuntimeConfig;
use crate::trigger::{AppTriggerSettings, TriggerSpec, TriggerTable};
use crate::variables::{
    VariableSources, VariableValue, render_component_variables, resolve_app_variables,
};

/// An app ready to be loaded by the runtime.
#[derive(Debug, Clone)]
pub struct ResolvedApp {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    /// Where the manifest (or the `.wasm`) lives; relative paths start here.
    pub base_dir: PathBuf,
    pub state_dir: PathBuf,
    pub components: BTreeMap<String, ResolvedComponent>,
    pub http_triggers: Vec<HttpTriggerSpec>,
    /// Redis, MQTT, NATS and cron triggers.
    pub triggers: Vec<TriggerSpec>,
}

/// One component with its grants.
#[derive(Debug, Clone)]
pub struct ResolvedComponent {
    pub id: Arc<str>,
    /// The component's `.wasm` on local disk.
    pub wasm_path: PathBuf,
    pub environment: Vec<(String, String)>,
    /// A directory holding exactly the granted files, mounted read-only at `/`.
    pub files_dir: Option<PathBuf>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub limits: crate::limits::Limits,
    /// Key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// SQLite database labels the component may open.
    pub sqlite_databases: Vec<String>,
    /// The component's variables (its `variables` templates, rendered), by name.
    pub variables: Arc<BTreeMap<String, VariableValue>>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone)]
pub struct HttpTriggerSpec {
    /// `None` for a private route (reachable only from inside the app, not from the listener).
    pub route: Option<String>,
    pub target: HttpTargetSpec,
}

#[derive(Debug, Clone)]
pub enum HttpTargetSpec {
    Component(String),
    Static(StaticResponse),
}

/// Where `boson up` should find the app.
#[derive(Debug, Clone)]
pub enum AppLocation {
    Manifest(PathBuf),
    Wasm(PathBuf),
}

impl AppLocation {
    /// Interprets `--from` (or the current directory when absent).
    pub fn find(from: Option<&Path>) -> anyhow::Result<Self> {
        let path = from.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        if path.is_dir() {
            for name in boson_manifest::MANIFEST_FILE_NAMES {
                let candidate = path.join(name);
                if candidate.is_file() {
                    return Ok(Self::Manifest(candidate));
                }
            }
            bail!(
                "no spin.toml or boson.toml in {} — run `boson up` in an app's folder, or pass `--from path/to/spin.toml` or `--from app.wasm`",
                path.display()
            );
        }
        if !path.exists() {
            bail!(
                "{} does not exist — pass a manifest, an app folder or a .wasm file to --from",
                path.display()
            );
        }
        if path.extension().is_some_and(|e| e == "wasm") {
            Ok(Self::Wasm(path))
        } else {
            Ok(Self::Manifest(path))
        }
    }
}

/// Options that shape resolution.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub state_dir: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub limits: LimitsConfig,
    pub runtime_config: Option<RuntimeConfig>,
    /// `--variable name=value` pairs.
    pub variables: Vec<String>,
}

/// Resolves the app at `location`.
pub async fn resolve(
    location: &AppLocation,
    options: &ResolveOptions,
) -> anyhow::Result<ResolvedApp> {
    match location {
        AppLocation::Wasm(path) => resolve_wasm(path, options),
        AppLocation::Manifest(path) => {
            let manifest = boson_manifest::load(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            let base_dir = absolute(path.parent().unwrap_or(Path::new(".")))?;
            resolve_manifest(manifest, path, &base_dir, options).await
        }
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let p = if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    };
    std::fs::canonicalize(p).with_context(|| format!("resolving {}", p.display()))
}

/// Where an app whose manifest lives in `base_dir` keeps its data and logs.
pub(crate) fn state_dir_for(base_dir: &Path, options: &ResolveOptions) -> PathBuf {
    match &options.state_dir {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.clone()),
        None => base_dir.join(".boson"),
    }
}

fn resolve_wasm(path: &Path, options: &ResolveOptions) -> anyhow::Result<ResolvedApp> {
    let wasm_path = absolute(path)?;
    let base_dir = wasm_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let id = wasm_path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(sanitize_id)
        .unwrap_or_else(|| "app".into());
    let component = ResolvedComponent {
        id: id.as_str().into(),
        wasm_path,
        environment: Vec::new(),
        files_dir: None,
        allowed_hosts: Arc::new(AllowedHosts::default()),
        limits: options.limits.for_component(&id),
        key_value_stores: Vec::new(),
        sqlite_databases: Vec::new(),
        variables: Arc::default(),
    };
    Ok(ResolvedApp {
        name: id.clone(),
        version: None,
        description: None,
        state_dir: state_dir_for(&base_dir, options),
        base_dir,
        components: BTreeMap::from([(id.clone(), component)]),
        http_triggers: vec![HttpTriggerSpec {
            route: Some("/...".into()),
            target: HttpTargetSpec::Component(id),
        }],
        triggers: Vec::new(),
    })
}

/// A component id made from a file or repository name: lowercase, `-` for anything else,
/// prefixed with `app-` unless it starts with a letter.
pub(crate) fn sanitize_id(stem: &str) -> String {
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        id
    } else {
        format!("app-{id}")
    }
}

async fn resolve_manifest(
    manifest: Manifest,
    manifest_path: &Path,
    base_dir: &Path,
    options: &ResolveOptions,
) -> anyhow::Result<ResolvedApp> {
    let file = manifest_path.display().to_string();
    let state_dir = state_dir_for(base_dir, options);
    let sources = VariableSources::gather(
        &options.variables,
        options.runtime_config.as_ref(),
        base_dir,
    )?;
    let app_variables = resolve_app_variables(&manifest.variables, &sources)
        .with_context(|| format!("{file}: [variables]"))?;
    let mut resolver = ComponentResolver {
        manifest: &manifest,
        file: &file,
        base_dir,
        state_dir: &state_dir,
        options,
        app_variables: &app_variables,
        components: BTreeMap::new(),
    };
    let mut http_triggers = Vec::new();
    for trigger in &manifest.http_triggers {
        if let Some(boson_manifest::Executor::Wagi { .. }) = &trigger.executor {
            bail!(
                "{file}:{}: the `wagi` executor is not supported — build the component for wasi:http (Spin SDKs do by default) and remove `executor`",
                trigger.line
            );
        }
        let route = match &trigger.route {
            HttpRoute::Path(p) => Some(p.clone()),
            HttpRoute::Private => None,
        };
        let target = match &trigger.target {
            HttpTarget::StaticResponse(r) => HttpTargetSpec::Static(r.clone()),
            HttpTarget::Component(id) => {
                resolver.require(id, trigger.line).await?;
                HttpTargetSpec::Component(id.clone())
            }
        };
        http_triggers.push(HttpTriggerSpec { route, target });
    }
    // Read again only to point errors in `[application.trigger.<type>]` at their line.
    let text = if manifest.other_triggers.is_empty() {
        String::new()
    } else {
        std::fs::read_to_string(manifest_path).unwrap_or_default()
    };
    let mut triggers = Vec::new();
    for trigger in &manifest.other_triggers {
        let t = &trigger.trigger_type;
        let header = format!("[application.trigger.{t}]");
        let app_settings = AppTriggerSettings {
            place: match header_line(&text, &header) {
                Some(line) => format!("{file}:{line}: {header}"),
                None => format!("{file}: {header}"),
            },
            table: manifest.application.trigger_settings.get(t),
            variables: &app_variables,
        };
        let table = TriggerTable::new(
            format!("{file}:{}", trigger.line),
            format!("[[trigger.{t}]]"),
            trigger.component.clone(),
            trigger.settings.clone(),
            &app_variables,
        );
        let spec = crate::trigger::resolve(t, table, &app_settings)?;
        resolver.require(spec.component(), trigger.line).await?;
        triggers.push(spec);
    }
    let components = resolver.components;
    Ok(ResolvedApp {
        name: manifest.application.name.clone(),
        version: manifest.application.version.clone(),
        description: manifest.application.description.clone(),
        base_dir: base_dir.to_path_buf(),
        state_dir,
        components,
        http_triggers,
        triggers,
    })
}

/// Resolves each component a trigger names, once, in the order triggers name them.
struct ComponentResolver<'a> {
    manifest: &'a Manifest,
    file: &'a str,
    base_dir: &'a Path,
    state_dir: &'a Path,
    options: &'a ResolveOptions,
    app_variables: &'a BTreeMap<String, VariableValue>,
    components: BTreeMap<String, ResolvedComponent>,
}

impl ComponentResolver<'_> {
    /// Resolves component `id`, named by the trigger on `line`, unless that is done already.
    async fn require(&mut self, id: &str, line: usize) -> anyhow::Result<()> {
        if self.components.contains_key(id) {
            return Ok(());
        }
        let component = self.manifest.components.get(id).with_context(|| {
            format!(
                "{}:{line}: trigger names component `{id}`, which is not defined",
                self.file
            )
        })?;
        let resolved = resolve_component(
            component,
            self.file,
            self.base_dir,
            self.state_dir,
            self.options,
            self.app_variables,
        )
        .await?;
        self.components.insert(id.to_string(), resolved);
        Ok(())
    }
}

/// The 1-based line on which `header` (a `[table]` header) is written, if it is.
fn header_line(text: &str, header: &str) -> Option<usize> {
    let compact: String = header.chars().filter(|c| !c.is_whitespace()).collect();
    text.lines()
        .position(|line| {
            let line: String = line
                .split('#')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            line == compact
        })
        .map(|i| i + 1)
}

async fn resolve_component(
    c: &boson_manifest::Component,
    file: &str,
    base_dir: &Path,
    state_dir: &Path,
    options: &ResolveOptions,
    app_variables: &BTreeMap<String, VariableValue>,
) -> anyhow::Result<ResolvedComponent> {
    let id = c.id.as_str();
    let unsupported = |line: usize, field: &str, issue: &str| {
        anyhow::anyhow!(
            "{file}:{line}: component `{id}` uses `{field}`, which Boson does not implement yet ({issue}) — remove it to run the app"
        )
    };
    let rc = options.runtime_config.as_ref();
    check_labels(
        &c.key_value_stores,
        file,
        id,
        "key-value store",
        "key_value_store",
        |l| rc.is_some_and(|rc| rc.key_value_store.contains_key(l)),
    )?;
    check_labels(
        &c.sqlite_databases,
        file,
        id,
        "SQLite database",
        "sqlite_database",
        |l| rc.is_some_and(|rc| rc.sqlite_database.contains_key(l)),
    )?;
    if let Some(s) = c.ai_models.first() {
        return Err(unsupported(
            s.line,
            "ai_models",
            "LLM inference is out of scope",
        ));
    }
    if let Some(d) = &c.dependencies {
        return Err(unsupported(
            d.line,
            "dependencies",
            "component dependencies are not composed yet",
        ));
    }

    let templates: BTreeMap<String, String> = c
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    let wasm_path = match &c.source {
        Source::Path(p) => {
            let path = base_dir.join(p);
            if !path.is_file() {
                bail!(
                    "{file}:{}: component `{id}` source {} does not exist — build it first (its `build.command`), or fix the path",
                    c.line,
                    path.display()
                );
            }
            path
        }
        Source::Url { url, digest } => fetch_source(url, digest, &options.cache_dir)
            .await
            .with_context(|| format!("{file}:{}: component `{id}` source {url}", c.line))?,
        Source::Registry { package, .. } => {
            bail!(
                "{file}:{}: component `{id}` takes its source from registry package `{package}`, which Boson cannot fetch yet — use a path or `{{ url, digest }}`",
                c.line
            )
        }
    };

    let mut hosts = Vec::new();
    for entry in &c.allowed_outbound_hosts {
        hosts.push(
            crate::outbound::AllowedHost::parse(&entry.value).with_context(|| {
                format!(
                    "{file}:{}: component `{id}` allowed_outbound_hosts",
                    entry.line
                )
            })?,
        );
    }
    let allowed_hosts = AllowedHosts::from_entries(hosts);

    let files_dir = if c.files.is_empty() {
        None
    } else {
        let dir = state_dir.join("files").join(id);
        materialize_files(&c.files, &c.exclude_files, base_dir, state_dir, &dir)
            .with_context(|| format!("{file}:{}: component `{id}` files", c.line))?;
        Some(dir)
    };

    Ok(ResolvedComponent {
        id: id.into(),
        wasm_path,
        environment: c
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        files_dir,
        allowed_hosts: Arc::new(allowed_hosts),
        limits: options.limits.for_component(id),
        key_value_stores: c.key_value_stores.iter().map(|s| s.value.clone()).collect(),
        sqlite_databases: c.sqlite_databases.iter().map(|s| s.value.clone()).collect(),
        variables: Arc::new(render_component_variables(&templates, app_variables)?),
    })
}

/// Every label a component lists must be `default` or have a backend in the runtime config.
fn check_labels(
    labels: &[boson_manifest::Located<String>],
    file: &str,
    id: &str,
    what: &str,
    section: &str,
    configured: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    for label in labels {
        if label.value != "default" && !configured(&label.value) {
            bail!(
                "{file}:{}: component `{id}` lists {what} `{}`, but no backend defines it — add [{section}.{}] to the runtime config (--runtime-config-file), or use `default`",
                label.line,
                label.value,
                label.value
            );
        }
    }
    Ok(())
}

/// Downloads a `{ url, digest }` source once into the cache, verifying its sha256.
pub(crate) async fn fetch_source(
    url: &str,
    digest: &str,
    cache_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let dir = cache_dir.join("sources");
    let path = dir.join(format!("{digest}.wasm"));
    if let Ok(bytes) = std::fs::read(&path)
        && hex::encode(Sha256::digest(&bytes)) == digest
    {
        return Ok(path);
    }
    let uri: http::Uri = url.parse().context("not a valid URL")?;
    let host = uri.host().context("URL has no host")?.to_string();
    let scheme = uri.scheme_str().unwrap_or("https").to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    // The host fetches on the user's behalf: it may reach the URL the user wrote, including a
    // private address.
    let policy = AllowedHosts::parse([format!("{scheme}://{host}:{port}").as_str()])?;
    let request = http::Request::get(uri)
        .body(http_body_util::BodyExt::boxed_unsync(
            http_body_util::Empty::new().map_err(|never: std::convert::Infallible| match never {}),
        ))
        .context("building request")?;
    let response = crate::outbound::HttpClient::new(
        Arc::new(policy),
        "boson".into(),
        None,
        false,
        Default::default(),
    )
    .send(request, None)
    .await
    .map_err(|e| anyhow::anyhow!("download failed: {e:?}"))?;
    if !response.status().is_success() {
        bail!("download failed with HTTP status {}", response.status());
    }
    let bytes = crate::outbound::collect_body(response.into_body(), 1 << 30).await?;
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != digest {
        bail!(
            "digest mismatch: the manifest says sha256:{digest} but the download is sha256:{actual} — update `digest` if the new file is trusted"
        );
    }
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{digest}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

use http_body_util::BodyExt as _;

/// Copies the granted files into `dest` (recreated from scratch), so the guest's `/` holds
/// exactly those files and nothing a symlink could lead out of.
pub(crate) fn materialize_files(
    files: &[FileMount],
    exclude: &[String],
    base_dir: &Path,
    state_dir: &Path,
    dest: &Path,
) -> anyhow::Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).with_context(|| format!("clearing {}", dest.display()))?;
    }
    std::fs::create_dir_all(dest)?;
    let mut excludes = globset::GlobSetBuilder::new();
    for pattern in exclude {
        excludes.add(
            globset::Glob::new(pattern)
                .with_context(|| format!("exclude_files pattern `{pattern}`"))?,
        );
    }
    let excludes = excludes.build()?;
    for mount in files {
        match mount {
            FileMount::Glob(pattern) => {
                let glob = globset::GlobBuilder::new(pattern)
                    .literal_separator(true)
                    .build()
                    .with_context(|| format!("files pattern `{pattern}`"))?
                    .compile_matcher();
                let mut matched = false;
                let walk = walkdir::WalkDir::new(base_dir).follow_links(false);
                // The state dir holds Boson's own data (and these copies): never mount it.
                for entry in walk
                    .into_iter()
                    .filter_entry(|e| !e.path().starts_with(state_dir))
                {
                    let entry = entry?;
                    let rel = entry.path().strip_prefix(base_dir)?;
                    if entry.file_type().is_dir() {
                        continue;
                    }
                    if glob.is_match(rel) && !excludes.is_match(rel) {
                        copy_checked(entry.path(), base_dir, &dest.join(rel))?;
                        matched = true;
                    }
                }
                if !matched && !pattern.contains(['*', '?', '[']) {
                    bail!(
                        "`{pattern}` matches no file in {} — fix the path or remove it",
                        base_dir.display()
                    );
                }
            }
            FileMount::Mount {
                source,
                destination,
            } => {
                let src = base_dir.join(source);
                let target = dest.join(destination.trim_start_matches('/'));
                if src.is_file() {
                    copy_checked(&src, base_dir, &target)?;
                    continue;
                }
                if !src.is_dir() {
                    bail!(
                        "mount source {} does not exist — fix `source`",
                        src.display()
                    );
                }
                for entry in walkdir::WalkDir::new(&src).follow_links(false) {
                    let entry = entry?;
                    let rel = entry.path().strip_prefix(&src)?;
                    if entry.file_type().is_dir() || excludes.is_match(rel) {
                        continue;
                    }
                    copy_checked(entry.path(), base_dir, &target.join(rel))?;
                }
            }
        }
    }
    Ok(())
}

/// Copies one file, refusing symlinks that lead outside the app directory.
fn copy_checked(src: &Path, base_dir: &Path, dest: &Path) -> anyhow::Result<()> {
    let real = std::fs::canonicalize(src).with_context(|| format!("reading {}", src.display()))?;
    if !real.starts_with(base_dir) {
        bail!(
            "{} leads outside the app directory (to {}) — Boson only mounts files inside {}",
            src.display(),
            real.display(),
            base_dir.display()
        );
    }
    if !real.is_file() {
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(&real, dest).with_context(|| format!("copying {}", src.display()))?;
    Ok(())
}
