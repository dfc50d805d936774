//! Running a [`Resolved`] tree: one row or a batch, in a grading run of its own or as part of
//! one (model graders spend the run's token budget). A `multi` grades each part and combines
//! the scores with its `calculate_output`; the row fails the way its first failing part did.

use std::collections::HashMap;

use super::resolved::Resolved;
use crate::graders::engine::GraderRuntime;
use crate::graders::formula::Expr;
use crate::graders::llm::LlmRun;
use crate::graders::outcome::{GradeResult, GraderErrorKind, Metric, Outcome, TokenUsage};

impl Resolved {
    /// Rows per batch when grading many rows: the largest its components ask for (each part of
    /// a `multi` grades the whole batch in one instance of its own).
    pub fn batch_rows(&self) -> usize {
        match self {
            Resolved::Component { grader, .. } => grader.batch_rows,
            Resolved::Multi { parts, .. } => parts
                .iter()
                .map(|(_, grader, _)| grader.batch_rows)
                .max()
                .unwrap_or(crate::graders::component::MIN_BATCH_ROWS),
        }
    }

    /// Grades one row, in a grading run of its own.
    pub async fn grade(&self, runtime: &GraderRuntime, sample: &str, item: &str) -> Outcome {
        self.grade_in(runtime, &runtime.new_run(), sample, item)
            .await
    }

    /// Grades one row as part of grading run `run` (model graders spend its token budget).
    pub async fn grade_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        sample: &str,
        item: &str,
    ) -> Outcome {
        match self {
            Resolved::Component { grader, config } => {
                grader.grade_in(runtime, run, config, sample, item).await
            }
            Resolved::Multi { parts, formula } => {
                let mut row = MultiRow::default();
                for (key, grader, config) in parts {
                    let outcome = grader.grade_in(runtime, run, config, sample, item).await;
                    if let Some(failed) = row.add(key, outcome) {
                        return failed;
                    }
                }
                row.finish(formula)
            }
        }
    }

    /// Grades rows, in a grading run of their own.
    pub async fn grade_batch(
        &self,
        runtime: &GraderRuntime,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        self.grade_batch_in(runtime, &runtime.new_run(), rows).await
    }

    /// Grades rows as part of grading run `run`: one sandbox per batch for a pure component,
    /// one sandbox per row (several at once) for a model grader. A `multi` grades part by part,
    /// each part as a batch of its own over the rows no earlier part failed, so it costs about
    /// the sum of its parts and never grades (or spends tokens on) a row already failed.
    pub async fn grade_batch_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        match self {
            Resolved::Component { grader, config } => {
                grader.grade_batch_in(runtime, run, config, rows).await
            }
            Resolved::Multi { parts, formula } => {
                let mut combined: Vec<MultiRow> =
                    rows.iter().map(|_| MultiRow::default()).collect();
                let mut failed: Vec<Option<Outcome>> = rows.iter().map(|_| None).collect();
                for (key, grader, config) in parts {
                    let alive: Vec<usize> =
                        (0..rows.len()).filter(|&i| failed[i].is_none()).collect();
                    if alive.is_empty() {
                        break;
                    }
                    // In the part's own batch size: the batches of a multi are sized for its
                    // largest part.
                    for chunk in alive.chunks(grader.batch_rows.max(1)) {
                        let batch: Vec<(String, String)> =
                            chunk.iter().map(|&i| rows[i].clone()).collect();
                        let outcomes = grader.grade_batch_in(runtime, run, config, &batch).await;
                        for (&i, outcome) in chunk.iter().zip(outcomes) {
                            failed[i] = combined[i].add(key, outcome);
                        }
                    }
                }
                combined
                    .into_iter()
                    .zip(failed)
                    .map(|(row, failed)| failed.unwrap_or_else(|| row.finish(formula)))
                    .collect()
            }
        }
    }
}

/// What the parts of a `multi` gave one row so far.
#[derive(Default)]
struct MultiRow {
    values: HashMap<String, f64>,
    metrics: Vec<Metric>,
    usage: Option<TokenUsage>,
}

impl MultiRow {
    /// Adds a part's outcome; the outcome itself when it failed, which then is the row's: the
    /// row fails the way its first failing part did.
    fn add(&mut self, key: &str, outcome: Outcome) -> Option<Outcome> {
        if let Outcome::Graded { grade } = &outcome
            && let Some(used) = grade.usage
        {
            self.usage = Some(self.usage.unwrap_or_default() + used);
        }
        match outcome.score() {
            Some(score) => {
                self.values.insert(key.to_owned(), score);
                self.metrics.push(Metric {
                    name: key.to_owned(),
                    value: score,
                });
                None
            }
            None => Some(outcome),
        }
    }

    /// The row's grade: `calculate_output` over the parts' scores.
    fn finish(self, formula: &Expr) -> Outcome {
        let score = formula.eval(&self.values);
        if !score.is_finite() {
            return Outcome::GraderError {
                kind: GraderErrorKind::Failed,
                message: format!("calculate_output gave {score} for {:?}", self.values),
            };
        }
        Outcome::Graded {
            grade: GradeResult {
                score,
                passed: None,
                label: None,
                reasoning: None,
                metrics: self.metrics,
                usage: self.usage,
            },
        }
    }
}
