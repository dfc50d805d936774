//! The prompt domain on SQLite: a write's `BEGIN IMMEDIATE` already holds the database's write
//! lock, so locking one prompt is only checking that it exists.

use async_trait::async_trait;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use crate::store::Result;
use crate::store::sql::ensure_prompt;
use crate::store::sql::prompts::PromptDialect;

#[async_trait]
impl PromptDialect for SqliteStore {
    async fn lock_prompt(tx: &mut Transaction<'static, Sqlite>, prompt_id: &str) -> Result<()> {
        ensure_prompt(tx, prompt_id).await
    }
}
