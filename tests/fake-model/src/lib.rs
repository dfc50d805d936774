//! A scriptable OpenAI-compatible model server for tests and benchmarks.
//!
//! [`FakeModel::start`] binds `127.0.0.1:0`, serves `POST /v1/chat/completions` and
//! `POST /v1/embeddings` on its own thread and runtime, and shuts down when dropped. What it
//! answers is programmed by the test: a queue of one-shot [`Behaviour`]s consumed call by call,
//! then a default behaviour for every later call. It records every request it received (path,
//! `Authorization` header, body, arrival time), counts calls and tracks the most calls it had in
//! flight at once, so a test can check retries, waits, concurrency limits and where a key went.
//!
//! It owns nothing of Flywheel: it only speaks the OpenAI wire format, and it only ever listens on
//! a loopback address.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// How long a [`Behaviour::Stall`] waits before giving up. Far beyond any client timeout a test
/// uses; dropping the server ends it earlier.
pub const STALL_LIMIT: Duration = Duration::from_secs(600);

/// Number of dimensions of the vectors [`embedding_for`] returns.
pub const EMBEDDING_DIMENSIONS: usize = 64;

/// Computes the answer text of a chat completion from the request body.
pub type AnswerFn = Arc<dyn Fn(&Value) -> String + Send + Sync>;

/// What the server answers to one call.
#[derive(Clone)]
pub enum Behaviour {
    /// 200 with a well-formed completion (or embeddings, on `/v1/embeddings`).
    Answer(Answer),
    /// 200 with this body verbatim, declared as JSON: for malformed-answer tests.
    Malformed(String),
    /// 429 with a `Retry-After` header carrying this value (seconds or an HTTP date), or none.
    RateLimited {
        /// The header's value, verbatim.
        retry_after: Option<String>,
    },
    /// This status with an OpenAI-style error body carrying `message`.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The text of `error.message`.
        message: String,
    },
    /// 401 whose error message quotes the `Authorization` header it received, as OpenAI's
    /// "Incorrect API key provided: sk-…" does: the client must redact it.
    EchoKeyInError,
    /// Never answers (until [`STALL_LIMIT`] or until the server is dropped).
    Stall,
    /// Waits, then behaves as the inner behaviour.
    Delayed(Duration, Box<Behaviour>),
}

impl Behaviour {
    /// A chat answer with this fixed content.
    pub fn answer(content: impl Into<String>) -> Self {
        Self::Answer(Answer::Text(content.into()))
    }

    /// A chat answer computed from the request body.
    pub fn answer_with(f: impl Fn(&Value) -> String + Send + Sync + 'static) -> Self {
        Self::Answer(Answer::Func(Arc::new(f)))
    }

    /// A 429 with `Retry-After: <secs>`.
    pub fn rate_limited_secs(secs: u64) -> Self {
        Self::RateLimited {
            retry_after: Some(secs.to_string()),
        }
    }

    /// A 500 with an OpenAI-style error body.
    pub fn server_error() -> Self {
        Self::Status {
            status: 500,
            message: "The server had an error while processing your request.".to_owned(),
        }
    }
}

/// The content of a successful chat answer.
#[derive(Clone)]
pub enum Answer {
    /// Always this text.
    Text(String),
    /// A function of the request body.
    Func(AnswerFn),
}

impl Answer {
    fn content(&self, request: &Value) -> String {
        match self {
            Answer::Text(text) => text.clone(),
            Answer::Func(f) => f(request),
        }
    }
}

/// How the `usage` object of an answer is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageMode {
    /// Roughly one token per four characters of the prompt and of the answer (at least 1 each).
    Computed,
    /// Always these counts: (prompt tokens, completion tokens).
    Fixed(u32, u32),
    /// No `usage` object at all, as some servers do.
    Omitted,
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The request path, such as `/v1/chat/completions`.
    pub path: String,
    /// The `Authorization` header, verbatim, if any.
    pub authorization: Option<String>,
    /// Every header as (name, value) text; values that are not text are left out.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// When the request arrived.
    pub received_at: Instant,
}

struct Shared {
    script: Mutex<VecDeque<Behaviour>>,
    default: Mutex<Behaviour>,
    latency: Mutex<Duration>,
    usage: Mutex<UsageMode>,
    requests: Mutex<Vec<RecordedRequest>>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A poisoned lock here only means a test thread panicked mid-update of plain data; the data is
/// still usable for the rest of the test.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake model server; dropping it shuts it down.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeModel {
    /// Starts a server on `127.0.0.1:0` that answers `"ok"` to every call.
    pub fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a server on a loopback address; any other address is refused.
    pub fn start_on(addr: SocketAddr) -> io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the fake model server only listens on loopback, not {addr}"),
            ));
        }
        let listener = StdTcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Behaviour::answer("ok")),
            latency: Mutex::new(Duration::ZERO),
            usage: Mutex::new(UsageMode::Computed),
            requests: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/embeddings", post(embeddings))
            .with_state(shared.clone());
        let thread = std::thread::Builder::new()
            .name(format!("fake-model-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            eprintln!("fake-model: cannot adopt listener: {error}");
                            return;
                        }
                    };
                    // Dropping the serve future (on shutdown) stops accepting; the runtime's
                    // shutdown below cancels connections still in flight, stalled ones included.
                    tokio::select! {
                        result = axum::serve(listener, app) => {
                            if let Err(error) = result {
                                eprintln!("fake-model: server error: {error}");
                            }
                        }
                        _ = shutdown_rx => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(500));
            })?;
        Ok(Self {
            addr,
            shared,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an OpenAI client uses: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a behaviour for the next call not yet served by an earlier queued one.
    pub fn push(&self, behaviour: Behaviour) -> &Self {
        lock(&self.shared.script).push_back(behaviour);
        self
    }

    /// Queues the same behaviour for the next `times` calls.
    pub fn push_times(&self, behaviour: Behaviour, times: usize) -> &Self {
        let mut script = lock(&self.shared.script);
        for _ in 0..times {
            script.push_back(behaviour.clone());
        }
        self
    }

    /// Sets what every call answers once the queue is empty.
    pub fn set_default(&self, behaviour: Behaviour) -> &Self {
        *lock(&self.shared.default) = behaviour;
        self
    }

    /// Makes every answer wait this long first (for benchmarks); zero by default.
    pub fn set_latency(&self, latency: Duration) -> &Self {
        *lock(&self.shared.latency) = latency;
        self
    }

    /// Sets how the `usage` object of answers is filled.
    pub fn set_usage(&self, usage: UsageMode) -> &Self {
        *lock(&self.shared.usage) = usage;
        self
    }

    /// How many calls the server received, on both routes.
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::SeqCst)
    }

    /// The most calls the server was handling at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // An error means the server thread already ended; nothing left to stop.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps the in-flight count right even when a stalled call is cancelled.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy)]
enum Route {
    Chat,
    Embeddings,
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_call(
        &shared,
        Route::Chat,
        "/v1/chat/completions",
        &headers,
        &body,
    )
    .await
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve_call(
        &shared,
        Route::Embeddings,
        "/v1/embeddings",
        &headers,
        &body,
    )
    .await
}

async fn serve_call(
    shared: &Shared,
    route: Route,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let _in_flight = InFlight::enter(shared);
    shared.calls.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    lock(&shared.requests).push(RecordedRequest {
        path: path.to_owned(),
        authorization: authorization.clone(),
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                value
                    .to_str()
                    .ok()
                    .map(|value| (name.as_str().to_owned(), value.to_owned()))
            })
            .collect(),
        body: text,
        json: parsed.clone(),
        received_at: Instant::now(),
    });

    let behaviour = lock(&shared.script)
        .pop_front()
        .unwrap_or_else(|| lock(&shared.default).clone());
    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let usage = *lock(&shared.usage);
    respond(
        behaviour,
        route,
        parsed.as_ref(),
        authorization.as_deref(),
        usage,
    )
    .await
}

async fn respond(
    mut behaviour: Behaviour,
    route: Route,
    request: Option<&Value>,
    authorization: Option<&str>,
    usage: UsageMode,
) -> Response {
    // Delays nest; each level is a finite wait, so this ends.
    while let Behaviour::Delayed(delay, inner) = behaviour {
        tokio::time::sleep(delay).await;
        behaviour = *inner;
    }
    match behaviour {
        Behaviour::Answer(answer) => {
            let Some(request) = request else {
                return error_response(400, "We could not parse the JSON body of your request.");
            };
            match route {
                Route::Chat => chat_answer(&answer, request, usage),
                Route::Embeddings => embeddings_answer(request, usage),
            }
        }
        Behaviour::Malformed(body) => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Behaviour::RateLimited { retry_after } => {
            let mut response = error_response(429, "Rate limit reached for requests.");
            if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Behaviour::Status { status, message } => error_response(status, &message),
        Behaviour::EchoKeyInError => {
            let key = authorization
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or("");
            error_response(
                401,
                &format!(
                    "Incorrect API key provided: {key}. You can find your API key at https://platform.openai.com/account/api-keys."
                ),
            )
        }
        Behaviour::Stall => {
            tokio::time::sleep(STALL_LIMIT).await;
            error_response(504, "stalled")
        }
        Behaviour::Delayed(..) => error_response(500, "unreachable nested delay"),
    }
}

fn error_response(status: u16, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status == StatusCode::TOO_MANY_REQUESTS {
        "rate_limit_error"
    } else if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
        ),
    )
        .into_response()
}

fn chat_answer(answer: &Answer, request: &Value, usage: UsageMode) -> Response {
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error_response(400, "you must provide a model parameter");
    };
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return error_response(400, "Missing required parameter: 'messages'.");
    };
    if messages.is_empty() {
        return error_response(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
        );
    }
    let content = answer.content(request);
    let prompt_chars: usize = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(str::len)
        .sum();
    let mut body = json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop"
        }],
    });
    if let Some((prompt, completion)) = usage_counts(usage, prompt_chars, content.len()) {
        body["usage"] = json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        });
    }
    axum::Json(body).into_response()
}

fn embeddings_answer(request: &Value, usage: UsageMode) -> Response {
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error_response(400, "you must provide a model parameter");
    };
    let inputs: Vec<&str> = match request.get("input") {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => {
            match items.iter().map(Value::as_str).collect::<Option<Vec<_>>>() {
                Some(texts) => texts,
                None => return error_response(400, "'input' must be a string or strings"),
            }
        }
        _ => return error_response(400, "Missing required parameter: 'input'."),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({"object": "embedding", "index": index, "embedding": embedding_for(text)})
        })
        .collect();
    let chars: usize = inputs.iter().map(|text| text.len()).sum();
    let mut body = json!({"object": "list", "data": data, "model": model});
    if let Some((prompt, _)) = usage_counts(usage, chars, 0) {
        body["usage"] = json!({"prompt_tokens": prompt, "total_tokens": prompt});
    }
    axum::Json(body).into_response()
}

fn usage_counts(mode: UsageMode, prompt_chars: usize, answer_chars: usize) -> Option<(u32, u32)> {
    let tokens = |chars: usize| u32::try_from(chars.div_ceil(4).max(1)).unwrap_or(u32::MAX);
    match mode {
        UsageMode::Computed => Some((tokens(prompt_chars), tokens(answer_chars))),
        UsageMode::Fixed(prompt, completion) => Some((prompt, completion)),
        UsageMode::Omitted => None,
    }
}

/// The vector the fake server returns for `text`: hashed character trigrams of the lower-cased
/// text, L2-normalised, so similar texts get a high cosine similarity and a test can compute the
/// expected value itself. An empty text gives the zero vector.
pub fn embedding_for(text: &str) -> Vec<f32> {
    let mut vector = vec![0f32; EMBEDDING_DIMENSIONS];
    let chars: Vec<char> = format!("  {}  ", text.to_lowercase()).chars().collect();
    if text.is_empty() {
        return vector;
    }
    for window in chars.windows(3) {
        // FNV-1a over the trigram: stable across runs and platforms.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for c in window {
            for byte in (*c as u32).to_le_bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        // The modulo keeps the index below EMBEDDING_DIMENSIONS, which fits usize.
        let index = usize::try_from(hash % EMBEDDING_DIMENSIONS as u64).unwrap_or(0);
        vector[index] += 1.0;
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

/// The text of the last `user` message of a chat request body, if any: handy in
/// [`Behaviour::answer_with`] closures.
pub fn last_user_message(request: &Value) -> Option<&str> {
    request
        .get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?
        .get("content")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_of_similar_texts_are_closer_than_of_unrelated_ones() {
        let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let a = embedding_for("the quick brown fox");
        let b = embedding_for("the quick brown foxes");
        let c = embedding_for("zzzz 12345 qqqq");
        assert!((cosine(&a, &a) - 1.0).abs() < 1e-5);
        assert!(cosine(&a, &b) > 0.8, "{}", cosine(&a, &b));
        assert!(cosine(&a, &c) < cosine(&a, &b));
        assert!(embedding_for("").iter().all(|x| *x == 0.0));
    }

    /// Sends a raw HTTP request and returns the stream, so a test can read or abandon it.
    fn post(fake: &FakeModel, path: &str, body: &str) -> std::net::TcpStream {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(fake.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        stream
    }

    fn read_all(mut stream: std::net::TcpStream) -> String {
        use std::io::Read;
        let mut text = String::new();
        stream.read_to_string(&mut text).expect("read");
        text
    }

    #[test]
    fn answers_scripted_behaviours_in_order_then_the_default() {
        let fake = FakeModel::start().expect("start");
        fake.push(Behaviour::rate_limited_secs(7))
            .set_default(Behaviour::answer("fine"))
            .set_usage(UsageMode::Fixed(2, 1));
        let chat = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let first = read_all(post(&fake, "/v1/chat/completions", chat));
        assert!(first.starts_with("HTTP/1.1 429"), "{first}");
        assert!(first.to_lowercase().contains("retry-after: 7"), "{first}");
        let second = read_all(post(&fake, "/v1/chat/completions", chat));
        assert!(second.starts_with("HTTP/1.1 200"), "{second}");
        assert!(second.contains(r#""content":"fine""#), "{second}");
        assert!(second.contains(r#""total_tokens":3"#), "{second}");
        let bad = read_all(post(&fake, "/v1/chat/completions", r#"{"model":"m"}"#));
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        assert_eq!(fake.calls(), 3);
        let requests = fake.requests();
        assert_eq!(requests[0].authorization.as_deref(), Some("Bearer k"));
        assert_eq!(
            requests[1].json.as_ref().map(|j| j["model"].clone()),
            Some(json!("m"))
        );
    }

    #[test]
    fn dropping_the_server_ends_stalled_calls_and_closes_the_port() {
        let fake = FakeModel::start().expect("start");
        fake.set_default(Behaviour::Stall);
        let addr = fake.addr();
        let stalled = post(
            &fake,
            "/v1/chat/completions",
            r#"{"model":"m","messages":[]}"#,
        );
        // Wait (bounded) until the server has the call, so the drop really cancels one.
        for _ in 0..200 {
            if fake.calls() == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(fake.calls(), 1);
        let started = Instant::now();
        drop(fake);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let rest = read_all(stalled);
        assert!(!rest.contains("200 OK"), "{rest}");
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening"
        );
    }

    #[test]
    fn refuses_a_non_loopback_address() {
        let addr = SocketAddr::from(([0, 0, 0, 0], 0));
        assert!(FakeModel::start_on(addr).is_err());
    }

    #[test]
    fn last_user_message_finds_the_last_one() {
        let request = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": "second"},
        ]});
        assert_eq!(last_user_message(&request), Some("second"));
        assert_eq!(last_user_message(&json!({})), None);
    }
}
