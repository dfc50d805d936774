//! The bad requests of `POST /api/prompts/{id}/export`: each a 4xx with its code, none writing
//! anything (an export only reads; the table's snapshot proves nothing changed either).

use flywheel_e2e::{ANNOTATOR_TOKEN, READ_TOKEN, Req};

use super::{Case, case};

/// Bad requests of the export route.
pub(super) fn cases() -> Vec<Case> {
    let annotator = Some(ANNOTATOR_TOKEN);
    let export = |body: &str| Req::post("/api/prompts/planner/export", annotator).json(body);
    vec![
        case(
            "export: unknown format",
            export(r#"{"format":"xlsx"}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: missing format",
            export(r#"{"minRows":0}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: unknown field",
            export(r#"{"format":"csv","minRows":0,"colour":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: snake_case field",
            export(r#"{"format":"csv","min_rows":0}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: bad date",
            export(r#"{"format":"csv","minRows":0,"from":"yesterday"}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: negative minRows",
            export(r#"{"format":"csv","minRows":-1}"#),
            422,
            "invalid_body",
        ),
        case(
            "export: from after to",
            export(
                r#"{"format":"csv","minRows":0,"from":"2026-02-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}"#,
            ),
            422,
            "invalid_input",
        ),
        case(
            "export: run filter with a dataset",
            export(r#"{"format":"csv","minRows":0,"dataset":"golden","rating":"good"}"#),
            422,
            "invalid_input",
        ),
        case(
            "export: unknown dataset",
            export(r#"{"format":"openai-jsonl","minRows":0,"dataset":"no-such-set"}"#),
            404,
            "dataset_not_found",
        ),
        case(
            "export: unknown prompt version",
            export(r#"{"format":"openai-jsonl","minRows":0,"version":999}"#),
            404,
            "version_not_found",
        ),
        case(
            "export: unknown prompt",
            Req::post("/api/prompts/ghost/export", annotator)
                .json(r#"{"format":"csv","minRows":0}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "export: read role",
            Req::post("/api/prompts/planner/export", Some(READ_TOKEN))
                .json(r#"{"format":"csv","minRows":0}"#),
            403,
            "forbidden",
        ),
    ]
}
