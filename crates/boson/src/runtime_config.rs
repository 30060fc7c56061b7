//! The runtime-config file (`--runtime-config-file`): host settings that are not part of the
//! app's manifest, in Spin's layout — `[key_value_store.<label>]`, `[sqlite_database.<label>]`,
//! `[[variables_provider]]`, `[outbound_http]`, `[[client_tls]]` — plus Boson's `[limits]`.
//!
//! Each capability reads its own section; this module only parses the file and reports errors
//! with the file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

/// The whole file. Every section is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    #[serde(default)]
    pub sqlite_database: BTreeMap<String, SqliteDatabaseConfig>,
    #[serde(default)]
    pub variables_provider: Vec<VariablesProviderConfig>,
    #[serde(default)]
    pub outbound_connections: OutboundConnectionsConfig,
    #[serde(default)]
    pub outbound_http: OutboundHttpConfig,
    #[serde(default, rename = "client_tls")]
    client_tls_tables: Vec<toml::Spanned<ClientTlsConfig>>,
    /// `[[client_tls]]`, each with where it starts (`file:line`) for errors found later.
    #[serde(skip)]
    pub client_tls: Vec<(String, ClientTlsConfig)>,
    /// Where the file is; relative paths in it start from its folder.
    #[serde(skip)]
    pub dir: PathBuf,
}

/// `[limits]` and `[limits.component.<id>]`: every field optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub timeout: Option<String>,
    pub memory: Option<String>,
    pub max_request_body: Option<String>,
    #[serde(default)]
    pub component: BTreeMap<String, LimitsSection>,
}

/// `[outbound_connections]`: how many connections a component keeps to databases and brokers.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundConnectionsConfig {
    /// Distinct addresses one component may keep open, per protocol (Redis, MQTT, PostgreSQL,
    /// MySQL); opening one more is `too-many-connections` (or `connection-failed`).
    #[serde(default = "default_max_addresses")]
    pub max_addresses: usize,
    /// Connections in each MySQL pool (one pool per component and address).
    #[serde(default = "default_mysql_pool_size")]
    pub mysql_pool_size: usize,
}

fn default_max_addresses() -> usize {
    64
}

fn default_mysql_pool_size() -> usize {
    10
}

impl Default for OutboundConnectionsConfig {
    fn default() -> Self {
        Self {
            max_addresses: default_max_addresses(),
            mysql_pool_size: default_mysql_pool_size(),
        }
    }
}

/// `[outbound_http]`, as in Spin: whether a component's outbound HTTP connections are kept open
/// for its later requests.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundHttpConfig {
    #[serde(default = "default_connection_pooling")]
    pub connection_pooling: bool,
}

fn default_connection_pooling() -> bool {
    true
}

impl Default for OutboundHttpConfig {
    fn default() -> Self {
        Self {
            connection_pooling: default_connection_pooling(),
        }
    }
}

/// `[[client_tls]]`, as in Spin: how the listed components' outbound HTTPS requests to the
/// listed hosts check the server (`ca_roots_file`, with or without the web's roots) and which
/// certificate they present (`client_cert_file` and `client_private_key_file`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientTlsConfig {
    pub component_ids: Vec<String>,
    /// `host` (any port) or `host:port`.
    pub hosts: Vec<String>,
    /// Whether the web's root certificates are trusted too; by default only when no
    /// `ca_roots_file` is given.
    pub ca_use_webpki_roots: Option<bool>,
    pub ca_roots_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_private_key_file: Option<PathBuf>,
}

/// `[key_value_store.<label>]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum KeyValueStoreConfig {
    /// Embedded SQLite (`type = "spin"`), at `path` or in the state dir.
    #[serde(rename = "spin", alias = "sqlite")]
    Embedded { path: Option<PathBuf> },
    /// A Redis server.
    #[serde(rename = "redis")]
    Redis { url: String },
}

/// `[sqlite_database.<label>]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum SqliteDatabaseConfig {
    #[serde(rename = "spin", alias = "sqlite")]
    File { path: Option<PathBuf> },
}

/// `[[variables_provider]]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum VariablesProviderConfig {
    /// Values written in the file.
    #[serde(rename = "static")]
    Static { values: BTreeMap<String, String> },
    /// Environment variables `<PREFIX>_<NAME>` and a dotenv file.
    #[serde(rename = "env")]
    Env {
        prefix: Option<String>,
        dotenv_path: Option<PathBuf>,
    },
}

impl RuntimeConfig {
    /// Reads and parses `path`; errors name the file and line.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading runtime config {}", path.display()))?;
        let mut config = Self::parse(&path.display().to_string(), &text)?;
        config.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    pub fn parse(file: &str, text: &str) -> anyhow::Result<Self> {
        let line_at = |span: Option<std::ops::Range<usize>>| {
            span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0)
        };
        let mut config: Self = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{file}:{}: {} — see docs/REFERENCE.md for the runtime-config layout",
                line_at(e.span()),
                e.message().trim_end()
            )
        })?;
        config.client_tls = std::mem::take(&mut config.client_tls_tables)
            .into_iter()
            .map(|t| {
                let at = format!("{file}:{}", line_at(Some(t.span())));
                (at, t.into_inner())
            })
            .collect();
        Ok(config)
    }

    /// Resolves a path written in the file against the file's folder.
    pub fn resolve_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_layout_parses() {
        let c = RuntimeConfig::parse(
            "rc.toml",
            r#"
[key_value_store.default]
type = "spin"
path = "data/kv.db"

[key_value_store.cache]
type = "redis"
url = "redis://127.0.0.1:6379"

[sqlite_database.reports]
type = "spin"
path = "reports.db"

[[variables_provider]]
type = "static"
values = { api_key = "abc" }

[[variables_provider]]
type = "env"
prefix = "MYAPP"

[limits]
timeout = "5s"

[outbound_http]
connection_pooling = false
"#,
        )
        .unwrap();
        assert_eq!(
            c.key_value_store["cache"],
            KeyValueStoreConfig::Redis {
                url: "redis://127.0.0.1:6379".into()
            }
        );
        assert_eq!(c.variables_provider.len(), 2);
        assert_eq!(c.limits.timeout.as_deref(), Some("5s"));
        assert!(!c.outbound_http.connection_pooling);
        assert!(RuntimeConfig::default().outbound_http.connection_pooling);
    }

    #[test]
    fn client_tls_tables_keep_their_line() {
        let c = RuntimeConfig::parse(
            "rc.toml",
            r#"[outbound_http]
connection_pooling = true

[[client_tls]]
component_ids = ["api"]
hosts = ["internal.example:8443"]
ca_roots_file = "ca.pem"

[[client_tls]]
component_ids = ["api", "jobs"]
hosts = ["mtls.example"]
client_cert_file = "client.pem"
client_private_key_file = "client.key"
"#,
        )
        .unwrap();
        let [(first_at, first), (second_at, second)] = &c.client_tls[..] else {
            panic!("two tables: {:?}", c.client_tls);
        };
        assert_eq!(first_at, "rc.toml:4");
        assert_eq!(first.hosts, ["internal.example:8443"]);
        assert_eq!(first.ca_roots_file.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(second_at, "rc.toml:9");
        assert_eq!(second.component_ids, ["api", "jobs"]);
        assert_eq!(second.ca_use_webpki_roots, None);
        let err = RuntimeConfig::parse(
            "rc.toml",
            "[[client_tls]]\ncomponent_ids = []\nhosts = []\nca_file = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("rc.toml:4:") && err.contains("ca_file"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = RuntimeConfig::parse("rc.toml", "[key_value_store.x]\ntype = \"memcached\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("rc.toml:"), "{err}");
        assert!(err.contains("memcached"), "{err}");
    }
}
