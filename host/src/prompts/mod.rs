//! The prompt registry: templates ([`template`]), the seeded AutoDev prompts ([`seeds`]) and the
//! domain service ([`PromptRegistry`]) that creates immutable versions, deploys, rolls back and
//! resolves the version a task must use. Storage is the [`crate::store`]'s; HTTP is the API's.

mod registry;
pub mod seeds;
pub mod template;

pub use registry::{
    CacheStats, CreateVersion, DEFAULT_RESOLVE_CACHE_TTL, MAX_CONTENT_BYTES, MAX_NOTES_BYTES,
    MAX_TASK_ID_BYTES, PromptRegistry, ResolvedPrompt,
};
pub use template::{RenderError, Template, TemplateError};

use crate::store::StoreError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The template does not parse; the error says where.
    #[error("invalid template: {0}")]
    Template(#[from] TemplateError),
    /// The named thing (`prompt planner`, `version 7 of prompt planner`) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation makes no sense now (rollback with nothing to roll back to).
    #[error("{0}")]
    InvalidState(String),
    /// A schema constraint refused the change; the constraint's name.
    #[error("conflict on {0}")]
    Conflict(String),
    /// The input is unacceptable (empty or oversized content, unknown parent version).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PromptError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(missing) => PromptError::NotFound(missing.to_string()),
            StoreError::InvalidState(message) => PromptError::InvalidState(message),
            StoreError::Conflict { constraint } => PromptError::Conflict(constraint),
            other => PromptError::Store(other),
        }
    }
}
