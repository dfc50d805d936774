//! The runs routes end to end on both backends: recording (single, batch, retry), outcomes in
//! either order, the figures the version endpoints show, reading with pages and filters, and
//! the feature flag switching every optimization route off.

use flywheel::api::{Access, ROUTES};
use flywheel_e2e::{ADMIN_TOKEN, AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn run(prompt: &str, task: &str) -> Value {
    json!({
        "promptId": prompt, "taskId": task, "input": {"task_title": task},
        "output": format!("plan for {task}"), "model": "gpt-test",
        "tokensIn": 90, "tokensOut": 10, "latencyMs": 1200,
    })
}

async fn post_runs(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let answer = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(body.to_string()))
        .await;
    (answer.status, answer.json)
}

async fn report(app: &TestApp, outcomes: Value) -> Value {
    let answer = app
        .send(
            &Req::new(Method::PATCH, "/api/runs/outcomes", Some(AGENT_TOKEN))
                .json(json!({ "outcomes": outcomes }).to_string()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json
}

fn ids(answer: &Value) -> Vec<String> {
    answer["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn runs_are_recorded_completed_and_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;

    // One run, then the same run again: 201, then 200 with the same id.
    let (status, first) = post_runs(&app, run("planner", "task-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["runs"][0]["created"], true);
    let (status, again) = post_runs(&app, run("planner", "task-1")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(again["runs"][0]["created"], false);

    // An outcome before its runs is kept for them.
    let early = report(
        &app,
        json!([{"taskId": "task-2", "testsPassed": false, "expectedFiles": ["a.rs"]}]),
    )
    .await;
    assert_eq!(
        early["outcomes"][0],
        json!({"taskId": "task-2", "runsUpdated": 0})
    );

    // A batch mixing new runs and the one recorded before, in order.
    let mut second_attempt = run("planner", "task-2");
    second_attempt["attempt"] = json!(2);
    let (status, batch) = post_runs(
        &app,
        json!({"runs": [run("planner", "task-2"), run("planner", "task-1"), second_attempt, run("coder", "task-1")]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let created: Vec<bool> = batch["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["created"].as_bool().expect("created"))
        .collect();
    assert_eq!(created, [true, false, true, true]);
    assert_eq!(ids(&batch)[1], ids(&first)[0]);

    // The automatic grader and its rules run in the background; wait until they are done with
    // every run, so what follows reads a settled state.
    for id in ids(&first).iter().chain(ids(&batch).iter()) {
        crate::annotations::settled(&app, id.parse().expect("uuid")).await;
    }
    let task2 = app
        .get_ok(&format!("/api/runs/{}", ids(&batch)[0]), READ_TOKEN)
        .await;
    assert_eq!(task2["outcome"]["testsPassed"], false, "{task2}");
    assert_eq!(task2["outcome"]["expectedFiles"], json!(["a.rs"]));
    assert_eq!(task2["success"], false);
    assert_eq!(task2["version"], 1);
    assert_eq!(task2["attempt"], 1);
    assert_eq!(task2["input"], json!({"task_title": "task-2"}));
    // Failed tests: the rule rates the run bad, marked as a rule's and not a person's.
    assert_eq!(task2["annotation"]["rating"], "bad", "{task2}");
    assert_eq!(task2["annotation"]["source"], "rule");
    assert_eq!(task2["origin"], "production");

    // An outcome after its runs updates every run of the task, of every prompt.
    let late = report(
        &app,
        json!([{"taskId": "task-1", "testsPassed": true, "prMerged": true}]),
    )
    .await;
    assert_eq!(late["outcomes"][0]["runsUpdated"], 2);
    let task1 = app
        .get_ok(&format!("/api/runs/{}", ids(&first)[0]), READ_TOKEN)
        .await;
    assert_eq!(task1["outcome"]["prMerged"], true, "{task1}");
    assert_eq!(task1["success"], true);
    crate::annotations::settled(&app, ids(&first)[0].parse().expect("uuid")).await;

    // The figures the version endpoints show: planner v1 has tasks 1 and 2, runs 1 passed and
    // 2 failed (task-2 twice).
    let v1 = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    assert_eq!(v1["tasksExecuted"], 2, "{v1}");
    let rate = v1["successRate"].as_f64().expect("success rate");
    assert!((rate - 100.0 / 3.0).abs() < 1e-6, "{rate}");
    assert_eq!(v1["avgTokens"], 100);

    // Pages of two, newest first, and the filters.
    let mut seen = Vec::new();
    let mut path = "/api/runs?limit=2".to_owned();
    loop {
        let page = app.get_ok(&path, READ_TOKEN).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|r| r["id"].as_str().expect("id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/runs?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    let coder = app.get_ok("/api/runs?promptId=coder", READ_TOKEN).await;
    assert_eq!(coder["items"].as_array().expect("items").len(), 1);
    assert_eq!(coder["nextCursor"], Value::Null);
    let unannotated = app
        .get_ok(
            "/api/runs?annotated=false&promptId=planner&version=1",
            READ_TOKEN,
        )
        .await;
    // Task-1 passed and stays unannotated; both runs of task-2 carry the rule's annotation.
    let unannotated: Vec<&str> = unannotated["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(unannotated, [ids(&first)[0].as_str()]);
    let annotated = app
        .get_ok(
            "/api/runs?annotated=true&promptId=planner&version=1",
            READ_TOKEN,
        )
        .await;
    assert_eq!(annotated["items"].as_array().expect("items").len(), 2);
    let future = app
        .get_ok("/api/runs?from=2999-01-01T00:00:00Z", READ_TOKEN)
        .await;
    assert_eq!(future["items"], json!([]));
}

#[tokio::test]
async fn runs_on_sqlite() {
    runs_are_recorded_completed_and_read(Backend::Sqlite).await;
}

#[tokio::test]
async fn runs_on_postgres() {
    runs_are_recorded_completed_and_read(Backend::Postgres).await;
}

/// A concrete path and a valid body for a route, so that only the feature flag can refuse it.
fn valid_request(method: &Method, path: &str, token: &str) -> Req {
    let concrete = path
        .replace("{id}", "0190b5a2-7c3e-7000-8000-000000000000")
        .replace("{promptId}", "planner")
        .replace("{version}", "1")
        .replace("{name}", "files_match");
    let req = Req::new(method.clone(), concrete, Some(token));
    match (method.as_str(), path) {
        ("POST", "/api/runs") => req.json(run("planner", "flag").to_string()),
        ("PATCH", "/api/runs/outcomes") => {
            req.json(json!({"outcomes": [{"taskId": "flag", "testsPassed": true}]}).to_string())
        }
        _ => req.json("{}"),
    }
}

#[tokio::test]
async fn with_optimization_off_its_routes_answer_feature_disabled_and_store_nothing() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.enable_prompt_optimization = false;
    let app = TestApp::start_with(settings).await;
    let before = app.snapshot().await;
    let gated: Vec<_> = ROUTES.iter().filter(|r| r.optimization).collect();
    assert!(gated.len() >= 4, "the runs routes are gated");
    for spec in &gated {
        assert!(
            matches!(spec.access, Access::Needs(_)),
            "{} is not public",
            spec.path
        );
        let answer = app
            .send(&valid_request(&spec.method, spec.path, ADMIN_TOKEN))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{} {}: {}",
            spec.method,
            spec.path,
            answer.text
        );
        assert_eq!(
            answer.error_code(),
            Some("feature_disabled"),
            "{} {}",
            spec.method,
            spec.path
        );
    }
    // The role check still comes first.
    let anonymous = app.send(&Req::get("/api/runs", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.snapshot().await,
        before,
        "a disabled route stored something"
    );

    // Resolve and prompt management work as before.
    assert_eq!(app.resolve_version("planner", "flag-task").await, 1);
    let version = app
        .create_version("planner", "Plan {{task_title}} carefully")
        .await;
    let deploy = app
        .send(&Req::post(
            format!("/api/prompts/planner/deploy/{version}"),
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(deploy.status, StatusCode::OK, "{}", deploy.text);
    assert_eq!(app.active_versions("planner").await, vec![version]);
}
