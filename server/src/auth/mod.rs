//! Authenticating requests: tagtrust tokens and their GUN-glob scopes
//! ([`scopes`]), the registry bearer tokens this server issues at
//! `/auth/token` ([`registry_token`]), and the 401 challenge that tells a
//! registry client where to get one.

pub(crate) mod external_issuer;
pub(crate) mod registry_token;
mod scopes;

pub use scopes::*;

use crate::error::ApiError;
use crate::storage::Storage;
use actix_web::http::header;
use actix_web::HttpRequest;
use registry_token::{is_jwt, registry_actions, scopes_of, RegistryTokens};
use std::sync::Arc;

/// What authenticates requests: the stored tagtrust tokens, the registry
/// bearer tokens this server issues (`registry_token`), and how a client
/// with neither is told where to get one.
#[derive(Clone)]
pub(crate) struct Auth {
    storage: Storage,
    tokens: Arc<RegistryTokens>,
    /// The configured realm; `None`: `/auth/token` on the requested host.
    realm: Option<String>,
}

/// Who a request's bearer token says is calling, and what it may do.
#[derive(Debug)]
pub(crate) struct Caller {
    /// The tagtrust token's ID (`jwt:ID` through a registry token;
    /// `jwt:anonymous` for an anonymous one).
    pub(crate) id: String,
    pub(crate) scopes: Vec<String>,
    /// Authenticated by a registry bearer token: a missing scope is a 401
    /// with `error="insufficient_scope"`, so a registry client asks the
    /// realm again with credentials.
    registry: bool,
}

impl Auth {
    pub(crate) fn new(storage: Storage, tokens: RegistryTokens, realm: Option<String>) -> Auth {
        Auth {
            storage,
            tokens: Arc::new(tokens),
            realm,
        }
    }

    pub(crate) fn tokens(&self) -> &RegistryTokens {
        &self.tokens
    }

    /// The `WWW-Authenticate` value sending a client to the realm for
    /// `scope` (`repository:GUN:push,pull`), with the registry `error`.
    pub(crate) fn challenge(&self, req: &HttpRequest, scope: &str, error: Option<&str>) -> String {
        let realm = self.realm.clone().unwrap_or_else(|| {
            let info = req.connection_info();
            // The Host header is the client's: keep it from breaking out
            // of the quoted string.
            let host: String = info
                .host()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(*c))
                .collect();
            format!("{}://{host}/auth/token", info.scheme())
        });
        let error = error.map(|e| format!(",error=\"{e}\"")).unwrap_or_default();
        format!(
            "Bearer realm=\"{realm}\",service=\"{}\",scope=\"{scope}\"{error}",
            self.tokens.service()
        )
    }

    /// The tagtrust token with this bearer token's hash, or the registry
    /// bearer token's grant (401 otherwise, with a challenge for `scope`).
    pub(crate) async fn caller(
        &self,
        req: &HttpRequest,
        what: &str,
        scope: &str,
    ) -> Result<Caller, ApiError> {
        let challenge = |error| self.challenge(req, scope, error);
        let token = authorization(req, "Bearer")
            .ok_or_else(|| {
                ApiError::unauthorized(format!("{what} access needs a bearer token"))
                    .with_challenge(challenge(None))
            })?
            .filter(|t| !t.is_empty() && t.len() <= 8192)
            .ok_or_else(|| {
                ApiError::unauthorized("malformed Authorization header (expected: Bearer TOKEN)")
                    .with_challenge(challenge(Some("invalid_token")))
            })?;
        if is_jwt(token) {
            let claims = self.tokens.verify(token).map_err(|e| {
                ApiError::unauthorized(format!("invalid registry bearer token: {e}"))
                    .with_challenge(challenge(Some("invalid_token")))
            })?;
            return Ok(Caller {
                id: format!("jwt:{}", claims.tid.as_deref().unwrap_or("anonymous")),
                scopes: scopes_of(&claims),
                registry: true,
            });
        }
        if token.len() > 256 {
            return Err(ApiError::unauthorized("unknown or revoked token")
                .with_challenge(challenge(Some("invalid_token"))));
        }
        let row = self
            .storage
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("unknown or revoked token")
                    .with_challenge(challenge(Some("invalid_token")))
            })?;
        Ok(Caller {
            id: row.id,
            scopes: row.scopes,
            registry: false,
        })
    }

    /// Require a bearer token allowing `action` on `gun`: 401 without a
    /// valid token, 403 with a valid tagtrust token lacking the scope (401
    /// `insufficient_scope` with a registry token, so the client asks the
    /// realm again with credentials).
    pub(crate) async fn require(
        &self,
        req: &HttpRequest,
        action: Action,
        gun: &str,
    ) -> Result<(), ApiError> {
        let scope = format!("repository:{gun}:{}", registry_actions(action));
        let caller = self.caller(req, action.name(), &scope).await?;
        if scopes_allow(&caller.scopes, action, gun) {
            return Ok(());
        }
        tracing::info!(token_id = %caller.id, gun, action = action.name(), "token lacks scope");
        let message = format!(
            "token {} has no {} scope for {gun}",
            caller.id,
            action.name()
        );
        Err(if caller.registry {
            ApiError::unauthorized(message).with_challenge(self.challenge(
                req,
                &scope,
                Some("insufficient_scope"),
            ))
        } else {
            ApiError::forbidden(message)
        })
    }

    /// Require a bearer token that may read `/metrics`: 401 without a
    /// valid token, 403 with one lacking `metrics:*` and `admin:*`.
    pub(crate) async fn require_metrics(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let caller = self.caller(req, METRICS, "registry:catalog:*").await?;
        if scopes_allow_metrics(&caller.scopes) {
            Ok(())
        } else {
            tracing::info!(token_id = %caller.id, "token lacks the metrics scope");
            Err(ApiError::forbidden(format!(
                "token {} has no metrics:* (or admin:*) scope",
                caller.id
            )))
        }
    }
}

/// Does the request carry a registry bearer token (a JWT from a token
/// realm), the credential of Notary and Docker clients, rather than a
/// tagtrust token? Says which protocol family the client speaks; grants
/// nothing by itself.
pub(crate) fn carries_registry_token(req: &HttpRequest) -> bool {
    authorization(req, "Bearer").flatten().is_some_and(is_jwt)
}

/// The credentials of the request's `Authorization` header in `scheme`
/// (`Bearer`, `Basic`; either case of the first letter): `None` without
/// the header, `Some(None)` when it is not of that scheme or not text.
pub(crate) fn authorization<'r>(req: &'r HttpRequest, scheme: &str) -> Option<Option<&'r str>> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let lower = scheme.to_ascii_lowercase();
    Some(value.to_str().ok().and_then(|v| {
        let rest = v
            .strip_prefix(scheme)
            .or_else(|| v.strip_prefix(lower.as_str()))?;
        rest.strip_prefix(' ').map(str::trim)
    }))
}
