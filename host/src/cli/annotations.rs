//! `flywheel annotate`, `flywheel failure-modes …` and `flywheel annotation-queue`: a person's
//! annotation of a run, the failure-mode taxonomy and its counts table, and the runs waiting for
//! a person. Database mode goes through [`crate::annotations`] (the same checks as the API);
//! `--server` mode calls the API, which records the token's name as the annotator.

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::json;
use uuid::Uuid;

use super::target::{Target, TargetArgs, print_json};
use crate::annotations::{self, AnnotationRequest};
use crate::config::Settings;
use crate::store::{CurrentAnnotation, FailureMode, FailureModeCounts, QueuePage, Rating};

/// `flywheel annotate`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct AnnotateArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The run's id.
    pub run_id: Uuid,
    /// The rating.
    #[arg(long, value_enum, required_unless_present = "clear")]
    pub rating: Option<RatingArg>,
    /// A code of the prompt's failure-mode taxonomy (`flywheel failure-modes list <prompt>`).
    #[arg(long, conflicts_with = "clear")]
    pub failure_mode: Option<String>,
    /// A critique of the output.
    #[arg(long, conflicts_with = "clear")]
    pub feedback: Option<String>,
    /// Remove the run's annotation instead (kept in its history).
    #[arg(long, conflicts_with = "rating")]
    pub clear: bool,
}

/// A rating on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RatingArg {
    /// The output was right.
    Good,
    /// The output was wrong.
    Bad,
}

impl From<RatingArg> for Rating {
    fn from(rating: RatingArg) -> Self {
        match rating {
            RatingArg::Good => Rating::Good,
            RatingArg::Bad => Rating::Bad,
        }
    }
}

/// `flywheel failure-modes`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct FailureModesArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which failure-modes command.
    #[command(subcommand)]
    pub command: FailureModesCommand,
}

/// The failure-modes commands.
#[derive(Debug, Subcommand)]
pub enum FailureModesCommand {
    /// List a prompt's failure-mode taxonomy.
    #[command(after_help = super::AFTER_HELP)]
    List {
        /// Prompt id, such as planner.
        prompt: String,
    },
    /// Add a code to a prompt's taxonomy.
    #[command(after_help = super::AFTER_HELP)]
    Add {
        /// Prompt id.
        prompt: String,
        /// 1 to 50 lower-case letters, digits and `_`, starting with a letter.
        code: String,
        /// What the code means.
        #[arg(long)]
        description: String,
    },
    /// The axial-coding table: per code the count and share of failed runs, and the failed runs
    /// with no code yet.
    #[command(after_help = super::AFTER_HELP)]
    Counts {
        /// Prompt id.
        prompt: String,
        /// Count only this version's runs [default: every version].
        #[arg(long)]
        version: Option<i64>,
    },
}

/// `flywheel annotation-queue`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct AnnotationQueueArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Prompt id.
    pub prompt: String,
    /// Runs per page (1 to 500).
    #[arg(long, default_value_t = annotations::DEFAULT_QUEUE_LIMIT)]
    pub limit: u32,
    /// The cursor printed after the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// Runs `flywheel annotate`.
pub async fn annotate(args: AnnotateArgs, settings: Settings) -> anyhow::Result<()> {
    let target = Target::open(&args.target, &settings).await?;
    let run = args.run_id.to_string();
    let segments = ["api", "runs", run.as_str(), "annotation"];
    if args.clear {
        match &target {
            Target::Database { registry, actor } => {
                annotations::clear(registry.store(), args.run_id, actor).await?;
            }
            Target::Server(client) => {
                client
                    .call_no_content(Method::DELETE, &segments, None)
                    .await?;
            }
        }
        println!("cleared the annotation of run {run}");
        return Ok(());
    }
    let rating = args
        .rating
        .expect("clap requires --rating without --clear")
        .into();
    let request = AnnotationRequest {
        rating,
        output_feedback: args.feedback,
        failure_mode: args.failure_mode,
    };
    let current: CurrentAnnotation = match &target {
        Target::Database { registry, actor } => {
            annotations::annotate(registry.store(), args.run_id, request, actor).await?
        }
        Target::Server(client) => {
            client
                .call(
                    Method::PUT,
                    &segments,
                    Some(serde_json::to_value(&request)?),
                )
                .await?
        }
    };
    if args.target.json {
        return print_json(&current);
    }
    let mode = current
        .failure_mode
        .as_deref()
        .map_or(String::new(), |code| format!(" ({code})"));
    println!(
        "run {run}: {}{mode} by {}",
        current.rating.as_str(),
        current.annotated_by
    );
    Ok(())
}

/// Runs `flywheel failure-modes …`.
pub async fn failure_modes(args: FailureModesArgs, settings: Settings) -> anyhow::Result<()> {
    let json = args.target.json;
    let target = Target::open(&args.target, &settings).await?;
    match args.command {
        FailureModesCommand::List { prompt } => {
            let modes: Vec<FailureMode> = match &target {
                Target::Database { registry, .. } => registry.failure_modes(&prompt).await?,
                Target::Server(client) => {
                    client
                        .call(
                            Method::GET,
                            &["api", "prompts", &prompt, "failure-modes"],
                            None,
                        )
                        .await?
                }
            };
            if json {
                return print_json(&modes);
            }
            for mode in modes {
                println!("{:<32} {}", mode.code, mode.description);
            }
        }
        FailureModesCommand::Add {
            prompt,
            code,
            description,
        } => {
            let added: FailureMode = match &target {
                Target::Database { registry, .. } => {
                    annotations::add_failure_mode(registry.store(), &prompt, &code, &description)
                        .await?
                }
                Target::Server(client) => {
                    client
                        .call(
                            Method::POST,
                            &["api", "prompts", &prompt, "failure-modes"],
                            Some(json!({ "code": code, "description": description })),
                        )
                        .await?
                }
            };
            if json {
                return print_json(&added);
            }
            println!(
                "added {} to the taxonomy of {}",
                added.code, added.prompt_id
            );
        }
        FailureModesCommand::Counts { prompt, version } => {
            let counts: FailureModeCounts = match &target {
                Target::Database { registry, .. } => {
                    registry
                        .store()
                        .failure_mode_counts(&prompt, version)
                        .await?
                }
                Target::Server(client) => {
                    let query: Vec<(&str, String)> = version
                        .map(|v| ("version", v.to_string()))
                        .into_iter()
                        .collect();
                    client
                        .call_with_query(
                            Method::GET,
                            &["api", "prompts", &prompt, "failure-modes", "counts"],
                            &query,
                            None,
                        )
                        .await?
                }
            };
            if json {
                return print_json(&counts);
            }
            print!("{}", counts_table(&counts));
        }
    }
    Ok(())
}

/// Runs `flywheel annotation-queue`.
pub async fn queue(args: AnnotationQueueArgs, settings: Settings) -> anyhow::Result<()> {
    let target = Target::open(&args.target, &settings).await?;
    let page: QueuePage = match &target {
        Target::Database { registry, .. } => {
            annotations::queue(
                registry.store(),
                &args.prompt,
                Some(args.limit),
                args.cursor.as_deref(),
            )
            .await?
        }
        Target::Server(client) => {
            let mut query = vec![("limit", args.limit.to_string())];
            if let Some(cursor) = &args.cursor {
                query.push(("cursor", cursor.clone()));
            }
            client
                .call_with_query(
                    Method::GET,
                    &["api", "prompts", &args.prompt, "annotation-queue"],
                    &query,
                    None,
                )
                .await?
        }
    };
    if args.target.json {
        return print_json(&page);
    }
    println!(
        "{:<36}  {:>7}  {:<6}  {:<20}  TASK",
        "RUN", "VERSION", "FAILED", "RECORDED"
    );
    for run in &page.items {
        println!(
            "{:<36}  {:>7}  {:<6}  {:<20}  {}",
            run.id,
            run.version,
            if run.failed { "yes" } else { "" },
            run.created_at.format("%Y-%m-%d %H:%M:%S"),
            run.task_id
        );
    }
    if let Some(next) = &page.next_cursor {
        println!("more: --cursor {next}");
    }
    Ok(())
}

/// The counts as a table a person reads: one line per code, then the uncoded runs and the total.
fn counts_table(counts: &FailureModeCounts) -> String {
    let share = |share: Option<f64>| share.map_or("-".to_owned(), |s| format!("{:.1}%", s * 100.0));
    let mut out = format!(
        "{:<32} {:>6} {:>7}  DESCRIPTION\n",
        "FAILURE MODE", "COUNT", "SHARE"
    );
    for row in &counts.codes {
        out.push_str(&format!(
            "{:<32} {:>6} {:>7}  {}\n",
            row.code,
            row.count,
            share(row.share),
            row.description
        ));
    }
    out.push_str(&format!(
        "{:<32} {:>6} {:>7}\n",
        "(no code yet)",
        counts.uncoded,
        share(counts.uncoded_share)
    ));
    let scope = counts
        .version
        .map_or("every version".to_owned(), |v| format!("version {v}"));
    out.push_str(&format!(
        "failed runs of {} ({scope}): {}\n",
        counts.prompt_id, counts.failed_runs
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FailureModeCount;

    #[test]
    fn the_counts_table_shows_counts_shares_and_the_uncoded_runs() {
        let counts = FailureModeCounts {
            prompt_id: "planner".to_owned(),
            version: Some(2),
            failed_runs: 4,
            codes: vec![
                FailureModeCount {
                    code: "wrong_files".to_owned(),
                    description: "Wrong files".to_owned(),
                    count: 3,
                    share: Some(0.75),
                },
                FailureModeCount {
                    code: "incomplete_plan".to_owned(),
                    description: "Incomplete".to_owned(),
                    count: 0,
                    share: Some(0.0),
                },
            ],
            uncoded: 1,
            uncoded_share: Some(0.25),
        };
        let table = counts_table(&counts);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("FAILURE MODE"), "{table}");
        assert!(
            lines[1].starts_with("wrong_files")
                && lines[1].contains(" 3 ")
                && lines[1].contains("75.0%"),
            "{table}"
        );
        assert!(lines[2].contains("0.0%"), "{table}");
        assert!(
            lines[3].starts_with("(no code yet)") && lines[3].contains("25.0%"),
            "{table}"
        );
        assert_eq!(lines[4], "failed runs of planner (version 2): 4");
    }
}
