//! One file per page family. Each handler takes the [`Viewer`](super::session::Viewer), calls
//! the concept the API handler of the same data calls, and renders with maud.

pub mod ab_tests;
pub mod annotate;
pub mod evaluations;
pub mod failure_modes;
pub mod grading;
pub mod optimizations;
pub mod prompts;
pub mod runs;
pub mod sign_in;
pub mod versions;

use crate::api::ApiError;
use crate::api::AppState;

/// Refuses, as the API's routes do, pages of prompt optimization (runs, annotation, grading,
/// evaluations, A/B tests) when `ENABLE_PROMPT_OPTIMIZATION` is off.
pub fn optimization_on(state: &AppState) -> Result<(), ApiError> {
    if state.settings.enable_prompt_optimization {
        Ok(())
    } else {
        Err(ApiError::FeatureDisabled("prompt optimization"))
    }
}

/// A local path to go back to after a form (`/…`, never `//host…`), or `fallback`: a redirect
/// target from a form field must not send the browser to another site.
pub fn local_path(path: Option<&str>, fallback: &str) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// Whether a script asked (it wants JSON back, not a redirect).
pub fn wants_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/runs?x=1"), "/"), "/runs?x=1");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "runs",
            "/\\evil.example",
        ] {
            assert_eq!(local_path(Some(bad), "/prompts"), "/prompts", "{bad}");
        }
        assert_eq!(local_path(None, "/prompts"), "/prompts");
    }
}
