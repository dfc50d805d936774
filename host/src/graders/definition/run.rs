//! Running a [`Resolved`] tree: one row or a batch, in a grading run of its own or as part of
//! one (model graders spend the run's token budget). A `multi` grades each part and combines
//! the scores with its `calculate_output`; the row fails the way its first failing part did.

use std::collections::HashMap;

use super::resolved::Resolved;
use crate::graders::engine::GraderRuntime;
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
                let mut values = HashMap::new();
                let mut metrics = Vec::new();
                let mut usage: Option<TokenUsage> = None;
                for (key, grader, config) in parts {
                    let outcome = grader.grade_in(runtime, run, config, sample, item).await;
                    if let Outcome::Graded { grade } = &outcome
                        && let Some(used) = grade.usage
                    {
                        usage = Some(usage.unwrap_or_default() + used);
                    }
                    match outcome.score() {
                        Some(score) => {
                            values.insert(key.clone(), score);
                            metrics.push(Metric {
                                name: key.clone(),
                                value: score,
                            });
                        }
                        // The whole row fails the way its first failing grader did.
                        None => return outcome,
                    }
                }
                let score = formula.eval(&values);
                if !score.is_finite() {
                    return Outcome::GraderError {
                        kind: GraderErrorKind::Failed,
                        message: format!("calculate_output gave {score} for {values:?}"),
                    };
                }
                Outcome::Graded {
                    grade: GradeResult {
                        score,
                        passed: None,
                        label: None,
                        reasoning: None,
                        metrics,
                        usage,
                    },
                }
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

    /// Grades rows as part of grading run `run`: one sandbox per batch for a single pure
    /// component, one sandbox per row (several at once) for model graders and multi graders.
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
            Resolved::Multi { .. } => {
                use futures::StreamExt;
                // By index, so no closure over a borrowed row is held across an await: such a
                // closure makes the future not `Send` for `tokio::spawn` (rustc cannot prove it
                // for every lifetime of the row).
                futures::stream::iter(0..rows.len())
                    .map(|i| self.grade_in(runtime, run, &rows[i].0, &rows[i].1))
                    .buffered(runtime.max_concurrency())
                    .collect()
                    .await
            }
        }
    }
}
