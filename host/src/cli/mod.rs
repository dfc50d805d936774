//! The `flywheel` command line: the one subcommand enum ([`Command`]) and the dispatch. Each
//! command group lives in its own module; a new group adds a variant here and a module beside.
//!
//! Commands that read or change prompts work in one of two modes, chosen per call:
//! - **database mode** (default): open the database of `DATABASE_URL` / `--data-dir` directly,
//!   applying migrations and seeds first, as `flywheel serve` would;
//! - **server mode** (`--server URL`, token from `--token` / `FLYWHEEL_TOKEN`): call a running
//!   service over HTTP, so auth, history and every instance's cache see the change.

pub mod client;
pub mod graders;
pub mod prompts;
pub mod release;
pub mod serve;
pub mod target;

use clap::{Parser, Subcommand};

use crate::config::{ConfigArgs, Settings};

const AFTER_HELP: &str = "\
Prompt commands open the database directly (DATABASE_URL, or the SQLite file in --data-dir) unless
--server URL is given; then they call that running service with the bearer token of --token or
FLYWHEEL_TOKEN.";

/// Flywheel: versioned prompts for LLM agents, served per task, deployed and rolled back.
#[derive(Debug, Parser)]
#[command(name = "flywheel", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Settings shared by every command (flags or environment).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// List grader components or scaffold a new grader crate.
    Graders(graders::GradersArgs),
    /// Grade a JSONL file of OpenAI eval rows with a grader definition or component.
    Grade(graders::GradeArgs),
}

/// Runs a parsed command with validated settings.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::run(args, settings).await,
        Command::Prompts(args) => prompts::run(args, settings).await,
        Command::Deploy(args) => release::deploy(args, settings).await,
        Command::Rollback(args) => release::rollback(args, settings).await,
        Command::Graders(args) => graders::run(args, settings).await,
        Command::Grade(args) => graders::grade(args, settings).await,
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
