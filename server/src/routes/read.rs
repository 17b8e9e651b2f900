//! Metadata reads: current, by version, by checksum. Stored bytes are served
//! exactly. Checksummed files never change, so they are cacheable forever.
//! Versioned files do not change either while the repository exists, but a
//! deleted and re-created GUN starts again at version 1 with other content:
//! they are served `no-cache` (revalidated by their content `ETag`), so a
//! cache never hands out the deleted repository's file under the new one's
//! URL.
//!
//! A client that sends `Accept-Encoding: gzip` gets files of at least
//! [`MIN_GZIP_BYTES`] gzip-compressed (a copy made once per file,
//! `gzip_cache.rs`), with its own entity tag (`"SHA256-gzip"`); every
//! metadata answer says `Vary: Accept-Encoding`, and a client that did not
//! ask gets the stored bytes.

use super::FileRef;
use crate::auth::Action;
use crate::error::ApiError;
use crate::gzip_cache::{accepts_gzip, gzip, BLOCKING_GZIP_BYTES, MIN_GZIP_BYTES};
use crate::state::AppState;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use tagtrust_shared::{Gun, TopLevelRole};

// Header values are made with `HeaderValue::from_static`, which only checks
// the bytes (a `&str` value is copied into a new buffer on every response).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The response header on every `timestamp.json` answer: a healthy server's
/// timestamp is never older than this many seconds (the re-sign cadence plus
/// one scheduler pass). Clients compare their `max_age` with it.
const TIMESTAMP_MAX_AGE_HEADER: HeaderName =
    HeaderName::from_static("x-tagtrust-timestamp-max-age");

/// Does `If-None-Match` name either entity tag of the file (or `*`)? Its
/// plain and gzip forms carry the same bytes, so a client holding either is
/// up to date. (Compared in place: this is on every read.)
fn not_modified(req: &HttpRequest, sha256: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || is_etag_of(t, sha256))
}

/// Is `tag` the plain or the gzip entity tag ([`etag`]) of the file whose
/// SHA-256 is `sha256`?
fn is_etag_of(tag: &str, sha256: &str) -> bool {
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .map(|t| t.strip_suffix("-gzip").unwrap_or(t))
        .is_some_and(|t| t == sha256)
}

/// The entity tag of a file's plain or gzip form (RFC 9110 §8.8.3: two
/// encodings of one file are two representations, with two strong tags).
/// (Written by hand: `format!` was a twentieth of a cached read.)
fn etag(sha256: &str, gzipped: bool) -> String {
    let mut tag = String::with_capacity(sha256.len() + 7);
    tag.push('"');
    tag.push_str(sha256);
    if gzipped {
        tag.push_str("-gzip");
    }
    tag.push('"');
    tag
}

/// The gzip form of `file`, made once and then kept (`gzip_cache.rs`).
async fn gzipped(state: &AppState, file: &crate::storage::StoredFile) -> bytes::Bytes {
    if let Some(kept) = state.gzip.get(&file.sha256) {
        return kept;
    }
    let compressed = if file.bytes.len() >= BLOCKING_GZIP_BYTES {
        let bytes = file.bytes.clone();
        match actix_web::web::block(move || gzip(&bytes)).await {
            Ok(compressed) => compressed,
            // The blocking pool is gone (shutting down): compress here.
            Err(_) => gzip(&file.bytes),
        }
    } else {
        gzip(&file.bytes)
    };
    state.gzip.put(&file.sha256, compressed.clone());
    compressed
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
    let wants_gzip = found.bytes.len() >= MIN_GZIP_BYTES
        && accepts_gzip(
            req.headers()
                .get_all(header::ACCEPT_ENCODING)
                .filter_map(|v| v.to_str().ok()),
        );
    // Only when it is smaller: a client's size limit is the stored length,
    // and some clients check it against `Content-Length`.
    let compressed = match wants_gzip {
        true => Some(gzipped(state, &found).await).filter(|c| c.len() < found.bytes.len()),
        false => None,
    };
    let gzipped_form = compressed.is_some();
    let fresh = not_modified(req, &found.sha256);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag(&found.sha256, gzipped_form)))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((header::VARY, HeaderValue::from_static("Accept-Encoding")));
    if file.role() == TopLevelRole::Timestamp {
        response.insert_header((
            TIMESTAMP_MAX_AGE_HEADER,
            HeaderValue::from(state.settings.timestamp_max_age_secs()),
        ));
    }
    if fresh {
        return Ok(response.finish());
    }
    response.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    ));
    match compressed {
        Some(body) => Ok(response
            .insert_header((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")))
            .body(body)),
        None => Ok(response.body(found.bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_entity_tag_of_a_file_is_recognised_and_no_other() {
        let sha256 = "ab".repeat(32);
        assert_eq!(etag(&sha256, false), format!("\"{sha256}\""));
        assert_eq!(etag(&sha256, true), format!("\"{sha256}-gzip\""));
        for form in [false, true] {
            assert!(is_etag_of(&etag(&sha256, form), &sha256));
        }
        let other = "cd".repeat(32);
        for tag in [
            other.clone(),
            format!("\"{other}\""),
            format!("\"{other}-gzip\""),
            sha256.clone(),
            format!("\"{sha256}-gzip-gzip\""),
            format!("\"{sha256}"),
            String::new(),
        ] {
            assert!(!is_etag_of(&tag, &sha256), "{tag}");
        }
    }
}
