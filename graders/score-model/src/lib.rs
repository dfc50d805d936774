//! OpenAI's `score_model` grader as a Flywheel model-grader component.
//!
//! Config: the OpenAI grader JSON (`type`, `name`, `model`, `input`, optional `range` (default
//! `[0, 1]`), `pass_threshold`, `sampling_params`), plus Flywheel's optional `endpoint`, the name
//! of a model endpoint configured on the host. The `input` messages are rendered against the row
//! and sent through the host's `llm` import asking for the structured answer
//! `{"result": number, "steps": [{"description", "conclusion"}]}` (json_schema).
//!
//! As OpenAI documents: the result is clamped to `range`; a non-numeric or unparseable answer
//! scores 0 (the reason is kept in `reasoning`); `passed` is `score >= pass_threshold` when a
//! threshold is set. A failed model call (timeout, rate limit, budget) is a `failed` error, not a
//! score, so it is never mistaken for a judgement.

use grader_sdk::llm;
use grader_sdk::prompt::{InputMessage, ModelCall, SamplingParams};
use grader_sdk::{Grade, GradeError, Grader, Item, Sample};
use serde::Deserialize;
use serde_json::Value;

/// The OpenAI `score_model` grader JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `score_model` when present.
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
    /// The score range `[min, max]`.
    #[serde(default = "default_range")]
    pub range: [f64; 2],
    /// Rows scoring at least this pass.
    #[serde(default)]
    pub pass_threshold: Option<f64>,
    /// Sampling parameters.
    #[serde(default)]
    pub sampling_params: Option<SamplingParams>,
    /// A named model endpoint configured on the host (Flywheel extension).
    #[serde(default)]
    pub endpoint: Option<String>,
}

fn default_range() -> [f64; 2] {
    [0.0, 1.0]
}

/// The structured output the model is asked for.
pub fn response_schema() -> Value {
    serde_json::json!({
        "name": "score_model_result",
        "strict": true,
        "schema": {
            "type": "object",
            "properties": {
                "steps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "description": {"type": "string"},
                            "conclusion": {"type": "string"}
                        },
                        "required": ["description", "conclusion"],
                        "additionalProperties": false
                    }
                },
                "result": {"type": "number"}
            },
            "required": ["steps", "result"],
            "additionalProperties": false
        }
    })
}

/// What the answer said: a score or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// The clamped score and the reasoning (steps' conclusions, or the raw answer).
    Score {
        /// The score, within the range.
        score: f64,
        /// Whether it was clamped, and from what.
        clamped_from: Option<f64>,
        /// The model's steps, joined.
        reasoning: String,
    },
    /// Not numeric: scores 0 with this reason.
    NotNumeric(String),
}

/// Reads the model's answer text: `{"result": …, "steps": […]}` (a numeric string in `result`
/// is accepted, as is a bare number), clamped to `range`.
pub fn read_answer(content: &str, range: [f64; 2]) -> Reading {
    let trimmed = content.trim();
    let value: Value = match serde_json::from_str(trimmed) {
        Ok(value) => value,
        Err(e) => {
            return Reading::NotNumeric(format!(
                "the model's answer is not JSON ({e}): {}",
                excerpt(trimmed)
            ));
        }
    };
    let (result, reasoning) = match &value {
        Value::Number(n) => (n.as_f64(), String::new()),
        Value::Object(object) => {
            let result = match object.get("result") {
                Some(Value::Number(n)) => n.as_f64(),
                Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            (result, steps_text(object.get("steps")))
        }
        _ => (None, String::new()),
    };
    match result.filter(|r| r.is_finite()) {
        None => Reading::NotNumeric(format!(
            "the model's answer has no numeric `result`: {}",
            excerpt(trimmed)
        )),
        Some(raw) => {
            let score = raw.clamp(range[0], range[1]);
            Reading::Score {
                score,
                clamped_from: (score != raw).then_some(raw),
                reasoning,
            }
        }
    }
}

fn steps_text(steps: Option<&Value>) -> String {
    let Some(Value::Array(steps)) = steps else {
        return String::new();
    };
    steps
        .iter()
        .filter_map(|step| {
            let description = step.get("description").and_then(Value::as_str)?;
            let conclusion = step.get("conclusion").and_then(Value::as_str).unwrap_or("");
            Some(format!("{description}: {conclusion}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The `score_model` grader.
pub struct ScoreModel;

impl Grader for ScoreModel {
    const DESCRIPTION: &'static str =
        "OpenAI score_model: a model scores the row within `range` ({result, steps} answer)";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), String> {
        if let Some(kind) = &config.kind
            && kind != "score_model"
        {
            return Err(format!("`type`: expected `score_model`, got `{kind}`"));
        }
        if config.model.trim().is_empty() {
            return Err("`model`: must name a model".into());
        }
        let [low, high] = config.range;
        if !low.is_finite() || !high.is_finite() || low >= high {
            return Err(format!(
                "`range`: [{low}, {high}] must be two finite numbers with range[0] < range[1]"
            ));
        }
        if let Some(threshold) = config.pass_threshold
            && !(low..=high).contains(&threshold)
        {
            return Err(format!(
                "`pass_threshold`: {threshold} is outside the range [{low}, {high}]"
            ));
        }
        model_call(config).validate()
    }

    fn grade(config: &Config, sample: &Sample, item: &Item) -> Result<Grade, GradeError> {
        let request = model_call(config).request(sample, item, response_schema().to_string())?;
        let answer = llm::complete(&request).map_err(|e| GradeError::failed(e.to_string()))?;
        let grade = match read_answer(&answer.content, config.range) {
            Reading::Score {
                score,
                clamped_from,
                reasoning,
            } => {
                let mut grade = Grade::new(score);
                let note = clamped_from.map(|raw| {
                    format!(
                        "the model answered {raw}, clamped to the range [{}, {}]",
                        config.range[0], config.range[1]
                    )
                });
                let text = match (note, reasoning.is_empty()) {
                    (Some(note), true) => note,
                    (Some(note), false) => format!("{note}\n{reasoning}"),
                    (None, _) => reasoning,
                };
                if !text.is_empty() {
                    grade = grade.with_reasoning(text);
                }
                grade
            }
            Reading::NotNumeric(reason) => Grade::new(0.0).with_reasoning(reason),
        };
        Ok(grade.with_threshold(config.pass_threshold))
    }
}

grader_sdk::export!(ScoreModel);

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

    fn config(extra: &str) -> String {
        format!(
            r#"{{"type":"score_model","name":"s","model":"m","input":[{{"role":"system","content":"Judge {{{{item.task}}}}"}},{{"role":"user","content":"{{{{sample.output_text}}}}"}}]{extra}}}"#
        )
    }

    fn answer_with(content: &'static str) {
        llm::set_mock(move |request| {
            assert!(
                request
                    .json_schema
                    .as_deref()
                    .is_some_and(|s| s.contains("result"))
            );
            assert_eq!(request.messages[0].content, "Judge add");
            Ok(ChatResponse {
                content: content.to_string(),
                model: "m".into(),
                usage: Usage::default(),
            })
        });
    }

    fn grade(config: &str) -> Result<Grade, GradeError> {
        run::grade::<ScoreModel>(config, r#"{"output_text":"2"}"#, r#"{"task":"add"}"#)
    }

    #[test]
    fn a_good_answer_scores_and_passes_against_the_threshold() {
        answer_with(r#"{"result":0.8,"steps":[{"description":"checked","conclusion":"right"}]}"#);
        let g = grade(&config(r#","pass_threshold":0.5"#)).expect("graded");
        assert_eq!(g.score, 0.8);
        assert_eq!(g.passed, Some(true));
        assert_eq!(g.reasoning.as_deref(), Some("checked: right"));
    }

    #[test]
    fn out_of_range_results_are_clamped() {
        answer_with(r#"{"result":7,"steps":[]}"#);
        let g = grade(&config(r#","range":[1,5]"#)).expect("graded");
        assert_eq!(g.score, 5.0);
        assert!(g.reasoning.unwrap_or_default().contains("clamped"));
        answer_with(r#"{"result":-3,"steps":[]}"#);
        assert_eq!(grade(&config("")).expect("graded").score, 0.0);
    }

    #[test]
    fn non_numeric_answers_score_zero_with_the_reason_kept() {
        answer_with(r#"{"result":"very good","steps":[]}"#);
        let g = grade(&config(r#","pass_threshold":0.1"#)).expect("graded");
        assert_eq!(g.score, 0.0);
        assert_eq!(g.passed, Some(false));
        assert!(g.reasoning.unwrap_or_default().contains("no numeric"));
        answer_with("I think it is fine");
        let g = grade(&config("")).expect("graded");
        assert_eq!(g.score, 0.0);
        assert!(g.reasoning.unwrap_or_default().contains("not JSON"));
    }

    #[test]
    fn model_call_failures_are_errors_not_scores() {
        llm::set_mock(|_| Err(LlmError::BudgetExhausted));
        let e = grade(&config("")).unwrap_err();
        assert!(
            matches!(&e, GradeError::Failed(m) if m.contains("budget")),
            "{e:?}"
        );
    }

    #[test]
    fn configs_are_validated_naming_the_field() {
        let cases = [
            (config(r#","range":[5,1]"#), "range"),
            (config(r#","pass_threshold":9"#), "pass_threshold"),
            (
                config(r#","sampling_params":{"temperature":5}"#),
                "temperature",
            ),
            (config(r#","sampling_params":{"bogus":1}"#), "bogus"),
            (
                r#"{"type":"score_model","name":"s","model":"m","input":[]}"#.to_string(),
                "input",
            ),
            (
                r#"{"type":"score_model","name":"s","input":[{"role":"user","content":"x"}]}"#
                    .to_string(),
                "model",
            ),
        ];
        for (config, field) in cases {
            let e = run::validate_config::<ScoreModel>(&config).unwrap_err();
            assert!(e.contains(field), "{config}: {e}");
        }
        run::validate_config::<ScoreModel>(&config(
            r#","range":[1,5],"pass_threshold":3.5,"sampling_params":{"seed":1,"max_completions_tokens":10},"endpoint":"local""#,
        ))
        .expect("valid");
    }

    #[test]
    fn sampling_params_and_endpoint_reach_the_request() {
        llm::set_mock(|request| {
            assert_eq!(request.seed, Some(42));
            assert_eq!(request.temperature, Some(0.0));
            assert_eq!(request.max_completion_tokens, Some(64));
            assert_eq!(request.endpoint.as_deref(), Some("local"));
            assert_eq!(request.model.as_deref(), Some("m"));
            Ok(ChatResponse {
                content: r#"{"result":1,"steps":[]}"#.into(),
                model: "m".into(),
                usage: Usage::default(),
            })
        });
        let g = grade(&config(
            r#","sampling_params":{"seed":42,"temperature":0,"max_completions_tokens":64},"endpoint":"local""#,
        ))
        .expect("graded");
        assert_eq!(g.score, 1.0);
    }
}
