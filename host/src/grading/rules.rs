//! The documented rules that annotate a run from what is known about it: its outcome and its
//! automatic graders' verdicts. They only ever say `bad`, with the failure mode that explains
//! it when one applies; a run nothing condemns is left for a person.
//!
//! | when | failure mode |
//! |---|---|
//! | `diff_valid` failed and its reasoning mentions syntax (`syntax`, `parse`) | `syntax_error` |
//! | `diff_valid` failed otherwise | `incomplete_diff` |
//! | `same_error_repeated` failed (the fixer's failure signature equals the previous attempt's) | `same_error_repeated` |
//! | `verdict_agrees_with_merge` failed and the PR was not merged (the reviewer approved it) | `false_positive` |
//! | `verdict_agrees_with_merge` failed and the PR was merged (the reviewer blocked it) | `false_negative` |
//! | `files_match` failed (the plan's files F1 below its threshold) | `wrong_files` |
//! | the tests failed, and none of the above | none (rating `bad` only) |
//!
//! The first row that applies wins. A rule's annotation never replaces a person's, and a
//! person's replaces a rule's (the store enforces both); an outcome arriving later grades the
//! run again and so re-runs the rules.

use crate::store::{GradableRun, GraderVerdict};

/// What the rules conclude about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVerdict {
    /// The rule's name, recorded as the annotation's actor.
    pub rule: &'static str,
    /// The failure mode, when one explains the failure.
    pub failure_mode: Option<&'static str>,
    /// Why, for people reading the annotation.
    pub feedback: String,
}

/// The verdict named `name` among `verdicts`, when it failed.
fn failed<'a>(verdicts: &'a [GraderVerdict], name: &str) -> Option<&'a GraderVerdict> {
    verdicts
        .iter()
        .find(|verdict| verdict.grader == name && verdict.passed == Some(false))
}

/// Applies the rules (see the module table) to a run and the verdicts of its graders.
pub fn evaluate(run: &GradableRun, verdicts: &[GraderVerdict]) -> Option<RuleVerdict> {
    let reason = |verdict: &GraderVerdict| verdict.reasoning.clone().unwrap_or_default();
    if let Some(diff) = failed(verdicts, "diff_valid") {
        let reasoning = reason(diff);
        let lower = reasoning.to_lowercase();
        let syntax = lower.contains("syntax") || lower.contains("parse");
        return Some(RuleVerdict {
            rule: "rule:diff_valid",
            failure_mode: Some(if syntax {
                "syntax_error"
            } else {
                "incomplete_diff"
            }),
            feedback: format!("diff_valid failed: {reasoning}"),
        });
    }
    if let Some(repeated) = failed(verdicts, "same_error_repeated") {
        return Some(RuleVerdict {
            rule: "rule:same_error_repeated",
            failure_mode: Some("same_error_repeated"),
            feedback: format!(
                "the failure signature equals the previous attempt's: {}",
                reason(repeated)
            ),
        });
    }
    if failed(verdicts, "verdict_agrees_with_merge").is_some()
        && let Some(merged) = run.pr_merged
    {
        return Some(RuleVerdict {
            rule: "rule:verdict_agrees_with_merge",
            failure_mode: Some(if merged {
                "false_negative"
            } else {
                "false_positive"
            }),
            feedback: if merged {
                "the reviewer blocked a change that was merged".to_owned()
            } else {
                "the reviewer approved a change that was not merged".to_owned()
            },
        });
    }
    if let Some(files) = failed(verdicts, "files_match") {
        return Some(RuleVerdict {
            rule: "rule:files_match",
            failure_mode: Some("wrong_files"),
            feedback: format!("the planned files do not match: {}", reason(files)),
        });
    }
    if run.tests_passed == Some(false) {
        return Some(RuleVerdict {
            rule: "rule:tests_failed",
            failure_mode: None,
            feedback: "the tests failed".to_owned(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn run() -> GradableRun {
        GradableRun {
            id: Uuid::nil(),
            row_index: 0,
            prompt_id: "coder".into(),
            version: 1,
            task_id: "T".into(),
            attempt: 1,
            input: json!({}),
            output: None,
            model: None,
            tests_passed: None,
            pr_merged: None,
            expected_files: None,
            failure_signature: None,
            previous_output: None,
            previous_failure_signature: None,
            annotation_source: None,
            outcome_at: None,
        }
    }

    fn verdict(grader: &str, passed: bool, reasoning: &str) -> GraderVerdict {
        GraderVerdict {
            grader: grader.into(),
            grader_id: None,
            score: Some(f64::from(u8::from(passed))),
            passed: Some(passed),
            label: None,
            reasoning: Some(reasoning.into()),
            error: None,
            error_message: None,
            prompt_tokens: None,
            completion_tokens: None,
            duration_us: None,
        }
    }

    fn mode(run: &GradableRun, verdicts: &[GraderVerdict]) -> Option<Option<&'static str>> {
        evaluate(run, verdicts).map(|v| v.failure_mode)
    }

    #[test]
    fn each_rule_names_its_failure_mode() {
        let r = run();
        assert_eq!(
            mode(&r, &[verdict("diff_valid", false, "hunk 2 is truncated")]),
            Some(Some("incomplete_diff"))
        );
        assert_eq!(
            mode(
                &r,
                &[verdict("diff_valid", false, "Syntax error at line 3")]
            ),
            Some(Some("syntax_error"))
        );
        assert_eq!(
            mode(
                &r,
                &[verdict("same_error_repeated", false, "E0308 == E0308")]
            ),
            Some(Some("same_error_repeated"))
        );
        assert_eq!(
            mode(&r, &[verdict("files_match", false, "F1 0.40 < 0.80")]),
            Some(Some("wrong_files"))
        );
        let mut merged = run();
        merged.pr_merged = Some(true);
        let disagree = [verdict("verdict_agrees_with_merge", false, "")];
        assert_eq!(mode(&merged, &disagree), Some(Some("false_negative")));
        merged.pr_merged = Some(false);
        assert_eq!(mode(&merged, &disagree), Some(Some("false_positive")));
        // Without the merge outcome the disagreement cannot be told apart.
        assert_eq!(mode(&r, &disagree), None);
    }

    #[test]
    fn failed_tests_alone_say_bad_without_a_mode_and_passing_runs_say_nothing() {
        let mut failing = run();
        failing.tests_passed = Some(false);
        assert_eq!(mode(&failing, &[]), Some(None));
        assert_eq!(
            mode(&failing, &[verdict("diff_valid", false, "truncated")]),
            Some(Some("incomplete_diff")),
            "a rule with a mode wins over the bare test failure"
        );
        let mut passing = run();
        passing.tests_passed = Some(true);
        assert_eq!(mode(&passing, &[verdict("diff_valid", true, "ok")]), None);
        assert_eq!(evaluate(&run(), &[]), None);
    }
}
