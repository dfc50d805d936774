//! The grading-job domain of the store: grading runs over recorded runs (the `grading_runs`
//! table, the rows each one grades in `grading_run_rows`, verdicts in `grading_results`), their
//! claim by one instance under a lease, and the automatic grading of newly recorded runs. The
//! SQL is in `sql/grading_jobs.rs`; the only dialect difference, how a claim skips rows another
//! instance holds, is [`Backend::SKIP_LOCKED`](super::sql::Backend::SKIP_LOCKED).
//!
//! # Exactly once
//!
//! A job's rows are fixed when it is created (`grading_run_rows`, in id order). A worker grades
//! them a chunk at a time and commits each chunk in one transaction that also advances
//! `processed_rows`, and only while it still holds the claim ([`GradingJobStore::record_chunk`]
//! checks both). So a job resumed after a restart, or taken over by another instance after its
//! lease expired, starts at the first row whose chunk was not committed: no row graded twice,
//! none skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Result;

/// Where a grading job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for an instance to claim it.
    Queued,
    /// Claimed and being graded.
    Running,
    /// Every row graded.
    Completed,
    /// Stopped by an error that is not a row's (the prompt's graders cannot be resolved).
    Failed,
    /// Cancelled by a person.
    Cancelled,
    /// The token budget was spent; the rows graded so far are kept.
    BudgetExhausted,
}

impl JobStatus {
    /// The name stored in `grading_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::BudgetExhausted => "budget_exhausted",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Cancelled,
            JobStatus::BudgetExhausted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Whether the job will not change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
}

/// What a job of the `grading_runs` queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Grades recorded runs (`/api/grading-runs`).
    Grading,
    /// Evaluates versions on a dataset (`/api/evals`).
    Evaluation,
}

impl JobKind {
    /// The name stored in `grading_runs.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Grading => "grading",
            JobKind::Evaluation => "evaluation",
        }
    }
}

/// Which jobs a list shows; every field present narrows it. Lists are newest first and
/// keyset-paginated by id (ids are UUIDv7: id order is creation order on both backends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobListFilter {
    /// Only this prompt's jobs.
    pub prompt_id: Option<String>,
    /// Only jobs of this kind.
    pub kind: Option<JobKind>,
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs created before this one (the last of the page before).
    pub before: Option<Uuid>,
}

/// Which recorded runs of the prompt a job grades (every field narrows the selection). Kept
/// with the job as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunSelection {
    /// Runs recorded at or after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Runs recorded before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Runs whose current rating is this (`good` or `bad`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<String>,
    /// Runs with (`true`) or without (`false`) an annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotated: Option<bool>,
    /// Only these runs (of the prompt); at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<Uuid>>,
}

/// What is needed to create a grading job.
#[derive(Debug, Clone)]
pub struct NewGradingJob {
    /// The prompt whose runs are graded (must exist).
    pub prompt_id: String,
    /// Only runs of this version (must exist when given).
    pub version: Option<i64>,
    /// The grader definitions to apply, by name (already checked to exist).
    pub graders: Vec<String>,
    /// Which runs.
    pub selection: RunSelection,
    /// Model tokens the job may spend; `None` for the server's default.
    pub token_budget: Option<i64>,
    /// Who asked for it (token name).
    pub created_by: String,
}

/// A grading job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GradingJob {
    /// Its id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// The version, when one was asked for.
    pub version: Option<i64>,
    /// The definitions it applies, by name.
    pub graders: Vec<String>,
    /// The selection it was created with.
    pub filter: RunSelection,
    /// Where it is.
    pub status: JobStatus,
    /// Rows selected when it was created.
    pub total: i64,
    /// Rows graded so far (committed).
    pub processed: i64,
    /// Rows every grader passed.
    pub passed: i64,
    /// Rows some grader failed (and none errored).
    pub failed: i64,
    /// Rows some grader could not grade.
    pub errored: i64,
    /// Grader verdicts per error kind (`timeout`, `invalid_input`, `budget_exhausted`…).
    pub errors: BTreeMap<String, i64>,
    /// Model tokens allowed, when limited.
    pub token_budget: Option<i64>,
    /// Model tokens spent.
    pub tokens_used: i64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Whether a cancel was asked for (a running job stops after its current chunk).
    pub cancel_requested: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an instance first claimed it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// The instance holding it, while running.
    pub claimed_by: Option<String>,
    /// Until when that claim holds without renewal.
    pub lease_until: Option<DateTime<Utc>>,
}

/// A recorded run as graders see it: its text and what is known about it. Built from the
/// run's row plus its previous attempt's failure signature.
#[derive(Debug, Clone, PartialEq)]
pub struct GradableRun {
    /// The run's id.
    pub id: Uuid,
    /// Its position in the job (0-based), or 0 outside a job.
    pub row_index: i64,
    /// The prompt.
    pub prompt_id: String,
    /// The version that produced it.
    pub version: i64,
    /// The task.
    pub task_id: String,
    /// The attempt within the task.
    pub attempt: i64,
    /// The template variables.
    pub input: Value,
    /// The agent's output.
    pub output: Option<String>,
    /// The model that produced it.
    pub model: Option<String>,
    /// Outcome: whether the tests passed.
    pub tests_passed: Option<bool>,
    /// Outcome: whether the PR was merged.
    pub pr_merged: Option<bool>,
    /// Outcome: the files the change should have touched.
    pub expected_files: Option<Value>,
    /// Outcome: the failure signature of this run's task.
    pub failure_signature: Option<String>,
    /// The output of the same task's previous attempt of this prompt, if any.
    pub previous_output: Option<String>,
    /// The failure signature reported for the previous attempt's task, if any.
    pub previous_failure_signature: Option<String>,
    /// The current annotation's source (`person` or `rule`), if annotated.
    pub annotation_source: Option<String>,
    /// When its outcome was last applied, as read: automatic grading marks the run graded only
    /// if no outcome arrived in between (else the rules must see the new outcome).
    pub outcome_at: Option<DateTime<Utc>>,
}

/// One grader's verdict on one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraderVerdict {
    /// The definition's name.
    pub grader: String,
    /// The definition's id, when it still exists.
    #[serde(skip)]
    pub grader_id: Option<Uuid>,
    /// The score, when graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Whether it passed, when the grader decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// The label, when the grader gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The grader's reasoning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// The error kind (`timeout`, `invalid_input`…), when it was not graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The error's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Model prompt tokens spent.
    #[serde(skip)]
    pub prompt_tokens: Option<i64>,
    /// Model completion tokens spent.
    #[serde(skip)]
    pub completion_tokens: Option<i64>,
    /// How long grading took, in microseconds.
    #[serde(skip)]
    pub duration_us: Option<i64>,
}

/// Every verdict on one run from one pass of graders.
#[derive(Debug, Clone, PartialEq)]
pub struct GradedRun {
    /// The run.
    pub data_id: Uuid,
    /// Its prompt.
    pub prompt_id: String,
    /// When its outcome was last applied, as read before grading (see
    /// [`GradableRun::outcome_at`]).
    pub outcome_at: Option<DateTime<Utc>>,
    /// Its position in the job.
    pub row_index: i64,
    /// One verdict per grader applied.
    pub verdicts: Vec<GraderVerdict>,
}

/// What a committed chunk adds to a job's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkTotals {
    /// Rows every grader passed.
    pub passed: i64,
    /// Rows some grader failed.
    pub failed: i64,
    /// Rows some grader could not grade.
    pub errored: i64,
    /// Verdicts per error kind.
    pub errors: BTreeMap<String, i64>,
    /// Model tokens spent.
    pub tokens: i64,
}

/// Grading jobs and automatic grading. `NotFound` errors carry a
/// [`Missing`](super::Missing).
#[async_trait]
pub trait GradingJobStore: Send + Sync {
    /// Creates a queued job and fixes its rows: the prompt's production runs matching the
    /// selection, in id order. `NotFound` for an unknown prompt or version.
    async fn create_grading_job(&self, new: NewGradingJob) -> Result<GradingJob>;
    /// One job; `NotFound` if absent.
    async fn get_grading_job(&self, id: Uuid) -> Result<GradingJob>;
    /// Up to `limit` jobs matching `filter`, newest first (grading runs and evaluations both,
    /// unless `filter.kind` says which).
    async fn list_grading_jobs(
        &self,
        filter: &JobListFilter,
        limit: u32,
    ) -> Result<Vec<GradingJob>>;
    /// Cancels a job: a queued one at once, a running one when its worker next commits (its
    /// chunk in flight is kept). A final job is left as it is. `NotFound` if absent.
    async fn cancel_grading_job(&self, id: Uuid) -> Result<GradingJob>;
    /// Claims the oldest job that is queued, or running under a lease that has expired (its
    /// instance died), for `instance` until `lease` from now. Another instance's live claim is
    /// never taken.
    async fn claim_grading_job(
        &self,
        instance: &str,
        lease: Duration,
    ) -> Result<Option<GradingJob>>;
    /// Extends `instance`'s claim on the job; `false` if it no longer holds it.
    async fn renew_grading_lease(&self, id: Uuid, instance: &str, lease: Duration) -> Result<bool>;
    /// The job's rows from position `from` on, at most `limit`, with what graders need.
    async fn job_rows(&self, id: Uuid, from: i64, limit: usize) -> Result<Vec<GradableRun>>;
    /// Commits one graded chunk that starts at position `from`: the verdicts go to
    /// `grading_results` and into each run's `graderResults`, the counters advance. Only while
    /// `instance` holds the claim and the job is at `from`; otherwise nothing is written and
    /// `false` is returned (the job was taken over, or cancelled and finished).
    async fn record_chunk(
        &self,
        id: Uuid,
        instance: &str,
        from: i64,
        graded: &[GradedRun],
        totals: &ChunkTotals,
    ) -> Result<bool>;
    /// Puts `instance`'s job in a final status; `false` if it no longer holds it.
    async fn finish_grading_job(
        &self,
        id: Uuid,
        instance: &str,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<bool>;
    /// Up to `limit` production runs waiting for the automatic graders, oldest first.
    async fn runs_to_auto_grade(&self, limit: usize) -> Result<Vec<GradableRun>>;
    /// Stores the automatic graders' verdicts on runs (merged into `graderResults`) and marks
    /// them graded. A run that changed since it was read (an outcome arrived) is marked again
    /// by that change, so it is graded once more.
    async fn record_auto_grades(&self, graded: &[GradedRun]) -> Result<()>;
}
