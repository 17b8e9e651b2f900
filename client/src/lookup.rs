//! Resolving a tag to a digest the consumer can prove is signed, not rolled
//! back and not frozen: a repository opened by [`crate::session`], then
//! the target search of [`crate::updater`].

use crate::bootstrap::TrustSource;
use crate::session::{OpenError, OpenOptions, Repository, Session};
use crate::trusted::TrustError;
use crate::updater::UpdateError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tagtrust_shared::{ImageReference, Metadata, Role, TopLevelRole};

/// Why a tag could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Open(#[from] OpenError),

    /// The search met a role not signed by the keys delegated to it now.
    #[error("searching the signed targets of {gun}: a role on the search path for {tag:?} is not signed by the keys delegated to it now (if its keys were replaced, its new key holder has not published yet): {source}")]
    NotSignedByDelegatedKeys {
        gun: String,
        tag: String,
        source: Box<UpdateError>,
    },

    /// The target search failed.
    #[error("searching the signed targets of {gun}: {source}")]
    Search {
        gun: String,
        source: Box<UpdateError>,
    },

    /// The search reached a delegated role that has published nothing yet
    /// (its delegate has not signed any tag): the tag is not signed.
    #[error("{reference} is not signed: tag {tag:?} is delegated to role {role:?}, which has not published any metadata yet (the signed snapshot lists none)")]
    RoleNotPublished {
        reference: String,
        tag: String,
        role: String,
    },

    /// No trusted targets role lists the tag.
    #[error("{reference} is not signed: no trusted targets metadata lists tag {tag:?}")]
    NotSigned { reference: String, tag: String },

    #[error("{reference} is signed without a sha256 hash")]
    NoDigest { reference: String },

    /// A role missing after a successful update (a bug).
    #[error("no trusted {0} after update")]
    Incomplete(TopLevelRole),
}

/// Version and expiry of one role the answer relied on.
#[derive(Debug, Clone, Serialize)]
pub struct RoleState {
    pub version: u64,
    pub expires: DateTime<Utc>,
}

impl RoleState {
    fn of<T: Role>(md: &Metadata<T>) -> RoleState {
        RoleState {
            version: md.signed.version(),
            expires: md.signed.expires(),
        }
    }
}

/// A verified answer to "what does GUN:TAG point to".
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    pub gun: String,
    pub tag: String,
    pub digest: String,
    pub size: u64,
    pub media_type: Option<String>,
    /// The targets role that signed the tag (`targets` or a delegated role).
    pub signed_by: String,
    pub trust: TrustSource,
    /// Where the metadata came from: the server, or the `[[mirror]]`
    /// location that answered (empty offline).
    pub location: String,
    pub root: RoleState,
    pub timestamp: RoleState,
    pub snapshot: RoleState,
    pub targets: RoleState,
    /// The signed target's `custom` (media type, annotations), for callers
    /// that need more of it (`pull`); not part of the printed answer.
    #[serde(skip_serializing)]
    pub custom: Option<serde_json::Value>,
}

/// Resolve `reference` (`GUN:TAG`) with every TUF check applied.
pub fn lookup(
    session: &Session,
    reference: &ImageReference,
    options: &OpenOptions,
) -> Result<(Resolution, Repository), LookupError> {
    let mut repo = session.open(&reference.gun, options)?;
    let info = match repo.updater.get_targetinfo(&reference.tag) {
        Ok(info) => info,
        // Most often a delegation whose keys were just replaced: its stored
        // metadata is signed by the old keys until the new holder publishes.
        Err(source @ UpdateError::Trust(TrustError::Signature { .. })) => {
            return Err(LookupError::NotSignedByDelegatedKeys {
                gun: reference.gun.to_string(),
                tag: reference.tag.clone(),
                source: Box::new(source),
            })
        }
        Err(UpdateError::NotPublished { role, .. }) => {
            return Err(LookupError::RoleNotPublished {
                reference: reference.to_string(),
                tag: reference.tag.clone(),
                role,
            })
        }
        Err(source) => {
            return Err(LookupError::Search {
                gun: reference.gun.to_string(),
                source: Box::new(source),
            })
        }
    };
    let Some(info) = info else {
        return Err(LookupError::NotSigned {
            reference: reference.to_string(),
            tag: reference.tag.clone(),
        });
    };
    let digest = info.target.digest().ok_or_else(|| LookupError::NoDigest {
        reference: reference.to_string(),
    })?;
    let trusted = repo.updater.trusted();
    let resolution = Resolution {
        gun: reference.gun.to_string(),
        tag: reference.tag.clone(),
        digest,
        size: info.target.length,
        media_type: Some(info.target.media_type().to_string()),
        signed_by: info.role.clone(),
        trust: repo.trust.clone(),
        location: repo.location.clone(),
        root: RoleState::of(trusted.root()),
        timestamp: RoleState::of(
            trusted
                .timestamp()
                .ok_or(LookupError::Incomplete(TopLevelRole::Timestamp))?,
        ),
        snapshot: RoleState::of(
            trusted
                .snapshot()
                .ok_or(LookupError::Incomplete(TopLevelRole::Snapshot))?,
        ),
        targets: RoleState::of(
            trusted
                .targets()
                .ok_or(LookupError::Incomplete(TopLevelRole::Targets))?,
        ),
        custom: info.target.custom.clone(),
    };
    Ok((resolution, repo))
}
