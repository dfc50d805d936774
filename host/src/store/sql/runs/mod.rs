//! The runs domain's SQL, once for both backends: recording runs (`record.rs`), reporting
//! outcomes (`outcomes.rs`) and reading runs back (here), as [`RunStore`] for every
//! [`Backend`]; the row structs are in `rows.rs`.
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

mod outcomes;
mod record;
mod rows;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};
use uuid::Uuid;

use self::rows::{OutcomeRow, RUN_COLUMNS, RunRow};
use super::ab_totals::{ExposureStateRow, UnitOutcomeRow, UnitRunsRow};
use super::{Backend, DbId};
use crate::store::{Missing, NewOutcome, NewRun, RecordedRun, Result, Run, RunFilter, RunStore};

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
        // Each condition present adds its placeholder; the binds below follow the same order.
        let mut conditions = Vec::new();
        let mut next = 0;
        let mut placeholder = || {
            next += 1;
            format!("${next}")
        };
        if filter.prompt_id.is_some() {
            conditions.push(format!("prompt_id = {}", placeholder()));
        }
        if filter.version.is_some() {
            conditions.push(format!("version = {}", placeholder()));
        }
        if filter.rating.is_some() {
            conditions.push(format!("rating = {}", placeholder()));
        }
        if filter.failure_mode.is_some() {
            conditions.push(format!("failure_mode = {}", placeholder()));
        }
        match filter.annotated {
            Some(true) => conditions.push(ANNOTATED.to_owned()),
            Some(false) => conditions.push(format!("NOT {ANNOTATED}")),
            None => {}
        }
        if filter.graders_passed.is_some() {
            conditions.push(format!("graders_passed = {}", placeholder()));
        }
        if filter.from.is_some() {
            conditions.push(format!("created_at >= {}", placeholder()));
        }
        if filter.to.is_some() {
            conditions.push(format!("created_at < {}", placeholder()));
        }
        if filter.before.is_some() {
            conditions.push(format!("id < {}", placeholder()));
        }
        if filter.origin.is_some() {
            conditions.push(format!("origin = {}", placeholder()));
        }
        let limit_placeholder = placeholder();
        let filter_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM prompt_optimization_data {filter_sql} \
             ORDER BY id DESC LIMIT {limit_placeholder}"
        );
        let mut query = sqlx::query_as::<_, RunRow>(&sql);
        if let Some(prompt_id) = &filter.prompt_id {
            query = query.bind(prompt_id.as_str());
        }
        if let Some(version) = filter.version {
            query = query.bind(version);
        }
        if let Some(rating) = filter.rating {
            query = query.bind(rating.as_str());
        }
        if let Some(failure_mode) = &filter.failure_mode {
            query = query.bind(failure_mode.as_str());
        }
        if let Some(passed) = filter.graders_passed {
            query = query.bind(passed);
        }
        if let Some(from) = filter.from {
            query = query.bind(from);
        }
        if let Some(to) = filter.to {
            query = query.bind(to);
        }
        if let Some(before) = filter.before {
            query = query.bind(DbId(before));
        }
        if let Some(origin) = filter.origin {
            query = query.bind(origin.as_str());
        }
        let rows = query.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(Run::try_from).collect()
    }
}

/// A run has a current annotation (the same test as `Run::annotation`).
const ANNOTATED: &str =
    "(rating IS NOT NULL OR failure_mode IS NOT NULL OR output_feedback IS NOT NULL)";
