//! `/api/datasets…`: create a dataset version (a snapshot of recorded runs, rows, or an OpenAI
//! eval JSONL upload), list datasets, show one with its versions, page through a version's rows,
//! delete a dataset. Building rows is [`crate::datasets`]'s, storage the
//! [`DatasetStore`](crate::store::DatasetStore)'s; these handlers parse, call and map.
//!
//! Roles: reading needs `read`; creating a version needs `annotator` (curating the rows a
//! prompt is evaluated on is the work of the people who review its outputs, and a version only
//! adds, never changes, what exists); deleting a dataset needs `admin`.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams};
use crate::datasets::{self, CreateDataset};
use crate::store::{Dataset, DatasetRow, DatasetVersion, RowQuery, Split, Store};

/// Rows per page of `GET /api/datasets/{name}/rows` unless `limit` says otherwise.
pub const DEFAULT_ROWS_PAGE: u32 = 100;
/// Most rows per page.
pub const MAX_ROWS_PAGE: u32 = 1000;

/// The query of `GET /api/datasets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this prompt's datasets.
    pub prompt_id: Option<String>,
}

/// The query of `GET /api/datasets/{name}/rows`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// The version [default: the latest].
    pub version: Option<i64>,
    /// Only rows of `train` or `validation`.
    pub split: Option<Split>,
    /// Rows per page, 1 to 1000 [default: 100].
    pub limit: Option<u32>,
    /// The `nextCursor` of the page before.
    pub cursor: Option<String>,
}

/// A page of a version's rows, in order.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowsPage {
    /// The dataset.
    pub name: String,
    /// The version read.
    pub version: i64,
    /// The rows.
    pub items: Vec<DatasetRow>,
    /// Pass as `cursor` for the next page (it holds the version); null on the last page.
    pub next_cursor: Option<String>,
}

/// Create a dataset version: a snapshot of the prompt's recorded runs matching `filter`, the
/// `rows` given, or the lines of an OpenAI eval JSONL file (`jsonl`). A name that exists gets a
/// new version.
#[utoipa::path(
    post, path = "/api/datasets", tag = "datasets", operation_id = "createDataset",
    security(("bearer" = [])),
    request_body(content = CreateDataset, content_type = "application/json"),
    responses(
        (status = 201, description = "The version written", body = DatasetVersion),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 404, description = "Unknown prompt, or unknown version in the filter", body = ErrorBody),
        (status = 409, description = "The dataset belongs to another prompt (invalid_state)", body = ErrorBody),
        (status = 413, description = "Body over 32 MiB", body = ErrorBody),
        (status = 422, description = "A refused row (invalid_dataset_row, details.field names it), or the request (invalid_input: name, fraction, sources, no rows)", body = ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Arc<dyn Store>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateDataset>,
) -> Result<(StatusCode, Json<DatasetVersion>), ApiError> {
    let created = datasets::create(&store, body, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Every dataset with its versions, by name.
#[utoipa::path(
    get, path = "/api/datasets", tag = "datasets", operation_id = "listDatasets",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Datasets", body = [Dataset]),
        (status = 404, description = "Unknown prompt", body = ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Arc<dyn Store>>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Vec<Dataset>>, ApiError> {
    Ok(Json(store.list_datasets(query.prompt_id.as_deref()).await?))
}

/// One dataset: its versions with their source, counts and split.
#[utoipa::path(
    get, path = "/api/datasets/{name}", tag = "datasets", operation_id = "getDataset",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset name")),
    responses(
        (status = 200, description = "The dataset", body = Dataset),
        (status = 404, description = "Unknown dataset", body = ErrorBody),
    )
)]
pub async fn get(
    State(store): State<Arc<dyn Store>>,
    PathParams(name): PathParams<String>,
) -> Result<Json<Dataset>, ApiError> {
    Ok(Json(store.get_dataset(&name).await?))
}

/// The rows of a version, in order, a page at a time.
#[utoipa::path(
    get, path = "/api/datasets/{name}/rows", tag = "datasets", operation_id = "datasetRows",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset name"), RowsQuery),
    responses(
        (status = 200, description = "A page of rows", body = RowsPage),
        (status = 400, description = "A parameter does not parse or is out of range (invalid_query), or a foreign cursor (invalid_cursor)", body = ErrorBody),
        (status = 404, description = "Unknown dataset or version", body = ErrorBody),
    )
)]
pub async fn rows(
    State(store): State<Arc<dyn Store>>,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<RowsQuery>,
) -> Result<Json<RowsPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_ROWS_PAGE);
    if !(1..=MAX_ROWS_PAGE).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be 1 to {MAX_ROWS_PAGE}"
        )));
    }
    let mut version = query.version;
    let mut after = None;
    if let Some(cursor) = query.cursor.as_deref() {
        let foreign =
            || ApiError::InvalidCursor("pass the nextCursor of the page before".to_owned());
        let (cursor_version, index) = decode_cursor(cursor).ok_or_else(foreign)?;
        if version.is_some_and(|v| v != cursor_version) {
            return Err(foreign());
        }
        version = Some(cursor_version);
        after = Some(index);
    }
    let row_query = RowQuery {
        version,
        split: query.split,
        after,
    };
    // One more than asked says whether a next page exists.
    let (version, mut items) = store.dataset_rows(&name, &row_query, limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|r| encode_cursor(version, r.index))
    } else {
        None
    };
    Ok(Json(RowsPage {
        name,
        version,
        items,
        next_cursor,
    }))
}

/// Delete a dataset with every version and row. Nothing can reference a dataset yet; once
/// evaluations do, a referenced dataset will be refused here.
#[utoipa::path(
    delete, path = "/api/datasets/{name}", tag = "datasets", operation_id = "deleteDataset",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Dataset name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown dataset", body = ErrorBody),
    )
)]
pub async fn delete(
    State(store): State<Arc<dyn Store>>,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    store.delete_dataset(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The cursor after the row at `index` of `version`: `d{version}.{index}`, opaque to clients.
pub fn encode_cursor(version: i64, index: i64) -> String {
    format!("d{version}.{index}")
}

/// The version and index a cursor holds; `None` if this server did not make it.
pub fn decode_cursor(cursor: &str) -> Option<(i64, i64)> {
    let (version, index) = cursor.strip_prefix('d')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(version) || !digits(index) {
        return None;
    }
    let (version, index) = (version.parse().ok()?, index.parse().ok()?);
    (version >= 1).then_some((version, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(3, 41)), Some((3, 41)));
        for foreign in [
            "", "d", "d1", "d1.", "d.1", "d0.1", "r1.2", "d1.-2", "d1.2x", "d+1.2",
        ] {
            assert_eq!(decode_cursor(foreign), None, "{foreign}");
        }
    }
}
