//! The runs domain's SQL, once for both backends: recording runs (`record.rs`), reporting
//! outcomes (`outcomes.rs`) and reading runs back (here; the lean read of exports in
//! `export.rs`, the filter both share in `filter.rs`), as [`RunStore`] for every [`Backend`];
//! the row structs are in `rows.rs`.
//!
//! # Locks
//!
//! Every write holds the write lock of each prompt whose figures it changes, taken in sorted
//! order so two writers never wait on each other in a circle: a batch of runs locks the prompts
//! it names; an outcome report locks every prompt, because a task's runs may belong to any of
//! them and a run being recorded at the same moment must either see the outcome (it locked its
//! prompt after the report committed) or be seen by it (it committed before the report's lock
//! was granted). Prompts are a handful, so locking them all costs little. On SQLite
//! `begin_write` already holds the whole database.

mod export;
mod filter;
mod outcomes;
mod record;
mod rows;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use self::export::ExportRow;
use self::filter::{bind_filter, filter_clause};
use self::rows::{OutcomeRow, RUN_COLUMNS, RunRow};
use super::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow};
use super::{Backend, DbId};
use crate::store::{
    ExportFields, ExportRun, Missing, NewOutcome, NewRun, RecordedRun, Result, Run, RunFilter,
    RunStore,
};

#[async_trait]
impl<B> RunStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<&'q str>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<i64>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<bool>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> bool: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DateTime<Utc>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<DateTime<Utc>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> DbId: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Json<&'q serde_json::Map<String, serde_json::Value>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> Option<Json<&'q [String]>>: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId,): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (DbId, String, String): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String, f64, i64, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> RunRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExportRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> OutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'q> f64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> outcomes::RunBeforeOutcome: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> ExposureStateRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitRunsRow: FromRow<'r, <B::Db as Database>::Row>,
    for<'r> UnitOutcomeRow: FromRow<'r, <B::Db as Database>::Row>,
{
    async fn record_runs(&self, runs: &[NewRun]) -> Result<Vec<RecordedRun>> {
        record::record_runs(self, runs).await
    }

    async fn report_outcomes(&self, outcomes: &[NewOutcome]) -> Result<Vec<u64>> {
        outcomes::report_outcomes(self, outcomes).await
    }

    async fn get_run(&self, id: Uuid) -> Result<Run> {
        let row: Option<RunRow> = sqlx::query_as(&format!(
            "SELECT {RUN_COLUMNS} FROM prompt_optimization_data WHERE id = $1"
        ))
        .bind(DbId(id))
        .fetch_optional(self.pool())
        .await?;
        row.ok_or(Missing::Run(id))?.try_into()
    }

    async fn list_runs(&self, filter: &RunFilter, limit: u32) -> Result<Vec<Run>> {
        let (filter_sql, limit_placeholder) = filter_clause(filter);
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM prompt_optimization_data {filter_sql} \
             ORDER BY id DESC LIMIT ${limit_placeholder}"
        );
        let query = bind_filter(sqlx::query_as::<_, RunRow>(&sql), filter);
        let rows = query.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(Run::try_from).collect()
    }

    async fn export_runs(
        &self,
        filter: &RunFilter,
        fields: ExportFields,
        limit: u32,
    ) -> Result<Vec<ExportRun>> {
        let sql = export::export_sql(filter, fields);
        let query = bind_filter(sqlx::query_as::<_, ExportRow>(&sql), filter);
        let rows = query.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(ExportRun::try_from).collect()
    }
}
