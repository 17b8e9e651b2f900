//! Metadata reads: current, by version, by checksum. Stored bytes are served
//! exactly. Checksummed files never change, so they are cacheable forever.
//! Versioned files do not change either while the repository exists, but a
//! deleted and re-created GUN starts again at version 1 with other content:
//! they are served `no-cache` (revalidated by their content `ETag`), so a
//! cache never hands out the deleted repository's file under the new one's
//! URL.

use super::FileRef;
use crate::auth::Action;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use tagtrust_shared::{Gun, TopLevelRole};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The response header on every `timestamp.json` answer: a healthy server's
/// timestamp is never older than this many seconds (the re-sign cadence plus
/// one scheduler pass). Clients compare their `max_age` with it.
const TIMESTAMP_MAX_AGE_HEADER: &str = "x-tagtrust-timestamp-max-age";

/// Does `If-None-Match` name this entity tag (or `*`)?
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

pub(crate) async fn metadata(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
    file: FileRef,
) -> Result<HttpResponse, ApiError> {
    if state.settings.require_pull {
        state.auth.require(req, Action::Pull, gun.as_str()).await?;
    }
    let storage = &state.storage;
    let (found, cache) = match &file {
        // Never hand out an expired (or about to expire) current timestamp
        // or snapshot, nor a timestamp naming such a snapshot.
        FileRef::Current(name) => match TopLevelRole::parse(name).filter(|r| r.is_online()) {
            Some(role) => (
                crate::online::fresh::current(state.online(), gun.as_str(), role).await?,
                REVALIDATE,
            ),
            None => (storage.current(gun.as_str(), name).await?, REVALIDATE),
        },
        FileRef::Version(role, v) => (
            storage.by_version(gun.as_str(), role, *v).await?,
            REVALIDATE,
        ),
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
    let etag = format!("\"{}\"", found.sha256);
    let mut response = if not_modified(req, &etag) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::CACHE_CONTROL, cache));
    if file.role() == TopLevelRole::Timestamp {
        response.insert_header((
            TIMESTAMP_MAX_AGE_HEADER,
            state.settings.timestamp_max_age_secs().to_string(),
        ));
    }
    if not_modified(req, &etag) {
        return Ok(response.finish());
    }
    Ok(response.content_type("application/json").body(found.bytes))
}
