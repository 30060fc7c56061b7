//! Identifier rules: component ids (kebab-case), variable names (lower snake_case) and labels.
//!
//! These follow Spin's documented rules so that an id Spin accepts, Boson accepts: an id is one
//! or more words joined by a single delimiter; a word is ASCII letters and digits, either all
//! lowercase or all uppercase; the first word starts with a letter, later words may start with a
//! digit. Boson does not accept the `:` that Spin tolerates inside words.

/// The delimiter and case rules of one kind of identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdStyle {
    /// `kebab-case`, words may be all-uppercase: component ids, AI model names.
    Kebab,
    /// `snake_case`, words may be all-uppercase: key-value store and SQLite labels.
    Snake,
    /// `lower_snake_case`: application and component variable names.
    LowerSnake,
}

impl IdStyle {
    fn delimiter(self) -> char {
        match self {
            IdStyle::Kebab => '-',
            IdStyle::Snake | IdStyle::LowerSnake => '_',
        }
    }
}

/// Checks `id` against `style`; the error says what is wrong, in a phrase.
pub(crate) fn check_id(id: &str, style: IdStyle) -> Result<(), String> {
    let delim = style.delimiter();
    if id.is_empty() {
        return Err("it is empty".to_string());
    }
    let wrong = if delim == '-' { '_' } else { '-' };
    if id.contains(wrong) {
        return Err(format!(
            "words must be joined with '{delim}', not '{wrong}'"
        ));
    }
    for (index, word) in id.split(delim).enumerate() {
        let Some(first) = word.chars().next() else {
            return Err(format!(
                "it starts or ends with '{delim}', or has two '{delim}' in a row"
            ));
        };
        if !(first.is_ascii_alphabetic() || (index > 0 && first.is_ascii_digit())) {
            return Err(if index == 0 {
                format!("it must start with a letter, not {first:?}")
            } else {
                format!("each word must start with a letter or digit, not {first:?}")
            });
        }
        if let Some(bad) = word.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "it may contain only ASCII letters, digits and '{delim}', not {bad:?}"
            ));
        }
        let has_lower = word.chars().any(|c| c.is_ascii_lowercase());
        let has_upper = word.chars().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper {
            return Err(format!("the word {word:?} mixes lowercase and uppercase"));
        }
        if style == IdStyle::LowerSnake && has_upper {
            return Err("it must be all lowercase".to_string());
        }
    }
    Ok(())
}

/// A best-effort rewrite of `id` into `style`, offered in error messages when it is valid.
pub(crate) fn suggest_id(id: &str, style: IdStyle) -> Option<String> {
    let delim = style.delimiter();
    let mut out = String::new();
    let mut previous_lower = false;
    for c in id.trim().chars() {
        // camelCase words become separate words.
        if c.is_ascii_uppercase() && previous_lower {
            out.push(delim);
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            delim
        };
        if !(c == delim && (out.is_empty() || out.ends_with(delim))) {
            out.push(c);
        }
    }
    while out.ends_with(delim) {
        out.pop();
    }
    (out != id && check_id(&out, style).is_ok()).then_some(out)
}

/// Levenshtein distance, for "did you mean" hints.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kebab_ids() {
        for ok in ["api", "api-v2", "my-API", "a1", "hello-2nd", "API"] {
            assert_eq!(check_id(ok, IdStyle::Kebab), Ok(()), "{ok}");
        }
        for bad in [
            "", "1api", "api_v2", "-api", "api-", "a--b", "Api", "a.b", "a b",
        ] {
            assert!(check_id(bad, IdStyle::Kebab).is_err(), "{bad}");
        }
    }

    #[test]
    fn snake_ids() {
        for ok in ["api_key", "token", "v2", "a_1"] {
            assert_eq!(check_id(ok, IdStyle::LowerSnake), Ok(()), "{ok}");
        }
        for bad in ["API_KEY", "api-key", "_x", "x_", "1x", "apiKey"] {
            assert!(check_id(bad, IdStyle::LowerSnake).is_err(), "{bad}");
        }
        assert_eq!(check_id("API_KEY", IdStyle::Snake), Ok(()));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest_id("My_Api", IdStyle::Kebab).as_deref(),
            Some("my-api")
        );
        assert_eq!(
            suggest_id("apiKey", IdStyle::LowerSnake).as_deref(),
            Some("api_key")
        );
        assert_eq!(
            suggest_id("MyAPI", IdStyle::Kebab).as_deref(),
            Some("my-api")
        );
        assert_eq!(suggest_id("api", IdStyle::Kebab), None);
        assert_eq!(closest("sourc", ["source", "files"]), Some("source"));
        assert_eq!(closest("zzz", ["source", "files"]), None);
    }
}
