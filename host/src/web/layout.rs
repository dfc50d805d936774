//! The frame every page shares: head (stylesheet, script, viewport), the navigation, who is
//! signed in and the sign-out button; and the small formatting helpers pages share (dates,
//! rates, yes/no/unknown).

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::assets::{SCRIPT, STYLESHEET};
use super::session::Viewer;

/// A section of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Prompts, their versions, annotation and failure modes.
    Prompts,
    /// Recorded runs.
    Runs,
    /// Grading runs.
    Grading,
    /// Offline evaluations.
    Evaluations,
    /// Runs of the prompt optimizer.
    Optimizations,
    /// A/B tests.
    AbTests,
}

/// The navigation, in order.
const NAV: &[(Section, &str, &str)] = &[
    (Section::Prompts, "/prompts", "Prompts"),
    (Section::Runs, "/runs", "Runs"),
    (Section::Grading, "/grading-runs", "Grading runs"),
    (Section::Evaluations, "/evaluations", "Evaluations"),
    (Section::Optimizations, "/optimizations", "Optimizations"),
    (Section::AbTests, "/ab-tests", "A/B tests"),
];

/// A full page: the frame around `body`.
pub fn page(title: &str, viewer: &Viewer, section: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/prompts" { "Flywheel" }
                    nav aria-label="Sections" {
                        @for (item, href, label) in NAV {
                            @if *item == section {
                                a href=(href) aria-current="page" { (label) }
                            } @else {
                                a href=(href) { (label) }
                            }
                        }
                    }
                    div.who {
                        span { (viewer.name) " · " (viewer.role.as_str()) }
                        @if viewer.signed_in {
                            form method="post" action="/sign-out" {
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main.narrow { (body) } }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Flywheel" }
            // No favicon file: an empty one stops the browser asking for /favicon.ico.
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(STYLESHEET.path);
            script src=(SCRIPT.path) defer {}
        }
    }
}

/// A timestamp as people read it (UTC, to the minute).
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// A share (0 to 1) as a percentage, or a dash when unknown.
pub fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "–".to_owned(), |r| format!("{:.0}%", r * 100.0))
}

/// A version's success rate, which the store keeps in percent (0 to 100), or a dash.
pub fn success(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{r:.0}%"))
}

/// Yes, no or unknown.
pub fn yes_no(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "–",
    }
}

/// The last 8 hex digits of an id, which people can tell apart on a page (a UUIDv7 starts
/// with its timestamp, so runs recorded together share their first digits).
pub fn short_id(id: &uuid::Uuid) -> String {
    id.simple().to_string()[24..].to_owned()
}
