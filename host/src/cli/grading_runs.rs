//! `flywheel grading-runs start|status|cancel`: grading jobs over recorded runs.
//!
//! With `--server`, the running service queues and grades the job. In database mode the job is
//! queued in the database, where any `flywheel serve` on it picks it up; `--wait` then grades
//! it in this process too (it claims queued jobs like a server would), so a job also finishes
//! with no server running. `--wait` and `status --watch` show a progress bar on a terminal.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use reqwest::Method;
use uuid::Uuid;

use super::client::ApiClient;
use super::target::{TargetArgs, print_json};
use crate::config::Settings;
use crate::config::args::{GraderArgs, ModelArgs, Overlay};
use crate::grading::jobs::{JobWorker, WorkerOptions};
use crate::grading::request::{JobRequest, queue_job};
use crate::store::{GradingJob, JobKind, JobListFilter, RunSelection, Store};

/// `flywheel grading-runs`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct GradingRunsArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Grader components and limits (database mode).
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Model endpoints of model graders (database mode).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Which command.
    #[command(subcommand)]
    pub command: GradingRunsCommand,
}

impl GradingRunsArgs {
    /// The setting groups these commands read from their flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        let mut groups = self.target.groups();
        groups.push(&self.graders);
        groups.push(&self.model);
        groups
    }
}

/// The grading-runs commands.
#[derive(Debug, Subcommand)]
pub enum GradingRunsCommand {
    /// Queue a grading run over a prompt's recorded runs.
    #[command(after_help = super::AFTER_HELP)]
    Start {
        /// Prompt id, such as planner.
        prompt: String,
        /// Only runs of this version.
        #[arg(long)]
        version: Option<i64>,
        /// A stored definition to apply (repeat for several); default every enabled one.
        #[arg(long = "grader")]
        graders: Vec<String>,
        /// Only runs rated good or bad.
        #[arg(long)]
        rating: Option<String>,
        /// Only annotated (true) or unannotated (false) runs.
        #[arg(long)]
        annotated: Option<bool>,
        /// Only runs recorded at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// Only runs recorded before this time (RFC 3339).
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// Model tokens the run may spend.
        #[arg(long)]
        token_budget: Option<i64>,
        /// Wait for the end, with a progress bar (in database mode, grade here meanwhile).
        #[arg(long)]
        wait: bool,
    },
    /// Show a grading run's progress and counts.
    #[command(after_help = super::AFTER_HELP)]
    Status {
        /// The grading run's id.
        id: Uuid,
        /// Follow it to its end with a progress bar.
        #[arg(long)]
        watch: bool,
    },
    /// List the newest grading runs, of one prompt or of all.
    #[command(after_help = super::AFTER_HELP)]
    List {
        /// Only this prompt's grading runs.
        #[arg(long)]
        prompt: Option<String>,
        /// How many, 1 to 500.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Only grading runs (`grading`) or only evaluations (`evaluation`) [default: both].
        #[arg(long, value_parser = parse_kind)]
        kind: Option<JobKind>,
    },
    /// Cancel a grading run (a running one stops after its current chunk).
    #[command(after_help = super::AFTER_HELP)]
    Cancel {
        /// The grading run's id.
        id: Uuid,
    },
}

/// Where the commands act.
enum Jobs {
    Database {
        store: Arc<dyn Store>,
        settings: Box<Settings>,
        actor: String,
    },
    Server(ApiClient),
}

impl Jobs {
    async fn open(target: &TargetArgs, settings: Settings) -> anyhow::Result<Jobs> {
        if let Some(server) = &target.server {
            return Ok(Jobs::Server(ApiClient::new(server, target.token.clone())?));
        }
        let store = crate::server::open_database(&settings).await?;
        let actor = target.actor.clone().unwrap_or_else(|| {
            format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            )
        });
        Ok(Jobs::Database {
            store,
            settings: Box::new(settings),
            actor,
        })
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<GradingJob> {
        match self {
            Jobs::Database { store, .. } => Ok(store.get_grading_job(id).await?),
            Jobs::Server(client) => {
                let id = id.to_string();
                client
                    .call(Method::GET, &["api", "grading-runs", &id], None)
                    .await
            }
        }
    }
}

/// Runs `flywheel grading-runs …`.
pub async fn run(args: GradingRunsArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let jobs = Jobs::open(&args.target, settings).await?;
    match args.command {
        GradingRunsCommand::Start {
            prompt,
            version,
            graders,
            rating,
            annotated,
            from,
            to,
            token_budget,
            wait,
        } => {
            let request = JobRequest {
                prompt_id: prompt,
                version,
                graders: (!graders.is_empty()).then_some(graders),
                filter: RunSelection {
                    from,
                    to,
                    rating,
                    annotated,
                    ids: None,
                },
                token_budget,
            };
            let job = start(&jobs, request).await?;
            if !wait {
                return show(&job, json);
            }
            let job = follow(&jobs, job.id, true).await?;
            show(&job, json)
        }
        GradingRunsCommand::Status { id, watch } => {
            let job = if watch {
                follow(&jobs, id, false).await?
            } else {
                jobs.get(id).await?
            };
            show(&job, json)
        }
        GradingRunsCommand::List {
            prompt,
            limit,
            kind,
        } => {
            let list: Vec<GradingJob> = match &jobs {
                Jobs::Database { store, .. } => {
                    let filter = JobListFilter {
                        prompt_id: prompt,
                        kind,
                        ..JobListFilter::default()
                    };
                    store.list_grading_jobs(&filter, limit).await?
                }
                Jobs::Server(client) => {
                    let mut query = vec![("limit", limit.to_string())];
                    if let Some(prompt) = prompt {
                        query.push(("promptId", prompt));
                    }
                    if let Some(kind) = kind {
                        query.push(("kind", kind.as_str().to_owned()));
                    }
                    client
                        .call_with_query(Method::GET, &["api", "grading-runs"], &query, None)
                        .await?
                }
            };
            if json {
                return print_json(&list);
            }
            for job in &list {
                println!(
                    "{}  {:<10} {:<16} {}/{} runs, {} passed, {} failed, {} errored",
                    job.id,
                    job.prompt_id,
                    job.status.as_str(),
                    job.processed,
                    job.total,
                    job.passed,
                    job.failed,
                    job.errored
                );
            }
            Ok(())
        }
        GradingRunsCommand::Cancel { id } => {
            let job = match &jobs {
                Jobs::Database { store, .. } => store.cancel_grading_job(id).await?,
                Jobs::Server(client) => {
                    let id = id.to_string();
                    client
                        .call(Method::POST, &["api", "grading-runs", &id, "cancel"], None)
                        .await?
                }
            };
            show(&job, json)
        }
    }
}

async fn start(jobs: &Jobs, request: JobRequest) -> anyhow::Result<GradingJob> {
    match jobs {
        Jobs::Database {
            store,
            settings,
            actor,
        } => {
            let registry = super::graders::load_registry(settings).await?;
            Ok(queue_job(store.as_ref(), &registry, request, actor)
                .await
                .context("the grading run was not queued")?)
        }
        Jobs::Server(client) => {
            let body = serde_json::json!({
                "promptId": request.prompt_id,
                "version": request.version,
                "graders": request.graders,
                "filter": request.filter,
                "tokenBudget": request.token_budget,
            });
            client
                .call(Method::POST, &["api", "grading-runs"], Some(body))
                .await
        }
    }
}

/// Polls the job to its end with a progress bar; in database mode with `grade_here`, a worker
/// in this process grades queued jobs meanwhile.
async fn follow(jobs: &Jobs, id: Uuid, grade_here: bool) -> anyhow::Result<GradingJob> {
    let worker = match jobs {
        Jobs::Database {
            store, settings, ..
        } if grade_here => {
            let registry = super::graders::load_registry(settings).await?;
            let options =
                WorkerOptions::for_server(settings.job_lease, settings.llm_run_token_budget);
            let worker = JobWorker::new(store.clone(), registry, options);
            Some(tokio::spawn(worker.run()))
        }
        _ => None,
    };
    let mut job = jobs.get(id).await?;
    let bar = indicatif::ProgressBar::new(u64::try_from(job.total).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} runs {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while !job.status.is_final() {
        bar.set_position(u64::try_from(job.processed).unwrap_or(0));
        bar.set_message(job.status.as_str());
        tokio::time::sleep(Duration::from_millis(200)).await;
        job = jobs.get(id).await?;
    }
    bar.finish_and_clear();
    if let Some(worker) = worker {
        worker.abort();
    }
    Ok(job)
}

fn show(job: &GradingJob, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(job);
    }
    println!("grading run {}", job.id);
    println!(
        "  prompt     {}{}",
        job.prompt_id,
        job.version.map(|v| format!(" v{v}")).unwrap_or_default()
    );
    println!("  graders    {}", job.graders.join(", "));
    println!("  status     {}", job.status.as_str());
    println!("  progress   {}/{} runs", job.processed, job.total);
    println!(
        "  verdicts   {} passed, {} failed, {} errored",
        job.passed, job.failed, job.errored
    );
    if !job.errors.is_empty() {
        let errors: Vec<String> = job.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("  errors     {}", errors.join(", "));
    }
    let budget = job
        .token_budget
        .map(|b| format!(" of {b}"))
        .unwrap_or_default();
    println!("  tokens     {}{budget}", job.tokens_used);
    if let Some(error) = &job.error {
        println!("  error      {error}");
    }
    Ok(())
}

fn parse_kind(text: &str) -> Result<JobKind, String> {
    match text {
        "grading" => Ok(JobKind::Grading),
        "evaluation" => Ok(JobKind::Evaluation),
        _ => Err(format!("{text:?} is not a kind (grading or evaluation)")),
    }
}
