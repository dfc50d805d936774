//! Grader definitions against real components: validation runs the component's own
//! `validate-config`, `multi` combines real scores with its formula, and a JSONL file is graded
//! row by row with bad lines reported by number.

use std::sync::Arc;

use flywheel::graders::definition::Definition;
use flywheel::graders::{Registry, RegistryOptions};
use flywheel::grading::file::grade_rows;
use serde_json::json;

use crate::graders_support::{bytes, components, runtime};

async fn registry() -> Arc<Registry> {
    let options = RegistryOptions {
        graders_dir: None,
        cache_dir: Some(crate::graders_support::cache_dir()),
        builtins: vec![
            ("echo".into(), bytes(components::ECHO_V1)),
            ("half".into(), bytes(components::ECHO_V2)),
            ("hostile".into(), bytes(components::HOSTILE)),
        ],
        watch: false,
    };
    Registry::start(runtime(), options).await
}

#[tokio::test]
async fn validation_runs_the_components_own_config_check_and_names_the_field() {
    let registry = registry().await;
    let good =
        Definition::parse(&json!({"type":"wasm","component":"echo","config":{"any":"thing"}}))
            .expect("parses");
    good.validate(&registry).await.expect("valid");
    let bad = Definition::parse(&json!({"type":"wasm","component":"echo","config":"bad"}))
        .expect("parses");
    let error = bad
        .validate(&registry)
        .await
        .expect_err("the component refuses it");
    assert_eq!(error.field, "config");
    assert!(error.message.contains("`bad` is not a mode"), "{error}");
    let missing = Definition::parse(&json!({"type":"wasm","component":"nope"})).expect("parses");
    let error = missing.validate(&registry).await.expect_err("not loaded");
    assert_eq!(error.field, "component");
    let string_check = Definition::parse(&json!({"type":"string_check","name":"n","input":"{{sample.output_text}}","reference":"{{item.label}}","operation":"eq"})).expect("parses");
    let error = string_check
        .validate(&registry)
        .await
        .expect_err("string-check is not loaded in this test");
    assert!(
        error
            .message
            .contains("component `string-check` is not loaded"),
        "{error}"
    );
    let multi = Definition::parse(&json!({
        "type":"multi","name":"m",
        "graders":{"a":{"type":"wasm","component":"echo"},"b":{"type":"wasm","component":"echo","config":"bad"}},
        "calculate_output":"a + b"
    })).expect("parses");
    assert_eq!(
        multi
            .validate(&registry)
            .await
            .expect_err("b is refused")
            .field,
        "graders.b.config"
    );
}

#[tokio::test]
async fn multi_combines_the_sub_scores_with_calculate_output() {
    let registry = registry().await;
    let multi = Definition::parse(&json!({
        "type":"multi","name":"m",
        "graders":{"full":{"type":"wasm","component":"echo"},"half":{"type":"wasm","component":"half"}},
        "calculate_output":"max(full, half) * 2 - half ^ 2"
    })).expect("parses");
    multi.validate(&registry).await.expect("valid");
    let resolved = multi.resolve(&registry).expect("resolves");
    let outcome = resolved.grade(&runtime(), "same words", "same words").await;
    assert_eq!(outcome.score(), Some(1.0 * 2.0 - 0.25));
    let failing = Definition::parse(&json!({
        "type":"multi","name":"m",
        "graders":{"full":{"type":"wasm","component":"echo"},"boom":{"type":"wasm","component":"hostile","config":"panic"}},
        "calculate_output":"full + boom"
    })).expect("parses").resolve(&registry).expect("resolves");
    assert_eq!(
        failing.grade(&runtime(), "x", "x").await.kind_name(),
        "panic"
    );
}

/// A `multi` grades each part as a batch (one instance for the rows of a batch, as a plain
/// definition does: `calls` counts them), and a part only grades the rows no earlier part
/// failed.
#[tokio::test]
async fn multi_grades_each_part_as_a_batch_over_the_rows_still_standing() {
    let registry = registry().await;
    let multi = Definition::parse(&json!({
        "type":"multi","name":"m",
        "graders":{"a":{"type":"wasm","component":"echo"},
                   "b":{"type":"wasm","component":"half","config":"calls"}},
        "calculate_output":"b"
    }))
    .expect("parses");
    multi.validate(&registry).await.expect("valid");
    let resolved = multi.resolve(&registry).expect("resolves");
    let rows: Vec<(String, String)> = ["x", "missing", "x", "x"]
        .iter()
        .map(|item| ("x".to_owned(), (*item).to_owned()))
        .collect();
    let outcomes = resolved.grade_batch(&runtime(), &rows).await;
    let scores: Vec<Option<f64>> = outcomes.iter().map(|o| o.score()).collect();
    // `b` saw rows 0, 2 and 3 in one instance (0.5 per call); row 1 failed in `a` first.
    assert_eq!(scores, [Some(0.5), None, Some(1.0), Some(1.5)]);
    assert_eq!(outcomes[1].kind_name(), "invalid_input");
}

#[tokio::test]
async fn a_jsonl_file_is_graded_row_by_row_with_bad_lines_reported_by_number() {
    let registry = registry().await;
    let definition = Definition::parse(&json!({"type":"wasm","component":"echo"}))
        .expect("parses")
        .resolve(&registry)
        .expect("resolves");
    let mut lines: Vec<std::io::Result<String>> = Vec::new();
    for i in 0..250 {
        // echo compares the JSON texts token by token: identical texts score 1.0 (even rows),
        // texts sharing no whitespace token score 0.0 (odd rows).
        let sample = if i % 2 == 0 {
            json!({"t": "a b c"})
        } else {
            json!({"u": "x"})
        };
        lines.push(Ok(
            json!({"item": {"t": "a b c"}, "sample": sample}).to_string()
        ));
    }
    lines.insert(10, Ok("{not json".into()));
    lines.insert(20, Ok(String::new()));
    lines.insert(30, Ok(json!({"item": {}}).to_string()));
    let mut progress_calls = 0usize;
    let mut last = 0usize;
    let (reports, summary) = grade_rows(&definition, &runtime(), lines, &mut |done| {
        progress_calls += 1;
        last = done;
    })
    .await;
    assert_eq!(
        summary.rows, 252,
        "250 rows + 2 bad lines; the blank line is not a row"
    );
    assert_eq!(reports.len(), 252);
    assert_eq!(last, 252);
    assert!(progress_calls >= 252);
    assert_eq!(summary.graded, 250);
    assert_eq!(summary.errors.get("invalid_row"), Some(&2));
    let bad: Vec<usize> = reports
        .iter()
        .filter(|r| r.outcome.kind_name() == "invalid_row")
        .map(|r| r.line)
        .collect();
    assert_eq!(bad, [11, 31]);
    assert_eq!(summary.mean_score, Some(0.5));
    assert_eq!(
        summary.pass_rate,
        Some(125.0 / 250.0),
        "mean and pass rate are over the same (graded) rows"
    );
    assert_eq!(summary.errored, 2);
    assert_eq!(reports[0].outcome.score(), Some(1.0));
    assert_eq!(reports[1].outcome.score(), Some(0.0));
    let row = serde_json::to_value(&reports[0]).expect("serializable");
    assert_eq!(row["line"], 1);
    assert_eq!(row["status"], "graded");
}
