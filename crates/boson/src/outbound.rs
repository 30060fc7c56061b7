//! Outbound network policy: which hosts a component may reach, and the connector that enforces it.
//!
//! A component's `allowed_outbound_hosts` entries are parsed once, when the app is resolved, into
//! [`AllowedHosts`]. Every outbound HTTP request and every socket address a guest uses is checked
//! against it. Names are resolved by the host, and the check runs again on each resolved address,
//! so a name that resolves (or re-resolves) to a private address is refused unless an entry names
//! that address literally. The connector then connects to exactly the address it checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use ipnet::IpNet;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

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

/// Sends one outbound HTTP request after checking it against `policy`, connecting only to the
/// address that passed the check. A request to the host `self` goes to `self_origin`, the
/// address Boson's own listener is bound to, when the policy names `self`.
pub async fn send_checked(
    policy: Arc<AllowedHosts>,
    component: Arc<str>,
    self_origin: Option<SocketAddr>,
    mut request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, HttpError> {
    let uri = request.uri().clone();
    let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let use_tls = match scheme.as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(HttpError::HttpProtocolError),
    };
    let port = uri.port_u16().unwrap_or(if use_tls { 443 } else { 80 });
    let resolved = if host.eq_ignore_ascii_case("self") {
        resolve_self(&policy, &scheme, port, self_origin)
    } else {
        policy.resolve(&scheme, host, port).await
    };
    let addrs = match resolved {
        Ok(addrs) => addrs,
        Err(denied) => {
            tracing::warn!(component = %component, "outbound request denied: {denied}");
            return Err(match denied {
                Denied::NotAllowed(_) => HttpError::HttpRequestDenied,
                Denied::PrivateAddress { .. } => HttpError::DestinationIpProhibited,
                Denied::Unresolvable(_) => HttpError::DnsError {
                    rcode: Some("address not available".into()),
                    info_code: None,
                },
            });
        }
    };
    let connect = async {
        let mut last = None;
        for addr in &addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(HttpError::ConnectionRefused, HttpError::Connect))
    };
    let tcp = tokio::time::timeout(std::time::Duration::from_secs(30), connect)
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let _ = tcp.set_nodelay(true);

    // Only the path goes on the request line; the host header carries the authority.
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    if !request.headers().contains_key(http::header::HOST) {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
        if let Ok(v) = http::HeaderValue::from_str(authority) {
            request.headers_mut().insert(http::header::HOST, v);
        }
    }

    if use_tls {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        send_over(tls, request).await
    } else {
        send_over(tcp, request).await
    }
}

async fn send_over<S>(
    stream: S,
    request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, HttpError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("outbound connection ended: {e}");
        }
    });
    let response = sender.send_request(request).await?;
    Ok(response.map(|body| body.map_err(HttpError::from).boxed_unsync()))
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
