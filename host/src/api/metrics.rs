//! Prometheus metrics: request counts and latency by route and status, the hits and misses
//! of the resolve cache (`flywheel_resolve_cache_hits_total`, `…_misses_total`) and the A/B
//! exposures dropped because their queue was full (`flywheel_ab_exposures_dropped_total`), read
//! from the [`PromptRegistry`]'s counters at each scrape.
//!
//! Labels use the route *pattern* (`/api/prompts/{id}/resolve`), never the raw path, so the
//! number of series stays bounded whatever clients send.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::ApiError;
use crate::prompts::PromptRegistry;

/// Labels of one HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// Labels of the latency histogram (status left out to keep the series few).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
}

/// Route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flywheel");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route pattern and status",
            requests.clone(),
        );
        // 100 µs to ~6 s: resolve is sub-millisecond, a deploy on PostgreSQL a few ms.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 3.0, 11))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route pattern",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
        }
    }

    /// Exports the resolve cache's hit and miss counters of `registry` at every scrape.
    pub fn watch_resolve_cache(&mut self, registry: Arc<PromptRegistry>) {
        self.registry
            .register_collector(Box::new(ResolveCacheCollector(registry)));
    }

    /// Counts one request and its latency.
    fn record_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the registry's cache counters when scraped, so the counters have one home (the
/// registry) and the exposition is never behind.
#[derive(Debug)]
struct ResolveCacheCollector(Arc<PromptRegistry>);

impl Collector for ResolveCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.0.cache_stats();
        for (name, help, value) in [
            (
                "ab_exposures_dropped",
                "A/B exposures not recorded because their queue was full (the task's next resolve records it)",
                self.0.exposures_dropped(),
            ),
            (
                "resolve_cache_hits",
                "Resolves answered from the in-memory cache",
                stats.hits,
            ),
            (
                "resolve_cache_misses",
                "Resolves that read the active version from the database",
                stats.misses,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// Middleware: times every request and counts it under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.record_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`: the Prometheus (OpenMetrics) text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"))
)]
pub async fn metrics(State(metrics): State<Arc<Metrics>>) -> Result<Response, ApiError> {
    let body = metrics
        .encode()
        .map_err(|e| ApiError::Internal(format!("encoding metrics: {e}")))?;
    Ok((
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_recorded_requests() {
        let metrics = Metrics::new();
        metrics.record_request("GET", "/api/prompts", 200, 0.002);
        metrics.record_request("GET", "/api/prompts", 200, 0.003);
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains(
                r#"flywheel_http_requests_total{method="GET",route="/api/prompts",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("flywheel_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn exposition_carries_the_resolve_cache_counters() {
        let (_dir, url) = crate::store::testing::sqlite_temp();
        let store = crate::store::open_store(&url).await.expect("store");
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .expect("seed");
        let registry = Arc::new(PromptRegistry::new(
            store,
            std::time::Duration::from_secs(3600),
        ));
        let mut metrics = Metrics::new();
        metrics.watch_resolve_cache(registry.clone());
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("flywheel_resolve_cache_hits_total 0"),
            "{text}"
        );
        assert!(
            text.contains("flywheel_resolve_cache_misses_total 0"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE flywheel_ab_exposures_dropped counter"),
            "{text}"
        );
        assert!(
            text.contains("flywheel_ab_exposures_dropped_total 0"),
            "{text}"
        );
        for task in ["a", "b", "c"] {
            registry.resolve("planner", task).await.expect("resolve");
        }
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("flywheel_resolve_cache_hits_total 2"),
            "{text}"
        );
        assert!(
            text.contains("flywheel_resolve_cache_misses_total 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE flywheel_resolve_cache_hits counter"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    /// A full exposure queue drops exposures and the counter says how many. On this
    /// single-threaded runtime the queue's writer cannot run while the resolves below (all
    /// answered from the cache) never yield, so exactly the resolves past its capacity drop.
    #[tokio::test(flavor = "current_thread")]
    async fn exposition_counts_dropped_exposures() {
        use crate::store::{NewAbTest, NewVersion, VersionSource};
        let (_dir, url) = crate::store::testing::sqlite_temp();
        let store = crate::store::open_store(&url).await.expect("store");
        store
            .seed(&crate::prompts::seeds::default_seeds())
            .await
            .expect("seed");
        store
            .create_version(NewVersion {
                prompt_id: "planner".to_owned(),
                content: "B {{task}}".to_owned(),
                source: VersionSource::Manual,
                parent_version: None,
                notes: None,
                created_by: None,
            })
            .await
            .expect("version 2");
        store
            .create_ab_test(NewAbTest {
                prompt_id: "planner".to_owned(),
                version_a: 1,
                version_b: 2,
                traffic_split: 0.5,
                min_samples: 100,
                config: serde_json::json!({ "metric": "success" }),
                created_by: None,
            })
            .await
            .expect("test");
        let registry = Arc::new(PromptRegistry::new(
            store,
            std::time::Duration::from_secs(3600),
        ));
        let mut metrics = Metrics::new();
        metrics.watch_resolve_cache(registry.clone());
        // The first resolve reads the store (and yields); the queue is empty then.
        registry.resolve("planner", "first").await.expect("resolve");
        for i in 0..crate::prompts::EXPOSURE_QUEUE + 4 {
            registry
                .resolve("planner", &format!("t{i}"))
                .await
                .expect("resolve");
        }
        let text = metrics.encode().expect("encodes");
        assert!(
            text.contains("flywheel_ab_exposures_dropped_total 5"),
            "{}",
            text.lines()
                .filter(|l| l.contains("dropped"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
