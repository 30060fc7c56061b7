//! Registry credentials in Docker's config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`), which `docker login`, `spin registry login` and
//! `boson registry login` all write: `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`.
//!
//! Credential helpers (`credsStore`, `credHelpers`) are not run; a registry that only has one
//! is used anonymously, with a warning saying so.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// A username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

/// Where Docker (and so Boson) keeps registry logins.
pub fn docker_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".docker")
        .join("config.json")
}

/// The keys a registry may be filed under: as written, with `https://`, and Docker Hub's
/// historical `https://index.docker.io/v1/`.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("docker.io".into());
    }
    keys
}

/// The login for `registry` in the config file at `path`, if there is one.
pub fn lookup(path: &Path, registry: &str) -> anyhow::Result<Option<Credentials>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let config: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not valid JSON — fix or remove it (it holds registry logins)",
            path.display()
        )
    })?;
    let auths = config.get("auths").and_then(Value::as_object);
    for key in keys_for(registry) {
        let Some(entry) = auths.and_then(|a| a.get(&key)) else {
            continue;
        };
        if let Some(encoded) = entry.get("auth").and_then(Value::as_str)
            && !encoded.is_empty()
        {
            let decoded = STANDARD
                .decode(encoded.trim())
                .with_context(|| format!("{}: auths.{key}.auth is not base64", path.display()))?;
            let decoded = String::from_utf8(decoded)
                .with_context(|| format!("{}: auths.{key}.auth is not UTF-8", path.display()))?;
            let (username, password) = decoded.split_once(':').with_context(|| {
                format!(
                    "{}: auths.{key}.auth is not `user:password`",
                    path.display()
                )
            })?;
            return Ok(Some(Credentials {
                username: username.into(),
                password: password.into(),
            }));
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(Value::as_str),
            entry.get("password").and_then(Value::as_str),
        ) {
            return Ok(Some(Credentials {
                username: u.into(),
                password: p.into(),
            }));
        }
    }
    let helper = config
        .get("credHelpers")
        .and_then(|h| h.get(registry))
        .or_else(|| config.get("credsStore"));
    if let Some(helper) = helper.and_then(Value::as_str) {
        tracing::warn!(
            "{} stores the login for {registry} in the credential helper `{helper}`, which Boson does not run; going on anonymously — use `boson registry login {registry}` to store it in the file",
            path.display()
        );
    }
    Ok(None)
}

/// Stores a login for `registry` in the config file at `path`, keeping everything else in it.
/// The file is written owner-only (it holds a password).
pub fn store(path: &Path, registry: &str, credentials: &Credentials) -> anyhow::Result<()> {
    let mut config: Map<String, Value> = match std::fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(m)) => m,
            _ => bail!(
                "{} is not a JSON object — fix or remove it before logging in",
                path.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(auths) = auths else {
        bail!("{}: `auths` is not an object", path.display());
    };
    let encoded = STANDARD.encode(format!("{}:{}", credentials.username, credentials.password));
    auths.insert(registry.to_string(), serde_json::json!({ "auth": encoded }));
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&Value::Object(config))?;
    let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_then_lookup_keeps_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"ghcr.io":{"auth":"YTpi"}},"psFormat":"table"}"#,
        )
        .unwrap();
        let creds = Credentials {
            username: "user".into(),
            password: "p:ss".into(),
        };
        store(&path, "127.0.0.1:5000", &creds).unwrap();
        assert_eq!(lookup(&path, "127.0.0.1:5000").unwrap(), Some(creds));
        assert_eq!(
            lookup(&path, "ghcr.io").unwrap(),
            Some(Credentials {
                username: "a".into(),
                password: "b".into()
            })
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn lookup_understands_docker_hub_and_url_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"},"https://example.com":{"auth":"Yzpk"}}}"#,
        )
        .unwrap();
        assert_eq!(lookup(&path, "docker.io").unwrap().unwrap().username, "a");
        assert_eq!(lookup(&path, "example.com").unwrap().unwrap().password, "d");
        assert_eq!(lookup(&path, "other.io").unwrap(), None);
        assert_eq!(lookup(&dir.path().join("missing.json"), "x").unwrap(), None);
    }
}
