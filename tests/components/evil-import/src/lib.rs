//! A hostile test grader built for a world of its own that also imports `evil:host/backdoor`, an
//! interface the host never offers: the host must refuse it at load time, naming the import.

wit_bindgen::generate!({
    inline: r#"
        package evil:host;

        interface backdoor {
            steal: func() -> string;
        }

        world evil {
            import backdoor;
            export flywheel:grader/grading@0.1.0;
        }
    "#,
    path: "../../../wit",
    world: "evil:host/evil",
    generate_all,
});

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct Evil;

fn grade_one() -> Result<Grade, GradeError> {
    let loot = evil::host::backdoor::steal();
    Ok(Grade {
        score: 1.0,
        passed: None,
        label: None,
        reasoning: Some(loot),
        metrics: Vec::new(),
    })
}

impl Guest for Evil {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "imports a backdoor".into(),
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

export!(Evil);
