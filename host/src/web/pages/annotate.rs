//! The annotation queue of a prompt: the runs waiting for a person (failed first, then newest,
//! as [`crate::annotations::queue`] orders them for the API), one at a time with its input
//! variables, output, outcome and grader verdicts, and a form: good/bad, a failure mode of the
//! taxonomy, a new code typed inline (open coding; adding a code is an admin's, as in the API),
//! feedback. The script shows one run at a time and binds the keys; without it the runs are a
//! list of forms.
//!
//! A page holds a batch of [`BATCH`] runs; "k of n" places the run in the whole queue (`n`
//! runs waiting, read with the page). The next batch starts at the queue cursor after the last
//! run of this one. Saving goes through
//! [`crate::annotations::annotate`], the API's path, with the viewer's token name as annotator.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{local_path, optimization_on, wants_json};
use crate::annotations::{self, AnnotationRequest};
use crate::api::extract::{PathParams, QueryParams};
use crate::api::{ApiError, AppState};
use crate::config::Role;
use crate::store::{FailureMode, Rating, Run, Store};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, yes_no};
use crate::web::render;
use crate::web::session::Viewer;

/// Runs on one page of the queue: enough to work through without a reload, few enough that the
/// page answers fast (each run is read whole, with its input and verdicts).
pub const BATCH: u32 = 20;

/// `?cursor=` of the queue page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// Where the batch starts (the queue's `nextCursor`).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /prompts/{id}/annotate`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<QueueQuery>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let body = queue_body(&state.store, &state, &viewer, &id, query.cursor.as_deref()).await?;
    Ok(Html(
        layout::page(&format!("Annotate {id}"), &viewer, Section::Prompts, body).into_string(),
    ))
}

async fn queue_body(
    store: &Arc<dyn Store>,
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    cursor: Option<&str>,
) -> Result<Markup, WebError> {
    let queue = annotations::queue(store, id, Some(BATCH), cursor).await?;
    let modes = state.registry.failure_modes(id).await?;
    let mut runs = Vec::with_capacity(queue.items.len());
    for item in &queue.items {
        runs.push(store.get_run(item.id).await?);
    }
    let n = runs.len();
    let here = match cursor {
        Some(c) => format!("/prompts/{id}/annotate?cursor={c}"),
        None => format!("/prompts/{id}/annotate"),
    };
    let can_annotate = viewer.can(Role::Annotator);
    let can_add_code = viewer.can(Role::Admin);
    Ok(html! {
        h1 { "Annotate " (id) }
        @if n == 0 {
            p { "Nothing waiting: every run of " (id) " has a person's annotation." }
        } @else {
            p.progress #queue-progress aria-live="polite" {
                "Run " span #k data-offset=(queue.ahead) { (queue.ahead + 1) } " of " span #n { (queue.waiting) } " waiting"
                " (" (n) " on this page)"
            }
            details.keys open {
                summary { "Keyboard" }
                ul {
                    li { kbd { "g" } " good, " kbd { "b" } " bad" }
                    li { kbd { "1" } "–" kbd { "9" } " failure mode (" kbd { "0" } " none)" }
                    li { kbd { "n" } " next run, " kbd { "p" } " previous run" }
                    li { kbd { "f" } " write feedback, " kbd { "Esc" } " leave the field" }
                    li { kbd { "Ctrl" } "+" kbd { "Enter" } " save and go to the next run" }
                }
            }
            div #queue data-count=(n) {
                @for (k, run) in runs.iter().enumerate() {
                    (run_card(run, k + 1, n, &modes, &here, can_annotate, can_add_code))
                }
            }
        }
        @if let Some(next) = &queue.next_cursor {
            p { a.button #next-batch href={ "/prompts/" (id) "/annotate?cursor=" (next) } { "Next batch →" } }
        }
    })
}

fn run_card(
    run: &Run,
    k: usize,
    n: usize,
    modes: &[FailureMode],
    back: &str,
    can_annotate: bool,
    can_add_code: bool,
) -> Markup {
    let current = run.annotation.as_ref();
    let rating = current.and_then(|a| a.rating);
    let mode = current.and_then(|a| a.failure_mode.as_deref());
    html! {
        article.run id={ "run-" (run.id) } data-run=(run.id) data-k=(k) {
            header {
                h2 { "Run " (k) " of " (n) ": " (run.task_id) " · attempt " (run.attempt) " · v" (run.version) }
                p.muted {
                    a href={ "/runs/" (run.id) } { (layout::short_id(&run.id)) } " · " (layout::when(&run.created_at))
                    @if let Some(model) = &run.model { " · " (model) }
                }
            }
            div.grid {
                section {
                    h3 { "Output" }
                    @match &run.output { Some(out) => { (render::output(out)) }, None => { p.muted { "No output." } } }
                }
                section {
                    h3 { "Input variables" }
                    (render::variables(&run.input))
                    h3 { "Outcome" }
                    dl.facts {
                        dt { "Tests passed" } dd { (yes_no(run.outcome.as_ref().and_then(|o| o.tests_passed))) }
                        dt { "PR merged" } dd { (yes_no(run.outcome.as_ref().and_then(|o| o.pr_merged))) }
                        dt { "Success" } dd { (yes_no(run.success)) }
                    }
                    h3 { "Graders" }
                    (render::grader_results(run.grader_results.as_ref()))
                    @if let Some(a) = current {
                        p.muted { "Current annotation by " (a.annotated_by.as_deref().unwrap_or("?")) " (rule)" }
                    }
                }
            }
            @if can_annotate {
                form.annotate method="post" action={ "/runs/" (run.id) "/annotation" } {
                    input type="hidden" name="back" value=(back);
                    fieldset.rating {
                        legend { "Rating" }
                        label { input type="radio" name="rating" value="good" checked[rating == Some(Rating::Good)]; " Good " kbd { "g" } }
                        label { input type="radio" name="rating" value="bad" checked[rating == Some(Rating::Bad)]; " Bad " kbd { "b" } }
                    }
                    fieldset.modes {
                        legend { "Failure mode" }
                        label { input type="radio" name="failure_mode" value="" checked[mode.is_none()]; " none " kbd { "0" } }
                        @for (i, m) in modes.iter().enumerate() {
                            label title=(m.description) {
                                input type="radio" name="failure_mode" value=(m.code) checked[mode == Some(m.code.as_str())];
                                " " (m.code)
                                @if i < 9 { " " kbd { (i + 1) } }
                            }
                        }
                    }
                    @if can_add_code {
                        fieldset.newcode {
                            legend { "New code (open coding)" }
                            input type="text" name="new_code" placeholder="ignored_constraints" pattern="[a-z][a-z0-9_]{0,49}" aria-label="New failure-mode code";
                            input type="text" name="new_code_description" placeholder="What it means" aria-label="Description of the new code";
                        }
                    }
                    label.feedback { "Feedback "
                        textarea name="feedback" rows="3" {}
                    }
                    div.row {
                        button.primary type="submit" { "Save " kbd { "Ctrl+Enter" } }
                        span.status role="status" {}
                    }
                }
            }
        }
    }
}

/// The annotation form's fields.
#[derive(Debug, Deserialize)]
pub struct AnnotationForm {
    /// `good` or `bad`.
    #[serde(default)]
    pub rating: Option<String>,
    /// A code of the taxonomy, or empty.
    #[serde(default)]
    pub failure_mode: Option<String>,
    /// A new code to add to the taxonomy and use (admin).
    #[serde(default)]
    pub new_code: Option<String>,
    /// What the new code means.
    #[serde(default)]
    pub new_code_description: Option<String>,
    /// The critique.
    #[serde(default)]
    pub feedback: Option<String>,
    /// The page to go back to.
    #[serde(default)]
    pub back: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// `POST /runs/{id}/annotation`: saves a person's annotation; answers JSON to the script, a
/// redirect back to the queue otherwise.
pub async fn save(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    PathParams(run_id): PathParams<Uuid>,
    Form(form): Form<AnnotationForm>,
) -> Result<Response, WebError> {
    let json = wants_json(&headers);
    let as_error = |err: ApiError| {
        if json {
            WebError::Json(err)
        } else {
            WebError::Api(err)
        }
    };
    optimization_on(&state).map_err(as_error)?;
    viewer.require(Role::Annotator).map_err(as_error)?;
    let rating = form
        .rating
        .as_deref()
        .and_then(Rating::parse)
        .ok_or_else(|| as_error(ApiError::InvalidInput("choose good or bad".to_owned())))?;
    let mut failure_mode = non_empty(form.failure_mode);
    if let Some(code) = non_empty(form.new_code) {
        // Growing the taxonomy is an admin's, as `POST /api/prompts/{id}/failure-modes` is.
        viewer.require(Role::Admin).map_err(as_error)?;
        let description = non_empty(form.new_code_description).unwrap_or_else(|| code.clone());
        let run = state
            .store
            .get_run(run_id)
            .await
            .map_err(|e| as_error(e.into()))?;
        annotations::add_failure_mode(&state.store, &run.prompt_id, &code, &description)
            .await
            .map_err(|e| as_error(e.into()))?;
        failure_mode = Some(code);
    }
    let request = AnnotationRequest {
        rating,
        output_feedback: non_empty(form.feedback),
        failure_mode,
    };
    let saved = annotations::annotate(&state.store, run_id, request, &viewer.name)
        .await
        .map_err(|e| as_error(e.into()))?;
    if json {
        return Ok(Json(saved).into_response());
    }
    let back = local_path(form.back.as_deref(), "/prompts");
    Ok((StatusCode::SEE_OTHER, [(LOCATION, back)]).into_response())
}
