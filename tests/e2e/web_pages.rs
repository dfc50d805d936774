//! The web pages over real HTTP, on both backends: sign-in with a token opens a session stored
//! in the database (shared by two instances on one PostgreSQL database), a wrong token opens
//! none, every page carries the Content-Security-Policy, a state change needs this server's
//! Origin and the right role, signing out ends the session, assets are served by content hash.
//! The evaluation pages show a real evaluation's results (run against the fake model), start
//! one from the admin's form and refuse a reader's or a forged start.
//! The browser test (`host/tests/web_browser.rs`) drives the same pages in Chromium.

use std::time::Duration;

use fake_model::FakeModel;
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
    post_form(app, path, origin, cookie, &[]).await
}

async fn post_form(
    app: &TestApp,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", app.base)).form(form);
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

async fn text(response: reqwest::Response) -> String {
    response.text().await.expect("body")
}

/// The evaluations a list page shows: one link to each in the table's first column.
fn listed(html: &str) -> usize {
    html.matches("<td><a href=\"/evaluations/").count()
}

async fn evaluation_pages_show_results_and_refuse_forgeries(backend: Backend) {
    use crate::evals::{app_with_model, careful_answers, eval_when, is_final, rows, setup};
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    careful_answers(&fake);
    let app = app_with_model(&db, &fake, 2, Duration::from_secs(30)).await;
    setup(&app, "qa-set", &rows(4)).await;
    let admin = sign_in(&app, ADMIN_TOKEN).await.expect("admin signs in");
    let reader = sign_in(&app, READ_TOKEN).await.expect("reader signs in");

    // The admin sees the start form of the prompt's evaluations, with its versions and dataset.
    let list = text(page(&app, "/evaluations?prompt=qa", Some(&admin)).await).await;
    assert!(list.contains("No evaluation yet."), "{list}");
    assert!(
        list.contains(r#"action="/evaluations""#)
            && list.contains(r#"name="version" value="2""#)
            && list.contains(r#"<option value="qa-set">"#),
        "{list}"
    );
    // A reader sees no form.
    let read_list = text(page(&app, "/evaluations?prompt=qa", Some(&reader)).await).await;
    assert!(
        !read_list.contains("method=\"post\" action=\"/evaluations"),
        "{read_list}"
    );
    assert!(!read_list.contains("name=\"version\""), "{read_list}");

    // Forged or not allowed starts are refused and queue nothing.
    let form = [
        ("prompt", "qa"),
        ("version", "1"),
        ("version", "2"),
        ("dataset", "qa-set"),
        ("split", ""),
        ("repeat", "1"),
    ];
    for (origin, cookie, status, code) in [
        (
            None,
            Some(admin.as_str()),
            StatusCode::FORBIDDEN,
            "origin_refused",
        ),
        (
            Some("http://evil.example"),
            Some(admin.as_str()),
            StatusCode::FORBIDDEN,
            "origin_refused",
        ),
        (
            Some(app.base.as_str()),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            Some(app.base.as_str()),
            Some(reader.as_str()),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ] {
        let refused = post_form(&app, "/evaluations", origin, cookie, &form).await;
        assert_eq!(refused.status(), status, "{origin:?} {cookie:?}");
        assert!(text(refused).await.contains(code), "{code} expected");
    }
    // A bad field is refused with its code and names the field.
    let bad = post_form(
        &app,
        "/evaluations",
        Some(&app.base),
        Some(&admin),
        &[
            ("prompt", "qa"),
            ("version", "1"),
            ("dataset", "qa-set"),
            ("split", "test"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad = text(bad).await;
    assert!(
        bad.contains("invalid_body") && bad.contains("split"),
        "{bad}"
    );
    // The API's checks are the page's: a dataset that does not exist is not found.
    let missing = post_form(
        &app,
        "/evaluations",
        Some(&app.base),
        Some(&admin),
        &[("prompt", "qa"), ("version", "1"), ("dataset", "nope")],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        listed(&text(page(&app, "/evaluations", Some(&admin)).await).await),
        0,
        "nothing was queued"
    );

    // The admin's form starts a real evaluation against the fake model and opens its page.
    let started = post_form(&app, "/evaluations", Some(&app.base), Some(&admin), &form).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let location = started.headers()[LOCATION]
        .to_str()
        .expect("text")
        .to_owned();
    let id = location
        .strip_prefix("/evaluations/")
        .expect("the evaluation's page")
        .to_owned();
    let done = eval_when(&app, &id, is_final).await;
    assert_eq!(done["status"], "completed", "{done}");

    // Its page shows what the API computed: v1 passes no row, v2 every row, all 4 flipped.
    let shown = page(&app, &location, Some(&reader)).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(shown.headers().contains_key(CONTENT_SECURITY_POLICY));
    let shown = text(shown).await;
    assert!(shown.contains("completed"), "{shown}");
    assert!(
        !shown.contains("data-poll"),
        "a final evaluation is not polled"
    );
    assert!(shown.contains("8 of 8 answers"), "{shown}");
    // Wilson 95% of 0 of 4 is [0%, 49%]; of 4 of 4, [51%, 100%].
    assert!(
        shown.contains("0 of 4") && shown.contains("0% [0%, 49%]"),
        "{shown}"
    );
    assert!(
        shown.contains("4 of 4") && shown.contains("100% [51%, 100%]"),
        "{shown}"
    );
    assert!(shown.contains("v1 → v2"), "{shown}");
    assert!(shown.contains("+1.00"), "the mean difference: {shown}");
    assert!(shown.contains("Flipped rows, v1 → v2, exact: 4"), "{shown}");
    assert_eq!(shown.matches("now passes").count(), 4, "{shown}");
    assert!(
        !shown.contains("/cancel"),
        "no cancel button for a reader or a final evaluation"
    );

    // Listed for the prompt and in the list of every prompt.
    let list = text(page(&app, "/evaluations?prompt=qa", Some(&reader)).await).await;
    assert_eq!(listed(&list), 1, "{list}");
    assert!(
        list.contains("v1, v2") && list.contains("qa-set v1"),
        "{list}"
    );
    assert_eq!(
        listed(&text(page(&app, "/evaluations", Some(&reader)).await).await),
        1
    );

    // Cancel is an admin's, from this server's pages; a grading run's id is not an evaluation.
    let cancel = format!("/evaluations/{id}/cancel");
    assert_eq!(
        post(&app, &cancel, Some(&app.base), Some(&reader))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&app, &cancel, Some("http://evil.example"), Some(&admin))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let cancelled = post(&app, &cancel, Some(&app.base), Some(&admin)).await;
    assert_eq!(
        cancelled.status(),
        StatusCode::SEE_OTHER,
        "a final one is left as it is"
    );
    let after = app.get_ok(&format!("/api/evals/{id}"), READ_TOKEN).await;
    assert_eq!(after["status"], "completed");
    let unknown = page(
        &app,
        "/evaluations/00000000-0000-7000-8000-000000000000",
        Some(&reader),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn evaluation_pages_on_sqlite() {
    evaluation_pages_show_results_and_refuse_forgeries(Backend::Sqlite).await;
}

#[tokio::test]
async fn evaluation_pages_on_postgres() {
    evaluation_pages_show_results_and_refuse_forgeries(Backend::Postgres).await;
}

/// The optimizations a list page shows: one link to each in the table's first column.
fn listed_optimizations(html: &str) -> usize {
    html.matches("<td><a href=\"/optimizations/").count()
}

async fn optimization_pages_show_progress_and_the_report(backend: Backend) {
    use flywheel_e2e::optimizer::{
        app_with_model, body, is_final, planted, rows, setup, start, when,
    };
    let db = TestDb::new(backend).await;
    let fake = FakeModel::start().expect("fake server");
    planted(&fake);
    let app = app_with_model(&db, &fake, 4, Duration::from_secs(30)).await;
    setup(&app, &rows(40, 40)).await;
    let admin = sign_in(&app, ADMIN_TOKEN).await.expect("admin signs in");
    let reader = sign_in(&app, READ_TOKEN).await.expect("reader signs in");
    let empty = text(page(&app, "/optimizations", Some(&reader)).await).await;
    assert!(empty.contains("No optimization yet"), "{empty}");
    assert!(empty.contains(r#"href="/optimizations" aria-current="page""#));

    let id = start(&app, body()).await;
    let done = when(&app, &id, is_final).await;
    assert_eq!(done["createdVersion"], 2, "{done}");
    let list = text(page(&app, "/optimizations", Some(&reader)).await).await;
    assert_eq!(listed_optimizations(&list), 1, "{list}");
    assert!(list.contains("version 2"), "{list}");
    let one = text(page(&app, &format!("/optimizations/{id}"), Some(&reader)).await).await;
    for expected in [
        "Report",
        "the best candidate reached the target score",
        "Version <a href=\"/prompts/qa\">2</a> created (inactive)",
        "Validation (40 rows)",
        "no_citation",
        "Always cite the source.",
        "Lineage of the winner",
        "reflection",
        "160 of 400 task-model calls",
    ] {
        assert!(one.contains(expected), "{expected:?} missing from {one}");
    }
    assert!(
        !one.contains("Cancel</button>"),
        "a final run has no cancel"
    );

    // Cancel is an admin's, from this server's pages.
    let cancel = format!("/optimizations/{id}/cancel");
    assert_eq!(
        post(&app, &cancel, Some(&app.base), Some(&reader))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&app, &cancel, Some("http://evil.example"), Some(&admin))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&app, &cancel, Some(&app.base), Some(&admin))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let unknown = page(
        &app,
        "/optimizations/00000000-0000-7000-8000-000000000000",
        Some(&reader),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimization_pages_on_sqlite() {
    optimization_pages_show_progress_and_the_report(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimization_pages_on_postgres() {
    optimization_pages_show_progress_and_the_report(Backend::Postgres).await;
}
