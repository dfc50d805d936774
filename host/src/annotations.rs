//! What people say about recorded runs: the checks on an annotation, a failure-mode code and a
//! page request before the store is touched, shared by the API and the CLI's database mode. Who
//! wins between a person and a rule, the history and the counts are the store's
//! ([`crate::store::AnnotationStore`]); the rules that annotate automatically are not here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{
    AnnotationSource, ClearOutcome, CurrentAnnotation, FailureMode, NewAnnotation, QueueCursor,
    QueuePage, Rating, Store, StoreError, valid_failure_mode_code,
};

/// Longest critique accepted, in characters: a few screens of text; longer is a paste mistake.
pub const MAX_FEEDBACK_CHARS: usize = 20_000;
/// Longest failure-mode description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Runs per queue page when the caller does not say.
pub const DEFAULT_QUEUE_LIMIT: u32 = 50;
/// Most runs per queue page: a page is read by a person.
pub const MAX_QUEUE_LIMIT: u32 = 500;

/// Why a request about annotations was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    /// A value out of its accepted range (too long a critique, a bad code, an empty description).
    #[error("{0}")]
    Invalid(String),
    /// A page size out of range.
    #[error("{0}")]
    InvalidPage(String),
    /// A cursor this service did not write.
    #[error("{0}")]
    InvalidCursor(String),
    /// The store refused or failed (unknown run or prompt, failure mode outside the taxonomy,
    /// duplicate code).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A person's annotation of a run, as the API and the CLI take it.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnnotationRequest {
    /// `good` or `bad`.
    pub rating: Rating,
    /// A critique of the output.
    #[serde(default)]
    pub output_feedback: Option<String>,
    /// A code of the prompt's failure-mode taxonomy.
    #[serde(default)]
    pub failure_mode: Option<String>,
}

/// Sets a person's annotation (the token's name as `actor`): it replaces any earlier one,
/// including a rule's.
pub async fn annotate(
    store: &Arc<dyn Store>,
    run_id: Uuid,
    request: AnnotationRequest,
    actor: &str,
) -> Result<CurrentAnnotation, AnnotationError> {
    if let Some(feedback) = &request.output_feedback
        && feedback.chars().count() > MAX_FEEDBACK_CHARS
    {
        return Err(AnnotationError::Invalid(format!(
            "outputFeedback is longer than {MAX_FEEDBACK_CHARS} characters"
        )));
    }
    let outcome = store
        .annotate(
            run_id,
            NewAnnotation {
                rating: request.rating,
                output_feedback: request.output_feedback,
                failure_mode: request.failure_mode,
                source: AnnotationSource::Person,
                actor: actor.to_owned(),
            },
        )
        .await?;
    Ok(outcome.current().clone())
}

/// Clears a run's annotation as a person; clearing a run without one is not an error.
pub async fn clear(
    store: &Arc<dyn Store>,
    run_id: Uuid,
    actor: &str,
) -> Result<(), AnnotationError> {
    let outcome = store
        .clear_annotation(run_id, actor, AnnotationSource::Person)
        .await?;
    // Only a rule is ever kept from clearing, never a person.
    debug_assert!(!matches!(outcome, ClearOutcome::Kept(_)));
    Ok(())
}

/// Adds a code to a prompt's taxonomy after checking its format and description.
pub async fn add_failure_mode(
    store: &Arc<dyn Store>,
    prompt_id: &str,
    code: &str,
    description: &str,
) -> Result<FailureMode, AnnotationError> {
    if !valid_failure_mode_code(code) {
        return Err(AnnotationError::Invalid(format!(
            "failure-mode code {code:?} must be 1 to 50 lower-case letters, digits and `_`, \
             starting with a letter"
        )));
    }
    let length = description.chars().count();
    if description.trim().is_empty() || length > MAX_DESCRIPTION_CHARS {
        return Err(AnnotationError::Invalid(format!(
            "a failure-mode description must be 1 to {MAX_DESCRIPTION_CHARS} characters, not blank"
        )));
    }
    Ok(store.add_failure_mode(prompt_id, code, description).await?)
}

/// One page of a prompt's annotation queue; `limit` defaults to [`DEFAULT_QUEUE_LIMIT`].
pub async fn queue(
    store: &Arc<dyn Store>,
    prompt_id: &str,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<QueuePage, AnnotationError> {
    let limit = limit.unwrap_or(DEFAULT_QUEUE_LIMIT);
    if !(1..=MAX_QUEUE_LIMIT).contains(&limit) {
        return Err(AnnotationError::InvalidPage(format!(
            "limit must be 1 to {MAX_QUEUE_LIMIT}, not {limit}"
        )));
    }
    let cursor = cursor
        .map(str::parse::<QueueCursor>)
        .transpose()
        .map_err(AnnotationError::InvalidCursor)?;
    Ok(store.annotation_queue(prompt_id, limit, cursor).await?)
}
