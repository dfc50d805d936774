//! What grading one row gives. A trap (the sandbox stopped the guest) is kept apart from an
//! error the grader returned, and both apart from a refusal by the host before the guest ran.

use serde::Serialize;

use crate::graders::bindings::types;
use crate::graders::limits::Limits;

/// The result of grading one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The grader returned a grade.
    Graded {
        /// The grade.
        grade: GradeResult,
    },
    /// The grader ran and returned an error.
    GraderError {
        /// Which kind of error.
        kind: GraderErrorKind,
        /// The grader's message.
        message: String,
    },
    /// The sandbox stopped the grader.
    Trap {
        /// Why.
        kind: TrapKind,
        /// wasmtime's description.
        message: String,
        /// The tail of what the guest printed.
        log_tail: String,
    },
    /// The host refused to run the row (input over the limit, grader missing).
    Refused {
        /// Why.
        message: String,
    },
    /// The row itself could not be read (a JSONL line that is not `{"item":…,"sample":…}`).
    InvalidRow {
        /// Why.
        message: String,
    },
    /// The grading run's token budget was spent before (or while) this row asked the model:
    /// the run ends cleanly and every row still to grade reports this instead of calling it.
    BudgetExhausted {
        /// Why, for people.
        message: String,
    },
}

impl Outcome {
    /// The score, when graded.
    pub fn score(&self) -> Option<f64> {
        match self {
            Outcome::Graded { grade } => Some(grade.score),
            _ => None,
        }
    }

    /// A stable name for the outcome's kind, used to count errors: `graded`,
    /// `invalid_config`, `invalid_input`, `failed`, `timeout`, `out_of_memory`,
    /// `stack_overflow`, `panic`, `other_trap`, `refused`, `invalid_row`, `budget_exhausted`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Outcome::Graded { .. } => "graded",
            Outcome::GraderError { kind, .. } => kind.name(),
            Outcome::Trap { kind, .. } => kind.name(),
            Outcome::Refused { .. } => "refused",
            Outcome::InvalidRow { .. } => "invalid_row",
            Outcome::BudgetExhausted { .. } => "budget_exhausted",
        }
    }

    pub(crate) fn trap(kind: TrapKind, message: impl Into<String>, log_tail: String) -> Self {
        Outcome::Trap {
            kind,
            message: message.into(),
            log_tail,
        }
    }

    /// The outcome of a row the spent budget stopped.
    pub(crate) fn budget_exhausted() -> Self {
        Outcome::BudgetExhausted {
            message: "the grading run's token budget is spent; this row was not graded".into(),
        }
    }

    /// Records the tokens a model grader used on a graded row.
    pub(crate) fn with_usage(mut self, usage: Option<TokenUsage>) -> Self {
        if let Outcome::Graded { grade } = &mut self {
            grade.usage = usage;
        }
        self
    }

    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Outcome::Refused {
            message: message.into(),
        }
    }

    /// Turns what the guest returned into an outcome, applying the output limits: a score
    /// that is not finite is a `failed` error; text past its cap is cut.
    pub(crate) fn from_guest(
        result: Result<types::Grade, types::GradeError>,
        limits: &Limits,
    ) -> Self {
        match result {
            Ok(grade) => {
                if !grade.score.is_finite() {
                    return Outcome::GraderError {
                        kind: GraderErrorKind::Failed,
                        message: format!(
                            "the grader returned a score that is not a finite number ({})",
                            grade.score
                        ),
                    };
                }
                let mut metrics: Vec<Metric> = grade
                    .metrics
                    .into_iter()
                    .take(limits.max_metrics)
                    .map(|m| Metric {
                        name: cut(m.name, limits.max_label_bytes),
                        value: m.value,
                    })
                    .collect();
                metrics.retain(|m| m.value.is_finite());
                Outcome::Graded {
                    grade: GradeResult {
                        score: grade.score,
                        passed: grade.passed,
                        label: grade.label.map(|l| cut(l, limits.max_label_bytes)),
                        reasoning: grade.reasoning.map(|r| cut(r, limits.max_reasoning_bytes)),
                        metrics,
                        usage: None,
                    },
                }
            }
            Err(error) => {
                let (kind, message) = match error {
                    types::GradeError::InvalidConfig(m) => (GraderErrorKind::InvalidConfig, m),
                    types::GradeError::InvalidInput(m) => (GraderErrorKind::InvalidInput, m),
                    types::GradeError::Failed(m) => (GraderErrorKind::Failed, m),
                };
                Outcome::GraderError {
                    kind,
                    message: cut(message, limits.max_reasoning_bytes),
                }
            }
        }
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let original = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [cut from {original} bytes]"));
    text
}

/// A grade as the host keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeResult {
    /// The score.
    pub score: f64,
    /// Whether the row passes, when the grader decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// The chosen label (classifying graders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Named sub-scores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// Tokens the row's model calls used (model graders only; one session per row, so exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
}

/// Tokens used by a row's model calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    /// Tokens in the prompts.
    pub prompt_tokens: u32,
    /// Tokens in the answers.
    pub completion_tokens: u32,
}

impl From<crate::llm::Usage> for TokenUsage {
    fn from(usage: crate::llm::Usage) -> Self {
        TokenUsage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    fn add(self, other: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// One named sub-score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: f64,
}

/// The errors a grader may return (the WIT `grade-error` cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraderErrorKind {
    /// The config is not valid for this grader.
    InvalidConfig,
    /// The row lacks what the grader needs.
    InvalidInput,
    /// The grader failed for a reason it explains.
    Failed,
}

impl GraderErrorKind {
    /// Its stable name.
    pub fn name(self) -> &'static str {
        match self {
            GraderErrorKind::InvalidConfig => "invalid_config",
            GraderErrorKind::InvalidInput => "invalid_input",
            GraderErrorKind::Failed => "failed",
        }
    }
}

/// Why the sandbox stopped a grader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapKind {
    /// It ran past its wall-time budget.
    Timeout,
    /// It tried to grow memory past its limit (or its allocator gave up).
    OutOfMemory,
    /// Its wasm stack overflowed.
    StackOverflow,
    /// It panicked (a Rust guest's panic message is in the log tail).
    Panic,
    /// Any other trap or host-side failure of the call.
    Other,
}

impl TrapKind {
    /// Its stable name.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::Timeout => "timeout",
            TrapKind::OutOfMemory => "out_of_memory",
            TrapKind::StackOverflow => "stack_overflow",
            TrapKind::Panic => "panic",
            TrapKind::Other => "other_trap",
        }
    }
}

/// Names the trap behind a failed wasmtime call. Rust guests abort on panic and on allocation
/// failure through `unreachable`, so the log tail (where std printed why) decides those.
pub(crate) fn classify(error: &wasmtime::Error, log_tail: &str) -> TrapKind {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => TrapKind::Timeout,
            wasmtime::Trap::StackOverflow => TrapKind::StackOverflow,
            wasmtime::Trap::UnreachableCodeReached | wasmtime::Trap::AllocationTooLarge => {
                if log_tail.contains("memory allocation of") {
                    TrapKind::OutOfMemory
                } else if log_tail.contains("panicked at") {
                    TrapKind::Panic
                } else {
                    TrapKind::Other
                }
            }
            _ => TrapKind::Other,
        };
    }
    let text = format!("{error:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory allocation of") {
        TrapKind::OutOfMemory
    } else {
        TrapKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_char_boundaries_and_marks_the_cut() {
        let text = "é".repeat(10);
        let out = cut(text, 5);
        assert!(out.starts_with("éé"));
        assert!(out.contains("[cut from 20 bytes]"));
        assert_eq!(cut("short".into(), 10), "short");
    }

    #[test]
    fn a_non_finite_score_is_a_failed_error() {
        let limits = Limits::default();
        let grade = types::Grade {
            score: f64::NAN,
            passed: None,
            label: None,
            reasoning: None,
            metrics: vec![],
        };
        let outcome = Outcome::from_guest(Ok(grade), &limits);
        assert_eq!(outcome.kind_name(), "failed");
    }
}
