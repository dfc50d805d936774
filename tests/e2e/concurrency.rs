//! Several writers and several instances: concurrent deploys leave exactly one active version,
//! and a deploy through one instance is served by another within 1 second.

use std::time::{Duration, Instant};

use flywheel_e2e::{ADMIN_TOKEN, Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;

const CONCURRENT_DEPLOYS: i64 = 50;

async fn concurrent_deploys_leave_one_active_version(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;
    let mut versions = Vec::new();
    for i in 0..CONCURRENT_DEPLOYS {
        versions.push(
            app.create_version(
                "coder",
                &format!("Variant {i}: write the diff for {{{{task_title}}}}"),
            )
            .await,
        );
    }

    let deploys = versions.iter().map(|v| {
        let req = Req::post(format!("/api/prompts/coder/deploy/{v}"), Some(ADMIN_TOKEN));
        let app = &app;
        async move { (*v, app.send(&req).await) }
    });
    let answers = futures::future::join_all(deploys).await;

    let mut succeeded = Vec::new();
    for (version, answer) in &answers {
        match answer.status {
            StatusCode::OK => succeeded.push(*version),
            // A deploy that lost a race may be refused as a conflict, never as a server error.
            StatusCode::CONFLICT => {
                assert_eq!(answer.error_code(), Some("conflict"), "{}", answer.text)
            }
            other => panic!("deploy of v{version}: {other} {}", answer.text),
        }
    }
    assert!(!succeeded.is_empty(), "no deploy succeeded");

    let active = app.active_versions("coder").await;
    assert_eq!(
        active.len(),
        1,
        "exactly one active version, got {active:?}"
    );

    // The active version is the one the last recorded deploy activated, and every successful
    // deploy is in the history.
    let history = app.get_ok("/api/prompts/coder/history", READ_TOKEN).await;
    let history = history.as_array().expect("history");
    let last = history.last().expect("history is not empty");
    assert_eq!(last["toVersion"].as_i64(), Some(active[0]), "{last}");
    for v in &succeeded {
        assert!(
            history.iter().any(|h| h["toVersion"].as_i64() == Some(*v)),
            "deploy of v{v} not in history"
        );
    }
    assert_eq!(app.resolve_version("coder", "after-race").await, active[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deploys_on_sqlite() {
    concurrent_deploys_leave_one_active_version(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deploys_on_postgres() {
    concurrent_deploys_leave_one_active_version(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_postgres_database_see_a_deploy_within_one_second() {
    let db = TestDb::new(Backend::Postgres).await;
    let one = TestApp::start(&db).await;
    let two = TestApp::start(&db).await;
    let version = one
        .create_version(
            "reviewer",
            "Review {{diff}} for {{review_target}} strictly.",
        )
        .await;

    // Instance two serves (and caches) the current version first.
    assert_eq!(two.resolve_version("reviewer", "task-a").await, 1);
    assert_eq!(two.resolve_version("reviewer", "task-a").await, 1);

    let deployed = one
        .post_admin(&format!("/api/prompts/reviewer/deploy/{version}"), None)
        .await;
    assert_eq!(deployed.status, StatusCode::OK, "{}", deployed.text);
    let deployed_at = Instant::now();

    // Poll instance two, bounded: at most 3 s of polling every 20 ms.
    let mut switched_after = None;
    for _ in 0..150 {
        if two.resolve_version("reviewer", "task-a").await == version {
            switched_after = Some(deployed_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let switched_after = switched_after.expect("instance two never served the deployed version");
    assert!(
        switched_after < Duration::from_secs(1),
        "instance two served the old version for {switched_after:?}"
    );
    // And it stays switched.
    assert_eq!(two.resolve_version("reviewer", "task-b").await, version);
}
