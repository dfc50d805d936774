//! Prompt optimization from annotated failures (issue 17): reflective evolution as GEPA does it
//! — a reflection model reads a prompt's failing train rows (answers, grader results, the
//! annotations' critiques and failure modes) and proposes a revised prompt, scored by the
//! evaluation engine on a minibatch and kept on a Pareto front over rows — with what GEPA's
//! users miss: stops when the target is reached or nothing improves, a budget that counts task
//! and reflection calls apart and keeps the validation paid for, and a winner that becomes a
//! version only when it beats the starting prompt by more than the noise on validation rows
//! the loop never saw. See `docs/optimizer.md`.
//!
//! A run is a row of `optimizations`, claimed under a lease by the [`worker`] of an instance;
//! it checkpoints after every round, so a restart resumes it (see
//! [`crate::store::OptimizationStore`]).
//!
//! # Layout
//! - [`request`]: the request, its defaults and every check before a run is queued.
//! - [`reflection`]: the reflection request and the parsing and checking of its answer.
//! - [`pareto`]: the front over rows and the choice of parents.
//! - [`budget`]: what a run may spend and has spent, task and reflection models apart.
//! - [`state`]: the loop's checkpoint.
//! - [`worker`]: claiming runs and the loop.
//! - [`report`]: the report built from the final state.
//! - [`view`]: what the API and the CLI show.

pub mod budget;
pub mod pareto;
pub mod reflection;
pub mod report;
pub mod request;
pub mod state;
pub mod view;
pub mod worker;
