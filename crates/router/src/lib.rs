//! Boson's HTTP route table: Spin's route syntax and precedence, and the `spin-*` metadata a
//! match produces.
//!
//! ```
//! let mut routes = boson_router::RouteTable::default();
//! routes.add("/api/users/:id", "users").unwrap();
//! routes.add("/...", "site").unwrap();
//!
//! let m = routes.match_path("/api/users/42").unwrap();
//! assert_eq!(*m.target, "users");
//! assert_eq!(m.captures, [("id".to_string(), "42".to_string())]);
//! assert_eq!(routes.match_path("/about").unwrap().path_info, "/about");
//! ```
//!
//! Syntax: literal segments, `:name` captures one segment, a final `/...` matches the rest of the
//! path (including nothing). Precedence: a route without a wildcard beats one with; then the route
//! with more literal segments; then the longer one. Two routes that would match the same paths
//! are a start-up error.
//!
//! [`prepare_guest_request`] turns a matched request's head into the one the guest receives.
//!
//! This crate is pure — std and `http`, no Wasmtime, no tokio, no I/O — so that it can be fuzzed
//! (`fuzz/`) without instrumenting the engine. It must not panic on any input.

mod request;

use std::collections::HashSet;

pub use request::prepare_guest_request;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Capture(String),
}

#[derive(Debug, Clone)]
struct Route<T> {
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
    target: T,
    headers: RouteHeaders,
}

/// The values of the `spin-*` headers that depend on the route alone, made once when the route
/// is added: a request clones them (a reference count) instead of building them again.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteHeaders {
    /// `spin-matched-route` and `spin-raw-component-route`: the route as written.
    pub raw_route: Option<http::HeaderValue>,
    /// `spin-component-route`: the route without its wildcard.
    pub component_route: Option<http::HeaderValue>,
}

impl RouteHeaders {
    fn new(raw: &str, component_route: &str) -> Self {
        let value = |s: &str| http::HeaderValue::from_bytes(s.as_bytes()).ok();
        Self {
            raw_route: value(raw),
            component_route: value(component_route),
        }
    }
}

/// What a request path matched.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteMatch<'a, T> {
    pub target: &'a T,
    /// The route as written in the manifest, e.g. `/api/...`.
    pub raw_route: &'a str,
    /// The route without its wildcard, e.g. `/api`.
    pub component_route: &'a str,
    /// The part of the path after `component_route` (empty for exact routes).
    pub path_info: String,
    /// `:name` captures, in route order.
    pub captures: Vec<(String, String)>,
    /// The route's `spin-*` header values, made when it was added.
    pub route_headers: &'a RouteHeaders,
}

/// A set of routes, built once at start.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self { routes: Vec::new() }
    }
}

/// Parses `/a/:b/...` into segments and a wildcard flag.
fn parse_route(route: &str) -> Result<(Vec<Segment>, bool), String> {
    if !route.starts_with('/') {
        return Err(format!(
            "route `{route}` must start with `/`, e.g. `/{route}`"
        ));
    }
    let trimmed = route.trim_end_matches('/');
    let mut parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    let wildcard = parts.last() == Some(&"...");
    if wildcard {
        parts.pop();
    }
    let mut segments = Vec::with_capacity(parts.len());
    for part in parts {
        if part == "..." {
            return Err(format!(
                "route `{route}`: `/...` may only end a route, e.g. `/api/...`"
            ));
        }
        if part.is_empty() {
            return Err(format!("route `{route}` has an empty segment (`//`)"));
        }
        match part.strip_prefix(':') {
            Some(name) if !name.is_empty() => segments.push(Segment::Capture(name.to_string())),
            Some(_) => {
                return Err(format!(
                    "route `{route}` has a capture without a name; write `:name`"
                ));
            }
            None => segments.push(Segment::Literal(part.to_string())),
        }
    }
    Ok((segments, wildcard))
}

impl<T> RouteTable<T> {
    /// Adds a route; fails if it is malformed or duplicates one already added.
    pub fn add(&mut self, raw: &str, target: T) -> Result<(), String> {
        let (segments, wildcard) = parse_route(raw)?;
        let shape = |segs: &[Segment]| -> Vec<Option<String>> {
            segs.iter()
                .map(|s| match s {
                    Segment::Literal(l) => Some(l.clone()),
                    Segment::Capture(_) => None,
                })
                .collect()
        };
        if let Some(existing) = self
            .routes
            .iter()
            .find(|r| r.wildcard == wildcard && shape(&r.segments) == shape(&segments))
        {
            return Err(format!(
                "route `{raw}` duplicates route `{}`: both match the same paths — remove one or make them differ",
                existing.raw
            ));
        }
        self.routes.push(Route {
            raw: raw.to_string(),
            headers: RouteHeaders::new(raw, component_route(raw)),
            segments,
            wildcard,
            target,
        });
        // Keep the table in precedence order so the first match wins.
        self.routes.sort_by_key(|r| {
            let literals = r
                .segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
            (
                r.wildcard,
                std::cmp::Reverse(literals),
                std::cmp::Reverse(r.segments.len()),
            )
        });
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Finds the route for a request path (no query string). Only a path in origin form (starting
    /// with `/`) matches: `*` and an authority-form target's empty path match nothing.
    pub fn match_path(&self, path: &str) -> Option<RouteMatch<'_, T>> {
        if !path.starts_with('/') {
            return None;
        }
        let trimmed = path.trim_end_matches('/');
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').skip(1).collect()
        };
        'routes: for route in &self.routes {
            if parts.len() < route.segments.len()
                || (!route.wildcard && parts.len() != route.segments.len())
            {
                continue;
            }
            let mut captures = Vec::new();
            for (segment, part) in route.segments.iter().zip(&parts) {
                match segment {
                    Segment::Literal(l) if l == part => {}
                    Segment::Literal(_) => continue 'routes,
                    Segment::Capture(name) => captures.push((name.clone(), part.to_string())),
                }
            }
            let path_info = if route.wildcard {
                // Everything after the matched segments, keeping the original trailing slash.
                let consumed: usize = parts[..route.segments.len()]
                    .iter()
                    .map(|p| p.len() + 1)
                    .sum();
                path[consumed.min(path.len())..].to_string()
            } else {
                String::new()
            };
            return Some(RouteMatch {
                target: &route.target,
                raw_route: &route.raw,
                component_route: component_route(&route.raw),
                path_info,
                captures,
                route_headers: &route.headers,
            });
        }
        None
    }
}

/// The route without its trailing slash and wildcard: `/api/...` → `/api`.
fn component_route(raw: &str) -> &str {
    let trimmed = raw.trim_end_matches('/');
    trimmed.strip_suffix("/...").unwrap_or(trimmed)
}

/// The `spin-*` request headers for a matched request.
pub fn spin_headers<T>(
    m: &RouteMatch<'_, T>,
    full_url: &str,
    client_addr: &str,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-full-url".to_string(), full_url.to_string()),
        ("spin-path-info".to_string(), m.path_info.clone()),
        ("spin-matched-route".to_string(), m.raw_route.to_string()),
        (
            "spin-component-route".to_string(),
            m.component_route.to_string(),
        ),
        (
            "spin-raw-component-route".to_string(),
            m.raw_route.to_string(),
        ),
        ("spin-base-path".to_string(), "/".to_string()),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    let mut seen = HashSet::new();
    for (name, value) in &m.captures {
        let name = format!("spin-path-match-{}", name.to_ascii_lowercase());
        if seen.insert(name.clone()) {
            headers.push((name, value.clone()));
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(routes: &[&str]) -> RouteTable<String> {
        let mut t = RouteTable::default();
        for r in routes {
            t.add(r, r.to_string()).unwrap();
        }
        t
    }

    /// (path, expected route, expected path-info, expected captures)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

    #[test]
    fn route_table_cases() {
        let t = table(&[
            "/",
            "/hello",
            "/api/...",
            "/api/users/:id",
            "/api/users/:id/...",
            "/api/users/me",
            "/static/...",
            "/:lang/docs",
            "/...",
        ]);
        let cases: &[Case] = &[
            ("/", "/", "", &[]),
            ("/hello", "/hello", "", &[]),
            ("/hello/", "/hello", "", &[]),
            ("/hello/x", "/...", "/hello/x", &[]),
            ("/api", "/api/...", "", &[]),
            ("/api/", "/api/...", "/", &[]),
            ("/api/x/y", "/api/...", "/x/y", &[]),
            ("/api/users/me", "/api/users/me", "", &[]),
            ("/api/users/42", "/api/users/:id", "", &[("id", "42")]),
            (
                "/api/users/42/posts/1",
                "/api/users/:id/...",
                "/posts/1",
                &[("id", "42")],
            ),
            ("/static/css/a.css", "/static/...", "/css/a.css", &[]),
            ("/en/docs", "/:lang/docs", "", &[("lang", "en")]),
            ("/other", "/...", "/other", &[]),
        ];
        for (path, route, info, captures) in cases {
            let m = t
                .match_path(path)
                .unwrap_or_else(|| panic!("{path} matched nothing"));
            assert_eq!(m.target, route, "route for {path}");
            assert_eq!(m.path_info, *info, "path info for {path}");
            let caps: Vec<(&str, &str)> = m
                .captures
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            assert_eq!(caps, *captures, "captures for {path}");
        }
    }

    #[test]
    fn no_match_without_catch_all() {
        let t = table(&["/a", "/b/..."]);
        assert!(t.match_path("/c").is_none());
        assert!(t.match_path("/a/b").is_none());
        assert!(t.match_path("/bb").is_none());
        assert_eq!(t.match_path("/b").unwrap().target, "/b/...");
    }

    /// `*`, an authority-form target's empty path (`GET z HTTP/1.1`, found by the `request` fuzz
    /// target) and other paths not starting with `/` used to match `/` or a wildcard, so the
    /// guest saw a path that was not routed; and slicing the path-info out of `€/x/y` for
    /// `/:a/...` panicked (not reachable from hyper, whose paths are ASCII there).
    #[test]
    fn only_paths_starting_with_a_slash_match() {
        let t = table(&["/", "/:a/...", "/..."]);
        for path in ["", "*", "z", "€/x/y", "a/b"] {
            assert!(t.match_path(path).is_none(), "{path:?}");
        }
        assert_eq!(t.match_path("/").unwrap().target, "/");
    }

    #[test]
    fn duplicates_and_bad_routes_are_errors() {
        let mut t = RouteTable::default();
        t.add("/a/...", 1).unwrap();
        assert!(t.add("/a/...", 2).unwrap_err().contains("duplicates"));
        t.add("/u/:id", 1).unwrap();
        assert!(t.add("/u/:name", 2).unwrap_err().contains("duplicates"));
        t.add("/x", 1).unwrap();
        assert!(t.add("/x/", 2).unwrap_err().contains("duplicates"));
        assert!(t.add("/a/.../b", 3).unwrap_err().contains("may only end"));
        assert!(t.add("a", 3).unwrap_err().contains("must start"));
        assert!(t.add("/a//b", 3).unwrap_err().contains("empty segment"));
    }

    #[test]
    fn spin_headers_for_a_match() {
        let t = table(&["/api/:version/..."]);
        let m = t.match_path("/api/v1/items").unwrap();
        let h: HashMap<_, _> = spin_headers(
            &m,
            "http://localhost:3000/api/v1/items?q=1",
            "127.0.0.1:5555",
        )
        .into_iter()
        .collect();
        assert_eq!(h["spin-full-url"], "http://localhost:3000/api/v1/items?q=1");
        assert_eq!(h["spin-path-info"], "/items");
        assert_eq!(h["spin-matched-route"], "/api/:version/...");
        assert_eq!(h["spin-component-route"], "/api/:version");
        assert_eq!(h["spin-raw-component-route"], "/api/:version/...");
        assert_eq!(h["spin-base-path"], "/");
        assert_eq!(h["spin-client-addr"], "127.0.0.1:5555");
        assert_eq!(h["spin-path-match-version"], "v1");
    }
}
