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
//! The model-grader seeds (`plan_completeness`, `code_quality`) come from the model-graders work
//! as `model_seed_definitions()` in this module; [`all_seed_definitions`] joins both lists.

use serde_json::{Value, json};

/// One seed: prompt id, grader name, definition JSON.
pub type SeedDefinition = (String, String, Value);

/// Every seeded definition: the pure ones and the model-grader ones.
pub fn all_seed_definitions() -> Vec<SeedDefinition> {
    #[allow(unused_mut)] // the model-grader list joins here
    let mut all = pure_seed_definitions();
    // The model-graders work adds: all.extend(model_seed_definitions());
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
}
