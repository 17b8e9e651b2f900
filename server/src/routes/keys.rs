//! Server-managed (online) keys over HTTP: `GET {role}.key` returns the
//! newest public key of a role, creating one for a repository that has none
//! (which needs `push`); `POST {role}.key` rotates (adds a new newest key).
//! What a key is and when a rotation is allowed: [`crate::online::keys`].

use crate::auth::Action;
use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::online::keys::{self, KeyRole, KeyType, NewKey};
use crate::state::AppState;
use actix_web::http::{header, Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;
use tagtrust_shared::notary::NotaryKey;
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
    // A repository has no dialect before its first publish, and the notary
    // CLI asks for the timestamp key then (`notary init`): a request with a
    // registry bearer token (what Notary clients send) is taken for a
    // Notary one. Notary repositories get Notary's key type (ECDSA P-256 by
    // default, as notary-signer makes) and key form, and a rotation answers
    // 200, the only success the notary CLI takes. tagtrust's client reads
    // both forms.
    // Bins are a spec-TUF repository's: their key is never Notary's.
    let notary = role != KeyRole::Bins
        && match state.storage.dialect(gun.as_str()).await? {
            Some(dialect) => dialect == Dialect::Notary,
            None => crate::auth::carries_registry_token(req),
        };
    let kind = if notary {
        KeyType::parse(&state.settings.notary_key_type).unwrap_or(KeyType::EcdsaP256)
    } else {
        KeyType::Ed25519
    };
    let storage = &state.storage;
    let (status, key) = if req.method() == Method::POST {
        state.auth.require(req, Action::Push, gun.as_str()).await?;
        super::refuse_body(req)?;
        let key = keys::add_key(
            storage,
            &state.master,
            gun.as_str(),
            role,
            NewKey::Rotation,
            kind,
        );
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
                let first = NewKey::First;
                keys::add_key(storage, &state.master, gun.as_str(), role, first, kind).await?
            }
        };
        (StatusCode::OK, key)
    };
    if notary {
        let notary = NotaryKey::from_public_key(&key)
            .ok_or_else(|| ApiError::internal("an online key Notary cannot list"))?;
        return Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(notary));
    }
    Ok(HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(key))
}
