//! The web-session domain's SQL, once for both backends ([`SessionStore`]). Every statement is
//! a single one, so no transaction or lock is needed: a session is written once and only read or
//! deleted afterwards.

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Type};

use super::Backend;
use crate::store::{Result, SessionStore, WebSession};

#[async_trait]
impl<B> SessionStore for B
where
    B: Backend,
    for<'c> &'c mut <B::Db as Database>::Connection: Executor<'c, Database = B::Db>,
    for<'q> <B::Db as Database>::Arguments<'q>: IntoArguments<'q, B::Db>,
    for<'q> &'q str: Encode<'q, B::Db> + Type<B::Db>,
    for<'q> i64: Encode<'q, B::Db> + Type<B::Db>,
    for<'r> (String, i64): FromRow<'r, <B::Db as Database>::Row>,
    for<'r> (String,): FromRow<'r, <B::Db as Database>::Row>,
{
    async fn create_session(&self, id_hash: &str, token_name: &str, expires_at: i64) -> Result<()> {
        // Which constraint a failure names: the format check first (SQLite does not say).
        let constraint = if is_hash(id_hash) {
            "web_sessions_pkey"
        } else {
            "web_sessions_id_hash_format"
        };
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, token_name, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(id_hash)
        .bind(token_name)
        .bind(expires_at)
        .execute(self.pool())
        .await
        .map_err(|e| B::conflict(constraint, e))?;
        Ok(())
    }

    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<WebSession>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT token_name, expires_at FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(token_name, expires_at)| WebSession {
            token_name,
            expires_at,
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool> {
        // RETURNING tells whether a row went, the same way on both backends.
        let gone: Option<(String,)> =
            sqlx::query_as("DELETE FROM web_sessions WHERE id_hash = $1 RETURNING id_hash")
                .bind(id_hash)
                .fetch_optional(self.pool())
                .await?;
        Ok(gone.is_some())
    }

    async fn purge_expired_sessions(&self, now: i64) -> Result<u64> {
        let gone: Vec<(String,)> =
            sqlx::query_as("DELETE FROM web_sessions WHERE expires_at <= $1 RETURNING id_hash")
                .bind(now)
                .fetch_all(self.pool())
                .await?;
        Ok(gone.len() as u64)
    }
}

/// 64 lower-case hex digits, the schema's `web_sessions_id_hash_format`.
fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
