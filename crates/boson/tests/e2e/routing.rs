//! Routing, host-answered endpoints, static responses and start-up errors.

use crate::harness::*;

fn routing_manifest() -> String {
    let wasm = guest("c", "guest");
    format!(
        r#"spin_manifest_version = 2
[application]
name = "routes"
version = "1.2.3"

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
route = "/users/:id"
component = "api"

[[trigger.http]]
route = "/exact"
component = "api"

[[trigger.http]]
route = "/static"
static_response = {{ status_code = 201, headers = {{ x-kind = "static" }}, body = "from the host" }}

[[trigger.http]]
route = {{ private = true }}
component = "hidden"

[[trigger.http]]
route = "/inline/..."
component = {{ source = "{wasm}" }}

[component.api]
source = "{wasm}"

[component.hidden]
source = "{wasm}"
"#,
        wasm = wasm.display()
    )
}

#[test]
fn routes_metadata_and_host_endpoints() {
    let app = AppDir::new(&routing_manifest());
    let boson = Boson::start(app.path(), &[]);

    let h = boson.get("/api/v1/items?x=1").json()["headers"].clone();
    assert_eq!(h["spin-path-info"], "/v1/items");
    assert_eq!(h["spin-matched-route"], "/api/...");
    assert_eq!(h["spin-component-route"], "/api");
    assert_eq!(h["spin-raw-component-route"], "/api/...");
    assert_eq!(h["spin-base-path"], "/");

    let h = boson.get("/users/42").json()["headers"].clone();
    assert_eq!(h["spin-path-match-id"], "42");
    assert_eq!(h["spin-path-info"], "");

    assert_eq!(boson.get("/exact").status, 200);
    assert_eq!(boson.get("/exact/more").status, 404);
    assert_eq!(boson.get("/nothing-here").status, 404);
    assert_eq!(boson.get("/inline/anything").status, 200);

    let r = boson.get("/static");
    assert_eq!((r.status, r.text().as_str()), (201, "from the host"));
    assert_eq!(r.header("x-kind"), Some("static"));

    assert_eq!(boson.get("/.well-known/spin/health").status, 200);
    let info = boson.get("/.well-known/spin/info").json();
    assert_eq!(info["name"], "routes");
    assert_eq!(info["version"], "1.2.3");
}

#[test]
fn duplicate_routes_fail_at_start() {
    let wasm = guest("c", "hello");
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "dup"
[[trigger.http]]
route = "/a/..."
component = "x"
[[trigger.http]]
route = "/a/..."
component = "x"
[component.x]
source = "{}"
"#,
        wasm.display()
    ));
    let err = start_failure(app.path(), &[]);
    assert!(err.contains("duplicates"), "{err}");
}

#[test]
fn bad_manifest_names_file_line_and_field() {
    let app = AppDir::new("spin_manifest_version = 2\n[application]\nname = \"x\"\nnmae = \"y\"\n");
    let err = start_failure(app.path(), &[]);
    assert!(err.contains("spin.toml:4"), "{err}");
    assert!(err.contains("nmae"), "{err}");
}

#[test]
fn unsupported_features_fail_at_start_with_a_reason() {
    let wasm = guest("c", "hello");
    let app = AppDir::new(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"x\"\n[component.x]\nsource = \"{}\"\nai_models = [\"llama2-chat\"]\n",
        wasm.display()
    ));
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains("ai_models") && err.contains("spin.toml:9"),
        "{err}"
    );
}

#[test]
fn core_modules_and_non_handlers_are_rejected() {
    let err = start_failure(&guest("c", "wasip1-command"), &[]);
    assert!(
        err.contains("core WebAssembly module with `_start`"),
        "{err}"
    );
    assert!(err.contains("wasm-tools component new"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wasm");
    // The smallest component: exports nothing.
    std::fs::write(&path, wat_component()).unwrap();
    let err = start_failure(&path, &[]);
    assert!(err.contains("exports nothing"), "{err}");
}

/// `(component)` in binary form.
fn wat_component() -> Vec<u8> {
    vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
}

#[test]
fn missing_source_says_to_build() {
    let app = AppDir::new(
        "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"x\"\n[component.x]\nsource = \"target/app.wasm\"\n",
    );
    let err = start_failure(app.path(), &[]);
    assert!(
        err.contains("does not exist") && err.contains("build"),
        "{err}"
    );
}

#[test]
fn up_without_from_serves_the_current_folder_and_quiet_hides_request_lines() {
    let app = AppDir::new("");
    std::fs::remove_file(app.path().join("spin.toml")).unwrap();
    app.write(
        "boson.toml",
        &single_component_manifest(&guest("c", "hello"), "").replace("test-app", "from-cwd"),
    );
    let mut command = std::process::Command::new(boson_bin());
    command
        .args(["up", "--quiet", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(shared_cache())
        .current_dir(app.path())
        .env_remove("RUST_LOG");
    let boson = Boson::spawn(command);
    assert_eq!(boson.get("/").text(), "Hello from C!\n");
    let info = boson.get("/.well-known/spin/info").json();
    assert_eq!(info["name"], "from-cwd");
    assert!(
        !boson.stderr().contains("INFO"),
        "--quiet still logged info: {}",
        boson.stderr()
    );
}
