//! Runs through the `flywheel` binary: `runs import|list|show` and `outcomes report` in database
//! and `--server` mode, and `kill -9` of `flywheel serve` during a stream of batch posts losing
//! no acknowledged run, on SQLite and PostgreSQL.

mod common;

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN, AGENT, READ, Served, fails, flywheel, ok, serve_on};
use serde_json::{Value, json};

fn run_line(prompt: &str, task: &str) -> Value {
    json!({"promptId": prompt, "taskId": task, "input": {"task_title": task}, "output": "plan", "tokensIn": 10, "tokensOut": 5})
}

fn write_jsonl(path: &Path, lines: &[Value]) {
    let mut file = std::fs::File::create(path).expect("create file");
    for line in lines {
        writeln!(file, "{line}").expect("write line");
    }
}

#[test]
fn the_runs_and_outcomes_commands_have_help_naming_both_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["runs"][..],
        &["runs", "import"],
        &["runs", "list"],
        &["runs", "show"],
        &["outcomes", "report"],
    ] {
        let text = ok(flywheel(dir.path()).args(args).arg("--help"));
        assert!(text.contains("Usage: flywheel"), "{args:?}: {text}");
        assert!(text.contains("--server"), "{args:?}: {text}");
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
    }
    let err =
        fails(flywheel(dir.path()).args(["runs", "import", "x.jsonl", "--batch-size", "1001"]));
    assert!(err.contains("1001"), "{err}");
}

#[test]
fn runs_are_imported_listed_shown_and_completed_in_database_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("runs.jsonl");
    let lines: Vec<Value> = (0..2500)
        .map(|i| {
            run_line(
                if i % 2 == 0 { "planner" } else { "coder" },
                &format!("task-{i}"),
            )
        })
        .collect();
    write_jsonl(&file, &lines);
    let file_arg = file.display().to_string();

    let first = ok(flywheel(dir.path()).args(["runs", "import", &file_arg]));
    assert!(
        first.contains("2500 recorded, 0 already recorded"),
        "{first}"
    );
    let again = ok(flywheel(dir.path()).args(["runs", "import", &file_arg, "--json"]));
    let again: Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(again, json!({"created": 0, "existing": 2500}));

    // A bad line is named by its number, and nothing of the file is stored.
    let bad = dir.path().join("bad.jsonl");
    let mut bad_lines = vec![run_line("planner", "new-1"), run_line("planner", "new-2")];
    bad_lines.push(json!({"promptId": "planner", "taskId": 7, "input": {}, "output": "x"}));
    write_jsonl(&bad, &bad_lines);
    let err = fails(flywheel(dir.path()).args(["runs", "import", &bad.display().to_string()]));
    assert!(err.contains("line 3") && err.contains("taskId"), "{err}");
    // An unknown prompt is refused by the store; the line is still named.
    let unknown = dir.path().join("unknown.jsonl");
    write_jsonl(
        &unknown,
        &[run_line("planner", "new-3"), run_line("nosuch", "new-4")],
    );
    let err = fails(flywheel(dir.path()).args(["runs", "import", &unknown.display().to_string()]));
    assert!(err.contains("line 2") && err.contains("nosuch"), "{err}");

    let table =
        ok(flywheel(dir.path()).args(["runs", "list", "--prompt", "coder", "--limit", "3"]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("ID"), "{table}");
    assert_eq!(
        rows.iter().filter(|r| r.contains(" coder ")).count(),
        3,
        "{table}"
    );
    assert!(table.contains("task-2499"), "newest first: {table}");
    assert!(table.contains("more: --cursor r"), "{table}");
    let listed: Value = serde_json::from_str(&ok(flywheel(dir.path()).args([
        "runs", "list", "--prompt", "planner", "--limit", "2", "--json",
    ])))
    .expect("JSON");
    let id = listed["items"][0]["id"].as_str().expect("id").to_owned();
    let task = listed["items"][0]["taskId"]
        .as_str()
        .expect("task")
        .to_owned();
    assert!(listed["nextCursor"].is_string());

    let outcomes = dir.path().join("outcomes.jsonl");
    write_jsonl(
        &outcomes,
        &[
            json!({"taskId": task, "testsPassed": true}),
            json!({"taskId": "later", "prMerged": false}),
        ],
    );
    let reported =
        ok(flywheel(dir.path()).args(["outcomes", "report", &outcomes.display().to_string()]));
    assert!(
        reported.contains("reported 2 outcomes, 1 runs updated"),
        "{reported}"
    );

    let shown: Value =
        serde_json::from_str(&ok(flywheel(dir.path()).args(["runs", "show", &id]))).expect("JSON");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["outcome"]["testsPassed"], true, "{shown}");
    assert_eq!(shown["success"], true);
    let err =
        fails(flywheel(dir.path()).args(["runs", "show", "0190b5a2-7c3e-7000-8000-000000000000"]));
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn server_mode_imports_and_lists_through_the_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_on(flywheel(dir.path()));
    let client = tempfile::tempdir().expect("temp dir");
    let file = client.path().join("runs.jsonl");
    write_jsonl(
        &file,
        &(0..30)
            .map(|i| run_line("fixer", &format!("s-{i}")))
            .collect::<Vec<_>>(),
    );
    let remote = |args: &[&str], token: &str| {
        let mut cmd = flywheel(client.path());
        cmd.args(args)
            .args(["--server", &served.url])
            .env("FLYWHEEL_TOKEN", token);
        cmd
    };
    let imported = ok(&mut remote(
        &[
            "runs",
            "import",
            &file.display().to_string(),
            "--batch-size",
            "7",
        ],
        AGENT,
    ));
    assert!(imported.contains("30 recorded"), "{imported}");
    let err = fails(&mut remote(
        &["runs", "import", &file.display().to_string()],
        READ,
    ));
    assert!(err.contains("forbidden"), "{err}");
    let unknown = client.path().join("unknown.jsonl");
    write_jsonl(
        &unknown,
        &[
            run_line("fixer", "u-1"),
            run_line("fixer", "u-2"),
            run_line("ghost", "u-3"),
        ],
    );
    let err = fails(&mut remote(
        &["runs", "import", &unknown.display().to_string()],
        AGENT,
    ));
    assert!(
        err.contains("line 3") && err.contains("unknown_prompt"),
        "{err}"
    );
    let listed: Value = serde_json::from_str(&ok(&mut remote(
        &[
            "runs", "list", "--prompt", "fixer", "--limit", "500", "--json",
        ],
        READ,
    )))
    .expect("JSON");
    assert_eq!(listed["items"].as_array().expect("items").len(), 30);
    assert!(
        !client.path().join("flywheel.db").exists(),
        "everything went through the server"
    );
}

/// Posts batches until the server stops answering; returns every id it acknowledged.
async fn post_until_killed(base: String, writer: usize, acked: Arc<Mutex<Vec<String>>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    for batch in 0..400 {
        let runs: Vec<Value> = (0..50)
            .map(|i| run_line("planner", &format!("w{writer}-b{batch}-r{i}")))
            .collect();
        let Ok(response) = http
            .post(format!("{base}/api/runs"))
            .bearer_auth(AGENT)
            .json(&json!({ "runs": runs }))
            .send()
            .await
        else {
            return;
        };
        if !response.status().is_success() {
            return;
        }
        let Ok(answer) = response.json::<Value>().await else {
            return;
        };
        let ids = answer["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned());
        acked.lock().expect("lock").extend(ids);
    }
}

fn kill_during_batch_posts_loses_no_acknowledged_run(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = || {
        let mut cmd = flywheel(dir.path());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut served = serve_on(command());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| runtime.spawn(post_until_killed(served.url.clone(), w, acked.clone())))
        .collect();
    // Kill once some batches are acknowledged, while the writers are still posting.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 1000 {
        assert!(
            Instant::now() < deadline,
            "the server acknowledged too little"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    served.kill_9();
    for writer in writers {
        runtime.block_on(writer).expect("writer task");
    }
    let acknowledged = acked.lock().expect("lock").clone();
    assert!(
        acknowledged.len() < 3 * 400 * 50,
        "the kill came after every post"
    );

    let restarted = serve_on(command());
    let missing: Vec<String> = runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut missing = Vec::new();
        for id in &acknowledged {
            let status = http
                .get(format!("{}/api/runs/{id}", restarted.url))
                .bearer_auth(READ)
                .send()
                .await
                .expect("the restarted server answers")
                .status();
            if status != reqwest::StatusCode::OK {
                missing.push(format!("{id}: {status}"));
            }
        }
        missing
    });
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged runs lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn kill_9_during_batch_posts_loses_no_acknowledged_run_on_sqlite() {
    kill_during_batch_posts_loses_no_acknowledged_run(None);
}

#[test]
fn kill_9_during_batch_posts_loses_no_acknowledged_run_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(flywheel::store::testing::postgres_fresh());
    kill_during_batch_posts_loses_no_acknowledged_run(Some(db.url()));
    drop(db);
}

/// Posts `count` planner runs in batches of 1000; their ids.
async fn record_planner_runs(http: &reqwest::Client, base: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for batch in 0..count.div_ceil(1000) {
        let runs: Vec<Value> = (batch * 1000..count.min((batch + 1) * 1000))
            .map(|i| run_line("planner", &format!("takeover-{i}")))
            .collect();
        let answer: Value = http
            .post(format!("{base}/api/runs"))
            .bearer_auth(AGENT)
            .json(&json!({ "runs": runs }))
            .send()
            .await
            .expect("post runs")
            .error_for_status()
            .expect("runs recorded")
            .json()
            .await
            .expect("answer");
        ids.extend(
            answer["runs"]
                .as_array()
                .expect("runs")
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned()),
        );
    }
    ids
}

/// Two `flywheel serve` processes share one PostgreSQL database and its queue of grading jobs.
/// The one holding a job is killed with `kill -9` in the middle of it; the other takes the job
/// over once the lease (1 s here) expires and finishes it: every row graded exactly once.
#[test]
fn a_grading_job_is_taken_over_when_its_instance_is_killed_on_postgres() {
    const RUNS: usize = 20_000;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(flywheel::store::testing::postgres_fresh());
    let dir = tempfile::tempdir().expect("temp dir");
    let command = || {
        let mut cmd = flywheel(dir.path());
        cmd.env("DATABASE_URL", db.url())
            .env("FLYWHEEL_JOB_LEASE_SECS", "1");
        cmd
    };
    let mut first = serve_on(command());
    let mut second = serve_on(command());
    let http = reqwest::Client::new();
    let pool = runtime
        .block_on(sqlx::PgPool::connect(db.url()))
        .expect("connect to the test database");

    let ids = runtime.block_on(record_planner_runs(&http, &first.url, RUNS));
    assert_eq!(ids.len(), RUNS);
    // Disabled, so the automatic graders leave it alone; the job names it.
    let definition = json!({"promptId": "planner", "name": "mentions_plan", "enabled": false,
        "definition": {"type": "string_check", "name": "mentions_plan", "operation": "like",
            "input": "{{sample.output_text}}", "reference": "plan"}});
    let job: Value = runtime.block_on(async {
        // 503 until the built-in components are loaded.
        for _ in 0..600 {
            let answer = http
                .post(format!("{}/api/graders/definitions", first.url))
                .bearer_auth(ADMIN)
                .json(&definition)
                .send()
                .await
                .expect("post definition");
            if answer.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        http.post(format!("{}/api/grading-runs", first.url))
            .bearer_auth(ADMIN)
            .json(&json!({"promptId": "planner", "graders": ["mentions_plan"]}))
            .send()
            .await
            .expect("start the job")
            .error_for_status()
            .expect("job accepted")
            .json()
            .await
            .expect("job")
    });
    assert_eq!(job["total"], RUNS);
    let job_id: uuid::Uuid = job["id"].as_str().expect("id").parse().expect("uuid");

    // Wait until one instance holds the job and has committed part of it, then kill that one.
    let (holder, done_at_kill) = runtime.block_on(async {
        for _ in 0..3000 {
            let (claimed_by, processed): (Option<String>, i64) =
                sqlx::query_as("SELECT claimed_by, processed_rows FROM grading_runs WHERE id = $1")
                    .bind(job_id)
                    .fetch_one(&pool)
                    .await
                    .expect("read the job");
            if let Some(holder) = claimed_by.filter(|_| processed > 0) {
                return (holder, processed);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no instance started the job");
    });
    let pid_of = |served: &Served| format!("flywheel-{}-", served.child.id());
    let (killed, survivor) = if holder.starts_with(&pid_of(&first)) {
        (&mut first, &second)
    } else {
        assert!(holder.starts_with(&pid_of(&second)), "holder {holder}");
        (&mut second, &first)
    };
    killed.kill_9();
    eprintln!("killed {holder} after {done_at_kill} of {RUNS} rows");
    assert!(
        done_at_kill < RUNS as i64,
        "the job ended before the kill; grade more rows"
    );

    // The survivor takes the job over after the lease and finishes it.
    let finished: Value = runtime.block_on(async {
        for _ in 0..1200 {
            let job: Value = http
                .get(format!("{}/api/grading-runs/{job_id}", survivor.url))
                .bearer_auth(READ)
                .send()
                .await
                .expect("the survivor answers")
                .json()
                .await
                .expect("job");
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the surviving instance never finished the job");
    });
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["processed"], RUNS, "{finished}");
    assert_eq!(finished["passed"], RUNS, "{finished}");

    // Exactly one verdict per row of the job, and every run carries it.
    let (verdicts, rows_graded, runs_marked): (i64, i64, i64) = runtime.block_on(async {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM grading_results WHERE run_id = $1), \
                    (SELECT COUNT(DISTINCT data_id) FROM grading_results WHERE run_id = $1), \
                    (SELECT COUNT(*) FROM prompt_optimization_data \
                      WHERE grader_results -> 'mentions_plan' ->> 'passed' = 'true')",
        )
        .bind(job_id)
        .fetch_one(&pool)
        .await
        .expect("count the verdicts")
    });
    assert_eq!(
        (verdicts, rows_graded, runs_marked),
        (RUNS as i64, RUNS as i64, RUNS as i64),
        "killed at {done_at_kill} processed"
    );
    runtime.block_on(pool.close());
    drop(first);
    drop(second);
    drop(db);
}
