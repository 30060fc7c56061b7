//! A component's checks: source, files, labels, variable templates, build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::{Checker, Result, located};
use crate::error::ManifestError;
use crate::ids::{IdStyle, check_id, closest, suggest_id};
use crate::model::*;
use crate::raw::*;
use crate::template::{parse_template, referenced_variables};

impl Checker<'_> {
    pub(super) fn component(
        &self,
        id: String,
        place: &str,
        raw: Spanned<RawComponent>,
    ) -> Result<Component> {
        let line = self.lines.of(&raw);
        let raw = raw.into_inner();
        if let Some(hosts) = &raw.allowed_http_hosts {
            return Err(self.allowed_http_hosts(place, hosts));
        }
        let source = self.source(place, raw.source)?;
        let mut files = Vec::new();
        for file in raw.files {
            files.push(self.file_mount(place, file)?);
        }
        let allowed_outbound_hosts = raw.allowed_outbound_hosts;
        for host in &allowed_outbound_hosts {
            if host.get_ref().contains("{{") {
                self.template(
                    host,
                    &format!("`{}` in allowed_outbound_hosts of {place}", host.get_ref()),
                )?;
            }
        }
        let key_value_stores = self.labels(place, "key_value_stores", raw.key_value_stores)?;
        let sqlite_databases = self.labels(place, "sqlite_databases", raw.sqlite_databases)?;
        let ai_models = self.labels(place, "ai_models", raw.ai_models)?;
        let mut variables = BTreeMap::new();
        for (name, template) in raw.variables.0 {
            let name_line = self.lines.of(&name);
            let name = name.into_inner();
            if let Err(why) = check_id(&name, IdStyle::LowerSnake) {
                let example =
                    suggest_id(&name, IdStyle::LowerSnake).unwrap_or_else(|| "api_url".to_string());
                return Err(self.error(
                    name_line,
                    format!("`{name}` in the variables of {place} is not a valid variable name: {why}"),
                    format!("use lowercase letters, digits and '_', starting with a letter, e.g. {example}"),
                ));
            }
            self.template(&template, &format!("variable `{name}` of {place}"))?;
            let template = located(&self.lines, template);
            variables.insert(name, template);
        }
        let build = match raw.build {
            Some(build) => Some(self.build(place, build)?),
            None => None,
        };
        Ok(Component {
            id,
            description: raw.description,
            source,
            files,
            exclude_files: raw.exclude_files,
            environment: raw.environment,
            allowed_outbound_hosts: allowed_outbound_hosts
                .into_iter()
                .map(|host| located(&self.lines, host))
                .collect(),
            key_value_stores,
            sqlite_databases,
            ai_models,
            variables,
            build,
            dependencies_inherit_configuration: raw.dependencies_inherit_configuration,
            dependencies: raw.dependencies.map(|deps| located(&self.lines, deps)),
            line,
        })
    }

    fn allowed_http_hosts(&self, place: &str, hosts: &Spanned<toml::Value>) -> ManifestError {
        let converted: Vec<String> = match hosts.get_ref() {
            toml::Value::Array(hosts) => hosts
                .iter()
                .filter_map(|host| host.as_str())
                .map(|host| match host {
                    "insecure:allow-all" => "*://*:*".to_string(),
                    host if host.contains("://") => host.to_string(),
                    host => format!("https://{host}"),
                })
                .collect(),
            _ => Vec::new(),
        };
        let suggestion = if converted.is_empty() {
            "[\"https://example.com\"]".to_string()
        } else {
            format!("{converted:?}")
        };
        self.error(
            self.lines.of(hosts),
            format!("`allowed_http_hosts` in {place} is a Spin 1 field that Boson does not read"),
            format!(
                "replace it with allowed_outbound_hosts = {suggestion} (each host with its \
                 scheme, https:// unless the host is reached over plain http://)"
            ),
        )
    }

    fn source(&self, place: &str, raw: Spanned<RawSource>) -> Result<Source> {
        let line = self.lines.of(&raw);
        match raw.into_inner() {
            StrOr::Str(path) if path.trim().is_empty() => Err(self.error(
                line,
                format!("the source of {place} is empty"),
                "give the path of the component's .wasm file, e.g. source = \"target/app.wasm\"",
            )),
            StrOr::Str(path) => Ok(Source::Path(PathBuf::from(path))),
            StrOr::Table(RawSourceTable {
                url: Some(url),
                digest: Some(digest),
                registry: None,
                package: None,
                version: None,
            }) => {
                if !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://"))
                {
                    return Err(self.error(
                        self.lines.of(&url),
                        format!(
                            "the source url `{}` of {place} is not an http(s) URL",
                            url.get_ref()
                        ),
                        "give an https:// (or http://) URL of the .wasm file",
                    ));
                }
                let digest_line = self.lines.of(&digest);
                let digest = digest.into_inner();
                let hex = digest.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(self.error(
                        digest_line,
                        format!("the source digest `{digest}` of {place} is not a SHA-256 digest"),
                        "write it as \"sha256:\" followed by the 64 hex digits of the file's \
                         SHA-256 (e.g. from `sha256sum component.wasm`)",
                    ));
                }
                Ok(Source::Url {
                    url: url.into_inner(),
                    digest: hex.to_ascii_lowercase(),
                })
            }
            StrOr::Table(RawSourceTable {
                url: None,
                digest: None,
                registry,
                package: Some(package),
                version: Some(version),
            }) => Ok(Source::Registry {
                registry,
                package,
                version,
            }),
            StrOr::Table(RawSourceTable {
                url: Some(_),
                digest: None,
                registry: None,
                package: None,
                version: None,
            }) => Err(self.error(
                line,
                format!("the source url of {place} has no digest"),
                "add digest = \"sha256:<64 hex digits>\", the SHA-256 of the .wasm file \
                 (e.g. from `sha256sum component.wasm`)",
            )),
            StrOr::Table(_) => Err(self.error(
                line,
                format!("the source table of {place} mixes or lacks fields"),
                "write either { url = \"https://...\", digest = \"sha256:...\" } or \
                 { registry = \"...\", package = \"ns:name\", version = \"1.0.0\" }",
            )),
        }
    }

    fn file_mount(&self, place: &str, raw: Spanned<RawFileMount>) -> Result<FileMount> {
        let line = self.lines.of(&raw);
        match raw.into_inner() {
            StrOr::Str(glob) if glob.trim().is_empty() => Err(self.error(
                line,
                format!("an entry of `files` in {place} is empty"),
                "remove it, or give a path or glob such as \"assets/**/*\"",
            )),
            StrOr::Str(glob) if glob.starts_with('/') => Err(self.error(
                line,
                format!("the files pattern `{glob}` in {place} is an absolute path"),
                "write patterns relative to the manifest's directory, or mount a directory with \
                 { source = \"dir\", destination = \"/dir\" }",
            )),
            StrOr::Str(glob) => Ok(FileMount::Glob(glob)),
            StrOr::Table(mount) if mount.source.trim().is_empty() => Err(self.error(
                line,
                format!("a files mount in {place} has an empty source"),
                "give the file or directory to mount, relative to the manifest's directory",
            )),
            StrOr::Table(mount) if !mount.destination.starts_with('/') => Err(self.error(
                line,
                format!(
                    "the files destination `{}` in {place} is not an absolute path",
                    mount.destination
                ),
                format!(
                    "start it with '/', e.g. destination = \"/{}\"",
                    mount.destination.trim_start_matches("./")
                ),
            )),
            StrOr::Table(mount) if mount.destination.split('/').any(|part| part == "..") => {
                Err(self.error(
                    line,
                    format!(
                        "the files destination `{}` in {place} contains `..`",
                        mount.destination
                    ),
                    "write the destination as a plain absolute path inside the guest, e.g. \"/data\"",
                ))
            }
            StrOr::Table(mount) => Ok(FileMount::Mount {
                source: PathBuf::from(mount.source),
                destination: mount.destination,
            }),
        }
    }

    fn labels(
        &self,
        place: &str,
        field: &str,
        raw: Vec<Spanned<String>>,
    ) -> Result<Vec<Located<String>>> {
        let styles: &[IdStyle] = if field == "ai_models" {
            &[IdStyle::Kebab]
        } else {
            &[IdStyle::Kebab, IdStyle::Snake]
        };
        for label in &raw {
            let name = label.get_ref();
            let errors: Vec<String> = styles
                .iter()
                .filter_map(|&style| check_id(name, style).err())
                .collect();
            if errors.len() == styles.len() {
                let why = &errors[0];
                let style = if styles.len() == 1 {
                    "kebab-case"
                } else {
                    "kebab-case or snake_case"
                };
                return Err(self.error(
                    self.lines.of(label),
                    format!("`{name}` in {field} of {place} is not a valid name: {why}"),
                    format!("use a {style} name such as \"default\""),
                ));
            }
        }
        Ok(raw
            .into_iter()
            .map(|label| located(&self.lines, label))
            .collect())
    }

    /// Checks a template's syntax and that it refers only to declared application variables.
    fn template(&self, template: &Spanned<String>, what: &str) -> Result<()> {
        let line = self.lines.of(template);
        let parts = parse_template(template.get_ref()).map_err(|why| {
            self.error(
                line,
                format!("{what} is not a valid template: {why}"),
                "refer to application variables as {{ name }}, e.g. \"https://{{ api_host }}/v1\"",
            )
        })?;
        for name in referenced_variables(&parts) {
            if !self.variables.contains(name) {
                let hint = match closest(name, self.variables.iter().map(String::as_str)) {
                    Some(near) => format!("did you mean `{near}`? Otherwise declare"),
                    None => "declare".to_string(),
                };
                return Err(self.error(
                    line,
                    format!("{what} refers to `{name}`, which is not declared in [variables]"),
                    format!("{hint} it under [variables], e.g. {name} = {{ default = \"...\" }}"),
                ));
            }
        }
        Ok(())
    }

    fn build(&self, place: &str, raw: Spanned<RawBuild>) -> Result<Build> {
        let raw = raw.into_inner();
        let line = self.lines.of(&raw.command);
        let (command, command_is_list) = match raw.command.into_inner() {
            StrOrList::Str(command) => (vec![command], false),
            StrOrList::List(commands) => (commands, true),
        };
        if command.is_empty() || command.iter().any(|c| c.trim().is_empty()) {
            return Err(self.error(
                line,
                format!("the build command of {place} is empty"),
                "give the command that builds the component, e.g. command = \"cargo build --release\"",
            ));
        }
        Ok(Build {
            command,
            command_is_list,
            workdir: raw.workdir.map(PathBuf::from),
            watch: raw.watch,
            environment: raw.environment,
        })
    }
}
