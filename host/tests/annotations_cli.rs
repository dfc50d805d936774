//! `flywheel annotate`, `flywheel failure-modes …` and `flywheel annotation-queue`, run as
//! processes: in database mode on a SQLite file, and in `--server` mode against a service
//! started in this test (the token's name is then the annotator).

mod common;

use common::{TOKENS, fails, flywheel, ok};

use flywheel::config::{ConfigArgs, Settings};
use flywheel::store::{NewOutcome, NewRun, open_store};
use uuid::Uuid;

/// Records a run of version 1 of `prompt` and its outcome through the store's runs domain.
async fn insert_run(url: &str, prompt: &str, tests_passed: bool) -> Uuid {
    let store = open_store(url).await.expect("open the database");
    let task_id = format!("task-{}", Uuid::now_v7());
    let recorded = store
        .record_runs(&[NewRun {
            prompt_id: prompt.to_owned(),
            version: Some(1),
            task_id: task_id.clone(),
            attempt: 1,
            root_task_id: None,
            input: serde_json::Map::new(),
            output: "the output".to_owned(),
            model: None,
            tokens_in: None,
            tokens_out: None,
            latency_ms: None,
        }])
        .await
        .expect("record a run");
    store
        .report_outcomes(&[NewOutcome {
            task_id,
            tests_passed: Some(tests_passed),
            pr_merged: None,
            expected_files: None,
            failure_signature: None,
        }])
        .await
        .expect("report its outcome");
    recorded[0].id
}

#[test]
fn annotation_commands_have_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["annotate"][..],
        &["failure-modes"],
        &["failure-modes", "add"],
        &["failure-modes", "counts"],
        &["failure-modes", "list"],
        &["annotation-queue"],
    ] {
        let text = ok(flywheel(dir.path()).args(args).arg("--help"));
        assert!(text.contains("--server"), "{args:?}: {text}");
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
    }
    // --rating or --clear, never both, never neither.
    let run = Uuid::nil().to_string();
    fails(flywheel(dir.path()).args(["annotate", &run]));
    fails(flywheel(dir.path()).args(["annotate", &run, "--rating", "bad", "--clear"]));
    fails(flywheel(dir.path()).args(["annotate", &run, "--rating", "meh"]));
    fails(flywheel(dir.path()).args(["annotate", "not-a-uuid", "--rating", "bad"]));
}

#[test]
fn database_mode_annotates_counts_and_lists_the_queue() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    // The first command creates, migrates and seeds the database.
    ok(flywheel(dir.path()).args(["prompts", "list"]));
    let url = format!("sqlite://{}", dir.path().join("flywheel.db").display());
    let failed = runtime.block_on(insert_run(&url, "planner", false));
    let passed = runtime.block_on(insert_run(&url, "planner", true));

    let queue = ok(flywheel(dir.path()).args(["annotation-queue", "planner"]));
    let lines: Vec<&str> = queue.lines().collect();
    assert!(
        lines[1].starts_with(&failed.to_string()) && lines[1].contains("yes"),
        "{queue}"
    );
    assert!(lines[2].starts_with(&passed.to_string()), "{queue}");

    let annotated = ok(flywheel(dir.path()).args([
        "annotate",
        &failed.to_string(),
        "--rating",
        "bad",
        "--failure-mode",
        "wrong_files",
        "--feedback",
        "plans the wrong module",
        "--actor",
        "tester",
    ]));
    assert!(
        annotated.contains("bad (wrong_files) by tester"),
        "{annotated}"
    );

    // Outside the taxonomy: refused, the allowed codes named.
    let err = fails(flywheel(dir.path()).args([
        "annotate",
        &passed.to_string(),
        "--rating",
        "bad",
        "--failure-mode",
        "syntax_error",
    ]));
    assert!(
        err.contains("syntax_error") && err.contains("wrong_files"),
        "{err}"
    );

    let table = ok(flywheel(dir.path()).args(["failure-modes", "counts", "planner"]));
    let row = table
        .lines()
        .find(|l| l.starts_with("wrong_files"))
        .unwrap_or_else(|| panic!("no wrong_files row: {table}"));
    assert!(row.contains(" 1 ") && row.contains("100.0%"), "{table}");
    assert!(
        table.contains("failed runs of planner (every version): 1"),
        "{table}"
    );
    let json = ok(flywheel(dir.path()).args([
        "failure-modes",
        "counts",
        "planner",
        "--version",
        "1",
        "--json",
    ]));
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(json["failedRuns"], 1);
    assert_eq!(json["version"], 1);
    assert!(
        fails(flywheel(dir.path()).args(["failure-modes", "counts", "planner", "--version", "9"]))
            .contains("version 9")
    );

    let added = ok(flywheel(dir.path()).args([
        "failure-modes",
        "add",
        "planner",
        "ignored_constraints",
        "--description",
        "ignores a stated constraint",
    ]));
    assert!(added.contains("added ignored_constraints"), "{added}");
    let listed = ok(flywheel(dir.path()).args(["failure-modes", "list", "planner"]));
    assert!(listed.contains("ignored_constraints"), "{listed}");
    let err = fails(flywheel(dir.path()).args([
        "failure-modes",
        "add",
        "planner",
        "Bad-Code",
        "--description",
        "d",
    ]));
    assert!(err.contains("lower-case"), "{err}");

    // Annotated by a person: out of the queue; cleared: back in it.
    let queue = ok(flywheel(dir.path()).args(["annotation-queue", "planner", "--json"]));
    assert!(!queue.contains(&failed.to_string()), "{queue}");
    let cleared = ok(flywheel(dir.path()).args(["annotate", &failed.to_string(), "--clear"]));
    assert!(cleared.contains("cleared"), "{cleared}");
    let queue = ok(flywheel(dir.path()).args(["annotation-queue", "planner", "--json"]));
    assert!(queue.contains(&failed.to_string()), "{queue}");
}

#[test]
fn server_mode_records_the_token_name_and_the_server_refusals() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server_dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}",
        server_dir.path().join("flywheel.db").display()
    );
    let settings = Settings::from_args(&ConfigArgs {
        database_url: Some(url.as_str().into()),
        bind: Some("127.0.0.1:0".to_owned()),
        data_dir: Some(server_dir.path().display().to_string()),
        tokens: Some(TOKENS.into()),
        ..ConfigArgs::default()
    })
    .expect("settings");
    let server = runtime
        .block_on(flywheel::server::start(settings))
        .expect("the server starts");
    let base = format!("http://{}", server.addr);
    let run = runtime.block_on(insert_run(&url, "reviewer", false));
    let client_dir = tempfile::tempdir().expect("temp dir");
    let remote = |args: &[&str], token: &str| {
        let mut cmd = flywheel(client_dir.path());
        cmd.args(args)
            .args(["--server", &base])
            .env("FLYWHEEL_TOKEN", token);
        cmd
    };
    let id = run.to_string();

    let err = fails(&mut remote(
        &["annotate", &id, "--rating", "bad"],
        "cli-agent-secret",
    ));
    assert!(err.contains("forbidden"), "{err}");
    let annotated = ok(&mut remote(
        &[
            "annotate",
            &id,
            "--rating",
            "bad",
            "--failure-mode",
            "false_positive",
        ],
        "cli-annotator-secret",
    ));
    assert!(annotated.contains("by reviewer"), "{annotated}");
    let err = fails(&mut remote(
        &[
            "annotate",
            &id,
            "--rating",
            "bad",
            "--failure-mode",
            "wrong_files",
        ],
        "cli-annotator-secret",
    ));
    assert!(err.contains("invalid_failure_mode"), "{err}");

    let added = ok(&mut remote(
        &[
            "failure-modes",
            "add",
            "reviewer",
            "too_verbose",
            "--description",
            "buries the verdict",
        ],
        "cli-admin-secret",
    ));
    assert!(added.contains("added too_verbose"), "{added}");
    let err = fails(&mut remote(
        &[
            "failure-modes",
            "add",
            "reviewer",
            "too_verbose",
            "--description",
            "again",
        ],
        "cli-admin-secret",
    ));
    assert!(err.contains("409"), "{err}");

    let table = ok(&mut remote(
        &["failure-modes", "counts", "reviewer", "--version", "1"],
        "cli-read-secret",
    ));
    let row = table
        .lines()
        .find(|l| l.starts_with("false_positive"))
        .unwrap_or_else(|| panic!("no false_positive row: {table}"));
    assert!(row.contains("100.0%"), "{table}");
    assert!(table.contains("too_verbose"), "{table}");

    let queue = ok(&mut remote(
        &["annotation-queue", "reviewer", "--limit", "5"],
        "cli-read-secret",
    ));
    assert!(!queue.contains(&id), "annotated by a person: {queue}");
    ok(&mut remote(
        &["annotate", &id, "--clear"],
        "cli-annotator-secret",
    ));
    let queue = ok(&mut remote(
        &["annotation-queue", "reviewer", "--json"],
        "cli-read-secret",
    ));
    assert!(queue.contains(&id), "{queue}");
    // Everything went through the server.
    assert!(!client_dir.path().join("flywheel.db").exists());
    runtime.block_on(server.shutdown()).expect("clean shutdown");
}
