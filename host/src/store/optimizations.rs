//! The optimization domain of the store: runs of the prompt optimizer (`crate::optimizer`), as
//! the [`OptimizationStore`] trait and its row types. The SQL is in `sql/optimizations.rs`.
//!
//! An optimization is claimed by one instance under a lease, like a grading job: the worker
//! renews the lease while it works and checkpoints the loop's state (opaque JSON to the store)
//! after every round together with the model answers it got, so an instance that dies leaves a
//! run that another (or the restarted one) claims once the lease has expired and resumes from
//! the last checkpoint, asking the model nothing it already asked. The end is written in one
//! transaction: the final status, the report and, when the winner beat the starting prompt, its
//! new version — never a version without its report, never a report without its version.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Result;
use super::evaluations::CachedAnswer;
use super::prompts::PromptVersion;

/// Where an optimization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptimizationStatus {
    /// Waiting for an instance to claim it.
    Queued,
    /// Claimed and running.
    Running,
    /// Ended by its loop (target reached, no improvement, budget spent); it has a report.
    Completed,
    /// Cancelled by a person; it has a report on the best candidate found before.
    Cancelled,
    /// Stopped by an error that is not the loop's (the dataset or a grader is gone).
    Failed,
}

impl OptimizationStatus {
    /// The name stored in `optimizations.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptimizationStatus::Queued => "queued",
            OptimizationStatus::Running => "running",
            OptimizationStatus::Completed => "completed",
            OptimizationStatus::Cancelled => "cancelled",
            OptimizationStatus::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<Self> {
        [
            OptimizationStatus::Queued,
            OptimizationStatus::Running,
            OptimizationStatus::Completed,
            OptimizationStatus::Cancelled,
            OptimizationStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Whether it will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            OptimizationStatus::Queued | OptimizationStatus::Running
        )
    }
}

/// What is needed to queue an optimization (checked by `crate::optimizer::request`).
#[derive(Debug, Clone)]
pub struct NewOptimization {
    /// The prompt.
    pub prompt_id: String,
    /// The version it starts from.
    pub start_version: i64,
    /// What was asked (`crate::optimizer::request::OptimizationSpec` as JSON).
    pub spec: Value,
    /// The grader definitions that score candidates, by name.
    pub graders: Vec<String>,
    /// Who asked for it (token name).
    pub created_by: String,
}

/// An optimization as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimization {
    /// Its id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// The version it started from.
    pub start_version: i64,
    /// What was asked.
    pub spec: Value,
    /// The graders that score candidates.
    pub graders: Vec<String>,
    /// Where it is.
    pub status: OptimizationStatus,
    /// The loop's last checkpoint, once it has one.
    pub state: Option<Value>,
    /// The report, once it ended (except a failure before any round).
    pub report: Option<Value>,
    /// The version the winner became, when it beat the starting prompt.
    pub created_version: Option<i64>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// The instance holding it.
    pub claimed_by: Option<String>,
    /// Until when that claim holds without renewal.
    pub lease_until: Option<DateTime<Utc>>,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an instance first claimed it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How an optimization ends, written in one transaction.
#[derive(Debug, Clone)]
pub struct OptimizationEnd {
    /// `Completed`, `Cancelled` or `Failed`.
    pub status: OptimizationStatus,
    /// The final state (what was spent), kept beside the report.
    pub state: Option<Value>,
    /// The report.
    pub report: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The winner's text, when it becomes a version: created inactive, source `optimizer`,
    /// parent the starting version, with these notes.
    pub winner: Option<(String, String)>,
}

/// Optimizations. `NotFound` errors carry a [`Missing`](super::Missing).
#[async_trait]
pub trait OptimizationStore: Send + Sync {
    /// Queues an optimization. `NotFound` for an unknown prompt or starting version.
    async fn create_optimization(&self, new: NewOptimization) -> Result<Optimization>;
    /// One optimization; `NotFound` (`Missing::Optimization`) if absent.
    async fn get_optimization(&self, id: Uuid) -> Result<Optimization>;
    /// Up to `limit` optimizations, newest first; only the prompt's when `prompt_id` is given.
    async fn list_optimizations(
        &self,
        prompt_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Optimization>>;
    /// Claims the oldest queued optimization, or a running one whose lease has expired (its
    /// instance died), for `instance` until `lease` from now; `None` when there is none.
    async fn claim_optimization(
        &self,
        instance: &str,
        lease: Duration,
    ) -> Result<Option<Optimization>>;
    /// Extends the claim; `false` when `instance` no longer holds it.
    async fn renew_optimization_lease(
        &self,
        id: Uuid,
        instance: &str,
        lease: Duration,
    ) -> Result<bool>;
    /// Writes the loop's state and caches `answers` (a key cached meanwhile keeps its first
    /// answer), in one transaction; `false`, writing nothing, when `instance` no longer holds it.
    async fn checkpoint_optimization(
        &self,
        id: Uuid,
        instance: &str,
        state: &Value,
        answers: &[CachedAnswer],
    ) -> Result<bool>;
    /// Asks for a cancel: a queued optimization is cancelled at once (without a report), a
    /// running one stops at its next check; a final one is answered as it is.
    async fn cancel_optimization(&self, id: Uuid) -> Result<Optimization>;
    /// Ends the optimization as `end` says, creating the winner's version when there is one,
    /// in one transaction. `None`, writing nothing, when `instance` no longer holds it.
    async fn finish_optimization(
        &self,
        id: Uuid,
        instance: &str,
        end: OptimizationEnd,
    ) -> Result<Option<(Optimization, Option<PromptVersion>)>>;
}
