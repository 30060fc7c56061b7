//! Hostile clients, hostile guests and overload: a full instance pool queues then sheds load, the
//! connection cap, malformed and oversize HTTP, stopping under load, guests abusing host
//! allocations and bulk memory operations. The figures these tests print
//! (`cargo test -p boson --test e2e hardening -- --nocapture`) are the ones in
//! docs/RELIABILITY.md.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;

fn guest_app() -> AppDir {
    AppDir::new(&single_component_manifest(&guest("c", "guest"), ""))
}

/// Sends raw bytes on a fresh connection and returns the status code of the answer, if any.
fn raw_status(boson: &Boson, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(boson.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1)?.parse().ok()
}

#[test]
fn malformed_and_oversize_requests_get_4xx_and_the_host_keeps_serving() {
    let app = guest_app();
    let boson = Boson::start(app.path(), &[]);
    let mut many_headers = String::from("GET /hello HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many_headers.push_str(&format!("x-h{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");
    assert_eq!(raw_status(&boson, many_headers.as_bytes()), Some(431));
    let huge_header = format!(
        "GET /hello HTTP/1.1\r\nHost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    assert_eq!(raw_status(&boson, huge_header.as_bytes()), Some(431));
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /hello HTTP/9.9\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /hello HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    ] {
        assert_eq!(
            raw_status(&boson, bad),
            Some(400),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // A declared body over the cap (16 MiB) is refused before it is read.
    let oversize = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        17 << 20
    );
    assert_eq!(raw_status(&boson, oversize.as_bytes()), Some(413));
    assert_eq!(boson.get("/hello").status, 200, "{}", boson.stderr());
    assert!(!boson.stderr().contains("panicked"), "{}", boson.stderr());
}

#[test]
fn a_full_pool_queues_then_sheds_load_and_recovers() {
    let app = guest_app();
    let boson = Boson::start(
        app.path(),
        &[
            "--pool-instances",
            "2",
            "--queue-timeout",
            "2s",
            "--max-queued",
            "20",
        ],
    );
    let addr = boson.addr;
    // 2 slots, 20 queue places, 52 slow requests (400 ms each) at once.
    let started = Instant::now();
    let requests: Vec<_> = (0..52)
        .map(|_| {
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = request(addr, "GET", "/sleep/400", &[], b"");
                (r, t.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = requests.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(r, _)| r.status == 200).count();
    let shed: Vec<_> = results.iter().filter(|(r, _)| r.status == 503).collect();
    assert_eq!(ok + shed.len(), 52, "only 200 and 503 expected");
    assert!(
        shed.iter()
            .all(|(r, _)| r.header("retry-after") == Some("1")),
        "every 503 says when to retry"
    );
    // At most 2 run and 20 wait: the other 30 are refused without waiting.
    assert!(shed.len() >= 30, "{} shed", shed.len());
    // Those that waited were served: more than the 2 that found a free slot.
    assert!(ok > 2, "{ok} served");
    let slowest = results.iter().map(|(_, d)| *d).max().unwrap();
    // Nothing hangs: the longest wait is the queue timeout plus one request.
    assert!(slowest < Duration::from_secs(4), "slowest {slowest:?}");
    let fast_rejects = shed
        .iter()
        .filter(|(_, d)| *d < Duration::from_millis(300))
        .count();
    eprintln!(
        "figure: pool 2 + queue 20, 52 × 400 ms requests: {ok} served, {} shed ({fast_rejects} at once), slowest {slowest:?}, all done in {:?}",
        shed.len(),
        started.elapsed()
    );
    // Full recovery: the next request is served at once.
    let t = Instant::now();
    assert_eq!(boson.get("/hello").status, 200);
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// An open keep-alive connection that has been served once.
fn served_connection(boson: &Boson) -> TcpStream {
    let mut s = TcpStream::connect(boson.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ask(&mut s).expect("served");
    s
}

/// Sends one keep-alive request on `s` and reads the answer; `None` if none came in time.
fn ask(s: &mut TcpStream) -> Option<u16> {
    s.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("hello") {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = guest_app();
    let boson = Boson::start(app.path(), &["--max-connections", "3"]);
    let mut open: Vec<TcpStream> = (0..3).map(|_| served_connection(&boson)).collect();
    // A fourth client connects (the kernel queues it) but is not served while three are open.
    let mut fourth = TcpStream::connect(boson.addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    assert_eq!(ask(&mut fourth), None, "served beyond the cap");
    // The open connections stay responsive.
    for s in &mut open {
        assert_eq!(ask(s), Some(200));
    }
    // One closes: the waiting client is served.
    drop(open.pop());
    let mut fourth = TcpStream::connect(boson.addr).unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    drop(open.pop());
    assert_eq!(ask(&mut fourth), Some(200), "{}", boson.stderr());
    eprintln!(
        "figure: a client queued behind the connection cap is served {:?} after a slot frees",
        t.elapsed()
    );
}

#[test]
fn stop_closes_the_listener_at_once_and_a_second_signal_exits_at_once() {
    let app = guest_app();
    let mut boson = Boson::start(app.path(), &["--grace-period", "30s"]);
    let addr = boson.addr;
    let slow: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || request(addr, "GET", "/sleep/2500", &[], b"")))
        .collect();
    boson.wait_in_flight(4);
    let t = Instant::now();
    boson.signal(SIGTERM);
    // The listener closes at once: new connections are refused.
    while TcpStream::connect(addr).is_ok() {
        assert!(t.elapsed() < Duration::from_secs(1), "listener still open");
        std::thread::sleep(Duration::from_millis(5));
    }
    let closed_after = t.elapsed();
    // In-flight requests still complete.
    for s in slow {
        assert_eq!(s.join().unwrap().status, 200);
    }
    assert_eq!(boson.wait_exit(Duration::from_secs(10)), Some(0));

    // A second signal ends a long drain at once.
    let mut boson = Boson::start(app.path(), &["--grace-period", "30s"]);
    let addr = boson.addr;
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /sleep/20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    boson.wait_in_flight(1);
    boson.signal(SIGTERM);
    assert!(boson.wait_for_log("stopping", Duration::from_secs(5)));
    let t = Instant::now();
    boson.signal(SIGTERM);
    let code = boson.wait_exit(Duration::from_secs(1));
    let second_exit = t.elapsed();
    assert!(code.is_some(), "still running 1 s after the second signal");
    eprintln!(
        "figure: listener refused new connections {closed_after:?} after SIGTERM; a second SIGTERM exited in {second_exit:?}"
    );
}

/// A guest asking the host for 1 GiB of random bytes, 100,000 headers, the largest header its
/// memory holds (it tries 1 GiB) and a million resource handles: each is refused, no panic, and
/// the host's peak RSS stays within 200 MiB of where it started. The memory cap is 64 MiB
/// because the guest's own memory counts in the host's RSS too.
#[test]
fn host_allocation_abuse_is_refused_and_bounded() {
    let app = guest_app();
    let boson = Boson::start(app.path(), &["--max-memory", "64MiB"]);
    assert_eq!(boson.get("/hello").status, 200);
    let baseline = proc_status_kib(boson.pid(), "VmRSS");

    // Each is refused by trapping the guest: a 500, and a log line naming the cause.
    let mut took = Vec::new();
    for (route, cause) in [
        ("random", "exceeds limit 1048576"),
        ("headers", "total size of fields exceeds limit"),
        ("big-header", "total size of fields exceeds limit"),
        ("handles", "handle limit exceeded"),
    ] {
        let t = Instant::now();
        let r = boson.get(&format!("/abuse/{route}"));
        took.push(format!("{route} {:?}", t.elapsed()));
        assert_eq!(r.status, 500, "/abuse/{route}: {}", r.text());
        assert!(
            boson.wait_for_log(cause, Duration::from_secs(5)),
            "/abuse/{route}: no `{cause}` in the log: {}",
            boson.stderr()
        );
    }
    assert_eq!(boson.get("/hello").status, 200);
    let stderr = boson.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let peak = proc_status_kib(boson.pid(), "VmHWM");
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "figure: all four refused with 500 ({}); RSS {} MiB at start, peak {} MiB (+{growth_mib} MiB)",
        took.join(", "),
        baseline / 1024,
        peak / 1024
    );
    assert!(growth_mib < 200, "peak RSS grew by {growth_mib} MiB");
}

/// A guest looping on `memory.fill` / `memory.copy` over all the memory it can get: one bulk
/// operation runs to its end before the epoch check, so the memory cap bounds how far past the
/// deadline it runs.
#[test]
fn bulk_memory_loops_end_soon_after_the_deadline() {
    let app = guest_app();
    let boson = Boson::start(app.path(), &["--timeout", "200ms"]);
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        let r = boson.get("/bulk");
        let took = t.elapsed();
        assert_eq!(r.status, 504, "{}", r.text());
        worst = worst.max(took);
    }
    eprintln!(
        "figure: /bulk (memory.fill + memory.copy over 128 MiB, cap 256 MiB), deadline 200 ms: answered after at most {worst:?}"
    );
    assert!(worst < Duration::from_millis(600), "{worst:?}");
    assert_eq!(boson.get("/hello").status, 200);
}
