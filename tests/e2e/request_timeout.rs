//! The server-side request time limit (`FLYWHEEL_REQUEST_TIMEOUT_SECS`): a request that cannot
//! finish is answered 503 `request_timeout` in the usual error shape, its database connection is
//! given back, and the server keeps answering.

use std::time::{Duration, Instant};

use flywheel_e2e::{Backend, READ_TOKEN, Req, TestApp, TestDb};
use reqwest::StatusCode;
use sqlx::Connection;

#[tokio::test]
async fn a_request_blocked_past_the_limit_is_answered_request_timeout_and_the_server_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut settings = db.settings();
    // Far above what an unblocked listing takes, far below the lock held below (which never
    // ends by itself): the margin does not depend on the machine's speed.
    settings.request_timeout = Duration::from_secs(1);
    let app = TestApp::start_with(settings).await;
    let list = Req::get("/api/prompts", Some(READ_TOKEN));
    assert_eq!(app.send(&list).await.status, StatusCode::OK);

    // Another session takes the prompts table exclusively: the listing waits on the lock.
    let mut locker = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("a second connection");
    let mut lock = locker.begin().await.expect("begin");
    sqlx::query("LOCK TABLE prompts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock the prompts table");

    let started = Instant::now();
    // Without a server-side limit the listing would wait for the lock forever.
    let answer = tokio::time::timeout(Duration::from_secs(30), app.send(&list))
        .await
        .expect("the server answers a blocked request within its time limit");
    let waited = started.elapsed();
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert_eq!(
        answer.error_code(),
        Some("request_timeout"),
        "{}",
        answer.text
    );
    assert_eq!(answer.json["error"]["type"], "request_timeout");
    let message = answer.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("1000 ms") && message.contains("FLYWHEEL_REQUEST_TIMEOUT_SECS"),
        "{message}"
    );
    assert!(
        waited >= Duration::from_secs(1),
        "answered after {waited:?}"
    );

    // Requests that do not need the locked table are answered meanwhile.
    assert_eq!(
        app.send(&Req::get("/openapi.json", None)).await.status,
        StatusCode::OK
    );

    // Once the lock is gone the same request succeeds: the abandoned one gave its connection
    // back instead of leaving it stuck in the pool.
    lock.rollback().await.expect("release the lock");
    for _ in 0..3 {
        let answer = app.send(&list).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    }
}
