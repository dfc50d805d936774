//! The `flywheel` command line: the one subcommand enum ([`Command`]) and the dispatch. Each
//! command group lives in its own module; a new group adds a variant here and a module beside.
//!
//! Commands that read or change prompts work in one of two modes, chosen per call:
//! - **database mode** (default): open the database of `DATABASE_URL` / `--data-dir` directly,
//!   applying migrations and seeds first, as `flywheel serve` would;
//! - **server mode** (`--server URL`, token from `--token` / `FLYWHEEL_TOKEN`): call a running
//!   service over HTTP, so auth, history and every instance's cache see the change.

pub mod ab;
pub mod aggregates;
pub mod annotations;
pub mod client;
pub mod datasets;
pub mod demo;
pub mod eval;
pub mod export;
pub mod graders;
pub mod grading_runs;
pub mod migrate;
pub mod optimize;
pub mod prompts;
pub mod release;
pub mod runs;
pub mod serve;
pub mod target;

use clap::{Parser, Subcommand};

use crate::config::args::Overlay;
use crate::config::{ConfigArgs, Settings, field};

const AFTER_HELP: &str = "\
Prompt commands open the database directly (DATABASE_URL, or the SQLite file in --data-dir) unless
--server URL is given; then they call that running service with the bearer token of --token or
FLYWHEEL_TOKEN.";

/// Flywheel: versioned prompts for LLM agents, served per task, deployed and rolled back.
#[derive(Debug, Parser)]
#[command(name = "flywheel", version, about, after_help = settings_overview())]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The raw settings of this invocation: the environment, with the flags the command was
    /// given on top.
    pub fn config(&self) -> ConfigArgs {
        let mut config = ConfigArgs::from_env();
        for group in self.command.groups() {
            group.overlay(&mut config);
        }
        config
    }
}

/// The top-level help's list of settings by group; each subcommand's `--help` shows the flags of
/// the groups it reads.
fn settings_overview() -> String {
    let groups: [(&str, &[field::Field]); 5] = [
        (
            "service (serve)",
            &[
                field::BIND,
                field::TOKENS,
                field::TOKENS_FILE,
                field::ENABLE_PROMPT_OPTIMIZATION,
                field::AB_TEST_TRAFFIC_SPLIT,
                field::AB_EVALUATE_SECS,
                field::MIN_SAMPLES_FOR_OPTIMIZATION,
            ],
        ),
        (
            "storage (every command)",
            &[field::DATABASE_URL, field::DATA_DIR],
        ),
        (
            "graders (serve, graders, grade, grading-runs)",
            &[
                field::GRADERS_DIR,
                field::CACHE_DIR,
                field::GRADER_TIMEOUT_MS,
                field::GRADER_MEMORY_MB,
                field::GRADER_MAX_CONCURRENCY,
                field::JOB_LEASE_SECS,
            ],
        ),
        (
            "model (serve, grade, grading-runs)",
            &[
                field::OPENAI_BASE_URL,
                field::OPENAI_API_KEY,
                field::LLM_MODEL,
                field::LLM_EMBEDDING_MODEL,
                field::LLM_TIMEOUT_SECS,
                field::LLM_MAX_RETRIES,
                field::LLM_MAX_CONCURRENCY,
                field::LLM_ENDPOINTS,
                field::LLM_RUN_TOKEN_BUDGET,
            ],
        ),
        ("logging (every command)", &[field::LOG_FORMAT]),
    ];
    let mut text = String::from(
        "Settings are flags after the subcommand or environment variables;          `flywheel <command> --help` lists the flags a command reads:\n",
    );
    for (group, fields) in groups {
        let names: Vec<&str> = fields.iter().map(|f| f.variable).collect();
        text.push_str(&format!("  {group}: {}\n", names.join(", ")));
    }
    text.push('\n');
    text.push_str(AFTER_HELP);
    text
}

/// Every subcommand of `flywheel`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations and seeds are applied at start).
    Serve(serve::ServeArgs),
    /// List prompts, show versions, create a version.
    Prompts(prompts::PromptsArgs),
    /// Make a version of a prompt the active one.
    Deploy(release::DeployArgs),
    /// Re-activate the version that was active before the current one.
    Rollback(release::RollbackArgs),
    /// Import a prompt written elsewhere as a new inactive version (variables checked, diff shown).
    Import(release::ImportArgs),
    /// List grader components or scaffold a new grader crate.
    Graders(graders::GradersArgs),
    /// Grade a JSONL file of OpenAI eval rows with a grader definition or component.
    Grade(graders::GradeArgs),
    /// Start, follow or cancel grading runs over recorded runs.
    GradingRuns(grading_runs::GradingRunsArgs),
    /// Evaluate versions of a prompt on a dataset: progress bar, then a comparison table.
    Eval(eval::EvalArgs),
    /// Optimize a prompt from its annotated failures: progress bar, then the report.
    Optimize(optimize::OptimizeArgs),
    /// Import recorded runs from JSONL, list them, show one.
    Runs(runs::RunsArgs),
    /// Report task outcomes from JSONL.
    Outcomes(runs::OutcomesArgs),
    /// Start, watch and stop A/B tests of prompt versions.
    Ab(ab::AbArgs),
    /// Create dataset versions from recorded runs or OpenAI eval JSONL; list, show, read rows.
    Datasets(datasets::DatasetsArgs),
    /// Export a prompt's runs or a dataset version as OpenAI eval JSONL (and its eval
    /// definition), CSV or a promptfoo config.
    Export(export::ExportArgs),
    /// Migrate in from elsewhere: an OpenAI eval's graders, items and output items.
    Migrate(migrate::MigrateArgs),
    /// Annotate a recorded run as a person (rating, failure mode, critique), or clear it.
    Annotate(annotations::AnnotateArgs),
    /// List or extend a prompt's failure-mode taxonomy, or print its counts table.
    FailureModes(annotations::FailureModesArgs),
    /// The runs of a prompt waiting for a person's annotation, failed first, then newest.
    AnnotationQueue(annotations::AnnotationQueueArgs),
    /// Rebuild the version figures and A/B totals from the stored rows (after bulk SQL or a
    /// restore; the service keeps them current otherwise).
    RecomputeAggregates(aggregates::RecomputeArgs),
    /// Run the whole flywheel on a fresh data directory against a simulated AutoDev and a
    /// built-in model, printing each step and the web page that shows it.
    Demo(demo::DemoArgs),
}

impl Command {
    /// The setting groups this command reads from its flags.
    fn groups(&self) -> Vec<&dyn Overlay> {
        match self {
            Command::Serve(args) => args.groups(),
            Command::Prompts(args) => args.target.groups(),
            Command::Deploy(args) => args.target.groups(),
            Command::Rollback(args) => args.target.groups(),
            Command::Import(args) => args.target.groups(),
            Command::Graders(args) => args.groups(),
            Command::Grade(args) => args.groups(),
            Command::GradingRuns(args) => args.groups(),
            Command::Eval(args) => args.groups(),
            Command::Optimize(args) => args.groups(),
            Command::Runs(args) => args.target.groups(),
            Command::Outcomes(args) => args.target.groups(),
            Command::Ab(args) => args.target.groups(),
            Command::Datasets(args) => args.target.groups(),
            Command::Export(args) => args.target.groups(),
            Command::Migrate(args) => args.groups(),
            Command::Annotate(args) => args.target.groups(),
            Command::FailureModes(args) => args.target.groups(),
            Command::AnnotationQueue(args) => args.target.groups(),
            Command::RecomputeAggregates(args) => args.target.groups(),
            Command::Demo(args) => args.groups(),
        }
    }
}

/// Runs a parsed command with validated settings.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args, settings).await,
        Command::Prompts(args) => prompts::run(args, settings).await,
        Command::Deploy(args) => release::deploy(args, settings).await,
        Command::Rollback(args) => release::rollback(args, settings).await,
        Command::Import(args) => release::import(args, settings).await,
        Command::Graders(args) => graders::run(args, settings).await,
        Command::Grade(args) => graders::grade(args, settings).await,
        Command::GradingRuns(args) => grading_runs::run(args, settings).await,
        Command::Eval(args) => eval::run(args, settings).await,
        Command::Optimize(args) => optimize::run(args, settings).await,
        Command::Runs(args) => runs::run(args, settings).await,
        Command::Outcomes(args) => runs::outcomes(args, settings).await,
        Command::Ab(args) => ab::run(args, settings).await,
        Command::Datasets(args) => datasets::run(args, settings).await,
        Command::Export(args) => export::run(args, settings).await,
        Command::Migrate(args) => migrate::run(args, settings).await,
        Command::Annotate(args) => annotations::annotate(args, settings).await,
        Command::FailureModes(args) => annotations::failure_modes(args, settings).await,
        Command::AnnotationQueue(args) => annotations::queue(args, settings).await,
        Command::RecomputeAggregates(args) => aggregates::run(args, settings).await,
        Command::Demo(args) => demo::run(args, settings).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
