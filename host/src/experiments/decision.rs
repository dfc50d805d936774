//! The readout of a test and the decision it supports (ab-testing.md §11.4 health gates and
//! §11.5 decision rule), from per-arm sums: ship B, roll back, keep running, or — at the
//! horizon — inconclusive, keep A ("deploy B only if metrics improve").
//!
//! Decisions rest only on the always-valid confidence sequence ([`stats::sequential`]), so the
//! readout can be refreshed at every request without inflating false ships. The fixed-horizon
//! interval and the Bayesian chance to win are computed for display.
//!
//! The order of the rule:
//! 1. Health: a sample-ratio mismatch (χ² p < 0.001 once both arms have 8 units) means the
//!    assignment or its recording is broken: no decision, keep running (§11.4).
//! 2. Minimum data: each arm has `min_samples` tasks and `min_successes` successes, and the
//!    test has run `min_days` (§11.4). Below it, keep running.
//! 3. Roll back when the primary sequence is entirely below 0, or when a guardrail
//!    significantly regresses past its margin (one-sided sequence at `α/#guardrails`,
//!    Bonferroni, §11.5.2).
//! 4. Ship B when the primary sequence is entirely above 0 **and** every guardrail is shown
//!    non-inferior (one-sided upper bound of the relative increase below its margin, §11.5.3).
//!    A guardrail without data cannot be shown non-inferior, so it holds the test.
//! 5. Otherwise keep running; at `max_days`, inconclusive: keep A.

use serde::{Deserialize, Serialize};

use super::stats::{
    self, Difference, Interval, Posterior, SRM_MIN_PER_ARM, SRM_THRESHOLD, SRM_WARNING, Sample,
    Side,
};

/// What a test concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// B is better on the primary metric and no worse on every guardrail: deploy B.
    ShipB,
    /// B is worse on the primary metric or regresses a guardrail: stop, keep A.
    Rollback,
    /// Not enough evidence yet.
    KeepRunning,
    /// The horizon passed without a conclusion: keep A.
    InconclusiveKeepA,
}

impl Decision {
    /// The stored form (`ab_tests.decision`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::ShipB => "ship_b",
            Decision::Rollback => "rollback",
            Decision::KeepRunning => "keep_running",
            Decision::InconclusiveKeepA => "inconclusive_keep_a",
        }
    }

    /// Whether the test should end on it.
    pub fn is_final(self) -> bool {
        self != Decision::KeepRunning
    }
}

/// A cost metric kept from getting worse (lower is better).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GuardrailMetric {
    /// Total tokens per task.
    Tokens,
    /// Latency per task (ms, summed over its runs).
    Latency,
}

/// A guardrail: B may not raise `metric` by more than `margin` (relative, 0.10 = +10%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    /// The metric.
    pub metric: GuardrailMetric,
    /// The non-inferiority margin, relative.
    pub margin: f64,
}

/// The reference's default margins (§11.5.3): tokens +10%, latency +15%.
pub fn default_guardrails() -> Vec<Guardrail> {
    vec![
        Guardrail {
            metric: GuardrailMetric::Tokens,
            margin: 0.10,
        },
        Guardrail {
            metric: GuardrailMetric::Latency,
            margin: 0.15,
        },
    ]
}

/// How a test is analysed; fixed when it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Significance level (0.05).
    pub alpha: f64,
    /// `N*` of the confidence sequence: the total tasks where it is tightest.
    pub tuning: f64,
    /// Tasks per arm before any decision (100).
    pub min_samples: u64,
    /// Successes per arm before any decision (30).
    pub min_successes: u64,
    /// Days the test runs before any decision.
    pub min_days: f64,
    /// Days after which an undecided test ends inconclusive.
    pub max_days: Option<f64>,
    /// The cost guardrails.
    pub guardrails: Vec<Guardrail>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            alpha: 0.05,
            tuning: stats::DEFAULT_TUNING,
            min_samples: 100,
            min_successes: 30,
            min_days: 1.0,
            max_days: None,
            guardrails: default_guardrails(),
        }
    }
}

/// One arm's data, intent to treat: every exposed task counts in `exposures`; a task without
/// a known success counts as a failure; costs over the tasks that reported them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmData {
    /// Tasks assigned to the arm.
    pub exposures: u64,
    /// Of them, tasks that succeeded.
    pub successes: u64,
    /// Tokens per task (a [`Sample::Mean`]).
    pub tokens: Sample,
    /// Latency per task, ms (a [`Sample::Mean`]).
    pub latency: Sample,
}

/// What an arm shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArmSummary {
    /// Tasks assigned.
    pub n: u64,
    /// Tasks that succeeded.
    pub successes: u64,
    /// `successes / n` (0 with none).
    pub rate: f64,
    /// Mean tokens per task that reported tokens.
    pub mean_tokens: f64,
    /// Mean latency (ms) per task that reported it.
    pub mean_latency_ms: f64,
}

impl ArmSummary {
    fn of(arm: &ArmData) -> ArmSummary {
        ArmSummary {
            n: arm.exposures,
            successes: arm.successes,
            rate: primary_sample(arm).mean(),
            mean_tokens: arm.tokens.mean(),
            mean_latency_ms: arm.latency.mean(),
        }
    }
}

/// The sample-ratio-mismatch check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrmCheck {
    /// χ² p-value of the exposure counts against the split.
    pub p_value: f64,
    /// `ok`, `warning` (p < 0.01), `unhealthy` (p < 0.001) or `not_enough_data`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

/// A guardrail's readout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GuardrailReadout {
    /// The metric.
    pub metric: GuardrailMetric,
    /// Its margin.
    pub margin: f64,
    /// The relative change B over A (two-sided sequence, for display).
    pub relative: Interval,
    /// Upper bound of the one-sided sequence at α: below `margin` means non-inferior.
    #[serde(serialize_with = "finite_or_null")]
    #[schema(value_type = Option<f64>)]
    pub non_inferiority_bound: f64,
    /// Lower bound of the one-sided sequence at α/#guardrails: above `margin` means regressed.
    #[serde(serialize_with = "finite_or_null")]
    #[schema(value_type = Option<f64>)]
    pub regression_bound: f64,
    /// `non_inferior`, `regressed` or `unproven`.
    #[schema(value_type = String)]
    pub status: &'static str,
}

fn finite_or_null<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else {
        serializer.serialize_none()
    }
}

/// The primary metric's readout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrimaryReadout {
    /// Absolute difference of success rates, always-valid sequence (drives the decision).
    pub absolute: Interval,
    /// Relative difference (lift), always-valid sequence.
    pub relative: Interval,
    /// Absolute difference, fixed-horizon Welch interval (display only: not valid when peeking).
    pub fixed_horizon: Interval,
    /// Bayesian posterior of the lift, flat prior (display only).
    pub bayesian: Posterior,
}

/// Everything a results page shows, and the decision.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Readout {
    /// Arm A.
    pub a: ArmSummary,
    /// Arm B.
    pub b: ArmSummary,
    /// The primary metric.
    pub primary: PrimaryReadout,
    /// The guardrails.
    pub guardrails: Vec<GuardrailReadout>,
    /// The sample-ratio-mismatch check.
    pub srm: SrmCheck,
    /// |lift| above 50%: worth a second look (GrowthBook's `maxPercentChange`), no effect on
    /// the decision.
    pub suspicious_lift: bool,
    /// The decision.
    pub decision: Decision,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// A test's analysis as `AbTest.result` holds it: the readout, how long the test had run, and
/// for an ended test how it ended. One struct, so the OpenAPI schema is the JSON written.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbTestResult {
    /// The analysis and its decision.
    #[serde(flatten)]
    pub readout: Readout,
    /// Days since the test started when the analysis was made.
    pub days_running: f64,
    /// How the test ended (absent while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

impl AbTestResult {
    /// The JSON stored in `ab_tests.result`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a readout serializes")
    }
}

fn primary_sample(arm: &ArmData) -> Sample {
    Sample::Proportion {
        n: arm.exposures,
        successes: arm.successes.min(arm.exposures),
    }
}

fn cost_sample(arm: &ArmData, metric: GuardrailMetric) -> Sample {
    match metric {
        GuardrailMetric::Tokens => arm.tokens,
        GuardrailMetric::Latency => arm.latency,
    }
}

/// The sample-ratio-mismatch check of the exposures against a share `split` to B.
pub fn srm_check(a: u64, b: u64, split: f64) -> SrmCheck {
    let p_value = stats::srm_p_value(&[a, b], &[1.0 - split, split]);
    let status = if a.min(b) < SRM_MIN_PER_ARM && split > 0.0 && split < 1.0 {
        "not_enough_data"
    } else if p_value < SRM_THRESHOLD {
        "unhealthy"
    } else if p_value < SRM_WARNING {
        "warning"
    } else {
        "ok"
    };
    SrmCheck { p_value, status }
}

/// The readout of arms `a` and `b` after `days` of a test sending `split` of traffic to B.
pub fn analyze(a: &ArmData, b: &ArmData, split: f64, days: f64, settings: &Settings) -> Readout {
    let alpha = settings.alpha;
    let (pa, pb) = (primary_sample(a), primary_sample(b));
    let primary = PrimaryReadout {
        absolute: stats::confidence_sequence(
            &pa,
            &pb,
            Difference::Absolute,
            Side::TwoSided,
            alpha,
            settings.tuning,
        ),
        relative: stats::confidence_sequence(
            &pa,
            &pb,
            Difference::Relative,
            Side::TwoSided,
            alpha,
            settings.tuning,
        ),
        fixed_horizon: stats::t_test(&pa, &pb, Difference::Absolute, Side::TwoSided, alpha),
        bayesian: stats::posterior(&pa, &pb, Difference::Relative, None, alpha, false),
    };
    let guardrail_alpha = alpha / settings.guardrails.len().max(1) as f64;
    let guardrails: Vec<GuardrailReadout> = settings
        .guardrails
        .iter()
        .map(|g| {
            let (ca, cb) = (cost_sample(a, g.metric), cost_sample(b, g.metric));
            let seq = |side, alpha| {
                stats::confidence_sequence(
                    &ca,
                    &cb,
                    Difference::Relative,
                    side,
                    alpha,
                    settings.tuning,
                )
            };
            let relative = seq(Side::TwoSided, alpha);
            let upper = seq(Side::Lesser, alpha);
            let lower = seq(Side::Greater, guardrail_alpha);
            let known = upper.degenerate.is_none();
            let status = if known && lower.lower > g.margin {
                "regressed"
            } else if known && upper.upper < g.margin {
                "non_inferior"
            } else {
                "unproven"
            };
            GuardrailReadout {
                metric: g.metric,
                margin: g.margin,
                relative,
                non_inferiority_bound: if known { upper.upper } else { f64::INFINITY },
                regression_bound: if known {
                    lower.lower
                } else {
                    f64::NEG_INFINITY
                },
                status,
            }
        })
        .collect();
    let srm = srm_check(a.exposures, b.exposures, split);
    let suspicious_lift =
        primary.relative.degenerate.is_none() && primary.relative.estimate.abs() > 0.5;

    let horizon = settings.max_days.is_some_and(|max| days >= max);
    let undecided = if horizon {
        Decision::InconclusiveKeepA
    } else {
        Decision::KeepRunning
    };
    let mut reasons = Vec::new();
    let decision = if srm.status == "unhealthy" {
        reasons.push(format!(
            "sample ratio mismatch (p = {:.2e} < {SRM_THRESHOLD}): assignment or recording is broken; investigate",
            srm.p_value
        ));
        undecided
    } else if let Some(missing) = below_minimum(a, b, days, settings) {
        reasons.push(missing);
        undecided
    } else if primary.absolute.upper < 0.0 {
        reasons.push(format!(
            "B is worse: success rate difference {:+.4} (always-valid {:.0}% interval {:+.4} to {:+.4})",
            primary.absolute.estimate, (1.0 - alpha) * 100.0, primary.absolute.lower, primary.absolute.upper
        ));
        Decision::Rollback
    } else if let Some(g) = guardrails.iter().find(|g| g.status == "regressed") {
        reasons.push(format!(
            "guardrail {:?} regressed beyond +{:.0}%: relative change at least {:+.1}%",
            g.metric,
            g.margin * 100.0,
            g.regression_bound * 100.0
        ));
        Decision::Rollback
    } else if primary.absolute.lower > 0.0 {
        let unproven: Vec<String> = guardrails
            .iter()
            .filter(|g| g.status != "non_inferior")
            .map(|g| format!("{:?}", g.metric).to_lowercase())
            .collect();
        if unproven.is_empty() {
            reasons.push(format!(
                "B is better: success rate difference {:+.4} (always-valid interval {:+.4} to {:+.4}) and every guardrail is within its margin",
                primary.absolute.estimate, primary.absolute.lower, primary.absolute.upper
            ));
            Decision::ShipB
        } else {
            reasons.push(format!(
                "B is better on success, but guardrails not yet shown within their margin: {}",
                unproven.join(", ")
            ));
            undecided
        }
    } else {
        reasons.push("no significant difference on the success rate yet".to_string());
        undecided
    };
    if decision == Decision::InconclusiveKeepA {
        reasons.push(format!(
            "the test reached its maximum of {} days: keep A",
            settings.max_days.unwrap_or_default()
        ));
    }
    Readout {
        a: ArmSummary::of(a),
        b: ArmSummary::of(b),
        primary,
        guardrails,
        srm,
        suspicious_lift,
        decision,
        reasons,
    }
}

/// Why the data is below the minimum for a decision, if it is.
fn below_minimum(a: &ArmData, b: &ArmData, days: f64, settings: &Settings) -> Option<String> {
    let tasks = a.exposures.min(b.exposures);
    let successes = a.successes.min(b.successes);
    if tasks < settings.min_samples {
        Some(format!(
            "not enough tasks yet: {tasks} in the smaller arm, {} needed",
            settings.min_samples
        ))
    } else if successes < settings.min_successes {
        Some(format!(
            "not enough successes yet: {successes} in the smaller arm, {} needed",
            settings.min_successes
        ))
    } else if days < settings.min_days {
        Some(format!(
            "the test has run {days:.2} days, {} needed before deciding",
            settings.min_days
        ))
    } else {
        None
    }
}

#[cfg(test)]
#[path = "decision_tests.rs"]
mod tests;
