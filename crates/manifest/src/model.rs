//! The validated manifest: what the rest of Boson reads. Every value here has passed the checks
//! in `validate/`; paths are still relative to the manifest's directory, as written.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A parsed and validated application manifest (`spin_manifest_version = 2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// `[application]`.
    pub application: Application,
    /// `[variables]`: application variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// `[[trigger.http]]`, in file order.
    pub http_triggers: Vec<HttpTrigger>,
    /// Every other `[[trigger.<type>]]`, grouped by type in order of first appearance, each group
    /// in file order.
    pub other_triggers: Vec<OtherTrigger>,
    /// `[component.<id>]` plus the components written inline in triggers. An inline component's
    /// id is `inline-<trigger type>-<n>`, `n` being the trigger's 1-based position among the
    /// triggers of its type (`inline-http-2` for the second `[[trigger.http]]`); if a declared
    /// component already has that id, `-2`, `-3`, ... is appended until it is free.
    pub components: BTreeMap<String, Component>,
}

/// `[application]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    /// `[application.trigger.<type>]`: application-wide settings per trigger type, as written
    /// (for example `[application.trigger.redis] address = "redis://..."`).
    pub trigger_settings: BTreeMap<String, toml::Table>,
}

/// One entry of `[variables]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    pub default: Option<String>,
    pub required: bool,
    pub secret: bool,
    /// `description = "..."`: documentation only.
    pub description: Option<String>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTrigger {
    pub route: HttpRoute,
    pub target: HttpTarget,
    /// `None` when the manifest has no `executor` (which means the Spin executor).
    pub executor: Option<Executor>,
    /// 1-based line of the `[[trigger.http]]` header (or of the inline table).
    pub line: usize,
}

/// The `route` of an HTTP trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRoute {
    /// A path such as `/hello`, `/users/:id` or `/static/...`, already syntax-checked.
    Path(String),
    /// `route = { private = true }`: reachable only by local service chaining.
    Private,
}

/// What an HTTP trigger does with a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpTarget {
    /// Run the component with this id (a key of [`Manifest::components`]).
    Component(String),
    /// Answer with a fixed response, running no component.
    StaticResponse(StaticResponse),
}

/// `static_response = { status_code = 200, headers = { ... }, body = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticResponse {
    /// 100 to 599; 200 when not given.
    pub status: u16,
    /// In file order.
    pub headers: Vec<(String, String)>,
    /// Empty when not given.
    pub body: String,
}

/// `executor = { type = "spin" }` or `{ type = "wagi", argv = "...", entrypoint = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executor {
    Spin,
    Wagi {
        argv: Option<String>,
        entrypoint: Option<String>,
    },
}

/// A trigger of any type but `http`, kept generic so later code can refuse or handle it.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherTrigger {
    /// The `<type>` of `[[trigger.<type>]]`, e.g. `redis`, `mqtt`, `cron`.
    pub trigger_type: String,
    /// The component id (a key of [`Manifest::components`]), if the trigger names one.
    pub component: Option<String>,
    /// Every other key of the trigger table, as written.
    pub settings: toml::Table,
    /// 1-based line of the `[[trigger.<type>]]` header (or of the inline table).
    pub line: usize,
}

/// One component: a Wasm binary and what it is granted.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub id: String,
    pub description: Option<String>,
    pub source: Source,
    pub files: Vec<FileMount>,
    pub exclude_files: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// As written (`"https://example.com"`, `"*://{{ host }}:*"`, ...); their syntax is checked
    /// where they are used. Any `{{ name }}` in them refers to a declared application variable.
    pub allowed_outbound_hosts: Vec<Located<String>>,
    pub key_value_stores: Vec<Located<String>>,
    pub sqlite_databases: Vec<Located<String>>,
    pub ai_models: Vec<Located<String>>,
    /// Component variables: name → template (see [`crate::parse_template`]). Every template
    /// parses and refers only to declared application variables.
    pub variables: BTreeMap<String, Located<String>>,
    pub build: Option<Build>,
    /// `dependencies_inherit_configuration`: whether the component's dependencies get the
    /// component's grants. `false` when not given.
    pub dependencies_inherit_configuration: bool,
    /// `[component.<id>.dependencies]`, as written.
    pub dependencies: Option<Located<toml::Table>>,
    /// 1-based line where the component is defined (its `[component.<id>]` header, or the inline
    /// table in a trigger).
    pub line: usize,
}

/// A value with the 1-based line it was written on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
}

/// Where a component's Wasm comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file, relative to the manifest's directory unless absolute.
    Path(PathBuf),
    /// `{ url = "https://...", digest = "sha256:..." }`.
    Url {
        url: String,
        /// 64 lowercase hex digits, without the `sha256:` prefix.
        digest: String,
    },
    /// `{ registry = "...", package = "ns:name", version = "1.0.0" }` (`registry` optional).
    Registry {
        registry: Option<String>,
        package: String,
        version: String,
    },
}

/// One entry of a component's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A path or glob relative to the manifest's directory, mounted at the same relative path.
    Glob(String),
    /// `{ source = "dir", destination = "/abs" }`; `destination` starts with `/`.
    Mount {
        source: PathBuf,
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The commands to run in order; one element when `command` is a string.
    pub command: Vec<String>,
    /// Whether `command` was written as an array.
    pub command_is_list: bool,
    pub workdir: Option<PathBuf>,
    pub watch: Vec<String>,
    pub environment: BTreeMap<String, String>,
}
