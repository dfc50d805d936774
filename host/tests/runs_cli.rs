//! Runs through the `flywheel` binary: `runs import|list|show` and `outcomes report` in database
//! and `--server` mode, and `kill -9` of `flywheel serve` during a stream of batch posts losing
//! no acknowledged run, on SQLite and PostgreSQL.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_flywheel");
const TOKENS: &str = "reader:read:cli-read-secret,robot:agent:cli-agent-secret";
const AGENT: &str = "cli-agent-secret";
const READ: &str = "cli-read-secret";

/// A `flywheel` command with a clean environment for the settings it reads.
fn flywheel(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DATABASE_URL",
        "FLYWHEEL_BIND",
        "FLYWHEEL_TOKENS",
        "FLYWHEEL_TOKENS_FILE",
        "FLYWHEEL_TOKEN",
        "FLYWHEEL_SERVER",
        "ENABLE_PROMPT_OPTIMIZATION",
        "FLYWHEEL_GRADERS_DIR",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "FLYWHEEL_LOG_FORMAT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env(
        "FLYWHEEL_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("flywheel-component-cache"),
    );
    cmd.env("FLYWHEEL_DATA_DIR", data_dir);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the flywheel binary runs")
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn run_line(prompt: &str, task: &str) -> Value {
    json!({"promptId": prompt, "taskId": task, "input": {"task_title": task}, "output": "plan", "tokensIn": 10, "tokensOut": 5})
}

fn write_jsonl(path: &Path, lines: &[Value]) {
    let mut file = std::fs::File::create(path).expect("create file");
    for line in lines {
        writeln!(file, "{line}").expect("write line");
    }
}

#[test]
fn the_runs_and_outcomes_commands_have_help_naming_both_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["runs"][..],
        &["runs", "import"],
        &["runs", "list"],
        &["runs", "show"],
        &["outcomes", "report"],
    ] {
        let text = ok(flywheel(dir.path()).args(args).arg("--help"));
        assert!(text.contains("Usage: flywheel"), "{args:?}: {text}");
        assert!(text.contains("--server"), "{args:?}: {text}");
        assert!(text.contains("DATABASE_URL"), "{args:?}: {text}");
    }
    let err =
        fails(flywheel(dir.path()).args(["runs", "import", "x.jsonl", "--batch-size", "1001"]));
    assert!(err.contains("1001"), "{err}");
}

#[test]
fn runs_are_imported_listed_shown_and_completed_in_database_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("runs.jsonl");
    let lines: Vec<Value> = (0..2500)
        .map(|i| {
            run_line(
                if i % 2 == 0 { "planner" } else { "coder" },
                &format!("task-{i}"),
            )
        })
        .collect();
    write_jsonl(&file, &lines);
    let file_arg = file.display().to_string();

    let first = ok(flywheel(dir.path()).args(["runs", "import", &file_arg]));
    assert!(
        first.contains("2500 recorded, 0 already recorded"),
        "{first}"
    );
    let again = ok(flywheel(dir.path()).args(["runs", "import", &file_arg, "--json"]));
    let again: Value = serde_json::from_str(&again).expect("JSON");
    assert_eq!(again, json!({"created": 0, "existing": 2500}));

    // A bad line is named by its number, and nothing of the file is stored.
    let bad = dir.path().join("bad.jsonl");
    let mut bad_lines = vec![run_line("planner", "new-1"), run_line("planner", "new-2")];
    bad_lines.push(json!({"promptId": "planner", "taskId": 7, "input": {}, "output": "x"}));
    write_jsonl(&bad, &bad_lines);
    let err = fails(flywheel(dir.path()).args(["runs", "import", &bad.display().to_string()]));
    assert!(err.contains("line 3") && err.contains("taskId"), "{err}");
    // An unknown prompt is refused by the store; the line is still named.
    let unknown = dir.path().join("unknown.jsonl");
    write_jsonl(
        &unknown,
        &[run_line("planner", "new-3"), run_line("nosuch", "new-4")],
    );
    let err = fails(flywheel(dir.path()).args(["runs", "import", &unknown.display().to_string()]));
    assert!(err.contains("line 2") && err.contains("nosuch"), "{err}");

    let table =
        ok(flywheel(dir.path()).args(["runs", "list", "--prompt", "coder", "--limit", "3"]));
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].starts_with("ID"), "{table}");
    assert_eq!(
        rows.iter().filter(|r| r.contains(" coder ")).count(),
        3,
        "{table}"
    );
    assert!(table.contains("task-2499"), "newest first: {table}");
    assert!(table.contains("more: --cursor r"), "{table}");
    let listed: Value = serde_json::from_str(&ok(flywheel(dir.path()).args([
        "runs", "list", "--prompt", "planner", "--limit", "2", "--json",
    ])))
    .expect("JSON");
    let id = listed["items"][0]["id"].as_str().expect("id").to_owned();
    let task = listed["items"][0]["taskId"]
        .as_str()
        .expect("task")
        .to_owned();
    assert!(listed["nextCursor"].is_string());

    let outcomes = dir.path().join("outcomes.jsonl");
    write_jsonl(
        &outcomes,
        &[
            json!({"taskId": task, "testsPassed": true}),
            json!({"taskId": "later", "prMerged": false}),
        ],
    );
    let reported =
        ok(flywheel(dir.path()).args(["outcomes", "report", &outcomes.display().to_string()]));
    assert!(
        reported.contains("reported 2 outcomes, 1 runs updated"),
        "{reported}"
    );

    let shown: Value =
        serde_json::from_str(&ok(flywheel(dir.path()).args(["runs", "show", &id]))).expect("JSON");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["outcome"]["testsPassed"], true, "{shown}");
    assert_eq!(shown["success"], true);
    let err =
        fails(flywheel(dir.path()).args(["runs", "show", "0190b5a2-7c3e-7000-8000-000000000000"]));
    assert!(err.contains("not found"), "{err}");
}

/// A `flywheel serve` child and the address it announced.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `flywheel serve` on a free port and waits for its `listening` log line.
fn serve_on(mut command: Command) -> Served {
    let mut child = command
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
        .env("FLYWHEEL_TOKENS", TOKENS)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flywheel serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut served = Served {
        child,
        url: String::new(),
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        let parsed: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if parsed["fields"]["message"] == "listening" {
            let addr = parsed["fields"]["addr"].as_str().expect("addr field");
            std::thread::spawn(move || while rx.recv().is_ok() {});
            served.url = format!("http://{addr}");
            return served;
        }
        seen.push(line);
    }
    panic!("flywheel serve did not start; logs:\n{}", seen.join("\n"));
}

#[test]
fn server_mode_imports_and_lists_through_the_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    let served = serve_on(flywheel(dir.path()));
    let client = tempfile::tempdir().expect("temp dir");
    let file = client.path().join("runs.jsonl");
    write_jsonl(
        &file,
        &(0..30)
            .map(|i| run_line("fixer", &format!("s-{i}")))
            .collect::<Vec<_>>(),
    );
    let remote = |args: &[&str], token: &str| {
        let mut cmd = flywheel(client.path());
        cmd.args(args)
            .args(["--server", &served.url])
            .env("FLYWHEEL_TOKEN", token);
        cmd
    };
    let imported = ok(&mut remote(
        &[
            "runs",
            "import",
            &file.display().to_string(),
            "--batch-size",
            "7",
        ],
        AGENT,
    ));
    assert!(imported.contains("30 recorded"), "{imported}");
    let err = fails(&mut remote(
        &["runs", "import", &file.display().to_string()],
        READ,
    ));
    assert!(err.contains("forbidden"), "{err}");
    let unknown = client.path().join("unknown.jsonl");
    write_jsonl(
        &unknown,
        &[
            run_line("fixer", "u-1"),
            run_line("fixer", "u-2"),
            run_line("ghost", "u-3"),
        ],
    );
    let err = fails(&mut remote(
        &["runs", "import", &unknown.display().to_string()],
        AGENT,
    ));
    assert!(
        err.contains("line 3") && err.contains("unknown_prompt"),
        "{err}"
    );
    let listed: Value = serde_json::from_str(&ok(&mut remote(
        &[
            "runs", "list", "--prompt", "fixer", "--limit", "500", "--json",
        ],
        READ,
    )))
    .expect("JSON");
    assert_eq!(listed["items"].as_array().expect("items").len(), 30);
    assert!(
        !client.path().join("flywheel.db").exists(),
        "everything went through the server"
    );
}

/// Posts batches until the server stops answering; returns every id it acknowledged.
async fn post_until_killed(base: String, writer: usize, acked: Arc<Mutex<Vec<String>>>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    for batch in 0..400 {
        let runs: Vec<Value> = (0..50)
            .map(|i| run_line("planner", &format!("w{writer}-b{batch}-r{i}")))
            .collect();
        let Ok(response) = http
            .post(format!("{base}/api/runs"))
            .bearer_auth(AGENT)
            .json(&json!({ "runs": runs }))
            .send()
            .await
        else {
            return;
        };
        if !response.status().is_success() {
            return;
        }
        let Ok(answer) = response.json::<Value>().await else {
            return;
        };
        let ids = answer["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned());
        acked.lock().expect("lock").extend(ids);
    }
}

fn kill_during_batch_posts_loses_no_acknowledged_run(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = || {
        let mut cmd = flywheel(dir.path());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        cmd
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut served = serve_on(command());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| runtime.spawn(post_until_killed(served.url.clone(), w, acked.clone())))
        .collect();
    // Kill once some batches are acknowledged, while the writers are still posting.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().expect("lock").len() < 1000 {
        assert!(
            Instant::now() < deadline,
            "the server acknowledged too little"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-9", &served.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    served.child.wait().expect("reap the killed server");
    for writer in writers {
        runtime.block_on(writer).expect("writer task");
    }
    let acknowledged = acked.lock().expect("lock").clone();
    assert!(
        acknowledged.len() < 3 * 400 * 50,
        "the kill came after every post"
    );

    let restarted = serve_on(command());
    let missing: Vec<String> = runtime.block_on(async {
        let http = reqwest::Client::new();
        let mut missing = Vec::new();
        for id in &acknowledged {
            let status = http
                .get(format!("{}/api/runs/{id}", restarted.url))
                .bearer_auth(READ)
                .send()
                .await
                .expect("the restarted server answers")
                .status();
            if status != reqwest::StatusCode::OK {
                missing.push(format!("{id}: {status}"));
            }
        }
        missing
    });
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged runs lost: {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn kill_9_during_batch_posts_loses_no_acknowledged_run_on_sqlite() {
    kill_during_batch_posts_loses_no_acknowledged_run(None);
}

#[test]
fn kill_9_during_batch_posts_loses_no_acknowledged_run_on_postgres() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(flywheel::store::testing::postgres_fresh());
    kill_during_batch_posts_loses_no_acknowledged_run(Some(db.url()));
    drop(db);
}
