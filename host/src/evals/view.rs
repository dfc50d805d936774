//! What `GET /api/evals/{id}` answers (and `flywheel eval --json` prints): the evaluation's
//! request, progress and counters, and its results computed from what is committed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::cache::Sampling;
use super::results::{EvalResults, compute};
use crate::store::{EvaluationJob, JobStatus, Split, Store, StoreError};

/// An evaluation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationView {
    /// Its id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The versions compared.
    pub versions: Vec<i64>,
    /// The dataset.
    pub dataset: String,
    /// The dataset version.
    pub dataset_version: i64,
    /// The split, when one was asked for.
    pub split: Option<Split>,
    /// The task model asked for (the endpoint's default when absent).
    pub model: Option<String>,
    /// Answers per row and version.
    pub repeat: i64,
    /// The task model's sampling parameters (empty: the model's defaults).
    pub sampling: Sampling,
    /// Dataset rows per version.
    pub rows: i64,
    /// The graders applied.
    pub graders: Vec<String>,
    /// Positions in all (versions × rows × repeat).
    pub total: i64,
    /// Positions committed.
    pub processed: i64,
    /// Task-model calls made.
    pub model_calls: i64,
    /// Answers taken from the cache (no model call).
    pub cached_answers: i64,
    /// Model tokens allowed, when limited.
    pub token_budget: Option<i64>,
    /// Task-model calls allowed, when limited.
    pub call_budget: Option<i64>,
    /// Model tokens spent (task model and model graders).
    pub tokens_used: i64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Whether a cancel was asked for.
    pub cancel_requested: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When an instance first claimed it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
    /// The results so far.
    pub results: EvalResults,
}

/// The evaluation `id` with its results; `NotFound` (`Missing::Evaluation`) if absent.
pub async fn load(store: &dyn Store, id: Uuid) -> Result<EvaluationView, StoreError> {
    let evaluation = store.get_evaluation(id).await?;
    let outputs = store.evaluation_outputs(id).await?;
    Ok(view(evaluation, &outputs))
}

fn view(evaluation: EvaluationJob, outputs: &[crate::store::StoredOutput]) -> EvaluationView {
    let EvaluationJob {
        job,
        spec,
        model_calls,
        cached_answers,
    } = evaluation;
    let results = compute(&spec.versions, &job.graders, outputs);
    EvaluationView {
        id: job.id,
        prompt_id: job.prompt_id,
        status: job.status,
        versions: spec.versions,
        dataset: spec.dataset,
        dataset_version: spec.dataset_version,
        split: spec.split,
        model: spec.model,
        repeat: spec.repeat,
        sampling: spec.sampling,
        rows: spec.rows,
        graders: job.graders,
        total: job.total,
        processed: job.processed,
        model_calls,
        cached_answers,
        token_budget: job.token_budget,
        call_budget: spec.call_budget,
        tokens_used: job.tokens_used,
        error: job.error,
        cancel_requested: job.cancel_requested,
        created_by: job.created_by,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        results,
    }
}

/// An evaluation in a list (`GET /api/evals`): the request, progress and counters, without
/// the results (read them with `GET /api/evals/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationSummary {
    /// Its id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The versions compared.
    pub versions: Vec<i64>,
    /// The dataset.
    pub dataset: String,
    /// The dataset version.
    pub dataset_version: i64,
    /// The split, when one was asked for.
    pub split: Option<Split>,
    /// The task model asked for (the endpoint's default when absent).
    pub model: Option<String>,
    /// Answers per row and version.
    pub repeat: i64,
    /// The task model's sampling parameters (empty: the model's defaults).
    pub sampling: Sampling,
    /// Positions in all (versions × rows × repeat).
    pub total: i64,
    /// Positions committed.
    pub processed: i64,
    /// Task-model calls made.
    pub model_calls: i64,
    /// Answers taken from the cache (no model call).
    pub cached_answers: i64,
    /// Model tokens spent (task model and model graders).
    pub tokens_used: i64,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Who created it.
    pub created_by: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<EvaluationJob> for EvaluationSummary {
    fn from(evaluation: EvaluationJob) -> Self {
        let EvaluationJob {
            job,
            spec,
            model_calls,
            cached_answers,
        } = evaluation;
        EvaluationSummary {
            id: job.id,
            prompt_id: job.prompt_id,
            status: job.status,
            versions: spec.versions,
            dataset: spec.dataset,
            dataset_version: spec.dataset_version,
            split: spec.split,
            model: spec.model,
            repeat: spec.repeat,
            sampling: spec.sampling,
            total: job.total,
            processed: job.processed,
            model_calls,
            cached_answers,
            tokens_used: job.tokens_used,
            error: job.error,
            created_by: job.created_by,
            created_at: job.created_at,
            finished_at: job.finished_at,
        }
    }
}
