//! The developer workflow around `boson up`: `boson build`, `boson up --build`, completions and
//! `--version`.

use std::process::Command;

use crate::harness::*;

/// An app of two components, each built by copying a test guest into place from its own
/// `workdir` (the build runner is what is under test, not a compiler).
fn buildable_app(second_command: &str) -> AppDir {
    let hello = guest("c", "hello");
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "built"
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "a/out/a.wasm"
[component.a.build]
command = ["mkdir -p out", "cp {hello} out/a.wasm"]
workdir = "a"
[component.b]
source = "b/b.wasm"
[component.b.build]
command = "{second_command}"
workdir = "b"
environment = {{ SOURCE = "{hello}" }}
"#,
        hello = hello.display()
    ));
    app.write("a/README", "component a\n");
    app.write("b/README", "component b\n");
    app
}

fn boson(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(boson_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn build_runs_every_components_command_then_up_serves_the_result() {
    let app = buildable_app("cp $SOURCE b.wasm");
    let out = boson(&["build"], app.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.path().join("a/out/a.wasm").is_file());
    assert!(app.path().join("b/b.wasm").is_file());
    let server = Boson::start(app.path(), &[]);
    assert_eq!(server.get("/a/x").text(), "Hello from C!\n");
    assert_eq!(server.get("/b/x").status, 200);

    // `up --build` builds first: a fresh app with nothing built yet serves at once.
    let fresh = buildable_app("cp $SOURCE b.wasm");
    let server = Boson::start(fresh.path(), &["--build"]);
    assert_eq!(server.get("/b/x").status, 200);

    // `-c` builds one component only.
    let one = buildable_app("cp $SOURCE b.wasm");
    let out = boson(&["build", "-c", "b"], one.path());
    assert!(out.status.success());
    assert!(one.path().join("b/b.wasm").is_file() && !one.path().join("a/out").exists());
    let out = boson(&["build", "-c", "nope"], one.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the app has no component `nope`"));
}

#[test]
fn a_failing_or_missing_build_tool_is_named_with_its_output() {
    let app = buildable_app("echo 'b.c:1: error: expected ;' >&2; exit 2");
    let out = boson(&["build"], app.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("1 of 2 component builds failed")
            && err.contains("component `b`")
            && err.contains("b.c:1: error: expected ;"),
        "{err}"
    );
    // `up --build` stops before serving when the build fails.
    let err = start_failure(app.path(), &["--build"]);
    assert!(err.contains("component `b`"), "{err}");

    let app = buildable_app("tinygo build -o b.wasm main.go");
    let out = boson(&["build"], app.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`tinygo` is not installed") && err.contains("https://tinygo.org"),
        "{err}"
    );
}

#[test]
fn completions_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = boson(&["completions", "bash"], dir.path());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && script.contains("_boson()") && script.contains("registry"));
    let out = boson(&["--version"], dir.path());
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with("boson ") && version.contains("wasmtime 48."),
        "{version}"
    );
}

/// `boson doctor` loads the runtime config's `[[client_tls]]` tables as `boson up` does.
#[test]
fn doctor_reports_a_client_tls_table_that_does_not_load() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "hello"), ""));
    app.write(
        "rc.toml",
        "[[client_tls]]\ncomponent_ids = [\"guest\"]\nhosts = [\"example.com\"]\nca_roots_file = \"missing.pem\"\n",
    );
    let out = boson(&["doctor", "--runtime-config-file", "rc.toml"], app.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    let needle = "rc.toml:1: [[client_tls]]: ca_roots_file: cannot read certificates from";
    assert!(report.contains(needle), "missing `{needle}` in:\n{report}");
}

#[test]
fn doctor_lists_every_problem_with_its_fix() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "sick"
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = "/b/..."
component = "b"
[component.a]
source = "main.wasm"
[component.a.build]
command = "tinygo build -o main.wasm main.go"
[component.b]
source = "{core}"
key_value_stores = ["cache"]
allowed_outbound_hosts = ["redis://127.0.0.1:{closed_port}"]
"#,
        core = guest("c", "wasip1-command").display()
    ));
    let out = boson(&["doctor"], app.path());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    for needle in [
        "`tinygo`, which is not on PATH",
        "https://tinygo.org",
        "main.wasm does not exist yet",
        "run `boson build -c a`",
        "is a core WebAssembly module, not a component",
        "lists key-value store `cache`, which no runtime config defines",
        &format!("nothing answers at `redis://127.0.0.1:{closed_port}`"),
    ] {
        assert!(report.contains(needle), "missing `{needle}` in:\n{report}");
    }
    assert_eq!(report.matches("problem: ").count(), 5, "{report}");

    // What only loading finds: a routed component that is not an HTTP handler.
    let app = AppDir::new(&single_component_manifest(
        &guest("c", "redis-trigger"),
        "allowed_outbound_hosts = [\"redis://127.0.0.1:6379\"]\n",
    ));
    let out = boson(
        &["doctor", "--cache-dir", shared_cache().to_str().unwrap()],
        app.path(),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && report.contains("wasi:http/incoming-handler"),
        "{report}"
    );

    let app = AppDir::new(&single_component_manifest(&guest("c", "hello"), ""));
    let out = boson(
        &["doctor", "--cache-dir", shared_cache().to_str().unwrap()],
        app.path(),
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && report.contains("no problems found"),
        "{report}"
    );
}
