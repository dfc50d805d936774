//! The bad requests of the grading-run routes: each a 4xx with its code, and no job queued (the
//! table's snapshot holds every grading run).

use flywheel_e2e::{ADMIN_TOKEN, Req};
use uuid::Uuid;

use super::{Case, case};

/// Bad requests of `/api/grading-runs…`.
pub(super) fn cases() -> Vec<Case> {
    let admin = Some(ADMIN_TOKEN);
    let start = |body: &str| Req::post("/api/grading-runs", admin).json(body);
    let ghost = Uuid::now_v7();
    let many_ids: Vec<String> = (0..1001)
        .map(|_| format!("\"{}\"", Uuid::now_v7()))
        .collect();
    let too_many = format!(
        r#"{{"promptId":"planner","filter":{{"ids":[{}]}}}}"#,
        many_ids.join(",")
    );
    vec![
        case(
            "grading run: unknown field",
            start(r#"{"promptId":"planner","colour":"red"}"#),
            422,
            "invalid_body",
        ),
        case(
            "grading run: unknown filter field",
            start(r#"{"promptId":"planner","filter":{"since":"yesterday"}}"#),
            422,
            "invalid_body",
        ),
        case(
            "grading run: missing prompt",
            start(r#"{"graders":["files_match"]}"#),
            422,
            "invalid_body",
        ),
        case(
            "grading run: unknown prompt",
            start(r#"{"promptId":"ghost"}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "grading run: unknown version",
            start(r#"{"promptId":"planner","version":99}"#),
            404,
            "version_not_found",
        ),
        case(
            "grading run: version zero",
            start(r#"{"promptId":"planner","version":0}"#),
            422,
            "invalid_input",
        ),
        case(
            "grading run: unknown grader",
            start(r#"{"promptId":"planner","graders":["no_such_grader"]}"#),
            404,
            "grader_definition_not_found",
        ),
        case(
            "grading run: empty grader list",
            start(r#"{"promptId":"planner","graders":[]}"#),
            422,
            "invalid_input",
        ),
        case(
            "grading run: rating neither good nor bad",
            start(r#"{"promptId":"planner","filter":{"rating":"meh"}}"#),
            422,
            "invalid_input",
        ),
        case(
            "grading run: from after to",
            start(
                r#"{"promptId":"planner","filter":{"from":"2026-02-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}}"#,
            ),
            422,
            "invalid_input",
        ),
        case(
            "grading run: a date that is not one",
            start(r#"{"promptId":"planner","filter":{"from":"last week"}}"#),
            422,
            "invalid_body",
        ),
        case(
            "grading run: 1001 ids",
            Req::post("/api/grading-runs", admin).json(too_many),
            422,
            "invalid_input",
        ),
        case(
            "grading run: token budget zero",
            start(r#"{"promptId":"planner","tokenBudget":0}"#),
            422,
            "invalid_input",
        ),
        case(
            "grading run: malformed id",
            Req::get("/api/grading-runs/not-a-uuid", admin),
            400,
            "invalid_path",
        ),
        case(
            "grading run: unknown id",
            Req::get(format!("/api/grading-runs/{ghost}"), admin),
            404,
            "grading_run_not_found",
        ),
        case(
            "grading run: cancel an unknown id",
            Req::post(format!("/api/grading-runs/{ghost}/cancel"), admin),
            404,
            "grading_run_not_found",
        ),
    ]
}
