//! OpenAI's `label_model` grader as a Flywheel model-grader component.
//!
//! Config: the OpenAI grader JSON (`type`, `name`, `model`, `input`, `labels`, `passing_labels`),
//! plus Flywheel's optional `endpoint` (a model endpoint configured on the host) and
//! `sampling_params` (OpenAI's label_model has none; accepted for parity with score_model). The
//! model is asked for the structured answer `{"label": <one of labels>}`, the label being an
//! `enum` of the schema. The score is 1 when the label is one of `passing_labels`, else 0;
//! `passed` follows the score and the label is recorded. A label outside `labels` (a server that
//! ignores the schema) scores 0 with the reason kept.

use grader_sdk::llm;
use grader_sdk::prompt::{InputMessage, ModelCall, SamplingParams};
use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
use serde::Deserialize;
use serde_json::Value;

/// The OpenAI `label_model` grader JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `label_model` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The grader's display name.
    #[serde(default)]
    pub name: Option<String>,
    /// OpenAI's id of a stored criterion; accepted, unused.
    #[serde(default)]
    pub id: Option<String>,
    /// The model to ask.
    pub model: String,
    /// The templated messages.
    pub input: Vec<InputMessage>,
    /// Every label the model may choose.
    pub labels: Vec<String>,
    /// The labels that pass; a subset of `labels`.
    pub passing_labels: Vec<String>,
    /// Sampling parameters (Flywheel extension).
    #[serde(default)]
    pub sampling_params: Option<SamplingParams>,
    /// A named model endpoint configured on the host (Flywheel extension).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// The structured output the model is asked for: one of `labels`.
pub fn response_schema(labels: &[String]) -> Value {
    serde_json::json!({
        "name": "label_model_result",
        "strict": true,
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": labels}},
            "required": ["label"],
            "additionalProperties": false
        }
    })
}

/// Reads the label from the answer: `{"label": "…"}`, or a bare JSON string.
pub fn read_label(content: &str) -> Result<String, String> {
    let trimmed = content.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(object)) => match object.get("label") {
            Some(Value::String(label)) => Ok(label.clone()),
            _ => Err(format!(
                "the model's answer has no string `label`: {trimmed}"
            )),
        },
        Ok(Value::String(label)) => Ok(label),
        Ok(_) => Err(format!("the model's answer has no `label`: {trimmed}")),
        Err(e) => Err(format!("the model's answer is not JSON ({e}): {trimmed}")),
    }
}

/// The `label_model` grader.
pub struct LabelModel;

impl Grader for LabelModel {
    const DESCRIPTION: &'static str =
        "OpenAI label_model: a model picks one of `labels`; 1 when it is a passing label";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if let Some(kind) = &config.kind
            && kind != "label_model"
        {
            return Err(format!("`type`: expected `label_model`, got `{kind}`"));
        }
        if config.model.trim().is_empty() {
            return Err("`model`: must name a model".into());
        }
        if config.labels.is_empty() {
            return Err("`labels`: needs at least one label".into());
        }
        for (at, label) in config.labels.iter().enumerate() {
            if label.trim().is_empty() {
                return Err(format!("`labels[{at}]`: a label must not be empty"));
            }
            if config.labels[..at].contains(label) {
                return Err(format!("`labels[{at}]`: `{label}` is listed twice"));
            }
        }
        if config.passing_labels.is_empty() {
            return Err("`passing_labels`: needs at least one label".into());
        }
        for (at, label) in config.passing_labels.iter().enumerate() {
            if !config.labels.contains(label) {
                return Err(format!(
                    "`passing_labels[{at}]`: `{label}` is not one of `labels` (passing_labels must be a subset of labels)"
                ));
            }
        }
        model_call(config).validate()
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let request = model_call(config).request(
            sample,
            item,
            response_schema(&config.labels).to_string(),
        )?;
        let answer = llm::complete(&request).map_err(|e| GradeError::failed(e.to_string()))?;
        let label = match read_label(&answer.content) {
            Ok(label) => label,
            Err(reason) => return Ok(Grade::pass_fail(false).with_reasoning(reason)),
        };
        if !config.labels.contains(&label) {
            return Ok(Grade::pass_fail(false)
                .with_reasoning(format!(
                    "the model chose `{label}`, which is not one of the labels ({})",
                    config.labels.join(", ")
                ))
                .with_label(label));
        }
        let passing = config.passing_labels.contains(&label);
        Ok(Grade::pass_fail(passing).with_label(label))
    }
}

grader_sdk::export!(LabelModel);

/// The fields every model grader shares, borrowed from the config.
fn model_call(config: &Config) -> ModelCall<'_> {
    ModelCall {
        model: &config.model,
        endpoint: config.endpoint.as_deref(),
        input: &config.input,
        sampling_params: config.sampling_params.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grader_sdk::llm::{ChatResponse, LlmError, Usage};
    use grader_sdk::run;

    const CONFIG: &str = r#"{"type":"label_model","name":"q","model":"m","input":[{"role":"user","content":"Rate {{sample.output_text}}"}],"labels":["good","bad","ugly"],"passing_labels":["good"]}"#;

    fn answer(content: &'static str) {
        llm::set_mock(move |request| {
            let schema = request.json_schema.clone().unwrap_or_default();
            assert!(
                schema.contains(r#""enum":["good","bad","ugly"]"#),
                "{schema}"
            );
            assert_eq!(request.messages[0].content, "Rate x");
            Ok(ChatResponse {
                content: content.into(),
                model: "m".into(),
                usage: Usage::default(),
            })
        });
    }

    fn grade() -> Result<Grade, GradeError> {
        run::grade::<LabelModel>(CONFIG, r#"{"output_text":"x"}"#, "{}")
    }

    #[test]
    fn a_passing_label_scores_one_and_a_failing_one_zero() {
        answer(r#"{"label":"good"}"#);
        let g = grade().expect("graded");
        assert_eq!(
            (g.score, g.passed, g.label.as_deref()),
            (1.0, Some(true), Some("good"))
        );
        answer(r#"{"label":"bad"}"#);
        let g = grade().expect("graded");
        assert_eq!(
            (g.score, g.passed, g.label.as_deref()),
            (0.0, Some(false), Some("bad"))
        );
    }

    #[test]
    fn an_unknown_label_or_garbage_scores_zero_with_the_reason() {
        answer(r#"{"label":"excellent"}"#);
        let g = grade().expect("graded");
        assert_eq!(g.score, 0.0);
        assert!(
            g.reasoning
                .unwrap_or_default()
                .contains("not one of the labels")
        );
        answer("good!");
        let g = grade().expect("graded");
        assert_eq!(g.score, 0.0);
        assert!(g.reasoning.unwrap_or_default().contains("not JSON"));
    }

    #[test]
    fn model_failures_are_errors() {
        llm::set_mock(|_| Err(LlmError::Timeout));
        assert!(matches!(grade(), Err(GradeError::Failed(_))));
    }

    #[test]
    fn configs_are_validated_naming_the_field() {
        let cases = [
            (
                CONFIG.replace(
                    r#""passing_labels":["good"]"#,
                    r#""passing_labels":["great"]"#,
                ),
                "passing_labels[0]",
            ),
            (
                CONFIG.replace(r#""passing_labels":["good"]"#, r#""passing_labels":[]"#),
                "passing_labels",
            ),
            (CONFIG.replace(r#"["good","bad","ugly"]"#, "[]"), "labels"),
            (
                CONFIG.replace(r#"["good","bad","ugly"]"#, r#"["good","good"]"#),
                "labels[1]",
            ),
            (
                CONFIG.replace(r#""role":"user""#, r#""role":"bot""#),
                "input[0].role",
            ),
            (CONFIG.replace(r#""model":"m""#, r#""model":" ""#), "model"),
        ];
        for (config, field) in cases {
            let e = run::validate_config::<LabelModel>(&config).unwrap_err();
            assert!(e.contains(field), "{config}: {e}");
        }
        run::validate_config::<LabelModel>(CONFIG).expect("valid");
    }
}
