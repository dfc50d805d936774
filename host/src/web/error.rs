//! How a page fails: the API's [`ApiError`] (same stable codes and statuses) shown as a small
//! HTML page, or, for a page asked for without a session, a redirect to the sign-in form.
//! Scripts that post with `Accept: application/json` get the API's JSON error instead
//! ([`WebError::Json`]), so they can show the code and message.

use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use maud::html;

use super::layout;
use crate::api::ApiError;

/// Every failure of a page.
#[derive(Debug)]
pub enum WebError {
    /// No session: go to the sign-in form, then back to this path.
    SignIn(String),
    /// What the API would answer, as a page.
    Api(ApiError),
    /// What the API would answer, as its JSON (a script's request).
    Json(ApiError),
}

impl<E: Into<ApiError>> From<E> for WebError {
    fn from(err: E) -> Self {
        WebError::Api(err.into())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self {
            WebError::SignIn(next) => {
                let target = format!(
                    "/sign-in?{}",
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
                );
                (StatusCode::SEE_OTHER, [(LOCATION, target)]).into_response()
            }
            WebError::Json(err) => err.into_response(),
            WebError::Api(err) => {
                let status = err.status();
                if status.is_server_error() {
                    tracing::error!(error = %err, "page failed");
                }
                let message = if status.is_server_error() {
                    "internal error; see the server's log".to_owned()
                } else {
                    err.to_string()
                };
                let body = html! {
                    h1 { "Error " (status.as_u16()) }
                    p.error { code { (err.code()) } ": " (message) }
                    p { a href="/prompts" { "Back to the prompts" } }
                };
                (status, Html(layout::bare("Error", body).into_string())).into_response()
            }
        }
    }
}
