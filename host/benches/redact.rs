//! The cost of secret redaction on export lines: serializing a line (what the export does
//! anyway) against redacting its strings and then serializing it, in the same run. Not a
//! criterion benchmark: one ratio over a fixed corpus is the figure wanted.
//!
//! Run: `cargo bench -p flywheel --bench redact` (env `FLYWHEEL_BENCH_LINES`, default 20000;
//! 1 line in 100 holds a secret, the rest are prose, paths and code of a typical agent run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use flywheel::redact::Redactor;
use serde_json::{Value, json};

fn line(i: usize) -> Value {
    let secret = if i.is_multiple_of(100) {
        " export OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAB7CD0ef"
    } else {
        ""
    };
    json!({
        "item": {
            "task_title": format!("Fix the risk-based retry in the uploader (task {i})"),
            "task_description": "The uploader retries forever when the server answers 503; add a bounded backoff, log each attempt with its request id 3f2b6c1e-8a4d-4f6e-9b2a-1c3d5e7f9a0b, and keep https://example.com/docs/upload@v2 working.",
            "files": ["src/upload.rs", "src/retry.rs", "tests/upload.rs"],
            "rating": "bad",
            "output_feedback": "missed the tests; see commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        },
        "sample": {"output_text": format!("diff --git a/src/retry.rs b/src/retry.rs\n--- a/src/retry.rs\n+++ b/src/retry.rs\n@@ -1,4 +1,9 @@\n+const MAX_ATTEMPTS: u32 = {};\n+fn backoff(attempt: u32) -> Duration {{\n+    Duration::from_millis(100 << attempt.min(6))\n+}}\n{secret}", i % 7)},
    })
}

fn main() {
    let n: usize = std::env::var("FLYWHEEL_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let lines: Vec<Value> = (0..n).map(line).collect();
    let mut best = (Duration::MAX, Duration::MAX);
    let mut redacted = 0;
    for _ in 0..5 {
        let start = Instant::now();
        for l in &lines {
            black_box(l.clone().to_string());
        }
        let plain = start.elapsed();
        let start = Instant::now();
        let mut redactor = Redactor::new();
        for l in &lines {
            let mut l = l.clone();
            redactor.redact_value(&mut l);
            black_box(l.to_string());
        }
        let with = start.elapsed();
        redacted = redactor.values;
        best = (best.0.min(plain), best.1.min(with));
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{n} lines, {redacted} values redacted; best of 5: serialize {:.0} lines/s, redact + serialize {:.0} lines/s, ratio {:.2}",
        rate(best.0),
        rate(best.1),
        rate(best.1) / rate(best.0)
    );
}
