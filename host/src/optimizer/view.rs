//! What `GET /api/optimizations/{id}` answers (and `flywheel optimize` prints): the run's
//! request, its progress read from the last checkpoint while it runs, and its report once done.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::budget::Spent;
use super::report::{Report, StopReason};
use super::request::OptimizationSpec;
use super::state::LoopState;
use crate::store::{Optimization, OptimizationStatus};

/// Where a run stands (from its last checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Rounds done.
    pub rounds: i64,
    /// Candidates considered (the start included).
    pub candidates: i64,
    /// Of those, on the front.
    pub accepted: i64,
    /// Proposals discarded before any task call.
    pub discarded: i64,
    /// Rounds in a row without a better candidate.
    pub stale_rounds: i64,
    /// The starting prompt's mean score on the front rows.
    pub start_train_score: Option<f64>,
    /// The best candidate's.
    pub best_train_score: Option<f64>,
    /// What was spent.
    pub spent: Spent,
    /// Why the loop stopped, once it has.
    pub stop_reason: Option<StopReason>,
}

/// An optimization as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimizationView {
    /// Its id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// The version it started from.
    pub start_version: i64,
    /// Where it is.
    pub status: OptimizationStatus,
    /// What it does.
    pub spec: OptimizationSpec,
    /// The graders that score candidates.
    pub graders: Vec<String>,
    /// Progress so far.
    pub progress: Progress,
    /// The report, once it ended.
    pub report: Option<Report>,
    /// The version the winner became, when it won.
    pub created_version: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an instance first claimed it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The view of a stored optimization; `None` if its spec is unreadable (never written so).
pub fn view(optimization: Optimization) -> Option<OptimizationView> {
    let spec: OptimizationSpec = serde_json::from_value(optimization.spec).ok()?;
    let state: Option<LoopState> = optimization
        .state
        .and_then(|s| serde_json::from_value(s).ok());
    let progress = state.as_ref().map_or_else(Progress::default, |state| {
        let front: Vec<Uuid> = state
            .candidates
            .first()
            .map(|c| c.train.keys().copied().collect())
            .unwrap_or_default();
        let scored = !front.is_empty();
        Progress {
            rounds: state.round,
            candidates: state.candidates.len() as i64,
            accepted: state.candidates.iter().filter(|c| c.accepted).count() as i64,
            discarded: state.discarded.total(),
            stale_rounds: state.stale_rounds,
            start_train_score: scored.then(|| state.candidates[0].mean_on(&front)),
            best_train_score: state
                .candidates
                .get(state.best)
                .filter(|_| scored)
                .map(|c| c.mean_on(&front)),
            spent: state.spent.clone(),
            stop_reason: state.stop,
        }
    });
    let report = optimization
        .report
        .and_then(|r| serde_json::from_value::<Report>(r).ok())
        .map(|mut report| {
            // The version's number is known only once the end is committed.
            report.outcome.version = optimization.created_version;
            report
        });
    Some(OptimizationView {
        id: optimization.id,
        prompt_id: optimization.prompt_id,
        start_version: optimization.start_version,
        status: optimization.status,
        spec,
        graders: optimization.graders,
        progress,
        report,
        created_version: optimization.created_version,
        error: optimization.error,
        cancel_requested: optimization.cancel_requested,
        created_by: optimization.created_by,
        created_at: optimization.created_at,
        started_at: optimization.started_at,
        finished_at: optimization.finished_at,
    })
}
