//! `flywheel export --eval-definition`, `--format promptfoo` and `flywheel migrate openai-eval`
//! through the binary in database mode, on SQLite: export from one data directory, migrate into
//! a fresh one, export the dataset again and get the same lines; a refused migration prints
//! every problem on its own line and writes nothing.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use common::{fails, flywheel, ok};
use serde_json::{Value, json};

fn cli(data_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = flywheel(data_dir);
    cmd.args(args);
    cmd
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn export_then_migrate_into_a_fresh_database_gives_the_same_rows() {
    let source = tempfile::tempdir().expect("temp dir");
    let fresh = tempfile::tempdir().expect("temp dir");
    let files = tempfile::tempdir().expect("temp dir");
    let runs = files.path().join("runs.jsonl");
    let mut file = std::fs::File::create(&runs).expect("runs file");
    for i in 0..4 {
        let run = json!({"promptId": "planner", "taskId": format!("c-{i}"),
                         "input": {"task_title": format!("task {i}"), "expected": format!("plan {i}")},
                         "output": format!("plan {}", i % 2)});
        writeln!(file, "{run}").expect("write");
    }
    drop(file);
    ok(&mut cli(source.path(), &["runs", "import", &path(&runs)]));

    let items = files.path().join("items.jsonl");
    let eval = files.path().join("eval.json");
    let out = cli(
        source.path(),
        &[
            "export",
            "planner",
            "--format",
            "openai-jsonl",
            "--min-rows",
            "0",
            "--output",
            &path(&items),
            "--eval-definition",
            &path(&eval),
        ],
    )
    .output()
    .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The seeded WebAssembly grader has no OpenAI equivalent: listed, not dropped.
    assert!(
        stderr.contains("not exportable: grader files_match (wasm)"),
        "{stderr}"
    );
    let definition: Value =
        serde_json::from_str(&std::fs::read_to_string(&eval).expect("eval")).expect("JSON");
    assert_eq!(definition["data_source_config"]["type"], "custom");
    assert_eq!(
        definition["data_source_config"]["item_schema"]["required"],
        json!(["expected", "task_title"])
    );

    let config = files.path().join("promptfoo.json");
    ok(&mut cli(
        source.path(),
        &[
            "export",
            "planner",
            "--format",
            "promptfoo",
            "--min-rows",
            "0",
            "--output",
            &path(&config),
        ],
    ));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("config")).expect("JSON");
    assert_eq!(config["tests"].as_array().map(Vec::len), Some(4));

    // Migrate with one criterion of our own (the seeded ones exist in the fresh database too).
    let own_eval = files.path().join("own-eval.json");
    let mut own = definition.clone();
    own["testing_criteria"] = json!([{"type": "string_check", "name": "exact",
        "input": "{{sample.output_text}}", "reference": "{{item.expected}}", "operation": "eq"}]);
    std::fs::write(&own_eval, own.to_string()).expect("write eval");
    let migrated = ok(&mut cli(
        fresh.path(),
        &[
            "migrate",
            "openai-eval",
            "--eval",
            &path(&own_eval),
            "--items",
            &path(&items),
            "--prompt",
            "planner",
            "--dataset",
            "moved",
        ],
    ));
    assert!(
        migrated.contains("graders exact; dataset moved version 1 (4 rows)"),
        "{migrated}"
    );
    let again = files.path().join("again.jsonl");
    ok(&mut cli(
        fresh.path(),
        &[
            "export",
            "planner",
            "--format",
            "openai-jsonl",
            "--dataset",
            "moved",
            "--min-rows",
            "0",
            "--output",
            &path(&again),
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(&again).expect("again"),
        std::fs::read_to_string(&items).expect("items")
    );

    // A refusal: every problem on its own line, nothing written.
    let bad_items = files.path().join("bad.jsonl");
    std::fs::write(
        &bad_items,
        "{\"item\": {\"task_title\": \"a\", \"expected\": \"b\"}}\n{oops\n",
    )
    .expect("write");
    let mut bad_eval = own.clone();
    bad_eval["testing_criteria"][0]["name"] = json!("other");
    bad_eval["testing_criteria"][0]["operation"] = json!("contains");
    std::fs::write(&own_eval, bad_eval.to_string()).expect("write eval");
    let refused = fails(&mut cli(
        fresh.path(),
        &[
            "migrate",
            "openai-eval",
            "--eval",
            &path(&own_eval),
            "--items",
            &path(&bad_items),
            "--prompt",
            "planner",
            "--dataset",
            "moved",
        ],
    ));
    assert!(
        refused.contains("\neval.testing_criteria[0].operation: ")
            || refused.starts_with("eval.testing_criteria[0].operation: "),
        "{refused}"
    );
    assert!(refused.contains("\nitems.jsonl:2: not JSON"), "{refused}");
    assert!(
        refused.contains("2 problem(s); nothing was migrated"),
        "{refused}"
    );
    let shown = ok(&mut cli(
        fresh.path(),
        &["datasets", "show", "moved", "--json"],
    ));
    let shown: Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["latestVersion"], 1, "{shown}");
}
