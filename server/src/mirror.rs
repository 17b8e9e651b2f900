//! Importing a transparent mirror's copy of an upstream repository: the
//! pure core. Given what this server holds of a GUN and the versioned files
//! offered (`N.role.json`, byte for byte as the upstream serves them), it
//! decides what to store, or refuses with an [`ImportRefusal`].
//!
//! Nothing is re-signed and no key is involved: the copy is verified the way
//! a consumer verifies an update, with the same state machine
//! ([`tagtrust_shared::trusted`]): the root chain from version 1, then the
//! newest timestamp, the snapshot it names, targets and every delegated role
//! the snapshot lists, each against its delegator, with rollback checked
//! against the newest versions already held. Past versions are checked
//! too: each names the role and version it is stored as, and is signed by
//! a threshold of that role's keys under some root of the chain (or some
//! delegation of it at hand). A version already held must come back
//! byte-identical: a changed past is refused, never stored beside.
//!
//! [`store_import`] runs it against the database and stores the plan.

use crate::dialect::declared;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_shared::metadata::Role;
use tagtrust_shared::trusted::{TrustError, TrustedMetadataSet};
use tagtrust_shared::{Metadata, Root, Targets, TopLevelRole};

/// A file's place in a repository's history: its role and version.
pub type FileKey = (String, u64);

/// What this server holds of the GUN, read under its lock.
#[derive(Debug, Default)]
pub struct Held {
    /// The server holds keys for it, or it was published here: a hosted
    /// repository, which an import must never overwrite.
    pub hosted: bool,
    /// SHA-256 of every stored version.
    pub versions: BTreeMap<FileKey, String>,
    /// The bytes verification needs: every root version and the current
    /// version of every other role.
    pub files: BTreeMap<FileKey, Vec<u8>>,
}

impl Held {
    /// What a repository holds, from every stored version's checksum and
    /// the bytes of its roots and current files (more bytes do no harm).
    pub fn new(
        hosted: bool,
        versions: impl IntoIterator<Item = (String, u64, String)>,
        files: impl IntoIterator<Item = (String, u64, Vec<u8>)>,
    ) -> Held {
        Held {
            hosted,
            versions: versions
                .into_iter()
                .map(|(role, version, sha256)| ((role, version), sha256))
                .collect(),
            files: files
                .into_iter()
                .map(|(role, version, bytes)| ((role, version), bytes))
                .collect(),
        }
    }
}

/// One offered file.
#[derive(Debug, Clone)]
pub struct Offered {
    pub role: String,
    pub version: u64,
    pub bytes: Vec<u8>,
}

/// What to store: the new files, in the order to insert them.
#[derive(Debug, Default)]
pub struct ImportPlan {
    pub store: Vec<Offered>,
    /// The timestamp version current after the import.
    pub timestamp_version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportRefusal {
    #[error("the repository is hosted on this server (it holds its keys or it was published here); a mirror import cannot replace it")]
    Hosted,
    #[error("{file} is offered twice")]
    Duplicate { file: String },
    #[error("{file} is not what its name says: {reason}")]
    Misnamed { file: String, reason: String },
    #[error(
        "{file} differs from the copy this server already holds: the upstream changed its past"
    )]
    ChangedPastVersion { file: String },
    #[error("{role} version {held} is held here but the newest offered is {offered}: the upstream rolled back")]
    RolledBack {
        role: String,
        held: u64,
        offered: u64,
    },
    #[error("{file} is needed to verify the repository but was neither offered nor held")]
    Missing { file: String },
    #[error("{file} is not part of the repository as its newest snapshot describes it")]
    Unreferenced { file: String },
    #[error("{file} is refused: {source}")]
    Untrusted {
        file: String,
        #[source]
        source: Box<TrustError>,
    },
    #[error(
        "{file} is not signed by a threshold of {role}'s keys under any version of its delegator"
    )]
    UnsignedPastVersion { file: String, role: String },
}

fn file_name(role: &str, version: u64) -> String {
    format!("{version}.{role}.json")
}

fn untrusted(role: &str, version: u64) -> impl FnOnce(TrustError) -> ImportRefusal + '_ {
    move |source| ImportRefusal::Untrusted {
        file: file_name(role, version),
        source: Box::new(source),
    }
}

/// The state of the repository after adding `offered` to `held`, verified;
/// or why not.
pub fn plan_import(
    held: &Held,
    offered: Vec<Offered>,
    now: DateTime<Utc>,
) -> Result<ImportPlan, ImportRefusal> {
    if held.hosted {
        return Err(ImportRefusal::Hosted);
    }
    if offered.is_empty() {
        return Ok(ImportPlan::default());
    }
    let mut files = held.files.clone();
    let mut new: BTreeMap<FileKey, Vec<u8>> = BTreeMap::new();
    for file in offered {
        let name = file_name(&file.role, file.version);
        let (kind, version) = declared(&file.bytes).map_err(|reason| ImportRefusal::Misnamed {
            file: name.clone(),
            reason,
        })?;
        let expected_kind = match TopLevelRole::parse(&file.role) {
            Some(role) => role.as_str(),
            None => "targets",
        };
        if kind != expected_kind || version != file.version {
            return Err(ImportRefusal::Misnamed {
                file: name,
                reason: format!("it is {kind} version {version}"),
            });
        }
        let key = (file.role, file.version);
        if let Some(sha256) = held.versions.get(&key) {
            if *sha256 != sha256_hex(&file.bytes) {
                return Err(ImportRefusal::ChangedPastVersion { file: name });
            }
            continue;
        }
        if new.contains_key(&key) {
            return Err(ImportRefusal::Duplicate { file: name });
        }
        files.insert(key.clone(), file.bytes.clone());
        new.insert(key, file.bytes);
    }
    let newest = |role: &str, among: &BTreeMap<FileKey, Vec<u8>>| {
        among
            .keys()
            .filter(|(r, _)| r == role)
            .map(|(_, v)| *v)
            .max()
    };
    let newest_held = |role: &str| {
        held.versions
            .keys()
            .filter(|(r, _)| r == role)
            .map(|(_, v)| *v)
            .max()
    };
    // Offering only older versions of a role than held is a rollback.
    for role in new.keys().map(|(r, _)| r.clone()).collect::<BTreeSet<_>>() {
        if let (Some(held), Some(offered)) = (newest_held(&role), newest(&role, &new)) {
            if offered < held && TopLevelRole::parse(&role) == Some(TopLevelRole::Timestamp) {
                return Err(ImportRefusal::RolledBack {
                    role,
                    held,
                    offered,
                });
            }
        }
    }
    let get = |role: &str, version: u64| {
        files
            .get(&(role.to_string(), version))
            .ok_or_else(|| ImportRefusal::Missing {
                file: file_name(role, version),
            })
    };

    // The root chain, from version 1.
    let root = TopLevelRole::Root.as_str();
    let last_root = newest(root, &files).ok_or_else(|| ImportRefusal::Missing {
        file: file_name(root, 1),
    })?;
    let mut set = TrustedMetadataSet::new(get(root, 1)?, now).map_err(untrusted(root, 1))?;
    let mut roots: Vec<Metadata<Root>> = vec![set.root().clone()];
    for version in 2..=last_root {
        set.update_root(get(root, version)?)
            .map_err(untrusted(root, version))?;
        roots.push(set.root().clone());
    }

    // The newest timestamp, against the newest held as rollback memory.
    let timestamp = TopLevelRole::Timestamp.as_str();
    let timestamp_version = newest(timestamp, &files).ok_or_else(|| ImportRefusal::Missing {
        file: format!("{timestamp}.json"),
    })?;
    if let Some(held_version) = newest_held(timestamp).filter(|v| *v < timestamp_version) {
        // A held file that no longer verifies (keys rotated) is no memory.
        let _ = set.load_local_timestamp(get(timestamp, held_version)?);
    }
    set.update_timestamp(get(timestamp, timestamp_version)?)
        .map_err(untrusted(timestamp, timestamp_version))?;

    // The snapshot it names.
    let snapshot = TopLevelRole::Snapshot.as_str();
    let snapshot_version = set
        .timestamp()
        .and_then(|ts| ts.signed.snapshot_meta().ok())
        .map(|meta| meta.version)
        .ok_or_else(|| ImportRefusal::Missing {
            file: format!("{snapshot}.json"),
        })?;
    if let Some(held_version) = newest_held(snapshot).filter(|v| *v < snapshot_version) {
        let _ = set.load_local_snapshot(get(snapshot, held_version)?);
    }
    set.update_snapshot(get(snapshot, snapshot_version)?, false)
        .map_err(untrusted(snapshot, snapshot_version))?;
    let listed: BTreeMap<String, u64> = set
        .snapshot()
        .map(|md| {
            md.signed
                .meta
                .iter()
                .map(|(name, meta)| (name.trim_end_matches(".json").to_string(), meta.version))
                .collect()
        })
        .unwrap_or_default();

    // Nothing newer than the state the newest timestamp describes, and no
    // role it does not list.
    for (role, version) in new.keys() {
        let current = match TopLevelRole::parse(role) {
            Some(TopLevelRole::Root) => Some(last_root),
            Some(TopLevelRole::Timestamp) => Some(timestamp_version),
            Some(TopLevelRole::Snapshot) => Some(snapshot_version),
            _ => listed.get(role).copied(),
        };
        if current.is_none_or(|current| *version > current) {
            return Err(ImportRefusal::Unreferenced {
                file: file_name(role, *version),
            });
        }
    }

    // Targets, then every listed delegated role through its delegator.
    let targets = TopLevelRole::Targets.as_str();
    let targets_version = *listed.get(targets).ok_or_else(|| ImportRefusal::Missing {
        file: format!("{targets}.json"),
    })?;
    set.update_targets(get(targets, targets_version)?)
        .map_err(untrusted(targets, targets_version))?;
    let mut queue = VecDeque::from([targets.to_string()]);
    let mut loaded = BTreeSet::from([targets.to_string()]);
    while let Some(delegator) = queue.pop_front() {
        let children: Vec<String> = set
            .targets_role(&delegator)
            .and_then(|md| md.signed.delegations.as_ref())
            .map(|d| {
                // Named roles, and the hashed bins (TAP 15) the snapshot lists.
                let bins = d
                    .succinct_roles
                    .iter()
                    .flat_map(|s| listed.keys().filter(move |role| s.is_bin(role)).cloned());
                d.roles()
                    .iter()
                    .map(|r| r.name.clone())
                    .chain(bins)
                    .collect()
            })
            .unwrap_or_default();
        for child in children {
            let Some(version) = listed.get(&child).copied() else {
                continue;
            };
            if loaded.contains(&child) {
                set.check_delegated_by(&child, &delegator)
                    .map_err(untrusted(&child, version))?;
                continue;
            }
            set.update_delegated_targets(get(&child, version)?, &child, &delegator)
                .map_err(untrusted(&child, version))?;
            loaded.insert(child.clone());
            queue.push_back(child);
        }
    }
    if let Some(orphan) = listed.keys().find(|role| !loaded.contains(*role)) {
        return Err(ImportRefusal::Unreferenced {
            file: format!("{orphan}.json (listed in snapshot, delegated by no role)"),
        });
    }

    // Past versions: signed by their role's keys at some point of the chain.
    let delegators: Vec<Metadata<Targets>> = files
        .iter()
        .filter(|((role, _), _)| {
            TopLevelRole::parse(role).is_none_or(|r| r == TopLevelRole::Targets)
        })
        .filter_map(|(_, bytes)| Metadata::<Targets>::from_bytes(bytes).ok())
        .collect();
    for ((role, version), bytes) in &new {
        let current = match TopLevelRole::parse(role) {
            Some(TopLevelRole::Root) => continue,
            Some(TopLevelRole::Timestamp) => timestamp_version,
            Some(TopLevelRole::Snapshot) => snapshot_version,
            _ => listed[role],
        };
        if *version == current {
            continue;
        }
        let signed = match TopLevelRole::parse(role) {
            Some(top) => signed_under_some_root(&roots, top, bytes),
            None => Metadata::<Targets>::from_bytes(bytes).is_ok_and(|md| {
                delegators.iter().any(|parent| {
                    parent
                        .signed
                        .delegations
                        .as_ref()
                        .is_some_and(|d| d.verify_delegate(role, &md).is_ok())
                })
            }),
        };
        if !signed {
            return Err(ImportRefusal::UnsignedPastVersion {
                file: file_name(role, *version),
                role: role.clone(),
            });
        }
    }

    // Store roots first, so that every stored file is verifiable by what
    // is stored before it; the timestamp last.
    let order = |role: &str| match TopLevelRole::parse(role) {
        Some(TopLevelRole::Root) => 0,
        Some(TopLevelRole::Timestamp) => 3,
        Some(TopLevelRole::Snapshot) => 2,
        _ => 1,
    };
    let mut store: Vec<Offered> = new
        .into_iter()
        .map(|((role, version), bytes)| Offered {
            role,
            version,
            bytes,
        })
        .collect();
    store.sort_by_key(|f| (order(&f.role), f.version));
    Ok(ImportPlan {
        store,
        timestamp_version,
    })
}

fn signed_under_some_root(roots: &[Metadata<Root>], role: TopLevelRole, bytes: &[u8]) -> bool {
    fn verify<T: Role>(roots: &[Metadata<Root>], role: &str, bytes: &[u8]) -> bool {
        Metadata::<T>::from_bytes(bytes).is_ok_and(|md| {
            roots
                .iter()
                .any(|root| root.signed.verify_role(role, &md).is_ok())
        })
    }
    use tagtrust_shared::{Snapshot, Timestamp};
    match role {
        TopLevelRole::Timestamp => verify::<Timestamp>(roots, role.as_str(), bytes),
        TopLevelRole::Snapshot => verify::<Snapshot>(roots, role.as_str(), bytes),
        TopLevelRole::Targets => verify::<Targets>(roots, role.as_str(), bytes),
        TopLevelRole::Root => verify::<Root>(roots, role.as_str(), bytes),
    }
}

mod store;
pub use store::{store_import, StoreError};

#[cfg(test)]
mod tests;
