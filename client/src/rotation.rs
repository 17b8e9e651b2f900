//! Key rotation, root key holder changes and re-signing of the roles a
//! publisher holds. Every root change goes through
//! `Publisher::publish_or_stage_root` (in `staging.rs`): published at once when the root keys
//! of this home meet the old and the new root's thresholds, staged for the
//! other holders otherwise.
//!
//! * Root: the root keys this home holds are replaced by new ones; the new
//!   root is signed by the old keys (so clients that trust the old root
//!   follow the chain) and by the new ones.
//! * Targets: a new root listing the new targets key, plus targets
//!   re-signed with it, in one atomic publish (clients check targets against
//!   the newest root, so the two must land together; a staged change
//!   carries the targets file to `root publish`).
//! * Timestamp and snapshot: the server makes the new key; a new root lists
//!   it; the server signs with it from that publish on (until then with the
//!   key the current root lists).

use crate::publish_error::{During, PublishError};
use crate::publisher::Publisher;
use crate::signing::{next_root, sign_targets};
use crate::staging::RootSigning;
use serde::Serialize;
use tagtrust_shared::{Gun, Metadata, PrivateKey, PublicKey, Root, SigningKey, TopLevelRole};

/// What a rotation or refresh published or staged.
#[derive(Debug, Serialize)]
pub struct RoleReport {
    pub gun: String,
    pub role: String,
    /// The role's new key ID (rotation only; the first, for several root keys).
    pub new_key_id: Option<String>,
    /// The new root's version (published or staged).
    pub root_version: u64,
    /// New version of the refreshed role (refresh only).
    pub version: Option<u64>,
    /// The root change: published, or staged and whose signatures it still
    /// needs (absent for a refresh of targets or a delegated role).
    pub root_signing: Option<RootSigning>,
}

/// A change of the root role's keys or threshold.
#[derive(Debug, Default, Clone)]
pub struct RootKeyChange {
    /// Public keys of new root key holders.
    pub add: Vec<PublicKey>,
    /// Key IDs (or unique prefixes) of root keys to remove.
    pub remove: Vec<String>,
    pub threshold: Option<u64>,
}

impl Publisher {
    /// Replace the key of a top-level role (`root`, `targets`, `snapshot`
    /// or `timestamp`) and publish (or stage) a root listing the new one.
    pub fn rotate_key(&self, gun: &Gun, role: &str) -> Result<RoleReport, PublishError> {
        let Some(top_level) = TopLevelRole::parse(role) else {
            return Err(PublishError::Refused(format!(
                "{role} is not a top-level role; delegated keys change with `delegation add`"
            )));
        };
        self.refuse_if_staged(gun)?;
        let repo = self.open(gun)?;
        let trusted = repo.updater.trusted();
        let current = trusted.root().clone();
        let mut root = current.signed.clone();
        let mut new_local_keys = Vec::new();
        let mut files = Vec::new();
        match top_level {
            TopLevelRole::Root => {
                // Replace the root keys this home holds, one for one; the
                // other holders' keys stay.
                let root_keys = root.role_keys("root")?.keyids.clone();
                let held: Vec<String> = self
                    .held_root_keys(gun, &root_keys)
                    .into_iter()
                    .cloned()
                    .collect();
                if held.is_empty() {
                    return Err(PublishError::Refused(format!("this home holds none of the root keys of {gun} ({}); a holder rotates their own key, \
                         or change holders with `tagtrust root add-key` / `root remove-key`",
                        root_keys.join(", "))));
                }
                let entry = root.roles.get_mut("root").expect("listed above");
                for id in &held {
                    let key = PrivateKey::from(SigningKey::generate());
                    let position = entry.keyids.iter().position(|k| k == id).expect("held");
                    entry.keyids[position] = key.key_id();
                    root.keys.insert(key.key_id(), key.public_key());
                    new_local_keys.push(key);
                }
                root.prune_keys();
            }
            TopLevelRole::Targets => {
                let key = PrivateKey::from(SigningKey::generate());
                root.replace_role_keys(role, &[key.public_key()]);
                let current = trusted
                    .targets()
                    .ok_or_else(|| PublishError::Refused("no trusted targets metadata".into()))?;
                let mut targets = current.signed.clone();
                targets.version += 1;
                files.push((
                    "targets".to_string(),
                    sign_targets(targets, &key, &self.session.home.config()?.expiry)?,
                ));
                new_local_keys.push(key);
            }
            // The server holds the online keys: it makes the new one.
            TopLevelRole::Snapshot | TopLevelRole::Timestamp => {
                let key = self.server_client()?.rotate_online_key(gun, top_level)?;
                root.replace_role_keys(role, std::slice::from_ref(&key));
            }
        }
        let new_key_id = root.role_keys(role)?.keyids.first().cloned();

        let signing = (|| {
            let pass = match new_local_keys.is_empty() {
                true => String::new(),
                false => self
                    .passphrases
                    .passphrase(&format!("Passphrase for the new {role} key: "))?,
            };
            let new_keys: Vec<(&str, &PrivateKey)> =
                new_local_keys.iter().map(|key| (role, key)).collect();
            self.publish_with_new_keys(gun, &new_keys, &pass, || {
                // A new root key signs the root that introduces it (5.3.5).
                let extra: Vec<&PrivateKey> = match top_level {
                    TopLevelRole::Root => new_local_keys.iter().collect(),
                    _ => Vec::new(),
                };
                let next = next_root(&root, self.session.home.config()?.expiry.root_days);
                self.publish_or_stage_root(
                    gun,
                    Some(&current),
                    next,
                    &extra,
                    files,
                    &format!("rotate the {role} key"),
                )
            })
        })()
        .during(|| format!("the {role} key rotation of {gun}"))?;
        Ok(RoleReport {
            gun: gun.to_string(),
            role: role.to_string(),
            new_key_id,
            root_version: signing.version,
            version: None,
            root_signing: Some(signing),
        })
    }

    /// Add or remove root key holders, or change the root threshold, in a
    /// new root (published, or staged for the holders to sign).
    pub fn change_root_keys(
        &self,
        gun: &Gun,
        change: &RootKeyChange,
    ) -> Result<RoleReport, PublishError> {
        self.refuse_if_staged(gun)?;
        let repo = self.open(gun)?;
        let current = repo.updater.trusted().root().clone();
        let mut root = current.signed.clone();
        let mut words = Vec::new();
        let mut keyids = root.role_keys("root")?.keyids.clone();
        for key in &change.add {
            let id = key.key_id();
            if keyids.contains(&id) {
                return Err(PublishError::Refused(format!(
                    "{id} is already a root key of {gun}"
                )));
            }
            root.keys.insert(id.clone(), key.clone());
            keyids.push(id.clone());
            words.push(format!("add root key {id}"));
        }
        for prefix in &change.remove {
            let matching: Vec<String> = keyids
                .iter()
                .filter(|id| id.starts_with(prefix.as_str()))
                .cloned()
                .collect();
            let id = match matching.as_slice() {
                [id] => id.clone(),
                [] => {
                    return Err(PublishError::Refused(format!(
                        "{prefix} is not a root key of {gun} (its root keys are {})",
                        keyids.join(", ")
                    )))
                }
                _ => {
                    return Err(PublishError::Refused(format!(
                        "{prefix} matches {} root keys of {gun}; give more of it",
                        matching.len()
                    )))
                }
            };
            keyids.retain(|k| *k != id);
            words.push(format!("remove root key {id}"));
        }
        let old_threshold = root.role_keys("root")?.threshold;
        let threshold = change.threshold.unwrap_or(old_threshold);
        if threshold != old_threshold {
            words.push(format!("root threshold {old_threshold} -> {threshold}"));
        }
        if words.is_empty() {
            return Err(PublishError::Refused(format!(
                "nothing to change in the root keys of {gun}"
            )));
        }
        if keyids.is_empty() {
            return Err(PublishError::Refused(
                "a root needs at least one root key".to_string(),
            ));
        }
        if threshold < 1 || threshold > keyids.len() as u64 {
            return Err(PublishError::Refused(format!(
                "root threshold {threshold} is impossible with {} root key(s); give --threshold",
                keyids.len()
            )));
        }
        let entry = root
            .roles
            .get_mut("root")
            .ok_or_else(|| PublishError::Refused("no root role".into()))?;
        entry.keyids = keyids;
        entry.threshold = threshold;
        root.prune_keys();
        self.next_root_report(gun, &current, &root, &words.join(", "))
    }

    /// Publish or stage the next version of `root` (changed from
    /// `current`, or a copy), signed by the root keys held here.
    fn next_root_report(
        &self,
        gun: &Gun,
        current: &Metadata<Root>,
        root: &Root,
        change: &str,
    ) -> Result<RoleReport, PublishError> {
        let next = next_root(root, self.session.home.config()?.expiry.root_days);
        let signing =
            self.publish_or_stage_root(gun, Some(current), next, &[], Vec::new(), change)?;
        Ok(RoleReport {
            gun: gun.to_string(),
            role: "root".into(),
            new_key_id: None,
            root_version: signing.version,
            version: Some(signing.version),
            root_signing: Some(signing),
        })
    }

    /// Re-sign `role` with a new expiry, content unchanged (`root`,
    /// `targets`, or a delegated role with `signer`).
    pub fn refresh_role(
        &self,
        gun: &Gun,
        signer: &crate::publisher::Signer,
        role: &str,
    ) -> Result<RoleReport, PublishError> {
        match TopLevelRole::parse(role) {
            Some(online) if online.is_online() => Err(PublishError::Refused(format!(
                "the server re-signs {role} on its own schedule; nothing to refresh here"
            ))),
            Some(TopLevelRole::Root) => {
                self.refuse_if_staged(gun)?;
                let repo = self.open(gun)?;
                let current = repo.updater.trusted().root().clone();
                self.next_root_report(
                    gun,
                    &current,
                    &current.signed,
                    "refresh the root (new expiry)",
                )
            }
            _ => {
                let published = self.change_role(gun, signer, &[], |_| Ok(()))?;
                let repo = self.open(gun)?;
                Ok(RoleReport {
                    gun: gun.to_string(),
                    role: signer.role().to_string(),
                    new_key_id: None,
                    root_version: repo.updater.trusted().root().signed.version,
                    version: Some(published.version),
                    root_signing: None,
                })
            }
        }
    }
}
