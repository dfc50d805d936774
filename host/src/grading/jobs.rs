//! Grading jobs: the worker every `flywheel serve` runs, which claims queued jobs (or jobs whose
//! instance died) and grades their rows a chunk at a time.
//!
//! - A claim holds for the lease (`FLYWHEEL_JOB_LEASE_SECS`) and the worker renews it every
//!   third of that while it works; if it loses the claim (its renewals failed long enough for
//!   another instance to take over), its next chunk commit is refused and it stops.
//! - Each chunk is graded, then committed in one transaction (verdicts, the runs'
//!   `graderResults`, the job's counters), so an interrupted job resumes at the first row not
//!   committed: no row graded twice, none skipped (see [`crate::store::GradingJobStore`]).
//! - Model graders spend the job's token budget (the request's `tokenBudget`, else
//!   `FLYWHEEL_LLM_RUN_TOKEN_BUDGET`), less what the job spent before a restart. When it is
//!   spent, the chunk's rows report `budget_exhausted` and the job ends as `budget_exhausted`.
//! - A cancel is seen between chunks: the chunk in flight is kept.
//! - An evaluation (a job of kind `evaluation`) is claimed, renewed and finished the same way;
//!   its chunks are evaluated by [`crate::evals::worker`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use uuid::Uuid;

use crate::graders::llm::LlmRun;
use crate::graders::registry::Registry;
use crate::grading::apply::{NamedGrader, grade_runs};
use crate::store::{GradingJob, JobStatus, Store, StoreError};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// This instance's name in claims (unique per process).
    pub instance: String,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// How long to wait before looking for work again when there was none.
    pub idle_poll: Duration,
    /// Rows graded and committed together when a grader of the job calls a model: small, so a
    /// cancel is seen soon and a restart re-spends few tokens.
    pub chunk_rows: usize,
    /// Rows graded and committed together when no grader calls a model: each commit has a fixed
    /// cost (the job's row, the prompt's lock, the transaction), which larger chunks spread
    /// (BENCHMARKS.md, "Runs").
    pub model_free_chunk_rows: usize,
    /// Positions of an evaluation evaluated and committed together: each asks the task model,
    /// so small enough that a cancel is seen soon and a restart asks again for few answers.
    pub eval_chunk_rows: usize,
    /// The token budget of a job that sets none.
    pub default_token_budget: Option<u64>,
}

impl WorkerOptions {
    /// The options of a server: a fresh instance name, the configured lease and budget.
    pub fn for_server(lease: Duration, default_token_budget: Option<u64>) -> Self {
        WorkerOptions {
            instance: format!("flywheel-{}-{}", std::process::id(), Uuid::now_v7()),
            lease,
            idle_poll: Duration::from_millis(250),
            chunk_rows: 256,
            model_free_chunk_rows: 2000,
            eval_chunk_rows: 64,
            default_token_budget,
        }
    }
}

/// Claims and grades jobs until the task is dropped.
pub struct JobWorker {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    options: WorkerOptions,
}

impl JobWorker {
    /// A worker on this store and grader registry.
    pub fn new(store: Arc<dyn Store>, registry: Arc<Registry>, options: WorkerOptions) -> Self {
        JobWorker {
            store,
            registry,
            options,
        }
    }

    /// Runs forever: claims a job, grades it to its end, looks for the next. Store errors are
    /// logged and retried after the idle pause.
    pub async fn run(self) {
        loop {
            match self
                .store
                .claim_grading_job(&self.options.instance, self.options.lease)
                .await
            {
                Ok(Some(job)) => {
                    let id = job.id;
                    match self.process(job).await {
                        Ok(status) => {
                            tracing::info!(job = %id, status = status.as_str(), "grading run ended")
                        }
                        Err(error) => {
                            tracing::warn!(job = %id, %error, "grading run interrupted; it resumes once its lease expires");
                            tokio::time::sleep(self.options.idle_poll).await;
                        }
                    }
                }
                Ok(None) => tokio::time::sleep(self.options.idle_poll).await,
                Err(error) => {
                    tracing::warn!(%error, "claiming a grading run failed");
                    tokio::time::sleep(self.options.idle_poll).await;
                }
            }
        }
    }

    /// Grades a claimed job from where it stands to its end; returns the status it ended with
    /// (or `Running` when the claim was lost to another instance).
    pub async fn process(&self, job: GradingJob) -> Result<JobStatus, StoreError> {
        let lost = Arc::new(AtomicBool::new(false));
        // Aborted when this future ends or is dropped: a worker task aborted mid-job (its
        // server stopped) must not leave the renewal running, or the lease would never expire
        // and no other instance could resume the job.
        let _renewal = AbortOnDrop(self.spawn_renewal(job.id, lost.clone()));
        self.grade(&job, &lost).await
    }

    /// Renews the claim every third of the lease; flags `lost` once a renewal is refused.
    fn spawn_renewal(&self, id: Uuid, lost: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let instance = self.options.instance.clone();
        let lease = self.options.lease;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match store.renew_grading_lease(id, &instance, lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(job = %id, %error, "renewing a grading lease failed")
                    }
                }
            }
        })
    }

    /// The store the worker claims from.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The grader registry (and through its runtime, the model client).
    pub(crate) fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// How the worker paces itself.
    pub(crate) fn options(&self) -> &WorkerOptions {
        &self.options
    }

    /// Puts the job in a final status; `Running` when the claim was lost meanwhile.
    pub(crate) async fn finish(
        &self,
        id: Uuid,
        status: JobStatus,
        error: Option<&str>,
    ) -> Result<JobStatus, StoreError> {
        let held = self
            .store
            .finish_grading_job(id, &self.options.instance, status, error)
            .await?;
        Ok(if held { status } else { JobStatus::Running })
    }

    async fn grade(&self, job: &GradingJob, lost: &AtomicBool) -> Result<JobStatus, StoreError> {
        match self.store.get_evaluation(job.id).await {
            Ok(evaluation) => return crate::evals::worker::evaluate(self, evaluation, lost).await,
            Err(StoreError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
        let graders = match self.resolve_graders(job).await? {
            Ok(graders) => graders,
            Err(error) => return self.finish(job.id, JobStatus::Failed, Some(&error)).await,
        };
        let budget = job
            .token_budget
            .and_then(|b| u64::try_from(b).ok())
            .or(self.options.default_token_budget)
            .map(|b| b.saturating_sub(u64::try_from(job.tokens_used).unwrap_or(0)));
        let llm_run = LlmRun::new(budget);
        let runtime = self.registry.runtime().clone();
        let needs_model = graders.iter().any(|g| g.resolved.needs_model());
        let chunk_rows = if needs_model {
            self.options.chunk_rows
        } else {
            self.options.model_free_chunk_rows
        };
        // Reads and grades the chunk that starts at `from`; `None` past the last row. Owns what
        // it uses, so it can run as a task of its own (see below).
        let graders = Arc::new(graders);
        let read_and_grade = |from: i64| {
            let (store, graders) = (self.store.clone(), graders.clone());
            let (runtime, llm_run, id) = (runtime.clone(), llm_run.clone(), job.id);
            async move {
                let rows = store.job_rows(id, from, chunk_rows).await?;
                if rows.is_empty() {
                    return Ok::<_, StoreError>(None);
                }
                let (graded, totals) = grade_runs(&graders, &runtime, &llm_run, &rows).await;
                Ok(Some((rows.len(), graded, totals)))
            }
        };
        let mut from = job.processed;
        let mut prefetched = None;
        loop {
            if lost.load(Ordering::Relaxed) {
                return Ok(JobStatus::Running);
            }
            let current = self.store.get_grading_job(job.id).await?;
            if current.cancel_requested {
                return self.finish(job.id, JobStatus::Cancelled, None).await;
            }
            let chunk = match prefetched.take() {
                Some(chunk) => chunk,
                None => read_and_grade(from).await?,
            };
            let Some((rows, graded, totals)) = chunk else {
                return self.finish(job.id, JobStatus::Completed, None).await;
            };
            let next = from + i64::try_from(rows).unwrap_or(i64::MAX);
            let commit =
                self.store
                    .record_chunk(job.id, &self.options.instance, from, &graded, &totals);
            let committed = if needs_model {
                commit.await?
            } else {
                // Model-free graders spend nothing, so the next chunk is read and graded by a
                // task of its own (another core) while this one commits. It is kept only if this
                // commit holds, and committed only after it, so rows still commit in order; if it
                // fails, the next turn reads that chunk again in order and meets the error there.
                let ahead = tokio::spawn(read_and_grade(next));
                let committed = match commit.await {
                    Ok(committed) => committed,
                    Err(error) => {
                        ahead.abort();
                        return Err(error);
                    }
                };
                if committed {
                    prefetched = ahead.await.ok().and_then(Result::ok);
                } else {
                    ahead.abort();
                }
                committed
            };
            if !committed {
                // Taken over, or cancelled and finished meanwhile: the chunk is not ours to keep.
                return Ok(JobStatus::Running);
            }
            from = next;
            if totals.errors.contains_key("budget_exhausted") {
                return self.finish(job.id, JobStatus::BudgetExhausted, None).await;
            }
        }
    }

    /// The job's definitions, resolved against the components serving now: `Ok(Err(why))` when
    /// one is gone or cannot run, which fails the job. One that does not resolve while the
    /// built-in components are still loading is tried again once they are.
    pub(crate) async fn resolve_graders(
        &self,
        job: &GradingJob,
    ) -> Result<Result<Vec<NamedGrader>, String>, StoreError> {
        match self.try_resolve(job).await? {
            Err(_) if !crate::grading::stored::builtins_loaded(&self.registry) => {
                wait_for_builtins(&self.registry).await;
                self.try_resolve(job).await
            }
            resolved => Ok(resolved),
        }
    }

    async fn try_resolve(
        &self,
        job: &GradingJob,
    ) -> Result<Result<Vec<NamedGrader>, String>, StoreError> {
        let mut graders = Vec::with_capacity(job.graders.len());
        for name in &job.graders {
            let stored = match self.store.get_grader(&job.prompt_id, name).await {
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
        }
        Ok(Ok(graders))
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until the registry has tried every built-in component, so a definition naming one is
/// not mistaken for one naming a missing component right after startup. The registry always
/// gets there (a built-in that fails to load is recorded as failed), so the wait ends.
pub(crate) async fn wait_for_builtins(registry: &Registry) {
    while !crate::grading::stored::builtins_loaded(registry) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
