//! Spin's *locked app*: the JSON document a registry artifact carries instead of a `spin.toml`,
//! with every component's Wasm and file named by content digest.
//!
//! Two pure conversions live here, one per direction:
//! - [`LockedApp::from_manifest`] (push): a parsed manifest plus the digests of the packed
//!   content → the locked app, shaped as Spin writes it, so `spin up` runs what Boson pushes.
//! - [`LockedApp::to_manifest`] (pull): a locked app (Boson's or Spin's) → the text of a
//!   `spin.toml` whose sources are `wasm/<id>.wasm` and whose files are `files/<id>/`, so a
//!   pulled app goes through the same parser and resolver as a local one.
//!
//! Neither reads a file or the network; `registry/mod.rs` moves the bytes.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use boson_manifest::{Executor, HttpRoute, HttpTarget, Manifest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The `content_type` of a component's Wasm source.
const WASM_CONTENT_TYPE: &str = "application/wasm";

/// Values of `must_understand` Boson knows how to honour.
const KNOWN_MUST_UNDERSTAND: &[&str] = &["host_requirements", "component_host_requirements"];

/// Host requirements Boson meets. Local service chaining (`*.spin.internal`) is not implemented,
/// so an app that requires it is refused when it is pulled, not on its first request.
const SUPPORTED_HOST_REQUIREMENTS: &[&str] = &[];

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

    /// The locked app for `manifest`, whose components' content was packed into `packed` (by
    /// component id). Shaped as Spin's loader shapes it: trigger ids `<component>-<type>-trigger`,
    /// component grants in `metadata`, variables as `config`.
    pub fn from_manifest(
        manifest: &Manifest,
        packed: &BTreeMap<String, PackedComponent>,
    ) -> anyhow::Result<Self> {
        let app = &manifest.application;
        let mut metadata = Map::new();
        metadata.insert("name".into(), app.name.clone().into());
        if let Some(v) = &app.version {
            metadata.insert("version".into(), v.clone().into());
        }
        if let Some(d) = &app.description {
            metadata.insert("description".into(), d.clone().into());
        }
        metadata.insert("authors".into(), json!(app.authors));
        let mut trigger_settings = Map::new();
        for (kind, table) in &app.trigger_settings {
            trigger_settings.insert(
                kind.clone(),
                toml_to_json(&toml::Value::Table(table.clone())),
            );
        }
        metadata.insert("triggers".into(), Value::Object(trigger_settings.clone()));
        // Spin also writes the settings of a single trigger type under `trigger`, with `type`.
        let mut kinds: Vec<&str> = Vec::new();
        if !manifest.http_triggers.is_empty() {
            kinds.push("http");
        }
        for t in &manifest.other_triggers {
            if !kinds.contains(&t.trigger_type.as_str()) {
                kinds.push(&t.trigger_type);
            }
        }
        if let [kind] = kinds.as_slice() {
            let mut single = match trigger_settings.get(*kind) {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            single.insert("type".into(), (*kind).into());
            metadata.insert("trigger".into(), Value::Object(single));
        }

        let variables = manifest
            .variables
            .iter()
            .map(|(name, v)| {
                let variable = LockedVariable {
                    description: v.description.clone(),
                    default: v.default.clone(),
                    secret: v.secret,
                };
                (name.clone(), variable)
            })
            .collect();

        let mut ids = TriggerIds::default();
        let mut triggers = Vec::new();
        for t in &manifest.http_triggers {
            let mut config = Map::new();
            let component = match &t.target {
                HttpTarget::Component(id) => {
                    config.insert("component".into(), id.clone().into());
                    Some(id.as_str())
                }
                HttpTarget::StaticResponse(r) => {
                    let headers: Map<String, Value> = r
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone().into()))
                        .collect();
                    config.insert(
                        "static_response".into(),
                        json!({ "status_code": r.status, "headers": headers, "body": r.body }),
                    );
                    None
                }
            };
            let route = match &t.route {
                HttpRoute::Path(p) => Value::from(p.clone()),
                HttpRoute::Private => json!({ "private": true }),
            };
            config.insert("route".into(), route);
            match &t.executor {
                None => {}
                Some(Executor::Spin) => {
                    config.insert("executor".into(), json!({ "type": "spin" }));
                }
                Some(Executor::Wagi { argv, entrypoint }) => {
                    let mut e = Map::new();
                    e.insert("type".into(), "wagi".into());
                    if let Some(a) = argv {
                        e.insert("argv".into(), a.clone().into());
                    }
                    if let Some(p) = entrypoint {
                        e.insert("entrypoint".into(), p.clone().into());
                    }
                    config.insert("executor".into(), Value::Object(e));
                }
            }
            triggers.push(LockedTrigger {
                id: ids.next("http", component),
                trigger_type: "http".into(),
                trigger_config: Value::Object(config),
                trigger_dependencies: Map::new(),
            });
        }
        for t in &manifest.other_triggers {
            let Value::Object(mut config) = toml_to_json(&toml::Value::Table(t.settings.clone()))
            else {
                unreachable!("a table converts to an object");
            };
            if let Some(id) = &t.component {
                config.insert("component".into(), id.clone().into());
            }
            triggers.push(LockedTrigger {
                id: ids.next(&t.trigger_type, t.component.as_deref()),
                trigger_type: t.trigger_type.clone(),
                trigger_config: Value::Object(config),
                trigger_dependencies: Map::new(),
            });
        }

        let mut components = Vec::new();
        for (id, c) in &manifest.components {
            if let Some(d) = &c.dependencies {
                bail!(
                    "line {}: component `{id}` has `dependencies`, which Boson cannot compose yet — compose the component first (e.g. with `wac`) and push the result",
                    d.line
                );
            }
            let content = packed
                .get(id)
                .with_context(|| format!("component `{id}` was not packed"))?;
            let mut metadata = Map::new();
            if let Some(d) = &c.description {
                metadata.insert("description".into(), d.clone().into());
            }
            let values = |list: &[boson_manifest::Located<String>]| -> Value {
                list.iter().map(|l| Value::from(l.value.clone())).collect()
            };
            metadata.insert(
                "allowed_outbound_hosts".into(),
                values(&c.allowed_outbound_hosts),
            );
            metadata.insert("key_value_stores".into(), values(&c.key_value_stores));
            metadata.insert("databases".into(), values(&c.sqlite_databases));
            metadata.insert("ai_models".into(), values(&c.ai_models));
            let mut host_requirements = Map::new();
            if c.allowed_outbound_hosts
                .iter()
                .any(|h| h.value.contains(".spin.internal"))
            {
                host_requirements.insert(SERVICE_CHAINING.into(), "required".into());
            }
            components.push(LockedComponent {
                id: id.clone(),
                metadata,
                source: LockedSource {
                    content_type: WASM_CONTENT_TYPE.into(),
                    content: content.wasm.clone(),
                },
                env: c.environment.clone(),
                files: content.files.clone(),
                config: c
                    .variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.value.clone()))
                    .collect(),
                dependencies: Map::new(),
                trigger_dependencies: Map::new(),
                host_requirements,
            });
        }
        let mut must_understand = Vec::new();
        if components.iter().any(|c| !c.host_requirements.is_empty()) {
            must_understand.push("component_host_requirements".to_string());
        }
        Ok(Self {
            spin_lock_version: u32::from(!must_understand.is_empty()),
            must_understand,
            metadata,
            host_requirements: Map::new(),
            variables,
            triggers,
            components,
        })
    }

    /// The app a bare component artifact (one Wasm layer, no locked app) stands for: the
    /// component, named after the repository, at `/...` with no grants — as `--from app.wasm`.
    pub fn single_component(repository_name: &str, wasm_digest: &str) -> Self {
        let mut id: String = repository_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        if !id.starts_with(|c: char| c.is_ascii_lowercase()) {
            id = format!("app-{id}");
        }
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

    /// Checks what Boson cannot run (dependencies, unknown `must_understand`, unmet host
    /// requirements, unsafe file paths) and returns the text of an equivalent `spin.toml`:
    /// component `<id>`'s Wasm at `wasm/<id>.wasm`, its files under `files/<id>/`, mounted at
    /// `/`. `fallback_name` names the app when the locked app does not.
    pub fn to_manifest(&self, fallback_name: &str) -> anyhow::Result<String> {
        for m in &self.must_understand {
            if !KNOWN_MUST_UNDERSTAND.contains(&m.as_str()) {
                bail!(
                    "the app requires the host to understand `{m}`, which this version of Boson does not — upgrade Boson, or push the app with an older Spin"
                );
            }
        }
        check_host_requirements(&self.host_requirements, "the app")?;

        let mut application = toml::Table::new();
        let text = |key: &str| self.metadata.get(key).and_then(Value::as_str);
        application.insert("name".into(), text("name").unwrap_or(fallback_name).into());
        for key in ["version", "description"] {
            if let Some(v) = text(key) {
                application.insert(key.into(), v.into());
            }
        }
        if let Some(Value::Array(authors)) = self.metadata.get("authors")
            && !authors.is_empty()
        {
            application.insert(
                "authors".into(),
                json_to_toml(&Value::Array(authors.clone()), "authors")?,
            );
        }
        if let Some(Value::Object(settings)) = self.metadata.get("triggers")
            && !settings.is_empty()
        {
            application.insert(
                "trigger".into(),
                json_to_toml(&Value::Object(settings.clone()), "metadata.triggers")?,
            );
        }

        let mut doc = toml::Table::new();
        doc.insert("spin_manifest_version".into(), 2.into());
        doc.insert("application".into(), application.into());

        if !self.variables.is_empty() {
            let mut variables = toml::Table::new();
            for (name, v) in &self.variables {
                let mut t = toml::Table::new();
                match &v.default {
                    Some(d) => t.insert("default".into(), d.clone().into()),
                    None => t.insert("required".into(), true.into()),
                };
                if v.secret {
                    t.insert("secret".into(), true.into());
                }
                if let Some(d) = &v.description {
                    t.insert("description".into(), d.clone().into());
                }
                variables.insert(name.clone(), t.into());
            }
            doc.insert("variables".into(), variables.into());
        }

        let mut triggers: BTreeMap<String, Vec<toml::Value>> = BTreeMap::new();
        for t in &self.triggers {
            if !t.trigger_dependencies.is_empty() {
                bail!(
                    "trigger `{}` has trigger dependencies (middleware), which Boson cannot compose yet",
                    t.id
                );
            }
            let mut table = match json_to_toml(&t.trigger_config, &format!("trigger `{}`", t.id))? {
                toml::Value::Table(table) => table,
                _ => bail!("trigger `{}`: `trigger_config` is not an object", t.id),
            };
            // Boson's manifest takes `id` on HTTP triggers only; ids are not needed to run.
            table.remove("id");
            triggers
                .entry(t.trigger_type.clone())
                .or_default()
                .push(table.into());
        }
        let triggers: toml::Table = triggers
            .into_iter()
            .map(|(kind, list)| (kind, toml::Value::Array(list)))
            .collect();
        doc.insert("trigger".into(), triggers.into());

        let mut components = toml::Table::new();
        for c in &self.components {
            let id = &c.id;
            check_component_id(id)?;
            if !c.dependencies.is_empty() || !c.trigger_dependencies.is_empty() {
                bail!(
                    "component `{id}` has component dependencies, which Boson cannot compose yet — push the app with its components composed (`spin registry push` composes them by default)"
                );
            }
            check_host_requirements(&c.host_requirements, &format!("component `{id}`"))?;
            c.source
                .content
                .digest
                .as_deref()
                .with_context(|| format!("component `{id}`: its source has no digest"))?;
            for f in &c.files {
                check_file_path(&f.path).with_context(|| format!("component `{id}`"))?;
                if f.content.inline.is_none() && f.content.digest.is_none() {
                    bail!(
                        "component `{id}`: file `{}` has neither a digest nor inline content",
                        f.path
                    );
                }
            }
            let mut t = toml::Table::new();
            if let Some(d) = c.metadata.get("description").and_then(Value::as_str) {
                t.insert("description".into(), d.into());
            }
            t.insert("source".into(), format!("wasm/{id}.wasm").into());
            if !c.files.is_empty() {
                let mut mount = toml::Table::new();
                mount.insert("source".into(), format!("files/{id}").into());
                mount.insert("destination".into(), "/".into());
                t.insert("files".into(), toml::Value::Array(vec![mount.into()]));
            }
            if !c.env.is_empty() {
                let env: toml::Table = c
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                t.insert("environment".into(), env.into());
            }
            for (from, to) in [
                ("allowed_outbound_hosts", "allowed_outbound_hosts"),
                ("allowed_http_hosts", "allowed_http_hosts"),
                ("key_value_stores", "key_value_stores"),
                ("databases", "sqlite_databases"),
                ("ai_models", "ai_models"),
            ] {
                if let Some(list @ Value::Array(items)) = c.metadata.get(from)
                    && !items.is_empty()
                {
                    t.insert(
                        to.into(),
                        json_to_toml(list, &format!("component `{id}` {from}"))?,
                    );
                }
            }
            if !c.config.is_empty() {
                let vars: toml::Table = c
                    .config
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                t.insert("variables".into(), vars.into());
            }
            components.insert(id.clone(), t.into());
        }
        if !components.is_empty() {
            doc.insert("component".into(), components.into());
        }
        let body = toml::to_string(&doc).context("writing the manifest")?;
        Ok(format!(
            "# Generated by `boson registry pull` from the artifact's locked app (locked.json).\n{}\n",
            body.trim_end()
        ))
    }
}

/// Spin's trigger ids: `<component>-<type>-trigger`, else `<type>-<n>` with the first free `n`.
#[derive(Default)]
struct TriggerIds {
    used: std::collections::BTreeSet<String>,
    counters: BTreeMap<String, usize>,
}

impl TriggerIds {
    fn next(&mut self, kind: &str, component: Option<&str>) -> String {
        if let Some(c) = component {
            let id = format!("{c}-{kind}-trigger");
            if self.used.insert(id.clone()) {
                return id;
            }
        }
        let n = self.counters.entry(kind.to_string()).or_insert(1);
        loop {
            let id = format!("{kind}-{n}");
            *n += 1;
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }
}

fn check_host_requirements(reqs: &Map<String, Value>, who: &str) -> anyhow::Result<()> {
    for (key, value) in reqs {
        if value.as_str() == Some("optional") || SUPPORTED_HOST_REQUIREMENTS.contains(&key.as_str())
        {
            continue;
        }
        if key == SERVICE_CHAINING {
            bail!(
                "{who} requires local service chaining (`*.spin.internal` hosts), which Boson does not implement yet"
            );
        }
        bail!("{who} requires the host feature `{key}`, which Boson does not implement");
    }
    Ok(())
}

/// A component id becomes a path segment (`wasm/<id>.wasm`): only Spin's id characters.
fn check_component_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !ok {
        bail!(
            "component id `{id}` is not a valid Spin component id (lowercase letters, digits, `-`)"
        );
    }
    Ok(())
}

/// A file's path must stay inside the component's `/`: relative, no `..`, no empty segments.
pub fn check_file_path(path: &str) -> anyhow::Result<()> {
    let p = std::path::Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !ok {
        bail!("file path `{path}` leads outside the component's files — the artifact is malformed");
    }
    Ok(())
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
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
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

    fn packed(ids: &[&str]) -> BTreeMap<String, PackedComponent> {
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

    fn locked() -> LockedApp {
        let manifest = boson_manifest::parse("spin.toml", MANIFEST).unwrap();
        LockedApp::from_manifest(&manifest, &packed(&["api", "web", "worker"])).unwrap()
    }

    #[test]
    fn from_manifest_has_spins_shape() {
        let json = serde_json::to_value(locked()).unwrap();
        assert_eq!(json["spin_lock_version"], 0);
        assert_eq!(json["metadata"]["name"], "shop");
        assert_eq!(
            json["metadata"]["triggers"]["redis"]["address"],
            "redis://127.0.0.1:6379"
        );
        assert!(
            json["metadata"].get("trigger").is_none(),
            "two trigger types: no `trigger`"
        );
        assert_eq!(json["variables"]["token"], json!({ "secret": true }));
        assert_eq!(json["variables"]["greeting"], json!({ "default": "hi" }));
        let triggers = json["triggers"].as_array().unwrap();
        assert_eq!(triggers[0]["id"], "api-http-trigger");
        assert_eq!(
            triggers[0]["trigger_config"],
            json!({ "component": "api", "route": "/api/..." })
        );
        assert_eq!(triggers[1]["id"], "http-1");
        assert_eq!(
            triggers[1]["trigger_config"]["static_response"]["status_code"],
            201
        );
        assert_eq!(
            triggers[2]["trigger_config"]["route"],
            json!({ "private": true })
        );
        assert_eq!(triggers[3]["trigger_type"], "redis");
        assert_eq!(
            triggers[3]["trigger_config"],
            json!({ "channel": "orders", "component": "worker" })
        );
        let api = &json["components"][0];
        assert_eq!(api["id"], "api");
        assert_eq!(api["source"]["content_type"], "application/wasm");
        assert_eq!(
            api["source"]["digest"],
            format!("sha256:{}", "a".repeat(64))
        );
        assert_eq!(api["metadata"]["databases"], json!(["default"]));
        assert_eq!(api["config"]["message"], "{{ greeting }}!");
        assert_eq!(api["env"]["MODE"], "prod");
        let web = &json["components"][1];
        assert_eq!(web["files"][1]["inline"], "dGlueQ==");
        assert_eq!(web["files"][1]["path"], "css/site.css");
    }

    #[test]
    fn round_trip_through_the_manifest_parser() {
        let locked = locked();
        // Through JSON, as it travels.
        let locked = LockedApp::from_json(&serde_json::to_vec(&locked).unwrap()).unwrap();
        let text = locked.to_manifest("fallback").unwrap();
        let m = boson_manifest::parse("spin.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let original = boson_manifest::parse("spin.toml", MANIFEST).unwrap();
        assert_eq!(m.application.name, "shop");
        assert_eq!(m.application.version.as_deref(), Some("1.2.0"));
        assert_eq!(m.application.authors, vec!["Ada".to_string()]);
        assert_eq!(
            m.application.trigger_settings,
            original.application.trigger_settings
        );
        assert_eq!(m.variables, original.variables);
        let routes = |m: &Manifest| -> Vec<(HttpRoute, HttpTarget)> {
            m.http_triggers
                .iter()
                .map(|t| (t.route.clone(), t.target.clone()))
                .collect()
        };
        assert_eq!(routes(&m), routes(&original));
        assert_eq!(
            m.other_triggers[0].settings,
            original.other_triggers[0].settings
        );
        let api = &m.components["api"];
        assert_eq!(
            api.source,
            boson_manifest::Source::Path("wasm/api.wasm".into())
        );
        assert_eq!(api.environment, original.components["api"].environment);
        assert_eq!(api.variables["message"].value, "{{ greeting }}!");
        assert_eq!(api.sqlite_databases[0].value, "default");
        assert_eq!(api.allowed_outbound_hosts[0].value, "https://example.com");
        assert_eq!(
            m.components["web"].files,
            vec![boson_manifest::FileMount::Mount {
                source: "files/web".into(),
                destination: "/".into()
            }]
        );
        assert!(m.components["worker"].files.is_empty());
    }

    /// A locked app as Spin 3 pushes it (trimmed from what `spin registry push` writes).
    const SPIN_LOCKED: &str = r#"{
      "spin_lock_version": 1,
      "metadata": {
        "authors": ["Someone <s@example.com>"],
        "name": "spin-hello",
        "trigger": { "type": "http" },
        "triggers": {},
        "version": "0.1.0"
      },
      "triggers": [
        { "id": "spin-hello-http-trigger", "trigger_type": "http",
          "trigger_config": { "component": "spin-hello", "route": "/...", "executor": null } }
      ],
      "components": [
        { "id": "spin-hello",
          "metadata": { "allowed_outbound_hosts": [], "key_value_stores": ["default"],
                        "databases": [], "ai_models": [],
                        "build": { "command": "cargo build --target wasm32-wasip1 --release" } },
          "source": { "content_type": "application/wasm",
                      "digest": "sha256:3e5e1c2e1b7a4f1d0b5a8f7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e" },
          "files": [
            { "digest": "sha256:4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a",
              "inline": "aGVsbG8=", "path": "static/hello.txt" },
            { "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
              "path": "static/big.bin" }
          ],
          "unknown_future_field": 1 }
      ]
    }"#;

    #[test]
    fn reads_a_locked_app_spin_pushed() {
        let locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        assert_eq!(
            locked.components[0].files[0].content.inline.as_deref(),
            Some(&b"hello"[..])
        );
        let text = locked.to_manifest("fallback").unwrap();
        let m = boson_manifest::parse("spin.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(m.application.name, "spin-hello");
        assert_eq!(m.http_triggers.len(), 1);
        assert_eq!(m.http_triggers[0].route, HttpRoute::Path("/...".into()));
        assert_eq!(
            m.components["spin-hello"].key_value_stores[0].value,
            "default"
        );
        assert!(m.components["spin-hello"].sqlite_databases.is_empty());
    }

    #[test]
    fn refuses_what_boson_cannot_run() {
        let mut locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        locked.components[0].files[0].path = "../etc/passwd".into();
        let err = locked.to_manifest("x").unwrap_err();
        assert!(format!("{err:#}").contains("leads outside"), "{err:#}");

        let mut locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        locked.components[0]
            .dependencies
            .insert("a:b/c".into(), json!({}));
        let err = locked.to_manifest("x").unwrap_err();
        assert!(err.to_string().contains("cannot compose"), "{err}");

        let mut locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        locked.must_understand.push("time_travel".into());
        assert!(
            locked
                .to_manifest("x")
                .unwrap_err()
                .to_string()
                .contains("time_travel")
        );

        let mut locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        locked.components[0]
            .host_requirements
            .insert(SERVICE_CHAINING.into(), "required".into());
        assert!(
            locked
                .to_manifest("x")
                .unwrap_err()
                .to_string()
                .contains("service chaining")
        );

        let mut locked = LockedApp::from_json(SPIN_LOCKED.as_bytes()).unwrap();
        locked.components[0].id = "../evil".into();
        assert!(locked.to_manifest("x").is_err());
    }

    #[test]
    fn service_chaining_is_marked_as_spin_marks_it() {
        let manifest = boson_manifest::parse(
            "spin.toml",
            r#"spin_manifest_version = 2
[application]
name = "a"
[[trigger.http]]
route = "/..."
component = "front"
[component.front]
source = "front.wasm"
allowed_outbound_hosts = ["http://back.spin.internal"]
"#,
        )
        .unwrap();
        let locked = LockedApp::from_manifest(&manifest, &packed(&["front"])).unwrap();
        let json = serde_json::to_value(&locked).unwrap();
        assert_eq!(json["spin_lock_version"], 1);
        assert_eq!(
            json["must_understand"],
            json!(["component_host_requirements"])
        );
        assert_eq!(
            json["components"][0]["host_requirements"],
            json!({ "local_service_chaining": "required" })
        );
        assert_eq!(json["metadata"]["trigger"], json!({ "type": "http" }));
    }
}
