//! The background A/B evaluator: every `FLYWHEEL_AB_EVALUATE_SECS` it evaluates each running
//! test ([`PromptRegistry::evaluate_running_ab_tests`]), so a test with `autoDeploy` reaches and
//! carries out its decision even when nobody reads its results.
//!
//! Several instances may run it on one database: ending a test is conditioned on it still
//! running and the deploy of B is made in that same transaction, so one instance carries out a
//! decision and the others find the test ended.

use std::sync::Arc;
use std::time::Duration;

use super::PromptRegistry;

/// Evaluates the running tests every `every`, forever (the server aborts it on shutdown; an
/// evaluation cut short commits nothing, or its whole ending).
pub async fn run(registry: Arc<PromptRegistry>, every: Duration) {
    loop {
        // Sleep first: a test started a moment ago has nothing to decide.
        tokio::time::sleep(every).await;
        match registry.evaluate_running_ab_tests().await {
            Ok(0) => {}
            Ok(ended) => tracing::info!(ended, "A/B evaluator carried out decisions"),
            Err(error) => tracing::warn!(%error, "could not list the running A/B tests"),
        }
    }
}
