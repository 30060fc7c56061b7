//! Spin's *locked app*: the JSON document a registry artifact carries instead of a `spin.toml`,
//! with every component's Wasm and file named by content digest.
//!
//! This file holds the JSON model; two pure conversions, one per direction, live beside it:
//! - `from_manifest.rs` (push): a parsed manifest plus the digests of the packed content → the
//!   locked app, shaped as Spin writes it, so `spin up` runs what Boson pushes.
//! - `to_manifest.rs` (pull): a locked app (Boson's or Spin's) → the text of a `spin.toml` whose
//!   sources are `wasm/<id>.wasm` and whose files are `files/<id>/`, so a pulled app goes
//!   through the same parser and resolver as a local one.
//!
//! None of it reads a file or the network; `push.rs`, `pull.rs` and `store.rs` move the bytes.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

mod from_manifest;
mod to_manifest;

/// The `content_type` of a component's Wasm source.
const WASM_CONTENT_TYPE: &str = "application/wasm";

/// The host requirement Spin sets on a component that calls `*.spin.internal`.
const SERVICE_CHAINING: &str = "local_service_chaining";

/// A fully resolved app, in Spin's `spin.lock` JSON shape. Unknown fields are ignored when
/// reading, as Spin does; `must_understand` names the ones that may not be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedApp {
    /// 0 when nothing needs understanding, else 1 (what Spin writes).
    pub spin_lock_version: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub must_understand: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, LockedVariable>,
    pub triggers: Vec<LockedTrigger>,
    pub components: Vec<LockedComponent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedVariable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// No default means the variable is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedTrigger {
    pub id: String,
    pub trigger_type: String,
    /// The trigger table as written, with `component` naming the component by id.
    pub trigger_config: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedComponent {
    pub id: String,
    /// `description`, `allowed_outbound_hosts`, `key_value_stores`, `databases`, `ai_models`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    pub source: LockedSource,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ContentPath>,
    /// Component variables: name → template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub dependencies: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub trigger_dependencies: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub host_requirements: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockedSource {
    pub content_type: String,
    #[serde(flatten)]
    pub content: ContentRef,
}

/// One file of a component, at `path` relative to the guest's `/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPath {
    #[serde(flatten)]
    pub content: ContentRef,
    pub path: String,
}

/// Where content is: a digest (a layer of the artifact), inline bytes (small files, which Spin
/// does not push as layers), or a `source` URL (only in locked apps that were never pushed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "inline_base64"
    )]
    pub inline: Option<Vec<u8>>,
    /// `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// `inline` is base64 (standard alphabet, padded) in the JSON.
mod inline_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        STANDARD
            .decode(text.as_bytes())
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

/// A component's content after packing: its Wasm and its files, each named by digest (or
/// inlined).
#[derive(Debug, Clone, Default)]
pub struct PackedComponent {
    pub wasm: ContentRef,
    pub files: Vec<ContentPath>,
}

impl LockedApp {
    pub fn from_json(bytes: &[u8]) -> anyhow::Result<Self> {
        serde_json::from_slice(bytes)
            .context("the artifact's locked app is not valid JSON of Spin's locked-app shape")
    }

    /// What each digest in the app is, for progress lines: `component <id>` or `<id>: <path>`.
    pub fn content_names(&self) -> BTreeMap<String, String> {
        let mut names = BTreeMap::new();
        for c in &self.components {
            if let Some(d) = &c.source.content.digest {
                names.insert(d.clone(), format!("component {}", c.id));
            }
            for f in &c.files {
                if let Some(d) = &f.content.digest {
                    names
                        .entry(d.clone())
                        .or_insert_with(|| format!("{}: {}", c.id, f.path));
                }
            }
        }
        names
    }

    /// The app a bare component artifact (one Wasm layer, no locked app) stands for: the
    /// component, named after the repository, at `/...` with no grants — as `--from app.wasm`.
    pub fn single_component(repository_name: &str, wasm_digest: &str) -> Self {
        let id = crate::app::sanitize_id(repository_name);
        let mut metadata = Map::new();
        metadata.insert("name".into(), id.clone().into());
        Self {
            spin_lock_version: 0,
            must_understand: Vec::new(),
            metadata,
            host_requirements: Map::new(),
            variables: BTreeMap::new(),
            triggers: vec![LockedTrigger {
                id: format!("{id}-http-trigger"),
                trigger_type: "http".into(),
                trigger_config: json!({ "component": id, "route": "/..." }),
                trigger_dependencies: Map::new(),
            }],
            components: vec![LockedComponent {
                id: id.clone(),
                metadata: Map::new(),
                source: LockedSource {
                    content_type: WASM_CONTENT_TYPE.into(),
                    content: ContentRef {
                        digest: Some(wasm_digest.into()),
                        ..Default::default()
                    },
                },
                env: BTreeMap::new(),
                files: Vec::new(),
                config: BTreeMap::new(),
                dependencies: Map::new(),
                trigger_dependencies: Map::new(),
                host_requirements: Map::new(),
            }],
        }
    }
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => items.iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// JSON → TOML; `null` object members are dropped (TOML has no null), `null` in a list is an
/// error naming `what`.
fn json_to_toml(value: &Value, what: &str) -> anyhow::Result<toml::Value> {
    Ok(match value {
        Value::Null => bail!("{what}: a list holds `null`, which TOML cannot express"),
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.into(),
            (None, Some(f)) => f.into(),
            _ => bail!("{what}: the number {n} does not fit TOML"),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .map(|v| json_to_toml(v, what))
                .collect::<anyhow::Result<_>>()?,
        ),
        Value::Object(m) => {
            let mut t = toml::Table::new();
            for (k, v) in m {
                if !v.is_null() {
                    t.insert(k.clone(), json_to_toml(v, what)?);
                }
            }
            toml::Value::Table(t)
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "shop"
version = "1.2.0"
authors = ["Ada"]
[application.trigger.redis]
address = "redis://127.0.0.1:6379"
[variables]
greeting = { default = "hi" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/api/..."
component = "api"
[[trigger.http]]
route = "/"
static_response = { status_code = 201, headers = { x-a = "b" }, body = "home" }
[[trigger.http]]
route = { private = true }
component = "web"
[[trigger.redis]]
channel = "orders"
component = "worker"
[component.api]
source = "api.wasm"
allowed_outbound_hosts = ["https://example.com"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
environment = { MODE = "prod" }
[component.api.variables]
message = "{{ greeting }}!"
[component.web]
source = "web.wasm"
files = [{ source = "static", destination = "/" }]
[component.worker]
source = "worker.wasm"
"#;

    pub(crate) fn packed(ids: &[&str]) -> BTreeMap<String, PackedComponent> {
        ids.iter()
            .map(|id| {
                let files = if *id == "web" {
                    vec![
                        ContentPath {
                            content: ContentRef {
                                digest: Some(format!("sha256:{}", "1".repeat(64))),
                                ..Default::default()
                            },
                            path: "index.html".into(),
                        },
                        ContentPath {
                            content: ContentRef {
                                inline: Some(b"tiny".to_vec()),
                                digest: Some(format!("sha256:{}", "2".repeat(64))),
                                ..Default::default()
                            },
                            path: "css/site.css".into(),
                        },
                    ]
                } else {
                    Vec::new()
                };
                let wasm = ContentRef {
                    digest: Some(format!("sha256:{}", "a".repeat(64))),
                    ..Default::default()
                };
                (id.to_string(), PackedComponent { wasm, files })
            })
            .collect()
    }

    pub(crate) fn locked() -> LockedApp {
        let manifest = boson_manifest::parse("spin.toml", MANIFEST).unwrap();
        LockedApp::from_manifest(&manifest, &packed(&["api", "web", "worker"])).unwrap()
    }

    #[test]
    fn content_names_describe_layers() {
        let names = locked().content_names();
        assert_eq!(
            names[&format!("sha256:{}", "1".repeat(64))],
            "web: index.html"
        );
        assert!(names[&format!("sha256:{}", "a".repeat(64))].starts_with("component "));
    }
}
