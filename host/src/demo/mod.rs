//! `flywheel demo`: the whole flywheel on a fresh data directory, in under a minute, against a
//! simulated AutoDev ([`autodev`]) and an in-process model ([`model`]).
//!
//! It starts the real service (the same [`crate::server::start`] as `flywheel serve`, on
//! 127.0.0.1, port chosen by the OS) and drives it only over HTTP with the tokens of each role,
//! as AutoDev and the people using Flywheel would: AutoDev records planner runs and their
//! outcomes; the automatic graders and rules annotate; a reviewer works the annotation queue
//! (open coding, then axial coding into failure modes); a grading job applies every grader; a
//! dataset is snapshotted and exported; the optimizer proposes an improved prompt from the
//! annotated failures (the demo model, as reflection model, proposes the rule the critiques point
//! to) and creates it as version 2, which is evaluated against the active one; an A/B test with `autoDeploy` gets simulated traffic until it decides, and deploys
//! the new version when it says `ship_b`. Each step prints what happened and the web page that
//! shows it; the data stays in the directory, to be browsed with `flywheel serve --data-dir`.
//! Steps are the numbered functions of [`Demo`], in the order [`run`] calls them.

pub mod autodev;
pub mod model;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::client::ApiClient;
use crate::config::{DEFAULT_SQLITE_FILE, DatabaseUrl, Secret, Settings, tokens::parse_token_list};
use crate::llm::EndpointSettings;
use autodev::{AutoDev, Task, Worked};
use model::DemoModel;

/// The demo's tokens; they exist only while the demo runs (`flywheel serve --data-dir` later
/// starts with none, so the pages are open for reading).
const TOKENS: &str = "demo-admin:admin:demo-admin-secret,autodev:agent:demo-agent-secret,reviewer:annotator:demo-reviewer-secret";
/// Tasks AutoDev works before anyone looks at the data.
const FIRST_TASKS: usize = 120;
/// Runs the reviewer annotates from the queue.
const REVIEWED: usize = 60;
/// Tasks of A/B traffic per round; rounds go on until the test decides.
const AB_ROUND: usize = 300;
/// Rounds of A/B traffic at most.
const AB_ROUNDS: usize = 4;
/// Task-model calls the optimizer may make.
const OPTIMIZER_BUDGET: i64 = 400;
/// The dataset the demo snapshots.
pub const DATASET: &str = "planner-demo";
/// Where the pages are once `flywheel serve --data-dir DIR` runs with its default address.
const LATER: &str = "http://127.0.0.1:8080";
/// How long any one wait (grading, an evaluation, an A/B decision) may take.
const WAIT: Duration = Duration::from_secs(45);

/// Runs the demo on `settings.data_dir`, which must be new or empty.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let data_dir = settings.data_dir.clone();
    check_fresh(&settings)?;
    let model = DemoModel::start().await?;
    let mut demo_settings = settings;
    demo_settings.bind = "127.0.0.1:0".parse().expect("a valid address");
    demo_settings.tokens = parse_token_list(TOKENS).map_err(anyhow::Error::msg)?;
    demo_settings.llm.default_endpoint = Some(
        EndpointSettings::new(&model.base_url(), None)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_default_model(model::MODEL),
    );
    demo_settings.openai_base_url = Some(model.base_url());
    // The A/B evaluator is not relied on (the demo reads the results, which carries out the
    // decision), but a short interval shows the same end if nobody were reading.
    demo_settings.ab_evaluate_interval = Duration::from_secs(1);
    println!(
        "Flywheel demo in {}: a simulated AutoDev and a built-in model ({})",
        data_dir.display(),
        model.base_url()
    );
    println!(
        "The pages named below (\"look: …\") show the data once `flywheel serve --data-dir {}` runs.",
        data_dir.display()
    );
    let server = crate::server::start(demo_settings).await?;
    let base = format!("http://{}", server.addr);
    println!("Flywheel serves this run at {base} (until the demo ends)");
    let demo = Demo::new(&base, &model.base_url(), &data_dir)?;
    let result = demo.walk().await;
    server.shutdown().await?;
    drop(model);
    let ids = result?;
    println!();
    println!(
        "Done in {:.1} s. Everything above is stored in {}. To look at it:",
        started.elapsed().as_secs_f64(),
        data_dir.display()
    );
    println!("  flywheel serve --data-dir {}", data_dir.display());
    println!("and open (no token needed to read on 127.0.0.1):");
    for (what, path) in ids.pages() {
        println!("  {what:<26} {LATER}{path}");
    }
    println!(
        "Roll the deploy back with: flywheel rollback planner --data-dir {}",
        data_dir.display()
    );
    Ok(())
}

/// Refuses a data directory that holds anything, and a database other than its SQLite file:
/// the demo writes dozens of versions, runs and tests that must not land in real data.
fn check_fresh(settings: &Settings) -> anyhow::Result<()> {
    let dir = &settings.data_dir;
    let own_file = DatabaseUrl::sqlite_file(&dir.join(DEFAULT_SQLITE_FILE));
    if settings.database_url.expose() != own_file.expose() {
        bail!(
            "flywheel demo writes only to the SQLite file of its own data directory; unset \
             DATABASE_URL (--database-url) and pass --data-dir with a new or empty directory"
        );
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: flywheel demo needs a fresh data directory (a new or \
                     empty one), so it never mixes its simulated data with real data; pass \
                     --data-dir with another directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// The ids the walk made, for the pages to visit afterwards.
#[derive(Default)]
struct Made {
    grading_run: String,
    optimization: String,
    evaluation: String,
    ab_test: String,
}

impl Made {
    fn pages(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Prompts", "/prompts".to_owned()),
            ("Versions of planner", "/prompts/planner".to_owned()),
            ("Annotation queue", "/prompts/planner/annotate".to_owned()),
            ("Failure modes", "/prompts/planner/failure-modes".to_owned()),
            ("Runs", "/runs?prompt=planner".to_owned()),
            ("Grading run", format!("/grading-runs/{}", self.grading_run)),
            (
                "Optimization",
                format!("/optimizations/{}", self.optimization),
            ),
            ("Evaluation", format!("/evaluations/{}", self.evaluation)),
            ("A/B test", format!("/ab-tests/{}", self.ab_test)),
        ]
    }
}

/// The service as each role reaches it.
struct Demo {
    admin: ApiClient,
    reviewer: ApiClient,
    autodev: AutoDev,
    exports: PathBuf,
}

impl Demo {
    fn new(base: &str, model_url: &str, data_dir: &Path) -> anyhow::Result<Demo> {
        let client = |secret: &str| ApiClient::new(base, Some(Secret::new(secret.to_owned())));
        Ok(Demo {
            admin: client("demo-admin-secret")?,
            reviewer: client("demo-reviewer-secret")?,
            autodev: AutoDev::new(client("demo-agent-secret")?, model_url),
            exports: data_dir.join("exports"),
        })
    }

    async fn walk(&self) -> anyhow::Result<Made> {
        let mut made = Made::default();
        let worked = self.step1_autodev_works().await?;
        self.step2_automatic_grading(&worked).await?;
        self.step3_review().await?;
        made.grading_run = self.step4_grading_job().await?;
        self.step5_dataset().await?;
        self.step6_export().await?;
        made.optimization = self.step7_optimize().await?;
        made.evaluation = self.step8_evaluate().await?;
        made.ab_test = self.step9_ab_test().await?;
        Ok(made)
    }

    fn header(&self, n: usize, what: &str) {
        println!();
        println!("[{n}/9] {what}");
    }

    fn look(&self, path: &str) {
        println!("      look: {LATER}{path}");
    }

    async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.admin
            .call_with_query(Method::GET, segments, query, None)
            .await
    }

    async fn step1_autodev_works(&self) -> anyhow::Result<Vec<Worked>> {
        self.header(
            1,
            "AutoDev works planner tasks: resolve → render → model → record the run → report the outcome",
        );
        let mut worked = Vec::with_capacity(FIRST_TASKS);
        for n in 0..FIRST_TASKS {
            worked.push(self.autodev.work(&Task::new("task", n)).await?);
        }
        self.autodev.record(&worked).await?;
        let passed = worked.iter().filter(|w| w.passed).count();
        println!(
            "      {} runs of planner v1 recorded (POST /api/runs), outcomes reported (PATCH /api/runs/outcomes): tests passed on {passed}",
            worked.len()
        );
        self.look("/runs?prompt=planner");
        Ok(worked)
    }

    async fn step2_automatic_grading(&self, worked: &[Worked]) -> anyhow::Result<()> {
        self.header(
            2,
            "Automatic grading: files_match grades each run in the background; rules annotate failures",
        );
        let on_target = worked.iter().filter(|w| w.on_target).count();
        let failed = worked.iter().filter(|w| !w.passed).count();
        let deadline = Instant::now() + WAIT;
        let (passed, rule_bad) = loop {
            let runs = self.runs_page().await?;
            let graded: Vec<bool> = runs
                .iter()
                .filter_map(|r| r["graderResults"]["files_match"]["passed"].as_bool())
                .collect();
            let passed = graded.iter().filter(|p| **p).count();
            let rule_bad = runs
                .iter()
                .filter(|r| r["annotation"]["source"] == "rule")
                .count();
            // Done when every run is graded with its outcome known: the passes are exactly the
            // plans that named the task's files, and each run whose tests failed carries a
            // rule's rating (`wrong_files` when files_match failed, no code otherwise).
            if graded.len() == worked.len() && passed == on_target && rule_bad == failed {
                break (passed, rule_bad);
            }
            if Instant::now() > deadline {
                bail!(
                    "automatic grading did not finish in {WAIT:?}: {} of {} graded, {passed} passed, {rule_bad} rule annotations",
                    graded.len(),
                    worked.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        println!(
            "      files_match passed on {passed} of {} runs; the rules marked the {rule_bad} runs whose tests failed bad ({} of them wrong_files)",
            worked.len(),
            worked.len() - on_target
        );
        self.look("/runs?prompt=planner&graders_passed=false");
        Ok(())
    }

    /// The planner's runs (at most 500, enough for the first phase).
    async fn runs_page(&self) -> anyhow::Result<Vec<Value>> {
        let page = self
            .get(
                &["api", "runs"],
                &[
                    ("promptId", "planner".to_owned()),
                    ("limit", "500".to_owned()),
                ],
            )
            .await?;
        Ok(page["items"].as_array().cloned().unwrap_or_default())
    }

    async fn step3_review(&self) -> anyhow::Result<()> {
        self.header(
            3,
            "A reviewer works the annotation queue: open coding (a critique per run), then axial coding (failure modes)",
        );
        let queue: Value = self
            .reviewer
            .call_with_query(
                Method::GET,
                &["api", "prompts", "planner", "annotation-queue"],
                &[("limit", REVIEWED.to_string())],
                None,
            )
            .await?;
        let items = queue["items"].as_array().cloned().unwrap_or_default();
        // Open coding: read each output and write what is wrong in free words.
        let mut coded = Vec::new();
        for item in &items {
            let id = item["id"].as_str().context("queue item without id")?;
            let planned = model::planned_files(item["output"].as_str().unwrap_or_default());
            let wandered: Vec<&String> = planned
                .iter()
                .filter(|f| model::DISTRACTORS.contains(&f.as_str()))
                .collect();
            let (rating, feedback) = if wandered.is_empty() {
                (
                    "good",
                    "Names exactly the files the task points to, with the test.".to_owned(),
                )
            } else {
                (
                    "bad",
                    format!(
                        "Also plans {}, which the task never mentions; the coder will edit shared files for nothing.",
                        wandered
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                )
            };
            self.annotate(id, json!({ "rating": rating, "outputFeedback": feedback }))
                .await?;
            coded.push((id.to_owned(), rating, feedback));
        }
        let bad = coded.iter().filter(|c| c.1 == "bad").count();
        println!(
            "      open coding: {} runs rated (PUT /api/runs/{{id}}/annotation), {bad} bad with a critique such as:",
            coded.len()
        );
        if let Some((_, _, feedback)) = coded.iter().find(|c| c.1 == "bad") {
            println!("        \"{feedback}\"");
        }
        // Axial coding: the critiques fall into one group, the taxonomy's `wrong_files`.
        for (id, rating, feedback) in coded.iter().filter(|c| c.1 == "bad") {
            self.annotate(
                id,
                json!({ "rating": rating, "outputFeedback": feedback, "failureMode": "wrong_files" }),
            )
            .await?;
        }
        let counts = self
            .get(
                &["api", "prompts", "planner", "failure-modes", "counts"],
                &[],
            )
            .await?;
        println!(
            "      axial coding: the critiques group into wrong_files. Failed runs: {}",
            counts["failedRuns"]
        );
        for code in counts["codes"].as_array().into_iter().flatten() {
            println!(
                "        {:<28} {:>3} ({:.0}%)",
                code["code"].as_str().unwrap_or_default(),
                code["count"].as_i64().unwrap_or(0),
                code["share"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
        println!("        {:<28} {:>3}", "(no code yet)", counts["uncoded"]);
        self.look("/prompts/planner/annotate");
        self.look("/prompts/planner/failure-modes");
        Ok(())
    }

    async fn annotate(&self, run: &str, body: Value) -> anyhow::Result<()> {
        let _: Value = self
            .reviewer
            .call(Method::PUT, &["api", "runs", run, "annotation"], Some(body))
            .await
            .with_context(|| format!("annotating run {run}"))?;
        Ok(())
    }

    async fn step4_grading_job(&self) -> anyhow::Result<String> {
        self.header(
            4,
            "A grading job applies every enabled grader, the model grader plan_completeness too",
        );
        let job: Value = self
            .admin
            .call(
                Method::POST,
                &["api", "grading-runs"],
                Some(json!({ "promptId": "planner" })),
            )
            .await?;
        let id = job["id"]
            .as_str()
            .context("grading run without id")?
            .to_owned();
        let done = self
            .wait_for(&["api", "grading-runs", &id], "grading run", |j| {
                !matches!(j["status"].as_str(), Some("queued" | "running"))
            })
            .await?;
        println!(
            "      grading run {}: {} ({} rows: {} passed, {} failed, {} errored; {} model tokens)",
            id,
            done["status"].as_str().unwrap_or_default(),
            done["total"],
            done["passed"],
            done["failed"],
            done["errored"],
            done["tokensUsed"]
        );
        self.look(&format!("/grading-runs/{id}"));
        Ok(id)
    }

    async fn step5_dataset(&self) -> anyhow::Result<()> {
        self.header(
            5,
            "Snapshot the runs into a dataset (train/validation split)",
        );
        let made: Value = self
            .reviewer
            .call(
                Method::POST,
                &["api", "datasets"],
                Some(json!({ "promptId": "planner", "name": DATASET, "filter": {} })),
            )
            .await?;
        println!(
            "      dataset {DATASET} version {}: {}",
            made["version"],
            summary_of_dataset(&made)
        );
        println!("      (GET /api/datasets/{DATASET}; flywheel datasets show {DATASET})");
        Ok(())
    }

    async fn step6_export(&self) -> anyhow::Result<()> {
        self.header(
            6,
            "Export the dataset: OpenAI eval JSONL, its eval definition, a promptfoo config",
        );
        std::fs::create_dir_all(&self.exports)
            .with_context(|| format!("creating {}", self.exports.display()))?;
        let path = |name: &str| self.exports.join(name);
        let jsonl = path(&format!("{DATASET}.jsonl"));
        let promptfoo = path(&format!("{DATASET}.promptfoo.json"));
        let eval = path(&format!("{DATASET}.eval.json"));
        for (format, file) in [("openai-jsonl", &jsonl), ("promptfoo", &promptfoo)] {
            let mut out = std::fs::File::create(file)
                .with_context(|| format!("creating {}", file.display()))?;
            self.reviewer
                .download(
                    Method::POST,
                    &["api", "prompts", "planner", "export"],
                    Some(json!({ "format": format, "dataset": DATASET })),
                    &mut out,
                )
                .await?;
        }
        let definition: Value = self
            .reviewer
            .call(
                Method::POST,
                &["api", "prompts", "planner", "export", "openai-eval"],
                Some(json!({ "format": "openai-jsonl", "dataset": DATASET })),
            )
            .await?;
        std::fs::write(&eval, serde_json::to_string_pretty(&definition)?)
            .with_context(|| format!("writing {}", eval.display()))?;
        for file in [&jsonl, &eval, &promptfoo] {
            println!("      wrote {}", file.display());
        }
        Ok(())
    }

    async fn step7_optimize(&self) -> anyhow::Result<String> {
        self.header(
            7,
            "Optimize: the optimizer proposes revised prompts from the annotated failures and keeps one only if it wins on validation rows",
        );
        let started: Value = self
            .admin
            .call(
                Method::POST,
                &["api", "prompts", "planner", "optimize"],
                Some(json!({ "dataset": DATASET, "budget": OPTIMIZER_BUDGET })),
            )
            .await?;
        let id = started["id"]
            .as_str()
            .context("optimization without id")?
            .to_owned();
        println!("      optimization {id} queued (POST /api/prompts/planner/optimize)");
        let done = self
            .wait_for(&["api", "optimizations", &id], "optimization", |o| {
                !matches!(o["status"].as_str(), Some("queued" | "running"))
            })
            .await?;
        let report = &done["report"];
        println!(
            "      {}: {} ({} rounds)",
            done["status"].as_str().unwrap_or_default(),
            report["stopDetail"].as_str().unwrap_or_default(),
            report["rounds"]
        );
        println!(
            "      {}",
            report["outcome"]["reason"].as_str().unwrap_or_default()
        );
        if let Some(validation) = report["validation"].as_object() {
            println!(
                "      validation ({} rows): score {:.3} → {:.3}",
                validation["rows"],
                validation["scoreBefore"].as_f64().unwrap_or(0.0),
                validation["scoreAfter"].as_f64().unwrap_or(0.0)
            );
        }
        let spent = &report["spent"];
        println!(
            "      spent {} task-model calls ({} validating) and {} reflection calls of a budget of {OPTIMIZER_BUDGET}",
            spent["taskCalls"], spent["validationCalls"], spent["reflectionCalls"]
        );
        self.look(&format!("/optimizations/{id}"));
        if done["createdVersion"].as_i64() != Some(2) {
            bail!(
                "the optimizer created no version 2 (status {}): {}; the demo stops before the evaluation",
                done["status"],
                report["outcome"]["reason"]
            );
        }
        let v2 = self
            .get(&["api", "prompts", "planner", "versions", "2"], &[])
            .await?;
        println!("      version 2 created, inactive; what it adds to v1:");
        let v1 = self
            .get(&["api", "prompts", "planner", "versions", "1"], &[])
            .await?;
        let before: Vec<&str> = v1["content"].as_str().unwrap_or_default().lines().collect();
        for line in v2["content"].as_str().unwrap_or_default().lines() {
            if !before.contains(&line) {
                println!("        + {}", line.trim());
            }
        }
        self.look("/prompts/planner");
        Ok(id)
    }

    async fn step8_evaluate(&self) -> anyhow::Result<String> {
        self.header(
            8,
            "Evaluate v2 against the active v1 on the dataset's validation rows, offline",
        );
        let started: Value = self
            .admin
            .call(
                Method::POST,
                &["api", "evals"],
                Some(json!({ "promptId": "planner", "versions": [1, 2],
                             "dataset": DATASET, "split": "validation" })),
            )
            .await?;
        let id = started["id"]
            .as_str()
            .context("evaluation without id")?
            .to_owned();
        let done = self
            .wait_for(&["api", "evals", &id], "evaluation", |e| {
                !matches!(e["status"].as_str(), Some("queued" | "running"))
            })
            .await?;
        if done["status"] != "completed" {
            bail!("the evaluation ended {}: {}", done["status"], done["error"]);
        }
        let mut files_match = [0.0, 0.0];
        for (slot, version) in done["results"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            for grader in version["graders"].as_array().into_iter().flatten() {
                let rate = grader["passRate"].as_f64().unwrap_or(0.0);
                if grader["grader"] == "files_match" && slot < 2 {
                    files_match[slot] = rate;
                }
                println!(
                    "      v{} {:<20} pass rate {:>5.1}%  mean {:.2}",
                    version["version"],
                    grader["grader"].as_str().unwrap_or_default(),
                    rate * 100.0,
                    grader["mean"].as_f64().unwrap_or(0.0)
                );
            }
        }
        for pair in done["results"]["pairs"].as_array().into_iter().flatten() {
            println!(
                "      v{} → v{} {}: mean difference {:+.2} over {} rows; {} rows fail → pass, {} pass → fail",
                pair["a"],
                pair["b"],
                pair["grader"].as_str().unwrap_or_default(),
                pair["meanDifference"].as_f64().unwrap_or(0.0),
                pair["pairs"],
                pair["failToPass"],
                pair["passToFail"]
            );
        }
        self.look(&format!("/evaluations/{id}"));
        if files_match[1] <= files_match[0] {
            bail!(
                "v2 did not beat v1 offline (files_match {:.2} vs {:.2}); the demo stops before the A/B test",
                files_match[1],
                files_match[0]
            );
        }
        println!("      v2 is better offline: on to an A/B test with real (simulated) traffic");
        Ok(id)
    }

    async fn step9_ab_test(&self) -> anyhow::Result<String> {
        self.header(
            9,
            "A/B test v1 against v2 with autoDeploy; AutoDev's traffic decides",
        );
        let test: Value = self
            .admin
            .call(
                Method::POST,
                &["api", "prompts", "planner", "ab-test"],
                Some(json!({ "versionA": 1, "versionB": 2, "minSamples": 100,
                             "minSuccesses": 30, "minDays": 0, "autoDeploy": true })),
            )
            .await?;
        let id = test["id"]
            .as_str()
            .context("A/B test without id")?
            .to_owned();
        println!("      test {id} started: half the tasks get v2, by a hash of the task id");
        let mut sent = 0;
        let mut last = Value::Null;
        for round in 0..AB_ROUNDS {
            let mut worked = Vec::with_capacity(AB_ROUND);
            for n in 0..AB_ROUND {
                worked.push(
                    self.autodev
                        .work(&Task::new(&format!("ab{round}"), n + round * AB_ROUND))
                        .await?,
                );
            }
            self.autodev.record(&worked).await?;
            sent += worked.len();
            let per_arm = |v: i64| {
                let of: Vec<&Worked> = worked.iter().filter(|w| w.version == v).collect();
                let passed = of.iter().filter(|w| w.passed).count();
                format!("{passed}/{}", of.len())
            };
            println!(
                "      {sent} tasks sent so far; this round tests passed A (v1) {}, B (v2) {}",
                per_arm(1),
                per_arm(2)
            );
            // Exposures are recorded in the background; reading the results (as the A/B page
            // does) carries out a reached decision, since the test has autoDeploy.
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                last = self.get(&["api", "ab-tests", &id], &[]).await?;
                if last["status"] != "running" {
                    break;
                }
                let _ = self
                    .get(&["api", "prompts", "planner", "ab-test", "results"], &[])
                    .await;
                if Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            if last["status"] != "running" {
                break;
            }
        }
        let result = &last["result"];
        println!(
            "      test {}: decision {} (A {} of {} succeeded, B {} of {}; effect {:+.1} points)",
            last["status"].as_str().unwrap_or_default(),
            last["decision"].as_str().unwrap_or("none"),
            result["a"]["successes"],
            result["a"]["n"],
            result["b"]["successes"],
            result["b"]["n"],
            result["primary"]["absolute"]["estimate"]
                .as_f64()
                .unwrap_or(0.0)
                * 100.0
        );
        let versions = self
            .get(&["api", "prompts", "planner", "versions"], &[])
            .await?;
        let active: Vec<i64> = versions
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["isActive"] == true)
            .filter_map(|v| v["version"].as_i64())
            .collect();
        if last["decision"] != "ship_b" {
            bail!(
                "the A/B test did not ship v2 after {sent} tasks (status {}, decision {}); active: {active:?}",
                last["status"],
                last["decision"]
            );
        }
        println!(
            "      v2 deployed by the test (actor ab-test:{id}); active version now {active:?}"
        );
        self.look(&format!("/ab-tests/{id}"));
        Ok(id)
    }

    /// Reads `segments` until `done` holds, at most [`WAIT`].
    async fn wait_for(
        &self,
        segments: &[&str],
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self.get(segments, &[]).await?;
            if done(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("the {what} did not finish in {WAIT:?}: {value}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// "N rows (T train, V validation)" from a dataset answer.
fn summary_of_dataset(made: &Value) -> String {
    format!(
        "{} rows ({} train, {} validation)",
        made["rowCount"], made["trainCount"], made["validationCount"]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reflection_s_rule_goes_into_the_seeded_planner_s_first_step_and_keeps_its_variables() {
        let seeds = crate::prompts::seeds::default_seeds();
        let planner = seeds
            .iter()
            .find(|s| s.prompt.id == "planner")
            .expect("the planner is seeded");
        assert!(planner.content.contains(model::SECOND_STEP));
        let improved = model::with_careful_rule(&planner.content);
        assert!(improved.contains(model::CAREFUL_INSTRUCTION));
        assert_eq!(
            improved.len(),
            planner.content.len() + model::CAREFUL_INSTRUCTION.len() + 4
        );
        let variables = |t: &str| {
            crate::prompts::template::Template::parse(t)
                .expect("parses")
                .variables()
                .to_vec()
        };
        assert_eq!(variables(&improved), variables(&planner.content));
        assert!(
            model::with_careful_rule("a prompt of someone else")
                .starts_with(model::CAREFUL_INSTRUCTION)
        );
    }
}
