//! Publisher operations: the [`Publisher`] (who publishes where), moving
//! and removing tags, delegations, and the publish loop every targets-type
//! change goes through. Creating a repository is in [`crate::init`], root
//! changes in [`crate::staging`] and [`crate::rotation`]. Every change starts from metadata the updater has just
//! verified, is signed locally, and is published atomically; a lost race
//! (409) is retried on top of the winner's version.

use crate::bins::bins_of;
use crate::home::ExpiryPolicy;
use crate::passphrase::Passphrases;
use crate::publish_error::PublishError;
use crate::remote::{RemoteError, ServerClient};
use crate::session::{OpenOptions, ReadError, Repository, Session};
use crate::signing::{renew_root, sign_targets};
use crate::tag_list::TagListEntry;
use crate::updater::UpdateError;
use chrono::{Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tagtrust_shared::bins::TagChanges;
use tagtrust_shared::{
    DelegatedRole, Delegations, Gun, PrivateKey, PublicKey, Root, TargetFile, Targets, TopLevelRole,
};

/// How often a conflicting publish is retried before giving up.
pub const MAX_PUBLISH_ATTEMPTS: u32 = 20;

/// The OCI image manifest media type, the default for `tag set`.
pub const OCI_MANIFEST: &str = tagtrust_shared::metadata::DEFAULT_MEDIA_TYPE;

/// Who is publishing where: the session (home, server, token, notices) and
/// where passphrases for this home's private keys come from.
pub struct Publisher {
    pub session: Session,
    pub passphrases: Passphrases,
}

/// What a tag change published.
#[derive(Debug, Serialize)]
pub struct TagReport {
    pub gun: String,
    pub tag: String,
    /// The new digest, or `None` when the tag was removed.
    pub digest: Option<String>,
    /// The role that signed the change.
    pub role: String,
    pub targets_version: u64,
    /// Conflicting publishes by others that were retried.
    pub conflicts_retried: u32,
    /// Locally held roles re-signed because they were about to expire.
    pub resigned: Vec<String>,
}

/// What a `tag set --from-file` published.
#[derive(Debug, Serialize)]
pub struct TagsReport {
    pub gun: String,
    /// How many tags were set.
    pub tags: usize,
    /// The new version of each role that signed them (the tags' bins, in
    /// a binned repository).
    pub roles: BTreeMap<String, u64>,
    pub conflicts_retried: u32,
    pub resigned: Vec<String>,
}

/// What one publish of a role change did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new version of the changed role (the first, when several were).
    pub version: u64,
    /// The new version of every changed role.
    pub versions: BTreeMap<String, u64>,
    pub conflicts_retried: u32,
    /// Other locally held roles re-signed in the same publish because they
    /// expire within the warning window.
    pub resigned: Vec<String>,
}

/// A tag and what it points to.
#[derive(Debug, Serialize)]
pub struct TagEntry {
    pub tag: String,
    pub digest: Option<String>,
    pub size: u64,
    pub media_type: Option<String>,
    pub signed_by: String,
}

/// What to point a tag at.
#[derive(Debug, Clone, Default)]
pub struct TagTarget {
    /// `sha256:<64 hex>`
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// OCI descriptor annotations, signed as `custom.annotations` (omitted
    /// when empty).
    pub annotations: BTreeMap<String, String>,
}

impl TagTarget {
    /// The signed `custom`: the media type unless it is the default (an
    /// implicit default costs each tag nothing), the annotations unless
    /// there are none; no `custom` at all for a plain image manifest.
    fn custom(&self) -> Option<serde_json::Value> {
        let mut custom = serde_json::Map::new();
        if self.media_type != OCI_MANIFEST {
            custom.insert("mediaType".into(), self.media_type.clone().into());
        }
        if !self.annotations.is_empty() {
            custom.insert("annotations".into(), serde_json::json!(self.annotations));
        }
        (!custom.is_empty()).then_some(serde_json::Value::Object(custom))
    }

    /// Check the digest form and build the TUF target entry. `custom`
    /// carries the OCI descriptor's media type and annotations, so they are
    /// signed too.
    pub fn to_target_file(&self) -> Result<TargetFile, PublishError> {
        let hex = self
            .digest
            .strip_prefix("sha256:")
            .filter(|h| {
                h.len() == 64
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            })
            .ok_or_else(|| {
                PublishError::Refused(format!(
                    "digest {:?} is not sha256:<64 lower-case hex>",
                    self.digest
                ))
            })?;
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), hex.to_string());
        Ok(TargetFile {
            length: self.size,
            hashes,
            custom: self.custom(),
            extra: Default::default(),
        })
    }
}

impl Publisher {
    pub fn new(session: Session, passphrases: Passphrases) -> Publisher {
        Publisher {
            session,
            passphrases,
        }
    }

    pub(crate) fn server_client(&self) -> Result<ServerClient, PublishError> {
        Ok(self.session.server_client()?)
    }

    /// `gun` as the server has it now, verified: what every change starts
    /// from.
    pub(crate) fn open(&self, gun: &Gun) -> Result<Repository, PublishError> {
        let repo = self.session.open(gun, &OpenOptions::default());
        Ok(repo?)
    }

    pub fn tag_set(
        &self,
        gun: &Gun,
        tag: &str,
        target: &TagTarget,
        signer: &Signer,
    ) -> Result<TagReport, PublishError> {
        tagtrust_shared::reference::validate_tag(tag)?;
        let file = target.to_target_file()?;
        let Some((signer, opened)) = self.signer_for(gun, tag, signer)? else {
            let changes = TagChanges {
                set: BTreeMap::from([(tag.to_string(), file)]),
                remove: Vec::new(),
            };
            return self.tag_report_from_server(gun, tag, Some(target), &changes);
        };
        let signer = &signer;
        let set = |targets: &mut Targets| {
            targets.targets.insert(tag.to_string(), file.clone());
            Ok(())
        };
        let published = self.change_role_from(opened, gun, signer, &[tag], set, no_extra)?;
        Ok(TagReport {
            gun: gun.to_string(),
            tag: tag.to_string(),
            digest: Some(target.digest.clone()),
            role: signer.role().to_string(),
            targets_version: published.version,
            conflicts_retried: published.conflicts_retried,
            resigned: published.resigned,
        })
    }

    /// Set every tag of `entries` in one new version of the role `signer`
    /// signs (of each bin they fall in, for the targets role of a binned
    /// repository): one key decryption, one publish (a CI pushing `1`,
    /// `1.5`, `1.5.1` and `latest` together, or a bulk import).
    pub fn tag_set_many(
        &self,
        gun: &Gun,
        entries: &[TagListEntry],
        signer: &Signer,
    ) -> Result<TagsReport, PublishError> {
        let mut files = BTreeMap::new();
        for entry in entries {
            tagtrust_shared::reference::validate_tag(&entry.tag)?;
            files.insert(entry.tag.as_str(), entry.target.to_target_file()?);
        }
        let tags: Vec<&str> = files.keys().copied().collect();
        // A binned repository: every bin a tag falls in, in one publish.
        let opened = match signer {
            Signer::Targets => Some(self.open(gun)?),
            Signer::Delegated { .. } => None,
        };
        if opened
            .as_ref()
            .is_some_and(|repo| self.bins_held_elsewhere(repo, gun))
        {
            let changes = TagChanges {
                set: files
                    .iter()
                    .map(|(tag, file)| (tag.to_string(), file.clone()))
                    .collect(),
                remove: Vec::new(),
            };
            let changed = self.change_tags_on_server(gun, &changes)?;
            return Ok(TagsReport {
                gun: gun.to_string(),
                tags: files.len(),
                roles: changed.bins,
                conflicts_retried: 0,
                resigned: Vec::new(),
            });
        }
        let by_signer = match &opened {
            Some(repo) => self.bin_signers(repo, gun, tags.iter().copied())?,
            None => None,
        }
        .map(|bins| bins.into_values().collect())
        .unwrap_or_else(|| vec![(signer.clone(), tags)]);
        let files = &files;
        let edits: Vec<_> = by_signer
            .iter()
            .map(|(_, tags)| {
                move |targets: &mut Targets| {
                    for tag in tags {
                        targets.targets.insert(tag.to_string(), files[tag].clone());
                    }
                    Ok(())
                }
            })
            .collect();
        let changes: Vec<RoleChange> = by_signer
            .iter()
            .zip(&edits)
            .map(|((signer, tags), edit)| RoleChange {
                signer: signer.clone(),
                tags: tags.clone(),
                change: edit,
            })
            .collect();
        let published = self.change_roles(opened, gun, &changes, no_extra)?;
        Ok(TagsReport {
            gun: gun.to_string(),
            tags: files.len(),
            roles: published.versions,
            conflicts_retried: published.conflicts_retried,
            resigned: published.resigned,
        })
    }

    /// Who signs `tag`: `signer`, except that the top-level targets role of
    /// a binned repository signs through the tag's bin; with the repository
    /// opened to decide that, for the publish to start from. `None`: the
    /// bins are signed elsewhere (by the server), so the server is asked.
    fn signer_for(
        &self,
        gun: &Gun,
        tag: &str,
        signer: &Signer,
    ) -> Result<Option<(Signer, Option<Repository>)>, PublishError> {
        match signer {
            Signer::Targets => {
                let repo = self.open(gun)?;
                if self.bins_held_elsewhere(&repo, gun) {
                    return Ok(None);
                }
                let bin = self
                    .bin_signers(&repo, gun, [tag])?
                    .and_then(|bins| bins.into_values().next());
                Ok(Some((
                    bin.map_or(Signer::Targets, |(bin, _)| bin),
                    Some(repo),
                )))
            }
            other => Ok(Some((other.clone(), None))),
        }
    }

    /// One tag set (`target`) or removed (`None`) by the server in its bins.
    fn tag_report_from_server(
        &self,
        gun: &Gun,
        tag: &str,
        target: Option<&TagTarget>,
        changes: &TagChanges,
    ) -> Result<TagReport, PublishError> {
        let changed = self.change_tags_on_server(gun, changes)?;
        let (role, version) = changed.bins.into_iter().next().unwrap_or_default();
        Ok(TagReport {
            gun: gun.to_string(),
            tag: tag.to_string(),
            digest: target.map(|t| t.digest.clone()),
            role,
            targets_version: version,
            conflicts_retried: 0,
            resigned: Vec::new(),
        })
    }

    /// Remove `tag` from the role `signer` signs.
    pub fn tag_rm(&self, gun: &Gun, tag: &str, signer: &Signer) -> Result<TagReport, PublishError> {
        let Some((signer, opened)) = self.signer_for(gun, tag, signer)? else {
            let changes = TagChanges {
                set: BTreeMap::new(),
                remove: vec![tag.to_string()],
            };
            return self.tag_report_from_server(gun, tag, None, &changes);
        };
        let signer = &signer;
        let remove = |targets: &mut Targets| match targets.targets.remove(tag) {
            Some(_) => Ok(()),
            None => Err(PublishError::Refused(format!(
                "{gun}:{tag} is not signed by {}",
                signer.role()
            ))),
        };
        let published = self.change_role_from(opened, gun, signer, &[tag], remove, no_extra)?;
        Ok(TagReport {
            gun: gun.to_string(),
            tag: tag.to_string(),
            digest: None,
            role: signer.role().to_string(),
            targets_version: published.version,
            conflicts_retried: published.conflicts_retried,
            resigned: published.resigned,
        })
    }

    /// Top-level targets changes (delegations) signed with the local targets key.
    pub(crate) fn change_targets(
        &self,
        gun: &Gun,
        change: impl Fn(&mut Targets) -> Result<(), PublishError>,
    ) -> Result<Published, PublishError> {
        self.change_role(gun, &Signer::Targets, &[], change)
    }

    /// Apply `change` to the verified current metadata of the role `signer`
    /// signs, sign a new version and publish it; on conflict start again
    /// from the new current version. Each of `tags` must be a tag the role
    /// may sign. Returns the published version and the number of
    /// conflicts retried.
    pub(crate) fn change_role(
        &self,
        gun: &Gun,
        signer: &Signer,
        tags: &[&str],
        change: impl Fn(&mut Targets) -> Result<(), PublishError>,
    ) -> Result<Published, PublishError> {
        self.change_role_with(gun, signer, tags, change, no_extra)
    }

    /// [`Self::change_role`], publishing with the new version the files
    /// `extra` picks from the repository as it is at each attempt (already
    /// signed by others: a re-rooted mirror's upstream roles).
    pub(crate) fn change_role_with(
        &self,
        gun: &Gun,
        signer: &Signer,
        tags: &[&str],
        change: impl Fn(&mut Targets) -> Result<(), PublishError>,
        extra: impl Fn(&Repository) -> Result<Vec<(String, Vec<u8>)>, PublishError>,
    ) -> Result<Published, PublishError> {
        self.change_role_from(None, gun, signer, tags, change, extra)
    }

    /// [`Self::change_role_with`], the first attempt starting from
    /// `opened` (a repository just opened to decide who signs), if given.
    fn change_role_from(
        &self,
        opened: Option<Repository>,
        gun: &Gun,
        signer: &Signer,
        tags: &[&str],
        change: impl Fn(&mut Targets) -> Result<(), PublishError>,
        extra: impl Fn(&Repository) -> Result<Vec<(String, Vec<u8>)>, PublishError>,
    ) -> Result<Published, PublishError> {
        let change = RoleChange {
            signer: signer.clone(),
            tags: tags.to_vec(),
            change: &change,
        };
        self.change_roles(opened, gun, &[change], extra)
    }

    /// Apply every change of `changes` to the verified current metadata of
    /// its role, sign the new versions and publish them, with the files
    /// `extra` picks, as one publish; on conflict start again from the new
    /// current versions. The first attempt starts from `opened`, when given
    /// (opened a moment ago to decide who signs: not opened twice).
    /// [`Published::version`] is the first role's.
    pub(crate) fn change_roles(
        &self,
        mut opened: Option<Repository>,
        gun: &Gun,
        changes: &[RoleChange<'_>],
        extra: impl Fn(&Repository) -> Result<Vec<(String, Vec<u8>)>, PublishError>,
    ) -> Result<Published, PublishError> {
        let client = self.server_client()?;
        let mut keys = KeyCache::new(self.passphrases.clone());
        let expiry = self.session.home.config()?.expiry;
        // Hashed bins are long-lived (only timestamp and snapshot churn).
        let bin_expiry = ExpiryPolicy {
            targets_days: expiry.bins_days,
            ..expiry.clone()
        };
        for attempt in 0..MAX_PUBLISH_ATTEMPTS {
            let mut repo = match opened.take() {
                Some(repo) => repo,
                None => self.open(gun)?,
            };
            let mut files = Vec::with_capacity(changes.len());
            let mut versions = BTreeMap::new();
            for RoleChange {
                signer,
                tags,
                change,
            } in changes
            {
                let (mut targets, is_bin) =
                    self.next_version(&mut repo, signer, tags, &mut keys)?;
                change(&mut targets)?;
                let key = match signer {
                    Signer::Targets => {
                        keys.top_level(self, gun, &repo.updater.trusted().root().signed, "targets")?
                    }
                    Signer::Delegated { key_file, .. } => keys.file(key_file)?,
                };
                versions.insert(signer.role().to_string(), targets.version);
                let role_expiry = if is_bin { &bin_expiry } else { &expiry };
                files.push((
                    signer.role().to_string(),
                    sign_targets(targets, key, role_expiry)?,
                ));
            }
            let signs_targets = changes.iter().any(|c| matches!(c.signer, Signer::Targets));
            let resigned =
                self.resign_expiring(gun, &repo, signs_targets, &mut keys, &expiry, &mut files)?;
            files.extend(extra(&repo)?);
            match client.publish(gun, &files) {
                Ok(()) => {
                    return Ok(Published {
                        version: changes
                            .first()
                            .and_then(|c| versions.get(c.signer.role()).copied())
                            .unwrap_or_default(),
                        versions,
                        conflicts_retried: attempt,
                        resigned,
                    })
                }
                Err(RemoteError::Conflict(_)) => backoff(attempt),
                Err(e) => return Err(e.into()),
            }
        }
        Err(PublishError::GaveUp {
            gun: gun.to_string(),
            attempts: MAX_PUBLISH_ATTEMPTS,
        })
    }

    /// The next version of the role `signer` signs, before its change,
    /// and whether it is a hashed bin; refused when a delegated role may
    /// not sign one of `tags`.
    fn next_version(
        &self,
        repo: &mut Repository,
        signer: &Signer,
        tags: &[&str],
        keys: &mut KeyCache,
    ) -> Result<(Targets, bool), PublishError> {
        let (current, is_bin) = match signer {
            Signer::Targets => {
                let targets = repo.updater.trusted().targets().ok_or_else(|| {
                    PublishError::Refused(
                        "the server has no trusted targets metadata for this GUN".into(),
                    )
                })?;
                (RoleState::Current(targets.signed.clone().into()), false)
            }
            Signer::Delegated { role, key_file } => {
                let key_id = keys.file(key_file)?.key_id();
                let (delegation, current) =
                    delegated_role_state(repo, role, &key_id, &self.session.notices)?;
                if let Some(tag) = tags.iter().find(|t| !delegation.is_delegated_path(t)) {
                    return Err(PublishError::Refused(format!(
                        "role {role} may not sign tag {tag:?}: its paths are {}",
                        delegation.paths.as_deref().unwrap_or_default().join(", ")
                    )));
                }
                (current, delegation.is_hash_bin())
            }
        };
        let targets = match current {
            RoleState::Current(mut t) => {
                t.version += 1;
                *t
            }
            // A delegated role's first version, or the first one signed
            // by its new keys.
            RoleState::Next(version) => Targets::new(version, Utc::now()),
        };
        Ok((targets, is_bin))
    }

    /// Expiry cliffs: add to `files` a re-signed version of every role this
    /// home holds the key of that expires within the warning window (root;
    /// top-level targets when a delegated role is being published). Returns
    /// the roles re-signed.
    fn resign_expiring(
        &self,
        gun: &Gun,
        repo: &Repository,
        signs_targets: bool,
        keys: &mut KeyCache,
        expiry: &ExpiryPolicy,
        files: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<String>, PublishError> {
        let trusted = repo.updater.trusted();
        let horizon = Utc::now() + Duration::days(expiry.warning_days);
        let root = &trusted.root().signed;
        let mut resigned = Vec::new();
        let root_keys = root.role_keys("root")?;
        // A multi-party root cannot be re-signed by one publisher alone:
        // `status` warns about it instead.
        if root.expires <= horizon
            && root_keys.threshold == 1
            && self.session.home.has_key(gun, "root", &root_keys.keyids)
        {
            let key = keys.top_level(self, gun, root, "root")?;
            files.push(("root".to_string(), renew_root(root, &[key], expiry)?));
            resigned.push("root".to_string());
        }
        if let (false, Some(targets)) = (signs_targets, trusted.targets()) {
            if targets.signed.expires <= horizon
                && self
                    .session
                    .home
                    .has_key(gun, "targets", &root.role_keys("targets")?.keyids)
            {
                let key = keys.top_level(self, gun, root, "targets")?;
                let mut renewed = targets.signed.clone();
                renewed.version += 1;
                files.push(("targets".to_string(), sign_targets(renewed, key, expiry)?));
                resigned.push("targets".to_string());
            }
        }
        Ok(resigned)
    }

    /// Store the new private keys `keys` (each with the role it signs) in
    /// the home under `pass`, then `publish`; if either fails, remove the
    /// stored keys again. Stored first because losing a key after a
    /// successful publish would leave a published key nobody holds (for
    /// `init`, an orphaned GUN); removed after a failure so no key is kept
    /// that was never published.
    pub(crate) fn publish_with_new_keys<T>(
        &self,
        gun: &Gun,
        keys: &[(&str, &PrivateKey)],
        pass: &str,
        publish: impl FnOnce() -> Result<T, PublishError>,
    ) -> Result<T, PublishError> {
        let mut saved = Vec::new();
        let result = keys
            .iter()
            .try_for_each(|(role, key)| {
                saved.push(self.session.home.save_key(gun, role, key, pass)?);
                Ok(())
            })
            .and_then(|()| publish());
        if result.is_err() {
            for path in &saved {
                let _ = std::fs::remove_file(path);
            }
        }
        result
    }

    /// Load the local private key of a top-level role listed in `root`.
    pub(crate) fn role_key(
        &self,
        gun: &Gun,
        root: &Root,
        role: &str,
    ) -> Result<PrivateKey, PublishError> {
        debug_assert!(TopLevelRole::parse(role).is_some());
        let keys = root.role_keys(role)?;
        if keys.threshold > 1 {
            return Err(PublishError::Refused(format!(
                "{role} of {gun} needs {} signatures; tagtrust signs with one key",
                keys.threshold
            )));
        }
        let pass = self
            .passphrases
            .passphrase(&format!("Passphrase for the {role} key of {gun}: "))?;
        Ok(self.session.home.load_key(gun, role, &keys.keyids, &pass)?)
    }

    /// The verified tags of `gun`, from top-level targets and every
    /// delegated role, each resolved the way a lookup would (so a tag a
    /// role lists outside its paths, or shadowed by an earlier role, shows
    /// what a consumer would get).
    pub fn list(&self, gun: &Gun) -> Result<Vec<TagEntry>, PublishError> {
        let (mut repo, walk) = self.session.open_all_roles(gun)?;
        for skipped in &walk.skipped {
            self.session.notices.push(skipped.notice());
        }
        if let Some(first) = walk.beyond_limit.first() {
            self.session.notices.push(format!(
                "{} delegated roles (from {first:?}) are beyond the {} a lookup reads: their tags are not listed, and consumers cannot resolve them",
                walk.beyond_limit.len(),
                repo.updater.max_delegations()
            ));
        }
        let candidates: std::collections::BTreeSet<String> = walk
            .roles
            .iter()
            .filter_map(|role| repo.updater.trusted().targets_role(role))
            .flat_map(|md| md.signed.targets.keys().cloned())
            .collect();
        let mut entries = Vec::new();
        for tag in candidates {
            // A tag whose search runs into a failing branch cannot be
            // resolved by a consumer either: said, and left out.
            match repo.updater.get_targetinfo(&tag) {
                Ok(Some(info)) => entries.push(TagEntry {
                    tag,
                    digest: info.target.digest(),
                    size: info.target.length,
                    media_type: Some(info.target.media_type().to_string()),
                    signed_by: info.role,
                }),
                Ok(None) => {}
                Err(e) => self
                    .session
                    .notices
                    .push(format!("tag {tag:?} left out: its lookup fails: {e}")),
            }
        }
        Ok(entries)
    }
}

/// Which role a tag change is signed as.
#[derive(Debug, Clone)]
pub enum Signer {
    /// Top-level targets, with the GUN's targets key from the home.
    Targets,
    /// A delegated role, with a private key file (e.g. a CI robot's).
    Delegated {
        role: String,
        key_file: std::path::PathBuf,
    },
}

impl Signer {
    pub fn role(&self) -> &str {
        match self {
            Signer::Targets => "targets",
            Signer::Delegated { role, .. } => role,
        }
    }
}

/// One role's part of a publish: who signs it, the tags it must be allowed
/// to sign, and the change to its current version.
pub(crate) struct RoleChange<'a> {
    pub signer: Signer,
    pub tags: Vec<&'a str>,
    pub change: &'a dyn Fn(&mut Targets) -> Result<(), PublishError>,
}

/// What a delegated role's next version starts from.
pub(crate) enum RoleState {
    /// Its verified current metadata (boxed: a targets role is large).
    Current(Box<Targets>),
    /// No valid metadata (never published, or the stored version is not
    /// signed by the keys it is delegated to now, as after its keys were
    /// replaced): a fresh role of this version.
    Next(u64),
}

/// The pre-publish walk of a delegated role: its delegation entry (from a
/// verified delegator, preferring the one that lists the signer's key
/// `signer_key_id`) and what to build on. A role whose stored version does
/// not verify under that entry has no valid metadata yet: the next version
/// starts empty at the version after the one snapshot lists, so the new key
/// holder can publish after a key replacement (`delegation add` on an
/// existing name). Failing branches elsewhere are notices, not errors.
fn delegated_role_state(
    repo: &mut Repository,
    role: &str,
    signer_key_id: &str,
    notices: &crate::notices::Notices,
) -> Result<(DelegatedRole, RoleState), PublishError> {
    if let Some(state) = bin_state(repo, role, notices)? {
        return Ok(state);
    }
    let walk = repo.updater.load_all_roles().map_err(ReadError::from)?;
    let trusted = repo.updater.trusted();
    // Explicit roles, and hashed bins as the explicit roles they amount to.
    let entries: Vec<(&String, DelegatedRole)> = walk
        .roles
        .iter()
        .filter_map(|parent| {
            let delegations = trusted.targets_role(parent)?.signed.delegations.as_ref()?;
            let explicit = delegations.roles().iter().find(|d| d.name == role).cloned();
            let bin = || delegations.succinct_roles.as_ref()?.as_delegated_role(role);
            Some((parent, explicit.or_else(bin)?))
        })
        .collect();
    let verified_through = walk.delegators.get(role);
    let (parent, delegation) = entries
        .iter()
        .find(|(_, d)| d.keyids.iter().any(|id| id == signer_key_id))
        .or_else(|| entries.iter().find(|(p, _)| Some(*p) == verified_through))
        .or(entries.first())
        .cloned()
        .ok_or_else(|| {
            PublishError::Refused(format!("{} has no delegated role named {role}", repo.gun))
        })?;
    for skipped in walk.skipped.iter().filter(|s| s.role != role) {
        notices.push(skipped.notice());
    }
    if verified_through == Some(parent) {
        if let Some(md) = trusted.delegated_targets(role) {
            return Ok((
                delegation.clone(),
                RoleState::Current(md.signed.clone().into()),
            ));
        }
    }
    let listed = trusted
        .snapshot()
        .and_then(|s| s.signed.role_meta(role))
        .map(|m| m.version);
    if let Some(version) = listed {
        let why = walk
            .skipped
            .iter()
            .find(|s| s.role == role && s.delegator == *parent)
            .map(|s| s.error.to_string())
            .unwrap_or_else(|| "it is not trusted through this delegation".into());
        notices.push(format!(
            "role {role:?} has no valid metadata under its current delegation (version {version}: {why}); publishing version {} without the tags of earlier versions",
            version + 1
        ));
    }
    Ok((
        delegation.clone(),
        RoleState::Next(listed.map_or(1, |v| v + 1)),
    ))
}

/// [`delegated_role_state`] for a hashed bin of top-level targets: only
/// that bin is loaded (a repository may have 1,024), not every role.
/// `None` when `role` is no bin.
fn bin_state(
    repo: &mut Repository,
    role: &str,
    notices: &crate::notices::Notices,
) -> Result<Option<(DelegatedRole, RoleState)>, PublishError> {
    let bins = repo
        .updater
        .trusted()
        .targets()
        .and_then(|t| bins_of(&t.signed));
    let Some(delegation) = bins.and_then(|(succinct, _)| succinct.as_delegated_role(role)) else {
        return Ok(None);
    };
    let loaded = match repo.updater.load_delegated_role(role, "targets") {
        // Not fetched is not "not valid": publishing over a bin the server
        // did not answer for would drop its tags.
        Err(e @ UpdateError::Cause(_)) => return Err(ReadError::from(e).into()),
        loaded => loaded,
    };
    let trusted = repo.updater.trusted();
    if let (Ok(()), Some(md)) = (&loaded, trusted.delegated_targets(role)) {
        return Ok(Some((
            delegation,
            RoleState::Current(md.signed.clone().into()),
        )));
    }
    let listed = trusted
        .snapshot()
        .and_then(|s| s.signed.role_meta(role))
        .map(|m| m.version);
    if let (Some(version), Err(why)) = (listed, loaded) {
        notices.push(format!(
            "bin {role:?} has no valid metadata (version {version}: {why}); publishing version {} without the tags of earlier versions",
            version + 1
        ));
    }
    Ok(Some((
        delegation,
        RoleState::Next(listed.map_or(1, |v| v + 1)),
    )))
}

/// A delegation to add to the top-level targets role.
#[derive(Debug, Clone)]
pub struct NewDelegation {
    pub name: String,
    pub keys: Vec<PublicKey>,
    pub paths: Vec<String>,
    pub threshold: u64,
    pub terminating: bool,
}

/// A delegation as `delegation list` shows it.
#[derive(Debug, Serialize)]
pub struct DelegationEntry {
    pub name: String,
    pub key_ids: Vec<String>,
    pub threshold: u64,
    pub paths: Vec<String>,
    pub terminating: bool,
}

/// What a delegation change published.
#[derive(Debug, Serialize)]
pub struct DelegationReport {
    pub gun: String,
    pub name: String,
    pub added: bool,
    /// `delegation add` on an existing name: its keys (and paths,
    /// threshold) were replaced.
    pub replaced: bool,
    pub targets_version: u64,
}

impl Publisher {
    /// Delegate the tags matching `delegation.paths` to its keys (added or
    /// replaced), signed into a new top-level targets version.
    pub fn delegation_add(
        &self,
        gun: &Gun,
        delegation: &NewDelegation,
    ) -> Result<DelegationReport, PublishError> {
        tagtrust_shared::pathmatch::validate_role_name(&delegation.name)?;
        if TopLevelRole::parse(&delegation.name).is_some() {
            return Err(PublishError::Refused(format!(
                "a delegated role cannot be named {}",
                delegation.name
            )));
        }
        if delegation.keys.is_empty() || delegation.paths.is_empty() {
            return Err(PublishError::Refused(
                "a delegation needs at least one --key and one --path".to_string(),
            ));
        }
        if delegation.threshold < 1 || delegation.threshold > delegation.keys.len() as u64 {
            return Err(PublishError::Refused(format!(
                "threshold {} is impossible with {} key(s)",
                delegation.threshold,
                delegation.keys.len()
            )));
        }
        let replaced = std::cell::Cell::new(false);
        let published = self.change_targets(gun, |targets| {
            replaced.set(set_delegation(targets, delegation)?);
            Ok(())
        })?;
        Ok(DelegationReport {
            gun: gun.to_string(),
            name: delegation.name.clone(),
            added: true,
            replaced: replaced.get(),
            targets_version: published.version,
        })
    }

    /// Remove the delegation `name` from top-level targets.
    pub fn delegation_rm(&self, gun: &Gun, name: &str) -> Result<DelegationReport, PublishError> {
        let published = self.change_targets(gun, |targets| {
            let roles = targets
                .delegations
                .as_mut()
                .and_then(|d| d.roles.as_mut())
                .filter(|roles| roles.iter().any(|r| r.name == name))
                .ok_or_else(|| {
                    PublishError::Refused(format!("{gun} has no delegation named {name}"))
                })?;
            roles.retain(|r| r.name != name);
            if let Some(delegations) = targets.delegations.as_mut() {
                prune_delegation_keys(delegations);
            }
            Ok(())
        })?;
        Ok(DelegationReport {
            gun: gun.to_string(),
            name: name.to_string(),
            added: false,
            replaced: false,
            targets_version: published.version,
        })
    }

    /// The delegations of top-level targets, verified.
    pub fn delegation_list(&self, gun: &Gun) -> Result<Vec<DelegationEntry>, PublishError> {
        let repo = self.open(gun)?;
        let targets = repo
            .updater
            .trusted()
            .targets()
            .ok_or_else(|| PublishError::Refused("no trusted targets metadata".into()))?;
        Ok(targets
            .signed
            .delegations
            .as_ref()
            .map(|d| d.roles())
            .unwrap_or_default()
            .iter()
            .map(|r| DelegationEntry {
                name: r.name.clone(),
                key_ids: r.keyids.clone(),
                threshold: r.threshold,
                paths: r.paths.clone().unwrap_or_default(),
                terminating: r.terminating,
            })
            .collect())
    }
}

/// Private keys loaded once per operation (each load asks for, or reads,
/// the passphrase and runs scrypt).
pub(crate) struct KeyCache {
    keys: BTreeMap<String, PrivateKey>,
    passphrases: Passphrases,
}

impl KeyCache {
    pub(crate) fn new(passphrases: Passphrases) -> KeyCache {
        KeyCache {
            keys: BTreeMap::new(),
            passphrases,
        }
    }

    pub(crate) fn top_level(
        &mut self,
        publisher: &Publisher,
        gun: &Gun,
        root: &Root,
        role: &str,
    ) -> Result<&PrivateKey, PublishError> {
        if !self.keys.contains_key(role) {
            let key = publisher.role_key(gun, root, role)?;
            self.keys.insert(role.to_string(), key);
        }
        Ok(&self.keys[role])
    }

    fn file(&mut self, path: &std::path::Path) -> Result<&PrivateKey, PublishError> {
        let id = format!("file:{}", path.display());
        if !self.keys.contains_key(&id) {
            let pass = self
                .passphrases
                .passphrase(&format!("Passphrase for {}: ", path.display()))?;
            self.keys
                .insert(id.clone(), crate::home::load_key_file(path, &pass)?);
        }
        Ok(&self.keys[&id])
    }
}

/// Drop delegation keys no delegated role uses any more.
fn prune_delegation_keys(delegations: &mut Delegations) {
    let used: std::collections::BTreeSet<String> = delegations
        .roles()
        .iter()
        .flat_map(|r| r.keyids.iter().cloned())
        .chain(
            delegations
                .succinct_roles
                .iter()
                .flat_map(|s| s.keyids.iter().cloned()),
        )
        .collect();
    delegations.keys.retain(|id, _| used.contains(id));
}

/// No files beside the changed roles (the `extra` of most publishes).
fn no_extra(_: &Repository) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    Ok(Vec::new())
}

/// Sleep a little, longer on each attempt, with jitter so racing publishers
/// spread out.
fn backoff(attempt: u32) {
    use rand::Rng;
    let base = 20u64 * u64::from(attempt.min(10) + 1);
    let jitter = rand::thread_rng().gen_range(0..=base);
    std::thread::sleep(std::time::Duration::from_millis(base + jitter));
}

/// Add `delegation` to `targets`, or replace the one of that name where it
/// stands (search order unchanged); returns whether it replaced one.
pub(crate) fn set_delegation(
    targets: &mut Targets,
    delegation: &NewDelegation,
) -> Result<bool, PublishError> {
    let delegations = targets.delegations.get_or_insert_with(|| Delegations {
        keys: BTreeMap::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        extra: Default::default(),
    });
    let roles = delegations.roles.as_mut().ok_or_else(|| {
        PublishError::Refused(
            "this GUN uses succinct hash-bin delegations; tagtrust cannot add named roles to them"
                .into(),
        )
    })?;
    // An existing name is replaced where it stands (search order
    // is unchanged): its keys, threshold, paths and terminating
    // flag become the ones given. That is how a compromised or
    // lost delegated key is replaced; the role's stored metadata,
    // signed by the old keys, stops verifying, and the new key
    // holder's next publish starts it again (`RoleState::Next`).
    let position = roles.iter().position(|r| r.name == delegation.name);
    roles.retain(|r| r.name != delegation.name);
    let keyids: Vec<String> = delegation.keys.iter().map(PublicKey::key_id).collect();
    for key in &delegation.keys {
        delegations.keys.insert(key.key_id(), key.clone());
    }
    let roles = delegations.roles.as_mut().expect("checked above");
    let entry = DelegatedRole {
        name: delegation.name.clone(),
        keyids,
        threshold: delegation.threshold,
        terminating: delegation.terminating,
        paths: Some(delegation.paths.clone()),
        path_hash_prefixes: None,
        extra: Default::default(),
    };
    match position {
        Some(at) => roles.insert(at.min(roles.len()), entry),
        None => roles.push(entry),
    }
    prune_delegation_keys(delegations);
    Ok(position.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(media_type: &str, annotations: &[(&str, &str)]) -> TargetFile {
        TagTarget {
            digest: format!("sha256:{}", "ab".repeat(32)),
            size: 1234,
            media_type: media_type.into(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
        .to_target_file()
        .unwrap()
    }

    #[test]
    fn the_default_media_type_costs_no_bytes() {
        let plain = target(OCI_MANIFEST, &[]);
        assert_eq!(plain.custom, None);
        assert_eq!(plain.media_type(), OCI_MANIFEST);
        // As python-tuf writes a target with no custom: length and hashes only.
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"length":1234,"hashes":{{"sha256":"{}"}}}}"#,
                "ab".repeat(32)
            )
        );
        let annotated = target(OCI_MANIFEST, &[("a", "b")]);
        assert_eq!(
            annotated.custom,
            Some(serde_json::json!({ "annotations": { "a": "b" } }))
        );
        let index = "application/vnd.oci.image.index.v1+json";
        let other = target(index, &[]);
        assert_eq!(
            other.custom,
            Some(serde_json::json!({ "mediaType": index }))
        );
        assert_eq!(other.media_type(), index);
    }
}
