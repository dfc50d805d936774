//! The storage interface, by domain, and its two backends.
//!
//! # Layout
//!
//! - A trait per domain with its row types: [`PromptStore`] (`prompts.rs`: prompts, versions,
//!   deploys, failure modes), [`GraderStore`] (`graders.rs`: grader definitions),
//!   [`RunStore`] (`runs.rs`: recorded runs, task outcomes), [`GradingJobStore`]
//!   (`grading_jobs.rs`: grading jobs and automatic grading), [`ExperimentStore`]
//!   (`experiments.rs`: A/B tests, exposures, per-arm totals) and [`AnnotationStore`]
//!   (`annotations.rs`: annotations of runs, their history, the annotation queue, failure-mode
//!   counts), [`DatasetStore`] (`datasets.rs`: datasets, their immutable versions and rows),
//!   [`EvaluationStore`] (`evaluations.rs`: offline evaluations, their outputs, the answer cache),
//!   [`OptimizationStore`] (`optimizations.rs`: runs of the prompt optimizer, their checkpoints
//!   and reports), [`SessionStore`] (`sessions.rs`: sessions of the web pages, by the hash of
//!   their id).
//!   [`Store`]
//!   is the one handle callers hold (`Arc<dyn Store>`): every domain plus migrating and pinging.
//!   A `dyn Store` answers every domain's methods without importing the domain traits; a
//!   concrete backend (`SqliteStore`) needs the trait in scope.
//! - `sql/`: each domain's SQL, row structs and operation flows, written once and generic over
//!   the sqlx database ([`sql::Backend`]); both dialects accept the same text (`$N`
//!   placeholders, `ON CONFLICT`, `RETURNING`, `TRUE`).
//! - `sqlite/` and `postgres/`: only what the dialects force apart (below), as their
//!   implementation of [`sql::Backend`]. Today no domain needs more; a domain that does gets a
//!   file in each (see "Adding a domain").
//! - `conformance/`: the suite both backends must pass, a file per domain, plus the check that
//!   both migration sets define the same schema.
//!
//! # What differs between the backends, and why
//!
//! | | SQLite | PostgreSQL | why |
//! |---|---|---|---|
//! | write lock | `BEGIN IMMEDIATE` (whole database) | `SELECT … FOR UPDATE` on the prompt's row (`ROW_LOCK`) | SQLite has no row locks; a deferred SQLite transaction that reads, then writes fails with `SQLITE_BUSY` instead of waiting |
//! | job claims | the write lock excludes other claimers | `FOR UPDATE SKIP LOCKED` (`SKIP_LOCKED`) | instances claiming at once take different jobs instead of queueing |
//! | snapshot reads | a deferred transaction (one WAL snapshot) | `REPEATABLE READ READ ONLY` | READ COMMITTED, PostgreSQL's default, snapshots per statement |
//! | constraint names | named by the statement being run | read from the error | SQLite reports only the kind of violation |
//! | uuids | hyphenated TEXT | `UUID` | SQLite has no uuid type (sqlx would write a BLOB) |
//! | migrations | `migrations/sqlite` | `migrations/postgres` (under an advisory lock) | types, triggers and CHECK syntax differ |
//!
//! # Invariants
//!
//! They live in the schema (see `migrations/`): one active version per prompt (partial unique
//! index `one_active_version_per_prompt`), unique `(prompt_id, version)`, immutable versions
//! (trigger `prompt_versions_immutable`), foreign keys, idempotent run ingestion
//! (`prompt_optimization_data_run_key`). Backends translate constraint violations into
//! [`StoreError::Conflict`] by constraint name, never by message text. `NotFound` carries a typed
//! [`Missing`] whose `Display` is the subject (`prompt planner`, `version 7 of prompt planner`),
//! so callers can phrase the message or tell the causes apart. Nothing here knows about HTTP.
//!
//! [`open_store`] picks the backend from the URL scheme and applies the migrations.
//!
//! # Adding a domain (runs, jobs, …)
//!
//! 1. `store/<domain>.rs`: the row types and a `<Domain>Store` trait; add it to [`Store`]'s
//!    supertraits and re-export it here.
//! 2. `store/sql/<domain>.rs`: the queries, row structs (`FromRow`) and the trait implemented
//!    for every [`sql::Backend`]. A clause one dialect lacks can be a constant of `Backend`
//!    (`ROW_LOCK`, `SKIP_LOCKED`). If a backend must differ beyond that, declare a
//!    `<Domain>Dialect: Backend` trait there and implement it in `store/sqlite/<domain>.rs` and
//!    `store/postgres/<domain>.rs`.
//! 3. `store/conformance/<domain>.rs`: the behaviour as cases both backends run.
//! 4. A migration pair: the same number and name in `migrations/sqlite` and
//!    `migrations/postgres` (never edit an applied one), every constraint named;
//!    `conformance/schema_parity.rs` checks that both sets define the same columns and names.

mod annotations;
mod datasets;
mod error;
mod evaluations;
mod experiments;
mod graders;
mod grading_jobs;
mod optimizations;
pub mod postgres;
mod prompts;
mod rollback;
mod runs;
mod sessions;
mod sql;
pub mod sqlite;
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};

pub use annotations::{
    AnnotateOutcome, AnnotationAction, AnnotationRecord, AnnotationStore, ClearOutcome,
    CurrentAnnotation, FailureModeCount, FailureModeCounts, NewAnnotation, QueueCursor, QueuePage,
    QueuedRun, valid_failure_mode_code,
};
pub use datasets::{
    Dataset, DatasetRow, DatasetSource, DatasetStore, DatasetVersion, NewDatasetRow,
    NewDatasetVersion, RowQuery, Split,
};
pub use error::{Missing, Result, StoreError};
pub use evaluations::{
    CachedAnswer, EvaluationChunk, EvaluationJob, EvaluationOutput, EvaluationSpec,
    EvaluationStore, Located, NewEvaluation, StoredOutput, StoredVerdict,
};
pub use experiments::{
    AbTest, AbTestEnd, ArmTotals, ExperimentStore, Exposure, NewAbTest, STATUS_COMPLETED,
    STATUS_RUNNING, STATUS_STOPPED,
};
pub use graders::{GraderDefinition, GraderStore, NewGraderDefinition, PutOutcome};
pub use grading_jobs::{
    ChunkTotals, GradableRun, GradedRun, GraderVerdict, GradingJob, GradingJobStore, JobKind,
    JobListFilter, JobStatus, NewGradingJob, RunSelection,
};
pub use optimizations::{
    NewOptimization, Optimization, OptimizationEnd, OptimizationStatus, OptimizationStore,
};
pub use postgres::PgStore;
pub use prompts::{
    DeployAction, DeployRecord, FailureMode, NewVersion, Prompt, PromptSeed, PromptStore,
    PromptVersion, PromptWithVersions, SEED_ACTOR, VersionSource,
};
pub use runs::{
    AnnotationSource, ExportAnnotation, ExportFields, ExportOutcome, ExportRun, NewOutcome, NewRun,
    Rating, RecordedRun, Run, RunAnnotation, RunFilter, RunOrigin, RunOutcome, RunStore,
    run_success,
};
pub use sessions::{SessionStore, WebSession};
pub use sqlite::SqliteStore;

/// Opens the backend named by the URL scheme (`sqlite:` or `postgres:`/`postgresql:`) and
/// applies its migrations, so callers always get an up-to-date schema. Seeding is separate
/// ([`PromptStore::seed`]) because it is a product decision, not a schema one.
pub async fn open_store(database_url: &str) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(database_url).await?)
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Arc::new(PgStore::connect(database_url).await?)
    } else {
        // Only the scheme: the rest may hold a password.
        let scheme = database_url.split(':').next().unwrap_or_default();
        return Err(StoreError::UnsupportedUrl(format!("{scheme}:…")));
    };
    store.migrate().await?;
    Ok(store)
}

/// The current time at the precision both backends keep (microseconds), so a value written and
/// read back compares equal.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The one handle on the storage: every domain's operations, plus what concerns the database as
/// a whole. Implemented by [`SqliteStore`] and [`PgStore`]; held as `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    PromptStore
    + GraderStore
    + RunStore
    + GradingJobStore
    + ExperimentStore
    + AnnotationStore
    + DatasetStore
    + EvaluationStore
    + OptimizationStore
    + SessionStore
    + Send
    + Sync
    + 'static
{
    /// Applies the backend's migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers (for health checks).
    async fn ping(&self) -> Result<()>;
    /// Rebuilds the running aggregates from the stored rows: every version's figures and every
    /// A/B test's per-arm totals (`sql/figures.rs`, `sql/ab_totals.rs`). The writers keep them
    /// current; this repairs a database whose runs were written around the store (bulk SQL,
    /// a restore) and is the reference the conformance suite checks the running ones against.
    /// Holds every prompt's write lock while it runs (seconds at millions of runs).
    async fn recompute_aggregates(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_store_refuses_an_unknown_scheme_without_echoing_the_url() {
        match open_store("mysql://user:secret@host/db").await {
            Err(StoreError::UnsupportedUrl(shown)) => {
                assert_eq!(shown, "mysql:…");
            }
            Err(other) => panic!("expected UnsupportedUrl, got {other}"),
            Ok(_) => panic!("expected UnsupportedUrl, got a store"),
        }
    }

    #[tokio::test]
    async fn sqlite_in_memory_keeps_one_database_across_calls() {
        let store = open_store("sqlite::memory:").await.unwrap();
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .unwrap();
        assert_eq!(store.list_prompts().await.unwrap().len(), 4);
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_file_and_missing_directories_are_created() {
        let dir = testing::TempDirGuard::new().unwrap();
        let path = dir.path().join("nested/deeper/flywheel.db");
        let store = open_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.ping().await.unwrap();
        assert!(path.exists());
        // Opening again applies no migration twice and keeps the data.
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .unwrap();
        drop(store);
        let again = open_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(again.list_prompts().await.unwrap().len(), 4);
    }
}
