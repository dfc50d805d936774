//! Stored grader definitions on the real service: the per-agent seeds are there after the first
//! start and pass the real components' own validation; a definition can be created, replaced,
//! listed and deleted; and a table of bad definitions is refused with its code and the field it
//! names, never writing anything.

use std::time::Duration;

use flywheel::graders::Definition;
use flywheel_e2e::{ADMIN_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::Method;
use serde_json::{Value, json};

const DEFINITIONS: &str = "/api/graders/definitions";

/// The built-in components the seeds and cases use.
const NEEDED: [&str; 4] = [
    "diff-valid",
    "files-match",
    "string-check",
    "text-similarity",
];

/// Waits (bounded) until the built-in components the tests use are loaded, so validation sees
/// them, and the registry has tried every built-in, so a definition naming a missing component
/// is refused as such rather than answered "still loading".
async fn wait_for_builtins(app: &TestApp) {
    let mut listing = Value::Null;
    for _ in 0..1800 {
        listing = app.get_ok("/api/graders", READ_TOKEN).await;
        let loaded = |name: &str| {
            listing["components"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["name"] == name && c["source"] == "builtin" && c["loadError"].is_null()
                })
            })
        };
        if NEEDED.iter().all(|name| loaded(name)) && listing["builtinsLoaded"] == true {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the built-in graders did not load within 180 s: {listing}");
}

/// Every stored definition, read through the store (not the API under test).
async fn stored(app: &TestApp) -> Value {
    let all = app
        .server
        .state
        .registry
        .store()
        .list_graders(None)
        .await
        .expect("list graders");
    serde_json::to_value(all).expect("serialisable")
}

fn put(body: Value) -> Req {
    Req::post(DEFINITIONS, Some(ADMIN_TOKEN)).json(body.to_string())
}

fn body(prompt: &str, name: &str, definition: Value) -> Value {
    json!({ "promptId": prompt, "name": name, "definition": definition })
}

fn check(operation: &str) -> Value {
    json!({
        "type": "string_check", "name": "c", "operation": operation,
        "input": "{{sample.output_text}}", "reference": "{{item.label}}",
    })
}

async fn seeds_are_stored_and_valid_and_definitions_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    wait_for_builtins(&app).await;

    // The seeds, per agent, listed by both routes.
    let listing = app.get_ok("/api/graders", READ_TOKEN).await;
    let seeded: Vec<(String, String)> = listing["storedDefinitions"]
        .as_array()
        .expect("storedDefinitions")
        .iter()
        .map(|d| {
            (
                d["promptId"].as_str().unwrap_or_default().to_owned(),
                d["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("coder", "code_quality"),
        ("coder", "diff_valid"),
        ("fixer", "same_error_repeated"),
        ("planner", "files_match"),
        ("planner", "plan_completeness"),
        ("reviewer", "verdict_agrees_with_merge"),
    ]
    .map(|(p, n)| (p.to_owned(), n.to_owned()));
    assert_eq!(seeded, expected, "{listing}");
    assert!(listing["components"].is_array() && listing["definitions"].is_array());
    let definitions = app.get_ok(DEFINITIONS, READ_TOKEN).await;
    assert_eq!(definitions, listing["storedDefinitions"]);

    // Each seed passes the real components' own config validation.
    let registry = app.server.state.graders.clone();
    for seed in definitions.as_array().expect("array") {
        let parsed = Definition::parse(&seed["definition"]).expect("a seed parses");
        parsed
            .validate(&registry)
            .await
            .unwrap_or_else(|e| panic!("seed {} is invalid: {e}", seed["name"]));
        assert_eq!(seed["createdBy"], "seed");
        assert_eq!(seed["enabled"], true);
    }

    // Create, replace, filter, delete.
    let created = app.send(&put(body("planner", "exact", check("eq")))).await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    assert_eq!(created.json["definition"], check("eq"));
    assert_eq!(created.json["createdBy"], flywheel_e2e::ADMIN_NAME);
    let mut replacement = body("planner", "exact", check("ne"));
    replacement["enabled"] = json!(false);
    let replaced = app.send(&put(replacement)).await;
    assert_eq!(replaced.status.as_u16(), 200, "{}", replaced.text);
    assert_eq!(replaced.json["id"], created.json["id"]);
    assert_eq!(replaced.json["enabled"], false);
    assert_eq!(replaced.json["definition"], check("ne"));

    let multi = json!({
        "type": "multi", "name": "m",
        "graders": {
            "a": check("eq"),
            "f": {"type": "wasm", "component": "files-match", "config": {"pass_threshold": 0.5}},
        },
        "calculate_output": "0.5 * a + 0.5 * f",
    });
    let answer = app.send(&put(body("planner", "combined", multi))).await;
    assert_eq!(answer.status.as_u16(), 201, "{}", answer.text);

    let planner = app
        .get_ok(&format!("{DEFINITIONS}?promptId=planner"), READ_TOKEN)
        .await;
    let names: Vec<&str> = planner
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["combined", "exact", "files_match", "plan_completeness"]
    );
    let fixer = app
        .get_ok(&format!("{DEFINITIONS}?promptId=fixer"), READ_TOKEN)
        .await;
    assert_eq!(fixer.as_array().map(Vec::len), Some(1));

    // Disable and enable a seed; one definition by path.
    let seed_path = format!("{DEFINITIONS}/planner/files_match");
    let disabled = app
        .send(&Req::post(
            format!("{seed_path}/disable"),
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(disabled.status.as_u16(), 200, "{}", disabled.text);
    assert_eq!(disabled.json["enabled"], false);
    let one = app.get_ok(&seed_path, READ_TOKEN).await;
    assert_eq!(one["enabled"], false);
    assert_eq!(one["createdBy"], "seed");
    let enabled = app
        .send(&Req::post(format!("{seed_path}/enable"), Some(ADMIN_TOKEN)))
        .await;
    assert_eq!(enabled.json["enabled"], true, "{}", enabled.text);
    let missing = app
        .send(&Req::post(
            format!("{DEFINITIONS}/planner/nope/enable"),
            Some(ADMIN_TOKEN),
        ))
        .await;
    assert_eq!(missing.status.as_u16(), 404);
    let missing = app
        .send(&Req::get(
            format!("{DEFINITIONS}/planner/nope"),
            Some(READ_TOKEN),
        ))
        .await;
    assert_eq!(missing.error_code(), Some("grader_definition_not_found"));
    assert_eq!(missing.json["error"]["type"], "not_found");

    let path = format!("{DEFINITIONS}/planner/exact");
    let deleted = app
        .send(&Req::new(Method::DELETE, path.clone(), Some(ADMIN_TOKEN)))
        .await;
    assert_eq!(deleted.status.as_u16(), 204, "{}", deleted.text);
    let again = app
        .send(&Req::new(Method::DELETE, path, Some(ADMIN_TOKEN)))
        .await;
    assert_eq!(again.status.as_u16(), 404);
    assert_eq!(again.error_code(), Some("grader_definition_not_found"));
    // Six seeds (four pure, two model graders), plus `combined` left of the two created.
    assert_eq!(stored(&app).await.as_array().map(Vec::len), Some(7));

    // Seeding again (a restart) does not resurrect edits or add rows.
    let before = stored(&app).await;
    flywheel::grading::stored::seed(
        app.server.state.registry.store().as_ref(),
        flywheel::grading::seeds::all_seed_definitions(),
    )
    .await
    .expect("seed again");
    assert_eq!(stored(&app).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grader_definitions_seed_validate_and_round_trip_on_sqlite() {
    seeds_are_stored_and_valid_and_definitions_round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grader_definitions_seed_validate_and_round_trip_on_postgres() {
    seeds_are_stored_and_valid_and_definitions_round_trip(Backend::Postgres).await;
}

/// One bad request: what it sends, the status and code it gets, and (for a refused definition)
/// the field path the answer names and a fragment of its message.
struct Case {
    name: &'static str,
    req: Req,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
    message: &'static str,
}

fn bad(name: &'static str, definition: Value, field: &'static str, message: &'static str) -> Case {
    Case {
        name,
        req: put(body("planner", "bad", definition)),
        status: 422,
        code: "invalid_grader_definition",
        field: Some(field),
        message,
    }
}

fn refused(name: &'static str, req: Req, status: u16, code: &'static str) -> Case {
    Case {
        name,
        req,
        status,
        code,
        field: None,
        message: "",
    }
}

fn cases() -> Vec<Case> {
    let nested = json!({
        "type": "multi", "name": "outer",
        "graders": {"inner": {
            "type": "multi", "name": "i", "graders": {"a": check("eq")}, "calculate_output": "a",
        }},
        "calculate_output": "inner",
    });
    vec![
        bad(
            "unknown type",
            json!({"type": "regex", "name": "x"}),
            "type",
            "unknown grader type",
        ),
        bad(
            "type not a string",
            json!({"type": 5}),
            "type",
            "not a string",
        ),
        bad("missing type", json!({"name": "x"}), "type", "missing"),
        bad(
            "unknown operation",
            check("contains"),
            "operation",
            "contains",
        ),
        bad(
            "operation of the wrong type",
            json!({"type": "string_check", "name": "c", "operation": 1, "input": "a", "reference": "b"}),
            "operation",
            "",
        ),
        bad(
            "missing reference",
            json!({"type": "string_check", "name": "c", "operation": "eq", "input": "a"}),
            ".",
            "reference",
        ),
        bad(
            "unknown field",
            json!({"type": "string_check", "name": "c", "operation": "eq", "input": "a", "reference": "b", "regex": true}),
            "regex",
            "unknown field",
        ),
        bad(
            "unknown similarity metric",
            json!({"type": "text_similarity", "name": "t", "input": "a", "reference": "b", "evaluation_metric": "rouge_9"}),
            "evaluation_metric",
            "rouge_9",
        ),
        bad(
            "multi with a bad formula",
            json!({"type": "multi", "name": "m", "graders": {"a": check("eq")}, "calculate_output": "a + * 2"}),
            "calculate_output",
            "position",
        ),
        bad(
            "multi with an unknown variable",
            json!({"type": "multi", "name": "m", "graders": {"a": check("eq")}, "calculate_output": "a + b"}),
            "calculate_output",
            "position",
        ),
        bad(
            "multi of more sub-graders than the cap",
            json!({
                "type": "multi", "name": "m",
                "graders": (0..=flywheel::graders::definition::MAX_MULTI_GRADERS)
                    .map(|i| (format!("g{i}"), check("eq")))
                    .collect::<serde_json::Map<String, Value>>(),
                "calculate_output": "g0",
            }),
            "graders",
            "has 33 graders; at most 32 are allowed",
        ),
        bad(
            "multi with a bad sub-grader",
            json!({"type": "multi", "name": "m", "graders": {"a": check("nope")}, "calculate_output": "a"}),
            "graders.a.operation",
            "nope",
        ),
        bad(
            "nested multi",
            nested,
            "graders.inner.type",
            "cannot contain another multi",
        ),
        bad(
            "multi without graders",
            json!({"type": "multi", "name": "m", "graders": {}, "calculate_output": "1"}),
            "graders",
            "at least one",
        ),
        bad(
            "unknown component",
            json!({"type": "wasm", "component": "no-such-grader", "config": {}}),
            "component",
            "no-such-grader",
        ),
        bad(
            "unknown component inside multi",
            json!({"type": "multi", "name": "m", "graders": {"w": {"type": "wasm", "component": "ghost"}}, "calculate_output": "w"}),
            "graders.w.component",
            "ghost",
        ),
        bad(
            "empty component name",
            json!({"type": "wasm", "component": ""}),
            "component",
            "must name",
        ),
        bad(
            "config refused by the component itself",
            json!({"type": "wasm", "component": "files-match", "config": {"threshold": 2}}),
            "config",
            "threshold",
        ),
        bad(
            "bad template refused by diff-valid",
            json!({"type": "wasm", "component": "diff-valid", "config": {"input": "{{foo.bar}}"}}),
            "config",
            "",
        ),
        bad(
            "definition not an object",
            json!("string_check"),
            ".",
            "JSON object",
        ),
        bad(
            "definition an array",
            json!([check("eq")]),
            ".",
            "JSON object",
        ),
        refused(
            "unknown prompt",
            put(body("ghost", "x", check("eq"))),
            404,
            "prompt_not_found",
        ),
        refused(
            "name with a slash",
            put(body("planner", "a/b", check("eq"))),
            422,
            "invalid_input",
        ),
        refused(
            "empty name",
            put(body("planner", "", check("eq"))),
            422,
            "invalid_input",
        ),
        refused(
            "name over 100 characters",
            put(body("planner", &"n".repeat(101), check("eq"))),
            422,
            "invalid_input",
        ),
        refused(
            "body without definition",
            put(json!({"promptId": "planner", "name": "x"})),
            422,
            "invalid_body",
        ),
        refused(
            "body with an unknown field",
            put(
                json!({"promptId": "planner", "name": "x", "definition": check("eq"), "prompt": 1}),
            ),
            422,
            "invalid_body",
        ),
        refused(
            "enabled of the wrong type",
            put(
                json!({"promptId": "planner", "name": "x", "definition": check("eq"), "enabled": "yes"}),
            ),
            422,
            "invalid_body",
        ),
        refused(
            "malformed JSON",
            Req::post(DEFINITIONS, Some(ADMIN_TOKEN)).json("{\"promptId\":"),
            400,
            "malformed_json",
        ),
        refused(
            "create with read role",
            Req::post(DEFINITIONS, Some(READ_TOKEN))
                .json(body("planner", "x", check("eq")).to_string()),
            403,
            "forbidden",
        ),
        refused(
            "delete with read role",
            Req::new(
                Method::DELETE,
                format!("{DEFINITIONS}/planner/files_match"),
                Some(READ_TOKEN),
            ),
            403,
            "forbidden",
        ),
        refused(
            "delete of an unknown definition",
            Req::new(
                Method::DELETE,
                format!("{DEFINITIONS}/planner/nope"),
                Some(ADMIN_TOKEN),
            ),
            404,
            "grader_definition_not_found",
        ),
        refused(
            "delete under an unknown prompt",
            Req::new(
                Method::DELETE,
                format!("{DEFINITIONS}/ghost/files_match"),
                Some(ADMIN_TOKEN),
            ),
            404,
            "grader_definition_not_found",
        ),
        refused(
            "disable with read role",
            Req::post(
                format!("{DEFINITIONS}/planner/files_match/disable"),
                Some(READ_TOKEN),
            ),
            403,
            "forbidden",
        ),
        refused(
            "disable of an unknown definition",
            Req::post(
                format!("{DEFINITIONS}/coder/nope/disable"),
                Some(ADMIN_TOKEN),
            ),
            404,
            "grader_definition_not_found",
        ),
        refused(
            "list of an unknown prompt",
            Req::get(format!("{DEFINITIONS}?promptId=ghost"), Some(READ_TOKEN)),
            404,
            "prompt_not_found",
        ),
        refused(
            "list with a snake_case query",
            Req::get(format!("{DEFINITIONS}?prompt_id=planner"), Some(READ_TOKEN)),
            400,
            "invalid_query",
        ),
    ]
}

async fn bad_definitions_are_refused_naming_the_field_and_change_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    wait_for_builtins(&app).await;
    let before = stored(&app).await;
    assert_eq!(before.as_array().map(Vec::len), Some(6), "the seeds");
    let mut failures = Vec::new();
    for c in cases() {
        let answer = app.send(&c.req).await;
        assert!(
            !answer.status.is_server_error(),
            "{}: server error {}",
            c.name,
            answer.text
        );
        let message = answer.json["error"]["message"].as_str().unwrap_or_default();
        let field_ok = match c.field {
            Some(field) => answer.json["error"]["details"]["field"] == field,
            None => true,
        };
        let ok = answer.status.as_u16() == c.status
            && answer.error_code() == Some(c.code)
            && field_ok
            && !message.is_empty()
            && message.contains(c.message);
        if !ok {
            failures.push(format!(
                "{}: expected {} {} field {:?} message containing {:?}, got {} {}",
                c.name, c.status, c.code, c.field, c.message, answer.status, answer.text
            ));
        }
        assert_eq!(
            stored(&app).await,
            before,
            "{}: a refused request changed the stored definitions",
            c.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grader_definitions_on_sqlite() {
    bad_definitions_are_refused_naming_the_field_and_change_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grader_definitions_on_postgres() {
    bad_definitions_are_refused_naming_the_field_and_change_nothing(Backend::Postgres).await;
}
