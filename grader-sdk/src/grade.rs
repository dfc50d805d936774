//! What a grader returns: a [`Grade`] with its [`Metric`]s, or a [`GradeError`].
//!
//! These mirror the WIT `grade`, `metric` and `grade-error` types so authors never touch the
//! generated bindings; the conversion happens in [`crate::runtime`].

/// The result of grading one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Grade {
    /// The score, usually in `[0, 1]`. It must be finite: the SDK turns NaN or infinity into
    /// [`GradeError::Failed`] rather than hand the host a number no threshold can compare.
    pub score: f64,
    /// Whether the row passes, when the grader has a threshold or passing labels.
    pub passed: Option<bool>,
    /// The label a classifying grader chose.
    pub label: Option<String>,
    /// A short explanation shown beside the score.
    pub reasoning: Option<String>,
    /// Named sub-scores, in the order they were added.
    pub metrics: Vec<Metric>,
}

/// One named sub-score of a [`Grade`].
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name, such as `precision`.
    pub name: String,
    /// Its value.
    pub value: f64,
}

impl Grade {
    /// A grade with this score and nothing else.
    pub fn new(score: f64) -> Self {
        Self {
            score,
            passed: None,
            label: None,
            reasoning: None,
            metrics: Vec::new(),
        }
    }

    /// Score 1 and passed when `ok`, score 0 and failed otherwise (OpenAI's `string_check`).
    pub fn pass_fail(ok: bool) -> Self {
        Self::new(if ok { 1.0 } else { 0.0 }).with_passed(ok)
    }

    /// Sets whether the row passed.
    pub fn with_passed(mut self, passed: bool) -> Self {
        self.passed = Some(passed);
        self
    }

    /// Sets `passed` to `score >= threshold` when a threshold is given; leaves it unset otherwise.
    pub fn with_threshold(mut self, threshold: Option<f64>) -> Self {
        if let Some(threshold) = threshold {
            self.passed = Some(self.score >= threshold);
        }
        self
    }

    /// Sets the label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the reasoning.
    pub fn with_reasoning(mut self, reasoning: impl Into<String>) -> Self {
        self.reasoning = Some(reasoning.into());
        self
    }

    /// Appends a named sub-score.
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push(Metric {
            name: name.into(),
            value,
        });
        self
    }

    /// The value of the metric with this name, if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    }
}

/// Why a grader could not grade a row. A panic is not a `GradeError`: it traps the component,
/// and the host records the trap apart from these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GradeError {
    /// The config is not valid for this grader; the text names the field.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The sample or item lacks what the grader needs, or is not valid JSON.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The grader tried and failed, for a reason it explains.
    #[error("grading failed: {0}")]
    Failed(String),
}

impl GradeError {
    /// An [`GradeError::InvalidConfig`] with this text.
    pub fn config(message: impl Into<String>) -> Self {
        Self::InvalidConfig(message.into())
    }

    /// An [`GradeError::InvalidInput`] with this text.
    pub fn input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A [`GradeError::Failed`] with this text.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}
