//! Embeds the WASI 0.2 WIT packages that `boson new` writes into C, Zig and JavaScript projects.
//!
//! The packages come from the `wasmtime-wasi-http` crate Boson already depends on (its `wit/deps`
//! folder: WASI 0.2.12 for wasmtime 48), so Boson ships the exact WASI its runtime implements and
//! the repository holds no copy of them. `cargo metadata` says where cargo unpacked that crate
//! (registry, vendor folder or git checkout alike). The build writes `$OUT_DIR/wasi_wit.rs`: one
//! `(file name, include_str!(...))` table per WASI version, the 0.2.12 files as they are and a
//! 0.2.10 variant derived from them for componentize-js, whose JavaScript engine exports
//! `wasi:http/incoming-handler@0.2.10` and refuses WIT of any other version.

use std::path::{Path, PathBuf};
use std::process::Command;

const WIT_CRATE: &str = "wasmtime-wasi-http";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env("OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    // A different wasmtime-wasi-http version shows up as a change of the lock file.
    println!("cargo:rerun-if-changed=../../Cargo.lock");

    let deps = wit_deps_dir(&manifest_dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&deps)
        .unwrap_or_else(|e| fail(&format!("cannot list {}: {e}", deps.display())))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wit"))
        .collect();
    files.sort();
    if files.is_empty() {
        fail(&format!("{} holds no .wit files", deps.display()));
    }

    let derived_dir = out_dir.join("wasi-wit-0.2.10");
    std::fs::create_dir_all(&derived_dir).expect("creating OUT_DIR/wasi-wit-0.2.10");
    let mut v0_2_12 = String::new();
    let mut v0_2_10 = String::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", file.display())));
        if !text.contains("@0.2.12") {
            fail(&format!(
                "{} is not WASI 0.2.12: `boson new` templates and this build script expect \
                 the WIT of wasmtime 48 (update both together)",
                file.display()
            ));
        }
        let derived = derive_0_2_10(&text);
        let derived_path = derived_dir.join(name);
        std::fs::write(&derived_path, derived).expect("writing the derived WIT");
        v0_2_12.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
        v0_2_10.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            derived_path.display().to_string()
        ));
    }
    let code = format!(
        "/// The WASI 0.2.12 packages, one file each (`cli.wit`, `http.wit`, ...), from {WIT_CRATE}.\n\
         pub const WASI_0_2_12: &[(&str, &str)] = &[\n{v0_2_12}];\n\
         /// The same packages rewritten to WASI 0.2.10 (for componentize-js).\n\
         pub const WASI_0_2_10: &[(&str, &str)] = &[\n{v0_2_10}];\n"
    );
    std::fs::write(out_dir.join("wasi_wit.rs"), code).expect("writing OUT_DIR/wasi_wit.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("cargo did not set {name}")))
}

fn fail(message: &str) -> ! {
    panic!("\n\nboson's build script: {message}\n\n")
}

/// `wit/deps` of the `wasmtime-wasi-http` package this build uses: where cargo unpacked the
/// version `Cargo.lock` names from the registry, else where `cargo metadata` says it is (a vendor
/// folder or a git checkout). The registry comes first because `cargo metadata --offline` needs
/// every package of the lock file unpacked, and a plain `cargo build` on a fresh machine has not
/// fetched the test-only ones.
fn wit_deps_dir(manifest_dir: &Path) -> PathBuf {
    if let Some(deps) = registry_wit_deps(manifest_dir) {
        return deps;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            // Only the packages this build compiles are unpacked (and, offline, known): without
            // the filter cargo wants every platform's, e.g. kqueue for macOS.
            "--filter-platform",
            &env("TARGET"),
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run `{cargo} metadata`: {e}")));
    if !output.status.success() {
        fail(&format!(
            "`cargo metadata` failed, so the {WIT_CRATE} sources (the WASI WIT that `boson new` \
             embeds) cannot be found:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        fail(&format!(
            "`cargo metadata` printed something else than JSON: {e}"
        ))
    });
    let manifest_path = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == WIT_CRATE)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| {
            fail(&format!(
                "`cargo metadata` lists no {WIT_CRATE} package; boson depends on it for wasi:http \
                 and for the WIT `boson new` writes"
            ))
        });
    let deps = Path::new(manifest_path)
        .parent()
        .expect("a manifest path has a parent")
        .join("wit/deps");
    if !deps.is_dir() {
        fail(&format!(
            "{} does not exist: this {WIT_CRATE} has no wit/deps folder (is it a patched or \
             trimmed copy?)",
            deps.display()
        ));
    }
    deps
}

/// `$CARGO_HOME/registry/src/<index>/wasmtime-wasi-http-<version>/wit/deps`, for the version the
/// workspace's `Cargo.lock` pins.
fn registry_wit_deps(manifest_dir: &Path) -> Option<PathBuf> {
    let lock = std::fs::read_to_string(manifest_dir.join("../../Cargo.lock")).ok()?;
    let entry = lock.split("[[package]]").find(|p| {
        p.lines()
            .any(|l| l.trim() == format!("name = \"{WIT_CRATE}\""))
    })?;
    let version = entry
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))?
        .trim_end_matches('"');
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .filter_map(|index| index.ok())
        .map(|index| index.path().join(format!("{WIT_CRATE}-{version}/wit/deps")))
        .find(|deps| deps.is_dir())
}

/// Rewrites one WASI 0.2.12 WIT file to 0.2.10: every `@0.2.12` becomes `@0.2.10`; items
/// annotated `@since(version = 0.2.11)` or `@since(version = 0.2.12)`, and the unstable
/// `clocks-timezone` and `informational-outbound-responses` items, are dropped with the doc
/// comments above them; `@unstable(feature = network-error-code)` items become stable (they were
/// in 0.2.10). An item is the line after its annotations, plus, when that line opens a `{` block,
/// everything up to the matching `}`.
fn derive_0_2_10(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_dropped_annotation(line) {
            while out
                .last()
                .is_some_and(|l| l.trim_start().starts_with("///"))
            {
                out.pop();
            }
            i += 1;
            while i < lines.len() && lines[i].trim_start().starts_with('@') {
                i += 1;
            }
            let mut depth: i64 = 0;
            while i < lines.len() {
                depth +=
                    lines[i].matches('{').count() as i64 - lines[i].matches('}').count() as i64;
                i += 1;
                if depth <= 0 {
                    break;
                }
            }
            continue;
        }
        out.push(stabilise(line));
        i += 1;
    }
    out.join("\n").replace("@0.2.12", "@0.2.10")
}

fn is_dropped_annotation(line: &str) -> bool {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    matches!(
        compact.as_str(),
        "@since(version=0.2.11)"
            | "@since(version=0.2.12)"
            | "@unstable(feature=clocks-timezone)"
            | "@unstable(feature=informational-outbound-responses)"
    )
}

fn stabilise(line: &str) -> String {
    let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    if compact == "@unstable(feature=network-error-code)" {
        let indent = &line[..line.len() - line.trim_start().len()];
        format!("{indent}@since(version = 0.2.0)")
    } else {
        line.to_string()
    }
}
