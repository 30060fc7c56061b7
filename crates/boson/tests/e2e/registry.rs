//! `boson registry push | pull | login` and `boson up --from <reference>` against a real OCI
//! registry (Debian's `docker-registry`, the CNCF distribution server) on loopback, one private
//! registry per test.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Boson, Response, boson_bin, guest, request};

/// The registry's binary (`apt-get install docker-registry`; `scripts/services.sh` installs it).
fn registry_bin() -> PathBuf {
    let path = PathBuf::from("/usr/bin/docker-registry");
    assert!(
        path.is_file(),
        "{} is missing — install it with `apt-get install docker-registry` (scripts/services.sh does)",
        path.display()
    );
    path
}

/// A private registry on 127.0.0.1; killed on drop.
struct Registry {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// `user` / `s3cret`, bcrypt (cost 5, so the test stays quick).
const HTPASSWD: &str = "user:$2b$05$hL./lLNExRncW5WA3XIVOO8Q79r/WISoJwNmG..r2cwb4BeA8UJQ6\n";

/// How a test registry is set up.
#[derive(Default, Clone, Copy)]
struct Setup {
    /// Every request needs `user` / `s3cret` (HTTP basic).
    auth: bool,
    /// HTTPS with a self-signed certificate for 127.0.0.1 (`cert.pem` in the registry's dir).
    tls: bool,
}

impl Registry {
    fn start() -> Self {
        Self::start_with(Setup::default())
    }

    fn start_with(setup: Setup) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if setup.auth {
            std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
        }
        if setup.tls {
            let made = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                // A leaf certificate (webpki refuses a CA certificate as the server's).
                .args(["-addext", "basicConstraints=critical,CA:FALSE"])
                .arg("-keyout")
                .arg(dir.path().join("key.pem"))
                .arg("-out")
                .arg(dir.path().join("cert.pem"))
                .stderr(Stdio::null())
                .status()
                .expect("running openssl (apt-get install openssl)");
            assert!(made.success(), "openssl could not make a certificate");
        }
        // The registry cannot bind port 0 and report it: pick a free port, and pick again if
        // another process takes it first.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            );
            if setup.tls {
                config.push_str(&format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("cert.pem").display(),
                    dir.path().join("key.pem").display()
                ));
            }
            if setup.auth {
                config.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: boson-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(registry_bin())
                .arg("serve")
                .arg(&config_path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: try another
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    if !setup.tls {
                        let status = request(addr, "GET", "/v2/", &[], b"").status;
                        assert!(status == 200 || status == 401, "registry answered {status}");
                    }
                    return Self { child, addr, dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start; its log:\n{log}");
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// GET with the OCI manifest media type accepted.
    fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        request(
            self.addr,
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
        )
    }

    /// Uploads a blob monolithically (POST, then PUT with the digest); returns its digest.
    fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let started = request(
            self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            b"",
        );
        assert_eq!(started.status, 202, "{}", started.text());
        let location = started.header("location").unwrap().to_string();
        let path = match location.find("/v2/") {
            Some(i) => location[i..].to_string(),
            None => location,
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let done = request(
            self.addr,
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(done.status, 201, "{}", done.text());
        digest
    }

    fn put_manifest(&self, repo: &str, tag: &str, manifest: &serde_json::Value) {
        let body = serde_json::to_vec(manifest).unwrap();
        let r = request(
            self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            &body,
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    // The tests link no hashing crate; `sha256sum` is everywhere the registry is.
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Runs `boson <args>` with `DOCKER_CONFIG` pointing at `docker_config` (so the user's own
/// logins never leak in).
fn boson(args: &[&str], docker_config: &Path, stdin: Option<&str>) -> Output {
    let mut command = Command::new(boson_bin());
    command
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("BOSON_CACHE_DIR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "boson failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "boson succeeded but should have failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An app with two components, a static response, an environment variable and files: one
/// small enough to travel inline, one large enough for a data layer.
fn test_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::copy(guest("c", "hello"), p.join("hello.wasm")).unwrap();
    std::fs::copy(guest("c", "guest"), p.join("guest.wasm")).unwrap();
    std::fs::create_dir_all(p.join("assets/sub")).unwrap();
    std::fs::write(p.join("assets/small.txt"), "small file\n").unwrap();
    std::fs::write(p.join("assets/sub/big.txt"), "big file line\n".repeat(100)).unwrap();
    std::fs::write(p.join("notes.txt"), "notes\n").unwrap();
    std::fs::write(
        p.join("spin.toml"),
        r#"spin_manifest_version = 2
[application]
name = "registry-test"
version = "1.0.0"
description = "pushed by the e2e tests"

[[trigger.http]]
route = "/hello/..."
component = "hello"

[[trigger.http]]
route = "/..."
component = "guest"

[[trigger.http]]
route = "/static"
static_response = { status_code = 201, headers = { x-from = "static" }, body = "static body\n" }

[component.hello]
source = "hello.wasm"

[component.guest]
source = "guest.wasm"
environment = { MODE = "registry" }
files = [{ source = "assets", destination = "/" }, "notes.txt"]
"#,
    )
    .unwrap();
    dir
}

const PATHS: [&str; 7] = [
    "/hello",
    "/env/MODE",
    "/file/small.txt",
    "/file/sub/big.txt",
    "/file/notes.txt",
    "/file/missing.txt",
    "/static",
];

fn responses(boson: &Boson) -> Vec<(u16, String)> {
    PATHS
        .iter()
        .map(|p| {
            let r = boson.get(p);
            (r.status, r.text())
        })
        .collect()
}

/// `boson up --from <reference> --insecure` with its own cache and state dir.
fn up_from(reference: &str, cache: &Path, docker_config: &Path) -> Boson {
    let state = cache.join("state-for-test");
    let mut command = Command::new(boson_bin());
    command
        .args([
            "up",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--from",
            reference,
        ])
        .arg("--cache-dir")
        .arg(cache)
        .arg("--state-dir")
        .arg(state)
        .env("DOCKER_CONFIG", docker_config)
        .env("RUST_LOG", "info");
    Boson::spawn(command)
}

fn digest_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in:\n{stdout}"))
        .trim()
        .to_string()
}

#[test]
fn pushed_app_pulled_into_an_empty_cache_serves_the_same_responses() {
    let registry = Registry::start();
    let app = test_app();
    let docker = tempfile::tempdir().unwrap();
    let push_cache = tempfile::tempdir().unwrap();
    let reference = format!("{}/apps/shop:v1", registry.host());
    let app_dir = app.path().to_str().unwrap();
    let push = |docker: &Path| {
        boson(
            &[
                "registry",
                "push",
                "--insecure",
                "--from",
                app_dir,
                "--cache-dir",
                push_cache.path().to_str().unwrap(),
                &reference,
            ],
            docker,
            None,
        )
    };
    let out = push(docker.path());
    let stdout = ok(&out);
    let digest = digest_line(&stdout);
    assert!(stdout.contains(&format!("Pushed {reference}")), "{stdout}");

    // Spin's layout: OCI image config, a layer per component, a data layer for the big file
    // (the small ones are inline), and the locked app as a layer.
    let manifest = registry.get_manifest("apps/shop", "v1");
    assert_eq!(manifest.status, 200, "{}", manifest.text());
    assert_eq!(
        manifest.header("docker-content-digest"),
        Some(digest.as_str())
    );
    let manifest = manifest.json();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let media_types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    let count = |t: &str| media_types.iter().filter(|m| **m == t).count();
    assert_eq!(
        count("application/vnd.wasm.content.layer.v1+wasm"),
        2,
        "{media_types:?}"
    );
    assert_eq!(
        count("application/vnd.wasm.content.layer.v1+data"),
        1,
        "{media_types:?}"
    );
    assert_eq!(
        count("application/vnd.fermyon.spin.application.v1+config"),
        1,
        "{media_types:?}"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.title"],
        "registry-test"
    );
    let locked_digest = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.fermyon.spin.application.v1+config")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let locked = request(
        registry.addr,
        "GET",
        &format!("/v2/apps/shop/blobs/{locked_digest}"),
        &[],
        b"",
    )
    .json();
    assert_eq!(locked["metadata"]["name"], "registry-test");
    assert_eq!(locked["triggers"][0]["id"], "hello-http-trigger");
    let guest_files = locked["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "guest")
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .clone();
    let paths: Vec<&str> = guest_files
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["notes.txt", "small.txt", "sub/big.txt"]);
    assert!(guest_files[1]["inline"].is_string() && guest_files[2]["inline"].is_null());

    // Pushing again uploads none of the five blobs again (two Wasm, one file, the locked app, the
    // config); the manifest is new (its `created` annotation changes, as with Spin), so the tag
    // may now name another digest.
    let again = push(docker.path());
    let digest = digest_line(&ok(&again));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains(": pushed"), "{stderr}");
    assert_eq!(
        stderr.matches("already in the registry").count(),
        5,
        "{stderr}"
    );

    // Pull into an empty cache.
    let cache = tempfile::tempdir().unwrap();
    let pulled = boson(
        &[
            "registry",
            "pull",
            "--insecure",
            "--cache-dir",
            cache.path().to_str().unwrap(),
            &reference,
        ],
        docker.path(),
        None,
    );
    let stdout = ok(&pulled);
    assert_eq!(digest_line(&stdout), digest);
    let hex = digest.strip_prefix("sha256:").unwrap();
    let app_copy = cache.path().join(format!("registry/apps/sha256-{hex}"));
    assert!(app_copy.join("spin.toml").is_file(), "{stdout}");

    // Served from the folder and from the registry: the same answers.
    let local = Boson::start(app.path(), &[]);
    let expected = responses(&local);
    assert_eq!(expected[0].0, 200);
    assert!(expected[0].1.starts_with("Hello"), "{:?}", expected[0]);
    assert_eq!(expected[1], (200, "registry".to_string()));
    assert_eq!(expected[2], (200, "small file\n".to_string()));
    assert_eq!(expected[3].1, "big file line\n".repeat(100));
    assert_eq!(expected[6], (201, "static body\n".to_string()));
    drop(local);
    let remote = up_from(&reference, cache.path(), docker.path());
    assert_eq!(responses(&remote), expected);
    drop(remote);

    // By digest, into another empty cache.
    let by_digest = tempfile::tempdir().unwrap();
    let digest_ref = format!("{}/apps/shop@{digest}", registry.host());
    let remote = up_from(&digest_ref, by_digest.path(), docker.path());
    assert_eq!(responses(&remote), expected);
    drop(remote);

    // With the registry gone, the tag runs the copy pulled before, and says so.
    drop(registry);
    let offline = up_from(&reference, cache.path(), docker.path());
    assert!(
        offline.wait_for_log("cannot talk to the registry", Duration::from_secs(5)),
        "{}",
        offline.stderr()
    );
    assert_eq!(responses(&offline), expected);
}

#[test]
fn plain_http_needs_insecure_and_bad_references_say_what_to_do() {
    let registry = Registry::start();
    let app = test_app();
    let docker = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let host = registry.host();

    let err = failed(&boson(
        &[
            "registry",
            "push",
            "--from",
            app.path().to_str().unwrap(),
            "--cache-dir",
            cache_arg,
            &format!("{host}/apps/x:v1"),
        ],
        docker.path(),
        None,
    ));
    assert!(
        err.contains("cannot talk to the registry") && err.contains("--insecure"),
        "{err}"
    );

    let err = failed(&boson(
        &[
            "registry",
            "pull",
            "--cache-dir",
            cache_arg,
            "ghcr.io/Not A/Reference",
        ],
        docker.path(),
        None,
    ));
    assert!(err.contains("is not a registry reference"), "{err}");

    let missing = format!("{host}/nothing/here:v1");
    let err = failed(&boson(
        &[
            "registry",
            "pull",
            "--insecure",
            "--cache-dir",
            cache_arg,
            &missing,
        ],
        docker.path(),
        None,
    ));
    assert!(err.contains("is not in the registry"), "{err}");
    let err = failed(&boson(
        &[
            "up",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--cache-dir",
            cache_arg,
            "--from",
            &missing,
        ],
        docker.path(),
        None,
    ));
    assert!(err.contains("is not in the registry"), "{err}");

    // Nothing listens on this port.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = failed(&boson(
        &[
            "registry",
            "pull",
            "--insecure",
            "--cache-dir",
            cache_arg,
            &format!("{closed}/apps/x:v1"),
        ],
        docker.path(),
        None,
    ));
    assert!(err.contains("cannot talk to the registry"), "{err}");
}

#[test]
fn login_stores_credentials_that_push_and_pull_use() {
    let registry = Registry::start_with(Setup {
        auth: true,
        ..Setup::default()
    });
    let app = test_app();
    let docker = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = cache.path().to_str().unwrap();
    let host = registry.host();
    let reference = format!("{host}/private/app:v1");
    let push = || {
        boson(
            &[
                "registry",
                "push",
                "--insecure",
                "--from",
                app.path().to_str().unwrap(),
                "--cache-dir",
                cache_arg,
                &reference,
            ],
            docker.path(),
            None,
        )
    };

    let err = failed(&push());
    assert!(
        err.contains("refused access") && err.contains("boson registry login"),
        "{err}"
    );

    let err = failed(&boson(
        &[
            "registry",
            "login",
            "--insecure",
            &host,
            "-u",
            "user",
            "--password-stdin",
        ],
        docker.path(),
        Some("wrong\n"),
    ));
    assert!(err.contains("refused the login"), "{err}");
    assert!(!docker.path().join("config.json").exists());

    let out = ok(&boson(
        &[
            "registry",
            "login",
            "--insecure",
            &host,
            "-u",
            "user",
            "--password-stdin",
        ],
        docker.path(),
        Some("s3cret\n"),
    ));
    assert!(out.contains("Login succeeded"), "{out}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(docker.path().join("config.json")).unwrap()).unwrap();
    // base64("user:s3cret")
    assert_eq!(config["auths"][&host]["auth"], "dXNlcjpzM2NyZXQ=");

    ok(&push());
    let fresh = tempfile::tempdir().unwrap();
    ok(&boson(
        &[
            "registry",
            "pull",
            "--insecure",
            "--cache-dir",
            fresh.path().to_str().unwrap(),
            &reference,
        ],
        docker.path(),
        None,
    ));
}

/// Artifacts other tools push: the locked app as the *config* (older Spin) and a bare
/// component with no locked app (`wkg`). Both are assembled here blob by blob.
#[test]
fn runs_artifacts_in_older_spin_and_bare_component_layouts() {
    let registry = Registry::start();
    let docker = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(guest("c", "guest")).unwrap();

    let wasm_digest = registry.put_blob("spin/old", &wasm);
    let file = b"served from a data layer, as older Spin pushed files.\n".repeat(4);
    let file_digest = registry.put_blob("spin/old", &file);
    let locked = serde_json::json!({
        "spin_lock_version": 0,
        "metadata": { "name": "old-spin", "trigger": { "type": "http", "base": "/" } },
        "triggers": [{ "id": "trigger--web", "trigger_type": "http",
                       "trigger_config": { "component": "web", "route": "/..." } }],
        "components": [{
            "id": "web",
            "metadata": { "allowed_outbound_hosts": [] },
            "source": { "content_type": "application/wasm", "digest": wasm_digest },
            "env": { "MODE": "old" },
            "files": [
                { "digest": file_digest, "path": "data/page.txt" },
                { "inline": "aW5saW5lIQ==", "path": "tiny.txt" }
            ]
        }]
    });
    let locked = serde_json::to_vec(&locked).unwrap();
    let locked_digest = registry.put_blob("spin/old", &locked);
    registry.put_manifest(
        "spin/old",
        "v1",
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.fermyon.spin.application.v1+config",
                        "digest": locked_digest, "size": locked.len() },
            "layers": [
                { "mediaType": "application/vnd.wasm.content.layer.v1+wasm",
                  "digest": wasm_digest, "size": wasm.len() },
                { "mediaType": "application/vnd.wasm.content.layer.v1+data",
                  "digest": file_digest, "size": file.len() }
            ]
        }),
    );
    let cache = tempfile::tempdir().unwrap();
    let old = up_from(
        &format!("{}/spin/old:v1", registry.host()),
        cache.path(),
        docker.path(),
    );
    assert_eq!(old.get("/env/MODE").text(), "old");
    assert_eq!(old.get("/file/data/page.txt").body, file);
    assert_eq!(old.get("/file/tiny.txt").text(), "inline!");
    drop(old);

    let wasm_digest = registry.put_blob("bare/guest", &wasm);
    let config = b"{}";
    let config_digest = registry.put_blob("bare/guest", config);
    registry.put_manifest(
        "bare/guest",
        "v1",
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.wasm.config.v0+json",
                        "digest": config_digest, "size": config.len() },
            "layers": [{ "mediaType": "application/wasm", "digest": wasm_digest, "size": wasm.len() }]
        }),
    );
    let bare = up_from(
        &format!("{}/bare/guest:v1", registry.host()),
        cache.path(),
        docker.path(),
    );
    assert_eq!(bare.get("/hello").text(), "hello\n");
}

#[test]
fn https_registry_works_when_its_certificate_is_trusted() {
    let registry = Registry::start_with(Setup {
        tls: true,
        ..Setup::default()
    });
    let app = test_app();
    let docker = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cert = registry.dir.path().join("cert.pem");
    let reference = format!("{}/apps/tls:v1", registry.host());
    let push = |trust: bool| {
        let mut command = Command::new(boson_bin());
        command
            .args(["registry", "push", "--from"])
            .arg(app.path())
            .arg("--cache-dir")
            .arg(cache.path())
            .arg(&reference)
            .env("DOCKER_CONFIG", docker.path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if trust {
            command.env("SSL_CERT_FILE", &cert);
        }
        command.output().unwrap()
    };

    let err = failed(&push(false));
    assert!(
        err.contains("certificate") && err.contains("SSL_CERT_FILE") && !err.contains("--insecure"),
        "{err}"
    );
    let digest = digest_line(&ok(&push(true)));

    let fresh = tempfile::tempdir().unwrap();
    let mut command = Command::new(boson_bin());
    command
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(format!("{}/apps/tls@{digest}", registry.host()))
        .arg("--cache-dir")
        .arg(fresh.path())
        .arg("--state-dir")
        .arg(fresh.path().join("state"))
        .env("DOCKER_CONFIG", docker.path())
        .env("SSL_CERT_FILE", &cert)
        .env("RUST_LOG", "info");
    let served = Boson::spawn(command);
    assert_eq!(served.get("/file/small.txt").text(), "small file\n");
}
