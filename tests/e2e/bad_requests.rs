//! A table of bad requests: each gets its 4xx status and error code, never a 5xx, and none
//! changes the database.

use flywheel_e2e::{ADMIN_TOKEN, AGENT_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::{Method, StatusCode};
use uuid::Uuid;

mod annotations;
mod datasets;
mod export;
mod grading_runs;
mod prompts_new;

pub(crate) struct Case {
    name: &'static str,
    req: Req,
    status: u16,
    code: &'static str,
    /// `details.field` the answer must name, where the code carries one.
    field: Option<&'static str>,
}

pub(crate) fn case(name: &'static str, req: Req, status: u16, code: &'static str) -> Case {
    Case {
        name,
        req,
        status,
        code,
        field: None,
    }
}

impl Case {
    /// Expects `details.field` to be `field`.
    pub(crate) fn field(mut self, field: &'static str) -> Case {
        self.field = Some(field);
        self
    }
}

/// `run` is a recorded run of `planner` that has no annotation.
fn cases(run: Uuid) -> Vec<Case> {
    let admin = Some(ADMIN_TOKEN);
    let agent = Some(AGENT_TOKEN);
    let read = Some(READ_TOKEN);
    let create = "/api/prompts/planner/versions";
    let huge = format!(r#"{{"content":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let long_task = "t".repeat(300);
    let ab = "/api/prompts/planner/ab-test";
    vec![
        // Bodies.
        case(
            "malformed JSON",
            Req::post(create, admin).json("{"),
            400,
            "malformed_json",
        ),
        case(
            "trailing garbage",
            Req::post(create, admin).json(r#"{"content":"a"} x"#),
            400,
            "malformed_json",
        ),
        case(
            "empty JSON body",
            Req::post(create, admin).json(""),
            400,
            "malformed_json",
        ),
        case(
            "content of wrong type",
            Req::post(create, admin).json(r#"{"content":5}"#),
            422,
            "invalid_body",
        ),
        case(
            "unknown field",
            Req::post(create, admin).json(r#"{"content":"a","bogus":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "missing content",
            Req::post(create, admin).json("{}"),
            422,
            "invalid_body",
        ),
        case(
            "array instead of object",
            Req::post(create, admin).json("[]"),
            422,
            "invalid_body",
        ),
        case(
            "string instead of object",
            Req::post(create, admin).json(r#""hello""#),
            422,
            "invalid_body",
        ),
        case(
            "parentVersion of wrong type",
            Req::post(create, admin).json(r#"{"content":"a","parentVersion":"one"}"#),
            422,
            "invalid_body",
        ),
        case(
            "notes of wrong type",
            Req::post(create, admin).json(r#"{"content":"a","notes":[1]}"#),
            422,
            "invalid_body",
        ),
        case(
            "snake_case field name",
            Req::post(create, admin).json(r#"{"content":"a","parent_version":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "empty content",
            Req::post(create, admin).json(r#"{"content":""}"#),
            422,
            "invalid_input",
        ),
        case(
            "unknown parent version",
            Req::post(create, admin).json(r#"{"content":"a","parentVersion":999}"#),
            422,
            "invalid_input",
        ),
        case(
            "no content type",
            Req::post(create, admin).body(None, r#"{"content":"a"}"#),
            415,
            "unsupported_media_type",
        ),
        case(
            "text/plain content type",
            Req::post(create, admin).body(Some("text/plain"), r#"{"content":"a"}"#),
            415,
            "unsupported_media_type",
        ),
        case(
            "body over 1 MiB",
            Req::post(create, admin).json(huge),
            413,
            "payload_too_large",
        ),
        // Templates.
        case(
            "unclosed variable",
            Req::post(create, admin).json(r#"{"content":"Plan {{task_title"}"#),
            422,
            "invalid_template",
        ),
        case(
            "invalid variable name",
            Req::post(create, admin).json(r#"{"content":"Plan {{task title!}}"}"#),
            422,
            "invalid_template",
        ),
        case(
            "stray closing braces",
            Req::post(create, admin).json(r#"{"content":"Plan }} now"}"#),
            422,
            "invalid_template",
        ),
        case(
            "empty variable",
            Req::post(create, admin).json(r#"{"content":"Plan {{}}"}"#),
            422,
            "invalid_template",
        ),
        // NUL (U+0000) in any text: refused alike on both backends, naming the field.
        case(
            "NUL in a path parameter",
            Req::get("/api/prompts/%00/versions", read),
            422,
            "invalid_text",
        )
        .field("id"),
        case(
            "NUL inside a prompt id",
            Req::post("/api/prompts/plan%00ner/versions", admin).json(r#"{"content":"a"}"#),
            422,
            "invalid_text",
        )
        .field("id"),
        case(
            "NUL in version content",
            Req::post("/api/prompts/planner/versions", admin)
                .json(r#"{"content":"Plan {{task}}\u0000 now"}"#),
            422,
            "invalid_text",
        )
        .field("content"),
        case(
            "NUL in version notes",
            Req::post("/api/prompts/planner/versions", admin)
                .json(r#"{"content":"ok","notes":"\u0000"}"#),
            422,
            "invalid_text",
        )
        .field("notes"),
        case(
            "NUL in a resolve task id",
            Req::get("/api/prompts/planner/resolve?task_id=t%001", agent),
            422,
            "invalid_text",
        )
        .field("task_id"),
        case(
            "NUL in a grader definition",
            Req::post("/api/graders/definitions", admin).json(
                r#"{"promptId":"planner","name":"nul","definition":{"type":"string_check","name":"n","operation":"eq","input":"{{sample.output_text}}","reference":"a\u0000"}}"#,
            ),
            422,
            "invalid_text",
        )
        .field("definition.reference"),
        case(
            "NUL in a grader definitions query",
            Req::get("/api/graders/definitions?promptId=plan%00ner", read),
            422,
            "invalid_text",
        )
        .field("promptId"),
        // Unknown things.
        case(
            "create on unknown prompt",
            Req::post("/api/prompts/nosuch/versions", admin).json(r#"{"content":"a"}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "versions of unknown prompt",
            Req::get("/api/prompts/nosuch/versions", read),
            404,
            "prompt_not_found",
        ),
        case(
            "unknown version",
            Req::get("/api/prompts/planner/versions/999", read),
            404,
            "version_not_found",
        ),
        case(
            "version of unknown prompt",
            Req::get("/api/prompts/nosuch/versions/1", read),
            404,
            "prompt_not_found",
        ),
        case(
            "history of unknown prompt",
            Req::get("/api/prompts/nosuch/history", read),
            404,
            "prompt_not_found",
        ),
        case(
            "failure modes of unknown prompt",
            Req::get("/api/prompts/nosuch/failure-modes", read),
            404,
            "prompt_not_found",
        ),
        case(
            "deploy of unknown version",
            Req::post("/api/prompts/planner/deploy/999", admin),
            404,
            "version_not_found",
        ),
        case(
            "deploy on unknown prompt",
            Req::post("/api/prompts/nosuch/deploy/1", admin),
            404,
            "prompt_not_found",
        ),
        case(
            "rollback of unknown prompt",
            Req::post("/api/prompts/nosuch/rollback", admin),
            404,
            "prompt_not_found",
        ),
        case(
            "resolve of unknown prompt",
            Req::get("/api/prompts/nosuch/resolve?task_id=t1", agent),
            404,
            "prompt_not_found",
        ),
        case(
            "unknown route",
            Req::get("/api/nothing", read),
            404,
            "route_not_found",
        ),
        // Path and query parameters.
        case(
            "non-numeric version",
            Req::get("/api/prompts/planner/versions/abc", read),
            400,
            "invalid_path",
        ),
        case(
            "fractional version",
            Req::get("/api/prompts/planner/versions/1.5", read),
            400,
            "invalid_path",
        ),
        case(
            "version overflowing i64",
            Req::get("/api/prompts/planner/versions/99999999999999999999", read),
            400,
            "invalid_path",
        ),
        case(
            "non-numeric deploy version",
            Req::post("/api/prompts/planner/deploy/latest", admin),
            400,
            "invalid_path",
        ),
        case(
            "resolve without task_id",
            Req::get("/api/prompts/planner/resolve", agent),
            400,
            "invalid_query",
        ),
        case(
            "resolve with unknown parameter",
            Req::get("/api/prompts/planner/resolve?task_id=t&arm=b", agent),
            400,
            "invalid_query",
        ),
        case(
            "resolve with empty task_id",
            Req::get("/api/prompts/planner/resolve?task_id=", agent),
            422,
            "invalid_input",
        ),
        case(
            "resolve with over-long task_id",
            Req::get(
                format!("/api/prompts/planner/resolve?task_id={long_task}"),
                agent,
            ),
            422,
            "invalid_input",
        ),
        // State.
        case(
            "rollback with no earlier version",
            Req::post("/api/prompts/planner/rollback", admin),
            409,
            "nothing_to_roll_back",
        ),
        case(
            "method not allowed",
            Req::new(Method::DELETE, "/api/prompts", read),
            405,
            "method_not_allowed",
        ),
        // A/B tests (planner has only version 1 here, and no running test).
        case(
            "A/B test of one version against itself",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":1}"#),
            422,
            "invalid_input",
        ),
        case(
            "A/B test of an unknown version",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":99}"#),
            404,
            "version_not_found",
        ),
        case(
            "A/B test of an unknown prompt",
            Req::post("/api/prompts/nope/ab-test", admin).json(r#"{"versionA":1,"versionB":2}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "A/B trafficSplit 1.5",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"trafficSplit":1.5}"#),
            422,
            "invalid_input",
        ),
        case(
            "A/B trafficSplit as text",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"trafficSplit":"half"}"#),
            422,
            "invalid_body",
        ),
        case(
            "A/B unknown field",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"colour":"red"}"#),
            422,
            "invalid_body",
        ),
        case(
            "A/B unknown guardrail",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"guardrails":{"cost":0.1}}"#),
            422,
            "invalid_body",
        ),
        case(
            "A/B unknown metric",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"metric":"vibes"}"#),
            422,
            "invalid_input",
        ),
        case(
            "A/B negative maxDays",
            Req::post(ab, admin).json(r#"{"versionA":1,"versionB":2,"maxDays":-1}"#),
            422,
            "invalid_input",
        ),
        case(
            "A/B missing versionB",
            Req::post(ab, admin).json(r#"{"versionA":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "A/B start with the agent role",
            Req::post(ab, agent).json(r#"{"versionA":1,"versionB":2}"#),
            403,
            "forbidden",
        ),
        case(
            "stop with no running test",
            Req::post("/api/prompts/planner/ab-test/stop", admin),
            404,
            "ab_test_not_found",
        ),
        case(
            "results with no running test",
            Req::get("/api/prompts/planner/ab-test/results", read),
            404,
            "ab_test_not_found",
        ),
        case(
            "unknown A/B test id",
            Req::get("/api/ab-tests/0190e1a2-0000-7000-8000-000000000000", read),
            404,
            "ab_test_not_found",
        ),
        case(
            "A/B test id not a uuid",
            Req::get("/api/ab-tests/not-a-uuid", read),
            400,
            "invalid_path",
        ),
        case(
            "empty root_task_id",
            Req::get("/api/prompts/planner/resolve?task_id=t1&root_task_id=", agent),
            422,
            "invalid_input",
        ),
        // Auth.
        case(
            "missing token",
            Req::get("/api/prompts", None),
            401,
            "unauthorized",
        ),
        case(
            "unknown token",
            Req::get("/api/prompts", Some("not-a-configured-token")),
            401,
            "unauthorized",
        ),
        case(
            "basic auth instead of bearer",
            Req::get("/api/prompts", None).authorization("Basic b3BzOmFkbWlu"),
            401,
            "unauthorized",
        ),
        case(
            "bearer without token",
            Req::get("/api/prompts", None).authorization("Bearer "),
            401,
            "unauthorized",
        ),
        case(
            "deploy with read role",
            Req::post("/api/prompts/planner/deploy/1", read),
            403,
            "forbidden",
        ),
        case(
            "deploy with agent role",
            Req::post("/api/prompts/planner/deploy/1", agent),
            403,
            "forbidden",
        ),
        case(
            "create with agent role",
            Req::post(create, agent).json(r#"{"content":"a"}"#),
            403,
            "forbidden",
        ),
        case(
            "rollback with read role",
            Req::post("/api/prompts/planner/rollback", read),
            403,
            "forbidden",
        ),
        case(
            "resolve with read role",
            Req::get("/api/prompts/planner/resolve?task_id=t1", read),
            403,
            "forbidden",
        ),
        case(
            "no token on a write, body ignored",
            Req::post("/api/prompts/planner/deploy/1", None),
            401,
            "unauthorized",
        ),
    ]
    .into_iter()
    .chain(annotations::cases(run))
    .chain(grading_runs::cases())
    .chain(datasets::cases())
    .chain(export::cases())
    .chain(prompts_new::cases())
    .collect()
}

async fn bad_requests_are_refused_with_their_code_and_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let run = crate::annotations::insert_run(&app, "planner", Some(false)).await;
    crate::annotations::settled(&app, run).await;
    let mut cases = cases(run);
    cases.extend(crate::bad_requests_runs::cases());
    assert!(
        cases.len() >= 30,
        "the table must hold at least 30 bad requests"
    );

    let before = app.snapshot().await;
    let mut failures = Vec::new();
    for c in &cases {
        let answer = app.send(&c.req).await;
        let ok = answer.status.as_u16() == c.status
            && answer.error_code() == Some(c.code)
            && answer.json["error"]["type"].as_str() == Some(general_code(c.code))
            && c.field
                .is_none_or(|f| answer.json["error"]["details"]["field"] == f)
            && answer.content_type.starts_with("application/json")
            && answer.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty());
        if !ok {
            failures.push(format!(
                "{}: expected {} {}, got {} {}",
                c.name, c.status, c.code, answer.status, answer.text
            ));
        }
        assert!(
            !answer.status.is_server_error(),
            "{}: server error {}",
            c.name,
            answer.text
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "a bad request changed the database"
    );
    // The run's tests failed, so a rule may have annotated it; no request did.
    let store = &app.server.state.store;
    let history = store.annotation_history(run).await.expect("read");
    assert!(
        history
            .iter()
            .all(|entry| entry.source == flywheel::store::AnnotationSource::Rule),
        "a bad request annotated the run: {history:?}"
    );
    let queued =
        flywheel::store::testing::execute_raw(&db.url, "UPDATE grading_runs SET error = error")
            .await
            .expect("count grading runs");
    assert_eq!(queued, 0, "a bad request queued a grading run");

    crate::bad_requests_runs::assert_no_outcome_stored(&app).await;

    // The service still answers after all of them.
    let health = app.send(&Req::get("/healthz", None)).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_requests_on_sqlite() {
    bad_requests_are_refused_with_their_code_and_change_nothing(Backend::Sqlite).await;
}

#[tokio::test]
async fn bad_requests_on_postgres() {
    bad_requests_are_refused_with_their_code_and_change_nothing(Backend::Postgres).await;
}

#[tokio::test]
async fn text_that_only_looks_like_a_nul_is_stored_and_read_back_exactly() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let app = TestApp::start(&db).await;
        // The six characters `\u0000` (an escaped backslash, then `u0000`), and other control
        // characters, are text like any other.
        let content = "Plan {{task}}: the literal \\u0000 and a tab\t and \u{1}.";
        let created = app
            .send(
                &Req::post("/api/prompts/planner/versions", Some(ADMIN_TOKEN))
                    .json(serde_json::json!({ "content": content }).to_string()),
            )
            .await;
        assert_eq!(
            created.status.as_u16(),
            201,
            "{backend:?}: {}",
            created.text
        );
        let version = created.json["version"].as_i64().expect("version number");
        let read = app
            .get_ok(
                &format!("/api/prompts/planner/versions/{version}"),
                READ_TOKEN,
            )
            .await;
        assert_eq!(read["content"], content, "{backend:?}");
    }
}

#[tokio::test]
async fn template_errors_report_line_and_column() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;
    let body = serde_json::json!({ "content": "line one\nline two\nthen {{bad name}} here" });
    let answer = app
        .post_admin("/api/prompts/coder/versions", Some(body))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text
    );
    assert_eq!(answer.error_code(), Some("invalid_template"));
    let details = &answer.json["error"]["details"];
    assert_eq!(details["line"], 3, "{}", answer.text);
    assert!(
        details["column"].as_u64().is_some_and(|c| c >= 6),
        "{}",
        answer.text
    );
    let message = answer.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("line 3"), "{message}");
}

/// The general `type` the API answers beside a specific code: the code the API answered before
/// codes became specific.
fn general_code(code: &str) -> &str {
    match code {
        "route_not_found" => code,
        c if c.ends_with("_not_found") => "not_found",
        "nothing_to_roll_back" => "invalid_state",
        c => c,
    }
}
