//! The Evaluations pages: the newest evaluations (of every prompt, or of one), the form that
//! starts one (an admin's), and one evaluation with its progress and results — per version and
//! grader, and per pair of versions with the rows whose verdict flipped — which the script
//! refreshes while it runs, as on the grading-run page.
//!
//! Starting goes through [`queue_evaluation`] and reading through [`load`], as
//! `POST /api/evals` and `GET /api/evals/{id}` do; cancel is the queue's, as in the API.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::optimization_on;
use crate::api::evals::model_configured;
use crate::api::extract::{PathParams, QueryParams};
use crate::api::{ApiError, AppState};
use crate::config::Role;
use crate::evals::request::{EvalRequest, MAX_REPEAT, queue_evaluation};
use crate::evals::results::{Bounds, EvalResults, PairFigures};
use crate::evals::view::{EvaluationView, load};
use crate::store::{EvaluationJob, JobListFilter, Split};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, percent, short_id, when};
use crate::web::session::Viewer;

/// Evaluations listed.
const LISTED: u32 = 100;

/// `?prompt=` of the list: only that prompt's evaluations, and the start form for it.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// A prompt id; empty means every prompt.
    #[serde(default)]
    pub prompt: Option<String>,
}

/// `GET /evaluations`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let prompt = query
        .prompt
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let prompts = state.registry.list().await?;
    let filter = JobListFilter {
        prompt_id: prompt.map(str::to_owned),
        ..JobListFilter::default()
    };
    let evaluations = state.store.list_evaluations(&filter, LISTED).await?;
    let running = evaluations.iter().any(|e| !e.job.status.is_final());
    let start = match prompt {
        Some(prompt) if viewer.can(Role::Admin) => Some(start_form(&state, prompt).await?),
        _ => None,
    };
    let body = html! {
        h1 { "Evaluations" @if let Some(p) = prompt { " of " (p) } }
        form.filters method="get" action="/evaluations" {
            label { "Prompt " select name="prompt" {
                option value="" { "any" }
                @for p in &prompts {
                    option value=(p.prompt.id) selected[prompt == Some(p.prompt.id.as_str())] { (p.prompt.id) }
                }
            } }
            button type="submit" { "Show" }
        }
        @if let Some(form) = start { (form) }
        section #evaluations data-poll=[running.then_some("1")] {
            @if evaluations.is_empty() {
                p.muted { "No evaluation yet." }
            } @else {
                table.evaluations {
                    thead { tr { th { "Evaluation" } th { "Prompt" } th { "Versions" } th { "Dataset" } th { "Status" } th { "Progress" } th { "Created" } } }
                    tbody {
                        @for e in &evaluations { (list_row(e)) }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Evaluations", &viewer, Section::Evaluations, body).into_string(),
    ))
}

fn list_row(e: &EvaluationJob) -> Markup {
    let (job, spec) = (&e.job, &e.spec);
    html! {
        tr {
            td { a href={ "/evaluations/" (job.id) } { (short_id(&job.id)) } }
            td { (job.prompt_id) }
            td { (versions_text(&spec.versions)) }
            td { (spec.dataset) " v" (spec.dataset_version)
                @if let Some(split) = spec.split { " · " (split.as_str()) }
                @if spec.repeat > 1 { " · ×" (spec.repeat) } }
            td { span class={ "status " (job.status.as_str()) } { (job.status.as_str()) } }
            td { progress value=(job.processed) max=(job.total.max(1)) {} " " (job.processed) "/" (job.total) }
            td { (when(&job.created_at)) }
        }
    }
}

fn versions_text(versions: &[i64]) -> String {
    versions
        .iter()
        .map(|v| format!("v{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The form that starts an evaluation of `prompt`: its versions (the two newest ticked), its
/// datasets (the latest version of each), the split and the repeat.
async fn start_form(state: &AppState, prompt: &str) -> Result<Markup, ApiError> {
    let versions = state.registry.versions(prompt).await?;
    let datasets = state.store.list_datasets(Some(prompt)).await?;
    let ticked: Vec<i64> = versions.iter().rev().take(2).map(|v| v.version).collect();
    Ok(html! {
        h2 { "Start an evaluation" }
        @if datasets.is_empty() {
            p.muted { "Prompt " (prompt) " has no dataset yet: create one with " code { "flywheel datasets create" } "." }
        } @else {
            form.inline.start method="post" action="/evaluations" {
                input type="hidden" name="prompt" value=(prompt);
                fieldset {
                    legend { "Versions" }
                    // Oldest first: the comparison reads "older → newer".
                    @for v in &versions {
                        label { input type="checkbox" name="version" value=(v.version) checked[ticked.contains(&v.version)]; " v" (v.version) }
                    }
                }
                label { "Dataset " select name="dataset" {
                    @for d in &datasets { option value=(d.name) { (d.name) " (v" (d.latest_version) ")" } }
                } }
                label { "Split " select name="split" {
                    option value="" { "every row" }
                    option value="train" { "train" }
                    option value="validation" { "validation" }
                } }
                label { "Repeat " input type="number" name="repeat" min="1" max=(MAX_REPEAT) value="1"; }
                button.primary type="submit" { "Start" }
            }
        }
    })
}

/// The start form as posted. Read as name–value pairs because `version` repeats (one per ticked
/// box), which a struct of the form encoding cannot hold.
fn parse_start(fields: &[(String, String)]) -> Result<EvalRequest, ApiError> {
    let invalid = |message: String| ApiError::InvalidBody(message);
    let mut request = EvalRequest::default();
    for (name, value) in fields {
        let value = value.trim();
        match name.as_str() {
            "prompt" => request.prompt_id = value.to_owned(),
            "dataset" => request.dataset = value.to_owned(),
            "version" => request.versions.push(
                value
                    .parse()
                    .map_err(|_| invalid(format!("version {value:?} is not a number")))?,
            ),
            "split" if value.is_empty() => request.split = None,
            "split" => {
                request.split = Some(Split::parse(value).ok_or_else(|| {
                    invalid(format!("split {value:?} is not train or validation"))
                })?)
            }
            "repeat" if value.is_empty() => request.repeat = None,
            "repeat" => {
                request.repeat = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("repeat {value:?} is not a number")))?,
                )
            }
            other => return Err(invalid(format!("unknown field {other:?}"))),
        }
    }
    Ok(request)
}

/// `POST /evaluations`: queues the evaluation (the API's checks) and opens its page.
pub async fn start(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    optimization_on(&state)?;
    viewer.require(Role::Admin)?;
    let request = parse_start(&fields)?;
    let evaluation = queue_evaluation(
        state.store.as_ref(),
        &state.graders,
        model_configured(&state),
        request,
        &viewer.name,
    )
    .await?;
    tracing::info!(evaluation = %evaluation.job.id, prompt = %evaluation.job.prompt_id, total = evaluation.job.total, "evaluation queued from the web page");
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/evaluations/{}", evaluation.job.id))],
    )
        .into_response())
}

/// `GET /evaluations/{id}`.
pub async fn one(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let e = load(state.store.as_ref(), id).await?;
    let body = html! {
        h1 { "Evaluation " (short_id(&e.id)) " of " a href={ "/evaluations?prompt=" (e.prompt_id) } { (e.prompt_id) } }
        p.muted { (versions_text(&e.versions)) " on " (e.dataset) " v" (e.dataset_version)
            @if let Some(split) = e.split { " (" (split.as_str()) ")" }
            " · " (e.rows) " rows × " (e.repeat) " · model " (e.model.as_deref().unwrap_or("endpoint default"))
            " · graders " (if e.graders.is_empty() { "none".to_owned() } else { e.graders.join(", ") })
            " · created " (when(&e.created_at)) @if let Some(by) = &e.created_by { " by " (by) } }
        @if viewer.can(Role::Admin) && !e.status.is_final() {
            form method="post" action={ "/evaluations/" (e.id) "/cancel" } {
                button.danger type="submit" { "Cancel" }
            }
        }
        (progress_section(&e))
    };
    Ok(Html(
        layout::page("Evaluation", &viewer, Section::Evaluations, body).into_string(),
    ))
}

/// The part of the page the script refreshes while the evaluation is not final (`data-poll`):
/// progress, counters and the results so far.
fn progress_section(e: &EvaluationView) -> Markup {
    let share = if e.total > 0 {
        e.processed as f64 / e.total as f64
    } else {
        1.0
    };
    html! {
        section #progress data-poll=[(!e.status.is_final()).then_some("1")] aria-live="polite" {
            p { "Status: " strong class={ "status " (e.status.as_str()) } { (e.status.as_str()) }
                @if e.cancel_requested && !e.status.is_final() { " (cancel asked for)" } }
            p { progress value=(e.processed) max=(e.total.max(1)) {} " "
                (e.processed) " of " (e.total) " answers (" (format!("{:.0}%", share * 100.0)) ")" }
            dl.facts {
                dt { "Model calls" } dd { (e.model_calls) @if let Some(b) = e.call_budget { " of " (b) } }
                dt { "Cached answers" } dd { (e.cached_answers) }
                dt { "Tokens" } dd { (e.tokens_used) @if let Some(b) = e.token_budget { " of " (b) } }
                @if let Some(at) = &e.started_at { dt { "Started" } dd { (when(at)) } }
                @if let Some(at) = &e.finished_at { dt { "Finished" } dd { (when(at)) } }
            }
            @if let Some(error) = &e.error { p.error { (error) } }
            (results(&e.results))
        }
    }
}

/// `0.42 [0.30, 0.55]`, or a dash.
fn with_interval(value: Option<f64>, interval: Option<Bounds>, show: fn(f64) -> String) -> String {
    match (value, interval) {
        (Some(v), Some(b)) => format!("{} [{}, {}]", show(v), show(b.lower), show(b.upper)),
        (Some(v), None) => show(v),
        _ => "–".to_owned(),
    }
}

fn score(v: f64) -> String {
    format!("{v:.2}")
}

fn share(v: f64) -> String {
    percent(Some(v))
}

fn signed(v: f64) -> String {
    format!("{v:+.2}")
}

fn errors_text(errors: &std::collections::BTreeMap<String, i64>) -> String {
    if errors.is_empty() {
        "–".to_owned()
    } else {
        errors
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn results(r: &EvalResults) -> Markup {
    html! {
        h2 { "Versions" }
        table.eval-versions {
            thead { tr { th { "Version" } th { "Answers" } th { "Row errors" } th { "Tokens" } th { "Latency mean" } th { "p50" } th { "p95" } th { "max" } } }
            tbody {
                @for v in &r.versions {
                    tr {
                        td { "v" (v.version) }
                        td { (v.outputs) }
                        td { (v.errored) @if !v.errors.is_empty() { " (" (errors_text(&v.errors)) ")" } }
                        td { (v.tokens) }
                        @match &v.latency_ms {
                            Some(l) => { td { (format!("{:.0} ms", l.mean)) } td { (l.p50) " ms" } td { (l.p95) " ms" } td { (l.max) " ms" } },
                            None => { td { "–" } td { "–" } td { "–" } td { "–" } },
                        }
                    }
                }
            }
        }
        h2 { "Graders" }
        @if r.versions.iter().all(|v| v.graders.is_empty()) {
            p.muted { "No grader." }
        } @else {
            p.muted { "Intervals are 95%: t for the mean score, Wilson for the pass rate." }
            table.eval-graders {
                thead { tr { th { "Version" } th { "Grader" } th { "Scored" } th { "Mean score" } th { "Passed" } th { "Pass rate" } th { "Grader errors" } } }
                tbody {
                    @for v in &r.versions {
                        @for g in &v.graders {
                            tr {
                                td { "v" (v.version) }
                                td { (g.grader) }
                                td { (g.scored) }
                                td { (with_interval(g.mean, g.mean_interval, score)) }
                                td { (g.passed) " of " (g.decided) }
                                td { (with_interval(g.pass_rate, g.pass_rate_interval, share)) }
                                td { (errors_text(&g.errors)) }
                            }
                        }
                    }
                }
            }
        }
        @if !r.pairs.is_empty() {
            h2 { "Comparison" }
            p.muted { "Paired on the same row and repeat: the mean of score(b) − score(a) with its 95% t interval, and the rows whose verdict flipped." }
            table.eval-pairs {
                thead { tr { th { "a → b" } th { "Grader" } th { "Pairs" } th { "Mean difference" } th { "Fail → pass" } th { "Pass → fail" } } }
                tbody {
                    @for p in &r.pairs {
                        tr {
                            td { "v" (p.a) " → v" (p.b) }
                            td { (p.grader) }
                            td { (p.pairs) }
                            td { (with_interval(p.mean_difference, p.interval, signed)) }
                            td { (p.fail_to_pass) }
                            td { (p.pass_to_fail) }
                        }
                    }
                }
            }
            @for p in r.pairs.iter().filter(|p| !p.flipped.is_empty()) { (flipped(p)) }
        }
    }
}

fn flipped(p: &PairFigures) -> Markup {
    let total = p.fail_to_pass + p.pass_to_fail;
    html! {
        details.flipped {
            summary { "Flipped rows, v" (p.a) " → v" (p.b) ", " (p.grader) ": " (total)
                @if (p.flipped.len() as i64) < total { " (the first " (p.flipped.len()) " listed)" } }
            table {
                thead { tr { th { "Dataset row" } th { "Repeat" } th { "In v" (p.b) } } }
                tbody {
                    @for f in &p.flipped {
                        tr class=(if f.passed_in_b { "pass" } else { "fail" }) {
                            td { code { (f.row) } }
                            td { (f.repeat) }
                            td { (if f.passed_in_b { "now passes" } else { "now fails" }) }
                        }
                    }
                }
            }
        }
    }
}

/// `POST /evaluations/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, WebError> {
    optimization_on(&state)?;
    viewer.require(Role::Admin)?;
    // Only an evaluation: a grading run's id is not found here (as in the API).
    state.store.get_evaluation(id).await?;
    state.store.cancel_grading_job(id).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, format!("/evaluations/{id}"))],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_start_form_reads_repeated_versions_and_empty_fields() {
        let request = parse_start(&fields(&[
            ("prompt", "qa"),
            ("version", "2"),
            ("version", "1"),
            ("dataset", "golden"),
            ("split", "validation"),
            ("repeat", "3"),
        ]))
        .expect("valid");
        assert_eq!(request.prompt_id, "qa");
        assert_eq!(request.versions, [2, 1]);
        assert_eq!(request.split, Some(Split::Validation));
        assert_eq!(request.repeat, Some(3));
        let request = parse_start(&fields(&[("split", ""), ("repeat", "")])).expect("valid");
        assert_eq!((request.split, request.repeat), (None, None));
    }

    #[test]
    fn bad_start_fields_are_refused_with_their_name() {
        for (bad, expected) in [
            (("version", "two"), "version"),
            (("split", "test"), "split"),
            (("repeat", "x"), "repeat"),
            (("tokenBudget", "1"), "unknown field"),
        ] {
            match parse_start(&fields(&[bad])) {
                Err(ApiError::InvalidBody(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{bad:?} was accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn intervals_are_shown_beside_their_value() {
        let b = Some(Bounds {
            lower: 0.25,
            upper: 0.75,
        });
        assert_eq!(with_interval(Some(0.5), b, share), "50% [25%, 75%]");
        assert_eq!(with_interval(Some(0.5), None, score), "0.50");
        assert_eq!(with_interval(None, None, signed), "–");
        assert_eq!(with_interval(Some(0.5), b, signed), "+0.50 [+0.25, +0.75]");
    }
}
