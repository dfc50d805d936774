//! The TypeScript client (`clients/typescript`) against this build's `flywheel` binary: its npm
//! packages are installed when missing (`npm ci`, from the npm registry, as CI starts from a
//! fresh clone), then it typechecks, its committed OpenAPI types are compared with the ones
//! generated from a live `flywheel serve` document (drift), and its bun tests exercise every
//! `PromptOptimizer` method against live servers. The bun tests start `flywheel serve` themselves
//! from `FLYWHEEL_BIN` (this binary), with a fresh SQLite file each.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::{BIN, text};

/// Serializes `npm ci`: the tests of this file run in parallel and share `node_modules`.
static INSTALL: Mutex<()> = Mutex::new(());

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/typescript")
}

/// Installs the locked packages when `node_modules` is missing or older than the lock file.
fn install(package: &Path) {
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let installed = package.join("node_modules/.package-lock.json");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let fresh = match (
        modified(&installed),
        modified(&package.join("package-lock.json")),
    ) {
        (Some(installed), Some(locked)) => installed >= locked,
        _ => false,
    };
    if fresh && package.join("node_modules/.bin/bun").exists() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(package)
        .output()
        .expect("npm runs (Node.js 20 or later must be installed)");
    assert!(
        out.status.success(),
        "npm ci failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Runs an npm script of the package with this build's binary; it must succeed.
fn npm_run(args: &[&str]) {
    let package = package_dir();
    install(&package);
    let out = Command::new("npm")
        .args(["run", "--silent"])
        .args(args)
        .current_dir(&package)
        .env("FLYWHEEL_BIN", BIN)
        .env(
            "FLYWHEEL_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("flywheel-component-cache"),
        )
        // The client reads these; a developer's shell must not reach the tests.
        .env_remove("FLYWHEEL_URL")
        .env_remove("FLYWHEEL_TOKEN")
        .output()
        .expect("npm runs");
    // bun reports on stderr; shown with --nocapture and on failure.
    println!("{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "npm run {} failed:\n{}\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The test files of the client, except the drift test (run by its own test here).
fn client_test_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(package_dir().join("test"))
        .expect("clients/typescript/test")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".test.ts") && name != "openapi-drift.test.ts")
        .map(|name| format!("./test/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no client tests found");
    files
}

#[test]
fn the_committed_typescript_types_match_the_live_openapi_document() {
    npm_run(&["test", "--", "./test/openapi-drift.test.ts"]);
}

#[test]
fn the_typescript_client_typechecks() {
    npm_run(&["typecheck"]);
}

#[test]
fn the_typescript_client_passes_its_tests_against_a_live_server() {
    let files = client_test_files();
    let mut args = vec!["test", "--"];
    args.extend(files.iter().map(String::as_str));
    npm_run(&args);
}
