//! Data-driven manifest cases: every folder in `tests/cases/` holds a `spin.toml` and an
//! `expected.txt` with either `ok` or the exact error message (`parse` is given the file name
//! `spin.toml`). Valid cases also keep `manifest.txt`, a `{:#?}` snapshot of the parsed
//! manifest. Run with `BOSON_BLESS=1` to rewrite `expected.txt` and `manifest.txt` from the
//! current output (then review the diff).

use std::fs;
use std::path::{Path, PathBuf};

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Compares `actual` with the file at `path`; returns a description of any difference.
fn check_file(path: &Path, actual: &str, bless: bool) -> Option<String> {
    let expected = fs::read_to_string(path).unwrap_or_default();
    if expected.trim_end() == actual.trim_end() {
        return None;
    }
    if bless {
        fs::write(path, format!("{}\n", actual.trim_end()))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return None;
    }
    let mut diff = format!("--- {} (expected)\n+++ actual\n", path.display());
    let (expected_lines, actual_lines): (Vec<&str>, Vec<&str>) = (
        expected.trim_end().lines().collect(),
        actual.trim_end().lines().collect(),
    );
    for i in 0..expected_lines.len().max(actual_lines.len()) {
        match (expected_lines.get(i), actual_lines.get(i)) {
            (Some(e), Some(a)) if e == a => diff.push_str(&format!("  {e}\n")),
            (e, a) => {
                if let Some(e) = e {
                    diff.push_str(&format!("- {e}\n"));
                }
                if let Some(a) = a {
                    diff.push_str(&format!("+ {a}\n"));
                }
            }
        }
    }
    Some(diff)
}

#[test]
fn manifest_cases() {
    let bless = std::env::var("BOSON_BLESS").is_ok_and(|v| v == "1");
    let dirs = case_dirs();
    let mut failures = Vec::new();
    let (mut valid, mut invalid) = (0, 0);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(dir.join("spin.toml"))
            .unwrap_or_else(|e| panic!("case {name}: cannot read spin.toml: {e}"));
        let actual = match boson_manifest::parse("spin.toml", &text) {
            Ok(manifest) => {
                valid += 1;
                if let Some(diff) =
                    check_file(&dir.join("manifest.txt"), &format!("{manifest:#?}"), bless)
                {
                    failures.push(format!("case {name}: manifest snapshot differs\n{diff}"));
                }
                "ok".to_string()
            }
            Err(err) => {
                invalid += 1;
                let message = err.to_string();
                // The line in the message and `line()` must agree.
                let in_message = message
                    .strip_prefix("spin.toml:")
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|line| line.parse::<usize>().ok());
                if in_message != err.line() {
                    failures.push(format!(
                        "case {name}: line() is {:?} but the message says {in_message:?}",
                        err.line()
                    ));
                }
                if !message.contains(" — ") {
                    failures.push(format!(
                        "case {name}: the message says nothing to do: {message}"
                    ));
                }
                message
            }
        };
        if let Some(diff) = check_file(&dir.join("expected.txt"), &actual, bless) {
            failures.push(format!("case {name}: result differs\n{diff}"));
        }
    }
    assert!(
        valid >= 6 && invalid >= 15,
        "too few cases: {valid} valid, {invalid} invalid"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (BOSON_BLESS=1 rewrites the expectations):\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn load_reads_the_file_and_names_it_in_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let manifest = boson_manifest::load(&dir.join("valid-minimal-hello/spin.toml")).unwrap();
    assert_eq!(manifest.application.name, "hello");

    let path = dir.join("invalid-bad-digest/spin.toml");
    let err = boson_manifest::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:7: ", path.display())),
        "{err}"
    );

    let missing = dir.join("no-such-case/spin.toml");
    let err = boson_manifest::load(&missing).unwrap_err();
    assert_eq!(err.kind(), boson_manifest::ErrorKind::Read);
    assert_eq!(err.line(), None);
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read the manifest", missing.display()))
    );
}
