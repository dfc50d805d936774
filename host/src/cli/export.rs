//! `flywheel export <prompt> --format F …`: a prompt's recorded runs, or one of its dataset
//! versions, as OpenAI eval JSONL, CSV or a promptfoo config, written to stdout or `--output
//! FILE` as it is read; with `--eval-definition FILE` (openai-jsonl), the matching OpenAI eval
//! definition is written to FILE too, and graders it cannot carry are listed on stderr.
//! Database mode goes through [`crate::export`] directly, `--server` mode through
//! `POST /api/prompts/{id}/export`; both make the same checks (`minRows` included) and redact
//! secrets the same way. At the end, database mode prints `redacted N values` to stderr; in
//! `--server` mode the count is in the server's log (its `export finished` line).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use reqwest::Method;

use super::client::ApiClient;
use super::target::TargetArgs;
use crate::config::Settings;
use crate::export::openai_eval::EvalDefinition;
use crate::export::{ExportFormat, ExportRequest};
use crate::store::Rating;

/// The formats `--format` takes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// OpenAI eval JSONL: a line `{"item", "sample"}` per row.
    OpenaiJsonl,
    /// CSV with a header line.
    Csv,
    /// A promptfoo config (JSON).
    Promptfoo,
}

/// `flywheel export`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct ExportArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
    /// The prompt.
    pub prompt: String,
    /// The format.
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// Export this dataset's rows instead of recorded runs.
    #[arg(long)]
    pub dataset: Option<String>,
    /// With --dataset, its version [default: the latest]; without, only runs of this prompt
    /// version.
    #[arg(long)]
    pub version: Option<i64>,
    /// Only runs recorded at or after this time (RFC 3339).
    #[arg(long)]
    pub from: Option<DateTime<Utc>>,
    /// Only runs recorded before this time (RFC 3339).
    #[arg(long)]
    pub to: Option<DateTime<Utc>>,
    /// Only runs rated good or bad.
    #[arg(long, value_parser = ["good", "bad"])]
    pub rating: Option<String>,
    /// Leave the annotation out of each run's row.
    #[arg(long)]
    pub no_annotations: bool,
    /// Refuse when fewer rows are annotated [default: PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION].
    #[arg(long)]
    pub min_rows: Option<u32>,
    /// Write here instead of stdout (removed again if the export fails).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// With openai-jsonl: also write the matching OpenAI eval definition (the body of
    /// `POST /v1/evals`) to this file.
    #[arg(long)]
    pub eval_definition: Option<PathBuf>,
}

/// Runs `flywheel export`.
pub async fn run(args: ExportArgs, settings: Settings) -> anyhow::Result<()> {
    let request = ExportRequest {
        format: match args.format {
            FormatArg::OpenaiJsonl => ExportFormat::OpenaiJsonl,
            FormatArg::Csv => ExportFormat::Csv,
            FormatArg::Promptfoo => ExportFormat::Promptfoo,
        },
        dataset: args.dataset,
        version: args.version,
        from: args.from,
        to: args.to,
        rating: args.rating.as_deref().and_then(Rating::parse),
        include_annotations: args.no_annotations.then_some(false),
        min_rows: args.min_rows,
    };
    if let Some(path) = &args.eval_definition {
        // Before the rows, so a refusal (wrong format, minRows) stops before anything is written.
        let definition = eval_definition(&args.target, &args.prompt, &request, &settings).await?;
        let text = serde_json::to_string_pretty(&definition.eval).context("encoding the eval")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        for left in &definition.not_exportable {
            eprintln!(
                "not exportable: grader {} ({}): {}",
                left.grader, left.kind, left.reason
            );
        }
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = write(&args.target, &args.prompt, request, &settings, &mut out).await;
    let flushed = written.and_then(|()| out.flush().context("writing the export"));
    drop(out);
    if flushed.is_err()
        && let Some(path) = &args.output
    {
        // A cut file must not pass for a whole export.
        let _ = std::fs::remove_file(path);
    }
    flushed
}

async fn eval_definition(
    target: &TargetArgs,
    prompt: &str,
    request: &ExportRequest,
    settings: &Settings,
) -> anyhow::Result<EvalDefinition> {
    match &target.server {
        Some(server) => {
            let client = ApiClient::new(server, target.token.clone())?;
            let body = serde_json::to_value(request).context("encoding the request")?;
            client
                .call(
                    Method::POST,
                    &["api", "prompts", prompt, "export", "openai-eval"],
                    Some(body),
                )
                .await
        }
        None => {
            let store = crate::server::open_database(settings).await?;
            Ok(crate::export::eval_definition(
                store,
                prompt,
                request.clone(),
                settings.min_samples_for_optimization,
            )
            .await?)
        }
    }
}

async fn write(
    target: &TargetArgs,
    prompt: &str,
    request: ExportRequest,
    settings: &Settings,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match &target.server {
        Some(server) => {
            let client = ApiClient::new(server, target.token.clone())?;
            let body = serde_json::to_value(&request).context("encoding the request")?;
            client
                .download(
                    Method::POST,
                    &["api", "prompts", prompt, "export"],
                    Some(body),
                    out,
                )
                .await?;
            // The server knows the count only after the body has gone; it logs it.
            eprintln!("redacted values: counted in the server's log (export finished)");
        }
        None => {
            let store = crate::server::open_database(settings).await?;
            let export = crate::export::prepare(
                store,
                prompt,
                request,
                settings.min_samples_for_optimization,
            )
            .await?;
            let redacted = export.redacted_values();
            for left in export.not_exported() {
                eprintln!(
                    "not exported: grader {} ({}): {}",
                    left.grader, left.kind, left.reason
                );
            }
            let mut stream = std::pin::pin!(export.stream());
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?).context("writing the export")?;
            }
            eprintln!(
                "redacted {} values",
                redacted.load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    Ok(())
}
