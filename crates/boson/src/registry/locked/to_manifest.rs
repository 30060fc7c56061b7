//! Pull: a locked app (Boson's or Spin's) → the text of an equivalent `spin.toml`, refusing
//! what Boson cannot run.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde_json::{Map, Value};

use super::{LockedApp, SERVICE_CHAINING, json_to_toml};

/// Values of `must_understand` Boson knows how to honour.
const KNOWN_MUST_UNDERSTAND: &[&str] = &["host_requirements", "component_host_requirements"];

/// Host requirements Boson meets. Local service chaining (`*.spin.internal`) is not implemented,
/// so an app that requires it is refused when it is pulled, not on its first request.
const SUPPORTED_HOST_REQUIREMENTS: &[&str] = &[];

impl LockedApp {
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

#[cfg(test)]
mod tests {
    use boson_manifest::{HttpRoute, HttpTarget, Manifest};
    use serde_json::json;

    use super::super::tests::{MANIFEST, locked};
    use super::*;

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
}
