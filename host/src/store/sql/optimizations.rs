//! The optimization domain's SQL, once for both backends ([`OptimizationStore`]): the queue of
//! optimizations with its claim under a lease, checkpoints (state and cached answers together),
//! and the end, which writes the report and the winner's version in one transaction.
//!
//! Every write of a running optimization is guarded by `claimed_by = $me AND status =
//! 'running'`: an instance whose claim was taken over writes nothing.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Backend, DbId, ensure_prompt};
use crate::store::evaluations::CachedAnswer;
use crate::store::optimizations::{
    NewOptimization, Optimization, OptimizationEnd, OptimizationStatus, OptimizationStore,
};
use crate::store::{Missing, PromptVersion, Result, StoreError, VersionSource, now};

const COLUMNS: &str = "id, prompt_id, start_version, spec, graders, status, state, report, \
     created_version, error, cancel_requested, claimed_by, lease_until, created_by, created_at, \
     started_at, finished_at";

#[derive(FromRow)]
pub(crate) struct OptimizationRow {
    id: DbId,
    prompt_id: String,
    start_version: i64,
    spec: Json<Value>,
    graders: Json<Vec<String>>,
    status: String,
    state: Option<Json<Value>>,
    report: Option<Json<Value>>,
    created_version: Option<i64>,
    error: Option<String>,
    cancel_requested: bool,
    claimed_by: Option<String>,
    lease_until: Option<DateTime<Utc>>,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl TryFrom<OptimizationRow> for Optimization {
    type Error = StoreError;

    fn try_from(row: OptimizationRow) -> Result<Self> {
        let status = OptimizationStatus::parse(&row.status)
            .ok_or_else(|| StoreError::decode(format!("optimization status {}", row.status)))?;
        Ok(Optimization {
            id: row.id.0,
            prompt_id: row.prompt_id,
            start_version: row.start_version,
            spec: row.spec.0,
            graders: row.graders.0,
            status,
            state: row.state.map(|s| s.0),
            report: row.report.map(|r| r.0),
            created_version: row.created_version,
            error: row.error,
            cancel_requested: row.cancel_requested,
            claimed_by: row.claimed_by,
            lease_until: row.lease_until,
            created_by: row.created_by,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

fn lease_end(lease: Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
}

#[async_trait]
impl<B> OptimizationStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q [String]>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OptimizationRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_optimization(&self, new: NewOptimization) -> Result<Optimization> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, "").await?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
        )
        .bind(new.prompt_id.as_str())
        .bind(new.start_version)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(Missing::version(&new.prompt_id, new.start_version).into());
        }
        let row: OptimizationRow = sqlx::query_as(&format!(
            "INSERT INTO optimizations (id, prompt_id, start_version, spec, graders, status, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) \
             RETURNING {COLUMNS}"
        ))
        .bind(DbId(Uuid::now_v7()))
        .bind(new.prompt_id.as_str())
        .bind(new.start_version)
        .bind(Json(&new.spec))
        .bind(Json(new.graders.as_slice()))
        .bind(new.created_by.as_str())
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn get_optimization(&self, id: Uuid) -> Result<Optimization> {
        let row: Option<OptimizationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM optimizations WHERE id = $1"
        ))
        .bind(DbId(id))
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(StoreError::NotFound(Missing::Optimization(id)))?
            .try_into()
    }

    async fn list_optimizations(
        &self,
        prompt_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Optimization>> {
        // Ids are UUIDv7: id order is creation order, the same on both backends.
        let rows: Vec<OptimizationRow> = match prompt_id {
            Some(prompt_id) => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM optimizations WHERE prompt_id = $1 \
                     ORDER BY id DESC LIMIT $2"
                ))
                .bind(prompt_id)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM optimizations ORDER BY id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.into_iter().map(Optimization::try_from).collect()
    }

    async fn claim_optimization(
        &self,
        instance: &str,
        lease: Duration,
    ) -> Result<Option<Optimization>> {
        let mut tx = self.begin_write().await?;
        let at = now();
        let candidate: Option<(DbId,)> = sqlx::query_as(&format!(
            "SELECT id FROM optimizations WHERE status = 'queued' \
             OR (status = 'running' AND lease_until < $1) \
             ORDER BY created_at, id LIMIT 1 {}",
            B::SKIP_LOCKED
        ))
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id,)) = candidate else {
            return Ok(None);
        };
        let row: OptimizationRow = sqlx::query_as(&format!(
            "UPDATE optimizations SET status = 'running', claimed_by = $2, lease_until = $3, \
             started_at = COALESCE(started_at, $4) WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(instance)
        .bind(lease_end(lease))
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(row.try_into()?))
    }

    async fn renew_optimization_lease(
        &self,
        id: Uuid,
        instance: &str,
        lease: Duration,
    ) -> Result<bool> {
        let renewed: Option<(DbId,)> = sqlx::query_as(
            "UPDATE optimizations SET lease_until = $3 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'running' RETURNING id",
        )
        .bind(DbId(id))
        .bind(instance)
        .bind(lease_end(lease))
        .fetch_optional(self.pool())
        .await?;
        Ok(renewed.is_some())
    }

    async fn checkpoint_optimization(
        &self,
        id: Uuid,
        instance: &str,
        state: &Value,
        answers: &[CachedAnswer],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let held: Option<(DbId,)> = sqlx::query_as(
            "UPDATE optimizations SET state = $3 \
             WHERE id = $1 AND claimed_by = $2 AND status = 'running' RETURNING id",
        )
        .bind(DbId(id))
        .bind(instance)
        .bind(Json(state))
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(false);
        }
        for answer in answers {
            sqlx::query(
                "INSERT INTO model_answer_cache (key, model, answer, prompt_tokens, \
                 completion_tokens, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(answer.key.as_str())
            .bind(answer.model.as_str())
            .bind(answer.answer.as_str())
            .bind(answer.prompt_tokens)
            .bind(answer.completion_tokens)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn cancel_optimization(&self, id: Uuid) -> Result<Optimization> {
        let mut tx = self.begin_write().await?;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM optimizations WHERE id = $1")
                .bind(DbId(id))
                .fetch_optional(&mut *tx)
                .await?;
        match status.as_deref() {
            None => return Err(Missing::Optimization(id).into()),
            Some("queued") => {
                sqlx::query(
                    "UPDATE optimizations SET status = 'cancelled', cancel_requested = TRUE, \
                     finished_at = $2 WHERE id = $1",
                )
                .bind(DbId(id))
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
            Some("running") => {
                sqlx::query("UPDATE optimizations SET cancel_requested = TRUE WHERE id = $1")
                    .bind(DbId(id))
                    .execute(&mut *tx)
                    .await?;
            }
            Some(_) => {}
        }
        tx.commit().await?;
        self.get_optimization(id).await
    }

    async fn finish_optimization(
        &self,
        id: Uuid,
        instance: &str,
        end: OptimizationEnd,
    ) -> Result<Option<(Optimization, Option<PromptVersion>)>> {
        let mut tx = self.begin_write().await?;
        // The prompt's lock first, as every version writer takes it, then the claim.
        let prompt: Option<String> =
            sqlx::query_scalar("SELECT prompt_id FROM optimizations WHERE id = $1")
                .bind(DbId(id))
                .fetch_optional(&mut *tx)
                .await?;
        let Some(prompt) = prompt else {
            return Err(Missing::Optimization(id).into());
        };
        ensure_prompt(&mut tx, &prompt, B::ROW_LOCK).await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT start_version FROM optimizations \
             WHERE id = $1 AND claimed_by = $2 AND status = 'running'",
        )
        .bind(DbId(id))
        .bind(instance)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((start_version,)) = row else {
            return Ok(None);
        };
        let mut created = None;
        if let Some((content, notes)) = &end.winner {
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE prompt_id = $1",
            )
            .bind(prompt.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let version = PromptVersion {
                id: Uuid::now_v7(),
                prompt_id: prompt.clone(),
                version: number,
                content: content.clone(),
                created_at: now(),
                is_active: false,
                source: VersionSource::Optimizer,
                parent_version: Some(start_version),
                notes: Some(notes.clone()),
                created_by: Some("optimizer".to_owned()),
                tasks_executed: 0,
                success_rate: None,
                avg_tokens: None,
            };
            sqlx::query(
                "INSERT INTO prompt_versions (id, prompt_id, version, content, created_at, \
                 is_active, source, parent_version, notes, created_by) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, $6, $7, $8, $9)",
            )
            .bind(DbId(version.id))
            .bind(version.prompt_id.as_str())
            .bind(version.version)
            .bind(version.content.as_str())
            .bind(version.created_at)
            .bind(version.source.as_str())
            .bind(version.parent_version)
            .bind(version.notes.as_deref())
            .bind(version.created_by.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|e| B::conflict("prompt_versions_prompt_id_version_key", e))?;
            created = Some(version);
        }
        let row: OptimizationRow = sqlx::query_as(&format!(
            "UPDATE optimizations SET status = $2, state = COALESCE($3, state), report = $4, \
             error = $5, created_version = $6, finished_at = $7, claimed_by = NULL, \
             lease_until = NULL WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(DbId(id))
        .bind(end.status.as_str())
        .bind(end.state.as_ref().map(Json))
        .bind(end.report.as_ref().map(Json))
        .bind(end.error.as_deref())
        .bind(created.as_ref().map(|v| v.version))
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((row.try_into()?, created)))
    }
}
