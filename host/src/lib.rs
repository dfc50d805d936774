//! Flywheel: versions the prompts of LLM agents, serves the right version to each task, records
//! what happened, grades it in sandboxed WebAssembly components and proves improvements with
//! A/B tests.
//!
//! # Layout
//! - [`config`]: settings from flags and environment, validated once into typed values.
//! - [`store`]: the one storage interface and its SQLite and PostgreSQL backends; no HTTP here.
//! - [`prompts`]: the prompt registry: templates, immutable versions, deploy, rollback, resolve.
//! - [`runs`]: recorded runs and outcomes: what an agent may send, checked before it is stored.
//! - [`experiments`]: A/B tests of prompt versions, the pure part: assignment, statistics,
//!   decisions.
//! - [`datasets`]: versioned datasets of a prompt: snapshots of runs and uploaded OpenAI eval
//!   JSONL, row ids and the train/validation split, checked before the store writes them.
//! - [`annotations`]: what people say about recorded runs: the checks before the store.
//! - [`graders`]: the WebAssembly grader runtime, the graders directory and grader definitions.
//! - [`grading`]: grading stored and file data with that runtime: stored definitions, seeds.
//! - [`api`]: the HTTP surface (axum): routes, auth, errors, OpenAPI, metrics; thin handlers.
//! - [`cli`]: the `flywheel` command line.
//! - [`export`]: exports of runs and datasets (OpenAI eval JSONL and definition, CSV,
//!   promptfoo).
//! - [`migrate`]: migrations in from OpenAI evals: graders, a dataset, runs, all or nothing.
//! - [`log_text`]: escaping values from outside before they are logged.
//! - [`web`]: the web pages at `/`: server-rendered HTML, sessions, one small script.
//! - [`server`]: builds the application state and serves it with graceful shutdown.

pub mod annotations;
pub mod api;
pub mod cli;
pub mod config;
pub mod datasets;
pub mod demo;
pub mod evals;
pub mod experiments;
pub mod export;
pub mod graders;
pub mod grading;
pub mod llm;
pub mod log_text;
pub mod migrate;
pub mod optimizer;
pub mod prompts;
pub mod redact;
pub mod runs;
pub mod server;
pub mod store;
pub mod web;
