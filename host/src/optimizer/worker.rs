//! The worker every `flywheel serve` runs: it claims queued optimizations (or ones whose
//! instance died), renews the claim while it works, and runs the loop.
//!
//! # The loop (reflective evolution, as GEPA does it, with the stops GEPA lacks)
//!
//! 1. The starting prompt is scored on the front rows (up to [`MAX_FRONT_ROWS`] train rows in
//!    the run's seeded order); it is the first member of the Pareto front.
//! 2. Each round: draw a parent from the front (weighted by the rows it is best on), take the
//!    next minibatch of front rows, show the reflection model the parent with its failing rows
//!    (answers, grader results, critiques, failure modes) and the failure-mode counts, and read
//!    the revised prompt from its answer. A proposal with other template variables than the
//!    start's, not a template, or already tried is discarded before any task call.
//! 3. The candidate is scored on the minibatch by the evaluation engine
//!    ([`crate::evals::worker::score_candidate`]; the parent's scores there are known). If it
//!    beats its parent there, it is scored on the rest of the front rows and joins the front.
//! 4. Stop when the best candidate reaches the target on the front rows, after `patience`
//!    rounds in a row without a better one, when the budget left cannot pay for a round and the
//!    validation, or on cancel.
//! 5. Only then is a candidate validated: the best one on the front rows and the start, on the
//!    validation rows the loop never saw. It becomes an inactive version (source `optimizer`,
//!    parent the start) only when the 95% interval of the paired gain lies above 0. When no
//!    candidate beat the start on the front rows, nothing is validated and no call is spent.
//!
//! The state is checkpointed after every round with the answers got (one transaction), so a
//! run taken over after a restart resumes at the round that was in flight. The end (status,
//! report, version) is one transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use uuid::Uuid;

use super::budget::Budget;
use super::pareto;
use super::reflection::{self, Example, Refused};
use super::report::{self, Outcome, Report, StopReason};
use super::request::{MAX_FRONT_ROWS, MAX_VALIDATION_ROWS, OptimizationSpec, rows_of};
use super::state::{CallRecord, Candidate, LoopState, RowScore, Trial, ValidationScores};
use crate::evals::worker::{CandidateEngine, score_candidate};
use crate::graders::registry::Registry;
use crate::grading::apply::NamedGrader;
use crate::llm::{ChatRequest, LlmClient, LlmError, RunBudget};
use crate::prompts::template::Template;
use crate::store::{
    CachedAnswer, DatasetRow, FailureMode, Optimization, OptimizationEnd, OptimizationStatus,
    Split, Store, StoreError,
};

/// Scores closer than this are equal.
const EPSILON: f64 = 1e-9;

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct OptimizerOptions {
    /// This instance's name in claims.
    pub instance: String,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// How long to wait before looking for work again when there was none.
    pub idle_poll: Duration,
}

impl OptimizerOptions {
    /// The options of a server: a fresh instance name and the configured lease.
    pub fn for_server(lease: Duration) -> Self {
        OptimizerOptions {
            instance: format!(
                "flywheel-optimizer-{}-{}",
                std::process::id(),
                Uuid::now_v7()
            ),
            lease,
            idle_poll: Duration::from_millis(250),
        }
    }
}

/// Claims and runs optimizations until the task is dropped.
pub struct OptimizerWorker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    prompts: Option<(Arc<crate::prompts::PromptRegistry>, f64)>,
    options: OptimizerOptions,
}

/// The graders of a run and their score ranges, or why they cannot run.
type ResolvedGraders = Result<(Vec<NamedGrader>, BTreeMap<String, (f64, f64)>), String>;

/// The score range of a definition whose scores are not on 0–1: a `score_model` grader's
/// `range` (such as `[1, 5]`). `None` for the rest, whose scores are taken as 0–1.
fn score_scale(definition: &serde_json::Value) -> Option<(f64, f64)> {
    if definition["type"] != "score_model" {
        return None;
    }
    let range = definition["range"].as_array()?;
    let (low, high) = (range.first()?.as_f64()?, range.get(1)?.as_f64()?);
    (high > low && (low, high) != (0.0, 1.0)).then_some((low, high))
}

/// What a running loop shares.
struct Run<'a> {
    optimization: &'a Optimization,
    spec: OptimizationSpec,
    client: LlmClient,
    graders: Vec<NamedGrader>,
    /// Each grader's score range, to put its scores on 0–1 in a row's score.
    scales: BTreeMap<String, (f64, f64)>,
    variables: Vec<String>,
    taxonomy: Vec<FailureMode>,
    front: Vec<DatasetRow>,
    validation: Vec<DatasetRow>,
    budget: Budget,
    /// Answers got since the last checkpoint.
    pending: Vec<CachedAnswer>,
}

impl Run<'_> {
    fn front_ids(&self) -> Vec<Uuid> {
        self.front.iter().map(|r| r.id).collect()
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl OptimizerWorker {
    /// A worker on this store and grader registry.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, options: OptimizerOptions) -> Self {
        OptimizerWorker {
            store,
            registry,
            prompts: None,
            options,
        }
    }

    /// Lets the worker start A/B tests (of runs that ask for one) through `prompts`, with
    /// `split` of the traffic to the new version.
    pub fn with_ab_tests(
        mut self,
        prompts: Arc<crate::prompts::PromptRegistry>,
        split: f64,
    ) -> Self {
        self.prompts = Some((prompts, split));
        self
    }

    /// Runs forever: claims an optimization, runs it to its end, looks for the next.
    pub async fn run(self) {
        loop {
            match self
                .store
                .claim_optimization(&self.options.instance, self.options.lease)
                .await
            {
                Ok(Some(optimization)) => {
                    let id = optimization.id;
                    match self.process(optimization).await {
                        Ok(status) => {
                            tracing::info!(optimization = %id, status = status.as_str(), "optimization ended")
                        }
                        Err(error) => {
                            tracing::warn!(optimization = %id, %error, "optimization interrupted; it resumes once its lease expires");
                            tokio::time::sleep(self.options.idle_poll).await;
                        }
                    }
                }
                Ok(None) => tokio::time::sleep(self.options.idle_poll).await,
                Err(error) => {
                    tracing::warn!(%error, "claiming an optimization failed");
                    tokio::time::sleep(self.options.idle_poll).await;
                }
            }
        }
    }

    /// Runs a claimed optimization from its last checkpoint to its end; returns the status it
    /// ended with (`Running` when the claim was lost).
    pub async fn process(
        &self,
        optimization: Optimization,
    ) -> Result<OptimizationStatus, StoreError> {
        let lost = Arc::new(AtomicBool::new(false));
        let _renewal = AbortOnDrop(self.spawn_renewal(optimization.id, lost.clone()));
        match self.prepare(&optimization).await? {
            Ok(mut run) => self.optimize(&mut run, &lost).await,
            Err(why) => self.fail(&optimization, &why).await,
        }
    }

    fn spawn_renewal(&self, id: Uuid, lost: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let instance = self.options.instance.clone();
        let lease = self.options.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match store.renew_optimization_lease(id, &instance, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(optimization = %id, %error, "renewing an optimization lease failed")
                    }
                }
            }
        })
    }

    async fn fail(
        &self,
        optimization: &Optimization,
        why: &str,
    ) -> Result<OptimizationStatus, StoreError> {
        tracing::warn!(optimization = %optimization.id, error = why, "optimization failed");
        let ended = self
            .store
            .finish_optimization(
                optimization.id,
                &self.options.instance,
                OptimizationEnd {
                    status: OptimizationStatus::Failed,
                    state: None,
                    report: None,
                    error: Some(why.to_owned()),
                    winner: None,
                },
            )
            .await?;
        Ok(ended.map_or(OptimizationStatus::Running, |(o, _)| o.status))
    }

    /// Everything the loop needs, or why the run cannot go on (it then fails).
    async fn prepare<'a>(
        &self,
        optimization: &'a Optimization,
    ) -> Result<Result<Run<'a>, String>, StoreError> {
        let spec: OptimizationSpec = match serde_json::from_value(optimization.spec.clone()) {
            Ok(spec) => spec,
            Err(error) => return Ok(Err(format!("unreadable spec: {error}"))),
        };
        let Some(client) = self.registry.runtime().llm_client().cloned() else {
            return Ok(Err("no model endpoint is configured".into()));
        };
        let (graders, scales) = match self.resolve_graders(optimization).await? {
            Ok(resolved) => resolved,
            Err(why) => return Ok(Err(why)),
        };
        let start = match self
            .store
            .get_version(&optimization.prompt_id, optimization.start_version)
            .await
        {
            Ok(version) => version,
            Err(StoreError::NotFound(missing)) => {
                return Ok(Err(format!("{missing} no longer exists")));
            }
            Err(other) => return Err(other),
        };
        let variables = match Template::parse(&start.content) {
            Ok(template) => template.variables().to_vec(),
            Err(error) => return Ok(Err(format!("the starting version: {error}"))),
        };
        let read = |split| {
            rows_of(
                self.store.as_ref(),
                &spec.dataset,
                spec.dataset_version,
                Some(split),
            )
        };
        let (train, validation) = match (read(Split::Train).await, read(Split::Validation).await) {
            (Ok(train), Ok(validation)) => (train, validation),
            (Err(StoreError::NotFound(missing)), _) | (_, Err(StoreError::NotFound(missing))) => {
                return Ok(Err(format!("{missing} no longer exists")));
            }
            (Err(other), _) | (_, Err(other)) => return Err(other),
        };
        if train.is_empty() || validation.len() < 2 {
            return Ok(Err(format!(
                "version {} of dataset {} no longer has train and validation rows",
                spec.dataset_version, spec.dataset
            )));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
        let mut front = train;
        front.shuffle(&mut rng);
        front.truncate(MAX_FRONT_ROWS);
        let mut validation = validation;
        validation.shuffle(&mut rng);
        validation.truncate(MAX_VALIDATION_ROWS);
        let taxonomy = self.store.failure_modes(&optimization.prompt_id).await?;
        Ok(Ok(Run {
            optimization,
            budget: Budget::of(&spec),
            spec,
            client,
            graders,
            scales,
            variables,
            taxonomy,
            front,
            validation,
            pending: Vec::new(),
        }))
    }

    async fn resolve_graders(
        &self,
        optimization: &Optimization,
    ) -> Result<ResolvedGraders, StoreError> {
        if !crate::grading::stored::builtins_loaded(&self.registry) {
            crate::grading::jobs::wait_for_builtins(&self.registry).await;
        }
        let mut graders = Vec::with_capacity(optimization.graders.len());
        let mut scales = BTreeMap::new();
        for name in &optimization.graders {
            let stored = match self.store.get_grader(&optimization.prompt_id, name).await {
                Ok(stored) => stored,
                Err(StoreError::NotFound(missing)) => {
                    return Ok(Err(format!("{missing} no longer exists")));
                }
                Err(other) => return Err(other),
            };
            match NamedGrader::resolve(&stored, &self.registry) {
                Ok(grader) => graders.push(grader),
                Err(why) => return Ok(Err(why)),
            }
            if let Some(scale) = score_scale(&stored.definition) {
                scales.insert(name.clone(), scale);
            }
        }
        Ok(Ok((graders, scales)))
    }

    /// Scores candidate `id` on `rows` and records the cost; the scores by row and whether a
    /// budget refused a row.
    async fn score(
        &self,
        run: &mut Run<'_>,
        state: &mut LoopState,
        text: &str,
        candidate: usize,
        rows: Vec<DatasetRow>,
        purpose: &str,
    ) -> Result<(BTreeMap<Uuid, RowScore>, bool), StoreError> {
        if rows.is_empty() {
            return Ok((BTreeMap::new(), false));
        }
        let template =
            Template::parse(text).map_err(|e| StoreError::InvalidState(e.to_string()))?;
        let engine = CandidateEngine {
            prompt_id: &run.optimization.prompt_id,
            client: &run.client,
            model: run.spec.model.as_deref(),
            graders: &run.graders,
            runtime: self.registry.runtime(),
            calls_left: run.budget.task_calls_left(&state.spent),
            tokens_left: run.budget.task_tokens_left(&state.spent),
        };
        let scores = score_candidate(self.store.as_ref(), &engine, template, rows).await?;
        state.spent.task_calls += scores.model_calls;
        state.spent.cached_answers += scores.cached_answers;
        state.spent.task_tokens += scores.task_tokens;
        state.spent.grader_tokens += scores.grader_tokens;
        if purpose == "validation" {
            state.spent.validation_calls += scores.model_calls;
        }
        state.calls.push(CallRecord {
            model: "task".into(),
            purpose: purpose.into(),
            round: state.round,
            candidate,
            calls: scores.model_calls,
            cached: scores.cached_answers,
            tokens: scores.task_tokens + scores.grader_tokens,
        });
        run.pending.extend(scores.new_answers);
        let mut by_row = BTreeMap::new();
        for row in scores.rows {
            if row.error.as_deref() == Some("budget_exhausted") {
                continue;
            }
            by_row.insert(
                row.row,
                RowScore::from_verdicts(row.output, row.error, &row.verdicts, &run.scales),
            );
        }
        Ok((by_row, scores.budget_hit))
    }

    /// Writes the state and the pending answers; `false` when the claim was lost.
    async fn checkpoint(&self, run: &mut Run<'_>, state: &LoopState) -> Result<bool, StoreError> {
        let value = serde_json::to_value(state)
            .map_err(|e| StoreError::InvalidState(format!("cannot encode the state: {e}")))?;
        let held = self
            .store
            .checkpoint_optimization(
                run.optimization.id,
                &self.options.instance,
                &value,
                &run.pending,
            )
            .await?;
        run.pending.clear();
        Ok(held)
    }

    async fn optimize(
        &self,
        run: &mut Run<'_>,
        lost: &AtomicBool,
    ) -> Result<OptimizationStatus, StoreError> {
        let optimization = run.optimization;
        let mut state: LoopState = optimization
            .state
            .clone()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default();
        if state.candidates.is_empty() {
            let start = self
                .store
                .get_version(&optimization.prompt_id, optimization.start_version)
                .await?;
            state.candidates.push(Candidate {
                id: 0,
                text: start.content,
                parent: None,
                round: 0,
                accepted: true,
                trial: None,
                train: BTreeMap::new(),
            });
        }
        let front_ids = run.front_ids();
        let reserve = 2 * run.validation.len() as i64;
        if state.stop.is_none() {
            // The start on the front rows (those a restart left unscored).
            let missing: Vec<DatasetRow> = run
                .front
                .iter()
                .filter(|r| !state.candidates[0].train.contains_key(&r.id))
                .cloned()
                .collect();
            let text = state.candidates[0].text.clone();
            let (scores, hit) = self
                .score(run, &mut state, &text, 0, missing, "start")
                .await?;
            state.candidates[0].train.extend(scores);
            if hit {
                state.stop = Some(StopReason::Budget);
            }
            if !self.checkpoint(run, &state).await? {
                return Ok(OptimizationStatus::Running);
            }
        }
        while state.stop.is_none() {
            if lost.load(Ordering::Relaxed) {
                return Ok(OptimizationStatus::Running);
            }
            if let Some(reason) = self.stop_reason(run, &state, &front_ids, reserve).await? {
                state.stop = Some(reason);
                break;
            }
            self.round(run, &mut state, &front_ids).await?;
            if !self.checkpoint(run, &state).await? {
                return Ok(OptimizationStatus::Running);
            }
        }
        // Only a candidate that beat the start on the front rows costs validation calls.
        let winner = state.best;
        if winner != 0 && state.validation.is_none() {
            let start_text = state.candidates[0].text.clone();
            let winner_text = state.candidates[winner].text.clone();
            let rows = run.validation.clone();
            let (start, _) = self
                .score(run, &mut state, &start_text, 0, rows.clone(), "validation")
                .await?;
            let (candidate, _) = self
                .score(run, &mut state, &winner_text, winner, rows, "validation")
                .await?;
            state.validation = Some(ValidationScores {
                winner,
                start,
                candidate,
            });
            if !self.checkpoint(run, &state).await? {
                return Ok(OptimizationStatus::Running);
            }
        }
        self.finish(run, state).await
    }

    /// Why the loop stops before the next round, if it does.
    async fn stop_reason(
        &self,
        run: &Run<'_>,
        state: &LoopState,
        front: &[Uuid],
        reserve: i64,
    ) -> Result<Option<StopReason>, StoreError> {
        if self
            .store
            .get_optimization(run.optimization.id)
            .await?
            .cancel_requested
        {
            return Ok(Some(StopReason::Cancelled));
        }
        if state.candidates[state.best].mean_on(front) >= run.spec.target - EPSILON {
            return Ok(Some(StopReason::TargetReached));
        }
        if state.stale_rounds >= run.spec.patience {
            return Ok(Some(StopReason::NoImprovement));
        }
        // A round's worst case: the minibatch, then the rest of the front rows.
        if !run
            .budget
            .allows_round(&state.spent, front.len() as i64, reserve)
        {
            return Ok(Some(StopReason::Budget));
        }
        Ok(None)
    }

    /// One round: reflect on a parent's failures, try the proposal, maybe accept it.
    async fn round(
        &self,
        run: &mut Run<'_>,
        state: &mut LoopState,
        front: &[Uuid],
    ) -> Result<(), StoreError> {
        state.round += 1;
        let round = state.round;
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            run.spec.seed ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let parent = pareto::pick_parent(&pareto::front(&state.candidates, front), &mut rng);
        let size = (run.spec.minibatch as usize).min(front.len()).max(1);
        let offset = ((round as usize - 1) * size) % front.len();
        let minibatch: Vec<Uuid> = (0..size)
            .map(|i| front[(offset + i) % front.len()])
            .collect();
        let parent_text = state.candidates[parent].text.clone();
        let parent_scores = state.candidates[parent].train.clone();
        let failing_all: Vec<Uuid> = front
            .iter()
            .filter(|r| parent_scores.get(r).is_some_and(RowScore::failed))
            .copied()
            .collect();
        // The minibatch's failures first; the parent's other failures when it has none there.
        let mut shown: Vec<Uuid> = minibatch
            .iter()
            .filter(|r| failing_all.contains(r))
            .copied()
            .collect();
        if shown.is_empty() {
            shown = failing_all.clone();
        }
        if shown.is_empty() {
            state.stale_rounds += 1;
            return Ok(());
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for row in run.front.iter().filter(|r| failing_all.contains(&r.id)) {
            if let Some(mode) = reflection::failure_mode(&row.item) {
                *counts.entry(mode.to_owned()).or_default() += 1;
            }
        }
        let examples: Vec<Example<'_>> = shown
            .iter()
            .filter_map(|id| {
                let row = run.front.iter().find(|r| r.id == *id)?;
                Some(Example {
                    item: &row.item,
                    score: parent_scores.get(id)?,
                })
            })
            .collect();
        let messages = reflection::request(
            &parent_text,
            &run.variables,
            &examples,
            &counts,
            &run.taxonomy,
        );
        let request = ChatRequest {
            model: run
                .spec
                .reflection_model
                .clone()
                .or_else(|| run.spec.model.clone()),
            ..ChatRequest::new(messages)
        };
        let budget = RunBudget::new(run.budget.reflection_tokens_left(&state.spent));
        let answer = run.client.complete(&request, &budget).await;
        let called = !matches!(
            answer,
            Err(LlmError::BudgetExhausted | LlmError::NotConfigured(_))
        );
        let tokens = i64::try_from(budget.used()).unwrap_or(i64::MAX);
        state.spent.reflection_calls += i64::from(called);
        state.spent.reflection_tokens += tokens;
        state.calls.push(CallRecord {
            model: "reflection".into(),
            purpose: "reflection".into(),
            round,
            candidate: parent,
            calls: i64::from(called),
            cached: 0,
            tokens,
        });
        let answer = match answer {
            Ok(answer) => answer.content,
            Err(LlmError::BudgetExhausted) => {
                state.stop = Some(StopReason::Budget);
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(optimization = %run.optimization.id, round, %error, "reflection call failed");
                state.stale_rounds += 1;
                return Ok(());
            }
        };
        let Some(text) = reflection::parse_answer(&answer) else {
            state.discarded.unparseable += 1;
            state.stale_rounds += 1;
            return Ok(());
        };
        match reflection::check(&text, &run.variables) {
            Ok(()) => {}
            Err(Refused::WrongVariables { .. }) => {
                state.discarded.wrong_variables += 1;
                state.stale_rounds += 1;
                return Ok(());
            }
            Err(Refused::InvalidTemplate(_) | Refused::Unparseable) => {
                state.discarded.invalid_template += 1;
                state.stale_rounds += 1;
                return Ok(());
            }
        }
        if state.candidates.iter().any(|c| c.text == text) {
            state.discarded.duplicate += 1;
            state.stale_rounds += 1;
            return Ok(());
        }
        let id = state.candidates.len();
        state.candidates.push(Candidate {
            id,
            text: text.clone(),
            parent: Some(parent),
            round,
            accepted: false,
            trial: None,
            train: BTreeMap::new(),
        });
        let rows: Vec<DatasetRow> = run
            .front
            .iter()
            .filter(|r| minibatch.contains(&r.id))
            .cloned()
            .collect();
        let (scores, hit) = self.score(run, state, &text, id, rows, "minibatch").await?;
        let sum = |s: &BTreeMap<Uuid, RowScore>| {
            minibatch
                .iter()
                .map(|r| s.get(r).map_or(0.0, |x| x.score))
                .sum::<f64>()
        };
        let trial = Trial {
            rows: minibatch.clone(),
            parent_score: sum(&parent_scores),
            score: sum(&scores),
        };
        let better = !hit && trial.score > trial.parent_score + EPSILON;
        state.candidates[id].train.extend(scores);
        state.candidates[id].trial = Some(trial);
        if hit {
            state.stop = Some(StopReason::Budget);
            return Ok(());
        }
        if !better {
            state.stale_rounds += 1;
            return Ok(());
        }
        let seen: HashSet<Uuid> = state.candidates[id].train.keys().copied().collect();
        let rest: Vec<DatasetRow> = run
            .front
            .iter()
            .filter(|r| !seen.contains(&r.id))
            .cloned()
            .collect();
        let (scores, hit) = self.score(run, state, &text, id, rest, "front").await?;
        state.candidates[id].train.extend(scores);
        if hit {
            // Not scored on every front row: it cannot be compared fairly; the run ends.
            state.stop = Some(StopReason::Budget);
            state.stale_rounds += 1;
            return Ok(());
        }
        state.candidates[id].accepted = true;
        let best = state.candidates[state.best].mean_on(front);
        if state.candidates[id].mean_on(front) > best + EPSILON {
            state.best = id;
            state.stale_rounds = 0;
        } else {
            state.stale_rounds += 1;
        }
        Ok(())
    }

    /// Builds the report, decides, and ends the run (with the winner's version when it won).
    async fn finish(
        &self,
        run: &mut Run<'_>,
        state: LoopState,
    ) -> Result<OptimizationStatus, StoreError> {
        let optimization = run.optimization;
        let front = run.front_ids();
        let stop = state.stop.unwrap_or(StopReason::Budget);
        let graders: Vec<String> = optimization.graders.clone();
        let validation = state
            .validation
            .as_ref()
            .map(|v| report::validation(v.winner, &v.start, &v.candidate, &graders));
        let complete = validation
            .as_ref()
            .is_some_and(|v| v.rows == run.validation.len() as i64);
        let improved = validation.as_ref().is_some_and(report::is_gain) && complete;
        let reason = match &validation {
            None if stop == StopReason::TargetReached && state.best == 0 => {
                "the starting prompt already reaches the target on the training rows".to_owned()
            }
            None => "no candidate beat the starting prompt on the training rows; nothing was \
                     validated"
                .to_owned(),
            Some(v) if !complete => format!(
                "the validation could not be completed ({} of {} rows scored for both); no \
                 version is created from an incomplete comparison",
                v.rows,
                run.validation.len()
            ),
            Some(v) => {
                let interval = v
                    .gain_interval
                    .map(|b| format!("[{:.3}, {:.3}]", b.lower, b.upper))
                    .unwrap_or_else(|| "none".into());
                if improved {
                    format!(
                        "the winner beats the starting prompt on {} validation rows by {:.3} \
                         (95% interval {interval})",
                        v.rows, v.gain
                    )
                } else {
                    format!(
                        "the gain on {} validation rows, {:.3} (95% interval {interval}), is \
                         within the noise: the interval does not exclude 0",
                        v.rows, v.gain
                    )
                }
            }
        };
        let failure_modes = report::failure_modes(
            &run.validation,
            &state
                .validation
                .as_ref()
                .map(|v| v.start.clone())
                .unwrap_or_default(),
            state.validation.as_ref().map(|v| &v.candidate),
        );
        let winner_text = state.candidates[state.best].text.clone();
        let report = Report {
            stop_reason: stop,
            stop_detail: stop.describe(run.spec.patience),
            rounds: state.round,
            outcome: Outcome {
                improved,
                version: None,
                reason,
            },
            start_version: optimization.start_version,
            winner_text: winner_text.clone(),
            lineage: report::lineage(&state.candidates, state.best, &front),
            validation,
            failure_modes,
            candidates: report::candidates(&state, &front),
            spent: state.spent.clone(),
            calls: state.calls.clone(),
            ab_test: None,
        };
        let status = if stop == StopReason::Cancelled {
            OptimizationStatus::Cancelled
        } else {
            OptimizationStatus::Completed
        };
        let notes = format!(
            "Created by optimization {} from version {}: {}",
            optimization.id, optimization.start_version, report.outcome.reason
        );
        // The created version's number is only known in the transaction: the stored report
        // leaves `outcome.version` empty and readers take it from `createdVersion`
        // (`view::view`).
        let value = |report: &Report| {
            serde_json::to_value(report)
                .map_err(|e| StoreError::InvalidState(format!("cannot encode the report: {e}")))
        };
        let state_value = serde_json::to_value(&state)
            .map_err(|e| StoreError::InvalidState(format!("cannot encode the state: {e}")))?;
        let ended = self
            .store
            .finish_optimization(
                optimization.id,
                &self.options.instance,
                OptimizationEnd {
                    status,
                    state: Some(state_value),
                    report: Some(value(&report)?),
                    error: None,
                    winner: improved.then_some((winner_text, notes)),
                },
            )
            .await?;
        let Some((ended, version)) = ended else {
            return Ok(OptimizationStatus::Running);
        };
        if let Some(version) = version {
            tracing::info!(optimization = %optimization.id, prompt = %optimization.prompt_id, version = version.version, "optimization created a version");
            if run.spec.ab_test
                && let Some((prompts, split)) = &self.prompts
            {
                self.start_ab_test(prompts, *split, optimization, version.version)
                    .await;
            }
        }
        Ok(ended.status)
    }

    /// Starts the A/B test of the new version against the active one; a refusal (a test
    /// already running, no active version) is logged, the version stays.
    async fn start_ab_test(
        &self,
        prompts: &crate::prompts::PromptRegistry,
        split: f64,
        optimization: &Optimization,
        version: i64,
    ) {
        let active = match self.store.active_version(&optimization.prompt_id).await {
            Ok(active) => active.version,
            Err(error) => {
                tracing::warn!(optimization = %optimization.id, %error, "no A/B test: no active version");
                return;
            }
        };
        let request = serde_json::json!({"versionA": active, "versionB": version});
        let Ok(request) = serde_json::from_value(request) else {
            return;
        };
        match prompts
            .start_ab_test(
                &optimization.prompt_id,
                request,
                split,
                &format!("optimization:{}", optimization.id),
            )
            .await
        {
            Ok(test) => {
                tracing::info!(optimization = %optimization.id, ab_test = %test.id, "A/B test of the winner started")
            }
            Err(error) => {
                tracing::warn!(optimization = %optimization.id, %error, "the A/B test of the winner was not started")
            }
        }
    }
}

#[cfg(test)]
mod scale_tests {
    use super::score_scale;
    use serde_json::json;

    #[test]
    fn only_score_model_ranges_other_than_zero_to_one_are_scales() {
        let judge = json!({"type": "score_model", "range": [1, 5]});
        assert_eq!(score_scale(&judge), Some((1.0, 5.0)));
        assert_eq!(
            score_scale(&json!({"type": "score_model", "range": [0, 1]})),
            None
        );
        assert_eq!(score_scale(&json!({"type": "score_model"})), None);
        assert_eq!(
            score_scale(&json!({"type": "string_check", "range": [1, 5]})),
            None
        );
    }
}
