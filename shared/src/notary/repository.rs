//! Verifying a whole Notary repository the way a Notary client does
//! (notary 0.7 client/tufclient.go, tuf/signed, trustpinning), from bytes
//! alone: the root chain from the root the client already trusts (or
//! version 1, trusted on first use), then timestamp → snapshot → targets →
//! delegations, each signed by a threshold of the keys its delegator lists
//! ([`NotarySigned::verify`], the one signature check), each file matching
//! the length and hashes its referrer lists, nothing expired.
//!
//! It is fed bytes and says what it verified or why not: fetching is the
//! caller's business (`tagtrust migrate notary` fetches from the server the
//! repository lives on).

use super::{
    check_file_meta, check_root_certificate, file_meta_matches, is_delegation_name, Delegation,
    FileMeta, NotaryKey, NotaryRoot, NotarySigned, NotarySnapshot, NotaryTargets, NotaryTimestamp,
};
use crate::error::Error;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The files of one Notary repository, as fetched.
#[derive(Debug, Clone, Default)]
pub struct NotaryRepositoryFiles {
    /// The root the client trusts already (a trust directory's cached
    /// `tuf/<GUN>/metadata/root.json`); `None`: `roots` starts at version 1,
    /// trusted on first use.
    pub trusted_root: Option<Vec<u8>>,
    /// Every root after the trusted one, in version order, the last being
    /// the server's current `root.json` (empty when the trusted root is the
    /// current one).
    pub roots: Vec<Vec<u8>>,
    pub timestamp: Vec<u8>,
    pub snapshot: Vec<u8>,
    /// `targets` and every delegated role the snapshot lists, by role name.
    pub targets: BTreeMap<String, Vec<u8>>,
}

/// A delegated role as verified: where it sits, its keys, and its
/// metadata if it has any (a delegation nobody has published under yet
/// has none, and a Notary client finds no targets in it).
#[derive(Debug, Clone)]
pub struct VerifiedDelegation {
    /// The delegating role (`targets` or a `targets/…` role).
    pub parent: String,
    pub delegation: Delegation,
    /// The public keys `delegation.keyids` name, from the parent.
    pub keys: BTreeMap<String, NotaryKey>,
    /// The role's targets, those outside its paths (or an ancestor's)
    /// left out as a Notary client leaves them out; `None` when it has no
    /// metadata.
    pub targets: Option<NotaryTargets>,
}

/// What a verified repository holds.
#[derive(Debug, Clone)]
pub struct VerifiedRepository {
    pub root: NotaryRoot,
    pub targets: NotaryTargets,
    /// Every delegated role reachable from targets, depth first in
    /// delegation order (the order a Notary client searches them).
    pub delegations: Vec<VerifiedDelegation>,
}

/// Why a Notary repository does not verify.
#[derive(Debug, thiserror::Error)]
pub enum NotaryRepositoryError {
    #[error("Notary {role}: {source}")]
    Role {
        role: String,
        #[source]
        source: Error,
    },
    #[error("Notary {role}: {reason}")]
    Invalid { role: String, reason: String },
    #[error("Notary {role} expired at {expires}")]
    Expired {
        role: String,
        expires: DateTime<Utc>,
    },
}

type Result<T> = std::result::Result<T, NotaryRepositoryError>;

fn invalid(role: &str, reason: impl Into<String>) -> NotaryRepositoryError {
    NotaryRepositoryError::Invalid {
        role: role.to_string(),
        reason: reason.into(),
    }
}

fn role_error(role: &str) -> impl Fn(Error) -> NotaryRepositoryError + '_ {
    move |source| NotaryRepositoryError::Role {
        role: role.to_string(),
        source,
    }
}

fn not_expired(role: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    if expires <= now {
        return Err(NotaryRepositoryError::Expired {
            role: role.to_string(),
            expires,
        });
    }
    Ok(())
}

/// Do `bytes` have the length and every hash `meta` lists?
fn matches_meta(role: &str, meta: &FileMeta, bytes: &[u8]) -> Result<()> {
    check_file_meta(meta, role).map_err(role_error(role))?;
    if meta.length != bytes.len() as u64 || !file_meta_matches(meta, bytes) {
        return Err(invalid(
            role,
            "its bytes do not match the length and hashes its referrer lists",
        ));
    }
    Ok(())
}

fn parse_root(bytes: &[u8]) -> Result<(NotarySigned, NotaryRoot)> {
    let signed = NotarySigned::from_bytes(bytes).map_err(role_error("root"))?;
    let root: NotaryRoot = signed.parse("Root").map_err(role_error("root"))?;
    root.check().map_err(role_error("root"))?;
    Ok((signed, root))
}

/// Is `file` signed by a threshold of the keys `root` gives top-level `role`?
fn signed_by(root: &NotaryRoot, file: &NotarySigned, role: &str, as_role: &str) -> Result<()> {
    let keys = root.role_keys(role).map_err(role_error(as_role))?;
    file.verify(as_role, &root.keys, &keys.keyids, keys.threshold)
        .map_err(role_error(as_role))
}

/// Notary's checks of a root's certificates: each names the GUN; only the
/// current root's must be valid now.
fn check_certificates(
    root: &NotaryRoot,
    gun: &str,
    now: DateTime<Utc>,
    current: bool,
) -> Result<()> {
    let keys = root.role_keys("root").map_err(role_error("root"))?;
    for id in &keys.keyids {
        let key = &root.keys[id];
        check_root_certificate(id, key, gun, now, current)
            .map_err(|e| invalid(&format!("root v{}", root.version), e.to_string()))?;
    }
    Ok(())
}

/// The current root: the chain from the trusted root (or a
/// self-signed version 1) through every later version, each signed by a
/// threshold of its predecessor's root keys and of its own.
fn verify_root_chain(
    files: &NotaryRepositoryFiles,
    gun: &str,
    now: DateTime<Utc>,
) -> Result<(NotaryRoot, Vec<u8>)> {
    let mut later = files.roots.iter();
    let (mut trusted, mut trusted_bytes) = match &files.trusted_root {
        Some(bytes) => (parse_root(bytes)?.1, bytes.clone()),
        None => {
            let bytes = later
                .next()
                .ok_or_else(|| invalid("root", "no root to start from"))?;
            let (signed, root) = parse_root(bytes)?;
            if root.version != 1 {
                return Err(invalid(
                    "root",
                    format!(
                        "trust on first use starts at version 1, not {}",
                        root.version
                    ),
                ));
            }
            signed_by(&root, &signed, "root", "root v1")?;
            (root, bytes.clone())
        }
    };
    check_certificates(&trusted, gun, now, false)?;
    for bytes in later {
        let (signed, next) = parse_root(bytes)?;
        let name = format!("root v{}", next.version);
        if next.version != trusted.version + 1 {
            return Err(invalid(
                &name,
                format!("expected root version {} next", trusted.version + 1),
            ));
        }
        signed_by(
            &trusted,
            &signed,
            "root",
            &format!("{name} (by v{}'s root keys)", trusted.version),
        )?;
        signed_by(&next, &signed, "root", &name)?;
        check_certificates(&next, gun, now, false)?;
        trusted = next;
        trusted_bytes = bytes.clone();
    }
    not_expired("root", trusted.expires, now)?;
    check_certificates(&trusted, gun, now, true)?;
    Ok((trusted, trusted_bytes))
}

/// Verify the repository of `gun` in `files` at time `now`.
pub fn verify_repository(
    gun: &str,
    files: &NotaryRepositoryFiles,
    now: DateTime<Utc>,
) -> Result<VerifiedRepository> {
    let (root, root_bytes) = verify_root_chain(files, gun, now)?;

    let timestamp_file =
        NotarySigned::from_bytes(&files.timestamp).map_err(role_error("timestamp"))?;
    let timestamp: NotaryTimestamp = timestamp_file
        .parse("Timestamp")
        .map_err(role_error("timestamp"))?;
    signed_by(&root, &timestamp_file, "timestamp", "timestamp")?;
    not_expired("timestamp", timestamp.expires, now)?;
    let snapshot_meta = timestamp
        .meta
        .get("snapshot")
        .ok_or_else(|| invalid("timestamp", "lists no snapshot"))?;
    matches_meta("snapshot", snapshot_meta, &files.snapshot)?;

    let snapshot_file =
        NotarySigned::from_bytes(&files.snapshot).map_err(role_error("snapshot"))?;
    let snapshot: NotarySnapshot = snapshot_file
        .parse("Snapshot")
        .map_err(role_error("snapshot"))?;
    signed_by(&root, &snapshot_file, "snapshot", "snapshot")?;
    not_expired("snapshot", snapshot.expires, now)?;
    // The snapshot names the root it was made with: a server handing out
    // another root of the same version is caught here.
    if let Some(meta) = snapshot.meta.get("root") {
        matches_meta("root", meta, &root_bytes)?;
    }

    let role_file = |role: &str| -> Result<Option<(NotarySigned, NotaryTargets)>> {
        let Some(meta) = snapshot.meta.get(role) else {
            return Ok(None);
        };
        let bytes = files
            .targets
            .get(role)
            .ok_or_else(|| invalid(role, "listed in snapshot but not fetched"))?;
        matches_meta(role, meta, bytes)?;
        let file = NotarySigned::from_bytes(bytes).map_err(role_error(role))?;
        let targets: NotaryTargets = file.parse("Targets").map_err(role_error(role))?;
        if targets.version == 0 {
            return Err(invalid(role, "version must be at least 1"));
        }
        not_expired(role, targets.expires, now)?;
        for (name, target) in &targets.targets {
            check_file_meta(target, &format!("{role} target {name:?}"))
                .map_err(role_error(role))?;
        }
        Ok(Some((file, targets)))
    };

    let (targets_file, targets) =
        role_file("targets")?.ok_or_else(|| invalid("targets", "not listed in snapshot"))?;
    signed_by(&root, &targets_file, "targets", "targets")?;

    let mut delegations = Vec::new();
    // Depth first, in delegation order: (parent name, parent targets, the
    // path prefixes of the parent and every ancestor).
    walk(&role_file, "targets", &targets, &[], &mut delegations)?;
    Ok(VerifiedRepository {
        root,
        targets,
        delegations,
    })
}

type RoleFile<'a> = dyn Fn(&str) -> Result<Option<(NotarySigned, NotaryTargets)>> + 'a;

/// Is `name` within every prefix list in `restrictions` (`""` allows all)?
fn within(name: &str, restrictions: &[&[String]]) -> bool {
    restrictions
        .iter()
        .all(|paths| paths.iter().any(|prefix| name.starts_with(prefix.as_str())))
}

fn walk(
    role_file: &RoleFile<'_>,
    parent: &str,
    parent_targets: &NotaryTargets,
    restrictions: &[&[String]],
    out: &mut Vec<VerifiedDelegation>,
) -> Result<()> {
    for delegation in &parent_targets.delegations.roles {
        let name = &delegation.name;
        let child_of_parent = name
            .strip_prefix(parent)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|rest| !rest.contains('/'));
        if !is_delegation_name(name) || !child_of_parent {
            return Err(invalid(
                parent,
                format!("delegates to {name:?}, which is not a role directly under it"),
            ));
        }
        if delegation.threshold == 0 {
            return Err(invalid(parent, format!("{name} has threshold 0")));
        }
        let mut keys = BTreeMap::new();
        for id in &delegation.keyids {
            let key = parent_targets.delegations.keys.get(id).ok_or_else(|| {
                invalid(
                    parent,
                    format!("{name} lists key {id}, which it does not define"),
                )
            })?;
            keys.insert(id.clone(), key.clone());
        }
        let mut chain = restrictions.to_vec();
        chain.push(&delegation.paths);
        let verified = match role_file(name)? {
            None => None,
            Some((file, mut targets)) => {
                file.verify(name, &keys, &delegation.keyids, delegation.threshold)
                    .map_err(role_error(name))?;
                targets.targets.retain(|target, _| within(target, &chain));
                Some(targets)
            }
        };
        out.push(VerifiedDelegation {
            parent: parent.to_string(),
            delegation: delegation.clone(),
            keys,
            targets: verified.clone(),
        });
        if let Some(targets) = &verified {
            walk(role_file, name, targets, &chain, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use chrono::TimeZone;

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../docs/notary-samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// The samples' capture day: every role is current then.
    fn capture_day() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap()
    }

    const GUN: &str = "example.com/acme/app";

    /// The consistent set the notary CLI and notary-server wrote after the
    /// first publish: root v1, targets v2, snapshot v2, timestamp v1.
    fn files() -> NotaryRepositoryFiles {
        NotaryRepositoryFiles {
            trusted_root: None,
            roots: vec![sample("root.json")],
            timestamp: sample("timestamp.json"),
            snapshot: sample("snapshot.json"),
            targets: [("targets".to_string(), sample("targets.json"))].into(),
        }
    }

    #[test]
    fn the_notary_cli_s_repository_verifies() {
        let verified = verify_repository(GUN, &files(), capture_day()).unwrap();
        assert_eq!(verified.root.version, 1);
        assert_eq!(verified.targets.version, 2);
        assert_eq!(
            verified.targets.targets.keys().collect::<Vec<_>>(),
            vec!["v1"]
        );
        assert!(verified.delegations.is_empty());
        // The same, starting from that root cached in a trust directory.
        let cached = NotaryRepositoryFiles {
            trusted_root: Some(sample("root.json")),
            roots: vec![],
            ..files()
        };
        verify_repository(GUN, &cached, capture_day()).unwrap();
    }

    #[test]
    fn a_tampered_target_is_refused() {
        // Another digest for v1 in targets: the snapshot's hash of targets
        // no longer matches.
        let mut files = files();
        let text = String::from_utf8(files.targets["targets"].clone()).unwrap();
        let signed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let old = signed["signed"]["targets"]["v1"]["hashes"]["sha256"]
            .as_str()
            .unwrap()
            .to_string();
        let forged = text.replace(&old, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        files.targets.insert("targets".into(), forged.into_bytes());
        let err = verify_repository(GUN, &files, capture_day()).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
    }

    #[test]
    fn a_forged_signature_is_refused() {
        // Targets whose signature is another's: refused on its signature,
        // even with a snapshot that lists its bytes.
        let targets = sample("targets.json");
        let mut signed: serde_json::Value = serde_json::from_slice(&targets).unwrap();
        let sig = signed["signatures"][0]["sig"].as_str().unwrap().to_string();
        let mut raw = crate::notary::BASE64.decode(sig).unwrap();
        raw[10] ^= 1;
        signed["signatures"][0]["sig"] = crate::notary::BASE64.encode(raw).into();
        let forged = serde_json::to_vec(&signed).unwrap();
        let root: NotaryRoot = NotarySigned::from_bytes(&sample("root.json"))
            .unwrap()
            .parse("Root")
            .unwrap();
        let file = NotarySigned::from_bytes(&forged).unwrap();
        let err = signed_by(&root, &file, "targets", "targets").unwrap_err();
        assert!(
            matches!(
                &err,
                NotaryRepositoryError::Role {
                    source: Error::Threshold { .. },
                    ..
                }
            ),
            "{err}"
        );
        // And through the whole walk, it never gets as far as signatures
        // unless the snapshot lists exactly those bytes.
        let mut files = files();
        files.targets.insert("targets".into(), forged);
        assert!(verify_repository(GUN, &files, capture_day()).is_err());
    }

    #[test]
    fn expiry_and_the_root_chain_are_checked() {
        // The timestamp lived 14 days.
        let late = Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap();
        assert!(matches!(
            verify_repository(GUN, &files(), late),
            Err(NotaryRepositoryError::Expired { .. })
        ));
        // Root v4 straight after v1 is no chain.
        let skipped = NotaryRepositoryFiles {
            roots: vec![sample("root.json"), sample("root-rotated.json")],
            ..files()
        };
        let err = verify_repository(GUN, &skipped, capture_day()).unwrap_err();
        assert!(err.to_string().contains("expected root version 2"), "{err}");
        // A root for another GUN is refused by its certificate.
        let err = verify_repository("example.com/acme/other", &files(), capture_day()).unwrap_err();
        assert!(
            err.to_string().contains("not example.com/acme/other"),
            "{err}"
        );
        // A same-version root other than the one the snapshot names.
        let cached = NotaryRepositoryFiles {
            trusted_root: Some(sample("root-signer.json")),
            roots: vec![],
            ..files()
        };
        assert!(verify_repository(GUN, &cached, capture_day()).is_err());
    }

    #[test]
    fn delegations_are_walked_and_their_paths_kept() {
        let targets = sample("targets-with-delegation.json");
        let releases = sample("targets-releases.json");
        let signed: NotaryTargets = NotarySigned::from_bytes(&targets)
            .unwrap()
            .parse("Targets")
            .unwrap();
        let role_file = |role: &str| -> Result<Option<(NotarySigned, NotaryTargets)>> {
            match role {
                "targets/releases" => {
                    let file = NotarySigned::from_bytes(&releases).unwrap();
                    let parsed = file.parse("Targets").unwrap();
                    Ok(Some((file, parsed)))
                }
                _ => Ok(None),
            }
        };
        let mut out = Vec::new();
        walk(&role_file, "targets", &signed, &[], &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].delegation.name, "targets/releases");
        assert_eq!(out[0].delegation.paths, vec!["rel/".to_string()]);
        let kept: Vec<_> = out[0].targets.as_ref().unwrap().targets.keys().collect();
        assert_eq!(kept, vec!["rel/1.0"]);
        // Signed by another key than the delegated one: refused.
        let mut other = signed.clone();
        other.delegations.roles[0].keyids = vec![];
        other.delegations.roles[0].threshold = 1;
        let mut out = Vec::new();
        assert!(walk(&role_file, "targets", &other, &[], &mut out).is_err());
        // A target outside the role's paths is left out, as Notary does.
        let mut narrow = signed.clone();
        narrow.delegations.roles[0].paths = vec!["other/".into()];
        let mut out = Vec::new();
        walk(&role_file, "targets", &narrow, &[], &mut out).unwrap();
        assert!(out[0].targets.as_ref().unwrap().targets.is_empty());
    }
}
