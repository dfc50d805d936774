//! Importing a prompt written elsewhere and creating new prompts, end to end on both backends:
//! an import becomes an inactive `import` version whose parent is the active version, with a
//! line diff; changed variables are refused unless allowed; a new prompt starts with an active
//! first version, its variables and its failure-mode taxonomy.

use flywheel_e2e::{ADMIN_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn import(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let answer = app
        .send(&Req::post("/api/prompts/planner/import", Some(ADMIN_TOKEN)).json(body.to_string()))
        .await;
    (answer.status, answer.json)
}

async fn imports_are_checked_and_diffed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let active = app
        .get_ok("/api/prompts/planner/versions/1", READ_TOKEN)
        .await;
    let content = active["content"].as_str().expect("content").to_owned();

    // The same variables, one line more: accepted as an inactive import of the active version.
    let edited = format!("Imported from our old eval repo.\n{content}");
    let (status, imported) = import(
        &app,
        json!({"content": edited, "notes": "from the OpenAI dashboard"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    assert_eq!(imported["version"]["version"], 2);
    assert_eq!(imported["version"]["source"], "import");
    assert_eq!(imported["version"]["isActive"], false);
    assert_eq!(imported["version"]["parentVersion"], 1);
    assert_eq!(imported["version"]["notes"], "from the OpenAI dashboard");
    assert_eq!(imported["comparedWith"], 1);
    assert_eq!(imported["linesAdded"], 1);
    assert_eq!(imported["linesRemoved"], 0);
    let diff = imported["diff"].as_str().expect("diff");
    assert!(
        diff.starts_with("+ Imported from our old eval repo.\n  "),
        "{diff}"
    );
    assert_eq!(app.active_versions("planner").await, vec![1]);

    // A new variable and a missing one: refused with both sets, nothing stored.
    let (status, refused) = import(&app, json!({"content": "Plan {{something_else}}"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["code"], "variables_changed");
    assert_eq!(
        refused["error"]["details"]["added"],
        json!(["something_else"])
    );
    assert!(
        !refused["error"]["details"]["missing"]
            .as_array()
            .expect("missing")
            .is_empty()
    );
    let versions = app
        .get_ok("/api/prompts/planner/versions", READ_TOKEN)
        .await;
    assert_eq!(versions.as_array().map(Vec::len), Some(2));

    // Allowed on request.
    let (status, allowed) = import(
        &app,
        json!({"content": "Plan {{something_else}}", "allowVariableChanges": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{allowed}");
    assert_eq!(allowed["variablesAdded"], json!(["something_else"]));
    assert_eq!(allowed["version"]["version"], 3);

    // A template that does not parse.
    let (status, broken) = import(&app, json!({"content": "Plan {{oops"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{broken}");
    assert_eq!(broken["error"]["code"], "invalid_template");
}

#[tokio::test]
async fn import_on_sqlite() {
    imports_are_checked_and_diffed(Backend::Sqlite).await;
}

#[tokio::test]
async fn import_on_postgres() {
    imports_are_checked_and_diffed(Backend::Postgres).await;
}

async fn new_prompts_are_created_with_an_active_first_version(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let body = json!({
        "id": "ticket-triage", "description": "Labels support tickets",
        "variables": ["ticket", "team"],
        "failureModes": [{"code": "wrong_label", "description": "the label is wrong"}],
        "content": "Label this ticket for {{team}}:\n{{ticket}}",
    });
    let created = app
        .send(&Req::post("/api/prompts", Some(ADMIN_TOKEN)).json(body.to_string()))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["id"], "ticket-triage");
    assert_eq!(created.json["activeVersion"], 1);
    assert_eq!(created.json["variables"], json!(["ticket", "team"]));
    assert_eq!(created.json["versions"][0]["createdBy"], "ops");
    let modes = app
        .get_ok("/api/prompts/ticket-triage/failure-modes", READ_TOKEN)
        .await;
    assert_eq!(modes[0]["code"], "wrong_label");
    let resolved = app
        .send(&Req::get(
            "/api/prompts/ticket-triage/resolve?task_id=t1",
            Some(flywheel_e2e::AGENT_TOKEN),
        ))
        .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.text);
    assert_eq!(resolved.json["version"], 1);

    // The same id again, and a template using an undeclared variable: refused, nothing stored.
    let before = app.snapshot().await;
    for (body, status, code) in [
        (body.clone(), 409, "conflict"),
        (
            json!({"id": "other", "variables": ["a"], "content": "{{a}} and {{b}}"}),
            422,
            "invalid_input",
        ),
        (
            json!({"id": "Bad Id", "content": "x"}),
            422,
            "invalid_input",
        ),
        (
            json!({"id": "other", "content": "x", "failureModes": [{"code": "Bad", "description": "d"}]}),
            422,
            "invalid_input",
        ),
        (
            json!({"id": "other", "content": "{{oops"}),
            422,
            "invalid_template",
        ),
        (json!({"id": "other"}), 422, "invalid_body"),
    ] {
        let answer = app
            .send(&Req::post("/api/prompts", Some(ADMIN_TOKEN)).json(body.to_string()))
            .await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.text);
        assert_eq!(answer.error_code(), Some(code), "{body}");
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused create changed the database"
    );
}

#[tokio::test]
async fn new_prompts_on_sqlite() {
    new_prompts_are_created_with_an_active_first_version(Backend::Sqlite).await;
}

#[tokio::test]
async fn new_prompts_on_postgres() {
    new_prompts_are_created_with_an_active_first_version(Backend::Postgres).await;
}
