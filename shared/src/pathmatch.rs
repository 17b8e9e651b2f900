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

/// Characters that can forge or hide text where a name is shown: control
/// characters (C0, DEL, C1: newline, tab, carriage return, escape), the
/// Unicode line and paragraph separators, and the bidirectional formatting
/// characters that reorder what a terminal displays.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn segment_matches(pattern: &str, segment: &str) -> bool {
    // A wildcard never matches a control character: `dev-*` must not cover
    // `dev-x\nlatest\t…`, a name that forges lines where it is printed.
    // Such a name matches only a pattern that spells it out.
    if segment.chars().any(is_unsafe_char) {
        return pattern == segment;
    }
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
    fn wildcards_do_not_match_control_characters() {
        for name in [
            "dev-zzz\t-\t0\tdev-robot\nlatest",
            "dev-\r",
            "dev-\u{1b}[2K",
            "dev-\u{7f}",
            "dev-\u{85}",
            "dev-\u{202e}txt",
            "dev-\u{2028}",
        ] {
            for pattern in ["dev-*", "*", "dev-?*", "dev-[!a]*"] {
                assert!(!path_matches(pattern, name), "{pattern:?} matched {name:?}");
            }
            assert!(path_matches(name, name), "a literal pattern still matches");
        }
        assert!(path_matches("dev-*", "dev-zzz"));
        assert!(path_matches("dev-*", "dev-é"));
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
