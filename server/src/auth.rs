//! Bearer tokens and GUN-glob scopes.
//!
//! A token is `tt_` followed by 64 hex characters of randomness; only its
//! SHA-256 is stored. Scopes are `pull:GLOB`, `push:GLOB`, `admin:GLOB`,
//! where `*` in GLOB matches any characters including `/`. `admin` implies
//! `push`, which implies `pull`.
//!
//! `metrics:*` is a scope of its own, for a Prometheus scraper: it reads
//! `/metrics` (which names every GUN) when reads are restricted
//! (`--require-pull`), and nothing else. `admin:*` reads it too.

use crate::error::ApiError;
use crate::registry_token::{is_jwt, registry_actions, scopes_of, RegistryTokens};
use crate::storage::Storage;
use actix_web::http::header;
use actix_web::HttpRequest;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
    Admin,
}

impl Action {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        match text {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "admin" => Some(Action::Admin),
            _ => None,
        }
    }
}

/// Check a scope's syntax: `ACTION:GLOB` with a non-empty glob of GUN
/// characters and `*`.
pub fn validate_scope(scope: &str) -> Result<(), String> {
    let (action, glob) = scope
        .split_once(':')
        .ok_or_else(|| format!("scope {scope:?} must look like push:acme/*"))?;
    if action == METRICS {
        return if glob == "*" {
            Ok(())
        } else {
            Err(format!(
                "scope {scope:?}: metrics cover every repository; the scope is metrics:*"
            ))
        };
    }
    if Action::parse(action).is_none() {
        return Err(format!(
            "scope {scope:?}: action must be pull, push, admin (or metrics:*)"
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-/:*".contains(c);
    if glob.is_empty() || !glob.chars().all(ok_char) {
        return Err(format!(
            "scope {scope:?}: the GUN pattern may contain letters, digits, . _ - / : and *"
        ));
    }
    Ok(())
}

/// Does `pattern` (with `*` = any run of characters, `/` included) match `gun`?
pub fn glob_matches(pattern: &str, gun: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = gun.chars().collect();
    // Classic wildcard matching with one backtrack point: linear-ish, no
    // recursion, so hostile patterns cannot blow the stack.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Do `scopes` allow `action` on `gun`?
pub fn scopes_allow(scopes: &[String], action: Action, gun: &str) -> bool {
    scopes.iter().any(|scope| {
        scope.split_once(':').is_some_and(|(granted, glob)| {
            Action::parse(granted).is_some_and(|granted| granted >= action)
                && glob_matches(glob, gun)
        })
    })
}

/// A new random token.
pub fn generate_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("tt_{}", hex::encode(bytes))
}

pub fn hash_token(token: &str) -> String {
    tagtrust_shared::hashes::sha256_hex(token.as_bytes())
}

/// The action of the `metrics:*` scope.
const METRICS: &str = "metrics";

/// Do `scopes` allow reading `/metrics` (`metrics:*` or `admin:*`)?
pub fn scopes_allow_metrics(scopes: &[String]) -> bool {
    scopes
        .iter()
        .any(|scope| scope == "metrics:*" || scope == "admin:*")
}

/// The GUN patterns `scopes` may pull from (every pull, push and admin
/// scope's).
pub fn pull_globs(scopes: &[String]) -> Vec<&str> {
    scopes
        .iter()
        .filter_map(|scope| scope.split_once(':'))
        .filter(|(granted, _)| Action::parse(granted).is_some())
        .map(|(_, glob)| glob)
        .collect()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("*", "a/b/c"));
        assert!(glob_matches("acme/*", "acme/app/x"));
        assert!(!glob_matches("acme/*", "acmex/app"));
        assert!(glob_matches("acme/app", "acme/app"));
        assert!(!glob_matches("acme/app", "acme/app2"));
        assert!(glob_matches("*/app", "r.io/acme/app"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn scope_hierarchy() {
        let push = vec!["push:acme/*".to_string()];
        assert!(scopes_allow(&push, Action::Pull, "acme/app"));
        assert!(scopes_allow(&push, Action::Push, "acme/app"));
        assert!(!scopes_allow(&push, Action::Admin, "acme/app"));
        assert!(!scopes_allow(&push, Action::Push, "other/app"));
        let admin = vec!["admin:*".to_string()];
        assert!(scopes_allow(&admin, Action::Push, "x"));
        let pull = vec!["pull:*".to_string()];
        assert!(!scopes_allow(&pull, Action::Push, "x"));
    }

    #[test]
    fn scope_syntax() {
        validate_scope("push:acme/*").unwrap();
        assert!(validate_scope("write:acme").is_err());
        assert!(validate_scope("push:").is_err());
        assert!(validate_scope("push").is_err());
        assert!(validate_scope("push:a b").is_err());
        validate_scope("metrics:*").unwrap();
        assert!(validate_scope("metrics:acme/*").is_err());
    }

    #[test]
    fn pull_globs_are_every_gun_scope() {
        let scopes: Vec<String> = ["pull:a/*", "metrics:*", "admin:b", "push:c/*"]
            .map(String::from)
            .to_vec();
        assert_eq!(pull_globs(&scopes), ["a/*", "b", "c/*"]);
    }

    #[test]
    fn metrics_scope_reads_metrics_only() {
        let metrics = vec!["metrics:*".to_string()];
        assert!(scopes_allow_metrics(&metrics));
        for action in [Action::Pull, Action::Push, Action::Admin] {
            assert!(!scopes_allow(&metrics, action, "acme/app"));
        }
        assert!(scopes_allow_metrics(&["admin:*".to_string()]));
        for other in ["admin:acme/*", "push:*", "pull:*"] {
            assert!(!scopes_allow_metrics(&[other.to_string()]), "{other}");
        }
    }
}
