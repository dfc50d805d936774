//! `flywheel prompts …`: list prompts, list and show versions, create a version, create a
//! prompt.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::target::{Target, TargetArgs, print_json};
use crate::config::Settings;
use crate::prompts::{CreatePrompt, NewFailureMode};
use crate::store::PromptVersion;

/// `flywheel prompts`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct PromptsArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which prompts command.
    #[command(subcommand)]
    pub command: PromptsCommand,
}

/// The prompts commands.
#[derive(Debug, Subcommand)]
pub enum PromptsCommand {
    /// List every prompt with its active version and number of versions.
    #[command(after_help = super::AFTER_HELP)]
    List,
    /// List the versions of a prompt, oldest first.
    #[command(after_help = super::AFTER_HELP)]
    Versions {
        /// Prompt id, such as planner.
        id: String,
    },
    /// Print one version of a prompt (the active one unless --version is given).
    #[command(after_help = super::AFTER_HELP)]
    Show {
        /// Prompt id.
        id: String,
        /// Version number [default: the active version].
        #[arg(long)]
        version: Option<i64>,
    },
    /// Create a new prompt (beyond the seeded agents) whose first version, from a template file,
    /// is active at once.
    #[command(after_help = super::AFTER_HELP)]
    Create {
        /// The new prompt's id (a-z, 0-9, `_`, `-`, starting with a letter).
        id: String,
        /// File holding the first version's template, with {{variables}}.
        #[arg(long)]
        file: PathBuf,
        /// What the prompt is for.
        #[arg(long, default_value = "")]
        description: String,
        /// A declared variable (repeat) [default: those the template uses].
        #[arg(long = "variable")]
        variables: Vec<String>,
        /// A failure mode of its taxonomy as `code=description` (repeat).
        #[arg(long = "failure-mode")]
        failure_modes: Vec<String>,
    },
    /// Create a new, inactive version from a template file (deploy it with `flywheel deploy`).
    #[command(after_help = super::AFTER_HELP)]
    CreateVersion {
        /// Prompt id.
        id: String,
        /// File holding the template text, with {{variables}}.
        #[arg(long)]
        file: PathBuf,
        /// Notes stored with the version.
        #[arg(long)]
        notes: Option<String>,
        /// The version this one derives from.
        #[arg(long)]
        parent: Option<i64>,
    },
}

/// Runs a prompts command.
pub async fn run(args: PromptsArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let target = Target::open(&args.target, &settings).await?;
    match args.command {
        PromptsCommand::List => {
            let prompts = target.list().await?;
            if json {
                return print_json(&prompts);
            }
            println!(
                "{:<16} {:>6} {:>8}  DESCRIPTION",
                "PROMPT", "ACTIVE", "VERSIONS"
            );
            for p in prompts {
                let active = p.active_version.map_or("-".to_owned(), |v| format!("v{v}"));
                println!(
                    "{:<16} {:>6} {:>8}  {}",
                    p.prompt.id,
                    active,
                    p.versions.len(),
                    p.prompt.description
                );
            }
        }
        PromptsCommand::Versions { id } => {
            let versions = target.versions(&id).await?;
            if json {
                return print_json(&versions);
            }
            println!(
                "{:>7}  {:<6}  {:<9}  {:<20}  NOTES",
                "VERSION", "ACTIVE", "SOURCE", "CREATED"
            );
            for v in versions {
                println!(
                    "{:>7}  {:<6}  {:<9}  {:<20}  {}",
                    v.version,
                    if v.is_active { "yes" } else { "" },
                    format!("{:?}", v.source).to_lowercase(),
                    v.created_at.format("%Y-%m-%d %H:%M:%S"),
                    v.notes.as_deref().unwrap_or("")
                );
            }
        }
        PromptsCommand::Show { id, version } => {
            let shown = match version {
                Some(n) => target.version(&id, n).await?,
                None => target
                    .versions(&id)
                    .await?
                    .into_iter()
                    .find(|v| v.is_active)
                    .with_context(|| format!("prompt {id} has no active version"))?,
            };
            if json {
                return print_json(&shown);
            }
            print_version(&shown);
        }
        PromptsCommand::Create {
            id,
            file,
            description,
            variables,
            failure_modes,
        } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("reading template file {}", file.display()))?;
            let failure_modes = failure_modes
                .iter()
                .map(|m| {
                    let (code, description) = m.split_once('=').with_context(|| {
                        format!("--failure-mode {m:?}: expected code=description")
                    })?;
                    Ok(NewFailureMode {
                        code: code.trim().to_owned(),
                        description: description.trim().to_owned(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let created = target
                .create_prompt(CreatePrompt {
                    id,
                    description,
                    variables: (!variables.is_empty()).then_some(variables),
                    failure_modes,
                    content,
                })
                .await?;
            if json {
                return print_json(&created);
            }
            println!(
                "created prompt {} with v1 active (variables: {})",
                created.prompt.id,
                created.prompt.variables.join(", ")
            );
        }
        PromptsCommand::CreateVersion {
            id,
            file,
            notes,
            parent,
        } => {
            let content = std::fs::read_to_string(&file)
                .with_context(|| format!("reading template file {}", file.display()))?;
            let created = target.create_version(&id, content, notes, parent).await?;
            if json {
                return print_json(&created);
            }
            println!(
                "created {} v{} (inactive; activate it with `flywheel deploy {} {}`)",
                created.prompt_id, created.version, created.prompt_id, created.version
            );
        }
    }
    Ok(())
}

fn print_version(v: &PromptVersion) {
    println!("prompt:   {}", v.prompt_id);
    println!(
        "version:  {}{}",
        v.version,
        if v.is_active { " (active)" } else { "" }
    );
    println!("source:   {}", format!("{:?}", v.source).to_lowercase());
    println!("created:  {}", v.created_at.to_rfc3339());
    if let Some(by) = &v.created_by {
        println!("by:       {by}");
    }
    if let Some(parent) = v.parent_version {
        println!("parent:   v{parent}");
    }
    if let Some(notes) = &v.notes {
        println!("notes:    {notes}");
    }
    println!();
    println!("{}", v.content);
}
