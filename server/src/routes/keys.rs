//! Server-managed (online) keys: `GET {role}.key` returns the newest public
//! key of a role, creating one for a repository that has none (which needs
//! `push`); `POST {role}.key` rotates (adds a new newest key). The server
//! signs with whichever of its keys the current root lists, so a rotation
//! takes effect when the publisher publishes a root listing the new key.
//!
//! Bounds: a rotation needs a published repository (the first key of a new
//! one comes from `GET`, one per role), and at most [`MAX_PENDING_KEYS`]
//! keys per role may wait for a root to list them, so a push token cannot
//! fill the database with keys.

use crate::auth::{self, Action};
use crate::error::ApiError;
use crate::publish::ONLINE_ROLES;
use crate::startup::AppState;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::{Gun, PublicKey, SigningKey};

fn check_role(role: &str) -> Result<(), ApiError> {
    if ONLINE_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "UNSUPPORTED_ROLE",
            format!("the server manages only timestamp and snapshot keys, not {role:?}"),
        )
        .with_detail(json!({ "role": role })))
    }
}

/// Keys of one role newer than the newest one the current root lists.
pub const MAX_PENDING_KEYS: usize = 4;

fn key_response(status: actix_web::http::StatusCode, key: &PublicKey) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(key)
}

/// Generate, seal and store a new key for `role` under the repository lock.
async fn create(
    state: &AppState,
    gun: &Gun,
    role: &str,
    only_if_none: bool,
) -> Result<PublicKey, ApiError> {
    let mut repo = state.storage.lock(gun.as_str()).await?;
    if only_if_none {
        // Another request may have created one while we waited for the lock.
        if let Some(existing) = repo.keys(role).await?.pop() {
            repo.commit().await?;
            return Ok(existing.public_key);
        }
    } else {
        check_rotation(&mut repo, gun, role).await?;
    }
    let key = SigningKey::generate();
    let sealed = state.master.seal(gun.as_str(), role, &key);
    let public = key.public_key();
    repo.insert_key(role, &public, &sealed).await?;
    repo.commit().await?;
    tracing::info!(gun = %gun, role, key_id = %public.key_id(), "created online key");
    Ok(public)
}

/// A rotation is for a published repository, with fewer than
/// [`MAX_PENDING_KEYS`] keys of `role` newer than the newest its root lists.
async fn check_rotation(
    repo: &mut crate::storage::RepoTx,
    gun: &Gun,
    role: &str,
) -> Result<(), ApiError> {
    let root = repo
        .current_files()
        .await?
        .into_iter()
        .find(|f| f.role == "root")
        .ok_or_else(|| {
            ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "NOT_PUBLISHED",
                format!(
                    "no trust data for {gun}: rotation is for published repositories \
                     (GET {role}.key gives a new repository its first key)"
                ),
            )
        })?;
    let root = tagtrust_shared::Metadata::<tagtrust_shared::Root>::from_bytes(&root.bytes)
        .map_err(|e| ApiError::internal(format!("stored root does not parse: {e}")))?;
    let keys = repo.keys(role).await?;
    let listed = |row: &crate::storage::OnlineKeyRow| {
        root.signed
            .keys
            .values()
            .any(|k| k.same_key(&row.public_key))
    };
    let pending = keys.iter().rev().take_while(|row| !listed(row)).count();
    if pending >= MAX_PENDING_KEYS {
        return Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "PENDING_KEYS",
            format!(
                "{gun} already has {pending} {role} keys that no published root lists; \
                 publish a root listing the newest (GET {role}.key) before rotating again"
            ),
        )
        .with_detail(json!({ "role": role, "pending": pending, "limit": MAX_PENDING_KEYS })));
    }
    Ok(())
}

pub async fn get(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
    role: &str,
) -> Result<HttpResponse, ApiError> {
    check_role(role)?;
    // With reads restricted, the pull check comes before anything is looked
    // up: an unknown GUN and one the caller may not read answer alike.
    if state.settings.require_pull {
        auth::require(&state.storage, req, Action::Pull, gun.as_str()).await?;
    }
    if let Some(existing) = state.storage.latest_key(gun.as_str(), role).await? {
        return Ok(key_response(
            actix_web::http::StatusCode::OK,
            &existing.public_key,
        ));
    }
    auth::require(&state.storage, req, Action::Push, gun.as_str()).await?;
    let key = create(state, gun, role, true).await?;
    Ok(key_response(actix_web::http::StatusCode::OK, &key))
}

pub async fn rotate(
    req: &HttpRequest,
    state: &AppState,
    gun: &Gun,
    role: &str,
) -> Result<HttpResponse, ApiError> {
    check_role(role)?;
    auth::require(&state.storage, req, Action::Push, gun.as_str()).await?;
    super::refuse_body(req)?;
    let key = create(state, gun, role, false).await?;
    Ok(key_response(actix_web::http::StatusCode::CREATED, &key))
}
