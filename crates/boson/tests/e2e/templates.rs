//! `boson new` and `boson add`, end to end: every built-in template is created by the real
//! `boson new` in a fresh folder, built by the real `boson build` with the toolchains that
//! `tests/guests/install-toolchains.sh` installs (its `templates-bin/` and `venv-templates/`
//! first on PATH), served by `boson up`, and asked for its greeting over HTTP — or, for
//! `redis-python`, sent a message on the machine's Redis that its log must show.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Where install-toolchains.sh put the tools.
fn tools_dir() -> PathBuf {
    std::env::var_os("BOSON_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/boson/tools"))
}

/// PATH for the templates' build commands: the tools under the names the templates use, then
/// wit-bindgen and wasm-tools, then the test's own PATH.
fn build_path() -> OsString {
    let tools = tools_dir();
    let first = [
        tools.join("templates-bin"),
        tools.join("venv-templates/bin"),
        tools.join("bin"),
        tools.join("venv/bin"),
    ];
    for dir in &first[..2] {
        assert!(
            dir.is_dir(),
            "{} is missing — run `bash tests/guests/install-toolchains.sh`",
            dir.display()
        );
    }
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(first.iter().cloned().chain(std::env::split_paths(&rest))).unwrap()
}

/// `boson <args>` in `dir`, with the build environment.
fn boson(args: &[&str], dir: &Path) -> Output {
    let mut command = Command::new(boson_bin());
    command
        .args(args)
        .current_dir(dir)
        .env("PATH", build_path())
        // npm: the packages come from npm's cache when it has them.
        .env("npm_config_prefer_offline", "true")
        .env("npm_config_update_notifier", "false")
        // http-rust: `cargo build --target wasm32-wasip2` with Debian's Rust, which has no
        // prebuilt wasm32 standard library: build it (tests/guests/README.md, GUEST-TOOLCHAINS).
        // The test's own cargo settings must not leak into the guest's build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env("RUSTC", "/usr/bin/rustc")
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
        .env("RUSTFLAGS", "-L native=/usr/lib/wasm32-wasi");
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `boson <args>` in `dir` and fails the test, with the output, unless it succeeds.
fn boson_ok(args: &[&str], dir: &Path) -> String {
    let out = boson(args, dir);
    assert!(
        out.status.success(),
        "boson {args:?} failed:\n{}",
        text(&out)
    );
    text(&out)
}

/// `boson new <template> <name>` in a fresh folder, then `boson build` in the app.
fn new_and_build(template: &str, name: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let out = boson_ok(&["new", template, name], parent.path());
    assert!(
        out.contains("boson build") && out.contains("boson up"),
        "{out}"
    );
    let app = parent.path().join(name);
    assert!(app.join("spin.toml").is_file() && app.join("README.md").is_file());
    boson_ok(&["build"], &app);
    (parent, app)
}

/// A template's app answers `GET /hello/there?x=1` with `<greeting> You asked for <path>`.
fn serves(template: &str, greeting: &str) {
    let (_dir, app) = new_and_build(template, "hello");
    let server = Boson::start(&app, &[]);
    let response = server.get("/hello/there?x=1");
    assert_eq!(response.status, 200, "{}", server.stderr());
    assert_eq!(
        response.text(),
        format!("{greeting} You asked for /hello/there?x=1\n")
    );
}

#[test]
fn http_c_template_builds_and_serves() {
    serves("http-c", "Hello from C!");
}

#[test]
fn http_zig_template_builds_and_serves() {
    serves("http-zig", "Hello from Zig!");
}

#[test]
fn http_python_template_builds_and_serves() {
    serves("http-python", "Hello from Python!");
}

#[test]
fn http_js_template_builds_and_serves() {
    serves("http-js", "Hello from JavaScript!");
}

#[test]
fn http_ts_template_builds_and_serves() {
    serves("http-ts", "Hello from TypeScript!");
}

#[test]
fn http_rust_template_builds_and_serves() {
    serves("http-rust", "Hello from Rust!");
}

#[test]
fn redis_python_template_logs_each_message_on_its_channel() {
    // The name is the channel: a unique one keeps other tests' messages out.
    let name = unique("orders");
    let (_dir, app) = new_and_build("redis-python", &name);
    let server = Boson::start(&app, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = server.get("/.well-known/boson/status").json();
        let connected = status["triggers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["trigger"] == "redis" && t["connected"] == true);
        if connected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never subscribed: {status}\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_connection()
        .expect("the machine's Redis at 127.0.0.1:6379");
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg(&name)
        .arg("order 42 paid")
        .query(&mut redis)
        .unwrap();
    assert_eq!(receivers, 1, "Boson is the one subscriber of {name}");
    let log = app.join(format!(".boson/logs/{name}.stdout.log"));
    let expected = format!("{name} received: order 42 paid");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = std::fs::read_to_string(&log).unwrap_or_default();
        if got.contains(&expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} never showed `{expected}`; it holds {got:?}\n{}",
            log.display(),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn add_puts_a_second_component_beside_the_first_and_both_serve() {
    let parent = tempfile::tempdir().unwrap();
    boson_ok(
        &["new", "-t", "http-c", "shop", "-o", "site"],
        parent.path(),
    );
    let app = parent.path().join("site");
    let manifest = std::fs::read_to_string(app.join("spin.toml")).unwrap();
    // A comment of the user's own must survive `boson add`.
    let edited = manifest.replace(
        "[application]\n",
        "[application]\n# the shop, hand-edited\n",
    );
    std::fs::write(app.join("spin.toml"), &edited).unwrap();

    let out = boson_ok(&["add", "-t", "http-c", "api"], &app);
    assert!(out.contains("/api/..."), "{out}");
    let after = std::fs::read_to_string(app.join("spin.toml")).unwrap();
    assert!(after.starts_with(&edited), "{after}");
    assert!(after.contains("workdir = \"api\"") && after.contains("source = \"api/app.wasm\""));
    assert!(app.join("api/src/handler.c").is_file() && app.join("api/wit/deps/http.wit").is_file());
    // The new component is the user's to change: give it a greeting of its own.
    let handler = app.join("api/src/handler.c");
    let source = std::fs::read_to_string(&handler).unwrap();
    std::fs::write(
        &handler,
        source.replace("Hello from C!", "Hello from the API!"),
    )
    .unwrap();

    boson_ok(&["build"], &app);
    assert!(app.join("app.wasm").is_file() && app.join("api/app.wasm").is_file());
    let server = Boson::start(&app, &[]);
    assert_eq!(server.get("/").text(), "Hello from C! You asked for /\n");
    assert_eq!(
        server.get("/api/orders").text(),
        "Hello from the API! You asked for /api/orders\n"
    );

    // The same name again: refused, and the manifest is left as it was.
    let out = boson(&["add", "http-python", "api"], &app);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("already has a component `api`"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(app.join("spin.toml")).unwrap(),
        after
    );
}

#[test]
fn new_lists_the_templates_and_explains_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let list = boson_ok(&["new", "--list"], dir.path());
    for id in [
        "http-c",
        "http-js",
        "http-python",
        "http-rust",
        "http-ts",
        "http-zig",
        "redis-python",
    ] {
        assert!(
            list.lines().any(|l| l.starts_with(&format!("{id} "))),
            "{id} missing from:\n{list}"
        );
    }

    let fails = |args: &[&str]| {
        let out = boson(args, dir.path());
        assert!(!out.status.success(), "boson {args:?} succeeded");
        text(&out)
    };
    let err = fails(&["new", "http-cobol", "app"]);
    assert!(
        err.contains("unknown template `http-cobol`") && err.contains("http-c, http-js"),
        "{err}"
    );
    let err = fails(&["new", "http-c", "My_App"]);
    assert!(
        err.contains("`My_App` cannot be a name")
            && err.contains("lowercase letters, digits and '-'")
            && err.contains("e.g. `my-app`"),
        "{err}"
    );
    let err = fails(&["new", "http-c"]);
    assert!(err.contains("give a name after the template"), "{err}");
    let err = fails(&["new"]);
    assert!(err.contains("give a template and a name"), "{err}");

    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "mine").unwrap();
    let err = fails(&["new", "http-c", "taken"]);
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        1
    );

    // `boson add` outside an app.
    let err = fails(&["add", "http-c", "api"]);
    assert!(err.contains("no spin.toml or boson.toml"), "{err}");
}
