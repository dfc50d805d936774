//! Export of a prompt's rows to portable formats, streamed: OpenAI eval JSONL (a line
//! `{"item": {...}, "sample": {"output_text": ...}}` per row), CSV that a spreadsheet opens, and
//! a promptfoo config ([`promptfoo`]); and the OpenAI eval definition that goes with a JSONL
//! export ([`openai_eval`], [`eval_definition`]).
//! This module owns the request (`ExportRequest`), the checks made before the first byte is sent
//! (the prompt, the dataset and its version, the `minRows` floor) and the writer: rows are read a
//! page at a time with the store's keyset paging and written as they are read (the next page is
//! read while the last one is written), so memory holds three pages at most whatever the number
//! of rows. Nothing here knows about HTTP; the API maps an
//! [`ExportError`] to its codes and sends the stream as the body.
//!
//! # Where rows come from
//!
//! - `dataset` given: the rows of that dataset version (the latest unless `version` says), as
//!   stored; `from`, `to` and `rating` do not apply and are refused.
//! - otherwise: the prompt's recorded production runs matching `version` (the prompt version),
//!   `from`, `to` and `rating`, newest first; a run becomes a row as a dataset snapshot makes it
//!   ([`crate::datasets::snapshot_row_from`]): `item` holds the input variables and the outcome, plus
//!   the annotation unless `includeAnnotations` is `false`. The runs are read with
//!   [`crate::store::RunStore::export_runs`], which reads only the columns such a row holds
//!   (and the grader results only for CSV).
//!
//! # `minRows`
//!
//! The rows with an annotation (a `rating`, `output_feedback` or `failure_mode`) are counted
//! first, stopping as soon as `minRows` are found; fewer is `not_enough_rows`, before anything
//! is written. It defaults to `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION`: an export is what a prompt
//! optimizer reads, and that setting is how many judged rows make optimizing worth it.
//!
//! # CSV
//!
//! The header must name every column before the first row, so a CSV export reads the rows
//! twice: once for the column names (the union of the input variables, sorted, and of the
//! grader names, sorted), once to write. Runs recorded between the two passes are left out (the
//! second pass skips ids above the newest of the first), so every row fits the header. Columns:
//! the variables, then `output`, `rating`, `feedback`, `failure_mode`, then `grader:<name>` with
//! that grader's score. Values that are not strings are written as JSON. Quoting is RFC 4180:
//! a field holding `,`, `"`, CR or LF, or starting or ending with a space, is quoted with `"`
//! doubled; lines end with CRLF.
//!
//! # Redaction
//!
//! Every string written — each string inside `item` and `sample` for JSONL, each cell for CSV
//! (the cells come from the same values) — goes through [`crate::redact::Redactor`] first:
//! secrets of the documented kinds become `[REDACTED:<kind>]`. It is always on: an export is a
//! file that leaves the service, and there is no request field to switch it off. The number of
//! values (strings, cells) in which something was replaced is counted as the body is written
//! ([`Export::redacted_values`]), for the caller to report once the body is done. A promptfoo
//! config's prompt template and test values are redacted the same way.

#[cfg(test)]
mod golden;
pub mod openai_eval;
pub mod promptfoo;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::datasets::snapshot_row_from;
use crate::redact::Redactor;
use crate::store::{
    ExportFields, Missing, Rating, RowQuery, RunFilter, RunOrigin, Store, StoreError,
};

/// Rows read per store call: large enough that paging costs little, small enough that a page
/// in memory stays a few megabytes.
pub const PAGE_ROWS: u32 = 2000;
/// Pages read ahead of the writer at most (each up to [`PAGE_ROWS`] rows).
const PAGES_AHEAD: usize = 1;

/// Keys of a row's `item` that hold its annotation (as a snapshot writes them).
const ANNOTATION_KEYS: [&str; 3] = ["rating", "output_feedback", "failure_mode"];

/// The formats an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ExportFormat {
    /// OpenAI eval JSONL: a line `{"item": {...}, "sample": {"output_text": ...}}` per row.
    #[serde(rename = "openai-jsonl")]
    OpenaiJsonl,
    /// CSV with a header line.
    #[serde(rename = "csv")]
    Csv,
    /// A promptfoo config (JSON): the prompt, a test per row, asserts for the graders that map.
    #[serde(rename = "promptfoo")]
    Promptfoo,
}

impl ExportFormat {
    /// The content type of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::OpenaiJsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Promptfoo => "application/json",
        }
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::OpenaiJsonl => "jsonl",
            ExportFormat::Csv => "csv",
            ExportFormat::Promptfoo => "promptfooconfig.json",
        }
    }
}

/// The body of `POST /api/prompts/{id}/export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportRequest {
    /// `openai-jsonl`, `csv` or `promptfoo`.
    pub format: ExportFormat,
    /// Export this dataset's rows (it must belong to the prompt) instead of recorded runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// With `dataset`, its version [default: the latest]; without, only runs of this prompt
    /// version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Only runs recorded at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// Only runs recorded before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    /// Only runs rated `good` or `bad`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// Put each run's annotation in its row [default: true]. Dataset rows are exported as
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_annotations: Option<bool>,
    /// Refuse the export when fewer rows are annotated [default:
    /// `PROMPT_MIN_SAMPLES_FOR_OPTIMIZATION`]; 0 exports whatever there is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u32>,
}

/// Why an export was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The request does not make sense (a run filter with a dataset, `from` after `to`).
    #[error("{0}")]
    Invalid(String),
    /// The dataset belongs to another prompt.
    #[error("{0}")]
    OtherPrompt(String),
    /// Fewer annotated rows than `minRows`.
    #[error("{found} annotated rows match; the export needs at least {required} (minRows)")]
    NotEnoughRows {
        /// Annotated rows found.
        found: u64,
        /// Annotated rows required.
        required: u64,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One row on its way out.
struct Row {
    /// The run's id, for runs (the CSV second pass skips runs newer than its header).
    run_id: Option<Uuid>,
    item: Map<String, Value>,
    sample: Option<Map<String, Value>>,
    /// The input variables (CSV columns).
    variables: Map<String, Value>,
    /// Rating, feedback, failure mode.
    annotation: [Value; 3],
    grader_results: Option<Value>,
}

/// One line of OpenAI eval JSONL, written from a row without copying it.
#[derive(Serialize)]
struct JsonlLine<'a> {
    item: &'a Map<String, Value>,
    sample: Option<&'a Map<String, Value>>,
}

/// Where the rows are read from.
#[derive(Debug, Clone)]
enum Source {
    Runs(RunFilter),
    Dataset { name: String, version: i64 },
}

/// Where paging stands.
#[derive(Debug, Clone, Default)]
struct Cursor {
    before: Option<Uuid>,
    after: Option<i64>,
    done: bool,
}

/// An export checked and ready to stream.
pub struct Export {
    store: Arc<dyn Store>,
    source: Source,
    format: ExportFormat,
    include_annotations: bool,
    /// CSV: the variable and grader columns, and the newest run the header saw.
    columns: Option<(Vec<String>, Vec<String>, Option<Uuid>)>,
    /// promptfoo: the config around the tests.
    promptfoo: Option<promptfoo::Frame>,
    /// The file name to suggest.
    pub file_name: String,
    /// Redacts what is written; its count is published to `redacted` after each page.
    redactor: Redactor,
    redacted: Arc<AtomicU64>,
}

impl Export {
    /// The format.
    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The number of values redacted so far, updated as the stream writes; read it once the
    /// stream has ended for the export's total.
    pub fn redacted_values(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.redacted)
    }

    /// promptfoo: the graders left out of the config (also listed inside it).
    pub fn not_exported(&self) -> &[promptfoo::NotExported] {
        self.promptfoo
            .as_ref()
            .map_or(&[], |frame| frame.not_exported.as_slice())
    }
}

/// Checks the request against the store (prompt, dataset, version, `minRows`) and, for CSV,
/// reads the column names; nothing is written yet. `default_min_rows` is the setting.
pub async fn prepare(
    store: Arc<dyn Store>,
    prompt_id: &str,
    request: ExportRequest,
    default_min_rows: u32,
) -> Result<Export, ExportError> {
    store.get_prompt(prompt_id).await?;
    if let (Some(from), Some(to)) = (request.from, request.to)
        && from >= to
    {
        return Err(ExportError::Invalid(format!(
            "from ({from}) must be before to ({to})"
        )));
    }
    let source = if let Some(name) = &request.dataset {
        if request.from.is_some() || request.to.is_some() || request.rating.is_some() {
            return Err(ExportError::Invalid(
                "from, to and rating filter recorded runs; a dataset is exported whole".to_owned(),
            ));
        }
        let dataset = store.get_dataset(name).await?;
        if dataset.prompt_id != prompt_id {
            return Err(ExportError::OtherPrompt(format!(
                "dataset {name} belongs to prompt {}, not {prompt_id}",
                dataset.prompt_id
            )));
        }
        let version = request.version.unwrap_or(dataset.latest_version);
        if !dataset.versions.iter().any(|v| v.version == version) {
            return Err(StoreError::NotFound(Missing::DatasetVersion {
                name: name.clone(),
                version,
            })
            .into());
        }
        Source::Dataset {
            name: name.clone(),
            version,
        }
    } else {
        if let Some(version) = request.version {
            store.get_version(prompt_id, version).await?;
        }
        Source::Runs(RunFilter {
            prompt_id: Some(prompt_id.to_owned()),
            version: request.version,
            rating: request.rating,
            from: request.from,
            to: request.to,
            // Evaluation outputs never count as production data.
            origin: Some(RunOrigin::Production),
            ..RunFilter::default()
        })
    };
    let mut export = Export {
        store,
        source,
        format: request.format,
        include_annotations: request.include_annotations.unwrap_or(true),
        columns: None,
        promptfoo: None,
        file_name: format!(
            "{}.{}",
            request.dataset.as_deref().unwrap_or(prompt_id),
            request.format.extension()
        ),
        redactor: Redactor::new(),
        redacted: Arc::new(AtomicU64::new(0)),
    };
    let required = u64::from(request.min_rows.unwrap_or(default_min_rows));
    let found = export.count_annotated(required).await?;
    if found < required {
        return Err(ExportError::NotEnoughRows { found, required });
    }
    if export.format == ExportFormat::Csv {
        export.columns = Some(export.csv_columns().await?);
    }
    if export.format == ExportFormat::Promptfoo {
        // The runs' prompt version when the request names one, else the active version.
        let version = match (&request.dataset, request.version) {
            (None, Some(version)) => export.store.get_version(prompt_id, version).await?,
            _ => export.store.active_version(prompt_id).await?,
        };
        let graders = export.store.list_graders(Some(prompt_id)).await?;
        export.promptfoo = Some(promptfoo::frame(
            prompt_id,
            version.version,
            &version.content,
            &graders,
        ));
    }
    Ok(export)
}

/// The OpenAI eval definition of the rows `request` selects (checked as [`prepare`] checks an
/// `openai-jsonl` export, `minRows` included): the item schema is derived by reading the rows
/// once, a page at a time. The eval is named after the dataset, or the prompt.
pub async fn eval_definition(
    store: Arc<dyn Store>,
    prompt_id: &str,
    request: ExportRequest,
    default_min_rows: u32,
) -> Result<openai_eval::EvalDefinition, ExportError> {
    if request.format != ExportFormat::OpenaiJsonl {
        return Err(ExportError::Invalid(
            "an OpenAI eval definition goes with the openai-jsonl format".to_owned(),
        ));
    }
    let name = request
        .dataset
        .clone()
        .unwrap_or_else(|| prompt_id.to_owned());
    let export = prepare(Arc::clone(&store), prompt_id, request, default_min_rows).await?;
    let mut schema = openai_eval::ItemSchema::default();
    let mut cursor = Cursor::default();
    while let Some(page) = read_page(
        &export.store,
        &export.source,
        export.include_annotations,
        false,
        &mut cursor,
    )
    .await?
    {
        for row in &page {
            schema.add(&row.item, row.sample.is_some());
        }
    }
    let graders = store.list_graders(Some(prompt_id)).await?;
    Ok(openai_eval::definition(&name, prompt_id, &schema, &graders))
}

impl Export {
    /// Annotated rows, counting until `enough`.
    async fn count_annotated(&self, enough: u64) -> Result<u64, StoreError> {
        if enough == 0 {
            return Ok(0);
        }
        let mut found = 0;
        let mut cursor = Cursor::default();
        let mut source = self.source.clone();
        if let Source::Runs(filter) = &mut source {
            filter.annotated = Some(true);
        }
        // The annotation is read even when it is left out of the rows.
        while found < enough {
            let Some(page) = read_page(&self.store, &source, true, false, &mut cursor).await?
            else {
                break;
            };
            found += page
                .iter()
                .filter(|row| row.annotation.iter().any(|v| !v.is_null()))
                .count() as u64;
        }
        Ok(found)
    }

    /// The CSV's variable and grader columns, and the newest run seen.
    async fn csv_columns(&self) -> Result<(Vec<String>, Vec<String>, Option<Uuid>), StoreError> {
        let mut variables = BTreeSet::new();
        let mut graders = BTreeSet::new();
        let mut newest = None;
        let mut cursor = Cursor::default();
        while let Some(page) = read_page(
            &self.store,
            &self.source,
            self.include_annotations,
            true,
            &mut cursor,
        )
        .await?
        {
            for row in page {
                newest = newest.max(row.run_id);
                variables.extend(row.variables.keys().cloned());
                if let Some(Value::Object(results)) = &row.grader_results {
                    graders.extend(results.keys().cloned());
                }
            }
        }
        Ok((
            variables.into_iter().collect(),
            graders.into_iter().collect(),
            newest,
        ))
    }

    /// The body: written a page at a time as the pages are read. A store error after the first
    /// byte ends the stream with that error (the client sees a cut body, never a short file
    /// passed off as whole).
    pub fn stream(self) -> BoxStream<'static, Result<Bytes, StoreError>> {
        if self.promptfoo.is_some() {
            return self.promptfoo_stream();
        }
        let header = self.columns.as_ref().map(|(variables, graders, _)| {
            let mut fields: Vec<String> = variables.clone();
            fields.extend(
                ["output", "rating", "feedback", "failure_mode"]
                    .into_iter()
                    .map(str::to_owned),
            );
            fields.extend(graders.iter().map(|g| format!("grader:{g}")));
            let mut line = String::new();
            write_csv_line(&mut line, fields.iter().map(String::as_str));
            Bytes::from(line)
        });
        let pages = self.pages();
        let state = (self, pages, header);
        let stream =
            futures::stream::try_unfold(state, |(mut export, mut pages, header)| async move {
                if let Some(header) = header {
                    return Ok(Some((header, (export, pages, None))));
                }
                while let Some(page) = pages.next().await {
                    let chunk = export.write_page(page?);
                    if !chunk.is_empty() {
                        return Ok(Some((Bytes::from(chunk), (export, pages, None))));
                    }
                }
                Ok(None)
            });
        stream.boxed()
    }

    /// The rows, a page at a time, read one page ahead of the writer: a task of its own reads
    /// (and decodes) page n + 1 while page n is redacted and written, so the database's work and
    /// the encoding overlap instead of taking turns. At most [`PAGES_AHEAD`] pages wait between
    /// the two; when the body's reader goes away, the task ends at its next page.
    fn pages(&self) -> BoxStream<'static, Result<Vec<Row>, StoreError>> {
        let (sender, receiver) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let store = Arc::clone(&self.store);
        let source = self.source.clone();
        let include_annotations = self.include_annotations;
        let for_csv = self.columns.is_some();
        tokio::spawn(async move {
            let mut cursor = Cursor::default();
            // Ends after the last page, after an error (passed on), or when nobody reads.
            while let Some(page) =
                read_page(&store, &source, include_annotations, for_csv, &mut cursor)
                    .await
                    .transpose()
            {
                let failed = page.is_err();
                if sender.send(page).await.is_err() || failed {
                    break;
                }
            }
        });
        futures::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|page| (page, receiver))
        })
        .boxed()
    }

    /// The promptfoo config: its head up to `"tests":[`, the tests a page at a time, `]}`.
    fn promptfoo_stream(mut self) -> BoxStream<'static, Result<Bytes, StoreError>> {
        let mut head = self
            .promptfoo
            .as_ref()
            .map_or(Value::Null, |frame| frame.head.clone());
        self.redactor.redact_value(&mut head);
        self.redacted.store(self.redactor.values, Ordering::Relaxed);
        // `head` is an object; its text without the closing brace is followed by the tests.
        let mut text = head.to_string();
        text.pop();
        text.push_str(",\"tests\":[");
        let head = Bytes::from(text);
        // (export, pages, head not yet sent, tests written so far, footer sent)
        let pages = self.pages();
        let state = (self, pages, Some(head), 0u64, false);
        let stream = futures::stream::try_unfold(
            state,
            |(mut export, mut pages, head, mut written, ended)| async move {
                if let Some(head) = head {
                    return Ok(Some((head, (export, pages, None, written, ended))));
                }
                if ended {
                    return Ok(None);
                }
                while let Some(page) = pages.next().await {
                    let chunk = export.write_tests(&page?, &mut written);
                    if !chunk.is_empty() {
                        return Ok(Some((
                            Bytes::from(chunk),
                            (export, pages, None, written, false),
                        )));
                    }
                }
                Ok(Some((
                    Bytes::from_static(b"]}\n"),
                    (export, pages, None, written, true),
                )))
            },
        );
        stream.boxed()
    }

    /// One page of promptfoo tests, each after a comma but the first.
    fn write_tests(&mut self, page: &[Row], written: &mut u64) -> String {
        let mut out = String::new();
        for row in page {
            let mut metadata = Map::new();
            let description = match row.run_id {
                Some(id) => {
                    metadata.insert("flywheelRunId".to_owned(), Value::String(id.to_string()));
                    format!("run {id}")
                }
                None => format!("row {}", *written + 1),
            };
            let mut test =
                promptfoo::test_case(description, &row.item, row.sample.as_ref(), metadata);
            self.redactor.redact_value(&mut test);
            if *written > 0 {
                out.push(',');
            }
            out.push_str(&test.to_string());
            *written += 1;
        }
        self.redacted.store(self.redactor.values, Ordering::Relaxed);
        out
    }

    /// One page in the export's format.
    fn write_page(&mut self, page: Vec<Row>) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.columns {
            None => {
                // Redacted in place and written straight from the row: no copy of it, no
                // intermediate text.
                for mut row in page {
                    self.redactor.redact_map(&mut row.item);
                    if let Some(sample) = &mut row.sample {
                        self.redactor.redact_map(sample);
                    }
                    let line = JsonlLine {
                        item: &row.item,
                        sample: row.sample.as_ref(),
                    };
                    // Writing plain maps into a `Vec` cannot fail.
                    let _ = serde_json::to_writer(&mut out, &line);
                    out.push(b'\n');
                }
            }
            Some((variables, graders, newest)) => {
                let mut text = String::new();
                for row in &page {
                    if row.run_id.is_some() && row.run_id > *newest {
                        continue;
                    }
                    let mut cells = csv_record(row, variables, graders);
                    for cell in &mut cells {
                        if let Some(clean) = self.redactor.redact_str(cell) {
                            *cell = clean;
                        }
                    }
                    write_csv_line(&mut text, cells.iter().map(String::as_str));
                }
                out = text.into_bytes();
            }
        }
        self.redacted.store(self.redactor.values, Ordering::Relaxed);
        out
    }
}

/// The cells of a row under the header `variables`, output, annotation, `graders`.
fn csv_record(row: &Row, variables: &[String], graders: &[String]) -> Vec<String> {
    let output = row
        .sample
        .as_ref()
        .and_then(|s| s.get("output_text"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells: Vec<String> = variables
        .iter()
        .map(|v| cell(row.variables.get(v).unwrap_or(&Value::Null)))
        .collect();
    cells.push(cell(&output));
    cells.extend(row.annotation.iter().map(cell));
    cells.extend(graders.iter().map(|g| {
        cell(
            row.grader_results
                .as_ref()
                .and_then(|r| r.get(g))
                .and_then(|r| r.get("score"))
                .unwrap_or(&Value::Null),
        )
    }));
    cells
}

/// The next page of rows, `None` after the last. `for_csv`: the rows are written as CSV, which
/// needs each row's variables and grader results apart.
async fn read_page(
    store: &Arc<dyn Store>,
    source: &Source,
    include_annotations: bool,
    for_csv: bool,
    cursor: &mut Cursor,
) -> Result<Option<Vec<Row>>, StoreError> {
    if cursor.done {
        return Ok(None);
    }
    let rows = match source {
        Source::Runs(filter) => {
            let filter = RunFilter {
                before: cursor.before,
                ..filter.clone()
            };
            // Only what the rows are made of: the annotation when asked, the grader results
            // for CSV (its grader columns).
            let fields = ExportFields {
                annotations: include_annotations,
                grader_results: for_csv,
            };
            let runs = store.export_runs(&filter, fields, PAGE_ROWS).await?;
            cursor.done = runs.len() < PAGE_ROWS as usize;
            cursor.before = runs.last().map(|r| r.id);
            runs.into_iter()
                .map(|mut run| {
                    let annotation = run.annotation.as_ref().map_or(
                        [Value::Null, Value::Null, Value::Null],
                        |a| {
                            [
                                a.rating.map_or(Value::Null, |r| r.as_str().into()),
                                a.output_feedback.clone().map_or(Value::Null, Value::String),
                                a.failure_mode.clone().map_or(Value::Null, Value::String),
                            ]
                        },
                    );
                    // The input becomes the item; only CSV needs a copy of it as its columns.
                    let variables = if for_csv {
                        run.input.clone()
                    } else {
                        Map::new()
                    };
                    let run_id = run.id;
                    let grader_results = run.grader_results.take();
                    let (item, sample) = snapshot_row_from(run);
                    Row {
                        run_id: Some(run_id),
                        item,
                        sample,
                        variables,
                        annotation,
                        grader_results,
                    }
                })
                .collect()
        }
        Source::Dataset { name, version } => {
            let query = RowQuery {
                version: Some(*version),
                split: None,
                after: cursor.after,
            };
            let (_, rows) = store.dataset_rows(name, &query, PAGE_ROWS).await?;
            cursor.done = rows.len() < PAGE_ROWS as usize;
            cursor.after = rows.last().map(|r| r.index);
            rows.into_iter()
                .map(|row| {
                    let mut variables = row.item.clone();
                    let annotation =
                        ANNOTATION_KEYS.map(|k| variables.remove(k).unwrap_or(Value::Null));
                    Row {
                        run_id: None,
                        item: row.item,
                        sample: row.sample,
                        variables,
                        annotation,
                        grader_results: None,
                    }
                })
                .collect()
        }
    };
    Ok(Some(rows))
}

/// A CSV cell: a string as it is, null as nothing, anything else as JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Appends one CSV record, quoted where needed (RFC 4180), ending in CRLF.
pub fn write_csv_line<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let needs_quotes = field.contains([',', '"', '\r', '\n'])
            || field.starts_with(' ')
            || field.ends_with(' ');
        if needs_quotes {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_where_needed() {
        let mut out = String::new();
        write_csv_line(
            &mut out,
            ["plain", "a,b", "say \"hi\"", "two\nlines", " pad", ""].into_iter(),
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" pad\",\r\n"
        );
    }

    #[test]
    fn a_csv_record_puts_variables_output_annotation_then_grader_scores() {
        let object = |v: Value| v.as_object().cloned().unwrap_or_default();
        let row = Row {
            run_id: None,
            item: Map::new(),
            sample: Some(object(serde_json::json!({"output_text": "out"}))),
            variables: object(serde_json::json!({"b": 2, "a": "x"})),
            annotation: [Value::from("bad"), Value::Null, Value::from("wrong_files")],
            grader_results: Some(serde_json::json!({
                "exact": {"score": 1.0, "passed": true},
                "sim": {"score": 0.25},
            })),
        };
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            csv_record(
                &row,
                &names(&["a", "b", "c"]),
                &names(&["exact", "missing", "sim"])
            ),
            [
                "x",
                "2",
                "",
                "out",
                "bad",
                "",
                "wrong_files",
                "1.0",
                "",
                "0.25"
            ]
        );
    }

    #[test]
    fn cells_write_strings_bare_and_other_values_as_json() {
        assert_eq!(cell(&Value::Null), "");
        assert_eq!(cell(&Value::String("x".into())), "x");
        assert_eq!(cell(&serde_json::json!(0.5)), "0.5");
        assert_eq!(cell(&serde_json::json!(["a.rs"])), "[\"a.rs\"]");
    }
}
