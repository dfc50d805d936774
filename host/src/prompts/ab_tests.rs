//! A/B tests as the registry runs them: start, stop, results, the decision and its execution
//! (`autoDeploy`), on top of the pure [`crate::experiments`] and the store's
//! [`ExperimentStore`](crate::store::ExperimentStore). Assignment at resolve time lives in
//! `registry.rs` (the cache) and [`exposures`](super::exposures) (the recording).
//!
//! A test's analysis settings are fixed at start and stored in `ab_tests.config` ([`AbConfig`]).
//! Results are computed on request from the per-arm totals and saved on the test; when a final
//! decision is reached and the test has `autoDeploy`, it is carried out then: the test ends
//! `completed`, and for `ship_b` version B is deployed with the actor `ab-test:<id>` (in the
//! deploy history, in the same transaction as the ending); otherwise A stays. The background
//! evaluator ([`super::evaluator`]) does the same every `FLYWHEEL_AB_EVALUATE_SECS`, so a
//! decision is carried out even when nobody reads the results. A deploy or rollback of the prompt by anyone else while a
//! test runs stops the test, and its result says so.

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PromptError, PromptRegistry};
use crate::experiments::decision::{self, Guardrail, GuardrailMetric};
use crate::experiments::stats::{DEFAULT_TUNING, Sample};
use crate::experiments::{AbTestResult, ArmData, Decision, Settings, analyze};
use crate::store::{
    AbTest, AbTestEnd, ArmTotals, Missing, NewAbTest, STATUS_COMPLETED, STATUS_RUNNING,
    STATUS_STOPPED, StoreError,
};

/// The only primary metric today: a task's success (its reported `testsPassed`, else its runs'
/// success), intent to treat.
pub const METRIC_SUCCESS: &str = "success";
/// Largest `minSamples` accepted.
const MAX_MIN_SAMPLES: u64 = 10_000_000;
/// Largest `maxDays`/`minDays` accepted.
const MAX_DAYS: f64 = 3650.0;

/// A request to start a test.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartAbTest {
    /// The control version (usually the active one).
    pub version_a: i64,
    /// The candidate version.
    pub version_b: i64,
    /// Share of tasks sent to B, strictly between 0 and 1 (default
    /// `PROMPT_AB_TEST_TRAFFIC_SPLIT`).
    #[serde(default)]
    pub traffic_split: Option<f64>,
    /// The primary metric: `success` (the default and only one).
    #[serde(default)]
    pub metric: Option<String>,
    /// Non-inferiority margins of the cost guardrails, relative (`{"tokens": 0.1, "latency":
    /// 0.15}`, the default); `{}` for none.
    #[serde(default)]
    pub guardrails: Option<BTreeMap<GuardrailMetric, f64>>,
    /// Tasks per arm before any decision (default 100).
    #[serde(default)]
    pub min_samples: Option<u64>,
    /// Successes per arm before any decision (default 30).
    #[serde(default)]
    pub min_successes: Option<u64>,
    /// Days before any decision (default 1).
    #[serde(default)]
    pub min_days: Option<f64>,
    /// Days after which an undecided test ends inconclusive, keeping A (default: none).
    #[serde(default)]
    pub max_days: Option<f64>,
    /// Carry out the decision when reached (default false: it is shown and a person acts).
    #[serde(default)]
    pub auto_deploy: Option<bool>,
}

/// The analysis settings stored with a test (`ab_tests.config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AbConfig {
    /// The primary metric.
    pub metric: String,
    /// Guardrail margins.
    pub guardrails: BTreeMap<GuardrailMetric, f64>,
    /// Successes per arm before any decision.
    pub min_successes: u64,
    /// Days before any decision.
    pub min_days: f64,
    /// Days after which the test ends inconclusive.
    pub max_days: Option<f64>,
    /// Carry out the decision.
    pub auto_deploy: bool,
    /// Significance level.
    pub alpha: f64,
    /// `N*` of the confidence sequence.
    pub sequential_tuning: f64,
}

impl AbConfig {
    fn settings(&self, min_samples: i64) -> Settings {
        Settings {
            alpha: self.alpha,
            tuning: self.sequential_tuning,
            min_samples: u64::try_from(min_samples).unwrap_or(0),
            min_successes: self.min_successes,
            min_days: self.min_days,
            max_days: self.max_days,
            guardrails: self
                .guardrails
                .iter()
                .map(|(metric, margin)| Guardrail {
                    metric: *metric,
                    margin: *margin,
                })
                .collect(),
        }
    }
}

fn invalid(message: impl Into<String>) -> PromptError {
    PromptError::Invalid(message.into())
}

/// Checks a start request and turns it into the row to store.
fn validate(
    prompt_id: &str,
    req: StartAbTest,
    default_split: f64,
    actor: &str,
) -> Result<NewAbTest, PromptError> {
    if req.version_a == req.version_b {
        return Err(invalid("versionA and versionB must differ"));
    }
    let split = req.traffic_split.unwrap_or(default_split);
    if !(split > 0.0 && split < 1.0) {
        return Err(invalid(format!(
            "trafficSplit must be strictly between 0 and 1 (the share of tasks sent to B); got {split}"
        )));
    }
    let metric = req.metric.unwrap_or_else(|| METRIC_SUCCESS.to_owned());
    if metric != METRIC_SUCCESS {
        return Err(invalid(format!(
            "unknown metric {metric:?}; the metric is \"success\""
        )));
    }
    let guardrails = req.guardrails.unwrap_or_else(|| {
        decision::default_guardrails()
            .into_iter()
            .map(|g| (g.metric, g.margin))
            .collect()
    });
    for (metric, margin) in &guardrails {
        if !(margin.is_finite() && *margin > 0.0 && *margin <= 10.0) {
            return Err(invalid(format!(
                "guardrail {metric:?} margin must be above 0 and at most 10 (relative, 0.1 = +10%); got {margin}"
            )));
        }
    }
    let min_samples = req.min_samples.unwrap_or(100);
    let min_successes = req.min_successes.unwrap_or(30);
    if min_samples > MAX_MIN_SAMPLES || min_successes > MAX_MIN_SAMPLES {
        return Err(invalid(format!(
            "minSamples and minSuccesses must be at most {MAX_MIN_SAMPLES}"
        )));
    }
    let min_days = req.min_days.unwrap_or(1.0);
    if !(min_days.is_finite() && (0.0..=MAX_DAYS).contains(&min_days)) {
        return Err(invalid(format!(
            "minDays must be between 0 and {MAX_DAYS}; got {min_days}"
        )));
    }
    if let Some(max_days) = req.max_days
        && !(max_days.is_finite() && max_days > 0.0 && max_days <= MAX_DAYS && max_days >= min_days)
    {
        return Err(invalid(format!(
            "maxDays must be above 0, at most {MAX_DAYS} and at least minDays ({min_days}); got {max_days}"
        )));
    }
    let config = AbConfig {
        metric,
        guardrails,
        min_successes,
        min_days,
        max_days: req.max_days,
        auto_deploy: req.auto_deploy.unwrap_or(false),
        alpha: 0.05,
        sequential_tuning: DEFAULT_TUNING,
    };
    Ok(NewAbTest {
        prompt_id: prompt_id.to_owned(),
        version_a: req.version_a,
        version_b: req.version_b,
        traffic_split: split,
        min_samples: min_samples as i64,
        config: serde_json::to_value(&config).expect("the config serializes"),
        created_by: Some(actor.to_owned()),
    })
}

fn config_of(test: &AbTest) -> Result<AbConfig, PromptError> {
    serde_json::from_value(test.config.clone()).map_err(|e| {
        PromptError::Store(StoreError::decode(format!(
            "A/B test {} config: {e}",
            test.id
        )))
    })
}

fn arm_data(totals: &ArmTotals) -> ArmData {
    let mean = |(n, sum, sum_squares): (u64, f64, f64)| Sample::Mean {
        n,
        sum,
        sum_squares,
    };
    ArmData {
        exposures: totals.exposures,
        successes: totals.successes,
        tokens: mean(totals.tokens),
        latency: mean(totals.latency),
    }
}

/// The actor of a test's own deploys in the history.
pub fn ab_test_actor(id: Uuid) -> String {
    format!("ab-test:{id}")
}

impl PromptRegistry {
    /// Starts a test of `prompt_id`. The running-test cache of this instance is refreshed at
    /// once; other instances see it within the cache's TTL.
    pub async fn start_ab_test(
        &self,
        prompt_id: &str,
        req: StartAbTest,
        default_split: f64,
        actor: &str,
    ) -> Result<AbTest, PromptError> {
        let new = validate(prompt_id, req, default_split, actor)?;
        let result = self.store().create_ab_test(new).await;
        self.invalidate(prompt_id);
        Ok(result?)
    }

    /// The running test of a prompt with fresh results (saved on the test); a final decision is
    /// carried out when the test has `autoDeploy`.
    pub async fn ab_test_results(&self, prompt_id: &str) -> Result<AbTest, PromptError> {
        let test = self.running_or_not_found(prompt_id).await?;
        self.refresh(test).await
    }

    /// A test by id: fresh results while it runs, its final results once it ended.
    pub async fn ab_test(&self, id: Uuid) -> Result<AbTest, PromptError> {
        let test = self.store().get_ab_test(id).await?;
        if test.status == STATUS_RUNNING {
            self.refresh(test).await
        } else {
            Ok(test)
        }
    }

    /// Every test of a prompt, newest first.
    pub async fn ab_tests(&self, prompt_id: &str) -> Result<Vec<AbTest>, PromptError> {
        Ok(self.store().list_ab_tests(prompt_id).await?)
    }

    /// Stops the running test of a prompt by hand, keeping its final results; A stays unless a
    /// person deploys B.
    pub async fn stop_ab_test(&self, prompt_id: &str, actor: &str) -> Result<AbTest, PromptError> {
        let test = self.running_or_not_found(prompt_id).await?;
        let note = format!("stopped by {actor}");
        self.end(test, STATUS_STOPPED, None, &note, None).await
    }

    /// Stops the running test of a prompt whose active version changed by `what`, if one runs
    /// (called after a deploy or rollback that the test did not make).
    pub(super) async fn stop_ab_test_after_change(&self, prompt_id: &str, what: &str) {
        let test = match self.store().running_ab_test(prompt_id).await {
            Ok(Some(test)) => test,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(prompt = %crate::log_text::Untrusted(prompt_id), %error, "could not check for a running A/B test");
                return;
            }
        };
        let note = format!("stopped because {what} changed the active version while it ran");
        if let Err(error) = self.end(test, STATUS_STOPPED, None, &note, None).await {
            tracing::warn!(prompt = %crate::log_text::Untrusted(prompt_id), %error, "could not stop the A/B test");
        }
    }

    async fn running_or_not_found(&self, prompt_id: &str) -> Result<AbTest, PromptError> {
        self.store()
            .running_ab_test(prompt_id)
            .await?
            .ok_or_else(|| StoreError::from(Missing::running_ab_test(prompt_id)).into())
    }

    /// The current results of a test, as stored in `result`.
    async fn readout(&self, test: &AbTest) -> Result<(Decision, AbTestResult), PromptError> {
        let config = config_of(test)?;
        let [a, b] = self.store().ab_test_totals(test.id).await?;
        let days = (Utc::now() - test.started_at).num_milliseconds().max(0) as f64 / 86_400_000.0;
        let readout = analyze(
            &arm_data(&a),
            &arm_data(&b),
            test.traffic_split,
            days,
            &config.settings(test.min_samples),
        );
        Ok((
            readout.decision,
            AbTestResult {
                readout,
                days_running: days,
                ended: None,
            },
        ))
    }

    /// Computes and saves the results; carries out a final decision with `autoDeploy`.
    async fn refresh(&self, test: AbTest) -> Result<AbTest, PromptError> {
        let (decision, result) = self.readout(&test).await?;
        if decision.is_final() && config_of(&test)?.auto_deploy {
            return self.carry_out(test, decision).await;
        }
        let result = result.to_json();
        self.store()
            .save_ab_result(test.id, decision.as_str(), &result)
            .await?;
        let mut test = test;
        test.decision = Some(decision.as_str().to_owned());
        test.result = Some(result);
        Ok(test)
    }

    /// Ends the test `completed` with its decision and, for `ship_b`, deploys B with the test
    /// as the actor, both in one store transaction that only the instance ending the test makes.
    async fn carry_out(&self, test: AbTest, decision: Decision) -> Result<AbTest, PromptError> {
        let note = match decision {
            Decision::ShipB => format!("autoDeploy: deployed version {} (B)", test.version_b),
            _ => format!("autoDeploy: kept version {} (A)", test.version_a),
        };
        let deploy = (decision == Decision::ShipB).then(|| ab_test_actor(test.id));
        self.end(test, STATUS_COMPLETED, Some(decision), &note, deploy)
            .await
    }

    /// Evaluates every running test once, as reading its results would: the results are saved,
    /// and a final decision of a test with `autoDeploy` is carried out. Returns how many tests
    /// this call ended. A test another instance ended meanwhile is skipped (the store lets one
    /// ending win); other failures are logged and the next test is evaluated.
    pub async fn evaluate_running_ab_tests(&self) -> Result<usize, PromptError> {
        let mut ended = 0;
        for test in self.store().running_ab_tests().await? {
            let id = test.id;
            match self.refresh(test).await {
                Ok(test) => ended += usize::from(test.status != STATUS_RUNNING),
                Err(PromptError::Store(StoreError::NotFound(_))) => {
                    tracing::debug!(%id, "A/B test ended elsewhere while being evaluated");
                }
                Err(error) => tracing::warn!(%id, %error, "could not evaluate the A/B test"),
            }
        }
        Ok(ended)
    }

    /// Ends a test with its results at this moment and a note saying why, deploying B as
    /// `deploy_b_as` in the same transaction if given.
    async fn end(
        &self,
        test: AbTest,
        status: &'static str,
        decision: Option<Decision>,
        note: &str,
        deploy_b_as: Option<String>,
    ) -> Result<AbTest, PromptError> {
        let (current, mut result) = self.readout(&test).await?;
        result.ended = Some(note.to_owned());
        let result = result.to_json();
        let decision = decision.unwrap_or(current);
        let ended = self
            .store()
            .end_ab_test(
                test.id,
                AbTestEnd {
                    status,
                    decision: Some(decision.as_str().to_owned()),
                    result,
                    deploy_b_as,
                },
            )
            .await;
        self.invalidate(&test.prompt_id);
        Ok(ended?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(a: i64, b: i64) -> StartAbTest {
        serde_json::from_value(serde_json::json!({ "versionA": a, "versionB": b })).unwrap()
    }

    #[test]
    fn defaults_fill_the_config() {
        let new = validate("planner", req(1, 2), 0.3, "alice").unwrap();
        assert_eq!(new.traffic_split, 0.3);
        assert_eq!(new.min_samples, 100);
        let config: AbConfig = serde_json::from_value(new.config).unwrap();
        assert_eq!(config.metric, "success");
        assert_eq!(config.guardrails.len(), 2);
        assert!(!config.auto_deploy);
        assert_eq!(config.sequential_tuning, 5000.0);
    }

    #[test]
    fn bad_requests_are_refused() {
        let cases = [
            serde_json::json!({ "versionA": 1, "versionB": 1 }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "trafficSplit": 1.5 }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "trafficSplit": 0.0 }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "metric": "vibes" }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "guardrails": { "tokens": -1 } }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "maxDays": 0 }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "minDays": 5, "maxDays": 2 }),
        ];
        for case in cases {
            let req: StartAbTest = serde_json::from_value(case.clone()).unwrap();
            assert!(
                matches!(
                    validate("planner", req, 0.5, "a"),
                    Err(PromptError::Invalid(_))
                ),
                "{case}"
            );
        }
        for unknown in [
            serde_json::json!({ "versionA": 1, "versionB": 2, "colour": "red" }),
            serde_json::json!({ "versionA": 1, "versionB": 2, "guardrails": { "cost": 0.1 } }),
        ] {
            assert!(serde_json::from_value::<StartAbTest>(unknown).is_err());
        }
    }
}
