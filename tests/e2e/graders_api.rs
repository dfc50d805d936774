//! `GET /api/graders` on the real service: read role required, the built-in graders listed once
//! loaded, and a component dropped into the service's graders directory listed within a second.

use std::time::Duration;

use flywheel_e2e::{Backend, READ_TOKEN, Req, TestApp, TestDb};

use crate::graders_support::{bytes, components, deploy, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graders_listing_shows_builtins_and_directory_components_to_readers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let settings = db.settings();
    let graders_dir = settings.graders_dir.clone();
    let app = TestApp::start_with(settings).await;

    let anonymous = app.send(&Req::get("/api/graders", None)).await;
    assert_eq!(anonymous.status.as_u16(), 401);

    // The registry loads in the background; the built-ins appear once compiled (all of them,
    // the Python interpreter last, before the directory is watched).
    let mut builtins: Vec<String> = flywheel::graders::builtin::builtins()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    builtins.sort();
    // Bounded at 3 minutes: compiling the Python interpreter takes ~15 s on a quiet 2-core
    // machine and several times that while the rest of the suite runs beside it.
    let mut listing = serde_json::Value::Null;
    for _ in 0..1800 {
        listing = app
            .send(&Req::get("/api/graders", Some(READ_TOKEN)))
            .await
            .json;
        let ok = listing["components"]
            .as_array()
            .map(|c| c.iter().filter(|c| c["loadError"].is_null()).count());
        if ok == Some(builtins.len()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<&str> = listing["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, builtins, "{listing}");
    for expected in [
        "cosine-similarity",
        "diff-valid",
        "files-match",
        "label-model",
        "score-model",
        "string-check",
        "text-similarity",
    ] {
        assert!(names.contains(&expected), "{expected} missing: {listing}");
    }
    for component in listing["components"].as_array().expect("components") {
        assert_eq!(component["contractVersion"], "0.1.0");
        let model = ["cosine-similarity", "label-model", "score-model"]
            .contains(&component["name"].as_str().unwrap_or_default());
        assert_eq!(
            component["world"],
            if model { "model-grader" } else { "grader" },
            "{component}"
        );
        assert_eq!(component["source"], "builtin");
        assert!(component["loadError"].is_null(), "{component}");
    }
    let string_check = listing["definitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .find(|d| d["type"] == "string_check")
        .expect("listed");
    assert_eq!(string_check["component"], "string-check");
    assert_eq!(string_check["available"], true);

    deploy(&graders_dir, "echo.wasm", &bytes(components::ECHO_V1));
    deploy(&graders_dir, "broken.wasm", b"\0asm nonsense");
    let registry = app.server.state.graders.clone();
    let took = wait_for(Duration::from_secs(5), || {
        registry.get("echo").is_some() && registry.load_error("broken").is_some()
    })
    .await
    .expect("the new files are picked up");
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    let listing = app
        .send(&Req::get("/api/graders", Some(READ_TOKEN)))
        .await
        .json;
    let find = |name: &str| {
        listing["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name).cloned())
            .expect("listed")
    };
    assert_eq!(find("echo")["source"], "file");
    assert_eq!(find("echo")["sha256"].as_str().map(str::len), Some(64));
    assert!(
        find("broken")["loadError"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    app.server.shutdown().await.expect("shuts down");
}
