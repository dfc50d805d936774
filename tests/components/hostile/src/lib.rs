//! A hostile test grader. The config picks the attack, so one component covers every attack that
//! needs only what the `grader` world grants:
//! `loop` (never returns), `oom` (allocates until memory runs out), `recurse` (unbounded
//! recursion), `flood` (prints forever), `panic`, `env` (reports every environment variable and
//! `HOME`), `huge-output` (a 4 MiB reasoning string), `exit` (calls `exit(3)`),
//! anything else grades 1.0.

wit_bindgen::generate!({ world: "grader", path: "../../../wit" });

use exports::flywheel::grader::grading::Guest;
use flywheel::grader::types::{Grade, GradeError, GraderInfo, Row};

struct Hostile;

#[inline(never)]
fn recurse(depth: u64, acc: &mut [u64; 16]) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    acc[(depth % 16) as usize] = depth;
    let next = recurse(depth + 1, acc);
    std::hint::black_box(next + acc[(depth % 7) as usize])
}

fn grade_one(config: &str) -> Result<Grade, GradeError> {
    let mut reasoning = None;
    // Definitions pass config as JSON text: `"loop"` and `loop` mean the same here.
    match config.trim_matches('"') {
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![7u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "recurse" => {
            let mut acc = [0u64; 16];
            let n = recurse(0, &mut acc);
            reasoning = Some(n.to_string());
        }
        "flood" => {
            let mut n: u64 = 0;
            loop {
                println!("flood line {n} ........................................................");
                eprintln!("flood err {n}");
                n += 1;
            }
        }
        "panic" => panic!("boom: the hostile grader panicked on purpose"),
        "env" => {
            let all: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            let home = std::env::var("HOME").unwrap_or_default();
            let args: Vec<String> = std::env::args().collect();
            reasoning = Some(format!(
                "vars=[{}] home=[{home}] args={}",
                all.join(","),
                args.len()
            ));
        }
        "huge-output" => reasoning = Some("x".repeat(4 << 20)),
        "exit" => std::process::exit(3),
        _ => {}
    }
    Ok(Grade {
        score: 1.0,
        passed: Some(true),
        label: None,
        reasoning,
        metrics: Vec::new(),
    })
}

impl Guest for Hostile {
    fn info() -> GraderInfo {
        GraderInfo {
            sdk_version: "test-0".into(),
            description: "hostile".into(),
        }
    }

    fn validate_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn grade(config: String, _sample: String, _item: String) -> Result<Grade, GradeError> {
        grade_one(&config)
    }

    fn grade_batch(config: String, rows: Vec<Row>) -> Vec<Result<Grade, GradeError>> {
        rows.iter().map(|_| grade_one(&config)).collect()
    }
}

export!(Hostile);
