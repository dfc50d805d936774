//! The dataset routes end to end on both backends: a snapshot of recorded runs that later
//! annotations do not change, a filtered snapshot as a new version, JSONL uploads whose row ids
//! and splits repeat on a second upload, pages of rows by split, listing, the prompt a dataset
//! belongs to, and delete.

use flywheel_e2e::{
    ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn run(prompt: &str, task: &str) -> Value {
    json!({
        "promptId": prompt, "taskId": task, "input": {"task_title": task},
        "output": format!("plan for {task}"),
    })
}

async fn create(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let answer = app
        .send(&Req::post("/api/datasets", Some(ANNOTATOR_TOKEN)).json(body.to_string()))
        .await;
    (answer.status, answer.json)
}

async fn annotate(app: &TestApp, run: &str, body: Value) {
    let answer = app
        .send(
            &Req::new(
                Method::PUT,
                format!("/api/runs/{run}/annotation"),
                Some(ANNOTATOR_TOKEN),
            )
            .json(body.to_string()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

/// Every row of a version, walking the pages.
async fn all_rows(app: &TestApp, name: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/datasets/{name}/rows?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_ok(&path, READ_TOKEN).await;
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= limit as usize);
        rows.extend(items);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    rows
}

async fn datasets_are_snapshotted_uploaded_paged_and_deleted(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    // No grader runs in the background, so nothing but this test annotates the runs.
    app.disable_graders("planner").await;
    let batch = json!({"runs": (1..=5).map(|i| run("planner", &format!("task-{i}"))).chain([run("coder", "task-9")]).collect::<Vec<_>>()});
    let recorded = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(batch.to_string()))
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let ids: Vec<String> = recorded.json["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    let outcome = app
        .send(
            &Req::new(Method::PATCH, "/api/runs/outcomes", Some(AGENT_TOKEN)).json(
                json!({"outcomes": [{"taskId": "task-1", "testsPassed": true, "expectedFiles": ["a.rs"]}]})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(outcome.status, StatusCode::OK, "{}", outcome.text);
    annotate(
        &app,
        &ids[1],
        json!({"rating": "bad", "failureMode": "wrong_files", "outputFeedback": "missed b.rs"}),
    )
    .await;

    // A snapshot of every planner run.
    let (status, v1) = create(
        &app,
        json!({"promptId": "planner", "name": "planner-runs", "filter": {}, "validationFraction": 0.5}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["source"], "runs");
    assert_eq!(v1["rowCount"], 5);
    assert_eq!(v1["filter"], json!({"promptId": "planner"}));
    assert_eq!(v1["createdBy"], "reviewer");
    assert_eq!(
        v1["trainCount"].as_i64().unwrap_or(-1) + v1["validationCount"].as_i64().unwrap_or(-1),
        5
    );

    // Later annotations do not change the version.
    annotate(&app, &ids[2], json!({"rating": "bad"})).await;
    annotate(&app, &ids[1], json!({"rating": "good"})).await;
    let rows = all_rows(&app, "planner-runs", "&version=1", 2).await;
    assert_eq!(rows.len(), 5);
    let by_run = |id: &str| {
        rows.iter()
            .find(|r| r["runId"] == id)
            .unwrap_or_else(|| panic!("no row of run {id}"))
            .clone()
    };
    let first = by_run(&ids[0]);
    assert_eq!(
        first["id"],
        ids[0].as_str(),
        "a snapshot row keeps its run's id"
    );
    assert_eq!(
        first["item"],
        json!({"task_title": "task-1", "tests_passed": true, "expected_files": ["a.rs"]})
    );
    assert_eq!(first["sample"], json!({"output_text": "plan for task-1"}));
    assert_eq!(
        by_run(&ids[1])["item"],
        json!({"task_title": "task-2", "rating": "bad", "failure_mode": "wrong_files", "output_feedback": "missed b.rs"})
    );
    assert_eq!(by_run(&ids[2])["item"], json!({"task_title": "task-3"}));
    let indexes: Vec<i64> = rows.iter().filter_map(|r| r["index"].as_i64()).collect();
    assert_eq!(indexes, vec![0, 1, 2, 3, 4]);

    // A filtered snapshot is version 2 of the same dataset; the split of a run is the same in
    // every version.
    let (status, v2) = create(
        &app,
        json!({"promptId": "planner", "name": "planner-runs", "filter": {"rating": "bad"}, "validationFraction": 0.5}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!(
        (v2["version"].clone(), v2["rowCount"].clone()),
        (json!(2), json!(1))
    );
    let latest = all_rows(&app, "planner-runs", "", 10).await;
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0]["runId"], ids[2].as_str());
    assert_eq!(latest[0]["split"], by_run(&ids[2])["split"]);

    // The dataset belongs to planner.
    let (status, refused) = create(
        &app,
        json!({"promptId": "coder", "name": "planner-runs", "filter": {}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_state");

    // JSONL uploads: two identical lines get two ids; uploading again repeats ids and splits.
    let jsonl = "{\"item\": {\"q\": \"2+2\", \"a\": \"4\"}, \"sample\": {\"output_text\": \"4\"}}\n\
                 {\"item\": {\"q\": \"2+2\", \"a\": \"4\"}, \"sample\": {\"output_text\": \"4\"}}\n\
                 \n{\"item\": {\"q\": \"capital of France\"}}\n";
    let mut uploads = Vec::new();
    for expected_version in [1, 2] {
        let (status, up) = create(
            &app,
            json!({"promptId": "planner", "name": "evals.upload", "jsonl": jsonl}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{up}");
        assert_eq!(up["version"], expected_version);
        assert_eq!(up["source"], "jsonl");
        assert_eq!(up["rowCount"], 3);
        assert_eq!(up["validationFraction"], 0.2);
        let rows = all_rows(
            &app,
            "evals.upload",
            &format!("&version={expected_version}"),
            1000,
        )
        .await;
        let ids_and_splits: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| (r["id"].clone(), r["split"].clone()))
            .collect();
        assert_ne!(ids_and_splits[0].0, ids_and_splits[1].0);
        assert_eq!(rows[2]["sample"], Value::Null);
        assert_eq!(rows[2]["runId"], Value::Null);
        uploads.push(ids_and_splits);
    }
    assert_eq!(uploads[0], uploads[1]);

    // The split filter partitions the rows; the counts say how many each side holds.
    let shown = app.get_ok("/api/datasets/planner-runs", READ_TOKEN).await;
    assert_eq!(shown["latestVersion"], 2);
    assert_eq!(shown["promptId"], "planner");
    let versions = shown["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    let train = all_rows(&app, "planner-runs", "&version=1&split=train", 1).await;
    let validation = all_rows(&app, "planner-runs", "&version=1&split=validation", 1).await;
    assert_eq!(json!(train.len()), versions[0]["trainCount"]);
    assert_eq!(json!(validation.len()), versions[0]["validationCount"]);
    assert!(train.iter().all(|r| r["split"] == "train"));
    assert!(validation.iter().all(|r| r["split"] == "validation"));
    let missing = app
        .send(&Req::get(
            "/api/datasets/planner-runs/rows?version=9",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), Some("dataset_version_not_found"));
    let mismatch = app
        .send(&Req::get(
            "/api/datasets/planner-runs/rows?version=1&cursor=d2.0",
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(mismatch.error_code(), Some("invalid_cursor"));

    let listed = app.get_ok("/api/datasets", READ_TOKEN).await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(names, ["evals.upload", "planner-runs"]);
    let of_coder = app.get_ok("/api/datasets?promptId=coder", READ_TOKEN).await;
    assert_eq!(of_coder, json!([]));

    // Delete: admin only, every version goes.
    let path = "/api/datasets/planner-runs";
    let refused = app
        .send(&Req::new(Method::DELETE, path, Some(ANNOTATOR_TOKEN)))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let deleted = app
        .send(&Req::new(Method::DELETE, path, Some(ADMIN_TOKEN)))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let gone = app.send(&Req::get(path, Some(READ_TOKEN))).await;
    assert_eq!(gone.error_code(), Some("dataset_not_found"));
    let left = app.get_ok("/api/datasets", READ_TOKEN).await;
    assert_eq!(left.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn datasets_on_sqlite() {
    datasets_are_snapshotted_uploaded_paged_and_deleted(Backend::Sqlite).await;
}

#[tokio::test]
async fn datasets_on_postgres() {
    datasets_are_snapshotted_uploaded_paged_and_deleted(Backend::Postgres).await;
}
