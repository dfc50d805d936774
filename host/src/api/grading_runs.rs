//! `/api/grading-runs…`: grading jobs over recorded runs — start one (202: it runs in the
//! background, see [`crate::grading::jobs`]; the checks are [`crate::grading::request`]'s), read
//! its progress, cancel it.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use super::state::AppState;
use crate::grading::request::{JobRequest, queue_job};
use crate::store::{GradingJob, JobKind, JobListFilter};

/// Start a grading run over recorded runs. It is queued and graded in the background by an
/// instance of the service; read its progress with `GET /api/grading-runs/{id}`.
#[utoipa::path(
    post, path = "/api/grading-runs", tag = "grading", operation_id = "startGradingRun",
    security(("bearer" = [])),
    request_body(content = JobRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = GradingJob),
        (status = 404, description = "Unknown prompt, version or grader definition", body = ErrorBody),
        (status = 422, description = "Invalid selection, budget or definition", body = ErrorBody),
        (status = 503, description = "Grader components still loading", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<JobRequest>,
) -> Result<(StatusCode, Json<GradingJob>), ApiError> {
    let job = queue_job(state.store.as_ref(), &state.graders, body, &caller.name).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Grading runs listed per page unless `limit` says otherwise.
pub const DEFAULT_LIST_SIZE: u32 = 50;
/// Most grading runs per list.
pub const MAX_LIST_SIZE: u32 = 500;

/// `?promptId&kind&limit` of the list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this prompt's grading runs.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// Only grading runs (`grading`) or only evaluations (`evaluation`) [default: both].
    #[serde(default)]
    #[param(inline)]
    pub kind: Option<JobKind>,
    /// How many, 1 to 500 [default: 50].
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The newest jobs of the grading-run queue, of one prompt or of all; `kind` keeps grading runs
/// or evaluations only (evaluations are listed with their results by `GET /api/evals`).
#[utoipa::path(
    get, path = "/api/grading-runs", tag = "grading",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Grading runs, newest first", body = [GradingJob]),
        (status = 400, description = "Limit out of range, unknown kind or unknown parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Vec<GradingJob>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_SIZE);
    if !(1..=MAX_LIST_SIZE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_LIST_SIZE}"
        )));
    }
    let filter = JobListFilter {
        prompt_id: query.prompt_id,
        kind: query.kind,
        ..JobListFilter::default()
    };
    Ok(Json(state.store.list_grading_jobs(&filter, limit).await?))
}

/// A grading run: status, rows total and processed, passed, failed, errors by kind, tokens.
#[utoipa::path(
    get, path = "/api/grading-runs/{id}", tag = "grading", operation_id = "getGradingRun",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Grading run id (uuid)")),
    responses(
        (status = 200, description = "The grading run", body = GradingJob),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such grading run", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<GradingJob>, ApiError> {
    Ok(Json(state.store.get_grading_job(id).await?))
}

/// Cancel a grading run: a queued one at once; a running one stops after the chunk it is
/// grading (whose verdicts are kept). A finished run is answered as it is.
#[utoipa::path(
    post, path = "/api/grading-runs/{id}/cancel", tag = "grading", operation_id = "cancelGradingRun",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Grading run id (uuid)")),
    responses(
        (status = 200, description = "The grading run after the cancel", body = GradingJob),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such grading run", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<GradingJob>, ApiError> {
    Ok(Json(state.store.cancel_grading_job(id).await?))
}
