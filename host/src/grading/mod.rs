//! Grading stored and file data with the grader runtime ([`crate::graders`]): the grader
//! definitions stored per prompt and the rules for writing them, the definitions seeded on first
//! start, and the grading of a JSONL file of OpenAI eval rows. Grading jobs over stored runs
//! will live here too: this is where the store meets the sandbox, which itself imports no store.
//!
//! # Layout
//! - [`stored`]: stored definitions per prompt: validate-then-write, and seeding.
//! - [`seeds`]: the definitions seeded per agent on first start (model ones in `seeds/*.json`).
//! - [`file`]: grading a JSONL file of OpenAI eval rows, with a summary.

pub mod file;
pub mod seeds;
pub mod stored;
