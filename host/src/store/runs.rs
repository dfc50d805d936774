//! The runs domain of the store: recorded agent runs (`prompt_optimization_data`), the outcomes
//! reported later per task (`task_outcomes`), and reading runs back, as the [`RunStore`] trait
//! and its row types. The SQL is written once in `sql/runs/`; no backend needs dialect code of
//! its own for it.
//!
//! What this domain promises (the conformance cases in `conformance/runs.rs` check each):
//! - recording is idempotent on (prompt, task, attempt): a run recorded again is answered with
//!   the id it was stored under and changes nothing;
//! - a batch is all or nothing: a run naming an unknown prompt or version refuses the whole
//!   batch ([`StoreError::InBatch`] says which run);
//! - an outcome is kept per task, whatever arrives first: a run recorded after its task's
//!   outcome takes it at once;
//! - the figures of every version a write touches (`tasks_executed`, `success_rate`,
//!   `avg_tokens`) and the A/B totals of the units it touches are running aggregates, adjusted
//!   in the same transaction (`sql/figures.rs`, `sql/ab_totals.rs`).
//!
//! Annotations and grader results are written by other domains; this one only reads them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Result, StoreError};

/// A run to record, already validated (`crate::runs` checks sizes and ranges).
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// The prompt (must exist).
    pub prompt_id: String,
    /// The version used; `None` means the version resolve hands the task (see
    /// `sql::runs::default_version_for_run`).
    pub version: Option<i64>,
    /// AutoDev's task.
    pub task_id: String,
    /// The attempt within the task, from 1; part of the idempotency key.
    pub attempt: i64,
    /// The root task, when it differs from the task (A/B assignment hashes it).
    pub root_task_id: Option<String>,
    /// The template variables the prompt was rendered with.
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The model's answer.
    pub output: String,
    /// The model that answered.
    pub model: Option<String>,
    /// Prompt tokens.
    pub tokens_in: Option<i64>,
    /// Completion tokens.
    pub tokens_out: Option<i64>,
    /// Wall time of the model call.
    pub latency_ms: Option<i64>,
}

impl NewRun {
    /// The idempotency key's run part, as stored in `run_key` (the attempt in decimal).
    pub fn run_key(&self) -> String {
        self.attempt.to_string()
    }

    /// Tokens in and out together (`total_tokens`, which `avg_tokens` averages): their sum, the
    /// one given when only one is, none when neither is.
    pub fn total_tokens(&self) -> Option<i64> {
        match (self.tokens_in, self.tokens_out) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        }
    }
}

/// What recording one run did: its id, and whether this call stored it (`false`: it was
/// recorded before, by an earlier call or earlier in the same batch, and was left as it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRun {
    /// The run's id.
    pub id: Uuid,
    /// Whether this call stored it.
    pub created: bool,
}

/// An outcome of a task, as reported (fields not given keep their earlier value).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewOutcome {
    /// The task.
    pub task_id: String,
    /// Whether the task's tests passed.
    pub tests_passed: Option<bool>,
    /// Whether the task's pull request was merged.
    pub pr_merged: Option<bool>,
    /// The files the task should have changed.
    pub expected_files: Option<Vec<String>>,
    /// The signature of the failure (the fixer's `same_error_repeated` compares them).
    pub failure_signature: Option<String>,
}

/// A human or rule judgement of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// The output was right.
    Good,
    /// The output was wrong.
    Bad,
}

impl Rating {
    /// The value stored in `rating`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Good => "good",
            Rating::Bad => "bad",
        }
    }

    /// Parses a stored or given value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "good" => Some(Rating::Good),
            "bad" => Some(Rating::Bad),
            _ => None,
        }
    }
}

/// Who made an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationSource {
    /// A person (the token's name is the annotator).
    Person,
    /// A rule (its name is the annotator).
    Rule,
}

impl AnnotationSource {
    /// The value stored in `annotation_source`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationSource::Person => "person",
            AnnotationSource::Rule => "rule",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "person" => Some(AnnotationSource::Person),
            "rule" => Some(AnnotationSource::Rule),
            _ => None,
        }
    }
}

/// The outcome applied to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunOutcome {
    /// Whether the task's tests passed (unknown: null).
    pub tests_passed: Option<bool>,
    /// Whether the task's pull request was merged.
    pub pr_merged: Option<bool>,
    /// The files the task should have changed.
    pub expected_files: Option<Vec<String>>,
    /// The failure's signature.
    pub failure_signature: Option<String>,
    /// When the outcome (its latest report) was reported.
    pub reported_at: DateTime<Utc>,
}

/// The current annotation of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunAnnotation {
    /// Good or bad.
    pub rating: Option<Rating>,
    /// A critique of the output.
    pub output_feedback: Option<String>,
    /// A code of the prompt's failure-mode taxonomy.
    pub failure_mode: Option<String>,
    /// A person or a rule.
    pub source: Option<AnnotationSource>,
    /// The token's name of the person, or the rule's name.
    pub annotated_by: Option<String>,
    /// When.
    pub annotated_at: Option<DateTime<Utc>>,
}

/// Where a run came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunOrigin {
    /// Recorded by an agent in production.
    Production,
    /// Produced by an offline evaluation (never counted in figures).
    Evaluation,
}

impl RunOrigin {
    /// The value stored in `prompt_optimization_data.origin`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOrigin::Production => "production",
            RunOrigin::Evaluation => "evaluation",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "production" => Some(RunOrigin::Production),
            "evaluation" => Some(RunOrigin::Evaluation),
            _ => None,
        }
    }
}

/// A recorded run as the API shows it: what the agent sent, the outcome of its task, its
/// current annotation and its grader results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// The run's id (a uuid v7: ids sort by recording time).
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// The version used.
    pub version: i64,
    /// The task.
    pub task_id: String,
    /// The attempt within the task.
    pub attempt: i64,
    /// The root task.
    pub root_task_id: Option<String>,
    /// The template variables.
    #[schema(value_type = Object)]
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The model's answer.
    pub output: Option<String>,
    /// The model.
    pub model: Option<String>,
    /// Prompt tokens.
    pub tokens_in: Option<i64>,
    /// Completion tokens.
    pub tokens_out: Option<i64>,
    /// Wall time of the model call.
    pub latency_ms: Option<i64>,
    /// Production or evaluation.
    pub origin: RunOrigin,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it last changed (outcome, annotation, grading).
    pub updated_at: DateTime<Utc>,
    /// The outcome of its task, once reported.
    pub outcome: Option<RunOutcome>,
    /// The current annotation, if any.
    pub annotation: Option<RunAnnotation>,
    /// Grader results keyed by grader definition name, once graded.
    #[schema(value_type = Option<Object>)]
    pub grader_results: Option<serde_json::Value>,
    /// Whether the run succeeded, by the rule the figures use: the tests passed when known,
    /// else the rating, else the pass of the prompt's graders; null when none is known.
    pub success: Option<bool>,
}

/// The success rule of the figures (`sql/figures.rs`), for one run.
pub fn run_success(
    tests_passed: Option<bool>,
    rating: Option<Rating>,
    graders_passed: Option<bool>,
) -> Option<bool> {
    tests_passed
        .or(rating.map(|r| r == Rating::Good))
        .or(graders_passed)
}

/// Which runs to list, newest first (by id), and how many.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    /// Only this prompt's runs.
    pub prompt_id: Option<String>,
    /// Only runs of this version.
    pub version: Option<i64>,
    /// Only runs whose current rating is this.
    pub rating: Option<Rating>,
    /// Only runs whose current failure mode is this.
    pub failure_mode: Option<String>,
    /// Only runs with (true) or without (false) a current annotation.
    pub annotated: Option<bool>,
    /// Only runs whose enabled graders all passed (true) or not all passed (false).
    pub graders_passed: Option<bool>,
    /// Only runs recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only runs recorded before this time.
    pub to: Option<DateTime<Utc>>,
    /// Only runs whose id is below this one (the keyset cursor: the last id of the page before).
    pub before: Option<Uuid>,
    /// Only runs of this origin (dataset snapshots and exports read production runs only).
    pub origin: Option<RunOrigin>,
}

/// What an export read ([`RunStore::export_runs`]) reads besides a run's input, output and
/// outcome: the parts an export may leave out, so a large export reads no column it drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportFields {
    /// The annotation's rating, feedback and failure mode.
    pub annotations: bool,
    /// The grader results (CSV writes a column per grader).
    pub grader_results: bool,
}

/// The outcome fields a run's export row holds (see [`RunOutcome`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOutcome {
    /// Whether the task's tests passed.
    pub tests_passed: Option<bool>,
    /// Whether the task's pull request was merged.
    pub pr_merged: Option<bool>,
    /// The files the task should have changed.
    pub expected_files: Option<Vec<String>>,
    /// The failure's signature.
    pub failure_signature: Option<String>,
}

/// The annotation fields a run's export row holds (see [`RunAnnotation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportAnnotation {
    /// Good or bad.
    pub rating: Option<Rating>,
    /// A critique of the output.
    pub output_feedback: Option<String>,
    /// A code of the prompt's failure-mode taxonomy.
    pub failure_mode: Option<String>,
}

/// A recorded run as an export or a dataset snapshot reads it: only what their rows hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRun {
    /// The run's id (the keyset cursor, and a snapshot row's id).
    pub id: Uuid,
    /// The template variables.
    pub input: serde_json::Map<String, serde_json::Value>,
    /// The model's answer.
    pub output: Option<String>,
    /// The outcome of its task, once reported.
    pub outcome: Option<ExportOutcome>,
    /// The current annotation, if any; always `None` unless [`ExportFields::annotations`].
    pub annotation: Option<ExportAnnotation>,
    /// Grader results keyed by grader definition name; always `None` unless
    /// [`ExportFields::grader_results`].
    pub grader_results: Option<serde_json::Value>,
}

impl ExportRun {
    /// The export view of a run as [`RunStore::list_runs`] reads it, with only `fields`: what
    /// [`RunStore::export_runs`] answers for the same run.
    pub fn from_run(run: Run, fields: ExportFields) -> Self {
        ExportRun {
            id: run.id,
            input: run.input,
            output: run.output,
            outcome: run.outcome.map(|o| ExportOutcome {
                tests_passed: o.tests_passed,
                pr_merged: o.pr_merged,
                expected_files: o.expected_files,
                failure_signature: o.failure_signature,
            }),
            annotation: run
                .annotation
                .filter(|_| fields.annotations)
                .map(|a| ExportAnnotation {
                    rating: a.rating,
                    output_feedback: a.output_feedback,
                    failure_mode: a.failure_mode,
                }),
            grader_results: run.grader_results.filter(|_| fields.grader_results),
        }
    }
}

/// Refuses an outcome batch's or run batch's item, naming its position: what the store says
/// when one item of a batch names something that does not exist.
pub(crate) fn in_batch(index: usize, error: StoreError) -> StoreError {
    StoreError::InBatch {
        index,
        error: Box::new(error),
    }
}

/// Recorded runs and task outcomes. Every write is one transaction.
#[async_trait]
pub trait RunStore: Send + Sync {
    /// Records a batch of runs, all or nothing, and answers per run (in order) its id and
    /// whether it was stored now. A run already recorded under the same (prompt, task, attempt)
    /// keeps its id and content. A run naming an unknown prompt or version, or given no version
    /// when its prompt has no active one, refuses the whole batch with
    /// [`StoreError::InBatch`] holding the `NotFound`.
    async fn record_runs(&self, runs: &[NewRun]) -> Result<Vec<RecordedRun>>;
    /// Stores the outcomes (in order; fields not given keep their earlier value) and applies
    /// each task's merged outcome to every run of the task; answers per outcome the number of
    /// runs it updated.
    async fn report_outcomes(&self, outcomes: &[NewOutcome]) -> Result<Vec<u64>>;
    /// One run; `NotFound` ([`Missing::Run`](super::Missing::Run)) if absent.
    async fn get_run(&self, id: Uuid) -> Result<Run>;
    /// Up to `limit` runs matching `filter`, newest (highest id) first.
    async fn list_runs(&self, filter: &RunFilter, limit: u32) -> Result<Vec<Run>>;
    /// The runs [`list_runs`](Self::list_runs) answers for the same `filter` and `limit`, in
    /// the same order, reading only what an export row holds (and of that only `fields`):
    /// exports and dataset snapshots read many runs, and most of a run's columns they drop.
    async fn export_runs(
        &self,
        filter: &RunFilter,
        fields: ExportFields,
        limit: u32,
    ) -> Result<Vec<ExportRun>>;
}
