//! `flywheel datasets …`: create a dataset version from recorded runs (`create`) or an OpenAI
//! eval JSONL file (`upload`), list datasets, show one with its versions, print a version's rows,
//! delete one. Database mode or `--server`, like the prompt commands; both go through the same
//! checks ([`crate::datasets::create`] or the server's).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use reqwest::Method;

use super::client::ApiClient;
use super::target::{TargetArgs, print_json};
use crate::api::datasets::{RowsPage, decode_cursor, encode_cursor};
use crate::config::Settings;
use crate::datasets::{CreateDataset, SnapshotFilter};
use crate::store::{Dataset, DatasetVersion, Rating, RowQuery, Split, Store};

/// `flywheel datasets`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct DatasetsArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which datasets command.
    #[command(subcommand)]
    pub command: DatasetsCommand,
}

/// The datasets commands.
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Snapshot the prompt's recorded runs matching the filter as a new version of the dataset
    /// (created when the name is new); later annotations do not change it.
    #[command(after_help = super::AFTER_HELP)]
    Create {
        /// Dataset name (a-z, 0-9, `_`, `.`, `-`).
        name: String,
        /// The prompt whose runs to copy.
        #[arg(long)]
        prompt: String,
        /// Only runs of this prompt version.
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
        /// Only runs recorded at or after this time (RFC 3339).
        #[arg(long)]
        from: Option<DateTime<Utc>>,
        /// Only runs recorded before this time (RFC 3339).
        #[arg(long)]
        to: Option<DateTime<Utc>>,
        /// Share of rows in the validation split, 0 to 1 [default: 0.2].
        #[arg(long)]
        validation_fraction: Option<f64>,
    },
    /// Upload an OpenAI eval JSONL file (`{"item": {...}, "sample"?: {...}}` per line) as a new
    /// version of the dataset.
    #[command(after_help = super::AFTER_HELP)]
    Upload {
        /// Dataset name.
        name: String,
        /// The prompt the dataset belongs to.
        #[arg(long)]
        prompt: String,
        /// The JSONL file.
        #[arg(long)]
        file: PathBuf,
        /// Share of rows in the validation split, 0 to 1 [default: 0.2].
        #[arg(long)]
        validation_fraction: Option<f64>,
    },
    /// List datasets with their latest version.
    #[command(after_help = super::AFTER_HELP)]
    List {
        /// Only this prompt's datasets.
        #[arg(long)]
        prompt: Option<String>,
    },
    /// Print a dataset's versions: source, rows, train/validation counts.
    #[command(after_help = super::AFTER_HELP)]
    Show {
        /// Dataset name.
        name: String,
    },
    /// Print a page of a version's rows as OpenAI eval JSONL (`--json`: the page with ids,
    /// splits and the next cursor).
    #[command(after_help = super::AFTER_HELP)]
    Rows {
        /// Dataset name.
        name: String,
        /// Version [default: the latest].
        #[arg(long)]
        version: Option<i64>,
        /// Only rows of this split.
        #[arg(long, value_parser = ["train", "validation"])]
        split: Option<String>,
        /// Rows per page, 1 to 1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// The cursor printed after the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Delete a dataset with every version and row (admin token in server mode).
    #[command(after_help = super::AFTER_HELP)]
    Delete {
        /// Dataset name.
        name: String,
    },
}

enum DatasetsTarget {
    Database {
        store: Arc<dyn Store>,
        actor: String,
    },
    Server(ApiClient),
}

/// Runs a datasets command.
pub async fn run(args: DatasetsArgs, settings: Settings) -> anyhow::Result<()> {
    let json_output = args.target.json;
    let target = match &args.target.server {
        Some(server) => DatasetsTarget::Server(ApiClient::new(server, args.target.token.clone())?),
        None => DatasetsTarget::Database {
            store: crate::server::open_database(&settings).await?,
            actor: args.target.actor.clone().unwrap_or_else(|| {
                let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
                format!("cli:{user}")
            }),
        },
    };
    match args.command {
        DatasetsCommand::Create {
            name,
            prompt,
            version,
            rating,
            failure_mode,
            annotated,
            from,
            to,
            validation_fraction,
        } => {
            let request = CreateDataset {
                prompt_id: prompt,
                name,
                filter: Some(SnapshotFilter {
                    version,
                    rating: rating.as_deref().and_then(Rating::parse),
                    failure_mode,
                    annotated,
                    from,
                    to,
                }),
                validation_fraction,
                ..CreateDataset::default()
            };
            let created = create(&target, request).await?;
            print_created(&created, json_output)
        }
        DatasetsCommand::Upload {
            name,
            prompt,
            file,
            validation_fraction,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let request = CreateDataset {
                prompt_id: prompt,
                name,
                jsonl: Some(text),
                validation_fraction,
                ..CreateDataset::default()
            };
            let created = create(&target, request).await?;
            print_created(&created, json_output)
        }
        DatasetsCommand::List { prompt } => {
            let datasets: Vec<Dataset> = match &target {
                DatasetsTarget::Database { store, .. } => {
                    store.list_datasets(prompt.as_deref()).await?
                }
                DatasetsTarget::Server(client) => {
                    let query: Vec<(&str, String)> =
                        prompt.map(|p| ("promptId", p)).into_iter().collect();
                    client
                        .call_with_query(Method::GET, &["api", "datasets"], &query, None)
                        .await?
                }
            };
            if json_output {
                return print_json(&datasets);
            }
            println!(
                "{:<32} {:<12} {:>6} {:>7} {:>7} {:>10}",
                "NAME", "PROMPT", "LATEST", "ROWS", "TRAIN", "VALIDATION"
            );
            for d in &datasets {
                if let Some(v) = d.versions.last() {
                    println!(
                        "{:<32} {:<12} {:>6} {:>7} {:>7} {:>10}",
                        d.name,
                        d.prompt_id,
                        format!("v{}", v.version),
                        v.row_count,
                        v.train_count,
                        v.validation_count
                    );
                }
            }
            Ok(())
        }
        DatasetsCommand::Show { name } => {
            let dataset: Dataset = match &target {
                DatasetsTarget::Database { store, .. } => store.get_dataset(&name).await?,
                DatasetsTarget::Server(client) => {
                    client
                        .call(Method::GET, &["api", "datasets", &name], None)
                        .await?
                }
            };
            if json_output {
                return print_json(&dataset);
            }
            println!("dataset:  {}", dataset.name);
            println!("prompt:   {}", dataset.prompt_id);
            println!();
            println!(
                "{:>7}  {:<5}  {:>7} {:>7} {:>10} {:>8}  {:<20}  BY",
                "VERSION", "FROM", "ROWS", "TRAIN", "VALIDATION", "FRACTION", "CREATED"
            );
            for v in &dataset.versions {
                println!(
                    "{:>7}  {:<5}  {:>7} {:>7} {:>10} {:>8}  {:<20}  {}",
                    v.version,
                    v.source.as_str(),
                    v.row_count,
                    v.train_count,
                    v.validation_count,
                    v.validation_fraction,
                    v.created_at.format("%Y-%m-%d %H:%M:%S"),
                    v.created_by.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        DatasetsCommand::Rows {
            name,
            version,
            split,
            limit,
            cursor,
        } => {
            let page = rows(&target, &name, version, split, limit, cursor).await?;
            if json_output {
                return print_json(&page);
            }
            for row in &page.items {
                let line = serde_json::json!({ "item": row.item, "sample": row.sample });
                println!("{line}");
            }
            if let Some(next) = &page.next_cursor {
                eprintln!("more rows: --cursor {next}");
            }
            Ok(())
        }
        DatasetsCommand::Delete { name } => {
            match &target {
                DatasetsTarget::Database { store, .. } => store.delete_dataset(&name).await?,
                DatasetsTarget::Server(client) => {
                    client
                        .call_no_content(Method::DELETE, &["api", "datasets", &name], None)
                        .await?
                }
            }
            if !json_output {
                println!("deleted dataset {name}");
            }
            Ok(())
        }
    }
}

async fn create(target: &DatasetsTarget, request: CreateDataset) -> anyhow::Result<DatasetVersion> {
    match target {
        DatasetsTarget::Database { store, actor } => {
            Ok(crate::datasets::create(store, request, actor).await?)
        }
        DatasetsTarget::Server(client) => {
            let body = serde_json::to_value(&request).context("encoding the request")?;
            client
                .call(Method::POST, &["api", "datasets"], Some(body))
                .await
        }
    }
}

fn print_created(created: &DatasetVersion, json_output: bool) -> anyhow::Result<()> {
    if json_output {
        return print_json(created);
    }
    println!(
        "created {} v{}: {} rows ({} train, {} validation)",
        created.name,
        created.version,
        created.row_count,
        created.train_count,
        created.validation_count
    );
    Ok(())
}

async fn rows(
    target: &DatasetsTarget,
    name: &str,
    version: Option<i64>,
    split: Option<String>,
    limit: u32,
    cursor: Option<String>,
) -> anyhow::Result<RowsPage> {
    match target {
        DatasetsTarget::Database { store, .. } => {
            let mut query = RowQuery {
                version,
                split: split.as_deref().and_then(Split::parse),
                after: None,
            };
            if let Some(cursor) = cursor.as_deref() {
                let (v, after) = decode_cursor(cursor).ok_or_else(|| {
                    anyhow!("--cursor {cursor:?} is not a cursor this command printed")
                })?;
                query.version = Some(v);
                query.after = Some(after);
            }
            let (version, mut items) = store.dataset_rows(name, &query, limit + 1).await?;
            let more = items.len() > limit as usize;
            items.truncate(limit as usize);
            let next_cursor = more
                .then(|| items.last().map(|r| encode_cursor(version, r.index)))
                .flatten();
            Ok(RowsPage {
                name: name.to_owned(),
                version,
                items,
                next_cursor,
            })
        }
        DatasetsTarget::Server(client) => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(v) = version {
                query.push(("version", v.to_string()));
            }
            if let Some(s) = split {
                query.push(("split", s));
            }
            if let Some(c) = cursor {
                query.push(("cursor", c));
            }
            client
                .call_with_query(
                    Method::GET,
                    &["api", "datasets", name, "rows"],
                    &query,
                    None,
                )
                .await
        }
    }
}
