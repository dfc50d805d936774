//! The SQLite backend: the embedded default, one file in WAL mode with foreign keys on.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock before reading,
//! so two writers queue on the busy timeout instead of both reading, then failing to upgrade
//! (which SQLite reports as `SQLITE_BUSY` without waiting). Within such a transaction nothing can
//! change underneath, so "max + 1" and "deactivate, then activate" need no further locking.
//!
//! SQLite does not report which constraint failed, so violations are mapped by error kind plus
//! the statement being run (see `conflict_on`).

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::error::ErrorKind;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::rollback::rollback_target;
use super::{
    DeployAction, DeployRecord, FailureMode, GraderDefinition, NewGraderDefinition, NewVersion,
    Prompt, PromptSeed, PromptVersion, PromptWithVersions, PutOutcome, Result, SEED_ACTOR, Store,
    StoreError, VersionSource, now,
};

/// How long a writer waits for the write lock before giving up. Write transactions are a few
/// statements long, so even 50 queued deploys clear well within it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Readers run in parallel under WAL; a handful of connections covers two cores.
const MAX_CONNECTIONS: u32 = 8;
/// `create_version` retries a version-number clash this many times. Under `BEGIN IMMEDIATE` a
/// clash cannot happen; the retry guards against a writer that does not use it.
const CREATE_VERSION_ATTEMPTS: usize = 5;

const VERSION_COLUMNS: &str = "id, prompt_id, version, content, created_at, is_active, source, \
     parent_version, notes, created_by, tasks_executed, success_rate, avg_tokens";
const HISTORY_COLUMNS: &str = "id, prompt_id, from_version, to_version, action, actor, created_at";
const GRADER_COLUMNS: &str =
    "id, prompt_id, name, definition, enabled, created_by, created_at, updated_at";

/// A [`Store`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing, along with its directory) the database at `url`
    /// (`sqlite://path/to/file.db`, `sqlite:file.db` or `sqlite::memory:`). Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // Every connection to `:memory:` is its own database: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
                && !dir.exists()
            {
                create_dir(dir)?;
            }
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL is durable across application crashes in WAL mode; only a power loss
                // may drop the last transactions.
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .connect_with(options)
                .await?
        };
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for code that extends the store.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))
}

/// Maps a constraint violation to [`StoreError::Conflict`] naming `constraint`, the one the
/// statement being run can violate; other errors pass through. SQLite reports only the kind.
fn conflict_on(constraint: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db)
            if matches!(
                db.kind(),
                ErrorKind::UniqueViolation
                    | ErrorKind::ForeignKeyViolation
                    | ErrorKind::CheckViolation
            ) =>
        {
            StoreError::Conflict {
                constraint: constraint.to_owned(),
            }
        }
        _ => StoreError::Database(error),
    }
}

fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::decode(format!("bad uuid {text:?}: {e}")))
}

fn version_from_row(row: &SqliteRow) -> Result<PromptVersion> {
    let source: String = row.try_get("source")?;
    Ok(PromptVersion {
        id: parse_uuid(row.try_get("id")?)?,
        prompt_id: row.try_get("prompt_id")?,
        version: row.try_get("version")?,
        content: row.try_get("content")?,
        created_at: row.try_get("created_at")?,
        is_active: row.try_get("is_active")?,
        source: VersionSource::parse(&source)
            .ok_or_else(|| StoreError::decode(format!("unknown version source {source:?}")))?,
        parent_version: row.try_get("parent_version")?,
        notes: row.try_get("notes")?,
        created_by: row.try_get("created_by")?,
        tasks_executed: row.try_get("tasks_executed")?,
        success_rate: row.try_get("success_rate")?,
        avg_tokens: row.try_get("avg_tokens")?,
    })
}

fn history_from_row(row: &SqliteRow) -> Result<DeployRecord> {
    let action: String = row.try_get("action")?;
    Ok(DeployRecord {
        id: parse_uuid(row.try_get("id")?)?,
        prompt_id: row.try_get("prompt_id")?,
        from_version: row.try_get("from_version")?,
        to_version: row.try_get("to_version")?,
        action: DeployAction::parse(&action)
            .ok_or_else(|| StoreError::decode(format!("unknown deploy action {action:?}")))?,
        actor: row.try_get("actor")?,
        created_at: row.try_get("created_at")?,
    })
}

fn prompt_from_row(row: &SqliteRow) -> Result<Prompt> {
    let Json(variables): Json<Vec<String>> = row.try_get("variables")?;
    Ok(Prompt {
        id: row.try_get("id")?,
        description: row.try_get("description")?,
        variables,
        created_at: row.try_get("created_at")?,
    })
}

fn grader_from_row(row: &SqliteRow) -> Result<GraderDefinition> {
    let Json(definition): Json<serde_json::Value> = row.try_get("definition")?;
    Ok(GraderDefinition {
        id: parse_uuid(row.try_get("id")?)?,
        prompt_id: row.try_get("prompt_id")?,
        name: row.try_get("name")?,
        definition,
        enabled: row.try_get("enabled")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn grader_not_found(prompt_id: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("grader {name} of prompt {prompt_id}"))
}

fn prompt_not_found(prompt_id: &str) -> StoreError {
    StoreError::NotFound(format!("prompt {prompt_id}"))
}

fn version_not_found(prompt_id: &str, version: i64) -> StoreError {
    StoreError::NotFound(format!("version {version} of prompt {prompt_id}"))
}

async fn ensure_prompt(tx: &mut Transaction<'static, Sqlite>, prompt_id: &str) -> Result<()> {
    sqlx::query("SELECT 1 FROM prompts WHERE id = ?1")
        .bind(prompt_id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|_| ())
        .ok_or_else(|| prompt_not_found(prompt_id))
}

async fn active_number(
    tx: &mut Transaction<'static, Sqlite>,
    prompt_id: &str,
) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT version FROM prompt_versions WHERE prompt_id = ?1 AND is_active = 1",
    )
    .bind(prompt_id)
    .fetch_optional(&mut **tx)
    .await?)
}

/// Moves the active flag to `to` and records the change; the caller holds the write lock.
async fn switch_active(
    tx: &mut Transaction<'static, Sqlite>,
    prompt_id: &str,
    from: Option<i64>,
    to: i64,
    action: DeployAction,
    actor: &str,
) -> Result<DeployRecord> {
    // Two statements, deactivate first: the partial unique index is checked per row, so a single
    // UPDATE flipping both rows could see two active versions midway.
    sqlx::query("UPDATE prompt_versions SET is_active = 0 WHERE prompt_id = ?1 AND is_active = 1")
        .bind(prompt_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE prompt_versions SET is_active = 1 WHERE prompt_id = ?1 AND version = ?2")
        .bind(prompt_id)
        .bind(to)
        .execute(&mut **tx)
        .await
        .map_err(conflict_on("one_active_version_per_prompt"))?;
    insert_history(tx, prompt_id, from, to, action, actor).await
}

async fn insert_history(
    tx: &mut Transaction<'static, Sqlite>,
    prompt_id: &str,
    from: Option<i64>,
    to: i64,
    action: DeployAction,
    actor: &str,
) -> Result<DeployRecord> {
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
        "INSERT INTO deploy_history (id, prompt_id, from_version, to_version, action, actor, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(record.id.to_string())
    .bind(&record.prompt_id)
    .bind(record.from_version)
    .bind(record.to_version)
    .bind(record.action.as_str())
    .bind(&record.actor)
    .bind(record.created_at)
    .execute(&mut **tx)
    .await
    .map_err(conflict_on("deploy_history_to_fkey"))?;
    Ok(record)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("../migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn seed(&self, seeds: &[PromptSeed]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for seed in seeds {
            let at = now();
            let inserted = sqlx::query(
                "INSERT INTO prompts (id, description, variables, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(&seed.prompt.id)
            .bind(&seed.prompt.description)
            .bind(Json(&seed.prompt.variables))
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on("prompts_id_format"))?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            sqlx::query(
                "INSERT INTO prompt_versions (id, prompt_id, version, content, created_at, is_active, source, created_by) \
                 VALUES (?1, ?2, 1, ?3, ?4, 1, ?5, ?6)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(&seed.prompt.id)
            .bind(&seed.content)
            .bind(at)
            .bind(VersionSource::Seed.as_str())
            .bind(SEED_ACTOR)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on("prompt_versions_prompt_id_version_key"))?;
            for mode in &seed.failure_modes {
                sqlx::query(
                    "INSERT INTO failure_modes (prompt_id, code, description, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .bind(&seed.prompt.id)
                .bind(&mode.code)
                .bind(&mode.description)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(conflict_on("failure_modes_pkey"))?;
            }
            insert_history(
                &mut tx,
                &seed.prompt.id,
                None,
                1,
                DeployAction::Deploy,
                SEED_ACTOR,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_prompts(&self) -> Result<Vec<PromptWithVersions>> {
        let prompts =
            sqlx::query("SELECT id, description, variables, created_at FROM prompts ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        let versions = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions ORDER BY prompt_id, version"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut by_prompt: HashMap<String, Vec<PromptVersion>> = HashMap::new();
        for row in &versions {
            let version = version_from_row(row)?;
            by_prompt
                .entry(version.prompt_id.clone())
                .or_default()
                .push(version);
        }
        prompts
            .iter()
            .map(|row| {
                let prompt = prompt_from_row(row)?;
                let versions = by_prompt.remove(&prompt.id).unwrap_or_default();
                let active_version = versions.iter().find(|v| v.is_active).map(|v| v.version);
                Ok(PromptWithVersions {
                    prompt,
                    active_version,
                    versions,
                })
            })
            .collect()
    }

    async fn get_prompt(&self, prompt_id: &str) -> Result<Prompt> {
        let row =
            sqlx::query("SELECT id, description, variables, created_at FROM prompts WHERE id = ?1")
                .bind(prompt_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| prompt_not_found(prompt_id))?;
        prompt_from_row(&row)
    }

    async fn list_versions(&self, prompt_id: &str) -> Result<Vec<PromptVersion>> {
        // One read transaction so the existence check and the list see the same snapshot.
        let mut tx = self.pool.begin().await?;
        ensure_prompt(&mut tx, prompt_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ?1 ORDER BY version"
        ))
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(version_from_row).collect()
    }

    async fn get_version(&self, prompt_id: &str, version: i64) -> Result<PromptVersion> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ?1 AND version = ?2"
        ))
        .bind(prompt_id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => version_from_row(&row),
            None => {
                self.get_prompt(prompt_id).await?;
                Err(version_not_found(prompt_id, version))
            }
        }
    }

    async fn active_version(&self, prompt_id: &str) -> Result<PromptVersion> {
        let row = sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ?1 AND is_active = 1"
        ))
        .bind(prompt_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => version_from_row(&row),
            None => {
                self.get_prompt(prompt_id).await?;
                Err(StoreError::NotFound(format!(
                    "active version of prompt {prompt_id}"
                )))
            }
        }
    }

    async fn create_version(&self, new: NewVersion) -> Result<PromptVersion> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.begin_write().await?;
            ensure_prompt(&mut tx, &new.prompt_id).await?;
            if let Some(parent) = new.parent_version {
                sqlx::query("SELECT 1 FROM prompt_versions WHERE prompt_id = ?1 AND version = ?2")
                    .bind(&new.prompt_id)
                    .bind(parent)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| version_not_found(&new.prompt_id, parent))?;
            }
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions WHERE prompt_id = ?1",
            )
            .bind(&new.prompt_id)
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
                "INSERT INTO prompt_versions \
                 (id, prompt_id, version, content, created_at, is_active, source, parent_version, notes, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
            )
            .bind(version.id.to_string())
            .bind(&version.prompt_id)
            .bind(version.version)
            .bind(&version.content)
            .bind(version.created_at)
            .bind(version.source.as_str())
            .bind(version.parent_version)
            .bind(&version.notes)
            .bind(&version.created_by)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on("prompt_versions_prompt_id_version_key"));
            match inserted {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(version);
                }
                Err(StoreError::Conflict { .. }) if attempt < CREATE_VERSION_ATTEMPTS => continue,
                Err(error) => return Err(error),
            }
        }
    }

    async fn deploy(&self, prompt_id: &str, version: i64, actor: &str) -> Result<DeployRecord> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, prompt_id).await?;
        sqlx::query("SELECT 1 FROM prompt_versions WHERE prompt_id = ?1 AND version = ?2")
            .bind(prompt_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| version_not_found(prompt_id, version))?;
        let current = active_number(&mut tx, prompt_id).await?;
        if current == Some(version) {
            // Already active: succeed without a history entry, answering with the entry that
            // made it active (absent only if the row was activated outside the store).
            let row = sqlx::query(&format!(
                "SELECT {HISTORY_COLUMNS} FROM deploy_history WHERE prompt_id = ?1 AND to_version = ?2 \
                 ORDER BY seq DESC LIMIT 1"
            ))
            .bind(prompt_id)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            return match row {
                Some(row) => history_from_row(&row),
                None => Err(StoreError::InvalidState(format!(
                    "version {version} of prompt {prompt_id} is active but has no deploy history"
                ))),
            };
        }
        let record = switch_active(
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
        ensure_prompt(&mut tx, prompt_id).await?;
        let current = active_number(&mut tx, prompt_id).await?.ok_or_else(|| {
            StoreError::InvalidState(format!(
                "prompt {prompt_id} has no active version to roll back"
            ))
        })?;
        let history = sqlx::query(
            "SELECT from_version, action FROM deploy_history WHERE prompt_id = ?1 ORDER BY seq",
        )
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        let steps = history
            .iter()
            .map(|row| {
                let action: String = row.try_get("action")?;
                let action = DeployAction::parse(&action).ok_or_else(|| {
                    StoreError::decode(format!("unknown deploy action {action:?}"))
                })?;
                Ok((row.try_get("from_version")?, action))
            })
            .collect::<Result<Vec<_>>>()?;
        let target = rollback_target(steps)
            .filter(|target| *target != current)
            .ok_or_else(|| {
                StoreError::InvalidState(format!(
                    "prompt {prompt_id} has no earlier deployed version to roll back to"
                ))
            })?;
        let record = switch_active(
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
        let mut tx = self.pool.begin().await?;
        ensure_prompt(&mut tx, prompt_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {HISTORY_COLUMNS} FROM deploy_history WHERE prompt_id = ?1 ORDER BY seq"
        ))
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(history_from_row).collect()
    }

    async fn failure_modes(&self, prompt_id: &str) -> Result<Vec<FailureMode>> {
        let mut tx = self.pool.begin().await?;
        ensure_prompt(&mut tx, prompt_id).await?;
        let rows = sqlx::query(
            "SELECT prompt_id, code, description FROM failure_modes WHERE prompt_id = ?1 ORDER BY code",
        )
        .bind(prompt_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(FailureMode {
                    prompt_id: row.try_get("prompt_id")?,
                    code: row.try_get("code")?,
                    description: row.try_get("description")?,
                })
            })
            .collect()
    }

    async fn put_grader(&self, new: NewGraderDefinition) -> Result<(GraderDefinition, PutOutcome)> {
        super::check_grader_json(&new)?;
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id).await?;
        let id = Uuid::now_v7();
        let at = now();
        // The id and created_at of an existing row are kept: only a new row takes `id`, which
        // tells the two cases apart.
        let row = sqlx::query(&format!(
            "INSERT INTO graders ({GRADER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
             ON CONFLICT (prompt_id, name) DO UPDATE SET definition = excluded.definition, \
             enabled = excluded.enabled, updated_at = excluded.updated_at \
             RETURNING {GRADER_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(&new.prompt_id)
        .bind(&new.name)
        .bind(Json(&new.definition))
        .bind(new.enabled)
        .bind(&new.created_by)
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_on("graders_name_nonempty"))?;
        let stored = grader_from_row(&row)?;
        tx.commit().await?;
        let outcome = if stored.id == id {
            PutOutcome::Created
        } else {
            PutOutcome::Replaced
        };
        Ok((stored, outcome))
    }

    async fn seed_graders(&self, seeds: &[NewGraderDefinition]) -> Result<usize> {
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        for seed in seeds {
            super::check_grader_json(seed)?;
            ensure_prompt(&mut tx, &seed.prompt_id).await?;
            let at = now();
            written += sqlx::query(&format!(
                "INSERT INTO graders ({GRADER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) \
                 ON CONFLICT (prompt_id, name) DO NOTHING"
            ))
            .bind(Uuid::now_v7().to_string())
            .bind(&seed.prompt_id)
            .bind(&seed.name)
            .bind(Json(&seed.definition))
            .bind(seed.enabled)
            .bind(&seed.created_by)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(conflict_on("graders_name_nonempty"))?
            .rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn list_graders(&self, prompt_id: Option<&str>) -> Result<Vec<GraderDefinition>> {
        let mut tx = self.pool.begin().await?;
        let rows = match prompt_id {
            Some(prompt_id) => {
                ensure_prompt(&mut tx, prompt_id).await?;
                sqlx::query(&format!(
                    "SELECT {GRADER_COLUMNS} FROM graders WHERE prompt_id = ?1 ORDER BY name"
                ))
                .bind(prompt_id)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {GRADER_COLUMNS} FROM graders ORDER BY prompt_id, name"
                ))
                .fetch_all(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        rows.iter().map(grader_from_row).collect()
    }

    async fn get_grader(&self, prompt_id: &str, name: &str) -> Result<GraderDefinition> {
        let row = sqlx::query(&format!(
            "SELECT {GRADER_COLUMNS} FROM graders WHERE prompt_id = ?1 AND name = ?2"
        ))
        .bind(prompt_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| grader_not_found(prompt_id, name))?;
        grader_from_row(&row)
    }

    async fn delete_grader(&self, prompt_id: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM graders WHERE prompt_id = ?1 AND name = ?2")
            .bind(prompt_id)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Err(grader_not_found(prompt_id, name));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_grader_enabled(
        &self,
        prompt_id: &str,
        name: &str,
        enabled: bool,
    ) -> Result<GraderDefinition> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "UPDATE graders SET enabled = ?3, updated_at = ?4 WHERE prompt_id = ?1 AND name = ?2 \
             RETURNING {GRADER_COLUMNS}"
        ))
        .bind(prompt_id)
        .bind(name)
        .bind(enabled)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| grader_not_found(prompt_id, name))?;
        let stored = grader_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::sqlite_temp;

    #[tokio::test]
    async fn file_databases_use_wal_foreign_keys_and_a_busy_timeout() {
        let (_dir, url) = sqlite_temp();
        let store = SqliteStore::connect(&url).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(timeout, BUSY_TIMEOUT.as_millis() as i64);
    }

    #[tokio::test]
    async fn a_foreign_key_violation_maps_to_a_conflict_on_the_named_constraint() {
        let (_dir, url) = sqlite_temp();
        let store = SqliteStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let error = sqlx::query(
            "INSERT INTO failure_modes (prompt_id, code, description) VALUES ('ghost', 'x', 'y')",
        )
        .execute(store.pool())
        .await
        .map_err(conflict_on("failure_modes_prompt_id_fkey"))
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::Conflict { constraint } if constraint == "failure_modes_prompt_id_fkey"),
            "{error:?}"
        );
    }
}
