//! create → deploy → resolve → rollback → history, through HTTP, on both backends.

use flywheel_e2e::{ADMIN_NAME, AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;

async fn create_deploy_resolve_rollback(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;

    // Seeded: four prompts, each with an active version 1.
    let prompts = app.get_ok("/api/prompts", READ_TOKEN).await;
    let ids: Vec<&str> = prompts
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for id in ["planner", "coder", "fixer", "reviewer"] {
        assert!(ids.contains(&id), "{id} not seeded: {ids:?}");
    }
    assert_eq!(app.active_versions("planner").await, vec![1]);
    let history_before = app
        .get_ok("/api/prompts/planner/history", READ_TOKEN)
        .await
        .as_array()
        .map_or(0, Vec::len);

    // Create version 2: numbered max + 1, inactive, authored by the token.
    let content =
        "Plan the task {{task_title}}.\n\n{{task_description}}\nFiles: {{repository_files}}";
    let created = app
        .post_admin(
            "/api/prompts/planner/versions",
            Some(json!({ "content": content, "notes": "shorter", "parentVersion": 1 })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["version"], 2);
    assert_eq!(created.json["isActive"], false);
    assert_eq!(created.json["promptId"], "planner");
    assert_eq!(created.json["parentVersion"], 1);
    assert_eq!(app.resolve_version("planner", "task-1").await, 1);

    let fetched = app
        .get_ok("/api/prompts/planner/versions/2", READ_TOKEN)
        .await;
    assert_eq!(fetched["content"], content);

    // Deploy version 2: recorded with the token's name; resolve serves it.
    let deployed = app.post_admin("/api/prompts/planner/deploy/2", None).await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    assert_eq!(deployed.json["fromVersion"], 1);
    assert_eq!(deployed.json["toVersion"], 2);
    assert_eq!(deployed.json["actor"], ADMIN_NAME);
    assert_eq!(app.active_versions("planner").await, vec![2]);
    let resolved = app
        .send(&Req::get(
            "/api/prompts/planner/resolve?task_id=task-1",
            Some(AGENT_TOKEN),
        ))
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(resolved.json["version"], 2);
    assert_eq!(resolved.json["content"], content);
    assert_eq!(resolved.json["promptId"], "planner");
    assert_eq!(resolved.json["taskId"], "task-1");
    let variables = resolved.json["variables"].as_array().expect("variables");
    for v in ["task_title", "task_description", "repository_files"] {
        assert!(
            variables.contains(&json!(v)),
            "{v} missing from {variables:?}"
        );
    }

    // Roll back: version 1 again.
    let rolled = app.post_admin("/api/prompts/planner/rollback", None).await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.text);
    assert_eq!(rolled.json["fromVersion"], 2);
    assert_eq!(rolled.json["toVersion"], 1);
    assert_eq!(rolled.json["action"], "rollback");
    assert_eq!(app.active_versions("planner").await, vec![1]);
    assert_eq!(app.resolve_version("planner", "task-2").await, 1);

    // History: the two changes, in order, with the actor.
    let history = app.get_ok("/api/prompts/planner/history", READ_TOKEN).await;
    let history = history.as_array().expect("history array");
    assert_eq!(history.len(), history_before + 2, "{history:?}");
    let last_two = &history[history.len() - 2..];
    assert_eq!(last_two[0]["action"], "deploy");
    assert_eq!(last_two[0]["toVersion"], 2);
    assert_eq!(last_two[1]["action"], "rollback");
    assert_eq!(last_two[1]["toVersion"], 1);
    assert!(last_two.iter().all(|h| h["actor"] == ADMIN_NAME));

    // The other prompts were not touched.
    assert_eq!(app.active_versions("coder").await, vec![1]);
    let modes = app
        .get_ok("/api/prompts/planner/failure-modes", READ_TOKEN)
        .await;
    let codes: Vec<&str> = modes
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["code"].as_str())
        .collect();
    assert!(codes.contains(&"wrong_files"), "{codes:?}");
}

#[tokio::test]
async fn happy_path_on_sqlite() {
    create_deploy_resolve_rollback(Backend::Sqlite).await;
}

#[tokio::test]
async fn happy_path_on_postgres() {
    create_deploy_resolve_rollback(Backend::Postgres).await;
}
