//! Asking for an optimization: the request's shape, its defaults, and every check made before
//! it is queued — the prompt and starting version exist, the dataset belongs to the prompt (or
//! one is snapshotted from its annotated runs), it holds at least
//! `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION` annotated rows, both splits have rows, a model endpoint
//! is configured, the prompt's enabled graders can run, and the budget covers at least one round
//! and the final validation. An optimization that is accepted can run.

use serde::{Deserialize, Serialize};

use crate::datasets::{CreateDataset, DatasetError, SnapshotFilter};
use crate::graders::registry::Registry;
use crate::grading::request::{RequestError, enabled_graders};
use crate::llm::client::MAX_MODEL_NAME_BYTES;
use crate::store::{DatasetRow, Missing, NewOptimization, Optimization, RowQuery, Split, Store};

/// Task-model calls a run may make unless the request says otherwise (the figure the issue
/// compares with GEPA).
pub const DEFAULT_BUDGET: i64 = 400;
/// Most task-model calls one run may be given.
pub const MAX_BUDGET: i64 = 100_000;
/// Reflection-model calls unless the request says otherwise.
pub const DEFAULT_REFLECTION_BUDGET: i64 = 40;
/// Train rows a candidate is tried on before it may join the front.
pub const DEFAULT_MINIBATCH: i64 = 8;
/// Rounds in a row without a better candidate before the loop stops.
pub const DEFAULT_PATIENCE: i64 = 4;
/// Train rows scored for every candidate on the front (the rows the Pareto front is over): the
/// first this many of the train split in the run's shuffled order.
pub const MAX_FRONT_ROWS: usize = 100;
/// Validation rows the start and the winner are compared on.
pub const MAX_VALIDATION_ROWS: usize = 400;
/// The validation fraction of a dataset snapshotted for a run: half, so the comparison of the
/// winner with the start has as many rows as the loop learns from.
pub const SNAPSHOT_VALIDATION_FRACTION: f64 = 0.5;
/// Keys of a row's `item` that hold its annotation (as a snapshot writes them).
pub const ANNOTATION_KEYS: [&str; 3] = ["rating", "output_feedback", "failure_mode"];
/// Rows read per page.
const PAGE: u32 = 1000;

/// An optimization as asked for (the body of `POST /api/prompts/{id}/optimize`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptimizeRequest {
    /// The version to start from [default: the active version].
    #[serde(default)]
    pub version: Option<i64>,
    /// The dataset (of this prompt) whose train rows the loop learns from and whose validation
    /// rows decide [default: a snapshot of the prompt's annotated runs, named
    /// `<prompt>-optimizer`, half of them validation].
    #[serde(default)]
    pub dataset: Option<String>,
    /// The dataset version [default: the latest].
    #[serde(default)]
    pub dataset_version: Option<i64>,
    /// The task model [default: the endpoint's default model].
    #[serde(default)]
    pub model: Option<String>,
    /// The model that proposes revised prompts [default: the task model].
    #[serde(default)]
    pub reflection_model: Option<String>,
    /// Task-model calls the run may make, validation included (1 to 100000) [default: 400].
    #[serde(default)]
    pub budget: Option<i64>,
    /// Reflection-model calls the run may make (1 to 10000) [default: 40].
    #[serde(default)]
    pub reflection_budget: Option<i64>,
    /// Tokens of the task model and model graders [default: no limit].
    #[serde(default)]
    pub token_budget: Option<i64>,
    /// Tokens of the reflection model [default: no limit].
    #[serde(default)]
    pub reflection_token_budget: Option<i64>,
    /// Train rows a candidate is first tried on (1 to 50) [default: 8].
    #[serde(default)]
    pub minibatch: Option<i64>,
    /// Rounds in a row without a better candidate before stopping (1 to 100) [default: 4].
    #[serde(default)]
    pub patience: Option<i64>,
    /// Mean score on the train rows at which the loop stops (0 < target ≤ 1) [default: 1].
    #[serde(default)]
    pub target: Option<f64>,
    /// Seed of the run's random choices (row order, parents) [default: 1].
    #[serde(default)]
    pub seed: Option<u64>,
    /// Start an A/B test of the winner against the active version when a version is created
    /// [default: false].
    #[serde(default)]
    pub ab_test: Option<bool>,
}

/// What a run does, resolved from the request and kept with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimizationSpec {
    /// The dataset.
    pub dataset: String,
    /// Its version.
    pub dataset_version: i64,
    /// Whether the dataset was snapshotted for this run.
    pub snapshot: bool,
    /// Train rows in the version.
    pub train_rows: i64,
    /// Validation rows in the version.
    pub validation_rows: i64,
    /// Annotated rows in the version.
    pub annotated_rows: i64,
    /// The task model asked (the endpoint's default when absent).
    pub model: Option<String>,
    /// The reflection model asked (the task model when absent).
    pub reflection_model: Option<String>,
    /// Task-model calls allowed.
    pub budget: i64,
    /// Reflection-model calls allowed.
    pub reflection_budget: i64,
    /// Task-model and grader tokens allowed, when limited.
    pub token_budget: Option<i64>,
    /// Reflection tokens allowed, when limited.
    pub reflection_token_budget: Option<i64>,
    /// Minibatch size.
    pub minibatch: i64,
    /// Rounds without improvement before stopping.
    pub patience: i64,
    /// Train mean score that stops the loop.
    pub target: f64,
    /// Seed.
    pub seed: u64,
    /// Whether to start an A/B test of a created version.
    pub ab_test: bool,
}

/// Why an optimization was not queued.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// A check shared with the other jobs (invalid, not configured, loading, store).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Fewer annotated rows than `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION`.
    #[error(
        "dataset {dataset} has {found} annotated rows; optimizing needs at least {required} \
         (PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION)"
    )]
    NotEnoughRows {
        /// The dataset.
        dataset: String,
        /// Annotated rows found.
        found: u64,
        /// Annotated rows required.
        required: u64,
    },
    /// Snapshotting the annotated runs failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

impl From<crate::store::StoreError> for OptimizeError {
    fn from(error: crate::store::StoreError) -> Self {
        OptimizeError::Request(RequestError::Store(error))
    }
}

/// The request's limits, before anything is read.
fn check_shape(request: &OptimizeRequest) -> Result<(), RequestError> {
    let invalid = |message: String| Err(RequestError::Invalid(message));
    let range = |value: Option<i64>, name: &str, low: i64, high: i64| {
        if value.is_some_and(|v| !(low..=high).contains(&v)) {
            Err(RequestError::Invalid(format!(
                "{name} must be {low} to {high}"
            )))
        } else {
            Ok(())
        }
    };
    range(request.version, "version", 1, i64::MAX)?;
    range(request.dataset_version, "datasetVersion", 1, i64::MAX)?;
    range(request.budget, "budget", 1, MAX_BUDGET)?;
    range(request.reflection_budget, "reflectionBudget", 1, 10_000)?;
    range(request.token_budget, "tokenBudget", 1, i64::MAX)?;
    range(
        request.reflection_token_budget,
        "reflectionTokenBudget",
        1,
        i64::MAX,
    )?;
    range(request.minibatch, "minibatch", 1, 50)?;
    range(request.patience, "patience", 1, 100)?;
    if let Some(target) = request.target
        && !(target > 0.0 && target <= 1.0)
    {
        return invalid(format!(
            "target must be above 0 and at most 1, not {target}"
        ));
    }
    for (name, model) in [
        ("model", &request.model),
        ("reflectionModel", &request.reflection_model),
    ] {
        if let Some(model) = model
            && (model.is_empty() || model.len() > MAX_MODEL_NAME_BYTES)
        {
            return invalid(format!("{name} must be 1 to {MAX_MODEL_NAME_BYTES} bytes"));
        }
    }
    if request.dataset.as_deref() == Some("") {
        return invalid("dataset must name a dataset".into());
    }
    if request.dataset.is_none() && request.dataset_version.is_some() {
        return invalid("datasetVersion needs a dataset".into());
    }
    Ok(())
}

/// Every row of a dataset version (one split, or all), in dataset order.
pub async fn rows_of(
    store: &dyn Store,
    dataset: &str,
    version: i64,
    split: Option<Split>,
) -> Result<Vec<DatasetRow>, crate::store::StoreError> {
    let mut rows = Vec::new();
    let mut after = None;
    // Bounded: every page advances `after` past its last row.
    loop {
        let query = RowQuery {
            version: Some(version),
            split,
            after,
        };
        let (_, page) = store.dataset_rows(dataset, &query, PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|row| row.index);
        rows.extend(page);
        if !full {
            return Ok(rows);
        }
    }
}

/// Whether a row carries an annotation (a rating, a critique or a failure mode).
pub fn annotated(row: &DatasetRow) -> bool {
    ANNOTATION_KEYS
        .iter()
        .any(|key| row.item.get(*key).is_some_and(|v| !v.is_null()))
}

/// Checks the request completely, then queues the optimization; nothing is stored if a check
/// fails (except a dataset snapshotted on the way, which is a dataset like any other).
#[allow(clippy::too_many_arguments)]
pub async fn queue_optimization(
    store: &std::sync::Arc<dyn Store>,
    registry: &Registry,
    model_configured: bool,
    min_annotated: u64,
    prompt_id: &str,
    request: OptimizeRequest,
    actor: &str,
) -> Result<Optimization, OptimizeError> {
    check_shape(&request)?;
    store.get_prompt(prompt_id).await?;
    let start = match request.version {
        Some(version) => store.get_version(prompt_id, version).await?,
        None => store.active_version(prompt_id).await?,
    };
    crate::prompts::template::Template::parse(&start.content).map_err(|e| {
        RequestError::Invalid(format!(
            "version {} is not a valid template: {e}",
            start.version
        ))
    })?;
    if !model_configured {
        return Err(RequestError::NotConfigured(
            "no model endpoint is configured for the task and reflection models (set \
             OPENAI_BASE_URL or OPENAI_API_KEY)"
                .into(),
        )
        .into());
    }
    let graders = enabled_graders(store.as_ref(), registry, prompt_id).await?;
    let (name, version, snapshot) = match &request.dataset {
        Some(name) => {
            let dataset = store.get_dataset(name).await?;
            if dataset.prompt_id != prompt_id {
                return Err(RequestError::Invalid(format!(
                    "dataset {} belongs to prompt {}, not {prompt_id}",
                    dataset.name, dataset.prompt_id
                ))
                .into());
            }
            let wanted = request.dataset_version.unwrap_or(dataset.latest_version);
            if !dataset.versions.iter().any(|v| v.version == wanted) {
                return Err(crate::store::StoreError::from(Missing::DatasetVersion {
                    name: dataset.name.clone(),
                    version: wanted,
                })
                .into());
            }
            (dataset.name, wanted, false)
        }
        None => {
            let name = format!("{prompt_id}-optimizer");
            let created = crate::datasets::create(
                store,
                CreateDataset {
                    prompt_id: prompt_id.to_owned(),
                    name: name.clone(),
                    filter: Some(SnapshotFilter {
                        annotated: Some(true),
                        ..SnapshotFilter::default()
                    }),
                    validation_fraction: Some(SNAPSHOT_VALIDATION_FRACTION),
                    ..CreateDataset::default()
                },
                actor,
            )
            .await;
            match created {
                Ok(version) => (name, version.version, true),
                // No annotated run at all: the floor explains it better than "no rows".
                Err(DatasetError::Invalid(_)) => {
                    return Err(OptimizeError::NotEnoughRows {
                        dataset: name,
                        found: 0,
                        required: min_annotated,
                    });
                }
                Err(other) => return Err(other.into()),
            }
        }
    };
    let rows = rows_of(store.as_ref(), &name, version, None).await?;
    let found = rows.iter().filter(|row| annotated(row)).count() as u64;
    if found < min_annotated {
        return Err(OptimizeError::NotEnoughRows {
            dataset: name,
            found,
            required: min_annotated,
        });
    }
    let train = rows.iter().filter(|r| r.split == Split::Train).count();
    let validation = rows.len() - train;
    if train == 0 || validation < 2 {
        return Err(RequestError::Invalid(format!(
            "version {version} of dataset {name} has {train} train and {validation} validation \
             rows; optimizing needs train rows and at least 2 validation rows"
        ))
        .into());
    }
    let minibatch = request.minibatch.unwrap_or(DEFAULT_MINIBATCH);
    let budget = request.budget.unwrap_or(DEFAULT_BUDGET);
    let front = train.min(MAX_FRONT_ROWS) as i64;
    let needed = least_budget(front, validation.min(MAX_VALIDATION_ROWS) as i64, minibatch);
    if budget < needed {
        return Err(RequestError::Invalid(format!(
            "budget must be at least {needed} task-model calls on this dataset: the starting \
             prompt on {front} train rows, one candidate on {minibatch}, and both compared on \
             {} validation rows",
            validation.min(MAX_VALIDATION_ROWS)
        ))
        .into());
    }
    let spec = OptimizationSpec {
        dataset: name,
        dataset_version: version,
        snapshot,
        train_rows: train as i64,
        validation_rows: validation as i64,
        annotated_rows: found as i64,
        model: request.model,
        reflection_model: request.reflection_model,
        budget,
        reflection_budget: request
            .reflection_budget
            .unwrap_or(DEFAULT_REFLECTION_BUDGET),
        token_budget: request.token_budget,
        reflection_token_budget: request.reflection_token_budget,
        minibatch,
        patience: request.patience.unwrap_or(DEFAULT_PATIENCE),
        target: request.target.unwrap_or(1.0),
        seed: request.seed.unwrap_or(1),
        ab_test: request.ab_test.unwrap_or(false),
    };
    let spec = serde_json::to_value(&spec)
        .map_err(|e| RequestError::Invalid(format!("cannot encode the request: {e}")))?;
    Ok(store
        .create_optimization(NewOptimization {
            prompt_id: prompt_id.to_owned(),
            start_version: start.version,
            spec,
            graders,
            created_by: actor.to_owned(),
        })
        .await?)
}

/// The fewest task-model calls a run can do anything useful with: the start on the front rows,
/// one candidate on a minibatch, then the start and the winner on the validation rows.
pub fn least_budget(front: i64, validation: i64, minibatch: i64) -> i64 {
    front + minibatch.min(front) + 2 * validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_that_cannot_mean_anything_are_refused() {
        assert!(check_shape(&OptimizeRequest::default()).is_ok());
        let cases: Vec<(OptimizeRequest, &str)> = vec![
            (
                OptimizeRequest {
                    budget: Some(0),
                    ..OptimizeRequest::default()
                },
                "budget must be 1 to",
            ),
            (
                OptimizeRequest {
                    reflection_budget: Some(-1),
                    ..OptimizeRequest::default()
                },
                "reflectionBudget",
            ),
            (
                OptimizeRequest {
                    minibatch: Some(51),
                    ..OptimizeRequest::default()
                },
                "minibatch",
            ),
            (
                OptimizeRequest {
                    patience: Some(0),
                    ..OptimizeRequest::default()
                },
                "patience",
            ),
            (
                OptimizeRequest {
                    target: Some(0.0),
                    ..OptimizeRequest::default()
                },
                "target",
            ),
            (
                OptimizeRequest {
                    target: Some(f64::NAN),
                    ..OptimizeRequest::default()
                },
                "target",
            ),
            (
                OptimizeRequest {
                    model: Some(String::new()),
                    ..OptimizeRequest::default()
                },
                "model must",
            ),
            (
                OptimizeRequest {
                    dataset_version: Some(2),
                    ..OptimizeRequest::default()
                },
                "needs a dataset",
            ),
        ];
        for (bad, expected) in cases {
            match check_shape(&bad) {
                Err(RequestError::Invalid(message)) => {
                    assert!(message.contains(expected), "{message} lacks {expected}")
                }
                other => panic!("{bad:?} was not refused: {other:?}"),
            }
        }
    }

    #[test]
    fn the_least_budget_covers_the_start_a_candidate_and_the_validation() {
        assert_eq!(least_budget(40, 40, 8), 40 + 8 + 80);
        assert_eq!(least_budget(3, 10, 8), 3 + 3 + 20);
    }
}
