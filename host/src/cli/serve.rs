//! `flywheel serve`.

use clap::Args;

use crate::config::Settings;
use crate::config::args::{GraderArgs, LogArgs, ModelArgs, Overlay, ServiceArgs, StorageArgs};

/// Options of `flywheel serve`: every setting group. The address is `--bind` / `FLYWHEEL_BIND`
/// (default 127.0.0.1:8080); a non-loopback address needs `FLYWHEEL_TOKENS`.
#[derive(Debug, Args)]
#[command(after_help = "Stops gracefully on SIGINT or SIGTERM: requests in flight finish.")]
pub struct ServeArgs {
    /// Address, tokens and optimization settings.
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Database and data directory.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Grader components and limits.
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Model endpoints.
    #[command(flatten)]
    pub model: ModelArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl ServeArgs {
    /// The setting groups `serve` reads from its flags: all of them.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        vec![
            &self.service,
            &self.storage,
            &self.graders,
            &self.model,
            &self.log,
        ]
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(_args: ServeArgs, settings: Settings) -> anyhow::Result<()> {
    crate::server::serve(settings).await
}
