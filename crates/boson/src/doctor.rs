//! `boson doctor`: checks an app the way `boson up` would, but reports every problem it finds
//! (with its fix) instead of stopping at the first, and checks what `up` cannot: build tools on
//! PATH and whether fixed outbound addresses answer.

use std::net::ToSocketAddrs as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::app::{AppLocation, ResolveOptions};
use crate::runtime_config::RuntimeConfig;

/// One finding: what is wrong and what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

fn problem(what: impl Into<String>, fix: impl Into<String>) -> Problem {
    Problem {
        what: what.into(),
        fix: fix.into(),
    }
}

/// Runs every check on the app at `manifest_path`; an empty list means `boson up` will start it.
pub async fn examine(
    manifest_path: &Path,
    runtime_config: Option<&Path>,
    cache_dir: PathBuf,
) -> Vec<Problem> {
    let manifest = match boson_manifest::load(manifest_path) {
        Ok(m) => m,
        Err(e) => {
            return vec![problem(
                e.to_string(),
                "fix the manifest as the message says",
            )];
        }
    };
    let file = manifest_path.display().to_string();
    let base = manifest_path.parent().unwrap_or(Path::new("."));
    let config = match runtime_config.map(RuntimeConfig::load).transpose() {
        Ok(c) => c,
        Err(e) => return vec![problem(format!("{e:#}"), "fix the runtime-config file")],
    };
    let mut problems = Vec::new();
    if let Some(rc) = &config {
        let ids: Vec<&str> = manifest.components.keys().map(|k| k.as_str()).collect();
        if let Err(e) = crate::outbound::ClientTls::load(rc, &ids) {
            problems.push(problem(
                format!("{e:#}"),
                "fix the [[client_tls]] table as the message says",
            ));
        }
    }
    for c in manifest.components.values() {
        let id = &c.id;
        if let Some(build) = &c.build {
            for command in &build.command {
                let tool = command.split_whitespace().next().unwrap_or_default();
                if !tool.is_empty() && !tool.contains('/') && !on_path(tool) {
                    problems.push(problem(
                        format!("component `{id}` builds with `{tool}`, which is not on PATH"),
                        crate::build::install_hint(tool),
                    ));
                }
            }
        }
        if let boson_manifest::Source::Path(source) = &c.source {
            let path = base.join(source);
            match std::fs::read(&path) {
                Err(_) if c.build.is_some() => problems.push(problem(
                    format!(
                        "component `{id}`: source {} does not exist yet",
                        path.display()
                    ),
                    format!("run `boson build -c {id}`"),
                )),
                Err(_) => problems.push(problem(
                    format!("component `{id}`: source {} does not exist", path.display()),
                    "fix `source` in the manifest",
                )),
                Ok(bytes) => {
                    if let Some(p) = wasm_kind_problem(id, &path, &bytes) {
                        problems.push(p);
                    }
                }
            }
        }
        let labels = [
            (&c.key_value_stores, "key-value store", "key_value_store"),
            (&c.sqlite_databases, "SQLite database", "sqlite_database"),
        ];
        for (list, what, section) in labels {
            for label in list {
                let defined = config.as_ref().is_some_and(|rc| match section {
                    "key_value_store" => rc.key_value_store.contains_key(&label.value),
                    _ => rc.sqlite_database.contains_key(&label.value),
                });
                if label.value != "default" && !defined {
                    problems.push(problem(
                        format!(
                            "{file}:{}: component `{id}` lists {what} `{}`, which no runtime config defines",
                            label.line, label.value
                        ),
                        format!(
                            "add [{section}.{}] to a runtime-config file and pass it with --runtime-config-file, or use `default`",
                            label.value
                        ),
                    ));
                }
            }
        }
        for entry in &c.allowed_outbound_hosts {
            if let Some(p) = unreachable_service(id, &entry.value).await {
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        problems.extend(load_like_up(manifest_path, config, cache_dir).await);
    }
    problems
}

/// A file that is not a WebAssembly component (a core module, or not wasm at all).
fn wasm_kind_problem(id: &str, path: &Path, bytes: &[u8]) -> Option<Problem> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => None,
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Some(problem(
            format!(
                "component `{id}`: {} is a core WebAssembly module, not a component",
                path.display()
            ),
            "turn it into a component: `wasm-tools component new <module> --adapt wasi_snapshot_preview1.reactor.wasm -o <out>`, or build with a toolchain that emits components",
        )),
        _ => Some(problem(
            format!("component `{id}`: {} is not WebAssembly", path.display()),
            "point `source` at the .wasm your build produces",
        )),
    }
}

/// For an entry naming one fixed host and port (no wildcard), whether it accepts a TCP
/// connection within 2 s.
async fn unreachable_service(id: &str, entry: &str) -> Option<Problem> {
    let (host, port) = crate::outbound::AllowedHost::parse(entry)
        .ok()?
        .fixed_target()?;
    let target = format!("{host}:{port}");
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Some(problem(
                format!("component `{id}`: `{entry}` does not resolve ({e})"),
                "check the host name, or remove the entry",
            ));
        }
    };
    for addr in &addrs {
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), connect).await {
            return None;
        }
    }
    Some(problem(
        format!("component `{id}`: nothing answers at `{entry}` ({target})"),
        "start the service, or fix the address",
    ))
}

/// What `boson up` does before serving — resolve, compile, pre-instantiate, build the triggers —
/// minus opening stores and binding the listener.
async fn load_like_up(
    manifest_path: &Path,
    runtime_config: Option<RuntimeConfig>,
    cache_dir: PathBuf,
) -> Vec<Problem> {
    // A throwaway state dir: the check must not touch the app's data.
    let state = std::env::temp_dir().join(format!("boson-doctor-{}", std::process::id()));
    let options = ResolveOptions {
        state_dir: Some(state.clone()),
        cache_dir: cache_dir.clone(),
        limits: Default::default(),
        runtime_config,
        variables: Vec::new(),
    };
    let checked = async {
        let app =
            crate::app::resolve(&AppLocation::Manifest(manifest_path.into()), &options).await?;
        let engine = crate::runtime::EngineOptions {
            pooling: false,
            pool_instances: 1,
            max_memory: 1 << 20,
            cache_dir: Some(cache_dir),
            keep_resident: 0,
            queue_timeout: Duration::from_secs(1),
            max_queued: 1,
            ready_instances: 0,
        };
        let backends = crate::runtime::Backends {
            key_value: Default::default(),
            sqlite: Default::default(),
            outbound: Default::default(),
            self_origin: None,
            outbound_http: Default::default(),
            client_tls: Default::default(),
        };
        let (runtime, components) = {
            let app = app.clone();
            tokio::task::spawn_blocking(move || {
                let runtime = crate::runtime::Runtime::new(&engine)?;
                let components =
                    runtime.load_components(&app, &crate::runtime::Follow::None, &backends)?;
                anyhow::Ok((runtime, components))
            })
            .await??
        };
        let runtime = std::sync::Arc::new(runtime);
        let metrics = crate::metrics::Metrics::default();
        crate::http::HttpRoutes::new(&app, &components, &metrics)?;
        crate::trigger::Triggers::new(&app.triggers, &runtime, &components, &metrics)?;
        anyhow::Ok(())
    };
    let result = checked.await;
    let _ = std::fs::remove_dir_all(&state);
    match result {
        Ok(()) => Vec::new(),
        Err(e) => vec![problem(
            format!("{e:#}"),
            "this is what `boson up` would stop on; fix it as the message says",
        )],
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(tool)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_components_from_core_modules_and_other_files() {
        let p = Path::new("x.wasm");
        assert_eq!(wasm_kind_problem("c", p, b"\0asm\x0d\0\x01\0rest"), None);
        let core = wasm_kind_problem("c", p, b"\0asm\x01\0\0\0rest").unwrap();
        assert!(
            core.what.contains("core WebAssembly module") && core.fix.contains("component new")
        );
        let text = wasm_kind_problem("c", p, b"<html>").unwrap();
        assert!(text.what.contains("not WebAssembly"));
    }

    #[test]
    fn finds_tools_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("no-such-tool-xyz"));
    }
}
