//! The OpenAI grader JSON shapes (and `wasm`), and the mapping of each `type` onto the
//! component that runs it: `string_check` on `string-check`; `text_similarity` on
//! `text-similarity`, or on the model grader `cosine-similarity` for `evaluation_metric:
//! "cosine"` (it needs embeddings); `score_model` and `label_model` on the built-in model
//! graders of the same names; `python` on the `python` component (CPython compiled to
//! WebAssembly, docs/python-graders.md); `multi` on its parts.
//!
//! Each shape takes exactly the fields the component's own config takes (`graders/*/src`,
//! `graders/python/app.py`), so an exported definition carrying OpenAI's `id`, or no `name`, is
//! not refused here when its component accepts it. The fields' contents (templates, labels,
//! sampling ranges, Python syntax) are the component's to check in its `validate-config`; the
//! JSON itself is the config. Model-grader definitions may add `"endpoint": "<name>"`, a model
//! endpoint configured on the host.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::tree::{Definition, DefinitionError, join};
use crate::graders::formula;
use crate::graders::kinds::KINDS;

/// OpenAI `string_check` (graders/string-check).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the fields are read by serde's validation; the JSON itself is the config
struct StringCheck {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    /// OpenAI's id of a stored testing criterion: accepted so exported definitions import
    /// unchanged, as the component accepts it.
    #[serde(default)]
    id: Option<String>,
    input: String,
    reference: String,
    operation: StringOperation,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StringOperation {
    Eq,
    Ne,
    Like,
    Ilike,
}

/// OpenAI `text_similarity` (graders/text-similarity, and graders/cosine-similarity for
/// `cosine`, which alone takes `model` and `endpoint`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct TextSimilarity {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    /// OpenAI's id of a stored testing criterion: accepted so exported definitions import
    /// unchanged, as the component accepts it.
    #[serde(default)]
    id: Option<String>,
    input: String,
    reference: String,
    evaluation_metric: EvaluationMetric,
    #[serde(default)]
    pass_threshold: Option<f64>,
    /// Embeddings model, for `cosine` (Flywheel extension).
    #[serde(default)]
    model: Option<String>,
    /// Named model endpoint, for `cosine` (Flywheel extension).
    #[serde(default)]
    endpoint: Option<String>,
}

/// OpenAI `score_model`; the component checks the fields' contents.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct ScoreModel {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    model: String,
    input: Vec<Value>,
    #[serde(default)]
    range: Option<[f64; 2]>,
    #[serde(default)]
    pass_threshold: Option<f64>,
    #[serde(default)]
    sampling_params: Option<Value>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// OpenAI `label_model`; the component checks the fields' contents.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct LabelModel {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    model: String,
    input: Vec<Value>,
    labels: Vec<String>,
    passing_labels: Vec<String>,
    #[serde(default)]
    sampling_params: Option<Value>,
    #[serde(default)]
    endpoint: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EvaluationMetric {
    Cosine,
    FuzzyMatch,
    Bleu,
    Gleu,
    Meteor,
    #[serde(rename = "rouge_1")]
    Rouge1,
    #[serde(rename = "rouge_2")]
    Rouge2,
    #[serde(rename = "rouge_3")]
    Rouge3,
    #[serde(rename = "rouge_4")]
    Rouge4,
    #[serde(rename = "rouge_5")]
    Rouge5,
    #[serde(rename = "rouge_l")]
    RougeL,
}

/// OpenAI's `python` grader. The `python` component checks the source itself (size, syntax,
/// the `grade` signature) in its `validate-config`; it takes no `id` (its `KNOWN_FIELDS`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct Python {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    source: String,
    #[serde(default)]
    image_tag: Option<String>,
    #[serde(default)]
    pass_threshold: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Multi {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(default)]
    name: Option<String>,
    graders: BTreeMap<String, Value>,
    calculate_output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wasm {
    #[serde(rename = "type")]
    _kind: String,
    #[serde(default)]
    name: Option<String>,
    component: String,
    #[serde(default)]
    config: Option<Value>,
}

/// The most sub-graders one `multi` may hold. Every sub-grader runs its component's
/// `validate-config` when the definition is stored and a grading call per row afterwards, so an
/// unbounded list lets one request body (1 MiB fits ~12,900 sub-graders) hold the service for
/// hours; 32 is far above any formula a person writes by hand.
pub const MAX_MULTI_GRADERS: usize = 32;

impl Definition {
    /// Parses a definition from JSON text.
    pub fn from_json(text: &str) -> Result<Definition, DefinitionError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| DefinitionError::at(".", format!("not valid JSON: {e}")))?;
        Definition::parse(&value)
    }

    /// Parses a definition from a JSON value.
    pub fn parse(value: &Value) -> Result<Definition, DefinitionError> {
        parse_at(value, "", true)
    }
}

/// Deserializes with the path of the failing field.
fn typed<T: for<'de> Deserialize<'de>>(value: &Value, prefix: &str) -> Result<T, DefinitionError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            if prefix.is_empty() {
                ".".to_string()
            } else {
                prefix.to_string()
            }
        } else {
            join(prefix, &path)
        };
        DefinitionError::at(field, e.into_inner().to_string())
    })
}

fn parse_at(value: &Value, prefix: &str, top: bool) -> Result<Definition, DefinitionError> {
    let Some(object) = value.as_object() else {
        return Err(DefinitionError::at(
            if prefix.is_empty() { "." } else { prefix },
            "a grader definition must be a JSON object",
        ));
    };
    let type_field = join(prefix, "type");
    let Some(kind) = object.get("type").and_then(Value::as_str) else {
        return Err(DefinitionError::at(type_field, "missing or not a string"));
    };
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    match kind {
        "string_check" => {
            typed::<StringCheck>(value, prefix)?;
            Ok(Definition::Component {
                name,
                component: "string-check".into(),
                config: value.to_string(),
            })
        }
        "text_similarity" => {
            let parsed: TextSimilarity = typed(value, prefix)?;
            let component = match parsed.evaluation_metric {
                // Cosine needs embeddings, which only a model grader can ask the host for.
                EvaluationMetric::Cosine => "cosine-similarity",
                _ => "text-similarity",
            };
            Ok(Definition::Component {
                name,
                component: component.into(),
                config: value.to_string(),
            })
        }
        "score_model" => {
            typed::<ScoreModel>(value, prefix)?;
            Ok(Definition::Component {
                name,
                component: "score-model".into(),
                config: value.to_string(),
            })
        }
        "label_model" => {
            typed::<LabelModel>(value, prefix)?;
            Ok(Definition::Component {
                name,
                component: "label-model".into(),
                config: value.to_string(),
            })
        }
        "wasm" => {
            let wasm: Wasm = typed(value, prefix)?;
            if wasm.component.is_empty() {
                return Err(DefinitionError::at(
                    join(prefix, "component"),
                    "must name a component",
                ));
            }
            let config = wasm
                .config
                .unwrap_or_else(|| Value::Object(Default::default()));
            Ok(Definition::Component {
                name: wasm.name,
                component: wasm.component,
                config: config.to_string(),
            })
        }
        "multi" => {
            if !top {
                return Err(DefinitionError::at(
                    type_field,
                    "a multi grader cannot contain another multi grader",
                ));
            }
            let multi: Multi = typed(value, prefix)?;
            if multi.graders.is_empty() {
                return Err(DefinitionError::at(
                    join(prefix, "graders"),
                    "needs at least one grader",
                ));
            }
            if multi.graders.len() > MAX_MULTI_GRADERS {
                return Err(DefinitionError::at(
                    join(prefix, "graders"),
                    format!(
                        "has {} graders; at most {MAX_MULTI_GRADERS} are allowed",
                        multi.graders.len()
                    ),
                ));
            }
            let mut graders = BTreeMap::new();
            for (key, sub) in &multi.graders {
                graders.insert(
                    key.clone(),
                    parse_at(sub, &join(prefix, &format!("graders.{key}")), false)?,
                );
            }
            let names: Vec<&str> = multi.graders.keys().map(String::as_str).collect();
            let formula = formula::parse(&multi.calculate_output, &names).map_err(|e| {
                DefinitionError::at(join(prefix, "calculate_output"), e.to_string())
            })?;
            Ok(Definition::Multi {
                name: multi.name,
                graders,
                formula,
            })
        }
        "python" => {
            typed::<Python>(value, prefix)?;
            Ok(Definition::Component {
                name,
                component: "python".into(),
                config: value.to_string(),
            })
        }
        other => Err(DefinitionError::at(
            type_field,
            format!(
                "unknown grader type `{other}` (known: {})",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(value: Value) -> DefinitionError {
        Definition::parse(&value).expect_err("should be refused")
    }

    #[test]
    fn openai_string_check_maps_to_the_string_check_component_with_its_json_as_config() {
        let value = json!({"type":"string_check","name":"n","input":"{{sample.output_text}}","reference":"{{item.label}}","operation":"eq"});
        let Definition::Component {
            component, config, ..
        } = Definition::parse(&value).expect("valid")
        else {
            panic!("not a component")
        };
        assert_eq!(component, "string-check");
        assert_eq!(serde_json::from_str::<Value>(&config).ok(), Some(value));
    }

    #[test]
    fn bad_fields_are_named_by_their_path() {
        let e = err(
            json!({"type":"string_check","name":"n","input":"a","reference":"b","operation":"contains"}),
        );
        assert_eq!(e.field, "operation");
        let e = err(
            json!({"type":"text_similarity","name":"n","input":"a","reference":"b","evaluation_metric":"rouge_9"}),
        );
        assert_eq!(e.field, "evaluation_metric");
        let e = err(
            json!({"type":"string_check","name":"n","input":"a","reference":"b","operation":"eq","extra":1}),
        );
        assert!(e.message.contains("extra"), "{e}");
        let e = err(
            json!({"type":"multi","name":"m","graders":{"name":{"type":"string_check","name":"x","input":"a","reference":"b","operation":"nope"}},"calculate_output":"name"}),
        );
        assert_eq!(e.field, "graders.name.operation");
        let e = err(
            json!({"type":"multi","name":"m","graders":{"a":{"type":"wasm","component":"echo"}},"calculate_output":"a + b"}),
        );
        assert_eq!(e.field, "calculate_output");
        assert!(e.message.contains("position 4"), "{e}");
        // The field is named once, by the definition error.
        assert_eq!(
            e.to_string(),
            "calculate_output: unknown variable `b` (the graders are: a) at position 4"
        );
        let e = err(json!({"name":"no type"}));
        assert_eq!(e.field, "type");
        let e = err(json!({"type":"regex"}));
        assert!(e.message.contains("unknown grader type"));
        let e = err(json!({"type":"wasm","component":"echo","config":{},"bogus":true}));
        assert!(e.message.contains("bogus"));
        let e = err(json!([1, 2]));
        assert_eq!(e.field, ".");
    }

    #[test]
    fn exported_definitions_with_an_id_or_without_a_name_parse_as_their_components_take_them() {
        // OpenAI gives each stored testing criterion an `id`; the components accept it and
        // treat `name` as optional, so the host does too.
        for value in [
            json!({"type":"string_check","id":"c-1","name":"n","input":"a","reference":"b","operation":"eq"}),
            json!({"type":"string_check","input":"a","reference":"b","operation":"eq"}),
            json!({"type":"text_similarity","id":"c-2","input":"a","reference":"b","evaluation_metric":"bleu"}),
            json!({"type":"score_model","id":"c-3","model":"m","input":[]}),
            json!({"type":"label_model","model":"m","input":[],"labels":["a"],"passing_labels":["a"],"sampling_params":null}),
            json!({"type":"python","source":"def grade(s, i):\n    return 1.0\n"}),
        ] {
            Definition::parse(&value).unwrap_or_else(|e| panic!("{value}: {e}"));
        }
        // The python component takes no `id` (its KNOWN_FIELDS), so neither does the host.
        let e = err(json!({"type":"python","id":"c-4","source":""}));
        assert!(e.message.contains("id"), "{e}");
    }

    #[test]
    fn a_multi_of_more_than_max_multi_graders_is_refused_naming_its_graders_field() {
        let graders = |n: usize| -> serde_json::Map<String, Value> {
            (0..n)
                .map(|i| (format!("g{i}"), json!({"type":"wasm","component":"echo"})))
                .collect()
        };
        let multi = |n: usize| json!({"type":"multi","name":"m","graders":graders(n),"calculate_output":"g0"});
        Definition::parse(&multi(MAX_MULTI_GRADERS)).expect("the cap itself is allowed");
        let e = err(multi(MAX_MULTI_GRADERS + 1));
        assert_eq!(e.field, "graders");
        assert_eq!(e.message, "has 33 graders; at most 32 are allowed");
    }

    #[test]
    fn nested_multi_is_refused() {
        let inner = json!({"type":"multi","name":"i","graders":{"a":{"type":"wasm","component":"echo"}},"calculate_output":"a"});
        let e = err(
            json!({"type":"multi","name":"m","graders":{"inner": inner},"calculate_output":"inner"}),
        );
        assert_eq!(e.field, "graders.inner.type");
        assert!(e.message.contains("cannot contain another multi"));
    }

    fn component_of(value: Value) -> String {
        match Definition::parse(&value).expect("valid") {
            Definition::Component { component, .. } => component,
            Definition::Multi { .. } => panic!("not a component"),
        }
    }

    #[test]
    fn model_graders_map_onto_their_components() {
        let input = json!([{"role":"user","content":"{{sample.output_text}}"}]);
        assert_eq!(
            component_of(
                json!({"type":"score_model","name":"s","model":"m","input":input,"range":[1,5],"pass_threshold":3.5,"endpoint":"local"})
            ),
            "score-model"
        );
        assert_eq!(
            component_of(
                json!({"type":"label_model","name":"l","model":"m","input":input,"labels":["a","b"],"passing_labels":["a"]})
            ),
            "label-model"
        );
        assert_eq!(
            component_of(
                json!({"type":"text_similarity","name":"c","input":"a","reference":"b","evaluation_metric":"cosine"})
            ),
            "cosine-similarity"
        );
        assert_eq!(
            component_of(
                json!({"type":"text_similarity","name":"c","input":"a","reference":"b","evaluation_metric":"bleu"})
            ),
            "text-similarity"
        );
        let multi = Definition::parse(&json!({"type":"multi","name":"m","graders":{
            "q": {"type":"label_model","name":"l","model":"m","input":input,"labels":["a"],"passing_labels":["a"]},
            "s": {"type":"string_check","name":"s","input":"a","reference":"a","operation":"eq"}},
            "calculate_output":"q + s"}))
        .expect("multi may hold model graders");
        assert_eq!(multi.components(), vec!["label-model", "string-check"]);
    }

    #[test]
    fn model_grader_shapes_are_checked_by_path() {
        let e = err(json!({"type":"score_model","name":"s","input":[]}));
        assert!(e.message.contains("model"), "{e}");
        let e = err(
            json!({"type":"label_model","name":"l","model":"m","input":[],"labels":["a"],"passing_labels":"a"}),
        );
        assert_eq!(e.field, "passing_labels");
        let e =
            err(json!({"type":"score_model","name":"s","model":"m","input":[],"range":[0,1,2]}));
        assert_eq!(e.field, "range");
    }

    #[test]
    fn openai_python_maps_to_the_python_component_with_its_json_as_config() {
        let value = json!({"type":"python","name":"p","source":"def grade(s, i):\n    return 1.0\n","pass_threshold":0.5});
        let Definition::Component {
            component, config, ..
        } = Definition::parse(&value).expect("valid")
        else {
            panic!("not a component")
        };
        assert_eq!(component, "python");
        assert_eq!(serde_json::from_str::<Value>(&config).ok(), Some(value));
        let e = err(json!({"type":"python","name":"p"}));
        assert!(e.message.contains("source"), "{e}");
        let e = err(json!({"type":"python","name":"p","source":3}));
        assert_eq!(e.field, "source");
        let e = err(json!({"type":"python","name":"p","source":"","timeout":3}));
        assert!(e.message.contains("timeout"), "{e}");
    }

    #[test]
    fn wasm_definitions_carry_their_config_as_json_text() {
        let d =
            Definition::parse(&json!({"type":"wasm","component":"echo-v1","config":{"mode":"x"}}))
                .expect("valid");
        let Definition::Component {
            component, config, ..
        } = d
        else {
            panic!()
        };
        assert_eq!(component, "echo-v1");
        assert_eq!(config, r#"{"mode":"x"}"#);
    }
}
