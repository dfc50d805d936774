//! [`LlmClient`]: calls OpenAI-compatible Chat Completions and Embeddings endpoints on behalf of
//! graders, applying the settings' endpoint, key, time limit, retries, concurrency limit and the
//! caller's [`RunBudget`].
//!
//! One call, as the `llm` host import sees it:
//! 1. resolve the endpoint (unknown name → [`LlmError::NotConfigured`]);
//! 2. wait for a concurrency permit; the time limit starts once it is held, and the permit is
//!    kept through retries so a rate-limited endpoint is not hit harder by other rows meanwhile;
//! 3. per attempt: check the budget, send, and classify the answer: 2xx → parse (a malformed
//!    answer is not retried), 429 / 5xx / connection error → wait and retry, other 4xx → fail;
//! 4. charge the budget with the reported usage (estimated when the endpoint reports none, so a
//!    server that omits usage cannot bypass the budget).
//!
//! The key goes only into the `Authorization` header of requests to its own endpoint (marked
//! sensitive, redirects disabled so it cannot follow one elsewhere); every text kept from an
//! answer is redacted; spans and events carry the endpoint's name, never its URL or key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;

use super::budget::RunBudget;
use super::error::LlmError;
use super::retry::{Backoff, retry_after};
use super::secret::{Secret, redact};
use super::settings::{EndpointSettings, LlmSettings, SettingsError};
use super::types::{ChatRequest, ChatResponse, EmbedRequest, Embeddings, Usage};
use super::wire;

/// The name spans and errors use for the default endpoint.
pub const DEFAULT_ENDPOINT_NAME: &str = "default";

/// The largest answer body read; a chat answer or a batch of embeddings is far below it, and a
/// misbehaving endpoint cannot make the host buffer more.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Model names are short (`gpt-4o-2024-08-06`); a longer one from a component is refused
/// rather than sent and logged.
pub const MAX_MODEL_NAME_BYTES: usize = 256;

/// Connecting should take milliseconds; a longer wait is a dead endpoint, worth a retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A model client shared by every grading run of the process. Cloning is cheap and shares the
/// HTTP connection pool and the concurrency limit.
#[derive(Clone)]
pub struct LlmClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LlmSettings,
    http: reqwest::Client,
    permits: Semaphore,
    secrets: Vec<Secret>,
    backoff: Backoff,
}

/// How one HTTP attempt ended.
enum Attempt {
    Answered(Vec<u8>),
    Retryable {
        error: LlmError,
        retry_after: Option<Duration>,
    },
    Fatal(LlmError),
}

/// A 2xx body and how many attempts it took.
struct Answered {
    body: Vec<u8>,
    attempts: u32,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmClient")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client with these settings; fails when they are invalid.
    pub fn new(settings: LlmSettings) -> Result<Self, SettingsError> {
        settings.validate()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(settings.timeout_per_call))
            .pool_max_idle_per_host(settings.max_concurrency)
            .user_agent(concat!("flywheel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| SettingsError {
                name: "http client".to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                permits: Semaphore::new(settings.max_concurrency),
                secrets: settings.secrets(),
                backoff: Backoff {
                    base: settings.backoff_base,
                    max: settings.backoff_max,
                },
                http,
                settings,
            }),
        })
    }

    /// The settings the client was built with.
    pub fn settings(&self) -> &LlmSettings {
        &self.inner.settings
    }

    /// Whether a call naming `endpoint` (or the default, for `None`) could be sent.
    pub fn is_configured(&self, endpoint: Option<&str>) -> bool {
        self.resolve(endpoint).is_ok()
    }

    /// Scrubs every configured key from `text`; for callers that log or store text that came
    /// from a model (the grader's reasoning, say).
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.inner.secrets)
    }

    /// Asks for one chat completion, charging `budget` with its usage.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        budget: &RunBudget,
    ) -> Result<ChatResponse, LlmError> {
        let (name, endpoint) = self.resolve(request.endpoint.as_deref())?;
        let model = request
            .model
            .as_deref()
            .or(endpoint.default_model.as_deref())
            .unwrap_or(&self.inner.settings.default_model);
        let span = tracing::info_span!("llm_call", kind = "chat", endpoint = name, model = %loggable(model));
        async {
            check_model_name(model)?;
            if request.messages.is_empty() {
                return Err(LlmError::Failed("the request has no messages".to_owned()));
            }
            let body = wire::ChatBody::new(model, request).map_err(LlmError::Failed)?;
            let body = serde_json::to_vec(&body)
                .map_err(|error| LlmError::Failed(format!("cannot encode the request: {error}")))?;
            let answered = self
                .send(name, endpoint, "chat/completions", body, budget)
                .await?;
            let parsed = wire::parse_chat(&answered.body)
                .map_err(|message| LlmError::Failed(self.redact(&message)))?;
            let usage = parsed.usage.unwrap_or_else(|| {
                let prompt: usize = request.messages.iter().map(|m| m.content.len()).sum();
                estimate_usage(prompt, parsed.content.len())
            });
            budget.charge(usage);
            tracing::debug!(
                attempts = answered.attempts,
                prompt_tokens = usage.prompt_tokens,
                completion_tokens = usage.completion_tokens,
                "model answered"
            );
            Ok(ChatResponse {
                content: parsed.content,
                model: parsed.model.unwrap_or_else(|| model.to_owned()),
                usage,
                attempts: answered.attempts,
            })
        }
        .instrument(span)
        .await
    }

    /// Embeds texts, one vector per input in order, charging `budget` with the usage.
    pub async fn embed(
        &self,
        request: &EmbedRequest,
        budget: &RunBudget,
    ) -> Result<Embeddings, LlmError> {
        let (name, endpoint) = self.resolve(request.endpoint.as_deref())?;
        let model = request
            .model
            .as_deref()
            .unwrap_or(&self.inner.settings.default_embedding_model);
        let span = tracing::info_span!("llm_call", kind = "embed", endpoint = name, model = %loggable(model));
        async {
            check_model_name(model)?;
            if request.inputs.is_empty() {
                return Err(LlmError::Failed("the request has no inputs".to_owned()));
            }
            let body = wire::EmbeddingsBody {
                model,
                input: &request.inputs,
                encoding_format: "float",
            };
            let body = serde_json::to_vec(&body)
                .map_err(|error| LlmError::Failed(format!("cannot encode the request: {error}")))?;
            let answered = self
                .send(name, endpoint, "embeddings", body, budget)
                .await?;
            let parsed = wire::parse_embeddings(&answered.body, request.inputs.len())
                .map_err(|message| LlmError::Failed(self.redact(&message)))?;
            let usage = parsed
                .usage
                .unwrap_or_else(|| estimate_usage(request.inputs.iter().map(String::len).sum(), 0));
            budget.charge(usage);
            tracing::debug!(
                attempts = answered.attempts,
                prompt_tokens = usage.prompt_tokens,
                "model answered"
            );
            Ok(Embeddings {
                vectors: parsed.vectors,
                model: parsed.model.unwrap_or_else(|| model.to_owned()),
                usage,
                attempts: answered.attempts,
            })
        }
        .instrument(span)
        .await
    }

    fn resolve<'s>(
        &'s self,
        name: Option<&'s str>,
    ) -> Result<(&'s str, &'s EndpointSettings), LlmError> {
        let settings = &self.inner.settings;
        match name {
            None => settings
                .default_endpoint
                .as_ref()
                .map(|endpoint| (DEFAULT_ENDPOINT_NAME, endpoint))
                .ok_or_else(|| {
                    LlmError::NotConfigured(
                        "no model endpoint is configured (set OPENAI_BASE_URL or OPENAI_API_KEY)"
                            .to_owned(),
                    )
                }),
            Some(name) => settings
                .endpoints
                .get_key_value(name)
                .map(|(name, endpoint)| (name.as_str(), endpoint))
                .ok_or_else(|| {
                    LlmError::NotConfigured(format!(
                        "no model endpoint named `{}` is configured",
                        // The name comes from a component: keep it short and key-free.
                        self.redact(&name.chars().take(64).collect::<String>())
                    ))
                }),
        }
    }

    /// Sends `body` to `path` of the endpoint until it answers 2xx, retrying as the settings
    /// allow within the call's time limit.
    async fn send(
        &self,
        name: &str,
        endpoint: &EndpointSettings,
        path: &str,
        body: Vec<u8>,
        budget: &RunBudget,
    ) -> Result<Answered, LlmError> {
        let settings = &self.inner.settings;
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| LlmError::Failed("the model client is shutting down".to_owned()))?;
        let limit = settings.timeout_per_call;
        let deadline = Instant::now() + limit;
        let url = endpoint.url_of(path);
        let mut attempt: u32 = 0;
        // Bounded: each pass either returns or increments `attempt`, which stops at max_retries.
        loop {
            budget.check()?;
            attempt += 1;
            let outcome =
                tokio::time::timeout_at(deadline, self.attempt(name, endpoint, &url, body.clone()))
                    .await;
            let (error, asked_wait) = match outcome {
                Err(_elapsed) => {
                    tracing::warn!(attempt, "model call timed out");
                    return Err(LlmError::Timeout(limit));
                }
                Ok(Attempt::Answered(body)) => {
                    return Ok(Answered {
                        body,
                        attempts: attempt,
                    });
                }
                Ok(Attempt::Fatal(error)) => {
                    tracing::warn!(attempt, error = %error, "model call failed");
                    return Err(error);
                }
                Ok(Attempt::Retryable { error, retry_after }) => (error, retry_after),
            };
            if attempt > settings.max_retries {
                tracing::warn!(attempt, error = %error, "model call failed, no retries left");
                return Err(error);
            }
            let wait = self.inner.backoff.wait(attempt, asked_wait);
            if Instant::now() + wait >= deadline {
                // Waiting would spend the rest of the time limit: the endpoint's own answer says
                // more than a timeout would.
                tracing::warn!(attempt, wait_ms = wait.as_millis(), error = %error, "model call failed, no time left to retry");
                return Err(error);
            }
            tracing::info!(attempt, wait_ms = wait.as_millis(), error = %error, "model call failed, retrying");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(
        &self,
        name: &str,
        endpoint: &EndpointSettings,
        url: &str,
        body: Vec<u8>,
    ) -> Attempt {
        let mut request = self
            .inner
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = &endpoint.api_key {
            match HeaderValue::from_str(&format!("Bearer {}", key.expose())) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    request = request.header(AUTHORIZATION, value);
                }
                Err(_) => {
                    return Attempt::Fatal(LlmError::NotConfigured(format!(
                        "the API key of endpoint `{name}` contains characters a header cannot carry"
                    )));
                }
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_failure(name, &error),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match read_limited(response).await {
            Ok(body) => body,
            Err(ReadError::TooLarge) => {
                return Attempt::Fatal(LlmError::Failed(format!(
                    "endpoint `{name}` answered more than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            Err(ReadError::Transport(error)) => return self.transport_failure(name, &error),
        };
        if status.is_success() {
            return Attempt::Answered(body);
        }
        let message = self.redact(&format!(
            "endpoint `{name}` answered {status}: {}",
            wire::error_message(&body)
        ));
        if status == StatusCode::TOO_MANY_REQUESTS {
            Attempt::Retryable {
                error: LlmError::RateLimited(message),
                retry_after: retry_after(&headers, SystemTime::now()),
            }
        } else if status.is_server_error() {
            Attempt::Retryable {
                error: LlmError::Failed(message),
                retry_after: retry_after(&headers, SystemTime::now()),
            }
        } else {
            Attempt::Fatal(LlmError::Failed(message))
        }
    }

    fn transport_failure(&self, name: &str, error: &reqwest::Error) -> Attempt {
        let message = self.redact(&format!(
            "cannot reach endpoint `{name}`: {}",
            error_chain(error)
        ));
        if error.is_builder() {
            Attempt::Fatal(LlmError::Failed(message))
        } else {
            Attempt::Retryable {
                error: LlmError::Failed(message),
                retry_after: None,
            }
        }
    }
}

enum ReadError {
    TooLarge,
    Transport(reqwest::Error),
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    // Bounded by MAX_ANSWER_BYTES: every pass adds a non-empty chunk or ends.
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error and its causes, without the URL (a URL may carry a deployment's secrets in its
/// query string, as Azure's does).
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    let mut depth = 0;
    // Bounded: error chains are short, and depth caps a cyclic one.
    while let Some(cause) = source
        && depth < 8
    {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
        depth += 1;
    }
    text
}

fn check_model_name(model: &str) -> Result<(), LlmError> {
    if model.is_empty() || model.len() > MAX_MODEL_NAME_BYTES {
        return Err(LlmError::Failed(format!(
            "the model name must be 1 to {MAX_MODEL_NAME_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The model name as logged: it may come from a component, so a long one is cut before it
/// reaches a log line (the call itself is then refused by [`check_model_name`]).
fn loggable(model: &str) -> String {
    model.chars().take(64).collect()
}

/// About four characters per token: used only when an endpoint reports no usage.
fn estimate_usage(prompt_chars: usize, answer_chars: usize) -> Usage {
    let tokens = |chars: usize| u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX);
    Usage::new(tokens(prompt_chars).max(1), tokens(answer_chars))
}
