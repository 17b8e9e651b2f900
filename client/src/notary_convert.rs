//! Converting a verified Notary repository into spec-TUF metadata (`tagtrust
//! migrate notary`): pure, no I/O. It is handed what
//! [`tagtrust_shared::notary::verify_repository`] verified, the private keys
//! the publisher holds and the destination server's online keys, and says
//! which signed files to publish, or why it cannot.
//!
//! * Keys: the publisher's own Notary keys are reused (root and targets, in
//!   spec TUF as keytype `ecdsa`, scheme `ecdsa-sha2-nistp256`, the PEM
//!   public key; a root certificate becomes its public key), with the same
//!   thresholds: the new root is signed by the key consumers already know
//!   as this publisher's, so its root key IDs can be checked against the
//!   Notary root before pinning. Timestamp and snapshot are the server's.
//! * Delegations keep their keys, thresholds and order. A delegation whose
//!   keys the publisher holds (a threshold of them) is re-signed with its
//!   tags; one it does not hold is carried as a delegation to the same
//!   public keys with no metadata yet (its holder signs it), and what it
//!   delegated further cannot be carried (nobody here can sign that).
//! * Names: `targets/releases` is `releases`, and each further `/` is `~`
//!   (`targets/a/b` → `a~b`): spec-TUF role names in tagtrust carry no `/`,
//!   and `~` is in no Notary role name, so the mapping is one to one.
//! * Notary's path prefixes become patterns: `rel-` → `rel-*` (a tag has
//!   no `/`; a target the pattern does not cover is refused, not dropped).
//! * Targets keep their length, `sha256` and `sha512` (base64 → hex) and
//!   `custom` exactly; a target without `custom` stays without one (the
//!   default media type is implicit, as in tagtrust's own `tag set`).

use crate::home::ExpiryPolicy;
use crate::publish_error::PublishError;
use crate::signing::sign_targets_by;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tagtrust_shared::notary::{FileMeta, NotaryKey, VerifiedRepository};
use tagtrust_shared::{
    DelegatedRole, Delegations, Metadata, P256SigningKey, PublicKey, Root, TargetFile, Targets,
};

/// Why a Notary repository cannot be converted as it is.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{role} needs {threshold} signature(s); the trust directory holds {held} of its keys")]
    NotEnoughKeys {
        role: String,
        threshold: u64,
        held: usize,
    },
    #[error("{0}")]
    Unmappable(String),
    #[error("{context}: {source}")]
    Metadata {
        context: String,
        source: tagtrust_shared::Error,
    },
}

/// What the conversion made of one Notary role.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertedRole {
    /// The Notary name (`targets`, `targets/releases`).
    pub notary: String,
    /// Its spec-TUF name (`targets`, `releases`).
    pub role: String,
    /// Tags it holds in the converted repository.
    pub tags: usize,
    /// Tags Notary's role had that the converted one cannot hold (the
    /// role's keys are not here; its holder re-signs them).
    pub tags_left_to_holder: usize,
    /// Signed here with the publisher's keys (`false`: carried as a
    /// delegation only).
    pub signed: bool,
    /// Whether it is in the converted repository at all (a delegation
    /// under one not signed here is not).
    pub carried: bool,
}

/// The signed spec-TUF files and what they hold.
#[derive(Debug)]
pub struct Conversion {
    /// Root v1, first, then targets and the delegated roles signed here:
    /// one publish, in this order.
    pub files: Vec<(String, Vec<u8>)>,
    pub root_key_ids: Vec<String>,
    pub targets_key_ids: Vec<String>,
    pub roles: Vec<ConvertedRole>,
}

/// The spec-TUF name of Notary role `name`.
pub fn tuf_role_name(name: &str) -> Result<String, ConvertError> {
    if name == "targets" {
        return Ok(name.into());
    }
    let rest = name.strip_prefix("targets/").ok_or_else(|| {
        ConvertError::Unmappable(format!("{name:?} is not a Notary targets role"))
    })?;
    let mapped = rest.replace('/', "~");
    if tagtrust_shared::TopLevelRole::parse(&mapped).is_some() {
        return Err(ConvertError::Unmappable(format!(
            "Notary delegation {name} would be named {mapped}, a top-level role's name"
        )));
    }
    tagtrust_shared::pathmatch::validate_role_name(&mapped).map_err(|source| {
        ConvertError::Metadata {
            context: format!("Notary delegation {name}"),
            source,
        }
    })?;
    Ok(mapped)
}

/// The spec-TUF name of the role a key of Notary role `name` signs, as
/// the keyring stores it: `root` and `targets` (top-level roles) stay,
/// a delegation is named by [`tuf_role_name`].
pub fn tuf_key_role(name: &str) -> Result<String, ConvertError> {
    match tagtrust_shared::TopLevelRole::parse(name) {
        Some(_) => Ok(name.to_string()),
        None => tuf_role_name(name),
    }
}

/// A Notary path prefix as a spec-TUF pattern: the prefix, glob
/// characters escaped, then `*`.
pub fn tuf_path_pattern(prefix: &str) -> String {
    format!("{}*", glob::Pattern::escape(prefix))
}

/// A Notary target as spec TUF lists it.
pub fn tuf_target(name: &str, meta: &FileMeta) -> Result<TargetFile, ConvertError> {
    let mut hashes = BTreeMap::new();
    for algorithm in ["sha256", "sha512"] {
        if let Some(digest) = meta.hashes.get(algorithm) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(digest)
                .map_err(|_| {
                    ConvertError::Unmappable(format!("target {name:?}: bad {algorithm}"))
                })?;
            hashes.insert(algorithm.to_string(), hex::encode(raw));
        }
    }
    if !hashes.contains_key("sha256") {
        return Err(ConvertError::Unmappable(format!(
            "target {name:?} has no sha256 hash, so no image digest"
        )));
    }
    Ok(TargetFile {
        length: meta.length,
        hashes,
        custom: meta.custom.clone().filter(|c| !c.is_null()),
        extra: Default::default(),
    })
}

fn tuf_key(owner: &str, key: &NotaryKey) -> Result<PublicKey, ConvertError> {
    key.to_tuf_key().map_err(|source| ConvertError::Metadata {
        context: format!("a key of {owner}"),
        source,
    })
}

/// The keys of `keys` (by new key ID) among `held`, and every key's new ID.
fn converted_keys<'k>(
    owner: &str,
    ids: &[String],
    keys: &BTreeMap<String, NotaryKey>,
    held: &'k [P256SigningKey],
) -> Result<(BTreeMap<String, PublicKey>, Vec<&'k P256SigningKey>), ConvertError> {
    let mut out = BTreeMap::new();
    let mut signers = Vec::new();
    for id in ids {
        let key = tuf_key(owner, &keys[id])?;
        if let Some(signer) = held.iter().find(|h| h.public_key().same_key(&key)) {
            signers.push(signer);
        }
        out.insert(key.key_id(), key);
    }
    Ok((out, signers))
}

fn metadata_error(context: &str) -> impl Fn(tagtrust_shared::Error) -> ConvertError + '_ {
    move |source| ConvertError::Metadata {
        context: context.to_string(),
        source,
    }
}

impl From<ConvertError> for PublishError {
    fn from(e: ConvertError) -> Self {
        PublishError::Refused(e.to_string())
    }
}

/// Convert `repo` with the publisher's `held` keys, the destination's
/// online keys, and lifetimes from `expiry`, signed at `now`.
pub fn convert(
    repo: &VerifiedRepository,
    held: &[P256SigningKey],
    timestamp_key: &PublicKey,
    snapshot_key: &PublicKey,
    expiry: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<Conversion, PublishError> {
    // Root v1: the Notary root's root and targets keys and thresholds.
    let mut root = Root::new(now + Duration::days(expiry.root_days));
    let mut root_signers = Vec::new();
    let mut targets_signers = Vec::new();
    for (role, signers) in [
        ("root", &mut root_signers),
        ("targets", &mut targets_signers),
    ] {
        let notary = repo.root.role_keys(role)?;
        let (keys, held_here) = converted_keys(role, &notary.keyids, &repo.root.keys, held)?;
        if (held_here.len() as u64) < notary.threshold {
            return Err(ConvertError::NotEnoughKeys {
                role: role.into(),
                threshold: notary.threshold,
                held: held_here.len(),
            }
            .into());
        }
        for key in keys.into_values() {
            root.add_key(role, key);
        }
        root.roles.get_mut(role).expect("added above").threshold = notary.threshold;
        signers.extend(held_here);
    }
    root.add_key("timestamp", timestamp_key.clone());
    root.add_key("snapshot", snapshot_key.clone());
    tagtrust_shared::metadata::set_signed_at(&mut root.extra, now);
    let root_key_ids = root.role_keys("root")?.keyids.clone();
    let targets_key_ids = root.role_keys("targets")?.keyids.clone();
    let mut root_md = Metadata::new(root)?;
    for key in &root_signers {
        root_md.sign(*key);
    }

    // Every Notary targets role, its spec-TUF targets and who signs it;
    // `None`: not signed here.
    struct Plan<'k> {
        targets: Targets,
        signers: Vec<&'k P256SigningKey>,
        delegated: DelegatedRole,
        parent: String,
    }
    let mut top = Targets::new(1, now);
    for (name, meta) in &repo.targets.targets {
        top.targets.insert(name.clone(), tuf_target(name, meta)?);
    }
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut roles = vec![ConvertedRole {
        notary: "targets".into(),
        role: "targets".into(),
        tags: top.targets.len(),
        tags_left_to_holder: 0,
        signed: true,
        carried: true,
    }];
    for verified in &repo.delegations {
        let notary_name = &verified.delegation.name;
        let name = tuf_role_name(notary_name)?;
        let notary_tags = verified.targets.as_ref().map_or(0, |t| t.targets.len());
        let parent_signed = verified.parent == "targets"
            || plans
                .get(&verified.parent)
                .is_some_and(|p| !p.signers.is_empty());
        if !parent_signed {
            roles.push(ConvertedRole {
                notary: notary_name.clone(),
                role: name,
                tags: 0,
                tags_left_to_holder: notary_tags,
                signed: false,
                carried: false,
            });
            continue;
        }
        let (keys, signers) = converted_keys(
            notary_name,
            &verified.delegation.keyids,
            &verified.keys,
            held,
        )?;
        let delegated = DelegatedRole {
            name: name.clone(),
            keyids: keys.keys().cloned().collect(),
            threshold: verified.delegation.threshold,
            terminating: false,
            paths: Some(
                verified
                    .delegation
                    .paths
                    .iter()
                    .map(|p| tuf_path_pattern(p))
                    .collect(),
            ),
            path_hash_prefixes: None,
            extra: Default::default(),
        };
        // Listed in its parent's delegations, keys and all.
        let parent_targets = match verified.parent.as_str() {
            "targets" => &mut top,
            parent => &mut plans.get_mut(parent).expect("checked above").targets,
        };
        let delegations = parent_targets
            .delegations
            .get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                extra: Default::default(),
            });
        delegations.keys.extend(keys);
        delegations
            .roles
            .get_or_insert_with(Vec::new)
            .push(delegated.clone());

        let signed = signers.len() as u64 >= verified.delegation.threshold;
        let mut targets = Targets::new(1, now);
        if signed {
            // Each tag must be covered by this role's patterns and every
            // ancestor's, as spec-TUF clients check them.
            let mut chain = vec![&delegated];
            let mut parent = verified.parent.as_str();
            while let Some(plan) = plans.get(parent) {
                chain.push(&plan.delegated);
                parent = plan.parent.as_str();
            }
            for (tag, meta) in verified.targets.iter().flat_map(|t| &t.targets) {
                if let Some(role) = chain.iter().find(|role| !role.is_delegated_path(tag)) {
                    return Err(ConvertError::Unmappable(format!(
                        "target {tag:?} of {notary_name} is not covered by the pattern(s) {:?} of {} in spec TUF",
                        role.paths.as_deref().unwrap_or_default(),
                        role.name
                    ))
                    .into());
                }
                targets.targets.insert(tag.clone(), tuf_target(tag, meta)?);
            }
        }
        roles.push(ConvertedRole {
            notary: notary_name.clone(),
            role: name,
            tags: targets.targets.len(),
            tags_left_to_holder: if signed { 0 } else { notary_tags },
            signed,
            carried: true,
        });
        order.push(notary_name.clone());
        plans.insert(
            notary_name.clone(),
            Plan {
                targets,
                signers: if signed { signers } else { Vec::new() },
                delegated,
                parent: verified.parent.clone(),
            },
        );
    }

    let mut files = vec![("root".to_string(), root_md.to_bytes())];
    files.push((
        "targets".into(),
        sign_targets_by(top, &targets_signers, expiry)?,
    ));
    for notary_name in &order {
        let plan = plans.remove(notary_name).expect("planned above");
        if plan.signers.is_empty() {
            continue;
        }
        files.push((
            plan.delegated.name.clone(),
            sign_targets_by(plan.targets, &plan.signers, expiry)
                .map_err(|e| PublishError::Refused(format!("{notary_name}: {e}")))?,
        ));
    }
    // Parsing what was made checks it against spec TUF's schema here, not
    // at the server.
    for (role, bytes) in &files[1..] {
        Metadata::<Targets>::from_bytes(bytes).map_err(metadata_error(role))?;
    }
    Ok(Conversion {
        files,
        root_key_ids,
        targets_key_ids,
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_map_one_to_one_without_slashes() {
        assert_eq!(tuf_role_name("targets").unwrap(), "targets");
        assert_eq!(tuf_role_name("targets/releases").unwrap(), "releases");
        assert_eq!(tuf_role_name("targets/a/b").unwrap(), "a~b");
        assert_ne!(tuf_role_name("targets/a-b").unwrap(), "a~b");
        assert!(tuf_role_name("targets/root").is_err());
        assert!(tuf_role_name("snapshot").is_err());
    }

    #[test]
    fn prefixes_become_patterns() {
        assert_eq!(tuf_path_pattern(""), "*");
        assert_eq!(tuf_path_pattern("release-"), "release-*");
        assert_eq!(tuf_path_pattern("a*["), "a[*][[]*");
        assert!(tagtrust_shared::pathmatch::path_matches(
            &tuf_path_pattern("a*"),
            "a*b"
        ));
        assert!(!tagtrust_shared::pathmatch::path_matches(
            &tuf_path_pattern("a*"),
            "ab"
        ));
    }

    #[test]
    fn targets_keep_length_hashes_and_custom() {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let meta = FileMeta {
            length: 7,
            hashes: [
                ("sha256".to_string(), b64(&[1; 32])),
                ("sha512".to_string(), b64(&[2; 64])),
            ]
            .into(),
            custom: Some(serde_json::json!({"mediaType": "x", "k": [1]})),
            extra: Default::default(),
        };
        let target = tuf_target("v1", &meta).unwrap();
        assert_eq!(target.length, 7);
        assert_eq!(target.hashes["sha256"], "01".repeat(32));
        assert_eq!(target.hashes["sha512"], "02".repeat(64));
        assert_eq!(target.custom, meta.custom);
        let bare = FileMeta {
            custom: None,
            ..meta.clone()
        };
        assert_eq!(tuf_target("v1", &bare).unwrap().custom, None);
        let no_sha256 = FileMeta {
            hashes: [("sha512".to_string(), b64(&[2; 64]))].into(),
            ..meta
        };
        assert!(tuf_target("v1", &no_sha256).is_err());
    }
}
