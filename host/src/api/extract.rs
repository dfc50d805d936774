//! Request extractors that fail with an [`ApiError`] instead of axum's plain-text rejections, so
//! a malformed body, a wrong type, an unknown field, a missing content type, an oversized body or
//! a non-numeric path parameter all answer in the one error format.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;

use super::error::ApiError;

/// The largest request body accepted (a prompt template is text; 1 MiB is generous).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON request body (`Content-Type: application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// Path parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

/// Query-string parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(e.body_text()),
            JsonRejection::JsonDataError(e) => ApiError::InvalidBody(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(MAX_BODY_BYTES)
            }
            other if other.status().is_client_error() => ApiError::MalformedJson(other.body_text()),
            other => ApiError::Internal(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => ApiError::InvalidPath(e.body_text()),
            other => ApiError::Internal(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::InvalidQuery(rejection.body_text())
    }
}
