//! The web pages in a real browser: headless Chromium driven over WebDriver (chromedriver, the
//! `fantoccini` client) against a real `flywheel serve` on 127.0.0.1 with its SQLite file.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test` installs them when missing);
//! without them the test fails and says so. Screenshots of every page, at 1280×800 and at phone
//! width, go to `target/screenshots/`.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use common::{ADMIN, AGENT, READ, Served, flywheel, serve_on};
use fake_model::{Behaviour, FakeModel};
use flywheel::store::{Store, open_store};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 800);

/// A chromedriver child on a free port of 127.0.0.1, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn start_driver() -> Driver {
    assert!(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's chromium and chromium-driver \
         (scripts/test installs them: apt-get install chromium chromium-driver)"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .ok()
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800", "--no-first-run", "--disable-extensions"],
        }),
    );
    caps.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// What the test needs from the whole run: the server, the driver, the browser, plain HTTP.
struct Setup {
    served: Served,
    _data: tempfile::TempDir,
    database_url: String,
    driver: Driver,
    client: Client,
    http: reqwest::Client,
    console_errors: Vec<String>,
    shots: PathBuf,
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.served.url)
    }

    async fn goto(&self, path: &str) {
        self.client.goto(&self.url(path)).await.expect("navigate");
    }

    /// Console messages of level SEVERE since the last call (errors, CSP violations, failed
    /// loads), read from chromedriver's log endpoint.
    async fn take_console_errors(&mut self, page: &str) {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let answer: Value = self
            .http
            .post(format!("{}/session/{session}/se/log", self.driver.url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("read the browser log")
            .json()
            .await
            .expect("log JSON");
        let entries = answer["value"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("chromedriver gave no browser log: {answer}"));
        for entry in entries {
            if entry["level"] == "SEVERE" {
                self.console_errors
                    .push(format!("{page}: {}", entry["message"]));
            }
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save screenshot");
    }

    /// Visits a page at desktop and phone width: screenshots, no console error, nothing wider
    /// than a phone's screen.
    async fn visit(&mut self, path: &str, name: &str) {
        self.client
            .set_window_size(DESKTOP.0, DESKTOP.1)
            .await
            .expect("desktop size");
        self.goto(path).await;
        self.screenshot(name).await;
        self.client
            .set_window_size(PHONE.0, PHONE.1)
            .await
            .expect("phone size");
        self.goto(path).await;
        self.screenshot(&format!("{name}-phone")).await;
        let fits = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                vec![],
            )
            .await
            .expect("measure");
        assert_eq!(fits, json!(true), "{path} is wider than a phone's screen");
        self.client
            .set_window_size(DESKTOP.0, DESKTOP.1)
            .await
            .expect("desktop size");
        self.take_console_errors(path).await;
    }

    async fn store(&self) -> std::sync::Arc<dyn Store> {
        open_store(&self.database_url)
            .await
            .expect("open the database")
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

async fn press(client: &Client, keys: &[char]) {
    let mut actions = KeyActions::new("keyboard".to_owned());
    for key in keys {
        actions = actions
            .then(KeyAction::Down { value: *key })
            .then(KeyAction::Up { value: *key });
    }
    client.perform_actions(actions).await.expect("keys");
}

async fn ctrl_enter(client: &Client) {
    let control: char = Key::Control.into();
    let enter: char = Key::Enter.into();
    let actions = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: control })
        .then(KeyAction::Down { value: enter })
        .then(KeyAction::Up { value: enter })
        .then(KeyAction::Up { value: control });
    client.perform_actions(actions).await.expect("ctrl+enter");
}

/// Waits (bounded) until the browser is at `path`: a click that submits a form returns before
/// the POST's redirect has been followed.
async fn wait_for_path(client: &Client, path: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.expect("url");
        if url.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: at {}, not {path}",
            url.path()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until `script` returns true in the page.
async fn wait_for(client: &Client, script: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if client.execute(script, vec![]).await.expect("script") == json!(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(setup: &Setup, token: &str) {
    setup.goto("/prompts").await;
    let url = setup.client.current_url().await.expect("url");
    assert_eq!(
        url.path(),
        "/sign-in",
        "a page without a session asks to sign in"
    );
    let field = setup
        .client
        .find(Locator::Css("input[name=token]"))
        .await
        .expect("token field");
    field.send_keys(token).await.expect("type the token");
    setup
        .client
        .find(Locator::Css("form.signin button"))
        .await
        .expect("sign-in button")
        .click()
        .await
        .expect("sign in");
    wait_for_path(
        &setup.client,
        "/prompts",
        "signed in, back at the page asked for",
    )
    .await;
}

async fn sign_out(setup: &Setup) {
    setup
        .client
        .find(Locator::Css("header .who form button"))
        .await
        .expect("sign-out button")
        .click()
        .await
        .expect("sign out");
    wait_for_path(&setup.client, "/sign-in", "signed out, at the sign-in page").await;
}

async fn session_cookie(client: &Client) -> String {
    client
        .get_all_cookies()
        .await
        .expect("cookies")
        .into_iter()
        .find(|c| c.name() == "flywheel_session")
        .map(|c| c.value().to_owned())
        .expect("a session cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_work_in_headless_chromium() {
    let data = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", data.path().join("flywheel.db").display());
    // The task model of evaluations: v2 of coder (which asks for a minimal diff) gets a diff,
    // v1 prose, so the evaluation page has a difference to show.
    let model = FakeModel::start().expect("fake model server");
    model.set_default(Behaviour::answer_with(|body| {
        if body.to_string().contains("Keep the diff minimal") {
            "--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-fn old() {}\n+fn new() {}\n"
                .to_owned()
        } else {
            "I would change the function.".to_owned()
        }
    }));
    let mut command = flywheel(data.path());
    command.env("OPENAI_BASE_URL", model.base_url());
    let served = serve_on(command);
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let mut setup = Setup {
        served,
        _data: data,
        database_url,
        driver,
        client,
        http: reqwest::Client::new(),
        console_errors: Vec::new(),
        shots,
    };

    // Data: coder's graders off (the queue test is not about them), six runs, a version 2.
    for grader in setup
        .api(
            reqwest::Method::GET,
            "/api/graders/definitions?promptId=coder",
            READ,
            None,
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = grader["name"].as_str().expect("grader name");
        setup
            .api(
                reqwest::Method::POST,
                &format!("/api/graders/definitions/coder/{name}/disable"),
                ADMIN,
                None,
            )
            .await;
    }
    let runs: Vec<Value> = (1..=6)
        .map(|i| {
            json!({
                "promptId": "coder",
                "taskId": format!("task-{i}"),
                "input": { "plan": format!("step {i}"), "files": ["src/lib.rs"] },
                "output": format!("--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1 @@\n-fn old() {{}}\n+fn new_{i}() {{}}\n"),
                "model": "gpt-test",
            })
        })
        .collect();
    setup
        .api(
            reqwest::Method::POST,
            "/api/runs",
            AGENT,
            Some(json!({ "runs": runs })),
        )
        .await;
    let v1 = setup
        .api(
            reqwest::Method::GET,
            "/api/prompts/coder/versions/1",
            READ,
            None,
        )
        .await;
    let content = format!(
        "{}\nKeep the diff minimal.\n",
        v1["content"].as_str().expect("content")
    );
    setup
        .api(
            reqwest::Method::POST,
            "/api/prompts/coder/versions",
            ADMIN,
            Some(json!({ "content": content, "notes": "shorter diffs" })),
        )
        .await;

    // --- Sign in as admin.
    setup.visit("/sign-in", "sign-in").await;
    sign_in(&setup, ADMIN).await;
    setup.visit("/prompts", "prompts").await;

    // --- Annotate five runs with the keyboard alone.
    setup.visit("/prompts/coder/annotate", "annotate").await;
    setup.goto("/prompts/coder/annotate").await;
    let order = setup
        .client
        .execute(
            "return Array.from(document.querySelectorAll('article.run')).map(a => a.dataset.run);",
            vec![],
        )
        .await
        .expect("queue order");
    let order: Vec<String> = serde_json::from_value(order).expect("run ids");
    assert_eq!(order.len(), 6, "the six runs wait in the queue");
    let progress = setup
        .client
        .find(Locator::Id("queue-progress"))
        .await
        .expect("progress")
        .text()
        .await
        .expect("text");
    assert!(progress.starts_with("Run 1 of 6"), "{progress}");
    // Runs 1, 3, 5 good; 2 and 4 bad with the second code of coder's taxonomy; run 1 gets
    // feedback typed after `f`.
    let modes = setup
        .api(
            reqwest::Method::GET,
            "/api/prompts/coder/failure-modes",
            READ,
            None,
        )
        .await;
    let second_mode = modes[1]["code"].as_str().expect("a second code").to_owned();
    for (k, id) in order.iter().take(5).enumerate() {
        if k % 2 == 0 {
            press(&setup.client, &['g', '0']).await;
        } else {
            press(&setup.client, &['b', '2']).await;
        }
        if k == 0 {
            press(&setup.client, &['f']).await;
            setup
                .client
                .active_element()
                .await
                .expect("the feedback field")
                .send_keys("too many files touched")
                .await
                .expect("type feedback");
        }
        ctrl_enter(&setup.client).await;
        wait_for(
            &setup.client,
            &format!("return document.getElementById('run-{id}').classList.contains('saved');"),
            "the run to be saved",
        )
        .await;
        if k < 4 {
            let shown = setup
                .client
                .find(Locator::Id("k"))
                .await
                .expect("k")
                .text()
                .await
                .expect("text");
            assert_eq!(shown, (k + 2).to_string(), "the next run is shown");
        }
    }
    // n and p move without saving.
    press(&setup.client, &['p', 'n']).await;
    setup.screenshot("annotate-done").await;
    setup.take_console_errors("annotating").await;

    let store = setup.store().await;
    for (k, id) in order.iter().enumerate() {
        let run = store
            .get_run(id.parse().expect("uuid"))
            .await
            .expect("the run");
        let annotation = run.annotation.clone();
        if k == 5 {
            assert!(annotation.is_none(), "the sixth run was not annotated");
            continue;
        }
        let annotation = annotation.expect("annotated");
        assert_eq!(annotation.annotated_by.as_deref(), Some("ops"));
        assert_eq!(
            annotation.source,
            Some(flywheel::store::AnnotationSource::Person)
        );
        if k % 2 == 0 {
            assert_eq!(
                annotation.rating,
                Some(flywheel::store::Rating::Good),
                "run {k}"
            );
            assert_eq!(annotation.failure_mode, None, "run {k}");
        } else {
            assert_eq!(
                annotation.rating,
                Some(flywheel::store::Rating::Bad),
                "run {k}"
            );
            assert_eq!(
                annotation.failure_mode.as_deref(),
                Some(second_mode.as_str())
            );
        }
        let feedback = annotation.output_feedback.as_deref();
        if k == 0 {
            assert_eq!(feedback, Some("too many files touched"));
        } else {
            assert_eq!(feedback, None);
        }
    }

    // --- Deploy v2 and roll back, through the confirmation pages.
    setup.visit("/prompts/coder", "versions").await;
    setup.visit("/prompts/coder?a=1&b=2", "versions-diff").await;
    setup.goto("/prompts/coder").await;
    setup
        .client
        .find(Locator::Css("a[href='/prompts/coder/deploy/2']"))
        .await
        .expect("deploy link")
        .click()
        .await
        .expect("open the confirmation");
    setup.screenshot("deploy-confirm").await;
    setup
        .client
        .find(Locator::Css("form.confirm button"))
        .await
        .expect("confirm button")
        .click()
        .await
        .expect("deploy");
    wait_active(&store, 2).await;
    setup
        .client
        .find(Locator::Css("a[href='/prompts/coder/rollback']"))
        .await
        .expect("rollback link")
        .click()
        .await
        .expect("open the confirmation");
    setup
        .client
        .find(Locator::Css("form.confirm button"))
        .await
        .expect("confirm button")
        .click()
        .await
        .expect("roll back");
    wait_active(&store, 1).await;
    let history = store.deploy_history("coder").await.expect("history");
    assert_eq!(
        history
            .iter()
            .rev()
            .take(2)
            .map(|r| r.actor.as_str())
            .collect::<Vec<_>>(),
        ["ops", "ops"]
    );

    // --- The other pages (a grading job gives the grading pages something to show).
    let job = start_grading_job(&setup).await;
    // The same list from the command line: through the server, and on the database file.
    let client_dir = tempfile::tempdir().expect("temp dir");
    let listed = common::ok(
        flywheel(client_dir.path())
            .args([
                "grading-runs",
                "list",
                "--prompt",
                "coder",
                "--server",
                &setup.served.url,
            ])
            .env("FLYWHEEL_TOKEN", READ),
    );
    assert!(listed.contains(&job), "{listed}");
    let listed = common::ok(
        flywheel(client_dir.path())
            .args(["grading-runs", "list", "--json"])
            .env("DATABASE_URL", &setup.database_url),
    );
    let listed: Value = serde_json::from_str(&listed).expect("JSON list");
    assert_eq!(listed[0]["id"], job.as_str(), "newest first");
    // Opened at once, the job is usually still queued or running: the script refreshes the
    // progress section in place (no navigation) until it reads "completed".
    setup.goto(&format!("/grading-runs/{job}")).await;
    wait_for(
        &setup.client,
        "const s = document.querySelector('#progress .status'); \
         return !!s && s.textContent === 'completed' && !document.querySelector('#progress[data-poll]');",
        "the grading run's progress to reach completed",
    )
    .await;
    setup
        .visit("/prompts/coder/failure-modes", "failure-modes")
        .await;
    setup.visit("/runs?promptId=coder", "runs").await;
    setup.visit(&format!("/runs/{}", order[0]), "run").await;
    setup.visit("/grading-runs", "grading-runs").await;
    setup
        .visit(&format!("/grading-runs/{job}"), "grading-run")
        .await;
    setup.visit("/ab-tests", "ab-tests").await;

    // --- Evaluations: the admin's form starts one on a dataset of coder (its diff_valid grader
    // was enabled for the grading run), and its page refreshes in place until completed.
    let rows: Vec<Value> = (1..=3)
        .map(|i| {
            json!({ "item": {
                "task_title": format!("Task {i}"),
                "task_description": "Rename the function.",
                "plan": format!("step {i}"),
                "repository_files": "src/lib.rs",
                "previous_attempt": "none",
            } })
        })
        .collect();
    setup
        .api(
            reqwest::Method::POST,
            "/api/datasets",
            ADMIN,
            Some(json!({ "promptId": "coder", "name": "coder-set", "rows": rows })),
        )
        .await;
    setup
        .visit("/evaluations?prompt=coder", "evaluations-start")
        .await;
    setup
        .client
        .find(Locator::Css("form.start button.primary"))
        .await
        .expect("the start form")
        .click()
        .await
        .expect("start an evaluation");
    wait_for(
        &setup.client,
        "const s = document.querySelector('#progress .status'); \
         return location.pathname.startsWith('/evaluations/') && !!s && \
         s.textContent === 'completed' && !document.querySelector('#progress[data-poll]');",
        "the evaluation's progress to reach completed",
    )
    .await;
    let evaluation = setup
        .client
        .current_url()
        .await
        .expect("url")
        .path()
        .to_owned();
    let shown = setup
        .client
        .find_all(Locator::Css("table.eval-graders tbody tr"))
        .await
        .expect("find");
    assert_eq!(shown.len(), 2, "v1 and v2 graded by diff_valid");
    let versions = setup
        .client
        .find(Locator::Css("table.eval-versions"))
        .await
        .expect("the versions table")
        .text()
        .await
        .expect("text");
    assert!(
        !versions.contains("missing_variable"),
        "every row was answered: {versions}"
    );
    setup.visit("/evaluations", "evaluations").await;
    setup.visit(&evaluation, "evaluation").await;
    // The failure-mode bar opens the runs of its mode.
    setup.goto("/prompts/coder/failure-modes").await;
    let link = setup
        .client
        .find(Locator::Css(&format!(
            "table a[href*='failureMode={second_mode}']"
        )))
        .await
        .expect("a link to the mode's runs");
    link.click().await.expect("open the runs");
    wait_for_path(&setup.client, "/runs", "the runs of the mode").await;
    let rows = setup
        .client
        .find_all(Locator::Css("table.runs tbody tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2, "the two runs coded {second_mode}");

    // --- Forged requests are refused and change nothing.
    let admin_cookie = session_cookie(&setup.client).await;
    let (http, deploy_url) = (setup.http.clone(), setup.url("/prompts/coder/deploy/2"));
    let forge = |origin: Option<&str>, cookie: Option<&str>| {
        let mut request = http.post(&deploy_url);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        if let Some(cookie) = cookie {
            request = request.header("Cookie", format!("flywheel_session={cookie}"));
        }
        request.send()
    };
    let own = setup.served.url.clone();
    for (origin, cookie, status, code) in [
        (None, Some(admin_cookie.as_str()), 403, "origin_refused"),
        (
            Some("http://evil.example"),
            Some(admin_cookie.as_str()),
            403,
            "origin_refused",
        ),
        (Some(own.as_str()), None, 401, "unauthorized"),
    ] {
        let response = forge(origin, cookie).await.expect("forged request");
        assert_eq!(response.status().as_u16(), status, "{origin:?} {cookie:?}");
        let text = response.text().await.unwrap_or_default();
        assert!(text.contains(code), "{code} expected: {text}");
    }
    assert_eq!(
        active_version(&store).await,
        1,
        "nothing deployed by a forged request"
    );

    // --- Signing out ends the session: the old cookie opens nothing.
    sign_out(&setup).await;
    let after = setup
        .http
        .get(setup.url("/prompts"))
        .header("Cookie", format!("flywheel_session={admin_cookie}"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        after.url().path(),
        "/sign-in",
        "the ended session is sent to sign in again"
    );

    // --- A read token sees no write buttons, and the server refuses the action anyway.
    sign_in(&setup, READ).await;
    setup.goto("/prompts/coder").await;
    let writes = setup
        .client
        .find_all(Locator::Css(
            "main a.button, main button.primary, main form[method=post]",
        ))
        .await
        .expect("find");
    assert!(
        writes.is_empty(),
        "a reader sees {} write controls",
        writes.len()
    );
    setup
        .visit("/prompts/coder/annotate", "annotate-read-only")
        .await;
    let forms = setup
        .client
        .find_all(Locator::Css("form.annotate"))
        .await
        .expect("find");
    assert!(forms.is_empty(), "a reader gets no annotation form");
    setup
        .visit("/evaluations?prompt=coder", "evaluations-read-only")
        .await;
    let forms = setup
        .client
        .find_all(Locator::Css("main form[method=post]"))
        .await
        .expect("find");
    assert!(forms.is_empty(), "a reader gets no start form");
    let read_cookie = session_cookie(&setup.client).await;
    let refused = forge(Some(own.as_str()), Some(read_cookie.as_str()))
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 403);
    assert!(
        refused
            .text()
            .await
            .unwrap_or_default()
            .contains("forbidden")
    );
    let refused = setup
        .http
        .post(setup.url("/evaluations"))
        .header("Origin", own.as_str())
        .header("Cookie", format!("flywheel_session={read_cookie}"))
        .form(&[
            ("prompt", "coder"),
            ("version", "1"),
            ("dataset", "coder-set"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(
        store
            .list_evaluations(
                &flywheel::store::JobListFilter {
                    prompt_id: Some("coder".into()),
                    ..Default::default()
                },
                10,
            )
            .await
            .expect("evaluations")
            .len(),
        1,
        "a reader started nothing"
    );
    let refused = setup
        .http
        .post(setup.url(&format!("/runs/{}/annotation", order[5])))
        .header("Origin", own.as_str())
        .header("Cookie", format!("flywheel_session={read_cookie}"))
        .header("Accept", "application/json")
        .form(&[("rating", "good")])
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 403);
    assert_eq!(active_version(&store).await, 1);
    let sixth = store
        .get_run(order[5].parse().expect("uuid"))
        .await
        .expect("run");
    assert!(sixth.annotation.is_none(), "a reader annotated nothing");

    setup.take_console_errors("read-only pages").await;
    assert!(
        setup.console_errors.is_empty(),
        "console errors:\n{}",
        setup.console_errors.join("\n")
    );
    setup
        .client
        .clone()
        .close()
        .await
        .expect("close the browser");
}

/// Waits (bounded) until the click's request has been handled and `version` is active.
async fn wait_active(store: &std::sync::Arc<dyn Store>, version: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while active_version(store).await != version {
        assert!(Instant::now() < deadline, "v{version} never became active");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn active_version(store: &std::sync::Arc<dyn Store>) -> i64 {
    store
        .list_prompts()
        .await
        .expect("prompts")
        .into_iter()
        .find(|p| p.prompt.id == "coder")
        .and_then(|p| p.active_version)
        .expect("an active version")
}

/// Starts a grading run over coder's runs with its (re-enabled) diff_valid grader, retrying
/// while the grader components are still loading (503).
async fn start_grading_job(setup: &Setup) -> String {
    setup
        .api(
            reqwest::Method::POST,
            "/api/graders/definitions/coder/diff_valid/enable",
            ADMIN,
            None,
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = setup
            .http
            .post(setup.url("/api/grading-runs"))
            .bearer_auth(ADMIN)
            .json(&json!({ "promptId": "coder", "graders": ["diff_valid"] }))
            .send()
            .await
            .expect("start a grading run");
        if response.status().as_u16() == 202 {
            let job: Value = response.json().await.expect("job");
            return job["id"].as_str().expect("job id").to_owned();
        }
        assert!(
            response.status().as_u16() == 503 && Instant::now() < deadline,
            "grading run refused: {}",
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
