//! Grading stored and file data with the grader runtime ([`crate::graders`]): the grader
//! definitions stored per prompt and the rules for writing them, the definitions seeded on first
//! start, and the grading of a JSONL file of OpenAI eval rows. Grading jobs over stored runs
//! live here too: this is where the store meets the sandbox, which itself imports no store.
//!
//! # Layout
//! - [`stored`]: stored definitions per prompt: validate-then-write, and seeding.
//! - [`seeds`]: the definitions seeded per agent on first start (model ones in `seeds/*.json`).
//! - [`file`]: grading a JSONL file of OpenAI eval rows, with a summary.
//! - [`run_view`]: what a grader sees of a recorded run (`sample` and `item`).
//! - [`apply`]: resolving stored definitions and grading a chunk of runs with them.
//! - [`request`]: the checks made before a grading job is queued.
//! - [`jobs`]: the worker that claims grading jobs and grades them chunk by chunk, resumably.
//! - [`auto`]: the background grading of newly recorded runs with the model-free definitions.
//! - [`rules`]: the documented rules that annotate a run from its outcome and verdicts.

pub mod apply;
pub mod auto;
pub mod file;
pub mod jobs;
pub mod request;
pub mod rules;
pub mod run_view;
pub mod seeds;
pub mod stored;
