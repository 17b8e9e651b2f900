//! Start-up: open storage, load the master key, build and run the HTTP
//! server and the re-sign scheduler.

use crate::configuration::Settings;
use crate::metrics::route_label;
use crate::routes;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};

async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = route_label(req.path());
    let method = req.method().as_str().to_string();
    let metrics = req.app_data::<web::Data<AppState>>().cloned();
    let res = next.call(req).await?;
    if let Some(state) = metrics {
        state
            .metrics
            .requests
            .with_label_values(&[route, &method, res.status().as_str()])
            .inc();
    }
    Ok(res)
}

/// Request spans as tracing-actix-web makes them, at debug level, with
/// quieter outcomes: a 4xx is normal traffic here (every client's root walk
/// ends on a 404, refused uploads are answered, not failures of ours) and
/// is logged at debug; a 5xx is logged at error with its cause, method and
/// path. At the default `info` filter no span is made: building one (its
/// dozen fields formatted for the log layer) was a tenth of a cached read's
/// CPU (BENCHMARKS.md); `RUST_LOG=debug` brings them back.
struct RequestSpans;

impl RootSpanBuilder for RequestSpans {
    fn on_request_start(request: &ServiceRequest) -> Span {
        tracing_actix_web::root_span!(level = tracing::Level::DEBUG, request)
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let (status, error) = match outcome {
            Ok(response) => match response.response().error() {
                Some(e) => (e.as_response_error().status_code(), Some(e.to_string())),
                None => (response.status(), None),
            },
            Err(e) => (e.as_response_error().status_code(), Some(e.to_string())),
        };
        span.record("http.status_code", status.as_u16());
        if !status.is_client_error() && !status.is_server_error() {
            return;
        }
        let error = error.unwrap_or_default();
        let (method, path) = match outcome {
            Ok(response) => (
                response.request().method().as_str(),
                response.request().path(),
            ),
            Err(_) => ("", ""),
        };
        if status.is_server_error() {
            tracing::error!(parent: &span, status = status.as_u16(), method, path = ?path, %error, "request failed");
        } else {
            tracing::debug!(parent: &span, status = status.as_u16(), method, path = ?path, %error, "request refused");
        }
    }
}

/// Build the server on an already bound listener, around state shared
/// with other tasks (the scheduler).
fn build(state: web::Data<AppState>, listener: TcpListener) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(count_requests))
            .wrap(TracingLogger::<RequestSpans>::new())
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
            .route("/v2/{tail:.*}", web::get().to(routes::get))
            .route("/v2/{tail:.*}", web::post().to(routes::post))
            .route("/v2/{tail:.*}", web::delete().to(routes::delete))
            .default_service(web::to(routes::not_found))
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
    let server = build(state.clone(), listener)?;
    let scheduler =
        actix_web::rt::spawn(async move { crate::online::scheduler::run(state.online()).await });
    let result = server.await;
    scheduler.abort();
    result?;
    Ok(())
}
