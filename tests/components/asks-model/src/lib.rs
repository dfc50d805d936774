//! A test grader for the `model-grader` world: it asks the host's `llm` import for a
//! completion and reports every string that came back (content and model in its reasoning, an
//! error's text in its failure), so tests see the world detected, the import answered, and
//! what a hostile guest could read from an answer.

wit_bindgen::generate!({ world: "model-grader", path: "../../../wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::llm::{self, ChatRequest, LlmError, Message};
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct AsksModel;

fn grade_one(sample: &str) -> Result<Grade, GradeError> {
    let request = ChatRequest {
        model: None,
        endpoint: None,
        messages: vec![Message {
            role: "user".into(),
            content: sample.into(),
        }],
        json_schema: None,
        temperature: None,
        top_p: None,
        seed: None,
        max_completion_tokens: Some(16),
        reasoning_effort: None,
    };
    match llm::complete(&request) {
        Ok(answer) => Ok(Grade {
            score: 1.0,
            passed: None,
            label: None,
            reasoning: Some(format!("content={} model={}", answer.content, answer.model)),
            metrics: Vec::new(),
        }),
        Err(LlmError::NotConfigured(why)) => {
            Err(GradeError::Failed(format!("not-configured: {why}")))
        }
        Err(other) => Err(GradeError::Failed(format!("{other:?}"))),
    }
}

impl Guest for AsksModel {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "asks the model".into(),
        }
    }
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn grade(_config: String, sample: String, _item: String) -> Result<Grade, GradeError> {
        grade_one(&sample)
    }
    fn grade_batch(_config: String, rows: Vec<Row>) -> Vec<Result<Grade, GradeError>> {
        rows.iter().map(|r| grade_one(&r.sample)).collect()
    }
}

export!(AsksModel);
