//! The runs domain's rows as both backends read them, and their conversion into [`Run`] (the
//! stored enums are checked here, so a foreign value is a decode error).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use crate::store::runs::run_success;
use crate::store::sql::DbId;
use crate::store::{
    AnnotationSource, Rating, Result, Run, RunAnnotation, RunOrigin, RunOutcome, StoreError,
};

/// The columns [`RunRow`] reads, in the order of its fields.
pub(super) const RUN_COLUMNS: &str = "id, prompt_id, version, task_id, attempt, root_task_id, \
     input_variables, output, model, prompt_tokens, completion_tokens, latency_ms, origin, \
     created_at, updated_at, tests_passed, pr_merged, expected_files, failure_signature, \
     outcome_at, rating, output_feedback, failure_mode, annotation_source, annotated_by, \
     annotated_at, grader_results, graders_passed";

#[derive(FromRow)]
pub(crate) struct RunRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    task_id: String,
    attempt: i64,
    root_task_id: Option<String>,
    input_variables: Json<serde_json::Map<String, serde_json::Value>>,
    output: Option<String>,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    latency_ms: Option<i64>,
    origin: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    tests_passed: Option<bool>,
    pr_merged: Option<bool>,
    expected_files: Option<Json<Vec<String>>>,
    failure_signature: Option<String>,
    outcome_at: Option<DateTime<Utc>>,
    rating: Option<String>,
    output_feedback: Option<String>,
    failure_mode: Option<String>,
    annotation_source: Option<String>,
    annotated_by: Option<String>,
    annotated_at: Option<DateTime<Utc>>,
    grader_results: Option<Json<serde_json::Value>>,
    graders_passed: Option<bool>,
}

impl TryFrom<RunRow> for Run {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Self> {
        let rating = row
            .rating
            .as_deref()
            .map(|r| Rating::parse(r).ok_or_else(|| StoreError::decode(format!("rating {r:?}"))))
            .transpose()?;
        let source = row
            .annotation_source
            .as_deref()
            .map(|s| {
                AnnotationSource::parse(s)
                    .ok_or_else(|| StoreError::decode(format!("annotation source {s:?}")))
            })
            .transpose()?;
        let origin = RunOrigin::parse(&row.origin)
            .ok_or_else(|| StoreError::decode(format!("run origin {:?}", row.origin)))?;
        let annotated =
            rating.is_some() || row.failure_mode.is_some() || row.output_feedback.is_some();
        let annotation = annotated.then_some(RunAnnotation {
            rating,
            output_feedback: row.output_feedback,
            failure_mode: row.failure_mode,
            source,
            annotated_by: row.annotated_by,
            annotated_at: row.annotated_at,
        });
        let outcome = row.outcome_at.map(|reported_at| RunOutcome {
            tests_passed: row.tests_passed,
            pr_merged: row.pr_merged,
            expected_files: row.expected_files.map(|f| f.0),
            failure_signature: row.failure_signature,
            reported_at,
        });
        Ok(Run {
            id: row.id.0,
            prompt_id: row.prompt_id,
            version: row.version,
            task_id: row.task_id,
            attempt: row.attempt,
            root_task_id: row.root_task_id,
            input: row.input_variables.0,
            output: row.output,
            model: row.model,
            tokens_in: row.prompt_tokens,
            tokens_out: row.completion_tokens,
            latency_ms: row.latency_ms,
            origin,
            created_at: row.created_at,
            updated_at: row.updated_at,
            success: run_success(row.tests_passed, rating, row.graders_passed),
            outcome,
            annotation,
            grader_results: row.grader_results.map(|g| g.0),
        })
    }
}

/// A task's stored outcome (`task_outcomes`), as a run recorded after it takes it.
#[derive(Debug, Clone, FromRow)]
pub(crate) struct OutcomeRow {
    pub(super) task_id: String,
    pub(super) tests_passed: Option<bool>,
    pub(super) pr_merged: Option<bool>,
    pub(super) expected_files: Option<Json<Vec<String>>>,
    pub(super) failure_signature: Option<String>,
    pub(super) reported_at: DateTime<Utc>,
}

/// The columns [`OutcomeRow`] reads.
pub(super) const OUTCOME_COLUMNS: &str =
    "task_id, tests_passed, pr_merged, expected_files, failure_signature, reported_at";
