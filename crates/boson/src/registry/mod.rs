//! Apps in OCI registries, in Spin's artifact layout, so `spin registry pull` / `spin up -f`
//! run what `boson registry push` pushes and the other way round.
//!
//! An artifact is one OCI image manifest:
//! - a layer per component Wasm (`application/vnd.wasm.content.layer.v1+wasm`);
//! - a layer per file over 128 bytes (`application/vnd.wasm.content.layer.v1+data`); smaller
//!   files travel inline in the locked app, as Spin sends them;
//! - a layer holding the locked app (`application/vnd.fermyon.spin.application.v1+config`),
//!   which names every component's Wasm and file by digest ([`locked`]);
//! - as config, a plain OCI image config labelled with the locked app's digest.
//!
//! That is what current Spin pushes. Older Spin put the locked app in the config itself; both are
//! read. An artifact with no locked app and a single Wasm layer (a bare component, as `wkg`
//! pushes) runs as one component at `/...`.
//!
//! Pulling ends in a folder with a generated `spin.toml` ([`store`]), so a pulled app goes
//! through exactly the parser and resolver a local app does: the registry is only another way to
//! get a folder.

pub mod auth;
pub mod command;
mod locked;
mod progress;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};

pub use locked::LockedApp;
use locked::{ContentPath, ContentRef, PackedComponent};
use progress::Transfer;
pub use store::Store;
use store::sha256_digest;

/// The locked app, as a layer (Spin 3) or as the config (older Spin).
pub const LOCKED_APP_MEDIA_TYPE: &str = "application/vnd.fermyon.spin.application.v1+config";
/// A component's Wasm.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// A file a component mounts.
pub const DATA_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+data";
/// A Wasm binary as `wkg` pushes it.
const WKG_WASM_MEDIA_TYPE: &str = "application/wasm";
/// Files up to this size travel inline in the locked app (as Spin sends them; some registries
/// refuse tiny blobs).
const INLINE_MAX: usize = 128;
/// The image-config label that ties the config to the locked app.
const LOCKED_APP_DIGEST_LABEL: &str = "com.fermyon.spin.lockedAppDigest";
const PARALLEL_TRANSFERS: usize = 4;

/// How to reach registries and where the cache is.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    pub cache_dir: PathBuf,
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
}

/// An app pulled into the cache, ready for the loader.
#[derive(Debug, Clone)]
pub struct PulledApp {
    /// The generated `spin.toml` in the app's folder.
    pub manifest: PathBuf,
    /// The manifest digest (`sha256:...`): the exact content.
    pub digest: String,
    /// The default state dir: one per repository.
    pub state_dir: PathBuf,
}

/// Parses a reference the user typed, with an error that shows the form.
pub fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    text.parse::<Reference>().map_err(|e| {
        anyhow!(
            "`{text}` is not a registry reference ({e}) — write host[:port]/repository[:tag] or host[:port]/repository@sha256:<digest>, e.g. ghcr.io/you/app:v1"
        )
    })
}

/// Whether `boson up --from <from>` means a registry artifact: `from` is no existing path and
/// starts with a registry host (`localhost`, or a name with a `.` or a `:port`), as in
/// `ghcr.io/you/app:v1` or `127.0.0.1:5000/app`. `None` means "treat it as a path".
pub fn app_reference(from: &Path) -> Option<anyhow::Result<Reference>> {
    if from.exists() {
        return None;
    }
    let text = from.to_str()?;
    let (host, rest) = text.split_once('/')?;
    let host_like = host == "localhost"
        || ((host.contains('.') || host.contains(':'))
            && !host.starts_with('.')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)));
    if !host_like || rest.is_empty() {
        return None;
    }
    Some(parse_reference(text))
}

/// The failure was reaching the registry at all (not a refusal or a missing artifact); the
/// message says why and what to do.
#[derive(Debug)]
struct Unreachable(String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// Turns a registry error into one that says what went wrong and what to do.
fn explain(err: OciDistributionError, reference: &Reference, insecure: bool) -> anyhow::Error {
    let registry = reference.registry();
    let repo = reference.repository();
    let login = format!(
        "log in with `boson registry login {registry} -u <user> --password-stdin` (or `docker login {registry}`), and check that the account may use `{repo}`"
    );
    let not_found = || {
        anyhow!(
            "`{reference}` is not in the registry — check the repository and the tag or digest (`boson registry push` creates them)"
        )
    };
    let missing_blob = || {
        anyhow!(
            "the registry lacks content that `{reference}` names — the artifact is incomplete; push it again"
        )
    };
    let refused =
        || anyhow!("the registry {registry} refused access to `{repo}` ({err}) — {login}");
    match &err {
        // A status error (e.g. from a HEAD, which has no body to carry an OCI error).
        OciDistributionError::RequestError(e) if e.status().is_some() => {
            match e.status().map(|s| s.as_u16()) {
                Some(401 | 403) => refused(),
                Some(404) => not_found(),
                _ => anyhow!("the registry {registry} answered with an error: {err}"),
            }
        }
        OciDistributionError::RequestError(e) => {
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                detail.push_str(": ");
                detail.push_str(&s.to_string());
                source = s.source();
            }
            let hint = if insecure {
                format!("check that the registry at http://{registry} is running")
            } else {
                format!(
                    "check that https://{registry} is up; if the registry speaks plain HTTP (a local one, say), pass --insecure"
                )
            };
            anyhow::Error::new(Unreachable(format!(
                "cannot talk to the registry {registry}: {detail} — {hint}"
            )))
        }
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => refused(),
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::ServerError {
            code: 401 | 403, ..
        } => refused(),
        OciDistributionError::RegistryError { envelope, .. } => {
            match envelope.errors.first().map(|e| &e.code) {
                Some(
                    OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound,
                ) => not_found(),
                Some(OciErrorCode::BlobUnknown | OciErrorCode::ManifestBlobUnknown) => {
                    missing_blob()
                }
                Some(OciErrorCode::Unauthorized | OciErrorCode::Denied) => refused(),
                _ => anyhow!("the registry {registry} answered with an error: {err}"),
            }
        }
        _ => anyhow!("registry {registry}: {err}"),
    }
}

/// A client for one reference, with the credentials Docker's config file holds for its
/// registry (anonymous otherwise).
struct Connection {
    client: oci_client::Client,
    auth: RegistryAuth,
    reference: Reference,
    insecure: bool,
}

impl Connection {
    fn client(insecure: bool) -> oci_client::Client {
        // reqwest is built without a default TLS provider: Boson's (ring) is the process's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        oci_client::Client::new(ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("boson/", env!("CARGO_PKG_VERSION")),
            max_concurrent_upload: PARALLEL_TRANSFERS,
            max_concurrent_download: PARALLEL_TRANSFERS,
            ..Default::default()
        })
    }

    /// Connects and authenticates for `op`: an unreachable registry or refused login fails
    /// here, before any transfer.
    async fn open(
        reference: &Reference,
        insecure: bool,
        op: RegistryOperation,
    ) -> anyhow::Result<Self> {
        let config = auth::docker_config_path();
        let auth = match auth::lookup(&config, reference.registry())? {
            Some(c) => {
                tracing::debug!(
                    "using the login for {} in {}",
                    reference.registry(),
                    config.display()
                );
                RegistryAuth::Basic(c.username, c.password)
            }
            None => RegistryAuth::Anonymous,
        };
        let client = Self::client(insecure);
        client
            .auth(reference, &auth, op)
            .await
            .map_err(|e| explain(e, reference, insecure))?;
        Ok(Self {
            client,
            auth,
            reference: reference.clone(),
            insecure,
        })
    }

    fn explain(&self, err: OciDistributionError) -> anyhow::Error {
        explain(err, &self.reference, self.insecure)
    }
}

/// One blob to upload.
struct Blob {
    digest: String,
    media_type: String,
    bytes: bytes::Bytes,
    label: String,
}

/// Packs the app whose manifest is at `manifest_path` and pushes it to `reference`; returns
/// the manifest digest.
pub async fn push(
    manifest_path: &Path,
    reference: &Reference,
    options: &RegistryOptions,
) -> anyhow::Result<String> {
    if reference.digest().is_some() {
        bail!(
            "`{reference}` names a digest; push to a tag (host/repository:tag) — the digest is printed after the push"
        );
    }
    let manifest = boson_manifest::load(manifest_path).map_err(|e| anyhow!("{e}"))?;
    let base_dir = std::fs::canonicalize(manifest_path.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("resolving {}", manifest_path.display()))?;
    let file = manifest_path.display().to_string();
    let scratch = Scratch::new(&options.cache_dir)?;
    let (packed, mut blobs) =
        pack(&manifest, &file, &base_dir, &options.cache_dir, &scratch).await?;
    let locked = LockedApp::from_manifest(&manifest, &packed).with_context(|| file.clone())?;
    let locked_json = serde_json::to_vec(&locked)?;
    let locked_digest = sha256_digest(&locked_json);
    blobs.push(Blob {
        digest: locked_digest.clone(),
        media_type: LOCKED_APP_MEDIA_TYPE.into(),
        bytes: locked_json.into(),
        label: "locked app".into(),
    });
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "config": { "Labels": { LOCKED_APP_DIGEST_LABEL: locked_digest } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    }))?;
    let config = Blob {
        digest: sha256_digest(&config),
        media_type: IMAGE_CONFIG_MEDIA_TYPE.into(),
        bytes: config.into(),
        label: "config".into(),
    };
    let descriptor = |b: &Blob| OciDescriptor {
        media_type: b.media_type.clone(),
        digest: b.digest.clone(),
        size: b.bytes.len() as i64,
        ..Default::default()
    };
    let app = &manifest.application;
    let mut annotations = BTreeMap::new();
    annotations.insert("org.opencontainers.image.title".into(), app.name.clone());
    if let Some(v) = &app.version {
        annotations.insert("org.opencontainers.image.version".into(), v.clone());
    }
    if let Some(d) = &app.description {
        annotations.insert("org.opencontainers.image.description".into(), d.clone());
    }
    if !app.authors.is_empty() {
        annotations.insert(
            "org.opencontainers.image.authors".into(),
            app.authors.join(", "),
        );
    }
    annotations.insert(
        "org.opencontainers.image.created".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let image = OciImageManifest {
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.into()),
        config: descriptor(&config),
        layers: blobs.iter().map(descriptor).collect(),
        annotations: Some(annotations),
        ..Default::default()
    };
    let body = serde_json::to_vec(&image)?;
    let digest = sha256_digest(&body);

    let conn = Connection::open(reference, options.insecure, RegistryOperation::Push).await?;
    let transfer = Transfer::new();
    blobs.push(config);
    futures::stream::iter(blobs.iter().map(|b| upload(&conn, b, &transfer)))
        .buffer_unordered(PARALLEL_TRANSFERS)
        .try_collect::<Vec<()>>()
        .await?;
    conn.client
        .push_manifest_raw(
            reference,
            body,
            http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
        )
        .await
        .map_err(|e| conn.explain(e))
        .with_context(|| format!("pushing the manifest of `{reference}`"))?;
    Ok(digest)
}

async fn upload(conn: &Connection, blob: &Blob, transfer: &Transfer) -> anyhow::Result<()> {
    let layer = transfer.layer(blob.label.clone(), blob.bytes.len() as u64);
    let exists = conn
        .client
        .blob_exists(&conn.reference, &blob.digest)
        .await
        .map_err(|e| conn.explain(e))?;
    if exists {
        layer.finish("already in the registry");
        return Ok(());
    }
    const CHUNK: usize = 1 << 20;
    let chunks: Vec<bytes::Bytes> = (0..blob.bytes.len())
        .step_by(CHUNK)
        .map(|start| {
            blob.bytes
                .slice(start..(start + CHUNK).min(blob.bytes.len()))
        })
        .collect();
    let ticker = layer.clone();
    let stream = futures::stream::iter(chunks).map(move |chunk| {
        ticker.advance(chunk.len() as u64);
        Ok::<_, OciDistributionError>(chunk)
    });
    conn.client
        .push_blob_stream(
            &conn.reference,
            stream,
            &blob.digest,
            Some(blob.bytes.len() as u64),
        )
        .await
        .map_err(|e| conn.explain(e))
        .with_context(|| format!("uploading {} ({})", blob.label, blob.digest))?;
    layer.finish("pushed");
    Ok(())
}

/// A scratch folder in the cache for files being packed; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(cache_dir: &Path) -> anyhow::Result<Self> {
        let dir = cache_dir.join("registry").join("tmp").join(format!(
            "push-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Reads every component's Wasm and collects its files (with `files`/`exclude_files` applied
/// exactly as `boson up` applies them): their content refs, and the blobs to upload.
async fn pack(
    manifest: &boson_manifest::Manifest,
    file: &str,
    base_dir: &Path,
    cache_dir: &Path,
    scratch: &Scratch,
) -> anyhow::Result<(BTreeMap<String, PackedComponent>, Vec<Blob>)> {
    let mut packed = BTreeMap::new();
    let mut blobs: Vec<Blob> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut add = |blobs: &mut Vec<Blob>, blob: Blob| {
        if seen.insert(blob.digest.clone()) {
            blobs.push(blob);
        }
    };
    for (id, c) in &manifest.components {
        let wasm_path = match &c.source {
            boson_manifest::Source::Path(p) => {
                let path = base_dir.join(p);
                if !path.is_file() {
                    bail!(
                        "{file}:{}: component `{id}` source {} does not exist — build the app first, then push",
                        c.line,
                        path.display()
                    );
                }
                path
            }
            boson_manifest::Source::Url { url, digest } => {
                crate::app::fetch_source(url, digest, cache_dir)
                    .await
                    .with_context(|| format!("{file}:{}: component `{id}` source {url}", c.line))?
            }
            boson_manifest::Source::Registry { package, .. } => bail!(
                "{file}:{}: component `{id}` takes its source from registry package `{package}`, which Boson cannot fetch yet — use a path or `{{ url, digest }}`",
                c.line
            ),
        };
        let bytes = std::fs::read(&wasm_path)
            .with_context(|| format!("reading {}", wasm_path.display()))?;
        if !bytes.starts_with(b"\0asm") {
            bail!(
                "{file}:{}: component `{id}` source {} is not a WebAssembly binary",
                c.line,
                wasm_path.display()
            );
        }
        let digest = sha256_digest(&bytes);
        let wasm = ContentRef {
            digest: Some(digest.clone()),
            ..Default::default()
        };
        add(
            &mut blobs,
            Blob {
                digest,
                media_type: WASM_LAYER_MEDIA_TYPE.into(),
                bytes: bytes.into(),
                label: format!("component {id}"),
            },
        );
        let mut files = Vec::new();
        if !c.files.is_empty() {
            let dest = scratch.0.join(id);
            crate::app::materialize_files(
                &c.files,
                &c.exclude_files,
                base_dir,
                &base_dir.join(".boson"),
                &dest,
            )
            .with_context(|| format!("{file}:{}: component `{id}` files", c.line))?;
            let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(&dest)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .collect();
            entries.sort();
            for path in entries {
                let rel = path.strip_prefix(&dest).expect("walked from dest");
                let rel: Vec<&str> = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().context("file names must be UTF-8"))
                    .collect::<anyhow::Result<_>>()?;
                let rel = rel.join("/");
                let bytes = std::fs::read(&path)?;
                let digest = sha256_digest(&bytes);
                let inline = bytes.len() <= INLINE_MAX;
                files.push(ContentPath {
                    content: ContentRef {
                        inline: inline.then(|| bytes.clone()),
                        digest: Some(digest.clone()),
                        source: None,
                    },
                    path: rel.clone(),
                });
                if !inline {
                    add(
                        &mut blobs,
                        Blob {
                            digest,
                            media_type: DATA_LAYER_MEDIA_TYPE.into(),
                            bytes: bytes.into(),
                            label: format!("{id}: {rel}"),
                        },
                    );
                }
            }
        }
        packed.insert(id.clone(), PackedComponent { wasm, files });
    }
    Ok((packed, blobs))
}

/// Pulls `reference` into the cache (blobs already there are not fetched again) and lays out
/// the app.
pub async fn pull(reference: &Reference, options: &RegistryOptions) -> anyhow::Result<PulledApp> {
    let store = Store::new(&options.cache_dir);
    let conn = Connection::open(reference, options.insecure, RegistryOperation::Pull).await?;
    let (manifest, digest) = conn
        .client
        .pull_image_manifest(reference, &conn.auth)
        .await
        .map_err(|e| conn.explain(e))?;
    if let Some(wanted) = reference.digest()
        && wanted != digest
    {
        bail!(
            "the registry sent manifest {digest} for `{reference}` — it does not match the digest asked for"
        );
    }
    store.record_tag(reference, &digest)?;
    let state_dir = store.state_dir(reference);
    if let Some(manifest) = store.pulled_manifest(&digest) {
        tracing::info!("{reference} ({digest}) is already in the cache");
        return Ok(PulledApp {
            manifest,
            digest,
            state_dir,
        });
    }

    let is_wasm = |d: &OciDescriptor| {
        d.media_type == WASM_LAYER_MEDIA_TYPE || d.media_type == WKG_WASM_MEDIA_TYPE
    };
    let locked_descriptor = if manifest.config.media_type == LOCKED_APP_MEDIA_TYPE {
        Some(&manifest.config)
    } else {
        manifest
            .layers
            .iter()
            .find(|l| l.media_type == LOCKED_APP_MEDIA_TYPE)
    };
    let transfer = Transfer::new();
    let mut wanted: Vec<(&OciDescriptor, String)> = Vec::new();
    if let Some(d) = locked_descriptor {
        wanted.push((d, "locked app".into()));
    }
    for (i, layer) in manifest.layers.iter().enumerate() {
        if locked_descriptor.is_some_and(|d| d.digest == layer.digest) {
            continue;
        }
        let what = if is_wasm(layer) { "wasm" } else { "data" };
        wanted.push((layer, format!("layer {} ({what})", i + 1)));
    }
    futures::stream::iter(
        wanted
            .iter()
            .map(|(d, label)| download(&conn, &store, d, label, &transfer)),
    )
    .buffer_unordered(PARALLEL_TRANSFERS)
    .try_collect::<Vec<()>>()
    .await?;

    let name = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or("app")
        .to_string();
    let locked = match locked_descriptor {
        Some(d) => {
            let path = store.blob_path(&d.digest)?;
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            LockedApp::from_json(&bytes).with_context(|| format!("`{reference}`"))?
        }
        None => match manifest.layers.as_slice() {
            [layer] if is_wasm(layer) => LockedApp::single_component(&name, &layer.digest),
            _ => bail!(
                "`{reference}` is not a Spin app: it has no locked app (a `{LOCKED_APP_MEDIA_TYPE}` layer or config) and is not a single Wasm component (its config is `{}`)",
                manifest.config.media_type
            ),
        },
    };
    let manifest = store
        .materialize(&digest, &locked, &name)
        .with_context(|| format!("laying out `{reference}` ({digest})"))?;
    Ok(PulledApp {
        manifest,
        digest,
        state_dir,
    })
}

async fn download(
    conn: &Connection,
    store: &Store,
    descriptor: &OciDescriptor,
    label: &str,
    transfer: &Transfer,
) -> anyhow::Result<()> {
    let layer = transfer.layer(label.to_string(), descriptor.size.max(0) as u64);
    if store.has_blob(&descriptor.digest) {
        layer.finish("in the cache");
        return Ok(());
    }
    let mut stream = conn
        .client
        .pull_blob_stream(&conn.reference, descriptor)
        .await
        .map_err(|e| conn.explain(e))
        .with_context(|| format!("fetching {label} ({})", descriptor.digest))?;
    let mut writer = store.blob_writer(&descriptor.digest)?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| {
            format!(
                "the connection broke while fetching {label} ({})",
                descriptor.digest
            )
        })?;
        writer.write(&chunk)?;
        layer.advance(chunk.len() as u64);
    }
    writer
        .finish()
        .with_context(|| format!("{label} ({})", descriptor.digest))?;
    layer.finish("pulled");
    Ok(())
}

/// The app `boson up --from <reference>` runs. A digest reference already in the cache needs no
/// registry; a tag is looked up in the registry, and if the registry cannot be reached, the
/// copy pulled last for that tag runs, with a warning.
pub async fn pull_for_up(
    reference: &Reference,
    options: &RegistryOptions,
) -> anyhow::Result<PulledApp> {
    let store = Store::new(&options.cache_dir);
    let cached = |digest: String| {
        store.pulled_manifest(&digest).map(|manifest| PulledApp {
            manifest,
            digest,
            state_dir: store.state_dir(reference),
        })
    };
    if let Some(app) = reference.digest().and_then(|d| cached(d.to_string())) {
        return Ok(app);
    }
    match pull(reference, options).await {
        Ok(app) => Ok(app),
        Err(e) if e.downcast_ref::<Unreachable>().is_some() => {
            match store.recorded_tag(reference).and_then(cached) {
                Some(app) => {
                    tracing::warn!(
                        "{e:#}; running the copy of {reference} pulled before ({})",
                        app.digest
                    );
                    Ok(app)
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Checks `username`/`password` against `registry` and stores them in Docker's config file;
/// returns the file's path.
pub async fn login(
    registry: &str,
    credentials: auth::Credentials,
    insecure: bool,
) -> anyhow::Result<PathBuf> {
    // `https://ghcr.io/` and `ghcr.io` are the same registry.
    let registry = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if registry.is_empty() || registry.contains('/') {
        bail!(
            "`{registry}` is not a registry host — write host[:port], e.g. ghcr.io or 127.0.0.1:5000"
        );
    }
    let reference = parse_reference(&format!("{registry}/boson-login-check:latest"))?;
    let auth = RegistryAuth::Basic(credentials.username.clone(), credentials.password.clone());
    let client = Connection::client(insecure);
    client
        .auth(&reference, &auth, RegistryOperation::Pull)
        .await
        .map_err(|e| explain(e, &reference, insecure))?;
    // Token registries checked the password above; basic-auth ones are checked by a request.
    match client.list_tags(&reference, &auth, Some(1), None).await {
        Ok(_) => {}
        Err(
            e @ (OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)),
        ) => bail!(
            "the registry {registry} refused the login for `{}` ({e}) — check the username and password (or token)",
            credentials.username
        ),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Unauthorized) =>
        {
            bail!(
                "the registry {registry} refused the login for `{}` — check the username and password (or token)",
                credentials.username
            )
        }
        Err(e @ OciDistributionError::RequestError(_)) => {
            return Err(explain(e, &reference, insecure));
        }
        // Anything else (no such repository, denied for it) means the login itself was taken.
        Err(_) => {}
    }
    let path = auth::docker_config_path();
    auth::store(&path, &registry, &credentials)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references_are_told_from_paths() {
        let is_ref = |s: &str| app_reference(Path::new(s)).is_some_and(|r| r.is_ok());
        assert!(is_ref("127.0.0.1:5000/hello:v1"));
        assert!(is_ref("localhost/apps/hello"));
        assert!(is_ref(
            "ghcr.io/you/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        ));
        assert!(!is_ref("examples/hello"));
        assert!(!is_ref("../hello/spin.toml"));
        assert!(!is_ref("app.wasm"));
        assert!(!is_ref("./x.y/z"));
        // Host-like but malformed: an error, not "no such file".
        assert!(app_reference(Path::new("ghcr.io/You/App")).is_some_and(|r| r.is_err()));
        // An existing path is always a path.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a.b:1");
        std::fs::create_dir_all(odd.join("c")).unwrap();
        assert!(app_reference(&odd.join("c")).is_none());
    }
}
