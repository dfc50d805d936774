//! Reporting outcomes: one transaction that locks every prompt (see the module documentation of
//! `runs`), merges each report into the task's stored outcome (`task_outcomes`: a field not
//! given keeps its earlier value), writes the merged outcome onto every run of the task, and
//! moves the running aggregates by what changed: the figures of the versions whose runs' success
//! changed (`figures.rs`), and the A/B totals of the units of those runs and of the task itself,
//! whose outcome decides its unit's success (`ab_totals.rs`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::rows::{OUTCOME_COLUMNS, OutcomeRow};
use crate::store::runs::in_batch;
use crate::store::sql::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow, refresh_units};
use crate::store::sql::figures::{FigureDeltas, PRODUCTION, success_of};
use crate::store::sql::{Backend, DbId};
use crate::store::{NewOutcome, Result, StoreError, now};

/// A production run of a task as it stood before its outcome was written.
#[derive(FromRow)]
pub(crate) struct RunBeforeOutcome {
    prompt_id: String,
    version: i64,
    unit: String,
    tests_passed: Option<bool>,
    rating: Option<String>,
    graders_passed: Option<bool>,
}

pub(super) async fn report_outcomes<B>(store: &B, outcomes: &[NewOutcome]) -> Result<Vec<u64>>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q [String]>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunBeforeOutcome: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    if outcomes.is_empty() {
        return Ok(Vec::new());
    }
    for (index, outcome) in outcomes.iter().enumerate() {
        if outcome.task_id.is_empty() {
            return Err(in_batch(
                index,
                StoreError::Conflict {
                    constraint: "task_outcomes_task_id_nonempty".to_owned(),
                },
            ));
        }
    }
    let mut tx = store.begin_write().await?;
    // Every prompt, in id order (the order record_runs locks them in).
    let locked: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT id FROM prompts ORDER BY id {}",
        B::ROW_LOCK
    ))
    .fetch_all(&mut *tx)
    .await?;

    let mut updated = Vec::with_capacity(outcomes.len());
    let mut figures = FigureDeltas::default();
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for outcome in outcomes {
        // The task's production runs before the outcome changes them.
        let before: Vec<RunBeforeOutcome> = sqlx::query_as(&format!(
            "SELECT prompt_id, version, COALESCE(root_task_id, task_id) AS unit, tests_passed, \
             rating, graders_passed FROM prompt_optimization_data \
             WHERE task_id = $1 AND origin = '{PRODUCTION}'"
        ))
        .bind(outcome.task_id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let at = now();
        let merged: OutcomeRow = sqlx::query_as(&format!(
            "INSERT INTO task_outcomes ({OUTCOME_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (task_id) DO UPDATE SET \
             tests_passed = COALESCE(excluded.tests_passed, task_outcomes.tests_passed), \
             pr_merged = COALESCE(excluded.pr_merged, task_outcomes.pr_merged), \
             expected_files = COALESCE(excluded.expected_files, task_outcomes.expected_files), \
             failure_signature = COALESCE(excluded.failure_signature, task_outcomes.failure_signature), \
             reported_at = excluded.reported_at \
             RETURNING {OUTCOME_COLUMNS}"
        ))
        .bind(outcome.task_id.as_str())
        .bind(outcome.tests_passed)
        .bind(outcome.pr_merged)
        .bind(outcome.expected_files.as_deref().map(Json))
        .bind(outcome.failure_signature.as_deref())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| B::conflict("task_outcomes_expected_files_json", e))?;
        // `auto_graded_at = NULL` puts the runs back in the automatic graders' queue, so
        // graders and rules see the outcome (crate::grading::auto).
        let runs: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE prompt_optimization_data SET tests_passed = $2, pr_merged = $3, \
             expected_files = $4, failure_signature = $5, outcome_at = $6, updated_at = $7, \
             auto_graded_at = NULL \
             WHERE task_id = $1 RETURNING prompt_id, version",
        )
        .bind(outcome.task_id.as_str())
        .bind(merged.tests_passed)
        .bind(merged.pr_merged)
        .bind(merged.expected_files.as_ref().map(|f| Json(f.0.as_slice())))
        .bind(merged.failure_signature.as_deref())
        .bind(merged.reported_at)
        .bind(at)
        .fetch_all(&mut *tx)
        .await?;
        updated.push(runs.len() as u64);
        for run in before {
            figures.success_changed(
                &run.prompt_id,
                run.version,
                success_of(run.tests_passed, run.rating.as_deref(), run.graders_passed),
                success_of(
                    merged.tests_passed,
                    run.rating.as_deref(),
                    run.graders_passed,
                ),
            );
            units.entry(run.prompt_id).or_default().insert(run.unit);
        }
        // The task is a unit of its own wherever a test exposed it: its outcome decides it.
        for (prompt,) in &locked {
            units
                .entry(prompt.clone())
                .or_default()
                .insert(outcome.task_id.clone());
        }
    }
    figures.apply(&mut tx).await?;
    for (prompt, units) in &units {
        let units: BTreeSet<&str> = units.iter().map(String::as_str).collect();
        refresh_units::<B>(&mut tx, prompt, &units).await?;
    }
    tx.commit().await?;
    Ok(updated)
}
