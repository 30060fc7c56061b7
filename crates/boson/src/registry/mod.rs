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
mod pull;
mod push;
mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};

pub use locked::LockedApp;
pub use pull::{pull, pull_for_up};
pub use push::push;
pub use store::Store;

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
            } else if detail.contains("certificate") {
                format!(
                    "the TLS certificate of https://{registry} is not trusted: add its CA to the system's trust store (or point SSL_CERT_FILE at a bundle holding it)"
                )
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
