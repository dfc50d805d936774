//! A/B results over 1,000,000 recorded runs (issue 13, item 6): seeds one prompt with a running
//! test, 10⁶ production runs (one per task, half on each version), 10⁶ exposures (one per
//! task, alternating arms) and 10⁶ reported outcomes directly with bulk SQL, rebuilds the running
//! aggregates from them (`Store::recompute_aggregates`, timed: the from-scratch pass over every
//! row that reading the results used to make), then times the store's per-arm totals
//! (`ExperimentStore::ab_test_totals`, now a read of the aggregates the writers keep) and the
//! full results of the registry (totals plus the analysis). Target: ≤ 200 ms. SQLite always;
//! PostgreSQL too when `FLYWHEEL_TEST_POSTGRES_URL` is set.
//!
//! Run: `cargo bench -p flywheel --bench ab_results` (env `FLYWHEEL_BENCH_AB_RUNS`, default
//! 1000000; `FLYWHEEL_BENCH_ROUNDS`, default 5, median reported).

use std::sync::Arc;
use std::time::{Duration, Instant};

use flywheel::prompts::{CreateVersion, PromptRegistry, StartAbTest};
use flywheel::store::testing::{execute_raw, postgres_fresh};
use flywheel::store::{self, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bulk inserts, `{n}` rows each; `{test}` is the test's id. SQLite counts with a
/// recursive CTE, PostgreSQL with `generate_series`.
fn seed_sql(sqlite: bool, n: usize, test: &str) -> Vec<String> {
    let last = n.saturating_sub(1);
    let (numbers, id, uuid) = if sqlite {
        (
            format!(
                "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {last}) "
            ),
            "'r' || i",
            format!("'{test}'"),
        )
    } else {
        (
            String::new(),
            "gen_random_uuid()",
            format!("'{test}'::uuid"),
        )
    };
    let from = if sqlite {
        "FROM s".to_owned()
    } else {
        format!("FROM generate_series(0, {last}) AS s(i)")
    };
    let exposure_id = if sqlite {
        "'e' || i"
    } else {
        "gen_random_uuid()"
    };
    vec![
        format!(
            "{numbers}INSERT INTO prompt_optimization_data (id, prompt_id, version, task_id, \
             total_tokens, latency_ms, created_at, updated_at) \
             SELECT {id}, 'planner', 1 + (i % 2), 'task-' || i, 1000 + (i % 97), 900 + (i % 301), \
             '2026-11-30T00:00:00Z', '2026-11-30T00:00:00Z' {from}"
        ),
        format!(
            "{numbers}INSERT INTO ab_exposures (id, ab_test_id, task_id, arm, version, created_at) \
             SELECT {exposure_id}, {uuid}, 'task-' || i, \
             CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 1 + (i % 2), '2026-11-30T00:00:00Z' {from}"
        ),
        format!(
            "{numbers}INSERT INTO task_outcomes (task_id, tests_passed) \
             SELECT 'task-' || i, (i % 3 = 0) {from}"
        ),
        "ANALYZE".to_owned(),
    ]
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

async fn measure(name: &str, url: &str, n: usize, rounds: usize) {
    let store: Arc<dyn Store> = store::open_store(url).await.expect("store opens");
    store
        .seed(&flywheel::prompts::seeds::default_seeds())
        .await
        .expect("seed");
    let registry = PromptRegistry::new(store.clone(), Duration::from_millis(250));
    registry
        .create_version(
            "planner",
            CreateVersion {
                content: "B: {{task}}".to_owned(),
                notes: None,
                parent_version: None,
            },
            "bench",
        )
        .await
        .expect("version 2");
    let start: StartAbTest =
        serde_json::from_value(serde_json::json!({ "versionA": 1, "versionB": 2 }))
            .expect("request");
    let test = registry
        .start_ab_test("planner", start, 0.5, "bench")
        .await
        .expect("test starts");
    let seeding = Instant::now();
    for sql in seed_sql(url.starts_with("sqlite:"), n, &test.id.to_string()) {
        execute_raw(url, &sql).await.expect("bulk insert");
    }
    println!(
        "{name}: seeded {n} runs, exposures and outcomes in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    // The bulk SQL went around the writers: rebuild the aggregates, as the repair does.
    let rebuild = Instant::now();
    store.recompute_aggregates().await.expect("recompute");
    println!(
        "{name}: recomputed the aggregates from every row in {:.1} ms (the scan results used \
         to make on each read)",
        rebuild.elapsed().as_secs_f64() * 1e3
    );

    // Warm-up (page cache), then the rounds.
    let totals = store.ab_test_totals(test.id).await.expect("totals");
    assert_eq!(totals[0].exposures + totals[1].exposures, n as u64);
    let mut store_times = Vec::new();
    let mut results_times = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        store.ab_test_totals(test.id).await.expect("totals");
        store_times.push(t.elapsed());
        let t = Instant::now();
        let results = registry.ab_test(test.id).await.expect("results");
        results_times.push(t.elapsed());
        assert!(results.result.is_some());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: totals median {:.1} ms (min {:.1}); full results median {:.1} ms (min {:.1}); \
         target <= 200 ms; {rounds} rounds",
        ms(median(store_times.clone())),
        ms(*store_times.iter().min().expect("rounds")),
        ms(median(results_times.clone())),
        ms(*results_times.iter().min().expect("rounds")),
    );
}

async fn bench() {
    let n = env_usize("FLYWHEEL_BENCH_AB_RUNS", 1_000_000);
    let rounds = env_usize("FLYWHEEL_BENCH_ROUNDS", 5).max(1);
    let (_dir, url) = flywheel::store::testing::sqlite_temp();
    measure("sqlite", &url, n, rounds).await;
    if std::env::var("FLYWHEEL_TEST_POSTGRES_URL").is_ok() {
        let pg = postgres_fresh().await;
        measure("postgres", pg.url(), n, rounds).await;
    }
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(bench());
}
