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
pub(crate) const METRICS: &str = "metrics";

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
