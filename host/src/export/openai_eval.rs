//! The OpenAI eval definition that goes with an `openai-jsonl` export: the body of OpenAI's
//! `POST /v1/evals` (`CreateEvalRequest`), so the exported rows can be run where that format is
//! read (and migrated back with `flywheel migrate openai-eval`).
//!
//! - `data_source_config`: `{"type": "custom", "item_schema": …, "include_sample_schema": …}`.
//!   The item schema is derived from the exported rows ([`ItemSchema`]): one property per key
//!   seen in any row's `item`, typed by the JSON types seen under it (`["string", "null"]` when
//!   both occur), and `required` listing the keys every row has. `include_sample_schema` is true
//!   when some row carries a `sample`, so `{{sample.output_text}}` templates are valid.
//! - `testing_criteria`: the prompt's stored grader definitions that OpenAI evals accept
//!   ([`testing_criterion`]), each named by its stored name; every other one is listed in
//!   `notExportable` with the reason, never left out silently.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::promptfoo::NotExported;
use crate::store::GraderDefinition;

/// The answer of `POST /api/prompts/{id}/export/openai-eval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvalDefinition {
    /// The body of OpenAI's `POST /v1/evals`.
    #[schema(value_type = Object)]
    pub eval: Value,
    /// Graders without an OpenAI equivalent, with the reason.
    pub not_exportable: Vec<NotExported>,
    /// Rows the item schema was derived from.
    pub rows: u64,
}

/// The JSON types seen under each item key, and how many rows had it.
#[derive(Debug, Default)]
pub struct ItemSchema {
    rows: u64,
    keys: BTreeMap<String, (BTreeSet<&'static str>, u64)>,
    any_sample: bool,
}

impl ItemSchema {
    /// Takes one row into account.
    pub fn add(&mut self, item: &Map<String, Value>, has_sample: bool) {
        self.rows += 1;
        self.any_sample |= has_sample;
        for (key, value) in item {
            let entry = self.keys.entry(key.clone()).or_default();
            entry.0.insert(json_type(value));
            entry.1 += 1;
        }
    }

    /// Rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The `data_source_config`.
    pub fn data_source_config(&self) -> Value {
        let properties: Map<String, Value> = self
            .keys
            .iter()
            .map(|(key, (types, _))| {
                let types: Vec<&str> = types.iter().copied().collect();
                let kind = match types.as_slice() {
                    [one] => json!(one),
                    many => json!(many),
                };
                (key.clone(), json!({ "type": kind }))
            })
            .collect();
        let required: Vec<&String> = self
            .keys
            .iter()
            .filter(|(_, (_, count))| *count == self.rows)
            .map(|(key, _)| key)
            .collect();
        json!({
            "type": "custom",
            "item_schema": {"type": "object", "properties": properties, "required": required},
            "include_sample_schema": self.any_sample,
        })
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The eval definition for `name`, from the rows' schema and the prompt's graders.
pub fn definition(
    name: &str,
    prompt: &str,
    schema: &ItemSchema,
    graders: &[GraderDefinition],
) -> EvalDefinition {
    let mut criteria = Vec::new();
    let mut not_exportable = Vec::new();
    for grader in graders {
        let kind = grader
            .definition
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        if !grader.enabled {
            not_exportable.push(NotExported {
                grader: grader.name.clone(),
                kind,
                reason: "disabled in Flywheel".to_owned(),
            });
            continue;
        }
        match testing_criterion(&grader.name, &grader.definition) {
            Ok(criterion) => criteria.push(criterion),
            Err(reason) => not_exportable.push(NotExported {
                grader: grader.name.clone(),
                kind,
                reason,
            }),
        }
    }
    EvalDefinition {
        eval: json!({
            "name": name,
            "metadata": {"flywheel_prompt": prompt},
            "data_source_config": schema.data_source_config(),
            "testing_criteria": criteria,
        }),
        not_exportable,
        rows: schema.rows(),
    }
}

/// A stored definition as an OpenAI eval testing criterion named `name`, or why it cannot be
/// one. Flywheel's extensions (`endpoint`, and `model` of a `cosine` similarity) are removed;
/// OpenAI requires `pass_threshold` of a `text_similarity` criterion.
pub fn testing_criterion(name: &str, definition: &Value) -> Result<Value, String> {
    let Some(object) = definition.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("?");
    let mut criterion = object.clone();
    match kind {
        "string_check" | "python" | "score_model" | "label_model" => {}
        "text_similarity" => {
            if !object.contains_key("pass_threshold") {
                return Err(
                    "OpenAI evals require pass_threshold on a text_similarity criterion; this definition has none"
                        .to_owned(),
                );
            }
            criterion.remove("model");
        }
        "multi" => {
            return Err("OpenAI evals do not accept multi graders in testing_criteria".to_owned());
        }
        "wasm" => {
            return Err(format!(
                "Flywheel WebAssembly component `{}` has no OpenAI equivalent",
                object
                    .get("component")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
            ));
        }
        other => return Err(format!("grader type `{other}` has no OpenAI equivalent")),
    }
    criterion.remove("endpoint");
    criterion.remove("id");
    criterion.insert("name".to_owned(), Value::String(name.to_owned()));
    Ok(Value::Object(criterion))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_item_schema_types_every_key_and_requires_those_every_row_has() {
        let mut schema = ItemSchema::default();
        schema.add(&object(json!({"task": "a", "n": 1, "files": ["x"]})), true);
        schema.add(
            &object(json!({"task": "b", "n": 1.5, "rating": null})),
            false,
        );
        schema.add(
            &object(json!({"task": "c", "n": 2, "rating": "good"})),
            false,
        );
        assert_eq!(
            schema.data_source_config(),
            json!({
                "type": "custom",
                "item_schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array"},
                        "n": {"type": ["integer", "number"]},
                        "rating": {"type": ["null", "string"]},
                        "task": {"type": "string"},
                    },
                    "required": ["n", "task"],
                },
                "include_sample_schema": true,
            })
        );
        assert_eq!(schema.rows(), 3);
    }

    #[test]
    fn criteria_drop_flywheel_extensions_and_unmappable_graders_are_listed() {
        let criterion = testing_criterion(
            "judge",
            &json!({"type":"score_model","name":"old","model":"m","input":[],"endpoint":"local"}),
        )
        .expect("maps");
        assert_eq!(
            criterion,
            json!({"type":"score_model","name":"judge","model":"m","input":[]})
        );
        let e = testing_criterion(
            "sim",
            &json!({"type":"text_similarity","input":"a","reference":"b","evaluation_metric":"bleu"}),
        )
        .expect_err("no threshold");
        assert!(e.contains("pass_threshold"), "{e}");
        let e = testing_criterion(
            "m",
            &json!({"type":"multi","graders":{},"calculate_output":"a"}),
        )
        .expect_err("multi");
        assert!(e.contains("multi"), "{e}");
        let e = testing_criterion("w", &json!({"type":"wasm","component":"plan-shape"}))
            .expect_err("wasm");
        assert!(e.contains("plan-shape"), "{e}");
    }
}
