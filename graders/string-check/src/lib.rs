//! OpenAI's `string_check` grader as a Flywheel component.
//!
//! Config: the OpenAI grader JSON,
//! `{"type":"string_check","name":"…","input":"{{sample.output_text}}","reference":"{{item.label}}","operation":"eq"}`.
//! Both `input` and `reference` are templates rendered against the row. Operations, as OpenAI's
//! graders guide defines them (they are "contains" checks, not SQL patterns: `%` is literal):
//!
//! | operation | score 1 when |
//! |---|---|
//! | `eq` | input equals reference (case-sensitive) |
//! | `ne` | input differs from reference (case-sensitive) |
//! | `like` | input contains reference (case-sensitive) |
//! | `ilike` | input contains reference, ignoring case (Unicode lowercase) |
//!
//! The score is 1 or 0 and `passed` is `score == 1`. A template variable absent from the row is
//! an invalid-input error (see `grader_sdk::template`).

use grader_sdk::template::Template;
use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
use serde::Deserialize;

/// The OpenAI `string_check` grader JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `string_check` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The grader's display name; not used for grading.
    #[serde(default)]
    pub name: Option<String>,
    /// The id OpenAI gives a stored testing criterion; accepted so exported definitions
    /// import unchanged, not used for grading.
    #[serde(default)]
    pub id: Option<String>,
    /// Template for the text under test, usually `{{sample.output_text}}`.
    pub input: String,
    /// Template for the text to compare with, usually `{{item.<column>}}`.
    pub reference: String,
    /// How to compare.
    pub operation: Operation,
}

/// The four OpenAI operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Equal, case-sensitive.
    Eq,
    /// Not equal, case-sensitive.
    Ne,
    /// Contains, case-sensitive.
    Like,
    /// Contains, case-insensitive.
    Ilike,
}

impl Operation {
    /// Applies the operation.
    pub fn holds(self, input: &str, reference: &str) -> bool {
        match self {
            Operation::Eq => input == reference,
            Operation::Ne => input != reference,
            Operation::Like => input.contains(reference),
            Operation::Ilike => input.to_lowercase().contains(&reference.to_lowercase()),
        }
    }

    fn describe(self, held: bool) -> &'static str {
        match (self, held) {
            (Operation::Eq, true) => "input equals the reference",
            (Operation::Eq, false) => "input does not equal the reference",
            (Operation::Ne, true) => "input differs from the reference",
            (Operation::Ne, false) => "input equals the reference",
            (Operation::Like, true) => "input contains the reference",
            (Operation::Like, false) => "input does not contain the reference",
            (Operation::Ilike, true) => "input contains the reference, ignoring case",
            (Operation::Ilike, false) => "input does not contain the reference, even ignoring case",
        }
    }
}

/// The `string_check` grader.
pub struct StringCheck;

impl Grader for StringCheck {
    const DESCRIPTION: &'static str =
        "OpenAI string_check: 1 when input and reference satisfy eq, ne, like (contains) or ilike";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "string_check") {
            return Err(format!("`type`: expected \"string_check\", found {kind:?}"));
        }
        Template::parse(&config.input).map_err(|e| format!("`input`: {e}"))?;
        Template::parse(&config.reference).map_err(|e| format!("`reference`: {e}"))?;
        Ok(())
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let render = |field: &str, text: &str| {
            Template::parse(text)
                .and_then(|t| t.render(sample, item))
                .map_err(|e| GradeError::input(format!("`{field}`: {e}")))
        };
        let input = render("input", &config.input)?;
        let reference = render("reference", &config.reference)?;
        let held = config.operation.holds(&input, &reference);
        Ok(Grade::pass_fail(held).with_reasoning(config.operation.describe(held)))
    }
}

grader_sdk::export!(StringCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use grader_sdk::run;

    fn config(operation: &str) -> String {
        format!(
            r#"{{"type":"string_check","name":"t","input":"{{{{sample.output_text}}}}","reference":"{{{{item.label}}}}","operation":"{operation}"}}"#
        )
    }

    fn score(operation: &str, output: &str, label: &str) -> f64 {
        let sample = serde_json_string(output);
        let item = format!(r#"{{"label": {}}}"#, serde_json_string(label));
        let grade = run::grade::<StringCheck>(
            &config(operation),
            &format!(r#"{{"output_text": {sample}}}"#),
            &item,
        )
        .expect("grades");
        assert_eq!(grade.passed, Some(grade.score == 1.0));
        grade.score
    }

    fn serde_json_string(s: &str) -> String {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }

    #[test]
    fn eq_and_ne_are_case_sensitive_equality() {
        assert_eq!(score("eq", "Hardware", "Hardware"), 1.0);
        assert_eq!(score("eq", "hardware", "Hardware"), 0.0);
        assert_eq!(score("eq", "Hardware ", "Hardware"), 0.0);
        assert_eq!(score("ne", "hardware", "Hardware"), 1.0);
        assert_eq!(score("ne", "Hardware", "Hardware"), 0.0);
    }

    #[test]
    fn like_is_case_sensitive_contains_and_ilike_ignores_case() {
        assert_eq!(score("like", "It is Hardware.", "Hardware"), 1.0);
        assert_eq!(score("like", "It is hardware.", "Hardware"), 0.0);
        assert_eq!(score("ilike", "It is HARDWARE.", "hardware"), 1.0);
        assert_eq!(score("ilike", "ÉCOLE", "école"), 1.0);
        assert_eq!(score("ilike", "soft", "hardware"), 0.0);
        // Not SQL patterns: `%` is a literal character.
        assert_eq!(score("like", "Hardware", "H%"), 0.0);
        assert_eq!(score("like", "100% sure", "0% s"), 1.0);
        assert_eq!(score("like", "anything", ""), 1.0);
    }

    #[test]
    fn unknown_operation_is_an_invalid_config_naming_operation() {
        let err = run::validate_config::<StringCheck>(&config("contains")).unwrap_err();
        assert!(err.contains("`operation`"), "{err}");
        assert!(err.contains("contains"), "{err}");
        let err = run::validate_config::<StringCheck>(&config("neq")).unwrap_err();
        assert!(err.contains("`operation`"), "{err}");
    }

    #[test]
    fn bad_configs_name_their_field() {
        let err =
            run::validate_config::<StringCheck>(r#"{"input":"x","operation":"eq"}"#).unwrap_err();
        assert!(err.contains("reference"), "{err}");
        let err = run::validate_config::<StringCheck>(
            r#"{"type":"text_similarity","input":"x","reference":"y","operation":"eq"}"#,
        )
        .unwrap_err();
        assert!(err.contains("`type`"), "{err}");
        let err = run::validate_config::<StringCheck>(
            r#"{"input":"{{output.text}}","reference":"y","operation":"eq"}"#,
        )
        .unwrap_err();
        assert!(
            err.contains("`input`") && err.contains("namespace"),
            "{err}"
        );
        let err = run::validate_config::<StringCheck>(
            r#"{"input":"x","reference":"y","operation":"eq","pass_threshold":1}"#,
        )
        .unwrap_err();
        assert!(err.contains("pass_threshold"), "{err}");
        assert!(run::validate_config::<StringCheck>(&config("ilike")).is_ok());
        // A criterion exported from OpenAI carries an id; it imports unchanged.
        let exported = r#"{"id":"Match-c4fd","type":"string_check","name":"n","input":"{{ sample.output_text }}","reference":"{{ item.correct_label }}","operation":"eq"}"#;
        assert_eq!(run::validate_config::<StringCheck>(exported), Ok(()));
    }

    #[test]
    fn missing_item_column_is_invalid_input() {
        let err =
            run::grade::<StringCheck>(&config("eq"), r#"{"output_text":"x"}"#, r#"{"lable":"x"}"#)
                .unwrap_err();
        assert!(
            matches!(err, GradeError::InvalidInput(ref m) if m.contains("item.label")),
            "{err}"
        );
        let err = run::grade::<StringCheck>(&config("eq"), "not json", "{}").unwrap_err();
        assert!(matches!(err, GradeError::InvalidInput(_)));
    }

    #[test]
    fn non_string_values_compare_as_compact_json() {
        let grade = run::grade::<StringCheck>(
            &config("eq"),
            r#"{"output_text":"[1,2]"}"#,
            r#"{"label":[1, 2]}"#,
        )
        .unwrap();
        assert_eq!(grade.score, 1.0);
    }

    #[test]
    fn batch_grades_each_row() {
        let rows = [
            (r#"{"output_text":"a"}"#, r#"{"label":"a"}"#),
            (r#"{"output_text":"a"}"#, r#"{"label":"b"}"#),
            (r#"{"output_text":"a"}"#, r#"{}"#),
        ];
        let out = run::grade_batch::<StringCheck, _>(&config("eq"), &rows);
        assert_eq!(out[0].as_ref().map(|g| g.score), Ok(1.0));
        assert_eq!(out[1].as_ref().map(|g| g.score), Ok(0.0));
        assert!(out[2].is_err());
    }
}
