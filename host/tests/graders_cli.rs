//! `flywheel graders list`, `flywheel grade` and `flywheel graders new`, run as processes.

mod common;

use std::process::Command;

use common::{flywheel, run, text};

use std::path::Path;

#[test]
fn graders_list_shows_the_builtins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(flywheel(dir.path()).args(["graders", "list", "--json"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON listing");
    let names: Vec<&str> = listing["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    // The pure built-ins are always there; the Python grader and the model graders join them
    // where their build prerequisites exist, so the list is checked for inclusion.
    for builtin in [
        "diff-valid",
        "files-match",
        "string-check",
        "text-similarity",
        "score-model",
        "label-model",
        "cosine-similarity",
    ] {
        assert!(names.contains(&builtin), "{builtin} missing from {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "the listing is sorted by name");
    assert!(
        listing["components"]
            .as_array()
            .expect("components")
            .iter()
            .all(|c| c["loadError"].is_null()),
        "{listing}"
    );
    let table = run(flywheel(dir.path()).args(["graders", "list"]));
    assert!(
        text(&table.stdout).contains("string-check         0.1.0     grader"),
        "{}",
        text(&table.stdout)
    );
    assert!(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("flywheel-component-cache")
            .join("components")
            .read_dir()
            .map(|d| d.count())
            .unwrap_or(0)
            >= 4,
        "compiled components are cached"
    );
}

#[test]
fn grade_prints_a_summary_and_json_rows_with_bad_lines_by_number() {
    let dir = tempfile::tempdir().expect("temp dir");
    let definition = dir.path().join("eq.json");
    std::fs::write(
        &definition,
        r#"{"type":"string_check","name":"eq","input":"{{sample.output_text}}","reference":"{{item.label}}","operation":"eq"}"#,
    )
    .expect("write");
    let rows = dir.path().join("rows.jsonl");
    std::fs::write(
        &rows,
        [
            r#"{"item":{"label":"Paris"},"sample":{"output_text":"Paris"}}"#,
            r#"{"item":{"label":"Paris"},"sample":{"output_text":"Lyon"}}"#,
            "not json",
            r#"{"item":{"label":"x"},"sample":"x"}"#,
        ]
        .join("\n"),
    )
    .expect("write");
    let out = run(flywheel(dir.path())
        .args(["grade", "--grader"])
        .arg(&definition)
        .arg("--data")
        .arg(&rows));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    // Mean and pass rate share one denominator (the graded rows); the errored row is counted
    // apart, by kind.
    let expected = "rows 4, graded 3, errored 1 (invalid_row 1); over the 3 graded rows: mean score 0.667, pass rate 66.7%";
    assert!(summary.contains(expected), "{summary}");

    // The same definition given inline.
    let inline = std::fs::read_to_string(&definition).expect("read");
    let out = run(flywheel(dir.path())
        .args(["grade", "--grader", &inline, "--data"])
        .arg(&rows));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(expected),
        "{}",
        text(&out.stdout)
    );

    let out = run(flywheel(dir.path())
        .args(["grade", "--json", "--grader"])
        .arg(&definition)
        .arg("--data")
        .arg(&rows));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON per row"))
        .collect();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["grade"]["score"], 1.0);
    assert_eq!(results[1]["grade"]["score"], 0.0);
    assert_eq!(results[2]["status"], "invalid_row");
    assert_eq!(results[2]["line"], 3);

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"type":"string_check","name":"eq","input":"a","reference":"b","operation":"contains"}"#,
    )
    .expect("write");
    let out = run(flywheel(dir.path())
        .args(["grade", "--grader"])
        .arg(&bad)
        .arg("--data")
        .arg(&rows));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("operation: unknown variant `contains`"),
        "{}",
        text(&out.stderr)
    );
    let out = run(flywheel(dir.path())
        .args(["grade", "--grader", "no-such-component", "--data"])
        .arg(&rows));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("component `no-such-component` is not loaded"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn graders_new_scaffolds_a_crate_that_builds_for_wasm32_wasip2_and_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crate_dir = dir.path().join("exact-answer");
    let out = run(flywheel(dir.path())
        .args(["graders", "new", "exact-answer", "--dir"])
        .arg(&crate_dir));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bad = run(flywheel(dir.path()).args(["graders", "new", "Bad_Name"]));
    assert!(!bad.status.success());
    // Build it as a user would; its own target dir beside the shared one keeps dependencies warm.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
        .join("scaffold-build");
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str()
            && (key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS")
        {
            cargo.env_remove(key);
        }
    }
    let build = run(cargo
        .current_dir(&crate_dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target));
    assert!(
        build.status.success(),
        "the generated crate builds: {}",
        text(&build.stderr)
    );
    let wasm = target
        .join("wasm32-wasip2")
        .join("release")
        .join("exact_answer.wasm");
    let graders_dir = dir.path().join("graders");
    std::fs::create_dir_all(&graders_dir).expect("mkdir");
    std::fs::copy(&wasm, graders_dir.join("exact-answer.wasm")).expect("copy the component");
    let out = run(flywheel(dir.path()).args(["graders", "list", "--json"]));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON listing");
    let entry = listing["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "exact-answer").cloned())
        .expect("listed");
    assert!(entry["loadError"].is_null(), "{entry}");
    assert_eq!(entry["world"], "grader");
}
