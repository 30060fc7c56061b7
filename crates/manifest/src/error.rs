//! [`ManifestError`]: one error type whose `Display` is the whole message for the user —
//! `<file>:<line>: <what is wrong> — <what to do>` — plus the turning of TOML and serde errors
//! into such messages.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::ids::closest;

/// What kind of problem a [`ManifestError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be read.
    Read,
    /// The file is not valid TOML (including a key or table defined twice).
    Syntax,
    /// `spin_manifest_version` is missing or is not 2.
    Version,
    /// Valid TOML, but not a valid version 2 manifest.
    Invalid,
}

/// Why a manifest could not be loaded. `Display` gives the complete message for the user:
/// `<file>:<line>: <what is wrong> — <what to do>` (without `:<line>` when no line applies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.file, *.line, .problem, .fix))]
pub struct ManifestError {
    kind: ErrorKind,
    file: String,
    line: Option<usize>,
    problem: String,
    fix: String,
}

fn render(file: &str, line: Option<usize>, problem: &str, fix: &str) -> String {
    match line {
        Some(line) => format!("{file}:{line}: {problem} — {fix}"),
        None => format!("{file}: {problem} — {fix}"),
    }
}

impl ManifestError {
    pub(crate) fn new(
        kind: ErrorKind,
        file: &str,
        line: Option<usize>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ManifestError {
            kind,
            file: file.to_string(),
            line,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The 1-based line the problem is on, when it is on one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The manifest file, as given to [`crate::load`] or [`crate::parse`].
    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What is wrong, without file, line or advice.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// What to do about it.
    pub fn fix(&self) -> &str {
        &self.fix
    }
}

/// Turns byte offsets into 1-based line numbers.
pub(crate) struct Lines<'a>(&'a str);

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lines(text)
    }

    pub(crate) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.0.len());
        self.0.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn of<T>(&self, spanned: &Spanned<T>) -> usize {
        self.line(spanned.span().start)
    }
}

/// An error from the TOML parser: bad syntax, or a key or table defined twice.
pub(crate) fn syntax_error(file: &str, text: &str, err: &toml::de::Error) -> ManifestError {
    let span = err.span().unwrap_or(0..0);
    let line = Some(Lines::new(text).line(span.start));
    let message = err.message().trim().replace('\n', "; ");
    if message == "duplicate key" {
        let key = text.get(span).unwrap_or("").trim();
        return ManifestError::new(
            ErrorKind::Syntax,
            file,
            line,
            format!(
                "`{key}` is defined a second time here; TOML allows each key and each table only once"
            ),
            "remove or rename this definition, or merge it into the first one",
        );
    }
    ManifestError::new(
        ErrorKind::Syntax,
        file,
        line,
        format!("invalid TOML: {message}"),
        "fix the syntax on this line (see https://toml.io)",
    )
}

/// An error from deserialising the (syntactically valid) document into the manifest's shape.
pub(crate) fn shape_error(file: &str, text: &str, err: &toml::de::Error) -> ManifestError {
    let span = err.span();
    let line = span.as_ref().map(|s| Lines::new(text).line(s.start));
    let path = match (&span, DeTable::parse(text)) {
        (Some(span), Ok(root)) => locate(text, &root, span.start),
        _ => Vec::new(),
    };
    let message = err.message().trim();
    let (problem, fix) = explain(message, &path);
    ManifestError::new(ErrorKind::Invalid, file, line, problem, fix)
}

/// Serde's words for what was expected, in a manifest author's words.
fn plain_expected(expected: &str) -> String {
    expected
        .replace("a sequence", "an array")
        .replace("a map", "a table")
        .replace("u16", "an integer from 0 to 65535")
}

/// Serde's words for what was found (`map`, `sequence`), in a manifest author's words. Only
/// the leading type word is translated: the rest may quote the author's own value.
fn plain_found(found: &str) -> String {
    match found {
        "map" => "a table".to_string(),
        "sequence" => "an array".to_string(),
        other => other.to_string(),
    }
}

fn explain(message: &str, path: &[Segment]) -> (String, String) {
    // Messages written by this crate's visitors already say what to do.
    if let Some((problem, fix)) = message.split_once(" — ") {
        return (problem.to_string(), fix.to_string());
    }
    let quoted = backticked(message);
    if message.starts_with("unknown field") {
        let field = quoted.first().copied().unwrap_or("");
        let expected = &quoted[1.min(quoted.len())..];
        let table = path.split_last().map_or(path, |(_, parent)| parent);
        let problem = if expected.is_empty() {
            format!(
                "unknown field `{field}` {}; it takes no fields",
                in_place(table)
            )
        } else {
            format!(
                "unknown field `{field}` {}; expected one of: {}",
                in_place(table),
                expected.join(", ")
            )
        };
        let application_field = ["name", "version", "description", "authors"].contains(&field);
        let fix = match closest(field, expected.iter().copied()) {
            _ if table.is_empty() && application_field => {
                format!(
                    "move it into the [application] table (manifest version 2 keeps `{field}` there)"
                )
            }
            Some(near) => format!("did you mean `{near}`? Otherwise remove it"),
            None => "remove it, or check its spelling and which table it belongs in".to_string(),
        };
        return (problem, fix);
    }
    if message.starts_with("missing field") {
        let field = quoted.first().copied().unwrap_or("");
        let example = match field {
            "name" => "name = \"my-app\"".to_string(),
            "source" => "source = \"path/to/component.wasm\"".to_string(),
            "route" => "route = \"/...\"".to_string(),
            "command" => "command = \"cargo build --release\"".to_string(),
            "type" => "type = \"spin\"".to_string(),
            "destination" => "destination = \"/data\", the absolute path in the guest".to_string(),
            "private" => "private = true".to_string(),
            "application" => "[application] with name = \"my-app\"".to_string(),
            other => format!("{other} = ..."),
        };
        return (
            format!("missing field `{field}` {}", in_place(path)),
            format!("add {example}"),
        );
    }
    for (prefix, what) in [
        ("invalid type: ", "the wrong type"),
        ("invalid value: ", "an invalid value"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (found, expected) = rest
                .split_once(", expected ")
                .unwrap_or((rest, "another value"));
            let expected = plain_expected(expected);
            return (
                format!(
                    "{} has {what}: found {}, expected {expected}",
                    field_place(path),
                    plain_found(found)
                ),
                format!("change the value to {expected}"),
            );
        }
    }
    (
        format!("{message} {}", in_place(path)),
        "check it against the manifest reference: https://spinframework.dev/manifest-reference"
            .to_string(),
    )
}

fn backticked(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).collect()
}

/// One step of a path from the document root to a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Key(String),
    /// An array element; `true` when the array is an array of tables (`[[...]]` headers).
    Index(usize, bool),
}

/// The path to the smallest key or value whose span contains `offset`. Tables opened with a
/// `[header]` have the header as their span, so every table is searched, not only the ones
/// whose span contains `offset`.
fn locate(text: &str, root: &Spanned<DeTable<'_>>, offset: usize) -> Vec<Segment> {
    let mut best: Option<(usize, Vec<Segment>)> = None;
    let mut path = Vec::new();
    search_table(text, root.get_ref(), offset, &mut path, &mut best);
    best.map(|(_, path)| path).unwrap_or_default()
}

type Best = Option<(usize, Vec<Segment>)>;

fn consider(span: Range<usize>, offset: usize, path: &[Segment], best: &mut Best) {
    let inside = span.contains(&offset) || (span.is_empty() && span.start == offset);
    if inside && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
        *best = Some((span.len(), path.to_vec()));
    }
}

fn search_table(
    text: &str,
    table: &DeTable<'_>,
    offset: usize,
    path: &mut Vec<Segment>,
    best: &mut Best,
) {
    for (key, value) in table.iter() {
        path.push(Segment::Key(key.get_ref().to_string()));
        consider(key.span(), offset, path, best);
        search_value(text, value, offset, path, best);
        path.pop();
    }
}

fn search_value(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    offset: usize,
    path: &mut Vec<Segment>,
    best: &mut Best,
) {
    consider(value.span(), offset, path, best);
    match value.get_ref() {
        DeValue::Table(table) => search_table(text, table, offset, path, best),
        DeValue::Array(array) => {
            for (index, element) in array.iter().enumerate() {
                let of_tables = text
                    .get(element.span())
                    .is_some_and(|s| s.starts_with("[["));
                path.push(Segment::Index(index, of_tables));
                search_value(text, element, offset, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

fn dotted(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key_text(key));
            }
            Segment::Index(index, _) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Where a table is, as the author wrote it: `[component.api]`, `[[trigger.http]]`,
/// `` `component` in [[trigger.http]] ``, `` `files[0]` in [component.api] ``.
pub(crate) fn place(path: &[Segment]) -> String {
    let first_index = path.iter().position(|s| matches!(s, Segment::Index(..)));
    let Some(at) = first_index else {
        return if path.is_empty() {
            "the top level".to_string()
        } else {
            format!("[{}]", dotted(path))
        };
    };
    let (base, rest) = match path[at] {
        Segment::Index(_, true) => (format!("[[{}]]", dotted(&path[..at])), &path[at + 1..]),
        _ => {
            let outer = at.saturating_sub(1);
            (place(&path[..outer]), &path[outer..])
        }
    };
    if rest.is_empty() {
        base
    } else {
        format!("`{}` in {base}", dotted(rest))
    }
}

/// `in [component.api]`, or `at the top level`.
fn in_place(path: &[Segment]) -> String {
    if path.is_empty() {
        "at the top level".to_string()
    } else {
        format!("in {}", place(path))
    }
}

/// Where a field's value is: `` `name` in [application] ``; a table value is its own place.
fn field_place(path: &[Segment]) -> String {
    // The field is the last key and any inline-array indices after it.
    let Some(key_at) = path.iter().rposition(|s| matches!(s, Segment::Key(_))) else {
        return place(path);
    };
    if path[key_at + 1..]
        .iter()
        .any(|s| matches!(s, Segment::Index(_, true)))
    {
        return place(path);
    }
    let (table, field) = path.split_at(key_at);
    format!("`{}` {}", dotted(field), in_place(table))
}

#[cfg(test)]
mod tests {
    use super::Segment::{Index, Key};
    use super::*;

    fn key(k: &str) -> Segment {
        Key(k.to_string())
    }

    #[test]
    fn places() {
        assert_eq!(place(&[]), "the top level");
        assert_eq!(place(&[key("component"), key("api")]), "[component.api]");
        assert_eq!(
            place(&[key("trigger"), key("http"), Index(1, true)]),
            "[[trigger.http]]"
        );
        assert_eq!(
            place(&[
                key("trigger"),
                key("http"),
                Index(0, true),
                key("component")
            ]),
            "`component` in [[trigger.http]]"
        );
        assert_eq!(
            place(&[key("component"), key("api"), key("files"), Index(0, false)]),
            "`files[0]` in [component.api]"
        );
        assert_eq!(
            place(&[key("component"), key("my.app")]),
            "[component.\"my.app\"]"
        );
        assert_eq!(
            field_place(&[key("application"), key("authors"), Index(1, false)]),
            "`authors[1]` in [application]"
        );
    }

    #[test]
    fn display_with_and_without_line() {
        let e = ManifestError::new(ErrorKind::Invalid, "spin.toml", Some(3), "bad", "fix it");
        assert_eq!(e.to_string(), "spin.toml:3: bad — fix it");
        assert_eq!(e.line(), Some(3));
        let e = ManifestError::new(ErrorKind::Version, "x.toml", None, "bad", "fix it");
        assert_eq!(e.to_string(), "x.toml: bad — fix it");
    }

    #[test]
    fn lines() {
        let lines = Lines::new("a\nb\n\nc");
        assert_eq!(lines.line(0), 1);
        assert_eq!(lines.line(2), 2);
        assert_eq!(lines.line(5), 4);
        assert_eq!(lines.line(100), 4);
    }
}
