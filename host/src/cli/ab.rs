//! `flywheel ab start|status|stop`: A/B tests of prompt versions from the command line, in
//! database mode or against a server (`--server`), printing the results as a table.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use super::target::{Target, TargetArgs, print_json};
use crate::config::Settings;
use crate::prompts::StartAbTest;
use crate::store::AbTest;

/// `flywheel ab`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct AbArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which A/B command.
    #[command(subcommand)]
    pub command: AbCommand,
}

/// The A/B commands.
#[derive(Debug, Subcommand)]
pub enum AbCommand {
    /// Start an A/B test of two versions of a prompt (one running test per prompt).
    #[command(after_help = super::AFTER_HELP)]
    Start {
        /// Prompt id.
        id: String,
        /// Version A, the control (usually the active one).
        #[arg(long = "a")]
        version_a: i64,
        /// Version B, the candidate.
        #[arg(long = "b")]
        version_b: i64,
        /// Share of tasks sent to B [default: PROMPT_AB_TEST_TRAFFIC_SPLIT].
        #[arg(long)]
        split: Option<f64>,
        /// Tasks per arm before any decision [default: 100].
        #[arg(long)]
        min_samples: Option<u64>,
        /// Successes per arm before any decision [default: 30].
        #[arg(long)]
        min_successes: Option<u64>,
        /// Days before any decision [default: 1].
        #[arg(long)]
        min_days: Option<f64>,
        /// Days after which an undecided test ends inconclusive, keeping A.
        #[arg(long)]
        max_days: Option<f64>,
        /// Carry out the decision when reached (deploy B, or stop and keep A).
        #[arg(long)]
        auto_deploy: bool,
    },
    /// Show the results of the running test of a prompt, or of a test by id.
    #[command(after_help = super::AFTER_HELP)]
    Status {
        /// Prompt id.
        id: String,
        /// A test id (a past test) instead of the running one.
        #[arg(long)]
        test: Option<uuid::Uuid>,
    },
    /// Stop the running test of a prompt, keeping its final results.
    #[command(after_help = super::AFTER_HELP)]
    Stop {
        /// Prompt id.
        id: String,
    },
}

/// Runs an A/B command.
pub async fn run(args: AbArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let target = Target::open(&args.target, &settings).await?;
    let test = match args.command {
        AbCommand::Start {
            id,
            version_a,
            version_b,
            split,
            min_samples,
            min_successes,
            min_days,
            max_days,
            auto_deploy,
        } => {
            let body = json!({
                "versionA": version_a, "versionB": version_b, "trafficSplit": split,
                "minSamples": min_samples, "minSuccesses": min_successes, "minDays": min_days,
                "maxDays": max_days, "autoDeploy": auto_deploy,
            });
            match &target {
                Target::Database { registry, actor } => {
                    let req: StartAbTest = serde_json::from_value(body)?;
                    registry
                        .start_ab_test(&id, req, settings.ab_test_traffic_split, actor)
                        .await?
                }
                Target::Server(c) => {
                    c.call(
                        Method::POST,
                        &["api", "prompts", &id, "ab-test"],
                        Some(body),
                    )
                    .await?
                }
            }
        }
        AbCommand::Status {
            id,
            test: Some(test),
        } => {
            let found: AbTest = match &target {
                Target::Database { registry, .. } => registry.ab_test(test).await?,
                Target::Server(c) => {
                    c.call(Method::GET, &["api", "ab-tests", &test.to_string()], None)
                        .await?
                }
            };
            anyhow::ensure!(
                found.prompt_id == id,
                "test {test} is a test of prompt {}",
                found.prompt_id
            );
            found
        }
        AbCommand::Status { id, test: None } => match &target {
            Target::Database { registry, .. } => registry.ab_test_results(&id).await?,
            Target::Server(c) => {
                c.call(
                    Method::GET,
                    &["api", "prompts", &id, "ab-test", "results"],
                    None,
                )
                .await?
            }
        },
        AbCommand::Stop { id } => match &target {
            Target::Database { registry, actor } => registry.stop_ab_test(&id, actor).await?,
            Target::Server(c) => {
                c.call(
                    Method::POST,
                    &["api", "prompts", &id, "ab-test", "stop"],
                    None,
                )
                .await?
            }
        },
    };
    if json {
        return print_json(&test);
    }
    print!("{}", render(&test));
    Ok(())
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// A bound, or ∞ where the interval is open (`null`).
fn bound(v: &Value, scale: f64) -> String {
    v.as_f64()
        .map_or_else(|| "∞".to_owned(), |x| format!("{:+.1}", x * scale))
}

/// The test and its results as text: a header, the arms as a table, the effect, guardrails,
/// health and the decision.
pub fn render(test: &AbTest) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "A/B test {} of {}: v{} (A) vs v{} (B), {:.0}% of tasks to B — {}",
        test.id,
        test.prompt_id,
        test.version_a,
        test.version_b,
        test.traffic_split * 100.0,
        test.status
    ));
    let Some(r) = &test.result else {
        line("no results yet".to_owned());
        return out;
    };
    line(format!("running for {:.2} days", num(&r["daysRunning"])));
    line(String::new());
    line(format!(
        "{:<4} {:>7} {:>8} {:>10} {:>8} {:>12} {:>14}",
        "ARM", "VERSION", "TASKS", "SUCCESSES", "RATE", "MEAN TOKENS", "MEAN LATENCY"
    ));
    for (arm, version) in [("a", test.version_a), ("b", test.version_b)] {
        let s = &r[arm];
        line(format!(
            "{:<4} {:>7} {:>8} {:>10} {:>7.1}% {:>12.0} {:>11.0} ms",
            arm.to_uppercase(),
            format!("v{version}"),
            s["n"].as_u64().unwrap_or(0),
            s["successes"].as_u64().unwrap_or(0),
            num(&s["rate"]) * 100.0,
            num(&s["meanTokens"]),
            num(&s["meanLatencyMs"]),
        ));
    }
    line(String::new());
    let p = &r["primary"];
    let abs = &p["absolute"];
    line(format!(
        "success rate B − A: {:+.1} points; always-valid 95% interval [{}, {}] points, p = {:.4}",
        num(&abs["estimate"]) * 100.0,
        bound(&abs["lower"], 100.0),
        bound(&abs["upper"], 100.0),
        num(&abs["pValue"])
    ));
    let rel = &p["relative"];
    line(format!(
        "relative lift: {:+.1}% [{}%, {}%]",
        num(&rel["estimate"]) * 100.0,
        bound(&rel["lower"], 100.0),
        bound(&rel["upper"], 100.0)
    ));
    let fixed = &p["fixedHorizon"];
    line(format!(
        "display only (not valid when peeking): fixed-horizon interval [{}, {}] points; chance B wins {:.1}%",
        bound(&fixed["lower"], 100.0),
        bound(&fixed["upper"], 100.0),
        num(&p["bayesian"]["chanceToWin"]) * 100.0
    ));
    if let Some(guardrails) = r["guardrails"].as_array() {
        for g in guardrails {
            line(format!(
                "guardrail {:<8} margin +{:.0}%: change {:+.1}%, upper bound {}% — {}",
                g["metric"].as_str().unwrap_or("?"),
                num(&g["margin"]) * 100.0,
                num(&g["relative"]["estimate"]) * 100.0,
                bound(&g["nonInferiorityBound"], 100.0),
                g["status"].as_str().unwrap_or("?")
            ));
        }
    }
    line(format!(
        "sample ratio: p = {:.4} — {}",
        num(&r["srm"]["pValue"]),
        r["srm"]["status"].as_str().unwrap_or("?")
    ));
    line(format!(
        "decision: {}",
        r["decision"].as_str().unwrap_or("?")
    ));
    for reason in r["reasons"].as_array().into_iter().flatten() {
        line(format!("  {}", reason.as_str().unwrap_or_default()));
    }
    if let Some(ended) = r["ended"].as_str() {
        line(format!("ended: {ended}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::stats::Sample;
    use crate::experiments::{ArmData, Settings, analyze};

    #[test]
    fn the_table_shows_arms_effect_guardrails_and_decision() {
        let arm = |n: u64, s: u64| ArmData {
            exposures: n,
            successes: s,
            tokens: Sample::Mean {
                n,
                sum: 1000.0 * n as f64,
                sum_squares: 1_010_000.0 * n as f64,
            },
            latency: Sample::Mean {
                n,
                sum: 50.0 * n as f64,
                sum_squares: 2600.0 * n as f64,
            },
        };
        let readout = analyze(
            &arm(2000, 600),
            &arm(2000, 800),
            0.5,
            3.0,
            &Settings::default(),
        );
        let mut result = serde_json::to_value(&readout).unwrap();
        result["daysRunning"] = json!(3.0);
        let test = AbTest {
            id: uuid::Uuid::nil(),
            prompt_id: "planner".into(),
            version_a: 1,
            version_b: 2,
            traffic_split: 0.5,
            seed: "s".into(),
            status: "running".into(),
            decision: Some("ship_b".into()),
            min_samples: 100,
            config: json!({}),
            result: Some(result),
            created_by: None,
            created_at: chrono::Utc::now(),
            started_at: chrono::Utc::now(),
            ended_at: None,
            decided_at: None,
        };
        let text = render(&test);
        assert!(
            text.contains("v1 (A) vs v2 (B), 50% of tasks to B — running"),
            "{text}"
        );
        assert!(
            text.contains("A         v1     2000        600    30.0%"),
            "{text}"
        );
        assert!(
            text.contains("B         v2     2000        800    40.0%"),
            "{text}"
        );
        assert!(text.contains("success rate B − A: +10.0 points"), "{text}");
        assert!(text.contains("guardrail tokens"), "{text}");
        assert!(text.contains("decision: ship_b"), "{text}");
    }
}
