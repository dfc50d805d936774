//! The HTTP surface (axum): the route table, auth, errors, OpenAPI and metrics. Handlers are thin:
//! they parse, call a concept ([`crate::prompts`]) and map the result; no SQL and no rules here.
//!
//! [`ROUTES`] is the one list of routes with the role each needs; [`router`] builds the axum
//! router from it and tests walk it to prove every non-public route refuses callers without the
//! role.

pub mod auth;
pub mod error;
pub mod extract;
pub mod graders;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod prompts;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Router, middleware};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::config::Role;
use crate::server::AppState;
pub use error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token (health, metrics, the API description).
    Public,
    /// A token with at least this role.
    Needs(Role),
}

/// One route: method, path pattern (axum syntax) and who may call it.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern such as `/api/prompts/{id}/versions`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: Method, path: &'static str, access: Access) -> RouteSpec {
    RouteSpec {
        method,
        path,
        access,
    }
}

/// Every route of the service, in one place.
pub const ROUTES: &[RouteSpec] = &[
    route(Method::GET, "/api/prompts", Access::Needs(Role::Read)),
    route(
        Method::GET,
        "/api/prompts/{id}/versions",
        Access::Needs(Role::Read),
    ),
    route(
        Method::GET,
        "/api/prompts/{id}/versions/{version}",
        Access::Needs(Role::Read),
    ),
    route(
        Method::POST,
        "/api/prompts/{id}/versions",
        Access::Needs(Role::Admin),
    ),
    route(
        Method::POST,
        "/api/prompts/{id}/deploy/{version}",
        Access::Needs(Role::Admin),
    ),
    route(
        Method::POST,
        "/api/prompts/{id}/rollback",
        Access::Needs(Role::Admin),
    ),
    route(
        Method::GET,
        "/api/prompts/{id}/history",
        Access::Needs(Role::Read),
    ),
    route(
        Method::GET,
        "/api/prompts/{id}/failure-modes",
        Access::Needs(Role::Read),
    ),
    route(
        Method::GET,
        "/api/prompts/{id}/resolve",
        Access::Needs(Role::Agent),
    ),
    route(Method::GET, "/api/graders", Access::Needs(Role::Read)),
    route(Method::GET, "/healthz", Access::Public),
    route(Method::GET, "/metrics", Access::Public),
    route(Method::GET, "/openapi.json", Access::Public),
];

/// The handler of a route of [`ROUTES`]. A route listed there without a handler here fails
/// [`router`] at start (and the tests), never silently.
fn handler_for(spec: &RouteSpec) -> Option<MethodRouter<AppState>> {
    let filter = MethodFilter::try_from(spec.method.clone()).ok()?;
    fn h<H: Handler<T, AppState>, T: 'static>(
        filter: MethodFilter,
        handler: H,
    ) -> MethodRouter<AppState> {
        on(filter, handler)
    }
    Some(match (spec.method.clone(), spec.path) {
        (Method::GET, "/api/prompts") => h(filter, prompts::list),
        (Method::GET, "/api/prompts/{id}/versions") => h(filter, prompts::versions),
        (Method::GET, "/api/prompts/{id}/versions/{version}") => h(filter, prompts::version),
        (Method::POST, "/api/prompts/{id}/versions") => h(filter, prompts::create_version),
        (Method::POST, "/api/prompts/{id}/deploy/{version}") => h(filter, prompts::deploy),
        (Method::POST, "/api/prompts/{id}/rollback") => h(filter, prompts::rollback),
        (Method::GET, "/api/prompts/{id}/history") => h(filter, prompts::history),
        (Method::GET, "/api/prompts/{id}/failure-modes") => h(filter, prompts::failure_modes),
        (Method::GET, "/api/prompts/{id}/resolve") => h(filter, prompts::resolve),
        (Method::GET, "/api/graders") => h(filter, graders::list),
        (Method::GET, "/healthz") => h(filter, health::healthz),
        (Method::GET, "/metrics") => h(filter, metrics::metrics),
        (Method::GET, "/openapi.json") => h(filter, openapi::openapi),
        _ => return None,
    })
}

/// Builds the application router from [`ROUTES`], with auth on every non-public route, the body
/// size limit, metrics, request tracing and panic containment.
pub fn router(state: AppState) -> Result<Router, String> {
    let mut router = Router::new();
    for spec in ROUTES {
        let handler = handler_for(spec)
            .ok_or_else(|| format!("route {} {} has no handler", spec.method, spec.path))?;
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
        router = router.route(spec.path, handler);
    }
    Ok(router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state))
}

async fn route_not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_owned())
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
    fn every_route_has_a_handler_and_an_openapi_entry() {
        let doc = openapi::ApiDoc::openapi();
        for spec in ROUTES {
            assert!(
                handler_for(spec).is_some(),
                "{} {} has no handler",
                spec.method,
                spec.path
            );
            let item = doc
                .paths
                .paths
                .get(spec.path)
                .unwrap_or_else(|| panic!("{} missing from OpenAPI", spec.path));
            let documented = match spec.method {
                Method::GET => item.get.is_some(),
                Method::POST => item.post.is_some(),
                _ => false,
            };
            assert!(documented, "{} {} not in OpenAPI", spec.method, spec.path);
        }
        let listed: usize = doc
            .paths
            .paths
            .values()
            .map(|item| usize::from(item.get.is_some()) + usize::from(item.post.is_some()))
            .sum();
        assert_eq!(
            listed,
            ROUTES.len(),
            "OpenAPI documents a route that ROUTES lacks"
        );
    }
}
