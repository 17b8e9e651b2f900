//! Hashed-bin delegations for large tag sets: the top-level targets role
//! delegates every tag to one of N bins by the hash of its name (TAP 15
//! `succinct_roles`, or the explicit `path_hash_prefixes` roles that amount
//! to the same bins, for clients such as tough that read only those), so a tag change re-signs one small bin (plus the
//! server's snapshot and timestamp) instead of one ever-growing targets
//! file, and a lookup fetches one bin.
//!
//! The bins are signed by one bin key this home holds (`keys/…/bins.ID.pem`,
//! encrypted like the targets key) and live `[expiry] bins_days`. Every bin
//! exists from the start, even when empty, so a consumer can tell "no such
//! tag" from "bin missing".

use crate::publish_error::PublishError;
use crate::publisher::{Publisher, Signer};
use crate::signing::sign_targets;
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;
use tagtrust_shared::{Delegations, Gun, SigningKey, SuccinctRoles, Targets};

/// The role-name prefix of the bins (`bins-00` … `bins-ff`).
pub const BIN_PREFIX: &str = "bins";

/// The most bins a repository may have: each is one file of the publish
/// that enables them. The server's defaults admit 1,024 bins (`--max-parts`
/// 1,100); 16,384 need `--max-parts 16400 --max-body-bytes 33554432`
/// (16,385 files, about 10 MB; README, "Hashed bins"). More would make the
/// snapshot, which lists every bin, the largest file of a cold lookup
/// (BENCHMARKS.md, "Hashed bins").
pub const MAX_BINS: u64 = 16_384;

/// What `bins enable` (or `init --bins`) published.
#[derive(Debug, Serialize)]
pub struct BinsReport {
    pub gun: String,
    pub bins: u64,
    pub form: BinForm,
    pub bin_key_id: String,
    pub targets_version: u64,
    /// Tags moved from the targets role into their bins.
    pub tags_moved: usize,
}

/// The succinct delegation of `bins` bins (a power of two, 2..=16,384) to
/// `key`.
pub fn succinct_roles(bins: u64, key: &SigningKey) -> Result<SuccinctRoles, PublishError> {
    if !(2..=MAX_BINS).contains(&bins) || !bins.is_power_of_two() {
        return Err(PublishError::Refused(format!(
            "--bins {bins}: the number of bins must be a power of two from 2 to {MAX_BINS}"
        )));
    }
    Ok(SuccinctRoles {
        keyids: vec![key.key_id()],
        threshold: 1,
        bit_length: bins.trailing_zeros(),
        name_prefix: BIN_PREFIX.to_string(),
        extra: Default::default(),
    })
}

/// How top-level targets delegates to the bins: chosen per repository,
/// because clients differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinForm {
    /// TAP 15 `succinct_roles`: one small delegation (python-tuf, go-tuf,
    /// RSTUF and tagtrust read it).
    #[default]
    Succinct,
    /// One explicit delegated role per bin selected by
    /// `path_hash_prefixes` (spec 1.0; what tough reads).
    PathHashPrefixes,
}

/// The bins `targets` delegates to, in either form, as the succinct
/// delegation they amount to (an explicit form is recognised only when its
/// roles are exactly the bins that delegation describes), with the form.
pub fn bins_of(targets: &Targets) -> Option<(SuccinctRoles, BinForm)> {
    let delegations = targets.delegations.as_ref()?;
    if let Some(succinct) = &delegations.succinct_roles {
        return Some((succinct.clone(), BinForm::Succinct));
    }
    // Explicit bins come last, after any delegations the repository had
    // when they were enabled.
    let roles = delegations.roles();
    let first = roles
        .iter()
        .position(|r| r.name.starts_with(BIN_PREFIX) && r.is_hash_bin())?;
    let bins = &roles[first..];
    let count = bins.len() as u64;
    if !(2..=MAX_BINS).contains(&count) || !count.is_power_of_two() {
        return None;
    }
    let succinct = SuccinctRoles {
        keyids: bins[0].keyids.clone(),
        threshold: bins[0].threshold,
        bit_length: count.trailing_zeros(),
        name_prefix: BIN_PREFIX.to_string(),
        extra: Default::default(),
    };
    let matches = bins
        .iter()
        .zip(succinct.bin_names())
        .all(|(role, name)| succinct.as_delegated_role(&name).as_ref() == Some(role));
    matches.then_some((succinct, BinForm::PathHashPrefixes))
}

/// Delegate `targets`' tags to `succinct`'s bins signed by `key`, in
/// `form`. A repository that already delegates keeps its delegations,
/// searched first; the bins follow them, so only the explicit form can
/// hold both (TAP 15 succinct roles replace every delegation). Refused
/// when bins exist, or when a tag of `targets` matches an existing
/// delegation's paths: in a bin it would be searched after that
/// delegation, and might resolve differently.
fn add_bins(
    gun: &Gun,
    targets: &mut Targets,
    succinct: &SuccinctRoles,
    key: &SigningKey,
    form: BinForm,
) -> Result<(), PublishError> {
    if targets.delegations.is_none() {
        targets.delegations = Some(bin_delegations(succinct, key, form));
        return Ok(());
    }
    if bins_of(targets).is_some() {
        return Err(PublishError::Refused(format!(
            "{gun} already has hashed bins"
        )));
    }
    let existing = targets.delegations.as_mut().expect("checked above");
    if form == BinForm::Succinct {
        return Err(PublishError::Refused(format!(
            "{gun} already delegates (delegation list): succinct bins would replace those delegations; \
             use --bin-form path-hash-prefixes to keep them and add the bins after them"
        )));
    }
    let roles = existing.roles.get_or_insert_with(Vec::new);
    if let Some((tag, role)) = targets.targets.keys().find_map(|tag| {
        roles
            .iter()
            .find(|r| r.is_delegated_path(tag))
            .map(|r| (tag.clone(), r.name.clone()))
    }) {
        return Err(PublishError::Refused(format!(
            "{gun}:{tag} is signed by targets but also within the paths delegated to {role}; \
             in a bin it would be looked up after {role}: move or remove it first"
        )));
    }
    let bins = bin_delegations(succinct, key, form);
    roles.extend(bins.roles.unwrap_or_default());
    existing.keys.extend(bins.keys);
    Ok(())
}

/// The delegations of `succinct`'s bins to `key`, in `form`.
fn bin_delegations(succinct: &SuccinctRoles, key: &SigningKey, form: BinForm) -> Delegations {
    let (roles, succinct_roles) = match form {
        BinForm::Succinct => (None, Some(succinct.clone())),
        BinForm::PathHashPrefixes => (
            Some(
                succinct
                    .bin_names()
                    .filter_map(|name| succinct.as_delegated_role(&name))
                    .collect(),
            ),
            None,
        ),
    };
    Delegations {
        keys: BTreeMap::from([(key.key_id(), key.public_key())]),
        roles,
        succinct_roles,
        extra: Default::default(),
    }
}

/// Each bin with its signer and the tags it is to sign.
pub(crate) type BinSigners<'t> = BTreeMap<String, (Signer, Vec<&'t str>)>;

impl Publisher {
    /// Re-bin `gun` into `bins` hashed bins in one publish: a new targets
    /// version holding no tags and delegating to the bins, and version 1 of
    /// every bin holding the tags that hash into it. A repository that
    /// already delegates keeps its delegations, and the bins follow them
    /// (only in the path-hash-prefixes form).
    pub fn enable_bins(
        &self,
        gun: &Gun,
        bins: u64,
        form: BinForm,
    ) -> Result<BinsReport, PublishError> {
        let key = SigningKey::generate();
        let succinct = succinct_roles(bins, &key)?;
        let mut expiry = self.session.home.config()?.expiry;
        expiry.targets_days = expiry.bins_days;
        let moved = std::cell::Cell::new(0);
        let change = |targets: &mut Targets| {
            add_bins(gun, targets, &succinct, &key, form)?;
            targets.targets.clear();
            Ok(())
        };
        // Every bin, with the tags the current targets hold, as of each attempt.
        let bin_files = |repo: &crate::session::Repository| {
            let current = repo.updater.trusted().targets().map(|t| &t.signed.targets);
            let mut by_bin: BTreeMap<String, Targets> = succinct
                .bin_names()
                .map(|name| (name, Targets::new(1, Utc::now())))
                .collect();
            for (tag, file) in current.into_iter().flatten() {
                let bin = by_bin
                    .get_mut(&succinct.role_for_target(tag))
                    .expect("every bin is listed");
                bin.targets.insert(tag.clone(), file.clone());
            }
            moved.set(current.map_or(0, BTreeMap::len));
            by_bin
                .into_iter()
                .map(|(name, bin)| Ok((name, sign_targets(bin, &key, &expiry)?)))
                .collect::<Result<Vec<_>, PublishError>>()
        };
        // The key is stored first: a publish that succeeds with no key
        // left to sign its bins would lock the publisher out.
        let pass = self
            .passphrases
            .passphrase(&format!("Passphrase for the new bin key of {gun}: "))?;
        let key_file = self.session.home.save_key(gun, BIN_PREFIX, &key, &pass)?;
        let published = self
            .change_role_with(gun, &Signer::Targets, &[], change, bin_files)
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&key_file);
            })?;
        Ok(BinsReport {
            gun: gun.to_string(),
            bins,
            form,
            bin_key_id: key.key_id(),
            targets_version: published.version,
            tags_moved: moved.get(),
        })
    }

    /// The signers of `tags` in `repo` (as just opened) if it is binned,
    /// each bin with the tags it holds: the bin key this home holds signs
    /// them; `None` when it has no bins.
    pub(crate) fn bin_signers<'t>(
        &self,
        repo: &crate::session::Repository,
        gun: &Gun,
        tags: impl IntoIterator<Item = &'t str>,
    ) -> Result<Option<BinSigners<'t>>, PublishError> {
        let Some((succinct, _)) = repo
            .updater
            .trusted()
            .targets()
            .and_then(|t| bins_of(&t.signed))
        else {
            return Ok(None);
        };
        let key_file = self
            .session
            .home
            .key_file(gun, BIN_PREFIX, &succinct.keyids)
            .ok_or_else(|| {
                PublishError::Refused(format!(
                    "{gun} is binned and this home holds none of its bin keys ({})",
                    succinct.keyids.join(", ")
                ))
            })?;
        let mut by_bin: BTreeMap<String, (Signer, Vec<&str>)> = BTreeMap::new();
        for tag in tags {
            let role = succinct.role_for_target(tag);
            by_bin
                .entry(role.clone())
                .or_insert_with(|| {
                    let signer = Signer::Delegated {
                        role,
                        key_file: key_file.clone(),
                    };
                    (signer, Vec::new())
                })
                .1
                .push(tag);
        }
        Ok(Some(by_bin))
    }
}
