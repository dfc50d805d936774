//! The running aggregates of A/B tests (migration 0010): per exposure, what its unit contributes
//! to its arm (`ab_exposures.unit_succeeded`, `unit_tokens`, `unit_latency`), and per test and
//! arm the sums of those contributions (`ab_arm_totals`), which `ExperimentStore::ab_test_totals`
//! reads instead of scanning the prompt's runs (seconds at 10⁶ runs; BENCHMARKS.md, "A/B tests").
//!
//! A unit is the exposure's task id: the runs' root task id, else their task id. Its success is
//! its reported outcome's `tests_passed` (`task_outcomes` of the unit) when known, else whether
//! any of its production runs succeeded (`figures.rs`), else a failure; its tokens and latency
//! are summed over its production runs (NULL without any). Evaluation runs never count.
//!
//! Every write that can change a unit — exposures recorded, runs recorded, outcomes reported,
//! annotations set or cleared, grader verdicts stored — calls [`refresh_units`] with the units
//! it touched, in its own transaction, after its change: the units' contributions are computed
//! again from their few rows (index probes), and the difference to what the exposures held is
//! written to the exposures and added to their arms. Recomputing a unit rather than adjusting it
//! by the kind of write keeps one definition for every writer. All of them hold the write lock of
//! the unit's prompt (PostgreSQL: its row `FOR UPDATE`; SQLite: the database), so two writers of
//! one unit never interleave. [`recompute_ab_totals`] rebuilds everything from scratch (the
//! repair, and the reference the conformance suite checks the running totals against).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use uuid::Uuid;

use super::figures::{PRODUCTION, SUCCEEDED};
use super::{Backend, DbId, in_list, placeholder, values_list};
use crate::experiments::Arm;
use crate::store::{ArmTotals, Result, StoreError};

/// Units per `IN (…)` list.
const UNIT_CHUNK: usize = 500;
/// Exposures per `UPDATE … FROM (VALUES …)`: 4 parameters each.
const EXPOSURE_UPDATE_ROWS: usize = 500;

/// An exposure of a unit and what it holds now.
#[derive(FromRow)]
pub(crate) struct ExposureStateRow {
    id: DbId,
    ab_test_id: DbId,
    arm: String,
    task_id: String,
    unit_succeeded: i64,
    unit_tokens: Option<i64>,
    unit_latency: Option<i64>,
}

impl ExposureStateRow {
    /// An exposure just inserted: its unit contributes nothing yet (the columns' defaults).
    pub(crate) fn inserted(id: Uuid, ab_test_id: Uuid, arm: &str, task_id: &str) -> Self {
        ExposureStateRow {
            id: DbId(id),
            ab_test_id: DbId(ab_test_id),
            arm: arm.to_owned(),
            task_id: task_id.to_owned(),
            unit_succeeded: 0,
            unit_tokens: None,
            unit_latency: None,
        }
    }

    /// The exposure's test.
    pub(crate) fn ab_test_id(&self) -> Uuid {
        self.ab_test_id.0
    }

    /// The exposure's arm, as stored.
    pub(crate) fn arm(&self) -> &str {
        &self.arm
    }
}

/// A unit's production runs, aggregated.
#[derive(FromRow)]
pub(crate) struct UnitRunsRow {
    unit: String,
    succeeded: i64,
    tokens: Option<i64>,
    latency: Option<i64>,
}

/// A unit's reported outcome.
#[derive(FromRow)]
pub(crate) struct UnitOutcomeRow {
    task_id: String,
    tests_passed: Option<bool>,
}

/// One row of `ab_arm_totals`.
#[derive(FromRow)]
pub(crate) struct ArmTotalsRow {
    arm: String,
    exposures: i64,
    successes: i64,
    tokens_n: i64,
    tokens_sum: f64,
    tokens_sq: f64,
    latency_n: i64,
    latency_sum: f64,
    latency_sq: f64,
}

/// What a unit contributes to its arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Contribution {
    succeeded: bool,
    tokens: Option<i64>,
    latency: Option<i64>,
}

/// A change of an arm's sums.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct ArmDelta {
    exposures: i64,
    successes: i64,
    tokens: (i64, f64, f64),
    latency: (i64, f64, f64),
}

/// `(n, sum, sum of squares)` moved from `before` to `after`. Values are integers, so the f64
/// arithmetic is exact while the sums stay below 2⁵³.
fn moment_delta(before: Option<i64>, after: Option<i64>) -> (i64, f64, f64) {
    let part = |v: Option<i64>| match v {
        Some(v) => (1, v as f64, (v as f64) * (v as f64)),
        None => (0, 0.0, 0.0),
    };
    let (bn, bs, bq) = part(before);
    let (an, a_s, aq) = part(after);
    (an - bn, a_s - bs, aq - bq)
}

impl ArmDelta {
    fn add(&mut self, before: Contribution, after: Contribution) {
        self.successes += i64::from(after.succeeded) - i64::from(before.succeeded);
        for (sums, (n, s, q)) in [
            (&mut self.tokens, moment_delta(before.tokens, after.tokens)),
            (
                &mut self.latency,
                moment_delta(before.latency, after.latency),
            ),
        ] {
            sums.0 += n;
            sums.1 += s;
            sums.2 += q;
        }
    }
}

/// The prompt's tests, running or ended (a handful; none for most prompts, which makes the
/// refresh of their writes one cheap query).
async fn tests_of<DB>(tx: &mut Transaction<'static, DB>, prompt_id: &str) -> Result<Vec<DbId>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (DbId,): FromRow<'r, DB::Row>,
{
    let rows: Vec<(DbId,)> = sqlx::query_as("SELECT id FROM ab_tests WHERE prompt_id = $1")
        .bind(prompt_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Recomputes the contributions of these units of `prompt_id` in every test of the prompt that
/// exposed them, and moves their arms' sums by the difference. The caller holds the prompt's
/// write lock and calls this after its own change, in the same transaction.
pub(crate) async fn refresh_units<B>(
    tx: &mut Transaction<'static, B::Db>,
    prompt_id: &str,
    units: &BTreeSet<&str>,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    if units.is_empty() {
        return Ok(());
    }
    let numbered = B::NUMBERED_PARAMETERS;
    let units: Vec<&str> = units.iter().copied().collect();

    // The exposures of these units in each test of the prompt, through the unique
    // (ab_test_id, task_id) index.
    let mut exposures: Vec<ExposureStateRow> = Vec::new();
    for test in tests_of(tx, prompt_id).await? {
        for chunk in units.chunks(UNIT_CHUNK) {
            let sql = format!(
                "SELECT id, ab_test_id, arm, task_id, unit_succeeded, unit_tokens, unit_latency \
                 FROM ab_exposures WHERE ab_test_id = {} AND task_id IN ({})",
                placeholder(numbered, 1),
                in_list(numbered, 2, chunk.len())
            );
            let mut query = sqlx::query_as::<_, ExposureStateRow>(&sql).bind(test);
            for unit in chunk {
                query = query.bind(*unit);
            }
            exposures.extend(query.fetch_all(&mut **tx).await?);
        }
    }
    refresh_exposures::<B>(tx, prompt_id, &exposures).await
}

/// Recomputes the contributions of these exposures of `prompt_id`'s tests (as they are stored
/// now) and moves their arms' sums by the difference. See [`refresh_units`].
pub(crate) async fn refresh_exposures<B>(
    tx: &mut Transaction<'static, B::Db>,
    prompt_id: &str,
    exposures: &[ExposureStateRow],
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    let numbered = B::NUMBERED_PARAMETERS;
    if exposures.is_empty() {
        return Ok(());
    }
    let exposed: Vec<&str> = exposures
        .iter()
        .map(|e| e.task_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    // What the exposed units hold now: their runs (through the unit index of migration 0010)
    // and their outcomes.
    let mut runs: HashMap<String, UnitRunsRow> = HashMap::new();
    let mut outcomes: HashMap<String, bool> = HashMap::new();
    for chunk in exposed.chunks(UNIT_CHUNK) {
        let sql = format!(
            "SELECT COALESCE(root_task_id, task_id) AS unit, \
             CAST(MAX(CASE WHEN {SUCCEEDED} THEN 1 ELSE 0 END) AS BIGINT) AS succeeded, \
             CAST(SUM(total_tokens) AS BIGINT) AS tokens, \
             CAST(SUM(latency_ms) AS BIGINT) AS latency \
             FROM prompt_optimization_data \
             WHERE prompt_id = {} AND COALESCE(root_task_id, task_id) IN ({}) \
               AND origin = '{PRODUCTION}' \
             GROUP BY COALESCE(root_task_id, task_id)",
            placeholder(numbered, 1),
            in_list(numbered, 2, chunk.len())
        );
        let mut query = sqlx::query_as::<_, UnitRunsRow>(&sql).bind(prompt_id);
        for unit in chunk {
            query = query.bind(*unit);
        }
        for row in query.fetch_all(&mut **tx).await? {
            runs.insert(row.unit.clone(), row);
        }
        let sql = format!(
            "SELECT task_id, tests_passed FROM task_outcomes \
             WHERE tests_passed IS NOT NULL AND task_id IN ({})",
            in_list(numbered, 1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, UnitOutcomeRow>(&sql);
        for unit in chunk {
            query = query.bind(*unit);
        }
        for row in query.fetch_all(&mut **tx).await? {
            if let Some(passed) = row.tests_passed {
                outcomes.insert(row.task_id, passed);
            }
        }
    }

    // The differences.
    let mut changed: Vec<(Uuid, Contribution)> = Vec::new();
    let mut arms: BTreeMap<(Uuid, String), ArmDelta> = BTreeMap::new();
    for exposure in exposures {
        let unit_runs = runs.get(&exposure.task_id);
        let after = Contribution {
            succeeded: outcomes
                .get(&exposure.task_id)
                .copied()
                .unwrap_or_else(|| unit_runs.is_some_and(|r| r.succeeded > 0)),
            tokens: unit_runs.and_then(|r| r.tokens),
            latency: unit_runs.and_then(|r| r.latency),
        };
        let before = Contribution {
            succeeded: exposure.unit_succeeded != 0,
            tokens: exposure.unit_tokens,
            latency: exposure.unit_latency,
        };
        if before == after {
            continue;
        }
        changed.push((exposure.id.0, after));
        arms.entry((exposure.ab_test_id.0, exposure.arm.clone()))
            .or_default()
            .add(before, after);
    }

    for chunk in changed.chunks(EXPOSURE_UPDATE_ROWS) {
        let sql = format!(
            "UPDATE ab_exposures SET unit_succeeded = v.column2, unit_tokens = v.column3, \
             unit_latency = v.column4 FROM (VALUES {}) AS v WHERE ab_exposures.id = v.column1",
            values_list(numbered, 1, chunk.len(), 4)
        );
        let mut query = sqlx::query(&sql);
        for (id, after) in chunk {
            query = query
                .bind(DbId(*id))
                .bind(i64::from(after.succeeded))
                .bind(after.tokens)
                .bind(after.latency);
        }
        query.execute(&mut **tx).await?;
    }
    for ((test, arm), delta) in arms {
        add_to_arm::<B::Db>(tx, test, &arm, delta).await?;
    }
    Ok(())
}

/// Counts newly recorded exposures in their arms: `(test, arm)` per exposure. Their units'
/// contributions follow with [`refresh_units`].
pub(crate) async fn exposures_added<DB>(
    tx: &mut Transaction<'static, DB>,
    added: &[(Uuid, String)],
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DbId: Encode<'q, DB> + Type<DB>,
{
    let mut arms: BTreeMap<(Uuid, &str), i64> = BTreeMap::new();
    for (test, arm) in added {
        *arms.entry((*test, arm.as_str())).or_default() += 1;
    }
    for ((test, arm), exposures) in arms {
        let delta = ArmDelta {
            exposures,
            ..ArmDelta::default()
        };
        add_to_arm(tx, test, arm, delta).await?;
    }
    Ok(())
}

async fn add_to_arm<DB>(
    tx: &mut Transaction<'static, DB>,
    test: Uuid,
    arm: &str,
    delta: ArmDelta,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> f64: Encode<'q, DB> + Type<DB>,
    for<'q> DbId: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(
        "UPDATE ab_arm_totals SET exposures = exposures + $3, successes = successes + $4, \
         tokens_n = tokens_n + $5, tokens_sum = tokens_sum + $6, tokens_sq = tokens_sq + $7, \
         latency_n = latency_n + $8, latency_sum = latency_sum + $9, \
         latency_sq = latency_sq + $10 \
         WHERE ab_test_id = $1 AND arm = $2",
    )
    .bind(DbId(test))
    .bind(arm)
    .bind(delta.exposures)
    .bind(delta.successes)
    .bind(delta.tokens.0)
    .bind(delta.tokens.1)
    .bind(delta.tokens.2)
    .bind(delta.latency.0)
    .bind(delta.latency.1)
    .bind(delta.latency.2)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The empty sums of a new test's two arms.
pub(crate) async fn create_arms<DB>(tx: &mut Transaction<'static, DB>, test: Uuid) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> DbId: Encode<'q, DB> + Type<DB>,
{
    sqlx::query("INSERT INTO ab_arm_totals (ab_test_id, arm) VALUES ($1, 'a'), ($1, 'b')")
        .bind(DbId(test))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The totals of arms A and B of a test, if it has any.
pub(crate) async fn read_totals<DB, E>(executor: E, test: Uuid) -> Result<Option<[ArmTotals; 2]>>
where
    DB: Database,
    E: for<'c> Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> DbId: Encode<'q, DB> + Type<DB>,
    for<'r> ArmTotalsRow: FromRow<'r, DB::Row>,
{
    let rows: Vec<ArmTotalsRow> = sqlx::query_as(
        "SELECT arm, exposures, successes, tokens_n, tokens_sum, tokens_sq, latency_n, \
         latency_sum, latency_sq FROM ab_arm_totals WHERE ab_test_id = $1",
    )
    .bind(DbId(test))
    .fetch_all(executor)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut totals = [ArmTotals::default(); 2];
    for row in rows {
        let index = match Arm::parse(&row.arm) {
            Some(Arm::A) => 0,
            Some(Arm::B) => 1,
            None => return Err(StoreError::decode(format!("unknown arm {:?}", row.arm))),
        };
        totals[index] = ArmTotals {
            exposures: count(row.exposures),
            successes: count(row.successes),
            tokens: (count(row.tokens_n), row.tokens_sum, row.tokens_sq),
            latency: (count(row.latency_n), row.latency_sum, row.latency_sq),
        };
    }
    Ok(Some(totals))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Rebuilds every exposure's contribution and every arm's sums from the runs and outcomes
/// (migration 0010 runs the same statements). The caller holds the write lock of every prompt.
pub(crate) async fn recompute_ab_totals<DB>(tx: &mut Transaction<'static, DB>) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    // `|| ''` gives the outer task id no column affinity, so SQLite compares it with the
    // expression index `prompt_optimization_data_unit` as it is; compared as the TEXT column, the
    // index served only `prompt_id` and every exposure scanned its prompt's runs (1M exposures
    // over 1M runs did not finish in 10 minutes).
    let unit_runs = |what: &str| {
        format!(
            "(SELECT {what} FROM ab_tests t \
             JOIN prompt_optimization_data d ON d.prompt_id = t.prompt_id \
             WHERE t.id = ab_exposures.ab_test_id AND d.origin = '{PRODUCTION}' \
               AND COALESCE(d.root_task_id, d.task_id) = ab_exposures.task_id || '')"
        )
    };
    let succeeded = SUCCEEDED
        .replace("tests_passed", "d.tests_passed")
        .replace("rating", "d.rating")
        .replace("graders_passed", "d.graders_passed");
    sqlx::query(&format!(
        "UPDATE ab_exposures SET \
         unit_succeeded = COALESCE(\
             (SELECT CASE WHEN o.tests_passed = TRUE THEN 1 ELSE 0 END FROM task_outcomes o \
              WHERE o.task_id = ab_exposures.task_id AND o.tests_passed IS NOT NULL), \
             {}, 0), \
         unit_tokens = {}, unit_latency = {}",
        unit_runs(&format!("MAX(CASE WHEN {succeeded} THEN 1 ELSE 0 END)")),
        unit_runs("SUM(d.total_tokens)"),
        unit_runs("SUM(d.latency_ms)"),
    ))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO ab_arm_totals (ab_test_id, arm, exposures, successes, tokens_n, \
         tokens_sum, tokens_sq, latency_n, latency_sum, latency_sq) \
         SELECT t.id, arms.arm, COUNT(e.id), COALESCE(SUM(e.unit_succeeded), 0), \
         COUNT(e.unit_tokens), \
         CAST(COALESCE(SUM(e.unit_tokens), 0) AS DOUBLE PRECISION), \
         COALESCE(SUM(CAST(e.unit_tokens AS DOUBLE PRECISION) * e.unit_tokens), 0), \
         COUNT(e.unit_latency), \
         CAST(COALESCE(SUM(e.unit_latency), 0) AS DOUBLE PRECISION), \
         COALESCE(SUM(CAST(e.unit_latency AS DOUBLE PRECISION) * e.unit_latency), 0) \
         FROM ab_tests t \
         CROSS JOIN (SELECT 'a' AS arm UNION ALL SELECT 'b' AS arm) arms \
         LEFT JOIN ab_exposures e ON e.ab_test_id = t.id AND e.arm = arms.arm \
         GROUP BY t.id, arms.arm \
         ON CONFLICT (ab_test_id, arm) DO UPDATE SET exposures = excluded.exposures, \
         successes = excluded.successes, tokens_n = excluded.tokens_n, \
         tokens_sum = excluded.tokens_sum, tokens_sq = excluded.tokens_sq, \
         latency_n = excluded.latency_n, latency_sum = excluded.latency_sum, \
         latency_sq = excluded.latency_sq",
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contribution_moves_the_sums_by_its_difference() {
        let mut delta = ArmDelta::default();
        let before = Contribution {
            succeeded: false,
            tokens: Some(3),
            latency: None,
        };
        let after = Contribution {
            succeeded: true,
            tokens: Some(5),
            latency: Some(7),
        };
        delta.add(before, after);
        assert_eq!(delta.successes, 1);
        assert_eq!(delta.tokens, (0, 2.0, 25.0 - 9.0));
        assert_eq!(delta.latency, (1, 7.0, 49.0));
        delta.add(after, before);
        assert_eq!(delta.successes, 0);
        assert_eq!(delta.tokens, (0, 0.0, 0.0));
        assert_eq!(delta.latency, (0, 0.0, 0.0));
    }
}
