//! Builds the application (store, model client, grader runtime, state, router) and serves it
//! with graceful shutdown.
//!
//! [`build_app`] is the factory tests use to run the real app in-process; [`start`] binds and
//! serves in the background; [`serve`] is what `flywheel serve` runs until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::auth::Authenticator;
use crate::api::metrics::Metrics;
use crate::api::{self, AppState};
use crate::config::{DatabaseKind, Settings};
use crate::llm::LlmClient;
use crate::prompts::PromptRegistry;
use crate::store::{self, Store};

/// Opens the configured database (which applies migrations) and seeds it (prompts, then the
/// grader definitions that refer to them). Creates the data directory
/// first when the database is the default SQLite file inside it.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if settings.database_url.kind() == DatabaseKind::Sqlite {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    }
    // `open_store` applies the migrations.
    let store = store::open_store(settings.database_url.expose())
        .await
        .with_context(|| format!("opening database {}", settings.database_url))?;
    store
        .seed(&crate::prompts::seeds::default_seeds())
        .await
        .context("seeding the default prompts")?;
    crate::grading::stored::seed(
        store.as_ref(),
        crate::grading::seeds::all_seed_definitions(),
    )
    .await
    .context("seeding the default grader definitions")?;
    Ok(store)
}

/// Builds the state and router on an already opened store.
pub fn build_app_with_store(
    settings: Settings,
    store: Arc<dyn Store>,
) -> anyhow::Result<(Router, AppState)> {
    let llm = model_client(&settings)?;
    let graders = start_graders(&settings, llm.clone())?;
    let registry = Arc::new(
        PromptRegistry::new(store.clone(), settings.resolve_cache_ttl)
            .with_ab_tests(settings.enable_prompt_optimization),
    );
    let mut metrics = Metrics::new();
    metrics.watch_resolve_cache(registry.clone());
    let state = AppState {
        graders,
        store,
        registry,
        llm,
        metrics: Arc::new(metrics),
        auth: Arc::new(Authenticator::new(&settings.tokens)),
        settings: Arc::new(settings),
    };
    let router = api::router(state.clone()).map_err(anyhow::Error::msg)?;
    Ok((router, state))
}

/// Starts the grader registry in the background: the built-ins embedded in the binary and every
/// `*.wasm` of `FLYWHEEL_GRADERS_DIR` (created when missing), watched for changes; compiled
/// components are cached in `<cache-dir>/components` (`FLYWHEEL_CACHE_DIR`, default `<data-dir>/cache`). Must run inside a tokio runtime.
pub fn start_graders(
    settings: &Settings,
    llm: Option<LlmClient>,
) -> anyhow::Result<Arc<crate::graders::Registry>> {
    let runtime = grader_runtime(settings, llm)?;
    let options = crate::graders::RegistryOptions {
        graders_dir: Some(settings.graders_dir.clone()),
        cache_dir: Some(settings.cache_dir.join("components")),
        builtins: crate::graders::builtin::builtins(),
        watch: true,
    };
    Ok(crate::graders::Registry::spawn(runtime, options))
}

/// The model client for these settings: one per process (or per app a test builds), shared by
/// the grader runtime's `llm` import and every later caller of a model, so the concurrency limit
/// and the connection pool are the process's, not each caller's. `None` when no endpoint is
/// configured: model graders then answer "not configured".
pub fn model_client(settings: &Settings) -> anyhow::Result<Option<LlmClient>> {
    let configured = settings.llm.default_endpoint.is_some() || !settings.llm.endpoints.is_empty();
    if !configured {
        return Ok(None);
    }
    let client = LlmClient::new(settings.llm.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("building the model client")?;
    Ok(Some(client))
}

/// The grader runtime for these settings: the process-wide one when the grader limits are the
/// defaults and there is no model client or run budget (one engine per process, shared by every
/// app a test process builds); otherwise one of its own, with the configured limits
/// (`FLYWHEEL_GRADER_TIMEOUT_MS`, `…_MEMORY_MB`, `…_MAX_CONCURRENCY`: memory and concurrency size
/// the instance pool) and an `llm` import calling `llm`.
pub fn grader_runtime(
    settings: &Settings,
    llm: Option<LlmClient>,
) -> anyhow::Result<Arc<crate::graders::GraderRuntime>> {
    if settings.grader_limits == crate::config::GraderLimits::default()
        && llm.is_none()
        && settings.llm_run_token_budget.is_none()
    {
        return crate::graders::GraderRuntime::process_wide()
            .context("building the grader runtime");
    }
    crate::graders::GraderRuntime::new(crate::graders::RuntimeOptions {
        llm,
        run_token_budget: settings.llm_run_token_budget,
        ..settings.grader_limits.runtime_options()
    })
    .context("building the grader runtime")
}

/// Opens the database (migrations, seeds) and builds the state and router.
pub async fn build_app(settings: Settings) -> anyhow::Result<(Router, AppState)> {
    let store = open_database(&settings).await?;
    build_app_with_store(settings, store)
}

/// A server running in the background (see [`start`]).
pub struct RunningServer {
    /// The address it listens on (the real port when the bind port was 0).
    pub addr: SocketAddr,
    /// Its state (registry, settings).
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    /// The background graders; stopped when the server is (dropping aborts them).
    _workers: Workers,
}

/// Background tasks that end with the server: the grading-job worker, the optimizer, the
/// automatic grader and the A/B evaluator. An interrupted chunk is simply not committed, so stopping them at any
/// point loses nothing.
struct Workers(Vec<JoinHandle<()>>);

impl Workers {
    /// Starts the workers of prompt optimization, when it is enabled.
    fn start(state: &AppState) -> Workers {
        if !state.settings.enable_prompt_optimization {
            return Workers(Vec::new());
        }
        let jobs = crate::grading::jobs::JobWorker::new(
            state.store.clone(),
            state.graders.clone(),
            crate::grading::jobs::WorkerOptions::for_server(
                state.settings.job_lease,
                state.settings.llm_run_token_budget,
            ),
        );
        let auto =
            crate::grading::auto::AutoGrader::new(state.store.clone(), state.graders.clone());
        let evaluator = crate::prompts::evaluator::run(
            state.registry.clone(),
            state.settings.ab_evaluate_interval,
        );
        let optimizer = crate::optimizer::worker::OptimizerWorker::new(
            state.store.clone(),
            state.graders.clone(),
            crate::optimizer::worker::OptimizerOptions::for_server(state.settings.job_lease),
        )
        .with_ab_tests(state.registry.clone(), state.settings.ab_test_traffic_split);
        Workers(vec![
            tokio::spawn(jobs.run()),
            tokio::spawn(optimizer.run()),
            tokio::spawn(auto.run()),
            tokio::spawn(evaluator),
        ])
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl RunningServer {
    /// Waits until the built-in graders are loaded (what `GET /readyz` reports besides the
    /// database), or `limit` has passed; says which. A first start in a fresh data directory
    /// compiles them for seconds of every core: benchmarks wait here before they measure.
    pub async fn wait_for_builtins(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.state.graders.builtins_loaded() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        true
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            // The receiver is gone only if the server already ended, which the join reports.
            let _ = tx.send(());
        }
        self.task
            .await
            .context("server task failed")?
            .context("server error")
    }

    /// Waits until the server ends by itself (it ends when its shutdown signal fires).
    async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("server task failed")?
            .context("server error")
    }
}

/// Checks the settings, builds the app, binds `settings.bind` and serves in the background until
/// [`RunningServer::shutdown`] (or `until` completes).
pub async fn start_with(
    settings: Settings,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<RunningServer> {
    settings.check_bind_is_safe()?;
    let bind = settings.bind;
    let (router, state) = build_app(settings).await?;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let workers = Workers::start(&state);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = rx => {}
                    () = until => {}
                }
            })
            .await
    });
    Ok(RunningServer {
        addr,
        state,
        shutdown: Some(tx),
        task,
        _workers: workers,
    })
}

/// [`start_with`] that runs until [`RunningServer::shutdown`].
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    start_with(settings, std::future::pending()).await
}

/// Serves until SIGINT or SIGTERM, then finishes requests in flight and returns.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let open = settings.tokens.is_empty();
    let database = settings.database_url.to_string();
    // The handlers are installed before the server starts (not on the first poll of the
    // shutdown future), so a signal that arrives right after "listening" is never missed.
    let signals = ShutdownSignals::install()?;
    let server = start_with(settings, signals.wait()).await?;
    tracing::info!(addr = %server.addr, %database, "listening");
    if open {
        tracing::warn!(
            "no API token configured: anonymous callers may read, nothing may write or resolve; \
             set FLYWHEEL_TOKENS or --tokens-file"
        );
    }
    server.wait().await?;
    tracing::info!("shut down");
    Ok(())
}

/// SIGINT and SIGTERM listeners, registered with the OS when created.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
        })
    }

    /// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = self.terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}
