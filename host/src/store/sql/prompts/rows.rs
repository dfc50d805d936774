//! The prompt domain's rows as both backends read them, and their conversion into the domain
//! types (the stored enums are checked here, so a foreign value is a decode error).

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::types::Json;

use crate::store::sql::DbId;
use crate::store::{
    DeployAction, DeployRecord, FailureMode, Prompt, PromptVersion, Result, StoreError,
    VersionSource,
};

#[derive(FromRow)]
pub(super) struct PromptRow {
    id: String,
    description: String,
    variables: Json<Vec<String>>,
    created_at: DateTime<Utc>,
}

impl From<PromptRow> for Prompt {
    fn from(row: PromptRow) -> Self {
        Prompt {
            id: row.id,
            description: row.description,
            variables: row.variables.0,
            created_at: row.created_at,
        }
    }
}

#[derive(FromRow)]
pub(super) struct VersionRow {
    id: DbId,
    prompt_id: String,
    version: i64,
    content: String,
    created_at: DateTime<Utc>,
    is_active: bool,
    source: String,
    parent_version: Option<i64>,
    notes: Option<String>,
    created_by: Option<String>,
    tasks_executed: i64,
    success_rate: Option<f64>,
    avg_tokens: Option<i64>,
}

impl TryFrom<VersionRow> for PromptVersion {
    type Error = StoreError;

    fn try_from(row: VersionRow) -> Result<Self> {
        Ok(PromptVersion {
            id: row.id.0,
            prompt_id: row.prompt_id,
            version: row.version,
            content: row.content,
            created_at: row.created_at,
            is_active: row.is_active,
            source: VersionSource::parse(&row.source).ok_or_else(|| {
                StoreError::decode(format!("unknown version source {:?}", row.source))
            })?,
            parent_version: row.parent_version,
            notes: row.notes,
            created_by: row.created_by,
            tasks_executed: row.tasks_executed,
            success_rate: row.success_rate,
            avg_tokens: row.avg_tokens,
        })
    }
}

pub(super) fn parse_action(action: &str) -> Result<DeployAction> {
    DeployAction::parse(action)
        .ok_or_else(|| StoreError::decode(format!("unknown deploy action {action:?}")))
}

#[derive(FromRow)]
pub(super) struct HistoryRow {
    id: DbId,
    prompt_id: String,
    from_version: Option<i64>,
    to_version: i64,
    action: String,
    actor: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<HistoryRow> for DeployRecord {
    type Error = StoreError;

    fn try_from(row: HistoryRow) -> Result<Self> {
        Ok(DeployRecord {
            id: row.id.0,
            prompt_id: row.prompt_id,
            from_version: row.from_version,
            to_version: row.to_version,
            action: parse_action(&row.action)?,
            actor: row.actor,
            created_at: row.created_at,
        })
    }
}

#[derive(FromRow)]
pub(super) struct FailureModeRow {
    prompt_id: String,
    code: String,
    description: String,
}

impl From<FailureModeRow> for FailureMode {
    fn from(row: FailureModeRow) -> Self {
        FailureMode {
            prompt_id: row.prompt_id,
            code: row.code,
            description: row.description,
        }
    }
}
