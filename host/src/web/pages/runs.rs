//! The Runs page: recorded runs filtered by prompt, version, rating, failure mode and grader
//! pass, newest first, a page at a time (the keyset cursor of `GET /api/runs`); and one run.

use axum::extract::State;
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::optimization_on;
use crate::api::extract::{PathParams, QueryParams};
use crate::api::{ApiError, AppState};
use crate::runs::cursor;
use crate::store::{Rating, RunFilter};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, short_id, when, yes_no};
use crate::web::render;
use crate::web::session::Viewer;

/// Runs per page.
pub const PAGE_SIZE: u32 = 50;

/// The filter form. Empty fields (the form sends them) mean "any".
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunsQuery {
    /// Prompt id.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// Version number.
    #[serde(default)]
    pub version: Option<String>,
    /// `good` or `bad`.
    #[serde(default)]
    pub rating: Option<String>,
    /// A failure-mode code.
    #[serde(default)]
    pub failure_mode: Option<String>,
    /// `passed` or `failed`.
    #[serde(default)]
    pub graders: Option<String>,
    /// The page's cursor.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl RunsQuery {
    fn filter(&self) -> Result<RunFilter, ApiError> {
        let version = given(&self.version)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::InvalidQuery(format!("version {v:?} is not a number")))
            })
            .transpose()?;
        let rating = given(&self.rating)
            .map(|r| {
                Rating::parse(r)
                    .ok_or_else(|| ApiError::InvalidQuery(format!("rating {r:?}: good or bad")))
            })
            .transpose()?;
        let graders_passed = match given(&self.graders) {
            None => None,
            Some("passed") => Some(true),
            Some("failed") => Some(false),
            Some(other) => {
                return Err(ApiError::InvalidQuery(format!(
                    "graders {other:?}: passed or failed"
                )));
            }
        };
        let before = given(&self.cursor)
            .map(|c| {
                cursor::decode(c).ok_or_else(|| {
                    ApiError::InvalidCursor("pass the cursor of the page before".to_owned())
                })
            })
            .transpose()?;
        Ok(RunFilter {
            prompt_id: given(&self.prompt_id).map(str::to_owned),
            version,
            rating,
            failure_mode: given(&self.failure_mode).map(str::to_owned),
            graders_passed,
            before,
            ..RunFilter::default()
        })
    }

    /// This query's URL with another cursor.
    fn with_cursor(&self, next: &str) -> String {
        let pairs: Vec<(&str, &str)> = [
            ("promptId", given(&self.prompt_id)),
            ("version", given(&self.version)),
            ("rating", given(&self.rating)),
            ("failureMode", given(&self.failure_mode)),
            ("graders", given(&self.graders)),
            ("cursor", Some(next)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        format!(
            "/runs?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

/// `GET /runs`.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    QueryParams(query): QueryParams<RunsQuery>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let filter = query.filter()?;
    let prompts = state.registry.list().await?;
    // One more than shown says whether a next page exists.
    let mut runs = state.store.list_runs(&filter, PAGE_SIZE + 1).await?;
    let more = runs.len() > PAGE_SIZE as usize;
    runs.truncate(PAGE_SIZE as usize);
    let next = more
        .then(|| runs.last().map(|r| cursor::encode(r.id)))
        .flatten();
    let selected = |field: &Option<String>, value: &str| given(field) == Some(value);
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/runs" {
            label { "Prompt " select name="promptId" {
                option value="" { "any" }
                @for p in &prompts { option value=(p.prompt.id) selected[selected(&query.prompt_id, &p.prompt.id)] { (p.prompt.id) } }
            } }
            label { "Version " input type="number" name="version" min="1" value=(given(&query.version).unwrap_or_default()); }
            label { "Rating " select name="rating" {
                option value="" { "any" }
                option value="good" selected[selected(&query.rating, "good")] { "good" }
                option value="bad" selected[selected(&query.rating, "bad")] { "bad" }
            } }
            label { "Failure mode " input type="text" name="failureMode" value=(given(&query.failure_mode).unwrap_or_default()); }
            label { "Graders " select name="graders" {
                option value="" { "any" }
                option value="passed" selected[selected(&query.graders, "passed")] { "passed" }
                option value="failed" selected[selected(&query.graders, "failed")] { "failed" }
            } }
            button type="submit" { "Filter" }
        }
        @if runs.is_empty() {
            p.muted { "No run matches." }
        } @else {
            table.runs {
                thead { tr { th { "Run" } th { "Prompt" } th { "Version" } th { "Task" } th { "Recorded" } th { "Tests" } th { "Graders" } th { "Rating" } th { "Failure mode" } } }
                tbody {
                    @for run in &runs {
                        @let a = run.annotation.as_ref();
                        tr {
                            td { a href={ "/runs/" (run.id) } { (short_id(&run.id)) } }
                            td { (run.prompt_id) }
                            td { "v" (run.version) }
                            td { (run.task_id) }
                            td { (when(&run.created_at)) }
                            td { (yes_no(run.outcome.as_ref().and_then(|o| o.tests_passed))) }
                            td { (yes_no(graders_passed(run.grader_results.as_ref()))) }
                            td { (a.and_then(|a| a.rating).map(|r| r.as_str()).unwrap_or("–")) }
                            td { (a.and_then(|a| a.failure_mode.as_deref()).unwrap_or("–")) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &next {
            p { a.button href=(query.with_cursor(next)) { "Older runs →" } }
        }
    };
    Ok(Html(
        layout::page("Runs", &viewer, Section::Runs, body).into_string(),
    ))
}

/// Whether every verdict of a run's grader results passed (none failed or errored); unknown
/// when not graded.
fn graders_passed(results: Option<&serde_json::Value>) -> Option<bool> {
    let results = results?.as_object()?;
    if results.is_empty() {
        return None;
    }
    Some(
        results
            .values()
            .all(|v| v.get("passed").and_then(serde_json::Value::as_bool) == Some(true)),
    )
}

/// `GET /runs/{id}`: one run with everything known about it.
pub async fn one(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let run = state.store.get_run(id).await?;
    let a = run.annotation.as_ref();
    let body = html! {
        h1 { "Run " (short_id(&run.id)) }
        p.muted { (run.prompt_id) " v" (run.version) " · task " (run.task_id) " · attempt " (run.attempt) " · " (when(&run.created_at)) }
        div.grid {
            section {
                h2 { "Output" }
                @match &run.output { Some(out) => { (render::output(out)) }, None => { p.muted { "No output." } } }
            }
            section {
                h2 { "Input variables" }
                (render::variables(&run.input))
                h2 { "Outcome" }
                dl.facts {
                    dt { "Tests passed" } dd { (yes_no(run.outcome.as_ref().and_then(|o| o.tests_passed))) }
                    dt { "PR merged" } dd { (yes_no(run.outcome.as_ref().and_then(|o| o.pr_merged))) }
                    dt { "Success" } dd { (yes_no(run.success)) }
                }
                h2 { "Graders" }
                (render::grader_results(run.grader_results.as_ref()))
                h2 { "Annotation" }
                @if let Some(a) = a {
                    dl.facts {
                        dt { "Rating" } dd { (a.rating.map(|r| r.as_str()).unwrap_or("–")) }
                        dt { "Failure mode" } dd { (a.failure_mode.as_deref().unwrap_or("–")) }
                        dt { "Feedback" } dd { (a.output_feedback.as_deref().unwrap_or("–")) }
                        dt { "By" } dd { (a.annotated_by.as_deref().unwrap_or("–")) }
                    }
                } @else {
                    p.muted { "Not annotated." }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Run", &viewer, Section::Runs, body).into_string(),
    ))
}
