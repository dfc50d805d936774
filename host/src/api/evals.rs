//! `/api/evals…`: offline evaluations of a prompt's versions on a dataset — start one (202: it
//! runs in the background as a job of the grading-run queue, see [`crate::evals`]; the checks
//! are [`crate::evals::request`]'s), list them, read one's progress and results, cancel one.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use super::state::AppState;
use crate::evals::request::{EvalRequest, queue_evaluation};
use crate::evals::view::{EvaluationSummary, EvaluationView, load};
use crate::runs::cursor;
use crate::store::{JobListFilter, JobStatus};

/// Evaluations listed per page unless `limit` says otherwise.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Most evaluations per page.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The query of `GET /api/evals`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this prompt's evaluations.
    pub prompt_id: Option<String>,
    /// Only evaluations in this status.
    pub status: Option<JobStatus>,
    /// Evaluations per page, 1 to 500 [default: 50].
    pub limit: Option<u32>,
    /// The `nextCursor` of the page before.
    pub cursor: Option<String>,
}

/// A page of evaluations, newest first.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationsPage {
    /// The evaluations (without their results).
    pub items: Vec<EvaluationSummary>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The evaluations, newest first, a page at a time (keyset by id: evaluations started meanwhile
/// never shift a page still to come), of one prompt or of all, in one status or in any.
#[utoipa::path(
    get, path = "/api/evals", tag = "evaluations", operation_id = "listEvaluations",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of evaluations, newest first", body = EvaluationsPage),
        (status = 400, description = "A parameter does not parse or is out of range (invalid_query), or a foreign cursor (invalid_cursor)", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<EvaluationsPage>, ApiError> {
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
    let filter = JobListFilter {
        prompt_id: query.prompt_id,
        status: query.status,
        before,
        kind: None,
    };
    // One more than asked says whether a next page exists.
    let mut items = state.store.list_evaluations(&filter, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|e| cursor::encode(e.job.id))
    } else {
        None
    };
    Ok(Json(EvaluationsPage {
        items: items.into_iter().map(EvaluationSummary::from).collect(),
        next_cursor,
    }))
}

/// Start an evaluation: every version asked for is rendered for every row of the dataset
/// (version, split), the task model answers (from the cache when the same request was answered
/// before), and the prompt's enabled graders grade the answers. Outputs are stored as runs of
/// origin `evaluation`, which never count in production figures, A/B results or exports.
#[utoipa::path(
    post, path = "/api/evals", tag = "evaluations", operation_id = "startEvaluation",
    security(("bearer" = [])),
    request_body(content = EvalRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = EvaluationView),
        (status = 404, description = "Unknown prompt, version, dataset or dataset version", body = ErrorBody),
        (status = 409, description = "No model endpoint configured", body = ErrorBody),
        (status = 422, description = "Invalid request, a dataset of another prompt, an empty split, no enabled grader", body = ErrorBody),
        (status = 503, description = "Grader components still loading", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<EvalRequest>,
) -> Result<(StatusCode, Json<EvaluationView>), ApiError> {
    let evaluation = queue_evaluation(
        state.store.as_ref(),
        &state.graders,
        model_configured(&state),
        body,
        &caller.name,
    )
    .await?;
    tracing::info!(evaluation = %evaluation.job.id, prompt = %evaluation.job.prompt_id, total = evaluation.job.total, "evaluation queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(load(state.store.as_ref(), evaluation.job.id).await?),
    ))
}

/// Whether the server has a model endpoint for the task model (the web page's start form asks
/// the same).
pub fn model_configured(state: &AppState) -> bool {
    state
        .graders
        .runtime()
        .llm_client()
        .is_some_and(|client| client.is_configured(None))
}

/// An evaluation: status, progress, model calls and cached answers, tokens, and its results
/// (per version and grader; per pair of versions) over what is committed so far.
#[utoipa::path(
    get, path = "/api/evals/{id}", tag = "evaluations", operation_id = "getEvaluation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Evaluation id (uuid)")),
    responses(
        (status = 200, description = "The evaluation", body = EvaluationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such evaluation", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<EvaluationView>, ApiError> {
    Ok(Json(load(state.store.as_ref(), id).await?))
}

/// Cancel an evaluation: a queued one at once; a running one stops after the chunk it is
/// evaluating (which is kept). A finished one is answered as it is.
#[utoipa::path(
    post, path = "/api/evals/{id}/cancel", tag = "evaluations",
    operation_id = "cancelEvaluation",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Evaluation id (uuid)")),
    responses(
        (status = 200, description = "The evaluation after the cancel", body = EvaluationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such evaluation", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<EvaluationView>, ApiError> {
    // Only an evaluation: a grading run's id is not found here.
    state.store.get_evaluation(id).await?;
    state.store.cancel_grading_job(id).await?;
    Ok(Json(load(state.store.as_ref(), id).await?))
}
