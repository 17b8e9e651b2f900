//! Hashed-bin delegations for large tag sets: the top-level targets role
//! delegates every tag to one of N bins by the hash of its name (TAP 15
//! `succinct_roles`, or the explicit `path_hash_prefixes` roles that amount
//! to the same bins, for clients such as tough that read only those), so a tag change re-signs one small bin (plus the
//! server's snapshot and timestamp) instead of one ever-growing targets
//! file, and a lookup fetches one bin.
//!
//! The bins are signed by one bin key held where the publisher chooses
//! ([`BinKeys`]): by this home (`keys/…/bins.ID.pem`, encrypted like the
//! targets key; bins live `[expiry] bins_days`), or by the server as an
//! online key (`bins.key`), in which case the server creates and signs the
//! bins and a `push:` token is what authorises a tag change
//! (`POST /v2/{gun}/_trust/tags`; SECURITY.md says what that trusts the
//! server with). Every bin exists from the start, even when empty, so a
//! consumer can tell "no such tag" from "bin missing".

use crate::publish_error::PublishError;
use crate::publisher::{Publisher, Signer};
use crate::signing::sign_targets;
use chrono::Utc;
use serde::Serialize;
use std::collections::BTreeMap;
use tagtrust_shared::bins::{claimed_before_bins, TagChanges};
use tagtrust_shared::{
    Delegations, Gun, PublicKey, SigningKey, SuccinctRoles, TargetFile, Targets,
};

pub use tagtrust_shared::bins::{BinForm, BIN_PREFIX};

/// The most bins a repository may have: each is one file of the publish
/// that enables them. The server's defaults admit 1,024 bins (`--max-parts`
/// 1,100); 16,384 need `--max-parts 16400 --max-body-bytes 33554432`
/// (16,385 files, about 10 MB; README, "Hashed bins"). More would make the
/// snapshot, which lists every bin, the largest file of a cold lookup
/// (BENCHMARKS.md, "Hashed bins").
pub const MAX_BINS: u64 = 16_384;

/// Who holds the bin key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BinKeys {
    /// This home (today's behaviour): every tag change is signed here.
    #[default]
    Local,
    /// The server, as an online key: it signs the bins, and a `push:`
    /// token changes tags.
    Server,
}

/// What `bins enable` (or `init --bins`) published.
#[derive(Debug, Serialize)]
pub struct BinsReport {
    pub gun: String,
    pub bins: u64,
    pub form: BinForm,
    pub bin_keys: BinKeys,
    pub bin_key_id: String,
    pub targets_version: u64,
    /// Tags moved from the targets role into their bins.
    pub tags_moved: usize,
}

/// The succinct delegation of `bins` bins (a power of two, 2..=16,384) to
/// `key`.
pub fn succinct_roles(bins: u64, key: &PublicKey) -> Result<SuccinctRoles, PublishError> {
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

/// The bins `targets` delegates to, in either form, as the succinct
/// delegation they amount to, with the form.
pub fn bins_of(targets: &Targets) -> Option<(SuccinctRoles, BinForm)> {
    tagtrust_shared::bins::hashed_bins(targets, MAX_BINS)
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
    key: &PublicKey,
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
    if let Some((tag, role)) = targets
        .targets
        .keys()
        .find_map(|tag| claimed_before_bins(existing, tag).map(|r| (tag.clone(), r.name.clone())))
    {
        return Err(PublishError::Refused(format!(
            "{gun}:{tag} is signed by targets but also within the paths delegated to {role}; \
             in a bin it would be looked up after {role}: move or remove it first"
        )));
    }
    let bins = bin_delegations(succinct, key, form);
    let roles = existing.roles.get_or_insert_with(Vec::new);
    roles.extend(bins.roles.unwrap_or_default());
    existing.keys.extend(bins.keys);
    Ok(())
}

/// The delegations of `succinct`'s bins to `key`, in `form`.
fn bin_delegations(succinct: &SuccinctRoles, key: &PublicKey, form: BinForm) -> Delegations {
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
        keys: BTreeMap::from([(key.key_id(), key.clone())]),
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
        bin_keys: BinKeys,
    ) -> Result<BinsReport, PublishError> {
        if bin_keys == BinKeys::Server {
            return self.enable_server_bins(gun, bins, form);
        }
        let key = tagtrust_shared::PrivateKey::from(SigningKey::generate());
        let public = key.public_key();
        let succinct = succinct_roles(bins, &public)?;
        let mut expiry = self.session.home.config()?.expiry;
        expiry.targets_days = expiry.bins_days;
        let moved = std::cell::Cell::new(0);
        let change = |targets: &mut Targets| {
            add_bins(gun, targets, &succinct, &public, form)?;
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
            bin_keys: BinKeys::Local,
            bin_key_id: key.key_id(),
            targets_version: published.version,
            tags_moved: moved.get(),
        })
    }

    /// [`Self::enable_bins`] with the server's bin key: one publish of a
    /// new targets version that holds no tags and delegates the bins to the
    /// server's `bins.key`; the server creates every bin in that same
    /// publish, holding the tags of the targets version it replaces. Then
    /// every moved tag is looked up through the bins before this reports
    /// success.
    fn enable_server_bins(
        &self,
        gun: &Gun,
        bins: u64,
        form: BinForm,
    ) -> Result<BinsReport, PublishError> {
        // Checked before the server makes a key.
        succinct_roles(bins, &SigningKey::generate().public_key())?;
        let key = self.server_client()?.bins_key(gun)?;
        let succinct = succinct_roles(bins, &key)?;
        let moved = std::cell::RefCell::new(BTreeMap::new());
        let change = |targets: &mut Targets| {
            add_bins(gun, targets, &succinct, &key, form)?;
            *moved.borrow_mut() = std::mem::take(&mut targets.targets);
            Ok(())
        };
        let published = self.change_role(gun, &Signer::Targets, &[], change)?;
        let moved = moved.into_inner();
        self.verify_tags(gun, &moved, &[])?;
        Ok(BinsReport {
            gun: gun.to_string(),
            bins,
            form,
            bin_keys: BinKeys::Server,
            bin_key_id: key.key_id(),
            targets_version: published.version,
            tags_moved: moved.len(),
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

/// What the server signed for a tag change in its bins.
#[derive(Debug, Clone)]
pub struct ServerTagChange {
    /// The new version of each bin the change touched.
    pub bins: BTreeMap<String, u64>,
}

impl Publisher {
    /// Are `repo`'s bins (as just opened) signed by the server? They are
    /// binned and this home holds none of the bin keys: only then is the
    /// server asked (it answers 409 when it does not hold them either).
    pub(crate) fn bins_held_elsewhere(&self, repo: &crate::session::Repository, gun: &Gun) -> bool {
        repo.updater
            .trusted()
            .targets()
            .and_then(|t| bins_of(&t.signed))
            .is_some_and(|(succinct, _)| {
                self.session
                    .home
                    .key_file(gun, BIN_PREFIX, &succinct.keyids)
                    .is_none()
            })
    }

    /// Have the server set and remove tags in the bins it signs for `gun`
    /// (no local key: the session's `push:` token authorises it), then
    /// verify the result as a consumer would: each set tag resolves through
    /// the normal TUF workflow to exactly the target asked for, and each
    /// removed tag no longer resolves.
    pub(crate) fn change_tags_on_server(
        &self,
        gun: &Gun,
        changes: &TagChanges,
    ) -> Result<ServerTagChange, PublishError> {
        let answer = self
            .server_client()?
            .change_tags(gun, changes)
            .map_err(|e| match e {
                crate::remote::RemoteError::Conflict(message) => PublishError::Refused(format!(
                    "{gun} is binned and this home holds none of its bin keys; the server: {message}"
                )),
                other => other.into(),
            })?;
        let removed: Vec<&str> = changes.remove.iter().map(String::as_str).collect();
        self.verify_tags(gun, &changes.set, &removed)?;
        let bins = answer["versions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(role, _)| role.starts_with(BIN_PREFIX))
            .filter_map(|(role, v)| Some((role.clone(), v.as_u64()?)))
            .collect();
        Ok(ServerTagChange { bins })
    }

    /// Open `gun` afresh and check that each tag of `set` resolves to its
    /// target and each of `removed` to nothing: what a change the server
    /// signed must look like to consumers before it is reported done.
    pub(crate) fn verify_tags(
        &self,
        gun: &Gun,
        set: &BTreeMap<String, TargetFile>,
        removed: &[&str],
    ) -> Result<(), PublishError> {
        let mut repo = self.open(gun)?;
        let mut resolve = |tag: &str| {
            repo.updater
                .get_targetinfo(tag)
                .map_err(|e| PublishError::from(crate::session::ReadError::from(e)))
        };
        for (tag, file) in set {
            match resolve(tag)? {
                Some(found) if &found.target == file => {}
                found => {
                    return Err(PublishError::Refused(format!(
                    "the server answered the change of {gun}:{tag}, but the tag now resolves to {}",
                    found.map_or("nothing".into(), |f| format!(
                        "{} (signed by {})",
                        f.target.digest().unwrap_or_default(),
                        f.role
                    ))
                )))
                }
            }
        }
        for tag in removed {
            if let Some(found) = resolve(tag)? {
                return Err(PublishError::Refused(format!(
                    "the server answered the removal of {gun}:{tag}, but it still resolves (signed by {})",
                    found.role
                )));
            }
        }
        Ok(())
    }
}
