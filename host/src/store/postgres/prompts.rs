//! The prompt domain on PostgreSQL: a write locks the prompt's row, so writers to one prompt
//! queue while writers to other prompts proceed.

use async_trait::async_trait;
use sqlx::{Postgres, Transaction};

use super::PgStore;
use crate::store::sql::prompts::PromptDialect;
use crate::store::{Missing, Result};

#[async_trait]
impl PromptDialect for PgStore {
    async fn lock_prompt(tx: &mut Transaction<'static, Postgres>, prompt_id: &str) -> Result<()> {
        sqlx::query_scalar::<_, String>("SELECT id FROM prompts WHERE id = $1 FOR UPDATE")
            .bind(prompt_id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|_| ())
            .ok_or_else(|| Missing::prompt(prompt_id).into())
    }
}
