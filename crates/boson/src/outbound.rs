//! Outbound network policy: which hosts a component may reach, and the connector that enforces it.
//!
//! A component's `allowed_outbound_hosts` entries are parsed once, when the app is resolved, into
//! [`AllowedHosts`]. Every outbound HTTP request and every socket address a guest uses is checked
//! against it. Names are resolved by the host, and the check runs again on each resolved address,
//! so a name that resolves (or re-resolves) to a private address is refused unless an entry names
//! that address literally. The connector then connects to exactly the address it checked.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

/// One `scheme://host:port` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHost {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq)]
enum SchemePattern {
    Any,
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain of the suffix (not the suffix itself).
    Subdomains(String),
    Name(String),
    Ip(IpAddr),
    Cidr(IpNet),
}

#[derive(Debug, Clone, PartialEq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

/// Why an outbound use was refused. Shown to operators in logs; guests get an error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Denied {
    #[error("{0} is not in the component's allowed_outbound_hosts")]
    NotAllowed(String),
    #[error(
        "{host} resolves to the private or loopback address {ip}, which no entry names explicitly"
    )]
    PrivateAddress { host: String, ip: IpAddr },
    #[error("{0} could not be resolved")]
    Unresolvable(String),
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "redis" => 6379,
        "postgres" => 5432,
        "mysql" => 3306,
        "mqtt" => 1883,
        "nats" => 4222,
        _ => return None,
    })
}

impl AllowedHost {
    /// The one `host` and `port` this entry names, when it names exactly one: a scheme with a
    /// known default port, no wildcard, range or CIDR, and not `self`.
    pub fn fixed_target(&self) -> Option<(String, u16)> {
        let SchemePattern::Named(scheme) = &self.scheme else {
            return None;
        };
        default_port(scheme)?;
        let PortPattern::Range(low, high) = self.port else {
            return None;
        };
        if low != high {
            return None;
        }
        match &self.host {
            HostPattern::Name(name) if name != "self" => Some((name.clone(), low)),
            HostPattern::Ip(ip) => Some((ip.to_string(), low)),
            _ => None,
        }
    }

    /// Parses one entry, e.g. `https://*.example.com`, `http://127.0.0.1:8080`, `*://db:*`.
    pub fn parse(entry: &str) -> anyhow::Result<Self> {
        if entry.contains("{{") {
            bail!(
                "`{entry}` uses a variable template; templates in allowed_outbound_hosts are not supported yet — write the host literally"
            );
        }
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!(
                "`{entry}` has no scheme — write it as `scheme://host[:port]`, e.g. `https://{entry}`"
            );
        };
        if scheme.is_empty() {
            bail!("`{entry}` has an empty scheme — use e.g. `https://` or `*://`");
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // A `/` may only start a CIDR prefix (`10.0.0.0/8`); anything else is a path.
        if let Some((before, _)) = rest.split_once('/')
            && !rest.contains('[')
            && before.parse::<IpAddr>().is_err()
        {
            bail!("`{entry}` has a path; entries name only `scheme://host[:port]`");
        }
        let (host, port) = split_host_port(rest)
            .with_context(|| format!("`{entry}` is not of the form `scheme://host[:port]`"))?;
        let scheme = if scheme == "*" {
            SchemePattern::Any
        } else {
            if !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
            {
                bail!("`{entry}` has an invalid scheme `{scheme}`");
            }
            SchemePattern::Named(scheme.to_ascii_lowercase())
        };
        let port = match port {
            None => match &scheme {
                SchemePattern::Named(s) => match default_port(s) {
                    Some(p) => PortPattern::Range(p, p),
                    None => bail!(
                        "`{entry}` needs a port: scheme `{s}` has no default port — add `:PORT` or `:*`"
                    ),
                },
                SchemePattern::Any => {
                    bail!("`{entry}` uses `*://` without a port — add `:PORT` or `:*`")
                }
            },
            Some("*") => PortPattern::Any,
            Some(p) => match p.split_once("..") {
                Some((lo, hi)) => {
                    let lo = parse_port(entry, lo)?;
                    let hi = parse_port(entry, hi)?;
                    if lo > hi {
                        bail!("`{entry}` has an empty port range {lo}..{hi}");
                    }
                    PortPattern::Range(lo, hi)
                }
                None => {
                    let p = parse_port(entry, p)?;
                    PortPattern::Range(p, p)
                }
            },
        };
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                bail!("`{entry}`: a wildcard host is `*` or `*.domain`");
            }
            HostPattern::Subdomains(suffix.to_ascii_lowercase())
        } else if host.contains('*') {
            bail!("`{entry}`: a wildcard host is `*` or `*.domain`");
        } else if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            HostPattern::Ip(ip.to_canonical())
        } else if let Ok(net) = host.parse::<IpNet>() {
            HostPattern::Cidr(net)
        } else {
            HostPattern::Name(host.to_ascii_lowercase())
        };
        Ok(Self { scheme, host, port })
    }

    fn matches_target(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Named(s) => s == scheme,
        };
        let port_ok = match self.port {
            PortPattern::Any => true,
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        };
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|prefix| prefix.ends_with('.') && prefix.len() > 1),
            HostPattern::Name(name) => name == host,
            HostPattern::Ip(ip) => parse_ip(host) == Some(*ip),
            HostPattern::Cidr(net) => parse_ip(host).is_some_and(|ip| net.contains(&ip)),
        };
        scheme_ok && port_ok && host_ok
    }

    /// Whether this entry names `ip` explicitly (so a private address is allowed).
    fn names_ip(&self, ip: IpAddr) -> bool {
        match &self.host {
            HostPattern::Ip(allowed) => *allowed == ip,
            HostPattern::Cidr(net) => net.contains(&ip),
            HostPattern::Name(name) => name == "localhost" && ip.is_loopback(),
            HostPattern::Any | HostPattern::Subdomains(_) => false,
        }
    }
}

fn parse_port(entry: &str, p: &str) -> anyhow::Result<u16> {
    p.parse().with_context(|| {
        format!("`{entry}` has an invalid port `{p}` — use a number, a range `1000..2000` or `*`")
    })
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.trim_matches(['[', ']'])
        .parse::<IpAddr>()
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Splits `host[:port]`, understanding `[v6]:port` and CIDR hosts.
fn split_host_port(s: &str) -> anyhow::Result<(&str, Option<&str>)> {
    if s.is_empty() {
        bail!("empty host");
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').context("unclosed `[`")?;
        return Ok(match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => bail!("unexpected text after `]`"),
        });
    }
    if s.parse::<IpAddr>().is_ok() || s.parse::<IpNet>().is_ok() {
        return Ok((s, None));
    }
    Ok(match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        Some(_) => bail!("an IPv6 address must be written in brackets, e.g. `[::1]:8080`"),
        None => (s, None),
    })
}

/// True for addresses that must be named explicitly: loopback, private, link-local, unspecified,
/// shared (CGNAT), unique-local and multicast ranges.
pub fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
        }
    }
}

impl AllowedHosts {
    /// Parses every entry; the error names the entry and says how to fix it.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> anyhow::Result<Self> {
        let entries = entries
            .into_iter()
            .map(AllowedHost::parse)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { entries })
    }

    pub fn from_entries(entries: Vec<AllowedHost>) -> Self {
        Self { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `scheme://host:port` is allowed by name (before resolution).
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .any(|e| e.matches_target(scheme, &host, port))
    }

    /// Whether a resolved address may be used for `scheme://host:port`.
    pub fn allows_address(&self, scheme: &str, host: &str, port: u16, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let host = host.to_ascii_lowercase();
        let ip_text = ip.to_string();
        self.entries.iter().any(|e| {
            let by_name =
                e.matches_target(scheme, &host, port) || e.matches_target(scheme, &ip_text, port);
            by_name && (!is_private(ip) || e.names_ip(ip))
        })
    }

    /// Resolves `host` and returns the addresses this policy lets `scheme://host:port` reach.
    pub async fn resolve(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, Denied> {
        let target = format!("{scheme}://{host}:{port}");
        if !self.allows(scheme, host, port) {
            return Err(Denied::NotAllowed(target));
        }
        let addrs: Vec<SocketAddr> = match parse_ip(host) {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|_| Denied::Unresolvable(host.to_string()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Denied::Unresolvable(host.to_string()));
        }
        // Every address must pass: a name that resolves to both a public and a private address
        // is refused rather than letting the connection race pick one.
        for addr in &addrs {
            if !self.allows_address(scheme, host, port, addr.ip()) {
                return Err(Denied::PrivateAddress {
                    host: host.to_string(),
                    ip: addr.ip().to_canonical(),
                });
            }
        }
        Ok(addrs)
    }

    /// Whether an entry names `self` (e.g. `http://self`) for `scheme`: the app may call its own
    /// routes. Only an explicit entry grants it; `*` does not.
    pub fn allows_self(&self, scheme: &str, port: u16) -> bool {
        self.entries.iter().any(|e| {
            e.host == HostPattern::Name("self".into()) && e.matches_target(scheme, "self", port)
        })
    }

    /// The socket check for `wasi:sockets`: only `tcp://`/`udp://` entries grant sockets.
    pub fn allows_socket(&self, protocol: &str, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        let text = ip.to_string();
        self.entries.iter().any(|e| {
            e.matches_target(protocol, &text, addr.port()) && (!is_private(ip) || e.names_ip(ip))
        })
    }

    /// Whether any entry grants raw sockets for `protocol` (`tcp` or `udp`).
    pub fn grants_sockets(&self, protocol: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.scheme == SchemePattern::Named(protocol.to_string()))
    }
}

/// Where `scheme://self:port` goes: the address this process's listener is bound to (never
/// where a client's `Host` header points), when the policy names `self`.
fn resolve_self(
    policy: &AllowedHosts,
    scheme: &str,
    port: u16,
    self_origin: Option<SocketAddr>,
) -> Result<Vec<SocketAddr>, Denied> {
    let target = format!("{scheme}://self:{port}");
    if !policy.allows_self(scheme, port) {
        return Err(Denied::NotAllowed(target));
    }
    match self_origin {
        Some(addr) if scheme == "http" => Ok(vec![addr]),
        _ => Err(Denied::Unresolvable(target)),
    }
}

/// How long a kept-alive outbound connection may wait for its next request before it is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections a component keeps to one destination (`scheme://host:port`).
const MAX_IDLE_PER_DESTINATION: usize = 32;
/// Sends of one request at most, when kept connections turn out closed (see [`replayable`]).
const MAX_ATTEMPTS: u32 = 3;
/// How long connecting (resolving, every resolved address in turn, TLS) may take, unless the
/// guest's `request-options` set another connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

tokio::task_local! {
    /// The connect timeout of the request being sent. The pooling client asks the connector for
    /// a connection while it polls that request's future, in the request's task, so the
    /// connector reads the timeout from here (it is given only the URI).
    static REQUEST_CONNECT_TIMEOUT: Duration;
}

/// One component's outbound HTTP: each request is checked against the component's policy, then
/// sent over a connection the component's earlier instances left open to the same destination,
/// or a new one to an address that passed the check. Connections are kept per component
/// version (each [`crate::runtime::LoadedComponent`] has its own client), so one never carries
/// another component's request, and those of a replaced version close with it.
pub struct HttpClient {
    connector: Connector,
    client: hyper_util::client::legacy::Client<Connector, WasiBody>,
}

impl HttpClient {
    /// A client for `component` under `policy`; `pooling` keeps connections open for later
    /// requests (runtime config `[outbound_http] connection_pooling`), and `tls` holds the
    /// component's `[[client_tls]]` settings. Requests to the host `self` go to `self_origin`,
    /// the address Boson's own listener is bound to, when the policy names `self`.
    pub fn new(
        policy: Arc<AllowedHosts>,
        component: Arc<str>,
        self_origin: Option<SocketAddr>,
        pooling: bool,
        tls: ComponentTls,
    ) -> Self {
        let connector = Connector {
            policy,
            component,
            self_origin,
            tls: Arc::new(tls),
        };
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(if pooling { MAX_IDLE_PER_DESTINATION } else { 0 })
            .pool_timer(TokioTimer::new())
            .build(connector.clone());
        Self { connector, client }
    }

    /// Sends `request` if the policy allows its destination, within the guest's timeouts
    /// (`request-options`): connect (a new connection: resolving, connecting, TLS), first byte
    /// (from the request's start to the response's head; a request that opens a connection
    /// spends part of it connecting) and between bytes (of the response body, each wait for
    /// the next frame).
    pub async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let options = options.unwrap_or_default();
        let connect = options.connect_timeout.unwrap_or(CONNECT_TIMEOUT);
        let send = REQUEST_CONNECT_TIMEOUT.scope(connect, self.send_checked(request));
        let response = match options.first_byte_timeout {
            Some(limit) => tokio::time::timeout(limit, send)
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)??,
            None => send.await?,
        };
        Ok(match options.between_bytes_timeout {
            Some(limit) => response.map(|body| BetweenBytes::limit(body, limit)),
            None => response,
        })
    }

    /// Checks `request` against the policy and sends it, again when a kept connection turns
    /// out closed.
    async fn send_checked(
        &self,
        mut request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let uri = request.uri();
        let Destination { scheme, host, port } = Destination::of(uri)?;
        // Checked by name before a kept connection is taken; a new connection's addresses are
        // checked again once resolved (the connector).
        let policy = &self.connector.policy;
        let allowed = if host.eq_ignore_ascii_case("self") {
            policy.allows_self(scheme, port)
        } else {
            policy.allows(scheme, host, port)
        };
        if !allowed {
            let denied = Denied::NotAllowed(format!("{scheme}://{host}:{port}"));
            return Err(self.connector.denied(denied).to_wasi());
        }
        if uri.scheme().is_none() {
            let mut parts = uri.clone().into_parts();
            parts.scheme = Some(http::uri::Scheme::HTTPS);
            *request.uri_mut() =
                http::Uri::from_parts(parts).map_err(|_| HttpError::HttpRequestUriInvalid)?;
        }
        let mut attempts = 1;
        loop {
            // A kept connection the server closed just as it was taken fails the request with
            // no answer. A request that may be sent twice (an idempotent method, no body) is
            // sent again, and the pool has by then dropped the closed connection.
            let again = (attempts < MAX_ATTEMPTS)
                .then(|| replayable(&request))
                .flatten();
            match self.client.request(request).await {
                Ok(response) => {
                    return Ok(response.map(|body| body.map_err(HttpError::from).boxed_unsync()));
                }
                Err(e) => match again {
                    Some(copy) if closed_before_answer(&e) => {
                        tracing::debug!(component = %self.connector.component, "outbound connection closed before its answer; sending again: {e:?}");
                        request = copy;
                        attempts += 1;
                    }
                    _ => return Err(self.failure(&e)),
                },
            }
        }
    }

    /// What a failed request tells the guest: the connector's own error, or what Wasmtime's
    /// sender would have said of the same `hyper` error (a timeout, else a protocol error).
    fn failure(&self, e: &hyper_util::client::legacy::Error) -> HttpError {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            if let Some(failure) = cause.downcast_ref::<ConnectFailure>() {
                return failure.to_wasi();
            }
            if cause
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_timeout)
            {
                return HttpError::HttpResponseTimeout;
            }
            source = cause.source();
        }
        tracing::debug!(component = %self.connector.component, "outbound request failed: {e:?}");
        if e.is_connect() {
            HttpError::ConnectionRefused
        } else {
            HttpError::HttpProtocolError
        }
    }
}

/// A copy of `request` to send again, if it may be sent twice: an idempotent method (RFC 9110,
/// 9.2.2) and no body.
fn replayable(request: &http::Request<WasiBody>) -> Option<http::Request<WasiBody>> {
    use http::Method;
    let idempotent = [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(request.method());
    if !idempotent || !hyper::body::Body::is_end_stream(request.body()) {
        return None;
    }
    let mut copy = http::Request::new(
        http_body_util::Empty::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync(),
    );
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// Whether the connection ended before any answer: closed, reset or cut by the server.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>()
            && hyper.is_incomplete_message()
        {
            return true;
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::ConnectionAborted
            )
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Where an outbound request goes: `http` or `https` (`https` when the URI names no scheme), the
/// host, and the port (the scheme's when the URI names none).
struct Destination<'a> {
    scheme: &'static str,
    host: &'a str,
    port: u16,
}

impl<'a> Destination<'a> {
    fn of(uri: &'a http::Uri) -> Result<Self, HttpError> {
        let (scheme, default_port) = match uri.scheme_str() {
            None => ("https", 443),
            Some(s) if s.eq_ignore_ascii_case("https") => ("https", 443),
            Some(s) if s.eq_ignore_ascii_case("http") => ("http", 80),
            Some(_) => return Err(HttpError::HttpProtocolError),
        };
        let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Self { scheme, host, port })
    }
}

/// Opens the connections of one component's [`HttpClient`]: resolves the destination, checks
/// every address against the policy, connects to one that passed, and speaks TLS for `https`.
#[derive(Clone)]
struct Connector {
    policy: Arc<AllowedHosts>,
    component: Arc<str>,
    self_origin: Option<SocketAddr>,
    tls: Arc<ComponentTls>,
}

impl Connector {
    /// Logs a refused destination for the operator; the guest gets an error code.
    fn denied(&self, denied: Denied) -> ConnectFailure {
        tracing::warn!(component = %self.component, "outbound request denied: {denied}");
        ConnectFailure::Denied(denied)
    }

    /// Opens a connection to `uri`'s destination within `timeout`.
    async fn connect(
        self,
        uri: http::Uri,
        timeout: Duration,
    ) -> Result<TokioIo<Stream>, ConnectFailure> {
        tokio::time::timeout(timeout, self.open(uri))
            .await
            .map_err(|_| ConnectFailure::Timeout)?
    }

    async fn open(self, uri: http::Uri) -> Result<TokioIo<Stream>, ConnectFailure> {
        let Destination { scheme, host, port } =
            Destination::of(&uri).map_err(|_| ConnectFailure::BadName)?;
        let resolved = if host.eq_ignore_ascii_case("self") {
            resolve_self(&self.policy, scheme, port, self.self_origin)
        } else {
            self.policy.resolve(scheme, host, port).await
        };
        let addrs = resolved.map_err(|denied| self.denied(denied))?;
        let mut tcp = Err(ConnectFailure::Refused);
        for addr in &addrs {
            tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(ConnectFailure::Io);
            if tcp.is_ok() {
                break;
            }
        }
        let tcp = tcp?;
        let _ = tcp.set_nodelay(true);
        if scheme == "http" {
            return Ok(TokioIo::new(Stream::Plain(tcp)));
        }
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| ConnectFailure::BadName)?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.config_for(host, port))
            .connect(name, tcp)
            .await
            .map_err(ConnectFailure::Tls)?;
        Ok(TokioIo::new(Stream::Tls(Box::new(tls))))
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // Called while the request that needs the connection is polled (see
        // `REQUEST_CONNECT_TIMEOUT`); the default covers any other caller.
        let timeout = REQUEST_CONNECT_TIMEOUT
            .try_with(|t| *t)
            .unwrap_or(CONNECT_TIMEOUT);
        Box::pin(self.clone().connect(uri, timeout))
    }
}

/// The TLS settings of outbound connections that no `[[client_tls]]` table names: the web's
/// root certificates, no client certificate. Built once, so connections share rustls' session
/// cache and resume sessions.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        with_alpn(
            rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    CONFIG.clone()
}

/// Offers HTTP/2 and HTTP/1.1; the client speaks whichever the server picks.
fn with_alpn(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The runtime config's `[[client_tls]]` tables, loaded: for each, the components and hosts it
/// names and the TLS settings built from its files.
#[derive(Default)]
pub struct ClientTls {
    tables: Vec<ClientTlsTable>,
}

struct ClientTlsTable {
    components: Vec<String>,
    hosts: Vec<TlsHost>,
    config: Arc<rustls::ClientConfig>,
}

/// A `[[client_tls]]` host: a name (lowercase), on any port or on one.
#[derive(Debug, Clone, PartialEq)]
struct TlsHost {
    name: String,
    port: Option<u16>,
}

impl TlsHost {
    fn parse(entry: &str) -> anyhow::Result<Self> {
        let (name, port) = split_host_port(entry)?;
        let name = name.trim_matches(['[', ']']).to_ascii_lowercase();
        if name.is_empty() || entry.contains('/') {
            bail!("`{entry}` is not a host name; write `host` or `host:port`");
        }
        let port = port.map(|p| parse_port(entry, p)).transpose()?;
        Ok(Self { name, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        self.name
            .eq_ignore_ascii_case(host.trim_matches(['[', ']']))
            && self.port.is_none_or(|p| p == port)
    }
}

impl ClientTls {
    /// Loads every `[[client_tls]]` table of `config`: reads its certificate and key files and
    /// checks that each component it names is one of `components` (the app's). Errors name the
    /// table's file and line.
    pub fn load(
        config: &crate::runtime_config::RuntimeConfig,
        components: &[&str],
    ) -> anyhow::Result<Self> {
        let tables = config
            .client_tls
            .iter()
            .map(|(at, table)| {
                Self::load_table(config, table, components)
                    .with_context(|| format!("{at}: [[client_tls]]"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { tables })
    }

    fn load_table(
        config: &crate::runtime_config::RuntimeConfig,
        table: &crate::runtime_config::ClientTlsConfig,
        components: &[&str],
    ) -> anyhow::Result<ClientTlsTable> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        if table.component_ids.is_empty() || table.hosts.is_empty() {
            bail!("component_ids and hosts must each name at least one");
        }
        if let Some(unknown) = table
            .component_ids
            .iter()
            .find(|id| !components.contains(&id.as_str()))
        {
            bail!(
                "component_ids: the app has no component `{unknown}` (it has: {})",
                components.join(", ")
            );
        }
        let hosts = table
            .hosts
            .iter()
            .map(|h| TlsHost::parse(h))
            .collect::<anyhow::Result<_>>()
            .context("hosts")?;
        let certificates =
            |key: &str, file: &Path| -> anyhow::Result<Vec<CertificateDer<'static>>> {
                let path = config.resolve_path(file);
                let certs = CertificateDer::pem_file_iter(&path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .with_context(|| {
                        format!("{key}: cannot read certificates from {}", path.display())
                    })?;
                if certs.is_empty() {
                    bail!("{key}: {} holds no PEM certificate", path.display());
                }
                Ok(certs)
            };
        let mut roots = rustls::RootCertStore::empty();
        if table
            .ca_use_webpki_roots
            .unwrap_or(table.ca_roots_file.is_none())
        {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if let Some(file) = &table.ca_roots_file {
            for cert in certificates("ca_roots_file", file)? {
                roots
                    .add(cert)
                    .context("ca_roots_file: a certificate is not a usable root")?;
            }
        }
        if roots.is_empty() {
            bail!(
                "no root certificate to check servers against: set ca_roots_file, or leave ca_use_webpki_roots on"
            );
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let tls = match (&table.client_cert_file, &table.client_private_key_file) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = certificates("client_cert_file", cert)?;
                let path = config.resolve_path(key);
                let key = PrivateKeyDer::from_pem_file(&path).with_context(|| {
                    format!(
                        "client_private_key_file: cannot read a PEM private key from {}",
                        path.display()
                    )
                })?;
                builder.with_client_auth_cert(chain, key).context(
                    "client_cert_file and client_private_key_file do not make a usable pair",
                )?
            }
            _ => bail!(
                "client_cert_file and client_private_key_file go together: set both or neither"
            ),
        };
        Ok(ClientTlsTable {
            components: table.component_ids.clone(),
            hosts,
            config: with_alpn(tls),
        })
    }

    /// The TLS settings `component`'s requests use: those of the tables that name it.
    pub fn for_component(&self, component: &str) -> ComponentTls {
        ComponentTls {
            tables: self
                .tables
                .iter()
                .filter(|t| t.components.iter().any(|c| c == component))
                .map(|t| (t.hosts.clone(), t.config.clone()))
                .collect(),
        }
    }
}

/// One component's `[[client_tls]]` settings, by host; other hosts get [`tls_config`].
#[derive(Clone, Default)]
pub struct ComponentTls {
    tables: Vec<(Vec<TlsHost>, Arc<rustls::ClientConfig>)>,
}

impl ComponentTls {
    /// The settings of the first table that names `host` (and `port`, if it names one).
    fn config_for(&self, host: &str, port: u16) -> Arc<rustls::ClientConfig> {
        self.tables
            .iter()
            .find(|(hosts, _)| hosts.iter().any(|h| h.matches(host, port)))
            .map_or_else(tls_config, |(_, config)| config.clone())
    }
}

/// Why a new outbound connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectFailure {
    #[error("{0}")]
    Denied(Denied),
    #[error("no address accepted the connection")]
    Refused,
    #[error("connecting timed out")]
    Timeout,
    #[error("connecting failed: {0}")]
    Io(std::io::Error),
    #[error("TLS failed: {0}")]
    Tls(std::io::Error),
    #[error("not a valid host name")]
    BadName,
}

impl ConnectFailure {
    /// The error the guest sees.
    fn to_wasi(&self) -> HttpError {
        let copy = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Self::Denied(Denied::NotAllowed(_)) => HttpError::HttpRequestDenied,
            Self::Denied(Denied::PrivateAddress { .. }) => HttpError::DestinationIpProhibited,
            Self::Denied(Denied::Unresolvable(_)) => HttpError::DnsError {
                rcode: Some("address not available".into()),
                info_code: None,
            },
            Self::Refused => HttpError::ConnectionRefused,
            Self::Timeout => HttpError::ConnectionTimeout,
            Self::Io(e) => HttpError::Connect(copy(e)),
            Self::Tls(e) => HttpError::Tls(copy(e)),
            Self::BadName => HttpError::HttpRequestUriInvalid,
        }
    }
}

/// An outbound connection, plain or TLS.
enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Self::Tls(tls) if tls.get_ref().1.alpn_protocol() == Some(b"h2") => {
                Connected::new().negotiated_h2()
            }
            _ => Connected::new(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A response body that fails with `connection-read-timeout` when its next frame takes longer
/// than the guest's between-bytes timeout; the wait starts when the response's head arrives.
struct BetweenBytes {
    body: WasiBody,
    limit: Duration,
    next_by: Pin<Box<tokio::time::Sleep>>,
}

impl BetweenBytes {
    fn limit(body: WasiBody, limit: Duration) -> WasiBody {
        let next_by = Box::pin(tokio::time::sleep(limit));
        Self {
            body,
            limit,
            next_by,
        }
        .boxed_unsync()
    }
}

impl hyper::body::Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(next_by) = tokio::time::Instant::now().checked_add(this.limit) {
                    this.next_by.as_mut().reset(next_by);
                }
                Poll::Ready(frame)
            }
            Poll::Pending => match this.next_by.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Collects a small body into bytes (used for URL sources).
pub async fn collect_body(body: WasiBody, limit: usize) -> anyhow::Result<Bytes> {
    let bytes = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading body: {e}"))?
        .to_bytes();
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries.iter().copied()).unwrap()
    }

    /// A body that waits longer than the between-bytes timeout fails with the guest's error
    /// code; frames that come in time pass through, and a limit too large for the clock (a
    /// guest may ask for 2^64 ns) means none.
    #[tokio::test]
    async fn a_response_body_that_stalls_past_the_between_bytes_timeout_fails() {
        let full = |data: &'static [u8]| {
            http_body_util::Full::new(Bytes::from_static(data))
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync()
        };
        let stalled = http_body_util::StreamBody::new(futures::stream::pending::<
            Result<hyper::body::Frame<Bytes>, HttpError>,
        >())
        .boxed_unsync();
        let mut body = BetweenBytes::limit(stalled, Duration::from_millis(20));
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the timeout ends the wait")
            .expect("an error, not the end");
        assert!(matches!(frame, Err(HttpError::ConnectionReadTimeout)));

        for limit in [Duration::from_millis(20), Duration::from_nanos(u64::MAX)] {
            let body = BetweenBytes::limit(full(b"in time"), limit);
            let data = body.collect().await.expect("no timeout").to_bytes();
            assert_eq!(&data[..], b"in time");
        }
    }

    #[test]
    fn client_tls_hosts_match_by_name_and_port() {
        let any_port = TlsHost::parse("Internal.Example").unwrap();
        assert!(any_port.matches("internal.example", 443));
        assert!(any_port.matches("INTERNAL.example", 8443));
        assert!(!any_port.matches("other.example", 443));
        let one_port = TlsHost::parse("internal.example:8443").unwrap();
        assert!(one_port.matches("internal.example", 8443));
        assert!(!one_port.matches("internal.example", 443));
        assert!(TlsHost::parse("[::1]:8443").unwrap().matches("[::1]", 8443));
        for bad in ["https://internal.example", "internal.example:https", ""] {
            assert!(TlsHost::parse(bad).is_err(), "{bad}");
        }
        let own = with_alpn(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        );
        let tls = ComponentTls {
            tables: vec![(vec![one_port], own)],
        };
        assert!(Arc::ptr_eq(
            &tls.config_for("internal.example", 8443),
            &tls.tables[0].1
        ));
        assert!(Arc::ptr_eq(
            &tls.config_for("internal.example", 443),
            &tls_config()
        ));
    }

    #[test]
    fn only_idempotent_requests_without_a_body_are_sent_again() {
        let request = |method: http::Method, body: &'static [u8]| {
            let body = http_body_util::Full::new(Bytes::from_static(body))
                .map_err(|never: std::convert::Infallible| match never {})
                .boxed_unsync();
            let mut r = http::Request::new(body);
            *r.method_mut() = method;
            *r.uri_mut() = "http://example.com/a?b".parse().unwrap();
            r.headers_mut()
                .insert("x-test", http::HeaderValue::from_static("1"));
            r
        };
        let copy = replayable(&request(http::Method::GET, b"")).expect("a GET is sent again");
        assert_eq!(copy.uri(), "http://example.com/a?b");
        assert_eq!(copy.headers()["x-test"], "1");
        assert!(replayable(&request(http::Method::DELETE, b"")).is_some());
        assert!(replayable(&request(http::Method::POST, b"")).is_none());
        assert!(replayable(&request(http::Method::PATCH, b"")).is_none());
        assert!(replayable(&request(http::Method::PUT, b"data")).is_none());
    }

    #[test]
    fn parses_and_matches_names() {
        let h = hosts(&["https://example.com", "http://*.test.org:8080", "*://db:*"]);
        assert!(h.allows("https", "example.com", 443));
        assert!(!h.allows("https", "example.com", 8443));
        assert!(!h.allows("http", "example.com", 443));
        assert!(h.allows("http", "a.test.org", 8080));
        assert!(h.allows("http", "a.b.test.org", 8080));
        assert!(!h.allows("http", "test.org", 8080));
        assert!(!h.allows("http", "eviltest.org", 8080));
        assert!(h.allows("redis", "db", 6379));
        assert!(!h.allows("redis", "db2", 6379));
    }

    #[test]
    fn ports_and_ranges() {
        let h = hosts(&["http://127.0.0.1:8000..8010", "https://any.com:*"]);
        assert!(h.allows("http", "127.0.0.1", 8005));
        assert!(!h.allows("http", "127.0.0.1", 8011));
        assert!(h.allows("https", "any.com", 1));
    }

    #[test]
    fn private_addresses_need_an_explicit_entry() {
        let wild = hosts(&["http://*:*"]);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!wild.allows_address("http", "127.0.0.1", 80, lo));
        assert!(!wild.allows_address("http", "evil.example", 80, lo));
        assert!(!wild.allows_address("http", "x", 80, "169.254.169.254".parse().unwrap()));
        assert!(!wild.allows_address("http", "x", 80, "10.0.0.1".parse().unwrap()));
        assert!(!wild.allows_address("http", "x", 80, "::1".parse().unwrap()));
        assert!(!wild.allows_address("http", "x", 80, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(wild.allows_address("http", "x", 80, "93.184.216.34".parse().unwrap()));

        let explicit = hosts(&[
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
            "http://10.0.0.0/8:80",
        ]);
        assert!(explicit.allows_address("http", "127.0.0.1", 8080, lo));
        assert!(explicit.allows_address("http", "[::1]", 8080, "::1".parse().unwrap()));
        assert!(explicit.allows_address("http", "10.1.2.3", 80, "10.1.2.3".parse().unwrap()));
        assert!(!explicit.allows_address("http", "127.0.0.1", 8081, lo));
        // A name that resolves to loopback is not an explicit grant of loopback.
        let named = hosts(&["http://sneaky.example:8080"]);
        assert!(!named.allows_address("http", "sneaky.example", 8080, lo));
    }

    #[test]
    fn bad_entries_explain_themselves() {
        let err = |e: &str| AllowedHost::parse(e).unwrap_err().to_string();
        assert!(err("example.com").contains("no scheme"));
        assert!(err("*://example.com").contains("without a port"));
        assert!(err("foo://example.com").contains("needs a port"));
        assert!(err("http://exa*mple.com").contains("wildcard"));
        assert!(err("http://example.com:http").contains("invalid port"));
        assert!(err("http://example.com/path").contains("path"));
        assert!(err("http://{{ host }}").contains("template"));
    }

    #[test]
    fn sockets_are_granted_only_by_tcp_and_udp_entries() {
        let h = hosts(&["https://example.com", "tcp://127.0.0.1:5000"]);
        assert!(h.grants_sockets("tcp"));
        assert!(!h.grants_sockets("udp"));
        assert!(h.allows_socket("tcp", "127.0.0.1:5000".parse().unwrap()));
        assert!(!h.allows_socket("tcp", "127.0.0.1:5001".parse().unwrap()));
        assert!(!h.allows_socket("udp", "127.0.0.1:5000".parse().unwrap()));
    }

    #[test]
    fn self_needs_an_explicit_entry_and_goes_only_to_the_listener() {
        let listener: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let granted = hosts(&["http://self"]);
        assert_eq!(
            resolve_self(&granted, "http", 80, Some(listener)),
            Ok(vec![listener])
        );
        // Wildcards do not grant `self`, and `self` grants nothing else.
        for entries in [&["*://*:*"][..], &["http://*"], &[]] {
            assert!(matches!(
                resolve_self(&hosts(entries), "http", 80, Some(listener)),
                Err(Denied::NotAllowed(_))
            ));
        }
        assert!(!granted.allows("http", "127.0.0.1", 4321));
        // No listener (an app without HTTP): nowhere to go.
        assert!(matches!(
            resolve_self(&granted, "http", 80, None),
            Err(Denied::Unresolvable(_))
        ));
    }

    #[test]
    fn fixed_target_only_for_one_named_address() {
        let target = |e: &str| AllowedHost::parse(e).unwrap().fixed_target();
        assert_eq!(target("redis://db"), Some(("db".into(), 6379)));
        assert_eq!(
            target("http://127.0.0.1:8080"),
            Some(("127.0.0.1".into(), 8080))
        );
        for entry in [
            "http://*",
            "*://db:80",
            "http://db:*",
            "http://db:80..90",
            "http://self",
            "http://10.0.0.0/8:80",
        ] {
            assert_eq!(target(entry), None, "{entry}");
        }
    }
}
