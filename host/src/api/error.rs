//! The one HTTP error type. Every failure a client can see is an [`ApiError`] with a stable
//! snake_case code; [`ApiError::code_and_status`] is the single table from variant to code,
//! type and status. The body is `{"error":{"code":"…","type":"…","message":"…"}}`, plus
//! `details` where a client can use them (a template error's line and column).
//!
//! Codes are specific where a client must tell causes apart (`prompt_not_found` vs
//! `version_not_found`, as meilisearch's table does); `type` is the general kind, which is the
//! code this API answered before codes became specific (`not_found`, `invalid_state`), so a client
//! written against the general codes keeps working by reading `type`. Internal failures are
//! logged here and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::prompts::PromptError;
use crate::runs::{BatchError, ItemKind};
use crate::store::{Missing, StoreError};

fn item_name(kind: &ItemKind) -> &'static str {
    match kind {
        ItemKind::Run => "run",
        ItemKind::Outcome => "outcome",
    }
}

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or one that matches no configured token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The token is valid but its role is too low for this route.
    #[error("this route needs the {needed} role; the caller has {has}")]
    Forbidden {
        /// The role the route needs.
        needed: crate::config::Role,
        /// The role the token has.
        has: crate::config::Role,
    },
    /// The route belongs to a feature switched off by configuration
    /// (`ENABLE_PROMPT_OPTIMIZATION=false`); nothing was read or stored.
    #[error("{0} is switched off on this server (ENABLE_PROMPT_OPTIMIZATION=false)")]
    FeatureDisabled(&'static str),
    /// A state-changing request of the web pages came without an `Origin` header, or from
    /// another site (cross-site request forgery); nothing was changed.
    #[error("{0}")]
    OriginRefused(String),
    /// No route matches the path.
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The path exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// A prompt, version or other resource does not exist; the code says which.
    #[error("{0} not found")]
    NotFound(Missing),
    /// Rollback asked of a prompt with no earlier deployed version (or none active).
    #[error("{0}")]
    NothingToRollBack(String),
    /// The body is not syntactically valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON but not of the expected shape (wrong type, unknown or missing field).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// The body is not declared as `application/json`.
    #[error("expected a body with content-type application/json")]
    UnsupportedMediaType,
    /// The body exceeds the size limit.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// A path parameter does not parse (e.g. a non-numeric version).
    #[error("invalid path parameter: {0}")]
    InvalidPath(String),
    /// The query string does not parse or lacks a required parameter.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A prompt template does not parse.
    #[error("invalid template at line {line}, column {column}: {message}")]
    InvalidTemplate {
        /// What is wrong.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A grader definition was refused; `field` is the path of the offending field inside the
    /// definition (`operation`, `graders.a.component`, `calculate_output`, `.` for the whole).
    #[error("invalid grader definition at `{field}`: {message}")]
    InvalidGraderDefinition {
        /// The field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A failure mode outside the prompt's taxonomy; `allowed` (in `details`) lists its codes.
    #[error("failure mode {code:?} is not in the taxonomy of prompt {prompt}; allowed: {}", allowed.join(", "))]
    InvalidFailureMode {
        /// The prompt.
        prompt: String,
        /// The code given.
        code: String,
        /// The prompt's codes.
        allowed: Vec<String>,
    },
    /// Text holding a NUL character (U+0000) in a path, query or body field; `field` names it
    /// (`id`, `task_id`, `content`, `definition.input`).
    #[error("`{field}` holds a NUL character (U+0000), which is not accepted in text")]
    InvalidText {
        /// The field path.
        field: String,
    },
    /// A value is out of its accepted range (e.g. an empty or over-long task id).
    #[error("{0}")]
    InvalidInput(String),
    /// A run or an outcome of a body was refused (wrong type, unknown or missing field, value
    /// out of range); nothing of its batch was stored. The code says which kind of item.
    #[error("invalid {} at `{field}`: {message}", item_name(.kind))]
    InvalidItem {
        /// Run or outcome.
        kind: ItemKind,
        /// The item's position in its batch (none for a single run).
        index: Option<usize>,
        /// The field's path in the body (`runs[3].taskId`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A body field names a prompt or version that does not exist (a path naming one is a
    /// 404; a body naming one is unprocessable); nothing of its batch was stored.
    #[error("`{field}` names an unknown {missing}")]
    UnknownReference {
        /// What does not exist.
        missing: Missing,
        /// The item's position in its batch (none for a single run).
        index: Option<usize>,
        /// The field's path in the body (`runs[3].promptId`).
        field: String,
    },
    /// A batch is empty or holds too many items.
    #[error("{message}")]
    InvalidBatch {
        /// The batch's field (`runs`, `outcomes`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A row of a dataset upload (`rows[3]`, or line 7 of `jsonl` as `jsonl:7`) was refused;
    /// nothing was stored.
    #[error("{message}")]
    InvalidDatasetRow {
        /// Where: `rows[3].item`, `jsonl:7`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An imported template's variables differ from the active version's.
    #[error("{message}")]
    VariablesChanged {
        /// The whole explanation.
        message: String,
        /// Variables of the active version the template lacks.
        missing: Vec<String>,
        /// Variables the template adds.
        added: Vec<String>,
    },
    /// An export found fewer annotated rows than its `minRows`; nothing was written.
    #[error("{message}")]
    NotEnoughRows {
        /// The whole explanation.
        message: String,
        /// Annotated rows found.
        found: u64,
        /// Annotated rows required.
        required: u64,
    },
    /// A migration found things it cannot map; nothing was written. `problems` (in `details`)
    /// lists each with its place (`eval.testing_criteria[2].operation`, `items.jsonl:7`).
    #[error("{message}")]
    MigrationRefused {
        /// The whole explanation.
        message: String,
        /// Each problem.
        problems: Vec<crate::migrate::Problem>,
        /// Problems found beyond those listed.
        more: usize,
    },
    /// A list cursor this server did not hand out.
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// The operation makes no sense in the current state (rollback with no history).
    #[error("{0}")]
    InvalidState(String),
    /// A uniqueness or consistency constraint refused the change.
    #[error("{0}")]
    Conflict(String),
    /// An A/B test of the prompt is already running (one per prompt).
    #[error("{0}")]
    AbTestRunning(String),
    /// The database cannot be reached (health check).
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The request ran past the server's time limit (`FLYWHEEL_REQUEST_TIMEOUT_SECS`) and was
    /// abandoned; a database transaction it held was rolled back.
    #[error("the request ran past the server's time limit of {} ms (FLYWHEEL_REQUEST_TIMEOUT_SECS) and was abandoned", .0.as_millis())]
    RequestTimeout(std::time::Duration),
    /// Anything else; the cause is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The stable code and HTTP status (see [`ApiError::table`]).
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        let (code, _, status) = self.table();
        (code, status)
    }

    /// The general kind of the error: the code before codes became specific.
    pub fn kind(&self) -> &'static str {
        self.table().1
    }

    /// THE table: each variant's stable code, its general type and its HTTP status.
    fn table(&self) -> (&'static str, &'static str, StatusCode) {
        let (code, status) = match self {
            ApiError::NotFound(missing) => {
                let code = match missing {
                    Missing::Prompt(_) => "prompt_not_found",
                    Missing::Version { .. } => "version_not_found",
                    Missing::ActiveVersion(_) => "active_version_not_found",
                    Missing::GraderDefinition { .. } => "grader_definition_not_found",
                    Missing::GradingJob(_) => "grading_run_not_found",
                    Missing::Run(_) => "run_not_found",
                    Missing::Evaluation(_) => "evaluation_not_found",
                    Missing::Optimization(_) => "optimization_not_found",
                    Missing::AbTest(_) | Missing::RunningAbTest(_) => "ab_test_not_found",
                    Missing::Dataset(_) => "dataset_not_found",
                    Missing::DatasetVersion { .. } => "dataset_version_not_found",
                };
                return (code, "not_found", StatusCode::NOT_FOUND);
            }
            ApiError::NothingToRollBack(_) => {
                return (
                    "nothing_to_roll_back",
                    "invalid_state",
                    StatusCode::CONFLICT,
                );
            }
            ApiError::AbTestRunning(_) => {
                return ("ab_test_running", "conflict", StatusCode::CONFLICT);
            }
            ApiError::InvalidItem { kind, .. } => {
                let code = match kind {
                    ItemKind::Run => "invalid_run",
                    ItemKind::Outcome => "invalid_outcome",
                };
                (code, StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::UnknownReference { missing, .. } => {
                let code = match missing {
                    Missing::Prompt(_) => "unknown_prompt",
                    _ => "unknown_version",
                };
                (code, StatusCode::UNPROCESSABLE_ENTITY)
            }
            other => other.general_code_and_status(),
        };
        (code, code, status)
    }

    /// Code and status of the variants whose code is their type.
    fn general_code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::NotFound(_)
            | ApiError::NothingToRollBack(_)
            | ApiError::AbTestRunning(_)
            | ApiError::InvalidItem { .. }
            | ApiError::UnknownReference { .. } => {
                unreachable!("specific codes are answered by ApiError::table")
            }
            ApiError::Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden { .. } => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::FeatureDisabled(_) => ("feature_disabled", StatusCode::FORBIDDEN),
            ApiError::OriginRefused(_) => ("origin_refused", StatusCode::FORBIDDEN),
            ApiError::RouteNotFound(_) => ("route_not_found", StatusCode::NOT_FOUND),
            ApiError::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            ApiError::MalformedJson(_) => ("malformed_json", StatusCode::BAD_REQUEST),
            ApiError::InvalidBody(_) => ("invalid_body", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::UnsupportedMediaType => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            ApiError::PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::InvalidPath(_) => ("invalid_path", StatusCode::BAD_REQUEST),
            ApiError::InvalidQuery(_) => ("invalid_query", StatusCode::BAD_REQUEST),
            ApiError::InvalidTemplate { .. } => {
                ("invalid_template", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::InvalidGraderDefinition { .. } => (
                "invalid_grader_definition",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            ApiError::InvalidText { .. } => ("invalid_text", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::InvalidFailureMode { .. } => {
                ("invalid_failure_mode", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::InvalidInput(_) => ("invalid_input", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::InvalidBatch { .. } => ("invalid_batch", StatusCode::UNPROCESSABLE_ENTITY),
            ApiError::InvalidDatasetRow { .. } => {
                ("invalid_dataset_row", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::VariablesChanged { .. } => {
                ("variables_changed", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::InvalidCursor(_) => ("invalid_cursor", StatusCode::BAD_REQUEST),
            ApiError::MigrationRefused { .. } => {
                ("migration_refused", StatusCode::UNPROCESSABLE_ENTITY)
            }
            ApiError::InvalidState(_) => ("invalid_state", StatusCode::CONFLICT),
            ApiError::NotEnoughRows { .. } => ("not_enough_rows", StatusCode::CONFLICT),
            ApiError::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::RequestTimeout(_) => ("request_timeout", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code_and_status().0
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code_and_status().1
    }

    /// One example of every variant, for the table's tests and the README.
    pub fn examples() -> Vec<ApiError> {
        use crate::config::Role;
        vec![
            ApiError::Unauthorized,
            ApiError::Forbidden {
                needed: Role::Admin,
                has: Role::Read,
            },
            ApiError::FeatureDisabled("recording runs"),
            ApiError::OriginRefused(String::new()),
            ApiError::RouteNotFound(String::new()),
            ApiError::MethodNotAllowed,
            ApiError::NotFound(Missing::prompt("planner")),
            ApiError::NotFound(Missing::version("planner", 7)),
            ApiError::NotFound(Missing::active_version("planner")),
            ApiError::NotFound(Missing::grader_definition("planner", "exact")),
            ApiError::NotFound(Missing::GradingJob(uuid::Uuid::nil())),
            ApiError::NotFound(Missing::Run(uuid::Uuid::nil())),
            ApiError::NotFound(Missing::Evaluation(uuid::Uuid::nil())),
            ApiError::NotFound(Missing::Optimization(uuid::Uuid::nil())),
            ApiError::NotFound(Missing::ab_test("0")),
            ApiError::NotFound(Missing::Dataset("golden".to_owned())),
            ApiError::NotFound(Missing::DatasetVersion {
                name: "golden".to_owned(),
                version: 2,
            }),
            ApiError::InvalidDatasetRow {
                field: "jsonl:7".to_owned(),
                message: String::new(),
            },
            ApiError::AbTestRunning(String::new()),
            ApiError::NothingToRollBack(String::new()),
            ApiError::MalformedJson(String::new()),
            ApiError::InvalidBody(String::new()),
            ApiError::UnsupportedMediaType,
            ApiError::PayloadTooLarge(0),
            ApiError::InvalidPath(String::new()),
            ApiError::InvalidQuery(String::new()),
            ApiError::InvalidTemplate {
                message: String::new(),
                line: 1,
                column: 1,
            },
            ApiError::InvalidGraderDefinition {
                field: String::new(),
                message: String::new(),
            },
            ApiError::InvalidText {
                field: String::new(),
            },
            ApiError::InvalidFailureMode {
                prompt: String::new(),
                code: String::new(),
                allowed: Vec::new(),
            },
            ApiError::InvalidInput(String::new()),
            ApiError::InvalidItem {
                kind: ItemKind::Run,
                index: Some(3),
                field: "runs[3].taskId".to_owned(),
                message: String::new(),
            },
            ApiError::InvalidItem {
                kind: ItemKind::Outcome,
                index: Some(0),
                field: "outcomes[0].taskId".to_owned(),
                message: String::new(),
            },
            ApiError::UnknownReference {
                missing: Missing::prompt("ghost"),
                index: None,
                field: "promptId".to_owned(),
            },
            ApiError::UnknownReference {
                missing: Missing::version("planner", 7),
                index: Some(1),
                field: "runs[1].version".to_owned(),
            },
            ApiError::InvalidBatch {
                field: "runs",
                message: String::new(),
            },
            ApiError::VariablesChanged {
                message: String::new(),
                missing: Vec::new(),
                added: Vec::new(),
            },
            ApiError::MigrationRefused {
                message: String::new(),
                problems: Vec::new(),
                more: 0,
            },
            ApiError::InvalidCursor(String::new()),
            ApiError::NotEnoughRows {
                message: String::new(),
                found: 0,
                required: 3,
            },
            ApiError::InvalidState(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::Unavailable(String::new()),
            ApiError::RequestTimeout(std::time::Duration::from_secs(30)),
            ApiError::Internal(String::new()),
        ]
    }
}

/// The wire shape of an error, for the OpenAPI document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code such as `prompt_not_found` or `invalid_template`.
    pub code: String,
    /// The general kind (`not_found`, `invalid_state`, …): the code before codes became
    /// specific; equal to `code` where the code is already general.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra fields for some codes (`line`, `column` for `invalid_template`; `field` for
    /// `invalid_grader_definition` and `invalid_text`; `field`, `code` and `allowed`, the
    /// prompt's failure-mode codes, for `invalid_failure_mode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, kind, status) = self.table();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "internal error".to_owned()
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "service unavailable");
                "service unavailable".to_owned()
            }
            other => other.to_string(),
        };
        let details = match &self {
            ApiError::InvalidTemplate { line, column, .. } => {
                Some(json!({ "line": line, "column": column }))
            }
            ApiError::InvalidGraderDefinition { field, .. }
            | ApiError::InvalidText { field }
            | ApiError::InvalidDatasetRow { field, .. } => Some(json!({ "field": field })),
            ApiError::InvalidFailureMode { code, allowed, .. } => {
                Some(json!({ "field": "failureMode", "code": code, "allowed": allowed }))
            }
            ApiError::InvalidItem { index, field, .. }
            | ApiError::UnknownReference { index, field, .. } => Some(match index {
                Some(index) => json!({ "index": index, "field": field }),
                None => json!({ "field": field }),
            }),
            ApiError::VariablesChanged { missing, added, .. } => {
                Some(json!({ "missing": missing, "added": added }))
            }
            ApiError::InvalidBatch { field, .. } => {
                Some(json!({ "field": field, "max": crate::runs::MAX_BATCH }))
            }
            ApiError::NotEnoughRows {
                found, required, ..
            } => Some(json!({ "found": found, "required": required })),
            ApiError::MigrationRefused { problems, more, .. } => {
                Some(json!({ "problems": problems, "more": more }))
            }
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                kind: kind.to_owned(),
                message,
                details,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            // RFC 6750: tell the client which scheme to use.
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(missing) => ApiError::NotFound(missing),
            StoreError::Conflict { constraint }
                if constraint == "one_running_ab_test_per_prompt" =>
            {
                ApiError::AbTestRunning(
                    "an A/B test of this prompt is already running; stop it first".to_owned(),
                )
            }
            StoreError::Conflict { constraint } => {
                ApiError::Conflict(conflict_message(&constraint))
            }
            StoreError::InvalidState(message) => ApiError::InvalidState(message),
            StoreError::InvalidFailureMode {
                prompt,
                code,
                allowed,
            } => ApiError::InvalidFailureMode {
                prompt,
                code,
                allowed,
            },
            // Callers that send batches name the item themselves (`api/runs.rs`).
            StoreError::InBatch { error, .. } => ApiError::from(*error),
            // Database, migration and configuration failures are the service's, not the caller's.
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Says what a violated constraint means, by the constraint's name in the migrations (never by
/// the database's message text, which differs between backends and versions).
fn conflict_message(constraint: &str) -> String {
    match constraint {
        "one_active_version_per_prompt" => {
            "another change of this prompt's active version happened at the same time; retry"
                .to_owned()
        }
        "prompt_versions_prompt_id_version_key" => {
            "another version of this prompt was created at the same time; retry".to_owned()
        }
        "prompts_pkey" => "a prompt with this id already exists".to_owned(),
        "graders_name_nonempty" => "a grader name must be 1 to 100 characters".to_owned(),
        "graders_definition_json" => "a grader definition must be a JSON object".to_owned(),
        "failure_modes_pkey" => {
            "the prompt's taxonomy already has this failure-mode code".to_owned()
        }
        "failure_modes_code_format" => "a failure-mode code is 1 to 50 lower-case letters, \
             digits and `_`, starting with a letter"
            .to_owned(),
        other => format!("the change conflicts with existing data ({other})"),
    }
}

impl From<crate::migrate::MigrateError> for ApiError {
    fn from(err: crate::migrate::MigrateError) -> Self {
        use crate::migrate::MigrateError;
        let message = err.to_string();
        match err {
            MigrateError::Refused { problems, more } => ApiError::MigrationRefused {
                message,
                problems,
                more,
            },
            MigrateError::Loading => ApiError::Unavailable(message),
            MigrateError::Store(store) => store.into(),
        }
    }
}

impl From<crate::grading::stored::StoredError> for ApiError {
    fn from(err: crate::grading::stored::StoredError) -> Self {
        use crate::grading::stored::StoredError;
        match err {
            StoredError::InvalidName(_) => ApiError::InvalidInput(err.to_string()),
            StoredError::Definition(e) => ApiError::InvalidGraderDefinition {
                field: e.field,
                message: e.message,
            },
            StoredError::Loading => ApiError::Unavailable(err.to_string()),
            StoredError::Store(store) => store.into(),
        }
    }
}

impl From<crate::grading::request::RequestError> for ApiError {
    fn from(err: crate::grading::request::RequestError) -> Self {
        use crate::grading::request::RequestError;
        match err {
            RequestError::Invalid(message) => ApiError::InvalidInput(message),
            RequestError::NotConfigured(message) => ApiError::InvalidState(message),
            RequestError::Loading => ApiError::Unavailable(RequestError::Loading.to_string()),
            RequestError::Store(store) => store.into(),
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(err: BatchError) -> Self {
        match err {
            BatchError::Body(message) => ApiError::InvalidBody(message),
            BatchError::Size { field, message } => ApiError::InvalidBatch { field, message },
            BatchError::Item {
                kind,
                index,
                field,
                message,
            } => ApiError::InvalidItem {
                kind,
                index,
                field,
                message,
            },
        }
    }
}

impl From<crate::datasets::DatasetError> for ApiError {
    fn from(err: crate::datasets::DatasetError) -> Self {
        use crate::datasets::DatasetError;
        match err {
            DatasetError::Invalid(message) => ApiError::InvalidInput(message),
            DatasetError::Row(row) => ApiError::InvalidDatasetRow {
                message: row.to_string(),
                field: row.field,
            },
            DatasetError::Store(store) => store.into(),
        }
    }
}

impl From<crate::export::ExportError> for ApiError {
    fn from(err: crate::export::ExportError) -> Self {
        use crate::export::ExportError;
        let message = err.to_string();
        match err {
            ExportError::Invalid(message) => ApiError::InvalidInput(message),
            ExportError::OtherPrompt(message) => ApiError::InvalidState(message),
            ExportError::NotEnoughRows { found, required } => ApiError::NotEnoughRows {
                message,
                found,
                required,
            },
            ExportError::Store(store) => store.into(),
        }
    }
}

impl From<PromptError> for ApiError {
    fn from(err: PromptError) -> Self {
        match err {
            PromptError::Template(t) => ApiError::InvalidTemplate {
                message: t.message,
                line: t.line,
                column: t.column,
            },
            PromptError::Invalid(message) => ApiError::InvalidInput(message),
            PromptError::VariablesChanged { missing, added } => ApiError::VariablesChanged {
                message: PromptError::VariablesChanged {
                    missing: missing.clone(),
                    added: added.clone(),
                }
                .to_string(),
                missing,
                added,
            },
            PromptError::Store(store) => store.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_and_client_errors_are_4xx() {
        let mut seen = HashSet::new();
        for err in ApiError::examples() {
            let (code, status) = err.code_and_status();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code} is not snake_case"
            );
            let server_side = matches!(
                err,
                ApiError::Internal(_) | ApiError::Unavailable(_) | ApiError::RequestTimeout(_)
            );
            assert_eq!(status.is_server_error(), server_side, "{code} -> {status}");
        }
    }

    #[test]
    fn every_code_and_type_is_in_the_readme_table() {
        let readme = include_str!("../../../README.md");
        for err in ApiError::examples() {
            let (code, status) = err.code_and_status();
            let row = format!("| `{code}` | {} |", status.as_u16());
            assert!(readme.contains(&row), "README lacks the row {row}");
            if err.kind() != code {
                assert!(
                    readme.contains(&format!("(type `{}`)", err.kind())),
                    "README does not say the type of {code}"
                );
            }
        }
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = ApiError::Internal("password=hunter2 at db".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("in-memory body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON body");
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["message"], "internal error");
        assert!(!String::from_utf8_lossy(&bytes).contains("hunter2"));
    }

    #[tokio::test]
    async fn template_errors_carry_line_and_column_as_fields() {
        let response = ApiError::InvalidTemplate {
            message: "unclosed {{".into(),
            line: 3,
            column: 7,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("in-memory body");
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON body");
        assert_eq!(body["error"]["code"], "invalid_template");
        assert_eq!(body["error"]["details"]["line"], 3);
        assert_eq!(body["error"]["details"]["column"], 7);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("line 3")
        );
    }
}
