//! Arbitrary route tables and paths — text, as in `seeds/router/`: routes one a line, an empty
//! line, paths one a line. Building a table and matching never panic, and a match obeys the rules
//! the route table documents, checked against each route on its own: the table matches exactly
//! when some route matches alone, picks the one first in precedence (then the first added), and
//! its path-info is a suffix of the path.
#![no_main]

use std::cmp::Reverse;

use boson_router::{RouteTable, spin_headers};
use libfuzzer_sys::fuzz_target;

/// The precedence order the table documents: exact before wildcard, more literal segments, then
/// more segments.
fn precedence(route: &str) -> (bool, Reverse<usize>, Reverse<usize>) {
    let mut segments: Vec<&str> = route.trim_end_matches('/').split('/').skip(1).collect();
    let wildcard = segments.last() == Some(&"...");
    if wildcard {
        segments.pop();
    }
    let literals = segments.iter().filter(|s| !s.starts_with(':')).count();
    (wildcard, Reverse(literals), Reverse(segments.len()))
}

fuzz_target!(|data: &[u8]| {
    // Text, as in the seeds: routes one a line, an empty line, then paths one a line.
    let text = String::from_utf8_lossy(data);
    let (routes, paths) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut table = RouteTable::default();
    // Each accepted route alone, in the order added.
    let mut alone: Vec<(String, RouteTable<usize>)> = Vec::new();
    for raw in routes.lines().take(16) {
        let raw = raw.to_string();
        let index = alone.len();
        if table.add(&raw, index).is_ok() {
            let mut single = RouteTable::default();
            single
                .add(&raw, index)
                .expect("a route the table took is valid alone");
            alone.push((raw, single));
        }
    }
    assert_eq!(table.len(), alone.len());

    for path in paths.lines().take(16) {
        let matched = table.match_path(path);
        let candidates: Vec<usize> = alone
            .iter()
            .enumerate()
            .filter(|(_, (_, single))| single.match_path(path).is_some())
            .map(|(i, _)| i)
            .collect();
        let Some(m) = matched else {
            assert!(
                candidates.is_empty(),
                "{path:?} matched nothing, but alone {candidates:?} match"
            );
            continue;
        };
        let chosen = *m.target;
        let (raw, _) = &alone[chosen];
        assert_eq!(m.raw_route, raw);
        assert!(
            candidates.contains(&chosen),
            "{path:?} matched {raw:?}, which alone does not"
        );
        let best = candidates
            .iter()
            .min_by_key(|&&i| (precedence(&alone[i].0), i))
            .copied();
        assert_eq!(
            best,
            Some(chosen),
            "{path:?}: precedence picks {:?}, table {raw:?}",
            best.map(|i| &alone[i].0)
        );

        assert!(
            path.ends_with(&m.path_info),
            "path-info {:?} of {path:?}",
            m.path_info
        );
        if !precedence(raw).0 {
            assert!(
                m.path_info.is_empty(),
                "exact route {raw:?} with path-info {:?}",
                m.path_info
            );
        }
        let capture_segments = raw.split('/').filter(|s| s.starts_with(':')).count();
        assert_eq!(m.captures.len(), capture_segments);
        for (_, value) in &m.captures {
            assert!(!value.contains('/'), "capture {value:?} spans segments");
        }
        let headers = spin_headers(&m, "http://localhost/", "127.0.0.1:1");
        assert!(headers.iter().all(|(name, _)| name.starts_with("spin-")));
    }
});
