//! Hostile components against the real grader runtime: each is contained with the right error
//! or trap kind, and after each one a well-behaved grader still grades correctly.

use std::time::{Duration, Instant};

use flywheel::graders::{GraderErrorKind, LoadError, LoadedGrader, Outcome, TrapKind};

use crate::graders_support::{components, load, load_bytes, runtime, score};

const SAME: &str = "the quick brown fox jumps over the lazy dog";

async fn good() -> LoadedGrader {
    load("echo", components::ECHO_V1)
        .await
        .expect("echo-v1 loads")
}

/// The service keeps answering: a well-behaved grader grades correctly.
async fn assert_still_grading(echo: &LoadedGrader) {
    let outcome = echo.grade(&runtime(), "", SAME, SAME).await;
    assert_eq!(score(&outcome), 1.0);
    let half = echo.grade(&runtime(), "", "a b", "a c").await;
    assert_eq!(score(&half), 0.5);
}

async fn hostile_call(config: &str) -> Outcome {
    let hostile = load("hostile", components::HOSTILE)
        .await
        .expect("hostile loads: it imports nothing forbidden");
    hostile.grade(&runtime(), config, "{}", "{}").await
}

fn trap_kind(outcome: &Outcome) -> (TrapKind, String, String) {
    match outcome {
        Outcome::Trap {
            kind,
            message,
            log_tail,
        } => (*kind, message.clone(), log_tail.clone()),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[tokio::test]
async fn a_well_behaved_grader_grades_and_describes_itself() {
    let echo = good().await;
    assert_eq!(echo.contract_version, "0.1.0");
    assert_eq!(echo.world, flywheel::graders::World::Grader);
    assert_eq!(echo.description, "echo v1");
    assert_eq!(echo.sdk_version, "test-0");
    assert_eq!(echo.sha256.len(), 64);
    let Outcome::Graded { grade } = echo.grade(&runtime(), "", SAME, SAME).await else {
        panic!("not graded")
    };
    assert_eq!(grade.score, 1.0);
    assert_eq!(grade.passed, Some(true));
    assert_eq!(grade.metrics[0].name, "version");
    assert_eq!(grade.reasoning.as_deref(), Some("echo v1"));
    let outcome = echo.grade(&runtime(), "", "x", "missing").await;
    assert!(
        matches!(&outcome, Outcome::GraderError { kind: GraderErrorKind::InvalidInput, message } if message.contains("no text")),
        "{outcome:?}"
    );
    let outcome = echo.grade(&runtime(), "bad", "x", "x").await;
    assert!(
        matches!(
            outcome,
            Outcome::GraderError {
                kind: GraderErrorKind::InvalidConfig,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(
        echo.validate_config(&runtime(), "bad").await,
        Ok(Err("field `mode`: `bad` is not a mode".to_string()))
    );
    assert_eq!(echo.validate_config(&runtime(), "{}").await, Ok(Ok(())));
}

#[tokio::test]
async fn an_infinite_loop_times_out_at_the_deadline() {
    let echo = good().await;
    let start = Instant::now();
    let (kind, message, _) = trap_kind(&hostile_call("loop").await);
    let took = start.elapsed();
    assert_eq!(kind, TrapKind::Timeout, "{message}");
    let limit = runtime().limits().timeout;
    assert!(
        took >= limit && took < limit + Duration::from_millis(1500),
        "took {took:?} for a {limit:?} limit"
    );
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn a_memory_bomb_is_out_of_memory() {
    let echo = good().await;
    let (kind, message, log) = trap_kind(&hostile_call("oom").await);
    assert_eq!(kind, TrapKind::OutOfMemory, "{message}\n{log}");
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn deep_recursion_is_a_stack_overflow() {
    let echo = good().await;
    let (kind, message, _) = trap_kind(&hostile_call("recurse").await);
    assert_eq!(kind, TrapKind::StackOverflow, "{message}");
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn an_output_flood_is_bounded_keeps_its_tail_and_times_out() {
    let echo = good().await;
    let (kind, _, log) = trap_kind(&hostile_call("flood").await);
    assert_eq!(kind, TrapKind::Timeout);
    let limit = runtime().limits().log_bytes;
    assert!(
        log.contains("earlier bytes dropped"),
        "the dropped byte count is reported"
    );
    assert!(
        log.contains("flood line") || log.contains("flood err"),
        "the tail is kept"
    );
    assert!(
        log.len() < limit + 200,
        "log tail is {} bytes for a {limit} byte cap",
        log.len()
    );
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn a_panic_is_a_panic_trap_with_its_message() {
    let echo = good().await;
    let (kind, _, log) = trap_kind(&hostile_call("panic").await);
    assert_eq!(kind, TrapKind::Panic);
    assert!(
        log.contains("boom: the hostile grader panicked on purpose"),
        "{log}"
    );
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn the_environment_is_empty() {
    let echo = good().await;
    let outcome = hostile_call("env").await;
    let Outcome::Graded { grade } = outcome else {
        panic!("not graded: {outcome:?}")
    };
    assert_eq!(grade.reasoning.as_deref(), Some("vars=[] home=[] args=0"));
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn a_huge_reasoning_is_cut_to_the_output_cap() {
    let outcome = hostile_call("huge-output").await;
    let Outcome::Graded { grade } = outcome else {
        panic!("not graded: {outcome:?}")
    };
    let reasoning = grade.reasoning.expect("reasoning kept");
    assert!(
        reasoning.len() < runtime().limits().max_reasoning_bytes + 64,
        "{} bytes",
        reasoning.len()
    );
    assert!(reasoning.ends_with(&format!("[cut from {} bytes]", 4 << 20)));
}

#[tokio::test]
async fn exiting_is_a_trap_not_a_grade() {
    let echo = good().await;
    let (kind, message, _) = trap_kind(&hostile_call("exit").await);
    assert_eq!(kind, TrapKind::Other);
    // WASI 0.2 `exit` carries only ok/err, so the guest's `exit(3)` arrives as code 1.
    assert!(message.contains("exited with code 1"), "{message}");
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn reading_a_file_is_refused_at_load_naming_the_filesystem_import() {
    let echo = good().await;
    let error = load("reads-file", components::READS_FILE)
        .await
        .expect_err("must be refused");
    assert!(
        matches!(&error, LoadError::ForbiddenImport { import } if import.starts_with("wasi:filesystem/")),
        "{error}"
    );
    assert!(error.to_string().contains("wasi:filesystem/"), "{error}");
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn opening_a_socket_is_refused_at_load_naming_the_sockets_import() {
    let echo = good().await;
    let error = load("opens-socket", components::OPENS_SOCKET)
        .await
        .expect_err("must be refused");
    assert!(
        matches!(&error, LoadError::ForbiddenImport { import } if import.starts_with("wasi:sockets/")),
        "{error}"
    );
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn an_import_outside_the_world_is_refused_by_name() {
    let echo = good().await;
    let error = load("evil-import", components::EVIL_IMPORT)
        .await
        .expect_err("must be refused");
    assert_eq!(
        error,
        LoadError::ForbiddenImport {
            import: "evil:host/backdoor".into()
        }
    );
    assert!(error.to_string().contains("`evil:host/backdoor`"));
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn a_component_exporting_another_world_is_refused() {
    let error = load("other-world", components::OTHER_WORLD)
        .await
        .expect_err("must be refused");
    assert!(
        matches!(&error, LoadError::NotAGrader { exports } if exports.contains("other:thing/run@1.0.0")),
        "{error}"
    );
    assert!(
        error.to_string().contains("exports another world"),
        "{error}"
    );
}

#[tokio::test]
async fn a_future_contract_version_is_refused_naming_both_versions() {
    let error = load("future", components::FUTURE_CONTRACT)
        .await
        .expect_err("must be refused");
    assert_eq!(
        error.to_string(),
        "built for flywheel:grader@0.2.0; this host supports 0.1.x"
    );
}

#[tokio::test]
async fn a_core_module_is_refused_as_not_a_component() {
    let module = wat::parse_str(r#"(module (func (export "grade") (result f64) f64.const 1))"#)
        .expect("valid wat");
    let error = load_bytes("core", module)
        .await
        .expect_err("must be refused");
    assert_eq!(error, LoadError::CoreModule);
    assert!(
        error
            .to_string()
            .contains("core WebAssembly module, not a component")
    );
}

#[tokio::test]
async fn random_bytes_are_refused_without_a_panic() {
    let echo = good().await;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = Vec::with_capacity(64 << 10);
    for _ in 0..(64 << 10) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        random.push((state >> 24) as u8);
    }
    assert_eq!(
        load_bytes("random", random.clone())
            .await
            .expect_err("refused"),
        LoadError::NotWasm
    );
    // A valid component header followed by garbage reaches the compiler, which must refuse it.
    let mut headed = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    headed.extend_from_slice(&random);
    let error = load_bytes("headed", headed).await.expect_err("refused");
    assert!(matches!(error, LoadError::Compile(_)), "{error}");
    assert_eq!(
        load_bytes("empty", Vec::new()).await.expect_err("refused"),
        LoadError::NotWasm
    );
    assert_still_grading(&echo).await;
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_before_compiling() {
    // One MiB over the default limit (64 MiB, above the ~44 MB Python interpreter component).
    let size = flywheel::graders::limits::DEFAULT_MAX_COMPONENT_BYTES + (1 << 20);
    let expected = u64::try_from(size).expect("fits");
    let mut big = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    big.resize(size, 0);
    let start = Instant::now();
    let error = load_bytes("big", big).await.expect_err("refused");
    assert!(
        matches!(error, LoadError::TooLarge { size: refused, .. } if refused == expected),
        "{error}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "refused by size, not after compiling"
    );
}

#[tokio::test]
async fn input_over_the_cap_is_refused_without_running_the_guest() {
    let echo = good().await;
    let huge = "x".repeat(runtime().limits().max_input_bytes + 1);
    let outcome = echo.grade(&runtime(), "", &huge, "y").await;
    assert!(
        matches!(&outcome, Outcome::Refused { message } if message.contains("the limit is")),
        "{outcome:?}"
    );
    assert_eq!(outcome.kind_name(), "refused");
}

#[tokio::test]
async fn a_batch_grades_every_row_in_order_and_a_trapping_batch_falls_back_per_row() {
    let echo = good().await;
    let rows = vec![
        (SAME.to_string(), SAME.to_string()),
        ("x".to_string(), "missing".to_string()),
        ("a b".to_string(), "a c".to_string()),
        (
            "y".repeat(runtime().limits().max_input_bytes + 1),
            "z".to_string(),
        ),
    ];
    let outcomes = echo.grade_batch(&runtime(), "", &rows).await;
    let kinds: Vec<&str> = outcomes.iter().map(Outcome::kind_name).collect();
    assert_eq!(kinds, ["graded", "invalid_input", "graded", "refused"]);
    assert_eq!(outcomes[0].score(), Some(1.0));
    assert_eq!(outcomes[2].score(), Some(0.5));
    let hostile = load("hostile", components::HOSTILE).await.expect("loads");
    let rows = vec![("{}".to_string(), "{}".to_string()); 3];
    let outcomes = hostile.grade_batch(&runtime(), "panic", &rows).await;
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes.iter().all(|o| o.kind_name() == "panic"),
        "{outcomes:?}"
    );
    assert_still_grading(&echo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_calls_than_pool_slots_all_complete() {
    let echo = std::sync::Arc::new(good().await);
    let mut tasks = Vec::new();
    for i in 0..48 {
        let echo = echo.clone();
        tasks.push(tokio::spawn(async move {
            let sample = format!("row {i} {SAME}");
            echo.grade(&runtime(), "", &sample, &sample).await
        }));
    }
    for task in tasks {
        let outcome = task.await.expect("task finishes");
        assert_eq!(score(&outcome), 1.0);
    }
}

#[tokio::test]
async fn a_model_grader_is_detected_and_its_llm_import_answers_not_configured() {
    let grader = load("asks-model", components::ASKS_MODEL)
        .await
        .expect("a model-grader component loads");
    assert_eq!(grader.world, flywheel::graders::World::ModelGrader);
    let outcome = grader.grade(&runtime(), "{}", "hello", "{}").await;
    assert!(
        matches!(&outcome, Outcome::GraderError { kind: GraderErrorKind::Failed, message } if message.starts_with("not-configured: no model endpoint")),
        "{outcome:?}"
    );
    let echo = good().await;
    assert_eq!(
        echo.world,
        flywheel::graders::World::Grader,
        "a pure grader does not import llm"
    );
}

/// `FLYWHEEL_GRADER_TIMEOUT_MS` reaches the service's runtime: with 150 ms configured, the
/// hostile loop dropped into the graders directory traps at about 150 ms, far before the 2 s
/// default, and a bad value stops startup naming the variable.
/// A batch whose every row traps the same way (a grader that loops before any row's own work)
/// stops after a few rows graded one by one: the rest report it without being run, instead of
/// costing a timeout each.
#[tokio::test]
async fn a_batch_that_traps_on_every_row_stops_after_the_first_rows() {
    use flywheel::graders::SAME_TRAP_ROWS_TO_STOP;
    let hostile = load("hostile", components::HOSTILE).await.expect("loads");
    let rows = vec![("{}".to_string(), "{}".to_string()); 6];
    let outcomes = hostile.grade_batch(&runtime(), "loop", &rows).await;
    assert_eq!(outcomes.len(), 6);
    for (i, outcome) in outcomes.iter().enumerate() {
        let (kind, message, _) = trap_kind(outcome);
        assert_eq!(kind, TrapKind::Timeout, "row {i}: {message}");
        assert_eq!(
            message.starts_with("not run:"),
            i >= SAME_TRAP_ROWS_TO_STOP,
            "row {i}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_lower_timeout_applies_to_the_services_graders() {
    use flywheel::config::{ConfigArgs, GraderLimits, Settings};
    use flywheel_e2e::{Backend, TestApp, TestDb};

    let err = Settings::from_args(&ConfigArgs {
        grader_timeout_ms: Some("forever".into()),
        ..ConfigArgs::default()
    })
    .expect_err("refused")
    .to_string();
    assert!(err.contains("FLYWHEEL_GRADER_TIMEOUT_MS"), "{err}");

    let db = TestDb::new(Backend::Sqlite).await;
    let mut settings = db.settings();
    settings.grader_limits =
        GraderLimits::parse(Some("150"), Some("32"), Some("2")).expect("valid limits");
    let graders_dir = settings.graders_dir.clone();
    std::fs::create_dir_all(&graders_dir).expect("graders dir");
    crate::graders_support::deploy(
        &graders_dir,
        "hostile.wasm",
        &crate::graders_support::bytes(components::HOSTILE),
    );
    let app = TestApp::start_with(settings).await;
    let registry = app.server.state.graders.clone();
    crate::graders_support::wait_for(Duration::from_secs(60), || {
        registry.get("hostile").is_some()
    })
    .await
    .expect("the hostile component loads");
    // Files no longer wait for the built-ins: let them finish compiling (the Python interpreter
    // takes both cores for seconds) before timing calls against a 150 ms limit.
    crate::graders_support::wait_for(Duration::from_secs(120), || registry.builtins_loaded())
        .await
        .expect("the built-ins load");
    let runtime = registry.runtime().clone();
    assert_eq!(runtime.limits().timeout, Duration::from_millis(150));
    assert_eq!(runtime.limits().memory_bytes, 32 << 20);

    let hostile = registry.get("hostile").expect("loaded");
    let start = Instant::now();
    let outcome = hostile.grade(&runtime, "loop", "{}", "{}").await;
    let took = start.elapsed();
    let (kind, message, _) = trap_kind(&outcome);
    assert_eq!(kind, TrapKind::Timeout, "{message}");
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(1000),
        "took {took:?} for a 150 ms limit (the default is 2 s)"
    );
    // The 32 MiB cap applies too: the memory bomb is out of memory under it.
    let (kind, message, _) = trap_kind(&hostile.grade(&runtime, "oom", "{}", "{}").await);
    assert_eq!(kind, TrapKind::OutOfMemory, "{message}");
    // The built-ins still load and grade under these limits.
    crate::graders_support::wait_for(Duration::from_secs(60), || {
        registry.get("string-check").is_some()
    })
    .await
    .expect("built-ins load");
}

/// Issue 9, item 4: a `grade-batch` result over one call's copy limit (here 250 rows × 50 kB of
/// reasoning, 12.5 MB against 4 MiB) is taken whole, every row's reasoning cut to the cap with
/// the cut marked, and not graded a second time row by row: `calls-reason` scores the rows an
/// instance has graded, so rows graded in the batch's one instance score 1, 2, 3… × 0.5, and
/// rows graded again one by one would all score 0.5.
#[tokio::test]
async fn a_batch_with_big_results_is_graded_once_and_every_cut_is_marked() {
    let echo = load("echo", components::ECHO_V2).await.expect("loads");
    for (rows, reason_bytes) in [(250_usize, 50_000_usize), (1000, 5_000)] {
        let batch: Vec<(String, String)> = (0..rows)
            .map(|i| (format!("sample {i}"), "item".to_string()))
            .collect();
        let config = format!("calls-reason:{reason_bytes}");
        let outcomes = echo.grade_batch(&runtime(), &config, &batch).await;
        assert_eq!(outcomes.len(), rows);
        let cap = runtime().limits().max_reasoning_bytes;
        for (i, outcome) in outcomes.iter().enumerate() {
            let Outcome::Graded { grade } = outcome else {
                panic!("{rows} rows × {reason_bytes} B, row {i}: not graded: {outcome:?}")
            };
            assert_eq!(
                grade.score,
                (i + 1) as f64 * 0.5,
                "{rows} rows × {reason_bytes} B, row {i}: graded again on its own, not in the batch"
            );
            let reasoning = grade.reasoning.as_deref().expect("the reasoning is kept");
            if reason_bytes > cap {
                assert!(
                    reasoning.ends_with(&format!("[cut from {reason_bytes} bytes]")),
                    "row {i}: the cut is not marked: …{}",
                    &reasoning[reasoning.len().saturating_sub(40)..]
                );
                assert!(reasoning.len() < cap + 64, "{} bytes", reasoning.len());
            } else {
                assert_eq!(reasoning.len(), reason_bytes, "row {i}: nothing is dropped");
            }
        }
    }
    assert_still_grading(&good().await).await;
}

/// Issue 9, item 6: guest code does not run on the caller's threads. The caller's runtime has
/// one worker; while an 800 ms busy grader runs, that worker only awaits (it used to run the
/// guest, 10 ms slices at a time, and every request on it waited).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn guest_code_runs_on_threads_of_its_own_not_the_callers() {
    let echo = load("echo", components::ECHO_V2).await.expect("loads");
    let metrics = tokio::runtime::Handle::current().metrics();
    // Let the worker park once, so its busy time so far is counted.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = metrics.worker_total_busy_duration(0);
    let started = Instant::now();
    // Awaited from a task, so the call starts on the runtime's one worker (the test's own body
    // runs on the test thread).
    let call = tokio::spawn(async move {
        echo.grade(&runtime(), "spin-ms:800", "a b c", "a b c")
            .await
    });
    let outcome = call.await.expect("the call's task");
    let took = started.elapsed();
    assert_eq!(score(&outcome), 0.5);
    assert!(took >= Duration::from_millis(800), "{took:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let busy = metrics.worker_total_busy_duration(0) - before;
    assert!(
        busy < Duration::from_millis(300),
        "the caller's worker was busy {busy:?} of the {took:?} the guest ran"
    );
}
