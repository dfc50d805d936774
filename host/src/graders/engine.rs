//! [`GraderRuntime`]: the one wasmtime `Engine` of the process, its epoch ticker, the one
//! `Linker`, and the call paths (a fresh `Store` per row or per batch).
//!
//! Guest code never runs on the caller's threads: every call is moved (an owned `'static` store,
//! pre-instance and inputs) onto the guest threads of [`crate::graders::guest_threads`], and the
//! caller only awaits its answer, so graders at full load cannot starve HTTP handling.
//!
//! Engine choices (reference/wasmtime-hosting.md §0): Cranelift (Winch had sandbox escapes and
//! no epochs); epoch interruption with a 10 ms ticker, cheaper than fuel; the pooling allocator
//! with batched decommits, sized to `max_concurrency` and guarded by a semaphore so the pool is
//! never exhausted; copy-on-write memory images; no component-model concurrency (3x slower
//! calls).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimitsBuilder,
    Strategy, UpdateDeadline,
};
use wasmtime_wasi::WasiCtxBuilder;

use crate::graders::bindings::{ModelGrader, ModelGraderPre, types};
use crate::graders::guest_threads;
use crate::graders::host::HostState;
use crate::graders::limits::Limits;
use crate::graders::llm::{LlmRun, RowLlm};
use crate::graders::log_pipe::LogPipe;
use crate::graders::outcome::{Outcome, TrapKind, classify};
use crate::llm::LlmClient;

/// Rows of a failed batch graded one by one that, all trapping the same way, stop the rest:
/// enough that a row-specific trap is unlikely to be taken for the grader's own failure.
pub const SAME_TRAP_ROWS_TO_STOP: usize = 3;

/// The outcome every row left in a failed batch gets when the rows graded one by one so far
/// (`earlier`, then `last`) all trapped with the same kind; `None` otherwise.
fn same_trap(outcomes: &[Option<Outcome>], earlier: &[usize], last: &Outcome) -> Option<Outcome> {
    let Outcome::Trap {
        kind,
        message,
        log_tail,
    } = last
    else {
        return None;
    };
    let all_same = earlier
        .iter()
        .all(|&i| matches!(&outcomes[i], Some(Outcome::Trap { kind: k, .. }) if k == kind));
    all_same.then(|| Outcome::Trap {
        kind: *kind,
        message: format!(
            "not run: the batch and its first {SAME_TRAP_ROWS_TO_STOP} rows graded one by one \
             all trapped ({}), so the grader fails whatever the row; the last one: {message}",
            kind.name()
        ),
        log_tail: log_tail.clone(),
    })
}

/// Bytes a `grade-batch` result of `rows` rows may copy to the host: what one row's call may
/// copy, for each row, so a batch whose rows would each fit a call of their own is never
/// refused as a whole (and graded a second time row by row); but never more than the guest's
/// memory limit, where the result lives before it is copied, so the host holds no more per
/// call than the guest could. Each row's text is then cut to its cap, marked, as for one call.
fn batch_hostcall_fuel(limits: &Limits, rows: usize) -> usize {
    limits
        .hostcall_fuel
        .saturating_mul(rows.max(1))
        .min(limits.memory_bytes.max(limits.hostcall_fuel))
}

/// How often the epoch advances; the wall-time deadline is checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Calls (rows or batches) running at once when not configured: enough to keep 2–8 cores busy
/// while keeping the pool's reserved address space small.
pub const DEFAULT_MAX_CONCURRENCY: u32 = 16;
/// The wasm stack a guest may use (wasmtime's default, stated so it is a decision).
pub const MAX_WASM_STACK: usize = 512 << 10;
/// Core instances a component may contain (a Rust component has 3–5; the componentize-py
/// CPython of the `python` grader has 38: libc, libpython and each dynamically linked
/// extension module is one).
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 48;
/// Memories and tables per component.
const MAX_MEMORIES_PER_COMPONENT: u32 = 2;
const MAX_TABLES_PER_COMPONENT: u32 = 8;

/// How the runtime is built.
#[derive(Clone)]
pub struct RuntimeOptions {
    /// Calls at once; sizes the instance pool.
    pub max_concurrency: u32,
    /// Limits of every call.
    pub limits: Limits,
    /// The model client behind the `llm` import; `None` answers every call `not-configured`.
    pub llm: Option<LlmClient>,
    /// Tokens one grading run may spend on model calls; `None` for no limit.
    pub run_token_budget: Option<u64>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            limits: Limits::default(),
            llm: None,
            run_token_budget: None,
        }
    }
}

/// Why the runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration or the linker.
    #[error("cannot build the wasmtime engine: {0}")]
    Engine(String),
}

/// The engine, linker and limits shared by every grader call of the process.
pub struct GraderRuntime {
    engine: Engine,
    /// Components compiled by this process, by sha256: a second registry (tests, a restart of
    /// the registry) reuses them without touching the disk cache or Cranelift.
    compiled: std::sync::Mutex<std::collections::HashMap<String, wasmtime::component::Component>>,
    linker: Linker<HostState>,
    permits: Arc<Semaphore>,
    limits: Limits,
    max_concurrency: usize,
    llm: Option<LlmClient>,
    run_token_budget: Option<u64>,
}

impl GraderRuntime {
    /// Builds the engine (and starts its epoch ticker) and the linker.
    pub fn new(options: RuntimeOptions) -> Result<Arc<Self>, RuntimeError> {
        let engine = build_engine(&options).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let linker = build_linker(&engine).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        start_epoch_ticker(&engine);
        Ok(Arc::new(GraderRuntime {
            engine,
            compiled: std::sync::Mutex::new(std::collections::HashMap::new()),
            linker,
            permits: Arc::new(Semaphore::new(options.max_concurrency.max(1) as usize)),
            limits: options.limits,
            max_concurrency: options.max_concurrency.max(1) as usize,
            llm: options.llm,
            run_token_budget: options.run_token_budget,
        }))
    }

    /// The process-wide engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The runtime of the process, built with default options on first use: one engine per
    /// process, shared by every registry and app built in it.
    pub fn process_wide() -> Result<Arc<GraderRuntime>, RuntimeError> {
        static RUNTIME: std::sync::OnceLock<Arc<GraderRuntime>> = std::sync::OnceLock::new();
        if let Some(runtime) = RUNTIME.get() {
            return Ok(runtime.clone());
        }
        let runtime = GraderRuntime::new(RuntimeOptions::default())?;
        Ok(RUNTIME.get_or_init(|| runtime).clone())
    }

    pub(crate) fn compiled(&self, sha256: &str) -> Option<wasmtime::component::Component> {
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sha256)
            .cloned()
    }

    pub(crate) fn remember_compiled(
        &self,
        sha256: &str,
        component: &wasmtime::component::Component,
    ) {
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sha256.to_string(), component.clone());
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// The limits applied to every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Calls that may run at once.
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The model client behind the `llm` import, when one is configured.
    pub fn llm_client(&self) -> Option<&LlmClient> {
        self.llm.as_ref()
    }

    /// A new grading run: its own token budget, of the configured size.
    pub fn new_run(&self) -> LlmRun {
        LlmRun::new(self.run_token_budget)
    }

    /// A fresh store with every limit set, and the log pipe its stdout/stderr write to.
    fn new_store(&self, llm: RowLlm) -> (Store<HostState>, LogPipe) {
        let log = LogPipe::new(self.limits.log_bytes);
        // Grants nothing: no preopens, no env, no args, no network, stdin empty; stdout and
        // stderr go to one bounded pipe.
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .max_random_size(self.limits.max_random_bytes)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(MAX_CORE_INSTANCES_PER_COMPONENT as usize)
            .memories(MAX_MEMORIES_PER_COMPONENT as usize)
            .tables(MAX_TABLES_PER_COMPONENT as usize)
            .trap_on_grow_failure(true)
            .build();
        let mut table = wasmtime::component::ResourceTable::new();
        table.set_max_capacity(self.limits.max_handles);
        let state = HostState {
            wasi,
            table,
            limits,
            llm,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_hostcall_fuel(self.limits.hostcall_fuel);
        store.set_max_component_handles(self.limits.max_handles);
        let deadline = Instant::now() + self.limits.timeout;
        store.set_epoch_deadline(1);
        // Yield to the executor every tick (so the outer timeout and other tasks run) and
        // interrupt once the wall-time budget is spent.
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        (store, log)
    }

    async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().acquire_owned().await.ok()
    }

    /// Total input bytes of one row, checked against the input cap.
    fn check_input(&self, config: &str, sample: &str, item: &str) -> Result<(), Outcome> {
        let size = config.len() + sample.len() + item.len();
        if size > self.limits.max_input_bytes {
            return Err(Outcome::refused(format!(
                "the row's config, sample and item are {size} bytes; the limit is {} bytes",
                self.limits.max_input_bytes
            )));
        }
        Ok(())
    }

    /// Grades one row in a fresh store, in a run of its own. Never panics and never re-enters a
    /// trapped instance: the store is dropped after the call whatever happened.
    pub async fn grade(
        &self,
        pre: &ModelGraderPre<HostState>,
        config: &str,
        sample: &str,
        item: &str,
    ) -> Outcome {
        self.grade_with(pre, &self.new_run(), None, config, sample, item)
            .await
    }

    /// Grades one row in a fresh store whose `llm` import spends `run`'s budget through a session
    /// of its own (on `endpoint` unless a request names one). The row's token usage is recorded
    /// in its grade; a row whose model call found the budget spent reports `budget_exhausted`.
    pub async fn grade_with(
        &self,
        pre: &ModelGraderPre<HostState>,
        run: &LlmRun,
        endpoint: Option<String>,
        config: &str,
        sample: &str,
        item: &str,
    ) -> Outcome {
        if let Err(refused) = self.check_input(config, sample, item) {
            return refused;
        }
        let Some(permit) = self.permit().await else {
            return Outcome::refused("the grader runtime is shutting down");
        };
        let (store, log) = self.new_store(RowLlm::new(self.llm.as_ref(), run, endpoint));
        let (pre, timeout) = (pre.clone(), self.limits.timeout);
        let (config, sample, item) = (config.to_owned(), sample.to_owned(), item.to_owned());
        let mut held = Held {
            store,
            _permit: permit,
        };
        let ran = guest_threads::run(async move {
            let store = &mut held.store;
            let call = async {
                let grader = pre.instantiate_async(&mut *store).await?;
                grader
                    .flywheel_grader_grading()
                    .call_grade(&mut *store, &config, &sample, &item)
                    .await
            };
            let result = tokio::time::timeout(timeout, call).await;
            let usage = store.data().llm.usage().map(Into::into);
            let budget_hit = store.data().llm.budget_hit();
            (result, usage, budget_hit)
        })
        .await;
        let Some((result, usage, budget_hit)) = ran else {
            return lost(&log);
        };
        let outcome = match result {
            Err(_) => Outcome::trap(
                TrapKind::Timeout,
                "the call ran past its wall-time limit",
                log.tail(),
            ),
            Ok(Err(error)) => trap_outcome(&error, &log),
            Ok(Ok(returned)) => Outcome::from_guest(returned, &self.limits),
        };
        match outcome {
            // The grader saw `budget-exhausted` and gave up: the row was not judged.
            Outcome::GraderError { .. } if budget_hit => Outcome::budget_exhausted(),
            outcome => outcome.with_usage(usage),
        }
    }

    /// Grades several rows with one config in one fresh store (`grade-batch`). Rows over the
    /// input cap are refused without being sent. If the batch traps, every row is graded again
    /// on its own, so one hostile row does not take the others down with it.
    pub async fn grade_batch(
        &self,
        pre: &ModelGraderPre<HostState>,
        config: &str,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(rows.len());
        let mut sent = Vec::new();
        let mut sent_index = Vec::new();
        for (i, (sample, item)) in rows.iter().enumerate() {
            match self.check_input(config, sample, item) {
                Err(refused) => outcomes.push(Some(refused)),
                Ok(()) => {
                    outcomes.push(None);
                    sent.push(types::Row {
                        sample: sample.clone(),
                        item: item.clone(),
                    });
                    sent_index.push(i);
                }
            }
        }
        if sent.is_empty() {
            return outcomes.into_iter().flatten().collect();
        }
        let batch = {
            let Some(permit) = self.permit().await else {
                return rows
                    .iter()
                    .map(|_| Outcome::refused("the grader runtime is shutting down"))
                    .collect();
            };
            // Model graders are graded row by row (see `LoadedGrader::grade_batch_in`); a batch
            // that does call the model runs in a run of its own.
            let llm = RowLlm::new(self.llm.as_ref(), &self.new_run(), None);
            let (mut store, _log) = self.new_store(llm);
            store.set_hostcall_fuel(batch_hostcall_fuel(&self.limits, sent.len()));
            let (pre, timeout, config) = (pre.clone(), self.limits.timeout, config.to_owned());
            let mut held = Held {
                store,
                _permit: permit,
            };
            guest_threads::run(async move {
                let store = &mut held.store;
                let call = async {
                    let grader = pre.instantiate_async(&mut *store).await?;
                    grader
                        .flywheel_grader_grading()
                        .call_grade_batch(&mut *store, &config, &sent)
                        .await
                };
                tokio::time::timeout(timeout, call).await
            })
            .await
        };
        match batch {
            Some(Ok(Ok(results))) if results.len() == sent_index.len() => {
                for (index, returned) in sent_index.iter().zip(results) {
                    outcomes[*index] = Some(Outcome::from_guest(returned, &self.limits));
                }
            }
            Some(Ok(Ok(results))) => {
                let message = format!(
                    "grade-batch returned {} results for {} rows",
                    results.len(),
                    sent_index.len()
                );
                for index in &sent_index {
                    outcomes[*index] = Some(Outcome::GraderError {
                        kind: crate::graders::outcome::GraderErrorKind::Failed,
                        message: message.clone(),
                    });
                }
            }
            _ => {
                // The batch failed as a whole: grade its rows one by one, so only the rows that
                // trap fail. When the first rows all trap the same way, the grader fails before
                // any row's own work (a source that loops at module level, say): the rest are
                // not run, each reports that, instead of costing a timeout per row.
                let mut stopped: Option<Outcome> = None;
                for (graded, index) in sent_index.iter().enumerate() {
                    if let Some(stop) = &stopped {
                        outcomes[*index] = Some(stop.clone());
                        continue;
                    }
                    let (sample, item) = &rows[*index];
                    let outcome = self.grade(pre, config, sample, item).await;
                    if graded + 1 == SAME_TRAP_ROWS_TO_STOP && graded + 1 < sent_index.len() {
                        stopped = same_trap(&outcomes, &sent_index[..graded], &outcome);
                    }
                    outcomes[*index] = Some(outcome);
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::refused("row was not graded")))
            .collect()
    }

    /// Runs the component's `validate-config`: `Ok(Ok(()))` when valid, `Ok(Err(message))` when
    /// the grader refuses it, `Err(outcome)` when the call itself failed (trap, refusal).
    pub async fn validate_config(
        &self,
        pre: &ModelGraderPre<HostState>,
        config: &str,
    ) -> Result<Result<(), String>, Outcome> {
        self.check_input(config, "", "")?;
        let Some(permit) = self.permit().await else {
            return Err(Outcome::refused("the grader runtime is shutting down"));
        };
        let (store, log) = self.new_store(RowLlm::new(None, &LlmRun::unlimited(), None));
        let (pre, timeout, config) = (pre.clone(), self.limits.timeout, config.to_owned());
        let mut held = Held {
            store,
            _permit: permit,
        };
        let ran = guest_threads::run(async move {
            let store = &mut held.store;
            let call = async {
                let grader = pre.instantiate_async(&mut *store).await?;
                grader
                    .flywheel_grader_grading()
                    .call_validate_config(&mut *store, &config)
                    .await
            };
            tokio::time::timeout(timeout, call).await
        })
        .await;
        let Some(result) = ran else {
            return Err(lost(&log));
        };
        match result {
            Err(_) => Err(Outcome::trap(
                TrapKind::Timeout,
                "validate-config ran past its wall-time limit",
                log.tail(),
            )),
            Ok(Err(error)) => Err(trap_outcome(&error, &log)),
            Ok(Ok(answer)) => Ok(answer
                .map_err(|m| crate::graders::outcome::cut(m, self.limits.max_reasoning_bytes))),
        }
    }

    /// Calls `info()` (once, at load).
    pub(crate) async fn info(
        &self,
        pre: &ModelGraderPre<HostState>,
    ) -> Result<types::GraderInfo, Outcome> {
        let Some(permit) = self.permit().await else {
            return Err(Outcome::refused("the grader runtime is shutting down"));
        };
        let (store, log) = self.new_store(RowLlm::new(None, &LlmRun::unlimited(), None));
        let (pre, timeout) = (pre.clone(), self.limits.timeout);
        let mut held = Held {
            store,
            _permit: permit,
        };
        let ran = guest_threads::run(async move {
            let store = &mut held.store;
            let call = async {
                let grader: ModelGrader = pre.instantiate_async(&mut *store).await?;
                grader
                    .flywheel_grader_grading()
                    .call_info(&mut *store)
                    .await
            };
            tokio::time::timeout(timeout, call).await
        })
        .await;
        let Some(result) = ran else {
            return Err(lost(&log));
        };
        match result {
            Err(_) => Err(Outcome::trap(
                TrapKind::Timeout,
                "info() ran past its wall-time limit",
                log.tail(),
            )),
            Ok(Err(error)) => Err(trap_outcome(&error, &log)),
            Ok(Ok(info)) => Ok(types::GraderInfo {
                sdk_version: crate::graders::outcome::cut(
                    info.sdk_version,
                    self.limits.max_label_bytes,
                ),
                description: crate::graders::outcome::cut(
                    info.description,
                    self.limits.max_reasoning_bytes,
                ),
            }),
        }
    }
}

/// A call's store and the concurrency permit it was made under, moved together onto the guest
/// threads. Fields drop in declaration order, so the store, and with it the instance's slot in
/// the pooling allocator (sized to the permits), is freed before the permit: a call that takes
/// the permit always finds a free slot. (A permit held as a local of the guest task was released
/// when the task's body returned, before the task dropped the captured store: a call that got
/// the permit in between failed with "maximum concurrent limit … reached".)
struct Held {
    store: Store<HostState>,
    _permit: OwnedSemaphorePermit,
}

/// The outcome of a call whose guest task ended without an answer (it panicked, or the guest
/// threads are shutting down).
fn lost(log: &LogPipe) -> Outcome {
    Outcome::trap(
        TrapKind::Other,
        "the grader call was lost: its guest task ended without an answer",
        log.tail(),
    )
}

fn trap_outcome(error: &wasmtime::Error, log: &LogPipe) -> Outcome {
    let tail = log.tail();
    let kind = classify(error, &tail);
    let message = match error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        Some(exit) => format!("the grader exited with code {}", exit.0),
        None => format!("{error:#}"),
    };
    Outcome::trap(kind, message, tail)
}

fn build_engine(options: &RuntimeOptions) -> wasmtime::Result<Engine> {
    let concurrency = options.max_concurrency.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.decommit_batch_size(64)
        .total_component_instances(concurrency)
        .total_core_instances(concurrency * MAX_CORE_INSTANCES_PER_COMPONENT)
        .total_memories(concurrency * MAX_MEMORIES_PER_COMPONENT)
        .total_tables(concurrency * MAX_TABLES_PER_COMPONENT)
        .total_stacks(concurrency)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(options.limits.memory_bytes);
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .concurrency_support(false)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Links only what a Rust `std` guest needs: WASI io, clocks, random (secure, insecure and the
/// insecure seed), and the cli environment,
/// exit, stdio and terminal interfaces (all harmless: the context grants no env, no args, empty
/// stdin); plus the contract's `types` and `llm`. No filesystem, no sockets: a component
/// importing them fails to link (and is refused earlier, by name, in `component`).
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::p2::bindings::cli;
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut linker)?;
    let l = &mut linker;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, <HostState as WasiCliView>::cli)?;
    // std's `HashMap` seeds itself through `insecure-seed`; harmless (the RNG is per store).
    use wasmtime_wasi::p2::bindings::random;
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
    random::insecure::add_to_linker::<HostState, WasiRandom>(
        l,
        <HostState as WasiRandomView>::random,
    )?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(
        l,
        <HostState as WasiRandomView>::random,
    )?;
    ModelGrader::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a thread of its own, which ends once the
/// engine is gone (it holds only a weak reference).
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("grader-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(error) = spawned {
        // Without the ticker deadlines never fire; the outer tokio timeout still bounds calls.
        tracing::error!(%error, "cannot start the grader epoch ticker thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::outcome::GradeResult;

    fn trap(kind: TrapKind) -> Outcome {
        Outcome::trap(kind, "stopped", String::new())
    }

    fn graded() -> Outcome {
        Outcome::Graded {
            grade: GradeResult {
                score: 1.0,
                passed: None,
                label: None,
                reasoning: None,
                metrics: Vec::new(),
                usage: None,
            },
        }
    }

    #[test]
    fn only_the_same_trap_on_every_row_so_far_stops_a_failed_batch() {
        let timeouts = vec![Some(trap(TrapKind::Timeout)), Some(trap(TrapKind::Timeout))];
        let stop = same_trap(&timeouts, &[0, 1], &trap(TrapKind::Timeout)).expect("stops");
        assert_eq!(stop.kind_name(), "timeout");
        let Outcome::Trap { message, .. } = &stop else {
            panic!("{stop:?}")
        };
        assert!(message.starts_with("not run:"), "{message}");

        // A row graded, another trap kind, or a last row that did not trap: every row runs.
        let with_grade = vec![Some(trap(TrapKind::Timeout)), Some(graded())];
        assert_eq!(
            same_trap(&with_grade, &[0, 1], &trap(TrapKind::Timeout)),
            None
        );
        let with_panic = vec![Some(trap(TrapKind::Panic)), Some(trap(TrapKind::Timeout))];
        assert_eq!(
            same_trap(&with_panic, &[0, 1], &trap(TrapKind::Timeout)),
            None
        );
        assert_eq!(same_trap(&timeouts, &[0, 1], &graded()), None);
    }
}
