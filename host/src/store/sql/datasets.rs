//! The datasets domain's SQL, once for both backends: its row structs, queries and
//! [`DatasetStore`], implemented for every [`Backend`].
//!
//! Writing a version locks the dataset's row ([`Backend::ROW_LOCK`]; SQLite's write transaction
//! holds the whole database), so "max + 1" numbers concurrent versions of one dataset in turn. A
//! new name is inserted with `ON CONFLICT (name) DO NOTHING` first: two writers creating the same
//! dataset at once end with one dataset and two versions. Rows go in as multi-row `INSERT`s of
//! [`ROWS_PER_INSERT`], so a version of tens of thousands of rows is a few hundred statements.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use super::{Backend, DbId, ensure_prompt, values_list};
use crate::store::{
    Dataset, DatasetRow, DatasetSource, DatasetStore, DatasetVersion, Missing, NewDatasetVersion,
    Result, RowQuery, Split, StoreError, now,
};

/// Rows per `INSERT` statement: 7 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS_PER_INSERT: usize = 200;

const VERSION_COLUMNS: &str = "d.name, d.prompt_id, v.version, v.source, v.filter, \
     v.validation_fraction, v.row_count, v.validation_count, v.created_at, v.created_by";

const ROW_COLUMNS: &str = "id, row_index, item, sample, split, run_id";

#[derive(FromRow)]
pub(crate) struct VersionRow {
    name: String,
    prompt_id: String,
    version: i64,
    source: String,
    filter: Option<Json<serde_json::Value>>,
    validation_fraction: f64,
    row_count: i64,
    validation_count: i64,
    created_at: DateTime<Utc>,
    created_by: Option<String>,
}

impl TryFrom<VersionRow> for DatasetVersion {
    type Error = StoreError;

    fn try_from(row: VersionRow) -> Result<Self> {
        let source = DatasetSource::parse(&row.source)
            .ok_or_else(|| StoreError::decode(format!("dataset source {:?}", row.source)))?;
        Ok(DatasetVersion {
            name: row.name,
            prompt_id: row.prompt_id,
            version: row.version,
            source,
            filter: row.filter.map(|f| f.0),
            validation_fraction: row.validation_fraction,
            row_count: row.row_count,
            train_count: row.row_count - row.validation_count,
            validation_count: row.validation_count,
            created_at: row.created_at,
            created_by: row.created_by,
        })
    }
}

#[derive(FromRow)]
pub(crate) struct DatasetHead {
    id: DbId,
    name: String,
    prompt_id: String,
    created_at: DateTime<Utc>,
    created_by: Option<String>,
}

#[derive(FromRow)]
pub(crate) struct StoredRow {
    id: DbId,
    row_index: i64,
    item: Json<serde_json::Map<String, serde_json::Value>>,
    sample: Option<Json<serde_json::Map<String, serde_json::Value>>>,
    split: String,
    run_id: Option<DbId>,
}

impl TryFrom<StoredRow> for DatasetRow {
    type Error = StoreError;

    fn try_from(row: StoredRow) -> Result<Self> {
        let split = Split::parse(&row.split)
            .ok_or_else(|| StoreError::decode(format!("dataset split {:?}", row.split)))?;
        Ok(DatasetRow {
            id: row.id.0,
            index: row.row_index,
            item: row.item.0,
            sample: row.sample.map(|s| s.0),
            split,
            run_id: row.run_id.map(|r| r.0),
        })
    }
}

#[async_trait]
impl<B> DatasetStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DbId>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q serde_json::Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q serde_json::Map<String, serde_json::Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q serde_json::Map<String, serde_json::Value>>>:
        Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> DatasetHead: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> VersionRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> StoredRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_dataset_version(&self, new: &NewDatasetVersion) -> Result<DatasetVersion> {
        let mut tx = self.begin_write().await?;
        ensure_prompt(&mut tx, &new.prompt_id, "").await?;
        let at = now();
        sqlx::query(
            "INSERT INTO datasets (id, name, prompt_id, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(DbId(Uuid::now_v7()))
        .bind(new.name.as_str())
        .bind(new.prompt_id.as_str())
        .bind(at)
        .bind(new.created_by.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(|e| B::conflict("datasets_name_format", e))?;
        let head: DatasetHead = sqlx::query_as(&format!(
            "SELECT id, name, prompt_id, created_at, created_by FROM datasets WHERE name = $1 {}",
            B::ROW_LOCK
        ))
        .bind(new.name.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if head.prompt_id != new.prompt_id {
            return Err(StoreError::InvalidState(format!(
                "dataset {} belongs to prompt {}, not {}",
                new.name, head.prompt_id, new.prompt_id
            )));
        }
        let latest: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE dataset_id = $1",
        )
        .bind(head.id)
        .fetch_one(&mut *tx)
        .await?;
        let version_id = DbId(Uuid::now_v7());
        let validation_count = new
            .rows
            .iter()
            .filter(|r| r.split == Split::Validation)
            .count() as i64;
        sqlx::query(
            "INSERT INTO dataset_versions (id, dataset_id, version, source, filter, \
             validation_fraction, row_count, validation_count, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(version_id)
        .bind(head.id)
        .bind(latest + 1)
        .bind(new.source.as_str())
        .bind(new.filter.as_ref().map(Json))
        .bind(new.validation_fraction)
        .bind(new.rows.len() as i64)
        .bind(validation_count)
        .bind(at)
        .bind(new.created_by.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(|e| B::conflict("dataset_versions_dataset_id_version_key", e))?;
        for (chunk_index, chunk) in new.rows.chunks(ROWS_PER_INSERT).enumerate() {
            // `?` on SQLite: `$N` costs O(n²) to bind (see `Backend::NUMBERED_PARAMETERS`).
            let values = values_list(B::NUMBERED_PARAMETERS, 1, chunk.len(), 7);
            let sql = format!(
                "INSERT INTO dataset_rows (version_id, row_index, id, item, sample, split, run_id) \
                 VALUES {values}"
            );
            let mut query = sqlx::query(&sql);
            for (i, row) in chunk.iter().enumerate() {
                let index = (chunk_index * ROWS_PER_INSERT + i) as i64;
                query = query
                    .bind(version_id)
                    .bind(index)
                    .bind(DbId(row.id))
                    .bind(Json(&row.item))
                    .bind(row.sample.as_ref().map(Json))
                    .bind(row.split.as_str())
                    .bind(row.run_id.map(DbId));
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(|e| B::conflict("dataset_rows_version_id_id_key", e))?;
        }
        let created: VersionRow = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d \
             ON d.id = v.dataset_id WHERE v.id = $1"
        ))
        .bind(version_id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        created.try_into()
    }

    async fn list_datasets(&self, prompt_id: Option<&str>) -> Result<Vec<Dataset>> {
        let mut tx = self.begin_snapshot().await?;
        let heads: Vec<DatasetHead> = match prompt_id {
            Some(prompt_id) => {
                ensure_prompt(&mut tx, prompt_id, "").await?;
                sqlx::query_as(
                    "SELECT id, name, prompt_id, created_at, created_by FROM datasets \
                     WHERE prompt_id = $1 ORDER BY name",
                )
                .bind(prompt_id)
                .fetch_all(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT id, name, prompt_id, created_at, created_by FROM datasets \
                     ORDER BY name",
                )
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let mut versions: Vec<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d \
             ON d.id = v.dataset_id ORDER BY d.name, v.version"
        ))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut datasets = Vec::with_capacity(heads.len());
        for head in heads {
            let (mine, rest): (Vec<VersionRow>, Vec<VersionRow>) =
                versions.into_iter().partition(|v| v.name == head.name);
            versions = rest;
            datasets.push(assemble(head, mine)?);
        }
        Ok(datasets)
    }

    async fn get_dataset(&self, name: &str) -> Result<Dataset> {
        let mut tx = self.begin_snapshot().await?;
        let head: Option<DatasetHead> = sqlx::query_as(
            "SELECT id, name, prompt_id, created_at, created_by FROM datasets WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let head = head.ok_or_else(|| Missing::Dataset(name.to_owned()))?;
        let versions: Vec<VersionRow> = sqlx::query_as(&format!(
            "SELECT {VERSION_COLUMNS} FROM dataset_versions v JOIN datasets d \
             ON d.id = v.dataset_id WHERE v.dataset_id = $1 ORDER BY v.version"
        ))
        .bind(head.id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        assemble(head, versions)
    }

    async fn dataset_rows(
        &self,
        name: &str,
        query: &RowQuery,
        limit: u32,
    ) -> Result<(i64, Vec<DatasetRow>)> {
        let mut tx = self.begin_snapshot().await?;
        let dataset: Option<(DbId,)> = sqlx::query_as("SELECT id FROM datasets WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let (dataset_id,) = dataset.ok_or_else(|| Missing::Dataset(name.to_owned()))?;
        let version = match query.version {
            Some(version) => version,
            None => {
                sqlx::query_scalar(
                    "SELECT COALESCE(MAX(version), 0) FROM dataset_versions \
                     WHERE dataset_id = $1",
                )
                .bind(dataset_id)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let version_id: Option<(DbId,)> = sqlx::query_as(
            "SELECT id FROM dataset_versions WHERE dataset_id = $1 AND version = $2",
        )
        .bind(dataset_id)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        let (version_id,) = version_id.ok_or_else(|| Missing::DatasetVersion {
            name: name.to_owned(),
            version,
        })?;
        // Placeholders in order of appearance: SQLite numbers them as given.
        let (split_condition, limit_placeholder) = if query.split.is_some() {
            ("AND split = $3", "$4")
        } else {
            ("", "$3")
        };
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM dataset_rows WHERE version_id = $1 AND row_index > $2 \
             {split_condition} ORDER BY row_index LIMIT {limit_placeholder}"
        );
        let mut select = sqlx::query_as::<_, StoredRow>(&sql)
            .bind(version_id)
            .bind(query.after.unwrap_or(-1));
        if let Some(split) = query.split {
            select = select.bind(split.as_str());
        }
        select = select.bind(i64::from(limit));
        let rows = select.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let rows = rows
            .into_iter()
            .map(DatasetRow::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok((version, rows))
    }

    async fn delete_dataset(&self, name: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // The versions and rows go with it (ON DELETE CASCADE).
        let deleted: Option<String> =
            sqlx::query_scalar("DELETE FROM datasets WHERE name = $1 RETURNING name")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if deleted.is_none() {
            return Err(Missing::Dataset(name.to_owned()).into());
        }
        tx.commit().await?;
        Ok(())
    }
}

fn assemble(head: DatasetHead, versions: Vec<VersionRow>) -> Result<Dataset> {
    let versions = versions
        .into_iter()
        .map(DatasetVersion::try_from)
        .collect::<Result<Vec<_>>>()?;
    Ok(Dataset {
        name: head.name,
        prompt_id: head.prompt_id,
        created_at: head.created_at,
        created_by: head.created_by,
        latest_version: versions.last().map_or(0, |v| v.version),
        versions,
    })
}
