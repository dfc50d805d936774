//! The bad requests of the runs routes (`/api/runs…`), added to the table of
//! `bad_requests.rs`: each gets its 4xx and code, names the refused field, and stores nothing.

use flywheel_e2e::{AGENT_TOKEN, READ_TOKEN, Req, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

use crate::bad_requests::{Case, case};

/// Tasks of the refused outcomes below: none may have an outcome stored afterwards.
const OUTCOME_TASKS: [&str; 3] = ["bad-outcome-1", "bad-outcome-2", "bad-outcome-3"];

fn run(task: &str) -> Value {
    json!({"promptId": "planner", "taskId": task, "input": {"title": "t"}, "output": "plan"})
}

fn with(mut run: Value, field: &str, value: Value) -> Value {
    run[field] = value;
    run
}

fn without(mut run: Value, field: &str) -> Value {
    run.as_object_mut().expect("object").remove(field);
    run
}

pub(crate) fn cases() -> Vec<Case> {
    let agent = Some(AGENT_TOKEN);
    let read = Some(READ_TOKEN);
    let post = |body: Value| Req::post("/api/runs", agent).json(body.to_string());
    let batch = |runs: Vec<Value>| post(json!({ "runs": runs }));
    let patch =
        |body: Value| Req::new(Method::PATCH, "/api/runs/outcomes", agent).json(body.to_string());
    let many_runs: Vec<Value> = (0..1001).map(|i| run(&format!("many-{i}"))).collect();
    let many_outcomes: Vec<Value> = (0..1001)
        .map(|i| json!({"taskId": format!("o-{i}"), "testsPassed": true}))
        .collect();
    let huge_body = format!(
        r#"{{"runs":[{{"promptId":"planner","taskId":"big","input":{{}},"output":"{}"}}]}}"#,
        "x".repeat(17 * 1024 * 1024)
    );
    vec![
        case("run: taskId of wrong type", post(with(run("a"), "taskId", json!(5))), 422, "invalid_run")
            .field("taskId"),
        case("run: unknown field", post(with(run("a"), "bogus", json!(1))), 422, "invalid_run")
            .field("bogus"),
        case("run: snake_case field", post(with(run("a"), "task_id", json!("x"))), 422, "invalid_run")
            .field("task_id"),
        case("run: missing output", post(without(run("a"), "output")), 422, "invalid_run")
            .field("output"),
        case("run: input not an object", post(with(run("a"), "input", json!(["x"]))), 422, "invalid_run")
            .field("input"),
        case("run: attempt 0", batch(vec![with(run("a"), "attempt", json!(0))]), 422, "invalid_run")
            .field("runs[0].attempt"),
        case("run: version 0", post(with(run("a"), "version", json!(0))), 422, "invalid_run")
            .field("version"),
        case("run: negative tokensIn", post(with(run("a"), "tokensIn", json!(-1))), 422, "invalid_run")
            .field("tokensIn"),
        case("run: negative latency", post(with(run("a"), "latencyMs", json!(-5))), 422, "invalid_run")
            .field("latencyMs"),
        case("run: empty taskId", post(run("")), 422, "invalid_run").field("taskId"),
        case("run: taskId over 200 characters", post(run(&"t".repeat(201))), 422, "invalid_run")
            .field("taskId"),
        case(
            "run: output over 1 MiB",
            post(with(run("a"), "output", json!("x".repeat(1024 * 1024 + 1)))),
            422,
            "invalid_run",
        )
        .field("output"),
        case(
            "run: the fourth run of a batch is bad, nothing stored",
            batch(vec![run("b0"), run("b1"), run("b2"), with(run("b3"), "taskId", json!(null))]),
            422,
            "invalid_run",
        )
        .field("runs[3].taskId"),
        case("run: unknown prompt", post(with(run("a"), "promptId", json!("nosuch"))), 422, "unknown_prompt")
            .field("promptId"),
        case(
            "run: unknown prompt in a batch",
            batch(vec![run("c0"), with(run("c1"), "promptId", json!("nosuch"))]),
            422,
            "unknown_prompt",
        )
        .field("runs[1].promptId"),
        case(
            "run: unknown version",
            batch(vec![run("d0"), with(run("d1"), "version", json!(99))]),
            422,
            "unknown_version",
        )
        .field("runs[1].version"),
        case("runs: empty batch", batch(vec![]), 422, "invalid_batch").field("runs"),
        case("runs: 1001 runs", batch(many_runs), 422, "invalid_batch").field("runs"),
        case("runs: not an array", post(json!({"runs": {"a": 1}})), 422, "invalid_body"),
        case("runs: unknown batch field", post(json!({"runs": [run("e")], "dryRun": true})), 422, "invalid_body"),
        case("runs: a JSON array", post(json!([run("f")])), 422, "invalid_body"),
        case("runs: body over 16 MiB", Req::post("/api/runs", agent).json(huge_body), 413, "payload_too_large"),
        case("run: NUL in taskId", batch(vec![run("t\u{0}1")]), 422, "invalid_text").field("runs[0].taskId"),
        case("run: NUL in output", post(with(run("g"), "output", json!("a\u{0}b"))), 422, "invalid_text")
            .field("output"),
        case(
            "run: NUL in an input value",
            batch(vec![run("h0"), with(run("h1"), "input", json!({"title": "x\u{0}"}))]),
            422,
            "invalid_text",
        )
        .field("runs[1].input.title"),
        case("runs: recorded with the read role", Req::post("/api/runs", read).json(run("i").to_string()), 403, "forbidden"),
        // Reading.
        case("run: unknown id", Req::get("/api/runs/0190b5a2-7c3e-7000-8000-000000000000", read), 404, "run_not_found"),
        case("run: malformed id", Req::get("/api/runs/not-a-uuid", read), 400, "invalid_path"),
        case("runs: foreign cursor", Req::get("/api/runs?cursor=abc", read), 400, "invalid_cursor"),
        case("runs: limit 0", Req::get("/api/runs?limit=0", read), 400, "invalid_query"),
        case("runs: limit 10000", Req::get("/api/runs?limit=10000", read), 400, "invalid_query"),
        case("runs: bad from date", Req::get("/api/runs?from=yesterday", read), 400, "invalid_query"),
        case("runs: unknown rating", Req::get("/api/runs?rating=meh", read), 400, "invalid_query"),
        case("runs: unknown parameter", Req::get("/api/runs?prompt=planner", read), 400, "invalid_query"),
        case("runs: NUL in a filter", Req::get("/api/runs?promptId=plan%00ner", read), 422, "invalid_text")
            .field("promptId"),
        // Outcomes.
        case("outcomes: empty", patch(json!({"outcomes": []})), 422, "invalid_batch").field("outcomes"),
        case("outcomes: 1001", patch(json!({ "outcomes": many_outcomes })), 422, "invalid_batch")
            .field("outcomes"),
        case(
            "outcome: nothing reported",
            patch(json!({"outcomes": [{"taskId": OUTCOME_TASKS[0]}]})),
            422,
            "invalid_outcome",
        )
        .field("outcomes[0]"),
        case(
            "outcome: testsPassed of wrong type",
            patch(json!({"outcomes": [{"taskId": OUTCOME_TASKS[0], "testsPassed": true}, {"taskId": OUTCOME_TASKS[1], "testsPassed": "yes"}]})),
            422,
            "invalid_outcome",
        )
        .field("outcomes[1].testsPassed"),
        case(
            "outcome: unknown field",
            patch(json!({"outcomes": [{"taskId": OUTCOME_TASKS[2], "merged": true}]})),
            422,
            "invalid_outcome",
        )
        .field("outcomes[0].merged"),
        case(
            "outcome: an empty expected file",
            patch(json!({"outcomes": [{"taskId": OUTCOME_TASKS[2], "expectedFiles": ["a.rs", ""]}]})),
            422,
            "invalid_outcome",
        )
        .field("outcomes[0].expectedFiles[1]"),
        case(
            "outcome: NUL in a failure signature",
            patch(json!({"outcomes": [{"taskId": OUTCOME_TASKS[2], "failureSignature": "E\u{0}"}]})),
            422,
            "invalid_text",
        )
        .field("outcomes[0].failureSignature"),
        case("outcomes: not a batch", patch(json!([{"taskId": "x"}])), 422, "invalid_body"),
        case(
            "outcomes: reported with the read role",
            Req::new(Method::PATCH, "/api/runs/outcomes", read)
                .json(json!({"outcomes": [{"taskId": "x", "testsPassed": true}]}).to_string()),
            403,
            "forbidden",
        ),
    ]
}

/// No refused outcome was kept: a run of each of their tasks, recorded now, has no outcome.
pub(crate) async fn assert_no_outcome_stored(app: &TestApp) {
    let runs: Vec<Value> = OUTCOME_TASKS.iter().map(|t| run(t)).collect();
    let answer = app
        .send(&Req::post("/api/runs", Some(AGENT_TOKEN)).json(json!({ "runs": runs }).to_string()))
        .await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);
    for recorded in answer.json["runs"].as_array().expect("runs") {
        let id = recorded["id"].as_str().expect("id");
        let stored = app.get_ok(&format!("/api/runs/{id}"), READ_TOKEN).await;
        assert_eq!(
            stored["outcome"],
            Value::Null,
            "a refused outcome was stored: {stored}"
        );
    }
}
