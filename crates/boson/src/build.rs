//! `boson build`: runs each component's `[component.<id>.build]` commands in its `workdir`.
//!
//! Components with different working directories build in parallel; components sharing one
//! build one after another (their tools may write the same files). A tool's output is kept and
//! shown only when it fails; a tool that is not installed is named, with how to install it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One component's build, resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct BuildStep {
    pub component: String,
    pub commands: Vec<String>,
    pub workdir: PathBuf,
    pub environment: BTreeMap<String, String>,
}

/// The build steps of the app whose manifest is `manifest_path`, for `only` (all when empty).
pub fn plan(manifest_path: &Path, only: &[String]) -> anyhow::Result<Vec<BuildStep>> {
    let manifest = boson_manifest::load(manifest_path)?;
    for id in only {
        if !manifest.components.contains_key(id) {
            anyhow::bail!(
                "--component {id}: the app has no component `{id}` (it has: {})",
                manifest
                    .components
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    Ok(manifest
        .components
        .values()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .filter_map(|c| {
            let build = c.build.as_ref()?;
            Some(BuildStep {
                component: c.id.clone(),
                commands: build.command.clone(),
                workdir: base.join(build.workdir.as_deref().unwrap_or(Path::new(""))),
                environment: build.environment.clone(),
            })
        })
        .collect())
}

/// How one component's build ended.
#[derive(Debug)]
pub struct Outcome {
    pub component: String,
    pub failure: Option<String>,
}

/// Runs `steps`: groups by working directory, the groups in parallel. Prints progress (a spinner
/// per component on a terminal, a line per component otherwise) and fails naming every component
/// that failed, with its tool's output.
pub fn run(steps: &[BuildStep]) -> anyhow::Result<()> {
    if steps.is_empty() {
        tracing::info!("no component has a [component.<id>.build] section: nothing to build");
        return Ok(());
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bars = terminal.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let mut groups: BTreeMap<&Path, Vec<&BuildStep>> = BTreeMap::new();
    for step in steps {
        groups.entry(&step.workdir).or_default().push(step);
    }
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_values()
            .map(|group| {
                let bars = bars.as_ref();
                scope.spawn(move || {
                    group
                        .into_iter()
                        .map(|step| run_step(step, bars))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut message = String::new();
    for o in &failed {
        message.push_str(&format!(
            "\ncomponent `{}`: {}",
            o.component,
            o.failure.as_deref().unwrap_or_default()
        ));
    }
    anyhow::bail!(
        "{} of {} component builds failed:{message}",
        failed.len(),
        outcomes.len()
    )
}

fn run_step(step: &BuildStep, bars: Option<&MultiProgress>) -> Outcome {
    let start = Instant::now();
    let bar = bars.map(|multi| {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix:20!} {msg} {elapsed}")
                .expect("the template is valid"),
        );
        bar.set_prefix(step.component.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut failure = None;
    for command in &step.commands {
        match &bar {
            Some(bar) => bar.set_message(command.clone()),
            None => tracing::info!(component = %step.component, "building: {command}"),
        }
        if let Err(e) = run_command(command, step) {
            failure = Some(format!("{e:#}"));
            break;
        }
    }
    let took = start.elapsed();
    let summary = match &failure {
        None => format!("built in {:.1} s", took.as_secs_f64()),
        Some(_) => "failed".to_string(),
    };
    match bar {
        Some(bar) => bar.finish_with_message(summary),
        None => tracing::info!(component = %step.component, "{summary}"),
    }
    Outcome {
        component: step.component.clone(),
        failure,
    }
}

/// Runs one command with `sh -c`; on failure the error carries the tool's output.
fn run_command(command: &str, step: &BuildStep) -> anyhow::Result<()> {
    if !step.workdir.is_dir() {
        anyhow::bail!(
            "the build workdir {} does not exist — fix `workdir` in [component.{}.build]",
            step.workdir.display(),
            step.component
        );
    }
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(&step.workdir)
        .envs(&step.environment)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{command}`"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut shown = String::from_utf8_lossy(&output.stdout).into_owned();
    shown.push_str(&String::from_utf8_lossy(&output.stderr));
    // `sh` exits 127 when it cannot find the program.
    if output.status.code() == Some(127) {
        let tool = command.split_whitespace().next().unwrap_or(command);
        anyhow::bail!(
            "`{tool}` is not installed (or not on PATH) — {}\n{}",
            install_hint(tool),
            shown.trim_end()
        );
    }
    anyhow::bail!(
        "`{command}` failed ({}) in {}:\n{}",
        output.status,
        step.workdir.display(),
        shown.trim_end()
    )
}

/// How to get the build tools Spin's templates use.
pub(crate) fn install_hint(tool: &str) -> &'static str {
    match tool {
        "cargo" | "rustc" => {
            "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`"
        }
        "componentize-py" => "install it with `pip install componentize-py`",
        "jco" | "componentize-js" | "npm" | "npx" | "node" => {
            "install Node.js, then `npm install` in the component's folder"
        }
        "tinygo" => "install TinyGo from https://tinygo.org/getting-started/install/",
        "zig" => "install Zig from https://ziglang.org/download/",
        "clang" | "clang-16" | "wasm-ld" => {
            "install a clang with a wasm32-wasi target (wasi-sdk, or Debian's clang + wasi-libc)"
        }
        "wit-bindgen" => "install it with `cargo install wit-bindgen-cli`",
        "wasm-tools" => "install it with `cargo install wasm-tools`",
        _ => "install it, or fix `command` in the component's [build] section",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(component: &str, commands: &[&str], workdir: &Path) -> BuildStep {
        BuildStep {
            component: component.into(),
            commands: commands.iter().map(|c| c.to_string()).collect(),
            workdir: workdir.into(),
            environment: BTreeMap::from([("GREETING".into(), "hi".into())]),
        }
    }

    #[test]
    fn runs_commands_in_order_in_the_workdir_with_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        run(&[step(
            "a",
            &["echo $GREETING > out.txt", "echo two >> out.txt"],
            dir.path(),
        )])
        .unwrap();
        let out = std::fs::read_to_string(dir.path().join("out.txt")).unwrap();
        assert_eq!(out, "hi\ntwo\n");
    }

    #[test]
    fn failures_name_the_component_and_show_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let err = run(&[
            step("good", &["true"], other.path()),
            step("bad", &["echo compiler says no >&2; exit 3"], dir.path()),
            step("missing", &["no-such-tool-xyz --build"], dir.path()),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("2 of 3 component builds failed"), "{err}");
        assert!(
            err.contains("component `bad`") && err.contains("compiler says no"),
            "{err}"
        );
        assert!(
            err.contains("component `missing`")
                && err.contains("`no-such-tool-xyz` is not installed"),
            "{err}"
        );
        assert!(!err.contains("component `good`"), "{err}");
    }
}
