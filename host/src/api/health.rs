//! `GET /healthz`: is the database reachable?

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::store::StoreError;

/// The health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the status is 200.
    pub status: &'static str,
}

/// A prompt id no one can create (ids are slugs), so the probe is a real query that finds nothing.
const PROBE_ID: &str = "/healthz probe/";

/// 200 when a query reaches the database, 503 otherwise.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // The store has no ping; a lookup that reaches the database answers the same question.
    match state.store.get_prompt(PROBE_ID).await {
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(Json(Health { status: "ok" })),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}
