//! The guides' commands, run: every fenced block marked `sh` in `docs/workflow.md` and
//! `docs/migrating-from-openai-evals.md` runs in order, with `bash -euo pipefail`, against a live
//! `flywheel serve` on a fresh SQLite file (the demo's built-in model as its model endpoint), the
//! built binary first on `PATH`, in a scratch directory shared by the blocks of one guide. So
//! the guides cannot drift from the code: a command that stops working fails here, naming the
//! guide, the block and its line, and what the block printed.
//!
//! Blocks fenced otherwise (`bash`, `console`, `json`, ...) are shown, not run: starting the
//! server (the test starts the same one) and output samples. Variables a block sets are seen
//! by the blocks after it (each block runs with `set -a` and hands its environment on). The
//! documented address `http://127.0.0.1:8080` is replaced by the test server's.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Served, flywheel, serve_on};

/// The tokens the guides' server is started with (their "Start a server" sections).
const DOC_TOKENS: &str =
    "ops:admin:admin-secret-1,autodev:agent:agent-secret-1,ana:annotator:annotator-secret-1";
/// The address the guides use.
const DOC_ADDRESS: &str = "http://127.0.0.1:8080";
/// The longest one block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(180);

/// A runnable block of a guide.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    /// Line of the opening fence (1-based).
    line: usize,
    /// The commands.
    text: String,
}

/// The blocks fenced as `sh`, in order.
fn sh_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, bool, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => open = Some((i + 1, info.trim() == "sh", String::new())),
            (Some(_), Some(_)) => {
                let (line, runnable, text) = open.take().expect("open block");
                if runnable {
                    blocks.push(Block { line, text });
                }
            }
            (Some((_, _, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

/// Runs `blocks` of `guide` in order in `dir` with `env`; the first failure is an error naming
/// the guide, the block's number and line, its commands and what it printed.
fn run_blocks(
    guide: &str,
    blocks: &[Block],
    dir: &Path,
    env: &[(&str, String)],
    address: &str,
) -> Result<(), String> {
    let state = dir.join(".docs-test-env");
    for (n, block) in blocks.iter().enumerate() {
        let text = block.text.replace(DOC_ADDRESS, address);
        // `set -a` exports what the block assigns; `export -p` hands it to the next block.
        let script = format!(
            "set -a\n[ -f {state} ] && source {state}\nset -euo pipefail\n{text}\nexport -p > {state}\n",
            state = shell_quote(&state)
        );
        let mut command = Command::new("bash");
        command
            .arg("-c")
            .arg(&script)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().map_err(|e| format!("bash: {e}"))?;
        let output = wait_bounded(child, BLOCK_TIMEOUT)
            .map_err(|e| format!("{guide}, block {} (line {}): {e}", n + 1, block.line))?;
        if !output.status.success() {
            return Err(format!(
                "{guide}, block {} (line {}) failed ({}):\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                n + 1,
                block.line,
                output.status,
                block.text.trim_end(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    Ok(())
}

/// Waits for `child`, killing it after `limit`.
fn wait_bounded(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<std::process::Output, String> {
    // Read the pipes on threads so a chatty block cannot fill them and stall.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {limit:?}, killed"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// `PATH` with the built `flywheel` first.
fn path_with_binary() -> String {
    let bin = PathBuf::from(common::BIN);
    let dir = bin.parent().expect("the binary's directory");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Starts a server on a fresh data directory with the guides' tokens and the demo's model.
fn serve_for_guides(data_dir: &Path, model_url: &str) -> Served {
    let mut command = flywheel(data_dir);
    command
        .env("FLYWHEEL_TOKENS", DOC_TOKENS)
        .env("OPENAI_BASE_URL", model_url);
    serve_on(command)
}

/// Runs every `sh` block of `guide` (a path below the repository root) against a new server.
async fn run_guide(guide: &str) {
    let model = flywheel::demo::model::DemoModel::start()
        .await
        .expect("the demo model starts");
    let data = tempfile::tempdir().expect("temp dir");
    let work = tempfile::tempdir().expect("temp dir");
    let served = serve_for_guides(data.path(), &model.base_url());
    let markdown =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(guide))
            .expect("the guide exists");
    let blocks = sh_blocks(&markdown);
    assert!(
        blocks.len() >= 5,
        "{guide}: only {} sh blocks",
        blocks.len()
    );
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flywheel-component-cache");
    let env = [
        ("PATH", path_with_binary()),
        // `flywheel grade` compiles components locally: the tests' shared compile cache.
        ("FLYWHEEL_CACHE_DIR", cache.display().to_string()),
    ];
    let url = served.url.clone();
    let guide = guide.to_owned();
    let dir = work.path().to_owned();
    // The blocks block; the model answers on the runtime's other worker meanwhile.
    let result = tokio::task::spawn_blocking(move || run_blocks(&guide, &blocks, &dir, &env, &url))
        .await
        .expect("the runner ran");
    drop(served);
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workflow_guide_runs_against_a_live_server() {
    run_guide("docs/workflow.md").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_guide_runs_against_a_live_server() {
    run_guide("docs/migrating-from-openai-evals.md").await;
}

#[test]
fn only_sh_blocks_are_extracted_with_their_lines() {
    let markdown = "# T\n```bash\nflywheel serve\n```\ntext\n```sh\necho one\necho two\n```\n```json\n{}\n```\n  ```sh\nls\n  ```\n";
    let blocks = sh_blocks(markdown);
    assert_eq!(
        blocks,
        [
            Block {
                line: 6,
                text: "echo one\necho two\n".to_owned()
            },
            Block {
                line: 13,
                text: "ls\n".to_owned()
            }
        ]
    );
}

#[test]
fn a_failing_block_is_reported_by_number_line_and_output_and_stops_the_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let markdown = "```sh\nX=kept\n```\n\n```sh\necho \"before $X\"\nfalse\necho after\n```\n```sh\ntouch never-run\n```\n";
    let blocks = sh_blocks(markdown);
    let error = run_blocks("guide.md", &blocks, dir.path(), &[], DOC_ADDRESS)
        .expect_err("a failing block fails the run");
    assert!(
        error.contains("guide.md, block 2 (line 5) failed"),
        "{error}"
    );
    // The variable of block 1 reached block 2; `-e` stopped it at `false`.
    assert!(error.contains("before kept"), "{error}");
    assert!(!error.contains("\nafter"), "{error}");
    assert!(!dir.path().join("never-run").exists(), "a later block ran");

    // `-u` and `pipefail` hold too: an unset variable, a failing command inside a pipe.
    for failing in ["echo \"$NOT_SET\"", "false | cat"] {
        let block = Block {
            line: 1,
            text: format!("{failing}\n"),
        };
        assert!(
            run_blocks("g.md", &[block], dir.path(), &[], DOC_ADDRESS).is_err(),
            "{failing} passed"
        );
    }
    // The documented address is replaced by the server's.
    let block = Block {
        line: 1,
        text: format!("test {DOC_ADDRESS} = http://127.0.0.1:9\n"),
    };
    run_blocks("g.md", &[block], dir.path(), &[], "http://127.0.0.1:9").expect("replaced");
}
