//! The bad requests of the dataset routes: each a 4xx with its code, none storing anything (the
//! table's snapshot holds every dataset).

use flywheel_e2e::{ADMIN_TOKEN, AGENT_TOKEN, ANNOTATOR_TOKEN, READ_TOKEN, Req};
use reqwest::Method;

use super::{Case, case};

/// Bad requests of `/api/datasets…`.
pub(super) fn cases() -> Vec<Case> {
    let annotator = Some(ANNOTATOR_TOKEN);
    let read = Some(READ_TOKEN);
    let create = |body: &str| Req::post("/api/datasets", annotator).json(body);
    let nul_line =
        r#"{"promptId":"planner","name":"nul","jsonl":"{\"item\":{\"q\":\"a\\u0000b\"}}"}"#;
    vec![
        case(
            "dataset: unknown field",
            create(r#"{"promptId":"planner","name":"d","rows":[{"item":{}}],"colour":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "dataset: missing name",
            create(r#"{"promptId":"planner","rows":[{"item":{}}]}"#),
            422,
            "invalid_body",
        ),
        case(
            "dataset: unknown filter field",
            create(r#"{"promptId":"planner","name":"d","filter":{"since":"yesterday"}}"#),
            422,
            "invalid_body",
        ),
        case(
            "dataset: name with upper case and space",
            create(r#"{"promptId":"planner","name":"Bad Name","rows":[{"item":{}}]}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: two sources",
            create(r#"{"promptId":"planner","name":"d","filter":{},"rows":[{"item":{}}]}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: no source",
            create(r#"{"promptId":"planner","name":"d"}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: no rows",
            create(r#"{"promptId":"planner","name":"d","rows":[]}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: only blank lines",
            create(r#"{"promptId":"planner","name":"d","jsonl":"\n\n"}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: validation fraction above 1",
            create(
                r#"{"promptId":"planner","name":"d","rows":[{"item":{}}],"validationFraction":1.5}"#,
            ),
            422,
            "invalid_input",
        ),
        case(
            "dataset: filter matching no run",
            create(r#"{"promptId":"planner","name":"d","filter":{"from":"2099-01-01T00:00:00Z"}}"#),
            422,
            "invalid_input",
        ),
        case(
            "dataset: unknown prompt",
            create(r#"{"promptId":"ghost","name":"d","rows":[{"item":{}}]}"#),
            404,
            "prompt_not_found",
        ),
        case(
            "dataset: unknown version in the filter",
            create(r#"{"promptId":"planner","name":"d","filter":{"version":99}}"#),
            404,
            "version_not_found",
        ),
        case(
            "dataset: a row's item is not an object",
            create(r#"{"promptId":"planner","name":"d","rows":[{"item":{}},{"item":[1]}]}"#),
            422,
            "invalid_dataset_row",
        )
        .field("rows[1].item"),
        case(
            "dataset: a row with an unknown field",
            create(r#"{"promptId":"planner","name":"d","rows":[{"item":{},"label":"x"}]}"#),
            422,
            "invalid_dataset_row",
        )
        .field("rows[0].label"),
        case(
            "dataset: a JSONL line that is not JSON",
            create(r#"{"promptId":"planner","name":"d","jsonl":"{\"item\":{}}\n{oops"}"#),
            422,
            "invalid_dataset_row",
        )
        .field("jsonl:2"),
        case(
            "dataset: a JSONL line whose sample is a string",
            create(r#"{"promptId":"planner","name":"d","jsonl":"{\"item\":{},\"sample\":\"x\"}"}"#),
            422,
            "invalid_dataset_row",
        )
        .field("jsonl:1.sample"),
        case(
            "dataset: a JSONL line holding a NUL",
            create(nul_line),
            422,
            "invalid_dataset_row",
        )
        .field("jsonl:1"),
        case(
            "dataset: created with the agent role",
            Req::post("/api/datasets", Some(AGENT_TOKEN))
                .json(r#"{"promptId":"planner","name":"d","rows":[{"item":{}}]}"#),
            403,
            "forbidden",
        ),
        case(
            "dataset: deleted with the annotator role",
            Req::new(Method::DELETE, "/api/datasets/ghost", annotator),
            403,
            "forbidden",
        ),
        case(
            "dataset: delete an unknown one",
            Req::new(Method::DELETE, "/api/datasets/ghost", Some(ADMIN_TOKEN)),
            404,
            "dataset_not_found",
        ),
        case(
            "dataset: show an unknown one",
            Req::get("/api/datasets/ghost", read),
            404,
            "dataset_not_found",
        ),
        case(
            "dataset: rows of an unknown one",
            Req::get("/api/datasets/ghost/rows", read),
            404,
            "dataset_not_found",
        ),
        case(
            "dataset: rows with limit 0",
            Req::get("/api/datasets/ghost/rows?limit=0", read),
            400,
            "invalid_query",
        ),
        case(
            "dataset: rows of an unknown split",
            Req::get("/api/datasets/ghost/rows?split=test", read),
            400,
            "invalid_query",
        ),
        case(
            "dataset: rows with a foreign cursor",
            Req::get("/api/datasets/ghost/rows?cursor=r0192", read),
            400,
            "invalid_cursor",
        ),
        case(
            "dataset: list of an unknown prompt",
            Req::get("/api/datasets?promptId=ghost", read),
            404,
            "prompt_not_found",
        ),
        case(
            "dataset: list with an unknown parameter",
            Req::get("/api/datasets?colour=red", read),
            400,
            "invalid_query",
        ),
    ]
}
