//! Prompt optimization over real HTTP against the fake model server, on both backends:
//! - a planted flaw (the task model fails a row unless the prompt tells it to cite the source;
//!   the reflection model proposes that only when the critiques it is shown say so) is found,
//!   the gain is reported on the validation rows and the winner becomes a version;
//! - a flat task (no prompt helps) stops within a quarter of the budget, validates nothing and
//!   creates no version;
//! - a coin flip (each answer right or wrong by a seeded hash of the request) is not mistaken
//!   for a gain;
//! - proposals with other template variables are discarded and counted;
//! - cancel, budget end and a restart end cleanly; the gate, the floor of annotated rows and
//!   bad requests answer with their codes and store nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_model::{Behaviour, FakeModel, last_user_message};
use flywheel_e2e::optimizer::{
    DATASET, FIX, REFLECTOR, app_with_model, body, coin_flip, flat, is_final, is_reflection,
    needs_fix, planted, post_loaded, rows, setup, start, task_answer, when,
};
use flywheel_e2e::{Backend, READ_TOKEN, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn count(v: &Value) -> i64 {
    v.as_i64().unwrap_or(-1)
}

async fn versions(app: &TestApp) -> Vec<Value> {
    app.get_ok("/api/prompts/qa/versions", READ_TOKEN)
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Task-model and reflection calls the fake received.
pub fn calls(fake: &FakeModel) -> (usize, usize) {
    let requests = fake.requests();
    let reflection = requests
        .iter()
        .filter(|r| r.json.as_ref().is_some_and(is_reflection))
        .count();
    (requests.len() - reflection, reflection)
}

async fn the_planted_flaw_is_found_validated_and_becomes_a_version(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    planted(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["stopReason"], "target_reached", "{report}");
    assert_eq!(report["outcome"]["improved"], true, "{report}");
    assert!(
        report["winnerText"]
            .as_str()
            .unwrap_or_default()
            .contains(FIX)
    );
    let validation = &report["validation"];
    assert_eq!(validation["rows"], 40);
    assert_eq!(validation["scoreAfter"], 1.0);
    let before = validation["scoreBefore"].as_f64().unwrap_or(1.0);
    assert!(before < 0.5, "{validation}");
    assert!(validation["gainInterval"]["lower"].as_f64() > Some(0.0));
    let exact = &validation["graders"][0];
    assert_eq!(exact["before"]["grader"], "exact");
    assert_eq!(exact["after"]["passRate"], 1.0);
    assert!(exact["after"]["passRateInterval"]["lower"].as_f64() > Some(0.8));
    assert!(exact["difference"]["failToPass"].as_i64() > Some(20));
    assert_eq!(exact["difference"]["passToFail"], 0);
    let modes = &report["failureModes"][0];
    assert_eq!(modes["code"], "no_citation");
    assert_eq!(modes["failingBefore"], modes["rows"]);
    assert_eq!(modes["failingAfter"], 0);
    let lineage = report["lineage"].as_array().expect("lineage");
    assert_eq!(lineage.len(), 2, "start, then the fix: {report}");
    assert_eq!(lineage[0]["candidate"], 0);
    assert_eq!(lineage[1]["parent"], 0);

    // The version: inactive, source optimizer, parent the start, linked to the run.
    let version = count(&done["createdVersion"]);
    assert_eq!(version, 2);
    assert_eq!(report["outcome"]["version"], 2);
    let stored = app.get_ok("/api/prompts/qa/versions/2", READ_TOKEN).await;
    assert_eq!(stored["source"], "optimizer");
    assert_eq!(stored["parentVersion"], 1);
    assert_eq!(stored["isActive"], false);
    assert!(stored["content"].as_str().unwrap_or_default().contains(FIX));
    assert!(stored["notes"].as_str().unwrap_or_default().contains(&id));
    assert_eq!(app.active_versions("qa").await, vec![1]);

    // Cost: every call counted, the two models apart, and far under the budget.
    let spent = &report["spent"];
    let (task, reflection) = calls(&fake);
    assert_eq!(count(&spent["taskCalls"]), task as i64, "{spent}");
    assert_eq!(count(&spent["reflectionCalls"]), reflection as i64);
    assert_eq!(reflection, 1, "one reflection found it");
    // 40 train rows for the start, 8 + 32 for the fix, 80 to validate both.
    assert_eq!(task, 160, "{spent}");
    assert_eq!(count(&spent["validationCalls"]), 80);
    assert!(spent["reflectionTokens"].as_i64() > Some(0));
    let recorded: i64 = report["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| count(&c["calls"]))
        .sum();
    assert_eq!(recorded, (task + reflection) as i64);
    assert_eq!(done["progress"]["bestTrainScore"], 1.0);

    // Listed, newest first.
    let listed = app
        .get_ok("/api/optimizations?promptId=qa", READ_TOKEN)
        .await;
    assert_eq!(listed[0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_planted_flaw_is_found_validated_and_becomes_a_version() {
    the_planted_flaw_is_found_validated_and_becomes_a_version(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_planted_flaw_is_found_validated_and_becomes_a_version() {
    the_planted_flaw_is_found_validated_and_becomes_a_version(Backend::Postgres).await;
}

async fn a_flat_task_stops_early_and_creates_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    flat(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["stopReason"], "no_improvement", "{report}");
    assert_eq!(report["outcome"]["improved"], false);
    assert!(report["validation"].is_null(), "nothing to validate");
    assert!(done["createdVersion"].is_null());
    assert_eq!(versions(&app).await.len(), 1);
    let (task, reflection) = calls(&fake);
    assert!(task <= 100, "{task} task calls: more than a quarter of 400");
    assert_eq!(count(&report["spent"]["taskCalls"]), task as i64);
    assert_eq!(count(&report["spent"]["validationCalls"]), 0);
    assert_eq!(reflection, 4, "patience 4");
    // Each reflection was tried or, proposing again what failed, discarded as a duplicate.
    let candidates = &report["candidates"];
    assert_eq!(
        count(&candidates["tried"]) + count(&candidates["discarded"]["duplicate"]),
        4,
        "{candidates}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_flat_task_stops_early_and_creates_nothing() {
    a_flat_task_stops_early_and_creates_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_flat_task_stops_early_and_creates_nothing() {
    a_flat_task_stops_early_and_creates_nothing(Backend::Postgres).await;
}

async fn a_coin_flip_is_not_mistaken_for_a_gain(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    coin_flip(&fake, 7);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    let report = &done["report"];
    assert_eq!(report["outcome"]["improved"], false, "{report}");
    assert!(done["createdVersion"].is_null());
    assert_eq!(versions(&app).await.len(), 1);
    let (task, _) = calls(&fake);
    assert!(task <= 400, "{task} task calls");
    // Whatever won on the train rows by chance was checked on the validation rows.
    if !report["validation"].is_null() {
        let interval = &report["validation"]["gainInterval"];
        assert!(interval["lower"].as_f64() <= Some(0.0), "{report}");
        assert!(
            report["outcome"]["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("within the noise")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_coin_flip_is_not_mistaken_for_a_gain() {
    a_coin_flip_is_not_mistaken_for_a_gain(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_coin_flip_is_not_mistaken_for_a_gain() {
    a_coin_flip_is_not_mistaken_for_a_gain(Backend::Postgres).await;
}

async fn proposals_with_other_variables_are_discarded_and_counted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    let proposals = Arc::new(AtomicUsize::new(0));
    // The first proposal adds a variable, the second drops it, the third is the fix.
    fake.set_default(Behaviour::answer_with(move |body| {
        if is_reflection(body) {
            match proposals.fetch_add(1, Ordering::SeqCst) {
                0 => format!("```\nAnswer in {{{{lang}}}}. {FIX}\nQuestion: {{{{question}}}}\n```"),
                1 => format!("```\nAnswer the question. {FIX}\n```"),
                _ => format!("```\nAnswer the question. {FIX}\nQuestion: {{{{question}}}}\n```"),
            }
        } else {
            task_answer(body, |i, text| !needs_fix(i) || text.contains(FIX))
        }
    }));
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    let report = &done["report"];
    assert_eq!(
        report["candidates"]["discarded"]["wrongVariables"], 2,
        "{report}"
    );
    assert_eq!(report["outcome"]["improved"], true, "{report}");
    let stored = app
        .get_ok(
            &format!(
                "/api/prompts/qa/versions/{}",
                count(&done["createdVersion"])
            ),
            READ_TOKEN,
        )
        .await;
    assert!(
        stored["content"]
            .as_str()
            .unwrap_or_default()
            .contains("{{question}}")
    );
    // A discarded proposal costs no task call: 160 as without them.
    assert_eq!(count(&report["spent"]["taskCalls"]), 160);
    assert_eq!(count(&report["spent"]["reflectionCalls"]), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_proposals_with_other_variables_are_discarded_and_counted() {
    proposals_with_other_variables_are_discarded_and_counted(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_proposals_with_other_variables_are_discarded_and_counted() {
    proposals_with_other_variables_are_discarded_and_counted(Backend::Postgres).await;
}

async fn cancel_and_budget_end_cleanly_with_a_report(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    flat(&fake);
    fake.set_latency(Duration::from_millis(20));
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;

    // Cancel: stops before its next round, with a report and no version.
    let id = start(
        &app,
        json!({"dataset": DATASET, "reflectionModel": REFLECTOR, "patience": 100,
               "reflectionBudget": 1000, "budget": 100000}),
    )
    .await;
    when(&app, &id, |o| count(&o["progress"]["rounds"]) >= 1).await;
    let cancelled = app
        .post_admin(&format!("/api/optimizations/{id}/cancel"), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json["cancelRequested"], true);
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["report"]["stopReason"], "cancelled");
    assert!(done["createdVersion"].is_null());

    // Budget: 40 + 8 + 80 = 128 is the least for this dataset; 140 pays for one round only.
    let before = calls(&fake).0;
    let id = start(
        &app,
        json!({"dataset": DATASET, "reflectionModel": REFLECTOR, "patience": 100, "budget": 140}),
    )
    .await;
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["report"]["stopReason"], "budget", "{done}");
    let spent = count(&done["report"]["spent"]["taskCalls"]);
    assert!(spent <= 140, "{spent}");
    // The start's answers were cached by the cancelled run: only the new candidate was asked.
    assert_eq!((calls(&fake).0 - before) as i64, spent);
    assert!(done["createdVersion"].is_null());
    assert_eq!(versions(&app).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancel_and_budget_end_cleanly_with_a_report() {
    cancel_and_budget_end_cleanly_with_a_report(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancel_and_budget_end_cleanly_with_a_report() {
    cancel_and_budget_end_cleanly_with_a_report(Backend::Postgres).await;
}

async fn a_restart_resumes_from_the_last_round(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    flat(&fake);
    fake.set_latency(Duration::from_millis(30));
    let lease = Duration::from_secs(1);
    let first = app_with_model(&db, &fake, 2, lease).await;
    setup(&first, &rows(40, 40)).await;
    let id = start(
        &first,
        json!({"dataset": DATASET, "reflectionModel": REFLECTOR, "patience": 6}),
    )
    .await;
    let seen = when(&first, &id, |o| count(&o["progress"]["rounds"]) >= 1).await;
    assert_eq!(seen["status"], "running", "{seen}");
    // The instance dies in the middle of a round (its workers are aborted).
    drop(first);

    let second = app_with_model(&db, &fake, 2, lease).await;
    second.wait_ready().await;
    let done = when(&second, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["report"]["stopReason"], "no_improvement");
    assert_eq!(done["report"]["rounds"], 6);
    assert!(done["createdVersion"].is_null());
    assert_eq!(versions(&second).await.len(), 1, "no half-written version");
    // The start's rows were committed with the first checkpoint: never asked again.
    let mut asked = std::collections::HashMap::new();
    for request in fake.requests() {
        if let Some(text) = request.json.as_ref().and_then(last_user_message)
            && text.starts_with("Answer the question.\n")
        {
            *asked.entry(text.to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(asked.len(), 40);
    assert!(asked.values().all(|n| *n == 1), "{asked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_restart_resumes_from_the_last_round() {
    a_restart_resumes_from_the_last_round(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_restart_resumes_from_the_last_round() {
    a_restart_resumes_from_the_last_round(Backend::Postgres).await;
}

async fn refusals_answer_with_stable_codes_and_store_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    flat(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    // 60 rows of which 20 annotated: below the floor of 50.
    let mut few = rows(30, 30);
    for row in few.iter_mut().skip(20) {
        if let Some(item) = row["item"].as_object_mut() {
            item.remove("rating");
            item.remove("output_feedback");
            item.remove("failure_mode");
        }
    }
    setup(&app, &few).await;
    let refused = post_loaded(
        &app,
        "/api/prompts/qa/optimize",
        json!({"dataset": DATASET}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(refused.error_code(), Some("not_enough_rows"));
    assert_eq!(refused.json["error"]["details"]["found"], 20);
    assert_eq!(refused.json["error"]["details"]["required"], 50);
    // Without a dataset: a snapshot of the annotated runs, of which there are none.
    let none = post_loaded(&app, "/api/prompts/qa/optimize", json!({})).await;
    assert_eq!(none.status, StatusCode::CONFLICT, "{}", none.text);
    assert_eq!(none.error_code(), Some("not_enough_rows"));

    let cases = [
        (
            json!({"dataset": DATASET, "budget": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"dataset": DATASET, "minibatch": 99}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"dataset": DATASET, "reflectionModel": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"dataset": DATASET, "target": 1.5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            json!({"dataset": "ghost"}),
            StatusCode::NOT_FOUND,
            "dataset_not_found",
        ),
        (
            json!({"dataset": DATASET, "datasetVersion": 9}),
            StatusCode::NOT_FOUND,
            "dataset_version_not_found",
        ),
        (
            json!({"dataset": DATASET, "version": 9}),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            json!({"dataset": DATASET, "bogus": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let answer = post_loaded(&app, "/api/prompts/qa/optimize", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.error_code(), Some(code), "{body}: {}", answer.text);
    }
    let ghost = post_loaded(&app, "/api/prompts/ghost/optimize", json!({})).await;
    assert_eq!(ghost.error_code(), Some("prompt_not_found"));
    let unknown = app
        .send(&flywheel_e2e::Req::get(
            format!("/api/optimizations/{}", uuid::Uuid::now_v7()),
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(unknown.error_code(), Some("optimization_not_found"));
    let listed = app.get_ok("/api/optimizations", READ_TOKEN).await;
    assert_eq!(listed, json!([]), "nothing stored");
    assert_eq!(fake.calls(), 0, "no model call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refusals_answer_with_stable_codes_and_store_nothing() {
    refusals_answer_with_stable_codes_and_store_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusals_answer_with_stable_codes_and_store_nothing() {
    refusals_answer_with_stable_codes_and_store_nothing(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimizing_is_refused_when_prompt_optimization_is_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.enable_prompt_optimization = false;
    let app = TestApp::start_with(settings).await;
    let answer = app
        .post_admin("/api/prompts/planner/optimize", Some(json!({})))
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("feature_disabled"));
    let read = app
        .send(&flywheel_e2e::Req::get(
            "/api/optimizations",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(read.error_code(), Some("feature_disabled"));
}
