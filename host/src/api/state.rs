//! What the handlers can reach: [`AppState`], built once by [`crate::server`] and cloned into
//! every request. Handlers take the whole state or, through axum's [`FromRef`], only the part they
//! need (`State<Arc<dyn Store>>`, `State<Arc<PromptRegistry>>`, …), so a handler's signature says
//! what it touches. The state lives here, not in `server.rs`, so the API never imports the module
//! that builds the router.

use std::sync::Arc;

use axum::extract::FromRef;

use super::auth::Authenticator;
use super::metrics::Metrics;
use crate::config::Settings;
use crate::graders::Registry as GraderRegistry;
use crate::llm::LlmClient;
use crate::prompts::PromptRegistry;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// The prompt registry (versions, deploys, resolve and its cache) on the same store.
    pub registry: Arc<PromptRegistry>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Token checks.
    pub auth: Arc<Authenticator>,
    /// The grader components: built-ins plus the watched graders directory.
    pub graders: Arc<GraderRegistry>,
    /// The one model client of the process (`None` when no endpoint is configured), shared by
    /// the grader runtime's `llm` import and every later caller of a model.
    pub llm: Option<LlmClient>,
}

impl FromRef<AppState> for Arc<dyn Store> {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<PromptRegistry> {
    fn from_ref(state: &AppState) -> Self {
        state.registry.clone()
    }
}

impl FromRef<AppState> for Arc<Settings> {
    fn from_ref(state: &AppState) -> Self {
        state.settings.clone()
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

impl FromRef<AppState> for Arc<GraderRegistry> {
    fn from_ref(state: &AppState) -> Self {
        state.graders.clone()
    }
}
