//! `flywheel demo`: the whole flywheel on a fresh data directory (see [`crate::demo`]).

use clap::Args;

use crate::config::Settings;
use crate::config::args::{GraderArgs, LogArgs, Overlay, StorageArgs};

/// Options of `flywheel demo`: where the data goes, and the grader limits.
#[derive(Debug, Args)]
#[command(after_help = "\
Runs the whole loop on a fresh data directory against a simulated AutoDev and a built-in model:
records planner runs with outcomes, grades and annotates them, snapshots and exports a dataset,
imports an improved prompt, evaluates it against the active one, A/B tests it with simulated
traffic and deploys it when the test says so. Afterwards `flywheel serve --data-dir DIR` shows
everything in the web pages. A data directory that holds anything is refused.")]
pub struct DemoArgs {
    /// Database and data directory (a new or empty directory).
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Grader components and limits.
    #[command(flatten)]
    pub graders: GraderArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

impl DemoArgs {
    /// The setting groups `demo` reads from its flags.
    pub fn groups(&self) -> Vec<&dyn Overlay> {
        vec![&self.storage, &self.graders, &self.log]
    }
}

/// Runs the demo, then ends the process at once.
///
/// The grader registry compiles every built-in component in blocking threads when the server
/// starts; the Python grader alone takes most of a minute in a debug build, and the demo needs
/// only `files-match` and `score-model`. Returning normally would make the runtime wait for those
/// compilations before the process ends, so the demo exits as soon as it is done: the server is
/// already shut down, every write is committed, and a compiled component reaches the cache only
/// by rename, so none is left half-written.
pub async fn run(_args: DemoArgs, settings: Settings) -> anyhow::Result<()> {
    crate::demo::run(settings).await?;
    use std::io::Write;
    std::io::stdout().flush().ok();
    std::process::exit(0)
}
