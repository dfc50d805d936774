//! `flywheel deploy` and `flywheel rollback`: change the active version of a prompt; `flywheel
//! import`: add a version written elsewhere.

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

/// `flywheel import <id> --file F`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct ImportArgs {
    /// Prompt id.
    pub id: String,
    /// File holding the prompt written elsewhere, with {{variables}}.
    #[arg(long)]
    pub file: std::path::PathBuf,
    /// Notes stored with the version (where it comes from).
    #[arg(long)]
    pub notes: Option<String>,
    /// Accept variables that differ from the active version's.
    #[arg(long)]
    pub allow_variable_changes: bool,
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Imports a prompt written elsewhere as a new inactive version and prints the diff.
pub async fn import(args: ImportArgs, settings: Settings) -> anyhow::Result<()> {
    use anyhow::Context;
    let content = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let target = Target::open(&args.target, &settings).await?;
    let imported = target
        .import(
            &args.id,
            crate::prompts::ImportPrompt {
                content,
                notes: args.notes,
                allow_variable_changes: args.allow_variable_changes,
            },
        )
        .await?;
    if args.target.json {
        return print_json(&imported);
    }
    print!("{}", imported.diff);
    let compared = imported
        .compared_with
        .map_or("no active version".to_owned(), |v| format!("v{v}"));
    println!(
        "imported {} v{} (inactive; +{} -{} lines against {compared}; activate it with `flywheel deploy {} {}`)",
        imported.version.prompt_id,
        imported.version.version,
        imported.lines_added,
        imported.lines_removed,
        imported.version.prompt_id,
        imported.version.version
    );
    Ok(())
}
