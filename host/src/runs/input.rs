//! The shapes an agent sends ([`RunInput`], [`OutcomeInput`]) and their parsing into the
//! store's [`NewRun`] and [`NewOutcome`], one item at a time so a refusal names the item.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    BatchError, ItemKind, MAX_ATTEMPT, MAX_BATCH, MAX_EXPECTED_FILES, MAX_FAILURE_SIGNATURE_BYTES,
    MAX_FILE_PATH_CHARS, MAX_INPUT_BYTES, MAX_MODEL_CHARS, MAX_OUTPUT_BYTES, MAX_TASK_ID_CHARS,
    field_path,
};
use crate::store::{NewOutcome, NewRun};

/// One run as an agent records it (camelCase, unknown fields refused).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunInput {
    /// The prompt, such as `planner`.
    pub prompt_id: String,
    /// The version used [default: the version resolve hands the task, today the active one].
    #[serde(default)]
    pub version: Option<i64>,
    /// The task, 1 to 200 characters.
    pub task_id: String,
    /// The attempt within the task, 1 to 1,000,000 [default: 1]; (promptId, taskId, attempt)
    /// identifies the run, so a retried post records nothing twice.
    #[serde(default)]
    pub attempt: Option<i64>,
    /// The root task, when it differs from the task (1 to 200 characters).
    #[serde(default)]
    pub root_task_id: Option<String>,
    /// The template variables the prompt was rendered with: a JSON object of at most 256 KiB.
    #[schema(value_type = Object)]
    pub input: serde_json::Map<String, Value>,
    /// The model's answer, at most 1 MiB.
    pub output: String,
    /// The model, at most 200 characters.
    #[serde(default)]
    pub model: Option<String>,
    /// Prompt tokens, ≥ 0.
    #[serde(default)]
    pub tokens_in: Option<i64>,
    /// Completion tokens, ≥ 0.
    #[serde(default)]
    pub tokens_out: Option<i64>,
    /// Wall time of the model call in milliseconds, ≥ 0.
    #[serde(default)]
    pub latency_ms: Option<i64>,
}

/// A batch of runs: `{"runs": [...]}` (1 to 1,000).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunsBody {
    /// The runs, recorded all or nothing.
    #[schema(value_type = Vec<RunInput>)]
    pub runs: Vec<Value>,
}

/// The outcome of a task, reported later (camelCase, unknown fields refused). A field absent
/// or null keeps the value an earlier report gave.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutcomeInput {
    /// The task, 1 to 200 characters.
    pub task_id: String,
    /// Whether the task's tests passed.
    #[serde(default)]
    pub tests_passed: Option<bool>,
    /// Whether the task's pull request was merged.
    #[serde(default)]
    pub pr_merged: Option<bool>,
    /// The files the task should have changed (at most 10,000 paths of 1 to 1,024 characters).
    #[serde(default)]
    pub expected_files: Option<Vec<String>>,
    /// The failure's signature, at most 64 KiB.
    #[serde(default)]
    pub failure_signature: Option<String>,
}

/// `{"outcomes": [...]}` (1 to 1,000).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomesBody {
    /// The outcomes, applied in order.
    #[schema(value_type = Vec<OutcomeInput>)]
    pub outcomes: Vec<Value>,
}

/// Parses a body of `POST /api/runs`: one run, or `{"runs": [...]}`. Answers the runs and
/// whether the body was a batch (which decides how fields are named).
pub fn parse_runs(body: Value) -> Result<(Vec<NewRun>, bool), BatchError> {
    let is_batch = body.as_object().is_some_and(|o| o.contains_key("runs"));
    if !is_batch {
        if !body.is_object() {
            return Err(BatchError::Body(
                "expected a run object or {\"runs\": [...]}".to_owned(),
            ));
        }
        return Ok((vec![parse_run(body, None)?], false));
    }
    let batch: RunsBody =
        serde_json::from_value(body).map_err(|e| BatchError::Body(e.to_string()))?;
    check_size("runs", batch.runs.len())?;
    let runs = batch
        .runs
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_run(item, Some(index)))
        .collect::<Result<_, _>>()?;
    Ok((runs, true))
}

/// Parses a body of `PATCH /api/runs/outcomes`.
pub fn parse_outcomes(body: Value) -> Result<Vec<NewOutcome>, BatchError> {
    if !body.is_object() {
        return Err(BatchError::Body(
            "expected {\"outcomes\": [...]}".to_owned(),
        ));
    }
    let batch: OutcomesBody =
        serde_json::from_value(body).map_err(|e| BatchError::Body(e.to_string()))?;
    check_size("outcomes", batch.outcomes.len())?;
    batch
        .outcomes
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_outcome(item, index))
        .collect()
}

fn check_size(field: &'static str, len: usize) -> Result<(), BatchError> {
    if (1..=MAX_BATCH).contains(&len) {
        Ok(())
    } else {
        Err(BatchError::Size {
            field,
            message: format!("`{field}` must hold 1 to {MAX_BATCH} items; it holds {len}"),
        })
    }
}

/// One item's refusal, as [`BatchError::Item`].
struct Refusal<'a> {
    kind: ItemKind,
    batch_field: &'a str,
    index: Option<usize>,
}

impl Refusal<'_> {
    fn at(&self, field: &str, message: impl Into<String>) -> BatchError {
        BatchError::Item {
            kind: self.kind,
            index: self.index,
            field: field_path(self.batch_field, self.index, field),
            message: message.into(),
        }
    }

    /// Deserializes the item, naming the field a type error is in.
    fn decode<T: DeserializeOwned>(&self, item: Value) -> Result<T, BatchError> {
        serde_path_to_error::deserialize(item).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            // serde names a missing or unknown field only in its message.
            let named = ["unknown field `", "missing field `"]
                .iter()
                .find_map(|prefix| message.strip_prefix(prefix)?.split('`').next());
            let field = match (path.as_str(), named) {
                (".", Some(name)) => name.to_owned(),
                (".", None) => String::new(),
                (path, _) => path.to_owned(),
            };
            self.at(&field, message)
        })
    }
}

fn parse_run(item: Value, index: Option<usize>) -> Result<NewRun, BatchError> {
    let refuse = Refusal {
        kind: ItemKind::Run,
        batch_field: "runs",
        index,
    };
    if !item.is_object() {
        return Err(refuse.at("", "a run must be a JSON object"));
    }
    let run: RunInput = refuse.decode(item)?;
    check_task_id(&refuse, "taskId", &run.task_id)?;
    if let Some(root) = &run.root_task_id {
        check_task_id(&refuse, "rootTaskId", root)?;
    }
    if let Some(version) = run.version
        && version < 1
    {
        return Err(refuse.at("version", "a version number is 1 or more"));
    }
    let attempt = run.attempt.unwrap_or(1);
    if !(1..=MAX_ATTEMPT).contains(&attempt) {
        return Err(refuse.at("attempt", format!("an attempt is 1 to {MAX_ATTEMPT}")));
    }
    if run.output.len() > MAX_OUTPUT_BYTES {
        return Err(refuse.at(
            "output",
            format!(
                "an output is at most {MAX_OUTPUT_BYTES} bytes; this one has {}",
                run.output.len()
            ),
        ));
    }
    let input_bytes = serde_json::to_vec(&run.input).map_or(usize::MAX, |b| b.len());
    if input_bytes > MAX_INPUT_BYTES {
        return Err(refuse.at(
            "input",
            format!("an input is at most {MAX_INPUT_BYTES} bytes of JSON"),
        ));
    }
    if let Some(model) = &run.model
        && (model.is_empty() || model.chars().count() > MAX_MODEL_CHARS)
    {
        return Err(refuse.at(
            "model",
            format!("a model name is 1 to {MAX_MODEL_CHARS} characters"),
        ));
    }
    for (field, value) in [
        ("tokensIn", run.tokens_in),
        ("tokensOut", run.tokens_out),
        ("latencyMs", run.latency_ms),
    ] {
        if value.is_some_and(|v| v < 0) {
            return Err(refuse.at(field, "must be 0 or more"));
        }
    }
    Ok(NewRun {
        prompt_id: run.prompt_id,
        version: run.version,
        task_id: run.task_id,
        attempt,
        root_task_id: run.root_task_id,
        input: run.input,
        output: run.output,
        model: run.model,
        tokens_in: run.tokens_in,
        tokens_out: run.tokens_out,
        latency_ms: run.latency_ms,
    })
}

fn parse_outcome(item: Value, index: usize) -> Result<NewOutcome, BatchError> {
    let refuse = Refusal {
        kind: ItemKind::Outcome,
        batch_field: "outcomes",
        index: Some(index),
    };
    if !item.is_object() {
        return Err(refuse.at("", "an outcome must be a JSON object"));
    }
    let outcome: OutcomeInput = refuse.decode(item)?;
    check_task_id(&refuse, "taskId", &outcome.task_id)?;
    if let Some(files) = &outcome.expected_files {
        if files.len() > MAX_EXPECTED_FILES {
            return Err(refuse.at(
                "expectedFiles",
                format!("at most {MAX_EXPECTED_FILES} files"),
            ));
        }
        if let Some(i) = files
            .iter()
            .position(|f| f.is_empty() || f.chars().count() > MAX_FILE_PATH_CHARS)
        {
            return Err(refuse.at(
                &format!("expectedFiles[{i}]"),
                format!("a file path is 1 to {MAX_FILE_PATH_CHARS} characters"),
            ));
        }
    }
    if outcome
        .failure_signature
        .as_ref()
        .is_some_and(|s| s.len() > MAX_FAILURE_SIGNATURE_BYTES)
    {
        return Err(refuse.at(
            "failureSignature",
            format!("a failure signature is at most {MAX_FAILURE_SIGNATURE_BYTES} bytes"),
        ));
    }
    if outcome.tests_passed.is_none()
        && outcome.pr_merged.is_none()
        && outcome.expected_files.is_none()
        && outcome.failure_signature.is_none()
    {
        return Err(refuse.at(
            "",
            "an outcome reports at least one of testsPassed, prMerged, expectedFiles, failureSignature",
        ));
    }
    Ok(NewOutcome {
        task_id: outcome.task_id,
        tests_passed: outcome.tests_passed,
        pr_merged: outcome.pr_merged,
        expected_files: outcome.expected_files,
        failure_signature: outcome.failure_signature,
    })
}

fn check_task_id(refuse: &Refusal<'_>, field: &str, value: &str) -> Result<(), BatchError> {
    let chars = value.chars().count();
    if (1..=MAX_TASK_ID_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(refuse.at(
            field,
            format!("a task id is 1 to {MAX_TASK_ID_CHARS} characters"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item_error(result: Result<impl std::fmt::Debug, BatchError>) -> (Option<usize>, String) {
        match result {
            Err(BatchError::Item { index, field, .. }) => (index, field),
            other => panic!("expected an item error, got {other:?}"),
        }
    }

    fn good() -> Value {
        json!({"promptId": "planner", "taskId": "t1", "input": {"task": "x"}, "output": "ok"})
    }

    #[test]
    fn a_single_run_and_a_batch_parse_with_defaults() {
        let (runs, batch) = parse_runs(good()).unwrap();
        assert!(!batch);
        assert_eq!(runs[0].attempt, 1);
        assert_eq!(runs[0].version, None);
        let (runs, batch) = parse_runs(json!({"runs": [good(), good()]})).unwrap();
        assert!(batch);
        assert_eq!(runs.len(), 2);
    }

    #[test]
    fn refusals_name_the_index_and_the_field() {
        let mut bad = good();
        bad["tokensIn"] = json!("many");
        assert_eq!(
            item_error(parse_runs(json!({"runs": [good(), good(), good(), bad]}))),
            (Some(3), "runs[3].tokensIn".to_owned())
        );
        let mut unknown = good();
        unknown["bogus"] = json!(1);
        assert_eq!(
            item_error(parse_runs(json!({"runs": [unknown]}))),
            (Some(0), "runs[0].bogus".to_owned())
        );
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("taskId");
        assert_eq!(item_error(parse_runs(missing)), (None, "taskId".to_owned()));
        let mut zero = good();
        zero["attempt"] = json!(0);
        assert_eq!(
            item_error(parse_runs(json!({"runs": [good(), zero]}))),
            (Some(1), "runs[1].attempt".to_owned())
        );
        let mut not_object = good();
        not_object["input"] = json!(["a"]);
        assert_eq!(
            item_error(parse_runs(not_object)),
            (None, "input".to_owned())
        );
        let nested = json!({"outcomes": [{"taskId": "t", "expectedFiles": ["a", ""]}]});
        assert_eq!(
            item_error(parse_outcomes(nested)),
            (Some(0), "outcomes[0].expectedFiles[1]".to_owned())
        );
    }

    #[test]
    fn batches_are_bounded() {
        assert!(matches!(
            parse_runs(json!({"runs": []})),
            Err(BatchError::Size { .. })
        ));
        let many: Vec<Value> = (0..=MAX_BATCH).map(|_| good()).collect();
        assert!(matches!(
            parse_runs(json!({"runs": many})),
            Err(BatchError::Size { .. })
        ));
        assert!(matches!(
            parse_runs(json!({"runs": [good()], "extra": 1})),
            Err(BatchError::Body(_))
        ));
        assert!(matches!(
            parse_runs(json!([good()])),
            Err(BatchError::Body(_))
        ));
        assert!(matches!(
            parse_outcomes(json!({"outcomes": [{"taskId": "t"}]})),
            Err(BatchError::Item { .. })
        ));
    }
}
