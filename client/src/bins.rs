//! Hashed-bin delegations (TAP 15 `succinct_roles`) for large tag sets:
//! the top-level targets role delegates every tag to one of N bins by the
//! hash of its name, so a tag change re-signs one small bin (plus the
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
/// that enables them (the server's `--max-parts` admits 1,100).
pub const MAX_BINS: u64 = 1024;

/// What `bins enable` (or `init --bins`) published.
#[derive(Debug, Serialize)]
pub struct BinsReport {
    pub gun: String,
    pub bins: u64,
    pub bin_key_id: String,
    pub targets_version: u64,
    /// Tags moved from the targets role into their bins.
    pub tags_moved: usize,
}

/// The succinct delegation of `bins` bins (a power of two, 2..=1024) to
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

/// The bin of a binned repository that holds `tag`, if `targets` delegates
/// to bins.
pub fn bin_for(targets: &Targets, tag: &str) -> Option<String> {
    let succinct = targets.delegations.as_ref()?.succinct_roles.as_ref()?;
    Some(succinct.role_for_target(tag))
}

impl Publisher {
    /// Re-bin `gun` into `bins` hashed bins in one publish: a new targets
    /// version holding no tags and delegating to the bins, and version 1 of
    /// every bin holding the tags that hash into it. Refused for a
    /// repository that already delegates.
    pub fn enable_bins(&self, gun: &Gun, bins: u64) -> Result<BinsReport, PublishError> {
        let key = SigningKey::generate();
        let succinct = succinct_roles(bins, &key)?;
        let mut expiry = self.session.home.config()?.expiry;
        expiry.targets_days = expiry.bins_days;
        let moved = std::cell::Cell::new(0);
        let change = |targets: &mut Targets| {
            if targets.delegations.is_some() {
                return Err(PublishError::Refused(format!(
                    "{gun} already delegates (delegation list); bins enable needs a repository without delegations"
                )));
            }
            targets.targets.clear();
            targets.delegations = Some(Delegations {
                keys: BTreeMap::from([(key.key_id(), key.public_key())]),
                roles: None,
                succinct_roles: Some(succinct.clone()),
                extra: Default::default(),
            });
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
            bin_key_id: key.key_id(),
            targets_version: published.version,
            tags_moved: moved.get(),
        })
    }

    /// The signer of `tag` in a binned repository: its bin, with the bin
    /// key this home holds; `None` when `gun` has no bins.
    pub(crate) fn bin_signer(&self, gun: &Gun, tag: &str) -> Result<Option<Signer>, PublishError> {
        let repo = self.open(gun)?;
        let Some(targets) = repo.updater.trusted().targets() else {
            return Ok(None);
        };
        let Some(bin) = bin_for(&targets.signed, tag) else {
            return Ok(None);
        };
        let keyids = &targets
            .signed
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.as_ref())
            .map(|s| s.keyids.clone())
            .unwrap_or_default();
        let key_file = self
            .session
            .home
            .key_file(gun, BIN_PREFIX, keyids)
            .ok_or_else(|| {
                PublishError::Refused(format!(
                    "{gun} is binned and this home holds none of its bin keys ({})",
                    keyids.join(", ")
                ))
            })?;
        Ok(Some(Signer::Delegated {
            role: bin,
            key_file,
        }))
    }
}
