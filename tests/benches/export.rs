//! Benchmark of exporting stored runs to OpenAI eval JSONL (issue 11, item 7), on a SQLite file
//! and on PostgreSQL: `FLYWHEEL_BENCH_EXPORT_ROWS` runs (default 1,000,000) are inserted bare,
//! then, in the same run:
//!
//! 1. **Export**: `POST /api/prompts/{id}/export` (`openai-jsonl`, `minRows: 0`) over real HTTP
//!    to the real app in this process, the body read to the end and its lines counted: rows/s,
//!    and the process's peak RSS during the export (`VmHWM` of `/proc/self/status`, reset with
//!    `/proc/self/clear_refs` just before, so it is the peak of the export alone on top of what
//!    the process already held; server, client and database pool all live in this process).
//! 2. **Baseline**: a bare `SELECT` of the same rows (one statement, streamed by sqlx, newest
//!    first) and a `serde_json` writer of the same lines `{"item": input, "sample":
//!    {"output_text": output}}` into a sink: rows/s and peak RSS the same way.
//!
//! The export must reach ≥ 50% of the baseline's speed with a peak RSS ≤ 150 MB. Run:
//!
//! ```sh
//! FLYWHEEL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p flywheel-e2e --bench export
//! ```
//!
//! `FLYWHEEL_BENCH_BACKENDS=sqlite` (or `postgres`) runs one. All traffic is to 127.0.0.1.
//! Figures: BENCHMARKS.md, "Export".

use std::io::Write;
use std::str::FromStr;
use std::time::{Duration, Instant};

use flywheel_e2e::{ANNOTATOR_TOKEN, Backend, TestApp, TestDb};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::types::chrono::{DateTime, Utc};
use uuid::Uuid;

/// The prompt the runs belong to.
const PROMPT: &str = "reviewer";
/// Rows per bare insert.
const BATCH: usize = 1000;
const COLUMNS: &str = "id, prompt_id, version, task_id, run_key, attempt, input_variables, \
     output, model, created_at, updated_at, auto_graded_at";
const COLUMN_COUNT: usize = 12;

fn rows_wanted() -> usize {
    std::env::var("FLYWHEEL_BENCH_EXPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A run of ~400 bytes: a few template variables and a short JSON verdict.
fn input(n: usize) -> Value {
    json!({
        "task_title": format!("Fix the parser edge case #{n}"),
        "review_target": "main",
        "plan": "1. reproduce 2. fix the tokenizer 3. add a regression test",
        "test_log": "running 42 tests ... ok",
    })
}

fn output(n: usize) -> String {
    json!({"verdict": if n.is_multiple_of(2) { "approve" } else { "request_changes" },
           "summary": "The change fixes the tokenizer at end of input and adds a test."})
    .to_string()
}

fn insert_sql(numbered: bool, rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let cells: Vec<String> = (1..=COLUMN_COUNT)
                .map(|c| {
                    if numbered {
                        format!("${}", row * COLUMN_COUNT + c)
                    } else {
                        "?".to_owned()
                    }
                })
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO prompt_optimization_data ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

/// Inserts runs `from..from + rows` of the bench in one statement (`auto_graded_at` set, so
/// the automatic grader leaves them alone).
macro_rules! insert {
    ($pool:expr, $numbered:expr, $id:expr, $from:expr, $rows:expr) => {{
        let sql = insert_sql($numbered, $rows);
        let at: DateTime<Utc> = Utc::now();
        let mut query = sqlx::query(&sql);
        for n in $from..$from + $rows {
            query = query
                .bind($id(Uuid::now_v7()))
                .bind(PROMPT)
                .bind(1_i64)
                .bind(format!("export-{n}"))
                .bind("1")
                .bind(1_i64)
                .bind(Json(input(n)))
                .bind(Some(output(n)))
                .bind(Some("gpt-bench"))
                .bind(at)
                .bind(at)
                .bind(Some(at));
        }
        query.execute($pool).await.expect("bare insert");
    }};
}

/// The baseline's statement: the same rows, newest first, as the export reads them.
const SELECT: &str = "SELECT input_variables, output FROM prompt_optimization_data \
     WHERE prompt_id = $1 ORDER BY id DESC";

/// Writes one baseline line.
fn baseline_line(out: &mut impl Write, input: Value, output: Option<String>) {
    let line = json!({"item": input, "sample": {"output_text": output}});
    serde_json::to_writer(&mut *out, &line).expect("write");
    out.write_all(b"\n").expect("write");
}

enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    async fn open(backend: Backend, url: &str) -> Db {
        match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .expect("sqlite url")
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(60));
                Db::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(1)
                        .connect_with(options)
                        .await
                        .expect("open sqlite"),
                )
            }
            Backend::Postgres => Db::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .connect(url)
                    .await
                    .expect("open postgres"),
            ),
        }
    }

    async fn fill(&self, rows: usize) {
        let mut from = 0;
        while from < rows {
            let n = BATCH.min(rows - from);
            match self {
                Db::Sqlite(pool) => insert!(pool, false, |id: Uuid| id.hyphenated(), from, n),
                Db::Postgres(pool) => insert!(pool, true, |id: Uuid| id, from, n),
            }
            from += n;
        }
        if let Db::Postgres(pool) = self {
            sqlx::query("VACUUM ANALYZE prompt_optimization_data")
                .execute(pool)
                .await
                .expect("vacuum");
        }
    }

    /// The baseline: rows written.
    async fn baseline(&self) -> usize {
        let mut out = std::io::BufWriter::new(std::io::sink());
        let mut rows = 0;
        match self {
            Db::Sqlite(pool) => {
                let mut stream = sqlx::query_as::<_, (Json<Value>, Option<String>)>(SELECT)
                    .bind(PROMPT)
                    .fetch(pool);
                while let Some(row) = stream.next().await {
                    let (input, output) = row.expect("row");
                    baseline_line(&mut out, input.0, output);
                    rows += 1;
                }
            }
            Db::Postgres(pool) => {
                let mut stream = sqlx::query_as::<_, (Json<Value>, Option<String>)>(SELECT)
                    .bind(PROMPT)
                    .fetch(pool);
                while let Some(row) = stream.next().await {
                    let (input, output) = row.expect("row");
                    baseline_line(&mut out, input.0, output);
                    rows += 1;
                }
            }
        }
        out.flush().expect("flush");
        rows
    }

    async fn close(self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Resets the process's peak RSS to its current RSS, after handing the heap that earlier work
/// (the fill, the previous pass) freed back to the OS: otherwise that memory stays in the RSS
/// and hides what the measured pass itself holds.
fn reset_peak() {
    // SAFETY: malloc_trim only releases free memory of glibc's heap; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

/// `VmHWM` and `VmRSS` of this process, in MB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The export over HTTP: lines read.
async fn export(app: &TestApp) -> usize {
    let response = app
        .http
        .post(format!("{}/api/prompts/{PROMPT}/export", app.base))
        .bearer_auth(ANNOTATOR_TOKEN)
        .timeout(Duration::from_secs(3600))
        .json(&json!({"format": "openai-jsonl", "minRows": 0}))
        .send()
        .await
        .expect("export");
    assert!(response.status().is_success(), "{}", response.status());
    let mut response = response;
    let mut lines = 0;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
    }
    lines
}

async fn bench(backend: Backend) {
    let rows = rows_wanted();
    println!("{backend:?}: {rows} runs");
    let test_db = TestDb::new(backend).await;
    let app = TestApp::start(&test_db).await;
    // The built-in graders compile at a first start; not during the measured passes.
    app.wait_ready().await;
    app.disable_graders(PROMPT).await;
    let db = Db::open(backend, &test_db.url).await;
    let started = Instant::now();
    db.fill(rows).await;
    println!("  filled in {:.0} s", started.elapsed().as_secs_f64());
    // Each measured twice, alternating, the better kept: the first pass warms the page cache.
    let mut best_export = f64::MAX;
    let mut best_baseline = f64::MAX;
    let mut export_peak: f64 = 0.0;
    let mut baseline_peak: f64 = 0.0;
    let mut rss_before: f64 = 0.0;
    for _ in 0..2 {
        reset_peak();
        rss_before = rss_before.max(memory().1);
        let started = Instant::now();
        let lines = export(&app).await;
        best_export = best_export.min(started.elapsed().as_secs_f64());
        export_peak = export_peak.max(memory().0);
        assert_eq!(lines, rows, "every run is exported");
        reset_peak();
        let started = Instant::now();
        let written = db.baseline().await;
        best_baseline = best_baseline.min(started.elapsed().as_secs_f64());
        baseline_peak = baseline_peak.max(memory().0);
        assert_eq!(written, rows);
    }
    let export_rate = rows as f64 / best_export;
    let baseline_rate = rows as f64 / best_baseline;
    println!(
        "  export:   {export_rate:>9.0} rows/s ({best_export:.1} s), peak RSS {export_peak:.0} MB"
    );
    println!(
        "  baseline: {baseline_rate:>9.0} rows/s ({best_baseline:.1} s), peak RSS {baseline_peak:.0} MB"
    );
    println!(
        "  ratio export/baseline: {:.2} (target >= 0.50); RSS before each: {rss_before:.0} MB (target peak <= 150 MB)",
        export_rate / baseline_rate
    );
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
        "export bench, cores: {}",
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
