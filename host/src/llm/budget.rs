//! [`RunBudget`]: the token budget of one grading run, shared by every model call of the run.
//!
//! The client checks it before each attempt and charges it with the usage each answer reports.
//! Calls already in flight when the budget runs out still finish and are charged, so a run may
//! overshoot by at most the usage of the calls it had in flight (bounded by the concurrency
//! limit); no call starts after that.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::LlmError;
use super::types::Usage;

/// A grading run's token budget. Cloning shares the same counter.
#[derive(Clone, Debug)]
pub struct RunBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: Option<u64>,
    used: AtomicU64,
}

impl RunBudget {
    /// A budget of `limit` tokens (prompt and completion tokens together).
    pub fn with_limit(limit: u64) -> Self {
        Self::new(Some(limit))
    }

    /// A budget that never runs out; usage is still counted.
    pub fn unlimited() -> Self {
        Self::new(None)
    }

    /// A budget of `limit` tokens, or an unlimited one.
    pub fn new(limit: Option<u64>) -> Self {
        Self {
            inner: Arc::new(Inner {
                limit,
                used: AtomicU64::new(0),
            }),
        }
    }

    /// Fails with [`LlmError::BudgetExhausted`] once the run has used its whole budget.
    pub fn check(&self) -> Result<(), LlmError> {
        if self.is_exhausted() {
            Err(LlmError::BudgetExhausted)
        } else {
            Ok(())
        }
    }

    /// Adds a call's usage to the run's total.
    pub fn charge(&self, usage: Usage) {
        self.inner.used.fetch_add(usage.total(), Ordering::SeqCst);
    }

    /// Tokens used so far by the run.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::SeqCst)
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        self.inner.limit
    }

    /// Tokens left, if limited (zero once overshot).
    pub fn remaining(&self) -> Option<u64> {
        self.inner
            .limit
            .map(|limit| limit.saturating_sub(self.used()))
    }

    /// Whether no further call may start; the grading run stops scheduling rows when it is.
    pub fn is_exhausted(&self) -> bool {
        self.inner.limit.is_some_and(|limit| self.used() >= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_runs_out_once_its_limit_is_used() {
        let budget = RunBudget::with_limit(100);
        let shared = budget.clone();
        assert!(budget.check().is_ok());
        shared.charge(Usage::new(60, 30));
        assert_eq!(budget.used(), 90);
        assert_eq!(budget.remaining(), Some(10));
        assert!(budget.check().is_ok());
        shared.charge(Usage::new(5, 10));
        assert_eq!(budget.check(), Err(LlmError::BudgetExhausted));
        assert_eq!(budget.remaining(), Some(0));
    }

    #[test]
    fn an_unlimited_budget_counts_but_never_runs_out() {
        let budget = RunBudget::unlimited();
        budget.charge(Usage::new(u32::MAX, u32::MAX));
        assert_eq!(budget.used(), 2 * u64::from(u32::MAX));
        assert!(budget.check().is_ok());
        assert_eq!(budget.remaining(), None);
    }

    #[test]
    fn a_zero_budget_allows_no_call() {
        assert_eq!(
            RunBudget::with_limit(0).check(),
            Err(LlmError::BudgetExhausted)
        );
    }
}
