//! Datasets: named, versioned sets of rows `{item, sample?}` of a prompt, in OpenAI eval JSONL's
//! shape, that evaluation and optimization read. This module builds a version's rows — from a
//! snapshot of recorded runs, from rows given in a request, or from an uploaded OpenAI eval JSONL
//! file — gives each row its stable id and its split, and checks everything before the store
//! ([`crate::store::DatasetStore`]) writes the version in one transaction. Nothing here knows
//! about HTTP; the API maps a [`DatasetError`] to its codes.
//!
//! # Row ids
//!
//! - A snapshot row keeps the id of the run it was copied from, so a run has one id in every
//!   version of every dataset, and so one split.
//! - An uploaded row's id is derived from its content ([`content_row_id`]): SHA-256 of
//!   `flywheel-dataset-row-v1`, the dataset's name, the row's canonical JSON (keys sorted) and
//!   the number of identical rows before it in the upload, each followed by a newline; the first
//!   16 bytes become a version-8 uuid. Uploading the same file again gives the same ids, so
//!   the same splits.
//!
//! # Split
//!
//! [`split_of`]: SHA-256 of `flywheel-split-v1:` followed by the row id in lower-case hyphenated
//! form; the first 8 bytes, big-endian, shifted right by 11 bits and divided by 2^53, give a
//! number `u` in [0, 1); the row is `validation` when `u < fraction`, else `train`. The split
//! depends on nothing but the row id and the fraction, so any implementation can recompute it.

mod rows;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use rows::{ParsedRow, RowError, parse_jsonl, parse_rows, snapshot_row_from};

use crate::store::{
    DatasetSource, DatasetVersion, ExportFields, NewDatasetRow, NewDatasetVersion, Rating,
    RunFilter, RunOrigin, Split, Store, StoreError,
};

/// The share of rows put in the validation split unless a request says otherwise: the
/// optimizer learns from `train` and scores its candidates on `validation`; 20% held out is the
/// usual trade between rows to learn from and a score worth trusting.
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.2;
/// Most rows one version may hold: a version is written in one transaction and read back a page
/// at a time; beyond this, narrow the filter (a prompt optimizer reads tens to hundreds of rows).
pub const MAX_ROWS: usize = 50_000;
/// The body limit of `POST /api/datasets`: an uploaded JSONL file travels inside the JSON body.
pub const MAX_DATASET_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Longest dataset name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Why a dataset could not be created.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The request is unacceptable as a whole (name, fraction, no source or two, no rows).
    #[error("{0}")]
    Invalid(String),
    /// One row of `rows` or one line of `jsonl` is refused; nothing was stored.
    #[error(transparent)]
    Row(#[from] RowError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which recorded runs a snapshot copies: the filter of `GET /api/runs`, within the dataset's
/// prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SnapshotFilter {
    /// Only runs of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Only runs rated `good` or `bad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// Only runs with this failure mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
    /// Only runs with (`true`) or without (`false`) an annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotated: Option<bool>,
    /// Only runs recorded at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Only runs recorded before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// The body of `POST /api/datasets`: a prompt, a name and exactly one source of rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDataset {
    /// The prompt the dataset belongs to.
    pub prompt_id: String,
    /// The dataset's name: 1 to 100 of `a-z 0-9 _ . -`, starting with a letter or digit. A
    /// name that exists gets a new version.
    pub name: String,
    /// A snapshot of the prompt's recorded runs matching this filter (`{}` for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<SnapshotFilter>,
    /// Rows `{"item": {...}, "sample"?: {...}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub rows: Option<Vec<serde_json::Value>>,
    /// The text of an OpenAI eval JSONL file: a row `{"item", "sample"?}` per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonl: Option<String>,
    /// The share of rows in the validation split, 0 to 1 [default: 0.2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_fraction: Option<f64>,
}

/// Refuses a name that is not 1 to 100 of `a-z 0-9 _ . -` starting with a letter or digit (the
/// constraint `datasets_name_format`, checked here to answer with a message).
pub fn check_name(name: &str) -> Result<(), DatasetError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.' || c == '-');
    if first_ok && rest_ok && name.chars().count() <= MAX_NAME_CHARS {
        Ok(())
    } else {
        Err(DatasetError::Invalid(format!(
            "name {name:?} must be 1 to {MAX_NAME_CHARS} of a-z, 0-9, `_`, `.` and `-`, \
             starting with a letter or digit"
        )))
    }
}

/// The split of a row (see the module's doc for the hash).
pub fn split_of(row_id: Uuid, validation_fraction: f64) -> Split {
    let mut hasher = Sha256::new();
    hasher.update(b"flywheel-split-v1:");
    hasher.update(row_id.hyphenated().to_string().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let unit = (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
    if unit < validation_fraction {
        Split::Validation
    } else {
        Split::Train
    }
}

/// The id of an uploaded row (see the module's doc): `occurrence` counts the identical rows
/// before it in the same upload.
pub fn content_row_id(
    dataset: &str,
    item: &serde_json::Map<String, serde_json::Value>,
    sample: Option<&serde_json::Map<String, serde_json::Value>>,
    occurrence: usize,
) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(b"flywheel-dataset-row-v1\n");
    hasher.update(dataset.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_row(item, sample).as_bytes());
    hasher.update(b"\n");
    hasher.update(occurrence.to_string().as_bytes());
    hasher.update(b"\n");
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// `{"item":…,"sample":…}` with every object's keys sorted, whatever order they came in.
fn canonical_row(
    item: &serde_json::Map<String, serde_json::Value>,
    sample: Option<&serde_json::Map<String, serde_json::Value>>,
) -> String {
    let row = serde_json::json!({
        "item": serde_json::Value::Object(item.clone()),
        "sample": sample.cloned().map(serde_json::Value::Object),
    });
    canonical(&row)
}

fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::String(k.clone()),
                        canonical(&map[k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Builds the rows the request asks for and writes them as a new version, by `actor`.
pub async fn create(
    store: &Arc<dyn Store>,
    request: CreateDataset,
    actor: &str,
) -> Result<DatasetVersion, DatasetError> {
    check_name(&request.name)?;
    let fraction = request
        .validation_fraction
        .unwrap_or(DEFAULT_VALIDATION_FRACTION);
    if !(0.0..=1.0).contains(&fraction) {
        return Err(DatasetError::Invalid(format!(
            "validationFraction must be 0 to 1, not {fraction}"
        )));
    }
    let sources = usize::from(request.filter.is_some())
        + usize::from(request.rows.is_some())
        + usize::from(request.jsonl.is_some());
    if sources != 1 {
        return Err(DatasetError::Invalid(
            "give exactly one of filter (a snapshot of recorded runs), rows or jsonl".to_owned(),
        ));
    }
    // An unknown prompt is a 404 before any row is looked at.
    store.get_prompt(&request.prompt_id).await?;
    let (source, filter, contents) = if let Some(filter) = request.filter {
        let rows = snapshot(store, &request.prompt_id, &filter).await?;
        let mut recorded = serde_json::to_value(&filter)
            .map_err(|e| DatasetError::Invalid(format!("filter: {e}")))?;
        if let Some(object) = recorded.as_object_mut() {
            object.insert(
                "promptId".to_owned(),
                serde_json::Value::String(request.prompt_id.clone()),
            );
        }
        (DatasetSource::Runs, Some(recorded), rows)
    } else if let Some(rows) = request.rows {
        (
            DatasetSource::Rows,
            None,
            content_rows(&request.name, parse_rows(rows)?),
        )
    } else {
        let text = request.jsonl.unwrap_or_default();
        (
            DatasetSource::Jsonl,
            None,
            content_rows(&request.name, parse_jsonl(&text)?),
        )
    };
    if contents.is_empty() {
        return Err(DatasetError::Invalid(match source {
            DatasetSource::Runs => "the filter matches no recorded run of the prompt".to_owned(),
            _ => "a dataset version needs at least one row".to_owned(),
        }));
    }
    if contents.len() > MAX_ROWS {
        return Err(DatasetError::Invalid(format!(
            "{} rows; a version holds at most {MAX_ROWS} (narrow the filter or split the file)",
            contents.len()
        )));
    }
    let rows = contents
        .into_iter()
        .map(|(id, item, sample, run_id)| NewDatasetRow {
            id,
            split: split_of(id, fraction),
            item,
            sample,
            run_id,
        })
        .collect();
    let version = store
        .create_dataset_version(&NewDatasetVersion {
            name: request.name,
            prompt_id: request.prompt_id,
            source,
            filter,
            validation_fraction: fraction,
            rows,
            created_by: Some(actor.to_owned()),
        })
        .await?;
    Ok(version)
}

type RowContent = (
    Uuid,
    serde_json::Map<String, serde_json::Value>,
    Option<serde_json::Map<String, serde_json::Value>>,
    Option<Uuid>,
);

/// Gives uploaded rows their content-derived ids.
fn content_rows(dataset: &str, rows: Vec<ParsedRow>) -> Vec<RowContent> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    rows.into_iter()
        .map(|(item, sample)| {
            let count = seen
                .entry(canonical_row(&item, sample.as_ref()))
                .or_insert(0);
            let id = content_row_id(dataset, &item, sample.as_ref(), *count);
            *count += 1;
            (id, item, sample, None)
        })
        .collect()
}

/// Copies the prompt's production runs matching `filter`, newest first: what they are now is
/// what the version keeps, whatever later annotations or outcomes say. The runs are read by one
/// statement, so the copy is of one moment on both backends (a statement reads one snapshot),
/// never a mix of before and after an annotation made while it reads.
async fn snapshot(
    store: &Arc<dyn Store>,
    prompt_id: &str,
    filter: &SnapshotFilter,
) -> Result<Vec<RowContent>, DatasetError> {
    if let Some(version) = filter.version {
        store.get_version(prompt_id, version).await?;
    }
    let runs_filter = RunFilter {
        prompt_id: Some(prompt_id.to_owned()),
        version: filter.version,
        rating: filter.rating,
        failure_mode: filter.failure_mode.clone(),
        annotated: filter.annotated,
        from: filter.from,
        to: filter.to,
        graders_passed: None,
        before: None,
        // Evaluation outputs never count as production data.
        origin: Some(RunOrigin::Production),
    };
    // One more than the limit says whether the filter matches too many. A row keeps the
    // annotation; grader results are no part of it.
    let fields = ExportFields {
        annotations: true,
        grader_results: false,
    };
    let runs = store
        .export_runs(&runs_filter, fields, MAX_ROWS as u32 + 1)
        .await?;
    if runs.len() > MAX_ROWS {
        return Err(DatasetError::Invalid(format!(
            "the filter matches more than {MAX_ROWS} runs; narrow it (version, from, to, \
             rating, failureMode, annotated)"
        )));
    }
    Ok(runs
        .into_iter()
        .map(|run| {
            let id = run.id;
            let (item, sample) = snapshot_row_from(run);
            (id, item, sample, Some(id))
        })
        .collect())
}

#[cfg(test)]
mod tests;
