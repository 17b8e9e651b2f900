//! Prometheus metrics, exported as text on `GET /metrics`.

use prometheus::{Encoder, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

pub struct Metrics {
    registry: Registry,
    /// HTTP requests by route kind, method and status.
    pub requests: IntCounterVec,
    /// Publish attempts by result (`ok`, `conflict`, `rejected`, `error`).
    pub publishes: IntCounterVec,
    /// Publishes answered 409 (lost race or stale upload).
    pub conflicts: IntCounter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tagtrust_http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let publishes = IntCounterVec::new(
            Opts::new("tagtrust_publishes_total", "Publish requests by result"),
            &["result"],
        )
        .expect("valid metric");
        let conflicts = IntCounter::new(
            "tagtrust_publish_conflicts_total",
            "Publishes refused with 409 because the uploaded version was not newer",
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("register");
        registry
            .register(Box::new(publishes.clone()))
            .expect("register");
        registry
            .register(Box::new(conflicts.clone()))
            .expect("register");
        Metrics {
            registry,
            requests,
            publishes,
            conflicts,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics to a Vec cannot fail");
        String::from_utf8(out).expect("metrics text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A low-cardinality label for a request path (never the GUN itself).
pub fn route_label(path: &str) -> &'static str {
    if path == "/healthz" {
        "healthz"
    } else if path == "/metrics" {
        "metrics"
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        if rest.ends_with("/_trust/tuf/") {
            "repository"
        } else if rest.ends_with(".key") {
            "key"
        } else if rest.ends_with(".json") {
            "metadata"
        } else {
            "other"
        }
    } else {
        "other"
    }
}
