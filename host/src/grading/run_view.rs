//! What a grader sees of a recorded run: the `(sample, item)` JSON texts built from a
//! [`GradableRun`], in the shapes OpenAI's graders and the seeded definitions read.
//!
//! - `sample`: `output_text` (the agent's output, `""` when none), `output_json` (the output
//!   parsed, when it is JSON) and `model`.
//! - `item`: the run's template variables, then what is known about the run, which wins over a
//!   variable of the same name: `task_id`, `attempt`, `tests_passed`, `pr_merged`,
//!   `expected_files`, `failure_signature` (the outcome's), `previous_failure_signature` (the
//!   previous attempt of the task: the `failure_signature` of its JSON output, else its
//!   outcome's) and `expected_verdict` (`approve` when the PR was merged, `request_changes`
//!   when it was not). Unknown values are absent, so `{{item.x}}` of an unknown `x` renders
//!   empty rather than `null`.

use serde_json::{Map, Value, json};

use crate::store::GradableRun;

/// The `(sample, item)` JSON texts of a run.
pub fn sample_and_item(run: &GradableRun) -> (String, String) {
    (sample(run).to_string(), item(run).to_string())
}

fn parsed(output: Option<&str>) -> Option<Value> {
    output.and_then(|text| serde_json::from_str::<Value>(text).ok())
}

fn sample(run: &GradableRun) -> Value {
    let mut sample = Map::new();
    sample.insert(
        "output_text".into(),
        Value::String(run.output.clone().unwrap_or_default()),
    );
    if let Some(json) = parsed(run.output.as_deref()) {
        sample.insert("output_json".into(), json);
    }
    if let Some(model) = &run.model {
        sample.insert("model".into(), Value::String(model.clone()));
    }
    Value::Object(sample)
}

fn item(run: &GradableRun) -> Value {
    let mut item = match &run.input {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut known = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            item.insert(key.to_owned(), value);
        }
    };
    known("task_id", Some(json!(run.task_id)));
    known("attempt", Some(json!(run.attempt)));
    known("tests_passed", run.tests_passed.map(Value::Bool));
    known("pr_merged", run.pr_merged.map(Value::Bool));
    known("expected_files", run.expected_files.clone());
    known(
        "failure_signature",
        run.failure_signature.clone().map(Value::String),
    );
    known("previous_failure_signature", previous_signature(run));
    known(
        "expected_verdict",
        run.pr_merged
            .map(|merged| json!(if merged { "approve" } else { "request_changes" })),
    );
    Value::Object(item)
}

/// The previous attempt's failure signature: the one its output reports, else its outcome's.
fn previous_signature(run: &GradableRun) -> Option<Value> {
    parsed(run.previous_output.as_deref())
        .and_then(|json| json.get("failure_signature").cloned())
        .filter(|signature| !signature.is_null())
        .or_else(|| run.previous_failure_signature.clone().map(Value::String))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn run() -> GradableRun {
        GradableRun {
            id: Uuid::nil(),
            row_index: 0,
            prompt_id: "fixer".into(),
            version: 1,
            task_id: "T-1".into(),
            attempt: 2,
            input: json!({"task_title": "Fix it", "attempt": "shadowed"}),
            output: Some(r#"{"failure_signature": "E0308", "verdict": "approve"}"#.into()),
            model: Some("gpt-x".into()),
            tests_passed: Some(false),
            pr_merged: Some(true),
            expected_files: Some(json!(["src/a.rs"])),
            failure_signature: Some("E0599".into()),
            previous_output: Some(r#"{"failure_signature": "E0308"}"#.into()),
            previous_failure_signature: Some("outcome-sig".into()),
            annotation_source: None,
            outcome_at: None,
        }
    }

    #[test]
    fn sample_carries_text_json_and_model() {
        let (sample, _) = sample_and_item(&run());
        let sample: Value = serde_json::from_str(&sample).unwrap();
        assert_eq!(sample["output_json"]["verdict"], "approve");
        assert_eq!(sample["model"], "gpt-x");
        assert!(sample["output_text"].as_str().unwrap().contains("E0308"));

        let mut plain = run();
        plain.output = Some("not json".into());
        let (sample, _) = sample_and_item(&plain);
        let sample: Value = serde_json::from_str(&sample).unwrap();
        assert_eq!(sample, json!({"output_text": "not json", "model": "gpt-x"}));
    }

    #[test]
    fn item_has_variables_then_what_is_known_which_wins() {
        let (_, item) = sample_and_item(&run());
        let item: Value = serde_json::from_str(&item).unwrap();
        assert_eq!(item["task_title"], "Fix it");
        assert_eq!(item["attempt"], 2, "the run's attempt wins over a variable");
        assert_eq!(item["tests_passed"], false);
        assert_eq!(item["expected_files"], json!(["src/a.rs"]));
        assert_eq!(item["failure_signature"], "E0599");
        assert_eq!(item["previous_failure_signature"], "E0308");
        assert_eq!(item["expected_verdict"], "approve");
    }

    #[test]
    fn unknown_values_are_absent_and_the_outcome_signature_is_the_fallback() {
        let mut bare = run();
        bare.tests_passed = None;
        bare.pr_merged = None;
        bare.expected_files = None;
        bare.previous_output = Some("plain text".into());
        let (_, item) = sample_and_item(&bare);
        let item: Value = serde_json::from_str(&item).unwrap();
        for absent in [
            "tests_passed",
            "pr_merged",
            "expected_files",
            "expected_verdict",
        ] {
            assert!(item.get(absent).is_none(), "{absent} present");
        }
        assert_eq!(item["previous_failure_signature"], "outcome-sig");
        bare.previous_output = None;
        bare.previous_failure_signature = None;
        let (_, item) = sample_and_item(&bare);
        let item: Value = serde_json::from_str(&item).unwrap();
        assert!(item.get("previous_failure_signature").is_none());
    }
}
