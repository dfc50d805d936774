//! `POST /api/migrate/openai-eval`: an OpenAI eval (its definition, items JSONL and optionally a
//! run's output items) becomes a prompt's grader definitions, a dataset and recorded runs with
//! their grader results, all or nothing. The work is [`crate::migrate`]'s; this handler parses
//! and maps the outcome.
//!
//! Role: `admin`. It writes grader definitions, which only admins write.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::state::AppState;
use crate::migrate::{self, MigrateOpenaiEval, Migrated};

/// Migrate an OpenAI eval: `testing_criteria` become the prompt's grader definitions (each
/// checked like any definition, its component's own check included), `items` (the items JSONL
/// text, each item checked against the eval's `item_schema`) a new dataset version, and
/// `outputItems` (one eval run's output items JSONL) recorded runs of the prompt's active
/// version with their grader results. Everything is checked before anything is written; what
/// cannot be mapped is answered as `422 migration_refused` with every problem in
/// `details.problems` (`at`: `eval.testing_criteria[2].operation`, `items.jsonl:7`, …).
#[utoipa::path(
    post, path = "/api/migrate/openai-eval", tag = "migrate", operation_id = "migrateOpenaiEval",
    security(("bearer" = [])),
    request_body(content = MigrateOpenaiEval, content_type = "application/json"),
    responses(
        (status = 201, description = "What was written", body = Migrated),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
        (status = 413, description = "Body over the dataset body limit", body = ErrorBody),
        (status = 422, description = "Problems, each with its place (migration_refused; details.problems), or a bad body (invalid_body)", body = ErrorBody),
        (status = 503, description = "The grader components are still loading (unavailable)", body = ErrorBody),
    )
)]
pub async fn openai_eval(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<MigrateOpenaiEval>,
) -> Result<(StatusCode, Json<Migrated>), ApiError> {
    tracing::info!(prompt = %body.prompt_id, "migrating an OpenAI eval");
    let migrated =
        migrate::openai_eval::migrate(&state.store, &state.graders, body, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(migrated)))
}
