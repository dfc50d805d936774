//! The per-version figures of `prompt_versions` (`tasks_executed`, `success_rate`,
//! `avg_tokens`), recomputed from the version's recorded runs whenever a write changes what they
//! count: runs recorded, outcomes applied, annotations set or cleared, grader verdicts stored.
//!
//! Recomputing by aggregate rather than adjusting counters keeps the figures right whatever the
//! order of arrivals, and a write that fixes one fixes them all. Its cost is one scan of a
//! covering index (migration 0006), linear in the version's runs but without touching their
//! rows: ~0.1–0.2 µs per run on SQLite (10–20 ms at 100,000 runs, against ~220 ms for the
//! three separate aggregates over the rows before; BENCHMARKS.md, "Runs").
//!
//! It is correct under concurrent writers because every caller holds the prompt's write lock
//! ([`Backend::ROW_LOCK`] on the prompt's row, or SQLite's `BEGIN IMMEDIATE`): the aggregate, a
//! new statement, sees every run committed before the lock was granted.
//!
//! # What counts as a success
//!
//! Per run, the first of these that is known: the tests passed (outcome `testsPassed`), else the
//! rating is `good` (annotation), else every enabled grader passed (`graders_passed`). A run with
//! none of them known is counted in `tasks_executed` but not in `success_rate`. Runs of offline
//! evaluations (`origin = 'evaluation'`) never count.
//!
//! [`Backend::ROW_LOCK`]: super::Backend::ROW_LOCK

use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};

use crate::store::Result;

/// Whether a run's success is known, and whether it succeeded, as SQL both dialects accept
/// (`x = TRUE` compares SQLite's 0/1 and PostgreSQL's BOOLEAN alike).
pub(crate) const SUCCESS_KNOWN: &str =
    "(tests_passed IS NOT NULL OR rating IS NOT NULL OR graders_passed IS NOT NULL)";
/// See [`SUCCESS_KNOWN`].
pub(crate) const SUCCEEDED: &str = "(tests_passed = TRUE \
     OR (tests_passed IS NULL AND rating = 'good') \
     OR (tests_passed IS NULL AND rating IS NULL AND graders_passed = TRUE))";

/// Recomputes the figures of one version from its production runs. The caller holds the
/// prompt's write lock (see the module documentation).
pub(crate) async fn refresh_version_figures<DB>(
    tx: &mut Transaction<'static, DB>,
    prompt_id: &str,
    version: i64,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    // One pass over the version's entries of the `prompt_optimization_data_figures` index
    // (migration 0006), which holds every column read here: no visit of the runs' rows. AVG
    // skips NULLs, so the success average counts only the runs whose success is known.
    sqlx::query(&format!(
        "UPDATE prompt_versions SET (tasks_executed, success_rate, avg_tokens) = (\
         SELECT COUNT(DISTINCT task_id), \
         100.0 * AVG(CASE WHEN {SUCCESS_KNOWN} THEN \
                     (CASE WHEN {SUCCEEDED} THEN 1.0 ELSE 0.0 END) END), \
         CAST(ROUND(AVG(total_tokens)) AS INTEGER) \
         FROM prompt_optimization_data \
         WHERE prompt_id = $1 AND version = $2 AND origin = 'production') \
         WHERE prompt_id = $1 AND version = $2"
    ))
    .bind(prompt_id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
