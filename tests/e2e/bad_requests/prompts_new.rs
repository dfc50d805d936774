//! The bad requests of creating and importing prompts: each a 4xx with its code, none storing
//! anything (the table's snapshot holds every prompt with its versions).

use flywheel_e2e::{ADMIN_TOKEN, ANNOTATOR_TOKEN, Req};

use super::{Case, case};

/// Bad requests of `POST /api/prompts` and `POST /api/prompts/{id}/import`.
pub(super) fn cases() -> Vec<Case> {
    let admin = Some(ADMIN_TOKEN);
    let create = |body: &str| Req::post("/api/prompts", admin).json(body);
    let import = |body: &str| Req::post("/api/prompts/planner/import", admin).json(body);
    vec![
        case(
            "new prompt: an existing id",
            create(r#"{"id":"planner","content":"Plan {{task_title}}"}"#),
            409,
            "conflict",
        ),
        case(
            "new prompt: id with upper case",
            create(r#"{"id":"Triage","content":"x"}"#),
            422,
            "invalid_input",
        ),
        case(
            "new prompt: undeclared variable",
            create(r#"{"id":"triage","variables":["a"],"content":"{{a}} {{b}}"}"#),
            422,
            "invalid_input",
        ),
        case(
            "new prompt: a failure mode listed twice",
            create(
                r#"{"id":"triage","content":"x","failureModes":[{"code":"a","description":"d"},{"code":"a","description":"e"}]}"#,
            ),
            422,
            "invalid_input",
        ),
        case(
            "new prompt: template does not parse",
            create(r#"{"id":"triage","content":"{{oops"}"#),
            422,
            "invalid_template",
        ),
        case(
            "new prompt: annotator role",
            Req::post("/api/prompts", Some(ANNOTATOR_TOKEN))
                .json(r#"{"id":"triage","content":"x"}"#),
            403,
            "forbidden",
        ),
        case(
            "import: variables differ",
            import(r#"{"content":"Plan {{nothing_like_it}}"}"#),
            422,
            "variables_changed",
        ),
        case(
            "import: template does not parse",
            import(r#"{"content":"Plan {{oops"}"#),
            422,
            "invalid_template",
        ),
        case(
            "import: empty content",
            import(r#"{"content":"   ","allowVariableChanges":true}"#),
            422,
            "invalid_input",
        ),
        case(
            "import: unknown field",
            import(r#"{"content":"x","parentVersion":1}"#),
            422,
            "invalid_body",
        ),
        case(
            "import: unknown prompt",
            Req::post("/api/prompts/ghost/import", admin).json(r#"{"content":"x"}"#),
            404,
            "prompt_not_found",
        ),
    ]
}
