//! `flywheel migrate openai-eval --eval eval.json --items items.jsonl [--output-items
//! output_items.jsonl] (--prompt <id> | --new-prompt [--prompt <id>] [--prompt-template F])
//! [--dataset NAME]`: an OpenAI eval becomes the prompt's
//! grader definitions, a dataset and recorded runs with grader results, all or nothing
//! ([`crate::migrate`]). Database mode migrates directly (grader definitions are checked against
//! the components loaded here); `--server` mode calls `POST /api/migrate/openai-eval`. A refusal
//! prints every problem on its own line, `<place>: <message>`, and writes nothing.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;

use super::client::{ApiClient, ServerError};
use super::target::TargetArgs;
use crate::config::Settings;
use crate::config::args::{GraderArgs, ModelArgs, Overlay};
use crate::migrate::{MigrateError, MigrateOpenaiEval, Migrated};

/// `flywheel migrate`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct MigrateArgs {
    /// What to migrate.
    #[command(subcommand)]
    pub command: MigrateCommand,
}

impl MigrateArgs {
    /// The setting groups the command reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        match &self.command {
            MigrateCommand::OpenaiEval(args) => {
                let mut groups = args.target.groups();
                groups.push(&args.graders);
                groups.push(&args.model);
                groups
            }
        }
    }
}

/// The migrations.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// An OpenAI eval: testing_criteria → grader definitions, items → a dataset, output items →
    /// recorded runs with grader results.
    OpenaiEval(OpenaiEvalArgs),
}

/// `flywheel migrate openai-eval`.
#[derive(Debug, Args)]
pub struct OpenaiEvalArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The eval definition: the body of OpenAI's POST /v1/evals, or the Eval it returned.
    #[arg(long)]
    pub eval: PathBuf,
    /// The items JSONL file (a line {"item": {...}, "sample"?: {...}} per row).
    #[arg(long)]
    pub items: PathBuf,
    /// The output items of one eval run, a JSON object per line.
    #[arg(long)]
    pub output_items: Option<PathBuf>,
    /// The prompt: an existing one; with --new-prompt the id of the one to create [default:
    /// from the eval's name].
    #[arg(long, required_unless_present = "new_prompt")]
    pub prompt: Option<String>,
    /// Create the prompt (refused if it exists): described after the eval, its first version
    /// from --prompt-template.
    #[arg(long)]
    pub new_prompt: bool,
    /// With --new-prompt, the file of its first version's template [default: a line
    /// `name: {{name}}` per property of the eval's item_schema].
    #[arg(long, requires = "new_prompt")]
    pub prompt_template: Option<PathBuf>,
    /// The dataset's name [default: from the eval's name].
    #[arg(long)]
    pub dataset: Option<String>,
    /// Grader components and limits (database mode).
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Model endpoints of model graders (database mode).
    #[command(flatten)]
    pub model: ModelArgs,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Runs `flywheel migrate`.
pub async fn run(args: MigrateArgs, settings: Settings) -> anyhow::Result<()> {
    let MigrateCommand::OpenaiEval(args) = args.command;
    let eval_text = read(&args.eval)?;
    let eval = serde_json::from_str(&eval_text)
        .with_context(|| format!("{} is not JSON", args.eval.display()))?;
    let request = MigrateOpenaiEval {
        prompt_id: args.prompt.clone().unwrap_or_default(),
        new_prompt: args.new_prompt,
        prompt_content: args.prompt_template.as_deref().map(read).transpose()?,
        eval,
        items: read(&args.items)?,
        output_items: args.output_items.as_deref().map(read).transpose()?,
        dataset: args.dataset.clone(),
    };
    let migrated: Migrated = match &args.target.server {
        Some(server) => {
            let client = ApiClient::new(server, args.target.token.clone())?;
            let body = serde_json::to_value(&request).context("encoding the request")?;
            let answer = client
                .call(Method::POST, &["api", "migrate", "openai-eval"], Some(body))
                .await;
            if let Err(error) = &answer
                && let Some(server) = error.downcast_ref::<ServerError>()
                && let Some(problems) = server
                    .details
                    .as_ref()
                    .and_then(|d| d.get("problems"))
                    .and_then(|p| p.as_array())
            {
                // The same lines as database mode, before the error itself.
                for problem in problems {
                    eprintln!(
                        "{}: {}",
                        problem["at"].as_str().unwrap_or("?"),
                        problem["message"].as_str().unwrap_or_default()
                    );
                }
            }
            answer?
        }
        None => {
            let store = crate::server::open_database(&settings).await?;
            let registry = super::graders::load_registry(&settings).await?;
            let actor = args.target.actor.clone().unwrap_or_else(|| {
                let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
                format!("cli:{user}")
            });
            match crate::migrate::openai_eval::migrate(&store, &registry, request, &actor).await {
                Ok(migrated) => migrated,
                Err(MigrateError::Refused { problems, more }) => {
                    for problem in &problems {
                        eprintln!("{}: {}", problem.at, problem.message);
                    }
                    if more > 0 {
                        eprintln!("… and {more} more");
                    }
                    bail!("{} problem(s); nothing was migrated", problems.len() + more);
                }
                Err(other) => return Err(other.into()),
            }
        }
    };
    if args.target.json {
        println!("{}", serde_json::to_string_pretty(&migrated)?);
    } else {
        println!(
            "migrated into prompt {}: graders {}; dataset {} version {} ({} rows); {} runs ({} new), {} grader results",
            migrated.prompt_id,
            if migrated.graders.is_empty() {
                "none".to_owned()
            } else {
                migrated.graders.join(", ")
            },
            migrated.dataset.name,
            migrated.dataset.version,
            migrated.dataset.row_count,
            migrated.runs,
            migrated.runs_created,
            migrated.grader_results,
        );
    }
    Ok(())
}
