//! Resolve throughput and p99 latency on loopback, against a trivial axum handler measured in
//! the same run (issue 2, item 11). Not a criterion benchmark: the figures are a load test's
//! (requests per second at 32 keep-alive connections, latency percentiles), which criterion's
//! per-iteration model does not give.
//!
//! Then the same resolve while an A/B test of the prompt runs (arm assignment by hash, the
//! exposure queued for the background writer) against resolve without one, in alternating
//! rounds of the same run (issue 13, item 6: target ≥ 90%).
//!
//! Run: `cargo bench -p flywheel --bench resolve` (env `FLYWHEEL_BENCH_REQUESTS`, default 40000
//! per round; `FLYWHEEL_BENCH_ROUNDS`, default 7: on a 2-core VM with steal time, 3 rounds gave
//! ratios from 0.72 to 0.96 for one build). Targets: resolve ≥ 50% of the trivial handler's
//! throughput, resolve p99 < 2 ms.

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use flywheel::config::{ConfigArgs, Settings};
use serde_json::json;

const CONNECTIONS: usize = 32;
const AGENT_SECRET: &str = "bench-agent-secret";

/// What one load run measured.
struct Run {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// Sends `total` GETs to `url` over `CONNECTIONS` concurrent keep-alive connections; a `{n}` in
/// `url` becomes a different value for every request (a task id per request).
async fn load(client: &reqwest::Client, url: &str, token: Option<&str>, total: usize) -> Run {
    let per_connection = total / CONNECTIONS;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..CONNECTIONS {
        let client = client.clone();
        let url = url.to_owned();
        let token = token.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_connection);
            for i in 0..per_connection {
                let t = Instant::now();
                let mut req = if url.contains("{n}") {
                    client.get(url.replace("{n}", &format!("{connection}-{i}")))
                } else {
                    client.get(&url)
                };
                if let Some(token) = &token {
                    req = req.bearer_auth(token);
                }
                let response = req.send().await.expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.bytes().await.expect("body");
                assert!(!body.is_empty());
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    Run {
        requests: latencies.len(),
        elapsed: started.elapsed(),
        latencies,
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn bench() {
    let total = env_usize("FLYWHEEL_BENCH_REQUESTS", 40_000);
    let rounds = env_usize("FLYWHEEL_BENCH_ROUNDS", 7);
    let dir = tempfile::tempdir().expect("temp dir");

    // The real application on a SQLite file.
    let args = ConfigArgs {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().display().to_string()),
        tokens: Some(format!("bench:agent:{AGENT_SECRET}").into()),
        ..ConfigArgs::default()
    };
    let settings = Settings::from_args(&args).expect("settings");
    let app = flywheel::server::start(settings).await.expect("app starts");
    let resolve_url = format!(
        "http://{}/api/prompts/planner/resolve?task_id=bench-task-42",
        app.addr
    );

    // The baseline: a trivial handler returning a small JSON document.
    let trivial = Router::new().route(
        "/trivial",
        get(|| async { Json(json!({ "promptId": "planner", "version": 1 })) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind trivial");
    let trivial_url = format!("http://{}/trivial", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, trivial).await });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .expect("client");
    // A fresh data directory compiles the built-in graders (the Python interpreter takes
    // seconds of both cores): not during the measured rounds.
    assert!(
        app.wait_for_builtins(std::time::Duration::from_secs(300))
            .await,
        "the built-in graders are not loaded after 300 s"
    );
    // Warm up both: connections, caches, allocator.
    load(&client, &trivial_url, None, 2_000).await;
    load(&client, &resolve_url, Some(AGENT_SECRET), 2_000).await;

    let mut trivial_runs = Vec::new();
    let mut resolve_runs = Vec::new();
    for _ in 0..rounds {
        trivial_runs.push(load(&client, &trivial_url, None, total).await);
        resolve_runs.push(load(&client, &resolve_url, Some(AGENT_SECRET), total).await);
    }
    let median = |runs: &mut Vec<Run>| -> Run {
        runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
        runs.remove(runs.len() / 2)
    };
    let trivial = median(&mut trivial_runs);
    let resolve = median(&mut resolve_runs);

    let line = |name: &str, r: &Run| {
        println!(
            "{name:<8} {:>10.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} requests, {} connections)",
            r.throughput(),
            r.percentile(50.0).as_secs_f64() * 1e3,
            r.percentile(99.0).as_secs_f64() * 1e3,
            r.requests,
            CONNECTIONS
        );
    };
    println!(
        "median of {rounds} rounds, cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    line("trivial", &trivial);
    line("resolve", &resolve);
    let ratio = resolve.throughput() / trivial.throughput();
    let p99 = resolve.percentile(99.0);
    println!(
        "resolve/trivial throughput ratio {:.2} (target >= 0.50); resolve p99 {:.3} ms (target < 2 ms); p99 ratio {:.2}",
        ratio,
        p99.as_secs_f64() * 1e3,
        p99.as_secs_f64() / trivial.percentile(99.0).as_secs_f64()
    );

    // Resolve during an A/B test, alternating with resolve without one.
    let registry = app.state.registry.clone();
    registry
        .create_version(
            "planner",
            flywheel::prompts::CreateVersion {
                content: "B: {{task}}".to_owned(),
                notes: None,
                parent_version: None,
            },
            "bench",
        )
        .await
        .expect("version 2");
    let start = || -> flywheel::prompts::StartAbTest {
        serde_json::from_value(json!({ "versionA": 1, "versionB": 2 })).expect("request")
    };
    registry
        .start_ab_test("planner", start(), 0.5, "bench")
        .await
        .expect("test starts");
    // A task per request: every resolve during the test is a new exposure to write.
    let per_task_url = format!(
        "http://{}/api/prompts/planner/resolve?task_id=bench-{{n}}",
        app.addr
    );
    load(&client, &per_task_url, Some(AGENT_SECRET), 2_000).await;
    let mut with_test = Vec::new();
    let mut without_test = Vec::new();
    for _ in 0..rounds {
        with_test.push(load(&client, &per_task_url, Some(AGENT_SECRET), total).await);
        registry
            .stop_ab_test("planner", "bench")
            .await
            .expect("test stops");
        without_test.push(load(&client, &per_task_url, Some(AGENT_SECRET), total).await);
        registry
            .start_ab_test("planner", start(), 0.5, "bench")
            .await
            .expect("test starts");
    }
    let with_test = median(&mut with_test);
    let without_test = median(&mut without_test);
    line("no test", &without_test);
    line("A/B", &with_test);
    println!(
        "A/B/no-test throughput ratio {:.2} (target >= 0.90); exposures dropped {}",
        with_test.throughput() / without_test.throughput(),
        registry.exposures_dropped()
    );
    drop(app);
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(bench());
}
