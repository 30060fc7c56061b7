//! Starting `boson up` on a free port, talking to it over plain sockets, and finding the test
//! guests.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A per-test name (key prefix, channel, table) so tests sharing a service never see each
/// other's data.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Where `tests/guests/build.sh` put the components.
pub fn guests_dir() -> PathBuf {
    std::env::var_os("BOSON_GUESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/boson/guests")
        })
}

/// A built guest, e.g. `guest("c", "hello")`. Missing guests fail the test with the fix.
pub fn guest(lang: &str, name: &str) -> PathBuf {
    let path = guests_dir().join(lang).join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing — build the test guests with `bash tests/guests/build.sh`",
        path.display()
    );
    path
}

/// A compile cache shared by the tests of one run, so big guests compile once.
pub fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("boson-test-cache")
}

/// An app directory with a manifest.
pub struct AppDir {
    pub dir: tempfile::TempDir,
}

impl AppDir {
    pub fn new(manifest: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }
}

/// A manifest with one component at `/...`.
pub fn single_component_manifest(wasm: &Path, extra: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "test-app"
[[trigger.http]]
route = "/..."
component = "guest"
[component.guest]
source = "{}"
{extra}
"#,
        wasm.display()
    )
}

/// `boson up --from <from>` on a free port with `cache` and `extra`, logging at info; for a test
/// that sets more (environment) before [`Boson::spawn`].
pub fn up_command(from: &Path, cache: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(boson_bin());
    command
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(from)
        .arg("--cache-dir")
        .arg(cache)
        .args(extra)
        .env("RUST_LOG", "info");
    command
}

/// A running `boson up`; killed on drop.
pub struct Boson {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

pub fn boson_bin() -> &'static str {
    env!("CARGO_BIN_EXE_boson")
}

impl Boson {
    /// Starts `boson up --from <from>` with the shared cache and waits for the bound address.
    pub fn start(from: &Path, extra: &[&str]) -> Self {
        Self::start_with_cache(from, &shared_cache(), extra)
    }

    pub fn start_with_cache(from: &Path, cache: &Path, extra: &[&str]) -> Self {
        Self::spawn(up_command(from, cache, extra))
    }

    /// Starts a prepared `boson up` command and waits for the bound address.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting boson");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let lines_sink = stdout_lines.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && let Some(addr) = line.strip_prefix("Serving http://") {
                    let _ = tx.send(addr.trim().to_string());
                    sent = true;
                }
                lines_sink.lock().unwrap().push(line);
            }
        });
        // Compiling an interpreter-sized component in a debug build can take a while.
        let addr = match rx.recv_timeout(Duration::from_secs(240)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!("boson did not start; stderr:\n{}", stderr.lock().unwrap());
            }
        };
        Self {
            child,
            addr,
            stderr,
            stdout: stdout_lines,
        }
    }

    /// Polls stdout until a line equals `line`.
    pub fn wait_for_stdout_line(&self, line: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stdout.lock().unwrap().iter().any(|l| l == line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls stderr until it contains `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path, &[], b"")
    }

    /// One counter (`received`, `ready`, `ready_unused` …) of the HTTP route `route`, from the
    /// host's status endpoint.
    pub fn route_count(&self, route: &str, field: &str) -> u64 {
        let status = self.get("/.well-known/boson/status").json();
        let entry = status["triggers"]
            .as_array()
            .expect("a list of triggers")
            .iter()
            .find(|t| t["trigger"] == "http" && t["source"] == route)
            .unwrap_or_else(|| panic!("no status entry for {route}: {status}"));
        entry[field]
            .as_u64()
            .unwrap_or_else(|| panic!("no count {field} for {route}: {status}"))
    }

    /// Polls the host's status endpoint until `n` requests are inside guests.
    pub fn wait_in_flight(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.get("/.well-known/boson/status").json();
            if status["in_flight"].as_u64() == Some(n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never reached {n} in-flight requests: {status}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc_kill(self.pid(), sig) };
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub const SIGTERM: i32 = 15;

impl Drop for Boson {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `boson up` expecting it to fail at start; returns its stderr.
pub fn start_failure(from: &Path, extra: &[&str]) -> String {
    let mut command = Command::new(boson_bin());
    command
        .args(["up", "--listen", "127.0.0.1:0", "--from"])
        .arg(from);
    if !extra.contains(&"--cache-dir") {
        command.arg("--cache-dir").arg(shared_cache());
    }
    let out = command.args(extra).stdin(Stdio::null()).output().unwrap();
    assert!(
        !out.status.success(),
        "boson started but should have failed"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), read to the end.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "bad response to {method} {path}: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&data[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A tiny HTTP server on loopback for outbound tests: answers every request with `body`
/// and counts connections.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl TestServer {
    pub fn start(body: &'static str) -> Self {
        Self::replying(format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }

    /// A server that answers every request with a redirect to `location`.
    pub fn redirecting(location: &str) -> Self {
        Self::replying(format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    }

    /// A server that answers every request with the raw HTTP response `reply`.
    fn replying(reply: String) -> Self {
        let reply: Arc<str> = reply.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = reply.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = stream.write_all(reply.as_bytes());
                });
            }
        });
        Self { addr, hits }
    }
}

/// A keep-alive HTTP/1.1 server on loopback for outbound tests: answers each request (a GET,
/// no body) with `body` on the same connection, and counts connections and answered requests.
/// With `close_after`, a connection that answered that many closes when the next request
/// arrives, unanswered, as a server whose idle timeout expired just then does.
pub struct KeepAliveServer {
    pub addr: SocketAddr,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl KeepAliveServer {
    pub fn start(body: &'static str, close_after: Option<usize>) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (conns, reqs) = (connections.clone(), requests.clone());
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                conns.fetch_add(1, SeqCst);
                let (reqs, reply) = (reqs.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 8192];
                    let mut answered = 0;
                    loop {
                        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            got.drain(..end + 4);
                            if close_after == Some(answered) {
                                return;
                            }
                            reqs.fetch_add(1, SeqCst);
                            if stream.write_all(reply.as_bytes()).is_err() {
                                return;
                            }
                            answered += 1;
                        }
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        Self {
            addr,
            connections,
            requests,
        }
    }
}

/// A server that reads each request's head, writes `head` (nothing, or a response's head and
/// the start of its body) and then sends nothing more, holding the connection open.
pub struct StallingServer {
    pub addr: SocketAddr,
}

impl StallingServer {
    pub fn start(head: &'static str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 8192];
                    let mut written = false;
                    loop {
                        if !written && got.windows(4).any(|w| w == b"\r\n\r\n") {
                            written = true;
                            if stream.write_all(head.as_bytes()).is_err() {
                                return;
                            }
                        }
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        Self { addr }
    }
}

/// A test certificate authority, and certificates it signed, as PEM text.
pub struct TestCa {
    pub cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its private key, as PEM text.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `name`, or a client certificate when `name` is `None`.
    pub fn issue(&self, name: Option<&str>) -> TestCert {
        let names: Vec<String> = name.into_iter().map(String::from).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![if name.is_some() {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TestCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// An HTTPS server offering HTTP/2 (when `http2`) and HTTP/1.1 (ALPN) that answers every request
/// with the HTTP version it arrived in and its `Host` header (`HTTP/2.0 host=-`), and counts
/// connections that completed the handshake. With `client_ca`, it requires a client
/// certificate signed by it.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl TlsServer {
    pub fn start(cert: &TestCert, client_ca: Option<&TestCa>, http2: bool) -> Self {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots
                    .add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap())
                    .unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = connections.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, count) = (acceptor.clone(), count.clone());
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let answer = hyper::service::service_fn(
                            |request: hyper::Request<hyper::body::Incoming>| async move {
                                let host = request
                                    .headers()
                                    .get(hyper::header::HOST)
                                    .and_then(|h| h.to_str().ok())
                                    .unwrap_or("-");
                                let body = format!("{:?} host={host}", request.version());
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                    http_body_util::Full::new(bytes::Bytes::from(body)),
                                ))
                            },
                        );
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), answer)
                        .await;
                    });
                }
            });
        });
        Self { addr, connections }
    }
}

/// A listening socket whose accept queue is full and never drained: the kernel drops the SYN
/// of every further connection, so connecting to it waits until the caller gives up.
pub struct UnansweredListener {
    pub addr: SocketAddr,
    _listener: std::net::TcpListener,
    _queued: TcpStream,
}

impl UnansweredListener {
    pub fn start() -> Self {
        use std::os::fd::FromRawFd as _;
        // std's listeners have a long backlog; this one holds a single connection.
        let listener = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let addr = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
                },
                sin_zero: [0; 8],
            };
            let bound = libc::bind(
                fd,
                (&addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
            assert_eq!(
                libc::listen(fd, 0),
                0,
                "listen: {}",
                std::io::Error::last_os_error()
            );
            std::net::TcpListener::from_raw_fd(fd)
        };
        let addr = listener.local_addr().unwrap();
        let queued = TcpStream::connect(addr).unwrap();
        Self {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }
}

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`, `VmSwap`).
pub fn proc_status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
