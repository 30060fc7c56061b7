//! `boson new` and `boson add`: a new app, or one more component in an app, from a template
//! built into the binary (`templates.rs`; no network).
//!
//! `boson new <template> <name>` writes a folder with `spin.toml`, the component's files at its
//! root and, for C, Zig and JavaScript, the WASI files their tools read. `boson add <template>
//! <name>` writes the component's files into `<name>/` beside an existing manifest and appends the
//! component's trigger and `[component.<name>]` tables (with `workdir = "<name>"`) to it as text,
//! so the rest of the file (comments, order, formatting) stays as it was; the result is parsed
//! with `boson-manifest` before anything is written.

pub mod command;
pub mod templates;

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};

pub use templates::{TEMPLATES, Template, TriggerKind};

/// `boson new --list`: one line per template.
pub fn list() -> String {
    let width = TEMPLATES.iter().map(|t| t.id.len()).max().unwrap_or(0);
    let mut out = String::new();
    for t in TEMPLATES {
        let _ = writeln!(out, "{:width$}  {}", t.id, t.summary);
    }
    out
}

/// The template called `id`, or an error listing the ones there are.
pub fn template(id: &str) -> anyhow::Result<&'static Template> {
    if let Some(t) = templates::find(id) {
        return Ok(t);
    }
    let close: Vec<&str> = TEMPLATES
        .iter()
        .map(|t| t.id)
        .filter(|known| {
            !id.is_empty()
                && (known.contains(id) || id.contains(known) || edit_distance(id, known) <= 2)
        })
        .collect();
    let hint = match close.as_slice() {
        [] => String::new(),
        [one] => format!(" — did you mean `{one}`?"),
        many => format!(" — did you mean one of {}?", many.join(", ")),
    };
    bail!(
        "unknown template `{id}`{hint}\nthe templates are: {} (`boson new --list` describes them)",
        known_ids()
    )
}

/// Levenshtein distance: how many one-character edits turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The templates' ids, comma-separated.
pub fn known_ids() -> String {
    TEMPLATES
        .iter()
        .map(|t| t.id)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks an app or component name: it becomes the component id (so Spin's kebab-case), the
/// folder name, the route and the package name of npm and cargo, so only lowercase is allowed.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let problem = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > 64 {
        Some("it is longer than 64 characters".to_string())
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter".to_string())
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("it contains {bad:?}"))
    } else if name.ends_with('-') || name.contains("--") {
        Some("it ends with '-' or has two '-' in a row".to_string())
    } else {
        None
    };
    let Some(problem) = problem else {
        return Ok(());
    };
    let suggestion = suggest_name(name);
    let example = match &suggestion {
        Some(s) if s != name => format!(" — e.g. `{s}`"),
        _ => " — e.g. `hello-world`".to_string(),
    };
    bail!(
        "`{name}` cannot be a name: {problem}. A name is lowercase letters, digits and '-', \
         starting with a letter (it becomes the component id, the folder and the route){example}"
    )
}

/// `MyApp_2` → `my-app-2`, when that is a valid name.
fn suggest_name(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.trim().chars() {
        if c.is_ascii_uppercase() && previous_lower {
            out.push('-');
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    let valid = out.starts_with(|c: char| c.is_ascii_lowercase()) && out.len() <= 64;
    valid.then_some(out)
}

/// The values of a template's placeholders for one component.
struct Placeholders {
    /// `{{name}}`: the component id (and, for `boson new`, the app's name).
    name: String,
    /// `{{summary}}`: the template's one-line description.
    summary: &'static str,
    /// `{{route}}`: `/...` for a new app, `/<name>/...` for an added component.
    route: String,
    /// `{{dir}}`: where the component's files are, relative to the manifest: `` or `<folder>/`.
    dir: String,
    /// `{{workdir}}`, a line of its own: `workdir = "<folder>"`, or no line at all.
    workdir: Option<String>,
    // Derived from the above: `{{route_example}}` (the route without its `...`), `{{channel}}`
    // (a Redis template's channel: the name) and `{{crate_file}}` (the name with `_`, as cargo
    // names the library's `.wasm`).
}

impl Placeholders {
    fn render(&self, text: &str) -> String {
        let route_example = self.route.trim_end_matches("...");
        let crate_file = self.name.replace('-', "_");
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if line.trim() == "{{workdir}}" {
                if let Some(workdir) = &self.workdir {
                    out.push_str(&format!("workdir = \"{workdir}\"\n"));
                }
                continue;
            }
            out.push_str(
                &line
                    .replace("{{name}}", &self.name)
                    .replace("{{summary}}", self.summary)
                    .replace("{{route_example}}", route_example)
                    .replace("{{route}}", &self.route)
                    .replace("{{dir}}", &self.dir)
                    .replace("{{channel}}", &self.name)
                    .replace("{{crate_file}}", &crate_file),
            );
        }
        out
    }
}

/// A file to write: its path relative to the component's folder, and its bytes.
type File = (String, Vec<u8>);

/// The component's files, rendered.
fn component_files(template: &Template, values: &Placeholders) -> Vec<File> {
    let mut files: Vec<File> = template
        .files
        .iter()
        .map(|(path, text)| (path.to_string(), values.render(text).into_bytes()))
        .collect();
    if let Some(wasi) = template.wasi {
        files.extend(
            wasi.files()
                .into_iter()
                .map(|(path, bytes)| (path, bytes.to_vec())),
        );
    }
    files
}

/// Fails unless `dir` does not exist or is an empty folder.
fn check_free(dir: &Path, what: &str) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} already exists and is not empty — {what}", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) if dir.exists() => bail!("{} exists and is not a folder — {what}", dir.display()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

fn write_files(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    for (path, bytes) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&target, bytes)
            .with_context(|| format!("cannot write {}", target.display()))?;
    }
    Ok(())
}

/// `boson new`: creates the app `name` from `template` in `dir` (which must not exist, or be
/// empty). Returns the manifest's path.
pub fn create_app(template: &Template, name: &str, dir: &Path) -> anyhow::Result<PathBuf> {
    check_name(name)?;
    check_free(
        dir,
        "pick another name, or another folder with `--output <dir>`",
    )?;
    let values = Placeholders {
        name: name.to_string(),
        summary: template.summary,
        route: "/...".to_string(),
        dir: String::new(),
        workdir: None,
    };
    let manifest = format!(
        "{}\n{}",
        values.render(templates::MANIFEST_HEAD),
        values.render(template.component_toml)
    );
    // A template that does not parse is Boson's bug; better said here than by `boson up`.
    boson_manifest::parse("spin.toml", &manifest)
        .with_context(|| format!("template `{}` produced an invalid spin.toml", template.id))?;
    let mut files = component_files(template, &values);
    files.push(("spin.toml".to_string(), manifest.into_bytes()));
    write_files(dir, &files)?;
    Ok(dir.join("spin.toml"))
}

/// What `boson add` did.
#[derive(Debug)]
pub struct Added {
    /// The component's folder.
    pub folder: PathBuf,
    /// Its HTTP route, for an HTTP template.
    pub route: Option<String>,
}

/// `boson add`: writes the component `name` from `template` into `folder` (relative to the
/// manifest's folder; default `name`) and appends its tables to the manifest at `manifest_path`.
pub fn add_component(
    template: &Template,
    name: &str,
    manifest_path: &Path,
    folder: Option<&Path>,
) -> anyhow::Result<Added> {
    check_name(name)?;
    let manifest = boson_manifest::load(manifest_path).with_context(|| {
        format!(
            "`boson add` adds to a valid manifest; fix {} first",
            manifest_path.display()
        )
    })?;
    if manifest.components.contains_key(name) {
        bail!(
            "{} already has a component `{name}` — pick another name",
            manifest_path.display()
        );
    }
    let folder = folder.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    let folder_text = relative_folder(&folder)?;
    let app_dir = manifest_path.parent().unwrap_or(Path::new("."));
    let target = app_dir.join(&folder);
    check_free(
        &target,
        "pick another name, or another folder with `--output <dir>`",
    )?;
    let route = format!("/{name}/...");
    if template.trigger == TriggerKind::Http {
        check_route_is_free(&manifest, &route, manifest_path)?;
    }
    let values = Placeholders {
        name: name.to_string(),
        summary: template.summary,
        route: route.clone(),
        dir: format!("{folder_text}/"),
        workdir: Some(folder_text.clone()),
    };
    let old = std::fs::read_to_string(manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let new = append_tables(&old, &values.render(template.component_toml));
    boson_manifest::parse(&manifest_path.display().to_string(), &new).with_context(|| {
        format!(
            "adding `{name}` would leave {} invalid, so nothing was changed (does it declare \
             its triggers in an unusual way, such as an inline `trigger = {{ ... }}` table?)",
            manifest_path.display()
        )
    })?;
    write_files(&target, &component_files(template, &values))?;
    // Written beside and renamed over, so the manifest is never half-written.
    let temporary = manifest_path.with_extension("toml.boson-add");
    std::fs::write(&temporary, new)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, manifest_path)
        .with_context(|| format!("cannot replace {}", manifest_path.display()))?;
    Ok(Added {
        folder: target,
        route: (template.trigger == TriggerKind::Http).then_some(route),
    })
}

/// `folder` as the manifest writes it (`/`-separated), if it stays inside the app's folder.
fn relative_folder(folder: &Path) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for part in folder.components() {
        match part {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .with_context(|| format!("{} is not UTF-8", folder.display()))?
                    .to_string(),
            ),
            Component::CurDir => {}
            _ => bail!(
                "--output {}: give a folder inside the app's folder, relative to its manifest \
                 (e.g. `components/{}`)",
                folder.display(),
                folder
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("name")
            ),
        }
    }
    if parts.is_empty() {
        bail!("--output must name a folder for the component, not the app's own folder");
    }
    Ok(parts.join("/"))
}

/// Fails if an existing HTTP route already takes the paths of `route`.
fn check_route_is_free(
    manifest: &boson_manifest::Manifest,
    route: &str,
    manifest_path: &Path,
) -> anyhow::Result<()> {
    let mut table = boson_router::RouteTable::default();
    for trigger in &manifest.http_triggers {
        if let boson_manifest::HttpRoute::Path(path) = &trigger.route {
            // Routes already in the manifest were checked when it was parsed.
            let _ = table.add(path, ());
        }
    }
    table.add(route, ()).map_err(|why| {
        anyhow::anyhow!(
            "{}: the new component's route: {why} (rename the component, or change the other \
             route)",
            manifest_path.display()
        )
    })
}

/// `text` with `tables` appended after one blank line.
fn append_tables(text: &str, tables: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(tables);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_kebab_case_and_errors_say_what_is_allowed() {
        for good in ["hello", "my-app", "api2", "a-1b"] {
            check_name(good).unwrap();
        }
        for (bad, says) in [
            ("", "it is empty"),
            ("MyApp", "must start with a lowercase letter"),
            ("my_app", "contains '_'"),
            ("my app", "contains ' '"),
            ("2fast", "must start with a lowercase letter"),
            ("trailing-", "ends with '-'"),
            ("a--b", "two '-' in a row"),
            ("../escape", "must start with a lowercase letter"),
        ] {
            let err = check_name(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
            assert!(err.contains("lowercase letters, digits and '-'"), "{err}");
        }
        let err = check_name("MyApp_2").unwrap_err().to_string();
        assert!(err.contains("e.g. `my-app-2`"), "{err}");
        assert!(check_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn unknown_templates_list_the_known_ones() {
        let err = template("http-cobol").unwrap_err().to_string();
        assert!(err.contains("unknown template `http-cobol`"), "{err}");
        assert!(err.contains("http-c, http-js, http-python"), "{err}");
        let err = template("python").unwrap_err().to_string();
        assert!(
            err.contains("did you mean one of http-python, redis-python?"),
            "{err}"
        );
        let err = template("http-pyton").unwrap_err().to_string();
        assert!(err.contains("did you mean `http-python`?"), "{err}");
        assert_eq!(edit_distance("pythn", "python"), 1);
        assert_eq!(template("http-zig").unwrap().id, "http-zig");
    }

    /// Every template, rendered for `new` and for `add`, leaves no placeholder behind and gives a
    /// manifest the manifest crate accepts, with a build section in the right folder.
    #[test]
    fn every_template_renders_to_a_valid_manifest() {
        for t in TEMPLATES {
            let dir = tempfile::tempdir().unwrap();
            let app = dir.path().join("demo");
            let manifest_path = create_app(t, "demo", &app).unwrap();
            let manifest = boson_manifest::load(&manifest_path).unwrap();
            assert_eq!(manifest.application.name, "demo");
            let component = &manifest.components["demo"];
            assert!(
                component.build.as_ref().unwrap().workdir.is_none(),
                "{}",
                t.id
            );
            for entry in walkdir::WalkDir::new(&app) {
                let entry = entry.unwrap();
                if entry.file_type().is_file()
                    && let Ok(text) = std::fs::read_to_string(entry.path())
                {
                    assert!(
                        !text.contains("{{"),
                        "{}: {} keeps a placeholder",
                        t.id,
                        entry.path().display()
                    );
                }
            }
            assert!(app.join("README.md").is_file() && app.join(".gitignore").is_file());
            let readme = std::fs::read_to_string(app.join("README.md")).unwrap();
            assert!(
                readme.contains("    boson build\n") && readme.contains("    boson up"),
                "{}",
                t.id
            );

            // The same template added to the app, as a second component.
            let added = add_component(t, "extra", &manifest_path, None).unwrap();
            assert_eq!(added.folder, app.join("extra"));
            let manifest = boson_manifest::load(&manifest_path).unwrap();
            let build = manifest.components["extra"].build.clone().unwrap();
            assert_eq!(
                build.workdir.as_deref(),
                Some(Path::new("extra")),
                "{}",
                t.id
            );
            if t.trigger == TriggerKind::Http {
                assert_eq!(added.route.as_deref(), Some("/extra/..."));
            }
        }
    }

    #[test]
    fn wasi_files_are_written_where_the_build_commands_read_them() {
        let dir = tempfile::tempdir().unwrap();
        create_app(
            templates::find("http-c").unwrap(),
            "c",
            &dir.path().join("c"),
        )
        .unwrap();
        let http = std::fs::read_to_string(dir.path().join("c/wit/deps/http.wit")).unwrap();
        assert!(http.contains("package wasi:http@0.2.12;"));
        let adapter = std::fs::read(
            dir.path()
                .join("c/adapter/wasi_snapshot_preview1.proxy.wasm"),
        )
        .unwrap();
        assert_eq!(&adapter[..4], b"\0asm");

        create_app(
            templates::find("http-js").unwrap(),
            "js",
            &dir.path().join("js"),
        )
        .unwrap();
        let http = std::fs::read_to_string(dir.path().join("js/wit/deps/http.wit")).unwrap();
        assert!(http.contains("package wasi:http@0.2.10;") && !http.contains("0.2.12"));
        // What 0.2.12 added is gone; what 0.2.10 had unstable-by-annotation is kept.
        let sockets = std::fs::read_to_string(dir.path().join("js/wit/deps/sockets.wit")).unwrap();
        assert!(!sockets.contains("@unstable(feature = network-error-code)"));
        assert!(sockets.contains("network-error-code: func("));
    }

    #[test]
    fn new_refuses_a_folder_that_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let t = templates::find("http-python").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = create_app(t, "app", dir.path()).unwrap_err().to_string();
        assert!(err.contains("already exists and is not empty"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // An empty folder is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        create_app(t, "app", &empty).unwrap();
    }

    const HAND_WRITTEN: &str = "# My app, by hand.\nspin_manifest_version = 2\n\n\
        [application]\nname = \"mine\"   # keep this comment\n\n\
        [[trigger.http]]\nroute = \"/...\"\ncomponent = \"web\"\n\n\
        [component.web]\nsource = \"web.wasm\"\n";

    #[test]
    fn add_appends_without_touching_the_rest_of_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest_path = dir.path().join("spin.toml");
        // No trailing newline: the tables still start on a line of their own.
        std::fs::write(&manifest_path, HAND_WRITTEN.trim_end()).unwrap();
        let t = templates::find("redis-python").unwrap();
        add_component(
            t,
            "worker",
            &manifest_path,
            Some(Path::new("./services/worker")),
        )
        .unwrap();
        let text = std::fs::read_to_string(&manifest_path).unwrap();
        assert!(text.starts_with(HAND_WRITTEN), "{text}");
        assert!(text.contains("\n[[trigger.redis]]\n"), "{text}");
        assert!(text.contains("channel = \"worker\""), "{text}");
        assert!(
            text.contains("source = \"services/worker/app.wasm\""),
            "{text}"
        );
        assert!(text.contains("workdir = \"services/worker\""), "{text}");
        assert!(dir.path().join("services/worker/app.py").is_file());
        assert!(
            dir.path()
                .join("services/worker/requirements.txt")
                .is_file()
        );
    }

    #[test]
    fn add_refuses_a_taken_id_route_or_folder_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let manifest_path = dir.path().join("spin.toml");
        let t = templates::find("http-python").unwrap();

        let text = format!(
            "{HAND_WRITTEN}\n[[trigger.http]]\nroute = \"/api/...\"\ncomponent = \"web\"\n"
        );
        std::fs::write(&manifest_path, &text).unwrap();
        let err = add_component(t, "web", &manifest_path, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already has a component `web`"), "{err}");
        let err = add_component(t, "api", &manifest_path, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("route `/api/...` duplicates route `/api/...`"),
            "{err}"
        );

        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/x"), "").unwrap();
        let err = add_component(t, "other", &manifest_path, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("already exists and is not empty"), "{err}");
        let err = add_component(t, "up", &manifest_path, Some(Path::new("../up")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("inside the app's folder"), "{err}");

        // A manifest the new tables cannot be appended to (an inline trigger table).
        let inline = "spin_manifest_version = 2\n[application]\nname = \"x\"\n\
            [component.web]\nsource = \"web.wasm\"\n\
            [trigger]\nhttp = [{ route = \"/...\", component = \"web\" }]\n";
        std::fs::write(&manifest_path, inline).unwrap();
        let err = format!(
            "{:#}",
            add_component(t, "fresh", &manifest_path, None).unwrap_err()
        );
        assert!(err.contains("would leave"), "{err}");
        assert_eq!(std::fs::read_to_string(&manifest_path).unwrap(), inline);
        assert!(!dir.path().join("fresh").exists());
    }
}
