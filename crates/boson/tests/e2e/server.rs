//! The server's own behaviour: compile cache, graceful stop, HTTP/2, timeouts, body limits,
//! URL sources.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use sha2::Digest as _;

use crate::harness::*;

#[test]
fn second_start_compiles_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let wasm = guest("c", "hello");
    {
        let boson = Boson::start_with_cache(&wasm, cache.path(), &[]);
        assert_eq!(boson.get("/").status, 200);
        assert!(
            boson.wait_for_log("compiled component", Duration::from_secs(10)),
            "{}",
            boson.stderr()
        );
    }
    // stderr is read by a thread of its own, which may lag the `Serving` line on stdout: wait
    // for the line that must be there before checking for the one that must not.
    let boson = Boson::start_with_cache(&wasm, cache.path(), &[]);
    assert_eq!(boson.get("/").status, 200);
    assert!(
        boson.wait_for_log(
            "loaded compiled component from cache",
            Duration::from_secs(10)
        ),
        "{}",
        boson.stderr()
    );
    let log = boson.stderr();
    assert!(
        !log.contains("compiled component path"),
        "compiled again: {log}"
    );

    // --disable-cache compiles afresh.
    let boson = Boson::start_with_cache(&wasm, cache.path(), &["--disable-cache"]);
    assert!(
        boson.wait_for_log("compiled component path", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
    assert!(!boson.stderr().contains("from cache"), "{}", boson.stderr());
}

#[test]
fn each_request_is_logged_with_its_duration_in_whole_microseconds() {
    let cache = tempfile::tempdir().unwrap();
    let boson = Boson::start_with_cache(&guest("c", "hello"), cache.path(), &[]);
    for _ in 0..20 {
        assert_eq!(boson.get("/").status, 200);
    }
    assert!(
        boson.wait_for_log("path=\"/\" component=\"", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
    let stderr = boson.stderr();
    let durations: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("path=\"/\" component=\""))
        .filter_map(|line| line.split_once("duration_ms=").map(|(_, ms)| ms.trim()))
        .collect();
    assert!(!durations.is_empty(), "{stderr}");
    for ms in durations {
        let decimals = ms.split_once('.').map_or(0, |(_, fraction)| fraction.len());
        assert!(
            decimals <= 3 && ms.parse::<f64>().is_ok_and(|ms| ms > 0.0),
            "duration_ms={ms}"
        );
    }
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let mut boson = Boson::start(app.path(), &[]);
    let addr = boson.addr;
    let slow: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/sleep/1500", &[], b"")))
        .collect();
    boson.wait_in_flight(8);
    boson.signal(SIGTERM);
    for t in slow {
        let r = t.join().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "slept\n"));
    }
    assert_eq!(
        boson.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        boson.stderr()
    );
    // No new connections after the stop.
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// Reads one response to `GET /` of the C hello from a keep-alive connection.
fn read_hello(conn: &mut std::net::TcpStream) -> Response {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(r) = parse_response(&raw)
            && r.text() == "Hello from C!\n"
        {
            return r;
        }
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn an_answered_request_frees_its_instance_slot_while_its_connection_stays_open() {
    // One instance slot; a request that finds none free waits 1 s, then gets a 503. A
    // request's instance is dropped after its response is written, at the end of the poll
    // that wrote it — not when its keep-alive connection next wakes.
    let boson = Boson::start(
        &guest("c", "hello"),
        &["--pool-instances", "1", "--queue-timeout", "1s"],
    );
    let mut open = std::net::TcpStream::connect(boson.addr).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for round in 0..3 {
        open.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_eq!(read_hello(&mut open).status, 200, "round {round}");
        // `open` stays idle; another connection needs the one slot.
        let other = boson.get("/");
        assert_eq!(
            (other.status, other.text().as_str()),
            (200, "Hello from C!\n")
        );
    }
}

#[test]
fn pipelined_requests_do_not_wait_for_each_others_instance() {
    // One slot and no queue: a pipelined request handled in the same poll as the one before
    // it gets the slot that one's instance held, not a 503.
    let boson = Boson::start(
        &guest("c", "hello"),
        &["--pool-instances", "1", "--max-queued", "0"],
    );
    let mut conn = std::net::TcpStream::connect(boson.addr).unwrap();
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    conn.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("Hello from C!").count(), 3, "{all}");
    assert!(!all.contains(" 503 "), "{all}");
}

#[test]
fn http2_cleartext_is_served() {
    // One instance slot: each stream's instance must be gone before the next request.
    let boson = Boson::start(
        &guest("c", "hello"),
        &["--pool-instances", "1", "--queue-timeout", "1s"],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        use http_body_util::BodyExt as _;
        let stream = tokio::net::TcpStream::connect(boson.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut bodies = Vec::new();
        for _ in 0..3 {
            let req = http::Request::get(format!("http://{}/", boson.addr))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            let res = sender.send_request(req).await.unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.version(), http::Version::HTTP_2);
            bodies.push(res.into_body().collect().await.unwrap().to_bytes());
        }
        bodies
    });
    assert!(
        body.iter().all(|b| &b[..] == b"Hello from C!\n"),
        "{body:?}"
    );
}

#[test]
fn slow_headers_are_dropped_and_keep_alive_works() {
    let boson = Boson::start(&guest("c", "hello"), &["--header-read-timeout", "1s"]);
    let mut slow = std::net::TcpStream::connect(boson.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "slow client kept for {:?}",
        start.elapsed()
    );

    // Two requests on one connection.
    let mut conn = std::net::TcpStream::connect(boson.addr).unwrap();
    conn.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut all = String::new();
    conn.read_to_string(&mut all).unwrap();
    assert_eq!(all.matches("Hello from C!").count(), 2, "{all}");
}

#[test]
fn request_body_limit_gives_413() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let boson = Boson::start(app.path(), &["--max-request-body", "1KiB"]);
    let r = request(boson.addr, "POST", "/echo", &[], &[b'x'; 2048]);
    assert_eq!(r.status, 413);
    let r = request(boson.addr, "POST", "/echo", &[], &[b'x'; 512]);
    assert_eq!(r.status, 200);
}

#[test]
fn url_sources_are_fetched_once_and_verified() {
    let bytes = std::fs::read(guest("c", "hello")).unwrap();
    let digest = hex_digest(&bytes);
    let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    let server = BinaryServer::start(leaked);
    let manifest = |digest: &str| {
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"x\"\n[[trigger.http]]\nroute = \"/...\"\ncomponent = \"x\"\n[component.x]\nsource = {{ url = \"http://{}/hello.wasm\", digest = \"sha256:{digest}\" }}\n",
            server.addr
        )
    };
    let cache = tempfile::tempdir().unwrap();
    let app = AppDir::new(&manifest(&digest));
    {
        let boson = Boson::start_with_cache(app.path(), cache.path(), &[]);
        assert_eq!(boson.get("/").text(), "Hello from C!\n");
    }
    let boson = Boson::start_with_cache(app.path(), cache.path(), &[]);
    assert_eq!(boson.get("/").status, 200);
    assert_eq!(
        server.hits.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "fetched twice"
    );
    drop(boson);

    let wrong = "0".repeat(64);
    let app = AppDir::new(&manifest(&wrong));
    let err = start_failure(app.path(), &["--cache-dir", cache.path().to_str().unwrap()]);
    assert!(err.contains("digest mismatch"), "{err}");
}

fn hex_digest(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct BinaryServer {
    addr: std::net::SocketAddr,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BinaryServer {
    fn start(body: &'static [u8]) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = s.write_all(body);
            }
        });
        Self { addr, hits }
    }
}

#[test]
fn follow_echoes_guest_output() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let boson = Boson::start(app.path(), &["--follow", "guest"]);
    assert_eq!(boson.get("/stdout").status, 200);
    assert!(
        boson.wait_for_stdout_line("[guest] guest says hi on stdout", Duration::from_secs(5)),
        "guest stdout was not echoed"
    );
    assert!(boson.wait_for_log("[guest] guest says hi on stderr", Duration::from_secs(5)));
}

#[test]
fn per_component_limits_come_from_the_runtime_config() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    app.write(
        "runtime-config.toml",
        "[limits]\ntimeout = \"30s\"\n[limits.component.guest]\ntimeout = \"500ms\"\n",
    );
    let config = app.path().join("runtime-config.toml");
    let boson = Boson::start(
        app.path(),
        &["--runtime-config-file", config.to_str().unwrap()],
    );
    let start = Instant::now();
    let r = boson.get("/loop");
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        boson.wait_for_log("deadline of 500ms exceeded", Duration::from_secs(5)),
        "{}",
        boson.stderr()
    );
}

#[test]
fn a_full_instance_pool_answers_503_and_recovers() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let boson = Boson::start(
        app.path(),
        &["--pool-instances", "2", "--queue-timeout", "100ms"],
    );
    let addr = boson.addr;
    let slow: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/sleep/1500", &[], b"")))
        .collect();
    boson.wait_in_flight(2);
    let r = boson.get("/hello");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    for t in slow {
        assert_eq!(t.join().unwrap().status, 200);
    }
    assert_eq!(boson.get("/hello").status, 200);
}

/// `boson up` whose connections all run on one thread (`TOKIO_WORKER_THREADS=1`): the thread
/// that built an instance ahead is the one the next request runs on.
fn start_on_one_thread(from: &std::path::Path, extra: &[&str]) -> Boson {
    Boson::spawn(one_thread_command(from, extra))
}

/// The command [`start_on_one_thread`] runs.
fn one_thread_command(from: &std::path::Path, extra: &[&str]) -> std::process::Command {
    let mut command = up_command(from, &shared_cache(), extra);
    command.env("TOKIO_WORKER_THREADS", "1");
    command
}

/// Every request runs in an instance no request used before, whether its connection's thread
/// built the instance ahead (the default) or the request did (`--no-ready-instances`).
#[test]
fn every_request_runs_in_an_instance_no_request_used_before() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    for extra in [&[][..], &["--no-ready-instances"][..]] {
        for boson in [
            start_on_one_thread(app.path(), extra),
            Boson::start(app.path(), extra),
        ] {
            for i in 0..20 {
                let r = boson.get("/count");
                assert_eq!(
                    (r.status, r.text().as_str()),
                    (200, "served 1\n"),
                    "request {i}, flags {extra:?}"
                );
            }
        }
    }
}

/// What an instance wrote never reaches a later one, even when the kernel swapped the page out
/// while the instance ran (the reset that scans for written pages does not see swapped-out
/// ones). The guest's `/residue/<ms>` sets a 64 KiB block and holds it; meanwhile everything of
/// Boson's that can be swapped out is, again and again; the next instance must find the block
/// all zeros. A Boson started before swap was on, which cannot change its reset, says so.
/// Turns swap on for the whole machine, so `scripts/test.sh` runs it alone, after the other
/// tests.
#[test]
#[ignore = "turns swap on for the whole machine (root); scripts/test.sh runs it alone"]
fn a_page_swapped_out_while_its_instance_ran_is_reset_for_the_next() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let swap_was_off = std::fs::read_to_string("/proc/swaps")
        .unwrap()
        .lines()
        .count()
        <= 1;
    let before = swap_was_off.then(|| Boson::start(app.path(), &[]));
    let _swap = SwapFile::on();
    if let Some(before) = &before {
        assert!(
            before.wait_for_log("swap was turned on after start", Duration::from_secs(10)),
            "{}",
            before.stderr()
        );
        assert_eq!(memory_reset(before), "written-pages");
    }
    let boson = start_on_one_thread(app.path(), &[]);
    assert!(
        boson.wait_for_log("swap is on", Duration::from_secs(10)),
        "{}",
        boson.stderr()
    );
    assert_eq!(memory_reset(&boson), "whole");
    for round in 0..3 {
        std::thread::scope(|s| {
            let held = s.spawn(|| boson.get("/residue/1500"));
            boson.wait_in_flight(1);
            let mut swapped_kib = 0;
            while !held.is_finished() {
                page_out(boson.pid());
                swapped_kib = swapped_kib.max(proc_status_kib(boson.pid(), "VmSwap"));
                std::thread::sleep(Duration::from_millis(50));
            }
            let r = held.join().unwrap();
            assert_eq!((r.status, r.text()), (200, "0\n".into()), "round {round}");
            // Without pages in swap, the round shows nothing.
            assert!(
                swapped_kib > 0,
                "round {round}: nothing of Boson's was swapped out"
            );
        });
        let r = boson.get("/residue/0");
        assert_eq!(
            (r.status, r.text()),
            (200, "0\n".into()),
            "round {round}: bytes an earlier instance set\n{}",
            boson.stderr()
        );
    }
}

/// How `boson` resets a finished instance's memory (`/.well-known/boson/status`).
fn memory_reset(boson: &Boson) -> String {
    let status = boson.get("/.well-known/boson/status").json();
    status["memory_reset"]
        .as_str()
        .unwrap_or_else(|| panic!("no memory_reset in {status}"))
        .to_string()
}

/// A swap file, on for the life of the value.
struct SwapFile {
    dir: tempfile::TempDir,
}

impl SwapFile {
    fn on() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("swap");
        let run = |program: &str, args: &[&std::ffi::OsStr]| {
            let out = std::process::Command::new(program)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("{program}: {e}"));
            assert!(
                out.status.success(),
                "{program} {args:?} (this test needs root): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(
            "fallocate",
            &["-l".as_ref(), "512M".as_ref(), file.as_os_str()],
        );
        run("chmod", &["600".as_ref(), file.as_os_str()]);
        run("mkswap", &[file.as_os_str()]);
        run("swapon", &[file.as_os_str()]);
        Self { dir }
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        let _ = std::process::Command::new("swapoff")
            .arg(self.dir.path().join("swap"))
            .status();
    }
}

/// Asks the kernel to swap out every private writable mapping of process `pid`
/// (`process_madvise(MADV_PAGEOUT)`); pages it cannot move stay where they are.
fn page_out(pid: i32) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    // SAFETY: plain syscalls on a pid and an fd of our own; the kernel checks the ranges.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(
        pidfd >= 0,
        "pidfd_open: {}",
        std::io::Error::last_os_error()
    );
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !(perms.starts_with("rw") && perms.ends_with('p')) {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        let range = libc::iovec {
            iov_base: start as *mut libc::c_void,
            iov_len: end - start,
        };
        // SAFETY: as above; the iovec describes memory of the other process, not ours.
        unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                pidfd,
                &range as *const libc::iovec,
                1,
                libc::MADV_PAGEOUT,
                0,
            )
        };
    }
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(pidfd as i32) };
}

/// An instance built ahead of its request gets the component's whole deadline from the moment
/// its request takes it, however long it waited: a guest computing for 100 ms, with a 400 ms
/// deadline, in an instance built a second before.
#[test]
fn an_instance_built_ahead_starts_its_deadline_with_its_request() {
    let app = AppDir::new(&single_component_manifest(&guest("c", "guest"), ""));
    let boson = start_on_one_thread(app.path(), &["--timeout", "400ms"]);
    assert_eq!(boson.get("/count").status, 200);
    // The instance the next request takes was built after this answer, a deadline ago.
    std::thread::sleep(Duration::from_secs(1));
    let r = boson.get("/busy/100");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), boson.stderr());
    // The deadline still holds for a guest that outlasts it.
    assert_eq!(boson.get("/loop").status, 504);
}

/// Instances built ahead have pool slots of their own: with a pool of one instance, a thread
/// keeping one of component `a` ready still lets requests for component `b` run.
#[test]
fn an_instance_built_ahead_takes_no_running_request_slot() {
    let wasm = guest("c", "guest");
    let app = AppDir::new(&format!(
        r#"spin_manifest_version = 2
[application]
name = "two"
[[trigger.http]]
route = "/count"
component = "a"
[[trigger.http]]
route = "/hello"
component = "b"
[component.a]
source = "{0}"
[component.b]
source = "{0}"
"#,
        wasm.display()
    ));
    let boson = start_on_one_thread(app.path(), &["--pool-instances", "1"]);
    for i in 0..5 {
        let a = boson.get("/count");
        assert_eq!(
            (a.status, a.text().as_str()),
            (200, "served 1\n"),
            "a, round {i}"
        );
        let b = boson.get("/hello");
        assert_eq!(
            b.status,
            200,
            "b, round {i}: {}\n{}",
            b.text(),
            boson.stderr()
        );
    }
}

/// An app of one component per id, each the C test guest, routed at `/age-<id>`.
fn age_routes_manifest(ids: &[&str]) -> String {
    let wasm = guest("c", "guest");
    let mut manifest = String::from("spin_manifest_version = 2\n[application]\nname = \"ages\"\n");
    for id in ids {
        manifest += &format!(
            "[[trigger.http]]\nroute = \"/age-{id}\"\ncomponent = \"{id}\"\n\
             [component.{id}]\nsource = \"{}\"\n",
            wasm.display()
        );
    }
    manifest
}

/// How long before its request the instance that answered `/age-<id>` was built, in ms.
fn instance_age(boson: &Boson, id: &str) -> u64 {
    let r = boson.get(&format!("/age-{id}"));
    assert_eq!(r.status, 200, "{id}: {}\n{}", r.text(), boson.stderr());
    r.text()
        .trim()
        .parse()
        .expect("the guest answers whole milliseconds")
}

/// A thread keeps an instance ready for each of several components, up to four; the place of
/// one nobody took for a second goes to a component that needs one. Requests run on one thread;
/// the guest's `/age…` route says how long before its request its instance was built (about 0
/// when the request built it).
#[test]
fn a_thread_keeps_instances_ready_for_up_to_four_components() {
    let ids = ["a", "b", "c", "d", "e"];
    let app = AppDir::new(&age_routes_manifest(&ids));
    let boson = start_on_one_thread(app.path(), &[]);
    let ahead = Duration::from_millis(500);
    for round in 0..2 {
        // Each answer leaves the next instance of its component built, while the thread has
        // room: a, b, c and d.
        for id in ids {
            instance_age(&boson, id);
        }
        std::thread::sleep(ahead);
        for id in &ids[..4] {
            let age = instance_age(&boson, id);
            assert!(
                age >= 250,
                "{id}, round {round}: built {age} ms before its request"
            );
        }
        // The fifth found four kept, none of them idle long, and built nothing ahead.
        let age = instance_age(&boson, "e");
        assert!(
            age < 250,
            "e, round {round}: built {age} ms before its request"
        );
    }
    // A second later the four kept instances are idle: e's answer builds one in the place of one
    // of theirs.
    std::thread::sleep(Duration::from_millis(1200));
    instance_age(&boson, "e");
    std::thread::sleep(ahead);
    let age = instance_age(&boson, "e");
    assert!(
        age >= 250,
        "e after the others idled: built {age} ms before its request"
    );
    // The status counts what the ages showed: a, b, c and d served three requests each in
    // instances built ahead (round 0's second, round 1's first and second), e one.
    for (id, ready) in [("a", 3), ("b", 3), ("c", 3), ("d", 3), ("e", 1)] {
        assert_eq!(
            boson.route_count(&format!("/age-{id}"), "ready"),
            ready,
            "{id}"
        );
    }
    // The one instance whose place went to e was dropped unused, and counted on its route.
    let unused: Vec<u64> = ids
        .iter()
        .map(|id| boson.route_count(&format!("/age-{id}"), "ready_unused"))
        .collect();
    assert_eq!(unused.iter().sum::<u64>(), 1, "{unused:?}");
    assert_eq!(unused[4], 0, "{unused:?}");
}

/// A component whose start functions wait (the C guest's constructor writes to stdout when
/// `GUEST_PRINT_AT_START` is set, and the host takes stdout asynchronously) cannot be built
/// ahead: its thread gives up three builds in a row, then stops trying, while its requests are
/// served as ever. Another component of the same app keeps its ready instances.
#[test]
fn a_component_whose_instantiation_waits_is_no_longer_built_ahead_after_three_tries() {
    let mut manifest = age_routes_manifest(&["waits", "plain"]);
    manifest += "[component.waits.environment]\nGUEST_PRINT_AT_START = \"1\"\n";
    let app = AppDir::new(&manifest);
    let mut command = one_thread_command(app.path(), &[]);
    command.env("RUST_LOG", "info,boson::ready=debug");
    let boson = Boson::spawn(command);
    for _ in 0..10 {
        assert!(instance_age(&boson, "waits") < 250);
    }
    // The third try's log line follows the first two.
    assert!(
        boson.wait_for_log(
            "instances are no longer built ahead",
            Duration::from_secs(5)
        ),
        "{}",
        boson.stderr()
    );
    let stderr = boson.stderr();
    let attempts = stderr
        .matches("instance not built ahead: its instantiation would have waited")
        .count();
    assert_eq!(attempts, 3, "{stderr}");
    assert_eq!(
        stderr
            .matches("instances are no longer built ahead")
            .count(),
        1,
        "{stderr}"
    );
    let log = std::fs::read_to_string(app.path().join(".boson/logs/waits.stdout.log"))
        .expect("the component's stdout log");
    assert!(log.lines().count() >= 10, "{log}");
    // The other component is built ahead as before.
    instance_age(&boson, "plain");
    std::thread::sleep(Duration::from_millis(500));
    let age = instance_age(&boson, "plain");
    assert!(age >= 250, "plain: built {age} ms before its request");
    assert_eq!(boson.route_count("/age-waits", "ready"), 0);
    assert_eq!(boson.route_count("/age-plain", "ready"), 1);
}
