//! An evaluation's results, computed from its committed outputs (so they are as current while
//! it runs as after): per version and grader the mean score with its 95% t interval, the pass
//! rate with its 95% Wilson interval, errors by kind, tokens and latency; per pair of versions
//! and grader the paired difference of scores on the same (row, repeat) with its 95% t interval,
//! and the rows whose verdict flipped between pass and fail.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use uuid::Uuid;

use crate::store::StoredOutput;

/// The confidence of every interval.
pub const CONFIDENCE: f64 = 0.95;
/// Flipped rows listed per pair and grader (the counts are complete).
pub const MAX_FLIPPED_LISTED: usize = 100;

/// The two ends of an interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Bounds {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
}

/// Latency of a version's answers, in milliseconds (a cached answer counts as about 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: i64,
    /// 95th percentile.
    pub p95: i64,
    /// Largest.
    pub max: i64,
}

/// One grader's figures on one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderFigures {
    /// The definition's name.
    pub grader: String,
    /// Verdicts with a score.
    pub scored: i64,
    /// Mean score.
    pub mean: Option<f64>,
    /// 95% interval of the mean (t; needs two scores).
    pub mean_interval: Option<Bounds>,
    /// Verdicts that decided pass or fail.
    pub decided: i64,
    /// Of those, passed.
    pub passed: i64,
    /// `passed / decided`.
    pub pass_rate: Option<f64>,
    /// 95% Wilson interval of the pass rate.
    pub pass_rate_interval: Option<Bounds>,
    /// Verdicts the grader could not give, by error kind.
    pub errors: BTreeMap<String, i64>,
}

/// One version's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionFigures {
    /// The version.
    pub version: i64,
    /// Outputs committed (rows × repeats evaluated so far).
    pub outputs: i64,
    /// Outputs with no answer (the row's error: `missing_variable`, `timeout`…).
    pub errored: i64,
    /// Those row errors by kind.
    pub errors: BTreeMap<String, i64>,
    /// Task-model tokens of its answers (cached ones included, as the call that made them).
    pub tokens: i64,
    /// Latency of its answers, when it has any.
    pub latency_ms: Option<Latency>,
    /// Per grader.
    pub graders: Vec<GraderFigures>,
}

/// A row whose verdict flipped between two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flip {
    /// The dataset row.
    pub row: Uuid,
    /// The repeat.
    pub repeat: i64,
    /// Whether version `b` passed it (`a` did the opposite).
    pub passed_in_b: bool,
}

/// Two versions compared on one grader, on the (row, repeat) pairs both have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PairFigures {
    /// The first version.
    pub a: i64,
    /// The second version.
    pub b: i64,
    /// The grader.
    pub grader: String,
    /// Pairs scored in both.
    pub pairs: i64,
    /// Mean of `score(b) − score(a)` over the pairs.
    pub mean_difference: Option<f64>,
    /// 95% t interval of that mean (needs two pairs).
    pub interval: Option<Bounds>,
    /// Pairs failed in `a` and passed in `b`.
    pub fail_to_pass: i64,
    /// Pairs passed in `a` and failed in `b`.
    pub pass_to_fail: i64,
    /// The flipped pairs, at most 100.
    pub flipped: Vec<Flip>,
}

/// Everything results say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvalResults {
    /// Per version, in the order asked.
    pub versions: Vec<VersionFigures>,
    /// Per pair of versions (each earlier one with each later one) and grader.
    pub pairs: Vec<PairFigures>,
}

/// The results of `outputs` for `versions` graded by `graders`.
pub fn compute(versions: &[i64], graders: &[String], outputs: &[StoredOutput]) -> EvalResults {
    let figures = versions
        .iter()
        .map(|version| {
            let mine: Vec<&StoredOutput> =
                outputs.iter().filter(|o| o.version == *version).collect();
            version_figures(*version, graders, &mine)
        })
        .collect();
    // (version, row, repeat) → output, for pairing.
    let index: HashMap<(i64, Uuid, i64), &StoredOutput> = outputs
        .iter()
        .map(|o| ((o.version, o.dataset_row, o.repeat), o))
        .collect();
    let keys: BTreeSet<(Uuid, i64)> = outputs.iter().map(|o| (o.dataset_row, o.repeat)).collect();
    let mut pairs = Vec::new();
    for (i, a) in versions.iter().enumerate() {
        for b in &versions[i + 1..] {
            for grader in graders {
                pairs.push(pair_figures(*a, *b, grader, &keys, &index));
            }
        }
    }
    EvalResults {
        versions: figures,
        pairs,
    }
}

fn version_figures(version: i64, graders: &[String], outputs: &[&StoredOutput]) -> VersionFigures {
    let mut errors: BTreeMap<String, i64> = BTreeMap::new();
    for output in outputs {
        if let Some(kind) = &output.error {
            *errors.entry(kind.clone()).or_default() += 1;
        }
    }
    let mut latencies: Vec<i64> = outputs.iter().filter_map(|o| o.latency_ms).collect();
    latencies.sort_unstable();
    let latency_ms = (!latencies.is_empty()).then(|| {
        let at = |q: f64| {
            // Nearest rank.
            let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            latencies[rank - 1]
        };
        Latency {
            mean: latencies.iter().sum::<i64>() as f64 / latencies.len() as f64,
            p50: at(0.5),
            p95: at(0.95),
            max: *latencies.last().unwrap_or(&0),
        }
    });
    let graders = graders
        .iter()
        .map(|grader| {
            let mut scores = Vec::new();
            let (mut decided, mut passed) = (0, 0);
            let mut errors: BTreeMap<String, i64> = BTreeMap::new();
            for verdict in outputs.iter().filter_map(|o| o.verdicts.get(grader)) {
                if let Some(score) = verdict.score {
                    scores.push(score);
                }
                if let Some(pass) = verdict.passed {
                    decided += 1;
                    passed += i64::from(pass);
                }
                if let Some(kind) = &verdict.error {
                    *errors.entry(kind.clone()).or_default() += 1;
                }
            }
            GraderFigures {
                grader: grader.clone(),
                scored: scores.len() as i64,
                mean: mean(&scores),
                mean_interval: t_interval(&scores),
                decided,
                passed,
                pass_rate: (decided > 0).then(|| passed as f64 / decided as f64),
                pass_rate_interval: wilson(passed, decided),
                errors,
            }
        })
        .collect();
    VersionFigures {
        version,
        outputs: outputs.len() as i64,
        errored: errors.values().sum(),
        errors,
        tokens: outputs.iter().filter_map(|o| o.tokens).sum(),
        latency_ms,
        graders,
    }
}

fn pair_figures(
    a: i64,
    b: i64,
    grader: &str,
    keys: &BTreeSet<(Uuid, i64)>,
    index: &HashMap<(i64, Uuid, i64), &StoredOutput>,
) -> PairFigures {
    let mut differences = Vec::new();
    let (mut fail_to_pass, mut pass_to_fail) = (0, 0);
    let mut flipped = Vec::new();
    for (row, repeat) in keys {
        let verdict = |version: i64| {
            index
                .get(&(version, *row, *repeat))
                .and_then(|output| output.verdicts.get(grader))
        };
        let (Some(in_a), Some(in_b)) = (verdict(a), verdict(b)) else {
            continue;
        };
        if let (Some(score_a), Some(score_b)) = (in_a.score, in_b.score) {
            differences.push(score_b - score_a);
        }
        if let (Some(pass_a), Some(pass_b)) = (in_a.passed, in_b.passed)
            && pass_a != pass_b
        {
            if pass_b {
                fail_to_pass += 1;
            } else {
                pass_to_fail += 1;
            }
            if flipped.len() < MAX_FLIPPED_LISTED {
                flipped.push(Flip {
                    row: *row,
                    repeat: *repeat,
                    passed_in_b: pass_b,
                });
            }
        }
    }
    PairFigures {
        a,
        b,
        grader: grader.to_owned(),
        pairs: differences.len() as i64,
        mean_difference: mean(&differences),
        interval: t_interval(&differences),
        fail_to_pass,
        pass_to_fail,
        flipped,
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// The two-sided t interval of the mean at [`CONFIDENCE`]; `None` under two values. With no
/// spread at all the interval is the mean itself.
pub fn t_interval(values: &[f64]) -> Option<Bounds> {
    let n = values.len();
    if n < 2 {
        return None;
    }
    let m = mean(values)?;
    let variance = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (variance / n as f64).sqrt();
    let q = 1.0 - (1.0 - CONFIDENCE) / 2.0;
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .map(|t| t.inverse_cdf(q))
        .unwrap_or(1.96);
    Some(Bounds {
        lower: m - t * se,
        upper: m + t * se,
    })
}

/// The Wilson score interval of `passed / n` at [`CONFIDENCE`]; `None` when `n` is 0.
pub fn wilson(passed: i64, n: i64) -> Option<Bounds> {
    if n <= 0 {
        return None;
    }
    let n = n as f64;
    let p = passed as f64 / n;
    let z = Normal::new(0.0, 1.0)
        .map(|normal| normal.inverse_cdf(1.0 - (1.0 - CONFIDENCE) / 2.0))
        .unwrap_or(1.96);
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(Bounds {
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredVerdict;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn wilson_matches_published_values() {
        // 8 of 10: Wilson 95% is (0.490, 0.943) (Newcombe 1998, method 3).
        let b = wilson(8, 10).unwrap();
        assert!(close(b.lower, 0.4902) && close(b.upper, 0.9433), "{b:?}");
        // 0 of 10 still has an upper end above 0.
        let b = wilson(0, 10).unwrap();
        assert!(close(b.lower, 0.0) && close(b.upper, 0.2775), "{b:?}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn t_interval_matches_a_hand_computation() {
        // mean 2, sd 1, n 3: t(0.975, 2) = 4.3027, half width 4.3027 / sqrt(3) = 2.4842.
        let b = t_interval(&[1.0, 2.0, 3.0]).unwrap();
        assert!(
            close(b.lower, 2.0 - 2.4842) && close(b.upper, 2.0 + 2.4842),
            "{b:?}"
        );
        assert_eq!(t_interval(&[1.0]), None);
    }

    fn output(version: i64, row: u128, score: f64, error: Option<&str>) -> StoredOutput {
        let mut verdicts = BTreeMap::new();
        if error.is_none() {
            verdicts.insert(
                "g".to_owned(),
                StoredVerdict {
                    score: Some(score),
                    passed: Some(score >= 0.5),
                    error: None,
                },
            );
        }
        StoredOutput {
            version,
            dataset_row: Uuid::from_u128(row),
            repeat: 0,
            error: error.map(str::to_owned),
            tokens: Some(10),
            latency_ms: Some(row as i64),
            verdicts,
        }
    }

    #[test]
    fn pairs_compare_the_same_rows_and_list_flips_both_ways() {
        let outputs = vec![
            output(1, 1, 0.0, None),
            output(2, 1, 1.0, None),
            output(1, 2, 1.0, None),
            output(2, 2, 0.0, None),
            output(1, 3, 1.0, None),
            output(2, 3, 1.0, None),
            // Row 4 has no answer in version 2: not a pair.
            output(1, 4, 1.0, None),
            output(2, 4, 0.0, Some("missing_variable")),
        ];
        let results = compute(&[1, 2], &["g".to_owned()], &outputs);
        let v2 = &results.versions[1];
        assert_eq!((v2.outputs, v2.errored), (4, 1));
        assert_eq!(v2.errors.get("missing_variable"), Some(&1));
        assert_eq!(v2.tokens, 40);
        assert_eq!(v2.graders[0].scored, 3);
        assert_eq!((v2.graders[0].decided, v2.graders[0].passed), (3, 2));
        let pair = &results.pairs[0];
        assert_eq!((pair.a, pair.b, pair.pairs), (1, 2, 3));
        assert_eq!((pair.fail_to_pass, pair.pass_to_fail), (1, 1));
        assert_eq!(pair.mean_difference, Some(0.0));
        assert_eq!(pair.flipped.len(), 2);
        assert!(
            pair.flipped
                .iter()
                .any(|f| f.row == Uuid::from_u128(1) && f.passed_in_b)
        );
    }
}
