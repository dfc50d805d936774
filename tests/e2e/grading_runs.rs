//! Grading what is stored, over real HTTP on both backends: the automatic grading of new runs
//! (and again when their outcome arrives), and grading jobs started, followed and cancelled
//! through `/api/grading-runs`.

use std::time::Duration;

use flywheel_e2e::{AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Records runs through the API; returns their ids in order.
async fn record(app: &TestApp, runs: Value) -> Vec<String> {
    let answer = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(json!({ "runs": runs }).to_string()))
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    answer.json["runs"]
        .as_array()
        .expect("runs answered")
        .iter()
        .map(|run| run["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Posts as admin, again while the server answers 503 because its grader components are
/// still loading (bounded: 600 tries, 100 ms apart).
async fn post_loaded(app: &TestApp, path: &str, body: Value) -> flywheel_e2e::Answer {
    for _ in 0..600 {
        let answer = app.post_admin(path, Some(body.clone())).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grader components never finished loading");
}

/// Reads a run until `done` holds for it (bounded: 1200 polls, 50 ms apart: the automatic
/// grader starts once every built-in component is loaded, the Python one included).
async fn run_when(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        last = app.get_ok(&format!("/api/runs/{id}"), READ_TOKEN).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} never reached the expected state: {last}");
}

/// Reads a grading job until it is final (bounded: 400 polls, 50 ms apart).
async fn job_when_final(app: &TestApp, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        last = app
            .get_ok(&format!("/api/grading-runs/{id}"), READ_TOKEN)
            .await;
        if !matches!(last["status"].as_str(), Some("queued" | "running")) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("grading run {id} never ended: {last}");
}

fn reviewer_run(task: &str, verdict: &str) -> Value {
    json!({
        "promptId": "reviewer", "taskId": task,
        "input": {"diff": "--- a/x\n+++ b/x\n", "review_target": "main", "task_title": "t",
                  "task_description": "d", "plan": "p", "test_log": "ok"},
        "output": json!({"verdict": verdict, "summary": "s"}).to_string(),
    })
}

async fn new_runs_are_graded_automatically_and_again_when_their_outcome_arrives(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let ids = record(
        &app,
        json!([
            reviewer_run("auto-1", "approve"),
            reviewer_run("auto-2", "request_changes")
        ]),
    )
    .await;

    // No outcome yet: the expected verdict is unknown, so the grader cannot compare.
    let graded = |run: &Value| run["graderResults"]["verdict_agrees_with_merge"].is_object();
    let first = run_when(&app, &ids[0], graded).await;
    let verdict = &first["graderResults"]["verdict_agrees_with_merge"];
    assert_eq!(verdict["error"], "invalid_input", "{first}");
    assert!(
        verdict["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("expected_verdict"),
        "{first}"
    );
    assert!(verdict["gradedAt"].is_string());

    // The PR of the first task merged: graded again, the approving verdict now agrees.
    let answer = app
        .send(
            &Req::new(
                reqwest::Method::PATCH,
                "/api/runs/outcomes",
                Some(AGENT_TOKEN),
            )
            .json(
                json!({"outcomes": [{"taskId": "auto-1", "testsPassed": true, "prMerged": true}]})
                    .to_string(),
            ),
        )
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    let regraded = run_when(&app, &ids[0], |run| {
        run["graderResults"]["verdict_agrees_with_merge"]["passed"] == true
    })
    .await;
    assert_eq!(regraded["outcome"]["prMerged"], true);
    app.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sqlite_new_runs_are_graded_automatically_and_again_when_their_outcome_arrives() {
    new_runs_are_graded_automatically_and_again_when_their_outcome_arrives(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_new_runs_are_graded_automatically_and_again_when_their_outcome_arrives() {
    new_runs_are_graded_automatically_and_again_when_their_outcome_arrives(Backend::Postgres).await;
}

fn coder_run(task: &str, diff: &str) -> Value {
    json!({
        "promptId": "coder", "taskId": task,
        "input": {"task_title": "t", "task_description": "d", "plan": "p",
                  "repository_files": "src/a.rs"},
        "output": diff,
    })
}

const GOOD_DIFF: &str = "--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,1 +1,1 @@\n-old\n+new\n";

async fn a_grading_job_grades_every_selected_run_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let mut runs = Vec::new();
    for n in 0..30 {
        let output = if n % 3 == 0 {
            "not a diff at all"
        } else {
            GOOD_DIFF
        };
        runs.push(coder_run(&format!("job-{n}"), output));
    }
    let ids = record(&app, Value::Array(runs)).await;

    let started = post_loaded(
        &app,
        "/api/grading-runs",
        json!({"promptId": "coder", "graders": ["diff_valid"]}),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    assert_eq!(started.json["total"], 30);
    assert_eq!(started.json["createdBy"], "ops");
    let id = started.json["id"].as_str().expect("job id").to_owned();

    let done = job_when_final(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"], 30);
    assert_eq!(done["passed"], 20);
    assert_eq!(done["failed"], 10);
    assert_eq!(done["errored"], 0);
    assert!(done["finishedAt"].is_string());
    let bad = app
        .get_ok(&format!("/api/runs/{}", ids[0]), READ_TOKEN)
        .await;
    assert_eq!(bad["graderResults"]["diff_valid"]["passed"], false, "{bad}");
    let good = app
        .get_ok(&format!("/api/runs/{}", ids[1]), READ_TOKEN)
        .await;
    assert_eq!(
        good["graderResults"]["diff_valid"]["passed"], true,
        "{good}"
    );

    // One verdict per run and grader in grading_results: none twice, none missing.
    let per_run: u64 = flywheel::store::testing::execute_raw(
        &db.url,
        "UPDATE grading_results SET logs = logs WHERE grader_name = 'diff_valid'",
    )
    .await
    .expect("count through an update");
    assert_eq!(per_run, 30);

    // A finished job is answered as it is by cancel.
    let cancelled = app
        .post_admin(&format!("/api/grading-runs/{id}/cancel"), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.json["status"], "completed");
    app.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sqlite_a_grading_job_grades_every_selected_run_once() {
    a_grading_job_grades_every_selected_run_once(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_a_grading_job_grades_every_selected_run_once() {
    a_grading_job_grades_every_selected_run_once(Backend::Postgres).await;
}

#[tokio::test]
async fn a_job_applies_a_named_definition_to_the_selected_runs_only() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;
    let ids = record(
        &app,
        json!([coder_run("sel-1", GOOD_DIFF), coder_run("sel-2", "no diff")]),
    )
    .await;
    let put = post_loaded(
        &app,
        "/api/graders/definitions",
        // Disabled, so automatic grading leaves it alone; a job may still name it.
        json!({"promptId": "coder", "name": "mentions_new", "enabled": false,
            "definition": {
            "type": "string_check", "name": "mentions_new", "operation": "like",
            "input": "{{sample.output_text}}", "reference": "+new"}}),
    )
    .await;
    assert_eq!(put.status, StatusCode::CREATED, "{put:?}");
    let started = post_loaded(
        &app,
        "/api/grading-runs",
        json!({"promptId": "coder", "graders": ["mentions_new"], "filter": {"ids": [ids[0]]}}),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{started:?}");
    assert_eq!(started.json["total"], 1);
    assert_eq!(started.json["graders"], json!(["mentions_new"]));
    let id = started.json["id"].as_str().expect("id").to_owned();
    let done = job_when_final(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (done["passed"].as_i64(), done["processed"].as_i64()),
        (Some(1), Some(1))
    );
    let graded = app
        .get_ok(&format!("/api/runs/{}", ids[0]), READ_TOKEN)
        .await;
    assert_eq!(
        graded["graderResults"]["mentions_new"]["passed"], true,
        "{graded}"
    );
    let other = app
        .get_ok(&format!("/api/runs/{}", ids[1]), READ_TOKEN)
        .await;
    assert!(
        other["graderResults"].get("mentions_new").is_none(),
        "a run outside the selection was graded: {other}"
    );
    app.server.shutdown().await.expect("shutdown");
}

async fn rules_annotate_failures_and_never_overwrite_a_person(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let ids = record(
        &app,
        json!([
            coder_run("rule-1", "this is not a diff"),
            coder_run("rule-2", GOOD_DIFF),
            coder_run("rule-3", GOOD_DIFF),
        ]),
    )
    .await;
    // diff_valid fails the first run: the rule says bad, incomplete_diff.
    let annotated = run_when(&app, &ids[0], |run| run["annotation"].is_object()).await;
    let annotation = &annotated["annotation"];
    assert_eq!(annotation["rating"], "bad", "{annotated}");
    assert_eq!(annotation["failureMode"], "incomplete_diff");
    assert_eq!(annotation["source"], "rule");
    assert_eq!(annotation["annotatedBy"], "rule:diff_valid");

    // A person rates the third run good before its outcome arrives.
    let put = app
        .send(
            &Req::new(
                reqwest::Method::PUT,
                format!("/api/runs/{}/annotation", ids[2]),
                Some(flywheel_e2e::ANNOTATOR_TOKEN),
            )
            .json(r#"{"rating":"good","outputFeedback":"looks right"}"#),
        )
        .await;
    assert!(put.status.is_success(), "{put:?}");

    // Both tasks' tests fail: the rule rates the second run bad (no failure mode explains it)
    // and leaves the person's annotation of the third alone.
    let answer = app
        .send(
            &Req::new(
                reqwest::Method::PATCH,
                "/api/runs/outcomes",
                Some(AGENT_TOKEN),
            )
            .json(
                json!({"outcomes": [{"taskId": "rule-2", "testsPassed": false},
                                    {"taskId": "rule-3", "testsPassed": false}]})
                .to_string(),
            ),
        )
        .await;
    assert!(answer.status.is_success(), "{answer:?}");
    let second = run_when(&app, &ids[1], |run| run["annotation"].is_object()).await;
    assert_eq!(second["annotation"]["rating"], "bad", "{second}");
    assert_eq!(second["annotation"]["failureMode"], Value::Null);
    assert_eq!(second["annotation"]["annotatedBy"], "rule:tests_failed");
    // The third run was graded again after its outcome (its tests_passed is in the item), and
    // the person's rating stands.
    let third = run_when(&app, &ids[2], |run| run["outcome"]["testsPassed"] == false).await;
    let regraded = run_when(&app, &ids[2], |run| {
        run["graderResults"]["diff_valid"]["gradedAt"].as_str()
            > third["graderResults"]["diff_valid"]["gradedAt"].as_str()
            || run["updatedAt"].as_str() > third["outcome"]["reportedAt"].as_str()
    })
    .await;
    assert_eq!(regraded["annotation"]["rating"], "good", "{regraded}");
    assert_eq!(regraded["annotation"]["source"], "person");
    app.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn sqlite_rules_annotate_failures_and_never_overwrite_a_person() {
    rules_annotate_failures_and_never_overwrite_a_person(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_rules_annotate_failures_and_never_overwrite_a_person() {
    rules_annotate_failures_and_never_overwrite_a_person(Backend::Postgres).await;
}
