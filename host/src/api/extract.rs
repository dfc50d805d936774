//! Request extractors that fail with an [`ApiError`] instead of axum's plain-text rejections, so
//! a malformed body, a wrong type, an unknown field, a missing content type, an oversized body or
//! a non-numeric path parameter all answer in the one error format.
//!
//! They also refuse text holding a NUL character (U+0000) in a path parameter, a query parameter
//! or anywhere in a JSON body, with `422 invalid_text` naming the field: PostgreSQL cannot store
//! NUL in a text column (SQLite can), and both backends must answer alike, so it is refused
//! before any handler runs rather than stored on one backend and a 500 on the other.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ApiError;

/// The largest request body accepted (a prompt template is text; 1 MiB is generous). A route
/// that needs more says so with [`with_body_limit`].
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A route's own body limit, when it is not [`MAX_BODY_BYTES`]; read by [`JsonBody`] to say the
/// right number when it refuses a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Gives one route a body limit of its own (`POST /api/runs` takes batches of 1,000 runs).
pub fn with_body_limit<S>(
    route: axum::routing::MethodRouter<S>,
    bytes: usize,
) -> axum::routing::MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    // Layers run outside in: the route's limit replaces the router-wide one.
    route
        .layer::<_, std::convert::Infallible>(axum::extract::DefaultBodyLimit::max(bytes))
        .layer::<_, std::convert::Infallible>(axum::Extension(BodyLimit(bytes)))
}

/// A JSON request body (`Content-Type: application/json`).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Path parameters.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

/// Query-string parameters.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(MAX_BODY_BYTES, |l| l.0);
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        // A NUL can only be in a JSON string as the escape `\u0000`; the tree is walked only
        // when the escape is there (rarely), to name the field.
        if memchr_escape(&bytes)
            && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && let Some(field) = nul_field(&value, "")
        {
            return Err(ApiError::InvalidText { field });
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(|rejection| {
            match rejection {
                // serde_json reports some type mismatches as syntax errors (a number where an
                // enum's string is expected: "expected value"); JSON that parses is the wrong
                // shape, not malformed.
                JsonRejection::JsonSyntaxError(e)
                    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() =>
                {
                    ApiError::InvalidBody(e.body_text())
                }
                other => other.into(),
            }
        })?;
        Ok(JsonBody(value))
    }
}

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await
            && let Some((name, _)) = raw.iter().find(|(_, value)| value.contains('\0'))
        {
            return Err(ApiError::InvalidText {
                field: name.to_owned(),
            });
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(PathParams(value))
    }
}

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            && let Some((name, _)) = pairs
                .iter()
                .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(ApiError::InvalidText {
                field: name.replace('\0', "\\u0000"),
            });
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(QueryParams(value))
    }
}

/// `application/json` or `application/<something>+json`, as axum's `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

/// Whether the body holds the JSON escape of NUL.
fn memchr_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// The path (`content`, `runs[3].output`) of the first string or key of `value` holding a NUL,
/// as [`JsonBody`] names it (the CLI checks files with it before sending them).
pub fn find_nul(value: &Value) -> Option<String> {
    nul_field(value, "")
}

/// The path (`content`, `runs[3].output`, `definition.input`) of the first string or key holding
/// a NUL.
fn nul_field(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| display_path(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_field(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.replace('\0', "\\u0000")
            } else {
                format!("{path}.{}", key.replace('\0', "\\u0000"))
            };
            if key.contains('\0') {
                Some(child)
            } else {
                nul_field(item, &child)
            }
        }),
        _ => None,
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_holding_a_nul_is_named_by_its_path() {
        let body: Value = serde_json::from_str(
            r#"{"content":"fine","runs":[{"output":"ok"},{"output":"a\u0000b"}]}"#,
        )
        .expect("JSON");
        assert_eq!(nul_field(&body, "").as_deref(), Some("runs[1].output"));
        let key: Value = serde_json::from_str(r#"{"input":{"k\u0000":1}}"#).expect("JSON");
        assert_eq!(nul_field(&key, "").as_deref(), Some("input.k\\u0000"));
        let top: Value = serde_json::from_str(r#""\u0000""#).expect("JSON");
        assert_eq!(nul_field(&top, "").as_deref(), Some("."));
        let clean: Value = serde_json::from_str(r#"{"a":["\\u0000 is text"]}"#).expect("JSON");
        assert_eq!(nul_field(&clean, ""), None);
    }

    #[test]
    fn json_content_types_are_recognised_as_axum_does() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("application/json; charset=utf-8", true),
            ("Application/JSON", true),
            ("application/vnd.api+json", true),
            ("text/plain", false),
            ("application/jsonx", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().expect("header"));
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
