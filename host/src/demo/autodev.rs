//! The simulated AutoDev of `flywheel demo`: it makes planner tasks and works each one as
//! AutoDev does against Flywheel, over HTTP with its `agent` token: resolve the prompt for the
//! task, render it, ask the model, record the run, and later report the task's outcome.
//!
//! Outcomes are simulated: the tests pass when the plan named only the task's files (a plan
//! that wanders sends the coder into files it should not touch), except for one task in ten
//! that fails for reasons of its own. Latency is simulated from the answer's length, because the
//! in-process model answers in microseconds.

use std::collections::HashMap;

use anyhow::Context;
use reqwest::Method;
use serde_json::{Value, json};

use super::model::{self, DISTRACTORS};
use crate::cli::client::ApiClient;
use crate::prompts::template::Template;

/// The work AutoDev plans: title, description naming the files, and those files.
const CATALOG: [(&str, &str, [&str; 2]); 8] = [
    (
        "Retry failed HTTP requests",
        "Add retries with exponential backoff to the HTTP client in `src/http/client.rs`; cover them in `tests/http_client.rs`.",
        ["src/http/client.rs", "tests/http_client.rs"],
    ),
    (
        "Reject empty usernames",
        "Sign-up accepts an empty username. Validate it in `src/accounts/signup.rs` and add a case to `tests/signup.rs`.",
        ["src/accounts/signup.rs", "tests/signup.rs"],
    ),
    (
        "Paginate the orders list",
        "The orders endpoint returns everything at once. Add cursor paging in `src/orders/list.rs`; test pages in `tests/orders_list.rs`.",
        ["src/orders/list.rs", "tests/orders_list.rs"],
    ),
    (
        "Fix the CSV export's quoting",
        "Fields with commas break the CSV export. Quote them in `src/export/csv.rs` and test it in `tests/csv_export.rs`.",
        ["src/export/csv.rs", "tests/csv_export.rs"],
    ),
    (
        "Cache exchange rates",
        "Exchange rates are fetched per request. Cache them for a minute in `src/rates/cache.rs`, tested in `tests/rates_cache.rs`.",
        ["src/rates/cache.rs", "tests/rates_cache.rs"],
    ),
    (
        "Time out slow webhooks",
        "A slow webhook receiver blocks the queue. Add a 10 s timeout in `src/webhooks/deliver.rs`; test it in `tests/webhooks.rs`.",
        ["src/webhooks/deliver.rs", "tests/webhooks.rs"],
    ),
    (
        "Mask card numbers in logs",
        "Card numbers reach the logs. Mask them in `src/logging/mask.rs` and test it in `tests/mask.rs`.",
        ["src/logging/mask.rs", "tests/mask.rs"],
    ),
    (
        "Sort search results by relevance",
        "Search results come back unsorted. Sort them by score in `src/search/rank.rs`; test it in `tests/search_rank.rs`.",
        ["src/search/rank.rs", "tests/search_rank.rs"],
    ),
];

/// One task of the simulation.
#[derive(Debug, Clone)]
pub struct Task {
    /// AutoDev's task id.
    pub id: String,
    /// The template variables.
    pub variables: HashMap<String, String>,
    /// The files the merged change touched.
    pub expected_files: Vec<String>,
}

impl Task {
    /// Task number `n` of a phase (`prefix`), drawn from the catalog.
    pub fn new(prefix: &str, n: usize) -> Task {
        let (title, description, files) = CATALOG[n % CATALOG.len()];
        let mut repository: Vec<&str> = CATALOG.iter().flat_map(|(_, _, f)| f.to_vec()).collect();
        repository.extend(DISTRACTORS);
        repository.sort_unstable();
        let listing: Vec<String> = repository.iter().map(|f| format!("`{f}`")).collect();
        let variables = HashMap::from([
            ("task_title".to_owned(), format!("{title} (#{n})")),
            ("task_description".to_owned(), description.to_owned()),
            ("repository_files".to_owned(), listing.join("\n")),
        ]);
        Task {
            id: format!("{prefix}-{n:04}"),
            variables,
            expected_files: files.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
}

/// What AutoDev did with one task: the run to record and the outcome to report.
pub struct Worked {
    /// The body of one run of `POST /api/runs`.
    pub run: Value,
    /// One outcome of `PATCH /api/runs/outcomes`.
    pub outcome: Value,
    /// The version resolve served.
    pub version: i64,
    /// Whether the plan named exactly the task's files.
    pub on_target: bool,
    /// Whether the tests passed.
    pub passed: bool,
}

/// AutoDev's side: an `agent` client of Flywheel and a client of the model.
pub struct AutoDev {
    /// Flywheel, with the agent token.
    pub flywheel: ApiClient,
    model_url: String,
    http: reqwest::Client,
}

impl AutoDev {
    /// AutoDev calling Flywheel through `flywheel` and the model at `model_base_url`.
    pub fn new(flywheel: ApiClient, model_base_url: &str) -> AutoDev {
        AutoDev {
            flywheel,
            model_url: format!("{model_base_url}/chat/completions"),
            http: reqwest::Client::new(),
        }
    }

    /// Works one planner task: resolve, render, ask the model, and say what to record.
    pub async fn work(&self, task: &Task) -> anyhow::Result<Worked> {
        let resolved: Value = self
            .flywheel
            .call_with_query(
                Method::GET,
                &["api", "prompts", "planner", "resolve"],
                &[("task_id", task.id.clone())],
                None,
            )
            .await?;
        let version = resolved["version"]
            .as_i64()
            .context("resolve: no version")?;
        let content = resolved["content"]
            .as_str()
            .context("resolve: no content")?;
        let rendered = Template::parse(content)
            .context("the served template does not parse")?
            .render(&task.variables)
            .context("rendering the served template")?;
        let answer: Value = self
            .http
            .post(&self.model_url)
            .json(&json!({ "model": model::MODEL,
                           "messages": [{ "role": "user", "content": rendered }] }))
            .send()
            .await
            .context("calling the model")?
            .error_for_status()
            .context("the model answered an error")?
            .json()
            .await
            .context("reading the model's answer")?;
        let output = answer["choices"][0]["message"]["content"]
            .as_str()
            .context("the model's answer has no content")?
            .to_owned();
        let tokens_in = answer["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
        let tokens_out = answer["usage"]["completion_tokens"].as_u64().unwrap_or(0);
        let planned = model::planned_files(&output);
        let on_target = planned == task.expected_files;
        let flaky = task.id.bytes().map(u64::from).sum::<u64>() % 10 == 0;
        let passed = on_target && !flaky;
        let run = json!({
            "promptId": "planner",
            "version": version,
            "taskId": task.id,
            "input": task.variables,
            "output": output,
            "model": model::MODEL,
            "tokensIn": tokens_in,
            "tokensOut": tokens_out,
            "latencyMs": 400 + tokens_out * 6,
        });
        let outcome = json!({
            "taskId": task.id,
            "testsPassed": passed,
            "prMerged": passed,
            "expectedFiles": task.expected_files,
        });
        Ok(Worked {
            run,
            outcome,
            version,
            on_target,
            passed,
        })
    }

    /// Records runs (`POST /api/runs`) and then reports their outcomes
    /// (`PATCH /api/runs/outcomes`), in batches of up to 100 as AutoDev's uploader does.
    pub async fn record(&self, worked: &[Worked]) -> anyhow::Result<()> {
        for chunk in worked.chunks(100) {
            let runs: Vec<&Value> = chunk.iter().map(|w| &w.run).collect();
            let _: Value = self
                .flywheel
                .call(
                    Method::POST,
                    &["api", "runs"],
                    Some(json!({ "runs": runs })),
                )
                .await
                .context("recording runs")?;
            let outcomes: Vec<&Value> = chunk.iter().map(|w| &w.outcome).collect();
            let _: Value = self
                .flywheel
                .call(
                    Method::PATCH,
                    &["api", "runs", "outcomes"],
                    Some(json!({ "outcomes": outcomes })),
                )
                .await
                .context("reporting outcomes")?;
        }
        Ok(())
    }
}
