//! Offline evaluations (issue 12): render each version of a prompt for every row of a dataset,
//! ask the task model, grade the answers with the prompt's enabled graders, and compare the
//! versions on the same rows.
//!
//! An evaluation is a job of the grading-run queue: [`crate::grading::jobs::JobWorker`] claims
//! it under a lease, renews it, and hands it to [`worker`]; cancel, resume after a restart and
//! sharing between instances are the queue's (see [`crate::store::EvaluationStore`]).
//!
//! # Layout
//! - [`request`]: the request's shape and every check made before an evaluation is queued.
//! - [`cache`]: the key model answers are cached by (never the API key).
//! - [`worker`]: evaluating a claimed job a chunk at a time.
//! - [`results`]: per version and grader, and per pair of versions, from the stored outputs.
//! - [`view`]: what the API and the CLI answer.

pub mod cache;
pub mod request;
pub mod results;
pub mod view;
pub mod worker;
