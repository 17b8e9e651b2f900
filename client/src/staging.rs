//! Root changes waiting for more signatures (multi-party root).
//!
//! Every root change (root v1 at `init`, `refresh --role root`, `key
//! rotate`, `root add-key` / `remove-key` / `set-threshold`) is signed by
//! every root key this home holds among the old and the new root's. When
//! that meets both thresholds (TUF 5.3.4: a threshold of the old root's
//! root keys; 5.3.5: a threshold of the new root's own), it is published at
//! once. Otherwise the change is staged: one file (`staged-root.json` under
//! `staged/<server>/<gun>/`, or any copy of it) holding the new root, the
//! root it replaces and the role files that go out with it. Each holder
//! adds a signature (`root sign`, which needs only the file and a key, no
//! server), copies are merged (`root import`), and `root publish` uploads
//! everything once both thresholds are met. Every step says how many
//! signatures are still needed, of which root and by which keys.

use crate::atomic_file::{read_optional, write_file_atomically};
use crate::bootstrap::store_initial_root;
use crate::home::{load_key_file, Home};
use crate::passphrase::PassphraseSource;
use crate::publish_error::{During, PublishError, StagedFileError};
use crate::publisher::Publisher;
use crate::session::Repository;
use crate::signing::sign_targets;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tagtrust_shared::succession::{verify_root, KeyTally};
use tagtrust_shared::{Gun, Metadata, PrivateKey, Root, Targets};

/// File name of a staged root change in its staging directory.
pub const STAGED_FILE: &str = "staged-root.json";

/// Where one staged root change is kept: the home's staging area of a GUN
/// on a server, or a copy of that file handed between holders.
pub struct Staging {
    path: PathBuf,
}

/// A root change waiting for signatures: one file, shippable between
/// holders. Metadata is kept as JSON (readable by the holders); signatures
/// cover its canonical form, so the layout of the file does not matter.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StagedChange {
    pub gun: String,
    /// What the change does, in words.
    pub change: String,
    /// The root it replaces, as the home that staged it verified it (absent
    /// for root v1).
    pub previous_root: Option<serde_json::Value>,
    /// The new root, with the signatures collected so far.
    pub root: serde_json::Value,
    /// Targets-type role files published with the root (e.g. targets
    /// re-signed by a new targets key).
    #[serde(default)]
    pub files: BTreeMap<String, serde_json::Value>,
}

/// The signatures a new root has from the root keys of one root (the old
/// or the new).
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    /// The version of the root whose root keys these are.
    pub root_version: u64,
    /// Its root keys whose signatures on the new root verify.
    pub signed_by: Vec<String>,
    pub threshold: u64,
    /// Signatures still needed from its root keys.
    pub needed: u64,
    /// Its root keys that have not signed (any `needed` of them will do).
    pub unsigned: Vec<String>,
}

/// Where a root change stands.
#[derive(Debug, Clone, Serialize)]
pub struct RootSigning {
    pub gun: String,
    /// Version of the new root.
    pub version: u64,
    /// What the change does.
    pub change: String,
    /// What differs from the root it replaces.
    pub differences: Vec<String>,
    /// The new root's own root keys (TUF 5.3.5).
    pub new_root: Tally,
    /// The replaced root's root keys (TUF 5.3.4; absent for root v1).
    pub old_root: Option<Tally>,
    /// The fewest further signatures that meet both thresholds (a key in
    /// both roots counts for both); 0: ready to publish, or published.
    pub needed: u64,
    pub published: bool,
    /// The staged file, while the change waits for signatures.
    pub staged_file: Option<PathBuf>,
    /// Whether this home checked the replaced root against the one it
    /// trusts (`root sign` and `status` work offline from the file; `root
    /// publish` always checks against the server's current root).
    pub previous_root_checked: bool,
}

impl RootSigning {
    /// What is still missing, in words ("" when nothing is).
    pub fn missing(&self) -> String {
        let mut parts = Vec::new();
        for (which, tally) in [
            ("old", self.old_root.as_ref()),
            ("new", Some(&self.new_root)),
        ] {
            if let Some(t) = tally.filter(|t| t.needed > 0) {
                parts.push(format!(
                    "{} more from the {which} root v{}'s keys ({} of {} signed; not yet signed: {})",
                    t.needed,
                    t.root_version,
                    t.signed_by.len(),
                    t.threshold,
                    t.unsigned.join(", ")
                ));
            }
        }
        if parts.is_empty() {
            return String::new();
        }
        format!(
            "{} more signature{} needed: {}",
            self.needed,
            if self.needed == 1 { "" } else { "s" },
            parts.join("; ")
        )
    }
}

impl Staging {
    /// The home's staging area of `gun` on `server`.
    pub fn new(home: &Home, server: &str, gun: &Gun) -> Staging {
        Staging {
            path: home.staging_dir(server, gun).join(STAGED_FILE),
        }
    }

    /// A staged-root file anywhere (one handed over by another holder).
    pub fn at(path: impl Into<PathBuf>) -> Staging {
        Staging { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn load(&self) -> Result<StagedChange, StagedFileError> {
        let bytes = std::fs::read(&self.path).map_err(|source| StagedFileError::Missing {
            path: self.path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StagedFileError::NotStaged {
            path: self.path.clone(),
            source,
        })
    }

    /// Load and check it is a change of `gun`.
    fn load_for(&self, gun: &Gun) -> Result<StagedChange, PublishError> {
        let staged = self.load()?;
        if staged.gun != gun.as_str() {
            return Err(PublishError::Refused(format!(
                "{} is a staged root change of {}, not of {gun}",
                self.path.display(),
                staged.gun
            )));
        }
        Ok(staged)
    }

    pub fn save(&self, staged: &StagedChange) -> Result<(), StagedFileError> {
        let mut bytes =
            serde_json::to_vec_pretty(staged).map_err(|source| StagedFileError::NotStaged {
                path: self.path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        Ok(write_file_atomically(&self.path, &bytes)?)
    }

    pub fn clear(&self) -> Result<(), StagedFileError> {
        Ok(crate::atomic_file::remove_if_present(&self.path)?)
    }
}

/// Metadata as the JSON value a staged file holds (always possible: it
/// came from JSON).
fn to_value<T: tagtrust_shared::Role>(md: &Metadata<T>) -> serde_json::Value {
    serde_json::from_slice(&md.to_bytes()).expect("metadata bytes are JSON")
}

fn from_value<T: tagtrust_shared::Role>(
    value: &serde_json::Value,
    what: &str,
) -> Result<Metadata<T>, StagedFileError> {
    let bytes = serde_json::to_vec(value).expect("a JSON value serialises");
    Metadata::from_bytes(&bytes).map_err(|source| StagedFileError::Metadata {
        what: what.to_string(),
        source,
    })
}

impl StagedChange {
    pub fn new_root(&self) -> Result<Metadata<Root>, StagedFileError> {
        from_value(&self.root, "the staged root")
    }

    pub fn previous(&self) -> Result<Option<Metadata<Root>>, StagedFileError> {
        self.previous_root
            .as_ref()
            .map(|v| from_value(v, "the staged change's previous root"))
            .transpose()
    }

    fn set_root(&mut self, root: &Metadata<Root>) {
        self.root = to_value(root);
    }

    /// The files to upload: root first, then the others.
    fn upload_files(&self) -> Result<Vec<(String, Vec<u8>)>, StagedFileError> {
        let mut files = vec![("root".to_string(), self.new_root()?.to_bytes())];
        for (role, value) in &self.files {
            let md: Metadata<Targets> = from_value(value, &format!("the staged {role}"))?;
            files.push((role.clone(), md.to_bytes()));
        }
        Ok(files)
    }
}

impl From<KeyTally> for Tally {
    fn from(t: KeyTally) -> Tally {
        Tally {
            root_version: t.root_version,
            threshold: t.threshold,
            needed: t.needed(),
            signed_by: t.signed,
            unsigned: t.unsigned,
        }
    }
}

/// The fewest further signers that meet both tallies: a key unsigned in
/// both roots counts for both.
fn fewest_needed(new: &Tally, old: Option<&Tally>) -> u64 {
    let Some(old) = old else {
        return new.needed;
    };
    let shared = new
        .unsigned
        .iter()
        .filter(|id| old.unsigned.contains(id))
        .count() as u64;
    (0..=shared.min(new.needed.max(old.needed)))
        .map(|both| both + old.needed.saturating_sub(both) + new.needed.saturating_sub(both))
        .min()
        .unwrap_or(new.needed + old.needed)
}

/// What `new` changes compared with `old`, one line per role.
fn differences(old: Option<&Root>, new: &Root) -> Vec<String> {
    let Some(old) = old else {
        return new
            .roles
            .iter()
            .map(|(role, keys)| {
                format!(
                    "{role}: keys {} threshold {}",
                    keys.keyids.join(","),
                    keys.threshold
                )
            })
            .collect();
    };
    let mut lines = Vec::new();
    let roles: BTreeSet<&String> = old.roles.keys().chain(new.roles.keys()).collect();
    for role in roles {
        let (before, after) = (old.roles.get(role), new.roles.get(role));
        let ids = |k: Option<&tagtrust_shared::RoleKeys>| -> BTreeSet<String> {
            k.map(|k| k.keyids.iter().cloned().collect())
                .unwrap_or_default()
        };
        let (b, a) = (ids(before), ids(after));
        for id in a.difference(&b) {
            lines.push(format!("{role}: adds key {id}"));
        }
        for id in b.difference(&a) {
            lines.push(format!("{role}: removes key {id}"));
        }
        let (tb, ta) = (
            before.map(|k| k.threshold).unwrap_or(0),
            after.map(|k| k.threshold).unwrap_or(0),
        );
        if tb != ta {
            lines.push(format!("{role}: threshold {tb} -> {ta}"));
        }
    }
    if old.expires != new.expires {
        lines.push(format!(
            "expires {} -> {}",
            old.expires.format("%Y-%m-%d"),
            new.expires.format("%Y-%m-%d")
        ));
    }
    lines
}

/// The standing of `new`, replacing `previous` (root v1: none).
fn standing(
    gun: &str,
    change: &str,
    previous: Option<&Metadata<Root>>,
    new: &Metadata<Root>,
) -> Result<RootSigning, PublishError> {
    // The one successor rule (shared with the client's update and the
    // server's publish): which keys of each root signed, which are missing.
    let verification = verify_root(previous.map(|p| &p.signed), new)?;
    let new_root = Tally::from(verification.own);
    let old_root = verification.previous.map(Tally::from);
    Ok(RootSigning {
        gun: gun.to_string(),
        version: new.signed.version,
        change: change.to_string(),
        differences: differences(previous.map(|p| &p.signed), &new.signed),
        needed: fewest_needed(&new_root, old_root.as_ref()),
        new_root,
        old_root,
        published: false,
        staged_file: None,
        previous_root_checked: false,
    })
}

/// The root a staged change replaces must be the one `trusted` is (same
/// version, same content), else the change was made for another root.
fn check_previous(staged: &StagedChange, trusted: &Metadata<Root>) -> Result<(), PublishError> {
    let previous = staged.previous()?;
    let Some(made_for) = previous.as_ref().map(|p| p.signed.version) else {
        return Err(PublishError::Refused(format!("the staged root v1 of {} creates the repository, but root v{} of it is already trusted; \
             drop the staged change (tagtrust root discard {})",
            staged.gun,
            trusted.signed.version,
            staged.gun)));
    };
    if made_for != trusted.signed.version
        || previous.map(|p| p.canonical_signed().to_vec())
            != Some(trusted.canonical_signed().to_vec())
    {
        return Err(PublishError::Refused(format!("the staged root v{} of {} was made to replace root v{made_for}, but the trusted root is v{} {}; stage the change again",
            made_for + 1,
            staged.gun,
            trusted.signed.version,
            if made_for == trusted.signed.version { "with other content" } else { "" })));
    }
    Ok(())
}

/// The root this home trusts for `gun` on `server`, if any (read from the
/// trusted metadata directory; nothing is fetched).
fn locally_trusted_root(
    home: &Home,
    server: &str,
    gun: &Gun,
) -> Result<Option<Metadata<Root>>, StagedFileError> {
    let path = home.metadata_dir(server, gun).join("root.json");
    read_optional(&path)?
        .map(|bytes| {
            Metadata::from_bytes(&bytes).map_err(|source| StagedFileError::Metadata {
                what: format!("reading {}", path.display()),
                source,
            })
        })
        .transpose()
}

/// Check the root `staged` replaces against the root this home trusts for
/// its GUN on `server`, when it trusts that version or a newer one (then
/// the change is stale). Returns whether it could check.
fn check_against_local(
    home: &Home,
    server: &str,
    gun: &Gun,
    staged: &StagedChange,
) -> Result<bool, PublishError> {
    let made_for = staged.previous()?.map_or(0, |p| p.signed.version);
    match locally_trusted_root(home, server, gun)? {
        Some(root) if root.signed.version >= made_for => {
            check_previous(staged, &root)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Where the staged change in `staging` stands. With `trusted` (the home's
/// server and GUN), the replaced root is checked against the root this home
/// trusts when it has that version.
pub fn staged_standing(
    staging: &Staging,
    gun: &Gun,
    trusted: Option<(&Home, &str)>,
) -> Result<RootSigning, PublishError> {
    let staged = staging.load_for(gun)?;
    let checked = match trusted {
        Some((home, server)) => check_against_local(home, server, gun, &staged)?,
        None => false,
    };
    let previous = staged.previous()?;
    let mut report = standing(
        &staged.gun,
        &staged.change,
        previous.as_ref(),
        &staged.new_root()?,
    )?;
    report.staged_file = Some(staging.path().to_path_buf());
    report.previous_root_checked = checked;
    Ok(report)
}

/// Add the signature of `key_file` (a root key of the old or the new root)
/// to the staged change in `staging`. Works offline: only the file and the
/// key are needed; `passphrases` opens the key.
pub fn sign_staged(
    staging: &Staging,
    gun: &Gun,
    key_file: &Path,
    trusted: Option<(&Home, &str)>,
    passphrases: &dyn PassphraseSource,
) -> Result<RootSigning, PublishError> {
    // Refuse a change this home knows to be stale before asking for a
    // passphrase.
    staged_standing(staging, gun, trusted)?;
    let mut staged = staging.load_for(gun)?;
    let pass = passphrases.passphrase(&format!("Passphrase for {}: ", key_file.display()))?;
    let key = load_key_file(key_file, &pass)?;
    let mut root = staged.new_root()?;
    let previous = staged.previous()?;
    let id = key.key_id();
    let listed = |r: &Root| {
        r.role_keys("root")
            .map(|k| k.keyids.contains(&id))
            .unwrap_or(false)
    };
    if !listed(&root.signed) && !previous.as_ref().is_some_and(|p| listed(&p.signed)) {
        return Err(PublishError::Refused(format!("key {id} is not a root key of the staged root v{} of {gun} nor of the root it replaces",
            root.signed.version)));
    }
    root.sign(&key);
    staged.set_root(&root);
    staging.save(&staged)?;
    staged_standing(staging, gun, trusted)
}

/// Signatures of `from` that `into` lacks (by key ID), added to `into`.
fn merge_signatures(into: &mut Metadata<Root>, from: &Metadata<Root>) {
    for sig in &from.signatures {
        if !into.signatures.iter().any(|s| s.keyid == sig.keyid) {
            into.signatures.push(sig.clone());
        }
    }
}

impl Publisher {
    pub fn staging(&self, gun: &Gun) -> Staging {
        Staging::new(&self.session.home, &self.session.server, gun)
    }

    /// The file `staged` if given, else the home's staging area of `gun`.
    fn staging_or(&self, gun: &Gun, staged: Option<&Path>) -> Staging {
        staged.map(Staging::at).unwrap_or_else(|| self.staging(gun))
    }

    /// What a staged change is checked against: this home's trust in the
    /// session's server.
    fn trusted_here(&self) -> Option<(&Home, &str)> {
        Some((&self.session.home, &self.session.server))
    }

    /// Refuse to start a root change while another is staged.
    pub(crate) fn refuse_if_staged(&self, gun: &Gun) -> Result<(), PublishError> {
        let staging = self.staging(gun);
        if staging.exists() {
            let staged = staging.load()?;
            return Err(PublishError::Refused(format!(
                "a root change of {gun} is already staged ({}, in {}); sign and publish it \
                 (tagtrust root sign / root publish) or drop it (tagtrust root discard {gun})",
                staged.change,
                staging.path().display()
            )));
        }
        Ok(())
    }

    /// The root keys among `keyids` whose private keys this home holds.
    pub(crate) fn held_root_keys<'a>(
        &self,
        gun: &Gun,
        keyids: impl IntoIterator<Item = &'a String>,
    ) -> Vec<&'a String> {
        keyids
            .into_iter()
            .filter(|id| {
                self.session
                    .home
                    .has_key(gun, "root", std::slice::from_ref(*id))
            })
            .collect()
    }

    /// The root keys this home holds among `keyids`, loaded (one passphrase
    /// prompt, none when it holds none).
    fn local_root_keys(
        &self,
        gun: &Gun,
        keyids: &BTreeSet<String>,
    ) -> Result<Vec<PrivateKey>, PublishError> {
        let held = self.held_root_keys(gun, keyids);
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let pass = self
            .passphrases
            .passphrase(&format!("Passphrase for the root keys of {gun}: "))?;
        Ok(held
            .into_iter()
            .map(|id| {
                self.session
                    .home
                    .load_key(gun, "root", std::slice::from_ref(id), &pass)
            })
            .collect::<Result<_, _>>()?)
    }

    /// Sign `next` (the new root, already versioned and dated) with every
    /// root key this home holds of `previous` and of `next` (and with
    /// `extra`, keys not yet saved), then publish it with `files` when that
    /// meets both thresholds, or stage it for the other holders.
    pub(crate) fn publish_or_stage_root(
        &self,
        gun: &Gun,
        previous: Option<&Metadata<Root>>,
        next: Root,
        extra: &[&PrivateKey],
        files: Vec<(String, Vec<u8>)>,
        change: &str,
    ) -> Result<RootSigning, PublishError> {
        let staging = self.staging(gun);
        let mut ids: BTreeSet<String> = next.role_keys("root")?.keyids.iter().cloned().collect();
        if let Some(p) = previous {
            ids.extend(p.signed.role_keys("root")?.keyids.iter().cloned());
        }
        let local = self.local_root_keys(gun, &ids)?;
        let mut root = Metadata::new(next)?;
        for key in local.iter().chain(extra.iter().copied()) {
            root.sign(key);
        }
        let mut report = standing(gun.as_str(), change, previous, &root)?;
        report.previous_root_checked = true;
        if report.needed == 0 {
            let mut upload = vec![("root".to_string(), root.to_bytes())];
            upload.extend(files);
            self.server_client()?
                .publish(gun, &upload)
                .during(|| format!("publishing root v{} of {gun} ({change})", report.version))?;
            if previous.is_none() {
                let dir = self.session.home.metadata_dir(&self.session.server, gun);
                store_initial_root(&dir, &upload[0].1, 1)?;
            }
            report.published = true;
            return Ok(report);
        }
        let staged = StagedChange {
            gun: gun.to_string(),
            change: change.to_string(),
            previous_root: previous.map(to_value),
            root: to_value(&root),
            files: files
                .iter()
                .map(|(role, bytes)| {
                    let md: Metadata<Targets> = Metadata::from_bytes(bytes)?;
                    Ok((role.clone(), to_value(&md)))
                })
                .collect::<Result<_, PublishError>>()?,
        };
        staging.save(&staged)?;
        report.staged_file = Some(staging.path().to_path_buf());
        Ok(report)
    }

    /// Where the staged change (the home's, or the file `staged`) stands.
    pub fn root_status(
        &self,
        gun: &Gun,
        staged: Option<&Path>,
    ) -> Result<RootSigning, PublishError> {
        let staging = self.staging_or(gun, staged);
        staged_standing(&staging, gun, self.trusted_here())
    }

    /// Add the signature of the root key in `key_file` to the staged root
    /// (the home's, or the file `staged`).
    pub fn root_sign(
        &self,
        gun: &Gun,
        key_file: &Path,
        staged: Option<&Path>,
    ) -> Result<RootSigning, PublishError> {
        let staging = self.staging_or(gun, staged);
        sign_staged(
            &staging,
            gun,
            key_file,
            self.trusted_here(),
            self.passphrases.as_ref(),
        )
    }

    /// Bring a staged-root file (from another holder) into this home's
    /// staging area, merging its signatures into the change staged here
    /// if it is the same change.
    pub fn root_import(&self, file: &Path) -> Result<RootSigning, PublishError> {
        let incoming = Staging::at(file).load()?;
        let gun = Gun::parse(&incoming.gun)?;
        let staging = self.staging(&gun);
        let merged = if staging.exists() {
            let mut here = staging.load_for(&gun)?;
            let mut root = here.new_root()?;
            let theirs = incoming.new_root()?;
            if root.canonical_signed() != theirs.canonical_signed() {
                return Err(PublishError::Refused(format!(
                    "{} holds another change of {gun} than the one staged here ({}); \
                     drop one (tagtrust root discard {gun})",
                    file.display(),
                    here.change
                )));
            }
            merge_signatures(&mut root, &theirs);
            here.set_root(&root);
            here
        } else {
            incoming
        };
        check_against_local(&self.session.home, &self.session.server, &gun, &merged)?;
        staging.save(&merged)?;
        staged_standing(&staging, &gun, self.trusted_here())
    }

    /// Drop the change staged in this home.
    pub fn root_discard(&self, gun: &Gun) -> Result<StagedChange, PublishError> {
        let staging = self.staging(gun);
        let staged = staging.load_for(gun)?;
        staging.clear()?;
        Ok(staged)
    }

    /// Publish the staged change (the home's, or the file `staged`) once a
    /// threshold of the current root's root keys and of the new root's have
    /// signed. The replaced root is checked against the server's current
    /// root, verified here.
    pub fn root_publish(
        &self,
        gun: &Gun,
        staged: Option<&Path>,
    ) -> Result<RootSigning, PublishError> {
        let staging = self.staging_or(gun, staged);
        let change = staging.load_for(gun)?;
        let new = change.new_root()?;
        let current = if new.signed.version == 1 {
            None
        } else {
            let repo = self.open(gun)?;
            let root = repo.updater.trusted().root().clone();
            check_previous(&change, &root)?;
            Some((repo, root))
        };
        let mut report = standing(
            gun.as_str(),
            &change.change,
            current.as_ref().map(|(_, r)| r),
            &new,
        )?;
        report.previous_root_checked = true;
        if report.needed > 0 {
            return Err(PublishError::Refused(format!("root v{} of {gun} ({}) cannot be published yet: {} (tagtrust root sign {gun} --key FILE)",
                report.version,
                change.change,
                report.missing())));
        }
        let mut files = change.upload_files()?;
        if let Some((repo, _)) = &current {
            self.renew_stale_companions(gun, repo, &new.signed, &mut files)?;
        }
        self.server_client()?
            .publish(gun, &files)
            .during(|| format!("publishing the staged root v{} of {gun}", report.version))?;
        if current.is_none() {
            let dir = self.session.home.metadata_dir(&self.session.server, gun);
            store_initial_root(&dir, &files[0].1, 1)?;
        }
        staging.clear()?;
        // Published from a copy: the home's staged copy of the same change
        // is done too.
        let home_staging = self.staging(gun);
        if home_staging.path() != staging.path() {
            if let Ok(here) = home_staging.load_for(gun) {
                if here.new_root()?.canonical_signed() == new.canonical_signed() {
                    home_staging.clear()?;
                }
            }
        }
        report.published = true;
        Ok(report)
    }

    /// A staged targets file that the server's targets has overtaken since
    /// (a tag change while the root change waited) is re-signed on top of
    /// the current targets with the new root's targets key, if this home
    /// holds it.
    fn renew_stale_companions(
        &self,
        gun: &Gun,
        repo: &Repository,
        new_root: &Root,
        files: &mut [(String, Vec<u8>)],
    ) -> Result<(), PublishError> {
        let Some(current) = repo.updater.trusted().targets() else {
            return Ok(());
        };
        for (role, bytes) in files.iter_mut().filter(|(role, _)| role == "targets") {
            let staged: Metadata<Targets> = Metadata::from_bytes(bytes)?;
            if staged.signed.version > current.signed.version {
                continue;
            }
            let keyids = &new_root.role_keys("targets")?.keyids;
            if !self.session.home.has_key(gun, "targets", keyids) {
                return Err(PublishError::Refused(format!("{role} changed since the root change was staged (v{} now, v{} staged) and this home \
                     does not hold the new targets key to re-sign it; publish from the home that staged it",
                    current.signed.version,
                    staged.signed.version)));
            }
            let pass = self
                .passphrases
                .passphrase(&format!("Passphrase for the targets key of {gun}: "))?;
            let key = self.session.home.load_key(gun, "targets", keyids, &pass)?;
            let mut targets = current.signed.clone();
            targets.version += 1;
            *bytes = sign_targets(targets, &key, &self.session.home.config()?.expiry)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(needed: u64, unsigned: &[&str]) -> Tally {
        Tally {
            root_version: 1,
            signed_by: Vec::new(),
            threshold: needed,
            needed,
            unsigned: unsigned.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_key_in_both_roots_counts_for_both() {
        // Old needs 1 of {b, c}, new needs 1 of {b, c}: b alone does it.
        assert_eq!(
            fewest_needed(&tally_of(1, &["b", "c"]), Some(&tally_of(1, &["b", "c"]))),
            1
        );
        // Disjoint holders: one from each.
        assert_eq!(
            fewest_needed(&tally_of(1, &["d"]), Some(&tally_of(1, &["b"]))),
            2
        );
        assert_eq!(
            fewest_needed(
                &tally_of(2, &["b", "d", "e"]),
                Some(&tally_of(1, &["b", "c"]))
            ),
            2
        );
        assert_eq!(
            fewest_needed(&tally_of(0, &[]), Some(&tally_of(1, &["c"]))),
            1
        );
        assert_eq!(fewest_needed(&tally_of(2, &["x", "y"]), None), 2);
    }
}
