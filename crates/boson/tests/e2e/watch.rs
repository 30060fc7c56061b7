//! `boson watch`: rebuilds on change and swaps the new version into the running server.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

/// An app whose one component is "built" by copying the guest named in the file `which`: the
/// build only reruns when `which` changes (its one watch glob).
fn swappable_app(first: &Path) -> AppDir {
    let app = AppDir::new(
        r#"spin_manifest_version = 2
[application]
name = "watched"
[[trigger.http]]
route = "/..."
component = "web"
[component.web]
source = "web.wasm"
[component.web.build]
command = "echo built >> builds.log && cp \"$(cat which)\" web.wasm"
watch = ["which"]
"#,
    );
    app.write("which", &first.display().to_string());
    app
}

fn start_watch(app: &Path, extra: &[&str]) -> Boson {
    Boson::spawn(watch_command(app, extra))
}

/// `boson watch --from <app>` on a free port with the shared cache and `extra`, logging at info.
fn watch_command(app: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(boson_bin());
    command
        .args(["watch", "--listen", "127.0.0.1:0", "--from"])
        .arg(app)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(extra)
        .env("RUST_LOG", "info");
    command
}

/// One GET on a fresh connection; any failure (connect, read, status) is an `Err`.
fn try_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let response = parse_response(&raw).ok_or_else(|| {
        format!(
            "GET {path}: bad response {:?}",
            String::from_utf8_lossy(&raw)
        )
    })?;
    if response.status != 200 {
        return Err(format!(
            "GET {path}: {} {}",
            response.status,
            response.text()
        ));
    }
    Ok(response.text())
}

/// Polls `path` until its body contains `needle`.
fn wait_for_body(addr: SocketAddr, path: &str, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if try_get(addr, path).is_ok_and(|b| b.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn ten_swaps_under_load_fail_no_request_and_in_flight_requests_finish_on_the_old_code() {
    let (routes, hello) = (guest("c", "guest"), guest("c", "hello"));
    let app = swappable_app(&routes);
    let boson = start_watch(app.path(), &["--debounce", "50ms"]);
    let addr = boson.addr;
    assert_eq!(try_get(addr, "/hello").unwrap(), "hello\n");

    // The load: four clients, each a request after another, until the swaps are done.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match try_get(addr, "/hello") {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            failures.push(e);
                            0
                        }
                    };
                }
                failures
            })
        })
        .collect();

    for swap in 0..10 {
        let (next, expect) = if swap % 2 == 0 {
            (&hello, "Hello from C!")
        } else {
            (&routes, "hello\n")
        };
        // Before swapping away from the routing guest, start a slow request on it: it must
        // finish on that code (`/sleep/...` means nothing to the hello guest).
        let slow = (swap % 2 == 0).then(|| {
            let slow = std::thread::spawn(move || try_get(addr, "/sleep/1000"));
            boson.wait_in_flight(1);
            slow
        });
        app.write("which", &next.display().to_string());
        assert!(
            wait_for_body(addr, "/hello", expect, Duration::from_secs(60)),
            "swap {swap} never served `{expect}`; stderr:\n{}",
            boson.stderr()
        );
        if let Some(slow) = slow {
            let body = slow.join().unwrap().expect("the in-flight request failed");
            assert!(
                !body.contains("Hello from C!"),
                "the in-flight request ran on the new code: {body}"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        failures.is_empty(),
        "{} request(s) failed during the swaps: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let served = served.load(Ordering::Relaxed);
    assert!(served > 50, "the load served only {served} requests");
    let log = std::fs::read_to_string(app.path().join("builds.log")).unwrap();
    assert_eq!(log.lines().count(), 11, "one build at start, one per swap");
    eprintln!("10 swaps, {served} requests under load, 0 failed");
}

#[test]
fn a_burst_of_saves_builds_once_and_a_failed_build_keeps_the_old_version() {
    let (routes, hello) = (guest("c", "guest"), guest("c", "hello"));
    let app = swappable_app(&routes);
    let boson = start_watch(app.path(), &["--debounce", "400ms"]);
    // Five saves well inside the debounce: one build.
    for _ in 0..5 {
        app.write("which", &hello.display().to_string());
    }
    assert!(wait_for_body(
        boson.addr,
        "/hello",
        "Hello from C!",
        Duration::from_secs(60)
    ));
    assert!(boson.wait_for_log("reloaded the app", Duration::from_secs(10)));
    let builds = || {
        std::fs::read_to_string(app.path().join("builds.log"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(builds(), 2, "the start build and one for the burst");

    // A build that fails: reported, and the running version keeps serving.
    app.write("which", "/no/such/guest.wasm");
    assert!(
        boson.wait_for_log("the build failed; still serving", Duration::from_secs(30)),
        "{}",
        boson.stderr()
    );
    assert_eq!(try_get(boson.addr, "/anything").unwrap(), "Hello from C!\n");
    assert!(
        boson.stderr().contains("no/such/guest.wasm"),
        "{}",
        boson.stderr()
    );
}

#[test]
fn a_manifest_change_reloads_the_app_and_a_broken_one_keeps_the_old_version() {
    let hello = guest("c", "hello");
    let manifest = |route: &str| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"reload\"\n[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"web\"\n[component.web]\nsource = \"{}\"\n",
            hello.display()
        )
    };
    let app = AppDir::new(&manifest("/one/..."));
    let boson = start_watch(app.path(), &["--debounce", "50ms"]);
    assert_eq!(try_get(boson.addr, "/one").unwrap(), "Hello from C!\n");
    assert!(try_get(boson.addr, "/two").is_err());

    app.write("spin.toml", "spin_manifest_version = 2\n[application\n");
    assert!(
        boson.wait_for_log("the reload failed", Duration::from_secs(30)),
        "{}",
        boson.stderr()
    );
    assert!(
        boson.stderr().contains("spin.toml"),
        "the error names the file"
    );
    assert_eq!(try_get(boson.addr, "/one").unwrap(), "Hello from C!\n");

    app.write("spin.toml", &manifest("/two/..."));
    assert!(wait_for_body(
        boson.addr,
        "/two",
        "Hello from C!",
        Duration::from_secs(30)
    ));
    assert!(
        try_get(boson.addr, "/one").is_err(),
        "the old route is gone"
    );
}

/// A thread's instance built ahead belongs to the version it was built for: once the reload
/// is logged, the next request runs the new code, on the thread that kept an old instance.
#[test]
fn after_a_reload_no_request_runs_in_an_instance_of_the_old_version() {
    let app = swappable_app(&guest("c", "guest"));
    let mut command = watch_command(app.path(), &[]);
    command.env("TOKIO_WORKER_THREADS", "1");
    let boson = Boson::spawn(command);
    assert_eq!(try_get(boson.addr, "/count").as_deref(), Ok("served 1\n"));
    app.write("which", &guest("c", "hello").display().to_string());
    assert!(
        boson.wait_for_log("new requests get the new version", Duration::from_secs(120)),
        "{}",
        boson.stderr()
    );
    let body = try_get(boson.addr, "/count").unwrap();
    assert!(body.contains("Hello"), "{body}");
    // That answer's thread dropped the old version's instance, unused, and counted it.
    assert_eq!(boson.route_count("/...", "ready_unused"), 1);
    assert_eq!(boson.route_count("/...", "ready"), 0);
}
