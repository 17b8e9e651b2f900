//! Prometheus metrics, exported as text on `GET /metrics`.

use crate::storage::{ExpiryRow, Storage, StorageError};
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// (GUN, role) -> `signed.expires` in Unix seconds.
type Expiries = BTreeMap<(String, String), i64>;

pub(crate) struct Metrics {
    registry: Registry,
    /// HTTP requests by route kind, method and status.
    pub(crate) requests: IntCounterVec,
    /// Publish attempts by result (`ok`, `conflict`, `rejected`, `error`).
    pub(crate) publishes: IntCounterVec,
    /// Publishes answered 409 (lost race or stale upload).
    pub(crate) conflicts: IntCounter,
    /// `tagtrust_metadata_expiry_seconds{gun,role}`: seconds until the
    /// current metadata expires (negative once expired), computed at scrape
    /// time from [`Metrics::expiries`].
    expiry_seconds: GaugeVec,
    /// When each repository's current roles expire, as last seen in the
    /// database (by the scheduler pass, a publish or a re-sign).
    expiries: Mutex<Expiries>,
    /// New versions signed by the re-sign path, by role.
    pub(crate) resigns: IntCounterVec,
    /// Re-signs a reader's request had to trigger (the scheduler was late).
    pub(crate) resigns_on_read: IntCounter,
    /// Re-sign attempts that failed.
    pub(crate) resign_errors: IntCounter,
    /// Unix time of the last completed scheduler pass.
    pub(crate) resign_last_pass: IntGauge,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
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
        let expiry_seconds = prometheus::GaugeVec::new(
            Opts::new(
                "tagtrust_metadata_expiry_seconds",
                "Seconds until the current metadata of a repository's role expires",
            ),
            &["gun", "role"],
        )
        .expect("valid metric");
        let resigns = IntCounterVec::new(
            Opts::new(
                "tagtrust_resigns_total",
                "New versions of server-signed roles made by re-signing before expiry",
            ),
            &["role"],
        )
        .expect("valid metric");
        let resigns_on_read = IntCounter::new(
            "tagtrust_resigns_on_read_total",
            "Re-signs triggered by a read of a timestamp about to expire (the scheduler was late)",
        )
        .expect("valid metric");
        let resign_errors = IntCounter::new(
            "tagtrust_resign_errors_total",
            "Re-sign attempts that failed",
        )
        .expect("valid metric");
        let resign_last_pass = IntGauge::new(
            "tagtrust_resign_last_pass_timestamp_seconds",
            "Unix time of the re-sign scheduler's last completed pass",
        )
        .expect("valid metric");
        for metric in [
            Box::new(expiry_seconds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(resigns.clone()),
            Box::new(resigns_on_read.clone()),
            Box::new(resign_errors.clone()),
            Box::new(resign_last_pass.clone()),
        ] {
            registry.register(metric).expect("register");
        }
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
            expiry_seconds,
            expiries: Mutex::new(BTreeMap::new()),
            resigns,
            resigns_on_read,
            resign_errors,
            resign_last_pass,
        }
    }

    fn expiries(&self) -> std::sync::MutexGuard<'_, Expiries> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.expiries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read every repository's expiries from `storage` (the scheduler's
    /// pass, which also picks its candidates from the rows returned).
    pub(crate) async fn refresh_all_expiries(
        &self,
        storage: &Storage,
    ) -> Result<Vec<ExpiryRow>, StorageError> {
        let rows = storage.current_expiries(None).await?;
        self.set_all_expiries(&rows);
        Ok(rows)
    }

    /// Read `gun`'s expiries from `storage` (after a publish or a re-sign).
    /// A failure only leaves the metric stale until the next pass.
    pub(crate) async fn refresh_repository_expiries(&self, storage: &Storage, gun: &str) {
        match storage.current_expiries(Some(gun)).await {
            Ok(rows) => self.set_repository_expiries(gun, &rows),
            Err(e) => tracing::warn!(gun, error = %e, "cannot refresh expiry metrics"),
        }
    }

    /// Replace every repository's expiries (a full scan): repositories that
    /// are gone disappear from the metric.
    fn set_all_expiries(&self, rows: &[ExpiryRow]) {
        let mut map = self.expiries();
        map.clear();
        map.extend(
            rows.iter()
                .filter_map(|r| Some(((r.gun.clone(), r.role.clone()), r.expires_at?))),
        );
    }

    /// Replace one repository's expiries.
    fn set_repository_expiries(&self, gun: &str, rows: &[ExpiryRow]) {
        let mut map = self.expiries();
        map.retain(|(g, _), _| g != gun);
        map.extend(
            rows.iter()
                .filter(|r| r.gun == gun)
                .filter_map(|r| Some(((r.gun.clone(), r.role.clone()), r.expires_at?))),
        );
    }

    /// Forget a deleted repository.
    pub(crate) fn remove_repository(&self, gun: &str) {
        self.expiries().retain(|(g, _), _| g != gun);
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        // Held until the text is encoded, so concurrent scrapes do not see
        // each other's reset.
        let map = self.expiries();
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        self.expiry_seconds.reset();
        for ((gun, role), expires) in map.iter() {
            self.expiry_seconds
                .with_label_values(&[gun.as_str(), role.as_str()])
                .set(*expires as f64 - now);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding metrics to a Vec cannot fail");
        drop(map);
        String::from_utf8(out).expect("metrics text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A low-cardinality label for a request path (never the GUN itself).
pub(crate) fn route_label(path: &str) -> &'static str {
    if path == "/healthz" {
        "healthz"
    } else if path == "/metrics" {
        "metrics"
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        if rest.ends_with("/_trust/tuf/") {
            "repository"
        } else if rest.ends_with("_trust/changefeed") {
            "changefeed"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(gun: &str, role: &str, expires_at: i64) -> ExpiryRow {
        ExpiryRow {
            gun: gun.into(),
            role: role.into(),
            version: 1,
            expires_at: Some(expires_at),
            mirrored: false,
        }
    }

    #[test]
    fn expiry_gauge_follows_repositories() {
        let metrics = Metrics::new();
        let soon = chrono::Utc::now().timestamp() + 100;
        metrics.set_all_expiries(&[row("a/x", "timestamp", soon), row("b/y", "root", soon)]);
        let text = metrics.render();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("tagtrust_metadata_expiry_seconds{gun=\"a/x\",role=\"timestamp\"}")
            })
            .expect(&text);
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 90.0 && value <= 100.0, "{line}");
        metrics.remove_repository("a/x");
        metrics.set_repository_expiries("b/y", &[row("b/y", "targets", soon)]);
        let text = metrics.render();
        assert!(!text.contains("gun=\"a/x\""), "{text}");
        assert!(!text.contains("role=\"root\""), "{text}");
        assert!(text.contains("gun=\"b/y\",role=\"targets\""), "{text}");
        metrics.set_all_expiries(&[]);
        assert!(!metrics
            .render()
            .contains("tagtrust_metadata_expiry_seconds{"));
    }
}
