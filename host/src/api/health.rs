//! `GET /healthz` (liveness: is the database reachable?) and `GET /readyz` (readiness: is the
//! instance ready to serve everything, the built-in grader components included?).
//!
//! Two probes because they answer different questions: a load balancer that took an instance out
//! of rotation while its built-ins compile (~5–25 s at a first start, the Python interpreter
//! being the longest) would gain nothing, but a script that is about to grade or evaluate must
//! wait for them, or its first requests get `503 unavailable`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

/// The readiness answer, the same body for 200 and 503 so a waiting script can say what it
/// waits for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// `ready` (200) or `starting` (503).
    pub status: &'static str,
    /// Whether a query reached the database.
    pub database: bool,
    /// Whether every built-in grader component has been loaded (or has failed to).
    pub builtins_loaded: bool,
}

/// A prompt id no one can create (ids are slugs), so the probe is a real query that finds nothing.
const PROBE_ID: &str = "/healthz probe/";

async fn database_answers(state: &AppState) -> Result<(), StoreError> {
    // The store has no ping; a lookup that reaches the database answers the same question.
    match state.store.get_prompt(PROBE_ID).await {
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// 200 when a query reaches the database, 503 otherwise.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match database_answers(&state).await {
        Ok(()) => Ok(Json(Health { status: "ok" })),
        Err(e) => Err(ApiError::Unavailable(e.to_string())),
    }
}

/// 200 when the database answers and the built-in graders are loaded, 503 until then.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready: the database answers, the built-ins are loaded", body = Readiness),
        (status = 503, description = "Still starting, or the database does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match database_answers(&state).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "readiness probe: the database does not answer");
            false
        }
    };
    let builtins_loaded = state.graders.builtins_loaded();
    let ready = database && builtins_loaded;
    let body = Readiness {
        status: if ready { "ready" } else { "starting" },
        database,
        builtins_loaded,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
