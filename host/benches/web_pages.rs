//! Server time of the annotation page with 100,000 runs stored (issue 14, item 5: under 50 ms),
//! against the API's annotation-queue call for the same batch measured in the same run (the
//! baseline: the page does that query, then reads each run whole and renders HTML).
//!
//! The real application on a SQLite file, called in-process (`tower::ServiceExt::oneshot`, no
//! sockets), so the figure is the server's time: session lookup, queue, runs, failure modes,
//! rendering. 10% of the runs have failed tests, so the queue's "failed first" order has work
//! to do.
//!
//! Run: `cargo bench -p flywheel --bench web_pages` (env `FLYWHEEL_BENCH_RUNS`, default
//! 100000).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use flywheel::config::{ConfigArgs, Settings};
use flywheel::store::{NewOutcome, NewRun};
use http_body_util::BodyExt;
use tower::ServiceExt;

const ADMIN_SECRET: &str = "bench-admin-secret";
const BATCH: usize = 1000;

fn runs_wanted() -> usize {
    std::env::var("FLYWHEEL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

struct Fixture {
    router: Router,
    cookie: String,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = ConfigArgs {
        data_dir: Some(dir.path().display().to_string()),
        tokens: Some(format!("bench:admin:{ADMIN_SECRET}").into()),
        ..ConfigArgs::default()
    };
    let settings = Settings::from_args(&args).expect("settings");
    // build_app starts no grading worker: nothing writes while the pages are measured.
    let (router, state) = flywheel::server::build_app(settings)
        .await
        .expect("app builds");
    let total = runs_wanted();
    for start in (0..total).step_by(BATCH) {
        let runs: Vec<NewRun> = (start..(start + BATCH).min(total))
            .map(|i| NewRun {
                prompt_id: "coder".to_owned(),
                version: None,
                task_id: format!("task-{i}"),
                attempt: 1,
                root_task_id: None,
                input: serde_json::json!({ "plan": format!("step {i}"), "files": ["src/lib.rs"] })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                output: format!(
                    "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1,3 +1,3 @@\n fn a() {{}}\n-fn old() {{}}\n+fn new_{i}() {{}}\n fn b() {{}}\n"
                ),
                model: Some("gpt-bench".to_owned()),
                tokens_in: Some(900),
                tokens_out: Some(300),
                latency_ms: Some(1200),
            })
            .collect();
        state.store.record_runs(&runs).await.expect("record runs");
        let outcomes: Vec<NewOutcome> = (start..(start + BATCH).min(total))
            .filter(|i| i % 10 == 0)
            .map(|i| NewOutcome {
                task_id: format!("task-{i}"),
                tests_passed: Some(false),
                ..NewOutcome::default()
            })
            .collect();
        state
            .store
            .report_outcomes(&outcomes)
            .await
            .expect("report outcomes");
    }
    // Sign in as a browser would, for the session cookie.
    let response = router
        .clone()
        .oneshot(
            Request::post("/sign-in")
                .header(header::HOST, "127.0.0.1")
                .header(header::ORIGIN, "http://127.0.0.1")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("token={ADMIN_SECRET}&next=/prompts")))
                .expect("request"),
        )
        .await
        .expect("sign in");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    Fixture {
        router,
        cookie,
        _dir: dir,
    }
}

async fn get(router: &Router, path: &str, auth: (header::HeaderName, String)) -> usize {
    let response = router
        .clone()
        .oneshot(
            Request::get(path)
                .header(auth.0, auth.1)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    body.len()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let fixture = runtime.block_on(fixture());
    let page_bytes = runtime.block_on(get(
        &fixture.router,
        "/prompts/coder/annotate",
        (header::COOKIE, fixture.cookie.clone()),
    ));
    assert!(page_bytes > 10_000, "the page holds a batch of runs");

    let mut group = c.benchmark_group(format!("annotation page, {} runs", runs_wanted()));
    group
        .sample_size(50)
        .measurement_time(Duration::from_secs(10));
    group.bench_function(
        "baseline: GET /api/prompts/coder/annotation-queue?limit=20",
        |b| {
            b.to_async(&runtime).iter(|| {
                get(
                    &fixture.router,
                    "/api/prompts/coder/annotation-queue?limit=20",
                    (header::AUTHORIZATION, format!("Bearer {ADMIN_SECRET}")),
                )
            })
        },
    );
    group.bench_function("page: GET /prompts/coder/annotate", |b| {
        b.to_async(&runtime).iter(|| {
            get(
                &fixture.router,
                "/prompts/coder/annotate",
                (header::COOKIE, fixture.cookie.clone()),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
