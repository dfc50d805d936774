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
    /// Whether this error ends the grading run rather than just the row: once the budget is
    /// spent or the endpoint is missing, every later row would fail the same way.
    pub fn ends_run(&self) -> bool {
        matches!(self, LlmError::BudgetExhausted | LlmError::NotConfigured(_))
    }

    /// A stable snake_case name of the variant, for counting errors by kind in a run summary.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::NotConfigured(_) => "not_configured",
            LlmError::BudgetExhausted => "budget_exhausted",
            LlmError::Timeout(_) => "timeout",
            LlmError::RateLimited(_) => "rate_limited",
            LlmError::Failed(_) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_budget_and_configuration_errors_end_the_run() {
        let cases = [
            (
                LlmError::NotConfigured("x".to_owned()),
                true,
                "not_configured",
            ),
            (LlmError::BudgetExhausted, true, "budget_exhausted"),
            (LlmError::Timeout(Duration::from_secs(1)), false, "timeout"),
            (LlmError::RateLimited("x".to_owned()), false, "rate_limited"),
            (LlmError::Failed("x".to_owned()), false, "failed"),
        ];
        for (error, ends, kind) in cases {
            assert_eq!(error.ends_run(), ends, "{error}");
            assert_eq!(error.kind(), kind);
        }
    }
}
