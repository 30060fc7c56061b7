//! The request head a guest receives for a routed request: the client's head, minus any `spin-*`
//! header the client sent, plus the host's `spin-*` routing headers, with an absolute URI.

use std::net::SocketAddr;

use http::header::{HOST, HeaderName, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme, Uri};

use crate::{RouteMatch, spin_headers};

/// Turns the head of a client's request into the head its guest receives, for the route it
/// matched. Never panics, whatever the head holds.
///
/// - Every `spin-*` header the client sent is removed: clients may not forge routing metadata.
/// - The headers of [`spin_headers`] are set, each with exactly one value. One whose name or value
///   is not a valid header (a capture name the manifest would refuse) is left out.
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
    let full_url = head.uri.to_string();
    for (name, value) in spin_headers(matched, &full_url, &client.to_string()) {
        // `from_bytes`, not `from_str`: a path may hold UTF-8 (hyper accepts it in the request
        // line), and the guest should see it rather than miss the header.
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            head.headers.insert(name, value);
        }
    }
}

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
