//! The store conformance suite: every case is one async function over a [`Backend`], and the
//! `conformance!` macro runs each against a fresh SQLite file (`…::<domain>::sqlite::*`) and a
//! fresh PostgreSQL database (`…::<domain>::postgres::*`, needs the server named by
//! `FLYWHEEL_TEST_POSTGRES_URL`). A behaviour is only "the store's" if both backends pass it.
//!
//! A file per domain (`prompts.rs`, `graders.rs`, `annotations.rs`, `datasets.rs`, …) holds its cases; `deploy_model.rs` checks the
//! deploy rules against a model on random operation sequences; `schema_parity.rs` checks that
//! both migration sets define the same schema.

use std::sync::Arc;

use super::testing::{PgTestDb, TempDirGuard, postgres_fresh, sqlite_temp};
use super::{Result, Store, StoreError, open_store};
use crate::prompts::seeds::default_seeds;

/// Declares, for each case named, one test per backend; the cases are async functions of the
/// module that invokes it.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = crate::store::conformance::sqlite_backend().await;
                    super::$case(&backend).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = crate::store::conformance::postgres_backend().await;
                    super::$case(&backend).await;
                }
            )*
        }
    };
}

mod aggregates;
mod annotations;
mod datasets;
mod deploy_model;
mod evaluations;
mod experiments;
mod graders;
mod grading_jobs;
mod optimizations;
mod prompts;
mod runs;
mod schema_parity;
mod sessions;

/// A migrated, seeded store and the URL of its database (for raw SQL).
pub(super) struct Backend {
    pub(super) store: Arc<dyn Store>,
    pub(super) url: String,
    pub(super) postgres: bool,
    _sqlite_dir: Option<TempDirGuard>,
    _postgres_db: Option<PgTestDb>,
}

pub(super) async fn sqlite_backend() -> Backend {
    let (dir, url) = sqlite_temp();
    let store = open_store(&url).await.expect("open sqlite store");
    store.seed(&default_seeds()).await.expect("seed");
    Backend {
        store,
        url,
        postgres: false,
        _sqlite_dir: Some(dir),
        _postgres_db: None,
    }
}

pub(super) async fn postgres_backend() -> Backend {
    let db = postgres_fresh().await;
    let url = db.url().to_owned();
    let store = open_store(&url).await.expect("open postgres store");
    store.seed(&default_seeds()).await.expect("seed");
    Backend {
        store,
        url,
        postgres: true,
        _sqlite_dir: None,
        _postgres_db: Some(db),
    }
}

pub(super) fn assert_not_found<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(StoreError::NotFound(missing)) => {
            let message = missing.to_string();
            assert!(
                message.contains(what),
                "NotFound({message}) should name {what}"
            )
        }
        other => panic!("expected NotFound naming {what}, got {other:?}"),
    }
}
