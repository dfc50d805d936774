//! [`LlmError`]: why a model call failed. The variants mirror the WIT `llm-error` variants one to
//! one. Every message that carries text from an endpoint has been through
//! [`super::secret::redact`], so no variant can hold the API key.

use std::time::Duration;

use thiserror::Error;

/// Why a model call failed (WIT `llm-error`).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LlmError {
    /// No endpoint is configured, or not the named one (WIT `not-configured`).
    #[error("model endpoint not configured: {0}")]
    NotConfigured(String),
    /// The grading run's token budget is spent (WIT `budget-exhausted`).
    #[error("the grading run's token budget is spent")]
    BudgetExhausted,
    /// The call did not finish within its time limit, retries included (WIT `timeout`).
    #[error("model call timed out after {0:?}")]
    Timeout(Duration),
    /// The endpoint still answered 429 after the retries (WIT `rate-limited`).
    #[error("model endpoint rate limit: {0}")]
    RateLimited(String),
    /// Any other failure, with the endpoint's message (WIT `failed`).
    #[error("model call failed: {0}")]
    Failed(String),
}

impl LlmError {
    /// Whether this error ends the grading run rather than just the row.
    pub fn ends_run(&self) -> bool {
        matches!(self, LlmError::BudgetExhausted | LlmError::NotConfigured(_))
    }
}
