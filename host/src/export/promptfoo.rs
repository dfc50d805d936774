//! The `promptfoo` export format: a promptfoo config (JSON, which promptfoo reads as YAML) that
//! runs the prompt over the exported rows and checks each output with the prompt's graders that
//! have a promptfoo assertion of the same meaning.
//!
//! # Shape
//!
//! ```json
//! {"description": "...", "prompts": [{"id": "...", "label": "...", "raw": "<template>"}],
//!  "defaultTest": {"assert": [...]},
//!  "metadata": {"flywheel": {"prompt": "...", "version": 3, "notExported": [...]}},
//!  "tests": [{"description": "...", "vars": {...}, "providerOutput": "...", "metadata": {...}}, ...]}
//! ```
//!
//! - `prompts`: the prompt version's template, its `{{name}}` placeholders kept (promptfoo
//!   renders with Nunjucks, whose `{{ name }}` is the same), and what Nunjucks would read
//!   differently escaped: `\{{`/`\}}` (Flywheel's literal braces), `{%` and `{#`.
//! - each row is a test: `vars` is the row's `item` (input variables, outcome, annotation: what
//!   the graders read as `{{item.*}}`), `providerOutput` the recorded output (promptfoo grades
//!   it without calling a model; remove it to run the prompt again).
//! - `defaultTest.assert`: one assertion per enabled grader that maps ([`assertion`]), with
//!   `{{item.x}}` references rewritten to the test's `{{x}}`. A grader that does not map is
//!   listed in `metadata.flywheel.notExported` with the reason, never left out silently.
//!
//! The config is checked against promptfoo's published config schema, pinned in
//! `tests/e2e/fixtures/promptfoo/`, by the tests here and `tests/e2e/export_promptfoo.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::store::GraderDefinition;

/// A grader left out of an export, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotExported {
    /// The grader's name.
    pub grader: String,
    /// Its definition's `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Why it has no equivalent.
    pub reason: String,
}

impl NotExported {
    fn new(grader: &GraderDefinition, reason: impl Into<String>) -> NotExported {
        NotExported {
            grader: grader.name.clone(),
            kind: grader
                .definition
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
            reason: reason.into(),
        }
    }
}

/// The parts of a config written before and after the tests.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Everything up to and including `"tests":[`.
    pub head: Value,
    /// Graders that did not map.
    pub not_exported: Vec<NotExported>,
}

/// Builds the frame of the config for `prompt` version `version` with its `template`, mapping
/// `graders` onto assertions.
pub fn frame(prompt: &str, version: i64, template: &str, graders: &[GraderDefinition]) -> Frame {
    let mut asserts = Vec::new();
    let mut not_exported = Vec::new();
    for grader in graders {
        if !grader.enabled {
            not_exported.push(NotExported::new(grader, "disabled in Flywheel"));
            continue;
        }
        match assertion(&grader.definition) {
            Ok(mut assert) => {
                assert.insert("metric".to_owned(), Value::String(grader.name.clone()));
                asserts.push(Value::Object(assert));
            }
            Err(reason) => not_exported.push(NotExported::new(grader, reason)),
        }
    }
    let head = json!({
        "description": format!("Flywheel export of prompt {prompt}, version {version}"),
        "prompts": [{
            "id": format!("flywheel:{prompt}:v{version}"),
            "label": format!("{prompt} v{version}"),
            "raw": nunjucks_template(template),
        }],
        "defaultTest": {"assert": asserts},
        "metadata": {"flywheel": {
            "prompt": prompt,
            "version": version,
            "notExported": not_exported,
        }},
    });
    Frame { head, not_exported }
}

/// One test: the row's `item` as vars, its recorded output as `providerOutput`.
pub fn test_case(
    description: String,
    item: &Map<String, Value>,
    sample: Option<&Map<String, Value>>,
    metadata: Map<String, Value>,
) -> Value {
    let mut test = Map::new();
    test.insert("description".to_owned(), Value::String(description));
    test.insert("vars".to_owned(), Value::Object(item.clone()));
    if let Some(Value::String(output)) = sample.and_then(|s| s.get("output_text")) {
        test.insert("providerOutput".to_owned(), Value::String(output.clone()));
    }
    test.insert("metadata".to_owned(), Value::Object(metadata));
    Value::Object(test)
}

/// The promptfoo assertion of an OpenAI grader definition, or why there is none. Only graders
/// that check the output (`{{sample.output_text}}`) against a constant or an item field map:
/// `string_check` (`eq` → `equals`, `ne` → `not-equals`, `like` → `contains`, `ilike` →
/// `icontains`, which are OpenAI's documented meanings) and `text_similarity` with `bleu`,
/// `gleu`, `meteor` (same metric, `pass_threshold` as `threshold`) or `cosine` (`similar`).
pub fn assertion(definition: &Value) -> Result<Map<String, Value>, String> {
    let kind = definition
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let field = |name: &str| definition.get(name).and_then(Value::as_str);
    let checks_output = || field("input").is_some_and(is_output_text);
    let mut assert = Map::new();
    match kind {
        "string_check" => {
            if !checks_output() {
                return Err("its input is not {{sample.output_text}}; promptfoo assertions check the output".to_owned());
            }
            let op = match field("operation") {
                Some("eq") => "equals",
                Some("ne") => "not-equals",
                Some("like") => "contains",
                Some("ilike") => "icontains",
                other => return Err(format!("operation {other:?} has no promptfoo assertion")),
            };
            assert.insert("type".to_owned(), op.into());
            assert.insert(
                "value".to_owned(),
                item_reference(field("reference").unwrap_or_default())?.into(),
            );
        }
        "text_similarity" => {
            if !checks_output() {
                return Err("its input is not {{sample.output_text}}; promptfoo assertions check the output".to_owned());
            }
            let metric = field("evaluation_metric").unwrap_or_default();
            let op = match metric {
                "bleu" | "gleu" | "meteor" => metric,
                "cosine" => "similar",
                other => {
                    return Err(format!(
                        "no promptfoo assertion computes {other} as OpenAI's text_similarity does"
                    ));
                }
            };
            assert.insert("type".to_owned(), op.into());
            assert.insert(
                "value".to_owned(),
                item_reference(field("reference").unwrap_or_default())?.into(),
            );
            if let Some(threshold) = definition.get("pass_threshold").and_then(Value::as_f64) {
                assert.insert("threshold".to_owned(), threshold.into());
            }
        }
        "python" => {
            return Err("a python grader's grade(sample, item) has no promptfoo equivalent with the same contract (promptfoo's python assertion takes (output, context))".to_owned());
        }
        "score_model" | "label_model" => {
            return Err("a model grader scores with its own prompt and range; promptfoo's llm-rubric grades pass/fail with promptfoo's rubric prompt, which is not the same grader".to_owned());
        }
        "multi" => {
            return Err("promptfoo has no assertion combining scores by a formula".to_owned());
        }
        "wasm" => {
            return Err(format!(
                "Flywheel WebAssembly component `{}` runs only in Flywheel",
                field("component").unwrap_or("?")
            ));
        }
        other => return Err(format!("grader type `{other}` has no promptfoo assertion")),
    }
    Ok(assert)
}

/// `{{sample.output_text}}`, spaces inside the braces allowed.
fn is_output_text(input: &str) -> bool {
    input
        .trim()
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .is_some_and(|inner| inner.trim() == "sample.output_text")
}

/// Rewrites `{{item.x}}` to promptfoo's `{{x}}` (a test's vars are the item); a reference to
/// the sample or to anything else has no meaning in an assertion value.
fn item_reference(reference: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = reference;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            return Err(format!("reference {reference:?} has an unclosed {{{{"));
        };
        let inner = rest[start + 2..start + end].trim();
        match inner.strip_prefix("item.") {
            Some(path) if !path.is_empty() => {
                out.push_str("{{ ");
                out.push_str(path);
                out.push_str(" }}");
            }
            _ => {
                return Err(format!(
                    "reference {reference:?} reads {{{{{inner}}}}}; only item fields become test vars"
                ));
            }
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A Flywheel template as a Nunjucks one: placeholders kept, and what Nunjucks would read as
/// syntax that Flywheel reads as text written as Nunjucks string literals.
pub fn nunjucks_template(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if let Some(tail) = rest.strip_prefix("\\{{") {
            out.push_str("{{ \"{{\" }}");
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("\\}}") {
            out.push_str("{{ \"}}\" }}");
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("{%") {
            out.push_str("{{ \"{%\" }}");
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("{#") {
            out.push_str("{{ \"{#\" }}");
            rest = tail;
        } else if rest.starts_with("{{") {
            // A placeholder: copied as it is, up to its closing braces.
            let end = rest.find("}}").map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grader(name: &str, enabled: bool, definition: Value) -> GraderDefinition {
        GraderDefinition {
            id: uuid::Uuid::nil(),
            prompt_id: "planner".into(),
            name: name.into(),
            definition,
            enabled,
            created_by: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    /// The pinned promptfoo config schema, its one nested `$defs` block lifted to the root
    /// where its references point (as `flywheel_e2e::promptfoo_schema` does; see there).
    fn schema() -> jsonschema::Validator {
        fn lift(value: &mut Value, defs: &mut Map<String, Value>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::Object(found)) = map.remove("$defs") {
                        defs.extend(found);
                    }
                    map.values_mut().for_each(|v| lift(v, defs));
                }
                Value::Array(items) => items.iter_mut().for_each(|v| lift(v, defs)),
                _ => {}
            }
        }
        let text =
            include_str!("../../../tests/e2e/fixtures/promptfoo/config-schema-0.121.20.json");
        let mut schema: Value = serde_json::from_str(text).expect("schema JSON");
        let mut defs = Map::new();
        lift(&mut schema, &mut defs);
        schema["$defs"] = Value::Object(defs);
        jsonschema::validator_for(&schema).expect("schema compiles")
    }

    fn config(frame: &Frame, tests: Vec<Value>) -> Value {
        let mut config = frame.head.clone();
        config["tests"] = Value::Array(tests);
        config
    }

    fn errors(validator: &jsonschema::Validator, config: &Value) -> Vec<String> {
        validator
            .iter_errors(config)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    #[test]
    fn string_checks_and_similarity_map_and_the_rest_is_listed_with_reasons() {
        let graders = [
            grader(
                "eq",
                true,
                json!({"type":"string_check","input":"{{ sample.output_text }}","reference":"{{item.label}}","operation":"eq"}),
            ),
            grader(
                "ne",
                true,
                json!({"type":"string_check","input":"{{sample.output_text}}","reference":"fixed","operation":"ne"}),
            ),
            grader(
                "has",
                true,
                json!({"type":"string_check","input":"{{sample.output_text}}","reference":"x {{ item.a.b }} y","operation":"ilike"}),
            ),
            grader(
                "bleu",
                true,
                json!({"type":"text_similarity","input":"{{sample.output_text}}","reference":"{{item.label}}","evaluation_metric":"bleu","pass_threshold":0.4}),
            ),
            grader(
                "fuzzy",
                true,
                json!({"type":"text_similarity","input":"{{sample.output_text}}","reference":"{{item.label}}","evaluation_metric":"fuzzy_match"}),
            ),
            grader(
                "py",
                true,
                json!({"type":"python","source":"def grade(s, i):\n    return 1.0\n"}),
            ),
            grader(
                "judge",
                true,
                json!({"type":"score_model","model":"m","input":[]}),
            ),
            grader(
                "wasm",
                true,
                json!({"type":"wasm","component":"plan-shape"}),
            ),
            grader(
                "off",
                false,
                json!({"type":"string_check","input":"{{sample.output_text}}","reference":"a","operation":"eq"}),
            ),
            grader(
                "on-item",
                true,
                json!({"type":"string_check","input":"{{item.label}}","reference":"a","operation":"eq"}),
            ),
            grader(
                "sample-ref",
                true,
                json!({"type":"string_check","input":"{{sample.output_text}}","reference":"{{sample.output_json.x}}","operation":"eq"}),
            ),
        ];
        let frame = frame("planner", 3, "Plan {{task}}", &graders);
        let asserts = frame.head["defaultTest"]["assert"].clone();
        assert_eq!(
            asserts,
            json!([
                {"type":"equals","value":"{{ label }}","metric":"eq"},
                {"type":"not-equals","value":"fixed","metric":"ne"},
                {"type":"icontains","value":"x {{ a.b }} y","metric":"has"},
                {"type":"bleu","value":"{{ label }}","threshold":0.4,"metric":"bleu"},
            ])
        );
        let left: Vec<(&str, &str)> = frame
            .not_exported
            .iter()
            .map(|n| (n.grader.as_str(), n.kind.as_str()))
            .collect();
        assert_eq!(
            left,
            [
                ("fuzzy", "text_similarity"),
                ("py", "python"),
                ("judge", "score_model"),
                ("wasm", "wasm"),
                ("off", "string_check"),
                ("on-item", "string_check"),
                ("sample-ref", "string_check"),
            ]
        );
        assert!(frame.not_exported.iter().all(|n| !n.reason.is_empty()));
        assert_eq!(
            frame.head["metadata"]["flywheel"]["notExported"][0]["grader"],
            "fuzzy"
        );
    }

    #[test]
    fn templates_keep_placeholders_and_escape_what_nunjucks_reads_as_syntax() {
        assert_eq!(
            nunjucks_template("Plan {{ task }} for {{repo}}."),
            "Plan {{ task }} for {{repo}}."
        );
        assert_eq!(
            nunjucks_template("json {\"a\": 1} \\{{x\\}} {% raw %} {# c #} é"),
            "json {\"a\": 1} {{ \"{{\" }}x{{ \"}}\" }} {{ \"{%\" }} raw %} {{ \"{#\" }} c #} é"
        );
    }

    #[test]
    fn a_config_with_tests_is_valid_against_the_pinned_promptfoo_schema() {
        let validator = schema();
        let graders = [
            grader(
                "eq",
                true,
                json!({"type":"string_check","input":"{{sample.output_text}}","reference":"{{item.label}}","operation":"eq"}),
            ),
            grader(
                "sim",
                true,
                json!({"type":"text_similarity","input":"{{sample.output_text}}","reference":"{{item.label}}","evaluation_metric":"cosine"}),
            ),
            grader(
                "py",
                true,
                json!({"type":"python","source":"def grade(s, i):\n    return 1.0\n"}),
            ),
        ];
        let frame = frame("planner", 1, "Plan {{task}}", &graders);
        let item =
            json!({"task": "t1", "label": "ok", "expected_files": ["a.rs"], "rating": "good"});
        let sample = json!({"output_text": "ok"});
        let mut metadata = Map::new();
        metadata.insert("flywheelRunId".into(), "r1".into());
        let tests = vec![
            test_case(
                "run r1".into(),
                item.as_object().unwrap(),
                sample.as_object(),
                metadata.clone(),
            ),
            test_case("run r2".into(), item.as_object().unwrap(), None, metadata),
        ];
        let config = config(&frame, tests);
        assert_eq!(errors(&validator, &config), Vec::<String>::new());
        // The check can fail: a field promptfoo does not know, or a wrong type, is caught.
        let mut bad = config.clone();
        bad["tests"][0]["expected"] = json!("x");
        assert!(!errors(&validator, &bad).is_empty());
        let mut bad = config;
        bad["defaultTest"]["assert"][0]["threshold"] = json!("high");
        assert!(!errors(&validator, &bad).is_empty());
    }
}
