//! Export to and migration from OpenAI evals and promptfoo, end to end on both backends:
//! - the `promptfoo` export is valid against promptfoo's config schema (pinned, 0.121.20), maps
//!   the graders that have an assertion and lists the others (body and header);
//! - the OpenAI eval definition of an `openai-jsonl` export derives its item schema from the
//!   rows and lists graders with no OpenAI equivalent;
//! - round trip: export → `POST /api/migrate/openai-eval` into a fresh database → export gives
//!   the same lines, the output items became runs with their grader results, and migrating
//!   again is refused whole;
//! - bad inputs: every problem reported by its place (line numbers of both JSONL files, the
//!   criterion's field), nothing written.

use std::time::{Duration, Instant};

use flywheel_e2e::{
    ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> flywheel_e2e::Answer {
    app.send(&Req::post(path.to_owned(), Some(token)).json(body.to_string()))
        .await
}

/// Stores a grader definition, waiting (bounded) while the components load.
async fn put_grader(app: &TestApp, name: &str, definition: Value) {
    let body = json!({"promptId": "planner", "name": name, "definition": definition});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = post(app, "/api/graders/definitions", ADMIN_TOKEN, &body).await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        return;
    }
}

/// `POST /api/migrate/openai-eval`, waiting (bounded) while the components load.
async fn migrate(app: &TestApp, body: &Value) -> flywheel_e2e::Answer {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = post(app, "/api/migrate/openai-eval", ADMIN_TOKEN, body).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn exact() -> Value {
    json!({"type": "string_check", "input": "{{ sample.output_text }}", "reference": "{{ item.expected }}", "operation": "eq"})
}

fn close() -> Value {
    json!({"type": "text_similarity", "input": "{{sample.output_text}}", "reference": "{{item.expected}}", "evaluation_metric": "bleu", "pass_threshold": 0.3})
}

/// Three recorded planner runs (one annotated), the seeded graders disabled and two OpenAI
/// graders stored.
async fn prepare(app: &TestApp) {
    app.disable_graders("planner").await;
    put_grader(app, "exact", exact()).await;
    put_grader(app, "close", close()).await;
    let runs = json!({"runs": [
        {"promptId": "planner", "taskId": "m-1", "input": {"task_title": "add login", "expected": "plan A"}, "output": "plan A"},
        {"promptId": "planner", "taskId": "m-2", "input": {"task_title": "fix {% raw %} bug", "expected": "plan B", "files": 2}, "output": "plan b"},
        {"promptId": "planner", "taskId": "m-3", "input": {"task_title": "docs", "expected": "plan C"}, "output": "plan C"},
    ]});
    let recorded = post(app, "/api/runs", AGENT_TOKEN, &runs).await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let first = recorded.json["runs"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let annotated = app
        .send(
            &Req::new(
                Method::PUT,
                format!("/api/runs/{first}/annotation"),
                Some(ANNOTATOR_TOKEN),
            )
            .json(json!({"rating": "good", "outputFeedback": "fine"}).to_string()),
        )
        .await;
    assert_eq!(annotated.status, StatusCode::OK, "{}", annotated.text);
}

async fn promptfoo_export_is_valid(app: &TestApp) {
    let answer = app
        .http
        .post(format!("{}/api/prompts/planner/export", app.base))
        .bearer_auth(ANNOTATOR_TOKEN)
        .json(&json!({"format": "promptfoo", "minRows": 0}))
        .send()
        .await
        .expect("export");
    assert_eq!(answer.status(), StatusCode::OK);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "application/json");
    let not_exported = header("x-flywheel-not-exported");
    let text = answer.text().await.expect("body");
    let config: Value = serde_json::from_str(&text).expect("the config is JSON");
    let errors: Vec<String> = flywheel_e2e::promptfoo_schema()
        .iter_errors(&config)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert_eq!(errors, Vec::<String>::new(), "{config:#}");
    let tests = config["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 3);
    // Newest first, as runs are exported; vars are the item, the output is providerOutput.
    assert_eq!(tests[0]["vars"]["task_title"], "docs");
    assert_eq!(tests[0]["providerOutput"], "plan C");
    assert_eq!(tests[2]["vars"]["rating"], "good");
    assert_eq!(
        config["defaultTest"]["assert"],
        json!([
            {"type": "bleu", "value": "{{ expected }}", "threshold": 0.3, "metric": "close"},
            {"type": "equals", "value": "{{ expected }}", "metric": "exact"},
        ])
    );
    // The seeded graders are disabled (and are WebAssembly or model graders): listed, with
    // reasons, in the body and the header.
    let left: Vec<&str> = config["metadata"]["flywheel"]["notExported"]
        .as_array()
        .expect("notExported")
        .iter()
        .map(|n| n["grader"].as_str().expect("grader"))
        .collect();
    assert!(left.contains(&"files_match"), "{left:?}");
    assert_eq!(not_exported, left.join(","));
    assert!(
        config["prompts"][0]["raw"]
            .as_str()
            .expect("raw")
            .contains("{{"),
        "{config}"
    );
}

async fn round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    prepare(&app).await;
    promptfoo_export_is_valid(&app).await;

    let request = json!({"format": "openai-jsonl", "minRows": 0});
    let exported = post(
        &app,
        "/api/prompts/planner/export",
        ANNOTATOR_TOKEN,
        &request,
    )
    .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text);
    let definition = post(
        &app,
        "/api/prompts/planner/export/openai-eval",
        ANNOTATOR_TOKEN,
        &request,
    )
    .await;
    assert_eq!(definition.status, StatusCode::OK, "{}", definition.text);
    let eval = definition.json["eval"].clone();
    assert_eq!(definition.json["rows"], 3);
    let config = &eval["data_source_config"];
    assert_eq!(config["type"], "custom");
    assert_eq!(config["include_sample_schema"], true);
    assert_eq!(
        config["item_schema"]["required"],
        json!(["expected", "task_title"])
    );
    assert_eq!(
        config["item_schema"]["properties"]["files"],
        json!({"type": "integer"})
    );
    let names: Vec<&str> = eval["testing_criteria"]
        .as_array()
        .expect("criteria")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["close", "exact"]);
    let not_exportable = definition.json["notExportable"].as_array().expect("list");
    assert!(
        not_exportable
            .iter()
            .any(|n| n["grader"] == "files_match" && !n["reason"].as_str().unwrap_or("").is_empty()),
        "{}",
        definition.text
    );
    // A format other than openai-jsonl has no eval definition.
    let wrong = post(
        &app,
        "/api/prompts/planner/export/openai-eval",
        ANNOTATOR_TOKEN,
        &json!({"format": "csv", "minRows": 0}),
    )
    .await;
    assert_eq!(wrong.error_code(), Some("invalid_input"), "{}", wrong.text);

    // The output items of a run of that eval, as OpenAI lists them.
    let lines: Vec<Value> = exported
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let output_items: String = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let output = line["sample"]["output_text"].as_str().expect("output");
            let passed = Some(output) == line["item"]["expected"].as_str();
            json!({
                "object": "eval.run.output_item", "id": format!("outputitem_{i}"),
                "datasource_item_id": i, "datasource_item": line["item"], "status": "pass",
                "results": [
                    {"name": "exact-c4fdf789-2fa5-407f-8a41-a6f4f9afd482", "type": "string-check-grader",
                     "score": if passed { 1.0 } else { 0.0 }, "passed": passed, "sample": null},
                ],
                "sample": {"input": [{"role": "user", "content": "…"}],
                           "output": [{"role": "assistant", "content": output}],
                           "finish_reason": "stop", "model": "gpt-4.1",
                           "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
                           "error": null},
            })
            .to_string()
                + "\n"
        })
        .collect();

    // Into a fresh database.
    let fresh_db = TestDb::new(backend).await;
    let fresh = TestApp::start(&fresh_db).await;
    fresh.disable_graders("planner").await;
    let body = json!({"promptId": "planner", "eval": eval, "items": exported.text,
                      "outputItems": output_items, "dataset": "migrated"});
    let migrated = migrate(&fresh, &body).await;
    assert_eq!(migrated.status, StatusCode::CREATED, "{}", migrated.text);
    assert_eq!(migrated.json["graders"], json!(["close", "exact"]));
    assert_eq!(migrated.json["dataset"]["rowCount"], 3);
    assert_eq!(migrated.json["runs"], 3);
    assert_eq!(migrated.json["runsCreated"], 3);
    assert_eq!(migrated.json["graderResults"], 3);

    // The dataset exports as the same lines.
    let again = post(
        &fresh,
        "/api/prompts/planner/export",
        ANNOTATOR_TOKEN,
        &json!({"format": "openai-jsonl", "dataset": "migrated", "minRows": 0}),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.text, exported.text);
    // The graders are stored as given (no OpenAI id), the runs carry the results.
    let stored = fresh
        .get_ok("/api/graders/definitions/planner/exact", READ_TOKEN)
        .await;
    assert_eq!(stored["definition"]["operation"], "eq");
    assert_eq!(stored["definition"]["name"], "exact");
    let runs = fresh
        .get_ok("/api/runs?promptId=planner&limit=10", READ_TOKEN)
        .await;
    let runs = runs["items"].as_array().expect("items");
    assert_eq!(runs.len(), 3);
    for run in runs {
        let expected = run["input"]["expected"].as_str().expect("expected");
        let score = if run["output"] == expected { 1.0 } else { 0.0 };
        assert_eq!(run["graderResults"]["exact"]["score"], score, "{run}");
        assert_eq!(run["model"], "gpt-4.1");
        assert!(
            run["taskId"]
                .as_str()
                .expect("task")
                .starts_with("openai-eval:")
        );
    }

    // Migrating again is refused whole: the graders exist; nothing new is written.
    let twice = migrate(&fresh, &body).await;
    assert_eq!(
        twice.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        twice.text
    );
    assert_eq!(twice.error_code(), Some("migration_refused"));
    let places: Vec<&str> = twice.json["error"]["details"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["at"].as_str().expect("at"))
        .collect();
    assert_eq!(
        places,
        [
            "eval.testing_criteria[0].name",
            "eval.testing_criteria[1].name"
        ]
    );
    let dataset = fresh.get_ok("/api/datasets/migrated", READ_TOKEN).await;
    assert_eq!(dataset["latestVersion"], 1, "{dataset}");
}

async fn bad_inputs_are_reported_by_place(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let before = app.snapshot().await;
    let graders_before = app
        .get_ok("/api/graders/definitions?promptId=planner", READ_TOKEN)
        .await;
    let eval = json!({
        "name": "Ticket labels",
        "data_source_config": {"type": "custom", "item_schema": {
            "type": "object", "properties": {"ticket": {"type": "string"}, "label": {"type": "string"}},
            "required": ["ticket", "label"]}},
        "testing_criteria": [
            {"type": "regex_check", "name": "odd", "input": "{{sample.output_text}}"},
            {"type": "string_check", "name": "Match label", "input": "{{sample.output_text}}", "reference": "{{item.label}}", "operation": "contains"},
            {"type": "string_check", "name": "ok", "input": "{{sample.output_text}}", "reference": "{{item.label}}", "operation": "eq"},
        ],
    });
    let items = concat!(
        "{\"item\": {\"ticket\": \"screen dark\", \"label\": \"Hardware\"}}\n",
        "{\"item\": {\"ticket\": \"cut line\"\n",
        "\n",
        "{\"item\": {\"ticket\": 7, \"label\": \"Software\"}}\n",
        "{\"item\": {\"ticket\": \"vpn\", \"label\": \"Network\"}, \"extra\": 1}\n",
    );
    let output_items = concat!(
        "{\"datasource_item_id\": 0, \"datasource_item\": {\"ticket\": \"screen dark\", \"label\": \"Hardware\"}, \"results\": [{\"name\": \"nobody\", \"score\": 1, \"passed\": true}], \"sample\": {\"output\": [{\"role\": \"assistant\", \"content\": \"Hardware\"}], \"error\": null}}\n",
        "not json\n",
        "{\"datasource_item_id\": 2, \"datasource_item\": {\"ticket\": \"x\"}, \"results\": [], \"sample\": {\"output\": [], \"error\": {\"code\": \"rate_limit\", \"message\": \"slow down\"}}}\n",
    );
    let body =
        json!({"promptId": "planner", "eval": eval, "items": items, "outputItems": output_items});
    let refused = migrate(&app, &body).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text
    );
    assert_eq!(refused.error_code(), Some("migration_refused"));
    let problems: Vec<(String, String)> = refused.json["error"]["details"]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            (
                p["at"].as_str().expect("at").to_owned(),
                p["message"].as_str().expect("message").to_owned(),
            )
        })
        .collect();
    let places: Vec<&str> = problems.iter().map(|(at, _)| at.as_str()).collect();
    assert_eq!(
        places,
        [
            "eval.testing_criteria[0].type",
            "eval.testing_criteria[1].operation",
            "items.jsonl:2",
            "items.jsonl:4.item.ticket",
            "items.jsonl:5.extra",
            "output_items.jsonl:1.results[0]",
            "output_items.jsonl:2",
            "output_items.jsonl:3.sample.error",
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0].1.contains("unknown grader type `regex_check`"),
        "{problems:?}"
    );
    assert!(problems[2].1.contains("not JSON"), "{problems:?}");
    assert!(problems[5].1.contains("nobody"), "{problems:?}");
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .expect("message")
            .contains("8 problem(s); nothing was migrated")
    );
    // Nothing was written: no grader (not even the valid `ok`), no dataset.
    assert_eq!(
        app.get_ok("/api/graders/definitions?promptId=planner", READ_TOKEN)
            .await,
        graders_before
    );
    assert_eq!(app.get_ok("/api/datasets", READ_TOKEN).await, json!([]));
    assert_eq!(app.snapshot().await, before);

    // A data source without rows, and an unknown prompt.
    let logs = json!({"promptId": "planner", "items": "{\"item\": {}}\n",
                      "eval": {"data_source_config": {"type": "logs"}, "testing_criteria": []}});
    let refused = migrate(&app, &logs).await;
    assert_eq!(
        refused.error_code(),
        Some("migration_refused"),
        "{}",
        refused.text
    );
    assert_eq!(
        refused.json["error"]["details"]["problems"][0]["at"],
        "eval.data_source_config.type"
    );
    let unknown = json!({"promptId": "nobody", "items": "", "eval": {}});
    let answer = migrate(&app, &unknown).await;
    assert_eq!(
        answer.error_code(),
        Some("prompt_not_found"),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn openai_round_trip_on_sqlite() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test]
async fn openai_round_trip_on_postgres() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test]
async fn migration_bad_inputs_on_sqlite() {
    bad_inputs_are_reported_by_place(Backend::Sqlite).await;
}

#[tokio::test]
async fn migration_bad_inputs_on_postgres() {
    bad_inputs_are_reported_by_place(Backend::Postgres).await;
}

/// A small eval: an exact-match criterion over `{question, expected}` items, two items.
fn small_eval(name: &str) -> (Value, String) {
    let eval = json!({
        "name": name,
        "data_source_config": {"type": "custom", "item_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}, "expected": {"type": "string"}},
            "required": ["question", "expected"]}},
        "testing_criteria": [{"type": "string_check", "name": "exact",
            "input": "{{ sample.output_text }}", "reference": "{{ item.expected }}",
            "operation": "eq"}],
    });
    let items = "{\"item\": {\"question\": \"2+2\", \"expected\": \"4\"}}\n\
                 {\"item\": {\"question\": \"3+3\", \"expected\": \"6\"}}\n"
        .to_owned();
    (eval, items)
}

async fn into_a_new_prompt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let (eval, items) = small_eval("Arithmetic QA (v2)!");

    // Named from the eval: lowercase, other characters as `-`.
    let body = json!({"newPrompt": true, "eval": eval, "items": items});
    let created = migrate(&app, &body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(created.json["promptId"], "arithmetic-qa-v2");
    assert_eq!(created.json["graders"], json!(["exact"]));
    assert_eq!(created.json["dataset"]["rowCount"], 2);
    let prompts = app.get_ok("/api/prompts", READ_TOKEN).await.to_string();
    assert!(
        prompts.contains("Arithmetic QA (v2)!"),
        "described after the eval: {prompts}"
    );
    let text = app
        .get_ok("/api/prompts/arithmetic-qa-v2/versions/1", READ_TOKEN)
        .await
        .to_string();
    assert!(
        text.contains("question: {{question}}") && text.contains("expected: {{expected}}"),
        "a first version naming the item's properties: {text}"
    );

    // The same again is a clear conflict: refused whole, nothing written.
    let before = app.snapshot().await;
    let again = migrate(&app, &body).await;
    assert_eq!(
        again.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        again.text
    );
    assert_eq!(again.error_code(), Some("migration_refused"));
    let problems = again.json["error"]["details"]["problems"].to_string();
    assert!(
        problems.contains("promptId") && problems.contains("already exists"),
        "{problems}"
    );
    assert_eq!(app.snapshot().await, before);

    // Named by the caller, with its own first version.
    let (eval, items) = small_eval("whatever");
    let named = migrate(
        &app,
        &json!({"newPrompt": true, "promptId": "math", "promptContent": "Solve: {{question}}",
                "dataset": "math-set", "eval": eval, "items": items}),
    )
    .await;
    assert_eq!(named.status, StatusCode::CREATED, "{}", named.text);
    assert_eq!(named.json["promptId"], "math");
    let math = app.get_ok("/api/prompts/math/versions/1", READ_TOKEN).await;
    assert!(math.to_string().contains("Solve: {{question}}"), "{math}");

    // Refusals, each by its place, nothing written.
    let before = app.snapshot().await;
    let (eval, items) = small_eval("***");
    for (body, at, code) in [
        (
            json!({"newPrompt": true, "eval": eval.clone(), "items": items.clone()}),
            "promptId",
            "migration_refused",
        ),
        (
            json!({"newPrompt": true, "promptId": "Bad Id", "eval": eval.clone(), "items": items.clone()}),
            "promptId",
            "migration_refused",
        ),
        (
            json!({"newPrompt": true, "promptId": "fresh", "promptContent": "{{ broken",
                   "eval": eval.clone(), "items": items.clone()}),
            "promptContent",
            "migration_refused",
        ),
        (
            json!({"eval": eval.clone(), "items": items.clone()}),
            "promptId",
            "migration_refused",
        ),
        (
            json!({"newPrompt": true, "promptId": "planner", "eval": eval.clone(), "items": items.clone()}),
            "promptId",
            "migration_refused",
        ),
    ] {
        let answer = migrate(&app, &body).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.text
        );
        assert_eq!(answer.error_code(), Some(code), "{body}: {}", answer.text);
        let first = &answer.json["error"]["details"]["problems"][0];
        assert_eq!(first["at"], at, "{body}: {}", answer.text);
    }
    // Without newPrompt an unknown prompt is still not found.
    let ghost = migrate(
        &app,
        &json!({"promptId": "ghost", "eval": eval, "items": items}),
    )
    .await;
    assert_eq!(ghost.status, StatusCode::NOT_FOUND, "{}", ghost.text);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_into_a_new_prompt_on_sqlite() {
    into_a_new_prompt(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_into_a_new_prompt_on_postgres() {
    into_a_new_prompt(Backend::Postgres).await;
}
