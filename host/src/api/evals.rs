//! `/api/evals…`: offline evaluations of a prompt's versions on a dataset — start one (202: it
//! runs in the background as a job of the grading-run queue, see [`crate::evals`]; the checks
//! are [`crate::evals::request`]'s), read its progress and results, cancel it.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams};
use super::state::AppState;
use crate::evals::request::{EvalRequest, queue_evaluation};
use crate::evals::view::{EvaluationView, load};

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
