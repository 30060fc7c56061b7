//! Templates in component `variables` (and `allowed_outbound_hosts`): literal text with
//! `{{ name }}` references to application variables.

use crate::ids::{IdStyle, check_id};

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// `{{ name }}`: the value of the application variable `name`.
    Variable(String),
}

/// Parses `s` into literal text and `{{ name }}` variable references.
///
/// Whitespace inside the braces is optional (`{{name}}` and `{{ name }}` are the same). A `{{`
/// without a closing `}}`, an empty reference, or a name that is not a lower snake_case variable
/// name is an error; the error says what is wrong. A lone `}}` is literal text.
///
/// ```
/// use boson_manifest::{parse_template, TemplatePart};
/// let parts = parse_template("https://{{ api_host }}/v1").unwrap();
/// assert_eq!(parts, vec![
///     TemplatePart::Literal("https://".into()),
///     TemplatePart::Variable("api_host".into()),
///     TemplatePart::Literal("/v1".into()),
/// ]);
/// assert!(parse_template("{{ api_host").is_err());
/// ```
pub fn parse_template(s: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TemplatePart::Literal(rest[..open].to_string()));
        }
        let inside = &rest[open + 2..];
        let Some(close) = inside.find("}}") else {
            let position = s[..s.len() - rest.len() + open].chars().count() + 1;
            return Err(format!(
                "`{{{{` at character {position} is not closed by `}}}}`"
            ));
        };
        let name = inside[..close].trim();
        if name.is_empty() {
            return Err("`{{ }}` names no variable".to_string());
        }
        check_id(name, IdStyle::LowerSnake)
            .map_err(|why| format!("`{name}` is not a valid variable name: {why}"))?;
        parts.push(TemplatePart::Variable(name.to_string()));
        rest = &inside[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// The variable names a template refers to, in order.
pub(crate) fn referenced_variables(parts: &[TemplatePart]) -> impl Iterator<Item = &str> {
    parts.iter().filter_map(|part| match part {
        TemplatePart::Variable(name) => Some(name.as_str()),
        TemplatePart::Literal(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::TemplatePart::{Literal, Variable};
    use super::*;

    #[test]
    fn plain_text_is_one_literal() {
        assert_eq!(parse_template("hello"), Ok(vec![Literal("hello".into())]));
        assert_eq!(parse_template(""), Ok(vec![]));
    }

    #[test]
    fn variables_with_and_without_spaces() {
        assert_eq!(
            parse_template("{{a}}-{{ b_2 }}{{  c  }}"),
            Ok(vec![
                Variable("a".into()),
                Literal("-".into()),
                Variable("b_2".into()),
                Variable("c".into()),
            ])
        );
    }

    #[test]
    fn lone_closing_braces_are_literal() {
        assert_eq!(parse_template("a }} b"), Ok(vec![Literal("a }} b".into())]));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_template("x {{ a"),
            Err("`{{` at character 3 is not closed by `}}`".to_string())
        );
        assert!(parse_template("{{}}").is_err());
        assert!(parse_template("{{ Api }}").is_err());
        assert!(parse_template("{{ a b }}").is_err());
        assert!(parse_template("{{ a-b }}").is_err());
    }

    #[test]
    fn referenced_names() {
        let parts = parse_template("{{ a }}/{{ b }}").unwrap();
        assert_eq!(referenced_variables(&parts).collect::<Vec<_>>(), ["a", "b"]);
    }
}
