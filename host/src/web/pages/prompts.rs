//! The Prompts page: each agent's prompt, its active version, tasks run, the success rate of
//! every version as a small bar chart, and the grading runs still going.

use axum::extract::State;
use axum::response::Html;
use maud::{Markup, html};

use crate::api::AppState;
use crate::store::PromptVersion;
use crate::web::error::WebError;
use crate::web::layout::{self, Section, success};
use crate::web::session::Viewer;

/// Grading runs looked at for the "running" list: the newest ones; older jobs are finished or
/// listed on the grading-runs page.
const RECENT_JOBS: u32 = 50;

/// `GET /prompts`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    let prompts = state.registry.list().await?;
    let running = if state.settings.enable_prompt_optimization {
        state
            .store
            .list_grading_jobs(&crate::store::JobListFilter::default(), RECENT_JOBS)
            .await?
            .into_iter()
            .filter(|job| !job.status.is_final())
            .collect()
    } else {
        Vec::new()
    };
    let body = html! {
        h1 { "Prompts" }
        div.cards {
            @for p in &prompts {
                @let tasks: i64 = p.versions.iter().map(|v| v.tasks_executed).sum();
                @let active = p.versions.iter().find(|v| v.is_active);
                section.card {
                    h2 { a href={ "/prompts/" (p.prompt.id) } { (p.prompt.id) } }
                    p.muted { (p.prompt.description) }
                    dl.facts {
                        dt { "Active version" }
                        dd { (p.active_version.map_or_else(|| "none".to_owned(), |v| format!("v{v}"))) }
                        dt { "Tasks run" } dd { (tasks) }
                        dt { "Success (active)" } dd { (success(active.and_then(|v| v.success_rate))) }
                    }
                    (success_chart(&p.versions))
                    nav.actions aria-label={ "Pages of " (p.prompt.id) } {
                        a href={ "/prompts/" (p.prompt.id) } { "Versions" }
                        a href={ "/prompts/" (p.prompt.id) "/annotate" } { "Annotate" }
                        a href={ "/prompts/" (p.prompt.id) "/failure-modes" } { "Failure modes" }
                        a href={ "/runs?promptId=" (p.prompt.id) } { "Runs" }
                    }
                }
            }
        }
        h2 { "Running grading jobs" }
        @if running.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                thead { tr { th { "Job" } th { "Prompt" } th { "Status" } th { "Progress" } } }
                tbody {
                    @for job in &running {
                        tr {
                            td { a href={ "/grading-runs/" (job.id) } { (layout::short_id(&job.id)) } }
                            td { (job.prompt_id) }
                            td { (job.status.as_str()) }
                            td { progress value=(job.processed) max=(job.total.max(1)) {} " " (job.processed) " / " (job.total) }
                        }
                    }
                }
            }
        }
    };
    Ok(Html(
        layout::page("Prompts", &viewer, Section::Prompts, body).into_string(),
    ))
}

/// Success rate per version as an SVG bar chart (no inline style: the bars are sized by SVG
/// attributes, which the Content-Security-Policy allows).
pub fn success_chart(versions: &[PromptVersion]) -> Markup {
    const BAR: usize = 18;
    const HEIGHT: f64 = 40.0;
    let width = versions.len().max(1) * BAR;
    html! {
        svg.chart role="img" width=(width) height="56" viewBox={ "0 0 " (width) " 56" } {
            title { "Success rate per version" }
            @for (i, v) in versions.iter().enumerate() {
                @let rate = (v.success_rate.unwrap_or(0.0) / 100.0).clamp(0.0, 1.0);
                @let h = (rate * HEIGHT).max(1.0);
                rect class=(if v.is_active { "bar active" } else { "bar" })
                    x=(i * BAR + 2) y=(format!("{:.1}", HEIGHT - h)) width=(BAR - 4) height=(format!("{h:.1}")) {
                    title { "v" (v.version) ": " (success(v.success_rate)) " of " (v.tasks_executed) " tasks" }
                }
                text x=(i * BAR + BAR / 2) y="54" text-anchor="middle" { (v.version) }
            }
        }
    }
}
