//! A hostile test grader that reads `/etc/passwd` and returns it as its reasoning. Using
//! `std::fs` makes the component import `wasi:filesystem`, which the host does not offer.

wit_bindgen::generate!({ world: "grader", path: "../../../wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct ReadsFile;

fn grade_one() -> Result<Grade, GradeError> {
    match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => Ok(Grade {
            score: 1.0,
            passed: None,
            label: None,
            reasoning: Some(text),
            metrics: Vec::new(),
        }),
        Err(e) => Err(GradeError::Failed(format!("read failed: {e}"))),
    }
}

impl Guest for ReadsFile {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "reads /etc/passwd".into(),
        }
    }
    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }
    fn grade(_config: String, _sample: String, _item: String) -> Result<Grade, GradeError> {
        grade_one()
    }
    fn grade_batch(_config: String, rows: Vec<Row>) -> Vec<Result<Grade, GradeError>> {
        rows.iter().map(|_| grade_one()).collect()
    }
}

export!(ReadsFile);
