//! Which targets a delegated role may sign, and which names a role may have.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};

/// Does `pattern` match `target`, the TUF way: both split on `/`, the same
/// number of segments, each segment matched as a shell glob (`*`, `?`,
/// `[...]`) that never crosses a `/`.
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let pattern_parts: Vec<&str> = pattern.split('/').collect();
    let target_parts: Vec<&str> = target.split('/').collect();
    pattern_parts.len() == target_parts.len()
        && pattern_parts
            .iter()
            .zip(&target_parts)
            .all(|(p, t)| segment_matches(p, t))
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches_with(
            segment,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: true,
                require_literal_leading_dot: false,
            },
        ),
        // A pattern that is not a valid glob matches only itself.
        Err(_) => pattern == segment,
    }
}

/// May a role with these `paths` or `path_hash_prefixes` sign `target`?
/// A role with neither may sign nothing.
pub fn is_delegated_path(
    target: &str,
    paths: Option<&[String]>,
    path_hash_prefixes: Option<&[String]>,
) -> bool {
    if let Some(paths) = paths {
        return paths.iter().any(|p| path_matches(p, target));
    }
    if let Some(prefixes) = path_hash_prefixes {
        let hash = hex::encode(Sha256::digest(target.as_bytes()));
        return prefixes.iter().any(|p| hash.starts_with(p.as_str()));
    }
    false
}

/// Delegated role names appear in URLs and file names: no `/`, `\`, NUL,
/// no leading `.`, not empty, at most 255 bytes.
pub fn validate_role_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRoleName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_do_not_cross_slashes() {
        assert!(path_matches("*", "latest"));
        assert!(!path_matches("*", "a/b"));
        assert!(path_matches("release-*", "release-1.5"));
        assert!(!path_matches("release-*", "dev-1"));
        assert!(path_matches("a/*/c", "a/b/c"));
        assert!(!path_matches("a/*", "a/b/c"));
        assert!(path_matches("v?", "v1"));
        assert!(!path_matches("v?", "v10"));
    }

    #[test]
    fn role_without_paths_signs_nothing() {
        assert!(!is_delegated_path("x", None, None));
        let prefix = vec![hex::encode(Sha256::digest(b"x"))[..2].to_string()];
        assert!(is_delegated_path("x", None, Some(&prefix)));
    }

    #[test]
    fn role_names() {
        validate_role_name("ci-robot").unwrap();
        for bad in ["", "a/b", "..", ".hidden", "a\0b"] {
            assert!(validate_role_name(bad).is_err(), "{bad:?}");
        }
    }
}
