//! The HTTP surface (axum): the route table, auth, errors, OpenAPI and metrics. Handlers are thin:
//! they parse, call a concept ([`crate::prompts`]) and map the result; no SQL and no rules here.
//!
//! [`ROUTES`] is the one list of routes with the role each needs; [`router`] builds the axum
//! router from it and tests walk it to prove every non-public route refuses callers without the
//! role.

pub mod ab_tests;
pub mod aggregates;
pub mod annotations;
pub mod auth;
pub mod datasets;
pub mod error;
pub mod evals;
pub mod export;
pub mod extract;
pub mod graders;
pub mod grading_runs;
pub mod health;
pub mod metrics;
pub mod migrate;
pub mod openapi;
pub mod optimizations;
pub mod prompts;
pub mod runs;
pub mod state;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Role;
pub use error::ApiError;
pub use state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (health, metrics, the API description).
    Public,
    /// A token with at least this role.
    Needs(Role),
}

/// One route: method, path pattern (axum syntax), who may call it, and its handler.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern such as `/api/prompts/{id}/versions`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Builds the handler for the route's method.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// Part of prompt optimization: answered with `feature_disabled` (after the role check)
    /// when `ENABLE_PROMPT_OPTIMIZATION` is off. Set with [`optimization`].
    pub optimization: bool,
}

const fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
        handler,
        optimization: false,
    }
}

/// Marks a route as part of prompt optimization (recording runs, annotating, grading what is
/// stored), which `ENABLE_PROMPT_OPTIMIZATION=false` switches off; resolve and prompt management
/// stay on.
const fn optimization(mut spec: RouteSpec) -> RouteSpec {
    // Assigned rather than `..spec`: a struct update would drop the rest of `spec`, which a
    // const fn cannot do (`Method` has a destructor).
    spec.optimization = true;
    spec
}

const READ: Access = Access::Needs(Role::Read);
const AGENT: Access = Access::Needs(Role::Agent);
const ANNOTATOR: Access = Access::Needs(Role::Annotator);
const ADMIN: Access = Access::Needs(Role::Admin);
const PUBLIC: Access = Access::Public;

/// Every route of the service, in one place: the router is built from it and the tests walk it.
#[rustfmt::skip]
pub const ROUTES: &[RouteSpec] = &[
    route(Method::GET, "/api/prompts", READ, |m| on(m, prompts::list)),
    route(Method::POST, "/api/prompts", ADMIN, |m| on(m, prompts::create_prompt)),
    route(Method::GET, "/api/prompts/{id}/versions", READ, |m| on(m, prompts::versions)),
    route(Method::GET, "/api/prompts/{id}/versions/{version}", READ, |m| on(m, prompts::version)),
    route(Method::POST, "/api/prompts/{id}/versions", ADMIN, |m| on(m, prompts::create_version)),
    route(Method::POST, "/api/prompts/{id}/import", ADMIN, |m| on(m, prompts::import)),
    route(Method::POST, "/api/prompts/{id}/deploy/{version}", ADMIN, |m| on(m, prompts::deploy)),
    route(Method::POST, "/api/prompts/{id}/rollback", ADMIN, |m| on(m, prompts::rollback)),
    route(Method::GET, "/api/prompts/{id}/history", READ, |m| on(m, prompts::history)),
    route(Method::GET, "/api/prompts/{id}/failure-modes", READ, |m| on(m, prompts::failure_modes)),
    route(Method::GET, "/api/prompts/{id}/resolve", AGENT, |m| on(m, prompts::resolve)),
    optimization(route(Method::POST, "/api/prompts/{id}/ab-test", ADMIN, |m| on(m, ab_tests::start))),
    optimization(route(Method::POST, "/api/prompts/{id}/ab-test/stop", ADMIN, |m| on(m, ab_tests::stop))),
    optimization(route(Method::GET, "/api/prompts/{id}/ab-test/results", READ, |m| on(m, ab_tests::results))),
    optimization(route(Method::GET, "/api/prompts/{id}/ab-tests", READ, |m| on(m, ab_tests::list))),
    optimization(route(Method::GET, "/api/ab-tests/{id}", READ, |m| on(m, ab_tests::get))),
    optimization(route(Method::POST, "/api/prompts/{id}/failure-modes", ADMIN, |m| on(m, annotations::add_failure_mode))),
    optimization(route(Method::GET, "/api/prompts/{id}/failure-modes/counts", READ, |m| on(m, annotations::counts))),
    optimization(route(Method::GET, "/api/prompts/{id}/annotation-queue", READ, |m| on(m, annotations::queue))),
    optimization(route(Method::PUT, "/api/runs/{id}/annotation", ANNOTATOR, |m| on(m, annotations::put_annotation))),
    optimization(route(Method::DELETE, "/api/runs/{id}/annotation", ANNOTATOR, |m| on(m, annotations::delete_annotation))),
    optimization(route(Method::GET, "/api/runs/{id}/annotations", READ, |m| on(m, annotations::history))),
    route(Method::GET, "/api/graders", READ, |m| on(m, graders::list)),
    route(Method::POST, "/api/graders/definitions", ADMIN, |m| on(m, graders::put_definition)),
    route(Method::GET, "/api/graders/definitions", READ, |m| on(m, graders::list_definitions)),
    route(Method::GET, "/api/graders/definitions/{promptId}/{name}", READ, |m| on(m, graders::get_definition)),
    route(Method::DELETE, "/api/graders/definitions/{promptId}/{name}", ADMIN, |m| on(m, graders::delete_definition)),
    route(Method::POST, "/api/graders/definitions/{promptId}/{name}/enable", ADMIN, |m| on(m, graders::enable_definition)),
    route(Method::POST, "/api/graders/definitions/{promptId}/{name}/disable", ADMIN, |m| on(m, graders::disable_definition)),
    optimization(route(Method::POST, "/api/grading-runs", ADMIN, |m| on(m, grading_runs::start))),
    optimization(route(Method::GET, "/api/grading-runs", READ, |m| on(m, grading_runs::list))),
    optimization(route(Method::GET, "/api/grading-runs/{id}", READ, |m| on(m, grading_runs::get))),
    optimization(route(Method::POST, "/api/grading-runs/{id}/cancel", ADMIN, |m| on(m, grading_runs::cancel))),
    optimization(route(Method::POST, "/api/evals", ADMIN, |m| on(m, evals::start))),
    optimization(route(Method::GET, "/api/evals", READ, |m| on(m, evals::list))),
    optimization(route(Method::GET, "/api/evals/{id}", READ, |m| on(m, evals::get))),
    optimization(route(Method::POST, "/api/evals/{id}/cancel", ADMIN, |m| on(m, evals::cancel))),
    optimization(route(Method::POST, "/api/prompts/{id}/optimize", ADMIN, |m| on(m, optimizations::start))),
    optimization(route(Method::GET, "/api/optimizations", READ, |m| on(m, optimizations::list))),
    optimization(route(Method::GET, "/api/optimizations/{id}", READ, |m| on(m, optimizations::get))),
    optimization(route(Method::POST, "/api/optimizations/{id}/cancel", ADMIN, |m| on(m, optimizations::cancel))),
    optimization(route(Method::POST, "/api/runs", AGENT, |m| extract::with_body_limit(on(m, runs::record), crate::runs::MAX_RUNS_BODY_BYTES))),
    optimization(route(Method::PATCH, "/api/runs/outcomes", AGENT, |m| on(m, runs::report_outcomes))),
    optimization(route(Method::GET, "/api/runs", READ, |m| on(m, runs::list))),
    optimization(route(Method::GET, "/api/runs/{id}", READ, |m| on(m, runs::get))),
    optimization(route(Method::POST, "/api/datasets", ANNOTATOR, |m| extract::with_body_limit(on(m, datasets::create), crate::datasets::MAX_DATASET_BODY_BYTES))),
    optimization(route(Method::GET, "/api/datasets", READ, |m| on(m, datasets::list))),
    optimization(route(Method::GET, "/api/datasets/{name}", READ, |m| on(m, datasets::get))),
    optimization(route(Method::DELETE, "/api/datasets/{name}", ADMIN, |m| on(m, datasets::delete))),
    optimization(route(Method::GET, "/api/datasets/{name}/rows", READ, |m| on(m, datasets::rows))),
    optimization(route(Method::POST, "/api/prompts/{id}/export", ANNOTATOR, |m| on(m, export::export))),
    route(Method::POST, "/api/operations/recompute-aggregates", ADMIN, |m| on(m, aggregates::recompute)),
    optimization(route(Method::POST, "/api/prompts/{id}/export/openai-eval", ANNOTATOR, |m| on(m, export::openai_eval))),
    optimization(route(Method::POST, "/api/migrate/openai-eval", ADMIN, |m| extract::with_body_limit(on(m, migrate::openai_eval), crate::datasets::MAX_DATASET_BODY_BYTES))),
    route(Method::GET, "/healthz", PUBLIC, |m| on(m, health::healthz)),
    route(Method::GET, "/readyz", PUBLIC, |m| on(m, health::readyz)),
    route(Method::GET, "/metrics", PUBLIC, |m| on(m, metrics::metrics)),
    route(Method::GET, "/openapi.json", PUBLIC, |m| on(m, openapi::openapi)),
];

/// Routes the server-side request time limit does not apply to. The export answers with a
/// download whose preparation grows with the prompt's runs and dataset (it checks and counts them
/// before the first byte), so a limit sized for ordinary requests would cut large exports off;
/// its own size is bounded by the data. Health and metrics keep the limit: a probe that hangs
/// is worse than a 503.
pub const NO_REQUEST_TIMEOUT: &[&str] = &[
    "/api/prompts/{id}/export",
    "/api/prompts/{id}/export/openai-eval",
];

/// Builds the application router from [`ROUTES`], with auth on every non-public route, the
/// request time limit (`FLYWHEEL_REQUEST_TIMEOUT_SECS`, except [`NO_REQUEST_TIMEOUT`]), the body
/// size limit, metrics, request tracing and panic containment.
pub fn router(state: AppState) -> Result<Router, String> {
    let mut router = Router::new();
    for spec in ROUTES {
        let filter = MethodFilter::try_from(spec.method.clone())
            .map_err(|e| format!("route {} {}: {e}", spec.method, spec.path))?;
        let handler = if spec.optimization && !state.settings.enable_prompt_optimization {
            on(filter, feature_disabled)
        } else {
            (spec.handler)(filter)
        };
        let handler = match spec.access {
            Access::Public => handler,
            Access::Needs(role) => handler.route_layer(middleware::from_fn_with_state(
                auth::RoleGate {
                    auth: state.auth.clone(),
                    needed: role,
                },
                auth::require_role,
            )),
        };
        let handler = if NO_REQUEST_TIMEOUT.contains(&spec.path) {
            handler
        } else {
            handler.layer(middleware::from_fn_with_state(
                state.settings.request_timeout,
                limit_time,
            ))
        };
        router = router.route(spec.path, handler);
    }
    // The web pages beside the API, under the same layers (tracing, metrics, limits).
    let router = router.merge(crate::web::routes());
    Ok(router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state))
}

/// Answers 503 `request_timeout` when the handler has not produced its response within `limit`.
/// The handler's future is dropped, which rolls back a transaction it held and gives its
/// database connection back; the time limits the work before the response starts, not the
/// sending of a body.
async fn limit_time(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "request ran past its time limit"
            );
            ApiError::RequestTimeout(limit).into_response()
        }
    }
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
}

async fn feature_disabled() -> ApiError {
    ApiError::FeatureDisabled("prompt optimization")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A handler panic is a bug: answer 500 in the usual format and keep serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    ApiError::Internal(format!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[test]
    fn every_route_has_an_openapi_entry_and_every_entry_a_route() {
        let doc = openapi::ApiDoc::openapi();
        for spec in ROUTES {
            let item = doc
                .paths
                .paths
                .get(spec.path)
                .unwrap_or_else(|| panic!("{} missing from OpenAPI", spec.path));
            let documented = match spec.method {
                Method::GET => item.get.is_some(),
                Method::POST => item.post.is_some(),
                Method::DELETE => item.delete.is_some(),
                Method::PUT => item.put.is_some(),
                Method::PATCH => item.patch.is_some(),
                _ => false,
            };
            assert!(documented, "{} {} not in OpenAPI", spec.method, spec.path);
        }
        let listed: usize = doc
            .paths
            .paths
            .values()
            .map(|item| {
                usize::from(item.get.is_some())
                    + usize::from(item.post.is_some())
                    + usize::from(item.delete.is_some())
                    + usize::from(item.put.is_some())
                    + usize::from(item.patch.is_some())
            })
            .sum();
        assert_eq!(
            listed,
            ROUTES.len(),
            "OpenAPI documents a route that ROUTES lacks"
        );
    }

    /// Client generators (openapi-typescript, the TypeScript client's) refuse a document with
    /// two operations of one `operationId`, which utoipa takes from the handler's name (`list`,
    /// `get`) unless `operation_id` says otherwise.
    #[test]
    fn every_operation_has_its_own_operation_id() {
        let doc = openapi::ApiDoc::openapi();
        let mut seen = std::collections::BTreeMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let id = operation
                    .operation_id
                    .clone()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                if let Some(other) = seen.insert(id.clone(), format!("{method} {path}")) {
                    panic!(
                        "operationId {id:?} of {method} {path} is also {other}'s: \
                         give one an operation_id in its #[utoipa::path]"
                    );
                }
            }
        }
    }
}
