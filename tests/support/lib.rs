//! Shared helpers for the end-to-end tests: the real application started in-process on
//! 127.0.0.1 (real HTTP through reqwest) on a fresh SQLite file or a fresh PostgreSQL database,
//! with one token per role.

use std::time::Duration;

use anyhow::Context;
use flywheel::config::{ConfigArgs, Settings};
use flywheel::server::{self, RunningServer};
use flywheel::store::testing::{self, PgTestDb, TempDirGuard};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Secret of the `reader` token (role read).
pub const READ_TOKEN: &str = "read-token-secret";
/// Secret of the `robot` token (role agent).
pub const AGENT_TOKEN: &str = "agent-token-secret";
/// Secret of the `reviewer` token (role annotator).
pub const ANNOTATOR_TOKEN: &str = "annotator-token-secret";
/// Secret of the `ops` token (role admin).
pub const ADMIN_TOKEN: &str = "admin-token-secret";
/// The tokens every test app is configured with.
pub const TOKENS: &str = "reader:read:read-token-secret,robot:agent:agent-token-secret,\
     reviewer:annotator:annotator-token-secret,ops:admin:admin-token-secret";
/// Name of the admin token, recorded as the actor of its deploys.
pub const ADMIN_NAME: &str = "ops";

/// Which backend a test database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A throw-away database; dropping it removes the file or drops the database.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    /// The data directory of the app (SQLite file lives here for SQLite).
    pub dir: TempDirGuard,
    _pg: Option<PgTestDb>,
}

impl TestDb {
    /// A fresh database of the given backend.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let (dir, url) = testing::sqlite_temp();
                TestDb {
                    url,
                    dir,
                    _pg: None,
                }
            }
            Backend::Postgres => {
                let pg = testing::postgres_fresh().await;
                TestDb {
                    url: pg.url().to_owned(),
                    dir: TempDirGuard::new().expect("temporary directory"),
                    _pg: Some(pg),
                }
            }
        }
    }

    /// Settings for an app on this database, bound to 127.0.0.1:0, with [`TOKENS`].
    pub fn settings(&self) -> Settings {
        let args = ConfigArgs {
            database_url: Some(self.url.as_str().into()),
            bind: Some("127.0.0.1:0".to_owned()),
            data_dir: Some(self.dir.path().display().to_string()),
            tokens: Some(TOKENS.into()),
            ..ConfigArgs::default()
        };
        let mut settings = Settings::from_args(&args).expect("test settings are valid");
        // One compile cache for every app the tests start: the built-in components (the Python
        // interpreter takes a minute to compile in a debug build) are compiled once per build,
        // not once per app; the automatic grader waits for them.
        settings.cache_dir = shared_cache_dir();
        settings
    }
}

/// The compile cache shared by every test app (under the target directory).
pub fn shared_cache_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/flywheel-test-component-cache")
}

/// One running application instance and an HTTP client for it.
pub struct TestApp {
    /// The running server.
    pub server: RunningServer,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A keep-alive client.
    pub http: reqwest::Client,
}

/// An HTTP answer: status and parsed JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: StatusCode,
    /// Body as JSON.
    pub json: Value,
    /// `content-type` header.
    pub content_type: String,
    /// Raw body.
    pub text: String,
    /// `www-authenticate` header, if any.
    pub www_authenticate: Option<String>,
}

impl Answer {
    /// The error code of an error body, if any.
    pub fn error_code(&self) -> Option<&str> {
        self.json["error"]["code"].as_str()
    }
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Req {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Raw `Authorization` header (overrides `token`).
    pub authorization: Option<String>,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body bytes, if any.
    pub body: Option<Vec<u8>>,
}

impl Req {
    /// A GET with a token.
    pub fn get(path: impl Into<String>, token: Option<&str>) -> Req {
        Req::new(Method::GET, path, token)
    }

    /// A POST without a body.
    pub fn post(path: impl Into<String>, token: Option<&str>) -> Req {
        Req::new(Method::POST, path, token)
    }

    /// A request with a method.
    pub fn new(method: Method, path: impl Into<String>, token: Option<&str>) -> Req {
        Req {
            method,
            path: path.into(),
            token: token.map(str::to_owned),
            authorization: None,
            content_type: None,
            body: None,
        }
    }

    /// Adds a JSON body (raw text, so malformed bodies can be sent).
    pub fn json(mut self, body: impl Into<Vec<u8>>) -> Req {
        self.content_type = Some("application/json".to_owned());
        self.body = Some(body.into());
        self
    }

    /// Adds a body with any content type (or none).
    pub fn body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Req {
        self.content_type = content_type.map(str::to_owned);
        self.body = Some(body.into());
        self
    }

    /// Sets the raw `Authorization` header.
    pub fn authorization(mut self, value: &str) -> Req {
        self.authorization = Some(value.to_owned());
        self
    }
}

impl TestApp {
    /// Starts the app on a database.
    pub async fn start(db: &TestDb) -> TestApp {
        Self::start_with(db.settings()).await
    }

    /// Starts the app with settings.
    pub async fn start_with(settings: Settings) -> TestApp {
        let server = server::start(settings).await.expect("the app starts");
        let base = format!("http://{}", server.addr);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        TestApp { server, base, http }
    }

    /// Disables every stored grader definition of `prompt`, so the background grader and its
    /// rules leave that prompt's runs alone and a test sees only what it stored itself.
    pub async fn disable_graders(&self, prompt: &str) {
        let store = &self.server.state.store;
        for grader in store
            .list_graders(Some(prompt))
            .await
            .expect("list graders")
        {
            store
                .set_grader_enabled(prompt, &grader.name, false)
                .await
                .expect("disable a grader");
        }
    }

    /// Sends a request.
    pub async fn send(&self, req: &Req) -> Answer {
        self.try_send(req).await.expect("request reaches the app")
    }

    async fn try_send(&self, req: &Req) -> anyhow::Result<Answer> {
        let url = format!("{}{}", self.base, req.path);
        let mut builder = self.http.request(req.method.clone(), &url);
        if let Some(auth) = &req.authorization {
            builder = builder.header("authorization", auth);
        } else if let Some(token) = &req.token {
            builder = builder.bearer_auth(token);
        }
        if let Some(ct) = &req.content_type {
            builder = builder.header("content-type", ct);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await.with_context(|| url.clone())?;
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.context("body")?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            json,
            content_type,
            text,
            www_authenticate,
        })
    }

    /// Waits until `/readyz` answers 200 (the built-in graders loaded), so that a test's own
    /// time limits start from a ready instance: on a loaded machine, compiling the built-in
    /// components can take longer than the work under test. Bounded: 1200 tries, 100 ms apart.
    pub async fn wait_ready(&self) {
        let mut last = String::new();
        for _ in 0..1200 {
            let answer = self.send(&Req::get("/readyz", None)).await;
            if answer.status == StatusCode::OK {
                return;
            }
            last = answer.text;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the instance is still not ready after 120 s: {last}");
    }

    /// GET with a token; panics unless 200.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let answer = self.send(&Req::get(path, Some(token))).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        answer.json
    }

    /// POST a JSON value with the admin token; returns the answer.
    pub async fn post_admin(&self, path: &str, body: Option<Value>) -> Answer {
        let mut req = Req::post(path, Some(ADMIN_TOKEN));
        if let Some(body) = body {
            req = req.json(body.to_string());
        }
        self.send(&req).await
    }

    /// Everything a client can observe about the prompts (versions with their active flags and
    /// figures, deploy histories, failure modes) and every recorded run, read straight from the
    /// registry and the store: equal snapshots mean an unchanged database.
    pub async fn snapshot(&self) -> Value {
        let registry = &self.server.state.registry;
        let prompts = registry.list().await.expect("list prompts");
        let mut out = Vec::new();
        let runs = self
            .server
            .state
            .store
            .list_runs(&flywheel::store::RunFilter::default(), 100_000)
            .await
            .expect("list runs");
        out.push(serde_json::json!({ "runs": runs }));
        let datasets = self
            .server
            .state
            .store
            .list_datasets(None)
            .await
            .expect("list datasets");
        out.push(serde_json::json!({ "datasets": datasets }));
        for p in &prompts {
            let id = &p.prompt.id;
            out.push(serde_json::json!({
                "prompt": p,
                "history": registry.history(id).await.expect("history"),
                "failureModes": registry.failure_modes(id).await.expect("failure modes"),
                "abTests": registry.ab_tests(id).await.expect("A/B tests"),
            }));
        }
        Value::Array(out)
    }

    /// The version numbers marked active for a prompt, read through the API.
    pub async fn active_versions(&self, prompt: &str) -> Vec<i64> {
        let versions = self
            .get_ok(&format!("/api/prompts/{prompt}/versions"), READ_TOKEN)
            .await;
        versions
            .as_array()
            .expect("versions array")
            .iter()
            .filter(|v| v["isActive"] == Value::Bool(true))
            .filter_map(|v| v["version"].as_i64())
            .collect()
    }

    /// Creates a version with the admin token; returns its number.
    pub async fn create_version(&self, prompt: &str, content: &str) -> i64 {
        let answer = self
            .post_admin(
                &format!("/api/prompts/{prompt}/versions"),
                Some(serde_json::json!({ "content": content })),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.json["version"].as_i64().expect("version number")
    }

    /// Resolves a prompt for a task with the agent token; returns the version served.
    pub async fn resolve_version(&self, prompt: &str, task: &str) -> i64 {
        let json = self
            .get_ok(
                &format!("/api/prompts/{prompt}/resolve?task_id={task}"),
                AGENT_TOKEN,
            )
            .await;
        json["version"].as_i64().expect("resolved version")
    }
}

/// promptfoo's config schema, pinned at 0.121.20 (`tests/e2e/fixtures/promptfoo/README.md`),
/// compiled. Its generator leaves one `$defs` block nested where a sub-schema was converted on
/// its own while its `$ref`s point at the document root (`#/$defs/__schema0`, in `redteam`); the
/// block is lifted to the root so the references resolve, as promptfoo's editors resolve them.
pub fn promptfoo_schema() -> jsonschema::Validator {
    let text = include_str!("../e2e/fixtures/promptfoo/config-schema-0.121.20.json");
    let mut schema: Value = serde_json::from_str(text).expect("schema JSON");
    let mut defs = serde_json::Map::new();
    take_nested_defs(&mut schema, &mut defs);
    if let Some(root) = schema.as_object_mut() {
        root.insert("$defs".to_owned(), Value::Object(defs));
    }
    jsonschema::validator_for(&schema).expect("the pinned schema compiles")
}

fn take_nested_defs(value: &mut Value, defs: &mut serde_json::Map<String, Value>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(found)) = map.remove("$defs") {
                defs.extend(found);
            }
            for child in map.values_mut() {
                take_nested_defs(child, defs);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| take_nested_defs(v, defs)),
        _ => {}
    }
}
pub mod optimizer;
