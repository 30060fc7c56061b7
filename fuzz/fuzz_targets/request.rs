//! Arbitrary HTTP/1.1 request heads (text, as in `seeds/request/`), parsed as hyper parses them,
//! routed, and turned into the head a guest receives: never a panic; no `spin-*` header of the
//! client's survives, each host `spin-*` header has exactly one value and the host's value; other
//! headers are untouched; the URI is absolute `http`, without user info, with the path that was
//! routed and the request's own query, survives a print-and-parse round trip and is what
//! `spin-full-url` says.
#![no_main]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use boson_router::{RouteTable, prepare_guest_request, spin_headers};
use http::header::{HeaderName, HeaderValue};
use http::uri::Uri;
use libfuzzer_sys::fuzz_target;

/// What hyper's HTTP/1 server hands the host for `data`, if it accepts it: httparse for the
/// request line and headers, then `http`'s own types (hyper 1, `proto/h1/role.rs`).
fn parse_like_hyper(data: &[u8]) -> Option<http::request::Parts> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(_) = parsed.parse(data).ok()? else {
        return None;
    };
    let method = http::Method::from_bytes(parsed.method?.as_bytes()).ok()?;
    let uri = Uri::try_from(parsed.path?.as_bytes()).ok()?;
    let (mut head, ()) = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .ok()?
        .into_parts();
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        head.headers.append(name, value);
    }
    Some(head)
}

fuzz_target!(|data: &[u8]| {
    let Some(mut head) = parse_like_hyper(data) else {
        return;
    };
    let mut routes = RouteTable::default();
    for route in [
        "/",
        "/hello",
        "/api/:version/...",
        "/users/:id",
        "/users/me",
        "/:lang/docs",
        "/...",
    ] {
        routes.add(route, ()).unwrap();
    }
    let path = head.uri.path().to_string();
    let Some(matched) = routes.match_path(&path) else {
        return;
    };
    let client: SocketAddr = "[::1]:50123".parse().unwrap();
    let before = head.clone();
    prepare_guest_request(&mut head, &matched, client);

    // The URI.
    let uri = &head.uri;
    assert_eq!(uri.scheme_str(), Some("http"), "{uri}");
    let authority = uri.authority().expect("an absolute URI");
    assert!(
        !authority.host().is_empty() && !authority.as_str().contains('@'),
        "{uri}"
    );
    let expected_path_and_query = before
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| pq.starts_with('/'))
        .unwrap_or("/");
    assert_eq!(
        uri.path_and_query().map(|pq| pq.as_str()),
        Some(expected_path_and_query)
    );
    assert_eq!(
        uri.path(),
        path,
        "the guest sees another path than the one routed"
    );
    let full_url = uri.to_string();
    assert_eq!(
        full_url.parse::<Uri>().ok().as_ref(),
        Some(uri),
        "{full_url}"
    );

    // The headers: the host's `spin-*` ones, then the client's others, untouched.
    let expected = spin_headers(&matched, &full_url, &client.to_string());
    for (name, value) in head.headers.iter() {
        if name.as_str().starts_with("spin-") {
            let (_, host_value) = expected
                .iter()
                .find(|(n, _)| n == name.as_str())
                .unwrap_or_else(|| panic!("client header {name} reached the guest"));
            assert_eq!(value.as_bytes(), host_value.as_bytes(), "{name}");
            assert_eq!(head.headers.get_all(name).iter().count(), 1, "{name}");
        }
    }
    assert_eq!(
        head.headers.get("spin-full-url").map(|v| v.as_bytes()),
        Some(full_url.as_bytes())
    );
    // A `HeaderMap` keeps the order of one name's values, not the order between names.
    let others = |headers: &http::HeaderMap| -> BTreeMap<String, Vec<Vec<u8>>> {
        let mut others = BTreeMap::<String, Vec<Vec<u8>>>::new();
        for (name, value) in headers {
            if !name.as_str().starts_with("spin-") {
                others
                    .entry(name.to_string())
                    .or_default()
                    .push(value.as_bytes().to_vec());
            }
        }
        others
    };
    assert_eq!(others(&head.headers), others(&before.headers));
    assert_eq!(head.method, before.method);
});
