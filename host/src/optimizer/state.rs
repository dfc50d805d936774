//! The loop's state, checkpointed after every round (`optimizations.state`): the candidates with
//! their per-row scores, the round counters, what was spent and what was discarded. A run taken
//! over after a restart resumes from it; the report is built from it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::budget::Spent;
use crate::store::GraderVerdict;

/// Longest answer kept per row (the reflection shows answers; the rest is cut).
pub const MAX_KEPT_ANSWER_CHARS: usize = 2000;

/// One grader's verdict on one row, as the loop keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderScore {
    /// The score, when graded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Whether it passed, when the grader decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// The grader's reasoning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Why it was not graded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A candidate's result on one row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowScore {
    /// The row's score, 0 to 1: the mean of its graders' scores, each put on 0–1 by its range
    /// (a `score_model` grader's `[1, 5]`, say), a grader that could not grade counting 0, and
    /// 0 when the model gave no answer.
    pub score: f64,
    /// Whether it passed: no grader failed it or could not grade it, and one decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Per grader.
    pub graders: BTreeMap<String, GraderScore>,
    /// The answer (cut at [`MAX_KEPT_ANSWER_CHARS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why there is no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RowScore {
    /// The row's score from the engine's answer and verdicts; `scales` holds the range of each
    /// grader whose scores are not on 0–1.
    pub fn from_verdicts(
        output: Option<String>,
        error: Option<String>,
        verdicts: &[GraderVerdict],
        scales: &BTreeMap<String, (f64, f64)>,
    ) -> RowScore {
        let graders: BTreeMap<String, GraderScore> = verdicts
            .iter()
            .map(|v| {
                (
                    v.grader.clone(),
                    GraderScore {
                        score: v.score,
                        passed: v.passed,
                        reasoning: v.reasoning.clone(),
                        error: v.error.clone(),
                    },
                )
            })
            .collect();
        let score = if output.is_none() || graders.is_empty() {
            0.0
        } else {
            graders
                .iter()
                .map(|(name, g)| match (&g.error, g.score) {
                    (Some(_), _) | (None, None) => 0.0,
                    // A target of 1 and the interval of a gain mean the same on every grader
                    // only when each grader's scores are on 0–1.
                    (None, Some(score)) => match scales.get(name) {
                        Some((low, high)) => ((score - low) / (high - low)).clamp(0.0, 1.0),
                        None => score,
                    },
                })
                .sum::<f64>()
                / graders.len() as f64
        };
        let passed = if output.is_none()
            || graders
                .values()
                .any(|g| g.error.is_some() || g.passed == Some(false))
        {
            Some(false)
        } else if graders.values().any(|g| g.passed == Some(true)) {
            Some(true)
        } else {
            None
        };
        RowScore {
            score,
            passed,
            graders,
            output: output.map(|o| o.chars().take(MAX_KEPT_ANSWER_CHARS).collect()),
            error,
        }
    }

    /// Whether the row counts as failed (for reflection and failure-mode counts).
    pub fn failed(&self) -> bool {
        self.passed == Some(false) || (self.passed.is_none() && self.score < 1.0)
    }
}

/// A candidate's first trial: the minibatch it was tried on, its sum and its parent's there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Trial {
    /// The rows.
    pub rows: Vec<Uuid>,
    /// The parent's summed score on them.
    pub parent_score: f64,
    /// The candidate's.
    pub score: f64,
}

/// A prompt text the loop considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Its number in the run (0 is the starting prompt).
    pub id: usize,
    /// The template text.
    pub text: String,
    /// The candidate it was derived from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<usize>,
    /// The round that proposed it (0 for the start).
    pub round: i64,
    /// Whether it beat its parent on its minibatch and joined the front.
    pub accepted: bool,
    /// Its first trial (none for the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Trial>,
    /// Its scores on the train rows it was run on, by row.
    #[serde(default)]
    pub train: BTreeMap<Uuid, RowScore>,
}

impl Candidate {
    /// Mean score over `rows` (0 for a row it was not run on).
    pub fn mean_on(&self, rows: &[Uuid]) -> f64 {
        if rows.is_empty() {
            return 0.0;
        }
        rows.iter()
            .map(|r| self.train.get(r).map_or(0.0, |s| s.score))
            .sum::<f64>()
            / rows.len() as f64
    }
}

/// Why proposals were thrown away, by count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Discarded {
    /// Kept other template variables than the starting prompt's.
    pub wrong_variables: i64,
    /// Not a template (unbalanced braces…).
    pub invalid_template: i64,
    /// The same text as an earlier candidate.
    pub duplicate: i64,
    /// No prompt could be read from the reflection's answer.
    pub unparseable: i64,
}

impl Discarded {
    /// All of them.
    pub fn total(&self) -> i64 {
        self.wrong_variables + self.invalid_template + self.duplicate + self.unparseable
    }
}

/// One batch of model calls, for the report's cost table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// `task` or `reflection`.
    pub model: String,
    /// What for: `start` (the starting prompt on the front rows), `minibatch`, `front` (an
    /// accepted candidate on the rest of the front rows), `validation`, `reflection`.
    pub purpose: String,
    /// The round.
    pub round: i64,
    /// The candidate concerned.
    pub candidate: usize,
    /// Calls made.
    pub calls: i64,
    /// Answers from the cache (no call).
    pub cached: i64,
    /// Tokens spent (task model and model graders, or reflection).
    pub tokens: i64,
}

/// The validation: the start and the winner on the validation rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidationScores {
    /// The winner validated.
    pub winner: usize,
    /// The start's scores, by row.
    pub start: BTreeMap<Uuid, RowScore>,
    /// The winner's.
    pub candidate: BTreeMap<Uuid, RowScore>,
}

/// Everything the loop has done so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopState {
    /// Every candidate, the start first.
    pub candidates: Vec<Candidate>,
    /// Rounds done.
    pub round: i64,
    /// Rounds in a row without a better candidate.
    pub stale_rounds: i64,
    /// The best candidate on the front rows so far.
    pub best: usize,
    /// What was spent.
    pub spent: Spent,
    /// What was thrown away.
    pub discarded: Discarded,
    /// Every batch of calls.
    pub calls: Vec<CallRecord>,
    /// Why the loop stopped, once it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<super::report::StopReason>,
    /// The validation, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationScores>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(grader: &str, score: f64, passed: bool) -> GraderVerdict {
        GraderVerdict {
            grader: grader.to_owned(),
            grader_id: None,
            score: Some(score),
            passed: Some(passed),
            label: None,
            reasoning: None,
            error: None,
            error_message: None,
            prompt_tokens: None,
            completion_tokens: None,
            duration_us: None,
        }
    }

    #[test]
    fn a_row_score_puts_each_grader_on_zero_to_one_by_its_range() {
        // files_match 0.5 on 0–1, a 1–5 judge's 2: (0.5 + 0.25) / 2, not (0.5 + 2) / 2.
        let verdicts = [verdict("files", 0.5, false), verdict("judge", 2.0, false)];
        let scales = BTreeMap::from([("judge".to_owned(), (1.0, 5.0))]);
        let row = RowScore::from_verdicts(Some("a".into()), None, &verdicts, &scales);
        assert!((row.score - 0.375).abs() < 1e-9, "{}", row.score);
        // The per-grader figures stay as the grader gave them.
        assert_eq!(row.graders["judge"].score, Some(2.0));
        let top = [verdict("judge", 5.0, true)];
        let row = RowScore::from_verdicts(Some("a".into()), None, &top, &scales);
        assert_eq!(row.score, 1.0);
        // Without a range the score is taken as it is.
        let row = RowScore::from_verdicts(Some("a".into()), None, &verdicts, &BTreeMap::new());
        assert!((row.score - 1.25).abs() < 1e-9);
    }
}
