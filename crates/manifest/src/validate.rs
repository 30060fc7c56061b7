//! From the manifest as written (`raw.rs`) to the validated [`Manifest`]: every check that is
//! not about TOML types, each failing with the line and what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use toml::Spanned;

use crate::error::{ErrorKind, Lines, ManifestError};
use crate::ids::{IdStyle, check_id, closest, suggest_id};
use crate::model::*;
use crate::raw::*;
use crate::route::check_route;
use crate::template::{parse_template, referenced_variables};

type Result<T> = std::result::Result<T, ManifestError>;

const ROUTE_EXAMPLES: &str = "write it like \"/hello\", \"/api/users/:id\" or \"/static/...\"";

pub(crate) fn validate(file: &str, text: &str, raw: RawManifest) -> Result<Manifest> {
    let mut checker = Checker {
        file,
        lines: Lines::new(text),
        variables: BTreeSet::new(),
        declared: BTreeSet::new(),
        components: BTreeMap::new(),
    };
    let application = checker.application(raw.application)?;
    let variables = checker.variables(raw.variables)?;
    for (key, component) in raw.component.0 {
        let line = checker.lines.of(&key);
        let id = key.into_inner();
        if let Err(why) = check_id(&id, IdStyle::Kebab) {
            let example = suggest_id(&id, IdStyle::Kebab).unwrap_or_else(|| "my-api".to_string());
            return Err(checker.error(
                line,
                format!("`{id}` is not a valid component id: {why}"),
                format!(
                    "use kebab-case: lowercase words of letters and digits joined by '-', \
                     starting with a letter, e.g. [component.{example}]"
                ),
            ));
        }
        let component = checker.component(id.clone(), &format!("[component.{id}]"), component)?;
        checker.declared.insert(id.clone());
        checker.components.insert(id, component);
    }
    let mut http_triggers = Vec::new();
    for (index, trigger) in raw.trigger.http.into_iter().enumerate() {
        http_triggers.push(checker.http_trigger(index + 1, trigger)?);
    }
    let mut other_triggers = Vec::new();
    for (trigger_type, triggers) in raw.trigger.other {
        for (index, trigger) in triggers.into_iter().enumerate() {
            other_triggers.push(checker.other_trigger(&trigger_type, index + 1, trigger)?);
        }
    }
    Ok(Manifest {
        application,
        variables,
        http_triggers,
        other_triggers,
        components: checker.components,
    })
}

struct Checker<'a> {
    file: &'a str,
    lines: Lines<'a>,
    /// Names declared in `[variables]`.
    variables: BTreeSet<String>,
    /// Ids declared as `[component.<id>]` (inline components cannot be referred to).
    declared: BTreeSet<String>,
    components: BTreeMap<String, Component>,
}

impl Checker<'_> {
    fn error(
        &self,
        line: usize,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ManifestError {
        ManifestError::new(ErrorKind::Invalid, self.file, Some(line), problem, fix)
    }

    fn application(&self, raw: Spanned<RawApplication>) -> Result<Application> {
        let raw = raw.into_inner();
        if raw.name.get_ref().trim().is_empty() {
            return Err(self.error(
                self.lines.of(&raw.name),
                "the application name is empty",
                "give the application a name, e.g. name = \"hello\"",
            ));
        }
        Ok(Application {
            name: raw.name.into_inner(),
            version: raw.version,
            description: raw.description,
            authors: raw.authors,
            trigger_settings: raw.trigger,
        })
    }

    fn variables(
        &mut self,
        raw: Entries<Spanned<RawVariable>>,
    ) -> Result<BTreeMap<String, Variable>> {
        let mut variables = BTreeMap::new();
        for (name, variable) in raw.0 {
            let line = self.lines.of(&name);
            let name = name.into_inner();
            if let Err(why) = check_id(&name, IdStyle::LowerSnake) {
                let example =
                    suggest_id(&name, IdStyle::LowerSnake).unwrap_or_else(|| "api_key".to_string());
                return Err(self.error(
                    line,
                    format!("`{name}` is not a valid variable name: {why}"),
                    format!(
                        "use lowercase letters, digits and '_', starting with a letter, e.g. {example}"
                    ),
                ));
            }
            let variable = variable.into_inner();
            if variable.default.is_some() && variable.required {
                return Err(self.error(
                    line,
                    format!("variable `{name}` has both a `default` and `required = true`"),
                    "remove `required = true` to use the default, or remove `default` \
                     if a value must be supplied when the app runs",
                ));
            }
            self.variables.insert(name.clone());
            variables.insert(
                name,
                Variable {
                    default: variable.default,
                    required: variable.required,
                    secret: variable.secret,
                    description: variable.description,
                },
            );
        }
        Ok(variables)
    }

    fn component(&self, id: String, place: &str, raw: Spanned<RawComponent>) -> Result<Component> {
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

    fn http_trigger(&mut self, index: usize, raw: Spanned<RawHttpTrigger>) -> Result<HttpTrigger> {
        let line = self.lines.of(&raw);
        let raw = raw.into_inner();
        let place = "[[trigger.http]]";
        let route_line = self.lines.of(&raw.route);
        let route = match raw.route.into_inner() {
            StrOr::Str(route) => match check_route(&route) {
                Ok(()) => HttpRoute::Path(route),
                Err(why) => {
                    return Err(self.error(
                        route_line,
                        format!("the route `{route}` is not valid: {why}"),
                        ROUTE_EXAMPLES,
                    ));
                }
            },
            StrOr::Table(RawPrivateRoute { private: true }) => HttpRoute::Private,
            StrOr::Table(RawPrivateRoute { private: false }) => {
                return Err(self.error(
                    route_line,
                    "route = { private = false } does not say where the trigger is reachable",
                    format!("give a path route ({ROUTE_EXAMPLES}), or write {{ private = true }}"),
                ));
            }
        };
        let target = match (raw.component, raw.static_response) {
            (Some(_), Some(response)) => {
                return Err(self.error(
                    self.lines.of(&response),
                    format!("{place} has both `component` and `static_response`"),
                    "keep only one: a trigger either runs a component or returns a fixed response",
                ));
            }
            (None, None) => {
                return Err(self.error(
                    line,
                    format!("{place} has neither `component` nor `static_response`"),
                    "add component = \"<component id>\", or static_response = { body = \"...\" }",
                ));
            }
            (Some(component), None) => {
                HttpTarget::Component(self.component_ref("http", index, place, component)?)
            }
            (None, Some(response)) => {
                if let Some(executor) = &raw.executor {
                    return Err(self.error(
                        self.lines.of(executor),
                        format!("{place} has an `executor` but no component to run"),
                        "remove `executor`: a static_response runs no component",
                    ));
                }
                HttpTarget::StaticResponse(self.static_response(place, response)?)
            }
        };
        let executor = match raw.executor {
            Some(executor) => Some(self.executor(place, executor)?),
            None => None,
        };
        Ok(HttpTrigger {
            route,
            target,
            executor,
            line,
        })
    }

    fn static_response(
        &self,
        place: &str,
        raw: Spanned<RawStaticResponse>,
    ) -> Result<StaticResponse> {
        let raw = raw.into_inner();
        let status = match raw.status_code {
            Some(code) if !(100..=599).contains(code.get_ref()) => {
                return Err(self.error(
                    self.lines.of(&code),
                    format!(
                        "status_code {} in the static_response of {place} is not an HTTP status",
                        code.get_ref()
                    ),
                    "use a status from 100 to 599, e.g. 200 or 404",
                ));
            }
            Some(code) => code.into_inner(),
            None => 200,
        };
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        let mut headers = Vec::new();
        for (name, value) in raw.headers.0 {
            let name_line = self.lines.of(&name);
            let name = name.into_inner();
            if name.is_empty() || !name.chars().all(is_token) {
                return Err(self.error(
                    name_line,
                    format!("`{name}` in the static_response headers of {place} is not a valid header name"),
                    "use letters, digits and '-', e.g. \"content-type\"",
                ));
            }
            if value.contains(['\r', '\n', '\0']) {
                return Err(self.error(
                    name_line,
                    format!("the value of header `{name}` in the static_response of {place} contains a line break"),
                    "put the value on one line",
                ));
            }
            headers.push((name, value));
        }
        Ok(StaticResponse {
            status,
            headers,
            body: raw.body,
        })
    }

    fn executor(&self, place: &str, raw: Spanned<RawExecutor>) -> Result<Executor> {
        let raw = raw.into_inner();
        let line = self.lines.of(&raw.kind);
        match raw.kind.get_ref().as_str() {
            "spin" if raw.argv.is_some() || raw.entrypoint.is_some() => Err(self.error(
                line,
                format!("the spin executor of {place} takes no `argv` or `entrypoint`"),
                "remove them, or use { type = \"wagi\", ... } if the component is a Wagi module",
            )),
            "spin" => Ok(Executor::Spin),
            "wagi" => Ok(Executor::Wagi {
                argv: raw.argv,
                entrypoint: raw.entrypoint,
            }),
            other => Err(self.error(
                line,
                format!("unknown executor type `{other}` in {place}"),
                "use { type = \"spin\" } or { type = \"wagi\" }",
            )),
        }
    }

    fn other_trigger(
        &mut self,
        trigger_type: &str,
        index: usize,
        raw: Spanned<RawOtherTrigger>,
    ) -> Result<OtherTrigger> {
        let line = self.lines.of(&raw);
        let raw = raw.into_inner();
        let place = format!("[[trigger.{trigger_type}]]");
        let component = match raw.component {
            Some(component) => Some(self.component_ref(trigger_type, index, &place, component)?),
            None => None,
        };
        Ok(OtherTrigger {
            trigger_type: trigger_type.to_string(),
            component,
            settings: raw.settings,
            line,
        })
    }

    /// Resolves a trigger's `component`: checks a reference, or adds an inline component under
    /// a synthetic id (see [`Manifest::components`]). Returns the id.
    fn component_ref(
        &mut self,
        trigger_type: &str,
        index: usize,
        place: &str,
        raw: Spanned<RawComponentRef>,
    ) -> Result<String> {
        let line = self.lines.of(&raw);
        let span = raw.span();
        match raw.into_inner() {
            StrOr::Str(id) if self.declared.contains(&id) => Ok(id),
            StrOr::Str(id) => {
                let defined: Vec<&str> = self.declared.iter().map(String::as_str).collect();
                let fix = match (closest(&id, defined.iter().copied()), defined.is_empty()) {
                    (Some(near), _) => {
                        format!("did you mean `{near}`? Otherwise define [component.{id}]")
                    }
                    (None, true) => format!("define it with a [component.{id}] table"),
                    (None, false) => format!(
                        "define [component.{id}], or use one of the defined components: {}",
                        defined.join(", ")
                    ),
                };
                Err(self.error(
                    line,
                    format!("{place} refers to component `{id}`, which is not defined"),
                    fix,
                ))
            }
            StrOr::Table(inline) => {
                let base = format!("inline-{trigger_type}-{index}");
                let mut id = base.clone();
                let mut n = 1;
                while self.components.contains_key(&id) {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                let inline = Spanned::new(span, *inline);
                let component = self.component(
                    id.clone(),
                    &format!("the inline component of {place}"),
                    inline,
                )?;
                self.components.insert(id.clone(), component);
                Ok(id)
            }
        }
    }
}

fn located<T>(lines: &Lines<'_>, spanned: Spanned<T>) -> Located<T> {
    Located {
        line: lines.of(&spanned),
        value: spanned.into_inner(),
    }
}
