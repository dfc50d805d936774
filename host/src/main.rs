//! The `flywheel` binary: parse → settings → tracing → dispatch. Everything else is in the
//! library so tests can build the same application.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use flywheel::cli::{self, Cli};
use flywheel::config::{LogFormat, Settings};
use tracing_subscriber::EnvFilter;

/// A failure prints its message and its causes on one line (`error: opening database …: …`)
/// and exits with 1; never a stack backtrace, even with `RUST_BACKTRACE` set: the user made a
/// mistake or the environment failed, and the message says which.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_args(&cli.config())?;
    init_tracing(settings.log_format);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(cli::run(cli.command, settings))
}

/// Logs go to stderr so command output on stdout stays clean; `RUST_LOG` filters them.
fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
