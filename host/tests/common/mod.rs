//! What every process test of the `flywheel` binary shares: a command with a clean environment,
//! running it and reading what it printed, and a `flywheel serve` child on a free port of
//! 127.0.0.1 that is killed when the test lets go of it.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flywheel");

/// One token per role; `serve_on` configures all four.
pub const READ: &str = "cli-read-secret";
pub const AGENT: &str = "cli-agent-secret";
pub const ANNOTATOR: &str = "cli-annotator-secret";
pub const ADMIN: &str = "cli-admin-secret";
pub const TOKENS: &str = "reader:read:cli-read-secret,robot:agent:cli-agent-secret,\
                          reviewer:annotator:cli-annotator-secret,ops:admin:cli-admin-secret";

/// The settings a `flywheel` process reads from its environment; removed so the developer's
/// shell never leaks into a test.
const SETTINGS: &[&str] = &[
    "DATABASE_URL",
    "FLYWHEEL_BIND",
    "FLYWHEEL_TOKENS",
    "FLYWHEEL_TOKENS_FILE",
    "FLYWHEEL_TOKEN",
    "FLYWHEEL_SERVER",
    "ENABLE_PROMPT_OPTIMIZATION",
    "PROMPT_AB_TEST_TRAFFIC_SPLIT",
    "PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION",
    "FLYWHEEL_GRADERS_DIR",
    "FLYWHEEL_JOB_LEASE_SECS",
    "FLYWHEEL_LLM_ENDPOINTS",
    "FLYWHEEL_LLM_RUN_TOKEN_BUDGET",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "FLYWHEEL_LOG_FORMAT",
];

/// A `flywheel` command with a clean environment for the settings it reads, its data in
/// `data_dir`.
pub fn flywheel(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in SETTINGS {
        cmd.env_remove(var);
    }
    // One compile cache for every process the tests spawn: the built-ins (the Python
    // interpreter takes seconds to compile) are compiled once per build, not once per test.
    cmd.env(
        "FLYWHEEL_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("flywheel-component-cache"),
    );
    cmd.env("FLYWHEEL_DATA_DIR", data_dir)
        .env("RUST_BACKTRACE", "0");
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the flywheel binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs the command, which must succeed; its standard output.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs the command, which must fail; its standard error.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(!out.status.success(), "{cmd:?} succeeded");
    text(&out.stderr)
}

/// A `flywheel serve` child and the address it announced.
pub struct Served {
    pub child: Child,
    pub url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        // Only does something when a test failed (or ended) before stopping the server.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// `kill -9`: the process gets no chance to finish anything.
    pub fn kill_9(&mut self) {
        let killed = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success(), "kill -9 failed");
        self.child.wait().expect("reap the killed server");
    }
}

/// Starts `flywheel serve` from a prepared command (environment set by the caller) on a free
/// port of 127.0.0.1 with JSON logs and the four role tokens (unless the caller set
/// `FLYWHEEL_TOKENS`), and waits for its `listening` log
/// line. Every log line must be JSON and none may hold a token.
pub fn serve_on(mut command: Command) -> Served {
    command.args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"]);
    // The four role tokens, unless the caller configured its own.
    let own_tokens = command
        .get_envs()
        .any(|(key, value)| key == "FLYWHEEL_TOKENS" && value.is_some());
    if !own_tokens {
        command.env("FLYWHEEL_TOKENS", TOKENS);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn flywheel serve");
    let stderr = child.stderr.take().expect("piped stderr");
    // Owned by the guard from here on, so a failed start kills the child.
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
        assert!(
            [READ, AGENT, ANNOTATOR, ADMIN]
                .iter()
                .all(|secret| !line.contains(secret)),
            "a token was logged: {line}"
        );
        let parsed: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if parsed["fields"]["message"] == "listening" {
            let addr = parsed["fields"]["addr"].as_str().expect("addr field");
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            served.url = format!("http://{addr}");
            return served;
        }
        seen.push(line);
    }
    panic!(
        "flywheel serve did not announce its address; logs:\n{}",
        seen.join("\n")
    );
}
