//! The A/B-test domain's SQL, once for both backends: its rows, queries and
//! [`ExperimentStore`], implemented for every [`Backend`].
//!
//! Starting a test checks the prompt and both versions inside the write transaction and lets
//! the partial unique index `one_running_ab_test_per_prompt` refuse a second running test, so
//! two concurrent starts leave one. Ending a test updates only a running row (`WHERE status =
//! 'running'`), so of two concurrent enders one wins; a decision's deploy of B is made in that
//! same transaction (prompt locked first, as a deploy locks it), so only the winner deploys.
//! Exposures are written in multi-row statements with `ON CONFLICT DO NOTHING`: the first
//! assignment of a task is the one analysed.
//!
//! The totals are intent to treat: every exposure counts, joined with the prompt's production
//! runs of the same unit (`COALESCE(root_task_id, task_id)`) and with the unit's reported
//! outcome (`task_outcomes`), in two linear passes (exposures with their outcomes; runs with
//! their unit's exposure). A unit's success is its outcome's `tests_passed` when known, else
//! whether any of its runs succeeded by the success definition of `figures.rs`; without either it
//! is a failure. Costs are summed per unit over its runs. Float aggregates are cast to `DOUBLE
//! PRECISION`, which SQLite reads as REAL affinity and PostgreSQL as float8 (a PostgreSQL `SUM`
//! of integers is NUMERIC, which sqlx cannot read as `f64`).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::figures::SUCCEEDED;
use super::prompts::{active_number, switch_active};
use super::{Backend, DbId, ensure_prompt};
use crate::experiments::Arm;
use crate::store::experiments::STATUS_RUNNING;
use crate::store::{
    AbTest, AbTestEnd, ArmTotals, DeployAction, ExperimentStore, Exposure, Missing, NewAbTest,
    Result, StoreError, now,
};

/// Exposures per `INSERT` statement: 6 parameters each stays far below both backends' limits.
const EXPOSURE_CHUNK_ROWS: usize = 500;

const AB_COLUMNS: &str = "id, prompt_id, version_a, version_b, traffic_split, seed, status, \
     decision, min_samples, config, result, created_by, created_at, started_at, ended_at, \
     decided_at";

#[derive(FromRow)]
struct AbTestRow {
    id: DbId,
    prompt_id: String,
    version_a: i64,
    version_b: i64,
    traffic_split: f64,
    seed: String,
    status: String,
    decision: Option<String>,
    min_samples: i64,
    config: Json<serde_json::Value>,
    result: Option<Json<serde_json::Value>>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    decided_at: Option<DateTime<Utc>>,
}

impl From<AbTestRow> for AbTest {
    fn from(row: AbTestRow) -> Self {
        AbTest {
            id: row.id.0,
            prompt_id: row.prompt_id,
            version_a: row.version_a,
            version_b: row.version_b,
            traffic_split: row.traffic_split,
            seed: row.seed,
            status: row.status,
            decision: row.decision,
            min_samples: row.min_samples,
            config: row.config.0,
            result: row.result.map(|r| r.0),
            created_by: row.created_by,
            created_at: row.created_at,
            started_at: row.started_at,
            ended_at: row.ended_at,
            decided_at: row.decided_at,
        }
    }
}

/// Per arm: tasks assigned, and of them those whose reported outcome passed.
#[derive(FromRow)]
struct ExposureTotalsRow {
    arm: String,
    exposures: i64,
    outcome_successes: i64,
}

/// Per arm, over the units that have runs: successes of units without a known outcome, and the
/// cost sums.
#[derive(FromRow)]
struct RunTotalsRow {
    arm: String,
    run_successes: i64,
    tokens_n: i64,
    tokens_sum: f64,
    tokens_sq: f64,
    latency_n: i64,
    latency_sum: f64,
    latency_sq: f64,
}

/// Exposures per arm and the successes their outcomes decide: one pass over the test's
/// exposures with a primary-key probe of `task_outcomes` each.
const EXPOSURE_TOTALS_SQL: &str = "SELECT e.arm AS arm, COUNT(*) AS exposures, \
     COALESCE(SUM(CASE WHEN o.tests_passed = TRUE THEN 1 ELSE 0 END), 0) AS outcome_successes \
     FROM ab_exposures e LEFT JOIN task_outcomes o ON o.task_id = e.task_id \
     WHERE e.ab_test_id = $1 GROUP BY e.arm";

/// The units' runs, per arm. Driven by the prompt's runs, each probing the exposure of its
/// unit through the unique `(ab_test_id, task_id)` index, so the cost is linear in runs. (Driven
/// by exposures, joining a per-unit aggregate of the runs, SQLite found no index for the join
/// and scanned the aggregate once per exposure: minutes at 10⁶ runs.)
fn run_totals_sql() -> String {
    format!(
        "SELECT u.arm AS arm, \
         COALESCE(SUM(CASE WHEN o.tests_passed IS NULL THEN u.succeeded ELSE 0 END), 0) \
             AS run_successes, \
         COUNT(u.tokens) AS tokens_n, \
         CAST(COALESCE(SUM(u.tokens), 0) AS DOUBLE PRECISION) AS tokens_sum, \
         CAST(COALESCE(SUM(u.tokens * u.tokens), 0) AS DOUBLE PRECISION) AS tokens_sq, \
         COUNT(u.latency) AS latency_n, \
         CAST(COALESCE(SUM(u.latency), 0) AS DOUBLE PRECISION) AS latency_sum, \
         CAST(COALESCE(SUM(u.latency * u.latency), 0) AS DOUBLE PRECISION) AS latency_sq \
         FROM ( \
             SELECT e.arm AS arm, e.task_id AS unit, \
                    MAX(CASE WHEN {SUCCEEDED} THEN 1 ELSE 0 END) AS succeeded, \
                    CAST(SUM(r.total_tokens) AS DOUBLE PRECISION) AS tokens, \
                    CAST(SUM(r.latency_ms) AS DOUBLE PRECISION) AS latency \
             FROM prompt_optimization_data r \
             JOIN ab_exposures e \
               ON e.ab_test_id = $1 AND e.task_id = COALESCE(r.root_task_id, r.task_id) \
             WHERE r.prompt_id = $2 AND r.origin = 'production' \
             GROUP BY e.arm, e.task_id \
         ) u \
         LEFT JOIN task_outcomes o ON o.task_id = u.unit \
         GROUP BY u.arm"
    )
}

/// Where an arm's totals go: A first.
fn arm_index(arm: &str) -> Result<usize> {
    match Arm::parse(arm) {
        Some(Arm::A) => Ok(0),
        Some(Arm::B) => Ok(1),
        None => Err(StoreError::decode(format!("unknown arm {arm:?}"))),
    }
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[async_trait]
impl<B> ExperimentStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q serde_json::Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> AbTestRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureTotalsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunTotalsRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_ab_test(&self, new: NewAbTest) -> Result<AbTest> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, B::ROW_LOCK).await?;
        for version in [new.version_a, new.version_b] {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
            )
            .bind(new.prompt_id.as_str())
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            if found.is_none() {
                return Err(Missing::version(&new.prompt_id, version).into());
            }
        }
        let id = Uuid::now_v7();
        // The experiment key is the prompt and the test; the phase is 1 (a new test is a new
        // phase: weights never change within one).
        let seed = format!("{}:{id}:1", new.prompt_id);
        let at = now();
        let row: AbTestRow = sqlx::query_as(&format!(
            "INSERT INTO ab_tests (id, prompt_id, version_a, version_b, traffic_split, seed, \
             status, min_samples, config, created_by, created_at, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'running', $7, $8, $9, $10, $10) \
             RETURNING {AB_COLUMNS}"
        ))
        .bind(DbId(id))
        .bind(new.prompt_id.as_str())
        .bind(new.version_a)
        .bind(new.version_b)
        .bind(new.traffic_split)
        .bind(seed.as_str())
        .bind(new.min_samples)
        .bind(Json(&new.config))
        .bind(new.created_by.as_deref())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| B::conflict("one_running_ab_test_per_prompt", e))?;
        tx.commit().await?;
        Ok(row.into())
    }

    async fn running_ab_test(&self, prompt_id: &str) -> Result<Option<AbTest>> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        let row: Option<AbTestRow> = sqlx::query_as(&format!(
            "SELECT {AB_COLUMNS} FROM ab_tests WHERE prompt_id = $1 AND status = 'running'"
        ))
        .bind(prompt_id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(Into::into))
    }

    async fn get_ab_test(&self, id: Uuid) -> Result<AbTest> {
        let row: Option<AbTestRow> =
            sqlx::query_as(&format!("SELECT {AB_COLUMNS} FROM ab_tests WHERE id = $1"))
                .bind(DbId(id))
                .fetch_optional(self.pool())
                .await?;
        row.map(Into::into)
            .ok_or_else(|| Missing::ab_test(id).into())
    }

    async fn list_ab_tests(&self, prompt_id: &str) -> Result<Vec<AbTest>> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        let rows: Vec<AbTestRow> = sqlx::query_as(&format!(
            "SELECT {AB_COLUMNS} FROM ab_tests WHERE prompt_id = $1 \
             ORDER BY created_at DESC, id DESC"
        ))
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn end_ab_test(&self, id: Uuid, end: AbTestEnd) -> Result<AbTest> {
        let mut tx = self.begin_write().await?;
        if end.deploy_b_as.is_some() {
            // Lock the prompt first, in the order a deploy takes its locks.
            let prompt_id: Option<String> =
                sqlx::query_scalar("SELECT prompt_id FROM ab_tests WHERE id = $1")
                    .bind(DbId(id))
                    .fetch_optional(&mut *tx)
                    .await?;
            let prompt_id = prompt_id.ok_or_else(|| StoreError::from(Missing::ab_test(id)))?;
            ensure_prompt(&mut tx, &prompt_id, B::ROW_LOCK).await?;
        }
        let at = now();
        let row: Option<AbTestRow> = sqlx::query_as(&format!(
            "UPDATE ab_tests SET status = $2, decision = COALESCE($3, decision), result = $4, \
             ended_at = $5, decided_at = CASE WHEN $3 IS NULL THEN decided_at ELSE $5 END \
             WHERE id = $1 AND status = '{STATUS_RUNNING}' RETURNING {AB_COLUMNS}"
        ))
        .bind(DbId(id))
        .bind(end.status)
        .bind(end.decision.as_deref())
        .bind(Json(&end.result))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Tell an unknown test from one that already ended.
            let test = self.get_ab_test(id).await?;
            return Err(Missing::running_ab_test(&test.prompt_id).into());
        };
        if let Some(actor) = &end.deploy_b_as {
            let current = active_number::<B::Db>(&mut tx, &row.prompt_id).await?;
            if current != Some(row.version_b) {
                switch_active::<B>(
                    &mut tx,
                    &row.prompt_id,
                    current,
                    row.version_b,
                    DeployAction::Deploy,
                    actor,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(row.into())
    }

    async fn running_ab_tests(&self) -> Result<Vec<AbTest>> {
        let rows: Vec<AbTestRow> = sqlx::query_as(&format!(
            "SELECT {AB_COLUMNS} FROM ab_tests WHERE status = '{STATUS_RUNNING}' \
             ORDER BY prompt_id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn save_ab_result(
        &self,
        id: Uuid,
        decision: &str,
        result: &serde_json::Value,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(&format!(
            "UPDATE ab_tests SET decision = $2, result = $3 \
             WHERE id = $1 AND status = '{STATUS_RUNNING}'"
        ))
        .bind(DbId(id))
        .bind(decision)
        .bind(Json(result))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_exposures(&self, exposures: &[Exposure]) -> Result<u64> {
        // The first of each (test, task) of the batch, as the table keeps the first: a task
        // resolved again and again costs one row of the statement, not one each time.
        let mut seen = HashSet::with_capacity(exposures.len());
        let unique: Vec<&Exposure> = exposures
            .iter()
            .filter(|e| seen.insert((e.ab_test_id, e.task_id.as_str())))
            .collect();
        if unique.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let mut recorded = 0;
        let at = now();
        for chunk in unique.chunks(EXPOSURE_CHUNK_ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|row| {
                    let p = row * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5,
                        p + 6
                    )
                })
                .collect();
            // RETURNING yields a row per exposure inserted, none for a task that had one.
            let sql = format!(
                "INSERT INTO ab_exposures (id, ab_test_id, task_id, arm, version, created_at) \
                 VALUES {} ON CONFLICT (ab_test_id, task_id) DO NOTHING RETURNING task_id",
                values.join(", ")
            );
            let mut query = sqlx::query_as::<_, (String,)>(&sql);
            for exposure in chunk {
                query = query
                    .bind(DbId(Uuid::now_v7()))
                    .bind(DbId(exposure.ab_test_id))
                    .bind(exposure.task_id.as_str())
                    .bind(exposure.arm.as_str())
                    .bind(exposure.version)
                    .bind(at);
            }
            let inserted = query
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| B::conflict("ab_exposures_ab_test_id_fkey", e))?;
            recorded += inserted.len() as u64;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn ab_test_totals(&self, id: Uuid) -> Result<[ArmTotals; 2]> {
        let mut tx = self.begin_snapshot().await?;
        let prompt_id: Option<String> =
            sqlx::query_scalar("SELECT prompt_id FROM ab_tests WHERE id = $1")
                .bind(DbId(id))
                .fetch_optional(&mut *tx)
                .await?;
        let prompt_id = prompt_id.ok_or_else(|| StoreError::from(Missing::ab_test(id)))?;
        let exposures: Vec<ExposureTotalsRow> = sqlx::query_as(EXPOSURE_TOTALS_SQL)
            .bind(DbId(id))
            .fetch_all(&mut *tx)
            .await?;
        let runs: Vec<RunTotalsRow> = sqlx::query_as(&run_totals_sql())
            .bind(DbId(id))
            .bind(prompt_id.as_str())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut totals = [ArmTotals::default(); 2];
        for row in exposures {
            let arm = &mut totals[arm_index(&row.arm)?];
            arm.exposures = count(row.exposures);
            arm.successes += count(row.outcome_successes);
        }
        for row in runs {
            let arm = &mut totals[arm_index(&row.arm)?];
            arm.successes += count(row.run_successes);
            arm.tokens = (count(row.tokens_n), row.tokens_sum, row.tokens_sq);
            arm.latency = (count(row.latency_n), row.latency_sum, row.latency_sq);
        }
        Ok(totals)
    }
}
