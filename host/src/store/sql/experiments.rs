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
//! The totals are intent to treat: every exposure counts, with the prompt's production runs of
//! the same unit (`COALESCE(root_task_id, task_id)`) and the unit's reported outcome
//! (`task_outcomes`). They are running aggregates (`ab_totals.rs`, migration 0010) that every
//! writer of a unit keeps current, so reading them costs two rows whatever the test's size.
//! Recording exposures therefore locks the tests' prompts first, like every writer of runs: an
//! exposure and a run of its unit written at the same moment are serialized, and whichever comes
//! second counts the other.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::ab_totals::{
    ArmTotalsRow, ExposureStateRow, UnitOutcomeRow, UnitRunsRow, create_arms, exposures_added,
    read_totals, refresh_exposures,
};
use super::prompts::{active_number, switch_active};
use super::{Backend, DbId, ensure_prompt, in_list, values_list};
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
    for<'r> ArmTotalsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
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
        create_arms(&mut tx, id).await?;
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
        // The tests' prompts, locked in sorted order as every writer of runs locks them (an
        // unknown test is left to the insert's foreign key).
        let tests: BTreeSet<Uuid> = unique.iter().map(|e| e.ab_test_id).collect();
        let mut prompt_of: BTreeMap<Uuid, String> = BTreeMap::new();
        for test in &tests {
            let prompt: Option<String> =
                sqlx::query_scalar("SELECT prompt_id FROM ab_tests WHERE id = $1")
                    .bind(DbId(*test))
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(prompt) = prompt {
                prompt_of.insert(*test, prompt);
            }
        }
        for prompt in prompt_of.values().collect::<BTreeSet<_>>() {
            ensure_prompt(&mut tx, prompt, B::ROW_LOCK).await?;
        }
        let mut added: Vec<ExposureStateRow> = Vec::with_capacity(unique.len());
        let at = now();
        for chunk in unique.chunks(EXPOSURE_CHUNK_ROWS) {
            let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
            // `?` on SQLite: `$N` costs O(n²) to bind (see `Backend::NUMBERED_PARAMETERS`).
            let values = values_list(B::NUMBERED_PARAMETERS, 1, chunk.len(), 6);
            // No RETURNING: a returned row per exposure crossed the driver's row channel one by
            // one, waking the writer and the reader each time, which cost more than the insert
            // (BENCHMARKS.md, "A/B tests"). The count of rows inserted says whether every
            // exposure of the chunk was new, as it nearly always is.
            let sql = format!(
                "INSERT INTO ab_exposures (id, ab_test_id, task_id, arm, version, created_at) \
                 VALUES {values} ON CONFLICT (ab_test_id, task_id) DO NOTHING"
            );
            let mut query = sqlx::query(&sql);
            for (exposure, id) in chunk.iter().zip(&ids) {
                query = query
                    .bind(DbId(*id))
                    .bind(DbId(exposure.ab_test_id))
                    .bind(exposure.task_id.as_str())
                    .bind(exposure.arm.as_str())
                    .bind(exposure.version)
                    .bind(at);
            }
            let result = query
                .execute(&mut *tx)
                .await
                .map_err(|e| B::conflict("ab_exposures_ab_test_id_fkey", e))?;
            if B::rows_affected(&result) == chunk.len() as u64 {
                added.extend(chunk.iter().zip(&ids).map(|(exposure, id)| {
                    ExposureStateRow::inserted(
                        *id,
                        exposure.ab_test_id,
                        exposure.arm.as_str(),
                        &exposure.task_id,
                    )
                }));
            } else {
                // Some tasks had an exposure already: the rows inserted are those with our ids
                // (the prompts' locks keep every other writer of these tests out meanwhile).
                added.extend(exposures_with_ids::<B>(&mut tx, &ids).await?);
            }
        }
        // Count them in their arms, then what their units already hold (runs may have been
        // recorded before the exposure, which is written in the background).
        let arms: Vec<(Uuid, String)> = added
            .iter()
            .map(|e| (e.ab_test_id(), e.arm().to_owned()))
            .collect();
        exposures_added(&mut tx, &arms).await?;
        let recorded = added.len() as u64;
        let mut by_prompt: BTreeMap<&str, Vec<ExposureStateRow>> = BTreeMap::new();
        for exposure in added {
            if let Some(prompt) = prompt_of.get(&exposure.ab_test_id()) {
                by_prompt.entry(prompt.as_str()).or_default().push(exposure);
            }
        }
        for (prompt, exposures) in &by_prompt {
            refresh_exposures::<B>(&mut tx, prompt, exposures).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn ab_test_totals(&self, id: Uuid) -> Result<[ArmTotals; 2]> {
        match read_totals(self.pool(), id).await? {
            Some(totals) => Ok(totals),
            // Every test has its two rows from its creation: none means no such test.
            None => Err(Missing::ab_test(id).into()),
        }
    }
}

/// The exposures among `ids`, as they stand.
async fn exposures_with_ids<B>(
    tx: &mut sqlx::Transaction<'static, B::Db>,
    ids: &[Uuid],
) -> Result<Vec<ExposureStateRow>>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
{
    let sql = format!(
        "SELECT id, ab_test_id, arm, task_id, unit_succeeded, unit_tokens, unit_latency \
         FROM ab_exposures WHERE id IN ({})",
        in_list(B::NUMBERED_PARAMETERS, 1, ids.len())
    );
    let mut query = sqlx::query_as::<_, ExposureStateRow>(&sql);
    for id in ids {
        query = query.bind(DbId(*id));
    }
    Ok(query.fetch_all(&mut **tx).await?)
}
