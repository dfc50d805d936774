//! `flywheel optimize <prompt> [--dataset NAME] [--budget N] [--ab-test]`: optimize a prompt
//! from its annotated failures, with a progress bar (rounds, candidates, calls, best score on
//! the train rows), then the report (`--json`: the API's answer). `--show ID` prints a run,
//! `--cancel ID` cancels one, `--detach` queues and returns.
//!
//! With `--server`, the running service queues and runs it. In database mode it is queued in
//! the database and run in this process meanwhile (its worker claims queued runs like a server
//! would), so an optimization also finishes with no server running.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use uuid::Uuid;

use super::client::ApiClient;
use super::target::{TargetArgs, print_json};
use crate::config::Settings;
use crate::config::args::{GraderArgs, ModelArgs, Overlay};
use crate::evals::results::Bounds;
use crate::optimizer::request::{OptimizeRequest, queue_optimization};
use crate::optimizer::view::{OptimizationView, view};
use crate::optimizer::worker::{OptimizerOptions, OptimizerWorker};
use crate::store::Store;

/// `flywheel optimize`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct OptimizeArgs {
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
    /// The version to start from [default: the active one].
    #[arg(long)]
    pub version: Option<i64>,
    /// The dataset [default: a snapshot of the prompt's annotated runs].
    #[arg(long)]
    pub dataset: Option<String>,
    /// The dataset version [default: the latest].
    #[arg(long)]
    pub dataset_version: Option<i64>,
    /// The task model [default: the endpoint's default].
    #[arg(long)]
    pub model: Option<String>,
    /// The reflection model [default: the task model].
    #[arg(long)]
    pub reflection_model: Option<String>,
    /// Task-model calls, validation included [default: 400].
    #[arg(long)]
    pub budget: Option<i64>,
    /// Reflection-model calls [default: 40].
    #[arg(long)]
    pub reflection_budget: Option<i64>,
    /// Task-model and grader tokens [default: no limit].
    #[arg(long)]
    pub token_budget: Option<i64>,
    /// Reflection tokens [default: no limit].
    #[arg(long)]
    pub reflection_token_budget: Option<i64>,
    /// Train rows a candidate is first tried on [default: 8].
    #[arg(long)]
    pub minibatch: Option<i64>,
    /// Rounds without a better candidate before stopping [default: 4].
    #[arg(long)]
    pub patience: Option<i64>,
    /// Mean train score that stops the loop, above 0 and at most 1 [default: 1].
    #[arg(long)]
    pub target_score: Option<f64>,
    /// Seed of the run's random choices [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Start an A/B test of the winner against the active version when a version is created.
    #[arg(long)]
    pub ab_test: bool,
    /// Queue it and print it without waiting.
    #[arg(long)]
    pub detach: bool,
    /// Show this optimization instead of starting one.
    #[arg(long, conflicts_with = "cancel")]
    pub show: Option<Uuid>,
    /// Cancel this optimization instead of starting one.
    #[arg(long)]
    pub cancel: Option<Uuid>,
}

impl OptimizeArgs {
    /// The setting groups this command reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        let mut groups = self.target.groups();
        groups.push(&self.graders);
        groups.push(&self.model_endpoint);
        groups
    }

    fn request(&self) -> OptimizeRequest {
        OptimizeRequest {
            version: self.version,
            dataset: self.dataset.clone(),
            dataset_version: self.dataset_version,
            model: self.model.clone(),
            reflection_model: self.reflection_model.clone(),
            budget: self.budget,
            reflection_budget: self.reflection_budget,
            token_budget: self.token_budget,
            reflection_token_budget: self.reflection_token_budget,
            minibatch: self.minibatch,
            patience: self.patience,
            target: self.target_score,
            seed: self.seed,
            ab_test: self.ab_test.then_some(true),
        }
    }
}

/// Where the command acts.
enum Target {
    Database {
        store: Arc<dyn Store>,
        settings: Box<Settings>,
        actor: String,
    },
    Server(ApiClient),
}

impl Target {
    async fn get(&self, id: Uuid) -> anyhow::Result<OptimizationView> {
        match self {
            Target::Database { store, .. } => {
                view(store.get_optimization(id).await?).context("unreadable optimization")
            }
            Target::Server(client) => {
                let id = id.to_string();
                client
                    .call(Method::GET, &["api", "optimizations", &id], None)
                    .await
            }
        }
    }
}

/// Runs `flywheel optimize …`.
pub async fn run(args: OptimizeArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let target = if let Some(server) = &args.target.server {
        Target::Server(ApiClient::new(server, args.target.token.clone())?)
    } else {
        let store = crate::server::open_database(&settings).await?;
        let actor = args.target.actor.clone().unwrap_or_else(|| {
            format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            )
        });
        Target::Database {
            store,
            settings: Box::new(settings),
            actor,
        }
    };
    if let Some(id) = args.show {
        return show(&target.get(id).await?, json);
    }
    if let Some(id) = args.cancel {
        let optimization = match &target {
            Target::Database { store, .. } => {
                view(store.cancel_optimization(id).await?).context("unreadable optimization")?
            }
            Target::Server(client) => {
                let id = id.to_string();
                client
                    .call(Method::POST, &["api", "optimizations", &id, "cancel"], None)
                    .await?
            }
        };
        return show(&optimization, json);
    }
    let prompt = args.prompt.clone().unwrap_or_default();
    let optimization = start(&target, &prompt, args.request()).await?;
    if args.detach {
        return show(&optimization, json);
    }
    let optimization = follow(&target, optimization.id).await?;
    show(&optimization, json)
}

async fn start(
    target: &Target,
    prompt: &str,
    request: OptimizeRequest,
) -> anyhow::Result<OptimizationView> {
    match target {
        Target::Database {
            store,
            settings,
            actor,
        } => {
            if !settings.enable_prompt_optimization {
                anyhow::bail!("prompt optimization is switched off (ENABLE_PROMPT_OPTIMIZATION)");
            }
            let registry = super::graders::load_registry(settings).await?;
            let configured = registry
                .runtime()
                .llm_client()
                .is_some_and(|client| client.is_configured(None));
            let queued = queue_optimization(
                store,
                &registry,
                configured,
                u64::from(settings.min_samples_for_optimization),
                prompt,
                request,
                actor,
            )
            .await
            .context("the optimization was not queued")?;
            view(queued).context("unreadable optimization")
        }
        Target::Server(client) => {
            let body = serde_json::json!({
                "version": request.version,
                "dataset": request.dataset,
                "datasetVersion": request.dataset_version,
                "model": request.model,
                "reflectionModel": request.reflection_model,
                "budget": request.budget,
                "reflectionBudget": request.reflection_budget,
                "tokenBudget": request.token_budget,
                "reflectionTokenBudget": request.reflection_token_budget,
                "minibatch": request.minibatch,
                "patience": request.patience,
                "target": request.target,
                "seed": request.seed,
                "abTest": request.ab_test,
            });
            client
                .call(
                    Method::POST,
                    &["api", "prompts", prompt, "optimize"],
                    Some(body),
                )
                .await
        }
    }
}

/// Polls the run to its end with a progress bar over the task-call budget; in database mode a
/// worker in this process runs queued optimizations meanwhile.
async fn follow(target: &Target, id: Uuid) -> anyhow::Result<OptimizationView> {
    let worker = match target {
        Target::Database {
            store, settings, ..
        } => {
            let registry = super::graders::load_registry(settings).await?;
            let worker = OptimizerWorker::new(
                store.clone(),
                registry,
                OptimizerOptions::for_server(settings.job_lease),
            );
            Some(tokio::spawn(worker.run()))
        }
        Target::Server(_) => None,
    };
    let mut optimization = target.get(id).await?;
    let bar = indicatif::ProgressBar::new(u64::try_from(optimization.spec.budget).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} task calls {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Ends when the run does: every run reaches a final status (its worker ends it, or a dead
    // worker's lease expires and another takes it over).
    while !optimization.status.is_final() {
        let p = &optimization.progress;
        bar.set_position(u64::try_from(p.spent.task_calls).unwrap_or(0));
        bar.set_message(format!(
            "{} · round {} · {} candidates ({} accepted, {} discarded) · {} reflections · best \
             train score {}",
            optimization.status.as_str(),
            p.rounds,
            p.candidates,
            p.accepted,
            p.discarded,
            p.spent.reflection_calls,
            p.best_train_score
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.3}"))
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        optimization = target.get(id).await?;
    }
    bar.finish_and_clear();
    if let Some(worker) = worker {
        worker.abort();
    }
    Ok(optimization)
}

fn show(optimization: &OptimizationView, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(optimization);
    }
    print!("{}", render(optimization));
    Ok(())
}

fn interval(bounds: Option<Bounds>) -> String {
    bounds.map_or_else(
        || "—".to_owned(),
        |b| format!("[{:.3}, {:.3}]", b.lower, b.upper),
    )
}

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

/// The text report.
pub fn render(o: &OptimizationView) -> String {
    let mut out = String::new();
    out.push_str(&format!("optimization {}\n", o.id));
    out.push_str(&format!(
        "  prompt {} from version {} · dataset {} v{} ({} train, {} validation rows) · status {}\n",
        o.prompt_id,
        o.start_version,
        o.spec.dataset,
        o.spec.dataset_version,
        o.spec.train_rows,
        o.spec.validation_rows,
        o.status.as_str()
    ));
    if let Some(error) = &o.error {
        out.push_str(&format!("  error {error}\n"));
    }
    let Some(report) = &o.report else {
        let p = &o.progress;
        out.push_str(&format!(
            "  round {} · {} candidates · {} task calls · {} reflection calls\n",
            p.rounds, p.candidates, p.spent.task_calls, p.spent.reflection_calls
        ));
        return out;
    };
    out.push_str(&format!(
        "  stopped: {} ({} rounds)\n",
        report.stop_detail, report.rounds
    ));
    match report.outcome.version {
        Some(version) => out.push_str(&format!(
            "  improved: version {version} created (inactive) — {}\n",
            report.outcome.reason
        )),
        None => out.push_str(&format!(
            "  no version created — {}\n",
            report.outcome.reason
        )),
    }
    if let Some(v) = &report.validation {
        out.push_str(&format!(
            "\nvalidation ({} rows): score {:.3} → {:.3}, gain {:.3} 95% CI {}\n",
            v.rows,
            v.score_before,
            v.score_after,
            v.gain,
            interval(v.gain_interval)
        ));
        out.push_str(&format!(
            "  {:<16} {:>7} {:<18} {:>7} {:<18} {:>7} {:<18}\n",
            "grader", "before", "95% CI", "after", "95% CI", "pass→", "pass 95% CI after"
        ));
        for g in &v.graders {
            out.push_str(&format!(
                "  {:<16} {:>7} {:<18} {:>7} {:<18} {:>7} {:<18}\n",
                g.before.grader,
                number(g.before.mean),
                interval(g.before.mean_interval),
                number(g.after.mean),
                interval(g.after.mean_interval),
                format!(
                    "{}→{}",
                    number(g.before.pass_rate),
                    number(g.after.pass_rate)
                ),
                interval(g.after.pass_rate_interval)
            ));
        }
    }
    if !report.failure_modes.is_empty() {
        out.push_str("\nfailure modes (validation rows failing, before → after)\n");
        for m in &report.failure_modes {
            out.push_str(&format!(
                "  {:<24} {:>4} → {:<4} of {}\n",
                m.code, m.failing_before, m.failing_after, m.rows
            ));
        }
    }
    out.push_str("\nlineage\n");
    for step in &report.lineage {
        out.push_str(&format!(
            "  #{} (round {}, parent {}) train score {:.3}\n",
            step.candidate,
            step.round,
            step.parent
                .map_or_else(|| "—".to_owned(), |p| format!("#{p}")),
            step.train_mean
        ));
    }
    let c = &report.candidates;
    out.push_str(&format!(
        "\ncandidates: {} tried, {} accepted, {} discarded ({} other variables, {} not a template, \
         {} duplicates, {} unreadable)\n",
        c.tried,
        c.accepted,
        c.discarded.total(),
        c.discarded.wrong_variables,
        c.discarded.invalid_template,
        c.discarded.duplicate,
        c.discarded.unparseable
    ));
    let s = &report.spent;
    out.push_str(&format!(
        "cost: task model {} calls ({} validating, {} answers from the cache), {} tokens + {} \
         grader tokens · reflection model {} calls, {} tokens\n",
        s.task_calls,
        s.validation_calls,
        s.cached_answers,
        s.task_tokens,
        s.grader_tokens,
        s.reflection_calls,
        s.reflection_tokens
    ));
    out.push_str(&format!("\nwinner\n{}\n", report.winner_text));
    out
}
