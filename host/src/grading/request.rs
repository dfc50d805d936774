//! Asking for a grading job: the request's shape and every check made before the job is
//! stored (the selection makes sense, the prompt and version exist, every named definition
//! exists and resolves against the components serving now), so a job that is accepted can run.
//! The API and the CLI's database mode both queue jobs through [`queue_job`].

use serde::Deserialize;

use crate::graders::registry::Registry;
use crate::grading::apply::NamedGrader;
use crate::store::{GraderDefinition, GradingJob, NewGradingJob, RunSelection, Store, StoreError};

/// Most run ids a job's `filter.ids` may list.
pub const MAX_SELECTED_IDS: usize = 1000;

/// A grading job as asked for (the body of `POST /api/grading-runs`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobRequest {
    /// The prompt whose recorded runs are graded.
    pub prompt_id: String,
    /// Only runs of this version.
    #[serde(default)]
    pub version: Option<i64>,
    /// The stored definitions to apply, by name; default every enabled one of the prompt
    /// (model graders included).
    #[serde(default)]
    pub graders: Option<Vec<String>>,
    /// Which runs (default all of the prompt's production runs).
    #[serde(default)]
    pub filter: RunSelection,
    /// Model tokens the job may spend (default `FLYWHEEL_LLM_RUN_TOKEN_BUDGET`).
    #[serde(default)]
    pub token_budget: Option<i64>,
}

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The request makes no sense (a bad rating, an empty list, a definition that cannot run).
    #[error("{0}")]
    Invalid(String),
    /// What the job needs is not configured on this server (no model endpoint for an
    /// evaluation's task model).
    #[error("{0}")]
    NotConfigured(String),
    /// The grader registry has not loaded its built-in components yet.
    #[error("the grader components are still loading; retry shortly")]
    Loading,
    /// The store refused or failed (`NotFound` for an unknown prompt, version or definition).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the request completely, then stores the job (queued); nothing is stored if a check
/// fails.
pub async fn queue_job(
    store: &dyn Store,
    registry: &Registry,
    request: JobRequest,
    actor: &str,
) -> Result<GradingJob, RequestError> {
    check_selection(&request)?;
    store.get_prompt(&request.prompt_id).await?;
    if let Some(version) = request.version {
        store.get_version(&request.prompt_id, version).await?;
    }
    let graders = match request.graders {
        Some(names) => {
            if names.is_empty() {
                return Err(RequestError::Invalid(
                    "`graders` lists no definition; omit it to use every enabled one".into(),
                ));
            }
            let mut chosen: Vec<String> = Vec::with_capacity(names.len());
            for name in names {
                let stored = store.get_grader(&request.prompt_id, &name).await?;
                check_runs(registry, &stored)?;
                if !chosen.contains(&stored.name) {
                    chosen.push(stored.name);
                }
            }
            chosen
        }
        None => enabled_graders(store, registry, &request.prompt_id).await?,
    };
    Ok(store
        .create_grading_job(NewGradingJob {
            prompt_id: request.prompt_id,
            version: request.version,
            graders,
            selection: request.filter,
            token_budget: request.token_budget,
            created_by: actor.to_owned(),
        })
        .await?)
}

/// The names of the prompt's enabled definitions, each checked to run now; `Invalid` when it
/// has none. Evaluations grade with these too.
pub async fn enabled_graders(
    store: &dyn Store,
    registry: &Registry,
    prompt_id: &str,
) -> Result<Vec<String>, RequestError> {
    let mut chosen = Vec::new();
    for stored in store.list_graders(Some(prompt_id)).await? {
        if stored.enabled {
            check_runs(registry, &stored)?;
            chosen.push(stored.name);
        }
    }
    if chosen.is_empty() {
        return Err(RequestError::Invalid(format!(
            "prompt {prompt_id} has no enabled grader definition"
        )));
    }
    Ok(chosen)
}

/// Refuses a selection or budget that cannot mean anything, before anything is read.
fn check_selection(request: &JobRequest) -> Result<(), RequestError> {
    let filter = &request.filter;
    let invalid = |message: String| Err(RequestError::Invalid(message));
    if let Some(rating) = &filter.rating
        && rating != "good"
        && rating != "bad"
    {
        return invalid(format!("filter.rating must be good or bad, not {rating:?}"));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return invalid("filter.from must be before filter.to".into());
    }
    if filter
        .ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_SELECTED_IDS)
    {
        return invalid(format!(
            "filter.ids lists more than {MAX_SELECTED_IDS} runs"
        ));
    }
    if request.token_budget.is_some_and(|budget| budget < 1) {
        return invalid("tokenBudget must be at least 1".into());
    }
    if request.version.is_some_and(|version| version < 1) {
        return invalid("version must be at least 1".into());
    }
    Ok(())
}

/// Refuses a definition that cannot run now (a component missing or refusing its config). A
/// definition that does not resolve while the built-ins are still loading may only be early.
fn check_runs(registry: &Registry, stored: &GraderDefinition) -> Result<(), RequestError> {
    match NamedGrader::resolve(stored, registry) {
        Ok(_) => Ok(()),
        Err(_) if !crate::grading::stored::builtins_loaded(registry) => Err(RequestError::Loading),
        Err(why) => Err(RequestError::Invalid(why)),
    }
}
