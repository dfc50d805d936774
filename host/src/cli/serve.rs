//! `flywheel serve`.

use clap::Args;

use crate::config::Settings;

/// Options of `flywheel serve`. The address is the global `--bind` / `FLYWHEEL_BIND`
/// (default 127.0.0.1:8080); a non-loopback address needs `FLYWHEEL_TOKENS`.
#[derive(Debug, Args)]
#[command(after_help = "Stops gracefully on SIGINT or SIGTERM: requests in flight finish.")]
pub struct ServeArgs {}

/// Serves until SIGINT or SIGTERM.
pub async fn run(_args: ServeArgs, settings: Settings) -> anyhow::Result<()> {
    crate::server::serve(settings).await
}
