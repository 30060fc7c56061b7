//! The request head a guest receives for a routed request: the client's head, minus any `spin-*`
//! header the client sent, plus the host's `spin-*` routing headers, with an absolute URI.

use std::net::SocketAddr;

use http::header::{HOST, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use crate::RouteMatch;

/// Turns the head of a client's request into the head its guest receives, for the route it
/// matched. Never panics, whatever the head holds.
///
/// - Every `spin-*` header the client sent is removed: clients may not forge routing metadata.
/// - The headers of [`spin_headers`](crate::spin_headers) are set, each with exactly one value.
///   One whose name or value is not a valid header (a capture name the manifest would refuse)
///   is left out.
/// - The URI becomes absolute, `http://<authority><path-and-query>`, and is also the value of
///   `spin-full-url`. The authority is the request URI's, else the `Host` header's, else
///   `localhost`; one that is not a valid `host[:port]` (user info, an empty host, a `/`) is
///   skipped, so a forged `Host` cannot change the path the guest sees. The path and query are the
///   request's, unchanged (`/` when it has none in origin form, as for `*`).
pub fn prepare_guest_request<T>(head: &mut Parts, matched: &RouteMatch<'_, T>, client: SocketAddr) {
    head.uri = guest_uri(head);
    let forged: Vec<HeaderName> = head
        .headers
        .keys()
        .filter(|name| name.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in forged {
        head.headers.remove(name);
    }
    // The same headers as `spin_headers`, built without a string per name: the names are
    // static, the route's own values were made when it was added, and the request's are moved
    // into their header values. Values are taken as bytes: a path may hold UTF-8 (hyper accepts
    // it in the request line), and the guest should see it rather than miss the header.
    let full_url = absolute_url(&head.uri);
    let client = client_addr(client);
    let headers = &mut head.headers;
    headers.reserve(7 + matched.captures.len());
    let owned = |value: String| HeaderValue::try_from(value).ok();
    let route = matched.route_headers;
    for (name, value) in [
        (FULL_URL, owned(full_url)),
        (PATH_INFO, owned(matched.path_info.clone())),
        (MATCHED_ROUTE, route.raw_route.clone()),
        (COMPONENT_ROUTE, route.component_route.clone()),
        (RAW_COMPONENT_ROUTE, route.raw_route.clone()),
        (BASE_PATH, Some(HeaderValue::from_static("/"))),
        (CLIENT_ADDR, owned(client)),
    ] {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    for (i, (name, value)) in matched.captures.iter().enumerate() {
        // The first capture of a name wins, as in `spin_headers`.
        let earlier = &matched.captures[..i];
        if earlier.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        let name = format!("spin-path-match-{}", name.to_ascii_lowercase());
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.insert(name, value);
        }
    }
}

const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");

/// `http://<authority><path-and-query>` for the request; see [`prepare_guest_request`].
fn guest_uri(head: &Parts) -> Uri {
    let from_host_header = || {
        let host = head.headers.get(HOST)?.to_str().ok()?;
        host.parse::<Authority>().ok()
    };
    let authority = head
        .uri
        .authority()
        .cloned()
        .filter(plain_authority)
        .or_else(|| from_host_header().filter(plain_authority))
        .unwrap_or_else(|| Authority::from_static("localhost"));
    let path_and_query = head
        .uri
        .path_and_query()
        .filter(|pq| pq.as_str().starts_with('/'))
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path_and_query.clone())
        .build()
        .or_else(|_| {
            Uri::builder()
                .scheme(Scheme::HTTP)
                .authority("localhost")
                .path_and_query(path_and_query)
                .build()
        })
        .unwrap_or_else(|_| Uri::from_static("http://localhost/"))
}

/// `uri` as text, for a URI [`guest_uri`] made (scheme `http`, an authority, a path). The same
/// text as its `Display`, but in one allocation of the right size: `to_string` grows its buffer
/// piece by piece, a few reallocations on every request.
fn absolute_url(uri: &Uri) -> String {
    let authority = uri.authority().map_or("", Authority::as_str);
    let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let mut url = String::with_capacity("http://".len() + authority.len() + path.len());
    url.push_str("http://");
    url.push_str(authority);
    url.push_str(path);
    url
}

/// `client` as text (`1.2.3.4:5678`, `[::1]:5678`), in one allocation. An IPv4 address, the
/// usual case, is written digit by digit: through `Display` it was a sixth of
/// [`prepare_guest_request`]'s instructions.
fn client_addr(client: SocketAddr) -> String {
    match client {
        SocketAddr::V4(v4) => {
            let mut text = String::with_capacity("255.255.255.255:65535".len());
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                push_decimal(&mut text, octet.into());
            }
            text.push(':');
            push_decimal(&mut text, v4.port());
            text
        }
        SocketAddr::V6(_) => {
            use std::fmt::Write as _;
            // The longest: `[` 45 characters `%` 10 digits `]:` 5 digits.
            let mut text = String::with_capacity(64);
            let _ = write!(text, "{client}");
            text
        }
    }
}

/// Appends `n` in decimal.
fn push_decimal(text: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut start = digits.len();
    let mut rest = n;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        text.push(char::from(digit));
    }
}

/// `host[:port]`: a host, and no user info.
fn plain_authority(authority: &Authority) -> bool {
    !authority.host().is_empty() && !authority.as_str().contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RouteTable;

    /// Routes `request` through a small table and prepares it for the guest.
    fn prepare(request: http::Request<()>) -> Parts {
        let mut routes = RouteTable::default();
        routes.add("/api/:version/...", ()).unwrap();
        routes.add("/...", ()).unwrap();
        let (mut head, ()) = request.into_parts();
        let path = head.uri.path().to_string();
        let matched = routes.match_path(&path).unwrap();
        prepare_guest_request(&mut head, &matched, "127.0.0.1:5555".parse().unwrap());
        head
    }

    fn header<'a>(head: &'a Parts, name: &str) -> Vec<&'a [u8]> {
        head.headers
            .get_all(name)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect()
    }

    #[test]
    fn origin_form_gets_the_host_header_as_authority_and_the_spin_headers() {
        let head = prepare(
            http::Request::get("/api/v1/items?q=1")
                .header("host", "example.com:3000")
                .header("x-other", "kept")
                .body(())
                .unwrap(),
        );
        assert_eq!(head.uri, "http://example.com:3000/api/v1/items?q=1");
        let full_url: &[u8] = b"http://example.com:3000/api/v1/items?q=1";
        assert_eq!(header(&head, "spin-full-url"), [full_url]);
        assert_eq!(header(&head, "spin-path-info"), [b"/items"]);
        assert_eq!(header(&head, "spin-path-match-version"), [b"v1"]);
        assert_eq!(header(&head, "spin-client-addr"), [b"127.0.0.1:5555"]);
        assert_eq!(header(&head, "x-other"), [b"kept"]);
    }

    #[test]
    fn the_guest_gets_exactly_the_spin_headers_of_its_match() {
        let mut routes = RouteTable::default();
        for route in [
            "/",
            "/exact",
            "/api/:version/...",
            "/twice/:id/:ID",
            "/files/...",
        ] {
            routes.add(route, ()).unwrap();
        }
        for path in [
            "/",
            "/exact",
            "/api/v2/a/b/",
            "/twice/first/second",
            "/files",
            "/files/x/y",
        ] {
            let (mut head, ()) = http::Request::get(path).body(()).unwrap().into_parts();
            let matched = routes.match_path(path).unwrap();
            let client = "[::1]:4000".parse().unwrap();
            prepare_guest_request(&mut head, &matched, client);
            let expected = crate::spin_headers(&matched, &head.uri.to_string(), "[::1]:4000");
            let got: Vec<(String, String)> = head
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            let sorted = |mut v: Vec<(String, String)>| {
                v.sort();
                v
            };
            assert_eq!(sorted(got), sorted(expected), "{path}");
        }
        let (mut head, ()) = http::Request::get("/twice/a/b")
            .body(())
            .unwrap()
            .into_parts();
        prepare_guest_request(
            &mut head,
            &routes.match_path("/twice/a/b").unwrap(),
            "127.0.0.1:1".parse().unwrap(),
        );
        assert_eq!(
            header(&head, "spin-path-match-id"),
            [b"a"],
            "the first capture wins"
        );
    }

    #[test]
    fn full_url_and_client_addr_read_as_their_display() {
        for (target, host) in [
            ("/api/v1/items?q=1&r=%20", "example.com:3000"),
            ("/", "[::1]:8080"),
            ("*", "example.com"),
            ("http://a.example:81/x?y", "ignored.example"),
            ("/caf\u{e9}", "bad host"),
        ] {
            let mut head = http::Request::get("/").body(()).unwrap().into_parts().0;
            head.uri = target.parse().unwrap_or_else(|_| Uri::from_static("/"));
            head.headers
                .insert(HOST, HeaderValue::from_str(host).unwrap());
            let uri = guest_uri(&head);
            assert_eq!(absolute_url(&uri), uri.to_string(), "{target} {host}");
        }
        for client in [
            "127.0.0.1:5555",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.20.3.100:80",
            "[::1]:4000",
            "[fe80::1%4294967295]:65535",
        ] {
            let addr: SocketAddr = client.parse().unwrap();
            assert_eq!(client_addr(addr), client);
        }
    }

    #[test]
    fn client_spin_headers_never_reach_the_guest() {
        let head = prepare(
            http::Request::get("/api/v1/items")
                .header("spin-path-info", "/forged")
                .header("Spin-Path-Info", "/forged-again")
                .header("spin-client-addr", "10.0.0.1:1")
                .header("spin-made-up", "x")
                .body(())
                .unwrap(),
        );
        assert_eq!(header(&head, "spin-path-info"), [b"/items"]);
        assert_eq!(header(&head, "spin-client-addr"), [b"127.0.0.1:5555"]);
        assert!(header(&head, "spin-made-up").is_empty());
    }

    #[test]
    fn a_forged_host_cannot_change_the_path_the_guest_sees() {
        for host in ["evil.com/admin?", "user@evil.com", ":80", "a b", ""] {
            let head = prepare(
                http::Request::get("/api/v1/items")
                    .header("host", host)
                    .body(())
                    .unwrap(),
            );
            assert_eq!(head.uri, "http://localhost/api/v1/items", "host {host:?}");
        }
    }

    #[test]
    fn absolute_form_keeps_its_authority_without_user_info() {
        let head = prepare(
            http::Request::get("http://example.com/x")
                .header("host", "other.example")
                .body(())
                .unwrap(),
        );
        assert_eq!(head.uri, "http://example.com/x");
        let head = prepare(
            http::Request::get("http://user:pw@example.com/x")
                .header("host", "other.example")
                .body(())
                .unwrap(),
        );
        assert_eq!(head.uri, "http://other.example/x");
    }

    #[test]
    fn a_utf8_path_reaches_the_guest_in_the_spin_headers() {
        let head = prepare(
            http::Request::get(&b"/api/v1/caf\xc3\xa9"[..])
                .body(())
                .unwrap(),
        );
        assert_eq!(header(&head, "spin-path-info"), ["/café".as_bytes()]);
        assert_eq!(
            header(&head, "spin-full-url"),
            ["http://localhost/api/v1/café".as_bytes()]
        );
    }
}
