//! OpenAI-style templates: `{{ item.expected_files }}`, `{{sample.output_text}}`,
//! `{{sample.output_json.name}}`, `{{ item.a.b[0] }}`.
//!
//! The rules follow OpenAI's graders guide: "The only supported namespace values are `item` and
//! `sample`"; spaces inside the braces are allowed; nested values use the JSON-path-like syntax
//! of [`crate::json_path`]. A string value renders as its raw text; any other JSON value renders
//! as compact JSON (`["a.rs","b.rs"]`, `3`, `true`, `null`).
//!
//! A variable whose path is absent is an error, not an empty string. OpenAI reports such rows
//! with its `invalid_variable_error` flag rather than grading an empty string, and an error is
//! what lets a typo such as `{{item.labl}}` surface instead of scoring every row 0. Templates are
//! parsed up front ([`Template::parse`]), so a bad namespace or unclosed `{{` is a config error.

use serde_json::Value;

use crate::json_path::{self, Segment};
use crate::{Item, Sample};

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without a closing `}}`.
    #[error("unclosed `{{{{` at byte {at}")]
    Unclosed {
        /// Byte offset of the `{{`.
        at: usize,
    },
    /// A namespace other than `item` or `sample`.
    #[error(
        "unknown namespace `{namespace}` in `{{{{{variable}}}}}`: only `item` and `sample` are supported"
    )]
    UnknownNamespace {
        /// The namespace as written.
        namespace: String,
        /// The whole variable.
        variable: String,
    },
    /// A malformed path such as `{{item.}}` or `{{item.a[x]}}`.
    #[error("invalid variable `{{{{{variable}}}}}`: {reason}")]
    InvalidVariable {
        /// The variable as written.
        variable: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The row has no value at the variable's path.
    #[error("`{{{{{variable}}}}}` is not present in the row")]
    Missing {
        /// The variable as written.
        variable: String,
    },
}

/// The two namespaces a variable may read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Item,
    Sample,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Variable {
        source: String,
        namespace: Namespace,
        path: Vec<Segment>,
    },
}

/// A parsed template, ready to render against many rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a template, checking every variable's namespace and path syntax.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or(TemplateError::Unclosed { at: offset + open })?;
            parts.push(parse_variable(after[..close].trim())?);
            let consumed = open + 2 + close + 2;
            rest = &rest[consumed..];
            offset += consumed;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// Whether the template has no variables at all (it renders to itself).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Renders the template against one row.
    pub fn render(&self, sample: &Sample, item: &Item) -> Result<String, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable {
                    source,
                    namespace,
                    path,
                } => {
                    let root = match namespace {
                        Namespace::Item => item.as_json(),
                        Namespace::Sample => sample.as_json(),
                    };
                    let value =
                        json_path::follow(root, path).ok_or_else(|| TemplateError::Missing {
                            variable: source.clone(),
                        })?;
                    // An integer beyond 64 bits renders as its digits, as Python's int does.
                    let big_int = match (namespace, value) {
                        (Namespace::Item, Value::Number(n)) if n.is_f64() => {
                            n.as_f64().and_then(|f| item.big_int_digits(f))
                        }
                        _ => None,
                    };
                    match value {
                        Value::String(s) => out.push_str(s),
                        _ if big_int.is_some() => out.push_str(big_int.unwrap_or_default()),
                        other => out.push_str(&other.to_string()),
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Parses then renders `text` in one step.
pub fn render(text: &str, sample: &Sample, item: &Item) -> Result<String, TemplateError> {
    Template::parse(text)?.render(sample, item)
}

fn parse_variable(variable: &str) -> Result<Part, TemplateError> {
    let (head, tail) = match variable.find(['.', '[']) {
        Some(at) => (&variable[..at], &variable[at..]),
        None => (variable, ""),
    };
    let namespace = match head {
        "item" => Namespace::Item,
        "sample" => Namespace::Sample,
        other => {
            return Err(TemplateError::UnknownNamespace {
                namespace: other.to_owned(),
                variable: variable.to_owned(),
            });
        }
    };
    let path = match tail.strip_prefix('.') {
        _ if tail.is_empty() => Ok(Vec::new()),
        Some(path) => json_path::parse(path),
        // `item[0]`: an index straight after the namespace.
        None => json_path::parse(tail),
    }
    .map_err(|e| TemplateError::InvalidVariable {
        variable: variable.to_owned(),
        reason: e.reason,
    })?;
    Ok(Part::Variable {
        source: variable.to_owned(),
        namespace,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> (Sample, Item) {
        let sample = Sample::parse(
            r#"{"output_text": "{\"name\": \"Ada\", \"tags\": [\"x\", 2]}", "choices": []}"#,
        )
        .unwrap();
        let item = Item::parse(
            r#"{"label": "Hardware", "expected_files": ["a.rs", "b.rs"], "a": {"b": {"c": 7}}, "n": null}"#,
        )
        .unwrap();
        (sample, item)
    }

    #[test]
    fn strings_render_raw_and_other_values_as_compact_json() {
        let (s, i) = row();
        assert_eq!(render("{{item.label}}", &s, &i).unwrap(), "Hardware");
        assert_eq!(
            render("files: {{ item.expected_files }}", &s, &i).unwrap(),
            r#"files: ["a.rs","b.rs"]"#
        );
        assert_eq!(render("{{item.a.b}}", &s, &i).unwrap(), r#"{"c":7}"#);
        assert_eq!(render("{{item.a.b.c}}!", &s, &i).unwrap(), "7!");
        assert_eq!(render("{{item.n}}", &s, &i).unwrap(), "null");
    }

    #[test]
    fn sample_paths_reach_output_json_and_indexes() {
        let (s, i) = row();
        assert_eq!(
            render("{{sample.output_json.name}}", &s, &i).unwrap(),
            "Ada"
        );
        assert_eq!(
            render("{{ sample.output_json.tags[1] }}", &s, &i).unwrap(),
            "2"
        );
        assert_eq!(render("{{sample.choices}}", &s, &i).unwrap(), "[]");
        assert_eq!(
            render("{{  sample.output_text}}", &s, &i).unwrap(),
            s.output_text().unwrap()
        );
    }

    #[test]
    fn integers_beyond_64_bits_in_item_render_as_their_digits() {
        let sample = Sample::parse(r#"{"output_text":"x"}"#).unwrap();
        let item = Item::parse(
            r#"{"id":123456789012345678901234,"neg":-98765432109876543210,"max":18446744073709551615,"f":0.5,"big_f":1.5e300}"#,
        )
        .unwrap();
        let out = render(
            "{{item.id}} {{item.neg}} {{item.max}} {{item.f}} {{item.big_f}}",
            &sample,
            &item,
        )
        .unwrap();
        assert_eq!(
            out,
            "123456789012345678901234 -98765432109876543210 18446744073709551615 0.5 1.5e+300"
        );
    }

    #[test]
    fn literal_text_passes_through() {
        let (s, i) = row();
        let t = Template::parse("no variables } here {").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.render(&s, &i).unwrap(), "no variables } here {");
        assert_eq!(render("", &s, &i).unwrap(), "");
    }

    #[test]
    fn unknown_namespace_is_rejected_at_parse() {
        let err = Template::parse("{{ input.x }}").unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownNamespace { ref namespace, .. } if namespace == "input")
        );
        assert!(
            err.to_string().contains("only `item` and `sample`"),
            "{err}"
        );
        assert!(Template::parse("{{}}").is_err());
        assert!(Template::parse("{{items.label}}").is_err());
    }

    #[test]
    fn malformed_variables_and_unclosed_braces_are_rejected() {
        assert_eq!(
            Template::parse("ab {{item.x").unwrap_err(),
            TemplateError::Unclosed { at: 3 }
        );
        assert!(matches!(
            Template::parse("{{item.}}"),
            Err(TemplateError::InvalidVariable { .. })
        ));
        assert!(matches!(
            Template::parse("{{item.a[x]}}"),
            Err(TemplateError::InvalidVariable { .. })
        ));
    }

    #[test]
    fn missing_paths_are_errors_naming_the_variable() {
        let (s, i) = row();
        let err = render("{{item.labl}}", &s, &i).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Missing {
                variable: "item.labl".into()
            }
        );
        assert!(err.to_string().contains("item.labl"));
        assert!(render("{{item.expected_files[5]}}", &s, &i).is_err());
    }
}
