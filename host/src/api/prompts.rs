//! Handlers of `/api/prompts/…`: parse, call the [`PromptRegistry`](crate::prompts::PromptRegistry),
//! answer. No rules live here; the registry owns them.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::prompts::{
    CreatePrompt, CreateVersion, ImportPrompt, ImportedVersion, PromptError, PromptRegistry,
    ResolvedPrompt,
};
use crate::store::{DeployRecord, FailureMode, PromptVersion, PromptWithVersions, StoreError};

/// `?task_id=…` of resolve.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResolveQuery {
    /// The agent's task.
    pub task_id: String,
    /// The task's root (the logical task a retry or sub-task belongs to): A/B assignment
    /// hashes it, so one logical task sees one version.
    #[serde(default)]
    pub root_task_id: Option<String>,
}

/// List every prompt with its versions.
#[utoipa::path(
    get, path = "/api/prompts", tag = "prompts", operation_id = "listPrompts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every prompt with its versions", body = [PromptWithVersions]),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn list(
    State(registry): State<Arc<PromptRegistry>>,
) -> Result<Json<Vec<PromptWithVersions>>, ApiError> {
    Ok(Json(registry.list().await?))
}

/// The versions of one prompt, oldest first.
#[utoipa::path(
    get, path = "/api/prompts/{id}/versions", tag = "prompts", operation_id = "listVersions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id such as planner")),
    responses(
        (status = 200, description = "Versions, oldest first", body = [PromptVersion]),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn versions(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<PromptVersion>>, ApiError> {
    Ok(Json(registry.versions(&id).await?))
}

/// One version of a prompt.
#[utoipa::path(
    get, path = "/api/prompts/{id}/versions/{version}", tag = "prompts", operation_id = "getVersion",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Prompt id"),
        ("version" = i64, Path, description = "Version number"),
    ),
    responses(
        (status = 200, description = "The version", body = PromptVersion),
        (status = 400, description = "Version is not a number", body = ErrorBody),
        (status = 404, description = "Unknown prompt or version", body = ErrorBody),
    )
)]
pub async fn version(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams((id, version)): PathParams<(String, i64)>,
) -> Result<Json<PromptVersion>, ApiError> {
    Ok(Json(registry.version(&id, version).await?))
}

/// Create a new (inactive) version; its template is parsed first.
#[utoipa::path(
    post, path = "/api/prompts/{id}/versions", tag = "prompts", operation_id = "createVersion",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = CreateVersion, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, numbered max + 1, inactive", body = PromptVersion),
        (status = 404, description = "Unknown prompt or parent version", body = ErrorBody),
        (status = 413, description = "Body over the size limit", body = ErrorBody),
        (status = 422, description = "Invalid template (with line and column) or body", body = ErrorBody),
    )
)]
pub async fn create_version(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<CreateVersion>,
) -> Result<(StatusCode, Json<PromptVersion>), ApiError> {
    let created = registry.create_version(&id, body, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Make a version the active one; the token's name is recorded as the actor.
#[utoipa::path(
    post, path = "/api/prompts/{id}/deploy/{version}", tag = "prompts", operation_id = "deploy",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Prompt id"),
        ("version" = i64, Path, description = "Version to activate"),
    ),
    responses(
        (status = 200, description = "The recorded change", body = DeployRecord),
        (status = 404, description = "Unknown prompt or version", body = ErrorBody),
        (status = 409, description = "A concurrent change won", body = ErrorBody),
    )
)]
pub async fn deploy(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    PathParams((id, version)): PathParams<(String, i64)>,
) -> Result<Json<DeployRecord>, ApiError> {
    Ok(Json(registry.deploy(&id, version, &caller.name).await?))
}

/// Re-activate the version that was active before the current one.
#[utoipa::path(
    post, path = "/api/prompts/{id}/rollback", tag = "prompts", operation_id = "rollback",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "The recorded change", body = DeployRecord),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
        (status = 409, description = "Nothing to roll back to", body = ErrorBody),
    )
)]
pub async fn rollback(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
) -> Result<Json<DeployRecord>, ApiError> {
    match registry.rollback(&id, &caller.name).await {
        Ok(record) => Ok(Json(record)),
        // The store's only refusal of a rollback of an existing prompt: nothing earlier to go to.
        Err(PromptError::Store(StoreError::InvalidState(message))) => {
            Err(ApiError::NothingToRollBack(message))
        }
        Err(other) => Err(other.into()),
    }
}

/// Every change of the active version, oldest first.
#[utoipa::path(
    get, path = "/api/prompts/{id}/history", tag = "prompts", operation_id = "deployHistory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "Deploys and rollbacks, oldest first", body = [DeployRecord]),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn history(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<DeployRecord>>, ApiError> {
    Ok(Json(registry.history(&id).await?))
}

/// The failure-mode taxonomy of a prompt.
#[utoipa::path(
    get, path = "/api/prompts/{id}/failure-modes", tag = "prompts", operation_id = "listFailureModes",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    responses(
        (status = 200, description = "Failure-mode codes", body = [FailureMode]),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn failure_modes(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Vec<FailureMode>>, ApiError> {
    Ok(Json(registry.failure_modes(&id).await?))
}

/// The version an agent must use for a task, and its content. While an A/B test of the prompt
/// runs, the version of the task's arm, with `arm` and `abTestId`.
#[utoipa::path(
    get, path = "/api/prompts/{id}/resolve", tag = "prompts", operation_id = "resolve",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id"), ResolveQuery),
    responses(
        (status = 200, description = "The version to use and its template", body = ResolvedPrompt),
        (status = 400, description = "Missing task_id", body = ErrorBody),
        (status = 404, description = "Unknown prompt or no active version", body = ErrorBody),
        (status = 422, description = "Empty or over-long task_id or root_task_id", body = ErrorBody),
    )
)]
pub async fn resolve(
    State(registry): State<Arc<PromptRegistry>>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<ResolveQuery>,
) -> Result<Json<ResolvedPrompt>, ApiError> {
    Ok(Json(
        registry
            .resolve_for(&id, &query.task_id, query.root_task_id.as_deref())
            .await?,
    ))
}

/// Import a prompt written elsewhere as a new inactive version (source `import`, parent the
/// active version), after its template parses and its variables match the active version's
/// (unless `allowVariableChanges`); the answer has a line diff against the active version.
#[utoipa::path(
    post, path = "/api/prompts/{id}/import", tag = "prompts", operation_id = "importPrompt",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = ImportPrompt, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, inactive, with the diff", body = ImportedVersion),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
        (status = 422, description = "Invalid template (invalid_template), variables differ from the active version's (variables_changed: details.missing, details.added), or invalid content (invalid_input)", body = ErrorBody),
    )
)]
pub async fn import(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ImportPrompt>,
) -> Result<(StatusCode, Json<ImportedVersion>), ApiError> {
    let imported = registry.import(&id, body, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(imported)))
}

/// Create a prompt beyond the seeded agents, with its description, declared variables,
/// failure-mode taxonomy and first version (active).
#[utoipa::path(
    post, path = "/api/prompts", tag = "prompts", operation_id = "createPrompt",
    security(("bearer" = [])),
    request_body(content = CreatePrompt, content_type = "application/json"),
    responses(
        (status = 201, description = "The prompt with its active version 1", body = PromptWithVersions),
        (status = 409, description = "A prompt with this id exists (conflict)", body = ErrorBody),
        (status = 422, description = "Invalid template (invalid_template), or id, variables, failure modes, sizes (invalid_input)", body = ErrorBody),
    )
)]
pub async fn create_prompt(
    State(registry): State<Arc<PromptRegistry>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreatePrompt>,
) -> Result<(StatusCode, Json<PromptWithVersions>), ApiError> {
    let created = registry.create_prompt(body, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}
