//! The model client behind the `llm` host import of `model-grader` components (and, later, the
//! prompt optimizer): OpenAI-compatible Chat Completions and Embeddings with structured output,
//! a time limit per call, retries with backoff honouring `Retry-After`, a concurrency limit and a
//! per-run token budget. The API key stays here: it never reaches a component, a log line, an
//! error message or an export.
//!
//! What it does not own: the wasmtime side of the import (`graders`), which keeps an
//! [`LlmSession`] in its store data and converts the WIT records to and from [`ChatRequest`] /
//! [`ChatResponse`] / [`LlmError`] one to one; and where settings come from (`config` may call
//! [`LlmSettings::from_env`]).
//!
//! # Layout
//! - [`settings`]: [`LlmSettings`], [`EndpointSettings`], defaults and environment variables.
//! - [`secret`]: [`Secret`], the key type that prints as `***`, and [`redact`].
//! - [`types`]: requests and answers, mirroring the WIT records.
//! - [`error`]: [`LlmError`], mirroring the WIT `llm-error` variants.
//! - [`budget`]: [`RunBudget`], a grading run's shared token budget.
//! - [`retry`]: backoff with full jitter and `Retry-After` parsing.
//! - `wire`: the OpenAI JSON bodies.
//! - [`client`]: [`LlmClient`], which puts them together; one per process.
//! - [`session`]: [`LlmSession`], what the `llm` host import holds per grader call: the client,
//!   the run's budget, the grader's endpoint and the tokens used.
//! - [`throughput`]: [`drive_completions`], the client-only load driver for benchmarks.

pub mod budget;
pub mod client;
pub mod error;
pub mod retry;
pub mod secret;
pub mod session;
pub mod settings;
pub mod throughput;
pub mod types;
mod wire;

pub use budget::RunBudget;
pub use client::{DEFAULT_ENDPOINT_NAME, LlmClient};
pub use error::LlmError;
pub use secret::{Secret, redact};
pub use session::LlmSession;
pub use settings::{EndpointSettings, LlmSettings, SettingsError};
pub use throughput::{ThroughputReport, drive_completions};
pub use types::{ChatMessage, ChatRequest, ChatResponse, EmbedRequest, Embeddings, Usage};
