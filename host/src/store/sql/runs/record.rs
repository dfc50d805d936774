//! Recording a batch of runs: one transaction that locks the batch's prompts, checks every
//! prompt and version, inserts the new runs with multi-row `INSERT … ON CONFLICT DO NOTHING`
//! statements (a round trip per [`INSERT_CHUNK_ROWS`] runs, not per run), reads back the ids of
//! runs recorded before, gives new runs their task's stored outcome, and adds the new runs to the
//! running aggregates: the figures of every version that gained a run (`figures.rs`) and the A/B
//! totals of their units (`ab_totals.rs`).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use uuid::Uuid;

use super::rows::{OUTCOME_COLUMNS, OutcomeRow};
use crate::store::runs::in_batch;
use crate::store::runs::run_success;
use crate::store::sql::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow, refresh_units};
use crate::store::sql::figures::{FigureDeltas, PRODUCTION};
use crate::store::sql::{Backend, DbId, ensure_prompt, in_list, placeholder, values_list};
use crate::store::{Missing, NewRun, RecordedRun, Result, StoreError, now};

/// Runs per `INSERT` statement: 21 parameters each keeps a statement well below SQLite's
/// 32,766 and PostgreSQL's 65,535 parameters, and 1,000 runs take 5 round trips.
const INSERT_CHUNK_ROWS: usize = 200;
/// Task ids per `IN (…)` list when reading outcomes and existing runs back.
const LOOKUP_CHUNK: usize = 500;

const INSERT_COLUMNS: &str = "id, prompt_id, version, task_id, run_key, attempt, root_task_id, \
     input_variables, output, model, prompt_tokens, completion_tokens, total_tokens, latency_ms, \
     tests_passed, pr_merged, expected_files, failure_signature, outcome_at, created_at, \
     updated_at";
const INSERT_COLUMN_COUNT: usize = 21;

/// What decides the version of a run recorded without one, per prompt, read once per batch
/// under the prompt's lock.
#[derive(Debug, Clone)]
pub(super) struct VersionDefaults {
    active: Option<i64>,
    /// The prompt's running A/B test: (seed, traffic split, version A, version B).
    running: Option<(String, f64, i64, i64)>,
}

/// The version a run recorded without one is credited to: the version resolve hands its task.
/// While an A/B test of the prompt runs, that is the version of the arm its unit (root task id,
/// else task id) hashes to, the same pure assignment resolve makes; the hash is used rather than
/// the recorded exposure because exposures are written in the background and may not have
/// landed yet. Without a running test, the active version.
pub(super) fn default_version_for_run(defaults: &VersionDefaults, run: &NewRun) -> Option<i64> {
    if let Some((seed, split, a, b)) = &defaults.running {
        let unit = crate::experiments::unit_of(&run.task_id, run.root_task_id.as_deref());
        return Some(match crate::experiments::assign(seed, unit, *split).arm {
            crate::experiments::Arm::A => *a,
            crate::experiments::Arm::B => *b,
        });
    }
    defaults.active
}

/// Refuses what the schema's CHECK constraints would, before any SQL runs, naming the
/// constraint (SQLite would not say which one failed).
fn check_new_run(run: &NewRun) -> Result<()> {
    let violated = if run.task_id.is_empty() {
        Some("prompt_optimization_data_task_id_nonempty")
    } else if run.attempt < 1 {
        Some("prompt_optimization_data_attempt_positive")
    } else if [run.tokens_in, run.tokens_out]
        .iter()
        .any(|t| t.is_some_and(|t| t < 0))
    {
        Some("prompt_optimization_data_tokens_nonnegative")
    } else if run.latency_ms.is_some_and(|l| l < 0) {
        Some("prompt_optimization_data_latency_nonnegative")
    } else {
        None
    };
    match violated {
        Some(constraint) => Err(StoreError::Conflict {
            constraint: constraint.to_owned(),
        }),
        None => Ok(()),
    }
}

pub(super) async fn record_runs<B>(store: &B, runs: &[NewRun]) -> Result<Vec<RecordedRun>>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q serde_json::Map<String, serde_json::Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q [String]>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId, String, String): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, f64, i64, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    for (index, run) in runs.iter().enumerate() {
        check_new_run(run).map_err(|e| in_batch(index, e))?;
    }
    let mut tx = store.begin_write().await?;

    // Lock every prompt of the batch in sorted order; note the unknown ones, so the run named
    // in the refusal is the first bad one of the batch, not the first in lock order.
    let prompts: BTreeSet<&str> = runs.iter().map(|r| r.prompt_id.as_str()).collect();
    let mut defaults = HashMap::new();
    let mut versions: HashMap<&str, HashSet<i64>> = HashMap::new();
    for prompt in &prompts {
        if ensure_prompt(&mut tx, prompt, B::ROW_LOCK).await.is_err() {
            continue;
        }
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM prompt_versions WHERE prompt_id = $1")
                .bind(*prompt)
                .fetch_all(&mut *tx)
                .await?;
        versions.insert(*prompt, rows.into_iter().map(|(v,)| v).collect());
        defaults.insert(*prompt, load_version_defaults(&mut tx, prompt).await?);
    }

    // Each run's version, or the first run that names something unknown.
    let mut resolved = Vec::with_capacity(runs.len());
    for (index, run) in runs.iter().enumerate() {
        let prompt = run.prompt_id.as_str();
        let (Some(known), Some(defaults)) = (versions.get(prompt), defaults.get(prompt)) else {
            return Err(in_batch(index, Missing::prompt(prompt).into()));
        };
        let version = match run.version {
            Some(v) if known.contains(&v) => v,
            Some(v) => return Err(in_batch(index, Missing::version(prompt, v).into())),
            None => default_version_for_run(defaults, run)
                .ok_or_else(|| in_batch(index, Missing::active_version(prompt).into()))?,
        };
        resolved.push(version);
    }

    // A run repeated within the batch is recorded once: later copies answer like a retry.
    let mut first_of_key: HashMap<(&str, &str, i64), usize> = HashMap::new();
    let mut unique = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let key = (run.prompt_id.as_str(), run.task_id.as_str(), run.attempt);
        if let Entry::Vacant(slot) = first_of_key.entry(key) {
            slot.insert(index);
            unique.push(index);
        }
    }

    let task_ids: BTreeSet<&str> = unique.iter().map(|&i| runs[i].task_id.as_str()).collect();
    let outcomes = read_outcomes(&mut tx, &task_ids).await?;

    let at = now();
    let ids: Vec<Uuid> = unique.iter().map(|_| Uuid::now_v7()).collect();
    let mut inserted: HashSet<Uuid> = HashSet::with_capacity(unique.len());
    for (chunk, chunk_ids) in unique
        .chunks(INSERT_CHUNK_ROWS)
        .zip(ids.chunks(INSERT_CHUNK_ROWS))
    {
        let sql = insert_statement(B::NUMBERED_PARAMETERS, chunk.len());
        let run_keys: Vec<String> = chunk.iter().map(|&i| runs[i].run_key()).collect();
        let mut query = sqlx::query_as::<_, (DbId,)>(&sql);
        for ((&index, id), run_key) in chunk.iter().zip(chunk_ids).zip(&run_keys) {
            let run = &runs[index];
            let outcome = outcomes.get(run.task_id.as_str());
            query = query
                .bind(DbId(*id))
                .bind(run.prompt_id.as_str())
                .bind(resolved[index])
                .bind(run.task_id.as_str())
                .bind(run_key.as_str())
                .bind(run.attempt)
                .bind(run.root_task_id.as_deref())
                .bind(Json(&run.input))
                .bind(Some(run.output.as_str()))
                .bind(run.model.as_deref())
                .bind(run.tokens_in)
                .bind(run.tokens_out)
                .bind(run.total_tokens())
                .bind(run.latency_ms)
                .bind(outcome.and_then(|o| o.tests_passed))
                .bind(outcome.and_then(|o| o.pr_merged))
                .bind(
                    outcome
                        .and_then(|o| o.expected_files.as_ref())
                        .map(|f| Json(f.0.as_slice())),
                )
                .bind(outcome.and_then(|o| o.failure_signature.as_deref()))
                .bind(outcome.map(|o| o.reported_at))
                .bind(at)
                .bind(at);
        }
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| B::conflict("prompt_optimization_data_run_key", e))?;
        inserted.extend(rows.into_iter().map(|(id,)| id.0));
    }

    // Runs recorded before keep their ids: read them back by key.
    let mut stored_id: HashMap<usize, Uuid> = HashMap::with_capacity(unique.len());
    let mut earlier: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (&index, id) in unique.iter().zip(&ids) {
        if inserted.contains(id) {
            stored_id.insert(index, *id);
        } else {
            earlier
                .entry(runs[index].prompt_id.as_str())
                .or_default()
                .push(index);
        }
    }
    for (prompt, indexes) in &earlier {
        let existing = read_existing(&mut tx, prompt, indexes.iter().map(|&i| &runs[i])).await?;
        for &index in indexes {
            let run = &runs[index];
            let id = existing
                .get(&(run.task_id.clone(), run.run_key()))
                .copied()
                .ok_or_else(|| {
                    StoreError::decode(format!(
                        "run ({prompt}, {}, {}) neither inserted nor found",
                        run.task_id, run.attempt
                    ))
                })?;
            stored_id.insert(index, id);
        }
    }

    // The running aggregates. Runs recorded here are production runs.
    let new_runs: Vec<usize> = unique
        .iter()
        .zip(&ids)
        .filter(|(_, id)| inserted.contains(id))
        .map(|(&index, _)| index)
        .collect();
    let mut figures = FigureDeltas::default();
    let mut new_tasks: BTreeMap<(&str, i64), BTreeMap<&str, i64>> = BTreeMap::new();
    let mut units: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for &index in &new_runs {
        let run = &runs[index];
        let prompt = run.prompt_id.as_str();
        let outcome = outcomes.get(run.task_id.as_str());
        let success = run_success(outcome.and_then(|o| o.tests_passed), None, None);
        figures.run_added(prompt, resolved[index], success, run.total_tokens());
        *new_tasks
            .entry((prompt, resolved[index]))
            .or_default()
            .entry(run.task_id.as_str())
            .or_default() += 1;
        // The unit as the aggregates' SQL spells it: COALESCE(root_task_id, task_id).
        let unit = run.root_task_id.as_deref().unwrap_or(&run.task_id);
        units.entry(prompt).or_default().insert(unit);
    }
    for ((prompt, version), tasks) in &new_tasks {
        let added = count_new_tasks::<B>(&mut tx, prompt, *version, tasks).await?;
        figures.tasks_added(prompt, *version, added);
    }
    figures.apply(&mut tx).await?;
    for (prompt, units) in &units {
        refresh_units::<B>(&mut tx, prompt, units).await?;
    }
    tx.commit().await?;

    Ok(runs
        .iter()
        .enumerate()
        .map(|(index, run)| {
            let first = first_of_key[&(run.prompt_id.as_str(), run.task_id.as_str(), run.attempt)];
            let id = stored_id[&first];
            RecordedRun {
                id,
                created: first == index && inserted.contains(&id),
            }
        })
        .collect())
}

/// Of these tasks, with the number of runs this batch just recorded for each in the version, how
/// many the version had no production run of before: those whose stored count is the batch's.
async fn count_new_tasks<B>(
    tx: &mut Transaction<'static, B::Db>,
    prompt_id: &str,
    version: i64,
    recorded: &BTreeMap<&str, i64>,
) -> Result<i64>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
{
    let numbered = B::NUMBERED_PARAMETERS;
    let tasks: Vec<&str> = recorded.keys().copied().collect();
    let mut added = 0;
    for chunk in tasks.chunks(LOOKUP_CHUNK) {
        // Through the figures index of migration 0006 (prompt, version, origin, task).
        let sql = format!(
            "SELECT task_id, COUNT(*) FROM prompt_optimization_data \
             WHERE prompt_id = {} AND version = {} AND origin = '{PRODUCTION}' \
             AND task_id IN ({}) GROUP BY task_id",
            placeholder(numbered, 1),
            placeholder(numbered, 2),
            in_list(numbered, 3, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(&sql)
            .bind(prompt_id)
            .bind(version);
        for task in chunk {
            query = query.bind(*task);
        }
        for (task, stored) in query.fetch_all(&mut **tx).await? {
            if recorded.get(task.as_str()) == Some(&stored) {
                added += 1;
            }
        }
    }
    Ok(added)
}

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING id` for `rows` runs, with
/// numbered or positional parameters ([`Backend::NUMBERED_PARAMETERS`]).
fn insert_statement(numbered: bool, rows: usize) -> String {
    format!(
        "INSERT INTO prompt_optimization_data ({INSERT_COLUMNS}) VALUES {} \
         ON CONFLICT (prompt_id, task_id, run_key) DO NOTHING RETURNING id",
        values_list(numbered, 1, rows, INSERT_COLUMN_COUNT)
    )
}

/// The prompt's active version (and, with A/B tests, its running test), read under its lock.
async fn load_version_defaults<DB>(
    tx: &mut Transaction<'static, DB>,
    prompt_id: &str,
) -> Result<VersionDefaults>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
    for<'r> (String, f64, i64, i64): FromRow<'r, DB::Row>,
{
    let active: Option<(i64,)> = sqlx::query_as(
        "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND is_active = TRUE",
    )
    .bind(prompt_id)
    .fetch_optional(&mut **tx)
    .await?;
    // Starting a test locks the prompt too, so the test read here is the one resolve serves.
    let running: Option<(String, f64, i64, i64)> = sqlx::query_as(
        "SELECT seed, traffic_split, version_a, version_b FROM ab_tests \
         WHERE prompt_id = $1 AND status = 'running'",
    )
    .bind(prompt_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(VersionDefaults {
        active: active.map(|(v,)| v),
        running,
    })
}

/// The stored outcomes of these tasks, by task id.
async fn read_outcomes<DB>(
    tx: &mut Transaction<'static, DB>,
    task_ids: &BTreeSet<&str>,
) -> Result<HashMap<String, OutcomeRow>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> OutcomeRow: FromRow<'r, DB::Row>,
{
    let task_ids: Vec<&str> = task_ids.iter().copied().collect();
    let mut outcomes = HashMap::new();
    for chunk in task_ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT {OUTCOME_COLUMNS} FROM task_outcomes WHERE task_id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, OutcomeRow>(&sql);
        for task_id in chunk {
            query = query.bind(*task_id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            outcomes.insert(row.task_id.clone(), row);
        }
    }
    Ok(outcomes)
}

/// The ids of these runs of one prompt as recorded before, by (task id, run key).
async fn read_existing<'a, DB>(
    tx: &mut Transaction<'static, DB>,
    prompt_id: &str,
    runs: impl Iterator<Item = &'a NewRun>,
) -> Result<HashMap<(String, String), Uuid>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (DbId, String, String): FromRow<'r, DB::Row>,
{
    let task_ids: Vec<&str> = runs
        .map(|r| r.task_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut found = HashMap::new();
    for chunk in task_ids.chunks(LOOKUP_CHUNK) {
        let sql = format!(
            "SELECT id, task_id, run_key FROM prompt_optimization_data \
             WHERE prompt_id = $1 AND task_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (DbId, String, String)>(&sql).bind(prompt_id);
        for task_id in chunk {
            query = query.bind(*task_id);
        }
        for (id, task_id, run_key) in query.fetch_all(&mut **tx).await? {
            found.insert((task_id, run_key), id.0);
        }
    }
    Ok(found)
}

/// `$first, $first+1, …` for `count` parameters.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_statements_number_their_parameters_row_by_row() {
        let sql = insert_statement(true, 2);
        assert!(sql.contains("($1, $2, $3,"), "{sql}");
        assert!(sql.contains("$21), ($22, $23,"), "{sql}");
        assert!(
            sql.ends_with("$42) ON CONFLICT (prompt_id, task_id, run_key) DO NOTHING RETURNING id"),
            "{sql}"
        );
        assert_eq!(INSERT_COLUMNS.split(',').count(), INSERT_COLUMN_COUNT);
        let positional = insert_statement(false, 2);
        assert_eq!(positional.matches('?').count(), 2 * INSERT_COLUMN_COUNT);
        assert!(!positional.contains('$'), "{positional}");
    }
}
