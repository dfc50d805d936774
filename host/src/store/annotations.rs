//! The annotation domain of the store: what people and rules say about a recorded run (rating,
//! critique, failure mode), its append-only history, the failure-mode taxonomy's growth, the
//! queue of runs waiting for a person, and the axial-coding table of failure-mode counts. The
//! [`AnnotationStore`] trait and its row types live here; the SQL is written once in
//! `sql/annotations.rs`.
//!
//! # Who wins
//!
//! A run holds one current annotation (columns of `prompt_optimization_data`) and every change in
//! the `annotations` table, which the schema keeps append-only. A person's annotation replaces a
//! rule's; a rule never replaces nor clears a person's (the call answers
//! [`AnnotateOutcome::Kept`] and writes nothing).
//!
//! # What "failed" means here
//!
//! A run *failed* when its success is known and it did not succeed, by the same definition as
//! the version figures (`sql/figures.rs`): the tests passed when known, else the rating is
//! `good`, else every enabled grader passed. So a run with unknown tests and a `bad` rating
//! failed; a run with failed tests and a `good` rating also failed (the tests decide).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AnnotationSource, FailureMode, Rating, Result};

/// What an entry of the history did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationAction {
    /// An annotation was set (replacing any earlier one).
    Set,
    /// The current annotation was removed.
    Clear,
}

impl AnnotationAction {
    /// The value stored in `annotations.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnotationAction::Set => "set",
            AnnotationAction::Clear => "clear",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "set" => Some(AnnotationAction::Set),
            "clear" => Some(AnnotationAction::Clear),
            _ => None,
        }
    }
}

/// An annotation to set on a run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnnotation {
    /// Good or bad.
    pub rating: Rating,
    /// The critique, free text.
    pub output_feedback: Option<String>,
    /// A code of the run's prompt's failure-mode taxonomy.
    pub failure_mode: Option<String>,
    /// Person or rule.
    pub source: AnnotationSource,
    /// The token's name for a person, the rule's name for a rule.
    pub actor: String,
}

/// The current annotation of a run, as its row holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentAnnotation {
    /// The run.
    pub run_id: Uuid,
    /// Good or bad.
    pub rating: Rating,
    /// The critique.
    pub output_feedback: Option<String>,
    /// The failure-mode code.
    pub failure_mode: Option<String>,
    /// Person or rule.
    pub source: AnnotationSource,
    /// Who made it (token name or rule name).
    pub annotated_by: String,
    /// When.
    pub annotated_at: DateTime<Utc>,
}

/// What [`AnnotationStore::annotate`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnotateOutcome {
    /// The annotation is now the run's current one (and in the history).
    Set(CurrentAnnotation),
    /// A rule's annotation met a person's: the person's is kept, nothing was written.
    Kept(CurrentAnnotation),
}

impl AnnotateOutcome {
    /// The run's current annotation after the call.
    pub fn current(&self) -> &CurrentAnnotation {
        match self {
            AnnotateOutcome::Set(current) | AnnotateOutcome::Kept(current) => current,
        }
    }
}

/// What [`AnnotationStore::clear_annotation`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ClearOutcome {
    /// The current annotation was removed (and the removal recorded).
    Cleared,
    /// The run had no annotation: nothing was written.
    NothingToClear,
    /// A rule asked to clear a person's annotation: it is kept, nothing was written.
    Kept(CurrentAnnotation),
}

/// One entry of a run's annotation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnotationRecord {
    /// Entry id.
    pub id: Uuid,
    /// The run.
    pub run_id: Uuid,
    /// Set or clear.
    pub action: AnnotationAction,
    /// The rating set (absent for a clear).
    pub rating: Option<Rating>,
    /// The critique set.
    pub output_feedback: Option<String>,
    /// The failure mode set.
    pub failure_mode: Option<String>,
    /// Person or rule.
    pub source: AnnotationSource,
    /// Token name or rule name.
    pub actor: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Where a page of the annotation queue starts: after the run with this failed flag and id.
///
/// The queue is ordered by failed first, then id descending; ids are UUIDv7, so id order is
/// recording order and "newest first" needs no timestamp comparison (whose text forms differ
/// between backends). Written as `<0|1>-<uuid hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCursor {
    /// Whether the last run of the previous page failed.
    pub failed: bool,
    /// Its id.
    pub id: Uuid,
}

impl fmt::Display for QueueCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", u8::from(self.failed), self.id.simple())
    }
}

impl FromStr for QueueCursor {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        let invalid = || format!("invalid cursor {text:?}: pass the nextCursor of a previous page");
        let (failed, id) = text.split_once('-').ok_or_else(invalid)?;
        let failed = match failed {
            "0" => false,
            "1" => true,
            _ => return Err(invalid()),
        };
        // Only the simple (32 hex digits) form this type writes.
        if id.len() != 32 {
            return Err(invalid());
        }
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(QueueCursor { failed, id })
    }
}

/// A run waiting for a person's annotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedRun {
    /// The run.
    pub id: Uuid,
    /// Its prompt.
    pub prompt_id: String,
    /// The version it ran.
    pub version: i64,
    /// The task.
    pub task_id: String,
    /// Its attempt within the task.
    pub attempt: i64,
    /// What the agent answered.
    pub output: Option<String>,
    /// The outcome's tests, when reported.
    pub tests_passed: Option<bool>,
    /// Whether every enabled grader passed, when graded.
    pub graders_passed: Option<bool>,
    /// Tests or graders failed: such runs come first.
    pub failed: bool,
    /// A rule's current rating, if a rule annotated it.
    pub rating: Option<Rating>,
    /// A rule's current failure mode.
    pub failure_mode: Option<String>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// One page of the annotation queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuePage {
    /// The runs, failed first, then newest.
    pub items: Vec<QueuedRun>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Runs waiting in the whole queue now (read in the same snapshot as `items`).
    pub waiting: u64,
    /// Of those, how many come before this page (before its cursor): the first item is number
    /// `ahead + 1` of `waiting`.
    pub ahead: u64,
}

/// One row of the axial-coding table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureModeCount {
    /// The code.
    pub code: String,
    /// What it means.
    pub description: String,
    /// Failed runs annotated with this code.
    pub count: i64,
    /// `count` divided by the failed runs (0 to 1); absent when no run failed.
    pub share: Option<f64>,
}

/// The axial-coding table of a prompt (or one version of it): per code of the taxonomy how many
/// failed runs carry it, and how many failed runs have no code yet. See the module documentation
/// for what "failed" means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureModeCounts {
    /// The prompt.
    pub prompt_id: String,
    /// The version counted, or every version when absent.
    pub version: Option<i64>,
    /// Production runs whose success is known and false.
    pub failed_runs: i64,
    /// Every code of the taxonomy, by code (zero counts included).
    pub codes: Vec<FailureModeCount>,
    /// Failed runs with no failure mode yet.
    pub uncoded: i64,
    /// `uncoded` divided by the failed runs; absent when no run failed.
    pub uncoded_share: Option<f64>,
}

/// Checks a failure-mode code as the schema's `failure_modes_code_format` does: 1 to 50
/// characters, a lower-case letter first, then lower-case letters, digits and `_`. Checked
/// before any SQL because SQLite does not name the constraint a statement violated.
pub fn valid_failure_mode_code(code: &str) -> bool {
    let mut chars = code.chars();
    (1..=50).contains(&code.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Annotations of recorded runs and what is derived from them. `NotFound` errors carry a
/// [`Missing`](super::Missing) naming the run, the prompt or the version.
#[async_trait]
pub trait AnnotationStore: Send + Sync {
    /// Sets the run's annotation and appends it to the history, then refreshes its version's
    /// figures (a rating decides success when the tests are unknown). A failure mode outside the
    /// prompt's taxonomy is [`StoreError::InvalidFailureMode`](super::StoreError) listing the
    /// allowed codes; a rule meeting a person's annotation changes nothing
    /// ([`AnnotateOutcome::Kept`]).
    async fn annotate(&self, run_id: Uuid, new: NewAnnotation) -> Result<AnnotateOutcome>;
    /// Removes the run's current annotation and records the removal (action `clear`); figures
    /// refreshed. A rule never clears a person's annotation.
    async fn clear_annotation(
        &self,
        run_id: Uuid,
        actor: &str,
        source: AnnotationSource,
    ) -> Result<ClearOutcome>;
    /// The run's current annotation, if any.
    async fn current_annotation(&self, run_id: Uuid) -> Result<Option<CurrentAnnotation>>;
    /// Every annotation change of the run, oldest first.
    async fn annotation_history(&self, run_id: Uuid) -> Result<Vec<AnnotationRecord>>;
    /// Adds a code to the prompt's taxonomy. A code not of the format of
    /// [`valid_failure_mode_code`] is a `Conflict` on `failure_modes_code_format`; a code the
    /// prompt has already is a `Conflict` on `failure_modes_pkey`.
    async fn add_failure_mode(
        &self,
        prompt_id: &str,
        code: &str,
        description: &str,
    ) -> Result<FailureMode>;
    /// Production runs of the prompt with no person's annotation: failed first (tests or
    /// graders failed), then newest; at most `limit` after `cursor`.
    async fn annotation_queue(
        &self,
        prompt_id: &str,
        limit: u32,
        cursor: Option<QueueCursor>,
    ) -> Result<QueuePage>;
    /// The axial-coding table of the prompt's production runs, of one version when given.
    async fn failure_mode_counts(
        &self,
        prompt_id: &str,
        version: Option<i64>,
    ) -> Result<FailureModeCounts>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_schema_format() {
        for good in ["a", "wrong_files", "e2e_fail", &"x".repeat(50)] {
            assert!(valid_failure_mode_code(good), "{good}");
        }
        for bad in ["", "Wrong", "1st", "_x", "a-b", "a b", "é", &"x".repeat(51)] {
            assert!(!valid_failure_mode_code(bad), "{bad}");
        }
    }

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_refuses_anything_else() {
        let cursor = QueueCursor {
            failed: true,
            id: Uuid::now_v7(),
        };
        assert_eq!(cursor.to_string().parse::<QueueCursor>(), Ok(cursor));
        for bad in [
            "",
            "1",
            "2-0190",
            "1-not-a-uuid",
            &format!("1-{}", cursor.id.hyphenated()),
        ] {
            assert!(bad.parse::<QueueCursor>().is_err(), "{bad}");
        }
    }
}
