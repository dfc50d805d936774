//! A test grader built for a future contract, `flywheel:grader@0.2.0` (a copy of the WIT with
//! the version bumped): the host must refuse it, naming both versions.

wit_bindgen::generate!({ world: "grader", path: "wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct Future;

impl Guest for Future {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "built for 0.2.0".into(),
        }
    }
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn grade(_config: String, _sample: String, _item: String) -> Result<Grade, GradeError> {
        Ok(Grade {
            score: 1.0,
            passed: None,
            label: None,
            reasoning: None,
            metrics: Vec::new(),
        })
    }
    fn grade_batch(config: String, rows: Vec<Row>) -> Vec<Result<Grade, GradeError>> {
        rows.iter()
            .map(|r| Self::grade(config.clone(), r.sample.clone(), r.item.clone()))
            .collect()
    }
}

export!(Future);
