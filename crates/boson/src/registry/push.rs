//! `boson registry push`: pack an app (every component's Wasm, its files as `boson up` would
//! mount them) into Spin's layout and upload what the registry does not have yet.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use oci_client::{Reference, RegistryOperation};

use super::locked::{ContentPath, ContentRef, LockedApp, PackedComponent};
use super::progress::Transfer;
use super::store::sha256_digest;
use super::{
    Connection, DATA_LAYER_MEDIA_TYPE, INLINE_MAX, LOCKED_APP_DIGEST_LABEL, LOCKED_APP_MEDIA_TYPE,
    PARALLEL_TRANSFERS, RegistryOptions, WASM_LAYER_MEDIA_TYPE,
};

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
