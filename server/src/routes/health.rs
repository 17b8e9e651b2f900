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

/// Prometheus metrics. They name no repository, but with reads restricted
/// (`--require-pull`) they still need a `metrics:*` (or `admin:*`) token:
/// counts of repositories and their expiries are the operator's business.
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.settings.require_pull {
        if let Err(e) = state.auth.require_metrics(&req).await {
            use actix_web::ResponseError;
            return e.error_response();
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(
            state
                .metrics
                .render(&state.storage, state.settings.expiry_warning_secs)
                .await,
        )
}
