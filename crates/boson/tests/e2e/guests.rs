//! Every test guest behaviour, in every guest language.

use std::time::{Duration, Instant};

use crate::harness::*;

#[test]
fn hello_in_every_language() {
    for (lang, name, greeting) in [
        ("c", "hello", "C"),
        ("python", "hello", "Python"),
        ("js", "hello", "JavaScript"),
        ("rust", "hello", "Rust"),
        // The oldest wasi:http 0.2 (its imports are 0.2.0 too).
        ("c", "hello-0.2.0", "C (wasi:http 0.2.0)"),
        // The Spin Python SDK 3.x: imports every fermyon:spin interface.
        ("python", "spin3-hello", "the Spin Python SDK"),
    ] {
        let boson = Boson::start(&guest(lang, name), &[]);
        let r = boson.get("/");
        assert_eq!(r.status, 200, "{lang}/{name}: {}", r.text());
        assert_eq!(r.text(), format!("Hello from {greeting}!\n"));
        // A bare .wasm is served at every path.
        assert_eq!(boson.get("/any/path?x=1").status, 200);
        // WASI 0.2 components run on the engine without the component model's concurrency.
        // (stderr is read by another thread: wait for the line rather than race it.)
        assert!(
            boson.wait_for_log("engine=plain", Duration::from_secs(10)),
            "{lang}/{name}: {}",
            boson.stderr()
        );
    }
}

#[test]
fn wasi_p3_handler_is_served() {
    let boson = Boson::start(&guest("python", "p3-hello"), &[]);
    let r = boson.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), boson.stderr());
    assert_eq!(r.text(), "Hello from Python p3!\n");
    // A WASI 0.3 component needs the engine with the component model's concurrency.
    assert!(
        boson.wait_for_log("engine=concurrent", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );

    // Built with the current Spin Python SDK (5.x): WASI 0.3 handler, imports every Spin
    // platform interface and the WASI 0.3 release candidates.
    let boson = Boson::start(&guest("python", "p3-hello-spin-sdk"), &[]);
    let r = boson.get("/");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), boson.stderr());
    assert_eq!(r.text(), "Hello from the Spin Python SDK 5!\n");
}

/// Echo, logs, traps, deadlines and memory caps, for one language.
fn behaviours(lang: &str) {
    let app = AppDir::new(&single_component_manifest(&guest(lang, "guest"), ""));
    let boson = Boson::start(app.path(), &["--timeout", "3s", "--max-memory", "64MiB"]);

    // Echo: method, path, headers, body, and the routing metadata.
    let r = request(
        boson.addr,
        "POST",
        "/echo/x?q=1",
        &[
            ("x-test", "yes"),
            ("spin-path-info", "forged"),
            ("proxy-authorization", "Basic c2VjcmV0"),
            ("keep-alive", "timeout=5"),
        ],
        b"payload",
    );
    assert_eq!(r.status, 200, "{lang}: {}", r.text());
    let echo = r.json();
    assert_eq!(echo["method"], "POST", "{lang}");
    assert_eq!(echo["path"], "/echo/x?q=1", "{lang}");
    assert_eq!(echo["body"], "payload", "{lang}");
    assert_eq!(echo["headers"]["x-test"], "yes", "{lang}");
    // wasi:http's forbidden headers never reach a guest.
    for forbidden in ["proxy-authorization", "keep-alive", "host"] {
        assert!(
            echo["headers"].get(forbidden).is_none(),
            "{lang}: {forbidden} reached the guest: {echo}"
        );
    }
    assert_eq!(
        echo["headers"]["spin-path-info"], "/echo/x",
        "{lang}: clients cannot forge spin-* headers"
    );
    assert_eq!(echo["headers"]["spin-matched-route"], "/...", "{lang}");
    assert_eq!(
        echo["headers"]["spin-full-url"],
        format!("http://{}/echo/x?q=1", boson.addr),
        "{lang}"
    );
    assert!(
        echo["headers"]["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{lang}"
    );

    // Guest output lands in the component's log file.
    assert_eq!(boson.get("/stdout").status, 200, "{lang}");
    let logs = app.path().join(".boson/logs");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::fs::read_to_string(logs.join("guest.stdout.log")).unwrap_or_default();
        let err = std::fs::read_to_string(logs.join("guest.stderr.log")).unwrap_or_default();
        if out.contains("guest says hi on stdout") && err.contains("guest says hi on stderr") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{lang}: guest output not in {}: {out:?} {err:?}",
            logs.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A trap fails only its request, with a log line naming the component. (componentize-js
    // catches a thrown exception and answers 500 itself, so the JS guest does not trap.)
    let r = boson.get("/trap");
    assert_eq!(r.status, 500, "{lang}");
    if lang != "js" {
        assert!(
            boson.wait_for_log("request failed: guest trapped", Duration::from_secs(5)),
            "{lang}: {}",
            boson.stderr()
        );
    }
    assert!(
        boson.wait_for_log(
            r#"path="/trap" component="guest" status=500"#,
            Duration::from_secs(5)
        ),
        "{lang}: {}",
        boson.stderr()
    );
    assert_eq!(
        boson.get("/hello").status,
        200,
        "{lang}: served after a trap"
    );

    // An infinite loop ends at the deadline while other requests are served.
    let addr = boson.addr;
    let looping = std::thread::spawn(move || {
        let start = Instant::now();
        let r = request(addr, "GET", "/loop", &[], b"");
        (r.status, start.elapsed())
    });
    boson.wait_in_flight(1);
    for _ in 0..5 {
        assert_eq!(
            boson.get("/hello").status,
            200,
            "{lang}: served during a loop"
        );
    }
    let (status, elapsed) = looping.join().unwrap();
    assert!(status == 504 || status == 500, "{lang}: loop gave {status}");
    assert!(
        elapsed < Duration::from_secs(4),
        "{lang}: loop ended after {elapsed:?}"
    );

    // Allocating without bound fails that request only.
    let r = boson.get("/alloc");
    assert!(r.status >= 500, "{lang}: alloc gave {}", r.status);
    assert_eq!(
        boson.get("/hello").status,
        200,
        "{lang}: served after a memory bomb"
    );
}

#[test]
fn c_guest_behaviours() {
    behaviours("c");
}

#[test]
fn python_guest_behaviours() {
    behaviours("python");
}

#[test]
fn js_guest_behaviours() {
    behaviours("js");
}
