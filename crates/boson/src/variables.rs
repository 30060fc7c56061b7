//! Application variables: where their values come from, and the component views built from them.
//!
//! Sources, first match wins: `--variable name=value`; the environment (`BOSON_VARIABLE_<NAME>`,
//! then `SPIN_VARIABLE_<NAME>`); the runtime config's `[[variables_provider]]` entries in order;
//! the `.env` file next to the manifest; the variable's `default`. Values are resolved once, at
//! start: a required variable without a value stops the app there. Secret values are wrapped so
//! that no `Debug` or log line can print them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use boson_manifest::{TemplatePart, Variable};

use crate::runtime_config::{RuntimeConfig, VariablesProviderConfig};

/// A value that may be secret; `Debug` never shows a secret.
#[derive(Clone, PartialEq)]
pub struct VariableValue {
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for VariableValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            f.write_str("<secret>")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

/// Everything a value can come from, gathered before resolution.
#[derive(Debug, Clone, Default)]
pub struct VariableSources {
    /// `--variable name=value`.
    pub cli: BTreeMap<String, String>,
    /// The host process environment.
    pub env: BTreeMap<String, String>,
    /// Provider values from the runtime config, already flattened in priority order.
    pub providers: Vec<BTreeMap<String, String>>,
    /// The `.env` file next to the manifest (`BOSON_VARIABLE_*` / `SPIN_VARIABLE_*` keys).
    pub dotenv: BTreeMap<String, String>,
}

fn env_key(prefix: &str, name: &str) -> String {
    format!("{prefix}_VARIABLE_{}", name.to_ascii_uppercase())
}

impl VariableSources {
    /// Collects the sources: CLI pairs, this process's environment, the runtime config's
    /// providers and `<app dir>/.env`.
    pub fn gather(
        cli: &[String],
        runtime_config: Option<&RuntimeConfig>,
        app_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut sources = Self {
            env: std::env::vars().collect(),
            ..Self::default()
        };
        for pair in cli {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("--variable `{pair}`: write it as name=value"))?;
            sources.cli.insert(k.trim().to_string(), v.to_string());
        }
        if let Some(rc) = runtime_config {
            for provider in &rc.variables_provider {
                sources.providers.push(match provider {
                    VariablesProviderConfig::Static { values } => values.clone(),
                    VariablesProviderConfig::Env {
                        prefix,
                        dotenv_path,
                    } => {
                        let prefix = prefix.as_deref().unwrap_or("SPIN").to_ascii_uppercase();
                        let mut values = BTreeMap::new();
                        let mut add = |map: &BTreeMap<String, String>| {
                            let head = format!("{prefix}_VARIABLE_");
                            for (k, v) in map {
                                if let Some(name) = k.strip_prefix(&head) {
                                    values
                                        .entry(name.to_ascii_lowercase())
                                        .or_insert_with(|| v.clone());
                                }
                            }
                        };
                        add(&sources.env);
                        if let Some(path) = dotenv_path {
                            add(&read_dotenv(&rc.resolve_path(path))?);
                        }
                        values
                    }
                });
            }
        }
        let dotenv = app_dir.join(".env");
        if dotenv.is_file() {
            sources.dotenv = read_dotenv(&dotenv)?;
        }
        Ok(sources)
    }

    fn lookup(&self, name: &str) -> Option<&String> {
        let env_names = [env_key("BOSON", name), env_key("SPIN", name)];
        self.cli
            .get(name)
            .or_else(|| env_names.iter().find_map(|k| self.env.get(k)))
            .or_else(|| self.providers.iter().find_map(|p| p.get(name)))
            .or_else(|| env_names.iter().find_map(|k| self.dotenv.get(k)))
    }
}

/// Parses a dotenv file: `KEY=VALUE` lines, `#` comments, optional quotes.
fn read_dotenv(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut values = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line
            .split_once('=')
            .with_context(|| format!("{}:{}: expected KEY=VALUE", path.display(), i + 1))?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        values.insert(k.trim().to_string(), v.to_string());
    }
    Ok(values)
}

/// Resolves every application variable that has a value; fails on a required one without.
pub fn resolve_app_variables(
    declared: &BTreeMap<String, Variable>,
    sources: &VariableSources,
) -> anyhow::Result<BTreeMap<String, VariableValue>> {
    for name in sources.cli.keys() {
        if !declared.contains_key(name) {
            bail!("--variable {name}: the app declares no variable `{name}` in [variables]");
        }
    }
    let mut values = BTreeMap::new();
    for (name, var) in declared {
        let value = sources
            .lookup(name)
            .cloned()
            .or_else(|| var.default.clone());
        match value {
            Some(value) => {
                values.insert(
                    name.clone(),
                    VariableValue {
                        value,
                        secret: var.secret,
                    },
                );
            }
            None if var.required => bail!(
                "variable `{name}` is required but has no value — set {}, pass `--variable {name}=...`, or give it a value in a variables provider",
                env_key("BOSON", name)
            ),
            None => {}
        }
    }
    Ok(values)
}

/// Renders a component's `variables` templates against the app's values. A template that
/// refers to a variable without a value leaves that component variable undefined.
pub fn render_component_variables(
    templates: &BTreeMap<String, String>,
    app: &BTreeMap<String, VariableValue>,
) -> anyhow::Result<BTreeMap<String, VariableValue>> {
    let mut out = BTreeMap::new();
    'vars: for (name, template) in templates {
        let parts = boson_manifest::parse_template(template)
            .map_err(|e| anyhow::anyhow!("component variable `{name}`: {e}"))?;
        let mut value = String::new();
        let mut secret = false;
        for part in parts {
            match part {
                TemplatePart::Literal(text) => value.push_str(&text),
                TemplatePart::Variable(var) => match app.get(&var) {
                    Some(v) => {
                        value.push_str(&v.value);
                        secret |= v.secret;
                    }
                    None => continue 'vars,
                },
            }
        }
        out.insert(name.clone(), VariableValue { value, secret });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(default: Option<&str>, required: bool, secret: bool) -> Variable {
        Variable {
            default: default.map(str::to_string),
            required,
            secret,
            description: None,
        }
    }

    #[test]
    fn sources_in_priority_order() {
        let declared = BTreeMap::from([
            ("a".to_string(), var(Some("default-a"), false, false)),
            ("b".to_string(), var(None, true, true)),
            ("c".to_string(), var(Some("default-c"), false, false)),
            ("d".to_string(), var(None, false, false)),
        ]);
        let sources = VariableSources {
            cli: BTreeMap::from([("a".into(), "cli-a".into())]),
            env: BTreeMap::from([
                ("SPIN_VARIABLE_A".into(), "env-a".into()),
                ("SPIN_VARIABLE_B".into(), "spin-env-b".into()),
                ("BOSON_VARIABLE_B".into(), "boson-env-b".into()),
            ]),
            providers: vec![BTreeMap::from([("c".into(), "provider-c".into())])],
            dotenv: BTreeMap::from([("BOSON_VARIABLE_C".into(), "dotenv-c".into())]),
        };
        let values = resolve_app_variables(&declared, &sources).unwrap();
        assert_eq!(values["a"].value, "cli-a");
        assert_eq!(values["b"].value, "boson-env-b");
        assert_eq!(values["c"].value, "provider-c");
        assert!(!values.contains_key("d"));
        assert_eq!(format!("{:?}", values["b"]), "<secret>");
    }

    #[test]
    fn required_without_value_fails_and_names_the_fix() {
        let declared = BTreeMap::from([("api_key".to_string(), var(None, true, true))]);
        let err = resolve_app_variables(&declared, &VariableSources::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("api_key") && err.contains("BOSON_VARIABLE_API_KEY"),
            "{err}"
        );
    }

    #[test]
    fn templates_render_and_carry_secrecy() {
        let app = BTreeMap::from([
            (
                "host".to_string(),
                VariableValue {
                    value: "db.local".into(),
                    secret: false,
                },
            ),
            (
                "token".to_string(),
                VariableValue {
                    value: "s3cr3t".into(),
                    secret: true,
                },
            ),
        ]);
        let templates = BTreeMap::from([
            ("url".to_string(), "https://{{ host }}/api".to_string()),
            ("auth".to_string(), "Bearer {{token}}".to_string()),
            ("missing".to_string(), "{{ nope }}".to_string()),
        ]);
        let out = render_component_variables(&templates, &app).unwrap();
        assert_eq!(out["url"].value, "https://db.local/api");
        assert!(out["auth"].secret);
        assert!(!out.contains_key("missing"));
    }

    #[test]
    fn dotenv_files_parse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "# comment\nBOSON_VARIABLE_X=\"quoted\"\nexport SPIN_VARIABLE_Y=plain\n",
        )
        .unwrap();
        let values = read_dotenv(&path).unwrap();
        assert_eq!(values["BOSON_VARIABLE_X"], "quoted");
        assert_eq!(values["SPIN_VARIABLE_Y"], "plain");
    }
}
