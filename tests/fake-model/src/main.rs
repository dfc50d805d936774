//! `fake-model`: runs the scriptable OpenAI-compatible fake server by hand, for trying a client
//! or a benchmark against a model that answers in a known time. Loopback only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fake_model::{Behaviour, FakeModel, UsageMode};

/// Serves `POST /v1/chat/completions` and `POST /v1/embeddings` on 127.0.0.1 until Ctrl-C.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Milliseconds every answer waits before it is sent.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The content of every chat answer.
    #[arg(long, default_value = r#"{"result": 1, "steps": []}"#)]
    answer: String,
    /// Prompt and completion tokens reported per answer (computed from lengths when absent).
    #[arg(long, num_args = 2, value_names = ["PROMPT", "COMPLETION"])]
    usage: Option<Vec<u32>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
    let fake = FakeModel::start_on(addr).context("starting the fake model server")?;
    fake.set_default(Behaviour::answer(args.answer))
        .set_latency(Duration::from_millis(args.latency_ms));
    if let Some([prompt, completion]) = args.usage.as_deref() {
        fake.set_usage(UsageMode::Fixed(*prompt, *completion));
    }
    println!("fake-model listening on {}", fake.base_url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the signal runtime")?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .context("waiting for Ctrl-C")?;
    println!("fake-model served {} calls", fake.calls());
    Ok(())
}
