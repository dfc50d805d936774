//! End-to-end tests: the real application on 127.0.0.1, real HTTP, real SQLite files and a real
//! PostgreSQL server (tests with `postgres` in their name).

mod ab_tests;
mod aggregates;
mod annotations;
mod bad_requests;
mod bad_requests_runs;
mod concurrency;
mod config_errors;
mod datasets_api;
mod evals;
mod export_api;
mod happy_path;
mod migrate_openai;
mod operations;
mod optimizer;
mod prompts_import;
mod request_timeout;
mod route_auth;
mod runs_api;
mod web_pages;

mod graders_api;
mod graders_definitions;
mod graders_openai_examples;
mod graders_reload;
mod graders_stored;
mod graders_support;
mod grading_runs;
mod model_graders;
mod python_graders;
mod sandbox;
