//! The three tasks of the optimizer's tests and benchmark (issue 17), on the fake model
//! server: a planted flaw (the task model fails a row unless the prompt tells it to cite the
//! source; the reflection model proposes that only when the critiques it is shown say so), a
//! flat task (the same rows pass whatever the prompt says) and a coin flip (each answer right or
//! wrong by a seeded hash of its request). Plus the dataset of annotated rows, the prompt and
//! grader they run on, and helpers to start and follow a run.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fake_model::{Behaviour, FakeModel, last_user_message};
use flywheel::datasets::{content_row_id, split_of};
use flywheel::llm::{EndpointSettings, LlmSettings, Secret};
use flywheel::store::Split;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::{Answer, READ_TOKEN, TestApp, TestDb};

/// An app on `db` whose model endpoint is `fake`, `concurrency` calls at once, claims under
/// `lease`.
pub async fn app_with_model(
    db: &TestDb,
    fake: &FakeModel,
    concurrency: usize,
    lease: Duration,
) -> TestApp {
    let mut settings = db.settings();
    let endpoint = EndpointSettings::new(&fake.base_url(), Some(Secret::new("sk-optimizer-e2e")))
        .expect("valid URL");
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
pub async fn post_loaded(app: &TestApp, path: &str, body: Value) -> Answer {
    for _ in 0..600 {
        let answer = app.post_admin(path, Some(body.clone())).await;
        if answer.status != StatusCode::SERVICE_UNAVAILABLE {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the grader components never finished loading");
}

/// The starting prompt.
pub const START: &str = "Answer the question.\nQuestion: {{question}}";
/// The instruction the planted flaw needs.
pub const FIX: &str = "Always cite the source.";
/// The critique of a row the flaw fails.
pub const CRITIQUE: &str = "the answer did not cite the source";
/// The reflection model's name in requests.
pub const REFLECTOR: &str = "reflector";
/// The dataset's name.
pub const DATASET: &str = "qa-opt";

/// The row number in a task request (`q17` → 17).
fn row_number(text: &str) -> Option<usize> {
    let at = text.rfind("Question: q")?;
    text[at + "Question: q".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Whether row `i` needs the instruction (four rows of five do).
pub fn needs_fix(i: usize) -> bool {
    !i.is_multiple_of(5)
}

/// The whole text of a request (every message), for the reflection fakes to read.
fn request_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub fn is_reflection(body: &Value) -> bool {
    body["model"].as_str() == Some(REFLECTOR)
}

/// An answer of the task model: right (`ANSWER-q<i>`) or wrong.
pub fn task_answer(body: &Value, right: impl Fn(usize, &str) -> bool) -> String {
    let text = last_user_message(body).unwrap_or_default();
    match row_number(text) {
        Some(i) if right(i, text) => format!("ANSWER-q{i}"),
        _ => "dunno".to_owned(),
    }
}

/// A reflection that fixes the flaw only when a critique names it, else rewords the prompt
/// (numbered, so no two proposals are the same).
fn reflect(body: &Value, proposals: &AtomicUsize) -> String {
    let n = proposals.fetch_add(1, Ordering::SeqCst);
    if request_text(body).contains(CRITIQUE) {
        format!("```\nAnswer the question. {FIX}\nQuestion: {{{{question}}}}\n```")
    } else {
        format!("```\nAnswer the question carefully (take {n}).\nQuestion: {{{{question}}}}\n```")
    }
}

/// The planted flaw: right on a row that needs the instruction only when the prompt has it.
pub fn planted(fake: &FakeModel) {
    let proposals = Arc::new(AtomicUsize::new(0));
    fake.set_default(Behaviour::answer_with(move |body| {
        if is_reflection(body) {
            reflect(body, &proposals)
        } else {
            task_answer(body, |i, text| !needs_fix(i) || text.contains(FIX))
        }
    }));
}

/// The flat task: the same rows right whatever the prompt says.
pub fn flat(fake: &FakeModel) {
    let proposals = Arc::new(AtomicUsize::new(0));
    fake.set_default(Behaviour::answer_with(move |body| {
        if is_reflection(body) {
            reflect(body, &proposals)
        } else {
            task_answer(body, |i, _| i.is_multiple_of(3))
        }
    }));
}

/// FNV-1a of `seed` and `text`, finished with SplitMix64's mixer (FNV alone leaves its high
/// bits nearly constant over texts that differ in a few bytes): the coin of one request.
fn coin(seed: u64, text: &str) -> bool {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = hash;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    z & 1 == 1
}

/// The coin flip: each request right or wrong by a seeded hash of its text, so every prompt
/// scores about one half on any rows, by chance alone.
pub fn coin_flip(fake: &FakeModel, seed: u64) {
    let proposals = Arc::new(AtomicUsize::new(0));
    fake.set_default(Behaviour::answer_with(move |body| {
        if is_reflection(body) {
            reflect(body, &proposals)
        } else {
            task_answer(body, |_, text| coin(seed, text))
        }
    }));
}

/// `train` train rows and `validation` validation rows, annotated: the rows the flaw fails carry
/// the critique and failure mode `no_citation`, the others a good rating.
pub fn rows(train: usize, validation: usize) -> Vec<Value> {
    let (mut t, mut v) = (Vec::new(), Vec::new());
    // Bounded: about half of the rows fall in each split.
    for i in 0..(train + validation) * 10 {
        let mut item = Map::new();
        item.insert("question".into(), json!(format!("q{i}")));
        item.insert("expected".into(), json!(format!("ANSWER-q{i}")));
        if needs_fix(i) {
            item.insert("rating".into(), json!("bad"));
            item.insert("output_feedback".into(), json!(CRITIQUE));
            item.insert("failure_mode".into(), json!("no_citation"));
        } else {
            item.insert("rating".into(), json!("good"));
        }
        let split = split_of(content_row_id(DATASET, &item, None, 0), 0.5);
        match split {
            Split::Train if t.len() < train => t.push(json!({ "item": item })),
            Split::Validation if v.len() < validation => v.push(json!({ "item": item })),
            _ => {}
        }
        if t.len() == train && v.len() == validation {
            break;
        }
    }
    t.extend(v);
    t
}

/// Prompt `qa` ([`START`]), the `no_citation` failure mode, an exact-match grader and dataset
/// [`DATASET`] of `rows`.
pub async fn setup(app: &TestApp, rows: &[Value]) {
    let created = app
        .post_admin("/api/prompts", Some(json!({"id": "qa", "content": START})))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let mode = app
        .post_admin(
            "/api/prompts/qa/failure-modes",
            Some(json!({"code": "no_citation", "description": "the answer cites no source"})),
        )
        .await;
    assert!(mode.status.is_success(), "{}", mode.text);
    let grader = post_loaded(
        app,
        "/api/graders/definitions",
        json!({"promptId": "qa", "name": "exact", "definition": {
            "type": "string_check", "name": "exact", "operation": "eq",
            "input": "{{sample.output_text}}", "reference": "{{item.expected}}"}}),
    )
    .await;
    assert!(grader.status.is_success(), "{}", grader.text);
    let answer = app
        .post_admin(
            "/api/datasets",
            Some(
                json!({"promptId": "qa", "name": DATASET, "rows": rows, "validationFraction": 0.5}),
            ),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
}

/// Starts an optimization of `qa`; panics unless 202.
pub async fn start(app: &TestApp, body: Value) -> String {
    let answer = post_loaded(app, "/api/prompts/qa/optimize", body).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.text);
    answer.json["id"].as_str().expect("id").to_owned()
}

/// The request body of the issue's runs: the dataset, a budget of 400 task calls.
pub fn body() -> Value {
    json!({"dataset": DATASET, "budget": 400, "reflectionModel": REFLECTOR})
}

/// Reads an optimization until `done` holds (bounded: 2400 polls, 50 ms apart).
pub async fn when(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..2400 {
        last = app
            .get_ok(&format!("/api/optimizations/{id}"), READ_TOKEN)
            .await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("optimization {id} never reached the expected state: {last}");
}

pub fn is_final(o: &Value) -> bool {
    !matches!(o["status"].as_str(), Some("queued" | "running"))
}
