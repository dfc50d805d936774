//! Throw-away databases for tests, public so other crates' tests (the end-to-end suite) use the
//! same helpers: a SQLite file in a fresh temporary directory, and a freshly created PostgreSQL
//! database. Both are removed when their guard drops.
//!
//! PostgreSQL tests read the server from `FLYWHEEL_TEST_POSTGRES_URL` (default
//! [`DEFAULT_TEST_POSTGRES_URL`]); every database made here is named `flywheel_test_<uuid>`, so
//! leftovers of a killed run can be found and dropped by that prefix.

use std::path::{Path, PathBuf};

use sqlx::{Connection, Executor};
use uuid::Uuid;

/// The server the PostgreSQL tests use when `FLYWHEEL_TEST_POSTGRES_URL` is unset.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Prefix of every database [`postgres_fresh`] creates.
pub const TEST_DATABASE_PREFIX: &str = "flywheel_test_";

/// A temporary directory removed (with everything in it) on drop.
#[derive(Debug)]
pub struct TempDirGuard {
    path: PathBuf,
}

impl TempDirGuard {
    /// Creates a fresh, uniquely named directory under the system temporary directory.
    pub fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("flywheel-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDirGuard { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        // Best effort: a leftover temp dir is harmless and must not turn into a test panic.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A fresh SQLite database file in a new temporary directory: the guard and its
/// `sqlite://…` URL. The file is created on first connect.
pub fn sqlite_temp() -> (TempDirGuard, String) {
    let dir = TempDirGuard::new().expect("the system temporary directory is writable");
    let url = format!("sqlite://{}", dir.path().join("flywheel.db").display());
    (dir, url)
}

/// The PostgreSQL server URL tests use (`FLYWHEEL_TEST_POSTGRES_URL` or the default).
pub fn postgres_server_url() -> String {
    std::env::var("FLYWHEEL_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_POSTGRES_URL.to_owned())
}

/// Replaces the database name in a `postgres://…/name?params` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{host_part}/{database}?{query}"),
        None => format!("{host_part}/{database}"),
    }
}

/// A PostgreSQL database created for one test and dropped (connections terminated) on drop.
#[derive(Debug)]
pub struct PgTestDb {
    server_url: String,
    name: String,
    url: String,
}

impl PgTestDb {
    /// The URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop may run inside an async runtime, which cannot be blocked on; a thread with its
        // own small runtime can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut conn = sqlx::PgConnection::connect(&server_url).await?;
                conn.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                    .await?;
                conn.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

/// Creates an empty, uniquely named database on the test server; panics with a clear message if
/// the server is unreachable (a PostgreSQL test cannot do anything useful without it).
pub async fn postgres_fresh() -> PgTestDb {
    let server_url = postgres_server_url();
    let name = format!("{TEST_DATABASE_PREFIX}{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&server_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test server at {server_url} unreachable: {e}"));
    conn.execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    let url = with_database(&server_url, &name);
    PgTestDb {
        server_url,
        name,
        url,
    }
}

/// Runs raw SQL on the database at `url` (either backend), bypassing the store: for tests that
/// prove the schema itself refuses what the store would never do.
pub async fn execute_raw(url: &str, sql: &str) -> Result<u64, sqlx::Error> {
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        let done = conn.execute(sql).await?;
        conn.close().await?;
        Ok(done.rows_affected())
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let done = conn.execute(sql).await?;
        conn.close().await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database_name() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
