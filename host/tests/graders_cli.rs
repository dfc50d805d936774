//! `flywheel graders list`, `flywheel grade` and `flywheel graders new`, run as processes.

mod common;

use std::process::Command;

use common::{flywheel, run, text};

use std::path::{Path, PathBuf};

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

/// `cargo` as a grader author runs it: none of the `CARGO_*` variables this test runs under.
fn author_cargo() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        if let Some(key) = key.to_str()
            && (key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS")
        {
            cargo.env_remove(key);
        }
    }
    cargo
}

/// A target dir of its own beside the shared one, so the scaffold builds keep their
/// dependencies warm without contending for the lock of the build running this test.
fn side_target(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
        .join(name)
}

/// Packs grader-sdk as `cargo publish` would upload it and unpacks the `.crate` into `into`:
/// what a grader author gets from crates.io, with no Flywheel tree around it.
fn packaged_sdk(into: &Path) -> PathBuf {
    let target = side_target("sdk-package");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let package = run(author_cargo()
        .current_dir(&workspace)
        .args([
            "package",
            "-p",
            "grader-sdk",
            "--allow-dirty",
            "--no-verify",
            "--target-dir",
        ])
        .arg(&target));
    assert!(package.status.success(), "{}", text(&package.stderr));
    let manifest = std::fs::read_to_string(workspace.join("grader-sdk").join("Cargo.toml"))
        .expect("grader-sdk manifest");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("grader-sdk version");
    let file = target
        .join("package")
        .join(format!("grader-sdk-{version}.crate"));
    let unpack = run(Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(into));
    assert!(unpack.status.success(), "{}", text(&unpack.stderr));
    into.join(format!("grader-sdk-{version}"))
}

#[test]
fn graders_new_scaffolds_a_crate_that_builds_for_wasm32_wasip2_and_loads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = run(flywheel(dir.path()).args(["graders", "new", "Bad_Name"]));
    assert!(!bad.status.success());

    // By default the crate depends on the SDK by version and on nothing in a source tree.
    let plain = dir.path().join("plain");
    let out = run(flywheel(dir.path())
        .args(["graders", "new", "plain", "--dir"])
        .arg(&plain));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("--sdk-path"),
        "{}",
        text(&out.stdout)
    );
    let manifest = std::fs::read_to_string(plain.join("Cargo.toml")).expect("manifest");
    assert!(manifest.contains("\ngrader-sdk = \"0.1\"\n"), "{manifest}");
    assert!(!manifest.contains("\n[patch"), "{manifest}");

    // The SDK is not on crates.io yet, so the author builds against the packaged SDK through
    // the documented override: the .crate cargo would publish, unpacked away from the tree, so
    // the build proves the package is complete (the contract and data are inside it).
    let sdk = packaged_sdk(dir.path());
    assert!(sdk.join("wit").join("grader.wit").is_file());
    let crate_dir = dir.path().join("exact-answer");
    let out = run(flywheel(dir.path())
        .args(["graders", "new", "exact-answer", "--dir"])
        .arg(&crate_dir)
        .arg("--sdk-path")
        .arg(&sdk));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest = std::fs::read_to_string(crate_dir.join("Cargo.toml")).expect("manifest");
    assert!(manifest.contains("\ngrader-sdk = \"0.1\"\n"), "{manifest}");
    assert!(manifest.contains("\n[patch.crates-io]\n"), "{manifest}");
    let workspace =
        std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).expect("workspace");
    assert!(
        !manifest.contains(&*workspace.to_string_lossy()),
        "the crate points into the Flywheel tree: {manifest}"
    );

    let target = side_target("scaffold-build");
    let build = run(author_cargo()
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
    let lock = std::fs::read_to_string(crate_dir.join("Cargo.lock")).expect("Cargo.lock");
    assert!(
        lock.contains("name = \"grader-sdk\"\nversion = \"0.1."),
        "{lock}"
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
    assert_eq!(entry["contractVersion"], "0.1.0", "{entry}");
    assert_eq!(entry["sdkVersion"], "0.1.0", "{entry}");
}
