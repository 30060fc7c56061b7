//! Deny by default: environment, files and outbound network, granted by name only — in every
//! guest language.

use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::*;

fn sandbox(lang: &str) {
    let allowed = TestServer::start("from upstream");
    let forbidden = TestServer::start("must not be reached");
    // A granted host that redirects to the forbidden one.
    let redirector =
        TestServer::redirecting(&format!("http://127.0.0.1:{}/", forbidden.addr.port()));
    let extra = format!(
        r#"environment = {{ GREETING = "hello from the manifest" }}
files = [{{ source = "assets", destination = "/data" }}]
allowed_outbound_hosts = ["http://127.0.0.1:{}", "http://127.0.0.1:{}", "http://*:{}", "http://self"]
"#,
        allowed.addr.port(),
        redirector.addr.port(),
        forbidden.addr.port()
    );
    let app = AppDir::new(&single_component_manifest(&guest(lang, "guest"), &extra));
    app.write("assets/a.txt", "granted file\n");
    app.write("secret.txt", "not granted\n");
    // SAFETY-free: the child inherits this env var; the guest must not see it.
    let boson = Boson::start(app.path(), &[]);

    let r = boson.get("/env/GREETING");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "hello from the manifest"),
        "{lang}"
    );
    for name in ["HOME", "PATH", "BOSON_CACHE_DIR", "RUST_LOG"] {
        let r = boson.get(&format!("/env/{name}"));
        assert_eq!(
            r.status,
            404,
            "{lang}: host variable {name} leaked: {}",
            r.text()
        );
    }

    if lang != "js" || boson.get("/file/data/a.txt").status != 501 {
        let r = boson.get("/file/data/a.txt");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "granted file\n"),
            "{lang}"
        );
        for path in [
            "/file/secret.txt",
            "/file/data/../secret.txt",
            "/file/data/../../secret.txt",
            "/file/etc/passwd",
            "/file/spin.toml",
            "/file/data/a.txt/",
        ] {
            let r = boson.get(path);
            assert_eq!(r.status, 404, "{lang}: {path} was readable: {}", r.text());
        }
    }

    // The mount is read-only: no write, truncate, create, rename (out of it or into it), link,
    // symlink, unlink or mkdir succeeds, inside the mount or anywhere else.
    if lang != "js" {
        for target in ["data/a.txt", "data", "tmp/x", "a.txt"] {
            for op in [
                "write",
                "truncate",
                "append",
                "create",
                "rename",
                "rename-in",
                "link",
                "symlink",
                "unlink",
                "mkdir",
            ] {
                let r = boson.get(&format!("/fs/{op}/{target}"));
                assert_eq!(
                    r.status,
                    403,
                    "{lang}: {op} on /{target} was allowed: {}",
                    r.text()
                );
            }
        }
        let r = boson.get("/file/data/a.txt");
        assert_eq!(
            r.text(),
            "granted file\n",
            "{lang}: the mounted file changed"
        );
        assert_eq!(
            std::fs::read_to_string(app.path().join("assets/a.txt")).unwrap(),
            "granted file\n"
        );
    }

    let outbound = |url: &str| {
        request(
            boson.addr,
            "GET",
            "/outbound",
            &[("x-target-url", url)],
            b"",
        )
    };
    let r = outbound(&format!("http://127.0.0.1:{}/x", allowed.addr.port()));
    assert_eq!(r.status, 200, "{lang}: granted host: {}", r.text());
    assert!(r.text().contains("from upstream"), "{lang}: {}", r.text());

    // A granted host that redirects to a forbidden address: the redirect is not followed by the
    // host, and a guest that follows it (JavaScript's fetch does) is refused.
    let r = outbound(&format!("http://127.0.0.1:{}/", redirector.addr.port()));
    assert!(
        r.text().contains("status=302") || r.status == 502,
        "{lang}: redirect: {} {}",
        r.status,
        r.text()
    );
    assert!(!r.text().contains("must not be reached"), "{lang}");

    // `http://self` reaches this app's own listener, whatever Host header the client sent.
    let r = request(
        boson.addr,
        "GET",
        "/outbound",
        &[
            ("x-target-url", "http://self/hello"),
            ("host", &format!("127.0.0.1:{}", forbidden.addr.port())),
        ],
        b"",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "status=200\nhello\n"),
        "{lang}: self request"
    );

    // Not granted at all, a loopback address the wildcard does not name (also spelled as an
    // IPv4-mapped IPv6 address, 0.0.0.0 or a bare integer), a name that resolves to loopback, a
    // private address and the cloud metadata address: all refused, none connected.
    let port = forbidden.addr.port();
    for url in [
        format!("http://example.com:{}/", allowed.addr.port() + 1),
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://10.0.0.1:{port}/"),
        format!("http://169.254.169.254:{port}/latest/meta-data"),
        // `self` only on the granted port.
        format!("http://self:{port}/"),
    ] {
        let r = outbound(&url);
        assert_eq!(r.status, 502, "{lang}: {url} was allowed: {}", r.text());
    }
    assert_eq!(
        forbidden.hits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "{lang}: a denied host was contacted"
    );
}

#[test]
fn c_sandbox() {
    sandbox("c");
}

#[test]
fn python_sandbox() {
    sandbox("python");
}

#[test]
fn js_sandbox() {
    sandbox("js");
}

/// A symlink in a mounted folder that leads out of the app directory stops the app at start;
/// one that stays inside is mounted as the file it points to.
#[test]
fn symlinks_out_of_the_app_dir_are_refused_at_start() {
    let manifest = single_component_manifest(
        &guest("c", "guest"),
        "files = [{ source = \"assets\", destination = \"/data\" }]\n",
    );
    let outside = AppDir::new("");
    outside.write("secret.txt", "not granted\n");
    for target in [
        outside.path().join("secret.txt"),
        std::path::PathBuf::from("/etc/passwd"),
    ] {
        let app = AppDir::new(&manifest);
        app.write("assets/a.txt", "granted file\n");
        std::os::unix::fs::symlink(&target, app.path().join("assets/link")).unwrap();
        let err = start_failure(app.path(), &[]);
        assert!(
            err.contains("leads outside the app directory") && err.contains("assets/link"),
            "{err}"
        );
    }

    let app = AppDir::new(&manifest);
    app.write("assets/a.txt", "granted file\n");
    app.write("inside.txt", "inside the app\n");
    std::os::unix::fs::symlink("../inside.txt", app.path().join("assets/link")).unwrap();
    let boson = Boson::start(app.path(), &[]);
    let r = boson.get("/file/data/link");
    assert_eq!((r.status, r.text().as_str()), (200, "inside the app\n"));
}

/// An app of three C components that answer `/outbound` by fetching `x-target-url`: `granted`
/// at `/outbound`, allowed `grant`; `other` at `/outbound/...`, allowed `other_grant` or
/// nothing; `ungranted` at `/outbound/ungranted`, allowed nothing. `runtime_config`, if any, is
/// written with `files` beside it.
fn outbound_app(
    grant: &str,
    other_grant: Option<&str>,
    runtime_config: Option<&str>,
    files: &[(&str, &str)],
) -> (AppDir, Boson) {
    let wasm = guest("c", "guest");
    let other_grant = other_grant.map_or(String::new(), |g| {
        format!("allowed_outbound_hosts = [\"{g}\"]")
    });
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "outbound"
[[trigger.http]]
route = "/outbound"
component = "granted"
[[trigger.http]]
route = "/outbound/..."
component = "other"
[[trigger.http]]
route = "/outbound/ungranted"
component = "ungranted"
[component.granted]
source = "{wasm}"
allowed_outbound_hosts = ["{grant}"]
[component.other]
source = "{wasm}"
{other_grant}
[component.ungranted]
source = "{wasm}"
"#,
        wasm = wasm.display(),
    ));
    for (name, text) in files {
        app.write(name, text);
    }
    let rc_path = app.path().join("runtime-config.toml");
    let mut args = Vec::new();
    if let Some(rc) = runtime_config {
        app.write("runtime-config.toml", rc);
        args = vec!["--runtime-config-file", rc_path.to_str().unwrap()];
    }
    let boson = Boson::start(app.path(), &args);
    (app, boson)
}

/// An app whose `granted` component may reach the plain-HTTP `upstream`.
fn pooling_app(upstream: SocketAddr, runtime_config: Option<&str>) -> (AppDir, Boson) {
    let grant = format!("http://127.0.0.1:{}", upstream.port());
    outbound_app(&grant, None, runtime_config, &[])
}

fn fetch_via(boson: &Boson, route: &str, url: &str) -> Response {
    request(boson.addr, "GET", route, &[("x-target-url", url)], b"")
}

fn http_url(upstream: SocketAddr) -> String {
    format!("http://127.0.0.1:{}/x", upstream.port())
}

/// A component's outbound HTTP requests reuse the connection its earlier instances opened;
/// another component of the same app, not granted the host, is still refused and never gets
/// that connection.
#[test]
fn outbound_connections_are_kept_for_the_components_next_requests() {
    use std::sync::atomic::Ordering::SeqCst;
    let upstream = KeepAliveServer::start("from upstream", None);
    let (_app, boson) = pooling_app(upstream.addr, None);
    for round in 0..3 {
        let r = fetch_via(&boson, "/outbound", &http_url(upstream.addr));
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert!(r.text().contains("from upstream"), "{}", r.text());
    }
    assert_eq!(upstream.requests.load(SeqCst), 3);
    assert_eq!(upstream.connections.load(SeqCst), 1, "one kept connection");
    let r = fetch_via(&boson, "/outbound/other", &http_url(upstream.addr));
    assert_eq!(r.status, 502, "not granted: {}", r.text());
    assert!(r.text().contains("denied"), "{}", r.text());
    assert_eq!(
        upstream.requests.load(SeqCst),
        3,
        "the refused request was sent"
    );
    assert!(
        boson.wait_for_log("outbound request denied", Duration::from_secs(5)),
        "{}",
        boson.stderr()
    );
}

/// `[outbound_http] connection_pooling = false` (Spin's setting) opens a connection per request.
#[test]
fn outbound_connection_pooling_can_be_turned_off() {
    use std::sync::atomic::Ordering::SeqCst;
    let upstream = KeepAliveServer::start("from upstream", None);
    let rc = "[outbound_http]\nconnection_pooling = false\n";
    let (_app, boson) = pooling_app(upstream.addr, Some(rc));
    for round in 0..3 {
        let r = fetch_via(&boson, "/outbound", &http_url(upstream.addr));
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
    }
    assert_eq!(upstream.connections.load(SeqCst), 3);
}

/// The timeouts a guest sets on an outbound request (`request-options`) are kept: a server that
/// never answers fails the request at the first-byte timeout, one that stops in the middle of
/// its body at the between-bytes timeout, and a destination that never accepts at the connect
/// timeout. Each is the guest's error to handle, not a 504 at the component's deadline.
#[test]
fn outbound_request_timeouts_set_by_the_guest_are_kept() {
    let silent = StallingServer::start("");
    let halfway = StallingServer::start("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    let unanswered = UnansweredListener::start();
    let answering = KeepAliveServer::start("from upstream", None);
    let wasm = guest("c", "guest");
    let grants = [silent.addr, halfway.addr, unanswered.addr, answering.addr]
        .map(|a| format!("\"http://127.0.0.1:{}\"", a.port()))
        .join(", ");
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "timeouts"
[[trigger.http]]
route = "/outbound"
component = "fetch"
[component.fetch]
source = "{wasm}"
allowed_outbound_hosts = [{grants}]
"#,
        wasm = wasm.display(),
    ));
    let boson = Boson::start(app.path(), &["--timeout", "20s"]);
    let fetch = |upstream: SocketAddr, options: &str| {
        let url = format!("http://127.0.0.1:{}/x", upstream.port());
        let headers = [
            ("x-target-url", url.as_str()),
            ("x-request-options", options),
        ];
        request(boson.addr, "GET", "/outbound", &headers, b"")
    };
    let cases = [
        (
            silent.addr,
            "first-byte=200",
            "error: connection-read-timeout",
        ),
        // wasmtime-wasi-http 48.0.8 gives a 0.2 guest no error code for a failed response
        // body (`http-error-code` finds none), only the failed read. The server holds the
        // connection open, so without the timeout the request ends at the deadline (504).
        (
            halfway.addr,
            "between-bytes=200",
            "error: reading the response body failed",
        ),
        (unanswered.addr, "connect=200", "error: connection-timeout"),
    ];
    for (upstream, options, expected) in cases {
        let r = fetch(upstream, options);
        assert_eq!(r.status, 502, "{options}: {}", r.text());
        assert_eq!(r.text().trim(), expected, "{options}");
    }
    // Timeouts that are not reached change nothing, on a new connection and a kept one.
    for round in 0..2 {
        let r = fetch(
            answering.addr,
            "connect=5000,first-byte=5000,between-bytes=5000",
        );
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert!(r.text().contains("from upstream"), "{}", r.text());
    }
}

/// An [`outbound_app`] whose `granted` and `other` components may reach the HTTPS `server` as
/// `https://localhost:<port>`.
fn tls_app(server: SocketAddr, rc: &str, files: &[(&str, &str)]) -> (AppDir, Boson) {
    let grant = format!("https://localhost:{}", server.port());
    outbound_app(&grant, Some(&grant), Some(rc), files)
}

fn fetch_https(boson: &Boson, route: &str, server: SocketAddr) -> Response {
    let url = format!("https://localhost:{}/x", server.port());
    fetch_via(boson, route, &url)
}

/// `[[client_tls]]` with `ca_roots_file` lets the components it names reach a server whose
/// certificate a private CA signed, and only those: another component of the app granted the
/// same host still checks against the web's roots and is refused, and a named component that
/// `allowed_outbound_hosts` does not grant the host is still denied. The server offers HTTP/2,
/// and the requests take it, over one kept connection.
#[test]
fn a_private_ca_is_trusted_only_by_the_components_client_tls_names() {
    use std::sync::atomic::Ordering::SeqCst;
    let ca = TestCa::new("Boson test CA");
    let server = TlsServer::start(&ca.issue(Some("localhost")), None, true);
    let rc = format!(
        "[[client_tls]]\ncomponent_ids = [\"granted\", \"ungranted\"]\nhosts = [\"localhost:{}\"]\nca_roots_file = \"ca.pem\"\n",
        server.addr.port()
    );
    let (_app, boson) = tls_app(server.addr, &rc, &[("ca.pem", &ca.cert_pem)]);
    for round in 0..3 {
        let r = fetch_https(&boson, "/outbound", server.addr);
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        // HTTP/2 names the host in `:authority` only.
        assert_eq!(r.text(), "status=200\nHTTP/2.0 host=-", "round {round}");
    }
    assert_eq!(server.connections.load(SeqCst), 1, "one kept connection");
    let r = fetch_https(&boson, "/outbound/other", server.addr);
    assert_eq!(r.status, 502, "not trusted: {}", r.text());
    assert!(r.text().starts_with("error: tls-"), "{}", r.text());
    let r = fetch_https(&boson, "/outbound/ungranted", server.addr);
    assert_eq!(r.status, 502, "not granted: {}", r.text());
    assert_eq!(r.text().trim(), "error: http-request-denied");
    assert_eq!(server.connections.load(SeqCst), 1);
}

/// A server that requires a client certificate accepts the component whose `[[client_tls]]`
/// table gives one, and refuses a component whose table trusts the same CA but gives none.
#[test]
fn client_tls_presents_the_client_certificate_to_servers_that_require_one() {
    use std::sync::atomic::Ordering::SeqCst;
    let ca = TestCa::new("Boson test CA");
    let server = TlsServer::start(&ca.issue(Some("localhost")), Some(&ca), false);
    let client = ca.issue(None);
    let rc = format!(
        r#"[[client_tls]]
component_ids = ["granted"]
hosts = ["localhost"]
ca_roots_file = "ca.pem"
client_cert_file = "client.pem"
client_private_key_file = "client.key"

[[client_tls]]
component_ids = ["other"]
hosts = ["localhost:{port}"]
ca_roots_file = "ca.pem"
"#,
        port = server.addr.port()
    );
    let files = [
        ("ca.pem", ca.cert_pem.as_str()),
        ("client.pem", client.cert_pem.as_str()),
        ("client.key", client.key_pem.as_str()),
    ];
    let (_app, boson) = tls_app(server.addr, &rc, &files);
    let r = fetch_https(&boson, "/outbound", server.addr);
    assert_eq!(r.status, 200, "{}", r.text());
    // A server without HTTP/2 gets HTTP/1.1, with `Host`.
    let expected = format!("status=200\nHTTP/1.1 host=localhost:{}", server.addr.port());
    assert_eq!(r.text(), expected);
    let r = fetch_https(&boson, "/outbound/other", server.addr);
    assert_eq!(r.status, 502, "no client certificate: {}", r.text());
    assert_eq!(server.connections.load(SeqCst), 1);
}

/// A `[[client_tls]]` table that names no component of the app, or a file that is not there,
/// stops `boson up` with the file, the line and what to fix.
#[test]
fn a_bad_client_tls_table_is_refused_at_start() {
    let wasm = guest("c", "hello");
    let app = AppDir::new(&single_component_manifest(&wasm, ""));
    let rc_path = app.path().join("runtime-config.toml");
    let cases = [
        (
            "[[client_tls]]\ncomponent_ids = [\"nope\"]\nhosts = [\"example.com\"]\n",
            "the app has no component `nope`",
        ),
        (
            "\n[[client_tls]]\ncomponent_ids = [\"guest\"]\nhosts = [\"example.com\"]\nca_roots_file = \"missing.pem\"\n",
            "ca_roots_file: cannot read certificates from",
        ),
        (
            "[[client_tls]]\ncomponent_ids = [\"guest\"]\nhosts = [\"example.com\"]\nclient_cert_file = \"c.pem\"\n",
            "client_cert_file and client_private_key_file go together",
        ),
    ];
    for (rc, expected) in cases {
        app.write("runtime-config.toml", rc);
        let err = start_failure(
            app.path(),
            &["--runtime-config-file", rc_path.to_str().unwrap()],
        );
        let line = if rc.starts_with('\n') { 2 } else { 1 };
        let at = format!("runtime-config.toml:{line}: [[client_tls]]");
        assert!(err.contains(&at), "{at} not in: {err}");
        assert!(err.contains(expected), "{expected} not in: {err}");
    }
}

/// A kept connection that the server closes as the next request arrives (its idle timeout
/// expired just then) fails no request: a GET is sent again on a new connection.
#[test]
fn an_outbound_connection_the_server_closed_is_replaced() {
    use std::sync::atomic::Ordering::SeqCst;
    let upstream = KeepAliveServer::start("from upstream", Some(1));
    let (_app, boson) = pooling_app(upstream.addr, None);
    for round in 0..3 {
        let r = fetch_via(&boson, "/outbound", &http_url(upstream.addr));
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
    }
    assert_eq!(upstream.requests.load(SeqCst), 3);
    assert_eq!(upstream.connections.load(SeqCst), 3);
}
