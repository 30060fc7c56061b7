//! Reads Spin's application manifest, version 2 (`spin.toml`, or `boson.toml`), into a validated
//! [`Manifest`].
//!
//! ```
//! let manifest = boson_manifest::parse("spin.toml", r#"
//!     spin_manifest_version = 2
//!
//!     [application]
//!     name = "hello"
//!
//!     [[trigger.http]]
//!     route = "/..."
//!     component = "hello"
//!
//!     [component.hello]
//!     source = "target/wasm32-wasip2/release/hello.wasm"
//!     allowed_outbound_hosts = ["https://example.com"]
//! "#)?;
//! assert_eq!(manifest.application.name, "hello");
//! assert_eq!(
//!     manifest.http_triggers[0].target,
//!     boson_manifest::HttpTarget::Component("hello".into())
//! );
//!
//! // Every error is one complete message: file, line, what is wrong, what to do.
//! let err = boson_manifest::parse("spin.toml", "spin_manifest_version = 2\n[application]\nnme = \"x\"\n")
//!     .unwrap_err();
//! assert_eq!(err.line(), Some(3));
//! assert!(err.to_string().starts_with("spin.toml:3: unknown field `nme` in [application]"));
//! # Ok::<(), boson_manifest::ManifestError>(())
//! ```
//!
//! This crate is pure: it knows nothing of Wasmtime, tokio or the network, and reads no file but
//! the manifest in [`load`]. Paths stay as written (relative to the manifest's directory);
//! resolving them, fetching sources and checking `allowed_outbound_hosts` syntax is for later
//! stages.
//!
//! How it works: the TOML is parsed into a tree with spans (syntax errors and duplicate keys stop
//! here), `spin_manifest_version` is checked, serde reads the tree into the shapes of `raw.rs`
//! (unknown fields and wrong types stop here; `error.rs` finds the table the error is in), and
//! `validate/` checks the rest (ids, routes, digests, templates, references) into the types of
//! `model.rs`.

mod error;
mod ids;
mod model;
mod raw;
mod route;
mod template;
mod validate;

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

pub use error::{ErrorKind, ManifestError};
pub use model::{
    Application, Build, Component, Executor, FileMount, HttpRoute, HttpTarget, HttpTrigger,
    Located, Manifest, OtherTrigger, Source, StaticResponse, Variable,
};
pub use template::{TemplatePart, parse_template};

/// The file names an application's manifest may have.
pub const MANIFEST_FILE_NAMES: [&str; 2] = ["spin.toml", "boson.toml"];

/// Reads and parses the manifest at `path`. Errors name the file as `path` displays.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|err| {
        ManifestError::new(
            ErrorKind::Read,
            &file,
            None,
            format!("cannot read the manifest: {err}"),
            "check the path: an app's manifest is its spin.toml (or boson.toml)",
        )
    })?;
    parse(&file, &text)
}

/// Parses and validates manifest `text`; `file_name` is used only in error messages.
pub fn parse(file_name: &str, text: &str) -> Result<Manifest, ManifestError> {
    let root = DeTable::parse(text).map_err(|err| error::syntax_error(file_name, text, &err))?;
    check_version(file_name, text, &root)?;
    if root.get_ref().get("application").is_none() {
        return Err(ManifestError::new(
            ErrorKind::Invalid,
            file_name,
            None,
            "the manifest has no [application] table",
            "add one after spin_manifest_version, with at least name = \"my-app\"",
        ));
    }
    let raw = raw::RawManifest::deserialize(toml::de::Deserializer::from(root))
        .map_err(|err| error::shape_error(file_name, text, &err))?;
    validate::validate(file_name, text, raw)
}

/// Only version 2 is read; anything else gets a message on how to get there.
fn check_version(
    file: &str,
    text: &str,
    root: &toml::Spanned<DeTable<'_>>,
) -> Result<(), ManifestError> {
    const MIGRATE: &str = "convert the manifest to version 2: `spin doctor` (Spin 2 or later) \
        can do it, or rewrite it by hand following https://spinframework.dev/manifest-reference \
        ([application], [[trigger.http]], [component.<id>])";
    let lines = error::Lines::new(text);
    let version_error = |line, problem: String, fix: &str| {
        Err(ManifestError::new(
            ErrorKind::Version,
            file,
            line,
            problem,
            fix,
        ))
    };
    let Some(version) = root.get_ref().get("spin_manifest_version") else {
        if let Some(old) = root.get_ref().get("spin_version") {
            return version_error(
                Some(lines.of(old)),
                "this is a Spin 1 manifest (`spin_version`); Boson reads only manifest version 2"
                    .to_string(),
                MIGRATE,
            );
        }
        return version_error(
            None,
            "`spin_manifest_version` is missing; Boson reads only manifest version 2".to_string(),
            &format!(
                "if this is a version 2 manifest, add spin_manifest_version = 2 as its first line; otherwise {MIGRATE}"
            ),
        );
    };
    let line = Some(lines.of(version));
    match version.get_ref() {
        DeValue::Integer(int) if int.radix() == 10 && int.as_str() == "2" => Ok(()),
        DeValue::String(s) if s.as_ref() == "2" => version_error(
            line,
            "spin_manifest_version must be the number 2, not the string \"2\"".to_string(),
            "write spin_manifest_version = 2, without quotes",
        ),
        DeValue::Integer(int) if int.as_str() == "1" => version_error(
            line,
            "this is a version 1 manifest; Boson reads only manifest version 2".to_string(),
            MIGRATE,
        ),
        DeValue::String(s) if s.as_ref() == "1" => version_error(
            line,
            "this is a version 1 manifest; Boson reads only manifest version 2".to_string(),
            MIGRATE,
        ),
        other => {
            let problem = match other {
                DeValue::Integer(int) => format!("manifest version {}", int.as_str()),
                DeValue::String(s) => format!("manifest version {s:?}"),
                other => format!("a {} as manifest version", other.type_str()),
            };
            version_error(
                line,
                format!("{problem} is not supported; Boson reads only manifest version 2"),
                "write spin_manifest_version = 2 and use the version 2 layout \
                 (https://spinframework.dev/manifest-reference)",
            )
        }
    }
}
