//! A/B tests over HTTP on both backends: start, one running test per prompt (409), stop;
//! resolve answers the arm the hash gives (root task id first) and the arm's version, the same on
//! two instances of one database; results computed from recorded runs; a decision carried out
//! with `autoDeploy` when results are read, and by the background evaluator when nobody reads
//! them; runs recorded without a version are credited to their task's arm; a deploy during a
//! test stops it; with the feature flag off resolve ignores a running test.
//!
//! Some tests insert runs with raw SQL in the shape of `prompt_optimization_data` (they were
//! written before `POST /api/runs` landed); the evaluator test goes through the API.

use std::time::{Duration, Instant};

use flywheel::experiments::{Arm, assign};
use flywheel_e2e::{AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start_test(app: &TestApp, body: Value) -> Value {
    let answer = app
        .post_admin("/api/prompts/planner/ab-test", Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
    answer.json
}

async fn resolve(app: &TestApp, task: &str, root: Option<&str>) -> Value {
    let mut path = format!("/api/prompts/planner/resolve?task_id={task}");
    if let Some(root) = root {
        path.push_str(&format!("&root_task_id={root}"));
    }
    app.get_ok(&path, AGENT_TOKEN).await
}

fn expected_arm(test: &Value, unit: &str) -> Arm {
    assign(
        test["seed"].as_str().unwrap(),
        unit,
        test["trafficSplit"].as_f64().unwrap(),
    )
    .arm
}

fn arm_of(answer: &Value) -> Arm {
    match answer["arm"].as_str() {
        Some("a") => Arm::A,
        Some("b") => Arm::B,
        other => panic!("no arm in {answer} ({other:?})"),
    }
}

/// Waits until the running test's results count `n` exposures (they are written in the
/// background) and returns them.
async fn results_with(app: &TestApp, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = app
            .send(&Req::get(
                "/api/prompts/planner/ab-test/results",
                Some(READ_TOKEN),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let r = &answer.json["result"];
        let seen = r["a"]["n"].as_u64().unwrap() + r["b"]["n"].as_u64().unwrap();
        if seen == n || Instant::now() > deadline {
            assert_eq!(seen, n, "exposures recorded: {}", answer.text);
            return answer.json;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_stop_and_sticky_arms(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    assert_eq!(app.create_version("planner", "B: {{task}}").await, 2);
    let test = start_test(&app, json!({ "versionA": 1, "versionB": 2 })).await;
    assert_eq!(test["status"], "running");
    assert_eq!(
        test["trafficSplit"], 0.5,
        "the default split of the settings"
    );
    assert_eq!(test["createdBy"], "ops");
    let id = test["id"].as_str().unwrap().to_owned();

    // A second test of the same prompt is refused and stores nothing.
    let second = app
        .post_admin(
            "/api/prompts/planner/ab-test",
            Some(json!({ "versionA": 2, "versionB": 1 })),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.text);
    assert_eq!(second.error_code(), Some("ab_test_running"));
    let listed = app
        .get_ok("/api/prompts/planner/ab-tests", READ_TOKEN)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Resolve answers the hash's arm and that arm's version, for the same task every time.
    let mut seen = [0, 0];
    for i in 0..60 {
        let task = format!("task-{i}");
        let answer = resolve(&app, &task, None).await;
        let arm = arm_of(&answer);
        assert_eq!(arm, expected_arm(&test, &task), "{task}");
        assert_eq!(answer["version"], if arm == Arm::A { 1 } else { 2 });
        assert_eq!(answer["abTestId"], id.as_str());
        assert_eq!(arm_of(&resolve(&app, &task, None).await), arm, "sticky");
        seen[usize::from(arm == Arm::B)] += 1;
    }
    assert!(seen[0] > 10 && seen[1] > 10, "both arms served: {seen:?}");
    // A sub-task follows its root.
    for i in 0..20 {
        let root = format!("root-{i}");
        let answer = resolve(&app, &format!("{root}-step-3"), Some(&root)).await;
        assert_eq!(arm_of(&answer), expected_arm(&test, &root));
    }
    // One exposure per unit: 60 tasks and 20 roots.
    let results = results_with(&app, 80).await;
    assert_eq!(results["result"]["decision"], "keep_running");

    let stopped = app
        .post_admin("/api/prompts/planner/ab-test/stop", None)
        .await;
    assert_eq!(stopped.status, StatusCode::OK, "{}", stopped.text);
    assert_eq!(stopped.json["status"], "stopped");
    assert_eq!(stopped.json["result"]["ended"], "stopped by ops");
    let past = app.get_ok(&format!("/api/ab-tests/{id}"), READ_TOKEN).await;
    assert_eq!(past, stopped.json);
    let none = app
        .send(&Req::get(
            "/api/prompts/planner/ab-test/results",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(none.error_code(), Some("ab_test_not_found"));
    // Without a test every task gets the active version again, with no arm.
    let answer = resolve(&app, "task-1", None).await;
    assert_eq!(answer["version"], 1);
    assert!(answer.get("arm").is_none() && answer.get("abTestId").is_none());
    // And a new test can start.
    start_test(
        &app,
        json!({ "versionA": 1, "versionB": 2, "trafficSplit": 0.2 }),
    )
    .await;
}

/// Records a production run of `task` for planner and its outcome, through the API (the A/B
/// totals are running aggregates that the writers keep).
async fn run(app: &TestApp, task: &str, version: i64, passed: bool, tokens: i64) {
    let recorded = app
        .send(
            &Req::post("/api/runs", Some(AGENT_TOKEN)).json(
                json!({ "promptId": "planner", "version": version, "taskId": task,
                        "input": {}, "output": "plan", "tokensIn": tokens,
                        "latencyMs": tokens * 3 })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let reported = app
        .send(
            &Req::new(
                reqwest::Method::PATCH,
                "/api/runs/outcomes",
                Some(AGENT_TOKEN),
            )
            .json(json!({ "outcomes": [{ "taskId": task, "testsPassed": passed }] }).to_string()),
        )
        .await;
    assert_eq!(reported.status, StatusCode::OK, "{}", reported.text);
}

async fn results_from_runs_and_auto_deploy(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    app.disable_graders("planner").await;
    app.create_version("planner", "B: {{task}}").await;
    let test = start_test(
        &app,
        json!({ "versionA": 1, "versionB": 2, "minSamples": 50, "minSuccesses": 10,
                "minDays": 0, "guardrails": { "tokens": 0.25 }, "autoDeploy": true }),
    )
    .await;
    let id = test["id"].as_str().unwrap().to_owned();
    // 300 tasks; B passes 70% of the time, A 30%; tokens alike.
    let mut expected = [(0u64, 0u64); 2];
    for i in 0..300 {
        let task = format!("t{i}");
        let answer = resolve(&app, &task, None).await;
        let arm = arm_of(&answer);
        let passed = match arm {
            Arm::A => i % 10 < 3,
            Arm::B => i % 10 < 7,
        };
        let slot = &mut expected[usize::from(arm == Arm::B)];
        slot.0 += 1;
        slot.1 += u64::from(passed);
        run(
            &app,
            &task,
            answer["version"].as_i64().unwrap(),
            passed,
            1000 + (i % 7) * 10,
        )
        .await;
    }
    // Wait for the exposures without refreshing the results (which would carry out the
    // decision): count them through the store.
    let store = app.server.state.store.clone();
    let test_id: uuid::Uuid = id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let [a, b] = store.ab_test_totals(test_id).await.unwrap();
        if a.exposures + b.exposures == 300 {
            assert_eq!((a.exposures, a.successes), expected[0]);
            assert_eq!((b.exposures, b.successes), expected[1]);
            break;
        }
        assert!(Instant::now() < deadline, "exposures not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let answer = app
        .send(&Req::get(
            "/api/prompts/planner/ab-test/results",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let done = answer.json;
    let r = &done["result"];
    assert_eq!(r["a"]["n"], expected[0].0);
    assert_eq!(r["a"]["successes"], expected[0].1);
    assert_eq!(r["b"]["successes"], expected[1].1);
    assert!(
        r["primary"]["absolute"]["lower"].as_f64().unwrap() > 0.0,
        "{r}"
    );
    assert_eq!(r["guardrails"][0]["status"], "non_inferior", "{r}");
    assert_eq!(r["decision"], "ship_b", "{r}");
    // autoDeploy carried it out: the test completed, B deployed by the test.
    assert_eq!(done["status"], "completed");
    assert_eq!(done["decision"], "ship_b");
    assert_eq!(app.active_versions("planner").await, vec![2]);
    let history = app.get_ok("/api/prompts/planner/history", READ_TOKEN).await;
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"], format!("ab-test:{id}"), "{last}");
    assert_eq!(last["toVersion"], 2, "{last}");
    let resolved = resolve(&app, "after", None).await;
    assert_eq!(resolved["version"], 2);
    assert!(resolved.get("arm").is_none());
}

async fn a_deploy_during_a_test_stops_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    app.create_version("planner", "B: {{task}}").await;
    let test = start_test(&app, json!({ "versionA": 1, "versionB": 2 })).await;
    let deployed = app.post_admin("/api/prompts/planner/deploy/2", None).await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    let id = test["id"].as_str().unwrap();
    let past = app.get_ok(&format!("/api/ab-tests/{id}"), READ_TOKEN).await;
    assert_eq!(past["status"], "stopped");
    let ended = past["result"]["ended"].as_str().unwrap();
    assert!(ended.contains("deploy of version 2 by ops"), "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_start_stop_and_sticky_arms_sqlite() {
    start_stop_and_sticky_arms(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_start_stop_and_sticky_arms_postgres() {
    start_stop_and_sticky_arms(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_results_from_runs_and_auto_deploy_sqlite() {
    results_from_runs_and_auto_deploy(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_results_from_runs_and_auto_deploy_postgres() {
    results_from_runs_and_auto_deploy(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_deploy_during_a_test_stops_it_sqlite() {
    a_deploy_during_a_test_stops_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_deploy_during_a_test_stops_it_postgres() {
    a_deploy_during_a_test_stops_it(Backend::Postgres).await;
}

/// Two instances on one PostgreSQL database, one started after the test began (a restart):
/// both answer the same arm for every task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_two_instances_answer_the_same_arms_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let first = TestApp::start(&db).await;
    first.create_version("planner", "B: {{task}}").await;
    let test = start_test(
        &first,
        json!({ "versionA": 1, "versionB": 2, "trafficSplit": 0.3 }),
    )
    .await;
    let second = TestApp::start(&db).await;
    for i in 0..40 {
        let task = format!("shared-{i}");
        let one = resolve(&first, &task, None).await;
        let two = resolve(&second, &task, None).await;
        assert_eq!(arm_of(&one), arm_of(&two), "{task}");
        assert_eq!(one["version"], two["version"]);
        assert_eq!(arm_of(&one), expected_arm(&test, &task));
    }
}

/// The background evaluator carries out an `autoDeploy` decision nobody asked for, and runs
/// recorded without a version are credited to the version their arm was served.
async fn evaluator_decides_and_runs_default_to_the_arm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut settings = db.settings();
    settings.ab_evaluate_interval = Duration::from_millis(200);
    let app = TestApp::start_with(settings).await;
    app.create_version("planner", "B: {{task}}").await;
    let test = start_test(
        &app,
        json!({ "versionA": 1, "versionB": 2, "minSamples": 50, "minSuccesses": 10,
                "minDays": 0, "guardrails": {}, "autoDeploy": true }),
    )
    .await;
    let id = test["id"].as_str().unwrap().to_owned();

    // 300 units; every 5th task is a sub-task of another root, which decides its arm.
    let mut runs = Vec::new();
    let mut outcomes = Vec::new();
    let mut served = Vec::new();
    for i in 0..300 {
        let task = format!("e{i}");
        let root = (i % 5 == 0).then(|| format!("root-{i}"));
        let answer = resolve(&app, &task, root.as_deref()).await;
        let arm = arm_of(&answer);
        assert_eq!(arm, expected_arm(&test, root.as_deref().unwrap_or(&task)));
        served.push(answer["version"].as_i64().unwrap());
        let mut run = json!({
            "promptId": "planner", "taskId": task, "input": {"task": task},
            "output": "plan", "tokensIn": 90, "tokensOut": 10, "latencyMs": 1000,
        });
        if let Some(root) = &root {
            run["rootTaskId"] = json!(root);
        }
        runs.push(run);
        let unit = root.unwrap_or(task);
        let passed = match arm {
            Arm::A => i % 10 < 3,
            Arm::B => i % 10 < 7,
        };
        outcomes.push(json!({ "taskId": unit, "testsPassed": passed }));
    }
    // Without a version, each run is credited to the version resolve served its unit.
    let recorded = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(json!({ "runs": runs }).to_string()))
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let ids: Vec<&str> = recorded.json["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 300);
    for (i, run_id) in ids.iter().enumerate() {
        let stored = app.get_ok(&format!("/api/runs/{run_id}"), READ_TOKEN).await;
        assert_eq!(stored["version"], served[i], "run e{i}: {stored}");
    }
    assert!(
        served.contains(&1) && served.contains(&2),
        "both arms served"
    );
    let reported = app
        .send(
            &Req::new(
                reqwest::Method::PATCH,
                "/api/runs/outcomes",
                Some(AGENT_TOKEN),
            )
            .json(json!({ "outcomes": outcomes }).to_string()),
        )
        .await;
    assert_eq!(reported.status, StatusCode::OK, "{}", reported.text);

    // Nobody reads the results: the evaluator ends the test and deploys B as the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = loop {
        let listed = app
            .get_ok("/api/prompts/planner/ab-tests", READ_TOKEN)
            .await;
        let mine = listed[0].clone();
        assert_eq!(mine["id"], id.as_str());
        if mine["status"] != "running" {
            break mine;
        }
        assert!(Instant::now() < deadline, "not decided: {mine}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["decision"], "ship_b", "{ended}");
    assert_eq!(app.active_versions("planner").await, vec![2]);
    let history = app.get_ok("/api/prompts/planner/history", READ_TOKEN).await;
    let history = history.as_array().unwrap();
    let by_test: Vec<&Value> = history
        .iter()
        .filter(|h| h["actor"] == format!("ab-test:{id}"))
        .collect();
    assert_eq!(by_test.len(), 1, "deployed once: {history:?}");
    assert_eq!(by_test[0]["toVersion"], 2);

    // The dropped-exposure counter is exported (none dropped here).
    let metrics = app.send(&Req::get("/metrics", None)).await;
    assert!(
        metrics
            .text
            .contains("flywheel_ab_exposures_dropped_total 0"),
        "{}",
        metrics.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_evaluator_decides_and_runs_default_to_the_arm_sqlite() {
    evaluator_decides_and_runs_default_to_the_arm(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_evaluator_decides_and_runs_default_to_the_arm_postgres() {
    evaluator_decides_and_runs_default_to_the_arm(Backend::Postgres).await;
}

/// With `ENABLE_PROMPT_OPTIMIZATION=false`, resolve serves the active version and records no
/// exposure, even while a test (started when the flag was on) runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_resolve_ignores_a_running_test_with_the_feature_off_sqlite() {
    let db = TestDb::new(Backend::Sqlite).await;
    let on = TestApp::start(&db).await;
    on.create_version("planner", "B: {{task}}").await;
    let test = start_test(
        &on,
        json!({ "versionA": 1, "versionB": 2, "trafficSplit": 0.5 }),
    )
    .await;
    let test_id: uuid::Uuid = test["id"].as_str().unwrap().parse().unwrap();
    let mut settings = db.settings();
    settings.enable_prompt_optimization = false;
    let off = TestApp::start_with(settings).await;
    let mut b_tasks = 0;
    for i in 0..30 {
        let task = format!("off-{i}");
        b_tasks += usize::from(expected_arm(&test, &task) == Arm::B);
        let answer = resolve(&off, &task, None).await;
        assert_eq!(answer["version"], 1, "{answer}");
        assert!(answer.get("arm").is_none() && answer.get("abTestId").is_none());
    }
    assert!(
        b_tasks > 0,
        "some of these tasks would be in B with the flag on"
    );
    // The same task resolved where the flag is on is in the test and is recorded: once that
    // exposure has landed, it is the only one.
    resolve(&on, "on-1", None).await;
    let store = on.server.state.store.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let [a, b] = store.ab_test_totals(test_id).await.unwrap();
        if a.exposures + b.exposures >= 1 {
            // Give the other instance's writer (had it queued anything) time to land too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let [a, b] = store.ab_test_totals(test_id).await.unwrap();
            assert_eq!(a.exposures + b.exposures, 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the flag-on exposure was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
