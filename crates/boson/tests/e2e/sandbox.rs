//! Deny by default: environment, files and outbound network, granted by name only — in every
//! guest language.

use crate::harness::*;

fn sandbox(lang: &str) {
    let allowed = TestServer::start("from upstream");
    let forbidden = TestServer::start("must not be reached");
    let extra = format!(
        r#"environment = {{ GREETING = "hello from the manifest" }}
files = [{{ source = "assets", destination = "/data" }}]
allowed_outbound_hosts = ["http://127.0.0.1:{}", "http://*:{}"]
"#,
        allowed.addr.port(),
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
            "/file/etc/passwd",
            "/file/spin.toml",
        ] {
            let r = boson.get(path);
            assert_eq!(r.status, 404, "{lang}: {path} was readable: {}", r.text());
        }
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
