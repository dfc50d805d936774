//! Applying a prompt's grader definitions to recorded runs: resolving the stored definitions a
//! job or the automatic grader uses, grading a chunk of runs with each (one batch per
//! definition), and turning every [`Outcome`] into the [`GraderVerdict`] the store keeps, with
//! the chunk's totals.

use uuid::Uuid;

use crate::graders::Definition;
use crate::graders::definition::resolved::Resolved;
use crate::graders::engine::GraderRuntime;
use crate::graders::llm::LlmRun;
use crate::graders::outcome::{Outcome, TrapKind};
use crate::graders::registry::Registry;
use crate::grading::run_view::sample_and_item;
use crate::store::{ChunkTotals, GradableRun, GradedRun, GraderDefinition, GraderVerdict};

/// A stored definition, resolved against the components serving now.
#[derive(Debug, Clone)]
pub struct NamedGrader {
    /// The definition's name (the key of the run's `graderResults`).
    pub name: String,
    /// The definition's row id.
    pub id: Uuid,
    /// The pinned grader tree.
    pub resolved: Resolved,
}

impl NamedGrader {
    /// Parses and resolves a stored definition; the error says why it cannot run.
    pub fn resolve(stored: &GraderDefinition, registry: &Registry) -> Result<Self, String> {
        let definition = Definition::parse(&stored.definition)
            .map_err(|e| format!("grader {}: {e}", stored.name))?;
        let resolved = definition
            .resolve(registry)
            .map_err(|e| format!("grader {}: {e}", stored.name))?;
        Ok(NamedGrader {
            name: stored.name.clone(),
            id: stored.id,
            resolved,
        })
    }
}

/// The error kind the store keeps for an outcome that is not a grade (the
/// `grading_results_error_kind_known` names).
fn error_kind(outcome: &Outcome) -> Option<&'static str> {
    match outcome {
        Outcome::Graded { .. } => None,
        Outcome::GraderError { kind, .. } => Some(kind.name()),
        Outcome::Trap { kind, .. } => Some(match kind {
            TrapKind::Other => "trap",
            other => other.name(),
        }),
        // The host refused the row (input over the limit) or could not read it.
        Outcome::Refused { .. } | Outcome::InvalidRow { .. } => Some("invalid_input"),
        Outcome::BudgetExhausted { .. } => Some("budget_exhausted"),
    }
}

/// The verdict the store keeps for one outcome of `grader`.
pub fn verdict(grader: &NamedGrader, outcome: Outcome) -> GraderVerdict {
    let mut verdict = GraderVerdict {
        grader: grader.name.clone(),
        grader_id: Some(grader.id),
        score: None,
        passed: None,
        label: None,
        reasoning: None,
        error: error_kind(&outcome).map(str::to_owned),
        error_message: None,
        prompt_tokens: None,
        completion_tokens: None,
        duration_us: None,
    };
    match outcome {
        Outcome::Graded { grade } => {
            verdict.score = Some(grade.score);
            verdict.passed = grade.passed;
            verdict.label = grade.label;
            verdict.reasoning = grade.reasoning;
            if let Some(usage) = grade.usage {
                verdict.prompt_tokens = Some(i64::from(usage.prompt_tokens));
                verdict.completion_tokens = Some(i64::from(usage.completion_tokens));
            }
        }
        Outcome::GraderError { message, .. }
        | Outcome::Trap { message, .. }
        | Outcome::Refused { message }
        | Outcome::InvalidRow { message }
        | Outcome::BudgetExhausted { message } => verdict.error_message = Some(message),
    }
    verdict
}

/// Grades `runs` with every grader (one batch per grader) as part of `llm_run`, and adds up the
/// chunk: a run is `errored` if a grader could not grade it, else `failed` if one failed it,
/// else `passed` if every grader that decides passed it (a run no grader decides is in none).
pub async fn grade_runs(
    graders: &[NamedGrader],
    runtime: &GraderRuntime,
    llm_run: &LlmRun,
    runs: &[GradableRun],
) -> (Vec<GradedRun>, ChunkTotals) {
    let rows: Vec<(String, String)> = runs.iter().map(sample_and_item).collect();
    let mut graded: Vec<GradedRun> = runs
        .iter()
        .map(|run| GradedRun {
            data_id: run.id,
            prompt_id: run.prompt_id.clone(),
            outcome_at: run.outcome_at,
            row_index: run.row_index,
            verdicts: Vec::with_capacity(graders.len()),
        })
        .collect();
    for grader in graders {
        let outcomes = grader
            .resolved
            .grade_batch_in(runtime, llm_run, &rows)
            .await;
        for (run, outcome) in graded.iter_mut().zip(outcomes) {
            run.verdicts.push(verdict(grader, outcome));
        }
    }
    let totals = totals_of(&graded);
    (graded, totals)
}

/// The counters a chunk adds to its job.
pub fn totals_of(graded: &[GradedRun]) -> ChunkTotals {
    let mut totals = ChunkTotals::default();
    for run in graded {
        let mut errored = false;
        let mut failed = false;
        let mut decided = false;
        for verdict in &run.verdicts {
            if let Some(kind) = &verdict.error {
                errored = true;
                *totals.errors.entry(kind.clone()).or_default() += 1;
            }
            match verdict.passed {
                Some(false) => failed = true,
                Some(true) => decided = true,
                None => {}
            }
            totals.tokens += verdict.prompt_tokens.unwrap_or(0);
            totals.tokens += verdict.completion_tokens.unwrap_or(0);
        }
        if errored {
            totals.errored += 1;
        } else if failed {
            totals.failed += 1;
        } else if decided {
            totals.passed += 1;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::outcome::{GradeResult, GraderErrorKind, TokenUsage};

    fn run_with(verdicts: Vec<GraderVerdict>) -> GradedRun {
        GradedRun {
            data_id: Uuid::nil(),
            prompt_id: "planner".into(),
            outcome_at: None,
            row_index: 0,
            verdicts,
        }
    }

    fn plain(passed: Option<bool>, error: Option<&str>) -> GraderVerdict {
        GraderVerdict {
            grader: "g".into(),
            grader_id: None,
            score: error.is_none().then_some(1.0),
            passed,
            label: None,
            reasoning: None,
            error: error.map(str::to_owned),
            error_message: None,
            prompt_tokens: Some(3),
            completion_tokens: Some(2),
            duration_us: None,
        }
    }

    #[test]
    fn totals_count_each_run_once_errors_first_then_failures() {
        let totals = totals_of(&[
            run_with(vec![plain(Some(true), None), plain(Some(true), None)]),
            run_with(vec![plain(Some(true), None), plain(Some(false), None)]),
            run_with(vec![plain(Some(false), None), plain(None, Some("timeout"))]),
            run_with(vec![plain(None, None)]),
        ]);
        assert_eq!(
            (totals.passed, totals.failed, totals.errored),
            (1, 1, 1),
            "the undecided run is in none"
        );
        assert_eq!(totals.errors.get("timeout"), Some(&1));
        assert_eq!(totals.tokens, 7 * 5);
    }

    #[test]
    fn outcomes_become_verdicts_with_the_stored_error_kinds() {
        assert_eq!(
            error_kind(&Outcome::Trap {
                kind: TrapKind::Other,
                message: String::new(),
                log_tail: String::new()
            }),
            Some("trap")
        );
        assert_eq!(
            error_kind(&Outcome::Refused {
                message: String::new()
            }),
            Some("invalid_input")
        );
        assert_eq!(
            error_kind(&Outcome::GraderError {
                kind: GraderErrorKind::Failed,
                message: String::new()
            }),
            Some("failed")
        );
        let graded = Outcome::Graded {
            grade: GradeResult {
                score: 0.5,
                passed: Some(false),
                label: Some("poor".into()),
                reasoning: Some("why".into()),
                metrics: vec![],
                usage: Some(TokenUsage {
                    prompt_tokens: 10,
                    completion_tokens: 4,
                }),
            },
        };
        assert_eq!(error_kind(&graded), None);
    }
}
