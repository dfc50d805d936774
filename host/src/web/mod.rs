//! The web pages for people, served at `/` beside the API (`/api`): prompts and versions (diff,
//! deploy, rollback), the annotation queue (keyboard first), failure-mode counts, runs, grading
//! runs, evaluations and A/B tests.
//!
//! Server-rendered HTML: templates are [`maud`] macros, so the compiler checks every page and
//! escapes every value (askama would have put the templates in files beside the code, checked by
//! a derive; maud keeps a page and its handler in one place and needs no template directory).
//! One hand-written script (`assets/app.js`) adds keyboard shortcuts, saving without reloading
//! and progress polling; every page reads without it and every action is a plain form.
//!
//! Page handlers call the same concepts the API handlers call (the prompt registry,
//! [`crate::annotations`], the store's domains); no SQL here. Roles are the API's: a page hides
//! the buttons the viewer's role may not use, and the handler refuses the action anyway.
//!
//! # Layout
//! - `session.rs`: signing in and out, the [`session::Viewer`] of a request, the Origin check.
//! - `assets.rs`: the embedded stylesheet and script under content-hash paths.
//! - `layout.rs`: the frame of every page; `render.rs`: outputs, diffs, grader verdicts.
//! - `error.rs`: a failure as a page (the API's codes) or a redirect to sign in.
//! - `pages/`: one file per page family.
//!
//! # Security headers
//! Every response of the pages carries a strict Content-Security-Policy (scripts, styles and
//! everything else from this origin only, no inline script or style, no framing), plus
//! `X-Content-Type-Options`, `Referrer-Policy` and `X-Frame-Options`.

pub mod assets;
pub mod error;
pub mod layout;
mod pages;
pub mod render;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};

use crate::api::AppState;

/// The Content-Security-Policy of every page: nothing from anywhere but this origin, no inline
/// script or style (maud writes none; the script sets classes, never styles), no plugins, no
/// framing, forms post only here.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The routes of the pages. Merged into the API's router (`api::router`), so they share its
/// tracing, metrics, body limit and panic handling.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/prompts") }))
        .route("/assets/{file}", get(assets::serve))
        .route(
            "/sign-in",
            get(pages::sign_in::form).post(pages::sign_in::submit),
        )
        .route("/sign-out", post(pages::sign_in::sign_out))
        .route("/prompts", get(pages::prompts::list))
        .route("/prompts/{id}", get(pages::versions::page))
        .route(
            "/prompts/{id}/deploy/{version}",
            get(pages::versions::confirm_deploy).post(pages::versions::deploy),
        )
        .route(
            "/prompts/{id}/rollback",
            get(pages::versions::confirm_rollback).post(pages::versions::rollback),
        )
        .route("/prompts/{id}/annotate", get(pages::annotate::page))
        .route("/runs/{id}/annotation", post(pages::annotate::save))
        .route(
            "/prompts/{id}/failure-modes",
            get(pages::failure_modes::page),
        )
        .route("/runs", get(pages::runs::list))
        .route("/runs/{id}", get(pages::runs::one))
        .route("/grading-runs", get(pages::grading::list))
        .route("/grading-runs/{id}", get(pages::grading::one))
        .route("/grading-runs/{id}/cancel", post(pages::grading::cancel))
        .route("/ab-tests", get(pages::ab_tests::list))
        .route("/ab-tests/{id}", get(pages::ab_tests::one))
        .route(
            "/evaluations",
            get(pages::evaluations::list).post(pages::evaluations::start),
        )
        .route("/evaluations/{id}", get(pages::evaluations::one))
        .route("/evaluations/{id}/cancel", post(pages::evaluations::cancel))
        .route("/optimizations", get(pages::optimizations::list))
        .route("/optimizations/{id}", get(pages::optimizations::one))
        .route(
            "/optimizations/{id}/cancel",
            post(pages::optimizations::cancel),
        )
        .layer(middleware::from_fn(session::check_origin))
        .layer(middleware::from_fn(security_headers))
}

/// Adds the security headers to every response of the pages; pages themselves are not cached
/// (they show live data and who is signed in), the hashed assets are.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_asset {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
