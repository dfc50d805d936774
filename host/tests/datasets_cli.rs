//! Datasets through the `flywheel` binary: `datasets create|upload|list|show|rows|delete` in
//! database mode and in `--server` mode, on SQLite; and `prompts create` and `import` of prompts
//! written elsewhere.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{ANNOTATOR, READ, fails, flywheel, ok, run, serve_on};
use serde_json::{Value, json};

fn write_lines(path: &Path, lines: &[Value]) {
    let mut file = std::fs::File::create(path).expect("create file");
    for line in lines {
        writeln!(file, "{line}").expect("write line");
    }
}

/// A `flywheel` command in database mode on `data_dir` with `args`.
fn flywheel_with(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = flywheel(data_dir);
    cmd.args(args);
    cmd
}

/// Records `runs` with `flywheel runs import` in database mode.
fn import_runs(data_dir: &Path, runs: &[Value]) {
    let file = data_dir.join("runs.jsonl");
    write_lines(&file, runs);
    ok(&mut flywheel_with(
        data_dir,
        &["runs", "import", &file.display().to_string()],
    ));
}

fn eval_rows() -> Vec<Value> {
    (0..12)
        .map(|i| json!({"item": {"q": format!("question {i}")}, "sample": {"output_text": format!("answer {i}")}}))
        .collect()
}

#[test]
fn datasets_are_created_uploaded_and_read_in_database_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = |args: &[&str]| flywheel_with(dir.path(), args);
    import_runs(
        dir.path(),
        &(0..7)
            .map(|i| json!({"promptId": "coder", "taskId": format!("t-{i}"), "input": {"plan": i}, "output": format!("diff {i}")}))
            .collect::<Vec<_>>(),
    );
    let created = ok(&mut cli(&[
        "datasets",
        "create",
        "coder-all",
        "--prompt",
        "coder",
    ]));
    assert!(
        created.contains("created coder-all v1: 7 rows"),
        "{created}"
    );

    let file = dir.path().join("eval.jsonl");
    write_lines(&file, &eval_rows());
    let uploaded: Value = serde_json::from_str(&ok(&mut cli(&[
        "datasets",
        "upload",
        "coder-all",
        "--prompt",
        "coder",
        "--file",
        &file.display().to_string(),
        "--validation-fraction",
        "0.5",
        "--json",
    ])))
    .expect("JSON");
    assert_eq!(uploaded["version"], 2);
    assert_eq!(uploaded["source"], "jsonl");
    assert_eq!(uploaded["rowCount"], 12);

    let listed = ok(&mut cli(&["datasets", "list"]));
    assert!(
        listed.contains("coder-all") && listed.contains("v2"),
        "{listed}"
    );
    let shown = ok(&mut cli(&["datasets", "show", "coder-all"]));
    assert!(shown.contains("runs") && shown.contains("jsonl"), "{shown}");

    // Rows print as OpenAI eval JSONL, the same lines as the file, in order, a page at a time.
    let first = run(&mut cli(&["datasets", "rows", "coder-all", "--limit", "5"]));
    let printed = String::from_utf8_lossy(&first.stdout).into_owned();
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, eval_rows()[..5].to_vec());
    let hint = String::from_utf8_lossy(&first.stderr).into_owned();
    let cursor = hint
        .split("--cursor ")
        .nth(1)
        .map(str::trim)
        .expect("a cursor for the next page");
    let next: Value = serde_json::from_str(&ok(&mut cli(&[
        "datasets",
        "rows",
        "coder-all",
        "--limit",
        "100",
        "--cursor",
        cursor,
        "--json",
    ])))
    .expect("JSON");
    assert_eq!(next["items"].as_array().map(Vec::len), Some(7));
    assert_eq!(next["nextCursor"], Value::Null);

    // A bad line is named and nothing is stored.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"item\": {}}\n{\"item\": 3}\n").expect("write");
    let err = fails(&mut cli(&[
        "datasets",
        "upload",
        "coder-all",
        "--prompt",
        "coder",
        "--file",
        &bad.display().to_string(),
    ]));
    assert!(err.contains("jsonl:2.item"), "{err}");
    let after: Value =
        serde_json::from_str(&ok(&mut cli(&["datasets", "show", "coder-all", "--json"])))
            .expect("JSON");
    assert_eq!(after["latestVersion"], 2);

    ok(&mut cli(&["datasets", "delete", "coder-all"]));
    let err = fails(&mut cli(&["datasets", "show", "coder-all"]));
    assert!(err.contains("dataset coder-all not found"), "{err}");
}

#[test]
fn server_mode_uploads_and_reads_through_the_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_on(flywheel(dir.path()));
    let client = tempfile::tempdir().expect("temp dir");
    let file = client.path().join("eval.jsonl");
    write_lines(&file, &eval_rows());
    let remote = |args: &[&str], token: &str| {
        let mut cmd = flywheel(client.path());
        cmd.args(args)
            .args(["--server", &served.url])
            .env("FLYWHEEL_TOKEN", token);
        cmd
    };
    let upload = [
        "datasets",
        "upload",
        "golden",
        "--prompt",
        "reviewer",
        "--file",
        &file.display().to_string(),
    ];
    let err = fails(&mut remote(&upload, READ));
    assert!(err.contains("forbidden"), "{err}");
    let created = ok(&mut remote(&upload, ANNOTATOR));
    assert!(created.contains("created golden v1: 12 rows"), "{created}");
    let shown: Value = serde_json::from_str(&ok(&mut remote(
        &["datasets", "show", "golden", "--json"],
        READ,
    )))
    .expect("JSON");
    assert_eq!(shown["versions"][0]["createdBy"], "reviewer");
    let validation: Value = serde_json::from_str(&ok(&mut remote(
        &[
            "datasets",
            "rows",
            "golden",
            "--split",
            "validation",
            "--json",
        ],
        READ,
    )))
    .expect("JSON");
    assert_eq!(
        validation["items"].as_array().map(|i| i.len() as i64),
        shown["versions"][0]["validationCount"].as_i64()
    );
    let err = fails(&mut remote(
        &[
            "datasets",
            "create",
            "golden",
            "--prompt",
            "reviewer",
            "--from",
            "2099-01-01T00:00:00Z",
        ],
        ANNOTATOR,
    ));
    assert!(err.contains("invalid_input"), "{err}");
    // Export through the service: the uploaded lines back, streamed to a file; the floor's
    // refusal names its code.
    let exported = client.path().join("golden.jsonl");
    let export = [
        "export",
        "reviewer",
        "--format",
        "openai-jsonl",
        "--dataset",
        "golden",
        "--min-rows",
        "0",
        "--output",
        &exported.display().to_string(),
    ];
    let err = fails(&mut remote(&export, READ));
    assert!(err.contains("forbidden"), "{err}");
    assert!(!exported.exists());
    ok(&mut remote(&export, ANNOTATOR));
    let lines: Vec<Value> = std::fs::read_to_string(&exported)
        .expect("the export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, eval_rows());
    let err = fails(&mut remote(
        &[
            "export",
            "reviewer",
            "--format",
            "csv",
            "--dataset",
            "golden",
            "--min-rows",
            "1",
        ],
        ANNOTATOR,
    ));
    assert!(err.contains("not_enough_rows"), "{err}");
    assert!(
        !client.path().join("flywheel.db").exists(),
        "everything went through the server"
    );
}

#[test]
fn prompts_are_created_and_imported_in_database_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = |args: &[&str]| flywheel_with(dir.path(), args);
    let first = dir.path().join("triage.txt");
    std::fs::write(&first, "Label {{ticket}}.\nBe brief.\n").expect("write");
    let created = ok(&mut cli(&[
        "prompts",
        "create",
        "triage",
        "--file",
        &first.display().to_string(),
        "--description",
        "Labels tickets",
        "--failure-mode",
        "wrong_label=the label is wrong",
    ]));
    assert!(
        created.contains("created prompt triage with v1 active"),
        "{created}"
    );
    let modes = ok(&mut cli(&["failure-modes", "list", "triage"]));
    assert!(modes.contains("wrong_label"), "{modes}");

    let second = dir.path().join("triage-v2.txt");
    std::fs::write(&second, "Label {{ticket}}.\nBe very brief.\n").expect("write");
    let imported = ok(&mut cli(&[
        "import",
        "triage",
        "--file",
        &second.display().to_string(),
        "--notes",
        "from the old dashboard",
    ]));
    assert!(
        imported.contains("- Be brief.\n+ Be very brief.\n"),
        "{imported}"
    );
    assert!(
        imported.contains("imported triage v2 (inactive"),
        "{imported}"
    );
    let changed = dir.path().join("triage-v3.txt");
    std::fs::write(&changed, "Label {{ticket}} for {{team}}.\n").expect("write");
    let err = fails(&mut cli(&[
        "import",
        "triage",
        "--file",
        &changed.display().to_string(),
    ]));
    assert!(err.contains("team"), "{err}");
    let allowed = ok(&mut cli(&[
        "import",
        "triage",
        "--file",
        &changed.display().to_string(),
        "--allow-variable-changes",
        "--json",
    ]));
    let allowed: Value = serde_json::from_str(&allowed).expect("JSON");
    assert_eq!(allowed["variablesAdded"], json!(["team"]));
}

#[test]
fn exports_are_written_to_stdout_or_a_file_in_database_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cli = |args: &[&str]| flywheel_with(dir.path(), args);
    import_runs(
        dir.path(),
        &(0..3)
            .map(|i| json!({"promptId": "coder", "taskId": format!("x-{i}"), "input": {"plan": format!("step, {i}")}, "output": format!("diff {i}")}))
            .collect::<Vec<_>>(),
    );

    // No run is annotated: the floor refuses, and a refused --output file is not left behind.
    let out = dir.path().join("coder.csv");
    let out_arg = out.display().to_string();
    let refused = fails(&mut cli(&[
        "export",
        "coder",
        "--format",
        "csv",
        "--min-rows",
        "1",
        "--output",
        &out_arg,
    ]));
    assert!(refused.contains("0 annotated rows"), "{refused}");
    assert!(!out.exists());

    // JSONL to stdout: a line per run, newest first.
    let printed = ok(&mut cli(&[
        "export",
        "coder",
        "--format",
        "openai-jsonl",
        "--min-rows",
        "0",
    ]));
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let expected: Vec<Value> = (0..3)
        .rev()
        .map(|i| json!({"item": {"plan": format!("step, {i}")}, "sample": {"output_text": format!("diff {i}")}}))
        .collect();
    let mut sorted = lines.clone();
    sorted.sort_by_key(|l| l.to_string());
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_by_key(|l| l.to_string());
    assert_eq!(sorted, expected_sorted);

    // CSV to a file: quoted where a value holds a comma.
    ok(&mut cli(&[
        "export",
        "coder",
        "--format",
        "csv",
        "--min-rows",
        "0",
        "--output",
        &out_arg,
    ]));
    let csv = std::fs::read_to_string(&out).expect("the file");
    let mut records: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(records.pop(), Some(""), "ends with CRLF: {csv:?}");
    assert_eq!(records[0], "plan,output,rating,feedback,failure_mode");
    records.remove(0);
    records.sort();
    assert_eq!(
        records,
        [
            "\"step, 0\",diff 0,,,",
            "\"step, 1\",diff 1,,,",
            "\"step, 2\",diff 2,,,"
        ]
    );

    // A dataset version: the uploaded lines back, in order.
    let file = dir.path().join("eval.jsonl");
    write_lines(&file, &eval_rows());
    ok(&mut cli(&[
        "datasets",
        "upload",
        "coder-set",
        "--prompt",
        "coder",
        "--file",
        &file.display().to_string(),
    ]));
    let printed = ok(&mut cli(&[
        "export",
        "coder",
        "--format",
        "openai-jsonl",
        "--dataset",
        "coder-set",
        "--min-rows",
        "0",
    ]));
    let lines: Vec<Value> = printed
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines, eval_rows());

    // Secrets are redacted, and the count of redacted values goes to stderr at the end.
    let leaky = dir.path().join("leaky.jsonl");
    write_lines(
        &leaky,
        &[
            json!({"item": {"q": "key AKIAIOSFODNN7EXAMPLE", "r": "a risk-based plan"}, "sample": {"output_text": "postgres://u:hunter2@db/x"}}),
            json!({"item": {"q": "nothing here"}}),
        ],
    );
    ok(&mut cli(&[
        "datasets",
        "upload",
        "leaky",
        "--prompt",
        "coder",
        "--file",
        &leaky.display().to_string(),
    ]));
    let out = run(&mut cli(&[
        "export",
        "coder",
        "--format",
        "openai-jsonl",
        "--dataset",
        "leaky",
        "--min-rows",
        "0",
    ]));
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("AKIAIOSFODNN7EXAMPLE") && !printed.contains("hunter2"));
    assert!(
        printed.contains("key [REDACTED:aws_access_key_id]"),
        "{printed}"
    );
    assert!(printed.contains("a risk-based plan"), "{printed}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().last(), Some("redacted 2 values"), "{stderr}");
}
