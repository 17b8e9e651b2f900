//! Server-managed (online) keys over HTTP: `GET {role}.key` returns the
//! newest public key of a role, creating one for a repository that has none
//! (which needs `push`); `POST {role}.key` rotates (adds a new newest key).
//! What a key is and when a rotation is allowed: [`crate::online::keys`].

use crate::auth::Action;
use crate::error::ApiError;
use crate::online::keys::{self, KeyRole, NewKey};
use crate::state::AppState;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::Gun;

/// The role a `{role}.key` path names, or why the server has no such key.
fn online_role(role: &str) -> Result<KeyRole, ApiError> {
    KeyRole::parse(role).ok_or_else(|| {
        ApiError::bad_request(
            "UNSUPPORTED_ROLE",
            format!("the server manages only timestamp, snapshot and bins keys, not {role:?}"),
        )
        .with_detail(json!({ "role": role }))
    })
}

/// `GET {role}.key`: the newest key (made first if the repository has
/// none); `POST {role}.key`: a rotation. Both answer with the public key.
pub(crate) async fn key(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
    role: &str,
) -> Result<HttpResponse, ApiError> {
    let role = online_role(role)?;
    let storage = &state.storage;
    let (status, key) = if req.method() == Method::POST {
        state.auth.require(req, Action::Push, gun.as_str()).await?;
        super::refuse_body(req)?;
        let key = keys::add_key(storage, &state.master, gun.as_str(), role, NewKey::Rotation);
        (StatusCode::CREATED, key.await?)
    } else {
        // With reads restricted, the pull check comes before anything is
        // looked up: an unknown GUN and one the caller may not read answer
        // alike.
        if state.settings.require_pull {
            state.auth.require(req, Action::Pull, gun.as_str()).await?;
        }
        let key = match storage.latest_key(gun.as_str(), role).await? {
            Some(existing) => existing.public_key,
            None => {
                state.auth.require(req, Action::Push, gun.as_str()).await?;
                keys::add_key(storage, &state.master, gun.as_str(), role, NewKey::First).await?
            }
        };
        (StatusCode::OK, key)
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(key))
}
