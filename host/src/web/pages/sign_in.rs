//! Signing in with an API token through a form, and signing out (see [`super::super::session`]).

use axum::Form;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::local_path;
use crate::api::{ApiError, AppState};
use crate::web::error::WebError;
use crate::web::{layout, session};

/// `?next=` of the sign-in form.
#[derive(Debug, Deserialize)]
pub struct NextQuery {
    /// Where to go after signing in.
    #[serde(default)]
    pub next: Option<String>,
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    /// The API token.
    pub token: String,
    /// Where to go after signing in.
    #[serde(default)]
    pub next: Option<String>,
}

fn form_page(state: &AppState, next: &str, problem: Option<&str>) -> Markup {
    layout::bare(
        "Sign in",
        html! {
            h1 { "Flywheel" }
            @if state.auth.is_open() {
                p { "This server has no API tokens configured: reading is open and nobody signs in. "
                    a href="/prompts" { "Go to the prompts" } }
            } @else {
                form.signin method="post" action="/sign-in" {
                    label for="token" { "API token" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    input type="hidden" name="next" value=(next);
                    @if let Some(problem) = problem {
                        p.error role="alert" { (problem) }
                    }
                    button type="submit" { "Sign in" }
                }
                p.muted { "The token is checked like an API bearer token; your role is the token's." }
            }
        },
    )
}

/// `GET /sign-in`.
pub async fn form(
    State(state): State<AppState>,
    crate::api::extract::QueryParams(query): crate::api::extract::QueryParams<NextQuery>,
) -> Html<String> {
    let next = local_path(query.next.as_deref(), "/prompts");
    Html(form_page(&state, &next, None).into_string())
}

/// `POST /sign-in`: opens a session and sets its cookie, or shows the form again with why not.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, WebError> {
    let next = local_path(form.next.as_deref(), "/prompts");
    if state.auth.is_open() {
        return Ok((StatusCode::SEE_OTHER, [(LOCATION, next)]).into_response());
    }
    match session::open(
        &state.store,
        &state.auth,
        &form.token,
        session::over_https(&headers),
    )
    .await
    {
        Ok(cookie) => Ok((
            StatusCode::SEE_OTHER,
            [(SET_COOKIE, cookie), (LOCATION, next)],
        )
            .into_response()),
        Err(ApiError::Unauthorized) => Ok((
            StatusCode::UNAUTHORIZED,
            Html(form_page(&state, &next, Some("That token is not valid.")).into_string()),
        )
            .into_response()),
        Err(other) => Err(other.into()),
    }
}

/// `POST /sign-out`: ends the session and removes the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let cookie = session::close(&state.store, &headers).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(SET_COOKIE, cookie), (LOCATION, "/sign-in".to_owned())],
    )
        .into_response())
}
