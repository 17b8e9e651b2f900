//! `GET /v2/_trust/expiring[?within=SECONDS&limit=N]`: the repositories'
//! current roles that expire within `within` seconds (default: the warning
//! window, `--expiry-warning-secs`), soonest first — the per-repository
//! detail behind the aggregate expiry metrics. It names repositories, so it
//! always needs a `metrics:*` or `admin:*` token.

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

/// The path of the listing.
pub(crate) const PATH: &str = "/v2/_trust/expiring";

/// Most roles one answer lists (and the default).
const MAX_LIMIT: u32 = 1000;

#[derive(serde::Deserialize)]
struct Params {
    within: Option<u64>,
    limit: Option<u32>,
}

pub(crate) async fn list(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    state.auth.require_metrics(req).await?;
    let params = actix_web::web::Query::<Params>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request("INVALID_QUERY", e.to_string()))?
        .into_inner();
    let within = params.within.unwrap_or(state.settings.expiry_warning_secs);
    let limit = params.limit.unwrap_or(MAX_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let before = now.saturating_add(i64::try_from(within).unwrap_or(i64::MAX));
    // One more than asked, to say whether the list is complete.
    let mut rows = state.storage.expiring(before, limit + 1).await?;
    let truncated = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let roles: Vec<_> = rows
        .iter()
        .map(|r| {
            let expires = r
                .expires_at
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            json!({
                "gun": r.gun,
                "role": r.role,
                "version": r.version,
                "expires": expires,
                "expires_in_secs": r.expires_at.map(|s| s - now),
                "mirrored": r.mirrored,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "within_secs": within, "roles": roles, "truncated": truncated })))
}
