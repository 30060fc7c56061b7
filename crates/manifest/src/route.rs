//! HTTP route syntax: `/exact/path`, `/users/:id` (one-segment capture) and `/static/...`
//! (everything below, only as the last segment).

/// Checks the syntax of an HTTP trigger route; the error says what is wrong, in a phrase.
pub(crate) fn check_route(route: &str) -> Result<(), String> {
    if route.is_empty() {
        return Err("it is empty".to_string());
    }
    let Some(path) = route.strip_prefix('/') else {
        return Err("it does not start with `/`".to_string());
    };
    if let Some(bad) = route
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "it contains {bad:?}; a route matches the path only, without spaces, query or fragment"
        ));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    let mut captures: Vec<&str> = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() && index != last {
            return Err("it has an empty segment (`//`)".to_string());
        }
        if *segment == "..." {
            if index != last {
                return Err("the wildcard `...` must be the last segment".to_string());
            }
        } else if segment.contains("...") {
            return Err(format!(
                "`{segment}` mixes `...` with other text; the wildcard `...` must be a whole segment"
            ));
        } else if let Some(name) = segment.strip_prefix(':') {
            check_capture_name(name)?;
            if captures.contains(&name) {
                return Err(format!("the capture `:{name}` appears twice"));
            }
            captures.push(name);
        }
    }
    Ok(())
}

fn check_capture_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "the capture `:{name}` needs a name of letters, digits, `_` or `-`, starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check_route;

    #[test]
    fn valid_routes() {
        for route in [
            "/",
            "/...",
            "/hello",
            "/hello/",
            "/api/users/:id",
            "/api/:org/:repo/...",
            "/static/...",
            "/a-b_c.d/e~f",
            "/:_private",
        ] {
            assert_eq!(check_route(route), Ok(()), "{route}");
        }
    }

    #[test]
    fn invalid_routes() {
        for (route, why) in [
            ("", "it is empty"),
            ("hello", "it does not start with `/`"),
            ("/a//b", "it has an empty segment (`//`)"),
            ("//", "it has an empty segment (`//`)"),
            ("/.../b", "the wildcard `...` must be the last segment"),
            ("/.../", "the wildcard `...` must be the last segment"),
            (
                "/static...",
                "`static...` mixes `...` with other text; the wildcard `...` must be a whole segment",
            ),
            (
                "/a/:",
                "the capture `:` needs a name of letters, digits, `_` or `-`, starting with a letter",
            ),
            (
                "/a/:1x",
                "the capture `:1x` needs a name of letters, digits, `_` or `-`, starting with a letter",
            ),
            ("/a/:id/:id", "the capture `:id` appears twice"),
        ] {
            assert_eq!(check_route(route), Err(why.to_string()), "{route}");
        }
        assert!(check_route("/a?b=1").is_err());
        assert!(check_route("/a b").is_err());
    }
}
