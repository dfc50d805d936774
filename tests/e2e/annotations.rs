//! Annotations over HTTP on both backends: annotate, clear, history, the queue, the taxonomy and
//! the counts table; who may annotate; the feature switch.

use flywheel::store::{NewOutcome, NewRun};
use flywheel_e2e::{
    ADMIN_NAME, ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, Backend, READ_TOKEN, Req, TestApp,
    TestDb,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Name of the annotator token in the test apps.
const ANNOTATOR_NAME: &str = "reviewer";

/// Records a run of version 1 of `prompt` through the store's runs domain (so it works with
/// prompt optimization switched off too), and its outcome when `tests_passed` is known. The
/// prompt's grader definitions are disabled first, so the background grader leaves
/// `graders_passed` unknown and the tests and ratings alone decide success and queue order.
pub(crate) async fn insert_run(app: &TestApp, prompt: &str, tests_passed: Option<bool>) -> Uuid {
    app.disable_graders(prompt).await;
    let store = &app.server.state.store;
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
    if tests_passed.is_some() {
        store
            .report_outcomes(&[NewOutcome {
                task_id,
                tests_passed,
                pr_merged: None,
                expected_files: None,
                failure_signature: None,
            }])
            .await
            .expect("report its outcome");
    }
    recorded[0].id
}

/// Waits (at most 20 s) until the background grader has been through the run, so nothing but
/// the test changes it afterwards.
pub(crate) async fn settled(app: &TestApp, run: Uuid) {
    let store = &app.server.state.store;
    for _ in 0..400 {
        // Out of the queue (an outcome puts a run back in it) and graded: the rules ran too.
        let queued = store
            .runs_to_auto_grade(10_000)
            .await
            .expect("read the queue")
            .iter()
            .any(|queued| queued.id == run);
        let graded = store
            .get_run(run)
            .await
            .expect("read the run")
            .grader_results
            .is_some();
        if graded && !queued {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the background grader never went through run {run}");
}

fn put(run: Uuid, token: &str, body: Value) -> Req {
    Req::new(
        Method::PUT,
        format!("/api/runs/{run}/annotation"),
        Some(token),
    )
    .json(body.to_string())
}

fn queue_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn annotate_history_queue_and_counts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let passed = insert_run(&app, "planner", Some(true)).await;
    let failed = insert_run(&app, "planner", Some(false)).await;
    let unknown = insert_run(&app, "planner", None).await;

    // The queue: failed first, then newest.
    let page = app
        .get_ok("/api/prompts/planner/annotation-queue", READ_TOKEN)
        .await;
    assert_eq!(
        queue_ids(&page),
        [failed, unknown, passed].map(|id| id.to_string())
    );
    assert_eq!(page["items"][0]["failed"], true);
    assert_eq!(page["nextCursor"], Value::Null);
    let first = app
        .get_ok("/api/prompts/planner/annotation-queue?limit=1", READ_TOKEN)
        .await;
    assert_eq!(queue_ids(&first), [failed.to_string()]);
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get_ok(
            &format!("/api/prompts/planner/annotation-queue?limit=1&cursor={cursor}"),
            READ_TOKEN,
        )
        .await;
    assert_eq!(queue_ids(&second), [unknown.to_string()]);

    // Annotate: the token's name is the annotator; a person made it.
    let answer = app
        .send(&put(
            failed,
            ANNOTATOR_TOKEN,
            json!({"rating": "bad", "failureMode": "wrong_files", "outputFeedback": "touches the wrong module"}),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["runId"], failed.to_string());
    assert_eq!(answer.json["rating"], "bad");
    assert_eq!(answer.json["failureMode"], "wrong_files");
    assert_eq!(answer.json["outputFeedback"], "touches the wrong module");
    assert_eq!(answer.json["source"], "person");
    assert_eq!(answer.json["annotatedBy"], ANNOTATOR_NAME);
    // The run shows it as its current annotation.
    let shown = app.get_ok(&format!("/api/runs/{failed}"), READ_TOKEN).await;
    assert_eq!(shown["annotation"]["rating"], "bad", "{shown}");
    assert_eq!(shown["annotation"]["failureMode"], "wrong_files");
    assert_eq!(shown["annotation"]["source"], "person");
    assert_eq!(shown["annotation"]["annotatedBy"], ANNOTATOR_NAME);

    // A person's annotation takes the run out of the queue.
    let page = app
        .get_ok("/api/prompts/planner/annotation-queue", READ_TOKEN)
        .await;
    assert_eq!(queue_ids(&page), [unknown, passed].map(|id| id.to_string()));

    // The bad rating decides the unknown run's success: it counts as failed, without a code.
    let answer = app
        .send(&put(unknown, ADMIN_TOKEN, json!({"rating": "bad"})))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json["annotatedBy"], ADMIN_NAME);
    let counts = app
        .get_ok("/api/prompts/planner/failure-modes/counts", READ_TOKEN)
        .await;
    assert_eq!(counts["failedRuns"], 2, "{counts}");
    assert_eq!(counts["uncoded"], 1);
    assert_eq!(counts["uncodedShare"], 0.5);
    let wrong_files = counts["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .find(|c| c["code"] == "wrong_files")
        .expect("every code listed");
    assert_eq!(wrong_files["count"], 1);
    assert_eq!(wrong_files["share"], 0.5);
    let v1 = app
        .get_ok(
            "/api/prompts/planner/failure-modes/counts?version=1",
            READ_TOKEN,
        )
        .await;
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["failedRuns"], 2);
    // The version's figures follow: one passed, two failed.
    let version = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    let rate = version["successRate"].as_f64().expect("a success rate");
    assert!((rate - 100.0 / 3.0).abs() < 1e-6, "{version}");

    // A new code of the taxonomy is usable at once.
    let added = app
        .post_admin(
            "/api/prompts/planner/failure-modes",
            Some(json!({"code": "ignored_constraints", "description": "ignores a stated constraint"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.json["code"], "ignored_constraints");
    let taxonomy = app
        .get_ok("/api/prompts/planner/failure-modes", READ_TOKEN)
        .await;
    assert!(
        taxonomy
            .as_array()
            .expect("codes")
            .iter()
            .any(|m| m["code"] == "ignored_constraints"),
        "{taxonomy}"
    );
    let answer = app
        .send(&put(
            failed,
            ANNOTATOR_TOKEN,
            json!({"rating": "bad", "failureMode": "ignored_constraints"}),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);

    // Clear, then the history shows every change, oldest first.
    let cleared = app
        .send(&Req::new(
            Method::DELETE,
            format!("/api/runs/{failed}/annotation"),
            Some(ANNOTATOR_TOKEN),
        ))
        .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT, "{}", cleared.text);
    let history = app
        .get_ok(&format!("/api/runs/{failed}/annotations"), READ_TOKEN)
        .await;
    let entries: Vec<(&str, &str, &str, Value)> = history
        .as_array()
        .expect("history")
        .iter()
        // The run's tests failed, so the rules may have annotated it first.
        .filter(|e| e["source"] != "rule")
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default(),
                e["source"].as_str().unwrap_or_default(),
                e["actor"].as_str().unwrap_or_default(),
                e["failureMode"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("set", "person", ANNOTATOR_NAME, json!("wrong_files")),
            (
                "set",
                "person",
                ANNOTATOR_NAME,
                json!("ignored_constraints")
            ),
            ("clear", "person", ANNOTATOR_NAME, Value::Null),
        ]
    );
    // Cleared: the run is back in the queue, first (its tests failed).
    let page = app
        .get_ok("/api/prompts/planner/annotation-queue", READ_TOKEN)
        .await;
    assert_eq!(queue_ids(&page)[0], failed.to_string());
}

#[tokio::test]
async fn annotations_over_http_on_sqlite() {
    annotate_history_queue_and_counts(Backend::Sqlite).await;
}

#[tokio::test]
async fn annotations_over_http_on_postgres() {
    annotate_history_queue_and_counts(Backend::Postgres).await;
}

async fn a_failure_mode_outside_the_taxonomy_lists_the_allowed_codes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let run = insert_run(&app, "coder", Some(false)).await;
    let answer = app
        .send(&put(
            run,
            ANNOTATOR_TOKEN,
            json!({"rating": "bad", "failureMode": "wrong_files"}),
        ))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.error_code(), Some("invalid_failure_mode"));
    assert_eq!(
        answer.json["error"]["details"]["allowed"],
        json!([
            "incomplete_diff",
            "missing_imports",
            "syntax_error",
            "wrong_approach"
        ])
    );
    let history = app
        .get_ok(&format!("/api/runs/{run}/annotations"), READ_TOKEN)
        .await;
    assert_eq!(
        by_people(&history),
        0,
        "a refused annotation stores nothing: {history}"
    );
}

/// How many entries of an annotation history a person made (the rules annotate in the
/// background and may add their own).
fn by_people(history: &serde_json::Value) -> usize {
    history
        .as_array()
        .expect("a history is an array")
        .iter()
        .filter(|entry| entry["source"] == "person")
        .count()
}

#[tokio::test]
async fn invalid_failure_mode_on_sqlite() {
    a_failure_mode_outside_the_taxonomy_lists_the_allowed_codes(Backend::Sqlite).await;
}

#[tokio::test]
async fn invalid_failure_mode_on_postgres() {
    a_failure_mode_outside_the_taxonomy_lists_the_allowed_codes(Backend::Postgres).await;
}

#[tokio::test]
async fn agents_may_not_annotate_annotators_and_admins_may() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;
    let run = insert_run(&app, "fixer", Some(false)).await;
    let body = json!({"rating": "bad", "failureMode": "same_error_repeated"});
    for token in [AGENT_TOKEN, READ_TOKEN] {
        let refused = app.send(&put(run, token, body.clone())).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert_eq!(refused.error_code(), Some("forbidden"));
    }
    let refused = app
        .send(&Req::new(
            Method::DELETE,
            format!("/api/runs/{run}/annotation"),
            Some(AGENT_TOKEN),
        ))
        .await;
    assert_eq!(refused.error_code(), Some("forbidden"));
    // Only admins extend the taxonomy.
    let refused = app
        .send(
            &Req::post("/api/prompts/fixer/failure-modes", Some(ANNOTATOR_TOKEN))
                .json(r#"{"code":"new_code","description":"d"}"#),
        )
        .await;
    assert_eq!(refused.error_code(), Some("forbidden"));
    let history = app
        .get_ok(&format!("/api/runs/{run}/annotations"), READ_TOKEN)
        .await;
    // The rules may annotate the run (its tests failed); no person's annotation was stored.
    assert_eq!(
        by_people(&history),
        0,
        "a refused call stores nothing: {history}"
    );

    for (token, name) in [(ANNOTATOR_TOKEN, ANNOTATOR_NAME), (ADMIN_TOKEN, ADMIN_NAME)] {
        let answer = app.send(&put(run, token, body.clone())).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.json["annotatedBy"], name);
    }
    let history = app
        .get_ok(&format!("/api/runs/{run}/annotations"), READ_TOKEN)
        .await;
    assert_eq!(by_people(&history), 2, "{history}");
}

#[tokio::test]
async fn with_prompt_optimization_off_annotation_routes_answer_feature_disabled() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.enable_prompt_optimization = false;
    let app = TestApp::start_with(settings).await;
    let run = insert_run(&app, "planner", Some(false)).await;
    let requests = [
        put(run, ANNOTATOR_TOKEN, json!({"rating": "bad"})),
        Req::new(
            Method::DELETE,
            format!("/api/runs/{run}/annotation"),
            Some(ADMIN_TOKEN),
        ),
        Req::get(format!("/api/runs/{run}/annotations"), Some(READ_TOKEN)),
        Req::post("/api/prompts/planner/failure-modes", Some(ADMIN_TOKEN))
            .json(r#"{"code":"new_code","description":"d"}"#),
        Req::get("/api/prompts/planner/annotation-queue", Some(READ_TOKEN)),
        Req::get(
            "/api/prompts/planner/failure-modes/counts",
            Some(READ_TOKEN),
        ),
    ];
    for req in &requests {
        let answer = app.send(req).await;
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::FORBIDDEN, Some("feature_disabled")),
            "{} {}: {}",
            req.method,
            req.path,
            answer.text
        );
    }
    // Prompt management works as before, and nothing was stored.
    let taxonomy = app
        .get_ok("/api/prompts/planner/failure-modes", READ_TOKEN)
        .await;
    assert_eq!(taxonomy.as_array().map(Vec::len), Some(4));
    let store = &app.server.state.store;
    assert_eq!(store.current_annotation(run).await.expect("read"), None);
    assert!(
        store
            .annotation_history(run)
            .await
            .expect("read")
            .is_empty()
    );
}
