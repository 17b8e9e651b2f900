//! Importing a Notary repository from a running notary-server
//! (`tagtrust-server import-notary`): the pure core. Given every version
//! of every role the source served (`{version}.{role}.json`, exact bytes),
//! it verifies the repository the way a Notary client would, from root
//! version 1, and says what to store, or refuses with an
//! [`ImportRefusal`]. No key is involved and nothing is re-signed: the
//! stored bytes are the served bytes, so trust directories that trusted
//! the old server keep trusting these files.
//!
//! What is verified:
//! * each role's versions are consecutive, ending at the current one (the
//!   highest); root's start at 1 (notary-server keeps every version it
//!   stored, and roots go up by one);
//! * every file is the role and version its name says;
//! * the root chain: each root signed by a threshold of its own root keys
//!   and of the previous root's ([`super::check_root_at`], the publish
//!   path's rotation check); certificates and expiry only for the current
//!   root (past ones may have expired);
//! * the current timestamp, snapshot and targets signed by the current
//!   root's keys for them and not expired; the current timestamp's hashes
//!   of the current snapshot and the snapshot's of root, targets and every
//!   delegation matching the files; every delegation listed and no other;
//! * each current delegation signed by its parent's delegation keys (the
//!   current parent's when it still delegates it); an expired one is
//!   imported as it is (Notary clients skip it with a warning, as they did
//!   against the old server);
//! * every past version signed by a threshold of its role's keys under
//!   some root of the chain (a delegation: under some version of its
//!   parent), so a changed past is refused.
//!
//! Not checked, as notary-server did not check it on upload and existing
//! data must come in (docs/notary-v1.md §0.9): targets outside a
//! delegation's paths, snapshot `length`s (the hashes bind the files).
//! Every signature check is [`tagtrust_shared::notary::NotarySigned::verify`].

use super::{check_expiry, check_root_at, parent_of, read, NotaryFile};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tagtrust_shared::notary::{
    check_file_meta, file_meta_matches, is_delegation_name, FileMeta, NotaryRoot, NotarySnapshot,
    NotaryTargets, NotaryTimestamp,
};

const ROOT: &str = "root";
const TARGETS: &str = "targets";
const SNAPSHOT: &str = "snapshot";
const TIMESTAMP: &str = "timestamp";

/// What to store for one GUN.
#[derive(Debug)]
pub struct NotaryImport {
    /// (role, version, exact bytes): roots first, the timestamps last.
    pub store: Vec<(String, u64, Vec<u8>)>,
    pub timestamp_version: u64,
    /// The imported timestamp's expiry: until the publisher rotates the
    /// timestamp key here, nothing can re-sign it.
    pub timestamp_expires: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportRefusal {
    #[error("{file} is needed but the source did not serve it")]
    Missing { file: String },
    #[error("{file} is not what its name says: {reason}")]
    Misnamed { file: String, reason: String },
    #[error("{role} versions {low}..{high} are served but not version {missing}: the source's history has a gap")]
    Gap {
        role: String,
        low: u64,
        high: u64,
        missing: u64,
    },
    #[error("{file} is refused: {reason}")]
    Untrusted { file: String, reason: String },
    #[error("{file} does not match the hashes {by} lists for it")]
    Mismatch { file: String, by: String },
    #[error("{file} is served but the current snapshot does not list {role}")]
    Unlisted { file: String, role: String },
}

fn file_name(role: &str, version: u64) -> String {
    format!("{version}.{role}.json")
}

fn untrusted(role: &str, version: u64, reason: impl std::fmt::Display) -> ImportRefusal {
    ImportRefusal::Untrusted {
        file: file_name(role, version),
        reason: reason.to_string(),
    }
}

/// One role's versions, parsed, oldest first.
type History<T> = Vec<(u64, NotaryFile<T>)>;

/// Parse every version of `role` as Notary `kind`, checking that each is
/// the version its name says and that they are consecutive.
fn history<T: serde::de::DeserializeOwned>(
    role: &str,
    kind: &str,
    files: &BTreeMap<(String, u64), Vec<u8>>,
    version_of: impl Fn(&T) -> u64,
) -> Result<History<T>, ImportRefusal> {
    let mut out: History<T> = Vec::new();
    for ((_, version), bytes) in files.range((role.to_string(), 0)..=(role.to_string(), u64::MAX)) {
        let file = file_name(role, *version);
        let parsed = read::<T>(role, kind, bytes).map_err(|reason| ImportRefusal::Misnamed {
            file: file.clone(),
            reason,
        })?;
        let declared = version_of(&parsed.role);
        if declared != *version {
            return Err(ImportRefusal::Misnamed {
                file,
                reason: format!("it is {role} version {declared}"),
            });
        }
        if let Some((previous, _)) = out.last() {
            if previous + 1 != *version {
                return Err(ImportRefusal::Gap {
                    role: role.to_string(),
                    low: out[0].0,
                    high: *version,
                    missing: previous + 1,
                });
            }
        }
        out.push((*version, parsed));
    }
    if out.is_empty() {
        return Err(ImportRefusal::Missing {
            file: format!("{role}.json"),
        });
    }
    Ok(out)
}

/// Do `bytes` match `meta` (Notary's hash structure, and every hash)?
fn matches(meta: Option<&FileMeta>, bytes: &[u8]) -> bool {
    meta.is_some_and(|meta| {
        check_file_meta(meta, SNAPSHOT).is_ok() && file_meta_matches(meta, bytes)
    })
}

/// Is `file` signed by a threshold of top-level `role`'s keys in `root`?
fn signed_under<T>(root: &NotaryRoot, role: &str, file: &NotaryFile<T>) -> Result<(), String> {
    let keys = root.role_keys(role).map_err(|e| e.to_string())?;
    file.signed
        .verify(role, &root.keys, &keys.keyids, keys.threshold)
        .map_err(|e| e.to_string())
}

/// Is `file` (delegation `role`) signed as `parent` delegates it?
fn delegated_by(
    parent: &NotaryTargets,
    role: &str,
    file: &NotaryFile<NotaryTargets>,
) -> Result<(), String> {
    let delegation = parent
        .delegations
        .roles
        .iter()
        .find(|d| d.name == role)
        .ok_or_else(|| format!("{} does not delegate to {role}", parent_of(role)))?;
    file.signed
        .verify(
            role,
            &parent.delegations.keys,
            &delegation.keyids,
            delegation.threshold,
        )
        .map_err(|e| e.to_string())
}

/// Verify everything served of `gun` (`files`: (role, version) → exact
/// bytes, as served at `{version}.{role}.json`) at `now`.
pub fn plan_import(
    gun: &str,
    files: &BTreeMap<(String, u64), Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<NotaryImport, ImportRefusal> {
    for (role, version) in files.keys() {
        if !super::is_role_name(role) {
            return Err(ImportRefusal::Misnamed {
                file: file_name(role, *version),
                reason: "not a Notary role name".into(),
            });
        }
    }

    // The root chain from version 1.
    let roots = history::<NotaryRoot>(ROOT, "Root", files, |r| r.version)?;
    if roots[0].0 != 1 {
        return Err(ImportRefusal::Missing {
            file: file_name(ROOT, 1),
        });
    }
    let last = roots.len() - 1;
    for (i, (version, file)) in roots.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &roots[p].1);
        check_root_at(previous, file, gun, now, i == last)
            .map_err(|e| untrusted(ROOT, *version, e))?;
    }
    let (root_version, root_file) = &roots[last];
    let root = &root_file.role;

    let timestamps = history::<NotaryTimestamp>(TIMESTAMP, "Timestamp", files, |t| t.version)?;
    let snapshots = history::<NotarySnapshot>(SNAPSHOT, "Snapshot", files, |s| s.version)?;
    let mut targets: BTreeMap<String, History<NotaryTargets>> = BTreeMap::new();
    for (role, _) in files.keys() {
        if (role == TARGETS || is_delegation_name(role)) && !targets.contains_key(role) {
            let versions = history::<NotaryTargets>(role, "Targets", files, |t| t.version)?;
            targets.insert(role.clone(), versions);
        }
    }
    if !targets.contains_key(TARGETS) {
        return Err(ImportRefusal::Missing {
            file: format!("{TARGETS}.json"),
        });
    }
    let current = |role: &str| {
        let versions = &targets[role];
        &versions[versions.len() - 1]
    };

    // The current timestamp → snapshot → root, targets, delegations.
    let (ts_version, timestamp) = timestamps.last().expect("history is never empty");
    signed_under(root, TIMESTAMP, timestamp).map_err(|e| untrusted(TIMESTAMP, *ts_version, e))?;
    check_expiry(TIMESTAMP, timestamp.role.expires, now)
        .map_err(|e| untrusted(TIMESTAMP, *ts_version, e))?;
    let (snap_version, snapshot) = snapshots.last().expect("history is never empty");
    let by_timestamp = format!("timestamp version {ts_version}");
    if !matches(timestamp.role.meta.get(SNAPSHOT), &snapshot.bytes) {
        return Err(ImportRefusal::Mismatch {
            file: file_name(SNAPSHOT, *snap_version),
            by: by_timestamp,
        });
    }
    signed_under(root, SNAPSHOT, snapshot).map_err(|e| untrusted(SNAPSHOT, *snap_version, e))?;
    check_expiry(SNAPSHOT, snapshot.role.expires, now)
        .map_err(|e| untrusted(SNAPSHOT, *snap_version, e))?;
    let by_snapshot = format!("snapshot version {snap_version}");
    if !matches(snapshot.role.meta.get(ROOT), &root_file.bytes) {
        return Err(ImportRefusal::Mismatch {
            file: file_name(ROOT, *root_version),
            by: by_snapshot,
        });
    }
    for name in snapshot.role.meta.keys() {
        if name != ROOT && !targets.contains_key(name) {
            return Err(ImportRefusal::Missing {
                file: format!("{name}.json (listed in {by_snapshot})"),
            });
        }
    }
    for (role, versions) in &targets {
        let (version, file) = &versions[versions.len() - 1];
        if !snapshot.role.meta.contains_key(role) {
            return Err(ImportRefusal::Unlisted {
                file: file_name(role, *version),
                role: role.clone(),
            });
        }
        if !matches(snapshot.role.meta.get(role), &file.bytes) {
            return Err(ImportRefusal::Mismatch {
                file: file_name(role, *version),
                by: by_snapshot.clone(),
            });
        }
    }
    let (targets_version, top) = current(TARGETS);
    signed_under(root, TARGETS, top).map_err(|e| untrusted(TARGETS, *targets_version, e))?;
    check_expiry(TARGETS, top.role.expires, now)
        .map_err(|e| untrusted(TARGETS, *targets_version, e))?;

    // Delegations, each by its parent: the current parent when it still
    // delegates the role, else some version of it (checked below with the
    // past versions).
    for (role, versions) in targets.iter().filter(|(role, _)| *role != TARGETS) {
        let (version, file) = &versions[versions.len() - 1];
        let parent = parent_of(role);
        let Some(parents) = targets.get(parent) else {
            return Err(untrusted(role, *version, format!("{parent} is not served")));
        };
        let current_parent = &parents[parents.len() - 1].1.role;
        if current_parent
            .delegations
            .roles
            .iter()
            .any(|d| d.name == *role)
        {
            delegated_by(current_parent, role, file).map_err(|e| untrusted(role, *version, e))?;
        }
    }

    // Past versions: signed under some root (or some version of the parent).
    let signed_by_some_root = |signed: &dyn Fn(&NotaryRoot) -> Result<(), String>| {
        roots.iter().any(|(_, root)| signed(&root.role).is_ok())
    };
    for (version, file) in &timestamps {
        if !signed_by_some_root(&|r| signed_under(r, TIMESTAMP, file)) {
            return Err(untrusted(
                TIMESTAMP,
                *version,
                "not signed by the timestamp keys of any root",
            ));
        }
    }
    for (version, file) in &snapshots {
        if !signed_by_some_root(&|r| signed_under(r, SNAPSHOT, file)) {
            return Err(untrusted(
                SNAPSHOT,
                *version,
                "not signed by the snapshot keys of any root",
            ));
        }
    }
    for (role, versions) in &targets {
        for (version, file) in versions {
            let signed = if role == TARGETS {
                signed_by_some_root(&|r| signed_under(r, TARGETS, file))
            } else {
                targets[parent_of(role)]
                    .iter()
                    .any(|(_, parent)| delegated_by(&parent.role, role, file).is_ok())
            };
            if !signed {
                return Err(untrusted(
                    role,
                    *version,
                    format!("not signed by {role}'s keys under any version of its delegator"),
                ));
            }
        }
    }

    // Roots first, then targets and delegations (parents first), then
    // snapshots, the timestamps last.
    let mut store: Vec<(String, u64, Vec<u8>)> = Vec::new();
    store.extend(
        roots
            .iter()
            .map(|(v, f)| (ROOT.to_string(), *v, f.bytes.clone())),
    );
    let mut roles: Vec<&String> = targets.keys().collect();
    roles.sort_by_key(|role| (role.matches('/').count(), role.as_str()));
    for role in roles {
        store.extend(
            targets[role]
                .iter()
                .map(|(v, f)| (role.clone(), *v, f.bytes.clone())),
        );
    }
    store.extend(
        snapshots
            .iter()
            .map(|(v, f)| (SNAPSHOT.to_string(), *v, f.bytes.clone())),
    );
    store.extend(
        timestamps
            .iter()
            .map(|(v, f)| (TIMESTAMP.to_string(), *v, f.bytes.clone())),
    );
    Ok(NotaryImport {
        store,
        timestamp_version: *ts_version,
        timestamp_expires: timestamp.role.expires,
    })
}

#[cfg(test)]
mod tests {
    //! Against the files the real notary 0.7 CLI and notary-server wrote
    //! on a first publish (docs/notary-samples, GUN `example.com/acme/app`).
    use super::super::tests::{now, sample};
    use super::*;
    use chrono::TimeZone;

    const GUN: &str = "example.com/acme/app";

    /// The first publish as notary-server serves it: root 1, targets and
    /// snapshot 2 (what the CLI uploads first), timestamp 1.
    fn served() -> BTreeMap<(String, u64), Vec<u8>> {
        [
            (ROOT, 1, "root.json"),
            (TARGETS, 2, "targets.json"),
            (SNAPSHOT, 2, "snapshot.json"),
            (TIMESTAMP, 1, "timestamp.json"),
        ]
        .into_iter()
        .map(|(role, version, file)| ((role.to_string(), version), sample(file)))
        .collect()
    }

    fn edited(file: &str, from: &str, to: &str) -> Vec<u8> {
        let text = String::from_utf8(sample(file)).unwrap();
        assert!(text.contains(from), "{from} in {file}");
        text.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn a_served_repository_is_stored_as_served_roots_first_timestamp_last() {
        let plan = plan_import(GUN, &served(), now()).unwrap();
        let order: Vec<(&str, u64)> = plan
            .store
            .iter()
            .map(|(r, v, _)| (r.as_str(), *v))
            .collect();
        assert_eq!(
            order,
            [(ROOT, 1), (TARGETS, 2), (SNAPSHOT, 2), (TIMESTAMP, 1)]
        );
        assert!(plan
            .store
            .iter()
            .all(|(r, v, b)| served()[&(r.clone(), *v)] == *b));
        assert_eq!(plan.timestamp_version, 1);
        // Under another GUN the root certificate's name does not match.
        assert!(matches!(
            plan_import("example.com/acme/other", &served(), now()),
            Err(ImportRefusal::Untrusted { file, .. }) if file == "1.root.json"
        ));
    }

    #[test]
    fn a_forged_signature_or_a_changed_file_is_refused() {
        // The timestamp's signature, one character changed.
        let mut files = served();
        let text = String::from_utf8(sample("timestamp.json")).unwrap();
        let at = text.find("\"sig\":\"").unwrap() + 8;
        let mut forged = text.clone().into_bytes();
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        files.insert((TIMESTAMP.into(), 1), forged);
        let refused = plan_import(GUN, &files, now()).unwrap_err();
        assert!(
            matches!(&refused, ImportRefusal::Untrusted { file, .. } if file == "1.timestamp.json"),
            "{refused}"
        );
        // Targets changed: the snapshot's hashes no longer match.
        let mut files = served();
        files.insert(
            (TARGETS.into(), 2),
            edited("targets.json", "\"length\":6", "\"length\":7"),
        );
        assert!(matches!(
            plan_import(GUN, &files, now()),
            Err(ImportRefusal::Mismatch { file, .. }) if file == "2.targets.json"
        ));
    }

    #[test]
    fn a_changed_past_version_is_refused() {
        // Version 1 of targets "as it was": the current one relabelled,
        // which its signature does not cover.
        let mut files = served();
        files.insert(
            (TARGETS.into(), 1),
            edited("targets.json", "\"version\":2", "\"version\":1"),
        );
        let refused = plan_import(GUN, &files, now()).unwrap_err();
        assert!(
            matches!(&refused, ImportRefusal::Untrusted { file, .. } if file == "1.targets.json"),
            "{refused}"
        );
        // A version that is not the one its name says.
        let mut files = served();
        files.insert((TARGETS.into(), 1), sample("targets.json"));
        assert!(matches!(
            plan_import(GUN, &files, now()),
            Err(ImportRefusal::Misnamed { file, .. }) if file == "1.targets.json"
        ));
    }

    #[test]
    fn history_must_be_whole_and_the_current_set_unexpired() {
        let mut files = served();
        files.insert(
            (TARGETS.into(), 0),
            edited("targets.json", "\"version\":2", "\"version\":0"),
        );
        assert!(matches!(
            plan_import(GUN, &files, now()),
            Err(ImportRefusal::Gap { missing: 1, .. })
        ));
        let mut files = served();
        files.remove(&(ROOT.to_string(), 1));
        assert!(matches!(
            plan_import(GUN, &files, now()),
            Err(ImportRefusal::Missing { .. })
        ));
        let mut files = served();
        files.insert((ROOT.into(), 2), sample("root.json"));
        files.remove(&(ROOT.to_string(), 1));
        assert!(matches!(
            plan_import(GUN, &files, now()),
            Err(ImportRefusal::Misnamed { file, .. }) if file == "2.root.json"
        ));
        // The timestamp notary-server signed lives 14 days.
        let later = Utc.with_ymd_and_hms(2026, 12, 20, 0, 0, 0).unwrap();
        assert!(matches!(
            plan_import(GUN, &served(), later),
            Err(ImportRefusal::Untrusted { file, .. }) if file == "1.timestamp.json"
        ));
    }
}
