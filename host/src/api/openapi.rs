//! `GET /openapi.json`: the OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    ab_tests, aggregates, annotations, datasets, error, evals, export, graders, grading_runs,
    health, metrics, migrate, optimizations, prompts, runs,
};

/// The API description; every route of [`super::ROUTES`] appears here (a test checks it).
#[derive(OpenApi)]
#[openapi(
    info(title = "Flywheel", description = "Versioned prompts for LLM agents: resolve, deploy, roll back."),
    paths(
        prompts::list,
        prompts::create_prompt,
        prompts::versions,
        prompts::version,
        prompts::create_version,
        prompts::import,
        prompts::deploy,
        prompts::rollback,
        prompts::history,
        prompts::failure_modes,
        prompts::resolve,
        ab_tests::start,
        ab_tests::stop,
        ab_tests::results,
        ab_tests::list,
        ab_tests::get,
        annotations::put_annotation,
        annotations::delete_annotation,
        annotations::history,
        annotations::add_failure_mode,
        annotations::queue,
        annotations::counts,
        graders::list,
        graders::put_definition,
        graders::list_definitions,
        graders::get_definition,
        graders::delete_definition,
        graders::enable_definition,
        graders::disable_definition,
        grading_runs::start,
        grading_runs::list,
        grading_runs::get,
        grading_runs::cancel,
        evals::start,
        evals::list,
        evals::get,
        evals::cancel,
        optimizations::start,
        optimizations::get,
        optimizations::cancel,
        optimizations::list,
        runs::record,
        runs::report_outcomes,
        runs::list,
        runs::get,
        datasets::create,
        datasets::list,
        datasets::get,
        datasets::rows,
        datasets::delete,
        export::export,
        aggregates::recompute,
        export::openai_eval,
        migrate::openai_eval,
        health::healthz,
        health::readyz,
        metrics::metrics,
        openapi,
    ),
    components(schemas(error::ErrorBody, error::ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "prompts", description = "Prompt registry"),
        (name = "graders", description = "Sandboxed WebAssembly graders"),
        (name = "annotations", description = "Annotations of runs, the failure-mode taxonomy, the annotation queue and counts"),
        (name = "grading", description = "Grading jobs over recorded runs"),
        (name = "evaluations", description = "Offline evaluations of prompt versions on a dataset, graded and compared"),
        (name = "optimizations", description = "Prompt optimization from annotated failures: reflective evolution, validated before a version is created"),
        (name = "runs", description = "Recorded agent runs and the outcomes of their tasks"),
        (name = "datasets", description = "Versioned datasets of a prompt: snapshots of runs, OpenAI eval JSONL uploads"),
        (name = "export", description = "Export of a prompt's runs or datasets as OpenAI eval JSONL (with its eval definition), CSV or a promptfoo config"),
        (name = "migrate", description = "Migration in from OpenAI evals: graders, a dataset, runs with grader results, all or nothing"),
        (name = "ab-tests", description = "A/B tests of prompt versions"),
        (name = "operations", description = "Health, metrics, API description, repair of the running aggregates"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object, content_type = "application/json"))
)]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
