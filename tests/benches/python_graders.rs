//! Cost per row of the `python` grader (CPython compiled to a component) inside the sandbox,
//! with one instance per batch of 100 rows and with a fresh instance per row, against a
//! `python3` process per row running the same OpenAI grader source.
//!
//! Run: `CARGO_TARGET_DIR=… cargo bench -p flywheel-e2e --bench python_graders`.
//! Rows: a 1 KB sample and a 1 KB item. Figures in BENCHMARKS.md ("Python graders").

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use flywheel::graders::cache::CompileCache;
use flywheel::graders::component::{self, GraderSource, LoadedGrader};
use flywheel::graders::{GraderRuntime, Outcome, RuntimeOptions};
use serde_json::json;

mod built {
    include!(concat!(env!("OUT_DIR"), "/python_grader.rs"));
}

/// A typical OpenAI python grader: JSON field check with fuzzy text comparison.
const SOURCE: &str = r#"
import json
from difflib import SequenceMatcher

def grade(sample, item) -> float:
    try:
        got = json.loads(sample["output_text"])
    except json.JSONDecodeError:
        return 0.0
    if got.get("status") != item["expected"]["status"]:
        return 0.0
    return SequenceMatcher(None, got.get("summary", ""), item["expected"]["summary"]).ratio()
"#;

/// The cheapest useful grader: an exact match on 1 KB strings. Its cost is the sandbox's.
const EXACT: &str = r#"
def grade(sample, item) -> float:
    return 1.0 if sample["output_text"] == item["reference"] else 0.0
"#;

/// Runs one row in a fresh `python3` process, as a host without a sandbox would.
const RUNNER: &str = r#"
import json, sys
row = json.loads(sys.stdin.read())
namespace = {}
exec(row["source"], namespace)
print(float(namespace["grade"](row["sample"], row["item"])))
"#;

const BATCH: usize = 100;

fn row() -> (String, String) {
    let summary =
        "the planner split the task into steps and the coder changed the parser ".repeat(14);
    let output = json!({"status": "done", "summary": &summary[..900]}).to_string();
    let sample = json!({"output_text": output}).to_string();
    let item = json!({"expected": {"status": "done", "summary": &summary[..950]}, "notes": "x".repeat(20)})
        .to_string();
    (sample, item)
}

fn benches(c: &mut Criterion) {
    // FLYWHEEL_BENCH_PYTHON_GRADER=<file.wasm> measures another build of the component (say,
    // one built from an earlier `app.py`) with the same bench.
    let other = std::env::var("FLYWHEEL_BENCH_PYTHON_GRADER").ok();
    let path = match (other.as_deref(), built::PYTHON_GRADER) {
        (Some(other), _) => other,
        (None, Ok(path)) => path,
        (None, Err(reason)) => {
            eprintln!("SKIPPED: {reason}");
            return;
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let runtime = GraderRuntime::new(RuntimeOptions::default()).expect("engine");
    let cache_dir = std::env::temp_dir().join("flywheel-bench-python-cache");
    let grader: Arc<LoadedGrader> = rt.block_on(async {
        let cache = CompileCache::new(runtime.engine(), Some(cache_dir));
        let bytes = std::fs::read(path).expect("built python grader");
        Arc::new(
            component::load(
                &runtime,
                &cache,
                "python",
                Arc::new(bytes),
                GraderSource::Builtin,
                1,
            )
            .await
            .expect("loads"),
        )
    });
    let config = json!({"type": "python", "name": "bench", "source": SOURCE}).to_string();
    let (sample, item) = row();
    let expected = rt.block_on(grader.grade(&runtime, &config, &sample, &item));
    let Outcome::Graded { grade } = &expected else {
        panic!("the bench grader does not grade: {expected:?}")
    };
    assert!(grade.score > 0.9 && grade.label.is_none(), "{grade:?}");
    let rows: Vec<(String, String)> = (0..BATCH).map(|_| (sample.clone(), item.clone())).collect();

    let exact_config = json!({"type": "python", "name": "exact", "source": EXACT}).to_string();
    let text = "y".repeat(1000);
    let exact_row = (
        json!({"output_text": &text}).to_string(),
        json!({"reference": &text}).to_string(),
    );
    let exact_rows: Vec<(String, String)> = (0..BATCH).map(|_| exact_row.clone()).collect();
    let mut group = c.benchmark_group("python_grader_exact_match");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_of_100_one_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let outcomes = grader
                .grade_batch(&runtime, &exact_config, &exact_rows)
                .await;
            assert!(
                outcomes.iter().all(|o| o.score() == Some(1.0)),
                "{:?}",
                outcomes[0]
            );
        })
    });
    // The marginal cost of a row once the instance exists: a batch ten times larger.
    let big_batch: Vec<(String, String)> = (0..10 * BATCH).map(|_| exact_row.clone()).collect();
    group.throughput(Throughput::Elements(10 * BATCH as u64));
    group.bench_function("batch_of_1000_one_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let outcomes = grader
                .grade_batch(&runtime, &exact_config, &big_batch)
                .await;
            assert!(
                outcomes.iter().all(|o| o.score() == Some(1.0)),
                "{:?}",
                outcomes[0]
            );
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("fresh_instance_per_row", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = grader
                .grade(&runtime, &exact_config, &exact_row.0, &exact_row.1)
                .await;
            assert_eq!(outcome.score(), Some(1.0), "{outcome:?}");
        })
    });
    group.finish();

    let mut group = c.benchmark_group("python_grader_json_fuzzy");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("batch_of_100_one_instance", |b| {
        b.to_async(&rt).iter(|| async {
            let outcomes = grader.grade_batch(&runtime, &config, &rows).await;
            assert_eq!(outcomes.len(), BATCH);
            assert!(
                outcomes.iter().all(|o| o.score().is_some()),
                "{:?}",
                outcomes[0]
            );
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("fresh_instance_per_row", |b| {
        b.to_async(&rt).iter(|| async {
            let outcome = grader.grade(&runtime, &config, &sample, &item).await;
            assert!(outcome.score().is_some(), "{outcome:?}");
        })
    });
    let python = std::env::var("FLYWHEEL_PYTHON").unwrap_or_else(|_| "python3".into());
    let payload = json!({
        "source": SOURCE,
        "sample": serde_json::from_str::<serde_json::Value>(&sample).expect("json"),
        "item": serde_json::from_str::<serde_json::Value>(&item).expect("json"),
    })
    .to_string();
    if Command::new(&python).arg("--version").output().is_ok() {
        group.bench_function("python3_process_per_row", |b| {
            b.iter_batched(
                || payload.clone(),
                |payload| {
                    let mut child = Command::new(&python)
                        .args(["-c", RUNNER])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("python3 starts");
                    child
                        .stdin
                        .take()
                        .expect("stdin")
                        .write_all(payload.as_bytes())
                        .expect("write row");
                    let output = child.wait_with_output().expect("python3 runs");
                    assert!(output.status.success());
                },
                BatchSize::SmallInput,
            )
        });
    } else {
        eprintln!("SKIPPED python3_process_per_row: `{python}` is not installed");
    }
    group.finish();

    // The bundled packages are imported lazily, by the grader that uses them: a fresh instance
    // pays the import (decompressing and running the modules) on its first row, a batch once.
    let mut group = c.benchmark_group("python_grader_packages");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(1));
    let text_row = (
        json!({"output_text": "the cat sat on the mat"}).to_string(),
        json!({"reference": "the cat is on the mat"}).to_string(),
    );
    for (name, source) in PACKAGE_GRADERS {
        let config = json!({"type": "python", "name": name, "source": source}).to_string();
        group.bench_function(format!("{name}_fresh_instance_per_row"), |b| {
            b.to_async(&rt).iter(|| async {
                let outcome = grader
                    .grade(&runtime, &config, &text_row.0, &text_row.1)
                    .await;
                assert!(
                    matches!(&outcome, Outcome::Graded { grade } if grade.label.is_none()),
                    "{outcome:?}"
                );
            })
        });
    }
    group.finish();
}

/// Graders that use a bundled package the way OpenAI grader sources do (BENCHMARKS.md,
/// "Python graders").
const PACKAGE_GRADERS: [(&str, &str); 3] = [
    (
        "nltk_sentence_bleu",
        "from nltk.translate.bleu_score import sentence_bleu, SmoothingFunction\ndef grade(sample, item):\n    return sentence_bleu([item['reference'].split()], sample['output_text'].split(), smoothing_function=SmoothingFunction().method1)\n",
    ),
    (
        "rouge_scorer_rougeL",
        "from rouge_score import rouge_scorer\ndef grade(sample, item):\n    return rouge_scorer.RougeScorer(['rougeL'], use_stemmer=True).score(item['reference'], sample['output_text'])['rougeL'].fmeasure\n",
    ),
    (
        "sympy_simplify",
        "import sympy\ndef grade(sample, item):\n    x = sympy.Symbol('x')\n    return 1.0 if sympy.simplify(sympy.sin(x)**2 + sympy.cos(x)**2) == 1 else 0.0\n",
    ),
];

criterion_group!(python_graders, benches);
criterion_main!(python_graders);
