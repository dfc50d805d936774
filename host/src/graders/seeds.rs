//! Seeded grader definitions: the OpenAI grader JSON of the definitions every install starts
//! with, per agent prompt (DESIGN.md, "Seeded grader definitions per agent"). The JSON files live
//! in `seeds/` beside this module and are embedded in the binary.
//!
//! The store seeds them on first start; this module only says what they are.

use serde_json::Value;

/// `code_quality` (coder): a label_model judging the coder's diff against the task.
const CODE_QUALITY: &str = include_str!("seeds/code_quality.json");
/// `plan_completeness` (planner): a score_model rating the planner's plan 1–5.
const PLAN_COMPLETENESS: &str = include_str!("seeds/plan_completeness.json");

/// The seeded model-grader definitions as (prompt id, definition name, OpenAI grader JSON).
///
/// The files are part of the binary and checked by this module's tests, so a parse failure here
/// is a build defect; it is reported by leaving the definition out and logging, never by a panic.
pub fn model_seed_definitions() -> Vec<(String, String, Value)> {
    [
        ("coder", "code_quality", CODE_QUALITY),
        ("planner", "plan_completeness", PLAN_COMPLETENESS),
    ]
    .into_iter()
    .filter_map(|(prompt, name, text)| match serde_json::from_str(text) {
        Ok(value) => Some((prompt.to_string(), name.to_string(), value)),
        Err(error) => {
            tracing::error!(%error, definition = name, "a seeded grader definition is not valid JSON");
            None
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::definition::Definition;

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
    }
}
