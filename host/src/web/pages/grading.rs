//! The Grading runs pages: the newest jobs, and one job whose progress the script refreshes
//! while it runs (it reloads the page's progress section; without the script the page shows
//! the state when it was loaded). Cancel is an admin's, as in the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use uuid::Uuid;

use super::optimization_on;
use crate::api::AppState;
use crate::api::extract::PathParams;
use crate::config::Role;
use crate::store::{GradingJob, JobKind, JobListFilter};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, short_id, when};
use crate::web::session::Viewer;

/// Jobs listed.
const LISTED: u32 = 100;

/// `GET /grading-runs`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    // Evaluations have their own page; this one lists grading runs only.
    let only_grading = JobListFilter {
        kind: Some(JobKind::Grading),
        ..JobListFilter::default()
    };
    let jobs = state.store.list_grading_jobs(&only_grading, LISTED).await?;
    let running = jobs.iter().any(|j| !j.status.is_final());
    let body = html! {
        h1 { "Grading runs" }
        p.muted { "Start one with " code { "flywheel grading-runs start" } " or " code { "POST /api/grading-runs" } "." }
        section #jobs data-poll=[running.then_some("1")] {
            @if jobs.is_empty() {
                p.muted { "No grading run yet." }
            } @else {
                table {
                    thead { tr { th { "Job" } th { "Prompt" } th { "Graders" } th { "Status" } th { "Progress" } th { "Passed" } th { "Failed" } th { "Errors" } th { "Created" } } }
                    tbody {
                        @for job in &jobs {
                            tr {
                                td { a href={ "/grading-runs/" (job.id) } { (short_id(&job.id)) } }
                                td { (job.prompt_id) @if let Some(v) = job.version { " v" (v) } }
                                td { (job.graders.join(", ")) }
                                td { span class={ "status " (job.status.as_str()) } { (job.status.as_str()) } }
                                td { progress value=(job.processed) max=(job.total.max(1)) {} " " (job.processed) "/" (job.total) }
                                td { (job.passed) } td { (job.failed) } td { (job.errored) }
                                td { (when(&job.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Grading runs", &viewer, Section::Grading, body).into_string(),
    ))
}

/// `GET /grading-runs/{id}`.
pub async fn one(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let job = state.store.get_grading_job(id).await?;
    let body = html! {
        h1 { "Grading run " (short_id(&job.id)) }
        p.muted { (job.prompt_id) @if let Some(v) = job.version { " v" (v) } " · graders " (job.graders.join(", "))
            " · created " (when(&job.created_at)) @if let Some(by) = &job.created_by { " by " (by) } }
        (progress_section(&job))
        @if viewer.can(Role::Admin) && !job.status.is_final() {
            form method="post" action={ "/grading-runs/" (job.id) "/cancel" } {
                button.danger type="submit" { "Cancel" }
            }
        }
    };
    Ok(Html(
        layout::page("Grading run", &viewer, Section::Grading, body).into_string(),
    ))
}

/// The part of the page the script refreshes while the job is not final (`data-poll`).
fn progress_section(job: &GradingJob) -> Markup {
    let share = if job.total > 0 {
        job.processed as f64 / job.total as f64
    } else {
        1.0
    };
    html! {
        section #progress data-poll=[(!job.status.is_final()).then_some("1")] aria-live="polite" {
            p { "Status: " strong class={ "status " (job.status.as_str()) } { (job.status.as_str()) } }
            p { progress value=(job.processed) max=(job.total.max(1)) {} " "
                (job.processed) " of " (job.total) " rows (" (format!("{:.0}%", share * 100.0)) ")" }
            dl.facts {
                dt { "Passed" } dd { (job.passed) }
                dt { "Failed" } dd { (job.failed) }
                dt { "Errored" } dd { (job.errored) }
                dt { "Tokens" } dd { (job.tokens_used) @if let Some(b) = job.token_budget { " of " (b) } }
                @if let Some(f) = &job.finished_at { dt { "Finished" } dd { (when(f)) } }
            }
            @if !job.errors.is_empty() {
                table { thead { tr { th { "Error" } th { "Verdicts" } } }
                    tbody { @for (kind, count) in &job.errors { tr { td { (kind) } td { (count) } } } } }
            }
            @if let Some(error) = &job.error { p.error { (error) } }
        }
    }
}

/// `POST /grading-runs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, WebError> {
    optimization_on(&state)?;
    viewer.require(Role::Admin)?;
    state.store.cancel_grading_job(id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/grading-runs/{id}"))],
    )
        .into_response())
}
