//! The watched graders directory: a new or changed `.wasm` is live within a second, calls in
//! flight finish on the old version, a broken file leaves the previous version serving and is
//! listed with its error, a deleted file is unloaded, and a restart loads from the cache.

use std::sync::Arc;
use std::time::Duration;

use flywheel::graders::{Outcome, Registry, RegistryOptions};

use crate::graders_support::{bytes, components, deploy, runtime, score, wait_for};

const TEXT: &str = "alpha beta gamma delta";

async fn start(dir: &std::path::Path, cache: &std::path::Path) -> Arc<Registry> {
    let options = RegistryOptions {
        graders_dir: Some(dir.to_path_buf()),
        cache_dir: Some(cache.to_path_buf()),
        builtins: Vec::new(),
        watch: true,
    };
    Registry::start(runtime(), options).await
}

fn version_of(outcome: &Outcome) -> f64 {
    match outcome {
        Outcome::Graded { grade } => grade
            .metrics
            .iter()
            .find(|m| m.name == "version")
            .map(|m| m.value)
            .unwrap_or(0.0),
        other => panic!("expected a grade, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_component_is_live_within_a_second_and_in_flight_calls_finish_on_the_old_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = tempfile::tempdir().expect("temp dir");
    deploy(dir.path(), "echo.wasm", &bytes(components::ECHO_V1));
    std::fs::write(dir.path().join("notes.txt"), "not a grader").expect("write");
    std::fs::write(dir.path().join(".hidden.wasm"), b"garbage").expect("write");
    let registry = start(dir.path(), cache.path()).await;

    let v1 = registry.get("echo").expect("echo loaded at start");
    assert_eq!(v1.description, "echo v1");
    assert_eq!(score(&v1.grade(&runtime(), "", TEXT, TEXT).await), 1.0);
    let listing = registry.list();
    let names: Vec<&str> = listing.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["echo"], "dotfiles and non-.wasm files are ignored");

    // A slow call pinned to v1 is in flight while v2 is deployed.
    let in_flight = {
        let v1 = v1.clone();
        tokio::spawn(async move { v1.grade(&runtime(), "spin-ms:900", TEXT, TEXT).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    deploy(dir.path(), "echo.wasm", &bytes(components::ECHO_V2));
    let took = wait_for(Duration::from_secs(5), || {
        registry
            .get("echo")
            .is_some_and(|g| g.description == "echo v2")
    })
    .await
    .expect("v2 went live");
    assert!(
        took <= Duration::from_secs(1),
        "v2 went live after {took:?}"
    );
    let v2 = registry.get("echo").expect("loaded");
    assert!(v2.generation > v1.generation);
    assert_ne!(v2.sha256, v1.sha256);
    assert_eq!(score(&v2.grade(&runtime(), "", TEXT, TEXT).await), 0.5);

    let finished = in_flight.await.expect("in-flight call finishes");
    assert_eq!(
        version_of(&finished),
        1.0,
        "the in-flight call finished on v1"
    );
    assert_eq!(score(&finished), 1.0);

    // Garbage over the good file: the previous version keeps serving, the listing shows why.
    deploy(dir.path(), "echo.wasm", b"definitely not wasm");
    let reported = wait_for(Duration::from_secs(5), || {
        registry
            .list()
            .components
            .iter()
            .any(|c| c.name == "echo" && c.load_error.is_some())
    })
    .await;
    assert!(reported.is_some(), "the broken file is reported");
    let listing = registry.list();
    let echo = listing
        .components
        .iter()
        .find(|c| c.name == "echo")
        .expect("listed");
    assert!(
        echo.load_error
            .as_deref()
            .is_some_and(|e| e.contains("not a WebAssembly component")),
        "{echo:?}"
    );
    assert_eq!(
        echo.sha256.as_deref(),
        Some(v2.sha256.as_str()),
        "v2 still serves"
    );
    let serving = registry.get("echo").expect("still serving");
    assert_eq!(score(&serving.grade(&runtime(), "", TEXT, TEXT).await), 0.5);
    let json = serde_json::to_value(&listing).expect("serializable");
    assert_eq!(json["components"][0]["world"], "grader");
    assert_eq!(json["components"][0]["contractVersion"], "0.1.0");

    // A second good component appears, then the first is deleted and unloaded.
    deploy(dir.path(), "other.wasm", &bytes(components::ECHO_V1));
    wait_for(Duration::from_secs(5), || registry.get("other").is_some())
        .await
        .expect("other loaded");
    std::fs::remove_file(dir.path().join("echo.wasm")).expect("delete");
    wait_for(Duration::from_secs(5), || registry.get("echo").is_none())
        .await
        .expect("echo unloaded");
    assert!(
        registry.list().components.iter().all(|c| c.name != "echo"),
        "no stale listing entry"
    );
    assert!(registry.get("other").is_some());
}

#[tokio::test]
async fn a_restart_loads_from_the_compile_cache_and_incompatible_files_are_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = tempfile::tempdir().expect("temp dir");
    deploy(dir.path(), "echo.wasm", &bytes(components::ECHO_V1));
    deploy(
        dir.path(),
        "future.wasm",
        &bytes(components::FUTURE_CONTRACT),
    );
    let options = RegistryOptions {
        graders_dir: Some(dir.path().into()),
        cache_dir: Some(cache.path().into()),
        builtins: Vec::new(),
        watch: false,
    };
    let first = Registry::start(runtime(), options.clone()).await;
    let sha = first.get("echo").expect("loaded").sha256.clone();
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .filter_map(|e| e.ok())
        .collect();
    assert!(
        cached
            .iter()
            .any(|e| e.file_name().to_string_lossy().starts_with(&sha)),
        "a .cwasm keyed by the sha256"
    );
    drop(first);
    let second = Registry::start(runtime(), options).await;
    assert_eq!(
        score(
            &second
                .get("echo")
                .expect("loaded")
                .grade(&runtime(), "", TEXT, TEXT)
                .await
        ),
        1.0
    );
    assert!(second.get("future").is_none());
    assert_eq!(
        second.load_error("future").as_deref(),
        Some("built for flywheel:grader@0.2.0; this host supports 0.1.x")
    );
}

#[tokio::test]
async fn a_file_in_the_directory_overrides_a_builtin_of_the_same_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = RegistryOptions {
        graders_dir: Some(dir.path().into()),
        cache_dir: None,
        builtins: vec![
            ("echo".into(), bytes(components::ECHO_V1)),
            ("broken".into(), b"nope".to_vec()),
        ],
        watch: false,
    };
    let registry = Registry::start(runtime(), options.clone()).await;
    assert_eq!(
        registry.get("echo").expect("builtin").description,
        "echo v1"
    );
    assert!(registry.load_error("broken").is_some());
    deploy(dir.path(), "echo.wasm", &bytes(components::ECHO_V2));
    registry.rescan().await;
    assert_eq!(registry.get("echo").expect("file").description, "echo v2");
    let listing = registry.list();
    let echo = listing
        .components
        .iter()
        .find(|c| c.name == "echo")
        .expect("listed");
    assert_eq!(echo.source, "file");
    std::fs::remove_file(dir.path().join("echo.wasm")).expect("delete");
    registry.rescan().await;
    assert_eq!(
        registry.get("echo").expect("builtin again").description,
        "echo v1"
    );
}

/// A file name from outside, with an escape sequence and a newline, is written escaped into text
/// logs: it can neither colour a terminal nor forge a log line.
#[tokio::test]
async fn outside_file_names_are_escaped_in_text_logs() {
    let logs = crate::graders_support::LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().expect("temp dir");
    deploy(
        dir.path(),
        "evil\u{1b}[31m\nFAKE LINE.wasm",
        b"not a component",
    );
    let registry = flywheel::graders::Registry::start(
        crate::graders_support::runtime(),
        flywheel::graders::RegistryOptions {
            graders_dir: Some(dir.path().to_path_buf()),
            cache_dir: Some(crate::graders_support::cache_dir()),
            builtins: Vec::new(),
            watch: false,
        },
    )
    .await;
    assert!(registry.get("evil\u{1b}[31m\nFAKE LINE").is_none());
    let text = logs.text();
    assert!(text.contains("grader failed to load"), "{text}");
    assert!(text.contains("evil\\u{1b}[31m\\nFAKE LINE"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the log: {text:?}"
    );
    assert!(
        !text.lines().any(|line| line.starts_with("FAKE LINE")),
        "a forged line: {text:?}"
    );
}

/// How long the loading tests below wait for a good file: far above the 1 s target (a loaded
/// 2-core machine), far below what serial loading took (ten slow files × the 2 s limit).
const LIVE_DEADLINE: Duration = Duration::from_secs(6);

/// Issue 9, item 7: ten files whose `info()` loops until the 2 s limit stops it do not delay a
/// good file dropped after them (serial loading made it wait for all ten: 21 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_files_do_not_delay_a_good_file_dropped_after_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let slow = bytes(components::SLOW_INFO);
    for i in 0..10 {
        deploy(dir.path(), &format!("slow{i}.wasm"), &slow);
    }
    let options = RegistryOptions {
        graders_dir: Some(dir.path().into()),
        cache_dir: Some(crate::graders_support::cache_dir()),
        builtins: Vec::new(),
        watch: true,
    };
    let registry = Registry::spawn(runtime(), options);
    deploy(dir.path(), "zz-good.wasm", &bytes(components::ECHO_V2));
    let took = wait_for(LIVE_DEADLINE, || registry.get("zz-good").is_some()).await;
    let Some(took) = took else {
        panic!(
            "the good file was not live {LIVE_DEADLINE:?} after it was dropped; listing: {:?}",
            registry.list().components
        )
    };
    eprintln!("the good file was live after {took:?}");
    let good = registry.get("zz-good").expect("live");
    assert_eq!(score(&good.grade(&runtime(), "", TEXT, TEXT).await), 0.5);
    // The slow files fail on their own, each naming the limit.
    let failed = wait_for(Duration::from_secs(30), || {
        (0..10).all(|i| registry.load_error(&format!("slow{i}")).is_some())
    })
    .await;
    assert!(failed.is_some(), "{:?}", registry.list().components);
    let error = registry.load_error("slow0").expect("failed");
    assert!(error.contains("info() failed: timeout"), "{error}");
}

/// Issue 9, item 7: at first start a file in the directory does not wait for the built-ins
/// (here ten whose `info()` loops, 2 s each, loaded one after the other as built-ins are).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_first_start_files_do_not_wait_for_the_builtins() {
    let dir = tempfile::tempdir().expect("temp dir");
    deploy(dir.path(), "echo.wasm", &bytes(components::ECHO_V1));
    let slow = bytes(components::SLOW_INFO);
    let options = RegistryOptions {
        graders_dir: Some(dir.path().into()),
        cache_dir: Some(crate::graders_support::cache_dir()),
        builtins: (0..10)
            .map(|i| (format!("slow{i}"), slow.clone()))
            .collect(),
        watch: false,
    };
    let registry = Registry::spawn(runtime(), options);
    let took = wait_for(LIVE_DEADLINE, || registry.get("echo").is_some()).await;
    assert!(
        took.is_some(),
        "the file was not live {LIVE_DEADLINE:?} after start (built-ins loaded: {})",
        registry.builtins_loaded()
    );
    assert!(
        !registry.builtins_loaded(),
        "the built-ins take 10 × 2 s; the file did not wait for them"
    );
    let echo = registry.get("echo").expect("live");
    assert_eq!(score(&echo.grade(&runtime(), "", TEXT, TEXT).await), 1.0);
}
