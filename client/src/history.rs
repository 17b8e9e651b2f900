//! `tagtrust history GUN:TAG`: every change of a tag, from the versions the
//! server retains of each targets role that may sign it (top-level targets
//! and the delegated roles the current delegation tree sends the tag to),
//! each verified, with the role that signed it.
//!
//! The root chain is walked forward from the anchor: the first root this
//! home trusted for the GUN (kept by [`crate::bootstrap::store_initial_root`]),
//! with the same rules as an update (each root signed by the previous one's
//! keys and its own), and must end at the root the updater just trusted.
//! Starting from the server's `1.root.json` instead would be unsound: a
//! server can forge roots 1..N-1 and add its own signature to the real root
//! N (signatures are outside what is signed).
//!
//! Each old version of a role must verify under the authority that was in
//! force for it: for top-level targets a root of that chain, for a
//! delegated role a verified version of its delegator. Authorities only move
//! forward: version N+1 of a role is never checked against an older root
//! (or delegator version) than version N verified under, so once a root has
//! removed a key, later versions signed by that key alone do not verify.
//! "Signed by" names only the keys whose signatures verified under that
//! authority; a signature entry a keyless man in the middle adds is not
//! one of them. Versions that do not verify are reported (as a notice and
//! in [`History::unverifiable`]), never shown as history.

use crate::bootstrap::earliest_anchor;
use crate::cause::{holds_cause, Cause};
use crate::fetch::FetchError;
use crate::session::{ReadError, Session};
use crate::trusted::{TrustError, TrustedMetadataSet};
use crate::updater::{encode_role, roles_for_target, UpdaterConfig};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::verify::verify_signatures;
use tagtrust_shared::{
    Error as TufError, ImageReference, Metadata, PublicKey, Root, Signature, Targets,
};

/// Why no history could be shown.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The repository could not be opened, or its current delegation tree
    /// walked.
    #[error(transparent)]
    Read(#[from] ReadError),

    #[error("no trusted targets metadata")]
    NoTargets,

    #[error("fetching {file} of {gun}: {source}")]
    Fetch {
        file: String,
        gun: String,
        source: FetchError,
    },

    /// An old version that is not targets metadata.
    #[error("{file}: {source}")]
    Invalid { file: String, source: TufError },

    /// A file whose version is not the one its name says.
    #[error("{file} has version {version}")]
    WrongVersion { file: String, version: u64 },

    #[error("anchor root: {0}")]
    Anchor(TrustError),

    #[error("the server no longer has {file} of {gun}")]
    RootMissing { file: String, gun: String },

    /// A root of the chain from the anchor does not verify.
    #[error("{file}: {source}")]
    RootRefused {
        file: String,
        source: Box<TrustError>,
    },

    #[error("the server's root history does not lead to the trusted root of {gun}")]
    RootChainDiverges { gun: String },

    /// No verified version lists the tag.
    #[error(
        "no history for {reference}: no verified version of {roles} lists tag {tag:?}{unverified}"
    )]
    NoHistory {
        reference: String,
        roles: String,
        tag: String,
        /// `; unverified: …`, or empty.
        unverified: String,
    },

    /// The anchor root is missing or unreadable ([`Cause::File`]).
    #[error(transparent)]
    Cause(Box<Cause>),
}

holds_cause!(HistoryError);

/// One change of the tag.
#[derive(Debug, Serialize, PartialEq)]
pub struct HistoryEntry {
    /// The targets role that signed the change (`targets` or a delegated
    /// role).
    pub role: String,
    /// The version of that role that made the change.
    pub version: u64,
    /// The new digest, or `None` when the tag was removed.
    pub digest: Option<String>,
    pub size: Option<u64>,
    /// When it was signed (as recorded by the signer), if known.
    pub signed_at: Option<DateTime<Utc>>,
    /// Key IDs whose signatures verified under the authority in force.
    pub signed_by: Vec<String>,
}

/// Versions of one role that could not be verified.
#[derive(Debug, Serialize, PartialEq)]
pub struct Unverifiable {
    pub role: String,
    pub versions: Vec<u64>,
}

/// The verified history of a tag.
#[derive(Debug, Serialize)]
pub struct History {
    pub gun: String,
    pub tag: String,
    /// Per role (top-level targets first, then delegated roles in search
    /// order), each change in version order.
    pub entries: Vec<HistoryEntry>,
    /// Versions left out of `entries` because they do not verify (signed
    /// before the anchor, by keys no authority in force lists, or not
    /// retained by the server).
    pub unverifiable: Vec<Unverifiable>,
}

/// One verified version of a role.
struct Verified {
    md: Metadata<Targets>,
    signed_by: Vec<String>,
}

/// Who may sign versions of a role: its keys, key IDs and threshold.
struct Authority<'a> {
    keys: &'a BTreeMap<String, PublicKey>,
    keyids: &'a [String],
    threshold: u64,
}

impl Authority<'_> {
    /// The key IDs whose signatures on `md` verify, if a threshold do.
    /// Every check goes through [`verify_signatures`] (one signature at a
    /// time for the names, then the whole set for the threshold).
    fn verify(&self, role: &str, md: &Metadata<Targets>) -> Option<Vec<String>> {
        verify_signatures(
            role,
            md.canonical_signed(),
            &md.signatures,
            self.keys,
            self.keyids,
            self.threshold,
        )
        .ok()?;
        Some(
            md.signatures
                .iter()
                .filter(|sig| {
                    verify_signatures(
                        role,
                        md.canonical_signed(),
                        std::slice::from_ref::<Signature>(sig),
                        self.keys,
                        self.keyids,
                        1,
                    )
                    .is_ok()
                })
                .map(|sig| sig.keyid.clone())
                .collect(),
        )
    }
}

/// Fetch `file` (at most `max` bytes): `None` when the server has no such file.
type FetchVersion<'a> = dyn Fn(&str, u64) -> Result<Option<Vec<u8>>, HistoryError> + 'a;

/// The verified versions, each with the index of the authority it verified
/// under, and the versions that did not verify.
type VersionsChecked = (Vec<(Verified, usize)>, Vec<u64>);

/// Verify versions `1..=latest` of `role` against `authorities` (in the
/// order they were in force), moving forward only. Returns the verified
/// versions with the index of the authority each verified under, and the
/// versions that did not.
fn verify_versions(
    role: &str,
    latest: u64,
    authorities: &[Authority<'_>],
    fetch: &FetchVersion<'_>,
) -> Result<VersionsChecked, HistoryError> {
    let max = UpdaterConfig::default().targets_max_length;
    let mut verified = Vec::new();
    let mut unverifiable = Vec::new();
    let mut floor = 0;
    for version in 1..=latest {
        let file = format!("{version}.{}.json", encode_role(role));
        let Some(bytes) = fetch(&file, max)? else {
            unverifiable.push(version);
            continue;
        };
        let md =
            Metadata::<Targets>::from_bytes(&bytes).map_err(|source| HistoryError::Invalid {
                file: file.clone(),
                source,
            })?;
        if md.signed.version != version {
            return Err(HistoryError::WrongVersion {
                file,
                version: md.signed.version,
            });
        }
        let found = authorities
            .iter()
            .enumerate()
            .skip(floor)
            .find_map(|(i, a)| a.verify(role, &md).map(|keys| (i, keys)));
        match found {
            Some((i, signed_by)) => {
                floor = i;
                verified.push((Verified { md, signed_by }, i));
            }
            None => unverifiable.push(version),
        }
    }
    Ok((verified, unverifiable))
}

/// `1-3, 5` for `[1, 2, 3, 5]`.
pub fn ranges(versions: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < versions.len() {
        let start = versions[i];
        let mut end = start;
        while i + 1 < versions.len() && versions[i + 1] == end + 1 {
            i += 1;
            end = versions[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

/// The verified history of `reference`'s tag. Old versions are read
/// through the repository's updater (its fetcher and metadata URL).
pub fn history(session: &Session, reference: &ImageReference) -> Result<History, HistoryError> {
    let gun = &reference.gun;
    let tag = &reference.tag;
    let (repo, walk) = session.open_all_roles(gun)?;
    let updater = &repo.updater;
    let trusted = updater.trusted();
    let current_root = trusted.root();
    let current_targets = trusted.targets().ok_or(HistoryError::NoTargets)?;

    let get = |file: &str, max: u64| -> Result<Option<Vec<u8>>, HistoryError> {
        match updater.fetch_metadata_file(file, max) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(FetchError::NotFound { .. }) => Ok(None),
            Err(source) => Err(HistoryError::Fetch {
                file: file.to_string(),
                gun: gun.to_string(),
                source,
            }),
        }
    };

    // The root chain, forward from the anchor, ending at the trusted root.
    let anchor = earliest_anchor(updater.metadata_dir())?;
    let mut chain = TrustedMetadataSet::new(&anchor, Utc::now()).map_err(HistoryError::Anchor)?;
    let mut roots: Vec<Root> = vec![chain.root().signed.clone()];
    for version in chain.root().signed.version + 1..=current_root.signed.version {
        let file = format!("{version}.root.json");
        let bytes = get(&file, updater.config().root_max_length)?.ok_or_else(|| {
            HistoryError::RootMissing {
                file: file.clone(),
                gun: gun.to_string(),
            }
        })?;
        chain
            .update_root(&bytes)
            .map_err(|source| HistoryError::RootRefused {
                file: file.clone(),
                source: Box::new(source),
            })?;
        roots.push(chain.root().signed.clone());
    }
    if chain.root().canonical_signed() != current_root.canonical_signed() {
        return Err(HistoryError::RootChainDiverges {
            gun: gun.to_string(),
        });
    }

    let root_authorities: Vec<Authority<'_>> = roots
        .iter()
        .filter_map(|root| {
            let keys = root.role_keys("targets").ok()?;
            Some(Authority {
                keys: &root.keys,
                keyids: &keys.keyids,
                threshold: keys.threshold,
            })
        })
        .collect();
    let mut histories: BTreeMap<String, Vec<Verified>> = BTreeMap::new();
    let mut order = vec!["targets".to_string()];
    let mut unverifiable = Vec::new();
    let (verified, bad) = verify_versions(
        "targets",
        current_targets.signed.version,
        &root_authorities,
        &get,
    )?;
    if !bad.is_empty() {
        unverifiable.push(Unverifiable {
            role: "targets".into(),
            versions: bad,
        });
    }
    histories.insert(
        "targets".into(),
        verified.into_iter().map(|(v, _)| v).collect(),
    );

    // Delegated roles the tag's search reaches now, parents first (the walk
    // is pre-order): each version verified against its delegator's
    // verified versions that delegate to it.
    for role in walk.roles.iter().filter(|r| *r != "targets") {
        let Some(parent) = walk.delegators.get(role) else {
            continue;
        };
        let sends_tag_here = trusted
            .targets_role(parent)
            .and_then(|md| md.signed.delegations.as_ref())
            .is_some_and(|d| roles_for_target(d, tag).iter().any(|(r, _)| r == role));
        let (Some(parent_history), Some(current)) =
            (histories.get(parent), trusted.targets_role(role))
        else {
            continue;
        };
        if !sends_tag_here {
            continue;
        }
        let authorities: Vec<Authority<'_>> = parent_history
            .iter()
            .filter_map(|v| {
                let d = v.md.signed.delegations.as_ref()?;
                let (keyids, threshold) = d.role_keys(role)?;
                Some(Authority {
                    keys: &d.keys,
                    keyids,
                    threshold,
                })
            })
            .collect();
        let (verified, bad) = verify_versions(role, current.signed.version, &authorities, &get)?;
        if !bad.is_empty() {
            unverifiable.push(Unverifiable {
                role: role.clone(),
                versions: bad,
            });
        }
        let verified: Vec<Verified> = verified.into_iter().map(|(v, _)| v).collect();
        // `histories` borrows nothing from `authorities` beyond this point.
        drop(authorities);
        histories.insert(role.clone(), verified);
        order.push(role.clone());
    }

    let mut entries = Vec::new();
    for role in &order {
        let mut previous: Option<(String, u64)> = None;
        for v in &histories[role] {
            let now_points =
                v.md.signed
                    .targets
                    .get(tag)
                    .and_then(|t| t.digest().map(|d| (d, t.length)));
            if now_points != previous {
                entries.push(HistoryEntry {
                    role: role.clone(),
                    version: v.md.signed.version,
                    digest: now_points.as_ref().map(|(d, _)| d.clone()),
                    size: now_points.as_ref().map(|(_, s)| *s),
                    signed_at: signed_at(&v.md.signed.extra),
                    signed_by: v.signed_by.clone(),
                });
                previous = now_points;
            }
        }
    }
    for skipped in &walk.skipped {
        session.notices.push(skipped.notice());
    }
    for u in &unverifiable {
        session.notices.push(format!(
            "{} versions {} could not be verified with the keys in force for them (signed before the first root this home trusted, by keys no longer or not yet trusted, or not retained by the server) and are left out",
            u.role,
            ranges(&u.versions)
        ));
    }
    if entries.is_empty() {
        let unverified = if unverifiable.is_empty() {
            String::new()
        } else {
            format!(
                "; unverified: {}",
                unverifiable
                    .iter()
                    .map(|u| format!("{} versions {}", u.role, ranges(&u.versions)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(HistoryError::NoHistory {
            reference: reference.to_string(),
            roles: order.join(", "),
            tag: tag.clone(),
            unverified,
        });
    }
    Ok(History {
        gun: gun.to_string(),
        tag: tag.clone(),
        entries,
        unverifiable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagtrust_shared::SigningKey;

    #[test]
    fn version_ranges() {
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[]), "");
    }

    /// Only signatures that verify are named, and a root that removed a key
    /// stays in force for later versions.
    #[test]
    fn signed_by_names_verified_keys_and_authorities_move_forward() {
        let old = SigningKey::generate();
        let new = SigningKey::generate();
        let keys: BTreeMap<String, PublicKey> = [&old, &new]
            .iter()
            .map(|k| (k.key_id(), k.public_key()))
            .collect();
        let old_ids = vec![old.key_id()];
        let new_ids = vec![new.key_id()];
        let authorities = [
            Authority {
                keys: &keys,
                keyids: &old_ids,
                threshold: 1,
            },
            Authority {
                keys: &keys,
                keyids: &new_ids,
                threshold: 1,
            },
        ];
        let expires = Utc::now() + chrono::Duration::days(1);
        let signed = |version: u64, key: &SigningKey, forged_entry: bool| {
            let mut md = Metadata::new(Targets::new(version, expires)).unwrap();
            md.sign(key);
            if forged_entry {
                // A man in the middle lists another key with a bogus signature.
                let mut extra = md.signatures[0].clone();
                extra.keyid = new.key_id();
                md.signatures.push(extra);
            }
            md.to_bytes()
        };
        // v1 old key (+ a forged entry), v2 new key, v3 old key again.
        let files: BTreeMap<String, Vec<u8>> = [
            ("1.targets.json", signed(1, &old, true)),
            ("2.targets.json", signed(2, &new, false)),
            ("3.targets.json", signed(3, &old, false)),
        ]
        .into_iter()
        .map(|(f, b)| (f.to_string(), b))
        .collect();
        let fetch = |file: &str, _max: u64| Ok(files.get(file).cloned());
        let (verified, bad) = verify_versions("targets", 4, &authorities, &fetch).unwrap();
        let got: Vec<(u64, Vec<String>, usize)> = verified
            .iter()
            .map(|(v, i)| (v.md.signed.version, v.signed_by.clone(), *i))
            .collect();
        assert_eq!(
            got,
            [(1, old_ids.clone(), 0), (2, new_ids.clone(), 1)],
            "the forged entry is not named; v3 is not checked against the older authority"
        );
        assert_eq!(bad, [3, 4]);
    }
}
