//! The manifest as written: serde shapes for every table, with `deny_unknown_fields` everywhere
//! and spans kept on whatever `validate/` checks afterwards.
//!
//! Values that may be written two ways (`source = "x.wasm"` or `source = { url, digest }`) are
//! read by small visitors rather than `#[serde(untagged)]`, which would lose both the spans and
//! the precise "unknown field" errors of the table form.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawManifest {
    /// Checked before deserialisation (see `lib.rs`), so only its presence matters here.
    #[serde(rename = "spin_manifest_version")]
    pub _version: IgnoredAny,
    pub application: Spanned<RawApplication>,
    #[serde(default)]
    pub variables: Entries<Spanned<RawVariable>>,
    #[serde(default)]
    pub trigger: RawTriggers,
    #[serde(default)]
    pub component: Entries<Spanned<RawComponent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawApplication {
    pub name: Spanned<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    /// Deployment targets (Spin environments): accepted, not used by Boson.
    #[serde(default, rename = "targets")]
    pub _targets: Vec<toml::Value>,
    #[serde(default)]
    pub trigger: BTreeMap<String, toml::Table>,
    /// Settings for external tools: accepted, not used by Boson.
    #[serde(default, rename = "tool")]
    pub _tool: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { default = \"...\" }"
)]
pub(crate) struct RawVariable {
    pub description: Option<String>,
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a component table")]
pub(crate) struct RawComponent {
    pub description: Option<String>,
    pub source: Spanned<RawSource>,
    #[serde(default)]
    pub files: Vec<Spanned<RawFileMount>>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<Spanned<String>>,
    /// Spin 1's field: read only to reject it with a helpful message.
    pub allowed_http_hosts: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub key_value_stores: Vec<Spanned<String>>,
    #[serde(default)]
    pub sqlite_databases: Vec<Spanned<String>>,
    #[serde(default)]
    pub ai_models: Vec<Spanned<String>>,
    #[serde(default)]
    pub variables: Entries<Spanned<String>>,
    pub build: Option<Spanned<RawBuild>>,
    /// Settings for external tools: accepted, not used by Boson.
    #[serde(default, rename = "tool")]
    pub _tool: Option<toml::Table>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    pub dependencies: Option<Spanned<toml::Table>>,
}

/// `source = { ... }`: which fields are set decides the kind, in `validate/component.rs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSourceTable {
    pub url: Option<Spanned<String>>,
    pub digest: Option<Spanned<String>>,
    pub registry: Option<String>,
    pub package: Option<String>,
    pub version: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMountTable {
    pub source: String,
    pub destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawBuild {
    pub command: Spanned<StrOrList>,
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawHttpTrigger {
    pub route: Spanned<RawRoute>,
    pub component: Option<Spanned<RawComponentRef>>,
    pub static_response: Option<Spanned<RawStaticResponse>>,
    pub executor: Option<Spanned<RawExecutor>>,
    /// Spin's optional trigger id: accepted, not used by Boson.
    #[serde(default, rename = "id")]
    pub _id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrivateRoute {
    pub private: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawStaticResponse {
    pub status_code: Option<Spanned<u16>>,
    #[serde(default)]
    pub headers: Entries<String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table such as { type = \"spin\" }")]
pub(crate) struct RawExecutor {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    pub argv: Option<String>,
    pub entrypoint: Option<String>,
}

/// Any trigger but `http`: `component` is read like Spin's, everything else kept as written.
pub(crate) struct RawOtherTrigger {
    pub component: Option<Spanned<RawComponentRef>>,
    pub settings: toml::Table,
}

/// `[trigger]`: `http` read strictly, every other type generically, in file order.
#[derive(Default)]
pub(crate) struct RawTriggers {
    pub http: Vec<Spanned<RawHttpTrigger>>,
    pub other: Vec<(String, Vec<Spanned<RawOtherTrigger>>)>,
}

pub(crate) type RawRoute = StrOr<RawPrivateRoute>;
pub(crate) type RawSource = StrOr<RawSourceTable>;
pub(crate) type RawFileMount = StrOr<RawMountTable>;
pub(crate) type RawComponentRef = StrOr<Box<RawComponent>>;

/// A value written either as a string or as a table of type `T`.
pub(crate) enum StrOr<T> {
    Str(String),
    Table(T),
}

/// What a [`StrOr`] expects, for serde's "invalid type" messages.
pub(crate) trait Expecting {
    const EXPECTING: &'static str;
}

impl Expecting for RawPrivateRoute {
    const EXPECTING: &'static str = "a route such as \"/api/...\", or { private = true }";
}
impl Expecting for RawSourceTable {
    const EXPECTING: &'static str =
        "a path to a .wasm file, or a table { url = \"...\", digest = \"sha256:...\" }";
}
impl Expecting for RawMountTable {
    const EXPECTING: &'static str =
        "a path or glob, or a table { source = \"dir\", destination = \"/dir\" }";
}
impl Expecting for Box<RawComponent> {
    const EXPECTING: &'static str = "a component id, or an inline component table";
}

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for StrOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrOrVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for StrOrVisitor<T> {
            type Value = StrOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTING)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOr::Str(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(StrOr::Table)
            }
        }
        deserializer.deserialize_any(StrOrVisitor(PhantomData))
    }
}

/// `command = "..."` or `command = ["...", "..."]`.
pub(crate) enum StrOrList {
    Str(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for StrOrList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = StrOrList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command string, or an array of command strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrList::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(StrOrList::List)
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

/// A table read as `(key, value)` pairs in file order, keeping each key's span.
pub(crate) struct Entries<V>(pub Vec<(Spanned<String>, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawTriggers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TriggersVisitor;
        impl<'de> Visitor<'de> for TriggersVisitor {
            type Value = RawTriggers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of trigger types, written as [[trigger.<type>]]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut triggers = RawTriggers::default();
                while let Some(trigger_type) = map.next_key::<String>()? {
                    if trigger_type == "http" {
                        triggers.http = map.next_value_seed(TriggerList::new(&trigger_type))?;
                    } else {
                        let list = map.next_value_seed(TriggerList::new(&trigger_type))?;
                        triggers.other.push((trigger_type, list));
                    }
                }
                Ok(triggers)
            }
        }
        deserializer.deserialize_map(TriggersVisitor)
    }
}

/// The array under `trigger.<type>`; a single `[trigger.<type>]` table gets its own message.
struct TriggerList<'a, T> {
    trigger_type: &'a str,
    element: PhantomData<T>,
}

impl<'a, T> TriggerList<'a, T> {
    fn new(trigger_type: &'a str) -> Self {
        TriggerList {
            trigger_type,
            element: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for TriggerList<'_, T> {
    type Value = Vec<Spanned<T>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for TriggerList<'_, T> {
    type Value = Vec<Spanned<T>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an array of tables, written [[trigger.{}]]",
            self.trigger_type
        )
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Vec::deserialize(SeqAccessDeserializer::new(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Self::Value, A::Error> {
        let t = self.trigger_type;
        Err(de::Error::custom(format!(
            "[trigger.{t}] is a single table, but triggers are an array of tables \
             — write the header with double brackets: [[trigger.{t}]]"
        )))
    }
}

impl<'de> Deserialize<'de> for RawOtherTrigger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OtherTriggerVisitor;
        impl<'de> Visitor<'de> for OtherTriggerVisitor {
            type Value = RawOtherTrigger;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a trigger table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut trigger = RawOtherTrigger {
                    component: None,
                    settings: toml::Table::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "component" {
                        trigger.component = Some(map.next_value()?);
                    } else {
                        let value = map.next_value()?;
                        trigger.settings.insert(key, value);
                    }
                }
                Ok(trigger)
            }
        }
        deserializer.deserialize_map(OtherTriggerVisitor)
    }
}
