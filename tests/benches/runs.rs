//! Benchmarks of recorded runs (issue 8, item 11), each against what it is judged by, measured
//! in the same run, on a SQLite file and on PostgreSQL:
//!
//! 1. **Ingestion**: `POST /api/runs` batches of 1000 over real HTTP to the real app, against a
//!    bare sqlx bulk insert of the same rows (one multi-row `INSERT` in one transaction) into the
//!    same table, rounds alternating, after the version already holds `FLYWHEEL_BENCH_PREFILL`
//!    runs (figures are running counters adjusted per write, so their cost must not grow with the
//!    version).
//! 2. **Grading job**: a grading job with the `string_check` definition over every stored run of
//!    the prompt (the prefilled ones and the ingested ones), end to end: rows fixed, read, graded
//!    in the sandbox, verdicts written; rows/s from the `POST` to `completed`.
//! 3. **Automatic grading lag**: runs recorded at `FLYWHEEL_BENCH_LAG_RATE` runs/s (batches of
//!    100) for `FLYWHEEL_BENCH_LAG_SECS` seconds with one enabled model-free definition; the lag
//!    of each run is `auto_graded_at − created_at` (both stamped by the server), and the queue of
//!    ungraded runs is sampled every second to show it stays bounded.
//!
//! Not criterion: these are load tests over a database that grows, which criterion's
//! per-iteration model does not fit. Run:
//!
//! ```sh
//! FLYWHEEL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p flywheel-e2e --bench runs
//! ```
//!
//! PostgreSQL is skipped (with a message) when `FLYWHEEL_TEST_POSTGRES_URL` is unset;
//! `FLYWHEEL_BENCH_BACKENDS=sqlite` (or `postgres`) runs one. Other knobs, with their defaults:
//! `FLYWHEEL_BENCH_PREFILL` (100000), `FLYWHEEL_BENCH_ROUNDS` (10 of each kind of batch),
//! `FLYWHEEL_BENCH_LAG_RATE` (1000), `FLYWHEEL_BENCH_LAG_SECS` (20). All traffic is to
//! 127.0.0.1. Figures and how they were taken: BENCHMARKS.md, "Runs".

use std::str::FromStr;
use std::time::{Duration, Instant};

use flywheel_e2e::{AGENT_TOKEN, Backend, READ_TOKEN, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::types::chrono::{DateTime, Utc};
use uuid::Uuid;

/// Runs per batch, both for the API and for the bare insert (the API's maximum).
const BATCH: usize = 1000;
/// The prompt every run belongs to: its one seeded definition, `verdict_agrees_with_merge`, is
/// a `string_check` that needs no model, so the automatic grader runs it on every new run.
const PROMPT: &str = "reviewer";
/// The definition the grading job applies.
const DEFINITION: &str = "verdict_agrees_with_merge";
/// Where the bare inserts go: another seeded prompt of the same table, so both kinds of batch
/// write to the same table and indexes, of the same size.
const BASELINE_PROMPT: &str = "fixer";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One run as the bench records it, the same for the API and the bare insert.
struct BenchRun {
    task_id: String,
    input: Value,
    output: String,
    tokens_in: i64,
    tokens_out: i64,
    latency_ms: i64,
}

/// A realistic reviewer run: ~1 KB of template variables, a ~300-byte JSON verdict.
fn bench_run(tag: &str, n: usize) -> BenchRun {
    let verdict = if n.is_multiple_of(2) {
        "approve"
    } else {
        "request_changes"
    };
    BenchRun {
        task_id: format!("{tag}-{n}"),
        input: json!({
            "diff": format!("--- a/src/parser_{n}.rs\n+++ b/src/parser_{n}.rs\n@@ -1,3 +1,3 @@\n-fn old() {{}}\n+fn new() {{}}\n {}", "context line\n".repeat(30)),
            "review_target": "main",
            "task_title": format!("Fix the parser edge case #{n}"),
            "task_description": "The parser drops the last token when the input ends without a newline; handle it and add a test.".repeat(3),
            "plan": "1. reproduce 2. fix the tokenizer 3. add a regression test",
            "test_log": "running 42 tests ... ok",
            // What AutoDev derives from the merge; the stored `pr_merged` wins when known.
            "expected_verdict": "approve",
        }),
        output: json!({
            "verdict": verdict,
            "summary": "The change fixes the tokenizer at end of input and adds a regression test; the diff is minimal and the naming follows the module.",
        })
        .to_string(),
        tokens_in: 1200 + (n % 300) as i64,
        tokens_out: 150 + (n % 50) as i64,
        latency_ms: 900 + (n % 700) as i64,
    }
}

fn api_run(run: &BenchRun) -> Value {
    json!({
        "promptId": PROMPT,
        "taskId": run.task_id,
        "input": run.input,
        "output": run.output,
        "model": "gpt-bench",
        "tokensIn": run.tokens_in,
        "tokensOut": run.tokens_out,
        "latencyMs": run.latency_ms,
    })
}

/// Direct access to the app's database, for the bare inserts and for reading timestamps.
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The columns of a bare insert: what the app's insert writes, plus `pr_merged` (so the
/// `string_check` has an expected verdict) and `auto_graded_at` (set, so the automatic grader
/// leaves prefilled and baseline rows alone).
const BARE_COLUMNS: &str = "id, prompt_id, version, task_id, run_key, attempt, input_variables, \
     output, model, prompt_tokens, completion_tokens, total_tokens, latency_ms, pr_merged, \
     created_at, updated_at, auto_graded_at";
const BARE_COLUMN_COUNT: usize = 17;

/// The bare insert's statement: plain `?` parameters on SQLite (`$N` ones are looked up by name
/// in a list, O(n²) to bind 17,000 of them), `$N` on PostgreSQL.
fn bare_insert_sql(numbered: bool, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=BARE_COLUMN_COUNT)
                .map(|c| {
                    if numbered {
                        format!("${}", row * BARE_COLUMN_COUNT + c)
                    } else {
                        "?".to_owned()
                    }
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO prompt_optimization_data ({BARE_COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

/// One multi-row `INSERT` of `runs` in one transaction, binding the same Rust types the app
/// binds (`$id` turns a uuid into the backend's id type).
macro_rules! bare_insert {
    ($pool:expr, $numbered:expr, $id:expr, $prompt:expr, $runs:expr) => {{
        let sql = bare_insert_sql($numbered, $runs.len());
        let at: DateTime<Utc> = Utc::now();
        let mut query = sqlx::query(&sql);
        for (n, run) in $runs.iter().enumerate() {
            query = query
                .bind($id(Uuid::now_v7()))
                .bind($prompt)
                .bind(1_i64)
                .bind(run.task_id.as_str())
                .bind("1")
                .bind(1_i64)
                .bind(Json(&run.input))
                .bind(Some(run.output.as_str()))
                .bind(Some("gpt-bench"))
                .bind(Some(run.tokens_in))
                .bind(Some(run.tokens_out))
                .bind(Some(run.tokens_in + run.tokens_out))
                .bind(Some(run.latency_ms))
                .bind(Some(!n.is_multiple_of(3)))
                .bind(at)
                .bind(at)
                .bind(Some(at));
        }
        let mut tx = $pool.begin().await.expect("begin");
        query.execute(&mut *tx).await.expect("bare insert");
        tx.commit().await.expect("commit");
    }};
}

impl Db {
    async fn open(backend: Backend, url: &str) -> Db {
        match backend {
            Backend::Sqlite => {
                // The app's own connection settings (WAL is the file's; synchronous NORMAL and
                // the busy timeout are per connection).
                let options = SqliteConnectOptions::from_str(url)
                    .expect("sqlite url")
                    .foreign_keys(true)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(60));
                Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(2)
                        .connect_with(options)
                        .await
                        .expect("open sqlite"),
                )
            }
            Backend::Postgres => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await
                    .expect("open postgres"),
            ),
        }
    }

    async fn insert(&self, prompt: &str, runs: &[BenchRun]) {
        match self {
            Db::Sqlite(pool) => bare_insert!(pool, false, |id: Uuid| id.hyphenated(), prompt, runs),
            Db::Postgres(pool) => bare_insert!(pool, true, |id: Uuid| id, prompt, runs),
        }
    }

    /// What a database that has held its runs for a while has had done: on PostgreSQL the
    /// autovacuum daemon's `VACUUM ANALYZE` (statistics, and the visibility map that index-only
    /// scans need). Nothing on SQLite, which the app never analyses.
    async fn settle(&self) {
        if let Db::Postgres(pool) = self {
            sqlx::query("VACUUM ANALYZE prompt_optimization_data")
                .execute(pool)
                .await
                .expect("vacuum");
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .expect("count")
    }

    /// `(created_at, auto_graded_at)` of the runs whose task id starts with `tag`.
    async fn stamps(&self, tag: &str) -> Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> {
        let sql = "SELECT created_at, auto_graded_at FROM prompt_optimization_data \
                   WHERE prompt_id = $1 AND task_id LIKE $2";
        let pattern = format!("{tag}-%");
        match self {
            Db::Sqlite(pool) => {
                sqlx::query_as(sql)
                    .bind(PROMPT)
                    .bind(pattern)
                    .fetch_all(pool)
                    .await
            }
            Db::Postgres(pool) => {
                sqlx::query_as(sql)
                    .bind(PROMPT)
                    .bind(pattern)
                    .fetch_all(pool)
                    .await
            }
        }
        .expect("stamps")
    }

    async fn close(self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Posts one batch through the API; panics unless every run was created.
async fn post_batch(app: &TestApp, body: String, expected: usize) {
    let response = app
        .http
        .post(format!("{}/api/runs", app.base))
        .bearer_auth(AGENT_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /api/runs");
    let status = response.status();
    let answer: Value = response.json().await.expect("JSON answer");
    assert!(status.is_success(), "{status}: {answer}");
    let created = answer["runs"].as_array().map_or(0, |runs| {
        runs.iter().filter(|r| r["created"] == true).count()
    });
    assert_eq!(created, expected, "every run of the batch is new");
}

fn batch_body(runs: &[BenchRun]) -> String {
    json!({ "runs": runs.iter().map(api_run).collect::<Vec<_>>() }).to_string()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// 1. Ingestion through the API against the bare insert, alternating rounds.
async fn ingestion(app: &TestApp, db: &Db, prefill: usize, rounds: usize) -> usize {
    // The prefill, in bare batches of BATCH: realistic history in the version the API writes to.
    let started = Instant::now();
    for chunk in 0..prefill.div_ceil(BATCH) {
        let count = BATCH.min(prefill - chunk * BATCH);
        let runs: Vec<BenchRun> = (0..count)
            .map(|n| bench_run("prefill", chunk * BATCH + n))
            .collect();
        db.insert(PROMPT, &runs).await;
    }
    db.settle().await;
    println!(
        "  prefill: {prefill} runs of {PROMPT} v1 in {:.1} s (bare inserts, marked auto-graded)",
        started.elapsed().as_secs_f64()
    );
    // The bare inserts went around the writers: count them in the running aggregates, as the
    // repair does (its time is the from-scratch pass every write used to make).
    let started = Instant::now();
    app.server
        .state
        .store
        .recompute_aggregates()
        .await
        .expect("recompute the aggregates");
    println!(
        "  recomputed the aggregates over the prefill in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    // Warm-up: one batch of each (connections, statement caches).
    let warm: Vec<BenchRun> = (0..BATCH).map(|n| bench_run("warm-api", n)).collect();
    post_batch(app, batch_body(&warm), BATCH).await;
    let warm: Vec<BenchRun> = (0..BATCH).map(|n| bench_run("warm-bare", n)).collect();
    db.insert(BASELINE_PROMPT, &warm).await;

    let mut api = Vec::new();
    let mut bare = Vec::new();
    for round in 0..rounds {
        let runs: Vec<BenchRun> = (0..BATCH)
            .map(|n| bench_run(&format!("bare{round}"), n))
            .collect();
        let t = Instant::now();
        db.insert(BASELINE_PROMPT, &runs).await;
        bare.push(BATCH as f64 / t.elapsed().as_secs_f64());

        let runs: Vec<BenchRun> = (0..BATCH)
            .map(|n| bench_run(&format!("api{round}"), n))
            .collect();
        // Serialising the request is the client's work, not the server's: done before timing.
        let body = batch_body(&runs);
        let t = Instant::now();
        post_batch(app, body, BATCH).await;
        api.push(BATCH as f64 / t.elapsed().as_secs_f64());
    }
    let (api_rate, bare_rate) = (median(api.clone()), median(bare.clone()));
    println!(
        "  ingestion, batches of {BATCH}, median of {rounds} rounds: API {api_rate:.0} runs/s \
         (min {:.0}, max {:.0}), bare insert {bare_rate:.0} runs/s (min {:.0}, max {:.0}); \
         ratio {:.2} (target >= 0.30)",
        api.iter().copied().fold(f64::INFINITY, f64::min),
        api.iter().copied().fold(0.0, f64::max),
        bare.iter().copied().fold(f64::INFINITY, f64::min),
        bare.iter().copied().fold(0.0, f64::max),
        api_rate / bare_rate
    );
    prefill + BATCH * (rounds + 1)
}

/// Waits until the automatic grader has nothing left (bounded: 10 minutes).
async fn wait_auto_idle(db: &Db) {
    for _ in 0..6000 {
        let queued = db
            .count(
                "SELECT COUNT(*) FROM prompt_optimization_data \
                 WHERE auto_graded_at IS NULL AND origin = 'production'",
            )
            .await;
        if queued == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the automatic grader never caught up");
}

/// Posts as admin, again while the server answers 503 because its grader components are
/// still loading (bounded: 1200 tries, 100 ms apart).
async fn post_loaded(app: &TestApp, path: &str, body: Value) -> Value {
    for _ in 0..1200 {
        let answer = app.post_admin(path, Some(body.clone())).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            assert!(answer.status.is_success(), "{answer:?}");
            return answer.json;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grader components never finished loading");
}

/// 2. A grading job over every stored run of the prompt.
async fn grading_job(app: &TestApp, db: &Db, expected: usize) {
    wait_auto_idle(db).await;
    let started = Instant::now();
    let job = post_loaded(
        app,
        "/api/grading-runs",
        json!({"promptId": PROMPT, "graders": [DEFINITION]}),
    )
    .await;
    let created = started.elapsed();
    let id = job["id"].as_str().expect("job id").to_owned();
    let total = job["total"].as_u64().unwrap_or(0);
    assert_eq!(total as usize, expected, "the job selects every stored run");
    let mut last = Value::Null;
    // Bounded: 30 minutes of 20 ms polls.
    for _ in 0..90_000 {
        last = app
            .get_ok(&format!("/api/grading-runs/{id}"), READ_TOKEN)
            .await;
        if !matches!(last["status"].as_str(), Some("queued" | "running")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["processed"].as_u64(), Some(total), "{last}");
    assert_eq!(last["errored"].as_u64(), Some(0), "{last}");
    println!(
        "  grading job ({DEFINITION}, string_check): {total} runs in {:.2} s = {:.0} runs/s \
         (target >= 20000 on SQLite); job created in {:.2} s; passed {}, failed {}",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        created.as_secs_f64(),
        last["passed"],
        last["failed"],
    );
}

/// 3. Automatic grading lag at a steady recording rate.
async fn auto_lag(app: &TestApp, db: &Db, rate: usize, secs: usize) {
    wait_auto_idle(db).await;
    let per_batch = 100.min(rate.max(1));
    let interval = Duration::from_secs_f64(per_batch as f64 / rate.max(1) as f64);
    let batches = rate * secs / per_batch;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut queue_samples = Vec::new();
    let mut last_sample = Instant::now();
    let started = Instant::now();
    for batch in 0..batches {
        ticker.tick().await;
        let runs: Vec<BenchRun> = (0..per_batch)
            .map(|n| bench_run("lag", batch * per_batch + n))
            .collect();
        post_batch(app, batch_body(&runs), per_batch).await;
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            queue_samples.push(
                db.count(
                    "SELECT COUNT(*) FROM prompt_optimization_data \
                     WHERE auto_graded_at IS NULL AND origin = 'production'",
                )
                .await,
            );
        }
    }
    let recording = started.elapsed();
    wait_auto_idle(db).await;
    let drained = started.elapsed();
    let mut lags: Vec<f64> = db
        .stamps("lag")
        .await
        .into_iter()
        .map(|(created, graded)| {
            let graded = graded.expect("every run graded");
            (graded - created).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
        })
        .collect();
    assert_eq!(lags.len(), batches * per_batch);
    lags.sort_by(f64::total_cmp);
    let pct = |p: f64| lags[((p * lags.len() as f64).ceil() as usize).clamp(1, lags.len()) - 1];
    println!(
        "  automatic grading: {} runs recorded in {:.1} s ({:.0} runs/s offered, batches of \
         {per_batch}); lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; queue sampled each second: \
         {:?}; all graded {:.1} s after the first post",
        lags.len(),
        recording.as_secs_f64(),
        lags.len() as f64 / recording.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        lags[lags.len() - 1],
        queue_samples,
        drained.as_secs_f64(),
    );
}

async fn bench(backend: Backend) {
    let prefill = env_usize("FLYWHEEL_BENCH_PREFILL", 100_000);
    let rounds = env_usize("FLYWHEEL_BENCH_ROUNDS", 10).max(1);
    let rate = env_usize("FLYWHEEL_BENCH_LAG_RATE", 1000);
    let secs = env_usize("FLYWHEEL_BENCH_LAG_SECS", 20);
    println!("{backend:?}");
    let test_db = TestDb::new(backend).await;
    let app = TestApp::start(&test_db).await;
    // The built-in graders compile at a first start; not during the measured rounds.
    app.wait_ready().await;
    let db = Db::open(backend, &test_db.url).await;
    let stored = ingestion(&app, &db, prefill, rounds).await;
    grading_job(&app, &db, stored).await;
    auto_lag(&app, &db, rate, secs).await;
    db.close().await;
    app.server.shutdown().await.expect("shutdown");
}

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("FLYWHEEL_BENCH_BACKENDS").unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "runs bench, cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if only.is_empty() || only.contains("sqlite") {
        runtime.block_on(bench(Backend::Sqlite));
    }
    if only.is_empty() || only.contains("postgres") {
        if std::env::var("FLYWHEEL_TEST_POSTGRES_URL").is_ok_and(|u| !u.trim().is_empty()) {
            runtime.block_on(bench(Backend::Postgres));
        } else {
            println!("Postgres: skipped (FLYWHEEL_TEST_POSTGRES_URL is unset)");
        }
    }
}
