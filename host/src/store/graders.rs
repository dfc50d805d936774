//! The grader-definition domain of the store: named grader definitions per prompt, as the
//! [`GraderStore`] trait and its row types. The SQL is written once in `sql/graders.rs`; no
//! backend needs dialect code of its own for it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Result, StoreError};

/// A stored grader definition: one named grader of one prompt (`planner` / `files_match`). The
/// definition is OpenAI grader JSON or `{"type":"wasm",…}`; the store keeps it as given and
/// checks only that it is a JSON object (the API validates it against the grader runtime before
/// writing, see [`crate::grading::stored`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraderDefinition {
    /// Row id.
    pub id: Uuid,
    /// The prompt whose outputs it grades.
    pub prompt_id: String,
    /// Unique per prompt (constraint `graders_prompt_id_name_key`).
    pub name: String,
    /// The definition JSON.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Disabled definitions are kept but not run.
    pub enabled: bool,
    /// Who first created it (token name, or [`SEED_ACTOR`](super::SEED_ACTOR)).
    pub created_by: Option<String>,
    /// When it was first created.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced or enabled/disabled.
    pub updated_at: DateTime<Utc>,
}

/// What is needed to create or replace a grader definition.
#[derive(Debug, Clone)]
pub struct NewGraderDefinition {
    /// The prompt (must exist).
    pub prompt_id: String,
    /// The name, 1 to 100 characters (constraint `graders_name_nonempty`).
    pub name: String,
    /// The definition JSON object.
    pub definition: serde_json::Value,
    /// Whether it runs.
    pub enabled: bool,
    /// Who writes it.
    pub created_by: Option<String>,
}

/// Whether [`GraderStore::put_grader`] created a definition or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// There was none with this prompt and name.
    Created,
    /// One existed; its definition and flag were replaced (id and `created_at` kept).
    Replaced,
}

/// Refuses a definition that is not a JSON object before any SQL runs, as
/// `graders_definition_json`: SQLite reports a failed CHECK without its name, and the name
/// check of the same table would otherwise be blamed.
pub(crate) fn check_grader_json(new: &NewGraderDefinition) -> Result<()> {
    if new.definition.is_object() {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            constraint: "graders_definition_json".to_owned(),
        })
    }
}

/// Stored grader definitions. All operations are atomic; `NotFound` errors carry a
/// [`Missing`](super::Missing) naming the prompt or the definition.
#[async_trait]
pub trait GraderStore: Send + Sync {
    /// Creates the definition `(prompt_id, name)` or replaces its definition and enabled flag,
    /// keeping its id, creator and creation time. `NotFound` if the prompt does not exist.
    async fn put_grader(&self, new: NewGraderDefinition) -> Result<(GraderDefinition, PutOutcome)>;
    /// Writes the seeds whose `(prompt_id, name)` does not exist yet and never touches an
    /// existing one; returns how many were written. A seed whose prompt does not exist is a
    /// `NotFound` and nothing is written.
    async fn seed_graders(&self, seeds: &[NewGraderDefinition]) -> Result<usize>;
    /// Every definition (of one prompt when given, `NotFound` if it does not exist), ordered by
    /// prompt, then name.
    async fn list_graders(&self, prompt_id: Option<&str>) -> Result<Vec<GraderDefinition>>;
    /// One definition; `NotFound` if absent.
    async fn get_grader(&self, prompt_id: &str, name: &str) -> Result<GraderDefinition>;
    /// Deletes one definition; `NotFound` if absent. Grading results that referenced it keep
    /// their grader name (the foreign key sets `grader_id` to NULL).
    async fn delete_grader(&self, prompt_id: &str, name: &str) -> Result<()>;
    /// Enables or disables one definition; `NotFound` if absent.
    async fn set_grader_enabled(
        &self,
        prompt_id: &str,
        name: &str,
        enabled: bool,
    ) -> Result<GraderDefinition>;
}
