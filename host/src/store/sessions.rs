//! The web-session domain of the store: the server's side of a signed-in browser (the web pages
//! in [`crate::web`]), as the [`SessionStore`] trait and its row type. The SQL is written once in
//! `sql/sessions.rs`.
//!
//! The store sees only the SHA-256 of a session id (64 lower-case hex digits, checked by the
//! schema's `web_sessions_id_hash_format`), never the id the cookie carries, and never a token:
//! a session names the token it was opened with. Expiry is seconds since the Unix epoch, so both
//! backends compare it in SQL alike. Making ids, hashing them and choosing lifetimes is the web
//! module's job.

use async_trait::async_trait;

use super::Result;

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The name of the API token the person signed in with.
    pub token_name: String,
    /// When it ends, in seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Sessions of the web pages, shared by every instance on the database.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session under the hash of its id. A hash already stored (an id drawn twice)
    /// is a `Conflict` on `web_sessions_pkey`; a hash not of 64 hex digits a `Conflict` on
    /// `web_sessions_id_hash_format`.
    async fn create_session(&self, id_hash: &str, token_name: &str, expires_at: i64) -> Result<()>;
    /// The session stored under `id_hash` if it has not expired at `now` (epoch seconds).
    async fn find_session(&self, id_hash: &str, now: i64) -> Result<Option<WebSession>>;
    /// Ends a session; whether one was stored.
    async fn delete_session(&self, id_hash: &str) -> Result<bool>;
    /// Removes every session expired at `now`; how many.
    async fn purge_expired_sessions(&self, now: i64) -> Result<u64>;
}
