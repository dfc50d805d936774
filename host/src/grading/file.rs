//! Grading a JSONL file of OpenAI eval rows (`{"item":…,"sample":…}` per line) with one
//! resolved definition: per-row results and a summary. Used by `flywheel grade`.
//!
//! A line that is not a valid row becomes an `invalid_row` result carrying its line number; it
//! never aborts the run. Rows are sent in batches (one sandbox per batch) when the definition
//! is a single component.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::graders::definition::Resolved;
use crate::graders::engine::GraderRuntime;
use crate::graders::llm::LlmRun;
use crate::graders::outcome::Outcome;

/// One graded row.
#[derive(Debug, Clone, Serialize)]
pub struct RowReport {
    /// 1-based line number in the input.
    pub line: usize,
    /// What grading it gave.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Totals of a grading run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Rows read (blank lines are not rows).
    pub rows: usize,
    /// Rows that got a grade.
    pub graded: usize,
    /// Rows that did not (`rows - graded`): every kind in `errors`.
    pub errored: usize,
    /// Mean score over graded rows.
    pub mean_score: Option<f64>,
    /// Passing rows over graded rows, when the grader decides passing. The same denominator
    /// as `mean_score`, so the two describe the same rows; errored rows are counted apart.
    pub pass_rate: Option<f64>,
    /// Rows per outcome kind other than `graded` (`invalid_input`, `timeout`, `invalid_row`…).
    pub errors: BTreeMap<String, usize>,
    /// Prompt tokens model graders used over the run.
    pub prompt_tokens: u64,
    /// Completion tokens model graders used over the run.
    pub completion_tokens: u64,
}

/// The mean of finite scores. The plain sum is exact where it can be (125 of 250 rows scoring 1
/// give exactly 0.5); when scores near ±f64::MAX (a component may return 1.7e308) overflow it,
/// each score is divided first, so the mean is never ±inf (which JSON cannot carry).
fn mean_of(scores: &[f64]) -> f64 {
    let n = scores.len() as f64;
    let sum: f64 = scores.iter().sum();
    if sum.is_finite() {
        sum / n
    } else {
        scores.iter().map(|score| score / n).sum()
    }
}

impl Summary {
    /// Builds the totals from per-row reports.
    pub fn of(reports: &[RowReport]) -> Summary {
        let mut summary = Summary {
            rows: reports.len(),
            ..Summary::default()
        };
        let mut scores = Vec::with_capacity(reports.len());
        let mut passed = 0usize;
        let mut decided = false;
        for report in reports {
            match &report.outcome {
                Outcome::Graded { grade } => {
                    summary.graded += 1;
                    scores.push(grade.score);
                    if let Some(usage) = grade.usage {
                        summary.prompt_tokens += u64::from(usage.prompt_tokens);
                        summary.completion_tokens += u64::from(usage.completion_tokens);
                    }
                    if let Some(p) = grade.passed {
                        decided = true;
                        passed += usize::from(p);
                    }
                }
                other => {
                    *summary
                        .errors
                        .entry(other.kind_name().to_string())
                        .or_default() += 1
                }
            }
        }
        if summary.graded > 0 {
            summary.mean_score = Some(mean_of(&scores));
        }
        summary.errored = summary.rows - summary.graded;
        if decided && summary.graded > 0 {
            summary.pass_rate = Some(passed as f64 / summary.graded as f64);
        }
        summary
    }

    /// One line for a terminal: `rows 10, graded 8, errored 2 (timeout 2); over the 8 graded
    /// rows: mean score 0.750, pass rate 62.5%`.
    pub fn line(&self) -> String {
        let mean = self
            .mean_score
            .map(|m| format!("{m:.3}"))
            .unwrap_or_else(|| "n/a".into());
        let pass = self
            .pass_rate
            .map(|p| format!("{:.1}%", p * 100.0))
            .unwrap_or_else(|| "n/a".into());
        let errors = if self.errors.is_empty() {
            String::new()
        } else {
            let kinds: Vec<String> = self
                .errors
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            format!(" ({})", kinds.join(", "))
        };
        let tokens = if self.prompt_tokens + self.completion_tokens > 0 {
            format!(
                ", tokens {} prompt + {} completion",
                self.prompt_tokens, self.completion_tokens
            )
        } else {
            String::new()
        };
        format!(
            "rows {}, graded {}, errored {}{errors}; over the {} graded rows: mean score {mean}, pass rate {pass}{tokens}",
            self.rows, self.graded, self.errored, self.graded
        )
    }
}

/// Reads one JSONL line into the (sample, item) JSON texts a grader receives. A string sample
/// is OpenAI's `model_sample`: it becomes `{"output_text": s}`, plus `output_json` when the
/// string is JSON.
pub fn parse_row(line: &str) -> Result<(String, String), String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(mut row) = value else {
        return Err("a row must be a JSON object with `item` and `sample`".into());
    };
    let item = row.remove("item").ok_or("the row has no `item`")?;
    let sample = row.remove("sample").ok_or("the row has no `sample`")?;
    let sample = match sample {
        Value::String(text) => {
            let mut object = serde_json::Map::new();
            if let Ok(json) = serde_json::from_str::<Value>(&text) {
                object.insert("output_json".into(), json);
            }
            object.insert("output_text".into(), Value::String(text));
            Value::Object(object)
        }
        Value::Object(_) => sample,
        _ => return Err("`sample` must be an object or a string".into()),
    };
    Ok((sample.to_string(), item.to_string()))
}

/// Grades every line as one grading run (one token budget, of the runtime's configured size);
/// `progress` is called with the number of rows done so far.
pub async fn grade_rows<I>(
    definition: &Resolved,
    runtime: &GraderRuntime,
    lines: I,
    progress: &mut dyn FnMut(usize),
) -> (Vec<RowReport>, Summary)
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    grade_rows_in(definition, runtime, &runtime.new_run(), lines, progress).await
}

/// [`grade_rows`] within a given run, whose token budget model graders spend. Once it is spent
/// the run ends cleanly: every row still to grade reports `budget_exhausted` and no further
/// model call is made.
pub async fn grade_rows_in<I>(
    definition: &Resolved,
    runtime: &GraderRuntime,
    run: &LlmRun,
    lines: I,
    progress: &mut dyn FnMut(usize),
) -> (Vec<RowReport>, Summary)
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    let mut reports = Vec::new();
    let mut pending: Vec<(usize, (String, String))> = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                reports.push(RowReport {
                    line: number,
                    outcome: Outcome::InvalidRow {
                        message: format!("line {number}: cannot read: {error}"),
                    },
                });
                progress(reports.len() + pending.len());
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_row(&line) {
            Ok(row) => pending.push((number, row)),
            Err(message) => reports.push(RowReport {
                line: number,
                outcome: Outcome::InvalidRow {
                    message: format!("line {number}: {message}"),
                },
            }),
        }
        if pending.len() >= definition.batch_rows() {
            flush(definition, runtime, run, &mut pending, &mut reports).await;
        }
        progress(reports.len() + pending.len());
    }
    flush(definition, runtime, run, &mut pending, &mut reports).await;
    progress(reports.len());
    reports.sort_by_key(|r| r.line);
    let summary = Summary::of(&reports);
    (reports, summary)
}

async fn flush(
    definition: &Resolved,
    runtime: &GraderRuntime,
    run: &LlmRun,
    pending: &mut Vec<(usize, (String, String))>,
    reports: &mut Vec<RowReport>,
) {
    if pending.is_empty() {
        return;
    }
    let rows: Vec<(String, String)> = pending.iter().map(|(_, row)| row.clone()).collect();
    let outcomes = definition.grade_batch_in(runtime, run, &rows).await;
    for ((line, _), outcome) in pending.drain(..).zip(outcomes) {
        reports.push(RowReport { line, outcome });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graders::outcome::{GradeResult, TrapKind};

    #[test]
    fn rows_accept_object_and_string_samples() {
        let (sample, item) =
            parse_row(r#"{"item":{"label":"a"},"sample":{"output_text":"a"}}"#).expect("valid");
        assert_eq!(item, r#"{"label":"a"}"#);
        assert_eq!(sample, r#"{"output_text":"a"}"#);
        let (sample, _) = parse_row(r#"{"item":{},"sample":"{\"x\":1}"}"#).expect("valid");
        let sample: Value = serde_json::from_str(&sample).expect("json");
        assert_eq!(sample["output_json"]["x"], 1);
        assert_eq!(sample["output_text"], "{\"x\":1}");
        assert!(parse_row("{").unwrap_err().contains("not valid JSON"));
        assert!(parse_row(r#"{"item":{}}"#).unwrap_err().contains("sample"));
        assert!(parse_row("[]").is_err());
        assert!(parse_row(r#"{"item":{},"sample":3}"#).is_err());
    }

    #[test]
    fn the_mean_of_scores_near_the_largest_float_is_finite() {
        let graded = |score| RowReport {
            line: 1,
            outcome: Outcome::Graded {
                grade: GradeResult {
                    score,
                    passed: None,
                    label: None,
                    reasoning: None,
                    metrics: vec![],
                    usage: None,
                },
            },
        };
        let big = 1.7e308;
        let summary = Summary::of(&[graded(big), graded(big), graded(-big), graded(big)]);
        let mean = summary.mean_score.expect("graded rows");
        assert!((mean - big / 2.0).abs() <= big * 1e-12, "{mean}");
        assert!(!summary.line().contains("inf"), "{}", summary.line());
        let json = serde_json::to_value(&summary).expect("serialises");
        assert!(
            json["meanScore"].is_f64() || json["mean_score"].is_f64(),
            "{json}"
        );
        let small = Summary::of(&[graded(0.25), graded(0.75), graded(1.0), graded(0.0)]);
        assert_eq!(small.mean_score, Some(0.5), "exact where the sum is");
    }

    #[test]
    fn the_summary_counts_scores_passes_and_errors_by_kind() {
        let graded = |score, passed| Outcome::Graded {
            grade: GradeResult {
                score,
                passed,
                label: None,
                reasoning: None,
                metrics: vec![],
                usage: None,
            },
        };
        let reports = vec![
            RowReport {
                line: 1,
                outcome: graded(1.0, Some(true)),
            },
            RowReport {
                line: 2,
                outcome: graded(0.0, Some(false)),
            },
            RowReport {
                line: 3,
                outcome: Outcome::trap(TrapKind::Timeout, "t", String::new()),
            },
            RowReport {
                line: 4,
                outcome: Outcome::InvalidRow {
                    message: "bad".into(),
                },
            },
        ];
        let summary = Summary::of(&reports);
        assert_eq!(summary.rows, 4);
        assert_eq!(summary.graded, 2);
        assert_eq!(summary.mean_score, Some(0.5));
        assert_eq!(summary.pass_rate, Some(0.5), "one of the two graded rows");
        assert_eq!(summary.errored, 2);
        assert_eq!(summary.errors.get("timeout"), Some(&1));
        assert_eq!(summary.errors.get("invalid_row"), Some(&1));
        assert_eq!(
            summary.line(),
            "rows 4, graded 2, errored 2 (invalid_row 1, timeout 1); over the 2 graded rows: mean score 0.500, pass rate 50.0%"
        );
    }
}
