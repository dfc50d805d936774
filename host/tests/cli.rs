//! The `flywheel` binary, run as a process: `--help` everywhere, database mode, `--server` mode
//! against a spawned `flywheel serve`, configuration errors, and graceful exit on SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Served, flywheel, ok, run, serve_on, text};

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["prompts"],
        &["prompts", "list"],
        &["prompts", "versions"],
        &["prompts", "show"],
        &["prompts", "create-version"],
        &["deploy"],
        &["rollback"],
    ];
    for args in commands {
        let text = ok(flywheel(dir.path()).args(*args).arg("--help"));
        assert!(text.contains("Usage: flywheel"), "{args:?}: {text}");
        if args.first().is_some_and(|a| *a != "serve") {
            assert!(
                text.contains("--server"),
                "{args:?} does not document --server: {text}"
            );
            assert!(
                text.contains("DATABASE_URL"),
                "{args:?} does not document DATABASE_URL"
            );
        }
    }
    let top = ok(flywheel(dir.path()).arg("--help"));
    for documented in [
        "FLYWHEEL_BIND",
        "FLYWHEEL_DATA_DIR",
        "FLYWHEEL_TOKENS",
        "PROMPT_AB_TEST_TRAFFIC_SPLIT",
    ] {
        assert!(top.contains(documented), "{documented} missing from --help");
    }
    // Unknown subcommands are refused.
    let out = run(flywheel(dir.path()).arg("promptz"));
    assert!(!out.status.success());
}

#[test]
fn each_subcommand_help_lists_only_the_settings_it_reads() {
    let dir = tempfile::tempdir().expect("temp dir");
    let help = |args: &[&str]| ok(flywheel(dir.path()).args(args).arg("--help"));
    let service_only = [
        "--bind",
        "--tokens",
        "--ab-test-traffic-split",
        "FLYWHEEL_BIND",
    ];
    let serve = help(&["serve"]);
    for flag in
        service_only
            .iter()
            .chain(&["--database-url", "--grader-timeout-ms", "--openai-base-url"])
    {
        assert!(serve.contains(flag), "serve --help lacks {flag}: {serve}");
    }
    let grade = help(&["grade"]);
    for flag in ["--grader-timeout-ms", "--openai-base-url", "--graders-dir"] {
        assert!(grade.contains(flag), "grade --help lacks {flag}: {grade}");
    }
    for command in [
        &["grade"][..],
        &["graders", "list"],
        &["prompts", "list"],
        &["deploy"],
    ] {
        let text = help(command);
        for flag in service_only {
            assert!(
                !text.contains(flag),
                "{command:?} --help lists {flag}, which it does not read: {text}"
            );
        }
    }
    let prompts = help(&["prompts", "list"]);
    assert!(!prompts.contains("--openai-base-url"), "{prompts}");
    assert!(!prompts.contains("--grader-memory-mb"), "{prompts}");
}

#[test]
fn user_errors_print_a_message_and_no_backtrace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "bad setting",
            &["prompts", "list"],
            "PROMPT_AB_TEST_TRAFFIC_SPLIT",
        ),
        (
            "unknown version",
            &["deploy", "planner", "42"],
            "version 42",
        ),
        (
            "missing file",
            &[
                "prompts",
                "create-version",
                "planner",
                "--file",
                "/nonexistent/t.txt",
            ],
            "/nonexistent/t.txt",
        ),
    ];
    for (case, args, expected) in cases {
        let mut cmd = flywheel(dir.path());
        cmd.env("RUST_BACKTRACE", "full")
            .env("RUST_LIB_BACKTRACE", "1");
        if case == "bad setting" {
            cmd.env("PROMPT_AB_TEST_TRAFFIC_SPLIT", "2");
        }
        let out = run(cmd.args(args));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{case}: {err}");
        assert!(err.contains(expected), "{case}: {err}");
        assert!(err.starts_with("error: "), "{case}: {err}");
        assert!(!err.to_lowercase().contains("backtrace"), "{case}: {err}");
        assert!(!err.contains("Caused by"), "{case}: {err}");
    }
}

#[test]
fn database_mode_lists_creates_deploys_and_rolls_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let list = ok(flywheel(dir.path()).args(["prompts", "list"]));
    for id in ["planner", "coder", "fixer", "reviewer"] {
        assert!(list.contains(id), "{id} not listed: {list}");
    }
    assert!(
        dir.path().join("flywheel.db").exists(),
        "default SQLite file not in the data dir"
    );

    let template = dir.path().join("planner.txt");
    std::fs::write(
        &template,
        "Plan {{task_title}} carefully.\n{{task_description}}\n",
    )
    .expect("write template");
    let created = ok(flywheel(dir.path())
        .args(["prompts", "create-version", "planner", "--file"])
        .arg(&template)
        .args(["--notes", "from the CLI test"]));
    assert!(created.contains("created planner v2"), "{created}");

    let deployed = ok(flywheel(dir.path()).args(["deploy", "planner", "2", "--actor", "tester"]));
    assert!(
        deployed.contains("v2 is active") && deployed.contains("tester"),
        "{deployed}"
    );
    let shown = ok(flywheel(dir.path()).args(["prompts", "show", "planner"]));
    assert!(shown.contains("version:  2 (active)"), "{shown}");
    assert!(shown.contains("Plan {{task_title}} carefully."), "{shown}");

    let rolled = ok(flywheel(dir.path()).args(["rollback", "planner"]));
    assert!(rolled.contains("v1 is active"), "{rolled}");
    let versions = ok(flywheel(dir.path()).args(["prompts", "versions", "planner", "--json"]));
    let versions: serde_json::Value = serde_json::from_str(&versions).expect("JSON output");
    let active: Vec<i64> = versions
        .as_array()
        .expect("array")
        .iter()
        .filter(|v| v["isActive"] == true)
        .filter_map(|v| v["version"].as_i64())
        .collect();
    assert_eq!(active, vec![1]);
    let v2 = ok(flywheel(dir.path()).args(["prompts", "show", "planner", "--version", "2"]));
    assert!(v2.contains("notes:    from the CLI test"), "{v2}");

    // Errors: a bad template names its position; an unknown version fails.
    std::fs::write(&template, "ok line\nbroken {{task title}}\n").expect("write template");
    let out = run(flywheel(dir.path())
        .args(["prompts", "create-version", "planner", "--file"])
        .arg(&template));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
    let out = run(flywheel(dir.path()).args(["deploy", "planner", "42"]));
    assert!(!out.status.success());
    let out = run(flywheel(dir.path()).args(["deploy", "planner", "two"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invalid value"), "{}", stderr(&out));
}

#[test]
fn bad_configuration_stops_with_the_variable_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("PROMPT_AB_TEST_TRAFFIC_SPLIT", "1.5", "0 to 1"),
        ("ENABLE_PROMPT_OPTIMIZATION", "sometimes", "true, false"),
        ("PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION", "0", "whole number"),
        ("FLYWHEEL_BIND", "nowhere", "IP:PORT"),
        ("DATABASE_URL", "oracle://db", "postgres://"),
        (
            "FLYWHEEL_TOKENS",
            "ops:owner:abcdefghij",
            "read, agent or admin",
        ),
        ("FLYWHEEL_GRADER_TIMEOUT_MS", "2s", "10 to 600000"),
        ("FLYWHEEL_GRADER_MEMORY_MB", "0", "2 to 4096"),
        ("FLYWHEEL_GRADER_MAX_CONCURRENCY", "-1", "1 to 256"),
    ];
    for (var, value, accepted) in cases {
        let out = run(flywheel(dir.path())
            .env(var, value)
            .args(["prompts", "list"]));
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = stderr(&out);
        assert!(err.contains(var) && err.contains(accepted), "{var}: {err}");
    }
    // A secret never appears in an error.
    let out = run(flywheel(dir.path())
        .env("FLYWHEEL_TOKENS", "ops:owner:do-not-print-me")
        .args(["prompts", "list"]));
    assert!(!stderr(&out).contains("do-not-print-me"));
    // A public address without tokens is refused.
    let out = run(flywheel(dir.path()).args(["serve", "--bind", "0.0.0.0:0"]));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("FLYWHEEL_TOKENS"), "{}", stderr(&out));
}

/// Starts `flywheel serve` on a free port (bind port 0, JSON logs) and waits for its
/// `listening` log line.
fn serve(data_dir: &Path) -> Served {
    serve_on(flywheel(data_dir))
}

#[test]
fn server_mode_talks_to_a_running_service_which_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut served = serve(dir.path());
    let url = served.url.clone();
    let client_dir = tempfile::tempdir().expect("temp dir");
    let remote = |args: &[&str], token: &str| {
        let mut cmd = flywheel(client_dir.path());
        cmd.args(args)
            .args(["--server", &url])
            .env("FLYWHEEL_TOKEN", token);
        cmd
    };

    let list = ok(&mut remote(&["prompts", "list"], "cli-read-secret"));
    assert!(list.contains("planner"), "{list}");

    let template = client_dir.path().join("fixer.txt");
    std::fs::write(&template, "Fix {{test_log}} in {{diff}}.").expect("write template");
    let template = template.display().to_string();
    let created = ok(&mut remote(
        &["prompts", "create-version", "fixer", "--file", &template],
        "cli-admin-secret",
    ));
    assert!(created.contains("created fixer v2"), "{created}");

    // The read token may not deploy; the server's code comes back in the error.
    let out = run(&mut remote(&["deploy", "fixer", "2"], "cli-read-secret"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));

    let deployed = ok(&mut remote(&["deploy", "fixer", "2"], "cli-admin-secret"));
    assert!(
        deployed.contains("v2 is active") && deployed.contains("by ops"),
        "{deployed}"
    );
    let shown = ok(&mut remote(
        &["prompts", "show", "fixer"],
        "cli-read-secret",
    ));
    assert!(shown.contains("Fix {{test_log}}"), "{shown}");
    let rolled = ok(&mut remote(&["rollback", "fixer"], "cli-admin-secret"));
    assert!(rolled.contains("v1 is active"), "{rolled}");
    // The client database was never created: everything went through the server.
    assert!(!client_dir.path().join("flywheel.db").exists());

    // SIGTERM: graceful shutdown, exit status 0, within a bounded wait.
    let status = stop(&mut served, "-TERM");
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let out = run(&mut remote(&["prompts", "list"], "cli-read-secret"));
    assert!(
        !out.status.success(),
        "the server still answers after SIGTERM"
    );
}

/// Sends a signal to the server and waits (bounded) for it to exit.
fn stop(served: &mut Served, signal: &str) -> std::process::ExitStatus {
    let pid = served.child.id().to_string();
    let killed = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = served.child.try_wait().expect("wait on server") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_exits_cleanly_on_sigint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut served = serve(dir.path());
    let status = stop(&mut served, "-INT");
    assert!(status.success(), "exit after SIGINT: {status:?}");
}

/// The version `GET …/resolve` of a server answers, through the real HTTP client.
async fn resolved_version(http: &reqwest::Client, base: &str, prompt: &str) -> i64 {
    let answer: serde_json::Value = http
        .get(format!(
            "{base}/api/prompts/{prompt}/resolve?task_id=two-processes"
        ))
        .bearer_auth("cli-admin-secret")
        .send()
        .await
        .expect("resolve reaches the server")
        .error_for_status()
        .expect("resolve succeeds")
        .json()
        .await
        .expect("resolve answers JSON");
    answer["version"].as_i64().expect("version number")
}

#[test]
fn two_serve_processes_on_one_postgres_database_serve_a_deploy_within_one_second() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let db = runtime.block_on(flywheel::store::testing::postgres_fresh());
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    );
    let on_db = |dir: &Path| {
        let mut cmd = flywheel(dir);
        cmd.env("DATABASE_URL", db.url());
        cmd
    };
    let mut a = serve_on(on_db(dir_a.path()));
    let mut b = serve_on(on_db(dir_b.path()));
    let http = reqwest::Client::new();

    let template = dir_a.path().join("reviewer.txt");
    std::fs::write(&template, "Review {{diff}} against {{review_target}}.").expect("write");
    let template = template.display().to_string();
    let admin = |url: &str, args: &[&str]| {
        let mut cmd = flywheel(dir_a.path());
        cmd.args(args)
            .args(["--server", url])
            .env("FLYWHEEL_TOKEN", "cli-admin-secret");
        cmd
    };
    let created = ok(&mut admin(
        &a.url,
        &["prompts", "create-version", "reviewer", "--file", &template],
    ));
    assert!(created.contains("created reviewer v2"), "{created}");
    // B serves (and caches) version 1.
    assert_eq!(
        runtime.block_on(resolved_version(&http, &b.url, "reviewer")),
        1
    );

    ok(&mut admin(&a.url, &["deploy", "reviewer", "2"]));
    let deployed_at = Instant::now();
    let switched_after = runtime.block_on(async {
        // Bounded: at most 150 polls, 20 ms apart.
        for _ in 0..150 {
            if resolved_version(&http, &b.url, "reviewer").await == 2 {
                return Some(deployed_at.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    });
    let switched_after = switched_after.expect("process B never served the deployed version");
    assert!(
        switched_after < Duration::from_secs(1),
        "process B served the old version for {switched_after:?}"
    );
    assert!(stop(&mut a, "-TERM").success());
    assert!(stop(&mut b, "-TERM").success());
}
