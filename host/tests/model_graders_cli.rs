//! `flywheel grade` with model-grader definitions, run as a process against the fake model
//! server on 127.0.0.1 (`OPENAI_BASE_URL` pointing at it).

use std::path::Path;
use std::process::Command;

use fake_model::{Behaviour, FakeModel, UsageMode};

const BIN: &str = env!("CARGO_BIN_EXE_flywheel");
/// A key that would only show up in the output if something leaked it.
const KEY: &str = "sk-flywheel-cli-key-4b8e2a6f0c";

fn flywheel(data_dir: &Path, fake: &FakeModel) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "FLYWHEEL_GRADERS_DIR",
        "FLYWHEEL_TOKENS",
        "FLYWHEEL_SERVER",
        "FLYWHEEL_LLM_ENDPOINTS",
        "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
    ] {
        cmd.env_remove(var);
    }
    // One compile cache for every process the tests spawn (as in graders_cli.rs): the built-ins
    // (the Python interpreter takes seconds) compile once per build, not once per test.
    cmd.env(
        "FLYWHEEL_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("flywheel-component-cache"),
    );
    cmd.env("FLYWHEEL_DATA_DIR", data_dir)
        .env("OPENAI_BASE_URL", fake.base_url())
        .env("OPENAI_API_KEY", KEY)
        .env("FLYWHEEL_LLM_MAX_RETRIES", "1")
        .env("RUST_LOG", "info,flywheel=trace,reqwest=debug,hyper=debug")
        .env("RUST_BACKTRACE", "0");
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_inputs(dir: &Path, rows: usize) -> (String, String) {
    let definition = serde_json::json!({
        "type": "score_model",
        "name": "plan_score",
        "model": "judge-1",
        "input": [
            {"role": "system", "content": "Rate the plan for {{item.task}} from 1 to 5."},
            {"role": "user", "content": "{{sample.output_text}}"}
        ],
        "range": [1, 5],
        "pass_threshold": 3.5
    });
    let grader = dir.join("plan_score.json");
    std::fs::write(&grader, definition.to_string()).expect("write definition");
    let data = dir.join("rows.jsonl");
    let lines: Vec<String> = (0..rows)
        .map(|i| format!(r#"{{"item":{{"task":"t{i}"}},"sample":"plan {i}"}}"#))
        .collect();
    std::fs::write(&data, lines.join("\n")).expect("write rows");
    (grader.display().to_string(), data.display().to_string())
}

#[test]
fn grade_runs_a_score_model_definition_against_the_configured_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = FakeModel::start().expect("fake server");
    fake.set_usage(UsageMode::Fixed(20, 4))
        .set_default(Behaviour::answer(
            r#"{"steps":[{"description":"files","conclusion":"named"}],"result":4}"#,
        ));
    let (grader, data) = write_inputs(dir.path(), 3);
    let out = flywheel(dir.path(), &fake)
        .args(["grade", "--json", "--grader", &grader, "--data", &data])
        .output()
        .expect("the flywheel binary runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON result per line"))
        .collect();
    assert_eq!(results.len(), 3, "{stdout}");
    for result in &results {
        assert_eq!(result["grade"]["score"], 4.0, "{result}");
        assert_eq!(result["grade"]["passed"], true);
        assert_eq!(result["grade"]["usage"]["prompt_tokens"], 20);
        assert_eq!(result["grade"]["usage"]["completion_tokens"], 4);
    }
    assert!(
        stderr.contains("tokens 60 prompt + 12 completion"),
        "the summary counts tokens: {stderr}"
    );
    assert_eq!(fake.calls(), 3);
    let first = fake.requests()[0].json.clone().expect("JSON body");
    assert!(
        first["messages"][0]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("Rate the plan for t")),
        "{first}"
    );
}

#[test]
fn grade_output_never_shows_the_key_even_when_the_endpoint_echoes_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = FakeModel::start().expect("fake server");
    fake.push(Behaviour::Status {
        status: 500,
        message: format!("upstream saw {KEY}"),
    })
    .push(Behaviour::answer(format!(
        r#"{{"result":"{KEY}","steps":[]}}"#
    )))
    .set_default(Behaviour::EchoKeyInError);
    let (grader, data) = write_inputs(dir.path(), 4);
    let out = flywheel(dir.path(), &fake)
        .args(["grade", "--json", "--grader", &grader, "--data", &data])
        .output()
        .expect("the flywheel binary runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(fake.calls() >= 4, "the rows reached the endpoint");
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))),
        "the key was sent where it belongs"
    );
    assert!(stdout.contains("***"), "echoes were redacted: {stdout}");
    assert!(!stdout.contains(KEY), "key leaked on stdout: {stdout}");
    assert!(!stderr.contains(KEY), "key leaked on stderr: {stderr}");
    // The listing is printed by the same configuration.
    let listing = flywheel(dir.path(), &fake)
        .args(["graders", "list", "--json"])
        .output()
        .expect("the flywheel binary runs");
    let all = format!("{}{}", text(&listing.stdout), text(&listing.stderr));
    assert!(listing.status.success(), "{all}");
    assert!(all.contains("score-model"), "{all}");
    assert!(!all.contains(KEY), "key leaked from the listing: {all}");
}

#[test]
fn a_bad_llm_setting_stops_the_command_naming_the_variable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fake = FakeModel::start().expect("fake server");
    let (grader, data) = write_inputs(dir.path(), 1);
    let out = flywheel(dir.path(), &fake)
        .env("FLYWHEEL_LLM_MAX_CONCURRENCY", "0")
        .args(["grade", "--grader", &grader, "--data", &data])
        .output()
        .expect("the flywheel binary runs");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("FLYWHEEL_LLM_MAX_CONCURRENCY"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
    assert_eq!(fake.calls(), 0);
}
