//! The report of a run, built from its final state: why it stopped, whether the winner beat the
//! starting prompt on the validation rows (the paired difference of row scores, with its 95% t
//! interval: a gain only when the interval excludes 0), per grader the score and pass rate
//! before and after with their intervals, per failure mode the failing rows before and after,
//! the winner's lineage, the candidates (accepted, rejected, discarded and why), and every batch
//! of model calls with its cost, task and reflection models apart.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::budget::Spent;
use super::state::{CallRecord, Candidate, Discarded, LoopState, RowScore};
use crate::evals::results::{Bounds, GraderFigures, PairFigures, compute, t_interval};
use crate::store::{DatasetRow, StoredOutput, StoredVerdict};

/// Why the loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The best candidate reached the target score on the front rows.
    TargetReached,
    /// `patience` rounds in a row found nothing better.
    NoImprovement,
    /// What is left of a budget cannot pay for another round and the validation.
    Budget,
    /// A person cancelled the run.
    Cancelled,
}

impl StopReason {
    /// What it means, for people.
    pub fn describe(self, patience: i64) -> String {
        match self {
            StopReason::TargetReached => "the best candidate reached the target score".into(),
            StopReason::NoImprovement => {
                format!("{patience} rounds in a row found no better candidate")
            }
            StopReason::Budget => {
                "the budget left could not pay for another round and the validation".into()
            }
            StopReason::Cancelled => "cancelled".into(),
        }
    }
}

/// One step of the winner's lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineageStep {
    /// The candidate.
    pub candidate: usize,
    /// The round that proposed it.
    pub round: i64,
    /// Its parent.
    pub parent: Option<usize>,
    /// Its mean score on the front rows.
    pub train_mean: f64,
    /// Its text.
    pub text: String,
}

/// One candidate, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CandidateSummary {
    /// Its number.
    pub id: usize,
    /// Its parent.
    pub parent: Option<usize>,
    /// The round that proposed it.
    pub round: i64,
    /// Whether it joined the front.
    pub accepted: bool,
    /// Its parent's and its own summed score on its minibatch.
    pub minibatch: Option<(f64, f64)>,
    /// Its mean on the front rows (accepted ones).
    pub train_mean: Option<f64>,
}

/// The candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidates {
    /// Proposals tried on a minibatch.
    pub tried: i64,
    /// Of those, accepted onto the front.
    pub accepted: i64,
    /// Proposals thrown away before any task call, by reason.
    pub discarded: Discarded,
    /// Every candidate (the start first).
    pub list: Vec<CandidateSummary>,
}

/// One grader before and after, on the validation rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderComparison {
    /// The starting prompt.
    pub before: GraderFigures,
    /// The winner.
    pub after: GraderFigures,
    /// The paired comparison (a = before, b = after).
    pub difference: PairFigures,
}

/// The validation: the start and the winner on the same rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    /// The winner validated.
    pub winner: usize,
    /// Rows both were scored on.
    pub rows: i64,
    /// Mean row score before.
    pub score_before: f64,
    /// Mean row score after.
    pub score_after: f64,
    /// Mean of `after − before` over the rows.
    pub gain: f64,
    /// Its 95% t interval.
    pub gain_interval: Option<Bounds>,
    /// Per grader.
    pub graders: Vec<GraderComparison>,
}

/// One failure mode before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureModeChange {
    /// The code (from the rows' annotations).
    pub code: String,
    /// Validation rows annotated with it.
    pub rows: i64,
    /// Of those, failed by the starting prompt.
    pub failing_before: i64,
    /// Of those, failed by the winner.
    pub failing_after: i64,
}

/// What the run decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// Whether the winner beat the start by more than the noise.
    pub improved: bool,
    /// The version created, when it did.
    pub version: Option<i64>,
    /// Why (or why not), for people.
    pub reason: String,
}

/// The report of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Why the loop stopped.
    pub stop_reason: StopReason,
    /// The same, for people.
    pub stop_detail: String,
    /// Rounds done.
    pub rounds: i64,
    /// The decision.
    pub outcome: Outcome,
    /// The starting version.
    pub start_version: i64,
    /// The winner's text (the start's when nothing beat it on the train rows).
    pub winner_text: String,
    /// The winner's lineage, from the start.
    pub lineage: Vec<LineageStep>,
    /// The validation, when a candidate was validated.
    pub validation: Option<ValidationReport>,
    /// Per failure mode on the validation rows.
    pub failure_modes: Vec<FailureModeChange>,
    /// The candidates.
    pub candidates: Candidates,
    /// What was spent, task and reflection models apart.
    pub spent: Spent,
    /// Every batch of model calls.
    pub calls: Vec<CallRecord>,
    /// The A/B test started for the new version, when asked and started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_test: Option<String>,
}

/// The winner's lineage, from the start to it.
pub fn lineage(candidates: &[Candidate], winner: usize, front_rows: &[Uuid]) -> Vec<LineageStep> {
    let mut steps = Vec::new();
    let mut at = Some(winner);
    // Bounded: parents have smaller numbers than their children.
    while let Some(id) = at {
        let Some(c) = candidates.get(id) else { break };
        steps.push(LineageStep {
            candidate: c.id,
            round: c.round,
            parent: c.parent,
            train_mean: c.mean_on(front_rows),
            text: c.text.clone(),
        });
        at = c.parent.filter(|p| *p < id);
    }
    steps.reverse();
    steps
}

fn stored(version: i64, row: Uuid, score: &RowScore) -> StoredOutput {
    StoredOutput {
        version,
        dataset_row: row,
        repeat: 0,
        error: score.error.clone(),
        tokens: None,
        latency_ms: None,
        verdicts: score
            .graders
            .iter()
            .map(|(name, g)| {
                (
                    name.clone(),
                    StoredVerdict {
                        score: g.score,
                        passed: g.passed,
                        error: g.error.clone(),
                    },
                )
            })
            .collect(),
    }
}

/// The validation report of `start` and `candidate` scores, over the rows both have.
pub fn validation(
    winner: usize,
    start: &BTreeMap<Uuid, RowScore>,
    candidate: &BTreeMap<Uuid, RowScore>,
    graders: &[String],
) -> ValidationReport {
    let rows: Vec<Uuid> = start
        .keys()
        .filter(|r| candidate.contains_key(r))
        .copied()
        .collect();
    let differences: Vec<f64> = rows
        .iter()
        .map(|r| candidate[r].score - start[r].score)
        .collect();
    let mean = |f: &dyn Fn(&Uuid) -> f64| {
        if rows.is_empty() {
            0.0
        } else {
            rows.iter().map(f).sum::<f64>() / rows.len() as f64
        }
    };
    let mut outputs = Vec::new();
    for r in &rows {
        outputs.push(stored(0, *r, &start[r]));
        outputs.push(stored(1, *r, &candidate[r]));
    }
    let results = compute(&[0, 1], graders, &outputs);
    let graders = graders
        .iter()
        .enumerate()
        .map(|(i, _)| GraderComparison {
            before: results.versions[0].graders[i].clone(),
            after: results.versions[1].graders[i].clone(),
            difference: results.pairs[i].clone(),
        })
        .collect();
    ValidationReport {
        winner,
        rows: rows.len() as i64,
        score_before: mean(&|r| start[r].score),
        score_after: mean(&|r| candidate[r].score),
        gain: mean(&|r| candidate[r].score - start[r].score),
        gain_interval: t_interval(&differences),
        graders,
    }
}

/// Whether a validation shows a gain: the interval of the mean paired difference lies above 0.
pub fn is_gain(validation: &ValidationReport) -> bool {
    validation.gain_interval.is_some_and(|b| b.lower > 0.0)
}

/// Per failure mode of the validation rows' annotations: rows, and how many each prompt fails.
pub fn failure_modes(
    rows: &[DatasetRow],
    start: &BTreeMap<Uuid, RowScore>,
    candidate: Option<&BTreeMap<Uuid, RowScore>>,
) -> Vec<FailureModeChange> {
    let codes: BTreeSet<&str> = rows
        .iter()
        .filter_map(|r| super::reflection::failure_mode(&r.item))
        .collect();
    codes
        .into_iter()
        .map(|code| {
            let mine: Vec<&DatasetRow> = rows
                .iter()
                .filter(|r| super::reflection::failure_mode(&r.item) == Some(code))
                .collect();
            let failing = |scores: &BTreeMap<Uuid, RowScore>| {
                mine.iter()
                    .filter(|r| scores.get(&r.id).is_some_and(RowScore::failed))
                    .count() as i64
            };
            let before = failing(start);
            FailureModeChange {
                code: code.to_owned(),
                rows: mine.len() as i64,
                failing_before: before,
                failing_after: candidate.map_or(before, failing),
            }
        })
        .collect()
}

/// The candidate summaries and counts of a state.
pub fn candidates(state: &LoopState, front_rows: &[Uuid]) -> Candidates {
    let tried = state
        .candidates
        .iter()
        .filter(|c| c.trial.is_some())
        .count() as i64;
    let accepted = state
        .candidates
        .iter()
        .filter(|c| c.accepted && c.parent.is_some())
        .count() as i64;
    Candidates {
        tried,
        accepted,
        discarded: state.discarded.clone(),
        list: state
            .candidates
            .iter()
            .map(|c| CandidateSummary {
                id: c.id,
                parent: c.parent,
                round: c.round,
                accepted: c.accepted,
                minibatch: c.trial.as_ref().map(|t| (t.parent_score, t.score)),
                train_mean: c.accepted.then(|| c.mean_on(front_rows)),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::state::GraderScore;

    fn score(value: f64) -> RowScore {
        RowScore {
            score: value,
            passed: Some(value >= 1.0),
            graders: [(
                "exact".to_owned(),
                GraderScore {
                    score: Some(value),
                    passed: Some(value >= 1.0),
                    reasoning: None,
                    error: None,
                },
            )]
            .into_iter()
            .collect(),
            output: Some("x".into()),
            error: None,
        }
    }

    fn scores(values: &[f64]) -> BTreeMap<Uuid, RowScore> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (Uuid::from_u128(i as u128 + 1), score(*v)))
            .collect()
    }

    #[test]
    fn a_gain_needs_the_paired_interval_above_zero() {
        let graders = vec!["exact".to_owned()];
        let start = scores(&[0.0; 10]);
        let fixed = validation(1, &start, &scores(&[1.0; 10]), &graders);
        assert_eq!(fixed.rows, 10);
        assert_eq!((fixed.score_before, fixed.score_after), (0.0, 1.0));
        assert!(is_gain(&fixed), "{fixed:?}");
        assert_eq!(fixed.graders[0].difference.fail_to_pass, 10);
        assert_eq!(fixed.graders[0].after.pass_rate, Some(1.0));
        // Half the rows better, half worse: noise.
        let noisy = validation(
            1,
            &scores(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0]),
            &scores(&[1.0, 0.0, 1.0, 0.0, 1.0, 1.0]),
            &graders,
        );
        assert!(!is_gain(&noisy), "{noisy:?}");
        // Identical: no gain.
        assert!(!is_gain(&validation(1, &start, &start, &graders)));
    }
}
