//! The threads guest code runs on: a tokio runtime of its own, one worker per core, apart from
//! the runtime that serves HTTP.
//!
//! Why: a guest runs in slices of one epoch tick (10 ms) between yields. On the HTTP runtime's
//! workers, sixteen calls at once held every worker most of the time, and requests waited
//! behind them (issue 9, item 6: `/healthz` went from 2.8 ms to 42 ms at p50 under forty
//! validations). Here the HTTP workers only await a join handle; the operating system shares
//! the cores between both sets of threads, so a request is served as soon as it arrives.
//! On Linux the guest threads also run at a lower scheduling priority (nice
//! [`GUEST_NICENESS`]): when graders keep every core busy, a request that arrives still gets a
//! core at once instead of a fair share after the guests' slices.
//!
//! Each call is moved here whole (store, pre-instance, inputs and the concurrency permit are
//! owned, `'static`), so a caller that goes away aborts the call at the guest's next yield and
//! the permit is released only once the store is dropped (the instance pool is sized to the
//! permits).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How much lower than the process the guest threads are scheduled (Linux `nice` is per
/// thread); 10 gives a request thread about ten times a guest thread's share of a busy core.
pub const GUEST_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`GUEST_NICENESS`]; a failure only
/// costs the priority, so it is logged and the thread runs on.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `getpriority`/`setpriority` with `PRIO_PROCESS` and 0 act on the calling
        // thread on Linux and touch no memory of ours.
        let result = unsafe {
            let current = libc::getpriority(libc::PRIO_PROCESS, 0);
            libc::setpriority(libc::PRIO_PROCESS, 0, current + GUEST_NICENESS)
        };
        if result != 0 {
            let error = std::io::Error::last_os_error();
            tracing::warn!(%error, "cannot lower the priority of a grader guest thread");
        }
    }
}

/// The guest runtime of the process, built on first use; `None` when it cannot be built (then
/// calls run on the caller's runtime, as a last resort).
fn runtime() -> Option<&'static Runtime> {
    static RUNTIME: OnceLock<Option<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
            let built = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("grader-guest")
                .on_thread_start(lower_priority)
                .enable_all()
                .build();
            match built {
                Ok(runtime) => Some(runtime),
                Err(error) => {
                    tracing::error!(%error, "cannot start the grader guest threads; graders run on the request threads");
                    None
                }
            }
        })
        .as_ref()
}

/// Aborts the task when the caller stops waiting for it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `call` on the guest threads and waits for its answer; `None` when the task ended
/// without one (it panicked).
pub async fn run<F>(call: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Some(runtime) = runtime() else {
        return Some(call.await);
    };
    let mut task = AbortOnDrop(runtime.spawn(call));
    (&mut task.0).await.ok()
}
