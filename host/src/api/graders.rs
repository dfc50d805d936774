//! `/api/graders…`: the loaded grader components (name, contract version, world, hash,
//! generation, load error), the definition types this host runs, and the stored definitions per
//! prompt (create or replace, list, delete). Validation rules live in
//! [`crate::grading::stored`]; these handlers parse and map.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use super::state::AppState;
use crate::graders::registry::GraderListing;
use crate::grading::stored::{self, PutDefinition};
use crate::store::{GraderDefinition, PutOutcome};

/// What `GET /api/graders` answers: the registry's listing plus the stored definitions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GradersOverview {
    /// Components and definition types.
    #[serde(flatten)]
    pub listing: GraderListing,
    /// The stored definitions of every prompt, by prompt then name.
    pub stored_definitions: Vec<GraderDefinition>,
}

/// The body of `POST /api/graders/definitions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutDefinitionBody {
    /// The prompt whose outputs it grades, such as `planner`.
    pub prompt_id: String,
    /// Unique per prompt: 1 to 100 of letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// OpenAI grader JSON (`string_check`, `text_similarity`, `multi`, …) or
    /// `{"type":"wasm","component":"…","config":{…}}`.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Whether it runs (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `?promptId=…` of the definitions listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DefinitionsQuery {
    /// Only this prompt's definitions.
    #[serde(default)]
    pub prompt_id: Option<String>,
}

/// Every grader component, definition type and stored definition.
#[utoipa::path(
    get, path = "/api/graders", tag = "graders", operation_id = "listGraders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Grader components (with load errors), definition types and stored definitions", body = GradersOverview),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<GradersOverview>, ApiError> {
    let stored_definitions = state.store.list_graders(None).await?;
    Ok(Json(GradersOverview {
        listing: state.graders.list(),
        stored_definitions,
    }))
}

/// Create or replace a stored definition, after validating it against the loaded components
/// (each component's own config check runs). Nothing is written when it is refused.
#[utoipa::path(
    post, path = "/api/graders/definitions", tag = "graders", operation_id = "putGraderDefinition",
    security(("bearer" = [])),
    request_body(content = PutDefinitionBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = GraderDefinition),
        (status = 200, description = "Replaced (id and creation kept)", body = GraderDefinition),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
        (status = 422, description = "Invalid definition (`details.field` names the field path) or name", body = ErrorBody),
        (status = 503, description = "Grader components still loading", body = ErrorBody),
    )
)]
pub async fn put_definition(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<PutDefinitionBody>,
) -> Result<(StatusCode, Json<GraderDefinition>), ApiError> {
    let request = PutDefinition {
        prompt_id: body.prompt_id,
        name: body.name,
        definition: body.definition,
        enabled: body.enabled.unwrap_or(true),
    };
    let (stored, outcome) =
        stored::put(state.store.as_ref(), &state.graders, request, &caller.name).await?;
    let status = match outcome {
        PutOutcome::Created => StatusCode::CREATED,
        PutOutcome::Replaced => StatusCode::OK,
    };
    Ok((status, Json(stored)))
}

/// The stored definitions, of one prompt when `promptId` is given.
#[utoipa::path(
    get, path = "/api/graders/definitions", tag = "graders", operation_id = "listGraderDefinitions",
    security(("bearer" = [])),
    params(DefinitionsQuery),
    responses(
        (status = 200, description = "Definitions by prompt, then name", body = [GraderDefinition]),
        (status = 400, description = "Unknown query parameter", body = ErrorBody),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn list_definitions(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<DefinitionsQuery>,
) -> Result<Json<Vec<GraderDefinition>>, ApiError> {
    Ok(Json(
        state
            .registry
            .store()
            .list_graders(query.prompt_id.as_deref())
            .await?,
    ))
}

/// Delete a stored definition. A seeded one comes back at the next start; disable it instead
/// (`enabled: false`) to keep it off.
#[utoipa::path(
    delete, path = "/api/graders/definitions/{promptId}/{name}", tag = "graders", operation_id = "deleteGraderDefinition",
    security(("bearer" = [])),
    params(
        ("promptId" = String, Path, description = "Prompt id"),
        ("name" = String, Path, description = "Grader name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such definition", body = ErrorBody),
    )
)]
pub async fn delete_definition(
    State(state): State<AppState>,
    PathParams((prompt_id, name)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .registry
        .store()
        .delete_grader(&prompt_id, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One stored definition.
#[utoipa::path(
    get, path = "/api/graders/definitions/{promptId}/{name}", tag = "graders", operation_id = "getGraderDefinition",
    security(("bearer" = [])),
    params(
        ("promptId" = String, Path, description = "Prompt id"),
        ("name" = String, Path, description = "Grader name"),
    ),
    responses(
        (status = 200, description = "The definition", body = GraderDefinition),
        (status = 404, description = "No such definition", body = ErrorBody),
    )
)]
pub async fn get_definition(
    State(state): State<AppState>,
    PathParams((prompt_id, name)): PathParams<(String, String)>,
) -> Result<Json<GraderDefinition>, ApiError> {
    Ok(Json(state.store.get_grader(&prompt_id, &name).await?))
}

/// Enable a stored definition (it runs again).
#[utoipa::path(
    post, path = "/api/graders/definitions/{promptId}/{name}/enable", tag = "graders", operation_id = "enableGraderDefinition",
    security(("bearer" = [])),
    params(
        ("promptId" = String, Path, description = "Prompt id"),
        ("name" = String, Path, description = "Grader name"),
    ),
    responses(
        (status = 200, description = "The definition, enabled", body = GraderDefinition),
        (status = 404, description = "No such definition", body = ErrorBody),
    )
)]
pub async fn enable_definition(
    State(state): State<AppState>,
    PathParams((prompt_id, name)): PathParams<(String, String)>,
) -> Result<Json<GraderDefinition>, ApiError> {
    set_enabled(&state, &prompt_id, &name, true).await
}

/// Disable a stored definition: kept, not run, and (for a seeded one) not re-seeded.
#[utoipa::path(
    post, path = "/api/graders/definitions/{promptId}/{name}/disable", tag = "graders", operation_id = "disableGraderDefinition",
    security(("bearer" = [])),
    params(
        ("promptId" = String, Path, description = "Prompt id"),
        ("name" = String, Path, description = "Grader name"),
    ),
    responses(
        (status = 200, description = "The definition, disabled", body = GraderDefinition),
        (status = 404, description = "No such definition", body = ErrorBody),
    )
)]
pub async fn disable_definition(
    State(state): State<AppState>,
    PathParams((prompt_id, name)): PathParams<(String, String)>,
) -> Result<Json<GraderDefinition>, ApiError> {
    set_enabled(&state, &prompt_id, &name, false).await
}

async fn set_enabled(
    state: &AppState,
    prompt_id: &str,
    name: &str,
    enabled: bool,
) -> Result<Json<GraderDefinition>, ApiError> {
    Ok(Json(
        state
            .registry
            .store()
            .set_grader_enabled(prompt_id, name, enabled)
            .await?,
    ))
}
