//! Handlers of annotations: a run's annotation (set, clear, history), the failure-mode taxonomy's
//! growth, the annotation queue and the failure-mode counts. The checks live in
//! [`crate::annotations`], who wins between a person and a rule in the store; these parse and
//! map. The token's name is recorded as the annotator.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::annotations::{self, AnnotationError, AnnotationRequest};
use crate::store::{
    AnnotationRecord, CurrentAnnotation, FailureMode, FailureModeCounts, QueuePage, Store,
};

/// The body of `POST /api/prompts/{id}/failure-modes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFailureModeBody {
    /// 1 to 50 lower-case letters, digits and `_`, starting with a letter (`ignored_constraints`).
    pub code: String,
    /// What it means, 1 to 500 characters.
    pub description: String,
}

/// `?limit&cursor` of the annotation queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    /// Runs per page, 1 to 500 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `?version=N` of the failure-mode counts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// Count only this version's runs (default: every version).
    #[serde(default)]
    pub version: Option<i64>,
}

impl From<AnnotationError> for ApiError {
    fn from(err: AnnotationError) -> Self {
        match err {
            AnnotationError::Invalid(message) => ApiError::InvalidInput(message),
            AnnotationError::InvalidPage(message) => ApiError::InvalidQuery(message),
            AnnotationError::InvalidCursor(message) => ApiError::InvalidCursor(message),
            AnnotationError::Store(store) => store.into(),
        }
    }
}

/// Annotate a run as a person: it replaces any earlier annotation, a rule's included.
#[utoipa::path(
    put, path = "/api/runs/{id}/annotation", tag = "annotations", operation_id = "putAnnotation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    request_body(content = AnnotationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The run's current annotation", body = CurrentAnnotation),
        (status = 400, description = "Malformed run id or JSON", body = ErrorBody),
        (status = 403, description = "Role below annotator, or prompt optimization switched off", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
        (status = 422, description = "Wrong shape, too long a critique, or a failure mode outside the taxonomy (`invalid_failure_mode`, `details.allowed`)", body = ErrorBody),
    )
)]
pub async fn put_annotation(
    State(store): State<Arc<dyn Store>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<Uuid>,
    JsonBody(body): JsonBody<AnnotationRequest>,
) -> Result<Json<CurrentAnnotation>, ApiError> {
    Ok(Json(
        annotations::annotate(&store, id, body, &caller.name).await?,
    ))
}

/// Clear a run's annotation (recorded in its history); clearing none is not an error.
#[utoipa::path(
    delete, path = "/api/runs/{id}/annotation", tag = "annotations", operation_id = "deleteAnnotation",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 204, description = "The run has no annotation now"),
        (status = 400, description = "Malformed run id", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
    )
)]
pub async fn delete_annotation(
    State(store): State<Arc<dyn Store>>,
    Extension(caller): Extension<Caller>,
    PathParams(id): PathParams<Uuid>,
) -> Result<StatusCode, ApiError> {
    annotations::clear(&store, id, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every annotation change of a run, oldest first: who, when, person or rule, what.
#[utoipa::path(
    get, path = "/api/runs/{id}/annotations", tag = "annotations", operation_id = "annotationHistory",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Run id")),
    responses(
        (status = 200, description = "The history, oldest first", body = [AnnotationRecord]),
        (status = 400, description = "Malformed run id", body = ErrorBody),
        (status = 404, description = "Unknown run", body = ErrorBody),
    )
)]
pub async fn history(
    State(store): State<Arc<dyn Store>>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Json<Vec<AnnotationRecord>>, ApiError> {
    Ok(Json(store.annotation_history(id).await?))
}

/// Add a code to a prompt's failure-mode taxonomy.
#[utoipa::path(
    post, path = "/api/prompts/{id}/failure-modes", tag = "annotations", operation_id = "addFailureMode",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = NewFailureModeBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Added", body = FailureMode),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
        (status = 409, description = "The prompt has this code already", body = ErrorBody),
        (status = 422, description = "Wrong shape, bad code format or empty description", body = ErrorBody),
    )
)]
pub async fn add_failure_mode(
    State(store): State<Arc<dyn Store>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<NewFailureModeBody>,
) -> Result<(StatusCode, Json<FailureMode>), ApiError> {
    let added = annotations::add_failure_mode(&store, &id, &body.code, &body.description).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Runs of a prompt with no person's annotation: failed first (tests or graders failed), then
/// newest; keyset pages.
#[utoipa::path(
    get, path = "/api/prompts/{id}/annotation-queue", tag = "annotations", operation_id = "annotationQueue",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id"), QueueQuery),
    responses(
        (status = 200, description = "One page", body = QueuePage),
        (status = 400, description = "Limit out of range or not a number (invalid_query), or a foreign cursor (invalid_cursor)", body = ErrorBody),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn queue(
    State(store): State<Arc<dyn Store>>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<QueueQuery>,
) -> Result<Json<QueuePage>, ApiError> {
    Ok(Json(
        annotations::queue(&store, &id, query.limit, query.cursor.as_deref()).await?,
    ))
}

/// The axial-coding table: per code of the taxonomy the count and share of failed runs, plus
/// the failed runs with no code yet. A run failed when its success is known and false (tests
/// when known, else the rating, else the graders).
#[utoipa::path(
    get, path = "/api/prompts/{id}/failure-modes/counts", tag = "annotations", operation_id = "failureModeCounts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id"), CountsQuery),
    responses(
        (status = 200, description = "The table", body = FailureModeCounts),
        (status = 400, description = "Bad version query", body = ErrorBody),
        (status = 404, description = "Unknown prompt or version", body = ErrorBody),
    )
)]
pub async fn counts(
    State(store): State<Arc<dyn Store>>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<CountsQuery>,
) -> Result<Json<FailureModeCounts>, ApiError> {
    Ok(Json(store.failure_mode_counts(&id, query.version).await?))
}
