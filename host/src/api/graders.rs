//! `GET /api/graders`: the loaded grader components (name, contract version, world, hash,
//! generation, load error) and the definition types this host runs.

use axum::Json;
use axum::extract::State;

use super::error::ErrorBody;
use crate::graders::registry::GraderListing;
use crate::server::AppState;

/// Every grader component and definition type.
#[utoipa::path(
    get, path = "/api/graders", tag = "graders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Grader components (with load errors) and definition types", body = GraderListing),
        (status = 401, description = "No valid token", body = ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<GraderListing> {
    Json(state.graders.list())
}
