//! [`drive_completions`]: many chat calls at once through one client, timed. The model-grader
//! benchmark uses it as the host-side baseline (the client alone, with no component in the way)
//! against the fake model server; the concurrency limit of the client sets the ceiling
//! (`max_concurrency / latency` calls per second).

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::budget::RunBudget;
use super::client::LlmClient;
use super::error::LlmError;
use super::types::{ChatRequest, Usage};

/// What a [`drive_completions`] run did.
#[derive(Clone, Debug)]
pub struct ThroughputReport {
    /// Calls made.
    pub calls: usize,
    /// Calls that answered.
    pub succeeded: usize,
    /// The first error met, if any call failed.
    pub first_error: Option<LlmError>,
    /// Wall time from the first call to the last answer.
    pub elapsed: Duration,
    /// Usage summed over the answers.
    pub usage: Usage,
}

impl ThroughputReport {
    /// Answered calls per second.
    pub fn calls_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.succeeded as f64 / secs
        } else {
            0.0
        }
    }
}

/// Sends `calls` copies of `request` through `client`, all submitted at once (the client's
/// concurrency limit queues them), and reports how long they took.
pub async fn drive_completions(
    client: &LlmClient,
    request: &ChatRequest,
    calls: usize,
    budget: &RunBudget,
) -> ThroughputReport {
    let started = Instant::now();
    // Submitting all calls at once leaves the queueing to the client's semaphore, as a grading
    // run with many rows does.
    let mut results = futures::stream::iter((0..calls).map(|_| client.complete(request, budget)))
        .buffer_unordered(calls.max(1));
    let mut report = ThroughputReport {
        calls,
        succeeded: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        usage: Usage::default(),
    };
    while let Some(result) = results.next().await {
        match result {
            Ok(response) => {
                report.succeeded += 1;
                report.usage += response.usage;
            }
            Err(error) => {
                report.first_error.get_or_insert(error);
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}
