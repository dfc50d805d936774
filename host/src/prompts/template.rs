//! Prompt templates: text with `{{variable}}` placeholders, parsed when a version is created so a
//! broken template never reaches an agent.
//!
//! Syntax:
//! - `{{name}}` or `{{ name }}` (spaces and tabs around the name) is a placeholder; a name is
//!   `[A-Za-z_][A-Za-z0-9_]*`, optionally dotted (`item.expected_files`);
//! - single braces are plain text, because prompts quote JSON and code;
//! - `\{{` and `\}}` write a literal `{{` or `}}` (a backslash before anything else is plain text);
//! - an unclosed `{{`, a stray `}}` or an invalid name is a [`TemplateError`] with the 1-based line
//!   and column (in characters) and the byte offset of the problem.
//!
//! Rendering substitutes values verbatim: a value containing braces is not parsed again.

use std::collections::HashMap;

use serde::Serialize;

/// Why a template does not parse, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("{message} at line {line}, column {column}")]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column (in characters) of the problem.
    pub column: usize,
    /// Byte offset of the problem in the template.
    pub offset: usize,
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template uses a variable no value was given for.
    #[error("no value for template variable {0:?}")]
    MissingVariable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Variable(String),
}

/// A parsed template: literal text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    variables: Vec<String>,
}

impl Template {
    /// Parses `source`; see the module documentation for the syntax.
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let bytes = source.as_bytes();
        let mut segments = Vec::new();
        let mut variables: Vec<String> = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        // Copy runs of plain text in one go; the only interesting bytes are ASCII, so slicing at
        // them is always on a char boundary.
        let mut run_start = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            if rest.starts_with(b"\\{{") || rest.starts_with(b"\\}}") {
                text.push_str(&source[run_start..i]);
                text.push_str(&source[i + 1..i + 3]);
                i += 3;
                run_start = i;
            } else if rest.starts_with(b"{{") {
                text.push_str(&source[run_start..i]);
                let open = i;
                let inner_start = i + 2;
                let close = find(bytes, inner_start, b"}}")
                    .ok_or_else(|| error_at(source, open, "unclosed `{{`: no matching `}}`"))?;
                if let Some(nested) = find(&bytes[..close], inner_start, b"{{") {
                    return Err(error_at(
                        source,
                        open,
                        &format!(
                            "unclosed `{{{{`: another `{{{{` follows at offset {nested} before any `}}}}`"
                        ),
                    ));
                }
                let name = parse_name(source, inner_start, close)?;
                if !text.is_empty() {
                    segments.push(Segment::Text(std::mem::take(&mut text)));
                }
                if !variables.iter().any(|v| v == name) {
                    variables.push(name.to_owned());
                }
                segments.push(Segment::Variable(name.to_owned()));
                i = close + 2;
                run_start = i;
            } else if rest.starts_with(b"}}") {
                return Err(error_at(
                    source,
                    i,
                    "stray `}}` without an opening `{{` (write `\\}}` for a literal `}}`)",
                ));
            } else {
                i += 1;
            }
        }
        text.push_str(&source[run_start..]);
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Template {
            segments,
            variables,
        })
    }

    /// The variables the template uses, in order of first use, without duplicates.
    pub fn variables(&self) -> &[String] {
        &self.variables
    }

    /// Substitutes every placeholder with its value from `values`; extra values are ignored.
    pub fn render(&self, values: &HashMap<String, String>) -> Result<String, RenderError> {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Variable(name) => out.push_str(
                    values
                        .get(name)
                        .ok_or_else(|| RenderError::MissingVariable(name.clone()))?,
                ),
            }
        }
        Ok(out)
    }
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Validates the placeholder between `start` and `end` (byte offsets inside `{{ … }}`) and
/// returns the name without surrounding spaces or tabs.
fn parse_name(source: &str, start: usize, end: usize) -> Result<&str, TemplateError> {
    let inner = &source[start..end];
    let leading = inner.len() - inner.trim_start_matches([' ', '\t']).len();
    let name = inner.trim_matches([' ', '\t']);
    let name_offset = start + leading;
    if name.is_empty() {
        return Err(error_at(
            source,
            start - 2,
            "empty placeholder `{{}}`: expected a variable name",
        ));
    }
    let mut segment_start = true;
    for (i, c) in name.char_indices() {
        let ok = if segment_start {
            c.is_ascii_alphabetic() || c == '_'
        } else {
            c.is_ascii_alphanumeric() || c == '_' || c == '.'
        };
        let empty_segment = c == '.' && name[i + 1..].starts_with('.');
        if !ok || empty_segment || (c == '.' && i + 1 == name.len()) {
            return Err(error_at(
                source,
                name_offset + i,
                &format!(
                    "invalid variable name {name:?}: expected letters, digits and `_`, starting \
                     with a letter or `_`, optionally joined by `.`"
                ),
            ));
        }
        segment_start = c == '.';
    }
    Ok(name)
}

fn error_at(source: &str, offset: usize, message: &str) -> TemplateError {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let column = source[line_start..offset].chars().count() + 1;
    TemplateError {
        message: message.to_owned(),
        line,
        column,
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn placeholders_with_and_without_spaces_render() {
        let t = Template::parse("Task: {{task_title}}\n{{ task_description }}!").unwrap();
        assert_eq!(t.variables(), ["task_title", "task_description"]);
        let out = t
            .render(&values(&[("task_title", "T"), ("task_description", "D")]))
            .unwrap();
        assert_eq!(out, "Task: T\nD!");
    }

    #[test]
    fn variables_are_ordered_by_first_use_and_deduplicated() {
        let t = Template::parse("{{b}} {{a}} {{b}} {{ a }} {{c.d}}").unwrap();
        assert_eq!(t.variables(), ["b", "a", "c.d"]);
    }

    #[test]
    fn dotted_names_are_variables() {
        let t = Template::parse("{{item.expected_files}} {{sample.output_text}}").unwrap();
        assert_eq!(t.variables(), ["item.expected_files", "sample.output_text"]);
    }

    #[test]
    fn single_braces_are_plain_text() {
        let src = "Reply with {\"files\": [{\"path\": \"a\"} ], \"ok\": true} and fn f() { x }";
        let t = Template::parse(src).unwrap();
        assert!(t.variables().is_empty());
        assert_eq!(t.render(&HashMap::new()).unwrap(), src);
    }

    #[test]
    fn escaped_double_braces_are_literal() {
        let t = Template::parse(r"literal \{{x\}} and {{y}}").unwrap();
        assert_eq!(t.variables(), ["y"]);
        assert_eq!(
            t.render(&values(&[("y", "Y")])).unwrap(),
            "literal {{x}} and Y"
        );
    }

    #[test]
    fn rendered_values_are_not_parsed_again() {
        let t = Template::parse("{{a}}").unwrap();
        assert_eq!(t.render(&values(&[("a", "{{b}}")])).unwrap(), "{{b}}");
    }

    #[test]
    fn missing_variable_is_an_error_naming_it() {
        let t = Template::parse("{{a}} {{b}}").unwrap();
        assert_eq!(
            t.render(&values(&[("a", "x")])),
            Err(RenderError::MissingVariable("b".to_owned()))
        );
    }

    #[test]
    fn unclosed_open_is_reported_at_the_open_braces() {
        let err = Template::parse("line one\n  ab {{ task_title\nmore").unwrap_err();
        assert_eq!((err.line, err.column, err.offset), (2, 6, 14));
        assert!(err.message.contains("unclosed"), "{}", err.message);
    }

    #[test]
    fn open_followed_by_another_open_is_unclosed() {
        let err = Template::parse("{{ a {{ b }}").unwrap_err();
        assert_eq!((err.line, err.column, err.offset), (1, 1, 0));
        assert!(err.message.contains("unclosed"), "{}", err.message);
    }

    #[test]
    fn stray_close_is_reported_where_it_is() {
        let err = Template::parse("ok {{a}}\n{\"x\": {\"y\": 1}}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 14));
        assert!(err.message.contains("stray"), "{}", err.message);
    }

    #[test]
    fn invalid_names_are_reported_at_the_offending_character() {
        for (src, column) in [
            ("{{1abc}}", 3),
            ("{{ a-b }}", 5),
            ("{{a b}}", 4),
            ("{{a..b}}", 4),
            ("{{a.}}", 4),
            ("{{.a}}", 3),
            ("{{ a.1b }}", 6),
            ("{{é}}", 3),
        ] {
            let err = Template::parse(src).unwrap_err();
            assert_eq!(
                (err.line, err.column),
                (1, column),
                "{src}: {}",
                err.message
            );
            assert!(err.message.contains("invalid variable name"), "{src}");
        }
    }

    #[test]
    fn empty_placeholder_is_an_error() {
        let err = Template::parse("x {{  }}").unwrap_err();
        assert_eq!((err.line, err.column, err.offset), (1, 3, 2));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let err = Template::parse("ééé }}").unwrap_err();
        assert_eq!((err.column, err.offset), (5, 7));
    }

    #[test]
    fn newline_inside_placeholder_is_invalid() {
        let err = Template::parse("{{a\n}}").unwrap_err();
        assert_eq!((err.line, err.column), (1, 4));
    }

    proptest! {
        #[test]
        fn parse_and_render_never_panic(source in any::<String>()) {
            if let Ok(t) = Template::parse(&source) {
                let vals: HashMap<String, String> =
                    t.variables().iter().map(|v| (v.clone(), "v".to_owned())).collect();
                prop_assert!(t.render(&vals).is_ok());
            }
        }

        #[test]
        fn errors_point_inside_the_source(source in "[a-z{} \n\\\\.é]{0,40}") {
            if let Err(e) = Template::parse(&source) {
                prop_assert!(e.offset < source.len());
                prop_assert!(source.is_char_boundary(e.offset));
                prop_assert!(e.line >= 1 && e.column >= 1);
                prop_assert_eq!(e.line, source[..e.offset].matches('\n').count() + 1);
            }
        }

        #[test]
        fn text_without_double_braces_is_itself(source in any::<String>()) {
            prop_assume!(!source.contains("{{") && !source.contains("}}"));
            let t = Template::parse(&source).unwrap();
            prop_assert!(t.variables().is_empty());
            prop_assert_eq!(t.render(&HashMap::new()).unwrap(), source);
        }

        #[test]
        fn rendering_substitutes_each_variable(
            parts in proptest::collection::vec(("[^{}\\\\]{0,12}", "[a-z_][a-z0-9_]{0,6}"), 1..6),
            value in "[^{}]{0,10}",
        ) {
            let source: String = parts.iter().map(|(text, name)| format!("{text}{{{{ {name} }}}}")).collect();
            let expected: String = parts.iter().map(|(text, _)| format!("{text}{value}")).collect();
            let t = Template::parse(&source).unwrap();
            let vals: HashMap<String, String> =
                t.variables().iter().map(|v| (v.clone(), value.clone())).collect();
            prop_assert_eq!(t.render(&vals).unwrap(), expected);
        }
    }
}
