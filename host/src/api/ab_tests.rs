//! Handlers of the A/B-test routes: start, stop and results of a prompt's running test, and
//! tests by id. Parse, call the [`PromptRegistry`] (which owns the rules, see
//! [`crate::prompts::ab_tests`]), answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams};
use crate::config::Settings;
use crate::prompts::{PromptRegistry, StartAbTest};
use crate::store::AbTest;

/// Start an A/B test of two versions of a prompt; one test runs per prompt.
#[utoipa::path(
    post, path = "/api/prompts/{id}/ab-test", tag = "ab-tests", operation_id = "startAbTest",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = StartAbTest, content_type = "application/json"),
    responses(
        (status = 201, description = "The test, running", body = AbTest),
        (status = 404, description = "Unknown prompt or version", body = ErrorBody),
        (status = 409, description = "A test of this prompt is running (`ab_test_running`)", body = ErrorBody),
        (status = 422, description = "Invalid body (same versions, split outside (0, 1), unknown field…)", body = ErrorBody),
    )
)]
pub async fn start(
    State(registry): State<Arc<PromptRegistry>>,
    State(settings): State<Arc<Settings>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<StartAbTest>,
) -> Result<(StatusCode, Json<AbTest>), ApiError> {
    let test = registry
        .start_ab_test(&id, body, settings.ab_test_traffic_split, &caller.name)
        .await?;
    Ok((StatusCode::CREATED, Json(test)))
}

/// Stop the running test of a prompt, keeping its final results; the active version is left
/// as it is.
#[utoipa::path(
    post, path = "/api/prompts/{id}/ab-test/stop", tag = "ab-tests", operation_id = "stopAbTest",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "The stopped test with its final results", body = AbTest),
        (status = 404, description = "Unknown prompt, or no running test (`ab_test_not_found`)", body = ErrorBody),
    )
)]
pub async fn stop(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Json<AbTest>, ApiError> {
    Ok(Json(registry.stop_ab_test(&id, &caller.name).await?))
}

/// The running test of a prompt with fresh results (per-arm figures, always-valid interval,
/// fixed-horizon interval, chance to win, SRM check, guardrails, decision).
#[utoipa::path(
    get, path = "/api/prompts/{id}/ab-test/results", tag = "ab-tests", operation_id = "abTestResults",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "The running test; `result` holds the analysis", body = AbTest),
        (status = 404, description = "Unknown prompt, or no running test (`ab_test_not_found`)", body = ErrorBody),
    )
)]
pub async fn results(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<AbTest>, ApiError> {
    Ok(Json(registry.ab_test_results(&id).await?))
}

/// Every A/B test of a prompt, newest first.
#[utoipa::path(
    get, path = "/api/prompts/{id}/ab-tests", tag = "ab-tests", operation_id = "listAbTests",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "Tests, newest first", body = [AbTest]),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn list(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<AbTest>>, ApiError> {
    Ok(Json(registry.ab_tests(&id).await?))
}

/// One A/B test by id: fresh results while it runs, its final results once ended.
#[utoipa::path(
    get, path = "/api/ab-tests/{id}", tag = "ab-tests", operation_id = "getAbTest",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Test id")),
    responses(
        (status = 200, description = "The test and its results", body = AbTest),
        (status = 400, description = "Not a uuid", body = ErrorBody),
        (status = 404, description = "No such test (`ab_test_not_found`)", body = ErrorBody),
    )
)]
pub async fn get(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<AbTest>, ApiError> {
    Ok(Json(registry.ab_test(id).await?))
}
