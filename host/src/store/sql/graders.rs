//! The grader-definition domain's SQL, once for both backends: its row struct, queries and
//! [`GraderStore`], implemented for every [`Backend`]. Writes need no lock beyond the
//! transaction: `INSERT … ON CONFLICT (prompt_id, name)` is atomic against a concurrent insert of
//! the same name on both backends, and only a new row takes the id the statement binds, which
//! tells created from replaced.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Backend, DbId, ensure_prompt};
use crate::store::graders::check_grader_json;
use crate::store::{
    GraderDefinition, GraderStore, Missing, NewGraderDefinition, PutOutcome, Result, now,
};

const GRADER_COLUMNS: &str =
    "id, prompt_id, name, definition, enabled, created_by, created_at, updated_at";

#[derive(FromRow)]
struct GraderRow {
    id: DbId,
    prompt_id: String,
    name: String,
    definition: Json<serde_json::Value>,
    enabled: bool,
    created_by: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<GraderRow> for GraderDefinition {
    fn from(row: GraderRow) -> Self {
        GraderDefinition {
            id: row.id.0,
            prompt_id: row.prompt_id,
            name: row.name,
            definition: row.definition.0,
            enabled: row.enabled,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[async_trait]
impl<B> GraderStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q serde_json::Value>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> GraderRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn put_grader(&self, new: NewGraderDefinition) -> Result<(GraderDefinition, PutOutcome)> {
        check_grader_json(&new)?;
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, "").await?;
        let id = Uuid::now_v7();
        // The id and created_at of an existing row are kept.
        let row: GraderRow = sqlx::query_as(&format!(
            "INSERT INTO graders ({GRADER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (prompt_id, name) DO UPDATE SET definition = excluded.definition, \
             enabled = excluded.enabled, updated_at = excluded.updated_at \
             RETURNING {GRADER_COLUMNS}"
        ))
        .bind(DbId(id))
        .bind(new.prompt_id.as_str())
        .bind(new.name.as_str())
        .bind(Json(&new.definition))
        .bind(new.enabled)
        .bind(new.created_by.as_deref())
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| B::conflict("graders_name_nonempty", e))?;
        tx.commit().await?;
        let stored = GraderDefinition::from(row);
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
            check_grader_json(seed)?;
            ensure_prompt(&mut tx, &seed.prompt_id, "").await?;
            // DO NOTHING waits for a concurrent seeder's insert, then skips it: instances
            // starting together seed each definition once.
            let inserted: Option<String> = sqlx::query_scalar(&format!(
                "INSERT INTO graders ({GRADER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (prompt_id, name) DO NOTHING RETURNING name"
            ))
            .bind(DbId(Uuid::now_v7()))
            .bind(seed.prompt_id.as_str())
            .bind(seed.name.as_str())
            .bind(Json(&seed.definition))
            .bind(seed.enabled)
            .bind(seed.created_by.as_deref())
            .bind(now())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| B::conflict("graders_name_nonempty", e))?;
            written += usize::from(inserted.is_some());
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn list_graders(&self, prompt_id: Option<&str>) -> Result<Vec<GraderDefinition>> {
        let mut tx = self.begin_snapshot().await?;
        let rows: Vec<GraderRow> = match prompt_id {
            Some(prompt_id) => {
                ensure_prompt(&mut tx, prompt_id, "").await?;
                sqlx::query_as(&format!(
                    "SELECT {GRADER_COLUMNS} FROM graders WHERE prompt_id = $1 ORDER BY name"
                ))
                .bind(prompt_id)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {GRADER_COLUMNS} FROM graders ORDER BY prompt_id, name"
                ))
                .fetch_all(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        Ok(rows.into_iter().map(GraderDefinition::from).collect())
    }

    async fn get_grader(&self, prompt_id: &str, name: &str) -> Result<GraderDefinition> {
        let row: Option<GraderRow> = sqlx::query_as(&format!(
            "SELECT {GRADER_COLUMNS} FROM graders WHERE prompt_id = $1 AND name = $2"
        ))
        .bind(prompt_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.map(GraderDefinition::from)
            .ok_or_else(|| Missing::grader_definition(prompt_id, name).into())
    }

    async fn delete_grader(&self, prompt_id: &str, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted: Option<String> = sqlx::query_scalar(
            "DELETE FROM graders WHERE prompt_id = $1 AND name = $2 RETURNING name",
        )
        .bind(prompt_id)
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if deleted.is_none() {
            return Err(Missing::grader_definition(prompt_id, name).into());
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
        let row: Option<GraderRow> = sqlx::query_as(&format!(
            "UPDATE graders SET enabled = $3, updated_at = $4 WHERE prompt_id = $1 AND name = $2 \
             RETURNING {GRADER_COLUMNS}"
        ))
        .bind(prompt_id)
        .bind(name)
        .bind(enabled)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or_else(|| Missing::grader_definition(prompt_id, name))?;
        tx.commit().await?;
        Ok(row.into())
    }
}
