//! The A/B tests pages: every test of every prompt, and one test with its results (fresh while
//! it runs), read through the prompt registry as `GET /api/ab-tests/{id}` reads them.

use axum::extract::State;
use axum::response::Html;
use maud::html;
use uuid::Uuid;

use super::optimization_on;
use crate::api::AppState;
use crate::api::extract::PathParams;
use crate::web::error::WebError;
use crate::web::layout::{self, Section, short_id, when};
use crate::web::session::Viewer;

/// `GET /ab-tests`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let prompts = state.registry.list().await?;
    let mut tests = Vec::new();
    for p in &prompts {
        tests.extend(state.registry.ab_tests(&p.prompt.id).await?);
    }
    tests.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let body = html! {
        h1 { "A/B tests" }
        @if tests.is_empty() {
            p.muted { "No A/B test yet. Start one with " code { "flywheel ab start" } "." }
        } @else {
            table {
                thead { tr { th { "Test" } th { "Prompt" } th { "A" } th { "B" } th { "Split to B" } th { "Status" } th { "Decision" } th { "Started" } } }
                tbody {
                    @for t in &tests {
                        tr {
                            td { a href={ "/ab-tests/" (t.id) } { (short_id(&t.id)) } }
                            td { (t.prompt_id) }
                            td { "v" (t.version_a) } td { "v" (t.version_b) }
                            td { (format!("{:.0}%", t.traffic_split * 100.0)) }
                            td { (t.status) }
                            td { (t.decision.as_deref().unwrap_or("–")) }
                            td { (when(&t.started_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("A/B tests", &viewer, Section::AbTests, body).into_string(),
    ))
}

/// `GET /ab-tests/{id}`.
pub async fn one(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<Uuid>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let t = state.registry.ab_test(id).await?;
    let result = t
        .result
        .as_ref()
        .and_then(|r| serde_json::to_string_pretty(r).ok());
    let body = html! {
        h1 { "A/B test of " (t.prompt_id) ": v" (t.version_a) " vs v" (t.version_b) }
        dl.facts {
            dt { "Status" } dd { (t.status) }
            dt { "Decision" } dd { (t.decision.as_deref().unwrap_or("–")) }
            dt { "Traffic to B" } dd { (format!("{:.0}%", t.traffic_split * 100.0)) }
            dt { "Minimum sample" } dd { (t.min_samples) }
            dt { "Started" } dd { (when(&t.started_at)) }
            @if let Some(end) = &t.ended_at { dt { "Ended" } dd { (when(end)) } }
        }
        h2 { "Results" }
        @match result {
            Some(text) => { pre.json { (text) } },
            None => { p.muted { "No results yet." } },
        }
    };
    Ok(Html(
        layout::page("A/B test", &viewer, Section::AbTests, body).into_string(),
    ))
}
