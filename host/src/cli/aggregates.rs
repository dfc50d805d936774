//! `flywheel recompute-aggregates`: rebuilds the running aggregates (per-version figures, per-arm
//! A/B totals) from the stored rows, in the database or through a running service
//! (`POST /api/operations/recompute-aggregates`, admin). For a database whose rows were written
//! around the service; the writers keep the aggregates current otherwise.

use std::time::Instant;

use clap::Args;
use reqwest::Method;

use super::target::{Target, TargetArgs, print_json};
use crate::api::aggregates::Recomputed;
use crate::config::Settings;

/// `flywheel recompute-aggregates`.
#[derive(Debug, Args)]
#[command(after_help = super::AFTER_HELP)]
pub struct RecomputeArgs {
    /// Database or server.
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Rebuilds the aggregates and says how long it took.
pub async fn run(args: RecomputeArgs, settings: Settings) -> anyhow::Result<()> {
    let answer = match Target::open(&args.target, &settings).await? {
        Target::Database { registry, .. } => {
            let started = Instant::now();
            registry.store().recompute_aggregates().await?;
            Recomputed {
                status: "recomputed".to_owned(),
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }
        }
        Target::Server(client) => {
            client
                .call(
                    Method::POST,
                    &["api", "operations", "recompute-aggregates"],
                    None,
                )
                .await?
        }
    };
    if args.target.json {
        return print_json(&answer);
    }
    println!(
        "recomputed the figures of every version and the totals of every A/B test in {} ms",
        answer.elapsed_ms
    );
    Ok(())
}
