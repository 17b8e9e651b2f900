//! Liveness and metrics endpoints.

use crate::state::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

/// 200 when the database answers, 503 otherwise.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    match state.storage.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok" })),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "database unavailable" }))
        }
    }
}

/// Prometheus metrics. They name every GUN and delegated role (expiry
/// gauges), so with reads restricted (`--require-pull`) they need a
/// `metrics:*` (or `admin:*`) token.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.settings.require_pull {
        if let Err(e) = crate::auth::require_metrics(&state.storage, &req).await {
            use actix_web::ResponseError;
            return e.error_response();
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
