//! The SQLite backend: the embedded default, one file in WAL mode with foreign keys on.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock before reading,
//! so two writers queue on the busy timeout instead of both reading, then failing to upgrade
//! (which SQLite reports as `SQLITE_BUSY` without waiting). Within such a transaction nothing can
//! change underneath, so "max + 1" and "deactivate, then activate" need no further locking.
//!
//! SQLite does not report which constraint failed, so violations are mapped by error kind plus
//! the statement being run (see `conflict_on`). Uuids are stored as hyphenated TEXT.
//!
//! The queries are shared (`store/sql`); this module holds the connection, the lock, the error
//! mapping and the uuid encoding.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::encode::IsNull;
use sqlx::error::{BoxDynError, ErrorKind};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteArgumentValue, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous, SqliteTypeInfo, SqliteValueRef,
};
use sqlx::{Decode, Encode, Sqlite, Transaction, Type};
use uuid::fmt::Hyphenated;

use super::sql::{Backend, DbId};
use super::{Result, StoreError};

/// How long a writer waits for the write lock before giving up. Write transactions are a few
/// statements long, so even 50 queued deploys clear well within it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Readers run in parallel under WAL; a handful of connections covers two cores.
const MAX_CONNECTIONS: u32 = 8;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

/// A [`Store`](super::Store) on a SQLite file.
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

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn begin_snapshot(&self) -> Result<Transaction<'static, Sqlite>> {
        // A deferred transaction reads one WAL snapshot from its first read to its end.
        Ok(self.pool.begin().await?)
    }

    const ROW_LOCK: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const NUMBERED_PARAMETERS: bool = false;

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn conflict(constraint: &'static str, error: sqlx::Error) -> StoreError {
        conflict_on(constraint)(error)
    }
}

// The schema keeps uuids as hyphenated TEXT (readable in the sqlite3 shell); sqlx's own `Uuid`
// encoding for SQLite is a 16-byte BLOB, so `DbId` goes through `Hyphenated`.
impl Type<Sqlite> for DbId {
    fn type_info() -> SqliteTypeInfo {
        <Hyphenated as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for DbId {
    fn encode_by_ref(
        &self,
        args: &mut Vec<SqliteArgumentValue<'q>>,
    ) -> std::result::Result<IsNull, BoxDynError> {
        <Hyphenated as Encode<'q, Sqlite>>::encode(self.0.hyphenated(), args)
    }
}

impl<'r> Decode<'r, Sqlite> for DbId {
    fn decode(value: SqliteValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        Ok(DbId(
            <Hyphenated as Decode<'r, Sqlite>>::decode(value)?.into_uuid(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
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
