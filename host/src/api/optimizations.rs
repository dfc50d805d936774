//! `/api/prompts/{id}/optimize` and `/api/optimizations…`: runs of the prompt optimizer — start
//! one (202: it runs in the background, see [`crate::optimizer`]; the checks are
//! [`crate::optimizer::request`]'s), read its progress and report, cancel it, list them.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::evals::model_configured;
use super::extract::{JsonBody, PathParams, QueryParams};
use super::state::AppState;
use crate::optimizer::request::{OptimizeError, OptimizeRequest, queue_optimization};
use crate::optimizer::view::{OptimizationView, view};
use crate::store::{Optimization, Store};

/// Optimizations a list answers unless `limit` says otherwise.
pub const DEFAULT_LIST_SIZE: u32 = 50;
/// Most optimizations a list answers.
pub const MAX_LIST_SIZE: u32 = 200;

impl From<OptimizeError> for ApiError {
    fn from(error: OptimizeError) -> Self {
        match error {
            OptimizeError::Request(request) => request.into(),
            OptimizeError::Dataset(dataset) => dataset.into(),
            OptimizeError::NotEnoughRows {
                ref found,
                ref required,
                ..
            } => ApiError::NotEnoughRows {
                message: error.to_string(),
                found: *found,
                required: *required,
            },
        }
    }
}

fn shown(optimization: Optimization) -> Result<OptimizationView, ApiError> {
    let id = optimization.id;
    view(optimization).ok_or_else(|| ApiError::Internal(format!("optimization {id} is unreadable")))
}

async fn load(store: &dyn Store, id: Uuid) -> Result<OptimizationView, ApiError> {
    shown(store.get_optimization(id).await?)
}

/// Optimize a prompt from its annotated failures: a reflection model proposes revised prompts
/// from the failing train rows of a dataset (or of a snapshot of the prompt's annotated runs),
/// each is scored by the prompt's enabled graders, and the best one becomes a new inactive
/// version only when it beats the starting version on the validation rows by more than the
/// noise. Runs in the background; read it with `GET /api/optimizations/{id}`.
#[utoipa::path(
    post, path = "/api/prompts/{id}/optimize", tag = "optimizations",
    operation_id = "startOptimization",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = OptimizeRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = OptimizationView),
        (status = 403, description = "Prompt optimization is switched off (feature_disabled)", body = ErrorBody),
        (status = 404, description = "Unknown prompt, version, dataset or dataset version", body = ErrorBody),
        (status = 409, description = "Fewer annotated rows than PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION (not_enough_rows; details.found, details.required), or no model endpoint configured (invalid_state)", body = ErrorBody),
        (status = 422, description = "Invalid request: a budget, model or size out of range, a budget too small for the dataset, a dataset of another prompt, a split without rows, no enabled grader", body = ErrorBody),
        (status = 503, description = "Grader components still loading", body = ErrorBody),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<OptimizeRequest>,
) -> Result<(StatusCode, Json<OptimizationView>), ApiError> {
    let optimization = queue_optimization(
        &state.store,
        &state.graders,
        model_configured(&state),
        u64::from(state.settings.min_samples_for_optimization),
        &id,
        body,
        &caller.name,
    )
    .await?;
    tracing::info!(optimization = %optimization.id, prompt = %optimization.prompt_id, start_version = optimization.start_version, "optimization queued");
    Ok((StatusCode::ACCEPTED, Json(shown(optimization)?)))
}

/// An optimization: status, progress (rounds, candidates, scores on the train rows, calls and
/// tokens spent) while it runs; its report once it ended.
#[utoipa::path(
    get, path = "/api/optimizations/{id}", tag = "optimizations",
    operation_id = "getOptimization",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Optimization id (uuid)")),
    responses(
        (status = 200, description = "The optimization", body = OptimizationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such optimization", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<OptimizationView>, ApiError> {
    Ok(Json(load(state.store.as_ref(), id).await?))
}

/// Cancel an optimization: a queued one at once; a running one stops before its next round and
/// ends with a report on the best candidate found so far (validated like any winner). A
/// finished one is answered as it is.
#[utoipa::path(
    post, path = "/api/optimizations/{id}/cancel", tag = "optimizations",
    operation_id = "cancelOptimization",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Optimization id (uuid)")),
    responses(
        (status = 200, description = "The optimization after the cancel", body = OptimizationView),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such optimization", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<OptimizationView>, ApiError> {
    shown(state.store.cancel_optimization(id).await?).map(Json)
}

/// `?promptId&limit` of the list.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this prompt's optimizations.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// How many, 1 to 200 [default: 50].
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The newest optimizations, of one prompt or of all.
#[utoipa::path(
    get, path = "/api/optimizations", tag = "optimizations",
    operation_id = "listOptimizations",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Optimizations, newest first", body = [OptimizationView]),
        (status = 400, description = "Limit out of range or unknown parameter", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Vec<OptimizationView>>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_SIZE);
    if !(1..=MAX_LIST_SIZE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_LIST_SIZE}"
        )));
    }
    let listed = state
        .store
        .list_optimizations(query.prompt_id.as_deref(), limit)
        .await?;
    Ok(Json(listed.into_iter().filter_map(view).collect()))
}
