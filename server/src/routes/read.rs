//! Metadata reads: current, by version, by checksum. Stored bytes are served
//! exactly; versioned and checksummed files never change, so they are
//! cacheable forever.

use super::FileRef;
use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use tagtrust_shared::Gun;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const CURRENT: &str = "no-cache";

/// Does `If-None-Match` name this entity tag (or `*`)?
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

pub async fn metadata(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
    file: FileRef,
) -> Result<HttpResponse, ApiError> {
    if state.settings.require_pull {
        auth::require(&state.storage, req, Action::Pull, gun.as_str()).await?;
    }
    let storage = &state.storage;
    let (found, cache) = match &file {
        FileRef::Current(role) => (storage.current(gun.as_str(), role).await?, CURRENT),
        FileRef::Version(role, v) => (storage.by_version(gun.as_str(), role, *v).await?, IMMUTABLE),
        FileRef::Sha256(role, h) => (storage.by_sha256(gun.as_str(), role, h).await?, IMMUTABLE),
    };
    let found = found.ok_or_else(|| {
        let what = match &file {
            FileRef::Current(role) => format!("no {role} metadata"),
            FileRef::Version(role, v) => format!("no version {v} of {role}"),
            FileRef::Sha256(role, h) => format!("no {role} with sha256 {h}"),
        };
        ApiError::not_found(format!("{what} for {gun}"))
    })?;
    // Never hand out an expired (or about to expire) current timestamp.
    let found = match &file {
        FileRef::Current(role) if role == "timestamp" => {
            crate::resign::ensure_fresh_timestamp(state, gun.as_str(), found).await?
        }
        _ => found,
    };
    let etag = format!("\"{}\"", found.sha256);
    if not_modified(req, &etag) {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache))
        .body(found.bytes))
}
