//! Image references as container tools write them: `host:port/repo:tag`.

use crate::error::{Error, Result};
use crate::gun::Gun;

/// A tag reference split into its GUN and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    pub gun: Gun,
    pub tag: String,
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<()> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidReference {
            reference: tag.to_string(),
            reason:
                "a tag is 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'"
                    .into(),
        })
    }
}

impl ImageReference {
    /// Parse `GUN:TAG`. The tag is after the last `:` that follows the last
    /// `/`, so `localhost:5000/acme/app:1.5` is `localhost:5000/acme/app` + `1.5`.
    pub fn parse(reference: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: reference.to_string(),
            reason: reason.to_string(),
        };
        if reference.contains('@') {
            return Err(invalid("digest references are not tags; give GUN:TAG"));
        }
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match reference[last_slash..].rfind(':') {
            Some(i) => (
                &reference[..last_slash + i],
                &reference[last_slash + i + 1..],
            ),
            None => {
                return Err(invalid(
                    "no tag (expected GUN:TAG, e.g. example.com/app:latest)",
                ))
            }
        };
        validate_tag(tag)?;
        Ok(ImageReference {
            gun: Gun::parse(name)?,
            tag: tag.to_string(),
        })
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.gun, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_container_tools() {
        let r = ImageReference::parse("localhost:5000/acme/app:1.5").unwrap();
        assert_eq!(r.gun.as_str(), "localhost:5000/acme/app");
        assert_eq!(r.tag, "1.5");
        let r = ImageReference::parse("app:latest").unwrap();
        assert_eq!((r.gun.as_str(), r.tag.as_str()), ("app", "latest"));
    }

    #[test]
    fn refuses_missing_or_bad_tags() {
        for bad in [
            "localhost:5000/acme/app",
            "app:",
            "app:-x",
            "app@sha256:00",
            "app:a/b",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }
}
