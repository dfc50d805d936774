//! The datasets domain of the store: named datasets of a prompt, their immutable versions and
//! the rows of each version, as the [`DatasetStore`] trait and its row types. The SQL is written
//! once in `sql/datasets.rs`; no backend needs dialect code of its own for it.
//!
//! What this domain promises (the conformance cases in `conformance/datasets.rs` check each):
//! - a version is written whole in one transaction, numbered max + 1 per dataset, and never
//!   changes afterwards (triggers `dataset_versions_immutable`, `dataset_rows_immutable`);
//! - a dataset belongs to one prompt: a new version naming another prompt is refused;
//! - rows keep the order they were given (`index`), their id and their split.
//!
//! Building rows (snapshots of runs, uploaded JSONL, ids and splits) is [`crate::datasets`]'s.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Result;

/// Where the rows of a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasetSource {
    /// A snapshot of recorded runs matching a filter.
    Runs,
    /// Rows given in the request (`rows`).
    Rows,
    /// An uploaded OpenAI eval JSONL file (`jsonl`).
    Jsonl,
}

impl DatasetSource {
    /// The value stored in `dataset_versions.source`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetSource::Runs => "runs",
            DatasetSource::Rows => "rows",
            DatasetSource::Jsonl => "jsonl",
        }
    }

    /// Parses a stored value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "runs" => Some(DatasetSource::Runs),
            "rows" => Some(DatasetSource::Rows),
            "jsonl" => Some(DatasetSource::Jsonl),
            _ => None,
        }
    }
}

/// The part of a dataset a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Rows the optimizer learns from.
    Train,
    /// Rows held out to score candidates.
    Validation,
}

impl Split {
    /// The value stored in `dataset_rows.split`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
        }
    }

    /// Parses a stored or given value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "train" => Some(Split::Train),
            "validation" => Some(Split::Validation),
            _ => None,
        }
    }
}

/// A row to store, already built and checked (`crate::datasets`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatasetRow {
    /// The row's stable id.
    pub id: Uuid,
    /// The OpenAI eval `item`: what graders read as `{{item.*}}`.
    pub item: serde_json::Map<String, serde_json::Value>,
    /// The OpenAI eval `sample` (`{"output_text": …}`), when the row has an output.
    pub sample: Option<serde_json::Map<String, serde_json::Value>>,
    /// Its split.
    pub split: Split,
    /// The run a snapshot row was copied from.
    pub run_id: Option<Uuid>,
}

/// A version to write: the dataset is created with it when `name` does not exist yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDatasetVersion {
    /// The dataset's name (checked by `crate::datasets::check_name`).
    pub name: String,
    /// The prompt it belongs to (must exist; must be the dataset's when it exists).
    pub prompt_id: String,
    /// Where the rows came from.
    pub source: DatasetSource,
    /// The run filter of a snapshot, for the record.
    pub filter: Option<serde_json::Value>,
    /// The share of rows in the validation split the rows were split with.
    pub validation_fraction: f64,
    /// The rows, in order.
    pub rows: Vec<NewDatasetRow>,
    /// Who creates it.
    pub created_by: Option<String>,
}

/// One immutable version of a dataset, with its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetVersion {
    /// The dataset's name.
    pub name: String,
    /// The prompt it belongs to.
    pub prompt_id: String,
    /// 1, 2, 3, … per dataset.
    pub version: i64,
    /// Where its rows came from.
    pub source: DatasetSource,
    /// The run filter of a snapshot.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// The share of rows the split aimed at for validation.
    pub validation_fraction: f64,
    /// Rows in all.
    pub row_count: i64,
    /// Rows in the train split.
    pub train_count: i64,
    /// Rows in the validation split.
    pub validation_count: i64,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Who wrote it.
    pub created_by: Option<String>,
}

/// A dataset with its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Dataset {
    /// Its name, unique across prompts.
    pub name: String,
    /// The prompt it belongs to.
    pub prompt_id: String,
    /// When its first version was written.
    pub created_at: DateTime<Utc>,
    /// Who wrote its first version.
    pub created_by: Option<String>,
    /// The latest version's number.
    pub latest_version: i64,
    /// Every version, oldest first.
    pub versions: Vec<DatasetVersion>,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatasetRow {
    /// The row's stable id.
    pub id: Uuid,
    /// Its position in the version, from 0.
    pub index: i64,
    /// The OpenAI eval `item`.
    #[schema(value_type = Object)]
    pub item: serde_json::Map<String, serde_json::Value>,
    /// The OpenAI eval `sample`.
    #[schema(value_type = Option<Object>)]
    pub sample: Option<serde_json::Map<String, serde_json::Value>>,
    /// Its split.
    pub split: Split,
    /// The run a snapshot row was copied from.
    pub run_id: Option<Uuid>,
}

/// Which rows of a dataset to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowQuery {
    /// The version [default: the latest].
    pub version: Option<i64>,
    /// Only rows of this split.
    pub split: Option<Split>,
    /// Only rows after this index (the keyset cursor).
    pub after: Option<i64>,
}

/// Datasets, their versions and rows. Every write is one transaction; `NotFound` errors carry a
/// [`Missing`](super::Missing) naming the prompt, dataset or version.
#[async_trait]
pub trait DatasetStore: Send + Sync {
    /// Writes a new version (numbered max + 1; the dataset is created with version 1 when its
    /// name is new). `NotFound` if the prompt does not exist; `InvalidState` if the dataset
    /// exists under another prompt. Nothing is written on error.
    async fn create_dataset_version(&self, new: &NewDatasetVersion) -> Result<DatasetVersion>;
    /// Every dataset (of one prompt when given; `NotFound` if it does not exist), by name.
    async fn list_datasets(&self, prompt_id: Option<&str>) -> Result<Vec<Dataset>>;
    /// One dataset with its versions.
    async fn get_dataset(&self, name: &str) -> Result<Dataset>;
    /// Up to `limit` rows of one version, by index; answers the version read too.
    async fn dataset_rows(
        &self,
        name: &str,
        query: &RowQuery,
        limit: u32,
    ) -> Result<(i64, Vec<DatasetRow>)>;
    /// Deletes a dataset with every version and row. Nothing references datasets yet; when
    /// evaluations do, this is where a referenced dataset will be refused.
    async fn delete_dataset(&self, name: &str) -> Result<()>;
}
