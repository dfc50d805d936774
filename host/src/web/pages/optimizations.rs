//! The Optimizations pages: the newest runs of the optimizer, and one run — its progress (the
//! script refreshes it while it runs) and, once it ended, its report: the decision and why, the
//! validation per grader before and after with intervals, failure modes before and after, the
//! winner's lineage and text, the candidates and what every model cost. Start one with
//! `flywheel optimize` or the API; cancel is an admin's, as in the API.

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
use crate::evals::results::Bounds;
use crate::optimizer::report::Report;
use crate::optimizer::view::{OptimizationView, view};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, short_id, when};
use crate::web::session::Viewer;

/// Runs listed.
const LISTED: u32 = 100;

fn number(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

fn interval(bounds: Option<Bounds>) -> String {
    bounds.map_or_else(
        || "—".to_owned(),
        |b| format!("[{:.3}, {:.3}]", b.lower, b.upper),
    )
}

/// `GET /optimizations`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let runs: Vec<OptimizationView> = state
        .store
        .list_optimizations(None, LISTED)
        .await?
        .into_iter()
        .filter_map(view)
        .collect();
    let running = runs.iter().any(|o| !o.status.is_final());
    let body = html! {
        h1 { "Optimizations" }
        p.muted { "Start one with " code { "flywheel optimize <prompt>" } " or " code { "POST /api/prompts/{id}/optimize" } "." }
        section #optimizations data-poll=[running.then_some("1")] {
            @if runs.is_empty() {
                p.muted { "No optimization yet." }
            } @else {
                table {
                    thead { tr { th { "Run" } th { "Prompt" } th { "Dataset" } th { "Status" } th { "Rounds" } th { "Task calls" } th { "Best train score" } th { "Outcome" } th { "Created" } } }
                    tbody {
                        @for o in &runs {
                            tr {
                                td { a href={ "/optimizations/" (o.id) } { (short_id(&o.id)) } }
                                td { (o.prompt_id) " v" (o.start_version) }
                                td { (o.spec.dataset) " v" (o.spec.dataset_version) }
                                td { span class={ "status " (o.status.as_str()) } { (o.status.as_str()) } }
                                td { (o.progress.rounds) }
                                td { (o.progress.spent.task_calls) " of " (o.spec.budget) }
                                td { (number(o.progress.best_train_score)) }
                                td {
                                    @if let Some(v) = o.created_version {
                                        a href={ "/prompts/" (o.prompt_id) } { "version " (v) }
                                    } @else if o.report.is_some() { "no version" } @else { "—" }
                                }
                                td { (when(&o.created_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Optimizations", &viewer, Section::Optimizations, body).into_string(),
    ))
}

/// `GET /optimizations/{id}`.
pub async fn one(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let stored = state.store.get_optimization(id).await?;
    let o = view(stored).ok_or_else(|| {
        WebError::from(crate::api::ApiError::Internal(format!(
            "optimization {id} is unreadable"
        )))
    })?;
    let body = html! {
        h1 { "Optimization " (short_id(&o.id)) }
        p.muted { "prompt " a href={ "/prompts/" (o.prompt_id) } { (o.prompt_id) } " from version " (o.start_version)
            " · dataset " (o.spec.dataset) " v" (o.spec.dataset_version) " (" (o.spec.train_rows) " train, "
            (o.spec.validation_rows) " validation rows, " (o.spec.annotated_rows) " annotated)"
            " · graders " (o.graders.join(", "))
            " · created " (when(&o.created_at)) @if let Some(by) = &o.created_by { " by " (by) } }
        (progress_section(&o))
        @if viewer.can(Role::Admin) && !o.status.is_final() {
            form method="post" action={ "/optimizations/" (o.id) "/cancel" } {
                button.danger type="submit" { "Cancel" }
            }
        }
        @if let Some(report) = &o.report { (report_section(&o, report)) }
    };
    Ok(Html(
        layout::page("Optimization", &viewer, Section::Optimizations, body).into_string(),
    ))
}

/// The part of the page the script refreshes while the run is not final (`data-poll`).
fn progress_section(o: &OptimizationView) -> Markup {
    let p = &o.progress;
    html! {
        section #progress data-poll=[(!o.status.is_final()).then_some("1")] aria-live="polite" {
            p { "Status: " strong class={ "status " (o.status.as_str()) } { (o.status.as_str()) } }
            p { progress value=(p.spent.task_calls) max=(o.spec.budget.max(1)) {} " "
                (p.spent.task_calls) " of " (o.spec.budget) " task-model calls" }
            dl.facts {
                dt { "Rounds" } dd { (p.rounds) " (" (p.stale_rounds) " without improvement, patience " (o.spec.patience) ")" }
                dt { "Candidates" } dd { (p.candidates) " (" (p.accepted) " on the front, " (p.discarded) " discarded)" }
                dt { "Train score" } dd { (number(p.start_train_score)) " at the start, best " (number(p.best_train_score)) " (target " (o.spec.target) ")" }
                dt { "Reflection calls" } dd { (p.spent.reflection_calls) " of " (o.spec.reflection_budget) " · " (p.spent.reflection_tokens) " tokens" }
                dt { "Task tokens" } dd { (p.spent.task_tokens) " + " (p.spent.grader_tokens) " grader tokens · " (p.spent.cached_answers) " answers from the cache" }
                @if let Some(f) = &o.finished_at { dt { "Finished" } dd { (when(f)) } }
            }
            @if let Some(error) = &o.error { p.error { (error) } }
        }
    }
}

fn report_section(o: &OptimizationView, report: &Report) -> Markup {
    html! {
        section #report {
            h2 { "Report" }
            p { "Stopped: " strong { (report.stop_detail) } " after " (report.rounds) " rounds." }
            @if let Some(v) = o.created_version {
                p.ok { "Version " a href={ "/prompts/" (o.prompt_id) } { (v) } " created (inactive): " (report.outcome.reason) "." }
            } @else {
                p { "No version created: " (report.outcome.reason) "." }
            }
            @if let Some(v) = &report.validation {
                h3 { "Validation (" (v.rows) " rows)" }
                p { "Score " (number(Some(v.score_before))) " → " (number(Some(v.score_after)))
                    ", gain " (number(Some(v.gain))) ", 95% interval " (interval(v.gain_interval)) }
                table {
                    thead { tr { th { "Grader" } th { "Mean before" } th { "95% CI" } th { "Mean after" } th { "95% CI" } th { "Pass rate before" } th { "Pass rate after" } th { "95% CI" } th { "Fail→pass" } th { "Pass→fail" } } }
                    tbody {
                        @for g in &v.graders {
                            tr {
                                td { (g.before.grader) }
                                td { (number(g.before.mean)) } td { (interval(g.before.mean_interval)) }
                                td { (number(g.after.mean)) } td { (interval(g.after.mean_interval)) }
                                td { (number(g.before.pass_rate)) } td { (number(g.after.pass_rate)) }
                                td { (interval(g.after.pass_rate_interval)) }
                                td { (g.difference.fail_to_pass) } td { (g.difference.pass_to_fail) }
                            }
                        }
                    }
                }
            }
            @if !report.failure_modes.is_empty() {
                h3 { "Failure modes (validation rows failing)" }
                table {
                    thead { tr { th { "Failure mode" } th { "Rows" } th { "Before" } th { "After" } } }
                    tbody { @for m in &report.failure_modes { tr { td { (m.code) } td { (m.rows) } td { (m.failing_before) } td { (m.failing_after) } } } }
                }
            }
            h3 { "Lineage of the winner" }
            ol {
                @for step in &report.lineage {
                    li { "#" (step.candidate) " (round " (step.round) ") train score " (number(Some(step.train_mean))) }
                }
            }
            h3 { "Winner" }
            pre { (report.winner_text) }
            h3 { "Candidates" }
            p { (report.candidates.tried) " tried, " (report.candidates.accepted) " accepted; discarded: "
                (report.candidates.discarded.wrong_variables) " with other template variables, "
                (report.candidates.discarded.invalid_template) " not a template, "
                (report.candidates.discarded.duplicate) " duplicates, "
                (report.candidates.discarded.unparseable) " unreadable" }
            h3 { "Cost" }
            table {
                thead { tr { th { "Model" } th { "Purpose" } th { "Round" } th { "Candidate" } th { "Calls" } th { "From cache" } th { "Tokens" } } }
                tbody {
                    @for c in &report.calls {
                        tr { td { (c.model) } td { (c.purpose) } td { (c.round) } td { "#" (c.candidate) } td { (c.calls) } td { (c.cached) } td { (c.tokens) } }
                    }
                }
            }
        }
    }
}

/// `POST /optimizations/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, WebError> {
    optimization_on(&state)?;
    viewer.require(Role::Admin)?;
    state.store.cancel_optimization(id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/optimizations/{id}"))],
    )
        .into_response())
}
