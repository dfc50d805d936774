//! `/api/runs…`: record runs (one or a batch), report outcomes, list and read runs. Parsing and
//! limits live in [`crate::runs`], storage in [`crate::store::RunStore`]; these handlers parse,
//! call and map, naming the refused item of a batch.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::runs::{self, OutcomesBody, RunInput, cursor, field_path};
use crate::store::{Missing, Rating, RecordedRun, Run, RunFilter, Store, StoreError};

/// Runs per page of `GET /api/runs` unless `limit` says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most runs per page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The body of `POST /api/runs`: one run, or a batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Describes the body for OpenAPI; the handler parses it item by item.
pub enum RecordBody {
    /// One run.
    One(RunInput),
    /// `{"runs": [...]}`, 1 to 1,000, all or nothing.
    Batch(runs::RunsBody),
}

/// What recording answers: per run, in the order sent, its id and whether this call stored it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordAnswer {
    /// One entry per run sent.
    pub runs: Vec<RecordedRun>,
}

/// Per outcome, in the order sent, how many runs it updated.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeApplied {
    /// The task.
    pub task_id: String,
    /// Runs of the task updated now (0 when none is recorded yet; they take it when they are).
    pub runs_updated: u64,
}

/// What reporting outcomes answers.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutcomesAnswer {
    /// One entry per outcome sent.
    pub outcomes: Vec<OutcomeApplied>,
}

/// The query of `GET /api/runs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this prompt's runs.
    pub prompt_id: Option<String>,
    /// Only runs of this version.
    pub version: Option<i64>,
    /// Only runs rated `good` or `bad`.
    pub rating: Option<Rating>,
    /// Only runs with this failure mode.
    pub failure_mode: Option<String>,
    /// Only runs with (`true`) or without (`false`) an annotation.
    pub annotated: Option<bool>,
    /// Only runs whose enabled graders all passed (`true`) or not all passed (`false`).
    pub graders_passed: Option<bool>,
    /// Only runs recorded at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Only runs recorded before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Runs per page, 1 to 500 [default: 50].
    pub limit: Option<u32>,
    /// The `nextCursor` of the page before.
    pub cursor: Option<String>,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunsPage {
    /// The runs.
    pub items: Vec<Run>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Record one run or a batch of up to 1,000, all or nothing, idempotent on (promptId, taskId,
/// attempt).
#[utoipa::path(
    post, path = "/api/runs", tag = "runs", operation_id = "recordRuns",
    security(("bearer" = [])),
    request_body(content = RecordBody, content_type = "application/json"),
    responses(
        (status = 201, description = "At least one run stored now", body = RecordAnswer),
        (status = 200, description = "Every run was recorded before (a retry); nothing stored", body = RecordAnswer),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 413, description = "Body over 16 MiB", body = ErrorBody),
        (status = 422, description = "A run refused (invalid_run, unknown_prompt, unknown_version, invalid_text) or the batch (invalid_batch); details name the index and field", body = ErrorBody),
    )
)]
pub async fn record(
    State(store): State<Arc<dyn Store>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<RecordAnswer>), ApiError> {
    let (runs, batch) = runs::parse_runs(body)?;
    let recorded = store.record_runs(&runs).await.map_err(|e| match e {
        StoreError::InBatch { index, error } => {
            let index = batch.then_some(index);
            match *error {
                StoreError::NotFound(missing) => {
                    let field = match missing {
                        Missing::Prompt(_) => "promptId",
                        _ => "version",
                    };
                    ApiError::UnknownReference {
                        missing,
                        index,
                        field: field_path("runs", index, field),
                    }
                }
                other => ApiError::from(other),
            }
        }
        other => other.into(),
    })?;
    let status = if recorded.iter().any(|r| r.created) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(RecordAnswer { runs: recorded })))
}

/// Report outcomes of tasks (up to 1,000): each updates every run of its task, and is kept for
/// runs recorded later.
#[utoipa::path(
    patch, path = "/api/runs/outcomes", tag = "runs", operation_id = "reportOutcomes",
    security(("bearer" = [])),
    request_body(content = OutcomesBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Per outcome, the runs it updated", body = OutcomesAnswer),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 422, description = "An outcome refused (invalid_outcome, invalid_text) or the batch (invalid_batch)", body = ErrorBody),
    )
)]
pub async fn report_outcomes(
    State(store): State<Arc<dyn Store>>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<OutcomesAnswer>, ApiError> {
    let outcomes = runs::parse_outcomes(body)?;
    let updated = store.report_outcomes(&outcomes).await?;
    Ok(Json(OutcomesAnswer {
        outcomes: outcomes
            .into_iter()
            .zip(updated)
            .map(|(o, runs_updated)| OutcomeApplied {
                task_id: o.task_id,
                runs_updated,
            })
            .collect(),
    }))
}

/// Recorded runs, newest first, a page at a time.
#[utoipa::path(
    get, path = "/api/runs", tag = "runs", operation_id = "listRuns",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of runs", body = RunsPage),
        (status = 400, description = "A parameter does not parse or is out of range (invalid_query), or a foreign cursor (invalid_cursor)", body = ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Arc<dyn Store>>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<RunsPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_PAGE_SIZE}"
        )));
    }
    let before = query
        .cursor
        .as_deref()
        .map(|c| {
            cursor::decode(c).ok_or_else(|| {
                ApiError::InvalidCursor("pass the nextCursor of the page before".to_owned())
            })
        })
        .transpose()?;
    let filter = RunFilter {
        prompt_id: query.prompt_id,
        version: query.version,
        rating: query.rating,
        failure_mode: query.failure_mode,
        annotated: query.annotated,
        graders_passed: query.graders_passed,
        from: query.from,
        to: query.to,
        before,
        origin: None,
    };
    // One more than asked says whether a next page exists.
    let mut items = store.list_runs(&filter, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|r| cursor::encode(r.id))
    } else {
        None
    };
    Ok(Json(RunsPage { items, next_cursor }))
}

/// One run with its outcome, annotation and grader results.
#[utoipa::path(
    get, path = "/api/runs/{id}", tag = "runs", operation_id = "getRun",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 400, description = "The id is not a uuid", body = ErrorBody),
        (status = 404, description = "No run has this id", body = ErrorBody),
    )
)]
pub async fn get(
    State(store): State<Arc<dyn Store>>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(store.get_run(id).await?))
}
