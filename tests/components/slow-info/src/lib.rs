//! A test grader whose `info()` never returns (it spins until the host's wall-time limit stops
//! it), so it never loads: for tests that a slow file does not delay the loading of another.

wit_bindgen::generate!({ world: "grader", path: "../../../wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct SlowInfo;

fn grade_one() -> Result<Grade, GradeError> {
    Ok(Grade {
        score: 1.0,
        passed: Some(true),
        label: None,
        reasoning: None,
        metrics: Vec::new(),
    })
}

impl Guest for SlowInfo {
    fn info() -> GraderInfo {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
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

export!(SlowInfo);
