//! `POST /api/prompts/{id}/export`: a prompt's recorded runs, or one of its dataset versions, as
//! OpenAI eval JSONL, CSV or a promptfoo config, streamed as it is read; and
//! `POST /api/prompts/{id}/export/openai-eval`, the OpenAI eval definition of the same rows. Checking and writing are
//! [`crate::export`]'s; this handler parses, checks before the first byte (so a refusal is a
//! proper error answer) and sends the stream as an attachment.
//!
//! Role: `annotator`. An export carries outputs, inputs and annotations out of the service in
//! bulk, which is more than browsing (`read`); it is the step before optimizing a prompt, which
//! is the work of the people who annotate, the same role that creates datasets.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;

use super::error::{ApiError, ErrorBody};
use super::extract::{JsonBody, PathParams};
use crate::config::Settings;
use crate::export::openai_eval::EvalDefinition;
use crate::export::{self, ExportRequest};
use crate::redact::PATTERNS_VERSION;
use crate::store::{Store, StoreError};

/// The response header saying the body was redacted, and by which pattern list version.
pub const REDACTION_HEADER: &str = "x-flywheel-redaction";

/// The response header of a promptfoo export naming the graders left out of the config (also
/// listed, with reasons, in its `metadata.flywheel.notExported`).
pub const NOT_EXPORTED_HEADER: &str = "x-flywheel-not-exported";

/// `on; patterns=<version>`: redaction is always on.
fn redaction_header_value() -> HeaderValue {
    HeaderValue::from_str(&format!("on; patterns={PATTERNS_VERSION}"))
        .unwrap_or(HeaderValue::from_static("on"))
}

/// Export the prompt's recorded production runs matching the filter (newest first), or the rows
/// of one of its dataset versions, as OpenAI eval JSONL (`application/x-ndjson`, a line
/// `{"item", "sample"}` per row), CSV (`text/csv`, a header line, then a row per line) or a
/// promptfoo config (`application/json`: the prompt version's template, a test per row with the
/// row's item as vars and its output as providerOutput, asserts for the graders that map; the
/// others are listed in `metadata.flywheel.notExported` and the `X-Flywheel-Not-Exported`
/// header). The
/// body is written while the rows are read. Secrets in the values are replaced by
/// `[REDACTED:<kind>]` (always; the response carries `X-Flywheel-Redaction: on; patterns=<N>`,
/// and the count of redacted values is logged when the body ends).
#[utoipa::path(
    post, path = "/api/prompts/{id}/export", tag = "export", operation_id = "exportRows",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = ExportRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The rows, as an attachment (`text/csv` for csv), secrets redacted", content_type = "application/x-ndjson",
            headers(("x-flywheel-redaction" = String, description = "`on; patterns=<N>`: redaction was applied with version N of the pattern list"),
                ("x-flywheel-not-exported" = String, description = "promptfoo: the graders left out of the config, comma-separated (absent when none)"))),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 404, description = "Unknown prompt, prompt version, dataset or dataset version", body = ErrorBody),
        (status = 409, description = "Fewer annotated rows than minRows (not_enough_rows; details.found, details.required), or a dataset of another prompt (invalid_state)", body = ErrorBody),
        (status = 422, description = "Unknown format or field, bad date (invalid_body), or a run filter with a dataset, from not before to (invalid_input)", body = ErrorBody),
    )
)]
pub async fn export(
    State(store): State<Arc<dyn Store>>,
    State(settings): State<Arc<Settings>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ExportRequest>,
) -> Result<Response, ApiError> {
    tracing::info!(prompt = %id, format = ?body.format, dataset = ?body.dataset, "export");
    let export = export::prepare(store, &id, body, settings.min_samples_for_optimization).await?;
    let content_type = export.format().content_type();
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        export.file_name.replace(['"', '\\'], "_")
    ))
    .map_err(|e| ApiError::Internal(format!("content-disposition: {e}")))?;
    // The count is known only once the body is written, after the headers have gone: it is
    // logged when the stream ends (a client that stops reading early gets no such line).
    let not_exported: Vec<String> = export
        .not_exported()
        .iter()
        .map(|n| n.grader.clone())
        .collect();
    let redacted = export.redacted_values();
    let prompt = id.clone();
    let done = futures::stream::once(async move {
        tracing::info!(
            prompt = %prompt,
            redacted_values = redacted.load(Ordering::Relaxed),
            "export finished"
        );
    })
    .filter_map(|()| async { None::<Result<Bytes, StoreError>> });
    let body = Body::from_stream(export.stream().chain(done));
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
            (
                HeaderName::from_static(REDACTION_HEADER),
                redaction_header_value(),
            ),
        ],
        body,
    )
        .into_response();
    if !not_exported.is_empty() {
        // Grader names are `[A-Za-z0-9_.-]`, always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&not_exported.join(",")) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(NOT_EXPORTED_HEADER), value);
        }
    }
    Ok(response)
}

/// The OpenAI eval definition (the body of OpenAI's `POST /v1/evals`) of the rows an
/// `openai-jsonl` export with the same body writes: `data_source_config` of type `custom` with
/// an `item_schema` derived from the rows, and `testing_criteria` from the prompt's grader
/// definitions; graders with no OpenAI equivalent are listed in `notExportable` with the reason.
/// The same checks as the export apply (`minRows` included).
#[utoipa::path(
    post, path = "/api/prompts/{id}/export/openai-eval", tag = "export",
    operation_id = "exportOpenaiEvalDefinition",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Prompt id")),
    request_body(content = ExportRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The eval definition", body = EvalDefinition),
        (status = 403, description = "Role too low, or prompt optimization switched off", body = ErrorBody),
        (status = 404, description = "Unknown prompt, prompt version, dataset or dataset version", body = ErrorBody),
        (status = 409, description = "Fewer annotated rows than minRows (not_enough_rows), or a dataset of another prompt (invalid_state)", body = ErrorBody),
        (status = 422, description = "A format other than openai-jsonl, a run filter with a dataset (invalid_input), or a bad body (invalid_body)", body = ErrorBody),
    )
)]
pub async fn openai_eval(
    State(store): State<Arc<dyn Store>>,
    State(settings): State<Arc<Settings>>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ExportRequest>,
) -> Result<axum::Json<EvalDefinition>, ApiError> {
    let definition =
        export::eval_definition(store, &id, body, settings.min_samples_for_optimization).await?;
    Ok(axum::Json(definition))
}
