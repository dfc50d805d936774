//! Issue 9, items 4, 6 and 7: what the grader runtime costs the rest of the service.
//!
//! - **Item 7, loading**: how long a good file dropped into the graders directory takes to be
//!   live (a) at first start, fresh compile cache, while the real built-ins (the ~20 MB Python
//!   interpreter among them) compile, and (b) while ten files whose `info()` loops until the
//!   2 s limit are loading.
//! - **Item 4, big batch results**: one `grade-batch` of 250 rows × 50 kB reasoning and of
//!   1000 rows × 5 kB (over one call's 4 MiB copy limit) against the same rows with a short
//!   reasoning, and (when built) the `python` grader on 1000 rows raising 5,000-character
//!   errors against 1000 rows raising short ones.
//! - **Item 6, HTTP under grader load**: resolve at 32 keep-alive connections (as in the
//!   `resolve` bench of `flywheel`), idle and while graders run at full load (the runtime's
//!   `max_concurrency` calls at once, each busy 100 ms, back to back), alternating rounds.
//!
//! Not criterion: these are latencies of whole operations and a load test.
//! Run: `cargo bench -p flywheel-e2e --bench grader_isolation` (env `FLYWHEEL_BENCH_REQUESTS`,
//! default 16000 per round; `FLYWHEEL_BENCH_ROUNDS`, default 3). Figures in BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flywheel::config::{ConfigArgs, Settings};
use flywheel::graders::cache::CompileCache;
use flywheel::graders::component::{self, GraderSource, LoadedGrader};
use flywheel::graders::{GraderRuntime, Outcome, Registry, RegistryOptions, RuntimeOptions};
use serde_json::json;

#[allow(dead_code)] // the bench uses a few of the test components
mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}
mod built {
    include!(concat!(env!("OUT_DIR"), "/python_grader.rs"));
}

const CONNECTIONS: usize = 32;
const AGENT_SECRET: &str = "bench-agent-secret";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn deploy(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// Polls every 5 ms until `name` is live, at most `limit`.
async fn live_after(registry: &Registry, name: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if registry.get(name).is_some() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn show(d: Option<Duration>) -> String {
    d.map_or("not live within the limit".into(), |d| {
        format!("{:.3} s", d.as_secs_f64())
    })
}

async fn loading() {
    // (a) First start: a runtime of its own (nothing compiled in memory), a fresh cache.
    let runtime = GraderRuntime::new(RuntimeOptions::default()).expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let cache = tempfile::tempdir().expect("dir");
    deploy(dir.path(), "mine.wasm", &read(components::ECHO_V1));
    let started = Instant::now();
    let registry = Registry::spawn(
        runtime,
        RegistryOptions {
            graders_dir: Some(dir.path().into()),
            cache_dir: Some(cache.path().into()),
            builtins: flywheel::graders::builtin::builtins(),
            watch: true,
        },
    );
    let file = live_after(&registry, "mine", Duration::from_secs(120)).await;
    while !registry.builtins_loaded() && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let builtins = started.elapsed();
    println!(
        "item 7a  first start, fresh cache: a dropped file live after {}; every built-in loaded after {:.3} s",
        show(file),
        builtins.as_secs_f64()
    );
    drop(registry);

    // (b) Ten files whose info() loops, then a good one.
    let runtime = GraderRuntime::process_wide().expect("runtime");
    let dir = tempfile::tempdir().expect("dir");
    let registry = Registry::start(
        runtime,
        RegistryOptions {
            graders_dir: Some(dir.path().into()),
            cache_dir: Some(cache.path().into()),
            builtins: Vec::new(),
            watch: true,
        },
    )
    .await;
    let slow = read(components::SLOW_INFO);
    for i in 0..10 {
        deploy(dir.path(), &format!("slow{i}.wasm"), &slow);
    }
    // Let the watcher see them and start loading before the good file comes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    deploy(dir.path(), "zz-good.wasm", &read(components::ECHO_V2));
    let good = live_after(&registry, "zz-good", Duration::from_secs(60)).await;
    println!(
        "item 7b  ten files with a looping info() loading: a good file dropped after them live after {} (target < 1 s)",
        show(good)
    );
    let started = Instant::now();
    while (0..10).any(|i| registry.load_error(&format!("slow{i}")).is_none())
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn load_component(runtime: &Arc<GraderRuntime>, name: &str, bytes: Vec<u8>) -> LoadedGrader {
    let cache = CompileCache::new(runtime.engine(), None);
    component::load(
        runtime,
        &cache,
        name,
        Arc::new(bytes),
        GraderSource::Builtin,
        1,
    )
    .await
    .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// Median wall time of `rounds` runs of `f`, and the last run's outcomes.
async fn timed<F, Fut>(rounds: usize, mut f: F) -> (Duration, Vec<Outcome>)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Vec<Outcome>>,
{
    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        last = f().await;
        times.push(started.elapsed());
    }
    times.sort();
    (times[times.len() / 2], last)
}

/// Rows graded in the batch's one instance: `calls-reason` scores 1, 2, 3… × 0.5 there.
fn one_instance(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .enumerate()
        .all(|(i, o)| o.score() == Some((i + 1) as f64 * 0.5))
}

async fn big_results(rounds: usize) {
    let runtime = GraderRuntime::process_wide().expect("runtime");
    let echo = load_component(&runtime, "echo", read(components::ECHO_V2)).await;
    for (rows, bytes) in [(250_usize, 50_000_usize), (1000, 5_000)] {
        let batch: Vec<(String, String)> = (0..rows)
            .map(|i| (format!("s{i}"), "item".to_string()))
            .collect();
        let big = format!("calls-reason:{bytes}");
        let (small_time, _) = timed(rounds, || {
            echo.grade_batch(&runtime, "calls-reason:10", &batch)
        })
        .await;
        let (big_time, outcomes) = timed(rounds, || echo.grade_batch(&runtime, &big, &batch)).await;
        println!(
            "item 4   echo, {rows} rows × {bytes} B reasoning: {:.1} ms vs {:.1} ms with 10 B (ratio {:.2}); graded in one instance: {}",
            big_time.as_secs_f64() * 1e3,
            small_time.as_secs_f64() * 1e3,
            big_time.as_secs_f64() / small_time.as_secs_f64(),
            one_instance(&outcomes)
        );
    }
    let Ok(path) = built::PYTHON_GRADER else {
        println!("item 4   python: not built, skipped");
        return;
    };
    let python = load_component(&runtime, "python", read(path)).await;
    let source = |n: usize| {
        json!({"type": "python", "name": "b", "source": format!(
            "def grade(sample, item):\n    raise ValueError('e' * {n})\n"
        )})
        .to_string()
    };
    let rows: Vec<(String, String)> = (0..1000)
        .map(|i| {
            (
                json!({"output_text": format!("r{i}")}).to_string(),
                json!({"reference": "r"}).to_string(),
            )
        })
        .collect();
    let (short_source, long_source) = (source(10), source(5000));
    let (short, _) = timed(rounds, || {
        python.grade_batch(&runtime, &short_source, &rows)
    })
    .await;
    let (long, _) = timed(rounds, || python.grade_batch(&runtime, &long_source, &rows)).await;
    println!(
        "item 4   python, 1000 rows raising 5,000-character errors: {:.0} ms vs {:.0} ms with 10-character errors (ratio {:.2})",
        long.as_secs_f64() * 1e3,
        short.as_secs_f64() * 1e3,
        long.as_secs_f64() / short.as_secs_f64()
    );
}

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Run {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

async fn load_http(client: &reqwest::Client, url: &str, total: usize) -> Run {
    let per_connection = total / CONNECTIONS;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = client.clone();
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_connection);
            for _ in 0..per_connection {
                let t = Instant::now();
                let response = client
                    .get(&url)
                    .bearer_auth(AGENT_SECRET)
                    .send()
                    .await
                    .expect("request");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("body");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("load task"));
    }
    Run {
        latencies,
        elapsed: started.elapsed(),
    }
}

async fn http_under_load(rounds: usize) {
    let total = env_usize("FLYWHEEL_BENCH_REQUESTS", 16_000);
    let dir = tempfile::tempdir().expect("dir");
    let args = ConfigArgs {
        bind: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().display().to_string()),
        tokens: Some(format!("bench:agent:{AGENT_SECRET}").into()),
        ..ConfigArgs::default()
    };
    let settings = Settings::from_args(&args).expect("settings");
    let app = flywheel::server::start(settings).await.expect("app starts");
    let url = format!(
        "http://{}/api/prompts/planner/resolve?task_id=bench-task-42",
        app.addr
    );
    // The service's own grader runtime: the load shares its threads and permits.
    let runtime = app.state.graders.runtime().clone();
    let echo = Arc::new(load_component(&runtime, "echo", read(components::ECHO_V2)).await);
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
    load_http(&client, &url, 2_000).await;

    let mut idle = Vec::new();
    let mut loaded = Vec::new();
    let mut calls = 0;
    for _ in 0..rounds {
        idle.push(load_http(&client, &url, total).await);
        let running = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..runtime.max_concurrency() {
            let (running, done, echo, runtime) =
                (running.clone(), done.clone(), echo.clone(), runtime.clone());
            workers.push(tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let outcome = echo.grade(&runtime, "spin-ms:100", "a", "a").await;
                    assert!(outcome.score().is_some(), "{outcome:?}");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // The graders are all busy before the requests start.
        tokio::time::sleep(Duration::from_millis(300)).await;
        loaded.push(load_http(&client, &url, total).await);
        running.store(false, Ordering::Relaxed);
        for worker in workers {
            worker.await.expect("grader load");
        }
        calls += done.load(Ordering::Relaxed);
    }
    let median = |runs: &mut Vec<Run>| -> Run {
        runs.sort_by_key(|r| r.percentile(99.0));
        runs.remove(runs.len() / 2)
    };
    let (idle, loaded) = (median(&mut idle), median(&mut loaded));
    let line = |name: &str, r: &Run| {
        println!(
            "item 6   resolve {name:<22} {:>8.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>8.3} ms",
            r.latencies.len() as f64 / r.elapsed.as_secs_f64(),
            r.percentile(50.0).as_secs_f64() * 1e3,
            r.percentile(99.0).as_secs_f64() * 1e3,
            r.percentile(100.0).as_secs_f64() * 1e3,
        );
    };
    line("idle", &idle);
    line("graders at full load", &loaded);
    println!(
        "item 6   p99 under load {:.3} ms (target < 2 ms), {:.2}× idle; {} grader calls of 100 ms ran during the loaded rounds",
        loaded.percentile(99.0).as_secs_f64() * 1e3,
        loaded.percentile(99.0).as_secs_f64() / idle.percentile(99.0).as_secs_f64(),
        calls
    );
    app.shutdown().await.expect("shutdown");
}

#[tokio::main]
async fn main() {
    let rounds = env_usize("FLYWHEEL_BENCH_ROUNDS", 3);
    println!(
        "cores: {}, rounds: {rounds} (median reported)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let only = std::env::var("FLYWHEEL_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only.contains('7') {
        loading().await;
    }
    if only.is_empty() || only.contains('4') {
        big_results(rounds).await;
    }
    if only.is_empty() || only.contains('6') {
        http_under_load(rounds).await;
    }
}
