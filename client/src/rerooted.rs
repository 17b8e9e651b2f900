//! Re-rooted mirrors (`tagtrust mirror import --as`): the mirror operator's
//! own repository (root, targets, the mirror server's snapshot and
//! timestamp) whose top-level targets delegates to the upstream publisher's
//! targets keys, with the upstream's signed targets metadata stored
//! verbatim as that delegated role. TUF targets metadata does not name its
//! role, so the upstream's signatures stay valid: a consumer of the mirror
//! sees a tag signed by the upstream publisher, delegated by the operator.
//!
//! The upstream is verified first, as any consumer verifies it (its root
//! chain and freshness, from the root the operator pinned). Its delegated
//! roles come along under their own names, delegated by the upstream's
//! targets as upstream. The operator decides when to import (nothing moves
//! by itself); the delegation's keys follow the upstream's root, so a
//! rotated upstream targets key is followed by the next import.

use crate::publish_error::PublishError;
use crate::publisher::{set_delegation, NewDelegation, Publisher, Signer};
use crate::session::{OpenOptions, ReadError, Repository, Session};
use crate::updater::role_file_name;
use serde::Serialize;
use tagtrust_shared::{Gun, Metadata, Targets, TopLevelRole};

/// Why an import was not done.
#[derive(Debug, thiserror::Error)]
pub enum RerootError {
    /// The upstream could not be read or did not verify.
    #[error("the upstream {gun}: {source}")]
    Upstream {
        gun: String,
        #[source]
        source: Box<ReadError>,
    },

    #[error(transparent)]
    Publish(#[from] PublishError),

    /// The verified upstream's metadata as stored cannot be used.
    #[error("the upstream's {role}: {reason}")]
    Invalid { role: String, reason: String },

    /// An upstream role name the operator's own repository already uses.
    #[error("the upstream role {name:?} would collide with the mirror's own delegation of that name; import with another --role or rename it")]
    Collision { name: String },
}

/// What to delegate to the upstream.
#[derive(Debug, Clone)]
pub struct RerootOptions {
    /// The delegated role the upstream's targets is stored as.
    pub role: String,
    /// The tag patterns it may sign (`*`: all).
    pub paths: Vec<String>,
}

/// What one import did.
#[derive(Debug, Serialize)]
pub struct RerootReport {
    pub gun: String,
    pub upstream_gun: String,
    pub role: String,
    /// The upstream's top-level targets version now delegated.
    pub upstream_targets_version: u64,
    /// The upstream roles newly stored (role names).
    pub imported: Vec<String>,
    /// The mirror's new top-level targets version (None: already up to date,
    /// nothing published).
    pub targets_version: Option<u64>,
}

/// One upstream targets role as verified: its name in the mirror and its
/// exact bytes.
struct UpstreamRole {
    name: String,
    version: u64,
    bytes: Vec<u8>,
}

/// Import `upstream_gun` (read through `upstream`, verified with `open`) into
/// the operator's repository `gun` (its top-level targets key held by
/// `publisher`'s home).
pub fn import(
    publisher: &Publisher,
    gun: &Gun,
    upstream: &Session,
    upstream_gun: &Gun,
    open: &OpenOptions,
    options: &RerootOptions,
) -> Result<RerootReport, RerootError> {
    let upstream_error = |source: ReadError| RerootError::Upstream {
        gun: upstream_gun.to_string(),
        source: Box::new(source),
    };
    let mut repo = upstream.open(upstream_gun, open).map_err(upstream_error)?;
    let walk = repo
        .updater
        .load_all_roles()
        .map_err(|e| upstream_error(e.into()))?;
    let (delegation, roles) = upstream_roles(&repo, &walk.roles, options)?;
    if roles.iter().skip(1).any(|r| r.name == options.role) {
        return Err(RerootError::Collision {
            name: options.role.clone(),
        });
    }
    let upstream_targets_version = roles[0].version;

    // What the mirror lacks, given its repository as it is now.
    let newer = |mirror: &Repository| -> Result<Vec<(String, Vec<u8>)>, PublishError> {
        let trusted = mirror.updater.trusted();
        let own: Vec<String> = trusted
            .targets()
            .and_then(|t| t.signed.delegations.as_ref())
            .map(|d| d.roles().iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default();
        let meta = trusted.snapshot().map(|s| &s.signed.meta);
        let mut files = Vec::new();
        for role in &roles {
            if role.name != options.role && own.contains(&role.name) {
                return Err(PublishError::Refused(format!(
                    "the upstream role {:?} collides with the mirror's own delegation of that name",
                    role.name
                )));
            }
            let held = meta
                .and_then(|m| m.get(&format!("{}.json", role.name)))
                .map_or(0, |m| m.version);
            if role.version < held {
                return Err(PublishError::Refused(format!(
                    "the upstream's {} is version {}, older than the {held} the mirror holds: the upstream rolled back",
                    role.name, role.version
                )));
            }
            if role.version > held {
                files.push((role.name.clone(), role.bytes.clone()));
            }
        }
        Ok(files)
    };
    let current = publisher.open(gun)?;
    let delegated_now = current
        .updater
        .trusted()
        .targets()
        .and_then(|t| t.signed.delegations.as_ref())
        .and_then(|d| d.roles().iter().find(|r| r.name == options.role).cloned());
    let unchanged = delegated_now.is_some_and(|r| {
        let mut ids: Vec<String> = delegation.keys.iter().map(|k| k.key_id()).collect();
        ids.sort();
        let mut have = r.keyids.clone();
        have.sort();
        have == ids
            && r.threshold == delegation.threshold
            && r.paths.as_deref() == Some(delegation.paths.as_slice())
    });
    if unchanged && newer(&current)?.is_empty() {
        return Ok(RerootReport {
            gun: gun.to_string(),
            upstream_gun: upstream_gun.to_string(),
            role: options.role.clone(),
            upstream_targets_version,
            imported: Vec::new(),
            targets_version: None,
        });
    }
    let imported = std::cell::RefCell::new(Vec::new());
    let published = publisher.change_role_with(
        gun,
        &Signer::Targets,
        &[],
        |targets| set_delegation(targets, &delegation).map(|_| ()),
        |mirror| {
            let files = newer(mirror)?;
            *imported.borrow_mut() = files.iter().map(|(name, _)| name.clone()).collect();
            Ok(files)
        },
    )?;
    Ok(RerootReport {
        gun: gun.to_string(),
        upstream_gun: upstream_gun.to_string(),
        role: options.role.clone(),
        upstream_targets_version,
        imported: imported.into_inner(),
        targets_version: Some(published.version),
    })
}

/// The delegation to the upstream (its root's targets keys and threshold)
/// and every upstream targets role the walk verified, top-level targets
/// first (renamed `options.role`), with the exact bytes the updater stored.
fn upstream_roles(
    repo: &Repository,
    walked: &[String],
    options: &RerootOptions,
) -> Result<(NewDelegation, Vec<UpstreamRole>), RerootError> {
    let invalid = |role: &str, reason: String| RerootError::Invalid {
        role: role.to_string(),
        reason,
    };
    let trusted = repo.updater.trusted();
    let root = &trusted.root().signed;
    let targets_keys = root
        .role_keys(TopLevelRole::Targets.as_str())
        .map_err(|e| invalid("root", e.to_string()))?;
    let keys = targets_keys
        .keyids
        .iter()
        .filter_map(|id| root.keys.get(id).cloned())
        .collect();
    let delegation = NewDelegation {
        name: options.role.clone(),
        keys,
        paths: options.paths.clone(),
        threshold: targets_keys.threshold,
        terminating: false,
    };
    let mut roles = Vec::new();
    for name in walked {
        let file = repo.updater.metadata_dir().join(role_file_name(name));
        let bytes = crate::atomic_file::read(&file).map_err(|e| invalid(name, e.to_string()))?;
        let version = Metadata::<Targets>::from_bytes(&bytes)
            .map_err(|e| invalid(name, e.to_string()))?
            .signed
            .version;
        let stored_as = if name == TopLevelRole::Targets.as_str() {
            options.role.clone()
        } else {
            name.clone()
        };
        roles.push(UpstreamRole {
            name: stored_as,
            version,
            bytes,
        });
    }
    Ok((delegation, roles))
}
