//! Offline evaluations over real HTTP against the fake model server: two versions scored
//! differently because the fake's answer depends on the prompt text, the answer cache (a rerun
//! makes no model call), outputs kept out of production figures and snapshots, a missing
//! variable and a model error as row errors, the call and token budgets, cancel, a restart in
//! the middle of a job, and the bad inputs.

use std::collections::HashMap;
use std::time::Duration;

use fake_model::{Behaviour, FakeModel, UsageMode, last_user_message};
use flywheel::llm::{EndpointSettings, LlmSettings, Secret};
use flywheel_e2e::{AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A key no answer or stored row may ever contain.
const KEY: &str = "sk-flywheel-e2e-eval-key-3b8e1f0a7c";
pub(crate) const V1: &str = "Quick: {{question}}";
const V2: &str = "Careful: {{question}}";

/// The fake's rule: a careful prompt gets the expected answer, a quick one does not.
pub(crate) fn careful_answers(fake: &FakeModel) {
    fake.set_default(Behaviour::answer_with(|body| {
        match last_user_message(body).and_then(|m| m.strip_prefix("Careful: ")) {
            Some(question) => format!("ANSWER-{question}"),
            None => "dunno".to_owned(),
        }
    }));
}

/// An app on `db` whose model endpoint is `fake`, `concurrency` calls at once, jobs under
/// `lease`.
pub(crate) async fn app_with_model(
    db: &TestDb,
    fake: &FakeModel,
    concurrency: usize,
    lease: Duration,
) -> TestApp {
    let mut settings = db.settings();
    let endpoint =
        EndpointSettings::new(&fake.base_url(), Some(Secret::new(KEY))).expect("valid URL");
    settings.llm = LlmSettings {
        timeout_per_call: Duration::from_secs(10),
        max_retries: 0,
        backoff_base: Duration::from_millis(5),
        max_concurrency: concurrency,
        ..LlmSettings::with_endpoint(endpoint)
    };
    settings.job_lease = lease;
    TestApp::start_with(settings).await
}

/// Posts as admin, again while the server answers 503 because its grader components are
/// still loading (bounded: 600 tries, 100 ms apart).
pub(crate) async fn post_loaded(app: &TestApp, path: &str, body: Value) -> flywheel_e2e::Answer {
    for _ in 0..600 {
        let answer = app.post_admin(path, Some(body.clone())).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grader components never finished loading");
}

/// Prompt `qa` (v1 quick, v2 careful), an exact-match grader, and dataset `name` of `rows`.
pub(crate) async fn setup(app: &TestApp, name: &str, rows: &[Value]) {
    let created = app
        .post_admin("/api/prompts", Some(json!({"id": "qa", "content": V1})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert_eq!(app.create_version("qa", V2).await, 2);
    let grader = post_loaded(
        app,
        "/api/graders/definitions",
        json!({"promptId": "qa", "name": "exact", "definition": {
            "type": "string_check", "name": "exact", "operation": "eq",
            "input": "{{sample.output_text}}", "reference": "{{item.expected}}"}}),
    )
    .await;
    assert!(grader.status.is_success(), "{}", grader.text);
    dataset(app, name, rows).await;
}

async fn dataset(app: &TestApp, name: &str, rows: &[Value]) {
    let answer = app
        .post_admin(
            "/api/datasets",
            Some(json!({"promptId": "qa", "name": name, "rows": rows, "validationFraction": 0.5})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

pub(crate) fn rows(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"item": {"question": format!("q{i}"), "expected": format!("ANSWER-q{i}")}}))
        .collect()
}

/// Starts an evaluation; panics unless 202.
async fn start(app: &TestApp, body: Value) -> String {
    let answer = post_loaded(app, "/api/evals", body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    answer.json["id"].as_str().expect("id").to_owned()
}

/// Reads an evaluation until `done` holds (bounded: 1200 polls, 50 ms apart).
pub(crate) async fn eval_when(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..1200 {
        last = app.get_ok(&format!("/api/evals/{id}"), READ_TOKEN).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("evaluation {id} never reached the expected state: {last}");
}

pub(crate) fn is_final(e: &Value) -> bool {
    !matches!(e["status"].as_str(), Some("queued" | "running"))
}

fn grader(e: &Value, version: usize) -> &Value {
    &e["results"]["versions"][version]["graders"][0]
}

async fn two_versions_are_scored_for_the_right_reason_and_a_rerun_is_free(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, "qa-set", &rows(10)).await;
    let body = json!({"promptId": "qa", "versions": [1, 2], "dataset": "qa-set"});

    let id = start(&app, body.clone()).await;
    let first = eval_when(&app, &id, is_final).await;
    assert_eq!(first["status"], "completed", "{first}");
    assert_eq!(
        (first["total"].as_i64(), first["processed"].as_i64()),
        (Some(20), Some(20))
    );
    assert_eq!(first["modelCalls"], 20);
    assert_eq!(first["cachedAnswers"], 0);
    assert_eq!(fake.calls(), 20);
    // What the model was asked is each version's template rendered with the row.
    let asked: Vec<String> = fake
        .requests()
        .iter()
        .filter_map(|r| {
            r.json
                .as_ref()
                .and_then(last_user_message)
                .map(str::to_owned)
        })
        .collect();
    assert!(asked.contains(&"Quick: q3".to_owned()) && asked.contains(&"Careful: q3".to_owned()));

    let (v1, v2) = (grader(&first, 0), grader(&first, 1));
    assert_eq!(first["results"]["versions"][0]["version"], 1);
    assert_eq!(
        (v1["passRate"].as_f64(), v2["passRate"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(
        (v1["mean"].as_f64(), v2["mean"].as_f64()),
        (Some(0.0), Some(1.0))
    );
    assert_eq!(
        (v1["decided"].as_i64(), v2["decided"].as_i64()),
        (Some(10), Some(10))
    );
    // Wilson 95% for 10 of 10 is (0.722, 1).
    let lower = v2["passRateInterval"]["lower"]
        .as_f64()
        .expect("an interval");
    assert!((lower - 0.7225).abs() < 1e-3, "{v2}");
    let pair = &first["results"]["pairs"][0];
    assert_eq!((pair["a"].as_i64(), pair["b"].as_i64()), (Some(1), Some(2)));
    assert_eq!(pair["pairs"], 10);
    assert_eq!(pair["meanDifference"], 1.0);
    assert_eq!(
        (pair["failToPass"].as_i64(), pair["passToFail"].as_i64()),
        (Some(10), Some(0))
    );
    assert_eq!(pair["flipped"].as_array().map(Vec::len), Some(10));
    let tokens = first["results"]["versions"][1]["tokens"]
        .as_i64()
        .unwrap_or(0);
    assert!(
        tokens > 0 && first["tokensUsed"].as_i64() >= Some(tokens),
        "{first}"
    );

    // The same evaluation again: every answer from the cache, not one model call.
    let again = start(&app, body).await;
    let second = eval_when(&app, &again, is_final).await;
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(
        (
            second["modelCalls"].as_i64(),
            second["cachedAnswers"].as_i64()
        ),
        (Some(0), Some(20))
    );
    assert_eq!(fake.calls(), 20, "the rerun called the model");
    assert_eq!(second["results"]["pairs"], first["results"]["pairs"]);

    // The key is in no answer; the outputs are evaluation runs, never production figures or
    // snapshot rows.
    for answer in [&first, &second] {
        assert!(!answer.to_string().contains(KEY));
    }
    let versions = app.get_ok("/api/prompts/qa/versions", READ_TOKEN).await;
    for version in versions.as_array().expect("versions") {
        assert_eq!(version["tasksExecuted"], 0, "{version}");
    }
    let recorded = app
        .send(
            &Req::post("/api/runs", Some(AGENT_TOKEN)).json(
                json!({"runs": [{"promptId": "qa", "taskId": "prod-1", "input": {"question": "p"},
                             "output": "x"}]})
                .to_string(),
            ),
        )
        .await;
    assert_eq!(recorded.status, StatusCode::CREATED, "{}", recorded.text);
    let snapshot = app
        .post_admin(
            "/api/datasets",
            Some(json!({"promptId": "qa", "name": "qa-runs", "filter": {}})),
        )
        .await;
    assert_eq!(snapshot.status, StatusCode::CREATED, "{}", snapshot.text);
    assert_eq!(
        snapshot.json["rowCount"], 1,
        "only the production run: {}",
        snapshot.text
    );
    let runs = app
        .get_ok("/api/runs?promptId=qa&limit=100", READ_TOKEN)
        .await;
    assert!(!runs.to_string().contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_versions_are_scored_for_the_right_reason_and_a_rerun_is_free() {
    two_versions_are_scored_for_the_right_reason_and_a_rerun_is_free(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_versions_are_scored_for_the_right_reason_and_a_rerun_is_free() {
    two_versions_are_scored_for_the_right_reason_and_a_rerun_is_free(Backend::Postgres).await;
}

async fn row_errors_and_budgets_end_cleanly(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    fake.set_usage(UsageMode::Fixed(10, 10));
    // One call at a time: calls come in position order, so the scripted error hits position 0.
    let app = app_with_model(&db, &fake, 1, Duration::from_secs(30)).await;
    let mut data = rows(4);
    data[1] = json!({"item": {"expected": "ANSWER-none"}});
    setup(&app, "gaps", &data).await;

    // Position 0 (v1, row 0) gets a 400; row 1 has no `question` in either version.
    fake.push(Behaviour::Status {
        status: 400,
        message: "bad request".into(),
    });
    let id = start(
        &app,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "gaps"}),
    )
    .await;
    let done = eval_when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"], 8);
    assert_eq!(
        done["modelCalls"], 6,
        "no call for the rows that could not be rendered"
    );
    let v1 = &done["results"]["versions"][0];
    let v2 = &done["results"]["versions"][1];
    assert_eq!(
        v1["errors"],
        json!({"failed": 1, "missing_variable": 1}),
        "{v1}"
    );
    assert_eq!(v2["errors"], json!({"missing_variable": 1}), "{v2}");
    assert_eq!(v2["graders"][0]["decided"], 3);
    assert_eq!(v2["graders"][0]["passRate"], 1.0);
    assert_eq!(
        done["results"]["pairs"][0]["pairs"], 2,
        "only rows both versions answered"
    );

    // A call budget of 3 (another model, so nothing is cached): positions 0, 1 and 4 are
    // answered, 2 and 3 are row 1's missing variable, 5 is refused: five positions kept.
    let calls = fake.calls();
    let id = start(
        &app,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "gaps",
                                "model": "other", "callBudget": 3}),
    )
    .await;
    let spent = eval_when(&app, &id, is_final).await;
    assert_eq!(spent["status"], "budget_exhausted", "{spent}");
    assert_eq!(
        (spent["processed"].as_i64(), spent["modelCalls"].as_i64()),
        (Some(5), Some(3))
    );
    assert_eq!(fake.calls() - calls, 3);

    // A token budget of 30 at 20 tokens a call: the third call is refused before it is sent.
    let calls = fake.calls();
    let id = start(
        &app,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "gaps",
                                "model": "third", "tokenBudget": 30}),
    )
    .await;
    let spent = eval_when(&app, &id, is_final).await;
    assert_eq!(spent["status"], "budget_exhausted", "{spent}");
    assert_eq!(
        (spent["processed"].as_i64(), spent["modelCalls"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(spent["tokensUsed"], 40);
    assert_eq!(fake.calls() - calls, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_row_errors_and_budgets_end_cleanly() {
    row_errors_and_budgets_end_cleanly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_errors_and_budgets_end_cleanly() {
    row_errors_and_budgets_end_cleanly(Backend::Postgres).await;
}

/// Positions of the first chunk of an evaluation (`WorkerOptions::eval_chunk_rows`).
const CHUNK: i64 = 64;

async fn a_cancel_keeps_the_chunk_in_flight_and_stops(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    fake.set_latency(Duration::from_millis(50));
    let app = app_with_model(&db, &fake, 2, Duration::from_secs(30)).await;
    setup(&app, "long", &rows(60)).await;
    let id = start(
        &app,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "long"}),
    )
    .await;
    // Cancel once the first chunk is being answered (bounded: 1000 polls, 10 ms apart).
    for _ in 0..1000 {
        if fake.calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(fake.calls() > 0, "the evaluation never asked the model");
    let cancelled = app
        .post_admin(&format!("/api/evals/{id}/cancel"), None)
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text);
    assert_eq!(cancelled.json["cancelRequested"], true);
    let done = eval_when(&app, &id, is_final).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(
        done["processed"], CHUNK,
        "the chunk in flight is kept, no other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_cancel_keeps_the_chunk_in_flight_and_stops() {
    a_cancel_keeps_the_chunk_in_flight_and_stops(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_cancel_keeps_the_chunk_in_flight_and_stops() {
    a_cancel_keeps_the_chunk_in_flight_and_stops(Backend::Postgres).await;
}

async fn a_restart_resumes_without_asking_again_for_committed_answers(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    fake.set_latency(Duration::from_millis(30));
    let lease = Duration::from_secs(1);
    let first = app_with_model(&db, &fake, 2, lease).await;
    setup(&first, "restart", &rows(60)).await;
    let id = start(
        &first,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "restart"}),
    )
    .await;
    let seen = eval_when(&first, &id, |e| e["processed"].as_i64() >= Some(CHUNK)).await;
    assert_eq!(seen["status"], "running", "{seen}");
    // The instance dies in the middle of the second chunk (its workers are aborted).
    drop(first);

    let second = app_with_model(&db, &fake, 2, lease).await;
    second.wait_ready().await;
    let done = eval_when(&second, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["processed"], 120);
    let v2 = grader(&done, 1);
    assert_eq!(
        (v2["decided"].as_i64(), v2["passRate"].as_f64()),
        (Some(60), Some(1.0))
    );
    assert_eq!(
        done["results"]["pairs"][0]["pairs"], 60,
        "no position twice, none skipped"
    );

    // Committed positions (rows 0..32 of each version) were asked for exactly once; only the
    // chunk being committed when the instance died, the chunk read ahead of it and the two
    // calls in flight (concurrency 2) may have been asked twice.
    let mut asked: HashMap<String, usize> = HashMap::new();
    for request in fake.requests() {
        if let Some(text) = request.json.as_ref().and_then(last_user_message) {
            *asked.entry(text.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(asked.len(), 120, "every position asked");
    for row in 0..CHUNK / 2 {
        for version in ["Quick", "Careful"] {
            assert_eq!(
                asked[&format!("{version}: q{row}")],
                1,
                "row {row} asked again"
            );
        }
    }
    let again = asked.values().filter(|n| **n > 1).count();
    assert!(
        again <= 2 * CHUNK as usize + 2,
        "{again} positions asked twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_restart_resumes_without_asking_again_for_committed_answers() {
    a_restart_resumes_without_asking_again_for_committed_answers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_restart_resumes_without_asking_again_for_committed_answers() {
    a_restart_resumes_without_asking_again_for_committed_answers(Backend::Postgres).await;
}

async fn bad_requests_are_refused_with_stable_codes_and_store_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    let app = app_with_model(&db, &fake, 2, Duration::from_secs(30)).await;
    setup(&app, "qa-set", &rows(2)).await;
    // A dataset of another prompt.
    let other = app
        .post_admin(
            "/api/datasets",
            Some(json!({"promptId": "planner", "name": "planner-set",
                        "rows": [{"item": {"task_title": "t"}}]})),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let base = json!({"promptId": "qa", "versions": [1, 2], "dataset": "qa-set"});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            with(json!({"promptId": "ghost"})),
            StatusCode::NOT_FOUND,
            "prompt_not_found",
        ),
        (
            with(json!({"versions": [1, 9]})),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            with(json!({"dataset": "nope"})),
            StatusCode::NOT_FOUND,
            "dataset_not_found",
        ),
        (
            with(json!({"datasetVersion": 7})),
            StatusCode::NOT_FOUND,
            "dataset_version_not_found",
        ),
        (
            with(json!({"split": "holdout"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            with(json!({"dataset": "planner-set"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"versions": []})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"versions": [1, 1]})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"repeat": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"tokenBudget": 0})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"callBudget": -1})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"surprise": true})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            with(json!({"sampling": {"temperature": 2.5}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"sampling": {"topP": 0}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"sampling": {"maxCompletionTokens": 0}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        ),
        (
            with(json!({"sampling": {"temprature": 1}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            with(json!({"sampling": {"seed": "seven"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    let before = app.snapshot().await;
    for (body, status, code) in cases {
        let answer = post_loaded(&app, "/api/evals", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.error_code(), Some(code), "{body}: {}", answer.text);
    }
    // A split with no rows: two rows at 0.5 may all fall in one split, so ask for the other.
    let rows_of = app.get_ok("/api/datasets/qa-set", READ_TOKEN).await;
    let version = &rows_of["versions"][0];
    let empty = if version["trainCount"] == 0 {
        "train"
    } else if version["validationCount"] == 0 {
        "validation"
    } else {
        ""
    };
    if !empty.is_empty() {
        let answer = post_loaded(&app, "/api/evals", with(json!({"split": empty}))).await;
        assert_eq!(
            answer.error_code(),
            Some("invalid_input"),
            "{}",
            answer.text
        );
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused evaluation stored something"
    );

    // Unknown ids, malformed ids, and the roles.
    let ghost = "01890000-0000-7000-8000-000000000000";
    let missing = app
        .send(&Req::get(format!("/api/evals/{ghost}"), Some(READ_TOKEN)))
        .await;
    assert_eq!(missing.error_code(), Some("evaluation_not_found"));
    let cancel = app
        .post_admin(&format!("/api/evals/{ghost}/cancel"), None)
        .await;
    assert_eq!(cancel.error_code(), Some("evaluation_not_found"));
    let malformed = app
        .send(&Req::get("/api/evals/not-a-uuid", Some(READ_TOKEN)))
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let reader = app
        .send(&Req::post("/api/evals", Some(READ_TOKEN)).json(base.to_string()))
        .await;
    assert_eq!(reader.error_code(), Some("forbidden"));

    // Without a model endpoint an evaluation cannot run: refused, not queued.
    let unconfigured = TestApp::start(&db).await;
    let answer = post_loaded(&unconfigured, "/api/evals", base.clone()).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.text);
    assert_eq!(answer.error_code(), Some("invalid_state"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bad_requests_are_refused_with_stable_codes_and_store_nothing() {
    bad_requests_are_refused_with_stable_codes_and_store_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bad_requests_are_refused_with_stable_codes_and_store_nothing() {
    bad_requests_are_refused_with_stable_codes_and_store_nothing(Backend::Postgres).await;
}

async fn sampling_is_sent_keyed_in_the_cache_and_shown(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    let app = app_with_model(&db, &fake, 2, Duration::from_secs(30)).await;
    setup(&app, "sampled", &rows(3)).await;
    let body = |temperature: f64| {
        json!({"promptId": "qa", "versions": [2], "dataset": "sampled",
               "sampling": {"temperature": temperature, "topP": 0.9, "seed": 42, "maxTokens": 64}})
    };
    let id = start(&app, body(0.2)).await;
    let done = eval_when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["sampling"],
        json!({"temperature": 0.2, "topP": 0.9, "seed": 42, "maxCompletionTokens": 64}),
        "the result shows the parameters used"
    );
    assert_eq!(done["modelCalls"], 3);
    let sent: Vec<Value> = fake.requests().into_iter().filter_map(|r| r.json).collect();
    assert_eq!(sent.len(), 3);
    for request in &sent {
        assert_eq!(request["temperature"], 0.2, "{request}");
        assert_eq!(request["top_p"], 0.9, "{request}");
        assert_eq!(request["seed"], 42, "{request}");
        assert_eq!(request["max_completion_tokens"], 64, "{request}");
    }

    // The same parameters again: every answer from the cache.
    let again = eval_when(&app, &start(&app, body(0.2)).await, is_final).await;
    assert_eq!(
        (
            again["modelCalls"].as_i64(),
            again["cachedAnswers"].as_i64()
        ),
        (Some(0), Some(3)),
        "{again}"
    );
    // Another temperature is another answer: asked again.
    let other = eval_when(&app, &start(&app, body(0.7)).await, is_final).await;
    assert_eq!(
        (
            other["modelCalls"].as_i64(),
            other["cachedAnswers"].as_i64()
        ),
        (Some(3), Some(0)),
        "{other}"
    );
    assert_eq!(fake.calls(), 6);
    // None given: none sent, and the view's sampling is empty.
    let plain = eval_when(
        &app,
        &start(
            &app,
            json!({"promptId": "qa", "versions": [2], "dataset": "sampled"}),
        )
        .await,
        is_final,
    )
    .await;
    assert_eq!(plain["sampling"], json!({}));
    let last = fake
        .requests()
        .pop()
        .and_then(|r| r.json)
        .expect("a request");
    assert!(last.get("temperature").is_none(), "{last}");
    assert!(last.get("seed").is_none(), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sampling_is_sent_keyed_in_the_cache_and_shown() {
    sampling_is_sent_keyed_in_the_cache_and_shown(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sampling_is_sent_keyed_in_the_cache_and_shown() {
    sampling_is_sent_keyed_in_the_cache_and_shown(Backend::Postgres).await;
}

async fn evaluations_are_listed_by_prompt_and_status_a_page_at_a_time(backend: Backend) {
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    let app = app_with_model(&db, &fake, 2, Duration::from_secs(30)).await;
    setup(&app, "listed", &rows(2)).await;
    let body = json!({"promptId": "qa", "versions": [1, 2], "dataset": "listed"});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = start(&app, body.clone()).await;
        eval_when(&app, &id, is_final).await;
        ids.push(id);
    }
    // A grading run shares the queue; it is never listed as an evaluation.
    let grading = app
        .post_admin(
            "/api/grading-runs",
            Some(json!({"promptId": "qa", "graders": ["exact"]})),
        )
        .await;
    assert_eq!(grading.status, StatusCode::ACCEPTED, "{}", grading.text);
    let grading_id = grading.json["id"].as_str().expect("id").to_owned();
    // One cancelled while its slow calls (another model: nothing cached) are in flight.
    fake.set_latency(Duration::from_millis(500));
    let cancelled = start(
        &app,
        json!({"promptId": "qa", "versions": [1, 2], "dataset": "listed", "model": "slow"}),
    )
    .await;
    app.post_admin(&format!("/api/evals/{cancelled}/cancel"), None)
        .await;
    let cancelled_done = eval_when(&app, &cancelled, is_final).await;
    assert_eq!(cancelled_done["status"], "cancelled", "{cancelled_done}");
    let listed_ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_owned())
            .collect()
    };

    let first = app.get_ok("/api/evals?limit=2", READ_TOKEN).await;
    assert_eq!(listed_ids(&first), [cancelled.clone(), ids[2].clone()]);
    assert!(
        first["items"][0].get("results").is_none(),
        "a list holds no results"
    );
    assert_eq!(first["items"][1]["processed"], 4);
    assert_eq!(first["items"][1]["status"], "completed");
    let cursor = first["nextCursor"].as_str().expect("a next page");
    let second = app
        .get_ok(&format!("/api/evals?limit=2&cursor={cursor}"), READ_TOKEN)
        .await;
    assert_eq!(listed_ids(&second), [ids[1].clone(), ids[0].clone()]);
    assert!(second["nextCursor"].is_null(), "{second}");

    let completed = app
        .get_ok("/api/evals?promptId=qa&status=completed", READ_TOKEN)
        .await;
    assert_eq!(
        listed_ids(&completed),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let in_status = app.get_ok("/api/evals?status=cancelled", READ_TOKEN).await;
    assert_eq!(
        listed_ids(&in_status),
        std::slice::from_ref(&cancelled),
        "{in_status}"
    );
    let none = app.get_ok("/api/evals?promptId=planner", READ_TOKEN).await;
    assert_eq!(none["items"], json!([]));

    // The grading-runs list tells the kinds apart on request, and lists both by default.
    let kinds = |query: &'static str| {
        let app = &app;
        async move {
            app.get_ok(&format!("/api/grading-runs{query}"), READ_TOKEN)
                .await
                .as_array()
                .expect("a list")
                .iter()
                .map(|j| j["id"].as_str().expect("id").to_owned())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(
        kinds("?kind=grading").await,
        std::slice::from_ref(&grading_id)
    );
    let evaluations = kinds("?kind=evaluation&promptId=qa").await;
    assert_eq!(evaluations.len(), 4);
    assert!(!evaluations.contains(&grading_id));
    assert_eq!(kinds("").await.len(), 5);

    // Bad inputs: stable codes.
    for (path, code) in [
        ("/api/evals?limit=0", "invalid_query"),
        ("/api/evals?limit=501", "invalid_query"),
        ("/api/evals?limit=ten", "invalid_query"),
        ("/api/evals?status=finished", "invalid_query"),
        ("/api/evals?cursor=nonsense", "invalid_cursor"),
        ("/api/evals?surprise=1", "invalid_query"),
        ("/api/grading-runs?kind=both", "invalid_query"),
    ] {
        let answer = app.send(&Req::get(path, Some(READ_TOKEN))).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.text
        );
        assert_eq!(answer.error_code(), Some(code), "{path}: {}", answer.text);
    }
    let anonymous = app.send(&Req::get("/api/evals", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_evaluations_are_listed_by_prompt_and_status_a_page_at_a_time() {
    evaluations_are_listed_by_prompt_and_status_a_page_at_a_time(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_evaluations_are_listed_by_prompt_and_status_a_page_at_a_time() {
    evaluations_are_listed_by_prompt_and_status_a_page_at_a_time(Backend::Postgres).await;
}
