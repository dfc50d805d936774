//! Grader runtime benchmark (issue 3 item 9): the same rows (1 KB sample, 1 KB item) graded by
//! the same logic (`tests/components/echo-v1/src/logic.rs`: exact match, and token F1)
//! - natively (the Rust function called directly): the baseline;
//! - in a fresh sandbox per row (fresh `Store` + instance from `InstancePre`);
//! - in a fresh sandbox per batch of 100 rows (`grade-batch`);
//! - by a `python3` process per row running the equivalent OpenAI python grader;
//!
//! plus the time to load 20 graders from the compile cache (restart of a registry).
//!
//! Run once, in release: `cargo bench -p flywheel --bench graders`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flywheel::graders::{GraderRuntime, Registry, RegistryOptions, RuntimeOptions};

/// Builds the bench grader (`tests/components/echo-v1`) for wasm32-wasip2 with the same helper
/// the build scripts use, and returns its bytes. Done here rather than in `host/build.rs` so
/// every build of the service does not pay for a nested wasm build.
fn bench_grader() -> Vec<u8> {
    let workspace =
        flywheel_build_support::workspace_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let dir = workspace.join("tests").join("components").join("echo-v1");
    let built = flywheel_build_support::build_components(&workspace, &[dir])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(&built[0].wasm).expect("the bench grader was built")
}

#[path = "../../tests/components/echo-v1/src/logic.rs"]
mod logic;

/// The OpenAI-style python grader equivalent to `logic::token_f1`.
const PYTHON_GRADER: &str = r#"
import json, sys
def grade(sample, item):
    # The same tokens the component sees: the compact JSON texts of sample and item.
    expected = json.dumps(item, separators=(",", ":")).split()
    predicted = json.dumps(sample, separators=(",", ":")).split()
    if not expected and not predicted:
        return 1.0
    if not expected or not predicted:
        return 0.0
    overlap = 0
    for token in predicted:
        if token in expected:
            expected.remove(token)
            overlap += 1
    if overlap == 0:
        return 0.0
    p = overlap / len(predicted)
    r = overlap / (overlap + len(expected))
    return 2 * p * r / (p + r)
row = json.loads(sys.argv[1])
print(grade(row["sample"], row["item"]))
"#;

/// About 1 KB of words; `shift` changes some of them so the score is not trivially 1.
fn text(shift: usize) -> String {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
        "lambda", "mu",
    ];
    let mut out = String::new();
    let mut i = 0;
    while out.len() < 1000 {
        out.push_str(words[(i * 7 + shift * (i % 3)) % words.len()]);
        out.push(' ');
        i += 1;
    }
    out
}

/// One row as the grader sees it: sample and item JSON texts of about 1 KB each.
fn row() -> (String, String) {
    let sample = serde_json::json!({ "output_text": text(1) }).to_string();
    let item = serde_json::json!({ "text": text(0) }).to_string();
    (sample, item)
}

/// Appends a custom section so each copy has its own content hash (and cache entry).
fn unique_copy(bytes: &[u8], n: usize) -> Vec<u8> {
    let name = format!("bench-copy-{n}");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(section.len() as u8);
    out.extend_from_slice(&section);
    out
}

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let runtime = GraderRuntime::new(RuntimeOptions::default()).expect("engine");
    let wasm = bench_grader();
    let registry = tokio.block_on(Registry::start(
        runtime.clone(),
        RegistryOptions {
            builtins: vec![("echo".into(), wasm.clone())],
            ..RegistryOptions::default()
        },
    ));
    let grader = registry.get("echo").expect("bench grader loads");
    let (sample, item) = row();
    let native_score = logic::token_f1(&sample, &item);
    let sandbox_score = tokio
        .block_on(grader.grade(&runtime, "", &sample, &item))
        .score();
    assert_eq!(
        sandbox_score,
        Some(native_score),
        "the sandbox computes what native code does"
    );

    // `exact`: almost no guest work, so the figures are the sandbox's own cost.
    // `token_f1`: real work on 2 KB of text per row.
    let rows: Vec<(String, String)> = (0..100).map(|_| (sample.clone(), item.clone())).collect();
    for (logic_name, config, native) in [
        ("exact", "exact", logic::exact as fn(&str, &str) -> f64),
        ("token_f1", "", logic::token_f1 as fn(&str, &str) -> f64),
    ] {
        let mut group = c.benchmark_group(format!("graders/{logic_name}/per_row"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(1));
        group.bench_function("native", |b| {
            b.iter(|| native(std::hint::black_box(&sample), std::hint::black_box(&item)))
        });
        group.bench_function("fresh_sandbox_per_row", |b| {
            b.to_async(&tokio)
                .iter(|| async { grader.grade(&runtime, config, &sample, &item).await })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("graders/{logic_name}/batch_100"));
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(100));
        group.bench_function("native", |b| {
            b.iter(|| {
                rows.iter()
                    .map(|(s, i)| native(std::hint::black_box(s), std::hint::black_box(i)))
                    .sum::<f64>()
            })
        });
        group.bench_function("fresh_sandbox_per_batch", |b| {
            b.to_async(&tokio)
                .iter(|| async { grader.grade_batch(&runtime, config, &rows).await })
        });
        group.finish();
    }

    let python_row = serde_json::json!({
        "sample": serde_json::from_str::<serde_json::Value>(&sample).expect("json"),
        "item": serde_json::from_str::<serde_json::Value>(&item).expect("json"),
    })
    .to_string();
    let python_ok = std::process::Command::new("python3")
        .arg("-c")
        .arg(PYTHON_GRADER)
        .arg(&python_row)
        .output();
    match python_ok {
        Ok(out) if out.status.success() => {
            let printed: f64 = String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("python prints a float");
            assert!(
                (printed - native_score).abs() < 1e-9,
                "python {printed} vs native {native_score}"
            );
            let mut group = c.benchmark_group("graders/token_f1/per_row_python");
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(3))
                .warm_up_time(Duration::from_millis(500));
            group.throughput(Throughput::Elements(1));
            group.bench_function("python3_process_per_row", |b| {
                b.iter(|| {
                    std::process::Command::new("python3")
                        .arg("-c")
                        .arg(PYTHON_GRADER)
                        .arg(&python_row)
                        .output()
                        .expect("python3 runs")
                })
            });
            group.finish();
        }
        _ => eprintln!("python3 is not available: skipping the python baseline"),
    }

    // Loading 20 graders from a warm compile cache, as a restart does.
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = tempfile::tempdir().expect("temp dir");
    for n in 0..20 {
        std::fs::write(
            dir.path().join(format!("grader-{n}.wasm")),
            unique_copy(&wasm, n),
        )
        .expect("write");
    }
    let options = RegistryOptions {
        graders_dir: Some(dir.path().into()),
        cache_dir: Some(cache.path().into()),
        builtins: Vec::new(),
        watch: false,
    };
    let warm = tokio.block_on(Registry::start(runtime.clone(), options.clone()));
    assert_eq!(
        warm.list()
            .components
            .iter()
            .filter(|c| c.load_error.is_none())
            .count(),
        20,
        "all 20 copies load"
    );
    drop(warm);
    let mut group = c.benchmark_group("graders/load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    group.bench_function("20_graders_from_cache", |b| {
        // A fresh engine each time, as after a restart: nothing is memoised in memory, every
        // grader comes from its `.cwasm` (read, hash, deserialize, InstancePre, info()).
        b.to_async(&tokio).iter(|| {
            let options = options.clone();
            async move {
                let runtime = GraderRuntime::new(RuntimeOptions::default()).expect("engine");
                Registry::start(runtime, options).await
            }
        })
    });
    group.finish();
}

criterion_group!(graders, benches);
criterion_main!(graders);
