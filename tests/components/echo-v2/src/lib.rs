//! A well-behaved test grader (version 2): score = token F1 of sample vs item.
//! Config `exact` grades by exact match instead; config `spin-ms:N` busy-waits N milliseconds first (for in-flight hot-reload tests);
//! config `bad` is refused by `validate-config`; item `missing` is an invalid-input error;
//! config `calls` scores how many rows this instance has graded, this one included (times the
//! scale), so a test can tell rows graded in one instance from rows graded in fresh ones;
//! config `calls-reason:N` scores like `calls` and returns a reasoning of N bytes (big batch
//! results).

wit_bindgen::generate!({ world: "grader", path: "../../../wit" });

#[path = "../../echo-v1/src/logic.rs"]
mod logic;

use std::sync::atomic::{AtomicU32, Ordering};

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Metric, Row};

const VERSION: f64 = 2.0;
/// Rows graded by this instance (config `calls`).
static CALLS: AtomicU32 = AtomicU32::new(0);
const SCALE: f64 = 0.5;

struct Echo;

fn spin(config: &str) {
    if let Some(ms) = config
        .strip_prefix("spin-ms:")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(ms) {
            std::hint::spin_loop();
        }
    }
}

fn grade_one(config: &str, sample: &str, item: &str) -> Result<Grade, GradeError> {
    // Definitions pass config as JSON text: `"bad"` and `bad` mean the same here.
    let config = config.trim_matches('"');
    if config == "bad" {
        return Err(GradeError::InvalidConfig(
            "field `mode`: `bad` is not a mode".into(),
        ));
    }
    if item == "missing" {
        return Err(GradeError::InvalidInput("item has no text".into()));
    }
    spin(config);
    let reason_bytes = config
        .strip_prefix("calls-reason:")
        .and_then(|v| v.parse::<usize>().ok());
    let raw = if config == "calls" || reason_bytes.is_some() {
        f64::from(CALLS.fetch_add(1, Ordering::Relaxed) + 1)
    } else if config == "exact" {
        logic::exact(sample, item)
    } else {
        logic::token_f1(sample, item)
    };
    let score = raw * SCALE;
    Ok(Grade {
        score,
        passed: Some(score >= 0.5 * SCALE),
        label: None,
        reasoning: Some(match reason_bytes {
            Some(n) => "r".repeat(n),
            None => format!("echo v{VERSION}"),
        }),
        metrics: vec![Metric {
            name: "version".into(),
            value: VERSION,
        }],
    })
}

impl Guest for Echo {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: format!("echo v{VERSION}"),
        }
    }

    fn validate_config(config: String) -> Result<(), String> {
        if config.trim_matches('"') == "bad" {
            return Err("field `mode`: `bad` is not a mode".into());
        }
        Ok(())
    }

    fn grade(config: String, sample: String, item: String) -> Result<Grade, GradeError> {
        grade_one(&config, &sample, &item)
    }

    fn grade_batch(config: String, rows: Vec<Row>) -> Vec<Result<Grade, GradeError>> {
        rows.iter()
            .map(|r| grade_one(&config, &r.sample, &r.item))
            .collect()
    }
}

export!(Echo);
