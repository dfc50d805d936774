//! The Versions page of a prompt: every version with its figures, the content of one, a
//! side-by-side diff of any two, deploy and rollback (admin, after a confirmation page), and the
//! deploy history. Deploy and rollback go through the prompt registry, as the API's do.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use crate::api::extract::{PathParams, QueryParams};
use crate::api::{ApiError, AppState};
use crate::config::Role;
use crate::prompts::PromptError;
use crate::store::StoreError;
use crate::web::error::WebError;
use crate::web::layout::{self, Section, success, when};
use crate::web::render;
use crate::web::session::Viewer;

/// `?v=&a=&b=` of the versions page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    /// The version whose content is shown (default: the active one).
    #[serde(default)]
    pub v: Option<i64>,
    /// Left side of the diff.
    #[serde(default)]
    pub a: Option<i64>,
    /// Right side of the diff.
    #[serde(default)]
    pub b: Option<i64>,
}

/// `GET /prompts/{id}`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<VersionsQuery>,
) -> Result<Html<String>, WebError> {
    let versions = state.registry.versions(&id).await?;
    let history = state.registry.history(&id).await?;
    let active = versions.iter().find(|v| v.is_active).map(|v| v.version);
    let shown_number = query.v.or(active).or(versions.last().map(|v| v.version));
    let shown = versions.iter().find(|v| Some(v.version) == shown_number);
    if let (Some(asked), None) = (query.v, shown) {
        return Err(ApiError::NotFound(crate::store::Missing::version(&id, asked)).into());
    }
    // The diff defaults to the version before the active one against the active one.
    let b = query.b.or(active).or(versions.last().map(|v| v.version));
    let a = query.a.or_else(|| {
        b.and_then(|b| {
            versions
                .iter()
                .rev()
                .find(|v| v.version < b)
                .map(|v| v.version)
        })
    });
    let find = |n: Option<i64>| versions.iter().find(|v| Some(v.version) == n);
    let admin = viewer.can(Role::Admin);
    let body = html! {
        h1 { "Versions of " (id) }
        nav.actions {
            a href={ "/prompts/" (id) "/annotate" } { "Annotate" }
            a href={ "/prompts/" (id) "/failure-modes" } { "Failure modes" }
            a href={ "/runs?promptId=" (id) } { "Runs" }
            @if admin && history.len() > 1 {
                a.button.danger href={ "/prompts/" (id) "/rollback" } { "Roll back…" }
            }
        }
        table.versions {
            thead { tr { th { "Version" } th { "Source" } th { "Created" } th { "Tasks" } th { "Success" } th { "Avg tokens" } th {} } }
            tbody {
                @for v in versions.iter().rev() {
                    tr class=(if v.is_active { "active" } else { "" }) {
                        td { a href={ "/prompts/" (id) "?v=" (v.version) } { "v" (v.version) }
                             @if v.is_active { " " span.badge { "active" } } }
                        td { (format!("{:?}", v.source).to_lowercase()) }
                        td { (when(&v.created_at)) }
                        td { (v.tasks_executed) }
                        td { (success(v.success_rate)) }
                        td { (v.avg_tokens.map(|t| t.to_string()).unwrap_or_else(|| "–".to_owned())) }
                        td {
                            @if admin && !v.is_active {
                                a.button href={ "/prompts/" (id) "/deploy/" (v.version) } { "Deploy v" (v.version) "…" }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(v) = shown {
            h2 { "Content of v" (v.version) }
            @if let Some(notes) = &v.notes { p.muted { (notes) } }
            pre.prompt { (v.content) }
        }
        h2 { "Compare versions" }
        form.inline method="get" action={ "/prompts/" (id) } {
            label { "From " select name="a" {
                @for v in &versions { option value=(v.version) selected[Some(v.version) == a] { "v" (v.version) } }
            } }
            label { " to " select name="b" {
                @for v in &versions { option value=(v.version) selected[Some(v.version) == b] { "v" (v.version) } }
            } }
            button type="submit" { "Compare" }
        }
        @match (find(a), find(b)) {
            (Some(old), Some(new)) => {
                (render::diff_table(&format!("v{}", old.version), &old.content, &format!("v{}", new.version), &new.content))
            }
            _ => { p.muted { "Pick two versions to compare." } }
        }
        h2 { "Deploy history" }
        table {
            thead { tr { th { "When" } th { "Action" } th { "From" } th { "To" } th { "By" } } }
            tbody {
                @for record in history.iter().rev() {
                    tr {
                        td { (when(&record.created_at)) }
                        td { (format!("{:?}", record.action).to_lowercase()) }
                        td { (record.from_version.map(|v| format!("v{v}")).unwrap_or_else(|| "–".to_owned())) }
                        td { "v" (record.to_version) }
                        td { (record.actor) }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page(
            &format!("Versions of {id}"),
            &viewer,
            Section::Prompts,
            body,
        )
        .into_string(),
    ))
}

/// `GET /prompts/{id}/deploy/{version}`: asks for confirmation.
pub async fn confirm_deploy(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams((id, version)): PathParams<(String, i64)>,
) -> Result<Html<String>, WebError> {
    viewer.require(Role::Admin)?;
    let target = state.registry.version(&id, version).await?;
    let active = state
        .registry
        .versions(&id)
        .await?
        .into_iter()
        .find(|v| v.is_active);
    let body = html! {
        h1 { "Deploy v" (target.version) " of " (id) "?" }
        p { "Every task resolving " (id) " gets v" (target.version) " from now on"
            @if let Some(active) = &active { ", instead of v" (active.version) } "." }
        @if let Some(active) = &active {
            (render::diff_table(&format!("v{} (active)", active.version), &active.content, &format!("v{}", target.version), &target.content))
        }
        form.confirm method="post" action={ "/prompts/" (id) "/deploy/" (version) } {
            button.primary type="submit" { "Deploy v" (version) }
            a href={ "/prompts/" (id) } { "Cancel" }
        }
    };
    Ok(Html(
        layout::page("Confirm deploy", &viewer, Section::Prompts, body).into_string(),
    ))
}

/// `POST /prompts/{id}/deploy/{version}`.
pub async fn deploy(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams((id, version)): PathParams<(String, i64)>,
) -> Result<Response, WebError> {
    viewer.require(Role::Admin)?;
    state.registry.deploy(&id, version, &viewer.name).await?;
    Ok(back_to(&id))
}

/// `GET /prompts/{id}/rollback`: asks for confirmation.
pub async fn confirm_rollback(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<String>,
) -> Result<Html<String>, WebError> {
    viewer.require(Role::Admin)?;
    let history = state.registry.history(&id).await?;
    let body = html! {
        h1 { "Roll back " (id) "?" }
        @if let Some(last) = history.last() {
            p { "The active version is v" (last.to_version)
                @if let Some(from) = last.from_version { "; rolling back re-activates the version active before it (v" (from) " when it was deployed)" } "." }
        }
        form.confirm method="post" action={ "/prompts/" (id) "/rollback" } {
            button.primary.danger type="submit" { "Roll back" }
            a href={ "/prompts/" (id) } { "Cancel" }
        }
    };
    Ok(Html(
        layout::page("Confirm rollback", &viewer, Section::Prompts, body).into_string(),
    ))
}

/// `POST /prompts/{id}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<String>,
) -> Result<Response, WebError> {
    viewer.require(Role::Admin)?;
    match state.registry.rollback(&id, &viewer.name).await {
        Ok(_) => Ok(back_to(&id)),
        // As the API answers it: nothing earlier to go to.
        Err(PromptError::Store(StoreError::InvalidState(message))) => {
            Err(ApiError::NothingToRollBack(message).into())
        }
        Err(other) => Err(other.into()),
    }
}

fn back_to(id: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/prompts/{id}"))],
    )
        .into_response()
}
