//! Grader definitions: OpenAI grader JSON (`string_check`, `text_similarity`, `multi`) and
//! `{"type":"wasm","component":"<name>","config":{…}}`, parsed, validated and resolved to the
//! components that run them.
//!
//! Validation has two layers: the JSON shape here (strict: unknown fields are refused, errors
//! name the field by its path, such as `graders.name.operation`), then the component's own
//! `validate-config`. `python` runs in the `python` component (CPython compiled to WebAssembly,
//! docs/python-graders.md). `score_model` and `label_model` run on the built-in model graders
//! `score-model` and `label-model`; `text_similarity` with `evaluation_metric: "cosine"` runs on
//! the model grader `cosine-similarity` (it needs embeddings), every other metric on the pure
//! `text-similarity`. Model-grader definitions may add `"endpoint": "<name>"`, a model endpoint
//! configured on the host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::graders::component::LoadedGrader;
use crate::graders::engine::GraderRuntime;
use crate::graders::formula::{self, Expr};
use crate::graders::llm::LlmRun;
use crate::graders::outcome::{GradeResult, GraderErrorKind, Metric, Outcome, TokenUsage};
use crate::graders::registry::Registry;

/// Every definition `type` this host knows, and the built-in component that runs it.
pub const KINDS: &[(&str, Option<&str>)] = &[
    ("string_check", Some("string-check")),
    ("text_similarity", Some("text-similarity")),
    ("multi", None),
    ("wasm", None),
    ("score_model", Some("score-model")),
    ("label_model", Some("label-model")),
    ("python", Some("python")),
];

/// A definition was refused; `field` is its path in the JSON (`graders.name.operation`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DefinitionError {
    /// The path of the offending field (`.` for the whole definition).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl DefinitionError {
    fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        DefinitionError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A parsed definition.
#[derive(Debug, Clone)]
pub enum Definition {
    /// One component with its config (JSON text).
    Component {
        /// The definition's `name`, when given.
        name: Option<String>,
        /// The component that runs it.
        component: String,
        /// The config passed to every call, as JSON text.
        config: String,
    },
    /// Several graders combined by a formula.
    Multi {
        /// The definition's `name`.
        name: Option<String>,
        /// The sub-graders by variable name.
        graders: BTreeMap<String, Definition>,
        /// The parsed `calculate_output`.
        formula: Expr,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the fields are read by serde's validation; the JSON itself is the config
struct StringCheck {
    #[serde(rename = "type")]
    kind: String,
    name: String,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct TextSimilarity {
    #[serde(rename = "type")]
    kind: String,
    name: String,
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
    name: String,
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
    name: String,
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
/// the `grade` signature) in its `validate-config`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // as above
struct Python {
    #[serde(rename = "type")]
    kind: String,
    name: String,
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

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
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

    /// The components this definition needs, in order.
    pub fn components(&self) -> Vec<&str> {
        match self {
            Definition::Component { component, .. } => vec![component.as_str()],
            Definition::Multi { graders, .. } => {
                graders.values().flat_map(|g| g.components()).collect()
            }
        }
    }

    /// Checks that every component is loaded and accepts its config (its own
    /// `validate-config`).
    pub async fn validate(&self, registry: &Registry) -> Result<(), DefinitionError> {
        let runtime = registry.runtime();
        match self {
            Definition::Component {
                component, config, ..
            } => validate_leaf(registry, runtime, "", component, config).await,
            Definition::Multi { graders, .. } => {
                for (key, sub) in graders {
                    if let Definition::Component {
                        component, config, ..
                    } = sub
                    {
                        validate_leaf(
                            registry,
                            runtime,
                            &format!("graders.{key}"),
                            component,
                            config,
                        )
                        .await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Pins the serving version of every component, so a whole run grades with one version
    /// even if the graders directory changes meanwhile.
    pub fn resolve(&self, registry: &Registry) -> Result<Resolved, DefinitionError> {
        match self {
            Definition::Component {
                component, config, ..
            } => Ok(Resolved::Component {
                grader: pin(registry, "", component)?,
                config: config.clone(),
            }),
            Definition::Multi {
                graders, formula, ..
            } => {
                let mut parts = Vec::new();
                for (key, sub) in graders {
                    let Definition::Component {
                        component, config, ..
                    } = sub
                    else {
                        return Err(DefinitionError::at(
                            format!("graders.{key}.type"),
                            "a multi grader cannot contain another multi grader",
                        ));
                    };
                    parts.push((
                        key.clone(),
                        pin(registry, &format!("graders.{key}"), component)?,
                        config.clone(),
                    ));
                }
                Ok(Resolved::Multi {
                    parts,
                    formula: formula.clone(),
                })
            }
        }
    }
}

fn pin(
    registry: &Registry,
    prefix: &str,
    component: &str,
) -> Result<Arc<LoadedGrader>, DefinitionError> {
    registry.get(component).ok_or_else(|| {
        let why = registry
            .load_error(component)
            .map(|e| format!(" (its last load failed: {e})"))
            .unwrap_or_default();
        DefinitionError::at(
            join(prefix, "component"),
            format!("component `{component}` is not loaded{why}"),
        )
    })
}

async fn validate_leaf(
    registry: &Registry,
    runtime: &GraderRuntime,
    prefix: &str,
    component: &str,
    config: &str,
) -> Result<(), DefinitionError> {
    let grader = pin(registry, prefix, component)?;
    match grader.validate_config(runtime, config).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(DefinitionError::at(
            if prefix.is_empty() {
                "config".to_string()
            } else {
                join(prefix, "config")
            },
            message,
        )),
        Err(outcome) => Err(DefinitionError::at(
            join(prefix, "component"),
            format!(
                "`{component}` failed to validate its config: {}",
                describe(&outcome)
            ),
        )),
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Trap { kind, message, .. } => format!("{}: {message}", kind.name()),
        Outcome::Refused { message }
        | Outcome::InvalidRow { message }
        | Outcome::BudgetExhausted { message } => message.clone(),
        Outcome::GraderError { message, .. } => message.clone(),
        Outcome::Graded { .. } => "graded".to_string(),
    }
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

/// A definition with every component pinned to one loaded version.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// One component.
    Component {
        /// The pinned grader.
        grader: Arc<LoadedGrader>,
        /// Its config.
        config: String,
    },
    /// Sub-graders and a formula.
    Multi {
        /// (variable, grader, config).
        parts: Vec<(String, Arc<LoadedGrader>, String)>,
        /// `calculate_output`.
        formula: Expr,
    },
}

impl Resolved {
    /// Rows per batch when grading many rows: the largest its components ask for (each part of
    /// a `multi` grades the whole batch in one instance of its own).
    pub fn batch_rows(&self) -> usize {
        match self {
            Resolved::Component { grader, .. } => grader.batch_rows,
            Resolved::Multi { parts, .. } => parts
                .iter()
                .map(|(_, grader, _)| grader.batch_rows)
                .max()
                .unwrap_or(crate::graders::component::MIN_BATCH_ROWS),
        }
    }

    /// Grades one row, in a grading run of its own.
    pub async fn grade(&self, runtime: &GraderRuntime, sample: &str, item: &str) -> Outcome {
        self.grade_in(runtime, &runtime.new_run(), sample, item)
            .await
    }

    /// Grades one row as part of grading run `run` (model graders spend its token budget).
    pub async fn grade_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        sample: &str,
        item: &str,
    ) -> Outcome {
        match self {
            Resolved::Component { grader, config } => {
                grader.grade_in(runtime, run, config, sample, item).await
            }
            Resolved::Multi { parts, formula } => {
                let mut values = HashMap::new();
                let mut metrics = Vec::new();
                let mut usage: Option<TokenUsage> = None;
                for (key, grader, config) in parts {
                    let outcome = grader.grade_in(runtime, run, config, sample, item).await;
                    if let Outcome::Graded { grade } = &outcome
                        && let Some(used) = grade.usage
                    {
                        usage = Some(usage.unwrap_or_default() + used);
                    }
                    match outcome.score() {
                        Some(score) => {
                            values.insert(key.clone(), score);
                            metrics.push(Metric {
                                name: key.clone(),
                                value: score,
                            });
                        }
                        // The whole row fails the way its first failing grader did.
                        None => return outcome,
                    }
                }
                let score = formula.eval(&values);
                if !score.is_finite() {
                    return Outcome::GraderError {
                        kind: GraderErrorKind::Failed,
                        message: format!("calculate_output gave {score} for {values:?}"),
                    };
                }
                Outcome::Graded {
                    grade: GradeResult {
                        score,
                        passed: None,
                        label: None,
                        reasoning: None,
                        metrics,
                        usage,
                    },
                }
            }
        }
    }

    /// Grades rows, in a grading run of their own.
    pub async fn grade_batch(
        &self,
        runtime: &GraderRuntime,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        self.grade_batch_in(runtime, &runtime.new_run(), rows).await
    }

    /// Grades rows as part of grading run `run`: one sandbox per batch for a single pure
    /// component, one sandbox per row (several at once) for model graders and multi graders.
    pub async fn grade_batch_in(
        &self,
        runtime: &GraderRuntime,
        run: &LlmRun,
        rows: &[(String, String)],
    ) -> Vec<Outcome> {
        match self {
            Resolved::Component { grader, config } => {
                grader.grade_batch_in(runtime, run, config, rows).await
            }
            Resolved::Multi { .. } => {
                use futures::StreamExt;
                futures::stream::iter(rows)
                    .map(|(sample, item)| self.grade_in(runtime, run, sample, item))
                    .buffered(runtime.max_concurrency())
                    .collect()
                    .await
            }
        }
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
