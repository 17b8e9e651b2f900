//! The four Notary role types' `signed` parts (tuf/data/root.go,
//! targets.go, snapshot.go, timestamp.go), with the structure checks
//! Notary makes on each. Unknown fields are ignored, as Go's decoder does.

use super::NotaryKey;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A role's keys and threshold in root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<String>,
    pub threshold: u64,
}

/// `_type` `Root`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotaryRoot {
    pub version: u64,
    pub expires: DateTime<Utc>,
    #[serde(default)]
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, NotaryKey>,
    pub roles: BTreeMap<String, RoleKeys>,
}

/// A file's length and digests: the same shape as a TUF target entry,
/// with Notary's base64 digests (`sha256`, `sha512`); see
/// [`check_file_meta`] and [`file_meta_matches`].
pub type FileMeta = crate::metadata::TargetFile;

/// One delegation: a `targets/…` role, its keys, threshold and path
/// prefixes (not globs; `""` is every path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegation {
    pub name: String,
    pub keyids: Vec<String>,
    pub threshold: u64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub keys: BTreeMap<String, NotaryKey>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub roles: Vec<Delegation>,
}

/// `_type` `Targets`: top-level targets and every delegation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotaryTargets {
    pub version: u64,
    pub expires: DateTime<Utc>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub targets: BTreeMap<String, FileMeta>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub delegations: Delegations,
}

/// Go writes an empty (nil) slice or map as `null`: notary does for the
/// delegations of a targets role whose last delegation was removed.
fn null_as_empty<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `_type` `Snapshot`: `meta` keyed by role name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotarySnapshot {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub meta: BTreeMap<String, FileMeta>,
}

/// `_type` `Timestamp`: the snapshot's `meta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotaryTimestamp {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub meta: BTreeMap<String, FileMeta>,
}

fn schema(role: &str, reason: impl Into<String>) -> Error {
    Error::Schema {
        role: role.to_string(),
        reason: reason.into(),
    }
}

fn check_version(role: &str, version: u64) -> Result<()> {
    if version == 0 {
        return Err(schema(role, "version must be at least 1"));
    }
    Ok(())
}

impl NotaryRoot {
    /// Root's structure (root.go `isValidRootStructure`): every top-level
    /// role, each with a threshold of at least 1 and only keys root lists.
    pub fn check(&self) -> Result<()> {
        check_version("root", self.version)?;
        for role in ["root", "targets", "snapshot", "timestamp"] {
            let keys = self
                .roles
                .get(role)
                .ok_or_else(|| schema("root", format!("no {role} role")))?;
            if keys.threshold == 0 {
                return Err(schema("root", format!("{role} threshold is 0")));
            }
            if let Some(missing) = keys.keyids.iter().find(|id| !self.keys.contains_key(*id)) {
                return Err(schema(
                    "root",
                    format!("{role} lists unknown key {missing}"),
                ));
            }
        }
        Ok(())
    }

    /// The keys and threshold of top-level `role`.
    pub fn role_keys(&self, role: &str) -> Result<&RoleKeys> {
        self.roles
            .get(role)
            .ok_or_else(|| schema("root", format!("no {role} role")))
    }
}

/// Is `name` a Notary delegation name (roles.go `IsDelegation`):
/// `targets/` then `[-a-z0-9_/]`, clean, under 256 characters?
pub fn is_delegation_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("targets/") else {
        return false;
    };
    name.len() < 256
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_/".contains(&b))
        && rest.split('/').all(|segment| !segment.is_empty())
}

/// Hashes Notary understands, each of the right length, at least one
/// (types.go `CheckValidHashStructures`).
pub fn check_file_meta(meta: &FileMeta, role: &str) -> Result<()> {
    use base64::Engine;
    let mut known = 0;
    for (algorithm, digest) in &meta.hashes {
        let size = match algorithm.as_str() {
            "sha256" => 32,
            "sha512" => 64,
            _ => continue,
        };
        let ok = super::BASE64
            .decode(digest)
            .is_ok_and(|raw| raw.len() == size);
        if !ok {
            return Err(schema(
                role,
                format!("{algorithm} hash is not {size} bytes of base64"),
            ));
        }
        known += 1;
    }
    if known == 0 {
        return Err(schema(role, "no sha256 or sha512 hash"));
    }
    Ok(())
}

/// Do the exact `bytes` match every hash `meta` lists?
pub fn file_meta_matches(meta: &FileMeta, bytes: &[u8]) -> bool {
    use base64::Engine;
    use sha2::{Digest, Sha256, Sha512};
    meta.hashes.iter().all(|(algorithm, digest)| {
        let actual = match algorithm.as_str() {
            "sha256" => Sha256::digest(bytes).to_vec(),
            "sha512" => Sha512::digest(bytes).to_vec(),
            _ => return true,
        };
        super::BASE64.decode(digest).is_ok_and(|d| d == actual)
    })
}
