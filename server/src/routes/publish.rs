//! `POST /v2/{gun}/_trust/tuf/`: read the multipart upload within the
//! limits, then validate, store and re-sign in one transaction holding the
//! repository lock.

use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::online::{self, SnapshotUpdate};
use crate::publish::{self, Upload};
use crate::startup::AppState;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!("request body larger than {limit} bytes"))
        .with_detail(json!({ "limit": limit }))
}

/// Read the uploaded files, refusing oversized bodies, parts or files,
/// too many parts, unexpected fields and too deeply nested JSON.
async fn read_uploads(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<Vec<Upload>, ApiError> {
    let settings = &state.settings;
    let max_body = settings.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large(max_body));
    }
    // Count raw body bytes, so a body without Content-Length (or one the
    // multipart parser would buffer looking for a boundary) is cut off too.
    let seen = Arc::new(AtomicUsize::new(0));
    let overflow = Arc::new(AtomicBool::new(false));
    let counted = {
        let (seen, overflow) = (seen.clone(), overflow.clone());
        payload.map(move |chunk| {
            let chunk = chunk?;
            if seen.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len() > max_body {
                overflow.store(true, Ordering::Relaxed);
                return Err(actix_web::error::PayloadError::Overflow);
            }
            Ok(chunk)
        })
    };
    let mut multipart = Multipart::new(req.headers(), counted);
    let multipart_error = |e: actix_multipart::MultipartError| {
        if overflow.load(Ordering::Relaxed) {
            too_large(max_body)
        } else {
            ApiError::bad_request(
                "BAD_MULTIPART",
                format!("malformed multipart/form-data body: {e}"),
            )
        }
    };
    let mut uploads = Vec::new();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        if uploads.len() >= settings.max_parts {
            return Err(ApiError::bad_request(
                "TOO_MANY_PARTS",
                format!("at most {} files per publish", settings.max_parts),
            )
            .with_detail(json!({ "limit": settings.max_parts })));
        }
        if field.name() != Some("files") {
            return Err(ApiError::bad_request(
                "BAD_MULTIPART",
                format!(
                    "unexpected form field {:?}; upload each role file as field \"files\"",
                    field.name().unwrap_or("")
                ),
            ));
        }
        let filename = field
            .content_disposition()
            .and_then(|cd| cd.get_filename())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "BAD_MULTIPART",
                    "a part has no filename (it must be the role name)",
                )
            })?
            .to_string();
        let role = publish::role_from_filename(&filename)?;
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if bytes.len() + chunk.len() > settings.max_file_bytes {
                return Err(ApiError::too_large(format!(
                    "{role} is larger than {} bytes",
                    settings.max_file_bytes
                ))
                .with_detail(json!({ "role": role, "limit": settings.max_file_bytes })));
            }
            bytes.extend_from_slice(&chunk);
        }
        if publish::json_depth_exceeds(&bytes, settings.max_json_depth) {
            return Err(ApiError::invalid_role(
                "TOO_DEEP",
                &role,
                format!(
                    "{role} nests JSON deeper than {} levels",
                    settings.max_json_depth
                ),
            ));
        }
        uploads.push(Upload { role, bytes });
    }
    Ok(uploads)
}

async fn apply(state: &AppState, gun: &str, uploads: Vec<Upload>) -> Result<Value, ApiError> {
    let mut repo = state.storage.lock(gun).await?;
    let now = chrono::Utc::now();
    let current = repo.current_files().await?;
    let plan = publish::plan(&current, uploads, now)?;
    let mut versions = Map::new();
    for (role, version, bytes) in &plan.store {
        repo.insert_metadata(role, *version, bytes).await?;
        versions.insert(role.clone(), json!(version));
    }
    online::sign_and_store(
        state,
        &mut repo,
        gun,
        &plan.root.signed,
        SnapshotUpdate::New {
            version: plan.snapshot_version,
            meta: plan.snapshot_meta,
        },
        plan.timestamp_version,
        now,
    )
    .await?;
    repo.commit().await?;
    versions.insert("snapshot".into(), json!(plan.snapshot_version));
    versions.insert("timestamp".into(), json!(plan.timestamp_version));
    Ok(json!({ "gun": gun, "versions": versions }))
}

pub async fn publish(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    gun: &tagtrust_shared::Gun,
) -> Result<HttpResponse, ApiError> {
    auth::require(&state.storage, req, Action::Push, gun.as_str()).await?;
    let result = match read_uploads(req, payload, state).await {
        Ok(uploads) => apply(state, gun.as_str(), uploads).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => {
            state.metrics.publishes.with_label_values(&["ok"]).inc();
            tracing::info!(gun = %gun, versions = %body["versions"], "published");
            crate::resign::refresh_metrics(state, gun.as_str()).await;
            Ok(HttpResponse::Ok().json(body))
        }
        Err(e) => {
            let label = match e.status.as_u16() {
                409 => {
                    state.metrics.conflicts.inc();
                    "conflict"
                }
                400..=499 => "rejected",
                _ => "error",
            };
            state.metrics.publishes.with_label_values(&[label]).inc();
            tracing::info!(gun = %gun, status = e.status.as_u16(), code = e.code, message = %e.message, "publish refused");
            Err(e)
        }
    }
}
