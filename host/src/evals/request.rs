//! Asking for an evaluation: the request's shape and every check made before it is queued (the
//! prompt, its versions and the dataset exist and belong together, the split has rows, a model
//! endpoint is configured, the prompt's enabled graders can run), so an evaluation that is
//! accepted can run. The API and the CLI's database mode both queue through [`queue_evaluation`].

use serde::Deserialize;

use super::cache::Sampling;
use crate::graders::registry::Registry;
use crate::grading::request::{RequestError, enabled_graders};
use crate::llm::client::MAX_MODEL_NAME_BYTES;
use crate::store::{EvaluationJob, EvaluationSpec, Missing, NewEvaluation, Split, Store};

/// Most versions one evaluation compares.
pub const MAX_VERSIONS: usize = 10;
/// Most answers sampled per row and version.
pub const MAX_REPEAT: i64 = 20;

/// An evaluation as asked for (the body of `POST /api/evals`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvalRequest {
    /// The prompt whose versions are evaluated.
    pub prompt_id: String,
    /// The versions compared (1 to 10, distinct), in the order results list them.
    pub versions: Vec<i64>,
    /// The dataset's name (a dataset of the prompt).
    pub dataset: String,
    /// The dataset version [default: the latest].
    #[serde(default)]
    pub dataset_version: Option<i64>,
    /// Only rows of this split [default: every row].
    #[serde(default)]
    pub split: Option<Split>,
    /// The task model [default: the endpoint's default model].
    #[serde(default)]
    pub model: Option<String>,
    /// Answers sampled per row and version (1 to 20) [default: 1].
    #[serde(default)]
    pub repeat: Option<i64>,
    /// Model tokens the evaluation (task model and model graders) may spend [default:
    /// `FLYWHEEL_LLM_RUN_TOKEN_BUDGET`].
    #[serde(default)]
    pub token_budget: Option<i64>,
    /// Task-model calls the evaluation may make [default: no limit].
    #[serde(default)]
    pub call_budget: Option<i64>,
    /// The task model's sampling parameters [default: none sent, the model's own].
    #[serde(default)]
    pub sampling: Option<Sampling>,
}

/// Checks the request completely, then stores the evaluation (queued); nothing is stored if a
/// check fails. `model_configured` says whether the server has a model endpoint.
pub async fn queue_evaluation(
    store: &dyn Store,
    registry: &Registry,
    model_configured: bool,
    request: EvalRequest,
    actor: &str,
) -> Result<EvaluationJob, RequestError> {
    check_shape(&request)?;
    store.get_prompt(&request.prompt_id).await?;
    for version in &request.versions {
        store.get_version(&request.prompt_id, *version).await?;
    }
    let dataset = store.get_dataset(&request.dataset).await?;
    if dataset.prompt_id != request.prompt_id {
        return Err(RequestError::Invalid(format!(
            "dataset {} belongs to prompt {}, not {}",
            dataset.name, dataset.prompt_id, request.prompt_id
        )));
    }
    let wanted = request.dataset_version.unwrap_or(dataset.latest_version);
    let version = dataset
        .versions
        .iter()
        .find(|v| v.version == wanted)
        .ok_or_else(|| Missing::DatasetVersion {
            name: dataset.name.clone(),
            version: wanted,
        })
        .map_err(crate::store::StoreError::from)?;
    let rows = match request.split {
        None => version.row_count,
        Some(Split::Train) => version.train_count,
        Some(Split::Validation) => version.validation_count,
    };
    if rows == 0 {
        let split = request
            .split
            .map(|s| format!(" in split {}", s.as_str()))
            .unwrap_or_default();
        return Err(RequestError::Invalid(format!(
            "version {wanted} of dataset {} has no rows{split}",
            dataset.name
        )));
    }
    if !model_configured {
        return Err(RequestError::NotConfigured(
            "no model endpoint is configured for the task model (set OPENAI_BASE_URL or \
             OPENAI_API_KEY)"
                .into(),
        ));
    }
    let graders = enabled_graders(store, registry, &request.prompt_id).await?;
    let spec = EvaluationSpec {
        versions: request.versions,
        dataset: dataset.name,
        dataset_version: wanted,
        split: request.split,
        rows,
        model: request.model,
        repeat: request.repeat.unwrap_or(1),
        call_budget: request.call_budget,
        sampling: request.sampling.unwrap_or_default(),
    };
    Ok(store
        .create_evaluation(NewEvaluation {
            prompt_id: request.prompt_id,
            spec,
            graders,
            token_budget: request.token_budget,
            created_by: actor.to_owned(),
        })
        .await?)
}

/// Refuses what cannot mean anything, before anything is read.
fn check_shape(request: &EvalRequest) -> Result<(), RequestError> {
    let invalid = |message: String| Err(RequestError::Invalid(message));
    if request.versions.is_empty() || request.versions.len() > MAX_VERSIONS {
        return invalid(format!("versions must list 1 to {MAX_VERSIONS} versions"));
    }
    if request.versions.iter().any(|v| *v < 1) {
        return invalid("versions must be at least 1".into());
    }
    let mut sorted = request.versions.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != request.versions.len() {
        return invalid("versions lists a version twice".into());
    }
    if request.dataset.is_empty() {
        return invalid("dataset must name a dataset".into());
    }
    if request.dataset_version.is_some_and(|v| v < 1) {
        return invalid("datasetVersion must be at least 1".into());
    }
    if request
        .repeat
        .is_some_and(|repeat| !(1..=MAX_REPEAT).contains(&repeat))
    {
        return invalid(format!("repeat must be 1 to {MAX_REPEAT}"));
    }
    if request.token_budget.is_some_and(|budget| budget < 1) {
        return invalid("tokenBudget must be at least 1".into());
    }
    if request.call_budget.is_some_and(|budget| budget < 1) {
        return invalid("callBudget must be at least 1".into());
    }
    if let Some(model) = &request.model
        && (model.is_empty() || model.len() > MAX_MODEL_NAME_BYTES)
    {
        return invalid(format!("model must be 1 to {MAX_MODEL_NAME_BYTES} bytes"));
    }
    if let Some(sampling) = &request.sampling {
        sampling.check().map_err(RequestError::Invalid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> EvalRequest {
        EvalRequest {
            prompt_id: "planner".into(),
            versions: vec![1, 2],
            dataset: "golden".into(),
            ..EvalRequest::default()
        }
    }

    #[test]
    fn shapes_that_cannot_mean_anything_are_refused() {
        assert!(check_shape(&request()).is_ok());
        let cases: Vec<(EvalRequest, &str)> = vec![
            (
                EvalRequest {
                    versions: vec![],
                    ..request()
                },
                "versions must list",
            ),
            (
                EvalRequest {
                    versions: vec![2, 2],
                    ..request()
                },
                "twice",
            ),
            (
                EvalRequest {
                    versions: vec![0],
                    ..request()
                },
                "at least 1",
            ),
            (
                EvalRequest {
                    dataset: String::new(),
                    ..request()
                },
                "dataset must",
            ),
            (
                EvalRequest {
                    repeat: Some(0),
                    ..request()
                },
                "repeat must",
            ),
            (
                EvalRequest {
                    repeat: Some(21),
                    ..request()
                },
                "repeat must",
            ),
            (
                EvalRequest {
                    token_budget: Some(0),
                    ..request()
                },
                "tokenBudget",
            ),
            (
                EvalRequest {
                    call_budget: Some(0),
                    ..request()
                },
                "callBudget",
            ),
            (
                EvalRequest {
                    dataset_version: Some(0),
                    ..request()
                },
                "datasetVersion",
            ),
            (
                EvalRequest {
                    model: Some(String::new()),
                    ..request()
                },
                "model must",
            ),
            (
                EvalRequest {
                    sampling: Some(Sampling {
                        temperature: Some(3.0),
                        ..Sampling::default()
                    }),
                    ..request()
                },
                "sampling.temperature",
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
}
