//! Arbitrary text as `spin.toml`: `boson_manifest::parse` never panics; an error names the file and
//! a line that exists; a manifest that parses is consistent (every trigger names a component it
//! has, lines exist) and its routes are ones the router accepts, so a valid manifest never fails
//! at start on a route.
#![no_main]

use boson_manifest::{HttpRoute, HttpTarget, Manifest};
use boson_router::RouteTable;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The last line a position in the text can be on.
    let last_line = text.split('\n').count();
    match boson_manifest::parse("spin.toml", text) {
        Ok(manifest) => check_manifest(&manifest, last_line),
        Err(err) => {
            assert!(err.to_string().starts_with("spin.toml"), "{err}");
            if let Some(line) = err.line() {
                assert!(
                    (1..=last_line).contains(&line),
                    "line {line} of {last_line}: {err}"
                );
            }
        }
    }
});

fn check_manifest(manifest: &Manifest, last_line: usize) {
    let line_exists = |line: usize| (1..=last_line).contains(&line);
    for trigger in &manifest.http_triggers {
        assert!(line_exists(trigger.line), "trigger line {}", trigger.line);
        if let HttpRoute::Path(route) = &trigger.route {
            if let Err(e) = RouteTable::default().add(route, ()) {
                panic!("the manifest accepts route {route:?} but the router refuses it: {e}");
            }
        }
        if let HttpTarget::Component(id) = &trigger.target {
            assert!(
                manifest.components.contains_key(id),
                "unknown component {id:?}"
            );
        }
    }
    for trigger in &manifest.other_triggers {
        assert!(line_exists(trigger.line), "trigger line {}", trigger.line);
        if let Some(id) = &trigger.component {
            assert!(
                manifest.components.contains_key(id),
                "unknown component {id:?}"
            );
        }
    }
    for (id, component) in &manifest.components {
        assert_eq!(&component.id, id);
        assert!(
            line_exists(component.line),
            "component line {}",
            component.line
        );
    }
}
