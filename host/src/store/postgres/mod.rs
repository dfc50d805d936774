//! The PostgreSQL backend: the scale-out store several Flywheel instances share.
//!
//! Every write that depends on what is there (create a version, deploy, roll back) runs in a
//! transaction that first locks the prompt's row (`SELECT … FOR UPDATE`, `ROW_LOCK`), so
//! writers to one prompt queue while writers to different prompts proceed. Under READ COMMITTED
//! each later statement sees everything committed before the lock was granted; reads that must
//! agree across statements run under REPEATABLE READ.
//!
//! PostgreSQL names the violated constraint, so violations map to [`StoreError::Conflict`] by that
//! name (see `map_error`). Uuids are native `UUID`s.
//!
//! The queries are shared (`store/sql`); this module holds the connection, the row lock, the
//! transaction levels, the error mapping and the uuid encoding.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArgumentBuffer, PgPool, PgPoolOptions, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Transaction, Type};
use uuid::Uuid;

use super::sql::{Backend, DbId};
use super::{Result, StoreError};

/// Connections per instance. Several instances share one server (default limit 100), so keep
/// each pool modest; writes to one prompt serialise on a row lock anyway.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// How long a caller waits for a free connection before the operation fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// sqlx takes an advisory lock while it migrates, so instances starting together migrate once.
static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// A [`Store`](super::Store) on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) with [`DEFAULT_MAX_CONNECTIONS`].
    /// Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_max_connections(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Connects with a pool of at most `max_connections`.
    pub async fn connect_with_max_connections(url: &str, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        Ok(PgStore { pool })
    }

    /// The connection pool, for code that extends the store.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Maps a violation of a named constraint to [`StoreError::Conflict`]; other errors pass through.
pub(crate) fn map_error(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && let Some(constraint) = db.constraint()
    {
        return StoreError::Conflict {
            constraint: constraint.to_owned(),
        };
    }
    StoreError::Database(error)
}

#[async_trait]
impl Backend for PgStore {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        // Row locks (`ROW_LOCK`) and `ON CONFLICT` serialise what must be; a plain READ
        // COMMITTED transaction lets writers to different prompts proceed.
        Ok(self.pool.begin().await?)
    }

    async fn begin_snapshot(&self) -> Result<Transaction<'static, Postgres>> {
        // READ COMMITTED takes a snapshot per statement; REPEATABLE READ one per transaction.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    const ROW_LOCK: &'static str = "FOR UPDATE";
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";
    const NUMBERED_PARAMETERS: bool = true;

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn migrator(&self) -> &'static Migrator {
        &MIGRATOR
    }

    fn conflict(_constraint: &'static str, error: sqlx::Error) -> StoreError {
        // The server names the constraint; the caller's guess is not needed.
        map_error(error)
    }
}

// `UUID` columns: sqlx's own encoding, behind the shared `DbId`.
impl Type<Postgres> for DbId {
    fn type_info() -> PgTypeInfo {
        <Uuid as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for DbId {
    fn encode_by_ref(
        &self,
        buf: &mut PgArgumentBuffer,
    ) -> std::result::Result<IsNull, BoxDynError> {
        <Uuid as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for DbId {
    fn decode(value: PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        Ok(DbId(<Uuid as Decode<'r, Postgres>>::decode(value)?))
    }
}
