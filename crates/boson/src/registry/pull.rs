//! `boson registry pull` and `boson up --from <reference>`: fetch what the cache lacks, then
//! lay the app out as a folder the loader reads.

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::manifest::OciDescriptor;
use oci_client::{Reference, RegistryOperation};

use super::locked::LockedApp;
use super::progress::Transfer;
use super::store::Store;
use super::{
    Connection, LOCKED_APP_MEDIA_TYPE, PARALLEL_TRANSFERS, PulledApp, RegistryOptions, Unreachable,
    WASM_LAYER_MEDIA_TYPE, WKG_WASM_MEDIA_TYPE,
};

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
    let name = reference
        .repository()
        .rsplit('/')
        .next()
        .unwrap_or("app")
        .to_string();
    // The locked app first: it names the other layers (for the progress lines) and tells
    // whether the artifact is an app at all before anything large is fetched.
    let locked = match locked_descriptor {
        Some(d) => {
            download(&conn, &store, d, "locked app", &transfer).await?;
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
    let names = locked.content_names();
    let wanted: Vec<(&OciDescriptor, String)> = manifest
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| locked_descriptor.is_none_or(|d| d.digest != l.digest))
        .map(|(i, l)| {
            let label = names
                .get(&l.digest)
                .cloned()
                .unwrap_or_else(|| format!("layer {}", i + 1));
            (l, label)
        })
        .collect();
    futures::stream::iter(
        wanted
            .iter()
            .map(|(d, label)| download(&conn, &store, d, label, &transfer)),
    )
    .buffer_unordered(PARALLEL_TRANSFERS)
    .try_collect::<Vec<()>>()
    .await?;

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
