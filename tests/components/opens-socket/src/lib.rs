//! A hostile test grader that opens a TCP connection to 127.0.0.1:9 (never sent anything). Using
//! `std::net` makes the component import `wasi:sockets`, which the host does not offer.

wit_bindgen::generate!({ world: "grader", path: "../../../wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct OpensSocket;

fn grade_one() -> Result<Grade, GradeError> {
    match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => Ok(Grade {
            score: 1.0,
            passed: None,
            label: None,
            reasoning: Some("connected".into()),
            metrics: Vec::new(),
        }),
        Err(e) => Err(GradeError::Failed(format!("connect failed: {e}"))),
    }
}

impl Guest for OpensSocket {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "opens a socket".into(),
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

export!(OpensSocket);
