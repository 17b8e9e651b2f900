//! GUNs: the image repository names that key one TUF repository each.

use crate::error::{Error, Result};
use std::fmt;

/// Longest GUN we accept (Docker's limit for a full repository name).
pub const MAX_GUN_LEN: usize = 255;

/// A validated image repository name such as `registry.example.com:5000/acme/app`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gun(String);

impl Gun {
    /// Parse a GUN: `/`-separated segments of `[a-z0-9._-]` (the first may
    /// be a registry host with upper case and a `:port`), no empty, `.` or
    /// `..` segments, each starting and ending with a letter or digit.
    pub fn parse(name: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidGun {
            name: name.chars().take(300).collect(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        if name.len() > MAX_GUN_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        for (i, segment) in name.split('/').enumerate() {
            if segment.is_empty() {
                return Err(invalid("empty path segment"));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("'.' and '..' segments are not allowed"));
            }
            let (host, port) = match (i, segment.split_once(':')) {
                (0, Some((host, port))) => (host, Some(port)),
                _ => (segment, None),
            };
            if let Some(port) = port {
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid("a port must be 1-5 digits"));
                }
            }
            let allowed = |c: char| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || matches!(c, '.' | '_' | '-')
                    || (i == 0 && c.is_ascii_uppercase())
            };
            if host.is_empty() || !host.chars().all(allowed) {
                return Err(invalid(
                    "only lower-case letters, digits, '.', '_' and '-' are allowed",
                ));
            }
            let alnum_ends = host.starts_with(|c: char| c.is_ascii_alphanumeric())
                && host.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !alnum_ends {
                return Err(invalid(
                    "segments must start and end with a letter or digit",
                ));
            }
        }
        Ok(Gun(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Gun {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Gun::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_registry_names() {
        for ok in [
            "app",
            "acme/app",
            "registry.example.com/acme/heavylifter",
            "localhost:5000/acme/app",
            "a_b/c-d/e.f",
        ] {
            Gun::parse(ok).unwrap();
        }
    }

    #[test]
    fn refuses_hostile_names() {
        for bad in [
            "",
            "/app",
            "app/",
            "a//b",
            "../etc",
            "a/../b",
            "a/./b",
            "App/x/Y",
            "a\0b",
            "a%2Fb",
            "a b",
            "-a",
            "host:/x",
            "host:99999999/x",
        ] {
            assert!(Gun::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Gun::parse(&"a".repeat(256)).is_err());
    }
}
