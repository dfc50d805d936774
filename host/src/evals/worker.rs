//! Evaluating a claimed evaluation job a chunk of positions at a time (see
//! [`EvaluationSpec::locate`] for what a position is).
//!
//! For each position: render the version's template with the row's `item` (a missing variable
//! is that row's error), take the answer from the cache or ask the task model through the
//! host's client (its endpoint, retries, concurrency limit; the job's token and call budgets),
//! then grade the answers with the job's graders. The chunk is committed in one transaction
//! (outputs, verdicts, new cache entries, counters), so a restart resumes at the first position
//! not committed and asks the model nothing for the committed ones. The calls do not wait for
//! the commits: while a chunk is graded and committed, the next chunk's calls are in flight (a
//! chunk is read ahead at most, and asked again after a restart since it was not committed).
//!
//! When a budget runs out, positions from the first one refused are left out of the chunk (the
//! answers got for later ones are still cached) and the job ends `budget_exhausted` with what
//! was committed. A cancel is seen between chunks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use uuid::Uuid;

use super::cache::{Sampling, cache_key};
use crate::graders::engine::GraderRuntime;
use crate::graders::llm::LlmRun;
use crate::grading::apply::{NamedGrader, grade_runs, totals_of};
use crate::grading::jobs::JobWorker;
use crate::llm::{ChatMessage, ChatRequest, LlmClient, LlmError};
use crate::prompts::template::Template;
use crate::store::{
    CachedAnswer, DatasetRow, EvaluationChunk, EvaluationJob, EvaluationOutput, EvaluationSpec,
    GradableRun, JobStatus, RowQuery, Store, StoreError,
};

/// Rows read per page when loading the dataset version.
const DATASET_PAGE: u32 = 1000;

/// What every position of one evaluation shares.
struct Context {
    /// The evaluation (nil when scoring an optimizer's candidate).
    job_id: Uuid,
    prompt_id: String,
    spec: EvaluationSpec,
    templates: Vec<Template>,
    rows: Vec<DatasetRow>,
    client: LlmClient,
    endpoint_url: String,
    model: String,
    sampling: Sampling,
    llm_run: LlmRun,
    /// Task-model calls still allowed (`i64::MAX` when unlimited).
    calls_left: AtomicI64,
}

/// One position before its answer: what to send, or why nothing can be.
struct Prepared {
    position: i64,
    version: i64,
    row: usize,
    repeat: i64,
    messages: Result<Vec<ChatMessage>, String>,
    key: String,
}

/// How a position got (or did not get) its answer.
enum Answered {
    Cached(CachedAnswer),
    Fresh {
        answer: CachedAnswer,
        latency_ms: i64,
    },
    Failed {
        kind: String,
        message: String,
        /// Whether a call was sent (it counts as a model call then).
        called: bool,
    },
}

/// Evaluates the claimed job from where it stands to its end; returns the status it ended with
/// (`Running` when the claim was lost).
pub(crate) async fn evaluate(
    worker: &JobWorker,
    evaluation: EvaluationJob,
    lost: &AtomicBool,
) -> Result<JobStatus, StoreError> {
    let job = &evaluation.job;
    let graders = match worker.resolve_graders(job).await? {
        Ok(graders) => graders,
        Err(why) => return worker.finish(job.id, JobStatus::Failed, Some(&why)).await,
    };
    let context = match context(worker, &evaluation).await? {
        Ok(context) => Arc::new(context),
        Err(why) => return worker.finish(job.id, JobStatus::Failed, Some(&why)).await,
    };
    let store = worker.store();
    let runtime = worker.registry().runtime().clone();
    let chunk_rows = worker.options().eval_chunk_rows.max(1);
    let total = context.spec.total();
    let mut from = job.processed;
    // Answers arrive in position order from one stream that keeps the client's calls in flight
    // across chunk boundaries; while a chunk is graded and committed, the stream is still
    // polled and up to `READ_AHEAD_CHUNKS` chunks of answers wait here. Everything lives in this
    // future: when the worker is aborted or returns, the calls in flight are dropped with it.
    let mut answers = answer_stream(store.as_ref(), &context, from, chunk_rows);
    let mut ahead: VecDeque<(Prepared, Answered)> = VecDeque::new();
    let read_ahead = chunk_rows.saturating_mul(READ_AHEAD_CHUNKS);
    let mut drained = false;
    loop {
        if lost.load(Ordering::Relaxed) {
            return Ok(JobStatus::Running);
        }
        if store.get_grading_job(job.id).await?.cancel_requested {
            return worker.finish(job.id, JobStatus::Cancelled, None).await;
        }
        if from >= total {
            return worker.finish(job.id, JobStatus::Completed, None).await;
        }
        while ahead.len() < chunk_rows && !drained {
            match answers.next().await {
                Some(answered) => ahead.push_back(answered?),
                None => drained = true,
            }
        }
        let chunk: Vec<(Prepared, Answered)> = ahead.drain(..chunk_rows.min(ahead.len())).collect();
        if chunk.is_empty() {
            return worker.finish(job.id, JobStatus::Completed, None).await;
        }
        let commit = commit_chunk(worker, &context, &graders, &runtime, from, chunk);
        tokio::pin!(commit);
        let outcome = loop {
            tokio::select! {
                biased;
                outcome = &mut commit => break outcome?,
                next = answers.next(), if ahead.len() < read_ahead && !drained => match next {
                    Some(answered) => ahead.push_back(answered?),
                    None => drained = true,
                },
            }
        };
        match outcome {
            // Taken over, or cancelled and finished meanwhile: the chunk is not ours to keep.
            ChunkOutcome::NotOurs => return Ok(JobStatus::Running),
            ChunkOutcome::BudgetHit => {
                return worker
                    .finish(job.id, JobStatus::BudgetExhausted, None)
                    .await;
            }
            ChunkOutcome::Committed(count) => from += count,
        }
    }
}

/// Chunks of answers read ahead of the one being committed. One is enough to keep the calls
/// in flight while a chunk is graded and committed; each is asked again after a restart, since
/// answers are kept (cached) only with their chunk.
const READ_AHEAD_CHUNKS: usize = 1;

/// What committing a chunk came to.
enum ChunkOutcome {
    /// This many positions were committed.
    Committed(i64),
    /// A budget refused a position: what came before it was committed, the job ends.
    BudgetHit,
    /// The job is no longer this worker's (taken over, or cancelled and finished).
    NotOurs,
}

/// Grades a chunk of answered positions and commits it in one transaction, up to the first
/// position a budget refused (the later answers of the chunk are only cached).
async fn commit_chunk(
    worker: &JobWorker,
    context: &Context,
    graders: &[NamedGrader],
    runtime: &GraderRuntime,
    from: i64,
    chunk: Vec<(Prepared, Answered)>,
) -> Result<ChunkOutcome, StoreError> {
    let job_id = context.job_id;
    let kept = chunk
        .iter()
        .position(|(_, a)| matches!(a, Answered::Failed { kind, .. } if kind == "budget_exhausted"))
        .unwrap_or(chunk.len());
    let budget_hit = kept < chunk.len();
    let mut new_answers = Vec::new();
    let (mut model_calls, mut cached) = (0, 0);
    let mut task_tokens = 0;
    for (index, (_, answer)) in chunk.iter().enumerate() {
        match answer {
            Answered::Fresh { answer, .. } => {
                model_calls += 1;
                new_answers.push(answer.clone());
                if index < kept {
                    task_tokens += answer.prompt_tokens + answer.completion_tokens;
                }
            }
            Answered::Cached(_) if index < kept => cached += 1,
            Answered::Failed { called: true, .. } => model_calls += 1,
            _ => {}
        }
    }
    let outputs: Vec<EvaluationOutput> = chunk
        .iter()
        .take(kept)
        .map(|(position, answer)| output(context, position, answer))
        .collect();
    let gradable: Vec<GradableRun> = outputs
        .iter()
        .filter(|output| output.output.is_some())
        .map(|output| gradable(&context.prompt_id, job_id, output))
        .collect();
    let (graded, mut totals) = if gradable.is_empty() {
        (Vec::new(), totals_of(&[]))
    } else {
        grade_runs(graders, runtime, &context.llm_run, &gradable).await
    };
    for output in &outputs {
        if let Some(kind) = &output.error {
            totals.errored += 1;
            *totals.errors.entry(kind.clone()).or_default() += 1;
        }
    }
    totals.tokens += task_tokens;
    let committed = worker
        .store()
        .record_evaluation_chunk(
            job_id,
            &worker.options().instance,
            EvaluationChunk {
                from,
                outputs: &outputs,
                graded: &graded,
                totals: &totals,
                new_answers: &new_answers,
                model_calls,
                cached_answers: cached,
            },
        )
        .await?;
    Ok(if !committed {
        ChunkOutcome::NotOurs
    } else if budget_hit || totals.errors.contains_key("budget_exhausted") {
        ChunkOutcome::BudgetHit
    } else {
        ChunkOutcome::Committed(i64::try_from(outputs.len()).unwrap_or(i64::MAX))
    })
}

/// Every position from `from` to the end with its answer, in position order: a chunk's cached
/// answers are read in one query when the stream reaches it, and as many calls are in flight
/// as the client's concurrency limit lets through, across chunk boundaries.
fn answer_stream<'a>(
    store: &'a dyn Store,
    context: &Arc<Context>,
    from: i64,
    chunk_rows: usize,
) -> BoxStream<'a, Result<(Prepared, Answered), StoreError>> {
    let total = context.spec.total();
    let step = i64::try_from(chunk_rows).unwrap_or(64);
    let concurrency = context.client.settings().max_concurrency.max(1);
    let context = context.clone();
    let starts = futures::stream::iter((from..total).step_by(chunk_rows));
    starts
        .then(move |start| {
            let context = context.clone();
            async move {
                let end = (start + step).min(total);
                let prepared: Vec<Prepared> = (start..end).map(|p| prepare(&context, p)).collect();
                let futures: Vec<BoxFuture<'a, Result<(Prepared, Answered), StoreError>>> =
                    match cached_for(store, &prepared).await {
                        Ok(mut cached) => prepared
                            .into_iter()
                            .map(|p| {
                                let hit = cached.remove(&p.key);
                                answer_one(context.clone(), p, hit).map(Ok).boxed()
                            })
                            .collect(),
                        Err(error) => vec![futures::future::ready(Err(error)).boxed()],
                    };
                futures::stream::iter(futures)
            }
        })
        .flatten()
        .buffered(concurrency)
        .boxed()
}

/// The cached answers of the positions that can be sent, by key.
async fn cached_for(
    store: &dyn Store,
    prepared: &[Prepared],
) -> Result<HashMap<String, CachedAnswer>, StoreError> {
    let keys: Vec<String> = prepared
        .iter()
        .filter(|p| p.messages.is_ok())
        .map(|p| p.key.clone())
        .collect();
    Ok(store
        .cached_answers(&keys)
        .await?
        .into_iter()
        .map(|answer| (answer.key.clone(), answer))
        .collect())
}

/// A position's answer: its rendering error, its cached answer, or the model's.
async fn answer_one(
    context: Arc<Context>,
    prepared: Prepared,
    hit: Option<CachedAnswer>,
) -> (Prepared, Answered) {
    let answered = match (&prepared.messages, hit) {
        (Err(message), _) => Answered::Failed {
            kind: "missing_variable".into(),
            message: message.clone(),
            called: false,
        },
        (Ok(_), Some(answer)) => Answered::Cached(answer),
        (Ok(messages), None) => ask(&context, messages.clone(), &prepared.key).await,
    };
    (prepared, answered)
}

/// Everything the positions share, or why the evaluation cannot run (it then fails).
async fn context(
    worker: &JobWorker,
    evaluation: &EvaluationJob,
) -> Result<Result<Context, String>, StoreError> {
    let job = &evaluation.job;
    let spec = evaluation.spec.clone();
    let Some(client) = worker.registry().runtime().llm_client().cloned() else {
        return Ok(Err(
            "no model endpoint is configured for the task model".into()
        ));
    };
    let Some((endpoint_url, model)) = task_model(&client, spec.model.as_deref()) else {
        return Ok(Err("no default model endpoint is configured".into()));
    };
    let store = worker.store();
    let mut templates = Vec::with_capacity(spec.versions.len());
    for version in &spec.versions {
        let stored = store.get_version(&job.prompt_id, *version).await?;
        match Template::parse(&stored.content) {
            Ok(template) => templates.push(template),
            Err(error) => return Ok(Err(format!("version {version}: {error}"))),
        }
    }
    let rows = match dataset_rows(store.as_ref(), &spec).await {
        Ok(rows) => rows,
        Err(StoreError::NotFound(missing)) => {
            return Ok(Err(format!("{missing} no longer exists")));
        }
        Err(other) => return Err(other),
    };
    if i64::try_from(rows.len()).ok() != Some(spec.rows) {
        return Ok(Err(format!(
            "dataset {} version {} has {} rows, not the {} the evaluation was created with",
            spec.dataset,
            spec.dataset_version,
            rows.len(),
            spec.rows
        )));
    }
    let budget = job
        .token_budget
        .and_then(|b| u64::try_from(b).ok())
        .or(worker.options().default_token_budget)
        .map(|b| b.saturating_sub(u64::try_from(job.tokens_used).unwrap_or(0)));
    let calls_left = spec
        .call_budget
        .map_or(i64::MAX, |b| b.saturating_sub(evaluation.model_calls));
    Ok(Ok(Context {
        job_id: job.id,
        prompt_id: job.prompt_id.clone(),
        templates,
        rows,
        client,
        endpoint_url,
        model,
        sampling: spec.sampling.clone(),
        llm_run: LlmRun::new(budget),
        calls_left: AtomicI64::new(calls_left),
        spec,
    }))
}

/// The default endpoint's URL and the model a task-model call uses (`asked`, else the
/// endpoint's default, else the client's); `None` without a default endpoint.
fn task_model(client: &LlmClient, asked: Option<&str>) -> Option<(String, String)> {
    let settings = client.settings();
    let endpoint = settings.default_endpoint.as_ref()?;
    let model = asked
        .map(str::to_owned)
        .or_else(|| endpoint.default_model.clone())
        .unwrap_or_else(|| settings.default_model.clone());
    Some((endpoint.base_url().to_string(), model))
}

/// What scoring a candidate text needs: the task model, the graders and the budgets left.
pub(crate) struct CandidateEngine<'a> {
    /// The prompt (what graders see as the run's prompt).
    pub prompt_id: &'a str,
    /// The model client.
    pub client: &'a LlmClient,
    /// The task model asked; the endpoint's default when `None`.
    pub model: Option<&'a str>,
    /// The graders that score each answer.
    pub graders: &'a [NamedGrader],
    /// The grader runtime.
    pub runtime: &'a GraderRuntime,
    /// Task-model calls still allowed.
    pub calls_left: i64,
    /// Tokens (task model and model graders) still allowed, when limited.
    pub tokens_left: Option<u64>,
}

/// One dataset row scored for a candidate.
#[derive(Debug, Clone)]
pub(crate) struct CandidateRow {
    /// The dataset row.
    pub row: Uuid,
    /// The answer, when the model gave one.
    pub output: Option<String>,
    /// Why there is no answer (`missing_variable`, `timeout`, `budget_exhausted`…).
    pub error: Option<String>,
    /// Each grader's verdict on the answer (none without an answer).
    pub verdicts: Vec<crate::store::GraderVerdict>,
}

/// A candidate scored on rows: per row, and what it cost.
#[derive(Debug, Clone, Default)]
pub(crate) struct CandidateScores {
    /// The rows, in the order given.
    pub rows: Vec<CandidateRow>,
    /// Task-model calls made.
    pub model_calls: i64,
    /// Answers taken from the cache.
    pub cached_answers: i64,
    /// Task-model tokens of the fresh answers.
    pub task_tokens: i64,
    /// Model-grader tokens.
    pub grader_tokens: i64,
    /// Fresh answers, for the caller to cache with its checkpoint.
    pub new_answers: Vec<CachedAnswer>,
    /// Whether a budget refused a row (that row and the later ones have no answer).
    pub budget_hit: bool,
}

/// Scores a candidate text on `rows` with the evaluation engine: the same rendering, answer
/// cache, task-model calls and grading as an evaluation's positions, without a stored job or
/// version (the optimizer's candidates become versions only when they win). Nothing is
/// written: the fresh answers are returned for the caller to cache.
pub(crate) async fn score_candidate(
    store: &dyn Store,
    engine: &CandidateEngine<'_>,
    template: Template,
    rows: Vec<DatasetRow>,
) -> Result<CandidateScores, StoreError> {
    let Some((endpoint_url, model)) = task_model(engine.client, engine.model) else {
        return Err(StoreError::InvalidState(
            "no default model endpoint is configured".into(),
        ));
    };
    let count = rows.len();
    let context = Arc::new(Context {
        job_id: Uuid::nil(),
        prompt_id: engine.prompt_id.to_owned(),
        spec: EvaluationSpec {
            versions: vec![0],
            dataset: String::new(),
            dataset_version: 0,
            split: None,
            rows: i64::try_from(count).unwrap_or(i64::MAX),
            model: engine.model.map(str::to_owned),
            repeat: 1,
            call_budget: None,
            sampling: Sampling::default(),
        },
        templates: vec![template],
        rows,
        client: engine.client.clone(),
        endpoint_url,
        model,
        sampling: Sampling::default(),
        llm_run: LlmRun::new(engine.tokens_left),
        calls_left: AtomicI64::new(engine.calls_left),
    });
    let prepared: Vec<Prepared> = (0..context.spec.total())
        .map(|p| prepare(&context, p))
        .collect();
    let answered = answer_all(store, &context, prepared).await?;
    let mut scores = CandidateScores::default();
    for (_, answer) in &answered {
        match answer {
            Answered::Fresh { answer, .. } => {
                scores.model_calls += 1;
                scores.task_tokens += answer.prompt_tokens + answer.completion_tokens;
                scores.new_answers.push(answer.clone());
            }
            Answered::Cached(_) => scores.cached_answers += 1,
            Answered::Failed { kind, called, .. } => {
                scores.model_calls += i64::from(*called);
                scores.budget_hit |= kind == "budget_exhausted";
            }
        }
    }
    let outputs: Vec<EvaluationOutput> = answered
        .iter()
        .map(|(position, answer)| output(&context, position, answer))
        .collect();
    let gradable: Vec<GradableRun> = outputs
        .iter()
        .filter(|output| output.output.is_some())
        .map(|output| gradable(&context.prompt_id, Uuid::nil(), output))
        .collect();
    let graded = if gradable.is_empty() {
        Vec::new()
    } else {
        grade_runs(engine.graders, engine.runtime, &context.llm_run, &gradable)
            .await
            .0
    };
    let mut verdicts: HashMap<Uuid, Vec<crate::store::GraderVerdict>> = graded
        .into_iter()
        .map(|run| (run.data_id, run.verdicts))
        .collect();
    for output in outputs {
        let mine = verdicts.remove(&output.run_id).unwrap_or_default();
        scores.grader_tokens += mine
            .iter()
            .map(|v| v.prompt_tokens.unwrap_or(0) + v.completion_tokens.unwrap_or(0))
            .sum::<i64>();
        scores.budget_hit |= mine
            .iter()
            .any(|v| v.error.as_deref() == Some("budget_exhausted"));
        scores.rows.push(CandidateRow {
            row: output.dataset_row,
            output: output.output,
            error: output.error,
            verdicts: mine,
        });
    }
    Ok(scores)
}

/// The dataset version's rows evaluated, in dataset order.
pub(crate) async fn dataset_rows(
    store: &dyn Store,
    spec: &EvaluationSpec,
) -> Result<Vec<DatasetRow>, StoreError> {
    let mut rows = Vec::new();
    let mut after = None;
    // Bounded: every page advances `after` past its last row, and a version has finitely many.
    loop {
        let query = RowQuery {
            version: Some(spec.dataset_version),
            split: spec.split,
            after,
        };
        let (_, page) = store
            .dataset_rows(&spec.dataset, &query, DATASET_PAGE)
            .await?;
        let full = page.len() == DATASET_PAGE as usize;
        after = page.last().map(|row| row.index);
        rows.extend(page);
        if !full {
            return Ok(rows);
        }
    }
}

/// The template's values from a row's item: a string as it is, any other JSON value as its
/// JSON text; a dotted name reads into nested objects. Absent or `null` is missing.
fn values_for(
    template: &Template,
    item: &serde_json::Map<String, Value>,
) -> HashMap<String, String> {
    let mut values = HashMap::new();
    for name in template.variables() {
        let mut parts = name.split('.');
        let mut current = parts.next().and_then(|first| item.get(first));
        for part in parts {
            current = current.and_then(|value| value.get(part));
        }
        match current {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                values.insert(name.clone(), text.clone());
            }
            Some(other) => {
                values.insert(name.clone(), other.to_string());
            }
        }
    }
    values
}

fn prepare(context: &Context, position: i64) -> Prepared {
    let located = context.spec.locate(position);
    let template = &context.templates[located.version_index];
    let row = &context.rows[located.row_index];
    let messages = template
        .render(&values_for(template, &row.item))
        .map(|text| vec![ChatMessage::user(text)])
        .map_err(|error| error.to_string());
    let key = match &messages {
        Ok(messages) => cache_key(
            &context.endpoint_url,
            &context.model,
            messages,
            &context.sampling,
            located.repeat,
        ),
        Err(_) => String::new(),
    };
    Prepared {
        position,
        version: context.spec.versions[located.version_index],
        row: located.row_index,
        repeat: located.repeat,
        messages,
        key,
    }
}

/// Every position's answer, in order: from the cache when there, else from the model (as many
/// at once as the client's concurrency limit lets through).
async fn answer_all(
    store: &dyn Store,
    context: &Arc<Context>,
    prepared: Vec<Prepared>,
) -> Result<Vec<(Prepared, Answered)>, StoreError> {
    let mut cached = cached_for(store, &prepared).await?;
    let concurrency = context.client.settings().max_concurrency.max(1);
    let futures: Vec<_> = prepared
        .into_iter()
        .map(|p| {
            let hit = cached.remove(&p.key);
            answer_one(context.clone(), p, hit)
        })
        .collect();
    Ok(futures::stream::iter(futures)
        .buffered(concurrency)
        .collect()
        .await)
}

/// One task-model call, within the job's budgets.
async fn ask(context: &Context, messages: Vec<ChatMessage>, key: &str) -> Answered {
    if context.calls_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
        return Answered::Failed {
            kind: "budget_exhausted".into(),
            message: "the evaluation's call budget is spent".into(),
            called: false,
        };
    }
    let request = ChatRequest {
        model: Some(context.model.clone()),
        temperature: context.sampling.temperature,
        top_p: context.sampling.top_p,
        seed: context.sampling.seed,
        max_completion_tokens: context.sampling.max_completion_tokens,
        ..ChatRequest::new(messages)
    };
    let started = Instant::now();
    match context
        .client
        .complete(&request, context.llm_run.budget())
        .await
    {
        Ok(answer) => Answered::Fresh {
            answer: CachedAnswer {
                key: key.to_owned(),
                model: context.client.redact(&answer.model),
                answer: context.client.redact(&answer.content),
                prompt_tokens: i64::from(answer.usage.prompt_tokens),
                completion_tokens: i64::from(answer.usage.completion_tokens),
            },
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        },
        Err(LlmError::BudgetExhausted) => Answered::Failed {
            kind: "budget_exhausted".into(),
            message: "the evaluation's token budget is spent".into(),
            called: false,
        },
        Err(error) => Answered::Failed {
            kind: error.kind().to_owned(),
            // The client's messages are already free of keys.
            message: error.to_string(),
            called: !matches!(error, LlmError::NotConfigured(_)),
        },
    }
}

fn output(context: &Context, prepared: &Prepared, answered: &Answered) -> EvaluationOutput {
    let row = &context.rows[prepared.row];
    let mut output = EvaluationOutput {
        run_id: Uuid::now_v7(),
        position: prepared.position,
        version: prepared.version,
        dataset_row: row.id,
        repeat: prepared.repeat,
        input: Value::Object(row.item.clone()),
        output: None,
        model: None,
        prompt_tokens: None,
        completion_tokens: None,
        latency_ms: None,
        error: None,
        error_message: None,
    };
    match answered {
        Answered::Cached(answer) | Answered::Fresh { answer, .. } => {
            output.output = Some(answer.answer.clone());
            output.model = Some(answer.model.clone());
            output.prompt_tokens = Some(answer.prompt_tokens);
            output.completion_tokens = Some(answer.completion_tokens);
            output.latency_ms = Some(match answered {
                Answered::Fresh { latency_ms, .. } => *latency_ms,
                _ => 0,
            });
        }
        Answered::Failed { kind, message, .. } => {
            output.error = Some(kind.clone());
            output.error_message = Some(message.clone());
        }
    }
    output
}

/// An output as graders see it: the row's item as the variables, the answer as the output.
fn gradable(prompt_id: &str, evaluation: Uuid, output: &EvaluationOutput) -> GradableRun {
    GradableRun {
        id: output.run_id,
        row_index: output.position,
        prompt_id: prompt_id.to_owned(),
        version: output.version,
        task_id: format!("eval:{evaluation}:{}", output.position),
        attempt: 1,
        input: output.input.clone(),
        output: output.output.clone(),
        model: output.model.clone(),
        tests_passed: None,
        pr_merged: None,
        expected_files: None,
        failure_signature: None,
        previous_output: None,
        previous_failure_signature: None,
        annotation_source: None,
        outcome_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: Value) -> serde_json::Map<String, Value> {
        json.as_object().cloned().expect("an object")
    }

    #[test]
    fn values_come_from_the_item_strings_verbatim_others_as_json_dotted_names_nested() {
        let template = Template::parse("{{q}} {{n}} {{meta.lang}} {{gone}} {{nothing}}").unwrap();
        let values = values_for(
            &template,
            &item(
                serde_json::json!({"q": "why?", "n": 3, "meta": {"lang": "en"}, "nothing": null}),
            ),
        );
        assert_eq!(values.get("q").map(String::as_str), Some("why?"));
        assert_eq!(values.get("n").map(String::as_str), Some("3"));
        assert_eq!(values.get("meta.lang").map(String::as_str), Some("en"));
        assert!(!values.contains_key("gone"));
        assert!(
            !values.contains_key("nothing"),
            "null is missing, not the text null"
        );
    }

    #[test]
    fn positions_walk_versions_then_repeats_then_rows() {
        let spec = EvaluationSpec {
            versions: vec![3, 4],
            dataset: "d".into(),
            dataset_version: 1,
            split: None,
            rows: 5,
            model: None,
            repeat: 2,
            call_budget: None,
            sampling: Sampling::default(),
        };
        assert_eq!(spec.total(), 20);
        let seen: Vec<(usize, i64, usize)> = (0..spec.total())
            .map(|p| {
                let l = spec.locate(p);
                (l.version_index, l.repeat, l.row_index)
            })
            .collect();
        assert_eq!(
            &seen[..5],
            &[(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0), (0, 0, 1)]
        );
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            20,
            "every (version, repeat, row) exactly once"
        );
    }
}
