//! The bad requests of the annotation routes: each a 4xx with its code, none storing anything
//! (the table's test checks the run stays unannotated).

use flywheel_e2e::{ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, READ_TOKEN, Req};
use reqwest::Method;
use uuid::Uuid;

use super::{Case, case};

/// Bad requests of the annotation routes.
pub(super) fn cases(run: Uuid) -> Vec<Case> {
    let admin = Some(ADMIN_TOKEN);
    let annotator = Some(ANNOTATOR_TOKEN);
    let read = Some(READ_TOKEN);
    let annotation = format!("/api/runs/{run}/annotation");
    let ghost = Uuid::now_v7();
    let put = |body: &str| Req::new(Method::PUT, annotation.clone(), annotator).json(body);
    let add_mode = |body: &str| Req::post("/api/prompts/planner/failure-modes", admin).json(body);
    let long_feedback = format!(
        r#"{{"rating":"bad","outputFeedback":"{}"}}"#,
        "x".repeat(20_001)
    );
    vec![
        case(
            "annotation: unknown rating",
            put(r#"{"rating":"meh"}"#),
            422,
            "invalid_body",
        ),
        case(
            "annotation: rating of wrong type",
            put(r#"{"rating":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "annotation: missing rating",
            put(r#"{"failureMode":"wrong_files"}"#),
            422,
            "invalid_body",
        ),
        case(
            "annotation: unknown field",
            put(r#"{"rating":"bad","failure_mode":"wrong_files"}"#),
            422,
            "invalid_body",
        ),
        case(
            "annotation: failure mode of another prompt",
            put(r#"{"rating":"bad","failureMode":"syntax_error"}"#),
            422,
            "invalid_failure_mode",
        ),
        case(
            "annotation: empty failure mode",
            put(r#"{"rating":"bad","failureMode":""}"#),
            422,
            "invalid_failure_mode",
        ),
        case(
            "annotation: NUL in feedback",
            put(r#"{"rating":"bad","outputFeedback":"a\u0000b"}"#),
            422,
            "invalid_text",
        )
        .field("outputFeedback"),
        case(
            "annotation: feedback too long",
            put(&long_feedback),
            422,
            "invalid_input",
        ),
        case(
            "annotation: unknown run",
            Req::new(
                Method::PUT,
                format!("/api/runs/{ghost}/annotation"),
                annotator,
            )
            .json(r#"{"rating":"bad"}"#),
            404,
            "run_not_found",
        ),
        case(
            "annotation: malformed run id",
            Req::new(Method::PUT, "/api/runs/not-a-uuid/annotation", annotator)
                .json(r#"{"rating":"bad"}"#),
            400,
            "invalid_path",
        ),
        case(
            "annotation: without a content type",
            Req::new(Method::PUT, annotation.clone(), annotator).body(None, r#"{"rating":"bad"}"#),
            415,
            "unsupported_media_type",
        ),
        case(
            "annotation: agent role",
            Req::new(Method::PUT, annotation.clone(), Some(AGENT_TOKEN))
                .json(r#"{"rating":"bad"}"#),
            403,
            "forbidden",
        ),
        case(
            "clear: unknown run",
            Req::new(
                Method::DELETE,
                format!("/api/runs/{ghost}/annotation"),
                annotator,
            ),
            404,
            "run_not_found",
        ),
        case(
            "history: unknown run",
            Req::get(format!("/api/runs/{ghost}/annotations"), read),
            404,
            "run_not_found",
        ),
        case(
            "history: malformed run id",
            Req::get("/api/runs/12345/annotations", read),
            400,
            "invalid_path",
        ),
        case(
            "failure mode: bad code format",
            add_mode(r#"{"code":"Bad-Code","description":"d"}"#),
            422,
            "invalid_input",
        ),
        case(
            "failure mode: duplicate code",
            add_mode(r#"{"code":"wrong_files","description":"again"}"#),
            409,
            "conflict",
        ),
        case(
            "failure mode: missing description",
            add_mode(r#"{"code":"new_code"}"#),
            422,
            "invalid_body",
        ),
        case(
            "failure mode: blank description",
            add_mode(r#"{"code":"new_code","description":"  "}"#),
            422,
            "invalid_input",
        ),
        case(
            "failure mode: unknown field",
            add_mode(r#"{"code":"new_code","description":"d","prompt":"planner"}"#),
            422,
            "invalid_body",
        ),
        case(
            "failure mode: unknown prompt",
            Req::post("/api/prompts/ghost/failure-modes", admin)
                .json(r#"{"code":"new_code","description":"d"}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "failure mode: annotator role",
            Req::post("/api/prompts/planner/failure-modes", annotator)
                .json(r#"{"code":"new_code","description":"d"}"#),
            403,
            "forbidden",
        ),
        case(
            "counts: version not a number",
            Req::get(
                "/api/prompts/planner/failure-modes/counts?version=abc",
                read,
            ),
            400,
            "invalid_query",
        ),
        case(
            "counts: unknown query parameter",
            Req::get("/api/prompts/planner/failure-modes/counts?versoin=1", read),
            400,
            "invalid_query",
        ),
        case(
            "counts: unknown version",
            Req::get("/api/prompts/planner/failure-modes/counts?version=99", read),
            404,
            "version_not_found",
        ),
        case(
            "counts: unknown prompt",
            Req::get("/api/prompts/ghost/failure-modes/counts", read),
            404,
            "prompt_not_found",
        ),
        case(
            "queue: foreign cursor",
            Req::get("/api/prompts/planner/annotation-queue?cursor=zzz", read),
            400,
            "invalid_cursor",
        ),
        case(
            "queue: limit 0",
            Req::get("/api/prompts/planner/annotation-queue?limit=0", read),
            400,
            "invalid_query",
        ),
        case(
            "queue: limit over 500",
            Req::get("/api/prompts/planner/annotation-queue?limit=501", read),
            400,
            "invalid_query",
        ),
        case(
            "queue: negative limit",
            Req::get("/api/prompts/planner/annotation-queue?limit=-1", read),
            400,
            "invalid_query",
        ),
        case(
            "queue: unknown prompt",
            Req::get("/api/prompts/ghost/annotation-queue", read),
            404,
            "prompt_not_found",
        ),
    ]
}
