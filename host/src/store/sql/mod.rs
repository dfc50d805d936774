//! The SQL both backends run, written once and generic over the sqlx [`Database`]: each domain's
//! queries, row structs and operation flows (`prompts/`, `graders.rs`, `runs/`,
//! `annotations.rs`), on top of
//! [`Backend`], the few things a backend must say for itself.
//!
//! This works because both dialects accept the same text for everything the store does: sqlx's
//! SQLite driver takes `$N` placeholders, both know `ON CONFLICT (…) DO …`, `RETURNING` and
//! `TRUE`, and every column type has an encoding on both sides ([`DbId`] covers the one that
//! does not: uuids). `sqlx::Any` is not used because it has no uuid, time or JSON types.
//!
//! The bounds in the `where` clauses below list what the shared code binds and reads; Rust does
//! not imply them from a trait, so each generic item states the ones it uses.

pub(crate) mod ab_totals;
pub(crate) mod annotations;
pub(crate) mod datasets;
pub(crate) mod evaluations;
pub(crate) mod experiments;
pub(crate) mod figures;
pub(crate) mod graders;
pub(crate) mod grading_jobs;
pub(crate) mod optimizations;
pub(crate) mod prompts;
pub(crate) mod runs;
pub(crate) mod sessions;

use async_trait::async_trait;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};
use uuid::Uuid;

use super::{
    AnnotationStore, DatasetStore, EvaluationStore, ExperimentStore, GraderStore, GradingJobStore,
    Missing, OptimizationStore, PromptStore, Result, RunStore, SessionStore, Store, StoreError,
};

/// What a backend says for itself; everything else about SQL is shared. Implemented by
/// `SqliteStore` and `PgStore`.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The sqlx database.
    type Db: Database;

    /// The connection pool.
    fn pool(&self) -> &Pool<Self::Db>;

    /// Opens a transaction for a write. SQLite takes the database's write lock here
    /// (`BEGIN IMMEDIATE`); PostgreSQL starts a plain transaction and locks rows as needed.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;

    /// Opens a read-only transaction whose statements all see one snapshot.
    async fn begin_snapshot(&self) -> Result<Transaction<'static, Self::Db>>;

    /// What follows a `SELECT` to lock the rows it reads until the transaction ends: PostgreSQL
    /// `FOR UPDATE`, so writers to one prompt queue while writers to others proceed; nothing on
    /// SQLite, where [`Backend::begin_write`] already holds the whole database.
    const ROW_LOCK: &'static str;

    /// What follows a `SELECT` that claims one of several queued rows (a grading job): on
    /// PostgreSQL `FOR UPDATE SKIP LOCKED`, so instances claiming at once each take a different
    /// row instead of queueing on the first; nothing on SQLite, where the write transaction
    /// already excludes every other claimer.
    const SKIP_LOCKED: &'static str;

    /// Whether the statements built for a varying number of rows number their parameters
    /// (`$1, $2, …`, PostgreSQL) or use plain positional `?` (SQLite). SQLite keeps `$N`
    /// parameters as names in a list it scans on every lookup, so binding n of them costs
    /// O(n²): a 1000-row, 17-column `INSERT` spent ~1 s binding (BENCHMARKS.md, "Runs").
    /// See [`placeholder`].
    const NUMBERED_PARAMETERS: bool;

    /// The rows a statement inserted, updated or deleted.
    fn rows_affected(result: &<Self::Db as Database>::QueryResult) -> u64;

    /// The backend's migrations (`migrations/sqlite` or `migrations/postgres`).
    fn migrator(&self) -> &'static Migrator;

    /// Turns the error of a statement that can violate `constraint` into a
    /// [`StoreError::Conflict`] if it is a constraint violation. PostgreSQL reports the
    /// violated constraint's name and uses it; SQLite does not, so it names `constraint`.
    fn conflict(constraint: &'static str, error: sqlx::Error) -> StoreError;
}

/// The `n`th parameter (from 1) of a statement built for a varying number of rows: `$n` or `?`
/// ([`Backend::NUMBERED_PARAMETERS`]). With `?`, parameters must appear in the text in the
/// order they are bound, each once.
pub(crate) fn placeholder(numbered: bool, n: usize) -> String {
    if numbered {
        format!("${n}")
    } else {
        "?".to_owned()
    }
}

/// `p, p+1, …`: `count` parameters numbered from `first`, for an `IN (…)` list (see
/// [`placeholder`]).
pub(crate) fn in_list(numbered: bool, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| placeholder(numbered, n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(…), (…)`: `rows` tuples of `columns` parameters, numbered from `first` (see
/// [`placeholder`]).
pub(crate) fn values_list(numbered: bool, first: usize, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let cells: Vec<String> = (0..columns)
                .map(|column| placeholder(numbered, first + row * columns + column))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A uuid column as each schema stores it: TEXT (hyphenated) in SQLite, `UUID` in PostgreSQL.
/// Each backend encodes it (`sqlite/mod.rs`, `postgres/mod.rs`), so the shared queries bind and
/// read one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbId(pub Uuid);

/// `NotFound` unless the prompt exists; inside `tx`, so the answer holds for the transaction.
/// `row_lock` is empty or [`Backend::ROW_LOCK`], which also makes `tx` the prompt's only writer.
pub(crate) async fn ensure_prompt<DB>(
    tx: &mut Transaction<'static, DB>,
    prompt_id: &str,
    row_lock: &str,
) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): FromRow<'r, DB::Row>,
{
    sqlx::query_scalar::<_, String>(&format!("SELECT id FROM prompts WHERE id = $1 {row_lock}"))
        .bind(prompt_id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|_| ())
        .ok_or_else(|| Missing::prompt(prompt_id).into())
}

#[async_trait]
impl<B> Store for B
where
    B: Backend
        + PromptStore
        + GraderStore
        + RunStore
        + GradingJobStore
        + ExperimentStore
        + AnnotationStore
        + DatasetStore
        + EvaluationStore
        + OptimizationStore
        + SessionStore,
    <B::Db as Database>::Connection: Migrate,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
{
    async fn migrate(&self) -> Result<()> {
        self.migrator().run(self.pool()).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    async fn recompute_aggregates(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Every prompt, in id order as the writers lock them, so no write lands in between.
        let _locked: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT id FROM prompts ORDER BY id {}",
            Self::ROW_LOCK
        ))
        .fetch_all(&mut *tx)
        .await?;
        figures::recompute_figures(&mut tx).await?;
        ab_totals::recompute_ab_totals(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
