//! The local side of the registry: a content-addressed blob store, the tag → digest index, and
//! pulled apps laid out as folders the ordinary loader reads.
//!
//! ```text
//! <cache>/registry/blobs/sha256/<hex>          every layer and config, verified on write
//! <cache>/registry/refs/<registry>/<repo>/<tag> the manifest digest a tag pointed to last
//! <cache>/registry/apps/sha256-<hex>/          one pulled app per manifest digest:
//!     spin.toml  locked.json  wasm/<id>.wasm  files/<id>/...
//! <cache>/registry/state/<registry>/<repo>/     default state dir of apps run from the registry
//! ```
//!
//! An app folder is built in a temporary folder beside it and renamed into place, so a folder
//! that exists is complete.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use oci_client::Reference;
use sha2::{Digest as _, Sha256};

use super::locked::LockedApp;

/// `sha256:<64 hex>` → the hex, or an error naming the bad digest.
pub fn digest_hex(digest: &str) -> anyhow::Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => bail!("`{digest}` is not a sha256 digest (`sha256:` and 64 lowercase hex digits)"),
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The registry part of Boson's cache.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            root: cache_dir.join("registry"),
        }
    }

    pub fn blob_path(&self, digest: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .root
            .join("blobs")
            .join("sha256")
            .join(digest_hex(digest)?))
    }

    /// Whether the blob is stored (it was verified when written).
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// Starts writing the blob `digest`; [`BlobWriter::finish`] verifies and files it.
    pub fn blob_writer(&self, digest: &str) -> anyhow::Result<BlobWriter> {
        let path = self.blob_path(digest)?;
        let dir = path.parent().expect("blob paths have a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            digest_hex(digest)?,
            std::process::id(),
            unique()
        ));
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
        Ok(BlobWriter {
            file: std::io::BufWriter::new(file),
            hasher: Sha256::new(),
            tmp,
            path,
            digest: digest.to_string(),
        })
    }

    pub fn write_blob(&self, digest: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut w = self.blob_writer(digest)?;
        w.write(bytes)?;
        w.finish()
    }

    /// Where a tag's digest is remembered; `None` for a digest reference (nothing to remember).
    fn ref_path(&self, reference: &Reference) -> Option<PathBuf> {
        let tag = match (reference.tag(), reference.digest()) {
            (Some(tag), _) => tag,
            (None, Some(_)) => return None,
            (None, None) => "latest",
        };
        Some(
            self.root
                .join("refs")
                .join(reference.resolve_registry())
                .join(reference.repository())
                .join(tag),
        )
    }

    /// Remembers that `reference`'s tag pointed to `digest`.
    pub fn record_tag(&self, reference: &Reference, digest: &str) -> anyhow::Result<()> {
        let Some(path) = self.ref_path(reference) else {
            return Ok(());
        };
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, digest).with_context(|| format!("writing {}", path.display()))
    }

    /// The digest `reference`'s tag pointed to when it was last pulled.
    pub fn recorded_tag(&self, reference: &Reference) -> Option<String> {
        let text = std::fs::read_to_string(self.ref_path(reference)?).ok()?;
        let digest = text.trim().to_string();
        digest_hex(&digest).ok()?;
        Some(digest)
    }

    /// Where the app with manifest `digest` lives once pulled.
    pub fn app_dir(&self, digest: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .root
            .join("apps")
            .join(format!("sha256-{}", digest_hex(digest)?)))
    }

    /// The pulled app's manifest, if the app is complete in the cache.
    pub fn pulled_manifest(&self, digest: &str) -> Option<PathBuf> {
        let path = self.app_dir(digest).ok()?.join("spin.toml");
        path.is_file().then_some(path)
    }

    /// The default state dir for an app run from `reference`: one per repository, so data
    /// outlives a new version of the app, as `.boson/` beside a manifest outlives a rebuild.
    pub fn state_dir(&self, reference: &Reference) -> PathBuf {
        self.root
            .join("state")
            .join(reference.resolve_registry())
            .join(reference.repository())
    }

    /// Lays out the app with manifest `digest` from `locked` and the stored blobs; returns the
    /// path of its generated `spin.toml`.
    pub fn materialize(
        &self,
        digest: &str,
        locked: &LockedApp,
        fallback_name: &str,
    ) -> anyhow::Result<PathBuf> {
        let dir = self.app_dir(digest)?;
        if let Some(path) = self.pulled_manifest(digest) {
            return Ok(path);
        }
        let manifest = locked.to_manifest(fallback_name)?;
        let parent = dir.parent().expect("app dirs have a parent");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let tmp = parent.join(format!(
            ".{}.{}.{}.tmp",
            digest_hex(digest)?,
            std::process::id(),
            unique()
        ));
        let built = self.build_app_dir(&tmp, locked, &manifest);
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another pull finished the same app first.
            if self.pulled_manifest(digest).is_none() {
                return Err(e).with_context(|| format!("moving the app into {}", dir.display()));
            }
        }
        Ok(dir.join("spin.toml"))
    }

    fn build_app_dir(&self, dir: &Path, locked: &LockedApp, manifest: &str) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir.join("wasm"))?;
        for c in &locked.components {
            let digest = c.source.content.digest.as_deref().unwrap_or_default();
            let target = dir.join("wasm").join(format!("{}.wasm", c.id));
            match &c.source.content.inline {
                Some(bytes) => write_verified(&target, bytes, Some(digest))?,
                None => self
                    .place_blob(digest, &target)
                    .with_context(|| format!("component `{}`'s Wasm", c.id))?,
            }
            for f in &c.files {
                let target = dir.join("files").join(&c.id).join(&f.path);
                std::fs::create_dir_all(target.parent().expect("has a parent"))?;
                match (&f.content.inline, &f.content.digest) {
                    (Some(bytes), digest) => write_verified(&target, bytes, digest.as_deref())
                        .with_context(|| format!("component `{}` file `{}`", c.id, f.path))?,
                    (None, Some(digest)) => self
                        .place_blob(digest, &target)
                        .with_context(|| format!("component `{}` file `{}`", c.id, f.path))?,
                    (None, None) => unreachable!("to_manifest checked every file has content"),
                }
            }
        }
        std::fs::write(dir.join("locked.json"), serde_json::to_vec_pretty(locked)?)?;
        std::fs::write(dir.join("spin.toml"), manifest)?;
        Ok(())
    }

    /// Hard-links (or copies) a stored blob to `target`.
    fn place_blob(&self, digest: &str, target: &Path) -> anyhow::Result<()> {
        let blob = self.blob_path(digest)?;
        if !blob.is_file() {
            bail!(
                "its content {digest} is not among the artifact's layers — the artifact is incomplete (Spin's archive layers, `SPIN_OCI_ARCHIVE_LAYERS`, are not supported); push it again without them"
            );
        }
        if std::fs::hard_link(&blob, target).is_err() {
            std::fs::copy(&blob, target)
                .with_context(|| format!("copying {} to {}", blob.display(), target.display()))?;
        }
        Ok(())
    }
}

fn write_verified(target: &Path, bytes: &[u8], digest: Option<&str>) -> anyhow::Result<()> {
    if let Some(expected) = digest {
        let actual = sha256_digest(bytes);
        if actual != expected {
            bail!("inline content is {actual}, but the locked app says {expected}");
        }
    }
    std::fs::write(target, bytes).with_context(|| format!("writing {}", target.display()))
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A blob being written: hashed as it goes, renamed into the store only if the digest matches.
pub struct BlobWriter {
    file: std::io::BufWriter<std::fs::File>,
    hasher: Sha256,
    tmp: PathBuf,
    path: PathBuf,
    digest: String,
}

impl BlobWriter {
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        use std::io::Write as _;
        self.hasher.update(bytes);
        self.file
            .write_all(bytes)
            .with_context(|| format!("writing {}", self.tmp.display()))
    }

    /// Checks the digest and files the blob; on any error the temporary file is removed (by
    /// `Drop`, which also runs after success, when the file has been renamed away).
    pub fn finish(mut self) -> anyhow::Result<()> {
        use std::io::Write as _;
        self.file
            .flush()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if actual != self.digest {
            bail!(
                "the registry sent content whose digest is {actual}, not {} — the registry or the connection corrupted it; pull again",
                self.digest
            );
        }
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // Unfinished (an error or a cancelled transfer): leave nothing behind.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_verified_and_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let digest = sha256_digest(b"hello");
        assert!(!store.has_blob(&digest));
        store.write_blob(&digest, b"hello").unwrap();
        assert!(store.has_blob(&digest));
        let wrong = sha256_digest(b"other");
        let err = store.write_blob(&wrong, b"hello").unwrap_err();
        assert!(err.to_string().contains("pull again"), "{err}");
        assert!(!store.has_blob(&wrong));
        let leftovers: Vec<_> =
            std::fs::read_dir(store.blob_path(&digest).unwrap().parent().unwrap())
                .unwrap()
                .collect();
        assert_eq!(leftovers.len(), 1, "no temporary files left");
        assert!(store.blob_path("sha256:../../etc").is_err());
    }

    #[test]
    fn tags_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let reference: Reference = "127.0.0.1:5000/apps/hello:v1".parse().unwrap();
        let digest = sha256_digest(b"manifest");
        store.record_tag(&reference, &digest).unwrap();
        assert_eq!(store.recorded_tag(&reference), Some(digest.clone()));
        let other: Reference = "127.0.0.1:5000/apps/hello:v2".parse().unwrap();
        assert_eq!(store.recorded_tag(&other), None);
        // No tag means `latest`.
        let bare: Reference = "127.0.0.1:5000/apps/hello".parse().unwrap();
        store.record_tag(&bare, &digest).unwrap();
        let latest: Reference = "127.0.0.1:5000/apps/hello:latest".parse().unwrap();
        assert_eq!(store.recorded_tag(&latest), Some(digest));
    }
}
