//! `flywheel eval <prompt> --versions 3,4 --dataset NAME`: evaluate versions of a prompt on a
//! dataset, with a progress bar, then a comparison table (`--json`: the API's answer).
//! `--show ID` prints an evaluation, `--cancel ID` cancels one, `--detach` queues and returns;
//! `flywheel eval list [--prompt P] [--status S]` lists them, newest first, a page at a time.
//! `--temperature`, `--top-p`, `--seed` and `--max-tokens` set the task model's sampling.
//!
//! With `--server`, the running service queues and evaluates it. In database mode it is queued
//! in the database and evaluated in this process meanwhile (its worker claims queued jobs like a
//! server would), so an evaluation also finishes with no server running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use reqwest::Method;
use uuid::Uuid;

use super::client::ApiClient;
use super::target::{TargetArgs, print_json};
use crate::api::evals::EvaluationsPage;
use crate::config::Settings;
use crate::config::args::{GraderArgs, ModelArgs, Overlay};
use crate::evals::cache::Sampling;
use crate::evals::request::{EvalRequest, queue_evaluation};
use crate::evals::results::Bounds;
use crate::evals::view::{EvaluationSummary, EvaluationView, load};
use crate::grading::jobs::{JobWorker, WorkerOptions};
use crate::runs::cursor;
use crate::store::{JobListFilter, JobStatus, Split, Store};

/// `flywheel eval`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    /// `list` lists evaluations instead of starting one.
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Grader components and limits (database mode).
    #[command(flatten)]
    pub graders: GraderArgs,
    /// The model endpoint (database mode).
    #[command(flatten)]
    pub model_endpoint: ModelArgs,
    /// Prompt id, such as planner.
    #[arg(required_unless_present_any = ["show", "cancel"])]
    pub prompt: Option<String>,
    /// The versions to compare, comma-separated (3,4).
    #[arg(long, value_delimiter = ',', required_unless_present_any = ["show", "cancel"])]
    pub versions: Vec<i64>,
    /// The dataset's name.
    #[arg(long, required_unless_present_any = ["show", "cancel"])]
    pub dataset: Option<String>,
    /// The dataset version [default: the latest].
    #[arg(long)]
    pub dataset_version: Option<i64>,
    /// Only rows of this split (train or validation).
    #[arg(long, value_parser = parse_split)]
    pub split: Option<Split>,
    /// The task model [default: the endpoint's default].
    #[arg(long)]
    pub model: Option<String>,
    /// Answers sampled per row and version.
    #[arg(long)]
    pub repeat: Option<i64>,
    /// Model tokens the evaluation may spend.
    #[arg(long)]
    pub token_budget: Option<i64>,
    /// Task-model calls the evaluation may make.
    #[arg(long)]
    pub call_budget: Option<i64>,
    /// The task model's sampling temperature, 0 to 2 [default: the model's].
    #[arg(long)]
    pub temperature: Option<f64>,
    /// The task model's nucleus sampling, above 0 and at most 1 [default: the model's].
    #[arg(long)]
    pub top_p: Option<f64>,
    /// A seed for the task model's sampling.
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// The most tokens an answer may use, 1 to 1,000,000 [default: the model's].
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Queue it and print it without waiting.
    #[arg(long)]
    pub detach: bool,
    /// Show this evaluation instead of starting one.
    #[arg(long, conflicts_with = "cancel")]
    pub show: Option<Uuid>,
    /// Cancel this evaluation instead of starting one.
    #[arg(long)]
    pub cancel: Option<Uuid>,
}

/// `flywheel eval` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// List evaluations, newest first (`--json`: the API's page, with its `nextCursor`).
    #[command(after_help = super::AFTER_HELP)]
    List {
        /// Only this prompt's evaluations.
        #[arg(long)]
        prompt: Option<String>,
        /// Only evaluations in this status (queued, running, completed, failed, cancelled,
        /// budget_exhausted).
        #[arg(long, value_parser = parse_status)]
        status: Option<JobStatus>,
        /// How many, 1 to 500.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// The `nextCursor` printed with the page before.
        #[arg(long)]
        cursor: Option<String>,
    },
}

fn parse_status(text: &str) -> Result<JobStatus, String> {
    JobStatus::parse(text).ok_or_else(|| {
        format!(
            "{text:?} is not a status (queued, running, completed, failed, cancelled, \
             budget_exhausted)"
        )
    })
}

fn parse_split(text: &str) -> Result<Split, String> {
    Split::parse(text).ok_or_else(|| format!("{text:?} is not a split (train or validation)"))
}

impl EvalArgs {
    /// The setting groups this command reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        let mut groups = self.target.groups();
        groups.push(&self.graders);
        groups.push(&self.model_endpoint);
        groups
    }
}

/// Where the command acts.
enum Evals {
    Database {
        store: Arc<dyn Store>,
        settings: Box<Settings>,
        actor: String,
    },
    Server(ApiClient),
}

impl Evals {
    async fn get(&self, id: Uuid) -> anyhow::Result<EvaluationView> {
        match self {
            Evals::Database { store, .. } => Ok(load(store.as_ref(), id).await?),
            Evals::Server(client) => {
                let id = id.to_string();
                client.call(Method::GET, &["api", "evals", &id], None).await
            }
        }
    }
}

/// Runs `flywheel eval …`.
pub async fn run(args: EvalArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let evals = if let Some(server) = &args.target.server {
        Evals::Server(ApiClient::new(server, args.target.token.clone())?)
    } else {
        let store = crate::server::open_database(&settings).await?;
        let actor = args.target.actor.clone().unwrap_or_else(|| {
            format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            )
        });
        Evals::Database {
            store,
            settings: Box::new(settings),
            actor,
        }
    };
    if let Some(EvalCommand::List {
        prompt,
        status,
        limit,
        cursor,
    }) = args.command
    {
        let page = list(&evals, prompt, status, limit, cursor).await?;
        if json {
            return print_json(&page);
        }
        print!("{}", render_list(&page));
        return Ok(());
    }
    if let Some(id) = args.show {
        return show(&evals.get(id).await?, json);
    }
    if let Some(id) = args.cancel {
        let evaluation = match &evals {
            Evals::Database { store, .. } => {
                store.get_evaluation(id).await?;
                store.cancel_grading_job(id).await?;
                load(store.as_ref(), id).await?
            }
            Evals::Server(client) => {
                let id = id.to_string();
                client
                    .call(Method::POST, &["api", "evals", &id, "cancel"], None)
                    .await?
            }
        };
        return show(&evaluation, json);
    }
    let request = EvalRequest {
        prompt_id: args.prompt.unwrap_or_default(),
        versions: args.versions,
        dataset: args.dataset.unwrap_or_default(),
        dataset_version: args.dataset_version,
        split: args.split,
        model: args.model,
        repeat: args.repeat,
        token_budget: args.token_budget,
        call_budget: args.call_budget,
        sampling: Some(Sampling {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
            max_completion_tokens: args.max_tokens,
        })
        .filter(|s| !s.is_default()),
    };
    let evaluation = start(&evals, request).await?;
    if args.detach {
        return show(&evaluation, json);
    }
    let evaluation = follow(&evals, evaluation.id).await?;
    show(&evaluation, json)
}

async fn start(evals: &Evals, request: EvalRequest) -> anyhow::Result<EvaluationView> {
    match evals {
        Evals::Database {
            store,
            settings,
            actor,
        } => {
            let registry = super::graders::load_registry(settings).await?;
            let configured = registry
                .runtime()
                .llm_client()
                .is_some_and(|client| client.is_configured(None));
            let queued = queue_evaluation(store.as_ref(), &registry, configured, request, actor)
                .await
                .context("the evaluation was not queued")?;
            Ok(load(store.as_ref(), queued.job.id).await?)
        }
        Evals::Server(client) => {
            let body = serde_json::json!({
                "promptId": request.prompt_id,
                "versions": request.versions,
                "dataset": request.dataset,
                "datasetVersion": request.dataset_version,
                "split": request.split,
                "model": request.model,
                "repeat": request.repeat,
                "tokenBudget": request.token_budget,
                "callBudget": request.call_budget,
                "sampling": request.sampling,
            });
            client
                .call(Method::POST, &["api", "evals"], Some(body))
                .await
        }
    }
}

/// One page of evaluations, from the database or the server.
async fn list(
    evals: &Evals,
    prompt: Option<String>,
    status: Option<JobStatus>,
    limit: u32,
    after: Option<String>,
) -> anyhow::Result<EvaluationsPage> {
    match evals {
        Evals::Database { store, .. } => {
            let before = after
                .as_deref()
                .map(|c| {
                    cursor::decode(c).with_context(|| {
                        format!("{c:?} is not a cursor: pass the nextCursor of the page before")
                    })
                })
                .transpose()?;
            let filter = JobListFilter {
                prompt_id: prompt,
                status,
                before,
                kind: None,
            };
            let mut items = store.list_evaluations(&filter, limit + 1).await?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_cursor = if more {
                items.last().map(|e| cursor::encode(e.job.id))
            } else {
                None
            };
            Ok(EvaluationsPage {
                items: items.into_iter().map(EvaluationSummary::from).collect(),
                next_cursor,
            })
        }
        Evals::Server(client) => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(prompt) = prompt {
                query.push(("promptId", prompt));
            }
            if let Some(status) = status {
                query.push(("status", status.as_str().to_owned()));
            }
            if let Some(after) = after {
                query.push(("cursor", after));
            }
            client
                .call_with_query(Method::GET, &["api", "evals"], &query, None)
                .await
        }
    }
}

/// A page of evaluations as a table.
pub fn render_list(page: &EvaluationsPage) -> String {
    if page.items.is_empty() {
        return "no evaluation\n".to_owned();
    }
    let mut out = format!(
        "{:<36}  {:<12} {:<16} {:<9} {:<20} {:>11} {:>7} {:>7}\n",
        "id", "prompt", "status", "versions", "dataset", "answers", "calls", "cached"
    );
    for e in &page.items {
        let versions: Vec<String> = e.versions.iter().map(|v| format!("v{v}")).collect();
        out.push_str(&format!(
            "{:<36}  {:<12} {:<16} {:<9} {:<20} {:>11} {:>7} {:>7}\n",
            e.id,
            e.prompt_id,
            e.status.as_str(),
            versions.join(","),
            format!("{} v{}", e.dataset, e.dataset_version),
            format!("{}/{}", e.processed, e.total),
            e.model_calls,
            e.cached_answers
        ));
    }
    if let Some(next) = &page.next_cursor {
        out.push_str(&format!("more: --cursor {next}\n"));
    }
    out
}

/// Polls the evaluation to its end with a progress bar; in database mode a worker in this
/// process evaluates queued jobs meanwhile.
async fn follow(evals: &Evals, id: Uuid) -> anyhow::Result<EvaluationView> {
    let worker = match evals {
        Evals::Database {
            store, settings, ..
        } => {
            let registry = super::graders::load_registry(settings).await?;
            let options =
                WorkerOptions::for_server(settings.job_lease, settings.llm_run_token_budget);
            let worker = JobWorker::new(store.clone(), registry, options);
            Some(tokio::spawn(worker.run()))
        }
        Evals::Server(_) => None,
    };
    let mut evaluation = evals.get(id).await?;
    let bar = indicatif::ProgressBar::new(u64::try_from(evaluation.total).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} answers {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Ends when the evaluation does: every job reaches a final status (its worker finishes,
    // fails or is cancelled; a dead worker's lease expires and another takes it over).
    while !evaluation.status.is_final() {
        bar.set_position(u64::try_from(evaluation.processed).unwrap_or(0));
        bar.set_message(format!(
            "{} · {} calls, {} cached",
            evaluation.status.as_str(),
            evaluation.model_calls,
            evaluation.cached_answers
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        evaluation = evals.get(id).await?;
    }
    bar.finish_and_clear();
    if let Some(worker) = worker {
        worker.abort();
    }
    Ok(evaluation)
}

fn interval(bounds: Option<Bounds>, scale: f64) -> String {
    bounds.map_or_else(
        || "—".to_owned(),
        |b| format!("[{:.2}, {:.2}]", b.lower * scale, b.upper * scale),
    )
}

fn show(evaluation: &EvaluationView, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(evaluation);
    }
    print!("{}", render(evaluation));
    Ok(())
}

/// The text report: the evaluation, then a table per grader, then the pairs.
pub fn render(e: &EvaluationView) -> String {
    let mut out = String::new();
    let split = e
        .split
        .map(|s| format!(" ({})", s.as_str()))
        .unwrap_or_default();
    out.push_str(&format!("evaluation {}\n", e.id));
    out.push_str(&format!(
        "  prompt {} · dataset {} v{}{split} · {} rows × {} repeat · model {}\n",
        e.prompt_id,
        e.dataset,
        e.dataset_version,
        e.rows,
        e.repeat,
        e.model.as_deref().unwrap_or("(endpoint default)")
    ));
    out.push_str(&format!(
        "  status {} · {}/{} answers · {} model calls · {} from the cache · {} tokens\n",
        e.status.as_str(),
        e.processed,
        e.total,
        e.model_calls,
        e.cached_answers,
        e.tokens_used
    ));
    if !e.sampling.is_default() {
        let mut parts = Vec::new();
        if let Some(t) = e.sampling.temperature {
            parts.push(format!("temperature {t}"));
        }
        if let Some(p) = e.sampling.top_p {
            parts.push(format!("top_p {p}"));
        }
        if let Some(s) = e.sampling.seed {
            parts.push(format!("seed {s}"));
        }
        if let Some(n) = e.sampling.max_completion_tokens {
            parts.push(format!("max tokens {n}"));
        }
        out.push_str(&format!("  sampling {}\n", parts.join(" · ")));
    }
    if let Some(error) = &e.error {
        out.push_str(&format!("  error {error}\n"));
    }
    for grader in &e.graders {
        out.push_str(&format!(
            "\n{grader}\n  {:<8} {:>6} {:>7} {:<18} {:>9} {:<18} {}\n",
            "version", "n", "mean", "95% CI", "pass", "95% CI", "errors"
        ));
        for version in &e.results.versions {
            let Some(figures) = version.graders.iter().find(|g| &g.grader == grader) else {
                continue;
            };
            let mut errors: std::collections::BTreeMap<String, i64> = version.errors.clone();
            for (kind, n) in &figures.errors {
                *errors.entry(kind.clone()).or_default() += n;
            }
            let errors: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push_str(&format!(
                "  v{:<7} {:>6} {:>7} {:<18} {:>9} {:<18} {}\n",
                version.version,
                figures.scored,
                figures.mean.map_or("—".into(), |m| format!("{m:.3}")),
                interval(figures.mean_interval, 1.0),
                figures
                    .pass_rate
                    .map_or("—".into(), |p| format!("{:.1}%", p * 100.0)),
                interval(figures.pass_rate_interval, 100.0),
                errors.join(", ")
            ));
        }
    }
    if !e.results.pairs.is_empty() {
        out.push_str("\npaired differences (b − a, same rows)\n");
        for pair in &e.results.pairs {
            out.push_str(&format!(
                "  v{} − v{} {}: {} on {} pairs {} · fail→pass {} · pass→fail {}\n",
                pair.b,
                pair.a,
                pair.grader,
                pair.mean_difference
                    .map_or("—".into(), |d| format!("{d:+.3}")),
                pair.pairs,
                interval(pair.interval, 1.0),
                pair.fail_to_pass,
                pair.pass_to_fail
            ));
        }
    }
    let latency: Vec<String> = e
        .results
        .versions
        .iter()
        .filter_map(|v| {
            v.latency_ms.as_ref().map(|l| {
                format!(
                    "v{} mean {:.0} ms, p95 {} ms, {} tokens",
                    v.version, l.mean, l.p95, v.tokens
                )
            })
        })
        .collect();
    if !latency.is_empty() {
        out.push_str(&format!("\nanswers: {}\n", latency.join(" · ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::evals::results::compute;
    use crate::store::{JobStatus, StoredOutput, StoredVerdict};

    fn output(version: i64, row: u128, passed: bool) -> StoredOutput {
        let mut verdicts = BTreeMap::new();
        verdicts.insert(
            "exact".to_owned(),
            StoredVerdict {
                score: Some(if passed { 1.0 } else { 0.0 }),
                passed: Some(passed),
                error: None,
            },
        );
        StoredOutput {
            version,
            dataset_row: Uuid::from_u128(row),
            repeat: 0,
            error: None,
            tokens: Some(12),
            latency_ms: Some(40),
            verdicts,
        }
    }

    #[test]
    fn the_table_shows_each_version_and_the_paired_difference() {
        let outputs: Vec<StoredOutput> = (0..4)
            .flat_map(|row| [output(3, row, row == 0), output(4, row, true)])
            .collect();
        let view = EvaluationView {
            id: Uuid::nil(),
            prompt_id: "qa".into(),
            status: JobStatus::Completed,
            versions: vec![3, 4],
            dataset: "golden".into(),
            dataset_version: 2,
            split: Some(Split::Validation),
            model: None,
            repeat: 1,
            sampling: Sampling {
                temperature: Some(0.3),
                seed: Some(7),
                ..Sampling::default()
            },
            rows: 4,
            graders: vec!["exact".into()],
            total: 8,
            processed: 8,
            model_calls: 0,
            cached_answers: 8,
            token_budget: None,
            call_budget: None,
            tokens_used: 96,
            error: None,
            cancel_requested: false,
            created_by: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            results: compute(&[3, 4], &["exact".into()], &outputs),
        };
        let text = render(&view);
        assert!(
            text.contains("dataset golden v2 (validation) · 4 rows"),
            "{text}"
        );
        assert!(text.contains("0 model calls · 8 from the cache"), "{text}");
        assert!(
            text.contains("sampling temperature 0.3 · seed 7\n"),
            "{text}"
        );
        let v3 = text
            .lines()
            .find(|l| l.trim_start().starts_with("v3 "))
            .expect("a v3 row");
        assert!(v3.contains("25.0%") && v3.contains("0.250"), "{v3}");
        let v4 = text
            .lines()
            .find(|l| l.trim_start().starts_with("v4 "))
            .expect("a v4 row");
        assert!(v4.contains("100.0%") && v4.contains("1.000"), "{v4}");
        assert!(
            text.contains("v4 − v3 exact: +0.750 on 4 pairs") && text.contains("fail→pass 3"),
            "{text}"
        );
    }
}
