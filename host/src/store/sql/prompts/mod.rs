//! The prompt domain's SQL, once for both backends: queries and the flows of [`PromptStore`]
//! (seed, create, deploy, rollback), implemented for every [`Backend`]; the row structs are in
//! `rows.rs`.
//!
//! A write that depends on what is there (create, deploy, roll back) first makes itself the
//! prompt's only writer (`begin_write`, then the prompt's row read with [`Backend::ROW_LOCK`]):
//! within that, "max + 1" and "deactivate, then activate" need no further care.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Transaction, Type};
use uuid::Uuid;

mod rows;

use self::rows::{FailureModeRow, HistoryRow, PromptRow, VersionRow, parse_action};
use super::{Backend, DbId, ensure_prompt};
use crate::store::rollback::rollback_target;
use crate::store::{
    DeployAction, DeployRecord, FailureMode, Missing, NewVersion, Prompt, PromptSeed, PromptStore,
    PromptVersion, PromptWithVersions, Result, SEED_ACTOR, StoreError, VersionSource, now,
};

/// `create_version` retries a version-number clash this many times. Under the prompt's write
/// lock a clash cannot happen; the retry guards against a writer that does not take it.
const CREATE_VERSION_ATTEMPTS: usize = 5;

const PROMPT_COLUMNS: &str = "id, description, variables, created_at";
const VERSION_COLUMNS: &str = "id, prompt_id, version, content, created_at, is_active, source, \
     parent_version, notes, created_by, tasks_executed, success_rate, avg_tokens";
const HISTORY_COLUMNS: &str = "id, prompt_id, from_version, to_version, action, actor, created_at";

#[async_trait]
impl<B> PromptStore for B
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
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (Option<i64>, String): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> PromptRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> VersionRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> HistoryRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> FailureModeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_prompt(&self, prompt: &PromptSeed, actor: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let at = now();
        // No ON CONFLICT: an existing id is the caller's conflict, not something to skip.
        sqlx::query(
            "INSERT INTO prompts (id, description, variables, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(prompt.prompt.id.as_str())
        .bind(prompt.prompt.description.as_str())
        .bind(Json(prompt.prompt.variables.as_slice()))
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(|e| B::conflict("prompts_pkey", e))?;
        write_first_version::<B>(&mut tx, prompt, VersionSource::Manual, actor, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn seed(&self, seeds: &[PromptSeed]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for seed in seeds {
            let at = now();
            // ON CONFLICT DO NOTHING waits for a concurrent seeder's insert to commit, then
            // skips: instances starting together seed each prompt once.
            let inserted = sqlx::query_scalar::<_, String>(
                "INSERT INTO prompts (id, description, variables, created_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .bind(seed.prompt.id.as_str())
            .bind(seed.prompt.description.as_str())
            .bind(Json(seed.prompt.variables.as_slice()))
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| B::conflict("prompts_id_format", e))?;
            if inserted.is_none() {
                continue;
            }
            write_first_version::<B>(&mut tx, seed, VersionSource::Seed, SEED_ACTOR, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_prompts(&self) -> Result<Vec<PromptWithVersions>> {
        // One snapshot: prompts and versions agree.
        let mut tx = self.begin_snapshot().await?;
        let prompts: Vec<PromptRow> =
            sqlx::query_as(&format!("SELECT {PROMPT_COLUMNS} FROM prompts ORDER BY id"))
                .fetch_all(&mut *tx)
                .await?;
        let versions: Vec<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions ORDER BY prompt_id, version"
        ))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut by_prompt: HashMap<String, Vec<PromptVersion>> = HashMap::new();
        for row in versions {
            let version = PromptVersion::try_from(row)?;
            by_prompt
                .entry(version.prompt_id.clone())
                .or_default()
                .push(version);
        }
        Ok(prompts
            .into_iter()
            .map(|row| {
                let prompt = Prompt::from(row);
                let versions = by_prompt.remove(&prompt.id).unwrap_or_default();
                let active_version = versions.iter().find(|v| v.is_active).map(|v| v.version);
                PromptWithVersions {
                    prompt,
                    active_version,
                    versions,
                }
            })
            .collect())
    }

    async fn get_prompt(&self, prompt_id: &str) -> Result<Prompt> {
        let row: Option<PromptRow> = sqlx::query_as(&format!(
            "SELECT {PROMPT_COLUMNS} FROM prompts WHERE id = $1"
        ))
        .bind(prompt_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(Prompt::from)
            .ok_or_else(|| Missing::prompt(prompt_id).into())
    }

    async fn list_versions(&self, prompt_id: &str) -> Result<Vec<PromptVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = $1 ORDER BY version"
        ))
        .bind(prompt_id)
        .fetch_all(self.pool())
        .await?;
        if rows.is_empty() {
            // Every prompt has at least its seed version, but a prompt without versions is
            // still a prompt: only an unknown id is NotFound. Prompts are never deleted, so a
            // non-empty answer needs no check.
            self.get_prompt(prompt_id).await?;
        }
        rows.into_iter().map(PromptVersion::try_from).collect()
    }

    async fn get_version(&self, prompt_id: &str, version: i64) -> Result<PromptVersion> {
        let row: Option<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = $1 AND version = $2"
        ))
        .bind(prompt_id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => row.try_into(),
            None => {
                self.get_prompt(prompt_id).await?;
                Err(Missing::version(prompt_id, version).into())
            }
        }
    }

    async fn active_version(&self, prompt_id: &str) -> Result<PromptVersion> {
        let row: Option<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = $1 AND is_active = TRUE"
        ))
        .bind(prompt_id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => row.try_into(),
            None => {
                self.get_prompt(prompt_id).await?;
                Err(Missing::active_version(prompt_id).into())
            }
        }
    }

    async fn create_version(&self, new: NewVersion) -> Result<PromptVersion> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.begin_write().await?;
            ensure_prompt(&mut tx, &new.prompt_id, B::ROW_LOCK).await?;
            if let Some(parent) = new.parent_version {
                version_exists::<B::Db>(&mut tx, &new.prompt_id, parent).await?;
            }
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE prompt_id = $1",
            )
            .bind(new.prompt_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            let version = PromptVersion {
                id: Uuid::now_v7(),
                prompt_id: new.prompt_id.clone(),
                version: number,
                content: new.content.clone(),
                created_at: now(),
                is_active: false,
                source: new.source,
                parent_version: new.parent_version,
                notes: new.notes.clone(),
                created_by: new.created_by.clone(),
                tasks_executed: 0,
                success_rate: None,
                avg_tokens: None,
            };
            let inserted = sqlx::query(
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
            .map_err(|e| B::conflict("prompt_versions_prompt_id_version_key", e));
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(version);
                }
                Err(StoreError::Conflict { constraint })
                    if constraint == "prompt_versions_prompt_id_version_key"
                        && attempt < CREATE_VERSION_ATTEMPTS =>
                {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn deploy(&self, prompt_id: &str, version: i64, actor: &str) -> Result<DeployRecord> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, prompt_id, B::ROW_LOCK).await?;
        version_exists::<B::Db>(&mut tx, prompt_id, version).await?;
        let current = active_number::<B::Db>(&mut tx, prompt_id).await?;
        if current == Some(version) {
            // Already active: succeed without a history entry, answering with the entry that
            // made it active (absent only if the row was activated outside the store).
            let row: Option<HistoryRow> = sqlx::query_as(&format!(
                "SELECT {HISTORY_COLUMNS} FROM deploy_history \
                 WHERE prompt_id = $1 AND to_version = $2 ORDER BY seq DESC LIMIT 1"
            ))
            .bind(prompt_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            return match row {
                Some(row) => row.try_into(),
                None => Err(StoreError::InvalidState(format!(
                    "version {version} of prompt {prompt_id} is active but has no deploy history"
                ))),
            };
        }
        let record = switch_active::<B>(
            &mut tx,
            prompt_id,
            current,
            version,
            DeployAction::Deploy,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn rollback(&self, prompt_id: &str, actor: &str) -> Result<DeployRecord> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, prompt_id, B::ROW_LOCK).await?;
        let current = active_number::<B::Db>(&mut tx, prompt_id)
            .await?
            .ok_or_else(|| {
                StoreError::InvalidState(format!(
                    "prompt {prompt_id} has no active version to roll back"
                ))
            })?;
        let history: Vec<(Option<i64>, String)> = sqlx::query_as(
            "SELECT from_version, action FROM deploy_history WHERE prompt_id = $1 ORDER BY seq",
        )
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        let steps = history
            .iter()
            .map(|(from, action)| Ok((*from, parse_action(action)?)))
            .collect::<Result<Vec<_>>>()?;
        let target = rollback_target(steps)
            .filter(|target| *target != current)
            .ok_or_else(|| {
                StoreError::InvalidState(format!(
                    "prompt {prompt_id} has no earlier deployed version to roll back to"
                ))
            })?;
        let record = switch_active::<B>(
            &mut tx,
            prompt_id,
            Some(current),
            target,
            DeployAction::Rollback,
            actor,
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn deploy_history(&self, prompt_id: &str) -> Result<Vec<DeployRecord>> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        let rows: Vec<HistoryRow> = sqlx::query_as(&format!(
            "SELECT {HISTORY_COLUMNS} FROM deploy_history WHERE prompt_id = $1 ORDER BY seq"
        ))
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.into_iter().map(DeployRecord::try_from).collect()
    }

    async fn failure_modes(&self, prompt_id: &str) -> Result<Vec<FailureMode>> {
        let mut tx = self.begin_snapshot().await?;
        ensure_prompt(&mut tx, prompt_id, "").await?;
        let rows: Vec<FailureModeRow> = sqlx::query_as(
            "SELECT prompt_id, code, description FROM failure_modes \
             WHERE prompt_id = $1 ORDER BY code",
        )
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(FailureMode::from).collect())
    }
}

/// `NotFound` unless `version` of `prompt_id` exists.
async fn version_exists<DB>(
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
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    sqlx::query_scalar::<_, i64>(
        "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND version = $2",
    )
    .bind(prompt_id)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await?
    .map(|_| ())
    .ok_or_else(|| Missing::version(prompt_id, version).into())
}

/// The active version's number, if any.
pub(in crate::store::sql) async fn active_number<DB>(
    tx: &mut Transaction<'static, DB>,
    prompt_id: &str,
) -> Result<Option<i64>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): FromRow<'r, DB::Row>,
{
    Ok(sqlx::query_scalar(
        "SELECT version FROM prompt_versions WHERE prompt_id = $1 AND is_active = TRUE",
    )
    .bind(prompt_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// The rest of a new prompt once its row is written: version 1 with its failure modes,
/// activated like any deploy (so its history entry is written by the same code). Shared by
/// seeding and `POST /api/prompts`.
async fn write_first_version<B>(
    tx: &mut Transaction<'static, B::Db>,
    prompt: &PromptSeed,
    source: VersionSource,
    actor: &str,
    at: DateTime<Utc>,
) -> Result<()>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
{
    sqlx::query(
        "INSERT INTO prompt_versions \
         (id, prompt_id, version, content, created_at, is_active, source, created_by) \
         VALUES ($1, $2, 1, $3, $4, FALSE, $5, $6)",
    )
    .bind(DbId(Uuid::now_v7()))
    .bind(prompt.prompt.id.as_str())
    .bind(prompt.content.as_str())
    .bind(at)
    .bind(source.as_str())
    .bind(actor)
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("prompt_versions_prompt_id_version_key", e))?;
    for mode in &prompt.failure_modes {
        sqlx::query(
            "INSERT INTO failure_modes (prompt_id, code, description, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(prompt.prompt.id.as_str())
        .bind(mode.code.as_str())
        .bind(mode.description.as_str())
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(|e| B::conflict("failure_modes_pkey", e))?;
    }
    switch_active::<B>(tx, &prompt.prompt.id, None, 1, DeployAction::Deploy, actor).await?;
    Ok(())
}

/// Moves the active flag to `to` and records the change in the deploy history; the caller holds
/// the prompt's lock.
pub(in crate::store::sql) async fn switch_active<B>(
    tx: &mut Transaction<'static, B::Db>,
    prompt_id: &str,
    from: Option<i64>,
    to: i64,
    action: DeployAction,
    actor: &str,
) -> Result<DeployRecord>
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
{
    // Two statements, deactivate first: the partial unique index is checked per row, so a
    // single UPDATE flipping both rows could see two active versions midway.
    sqlx::query(
        "UPDATE prompt_versions SET is_active = FALSE WHERE prompt_id = $1 AND is_active = TRUE",
    )
    .bind(prompt_id)
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("one_active_version_per_prompt", e))?;
    sqlx::query(
        "UPDATE prompt_versions SET is_active = TRUE WHERE prompt_id = $1 AND version = $2",
    )
    .bind(prompt_id)
    .bind(to)
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("one_active_version_per_prompt", e))?;
    let record = DeployRecord {
        id: Uuid::now_v7(),
        prompt_id: prompt_id.to_owned(),
        from_version: from,
        to_version: to,
        action,
        actor: actor.to_owned(),
        created_at: now(),
    };
    sqlx::query(
        "INSERT INTO deploy_history \
         (id, prompt_id, from_version, to_version, action, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(DbId(record.id))
    .bind(record.prompt_id.as_str())
    .bind(record.from_version)
    .bind(record.to_version)
    .bind(record.action.as_str())
    .bind(record.actor.as_str())
    .bind(record.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| B::conflict("deploy_history_to_fkey", e))?;
    Ok(record)
}
