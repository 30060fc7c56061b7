//! Push: a parsed manifest and its packed content → the locked app, as Spin's loader shapes it.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use boson_manifest::{Executor, HttpRoute, HttpTarget, Manifest};
use serde_json::{Map, Value, json};

use super::{
    LockedApp, LockedComponent, LockedSource, LockedTrigger, LockedVariable, PackedComponent,
    SERVICE_CHAINING, WASM_CONTENT_TYPE, toml_to_json,
};

impl LockedApp {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{locked, packed};
    use super::*;

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
