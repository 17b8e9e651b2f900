//! Prometheus metrics, exported as text on `GET /metrics`.
//!
//! Every series has a bounded set of labels: route kinds, results, kinds of
//! role. Nothing is labelled by repository, so a million GUNs make no more
//! series than one; per-repository expiry detail is `GET
//! /v2/_trust/expiring` (admin) or the client's `status`.

use crate::storage::{ExpirySummary, Storage};
use prometheus::{
    Encoder, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::time::{Duration, Instant};

/// The upper bounds (seconds of life left) of the expiry distribution.
const TIME_LEFT_BOUNDS: [i64; 7] = [
    3_600,
    6 * 3_600,
    86_400,
    7 * 86_400,
    30 * 86_400,
    90 * 86_400,
    365 * 86_400,
];

/// How long one reading of the expiry aggregates serves scrapes: it is a
/// query over every repository's current roles, so scrapes more frequent
/// than this (or from many scrapers) cost the database nothing more.
const EXPIRY_READ_EVERY: Duration = Duration::from_secs(60);

pub(crate) struct Metrics {
    registry: Registry,
    /// HTTP requests by route kind, method and status.
    pub(crate) requests: IntCounterVec,
    /// Publish attempts by result (`ok`, `conflict`, `rejected`, `error`).
    pub(crate) publishes: IntCounterVec,
    /// Publishes answered 409 (lost race or stale upload).
    pub(crate) conflicts: IntCounter,
    expiry: ExpiryGauges,
    /// When the expiry gauges were last read from the database.
    expiry_read: tokio::sync::Mutex<Option<Instant>>,
    /// New versions signed by the re-sign path, by role.
    pub(crate) resigns: IntCounterVec,
    /// Re-signs a reader's request had to trigger (the scheduler was late).
    pub(crate) resigns_on_read: IntCounter,
    /// Re-sign attempts that failed.
    pub(crate) resign_errors: IntCounter,
    /// Unix time of the last completed scheduler pass.
    pub(crate) resign_last_pass: IntGauge,
    /// Imported Notary repositories awaiting their timestamp key rotation.
    awaiting_rotation: IntGauge,
}

/// Expiry health as aggregates by kind of role (`root`, `targets`,
/// `snapshot`, `timestamp`, `delegated`).
struct ExpiryGauges {
    roles: IntGaugeVec,
    expired: IntGaugeVec,
    expiring: IntGaugeVec,
    soonest: GaugeVec,
    /// Cumulative: roles with at most `le` seconds left (a gauge histogram).
    time_left: IntGaugeVec,
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

impl ExpiryGauges {
    fn new() -> ExpiryGauges {
        ExpiryGauges {
            roles: gauge_vec(
                "tagtrust_metadata_roles",
                "Current roles of all repositories, by kind of role",
                &["role"],
            ),
            expired: gauge_vec(
                "tagtrust_metadata_expired_roles",
                "Current roles whose metadata has expired, by kind of role",
                &["role"],
            ),
            expiring: gauge_vec(
                "tagtrust_metadata_expiring_roles",
                "Current roles expiring within the warning window (--expiry-warning-secs), expired ones included",
                &["role"],
            ),
            soonest: GaugeVec::new(
                Opts::new(
                    "tagtrust_metadata_soonest_expiry_seconds",
                    "Seconds until the soonest expiry among current roles (negative once expired), by kind of role",
                ),
                &["role"],
            )
            .expect("valid metric"),
            time_left: gauge_vec(
                "tagtrust_metadata_time_left_roles",
                "Current roles with at most `le` seconds of life left, by kind of role (cumulative)",
                &["role", "le"],
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.roles.clone()),
            Box::new(self.expired.clone()),
            Box::new(self.expiring.clone()),
            Box::new(self.soonest.clone()),
            Box::new(self.time_left.clone()),
        ]
    }

    /// Replace every value with what `summaries` (read at `now` with
    /// [`expiry_bounds`]) says.
    fn set(&self, summaries: &[ExpirySummary], now: i64) {
        for gauge in [&self.roles, &self.expired, &self.expiring, &self.time_left] {
            gauge.reset();
        }
        self.soonest.reset();
        for s in summaries {
            let role = [s.kind.as_str()];
            self.roles.with_label_values(&role).set(s.total as i64);
            self.expired.with_label_values(&role).set(s.expired as i64);
            // The first bound is the warning window; the rest the distribution.
            self.expiring
                .with_label_values(&role)
                .set(s.before.first().copied().unwrap_or(0) as i64);
            if let Some(soonest) = s.soonest {
                self.soonest
                    .with_label_values(&role)
                    .set((soonest - now) as f64);
            }
            for (bound, count) in TIME_LEFT_BOUNDS.iter().zip(s.before.iter().skip(1)) {
                self.time_left
                    .with_label_values(&[s.kind.as_str(), &bound.to_string()])
                    .set(*count as i64);
            }
            self.time_left
                .with_label_values(&[s.kind.as_str(), "+Inf"])
                .set(s.total as i64);
        }
    }
}

/// The bounds [`Storage::expiry_summary`] counts below at `now`: the end of
/// the warning window, then [`TIME_LEFT_BOUNDS`]. "At most `le` seconds
/// left" is "expires before now + le + 1" in whole seconds.
fn expiry_bounds(now: i64, warning_secs: u64) -> Vec<i64> {
    let warning = i64::try_from(warning_secs).unwrap_or(i64::MAX);
    std::iter::once(warning)
        .chain(TIME_LEFT_BOUNDS)
        .map(|left| now.saturating_add(left).saturating_add(1))
        .collect()
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
        let expiry = ExpiryGauges::new();
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
        let awaiting_rotation = IntGauge::new(
            "tagtrust_notary_awaiting_rotation",
            "Notary repositories imported from a notary-server whose timestamp key is still the old server's \
             (until `notary key rotate GUN timestamp -r` here; `tagtrust-server notary-pending` lists them)",
        )
        .expect("valid metric");
        let mut collectors = expiry.collectors();
        collectors.extend([
            Box::new(awaiting_rotation.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(resigns.clone()),
            Box::new(resigns_on_read.clone()),
            Box::new(resign_errors.clone()),
            Box::new(resign_last_pass.clone()),
            Box::new(requests.clone()),
            Box::new(publishes.clone()),
            Box::new(conflicts.clone()),
        ]);
        for metric in collectors {
            registry.register(metric).expect("register");
        }
        Metrics {
            registry,
            requests,
            publishes,
            conflicts,
            expiry,
            expiry_read: tokio::sync::Mutex::new(None),
            resigns,
            resigns_on_read,
            resign_errors,
            resign_last_pass,
            awaiting_rotation,
        }
    }

    /// Read the expiry aggregates from `storage` unless they were read in
    /// the last [`EXPIRY_READ_EVERY`]. Concurrent scrapes wait for one
    /// reading. A failure leaves the previous values (and is logged).
    async fn refresh_expiries(&self, storage: &Storage, warning_secs: u64) {
        let mut last = self.expiry_read.lock().await;
        if last.is_some_and(|t| t.elapsed() < EXPIRY_READ_EVERY) {
            return;
        }
        let now = chrono::Utc::now().timestamp();
        match storage
            .expiry_summary(now, &expiry_bounds(now, warning_secs))
            .await
        {
            Ok(summaries) => {
                self.expiry.set(&summaries, now);
                *last = Some(Instant::now());
            }
            Err(e) => tracing::warn!(error = %e, "cannot read expiries for the metrics"),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) async fn render(&self, storage: &Storage, warning_secs: u64) -> String {
        self.refresh_expiries(storage, warning_secs).await;
        // Read on every scrape (a partial index of only those repositories),
        // so the gauge drops as soon as a rotation is published.
        match storage.count_awaiting_rotation().await {
            Ok(n) => self
                .awaiting_rotation
                .set(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => tracing::warn!(error = %e, "cannot count repositories awaiting rotation"),
        }
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

/// A low-cardinality label for a request method: the ones this server
/// answers, else `other` (a client's made-up method must not make a
/// series of its own).
pub(crate) fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        _ => "other",
    }
}

/// A low-cardinality label for a request path (never the GUN itself).
pub(crate) fn route_label(path: &str) -> &'static str {
    if path == "/healthz" {
        "healthz"
    } else if path == "/metrics" {
        "metrics"
    } else if path == "/auth/token" {
        "token"
    } else if path == "/v2/" {
        "ping"
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        if rest.ends_with("/_trust/tuf/") {
            "repository"
        } else if rest == "_trust/expiring" {
            "expiring"
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

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn expiry_gauges_are_aggregates_by_kind_of_role() {
        let metrics = Metrics::new();
        let now = 1_800_000_000;
        let bounds = expiry_bounds(now, 30 * 86_400);
        assert_eq!(bounds[0], now + 30 * 86_400 + 1);
        assert_eq!(bounds[1], now + 3_600 + 1);
        let summary = ExpirySummary {
            kind: "timestamp".into(),
            total: 5,
            expired: 1,
            soonest: Some(now - 10),
            before: vec![5, 1, 2, 5, 5, 5, 5, 5],
        };
        metrics.expiry.set(&[summary], now);
        let text = String::from_utf8({
            let mut out = Vec::new();
            TextEncoder::new()
                .encode(&metrics.registry.gather(), &mut out)
                .unwrap();
            out
        })
        .unwrap();
        let role = "{role=\"timestamp\"}";
        assert_eq!(
            value(&text, &format!("tagtrust_metadata_roles{role}")),
            Some(5.0)
        );
        assert_eq!(
            value(&text, &format!("tagtrust_metadata_expired_roles{role}")),
            Some(1.0)
        );
        assert_eq!(
            value(&text, &format!("tagtrust_metadata_expiring_roles{role}")),
            Some(5.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("tagtrust_metadata_soonest_expiry_seconds{role}")
            ),
            Some(-10.0)
        );
        let left = |le: &str| {
            value(
                &text,
                &format!("tagtrust_metadata_time_left_roles{{le=\"{le}\",role=\"timestamp\"}}"),
            )
        };
        assert_eq!(left("3600"), Some(1.0));
        assert_eq!(left("21600"), Some(2.0));
        assert_eq!(left("+Inf"), Some(5.0));
        // A kind that is gone disappears.
        metrics.expiry.set(&[], now);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&metrics.registry.gather(), &mut out)
            .unwrap();
        assert!(!String::from_utf8(out)
            .unwrap()
            .contains("role=\"timestamp\""));
    }

    #[test]
    fn a_made_up_method_is_one_label() {
        use actix_web::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        for made_up in ["BREW", "PROPFIND", "X-1"] {
            let method = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other");
        }
    }
}
