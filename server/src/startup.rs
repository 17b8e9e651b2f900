//! Start-up: open storage, load the master key, build and run the HTTP
//! server and the re-sign scheduler.

use crate::configuration::Settings;
use crate::metrics::{method_label, route_label};
use crate::routes;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use tracing::Instrument;

/// Every request, observed once: counted by route, method and status
/// (`tagtrust_http_requests_total`); a failed one (5xx) logged at error
/// with its cause, method and path, a refused one (4xx: normal traffic
/// here, every client's root walk ends on a 404) at debug. With `debug`
/// enabled each request also runs in a `request` span, so what its handler
/// logs says which request it was (paths are written escaped, `?`); at the default `info` no span is made
/// (building one, as tracing-actix-web did, with a random request ID from
/// a `getrandom` system call, was a tenth of a cached read's CPU:
/// BENCHMARKS.md).
async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = route_label(req.path());
    let method = method_label(req.method());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let outcome = if tracing::enabled!(tracing::Level::DEBUG) {
        let span = tracing::debug_span!("request", method, path = ?req.path());
        next.call(req).instrument(span).await
    } else {
        next.call(req).await
    };
    let (status, error) = match &outcome {
        Ok(response) => match response.response().error() {
            Some(e) => (e.as_response_error().status_code(), Some(e.to_string())),
            None => (response.status(), None),
        },
        Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
    };
    if let Some(state) = state {
        state
            .metrics
            .requests
            .with_label_values(&[route, method, status.as_str()])
            .inc();
    }
    if status.is_client_error() || status.is_server_error() {
        let path = outcome.as_ref().map_or("", |r| r.request().path());
        let error = error.unwrap_or_default();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), method, path = ?path, %error, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), method, path = ?path, %error, "request refused");
        }
    }
    outcome
}

/// Build the server on an already bound listener, around state shared
/// with other tasks (the scheduler).
fn build(state: web::Data<AppState>, listener: TcpListener) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(observe))
            .app_data(state.clone())
            .route("/healthz", web::get().to(routes::health::healthz))
            .route("/metrics", web::get().to(routes::health::metrics))
            // What registry and Notary clients expect (routes/registry.rs).
            .route(
                "/_notary_server/health",
                web::get().to(routes::health::healthz),
            )
            .route("/auth/token", web::get().to(routes::registry::token))
            .route("/v2/", web::get().to(routes::registry::ping))
            // Everything else under /v2/ (GUNs have slashes): split by
            // `routes::dispatch` itself, not by a `{tail:.*}` pattern,
            // whose regex was a tenth of a cached read's instructions.
            .default_service(web::to(routes::dispatch))
    })
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serve until stopped.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    settings
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let listener = TcpListener::bind(&settings.listen)
        .with_context(|| format!("listening on {}", settings.listen))?;
    tracing::info!(
        listen = %settings.listen,
        data_dir = %settings.data_dir.display(),
        database = if settings.database_url.is_some() { "postgres" } else { "sqlite" },
        "starting tagtrust-server"
    );
    let state = web::Data::new(AppState::load(settings).await?);
    state.storage.listen_for_changes();
    state.storage.checkpoint_in_background();
    let server = build(state.clone(), listener)?;
    let scheduler =
        actix_web::rt::spawn(async move { crate::online::scheduler::run(state.online()).await });
    let result = server.await;
    scheduler.abort();
    result?;
    Ok(())
}
