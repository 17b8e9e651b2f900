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
use crate::storage::Storage;
use actix_web::http::header;
use actix_web::HttpRequest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Pull,
    Push,
    Admin,
}

impl Action {
    fn name(self) -> &'static str {
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

/// Require a bearer token that may read `/metrics`: 401 without a valid
/// token, 403 with one lacking `metrics:*` and `admin:*`.
pub async fn require_metrics(storage: &Storage, req: &HttpRequest) -> Result<(), ApiError> {
    let row = token_row(storage, req, METRICS).await?;
    if scopes_allow_metrics(&row.scopes) {
        Ok(())
    } else {
        tracing::info!(token_id = %row.id, "token lacks the metrics scope");
        Err(ApiError::forbidden(format!(
            "token {} has no metrics:* (or admin:*) scope",
            row.id
        )))
    }
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

/// The stored token the request's bearer token names (401 otherwise).
pub(crate) async fn token_row(
    storage: &Storage,
    req: &HttpRequest,
    what: &str,
) -> Result<crate::storage::TokenRow, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized(format!("{what} access needs a bearer token")))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 256)
        .ok_or_else(|| {
            ApiError::unauthorized("malformed Authorization header (expected: Bearer TOKEN)")
        })?;
    storage
        .token_by_hash(&hash_token(token))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked token"))
}

/// Require a bearer token allowing `action` on `gun`: 401 without a valid
/// token, 403 with a valid one lacking the scope.
pub async fn require(
    storage: &Storage,
    req: &HttpRequest,
    action: Action,
    gun: &str,
) -> Result<(), ApiError> {
    let row = token_row(storage, req, action.name()).await?;
    if scopes_allow(&row.scopes, action, gun) {
        Ok(())
    } else {
        tracing::info!(token_id = %row.id, gun, action = action.name(), "token lacks scope");
        Err(ApiError::forbidden(format!(
            "token {} has no {} scope for {gun}",
            row.id,
            action.name()
        )))
    }
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
