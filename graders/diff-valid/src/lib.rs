//! `diff-valid`: 1 when the output is a well-formed unified diff, 0 with the reason and line
//! when it is not.
//!
//! Config (every field optional): `{"type":"diff_valid","name":"…","input":"{{sample.output_text}}"}`.
//! `input` is a template (default `{{sample.output_text}}`). When the rendered text contains a
//! fenced block tagged `diff`, `patch` or `udiff`, or an untagged fence, the first such block is
//! parsed; otherwise the whole text is. Line numbers in the reasoning count from the start of
//! the rendered text, fence included, so they point at the line a reader sees.
//! Parsing rules: `grader_sdk::diff`.

use grader_sdk::template::Template;
use grader_sdk::{Grade, GradeError, Grader, Item, Sample, diff};
use serde::Deserialize;

/// The template graded when the config names none.
pub const DEFAULT_INPUT: &str = "{{sample.output_text}}";

/// The grader's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `diff_valid` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Display name; not used for grading.
    #[serde(default)]
    pub name: Option<String>,
    /// Template for the text to check.
    #[serde(default)]
    pub input: Option<String>,
}

/// The `diff-valid` grader.
pub struct DiffValid;

/// The diff inside `text` and the number of lines before it: the first fenced block tagged
/// `diff`/`patch`/`udiff` (or untagged), else the whole text.
pub fn extract(text: &str) -> (&str, usize) {
    let mut offset = 0;
    let mut open: Option<(usize, usize)> = None;
    // Inside a fence of another language, whose closing ``` must not open a diff block.
    let mut skipping = false;
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim();
        match open {
            None if skipping => skipping = trimmed != "```",
            None => {
                if let Some(tag) = trimmed.strip_prefix("```") {
                    let tag = tag.trim().to_ascii_lowercase();
                    if matches!(tag.as_str(), "" | "diff" | "patch" | "udiff") {
                        open = Some((offset + line.len(), line_no + 1));
                    } else {
                        skipping = true;
                    }
                }
            }
            Some((start, first_line)) => {
                if trimmed == "```" {
                    return (&text[start..offset], first_line);
                }
            }
        }
        offset += line.len();
    }
    match open {
        // An unclosed fence: take everything after it.
        Some((start, first_line)) => (&text[start..], first_line),
        None => (text, 0),
    }
}

impl Grader for DiffValid {
    const DESCRIPTION: &'static str = "1 when the output (or its ```diff block) parses as a unified diff; else 0 with the reason and line";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "diff_valid") {
            return Err(format!("`type`: expected \"diff_valid\", found {kind:?}"));
        }
        Template::parse(config.input.as_deref().unwrap_or(DEFAULT_INPUT))
            .map_err(|e| format!("`input`: {e}"))?;
        Ok(())
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let text = Template::parse(config.input.as_deref().unwrap_or(DEFAULT_INPUT))
            .and_then(|t| t.render(sample, item))
            .map_err(|e| GradeError::input(format!("`input`: {e}")))?;
        let (body, lines_before) = extract(&text);
        Ok(match diff::parse(body) {
            Ok(parsed) => {
                let hunks: usize = parsed.files.iter().map(|f| f.hunks.len()).sum();
                Grade::pass_fail(true)
                    .with_reasoning(format!(
                        "valid unified diff: {} file(s), {hunks} hunk(s), +{} -{}",
                        parsed.files.len(),
                        parsed.added(),
                        parsed.removed()
                    ))
                    .with_metric("files", parsed.files.len() as f64)
                    .with_metric("hunks", hunks as f64)
                    .with_metric("added", parsed.added() as f64)
                    .with_metric("removed", parsed.removed() as f64)
            }
            Err(e) => {
                let line = e.line + lines_before;
                Grade::pass_fail(false)
                    .with_reasoning(format!(
                        "not a valid unified diff: line {line}: {}",
                        e.reason
                    ))
                    .with_metric("error_line", line as f64)
            }
        })
    }
}

grader_sdk::export!(DiffValid);

#[cfg(test)]
mod tests {
    use super::*;
    use grader_sdk::run;

    fn grade_text(text: &str) -> Grade {
        let sample = serde_json_string(text);
        run::grade::<DiffValid>("{}", &format!(r#"{{"output_text": {sample}}}"#), "{}")
            .expect("grades")
    }

    fn serde_json_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    const GOOD: &str = "--- a/src/main.rs\n+++ b/src/main.rs\n@@ -1,2 +1,2 @@\n fn main() {\n-    old();\n+    new();\n";

    #[test]
    fn a_valid_diff_scores_one_with_counts() {
        let g = grade_text(GOOD);
        assert_eq!((g.score, g.passed), (1.0, Some(true)));
        assert_eq!(g.metric("files"), Some(1.0));
        assert_eq!(g.metric("added"), Some(1.0));
        assert_eq!(g.metric("removed"), Some(1.0));
    }

    #[test]
    fn a_fenced_diff_is_found_inside_prose() {
        let g = grade_text(&format!("Here is the fix:\n\n```diff\n{GOOD}```\nThanks."));
        assert_eq!(g.score, 1.0, "{:?}", g.reasoning);
        let g = grade_text(&format!("```python\nprint(1)\n```\n```\n{GOOD}```\n"));
        assert_eq!(g.score, 1.0, "{:?}", g.reasoning);
    }

    #[test]
    fn an_invalid_diff_scores_zero_with_reason_and_line_of_the_output() {
        let broken = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n";
        let g = grade_text(broken);
        assert_eq!((g.score, g.passed), (0.0, Some(false)));
        let reasoning = g.reasoning.unwrap();
        assert!(
            reasoning.contains("line 3") && reasoning.contains("ends early"),
            "{reasoning}"
        );
        // Inside a fence, the line counts from the start of the output.
        let g = grade_text(&format!("Intro\n```diff\n{broken}```"));
        assert_eq!(g.metric("error_line"), Some(5.0), "{:?}", g.reasoning);
    }

    #[test]
    fn prose_and_empty_output_are_not_diffs() {
        for text in ["", "I could not produce a diff.", "```diff\n```"] {
            let g = grade_text(text);
            assert_eq!(g.score, 0.0, "{text:?}");
            assert!(g.reasoning.unwrap().contains("no file header"));
        }
    }

    #[test]
    fn bad_configs_and_inputs_are_errors() {
        let err = run::validate_config::<DiffValid>(r#"{"type":"string_check"}"#).unwrap_err();
        assert!(err.contains("`type`"), "{err}");
        let err = run::validate_config::<DiffValid>(r#"{"input":"{{foo.bar}}"}"#).unwrap_err();
        assert!(err.contains("`input`"), "{err}");
        let err = run::validate_config::<DiffValid>(r#"{"inptu":"x"}"#).unwrap_err();
        assert!(err.contains("inptu"), "{err}");
        let err = run::grade::<DiffValid>("{}", r#"{"output_json": {}}"#, "{}").unwrap_err();
        assert!(
            matches!(err, GradeError::InvalidInput(ref m) if m.contains("sample.output_text")),
            "{err}"
        );
        let g = run::grade::<DiffValid>(
            r#"{"input":"{{item.patch}}"}"#,
            r#""x""#,
            &format!(r#"{{"patch":{}}}"#, serde_json_string(GOOD)),
        )
        .unwrap();
        assert_eq!(g.score, 1.0);
    }
}
