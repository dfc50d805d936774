//! `flywheel deploy` and `flywheel rollback`: change the active version of a prompt.

use clap::Args;

use super::target::{Target, TargetArgs, print_json};
use crate::config::Settings;
use crate::store::DeployRecord;

/// `flywheel deploy <id> <version>`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct DeployArgs {
    /// Prompt id, such as planner.
    pub id: String,
    /// Version to activate.
    pub version: i64,
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `flywheel rollback <id>`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct RollbackArgs {
    /// Prompt id.
    pub id: String,
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Activates a version.
pub async fn deploy(args: DeployArgs, settings: Settings) -> anyhow::Result<()> {
    let target = Target::open(&args.target, &settings).await?;
    let record = target.deploy(&args.id, args.version).await?;
    report(&record, args.target.json)
}

/// Re-activates the previous version.
pub async fn rollback(args: RollbackArgs, settings: Settings) -> anyhow::Result<()> {
    let target = Target::open(&args.target, &settings).await?;
    let record = target.rollback(&args.id).await?;
    report(&record, args.target.json)
}

fn report(record: &DeployRecord, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(record);
    }
    let from = record
        .from_version
        .map_or("none".to_owned(), |v| format!("v{v}"));
    println!(
        "{} {}: v{} is active (was {from}; by {})",
        format!("{:?}", record.action).to_lowercase(),
        record.prompt_id,
        record.to_version,
        record.actor
    );
    Ok(())
}
