//! The run's budget: task-model calls (validation included), reflection-model calls, and the
//! tokens of each, counted apart (a reflection call is a long prompt to a larger model; a task
//! call is the prompt under test). The loop starts a round only if what is left covers the
//! round's worst case and still the final validation, so a run never spends its budget before
//! it can validate what it found.

use serde::{Deserialize, Serialize};

use super::request::OptimizationSpec;

/// What a run has spent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spent {
    /// Task-model calls made.
    pub task_calls: i64,
    /// Task-model answers taken from the cache.
    pub cached_answers: i64,
    /// Task-model tokens.
    pub task_tokens: i64,
    /// Model-grader tokens (charged to the task side's token budget).
    pub grader_tokens: i64,
    /// Reflection-model calls made.
    pub reflection_calls: i64,
    /// Reflection-model tokens.
    pub reflection_tokens: i64,
    /// Of the task-model calls, those made to validate.
    pub validation_calls: i64,
}

/// The limits of a run and what is left of them.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Task-model calls allowed.
    pub task_calls: i64,
    /// Reflection-model calls allowed.
    pub reflection_calls: i64,
    /// Task and grader tokens allowed.
    pub task_tokens: Option<i64>,
    /// Reflection tokens allowed.
    pub reflection_tokens: Option<i64>,
}

impl Budget {
    /// The limits a spec sets.
    pub fn of(spec: &OptimizationSpec) -> Budget {
        Budget {
            task_calls: spec.budget,
            reflection_calls: spec.reflection_budget,
            task_tokens: spec.token_budget,
            reflection_tokens: spec.reflection_token_budget,
        }
    }

    /// Task-model calls left.
    pub fn task_calls_left(&self, spent: &Spent) -> i64 {
        (self.task_calls - spent.task_calls).max(0)
    }

    /// Task and grader tokens left, when limited.
    pub fn task_tokens_left(&self, spent: &Spent) -> Option<u64> {
        self.task_tokens.map(|limit| {
            u64::try_from(limit - spent.task_tokens - spent.grader_tokens).unwrap_or(0)
        })
    }

    /// Reflection tokens left, when limited.
    pub fn reflection_tokens_left(&self, spent: &Spent) -> Option<u64> {
        self.reflection_tokens
            .map(|limit| u64::try_from(limit - spent.reflection_tokens).unwrap_or(0))
    }

    /// Whether another round may start: a reflection call is left (and its tokens), and the
    /// task calls left cover the round's worst case (`round_cost`: the minibatch, then the rest
    /// of the front rows if the candidate is accepted) plus `validation_reserve`.
    pub fn allows_round(&self, spent: &Spent, round_cost: i64, validation_reserve: i64) -> bool {
        spent.reflection_calls < self.reflection_calls
            && self.reflection_tokens_left(spent) != Some(0)
            && self.task_tokens_left(spent) != Some(0)
            && self.task_calls_left(spent) >= round_cost + validation_reserve
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Budget {
        Budget {
            task_calls: 400,
            reflection_calls: 10,
            task_tokens: Some(1000),
            reflection_tokens: None,
        }
    }

    #[test]
    fn a_round_starts_only_if_it_and_the_validation_fit() {
        let mut spent = Spent::default();
        assert!(budget().allows_round(&spent, 40, 80));
        spent.task_calls = 280;
        assert!(budget().allows_round(&spent, 40, 80));
        spent.task_calls = 281;
        assert!(
            !budget().allows_round(&spent, 40, 80),
            "validation reserved"
        );
        spent.task_calls = 0;
        spent.reflection_calls = 10;
        assert!(!budget().allows_round(&spent, 40, 80), "no reflection left");
        spent.reflection_calls = 0;
        spent.task_tokens = 600;
        spent.grader_tokens = 400;
        assert!(!budget().allows_round(&spent, 40, 80), "task tokens spent");
        assert_eq!(budget().task_tokens_left(&spent), Some(0));
    }
}
