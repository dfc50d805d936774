//! The Failure modes page: the axial-coding table of a prompt (every version, or one), as a
//! bar chart and a table; a bar or a row opens the runs of that mode. The counts are the
//! store's, as `GET /api/prompts/{id}/failure-modes/counts` answers them.

use axum::extract::State;
use axum::response::Html;
use maud::html;
use serde::Deserialize;

use super::optimization_on;
use crate::api::AppState;
use crate::api::extract::{PathParams, QueryParams};
use crate::web::error::WebError;
use crate::web::layout::{self, Section, percent};
use crate::web::session::Viewer;

/// `?version=` of the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsQuery {
    /// Only this version's runs.
    #[serde(default)]
    pub version: Option<i64>,
}

/// `GET /prompts/{id}/failure-modes`.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<CountsQuery>,
) -> Result<Html<String>, WebError> {
    optimization_on(&state)?;
    let versions = state.registry.versions(&id).await?;
    let counts = state.store.failure_mode_counts(&id, query.version).await?;
    let max = counts
        .codes
        .iter()
        .map(|c| c.count)
        .chain([counts.uncoded])
        .max()
        .unwrap_or(0)
        .max(1);
    const ROW: usize = 26;
    const BAR_MAX: f64 = 400.0;
    const LABEL: usize = 210;
    let height = (counts.codes.len() + 1) * ROW + 4;
    let runs_of = |code: &str| match query.version {
        Some(v) => format!("/runs?promptId={id}&version={v}&failureMode={code}"),
        None => format!("/runs?promptId={id}&failureMode={code}"),
    };
    let body = html! {
        h1 { "Failure modes of " (id) }
        form.inline method="get" action={ "/prompts/" (id) "/failure-modes" } {
            label { "Version " select name="version" {
                option value="" selected[query.version.is_none()] { "every version" }
                @for v in &versions { option value=(v.version) selected[query.version == Some(v.version)] { "v" (v.version) } }
            } }
            button type="submit" { "Show" }
        }
        p { (counts.failed_runs) " failed runs" @if let Some(v) = counts.version { " of v" (v) } "." }
        svg.bars role="img" width="100%" height=(height) viewBox={ "0 0 " (LABEL as f64 + BAR_MAX + 60.0) " " (height) } preserveAspectRatio="xMinYMin meet" {
            title { "Failed runs per failure mode" }
            @for (i, c) in counts.codes.iter().enumerate() {
                @let w = (c.count as f64 / max as f64 * BAR_MAX).max(if c.count > 0 { 2.0 } else { 0.0 });
                a href=(runs_of(&c.code)) {
                    text x="0" y=(i * ROW + 17) { (c.code) }
                    rect.bar x=(LABEL) y=(i * ROW + 4) width=(format!("{w:.1}")) height=(ROW - 8) {}
                    text x=(format!("{:.1}", LABEL as f64 + w + 6.0)) y=(i * ROW + 17) { (c.count) }
                }
            }
            @let i = counts.codes.len();
            @let w = (counts.uncoded as f64 / max as f64 * BAR_MAX).max(if counts.uncoded > 0 { 2.0 } else { 0.0 });
            text.muted x="0" y=(i * ROW + 17) { "(no code yet)" }
            rect.bar.uncoded x=(LABEL) y=(i * ROW + 4) width=(format!("{w:.1}")) height=(ROW - 8) {}
            text x=(format!("{:.1}", LABEL as f64 + w + 6.0)) y=(i * ROW + 17) { (counts.uncoded) }
        }
        table {
            thead { tr { th { "Code" } th { "Description" } th { "Failed runs" } th { "Share" } } }
            tbody {
                @for c in &counts.codes {
                    tr {
                        td { a href=(runs_of(&c.code)) { (c.code) } }
                        td { (c.description) }
                        td { (c.count) }
                        td { (percent(c.share)) }
                    }
                }
                tr.muted { td { "(no code yet)" } td {} td { (counts.uncoded) } td { (percent(counts.uncoded_share)) } }
            }
        }
    };
    Ok(Html(
        layout::page(
            &format!("Failure modes of {id}"),
            &viewer,
            Section::Prompts,
            body,
        )
        .into_string(),
    ))
}
