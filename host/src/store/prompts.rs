//! The prompt domain of the store: prompts, their immutable versions, the active version with its
//! deploy history, and failure-mode taxonomies, as the [`PromptStore`] trait and its row types.
//! The SQL is written once in `sql/prompts.rs`; the backends add only their per-prompt write lock
//! (`sqlite/prompts.rs`, `postgres/prompts.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Result;

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

/// Prompts, versions, deploys and failure modes. All operations are atomic.
///
/// Deploy rules shared by both backends:
/// - exactly one version is active after every deploy or rollback (the schema refuses two);
/// - deploying the version that is already active changes nothing and writes no history; it
///   succeeds and returns the history entry that made that version active;
/// - rollback undoes deploys like a stack: it re-activates the version that was active before the
///   current one was deployed, so rolling back twice goes two deploys back; with nothing left to
///   undo it fails with [`StoreError::InvalidState`](super::StoreError::InvalidState) and changes
///   nothing.
///
/// `NotFound` errors carry a [`Missing`](super::Missing) naming the prompt or version.
#[async_trait]
pub trait PromptStore: Send + Sync {
    /// Writes seeds whose prompt does not exist yet; never touches an existing prompt. A seeded
    /// prompt gets version 1 (source `seed`, active), its failure modes and a history entry by
    /// [`SEED_ACTOR`].
    async fn seed(&self, seeds: &[PromptSeed]) -> Result<()>;
    /// Creates a prompt (beyond the seeds) with version 1 (source `manual`, written by `actor`,
    /// active), its failure modes and a history entry by `actor`. A prompt with this id is a
    /// [`StoreError::Conflict`](super::StoreError::Conflict) on `prompts_pkey`; nothing is
    /// written on error.
    async fn create_prompt(&self, prompt: &PromptSeed, actor: &str) -> Result<()>;
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
}
