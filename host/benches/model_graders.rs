//! Model-grader throughput (issue 4 item 6): rows per second of a `score_model` definition run
//! by the built-in `score-model` component in the real runtime (a fresh sandbox and model
//! session per row, the real model client with its concurrency limit) against the fake
//! OpenAI-compatible server on 127.0.0.1 answering every call after 50 ms.
//!
//! With a concurrency limit of 8 and 50 ms per call the ceiling is 8 / 0.05 s = 160 rows/s; the
//! figure shows how close the runtime, components and client come to it. Bounded: a fixed number
//! of rounds of a fixed number of rows.
//!
//! Run once, in release: `cargo bench -p flywheel --bench model_graders`
//! (`FLYWHEEL_BENCH_ROWS`, default 480, and `FLYWHEEL_BENCH_ROUNDS`, default 3, tune it).

use std::time::{Duration, Instant};

use fake_model::{Behaviour, FakeModel, UsageMode};
use flywheel::graders::definition::Definition;
use flywheel::graders::{GraderRuntime, Registry, RegistryOptions, RuntimeOptions};
use flywheel::grading::file::grade_rows_in;
use flywheel::llm::{EndpointSettings, LlmClient, LlmSettings};

/// The fake server's answer time.
const LATENCY: Duration = Duration::from_millis(50);
/// The model client's concurrency limit.
const CONCURRENCY: usize = 8;

fn env_number(name: &str, default: usize, max: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=max).contains(n))
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let rows = env_number("FLYWHEEL_BENCH_ROWS", 480, 10_000);
    let rounds = env_number("FLYWHEEL_BENCH_ROUNDS", 3, 20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(rows, rounds));
}

async fn run(rows: usize, rounds: usize) {
    let fake = FakeModel::start().expect("fake server");
    fake.set_latency(LATENCY)
        .set_usage(UsageMode::Fixed(120, 30))
        .set_default(Behaviour::answer(
            r#"{"steps":[{"description":"checked the answer","conclusion":"correct"}],"result":0.8}"#,
        ));
    let endpoint = EndpointSettings::new(&fake.base_url(), None).expect("valid URL");
    let settings = LlmSettings {
        max_concurrency: CONCURRENCY,
        ..LlmSettings::with_endpoint(endpoint)
    };
    let cache = tempfile::tempdir().expect("temp dir");
    let grader_runtime = GraderRuntime::new(RuntimeOptions {
        llm: Some(LlmClient::new(settings).expect("valid settings")),
        ..RuntimeOptions::default()
    })
    .expect("grader runtime");
    let registry = Registry::start(
        grader_runtime,
        RegistryOptions {
            graders_dir: None,
            cache_dir: Some(cache.path().to_path_buf()),
            builtins: flywheel::graders::builtin::builtins(),
            watch: false,
        },
    )
    .await;
    let definition = serde_json::json!({
        "type": "score_model",
        "name": "bench",
        "model": "judge-1",
        "input": [
            {"role": "system", "content": "Score the answer to {{item.question}} from 0 to 1."},
            {"role": "user", "content": "Answer: {{sample.output_text}}"}
        ],
        "pass_threshold": 0.5
    });
    let resolved = Definition::parse(&definition)
        .and_then(|d| d.resolve(&registry))
        .expect("the definition resolves");
    let lines: Vec<String> = (0..rows)
        .map(|i| {
            format!(
                r#"{{"item":{{"question":"what is {i} + {i}?"}},"sample":"{}"}}"#,
                2 * i
            )
        })
        .collect();
    let ceiling = CONCURRENCY as f64 / LATENCY.as_secs_f64();
    println!(
        "model graders: {rows} rows per round, {rounds} rounds, fake latency {} ms, concurrency {CONCURRENCY}, ceiling {ceiling:.0} rows/s",
        LATENCY.as_millis()
    );
    let mut rates = Vec::new();
    for round in 1..=rounds {
        let calls_before = fake.calls();
        let run = registry.runtime().new_run();
        let started = Instant::now();
        let (_, summary) = grade_rows_in(
            &resolved,
            registry.runtime(),
            &run,
            lines.iter().cloned().map(Ok),
            &mut |_| {},
        )
        .await;
        let elapsed = started.elapsed();
        assert_eq!(summary.graded, rows, "every row graded: {summary:?}");
        assert_eq!(fake.calls() - calls_before, rows, "one model call per row");
        let rate = rows as f64 / elapsed.as_secs_f64();
        rates.push(rate);
        println!(
            "round {round}: {rows} rows in {:.3} s = {rate:.1} rows/s ({:.1}% of the ceiling), max in flight {}",
            elapsed.as_secs_f64(),
            100.0 * rate / ceiling,
            fake.max_in_flight()
        );
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "median {median:.1} rows/s = {:.3} of the {ceiling:.0} rows/s ceiling",
        median / ceiling
    );
}
