//! The lean read of runs behind exports and dataset snapshots ([`RunStore::export_runs`]): the
//! filter, order and cursor of `list_runs`, but only the columns an export row is made of —
//! input, output, outcome, and the annotation and grader results only when asked — and no
//! parsing of what it drops (timestamps, enums, the rest of the annotation). A million-run export
//! spends its time here, so every column left out is time saved on both backends.
//!
//! [`RunStore::export_runs`]: crate::store::RunStore::export_runs

use sqlx::FromRow;
use sqlx::types::Json;

use super::filter::filter_clause;
use crate::store::sql::DbId;
use crate::store::{
    ExportAnnotation, ExportFields, ExportOutcome, ExportRun, Rating, Result, RunFilter, StoreError,
};

/// Read always, in the order of [`ExportRow`]'s first fields. `has_outcome` is the test
/// `Run::outcome` makes (an outcome was applied), without reading its timestamp.
const BASE_COLUMNS: &str = "id, input_variables, output, outcome_at IS NOT NULL AS has_outcome, \
     tests_passed, pr_merged, expected_files, failure_signature";
/// Read only with [`ExportFields::annotations`].
const ANNOTATION_COLUMNS: &str = "rating, output_feedback, failure_mode";
/// Read only with [`ExportFields::grader_results`].
const GRADER_COLUMNS: &str = "grader_results";

/// The statement for `filter` and `fields`: `list_runs`'s clause and order, the limit bound
/// last (after [`super::filter::bind_filter`]'s values).
pub(super) fn export_sql(filter: &RunFilter, fields: ExportFields) -> String {
    let (filter_sql, limit) = filter_clause(filter);
    let mut columns = BASE_COLUMNS.to_owned();
    if fields.annotations {
        columns.push_str(", ");
        columns.push_str(ANNOTATION_COLUMNS);
    }
    if fields.grader_results {
        columns.push_str(", ");
        columns.push_str(GRADER_COLUMNS);
    }
    format!(
        "SELECT {columns} FROM prompt_optimization_data {filter_sql} \
         ORDER BY id DESC LIMIT ${limit}"
    )
}

/// A run as [`export_sql`] reads it; the columns not selected are absent and read as `None`.
#[derive(FromRow)]
pub(crate) struct ExportRow {
    id: DbId,
    input_variables: Json<serde_json::Map<String, serde_json::Value>>,
    output: Option<String>,
    has_outcome: bool,
    tests_passed: Option<bool>,
    pr_merged: Option<bool>,
    expected_files: Option<Json<Vec<String>>>,
    failure_signature: Option<String>,
    #[sqlx(default)]
    rating: Option<String>,
    #[sqlx(default)]
    output_feedback: Option<String>,
    #[sqlx(default)]
    failure_mode: Option<String>,
    #[sqlx(default)]
    grader_results: Option<Json<serde_json::Value>>,
}

impl TryFrom<ExportRow> for ExportRun {
    type Error = StoreError;

    /// As `Run`'s conversion (`rows.rs`) makes the same fields: a stored rating is checked, an
    /// annotation exists when any of its three fields does.
    fn try_from(row: ExportRow) -> Result<Self> {
        let rating = row
            .rating
            .as_deref()
            .map(|r| Rating::parse(r).ok_or_else(|| StoreError::decode(format!("rating {r:?}"))))
            .transpose()?;
        let annotated =
            rating.is_some() || row.failure_mode.is_some() || row.output_feedback.is_some();
        let annotation = annotated.then_some(ExportAnnotation {
            rating,
            output_feedback: row.output_feedback,
            failure_mode: row.failure_mode,
        });
        let outcome = row.has_outcome.then(|| ExportOutcome {
            tests_passed: row.tests_passed,
            pr_merged: row.pr_merged,
            expected_files: row.expected_files.map(|f| f.0),
            failure_signature: row.failure_signature,
        });
        Ok(ExportRun {
            id: row.id.0,
            input: row.input_variables.0,
            output: row.output,
            outcome,
            annotation,
            grader_results: row.grader_results.map(|g| g.0),
        })
    }
}
