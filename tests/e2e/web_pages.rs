//! The web pages over real HTTP, on both backends: sign-in with a token opens a session stored
//! in the database (shared by two instances on one PostgreSQL database), a wrong token opens
//! none, every page carries the Content-Security-Policy, a state change needs this server's
//! Origin and the right role, signing out ends the session, assets are served by content hash.
//! The browser test (`host/tests/web_browser.rs`) drives the same pages in Chromium.

use flywheel_e2e::{ADMIN_TOKEN, Backend, READ_TOKEN, TestApp, TestDb};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, ORIGIN, SET_COOKIE};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Signs in with `token`; the `flywheel_session=…` pair, or the status when refused.
async fn sign_in(app: &TestApp, token: &str) -> Result<String, StatusCode> {
    let response = client()
        .post(format!("{}/sign-in", app.base))
        .header(ORIGIN, &app.base)
        .form(&[("token", token), ("next", "/prompts")])
        .send()
        .await
        .expect("sign in");
    if response.status() != StatusCode::SEE_OTHER {
        return Err(response.status());
    }
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|c| c.to_str().ok())
        .expect("a cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains(token), "the token is not the cookie");
    Ok(cookie.split(';').next().expect("pair").to_owned())
}

async fn page(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client().get(format!("{}{path}", app.base));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("page")
}

async fn post(
    app: &TestApp,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", app.base));
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("post")
}

async fn pages_sign_in_and_refuse_forgeries(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::start(&db).await;

    // Without a session a page sends to the sign-in form, and back after it.
    let response = page(&app, "/prompts/coder", None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[LOCATION],
        "/sign-in?next=%2Fprompts%2Fcoder"
    );
    let form = page(&app, "/sign-in", None).await;
    let csp = form.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("text")
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = form.text().await.expect("body");
    assert!(!html.contains("<script>"), "no inline script");
    assert!(!html.contains("style="), "no inline style");

    // A wrong token opens nothing; a right one opens a session.
    assert_eq!(
        sign_in(&app, "not-a-token-at-all").await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let admin = sign_in(&app, ADMIN_TOKEN).await.expect("admin signs in");
    let prompts = page(&app, "/prompts", Some(&admin)).await;
    assert_eq!(prompts.status(), StatusCode::OK);
    assert!(prompts.headers().contains_key(CONTENT_SECURITY_POLICY));
    let html = prompts.text().await.expect("body");
    assert!(html.contains("ops · admin"), "who is signed in is shown");
    // The asset named by the page is served with a long cache; another name is not.
    let script = html
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page names its script")
        .to_owned();
    let asset = page(&app, &script, None).await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert!(
        asset.headers()["cache-control"]
            .to_str()
            .expect("text")
            .contains("immutable")
    );
    assert_eq!(
        page(&app, "/assets/app-0000000000000000.js", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A state change needs this server's Origin, a session and the role.
    let v2 = app.create_version("coder", "Changed: {{plan}}").await;
    let deploy = format!("/prompts/coder/deploy/{v2}");
    let refused = post(&app, &deploy, None, Some(&admin)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .expect("body")
            .contains("origin_refused")
    );
    let refused = post(&app, &deploy, Some("http://evil.example"), Some(&admin)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = post(&app, &deploy, Some(&app.base), None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let reader = sign_in(&app, READ_TOKEN).await.expect("reader signs in");
    let refused = post(&app, &deploy, Some(&app.base), Some(&reader)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.expect("body").contains("forbidden"));
    assert_eq!(app.active_versions("coder").await, [1], "nothing deployed");
    let reader_page = page(&app, "/prompts/coder", Some(&reader))
        .await
        .text()
        .await
        .expect("body");
    assert!(
        !reader_page.contains("/deploy/"),
        "a reader sees no deploy button"
    );

    let done = post(&app, &deploy, Some(&app.base), Some(&admin)).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.active_versions("coder").await, [v2]);

    // A second instance on the same database knows the session (sessions are in the database).
    let other = TestApp::start(&db).await;
    assert_eq!(
        page(&other, "/prompts", Some(&admin)).await.status(),
        StatusCode::OK
    );

    // Signing out ends the session on every instance.
    let out = post(&app, "/sign-out", Some(&app.base), Some(&admin)).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .expect("text")
            .contains("Max-Age=0")
    );
    for instance in [&app, &other] {
        assert_eq!(
            page(instance, "/prompts", Some(&admin)).await.status(),
            StatusCode::SEE_OTHER,
            "the ended session opens nothing"
        );
    }
    assert_eq!(
        page(&app, "/prompts", Some(&reader)).await.status(),
        StatusCode::OK,
        "other sessions go on"
    );
}

#[tokio::test]
async fn web_pages_on_sqlite() {
    pages_sign_in_and_refuse_forgeries(Backend::Sqlite).await;
}

#[tokio::test]
async fn web_pages_on_postgres() {
    pages_sign_in_and_refuse_forgeries(Backend::Postgres).await;
}
