//! `flywheel runs …` and `flywheel outcomes …`: import runs from JSONL in batches, list and show
//! runs, report outcomes from JSONL. Database mode or `--server`, like the prompt commands.
//!
//! Every line of a file is parsed and checked (as the API would) before anything is sent, so a
//! bad line is named by its line number and nothing is stored; a line naming an unknown prompt
//! or version is refused by the store or server, and its batch index is turned back into the
//! line number. Imports are idempotent (runs are keyed by prompt, task and attempt), so an
//! interrupted import is resumed by running it again.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::client::{ApiClient, ServerError};
use super::target::{TargetArgs, print_json};
use crate::api::runs::{OutcomesAnswer, RecordAnswer, RunsPage};
use crate::config::Settings;
use crate::runs::{BatchError, MAX_BATCH, cursor, parse_outcomes, parse_runs};
use crate::store::{NewOutcome, NewRun, Rating, RecordedRun, Run, RunFilter, Store, StoreError};

/// `flywheel runs`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct RunsArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which runs command.
    #[command(subcommand)]
    pub command: RunsCommand,
}

/// The runs commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Record the runs of a JSONL file (one run per line, as `POST /api/runs` takes it), in
    /// batches; running it again stores nothing twice.
    #[command(after_help = super::AFTER_HELP)]
    Import {
        /// The JSONL file.
        file: PathBuf,
        /// Runs per batch, 1 to 1000.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
        batch_size: u16,
    },
    /// List runs, newest first.
    #[command(after_help = super::AFTER_HELP)]
    List {
        /// Only this prompt's runs.
        #[arg(long)]
        prompt: Option<String>,
        /// Only runs of this version.
        #[arg(long)]
        version: Option<i64>,
        /// Only runs rated good or bad.
        #[arg(long, value_parser = ["good", "bad"])]
        rating: Option<String>,
        /// Only runs with this failure mode.
        #[arg(long)]
        failure_mode: Option<String>,
        /// Only annotated (true) or unannotated (false) runs.
        #[arg(long)]
        annotated: Option<bool>,
        /// Only runs whose enabled graders all passed (true) or not (false).
        #[arg(long)]
        graders_passed: Option<bool>,
        /// How many runs, 1 to 500.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Print one run with its outcome, annotation and grader results.
    #[command(after_help = super::AFTER_HELP)]
    Show {
        /// The run's id.
        id: Uuid,
    },
}

/// `flywheel outcomes`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct OutcomesArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which outcomes command.
    #[command(subcommand)]
    pub command: OutcomesCommand,
}

/// The outcomes commands.
#[derive(Debug, Subcommand)]
pub enum OutcomesCommand {
    /// Report the outcomes of a JSONL file (one `{"taskId", "testsPassed"?, …}` per line).
    #[command(after_help = super::AFTER_HELP)]
    Report {
        /// The JSONL file.
        file: PathBuf,
    },
}

/// Where runs go: the store of the database, or a running service.
enum RunsTarget {
    Database(Arc<dyn Store>),
    Server(ApiClient),
}

impl RunsTarget {
    async fn open(args: &TargetArgs, settings: &Settings) -> anyhow::Result<Self> {
        Ok(match &args.server {
            Some(server) => RunsTarget::Server(ApiClient::new(server, args.token.clone())?),
            None => RunsTarget::Database(crate::server::open_database(settings).await?),
        })
    }

    /// Records one batch; a refused run is named by its index in the batch.
    async fn record(&self, runs: &[NewRun], lines: &[Value]) -> Result<Vec<RecordedRun>, Refused> {
        match self {
            RunsTarget::Database(store) => store.record_runs(runs).await.map_err(|e| match e {
                StoreError::InBatch { index, error } => Refused::At(index, error.to_string()),
                other => Refused::Other(other.into()),
            }),
            RunsTarget::Server(client) => client
                .call::<RecordAnswer>(
                    Method::POST,
                    &["api", "runs"],
                    Some(json!({ "runs": lines })),
                )
                .await
                .map(|answer| answer.runs)
                .map_err(|e| {
                    let index = e
                        .downcast_ref::<ServerError>()
                        .and_then(|s| s.details.as_ref()?.get("index")?.as_u64());
                    match index {
                        Some(index) => Refused::At(index as usize, e.to_string()),
                        None => Refused::Other(e),
                    }
                }),
        }
    }
}

/// Why a batch was not recorded.
enum Refused {
    /// The run at this index of the batch was refused.
    At(usize, String),
    /// Anything else.
    Other(anyhow::Error),
}

/// Runs a runs command.
pub async fn run(args: RunsArgs, settings: Settings) -> anyhow::Result<()> {
    let json_output = args.target.json;
    let target = RunsTarget::open(&args.target, &settings).await?;
    match args.command {
        RunsCommand::Import { file, batch_size } => {
            import(&target, &file, usize::from(batch_size), json_output).await
        }
        RunsCommand::List {
            prompt,
            version,
            rating,
            failure_mode,
            annotated,
            graders_passed,
            limit,
            cursor: after,
        } => {
            let filter = RunFilter {
                prompt_id: prompt,
                version,
                rating: rating.as_deref().and_then(Rating::parse),
                failure_mode,
                annotated,
                graders_passed,
                before: after
                    .as_deref()
                    .map(|c| {
                        cursor::decode(c).ok_or_else(|| {
                            anyhow!("--cursor {c:?} is not a cursor this command printed")
                        })
                    })
                    .transpose()?,
                ..RunFilter::default()
            };
            let page = list(&target, &filter, limit).await?;
            if json_output {
                return print_json(&page);
            }
            print_table(&page);
            Ok(())
        }
        RunsCommand::Show { id } => {
            let shown: Run = match &target {
                RunsTarget::Database(store) => store.get_run(id).await?,
                RunsTarget::Server(client) => {
                    client
                        .call(Method::GET, &["api", "runs", &id.to_string()], None)
                        .await?
                }
            };
            print_json(&shown)
        }
    }
}

/// Runs an outcomes command.
pub async fn outcomes(args: OutcomesArgs, settings: Settings) -> anyhow::Result<()> {
    let json_output = args.target.json;
    let target = RunsTarget::open(&args.target, &settings).await?;
    let OutcomesCommand::Report { file } = args.command;
    let lines = read_lines(&file)?;
    let mut parsed: Vec<(usize, Value)> = Vec::with_capacity(lines.len());
    for (number, value) in lines {
        // Checked one by one, so the refusal names the line.
        parse_outcomes(json!({ "outcomes": [value.clone()] }))
            .map_err(|e| line_error(&file, number, &e.to_string()))?;
        parsed.push((number, value));
    }
    let mut total = 0u64;
    let mut reported = 0usize;
    for chunk in parsed.chunks(MAX_BATCH) {
        let values: Vec<Value> = chunk.iter().map(|(_, v)| v.clone()).collect();
        let updated: Vec<u64> = match &target {
            RunsTarget::Database(store) => {
                let outcomes: Vec<NewOutcome> = parse_outcomes(json!({ "outcomes": values }))?;
                store.report_outcomes(&outcomes).await?
            }
            RunsTarget::Server(client) => {
                let answer: OutcomesAnswer = client
                    .call(
                        Method::PATCH,
                        &["api", "runs", "outcomes"],
                        Some(json!({ "outcomes": values })),
                    )
                    .await?;
                answer
                    .outcomes
                    .into_iter()
                    .map(|o| o.runs_updated)
                    .collect()
            }
        };
        total += updated.iter().sum::<u64>();
        reported += updated.len();
    }
    if json_output {
        return print_json(&json!({ "outcomes": reported, "runsUpdated": total }));
    }
    println!("reported {reported} outcomes, {total} runs updated");
    Ok(())
}

async fn import(
    target: &RunsTarget,
    file: &Path,
    batch_size: usize,
    json_output: bool,
) -> anyhow::Result<()> {
    let lines = read_lines(file)?;
    let mut runs = Vec::with_capacity(lines.len());
    for (number, value) in &lines {
        let (mut parsed, _) = parse_runs(value.clone()).map_err(|e| {
            let message = match &e {
                BatchError::Body(_) => "a line must be one run (a JSON object)".to_owned(),
                other => other.to_string(),
            };
            line_error(file, *number, &message)
        })?;
        runs.push(parsed.remove(0));
    }
    let bar = indicatif::ProgressBar::new(runs.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs {elapsed_precise}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut created, mut existing) = (0usize, 0usize);
    for (batch, chunk) in runs.chunks(batch_size).zip(lines.chunks(batch_size)) {
        let values: Vec<Value> = chunk.iter().map(|(_, v)| v.clone()).collect();
        let recorded = target.record(batch, &values).await.map_err(|refused| {
            bar.abandon();
            match refused {
                Refused::At(index, message) => match chunk.get(index) {
                    Some((number, _)) => line_error(file, *number, &message),
                    None => anyhow!(message),
                },
                Refused::Other(error) => error,
            }
        })?;
        created += recorded.iter().filter(|r| r.created).count();
        existing += recorded.iter().filter(|r| !r.created).count();
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if json_output {
        return print_json(&json!({ "created": created, "existing": existing }));
    }
    println!(
        "imported {} runs from {}: {created} recorded, {existing} already recorded",
        runs.len(),
        file.display()
    );
    Ok(())
}

/// The non-blank lines of a JSONL file with their 1-based numbers, each parsed as JSON.
fn read_lines(file: &Path) -> anyhow::Result<Vec<(usize, Value)>> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let mut lines = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let number = i + 1;
        let line = line.with_context(|| format!("reading {} line {number}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| line_error(file, number, &format!("not JSON: {e}")))?;
        if let Some(field) = crate::api::extract::find_nul(&value) {
            return Err(line_error(
                file,
                number,
                &format!("`{field}` holds a NUL character (U+0000), which is not accepted in text"),
            ));
        }
        lines.push((number, value));
    }
    if lines.is_empty() {
        anyhow::bail!("{} holds no lines", file.display());
    }
    Ok(lines)
}

fn line_error(file: &Path, number: usize, message: &str) -> anyhow::Error {
    anyhow!(
        "{} line {number}: {message}; nothing of its batch was stored",
        file.display()
    )
}

async fn list(target: &RunsTarget, filter: &RunFilter, limit: u32) -> anyhow::Result<RunsPage> {
    match target {
        RunsTarget::Database(store) => {
            let mut items = store.list_runs(filter, limit + 1).await?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_cursor = more
                .then(|| items.last().map(|r| cursor::encode(r.id)))
                .flatten();
            Ok(RunsPage { items, next_cursor })
        }
        RunsTarget::Server(client) => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(p) = &filter.prompt_id {
                query.push(("promptId", p.clone()));
            }
            if let Some(v) = filter.version {
                query.push(("version", v.to_string()));
            }
            if let Some(r) = filter.rating {
                query.push(("rating", r.as_str().to_owned()));
            }
            if let Some(f) = &filter.failure_mode {
                query.push(("failureMode", f.clone()));
            }
            if let Some(a) = filter.annotated {
                query.push(("annotated", a.to_string()));
            }
            if let Some(g) = filter.graders_passed {
                query.push(("gradersPassed", g.to_string()));
            }
            if let Some(before) = filter.before {
                query.push(("cursor", cursor::encode(before)));
            }
            client
                .call_with_query(Method::GET, &["api", "runs"], &query, None)
                .await
        }
    }
}

fn print_table(page: &RunsPage) {
    println!(
        "{:<36}  {:<10} {:>4}  {:<24} {:>3}  {:<7}  {:<6}  CREATED",
        "ID", "PROMPT", "VER", "TASK", "TRY", "SUCCESS", "RATING"
    );
    for run in &page.items {
        let success = match run.success {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        };
        let rating = run
            .annotation
            .as_ref()
            .and_then(|a| a.rating)
            .map_or("-", Rating::as_str);
        println!(
            "{:<36}  {:<10} {:>4}  {:<24} {:>3}  {:<7}  {:<6}  {}",
            run.id,
            run.prompt_id,
            run.version,
            shorten(&run.task_id, 24),
            run.attempt,
            success,
            rating,
            run.created_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    if let Some(next) = &page.next_cursor {
        println!("more: --cursor {next}");
    }
}

/// At most `max` characters, the end replaced by `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}
