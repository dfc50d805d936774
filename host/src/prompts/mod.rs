//! The prompt registry: templates ([`template`]), the seeded AutoDev prompts ([`seeds`]), new
//! prompts ([`create`]), imports of prompts written elsewhere ([`import`]) and the domain
//! service ([`PromptRegistry`]) that creates immutable versions, deploys, rolls back and
//! resolves the version a task must use, including A/B tests ([`ab_tests`]: start, stop,
//! results, decisions; [`evaluator`]: carrying out decisions in the background; `exposures.rs`:
//! recording assignments without blocking resolve). Storage is the [`crate::store`]'s; HTTP is
//! the API's.

pub mod ab_tests;
pub mod create;
pub mod evaluator;
mod exposures;
pub mod import;
mod registry;
pub mod seeds;
pub mod template;

pub use ab_tests::{AbConfig, StartAbTest};
pub use create::{CreatePrompt, NewFailureMode};
pub use exposures::EXPOSURE_QUEUE;
pub use import::{ImportPrompt, ImportedVersion};
pub use registry::{
    CacheStats, CreateVersion, DEFAULT_RESOLVE_CACHE_TTL, MAX_CONTENT_BYTES, MAX_NOTES_BYTES,
    MAX_TASK_ID_BYTES, PromptRegistry, ResolvedPrompt,
};
pub use template::{RenderError, Template, TemplateError};

use crate::store::StoreError;

/// Why a registry operation failed: the registry's own refusals, or the store's error carried
/// through whole (an unknown prompt is `Store(StoreError::NotFound(Missing::Prompt(_)))`), so the
/// API maps one set of storage errors, not a copy of them.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The template does not parse; the error says where.
    #[error("invalid template: {0}")]
    Template(#[from] TemplateError),
    /// The input is unacceptable (empty or oversized content, unknown parent version).
    #[error("{0}")]
    Invalid(String),
    /// An imported template's variables differ from the active version's, and the request did
    /// not allow it.
    #[error(
        "the template's variables differ from the active version's: missing {}, new {} \
         (allow with allowVariableChanges)",
        list(missing),
        list(added)
    )]
    VariablesChanged {
        /// Variables of the active version the template does not use.
        missing: Vec<String>,
        /// Variables the template uses that the active version does not.
        added: Vec<String>,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
