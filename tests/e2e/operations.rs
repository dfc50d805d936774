//! Health, metrics and the OpenAPI document: public, and truthful.

use flywheel_e2e::{Backend, Req, TestApp, TestDb};
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_metrics_and_openapi_are_public_and_describe_the_service() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;

    let health = app.send(&Req::get("/healthz", None)).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json["status"], "ok");

    for task in ["m1", "m2", "m3"] {
        app.resolve_version("planner", task).await;
    }
    let denied = app.send(&Req::get("/api/prompts", None)).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);

    let metrics = app.send(&Req::get("/metrics", None)).await;
    assert_eq!(metrics.status, StatusCode::OK);
    let text = &metrics.text;
    assert!(
        text.contains(r#"flywheel_http_requests_total{method="GET",route="/api/prompts/{id}/resolve",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"flywheel_http_requests_total{method="GET",route="/api/prompts",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("flywheel_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // The resolve cache counters: three resolves, the first one read the database (whether the
    // others hit depends on the 250 ms TTL on a loaded machine, so only the sum is exact).
    let counter = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {text}"))
    };
    let hits = counter("flywheel_resolve_cache_hits_total ");
    let misses = counter("flywheel_resolve_cache_misses_total ");
    assert_eq!(hits + misses, 3, "{text}");
    assert!(misses >= 1, "{text}");

    let doc = app.send(&Req::get("/openapi.json", None)).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        doc.json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    for path in [
        "/api/prompts",
        "/api/prompts/{id}/resolve",
        "/api/prompts/{id}/deploy/{version}",
        "/healthz",
    ] {
        assert!(
            doc.json["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc.json["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc.json["components"]["schemas"]["PromptVersion"].is_object());
}

#[tokio::test]
async fn healthz_fails_with_503_when_the_postgres_database_is_gone() {
    let db = TestDb::new(Backend::Postgres).await;
    let app = TestApp::start(&db).await;
    assert_eq!(
        app.send(&Req::get("/healthz", None)).await.status,
        StatusCode::OK
    );
    let name = db.url.rsplit('/').next().expect("database name").to_owned();
    flywheel::store::testing::execute_raw(
        &flywheel::store::testing::postgres_server_url(),
        &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
    )
    .await
    .expect("drop the database under the app");
    let health = app.send(&Req::get("/healthz", None)).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.text
    );
    assert_eq!(health.error_code(), Some("unavailable"));
}

/// `/readyz` answers 503 `starting` while a built-in grader is still loading (here one whose
/// `info()` spins until the 2 s limit) and 200 `ready` once every built-in has loaded or failed;
/// `/healthz` is 200 all along (the database answers).
#[tokio::test]
async fn readyz_is_503_until_the_builtin_graders_are_loaded() {
    use crate::graders_support::{bytes, components, runtime};
    use flywheel::graders::{Registry, RegistryOptions};

    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start(&db).await;
    let mut state = app.server.state.clone();
    let graders_dir = tempfile::tempdir().expect("graders dir");
    let cache = tempfile::tempdir().expect("cache dir");
    state.graders = Registry::spawn(
        runtime(),
        RegistryOptions {
            graders_dir: Some(graders_dir.path().into()),
            cache_dir: Some(cache.path().into()),
            builtins: vec![("slow".to_owned(), bytes(components::SLOW_INFO))],
            watch: false,
        },
    );
    let router = flywheel::api::router(state).expect("router");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), format!("{base}{path}"));
        async move {
            let answer = http.get(url).send().await.expect("request");
            let status = answer.status();
            let body: serde_json::Value = answer.json().await.expect("json body");
            (status, body)
        }
    };

    let (status, body) = get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "starting", "{body}");
    assert_eq!(body["database"], true, "{body}");
    assert_eq!(body["builtinsLoaded"], false, "{body}");
    assert_eq!(get("/healthz").await.0, StatusCode::OK);

    // The slow built-in gives up after its 2 s limit; bounded wait, generous for a loaded CI.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = loop {
        let (status, body) = get("/readyz").await;
        if status == StatusCode::OK {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still not ready after 60 s: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["builtinsLoaded"], true, "{ready}");
    server.abort();
}
