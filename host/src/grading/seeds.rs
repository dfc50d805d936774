//! The grader definitions seeded per agent on first start (DESIGN.md, "Seeded grader
//! definitions per agent"), as `(prompt_id, name, definition JSON)`.
//!
//! [`pure_seed_definitions`] holds the ones that run on pure components and need no model:
//!
//! | prompt | name | definition | row shape it expects |
//! |---|---|---|---|
//! | planner | `files_match` | `files-match` component | `sample.output_json.files`: the planned paths (or a list in `output_text`); `item.expected_files`: the files the merged change touched |
//! | coder | `diff_valid` | `diff-valid` component | `sample.output_text`: the coder's answer holding a unified diff |
//! | fixer | `same_error_repeated` | `string_check` `ne` | `sample.output_json.failure_signature`: the signature of the test failure after the fixer's patch (empty when the tests pass); `item.previous_failure_signature`: the signature of the failure the fixer was asked to fix |
//! | reviewer | `verdict_agrees_with_merge` | `string_check` `eq` | `sample.output_json.verdict`: `approve` or `request_changes`; `item.expected_verdict`: derived by AutoDev from `pr_merged` |
//!
//! `same_error_repeated` scores 1 (passes) when the failure after the fix differs from the one
//! before, so a fixer that keeps producing the same error scores 0: the failure mode the name
//! describes is the failing case.
//!
//! `verdict_agrees_with_merge`: AutoDev writes `expected_verdict = "approve"` when the pull
//! request was merged (`pr_merged = true`) and `"request_changes"` when it was closed unmerged
//! (`pr_merged = false`); rows whose PR is still open have no outcome and are not graded. A 0
//! with verdict `approve` is a false positive (approved, not merged), a 0 with
//! `request_changes` a false negative.
//!
//! [`model_seed_definitions`] holds the model-grader ones, whose OpenAI JSON lives in `seeds/`
//! beside this module (embedded in the binary): `code_quality` (coder; label_model judging the
//! diff against `item.task_title` / `item.task_description`) and `plan_completeness` (planner;
//! score_model 1–5, pass at 3.5). [`all_seed_definitions`] joins both lists.

use serde_json::{Value, json};

/// One seed: prompt id, grader name, definition JSON.
pub type SeedDefinition = (String, String, Value);

/// Every seeded definition: the pure ones and the model-grader ones.
pub fn all_seed_definitions() -> Vec<SeedDefinition> {
    let mut all = pure_seed_definitions();
    all.extend(model_seed_definitions());
    all
}

/// The seeded definitions that run on pure components (no model, no network).
pub fn pure_seed_definitions() -> Vec<SeedDefinition> {
    vec![
        seed(
            "planner",
            "files_match",
            json!({
                "type": "wasm",
                "name": "files_match",
                "component": "files-match",
                "config": {
                    "type": "files_match",
                    "name": "files_match",
                    "planned_path": "output_json.files",
                    "expected_path": "expected_files",
                    "text_fallback": true,
                    "pass_threshold": 0.8
                }
            }),
        ),
        seed(
            "coder",
            "diff_valid",
            json!({
                "type": "wasm",
                "name": "diff_valid",
                "component": "diff-valid",
                "config": {
                    "type": "diff_valid",
                    "name": "diff_valid",
                    "input": "{{sample.output_text}}"
                }
            }),
        ),
        seed(
            "fixer",
            "same_error_repeated",
            json!({
                "type": "string_check",
                "name": "same_error_repeated",
                "input": "{{sample.output_json.failure_signature}}",
                "reference": "{{item.previous_failure_signature}}",
                "operation": "ne"
            }),
        ),
        seed(
            "reviewer",
            "verdict_agrees_with_merge",
            json!({
                "type": "string_check",
                "name": "verdict_agrees_with_merge",
                "input": "{{sample.output_json.verdict}}",
                "reference": "{{item.expected_verdict}}",
                "operation": "eq"
            }),
        ),
    ]
}

/// `code_quality` (coder): a label_model judging the coder's diff against the task.
const CODE_QUALITY: &str = include_str!("seeds/code_quality.json");
/// `plan_completeness` (planner): a score_model rating the planner's plan 1–5.
const PLAN_COMPLETENESS: &str = include_str!("seeds/plan_completeness.json");

/// The seeded model-grader definitions as (prompt id, definition name, OpenAI grader JSON).
///
/// The files are part of the binary and checked by this module's tests, so a parse failure here
/// is a build defect; it is reported by leaving the definition out and logging, never by a panic.
pub fn model_seed_definitions() -> Vec<SeedDefinition> {
    [
        ("coder", "code_quality", CODE_QUALITY),
        ("planner", "plan_completeness", PLAN_COMPLETENESS),
    ]
    .into_iter()
    .filter_map(|(prompt, name, text)| match serde_json::from_str(text) {
        Ok(value) => Some(seed(prompt, name, value)),
        Err(error) => {
            tracing::error!(%error, definition = name, "a seeded grader definition is not valid JSON");
            None
        }
    })
    .collect()
}

fn seed(prompt_id: &str, name: &str, definition: Value) -> SeedDefinition {
    (prompt_id.to_owned(), name.to_owned(), definition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::Definition;

    #[test]
    fn every_pure_seed_parses_and_targets_a_seeded_prompt() {
        let prompts: Vec<String> = crate::prompts::seeds::default_seeds()
            .into_iter()
            .map(|s| s.prompt.id)
            .collect();
        let seeds = pure_seed_definitions();
        assert_eq!(seeds.len(), 4);
        for (prompt_id, name, definition) in &seeds {
            assert!(prompts.contains(prompt_id), "{prompt_id} is not seeded");
            Definition::parse(definition)
                .unwrap_or_else(|e| panic!("seed {prompt_id}/{name} does not parse: {e}"));
            assert_eq!(definition["name"], name.as_str());
        }
        let agents: Vec<&str> = seeds.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(agents, ["planner", "coder", "fixer", "reviewer"]);
    }

    #[test]
    fn both_model_seeds_parse_and_map_onto_the_model_graders() {
        let seeds = model_seed_definitions();
        assert_eq!(seeds.len(), 2, "a seed file failed to parse");
        for (prompt, name, value) in &seeds {
            assert_eq!(value["name"], name.as_str());
            let definition = Definition::parse(value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let Definition::Component { component, .. } = definition else {
                panic!("{name} is not a single component");
            };
            let expected = match name.as_str() {
                "code_quality" => {
                    assert_eq!(prompt, "coder");
                    assert_eq!(
                        value["labels"],
                        serde_json::json!(["excellent", "good", "needs_improvement", "poor"])
                    );
                    assert_eq!(
                        value["passing_labels"],
                        serde_json::json!(["excellent", "good"])
                    );
                    "label-model"
                }
                "plan_completeness" => {
                    assert_eq!(prompt, "planner");
                    assert_eq!(value["range"], serde_json::json!([1, 5]));
                    assert_eq!(value["pass_threshold"], 3.5);
                    "score-model"
                }
                other => panic!("unexpected seed {other}"),
            };
            assert_eq!(component, expected);
        }
        assert_eq!(
            all_seed_definitions().len(),
            pure_seed_definitions().len() + 2
        );
    }
}
