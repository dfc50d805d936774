//! The A/B-test domain of the store: tests (`ab_tests`), the exposures recorded at assignment
//! (`ab_exposures`), and the per-arm totals an analysis needs, as the [`ExperimentStore`] trait
//! and its row types. The SQL is written once in `sql/experiments.rs`.
//!
//! Invariants held by the schema: one running test per prompt (partial unique index
//! `one_running_ab_test_per_prompt`, a [`StoreError::Conflict`] on that name), distinct
//! versions of the prompt, a split in `[0, 1]`, and one exposure per (test, task): the first
//! assignment recorded is kept, later ones of the same task are ignored.
//!
//! [`StoreError::Conflict`]: super::StoreError::Conflict

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Result;
use crate::experiments::Arm;

/// A test's life: `running`, then `stopped` (by a person, or by a deploy or rollback of the
/// prompt) or `completed` (a decision was carried out).
pub const STATUS_RUNNING: &str = "running";
/// See [`STATUS_RUNNING`].
pub const STATUS_STOPPED: &str = "stopped";
/// See [`STATUS_RUNNING`].
pub const STATUS_COMPLETED: &str = "completed";

/// A stored A/B test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbTest {
    /// The test's id.
    pub id: Uuid,
    /// The prompt whose versions are compared.
    pub prompt_id: String,
    /// The control version (the old prompt).
    pub version_a: i64,
    /// The treatment version (the new prompt).
    pub version_b: i64,
    /// Share of tasks sent to B, in `[0, 1]`.
    pub traffic_split: f64,
    /// The hash seed of the assignment (`{prompt}:{test id}:1`: experiment key and phase).
    pub seed: String,
    /// `running`, `stopped` or `completed`.
    pub status: String,
    /// The last decision (`ship_b`, `rollback`, `keep_running`, `inconclusive_keep_a`).
    pub decision: Option<String>,
    /// Tasks per arm before any decision.
    pub min_samples: i64,
    /// The analysis settings (metric, guardrails, maxDays, autoDeploy, …).
    #[schema(value_type = crate::prompts::AbConfig)]
    pub config: serde_json::Value,
    /// The last analysis saved (always when the test ended).
    #[schema(value_type = Option<crate::experiments::AbTestResult>)]
    pub result: Option<serde_json::Value>,
    /// Who started it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When its decision was carried out or recorded.
    pub decided_at: Option<DateTime<Utc>>,
}

/// What is needed to start a test.
#[derive(Debug, Clone)]
pub struct NewAbTest {
    /// The prompt (must exist).
    pub prompt_id: String,
    /// Version A (must exist).
    pub version_a: i64,
    /// Version B (must exist, differ from A).
    pub version_b: i64,
    /// Share to B.
    pub traffic_split: f64,
    /// Tasks per arm before any decision.
    pub min_samples: i64,
    /// The analysis settings, a JSON object.
    pub config: serde_json::Value,
    /// Who starts it.
    pub created_by: Option<String>,
}

/// How a running test ends.
#[derive(Debug, Clone)]
pub struct AbTestEnd {
    /// [`STATUS_STOPPED`] or [`STATUS_COMPLETED`].
    pub status: &'static str,
    /// The decision, if one was reached.
    pub decision: Option<String>,
    /// The final analysis.
    pub result: serde_json::Value,
    /// A deploy of version B carried out in the same transaction, by this actor (the test):
    /// it happens only if this ending wins, so of two instances ending the test at once exactly
    /// one deploys, and a crash cannot leave a completed `ship_b` test without its deploy.
    pub deploy_b_as: Option<String>,
}

/// An assignment to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The test.
    pub ab_test_id: Uuid,
    /// The hashing unit: the root task id, else the task id.
    pub task_id: String,
    /// The arm.
    pub arm: Arm,
    /// The arm's version.
    pub version: i64,
}

/// One arm's totals, intent to treat, from its exposures joined with the prompt's production
/// runs of the same unit (by root task id, else task id) and the unit's reported outcome.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ArmTotals {
    /// Tasks assigned.
    pub exposures: u64,
    /// Of them, tasks that succeeded: the reported outcome's `tests_passed` when known, else
    /// any of its runs succeeded (the success definition of `sql/figures.rs`); a task with
    /// neither counts as a failure.
    pub successes: u64,
    /// Tasks that reported tokens, their sum and sum of squares (tokens summed over a task's
    /// runs).
    pub tokens: (u64, f64, f64),
    /// Same for latency (ms).
    pub latency: (u64, f64, f64),
}

/// Stored A/B tests. `NotFound` errors carry a [`Missing`](super::Missing) naming the test,
/// the prompt or the version.
#[async_trait]
pub trait ExperimentStore: Send + Sync {
    /// Starts a test. `NotFound` for an unknown prompt or version; `Conflict` on
    /// `one_running_ab_test_per_prompt` when the prompt has one running.
    async fn create_ab_test(&self, new: NewAbTest) -> Result<AbTest>;

    /// The running test of a prompt, if any (`NotFound` for an unknown prompt).
    async fn running_ab_test(&self, prompt_id: &str) -> Result<Option<AbTest>>;

    /// A test by id.
    async fn get_ab_test(&self, id: Uuid) -> Result<AbTest>;

    /// Every test of a prompt, newest first.
    async fn list_ab_tests(&self, prompt_id: &str) -> Result<Vec<AbTest>>;

    /// Ends a running test, deploying B in the same transaction when
    /// [`AbTestEnd::deploy_b_as`] says so (a no-op if B is already active). `NotFound`
    /// (running test) if it is not running any more: of two concurrent enders exactly one
    /// succeeds.
    async fn end_ab_test(&self, id: Uuid, end: AbTestEnd) -> Result<AbTest>;

    /// The running tests of every prompt (what the background evaluator looks at).
    async fn running_ab_tests(&self) -> Result<Vec<AbTest>>;

    /// Saves the latest analysis of a running test (no-op once it ended).
    async fn save_ab_result(
        &self,
        id: Uuid,
        decision: &str,
        result: &serde_json::Value,
    ) -> Result<()>;

    /// Records exposures, keeping the first of each (test, task); returns how many were new.
    async fn record_exposures(&self, exposures: &[Exposure]) -> Result<u64>;

    /// The totals of arms A and B.
    async fn ab_test_totals(&self, id: Uuid) -> Result<[ArmTotals; 2]>;
}
