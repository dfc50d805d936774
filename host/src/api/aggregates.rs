//! `POST /api/operations/recompute-aggregates`: the repair of the running aggregates (per-version
//! figures, per-arm A/B totals) for a database whose rows were written around the service (bulk
//! SQL, a restore). The writers keep them current otherwise (`store/sql/figures.rs`,
//! `store/sql/ab_totals.rs`).

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ErrorBody};
use super::state::AppState;

/// What the repair did.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recomputed {
    /// Always `recomputed`.
    pub status: String,
    /// How long the recomputation held the prompts' write locks, in milliseconds.
    pub elapsed_ms: u64,
}

/// Rebuilds every version's figures and every A/B test's totals from the stored rows, holding
/// every prompt's write lock meanwhile (seconds at millions of runs).
#[utoipa::path(
    post, path = "/api/operations/recompute-aggregates", tag = "operations",
    operation_id = "recomputeAggregates",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The aggregates were rebuilt", body = Recomputed),
        (status = 401, description = "No or unknown token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
    )
)]
pub async fn recompute(State(state): State<AppState>) -> Result<Json<Recomputed>, ApiError> {
    let started = Instant::now();
    state.store.recompute_aggregates().await?;
    Ok(Json(Recomputed {
        status: "recomputed".to_owned(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    }))
}
