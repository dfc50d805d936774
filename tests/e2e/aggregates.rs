//! The repair of the running aggregates over HTTP: rows written around the service (bulk SQL)
//! are not in the figures until an admin recomputes them; other roles are refused.

use flywheel::store::testing::execute_raw;
use flywheel_e2e::{ADMIN_TOKEN, AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;

async fn rows_written_around_the_service_count_after_a_recompute(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    app.disable_graders("planner").await;
    // One run through the API (counted at once), two around it.
    let recorded = app
        .send(
            &Req::post("/api/runs", Some(AGENT_TOKEN)).json(
                json!({ "promptId": "planner", "version": 1, "taskId": "api-1", "input": {},
                        "output": "plan", "tokensIn": 100 })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    for (task, passed) in [("bulk-1", "TRUE"), ("bulk-2", "FALSE")] {
        execute_raw(
            &db.url,
            &format!(
                "INSERT INTO prompt_optimization_data (id, prompt_id, version, task_id, \
                 tests_passed, total_tokens) VALUES ('{}', 'planner', 1, '{task}', {passed}, 400)",
                uuid::Uuid::now_v7()
            ),
        )
        .await
        .expect("bulk insert");
    }
    let figures = |v: &serde_json::Value| {
        (
            v["tasksExecuted"].clone(),
            v["successRate"].clone(),
            v["avgTokens"].clone(),
        )
    };
    let before = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    assert_eq!(figures(&before), (json!(1), json!(null), json!(100)));

    for token in [READ_TOKEN, AGENT_TOKEN] {
        let refused = app
            .send(&Req::post(
                "/api/operations/recompute-aggregates",
                Some(token),
            ))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    }
    let unchanged = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    assert_eq!(figures(&unchanged), figures(&before));

    let done = app
        .send(&Req::post(
            "/api/operations/recompute-aggregates",
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.json["status"], "recomputed");
    let after = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    assert_eq!(figures(&after), (json!(3), json!(50.0), json!(300)));
}

#[tokio::test]
async fn aggregates_recompute_sqlite() {
    rows_written_around_the_service_count_after_a_recompute(Backend::Sqlite).await;
}

#[tokio::test]
async fn aggregates_recompute_postgres() {
    rows_written_around_the_service_count_after_a_recompute(Backend::Postgres).await;
}
