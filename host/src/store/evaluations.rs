//! The evaluation domain of the store: offline evaluations as jobs of the grading-run queue
//! (`grading_runs` rows of kind `evaluation`, claimed, renewed, cancelled and finished through
//! [`GradingJobStore`](super::GradingJobStore) like any grading run), their outputs as runs of
//! origin `evaluation`, their verdicts in `grading_results`, and the model answer cache. The SQL
//! is in `sql/evaluations.rs`.
//!
//! # Exactly once
//!
//! An evaluation's positions are fixed when it is created (see [`EvaluationSpec::locate`]). A
//! worker evaluates them a chunk at a time and commits each chunk in one transaction
//! ([`EvaluationStore::record_evaluation_chunk`]: the output runs, their verdicts, the cache
//! entries of the answers it got, the counters) only while it holds the claim and the job is at
//! the chunk's first position, as grading runs do. A job resumed after a restart starts at the
//! first position not committed; the model is not asked again for a committed one.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Result;
use super::datasets::Split;
use super::grading_jobs::{ChunkTotals, GradedRun, GradingJob, JobListFilter};
use crate::evals::cache::Sampling;

/// What an evaluation evaluates, kept with the job (`grading_runs.spec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationSpec {
    /// The prompt's versions compared, in the order asked.
    pub versions: Vec<i64>,
    /// The dataset's name.
    pub dataset: String,
    /// The dataset version evaluated (fixed at creation: the latest when none was asked).
    pub dataset_version: i64,
    /// Only rows of this split, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Rows evaluated per version (the dataset version's rows in that split).
    pub rows: i64,
    /// The task model asked; the endpoint's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Answers sampled per row and version.
    pub repeat: i64,
    /// Model calls the evaluation may make, when limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_budget: Option<i64>,
    /// The task model's sampling parameters (none set: the model's defaults).
    #[serde(default, skip_serializing_if = "Sampling::is_default")]
    pub sampling: Sampling,
}

/// Where one position of an evaluation points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Index into [`EvaluationSpec::versions`].
    pub version_index: usize,
    /// Index of the dataset row among the rows evaluated (in dataset order).
    pub row_index: usize,
    /// The repeat, from 0.
    pub repeat: i64,
}

impl EvaluationSpec {
    /// Positions in all: versions × rows × repeats.
    pub fn total(&self) -> i64 {
        i64::try_from(self.versions.len())
            .unwrap_or(i64::MAX)
            .saturating_mul(self.rows)
            .saturating_mul(self.repeat)
    }

    /// What position `p` evaluates. Versions vary fastest, then repeats, then rows: the versions
    /// of one row are next to each other, so an evaluation stopped early (budget, cancel) leaves
    /// complete pairs to compare.
    pub fn locate(&self, position: i64) -> Located {
        let versions = i64::try_from(self.versions.len().max(1)).unwrap_or(1);
        let repeat = self.repeat.max(1);
        Located {
            version_index: usize::try_from(position % versions).unwrap_or(0),
            repeat: (position / versions) % repeat,
            row_index: usize::try_from(position / (versions * repeat)).unwrap_or(0),
        }
    }
}

/// What is needed to queue an evaluation (checked by `crate::evals::request`).
#[derive(Debug, Clone)]
pub struct NewEvaluation {
    /// The prompt.
    pub prompt_id: String,
    /// What it evaluates.
    pub spec: EvaluationSpec,
    /// The grader definitions applied to every output, by name.
    pub graders: Vec<String>,
    /// Model tokens it may spend; `None` for the server's default.
    pub token_budget: Option<i64>,
    /// Who asked for it (token name).
    pub created_by: String,
}

/// An evaluation job as stored: the queue's row plus what only evaluations have.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationJob {
    /// The job (status, progress, counters, claim).
    pub job: GradingJob,
    /// What it evaluates.
    pub spec: EvaluationSpec,
    /// Model calls made (committed).
    pub model_calls: i64,
    /// Answers taken from the cache (committed).
    pub cached_answers: i64,
}

/// A model answer kept by its request's key.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedAnswer {
    /// SHA-256 (hex) of the request (see `crate::evals::cache`).
    pub key: String,
    /// The model that answered.
    pub model: String,
    /// The answer's text.
    pub answer: String,
    /// Prompt tokens it used.
    pub prompt_tokens: i64,
    /// Completion tokens it used.
    pub completion_tokens: i64,
}

/// One evaluated position, stored as a run of origin `evaluation`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationOutput {
    /// The run's id (the `data_id` of its verdicts).
    pub run_id: Uuid,
    /// Its position in the evaluation.
    pub position: i64,
    /// The version evaluated.
    pub version: i64,
    /// The dataset row.
    pub dataset_row: Uuid,
    /// The repeat, from 0.
    pub repeat: i64,
    /// The row's template variables (its `item`).
    pub input: Value,
    /// The model's answer; `None` when the row errored.
    pub output: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// Prompt tokens used (the cached call's, for a cached answer).
    pub prompt_tokens: Option<i64>,
    /// Completion tokens used.
    pub completion_tokens: Option<i64>,
    /// How long getting the answer took here (a cached answer takes about nothing).
    pub latency_ms: Option<i64>,
    /// Why the row has no answer: its kind (`missing_variable`, `timeout`, `rate_limited`…).
    pub error: Option<String>,
    /// The error's message.
    pub error_message: Option<String>,
}

/// One chunk of an evaluation, committed together.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationChunk<'a> {
    /// The first position of the chunk (the job's `processed` before it).
    pub from: i64,
    /// The outputs, in position order from `from` on, without gaps.
    pub outputs: &'a [EvaluationOutput],
    /// The verdicts on the outputs that have an answer.
    pub graded: &'a [GradedRun],
    /// The counters the chunk adds (row errors included in `errored` and `errors`).
    pub totals: &'a ChunkTotals,
    /// Answers the model gave in this chunk, to cache.
    pub new_answers: &'a [CachedAnswer],
    /// Model calls made in this chunk.
    pub model_calls: i64,
    /// Answers taken from the cache in this chunk.
    pub cached_answers: i64,
}

/// One stored output with its verdicts, as results read them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredOutput {
    /// The version evaluated.
    pub version: i64,
    /// The dataset row.
    pub dataset_row: Uuid,
    /// The repeat.
    pub repeat: i64,
    /// The row's error kind, when it has no answer.
    pub error: Option<String>,
    /// Prompt and completion tokens together, when known.
    pub tokens: Option<i64>,
    /// Latency, when known.
    pub latency_ms: Option<i64>,
    /// Each grader's verdict, by name.
    pub verdicts: BTreeMap<String, StoredVerdict>,
}

/// What results read of one verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVerdict {
    /// The score, when graded.
    pub score: Option<f64>,
    /// Whether it passed, when the grader decides.
    pub passed: Option<bool>,
    /// The error kind, when it was not graded.
    pub error: Option<String>,
}

/// Evaluations. `NotFound` errors carry a [`Missing`](super::Missing).
#[async_trait]
pub trait EvaluationStore: Send + Sync {
    /// Queues an evaluation of `spec.total()` positions. `NotFound` for an unknown prompt or
    /// version.
    async fn create_evaluation(&self, new: NewEvaluation) -> Result<EvaluationJob>;
    /// One evaluation; `NotFound` (`Missing::Evaluation`) if absent or a grading run.
    async fn get_evaluation(&self, id: Uuid) -> Result<EvaluationJob>;
    /// Up to `limit` evaluations matching `filter`, newest first (`filter.kind` is ignored:
    /// grading runs are never listed).
    async fn list_evaluations(
        &self,
        filter: &JobListFilter,
        limit: u32,
    ) -> Result<Vec<EvaluationJob>>;
    /// The cached answers among `keys` (those absent are simply not answered).
    async fn cached_answers(&self, keys: &[String]) -> Result<Vec<CachedAnswer>>;
    /// Commits one chunk (see the module documentation); `false`, writing nothing, when
    /// `instance` no longer holds the job or the job is not at `chunk.from`.
    async fn record_evaluation_chunk(
        &self,
        id: Uuid,
        instance: &str,
        chunk: EvaluationChunk<'_>,
    ) -> Result<bool>;
    /// Every committed output of the evaluation with its verdicts, in position order.
    async fn evaluation_outputs(&self, id: Uuid) -> Result<Vec<StoredOutput>>;
}
