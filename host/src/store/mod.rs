//! The storage interface: one trait, two backends ([`sqlite`], [`postgres`]).
//!
//! Invariants live in the schema (see `migrations/`): one active version per prompt (partial
//! unique index `one_active_version_per_prompt`), unique `(prompt_id, version)`, immutable
//! versions (trigger `prompt_versions_immutable`), foreign keys, idempotent run ingestion
//! (`prompt_optimization_data_run_key`). Backends translate constraint violations into
//! [`StoreError::Conflict`] by constraint name, never by message text. Nothing here knows about
//! HTTP.
//!
//! [`open_store`] picks the backend from the URL scheme and applies the migrations.
//! `NotFound` carries the subject only (`prompt planner`, `version 7 of prompt planner`), so
//! callers can phrase the message.
//!
//! Extending the schema: add a migration with the same number and name to both
//! `migrations/sqlite` and `migrations/postgres` (never edit an applied one), name every
//! constraint, and add the behaviour as a case of the conformance suite (`conformance.rs`), which
//! also checks that both migration sets define the same columns and named constraints.

pub mod postgres;
mod rollback;
pub mod sqlite;
#[doc(hidden)]
pub mod testing;

#[cfg(test)]
mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A result whose error is a [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist (`prompt planner`, `version 7 of planner`).
    #[error("{0} not found")]
    NotFound(String),
    /// A schema constraint refused the change; the field is the constraint's name.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The violated constraint, as named in the migrations.
        constraint: String,
    },
    /// The operation makes no sense in the current state (e.g. rollback with no history).
    #[error("{0}")]
    InvalidState(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database URL names no backend this build supports.
    #[error("unsupported database url {0:?}: expected sqlite:… or postgres://…")]
    UnsupportedUrl(String),
}

impl StoreError {
    /// A value read from the database does not fit the domain type (a corrupt or foreign row).
    pub(crate) fn decode(message: impl Into<String>) -> Self {
        let message: String = message.into();
        StoreError::Database(sqlx::Error::Decode(message.into()))
    }
}

/// Opens the backend named by the URL scheme (`sqlite:` or `postgres:`/`postgresql:`) and
/// applies its migrations, so callers always get an up-to-date schema. Seeding is separate
/// ([`Store::seed`]) because it is a product decision, not a schema one.
pub async fn open_store(database_url: &str) -> Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(database_url).await?)
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Arc::new(PgStore::connect(database_url).await?)
    } else {
        // Only the scheme: the rest may hold a password.
        let scheme = database_url.split(':').next().unwrap_or_default();
        return Err(StoreError::UnsupportedUrl(format!("{scheme}:…")));
    };
    store.migrate().await?;
    Ok(store)
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

/// The current time at the precision both backends keep (microseconds), so a value written and
/// read back compares equal.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Where a prompt version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionSource {
    /// Written by a person through the API or CLI.
    Manual,
    /// Imported from elsewhere.
    Import,
    /// Proposed by the optimizer.
    Optimizer,
    /// Seeded on first start.
    Seed,
}

impl VersionSource {
    /// The value stored in `prompt_versions.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::Manual => "manual",
            VersionSource::Import => "import",
            VersionSource::Optimizer => "optimizer",
            VersionSource::Seed => "seed",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "manual" => VersionSource::Manual,
            "import" => VersionSource::Import,
            "optimizer" => VersionSource::Optimizer,
            "seed" => VersionSource::Seed,
            _ => return None,
        })
    }
}

/// A prompt: one agent's job (`planner`, `coder`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Prompt {
    /// Stable identifier such as `planner`.
    pub id: String,
    /// What the prompt is for.
    pub description: String,
    /// Template variables the prompt declares.
    pub variables: Vec<String>,
    /// When the prompt was created.
    pub created_at: DateTime<Utc>,
}

/// One immutable version of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptVersion {
    /// Row id.
    pub id: Uuid,
    /// The prompt this version belongs to.
    pub prompt_id: String,
    /// 1, 2, 3, … per prompt.
    pub version: i64,
    /// The template text.
    pub content: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Whether it is the version served now.
    pub is_active: bool,
    /// Where it came from.
    pub source: VersionSource,
    /// The version it was derived from, if any.
    pub parent_version: Option<i64>,
    /// Free-text notes.
    pub notes: Option<String>,
    /// Who created it (token name).
    pub created_by: Option<String>,
    /// Runs recorded against this version.
    pub tasks_executed: i64,
    /// Share of successful runs, in percent.
    pub success_rate: Option<f64>,
    /// Mean tokens per run.
    pub avg_tokens: Option<i64>,
}

/// What is needed to create a version; the store assigns the number (max + 1).
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// The prompt.
    pub prompt_id: String,
    /// The template text (already validated by [`crate::prompts`]).
    pub content: String,
    /// Where it came from.
    pub source: VersionSource,
    /// The version it derives from.
    pub parent_version: Option<i64>,
    /// Notes.
    pub notes: Option<String>,
    /// Who creates it.
    pub created_by: Option<String>,
}

/// What a change of the active version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeployAction {
    /// A version was deployed.
    Deploy,
    /// The previously active version was re-activated.
    Rollback,
}

impl DeployAction {
    /// The value stored in `deploy_history.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployAction::Deploy => "deploy",
            DeployAction::Rollback => "rollback",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "deploy" => DeployAction::Deploy,
            "rollback" => DeployAction::Rollback,
            _ => return None,
        })
    }
}

/// One entry of the deploy history: every change of the active version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployRecord {
    /// Row id.
    pub id: Uuid,
    /// The prompt.
    pub prompt_id: String,
    /// The version active before, if any.
    pub from_version: Option<i64>,
    /// The version active after.
    pub to_version: i64,
    /// Deploy or rollback.
    pub action: DeployAction,
    /// The name of the token that did it.
    pub actor: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A failure-mode code of a prompt's taxonomy (axial coding).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureMode {
    /// The prompt.
    pub prompt_id: String,
    /// Code such as `wrong_files`.
    pub code: String,
    /// What it means.
    pub description: String,
}

/// A prompt with its versions, as listed by `GET /api/prompts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptWithVersions {
    /// The prompt.
    #[serde(flatten)]
    pub prompt: Prompt,
    /// The active version number, if any.
    pub active_version: Option<i64>,
    /// All versions, oldest first.
    pub versions: Vec<PromptVersion>,
}

/// What the seeding step writes on first start (idempotent).
#[derive(Debug, Clone)]
pub struct PromptSeed {
    /// The prompt (its `created_at` is replaced by the time of writing).
    pub prompt: Prompt,
    /// Its first version's text (becomes version 1, active).
    pub content: String,
    /// Its failure-mode taxonomy.
    pub failure_modes: Vec<FailureMode>,
}

/// The actor recorded for the activation of seeded versions.
pub const SEED_ACTOR: &str = "seed";

/// A stored grader definition: one named grader of one prompt (`planner` / `files_match`). The
/// definition is OpenAI grader JSON or `{"type":"wasm",…}`; the store keeps it as given and
/// checks only that it is a JSON object (the API validates it against the grader runtime before
/// writing, see [`crate::graders::stored`]).
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
    /// Who first created it (token name, or [`SEED_ACTOR`]).
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

/// Whether [`Store::put_grader`] created a definition or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// There was none with this prompt and name.
    Created,
    /// One existed; its definition and flag were replaced (id and `created_at` kept).
    Replaced,
}

/// The storage interface every backend implements; see [`sqlite::SqliteStore`] and
/// [`postgres::PgStore`]. All operations are atomic.
///
/// Deploy rules shared by both backends:
/// - exactly one version is active after every deploy or rollback (the schema refuses two);
/// - deploying the version that is already active changes nothing and writes no history; it
///   succeeds and returns the history entry that made that version active;
/// - rollback undoes deploys like a stack: it re-activates the version that was active before the
///   current one was deployed, so rolling back twice goes two deploys back; with nothing left to
///   undo it fails with [`StoreError::InvalidState`] and changes nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the backend's migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers (for health checks).
    async fn ping(&self) -> Result<()>;
    /// Writes seeds whose prompt does not exist yet; never touches an existing prompt. A seeded
    /// prompt gets version 1 (source `seed`, active), its failure modes and a history entry by
    /// [`SEED_ACTOR`].
    async fn seed(&self, seeds: &[PromptSeed]) -> Result<()>;
    /// Every prompt with its versions.
    async fn list_prompts(&self) -> Result<Vec<PromptWithVersions>>;
    /// One prompt.
    async fn get_prompt(&self, prompt_id: &str) -> Result<Prompt>;
    /// The versions of a prompt, oldest first; `NotFound` if the prompt does not exist.
    async fn list_versions(&self, prompt_id: &str) -> Result<Vec<PromptVersion>>;
    /// One version; `NotFound` if it does not exist.
    async fn get_version(&self, prompt_id: &str, version: i64) -> Result<PromptVersion>;
    /// The active version; `NotFound` if the prompt has none.
    async fn active_version(&self, prompt_id: &str) -> Result<PromptVersion>;
    /// Creates a version numbered max + 1 (inactive), retrying on a concurrent number clash.
    async fn create_version(&self, new: NewVersion) -> Result<PromptVersion>;
    /// Makes `version` the only active one and records the change.
    async fn deploy(&self, prompt_id: &str, version: i64, actor: &str) -> Result<DeployRecord>;
    /// Re-activates the version that was active before the current one and records it.
    async fn rollback(&self, prompt_id: &str, actor: &str) -> Result<DeployRecord>;
    /// Every change of the active version, oldest first.
    async fn deploy_history(&self, prompt_id: &str) -> Result<Vec<DeployRecord>>;
    /// The failure-mode taxonomy of a prompt.
    async fn failure_modes(&self, prompt_id: &str) -> Result<Vec<FailureMode>>;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_store_refuses_an_unknown_scheme_without_echoing_the_url() {
        match open_store("mysql://user:secret@host/db").await {
            Err(StoreError::UnsupportedUrl(shown)) => {
                assert_eq!(shown, "mysql:…");
            }
            Err(other) => panic!("expected UnsupportedUrl, got {other}"),
            Ok(_) => panic!("expected UnsupportedUrl, got a store"),
        }
    }

    #[tokio::test]
    async fn sqlite_in_memory_keeps_one_database_across_calls() {
        let store = open_store("sqlite::memory:").await.unwrap();
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .unwrap();
        assert_eq!(store.list_prompts().await.unwrap().len(), 4);
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn sqlite_file_and_missing_directories_are_created() {
        let dir = testing::TempDirGuard::new().unwrap();
        let path = dir.path().join("nested/deeper/flywheel.db");
        let store = open_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.ping().await.unwrap();
        assert!(path.exists());
        // Opening again applies no migration twice and keeps the data.
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .unwrap();
        drop(store);
        let again = open_store(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(again.list_prompts().await.unwrap().len(), 4);
    }
}
