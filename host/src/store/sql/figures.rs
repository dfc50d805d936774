//! The per-version figures of `prompt_versions` (`tasks_executed`, `success_rate`,
//! `avg_tokens`), kept as running counters (migration 0010: `known_runs`, `succeeded_runs`,
//! `token_runs`, `token_sum`, and `tasks_executed` itself) that every writer adjusts in its own
//! transaction through [`FigureDeltas`]: runs recorded, outcomes applied, annotations set or
//! cleared, grader verdicts stored. `success_rate` and `avg_tokens` are derived from the counters
//! in the same statement ([`derived_figures`]).
//!
//! Counters rather than a recomputation per write: recomputing scanned every run of the version
//! (a covering index, migration 0006), so each write cost more as the version grew, and on
//! PostgreSQL the prompt's lock was held for that scan (BENCHMARKS.md, "Runs"). A write now costs
//! one `UPDATE` per version it touches, whatever the version's size.
//!
//! The counters are right under concurrent writers because every writer holds the prompt's write
//! lock ([`Backend::ROW_LOCK`] on the prompt's row, or SQLite's `BEGIN IMMEDIATE`) while it reads
//! the runs' state before its change and writes the difference. [`recompute_figures`] rebuilds
//! every counter from the runs (the repair, `Store::recompute_aggregates`, and the migration's
//! backfill use the same definition); the conformance suite checks the counters against it.
//!
//! # What counts as a success
//!
//! Per run, the first of these that is known: the tests passed (outcome `testsPassed`), else the
//! rating is `good` (annotation), else every enabled grader passed (`graders_passed`). A run with
//! none of them known is counted in `tasks_executed` but not in `success_rate`. Runs of offline
//! evaluations (`origin = 'evaluation'`) never count: writers pass only production runs here.
//!
//! [`Backend::ROW_LOCK`]: super::Backend::ROW_LOCK

use std::collections::BTreeMap;

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

/// The origin of the runs that count in the figures and the A/B results.
pub(crate) const PRODUCTION: &str = "production";

/// `success_rate = …, avg_tokens = …` from SQL expressions of the four counters. The one
/// definition of the derived figures, for the adjusting writers and the recomputation alike, so
/// both give the same bits. `1.0 * sum / n` is NUMERIC on PostgreSQL, so `ROUND` rounds halves
/// away from zero on both backends, as `ROUND(AVG(total_tokens))` did.
fn derived_figures(known: &str, succeeded: &str, token_runs: &str, token_sum: &str) -> String {
    format!(
        "success_rate = CASE WHEN {known} > 0 \
             THEN 100.0 * (CAST({succeeded} AS DOUBLE PRECISION) / ({known})) END, \
         avg_tokens = CASE WHEN {token_runs} > 0 \
             THEN CAST(ROUND(1.0 * ({token_sum}) / ({token_runs})) AS BIGINT) END"
    )
}

/// What a write changes in one version's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Delta {
    tasks: i64,
    known: i64,
    succeeded: i64,
    token_runs: i64,
    token_sum: i64,
}

/// A run's success as the figures count it: `None` unknown, else whether it succeeded
/// (`crate::store::run_success`).
pub(crate) type Success = Option<bool>;

/// A run's success from its stored columns, as [`SUCCEEDED`] decides it in SQL (the rating as
/// stored: `good` or `bad`).
pub(crate) fn success_of(
    tests_passed: Option<bool>,
    rating: Option<&str>,
    graders_passed: Option<bool>,
) -> Success {
    tests_passed
        .or(rating.map(|r| r == "good"))
        .or(graders_passed)
}

/// The changes one transaction makes to the figures, per (prompt, version), written by
/// [`FigureDeltas::apply`] before the transaction commits. Callers hold the prompts' write locks
/// and report production runs only.
#[derive(Debug, Default)]
pub(crate) struct FigureDeltas {
    versions: BTreeMap<(String, i64), Delta>,
}

impl FigureDeltas {
    fn entry(&mut self, prompt_id: &str, version: i64) -> &mut Delta {
        self.versions
            .entry((prompt_id.to_owned(), version))
            .or_default()
    }

    /// A production run was recorded.
    pub(crate) fn run_added(
        &mut self,
        prompt_id: &str,
        version: i64,
        success: Success,
        tokens: Option<i64>,
    ) {
        let delta = self.entry(prompt_id, version);
        delta.known += i64::from(success.is_some());
        delta.succeeded += i64::from(success == Some(true));
        if let Some(tokens) = tokens {
            delta.token_runs += 1;
            delta.token_sum += tokens;
        }
    }

    /// A version gained `count` tasks it had no production run of before.
    pub(crate) fn tasks_added(&mut self, prompt_id: &str, version: i64, count: i64) {
        self.entry(prompt_id, version).tasks += count;
    }

    /// A production run's success changed from `before` to `after` (no-op when equal).
    pub(crate) fn success_changed(
        &mut self,
        prompt_id: &str,
        version: i64,
        before: Success,
        after: Success,
    ) {
        if before == after {
            return;
        }
        let delta = self.entry(prompt_id, version);
        delta.known += i64::from(after.is_some()) - i64::from(before.is_some());
        delta.succeeded += i64::from(after == Some(true)) - i64::from(before == Some(true));
    }

    /// Writes the changes: one `UPDATE` per version whose counters moved.
    pub(crate) async fn apply<DB>(self, tx: &mut Transaction<'static, DB>) -> Result<()>
    where
        DB: Database,
        for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
        for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
        for<'q> &'q str: Encode<'q, DB> + Type<DB>,
        for<'q> i64: Encode<'q, DB> + Type<DB>,
    {
        // The right-hand sides read the row as it was before the statement, so the derived
        // figures are computed from the adjusted counters spelled out.
        let sql = format!(
            "UPDATE prompt_versions SET tasks_executed = tasks_executed + $3, \
             known_runs = known_runs + $4, succeeded_runs = succeeded_runs + $5, \
             token_runs = token_runs + $6, token_sum = token_sum + $7, {} \
             WHERE prompt_id = $1 AND version = $2",
            derived_figures(
                "known_runs + $4",
                "succeeded_runs + $5",
                "token_runs + $6",
                "token_sum + $7"
            )
        );
        for ((prompt_id, version), delta) in self.versions {
            if delta == Delta::default() {
                continue;
            }
            sqlx::query(&sql)
                .bind(prompt_id.as_str())
                .bind(version)
                .bind(delta.tasks)
                .bind(delta.known)
                .bind(delta.succeeded)
                .bind(delta.token_runs)
                .bind(delta.token_sum)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}

/// Rebuilds every version's counters and figures from its production runs (the repair and the
/// reference the conformance suite checks the running counters against; migration 0010 runs the
/// same statements). The caller holds the write lock of every prompt.
pub(crate) async fn recompute_figures<DB>(tx: &mut Transaction<'static, DB>) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    sqlx::query(&format!(
        "UPDATE prompt_versions \
         SET (tasks_executed, known_runs, succeeded_runs, token_runs, token_sum) = (\
         SELECT COUNT(DISTINCT task_id), \
         COALESCE(SUM(CASE WHEN {SUCCESS_KNOWN} THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN {SUCCEEDED} THEN 1 ELSE 0 END), 0), \
         COUNT(total_tokens), \
         COALESCE(SUM(total_tokens), 0) \
         FROM prompt_optimization_data d \
         WHERE d.prompt_id = prompt_versions.prompt_id \
           AND d.version = prompt_versions.version AND d.origin = '{PRODUCTION}')"
    ))
    .execute(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "UPDATE prompt_versions SET {}",
        derived_figures("known_runs", "succeeded_runs", "token_runs", "token_sum")
    ))
    .execute(&mut **tx)
    .await?;
    Ok(())
}
