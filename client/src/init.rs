//! Creating a GUN's repository (`init`): its keys, root v1 (published at
//! once, or staged for the other root key holders) and an empty targets v1.

use crate::publish_error::{During, PublishError};
use crate::publisher::Publisher;
use crate::signing::sign_targets;
use crate::staging::RootSigning;
use chrono::{Duration, Utc};
use serde::Serialize;
use tagtrust_shared::{Gun, PrivateKey, PublicKey, Root, SigningKey, Targets, TopLevelRole};

/// What `init` created.
#[derive(Debug, Serialize)]
pub struct InitReport {
    pub gun: String,
    pub root_key_ids: Vec<String>,
    pub root_threshold: u64,
    pub targets_key_id: String,
    pub timestamp_key_id: String,
    pub snapshot_key_id: String,
    pub root_version: u64,
    pub targets_version: u64,
    /// More root signatures needed before the staged root can be published
    /// (0: published).
    pub root_signatures_needed: u64,
    /// Where root v1 stands: published, or staged and whose signatures it
    /// still needs.
    pub root_signing: RootSigning,
}
impl Publisher {
    /// Create the GUN's repository: `local_root_keys` root keys made here,
    /// the root key holders' public keys `holders` (each holder made their
    /// own key; this home never sees it), a targets key, the server's
    /// timestamp and snapshot keys, root v1 and an empty targets v1. Root v1
    /// is published when the local root keys meet `root_threshold`, else
    /// staged until enough holders have signed it (`root sign`).
    pub fn init(
        &self,
        gun: &Gun,
        local_root_keys: usize,
        holders: &[PublicKey],
        root_threshold: Option<u64>,
    ) -> Result<InitReport, PublishError> {
        let dir = self.session.home.metadata_dir(&self.session.server, gun);
        if dir.join("root.json").exists() {
            return Err(PublishError::Refused(format!(
                "{gun} is already initialised here ({} exists)",
                dir.display()
            )));
        }
        let total = local_root_keys + holders.len();
        let root_threshold = match root_threshold {
            Some(t) => t,
            None if total == 1 => 1,
            None => return Err(PublishError::Refused(format!("give --root-threshold M: how many of the {total} root keys must sign each root change"))),
        };
        if total < 1 || root_threshold < 1 || root_threshold > total as u64 {
            return Err(PublishError::Refused(format!(
                "--root-threshold {root_threshold} is impossible with {total} root key(s)"
            )));
        }
        let mut holder_ids = std::collections::BTreeSet::new();
        for key in holders {
            if !holder_ids.insert(key.key_id()) {
                return Err(PublishError::Refused(format!(
                    "root key {} is given twice",
                    key.key_id()
                )));
            }
        }
        self.refuse_if_staged(gun)?;
        let client = self.server_client()?;
        let timestamp_key = client.online_key(gun, TopLevelRole::Timestamp)?;
        let snapshot_key = client.online_key(gun, TopLevelRole::Snapshot)?;
        let pass = self
            .passphrases
            .passphrase("Passphrase for the new root and targets keys: ")?;

        let root_signers: Vec<PrivateKey> = (0..local_root_keys)
            .map(|_| SigningKey::generate().into())
            .collect();
        let targets_key = PrivateKey::from(SigningKey::generate());
        let now = Utc::now();
        let expiry = self.session.home.config()?.expiry;
        let mut root = Root::new(now + Duration::days(expiry.root_days));
        for key in root_signers
            .iter()
            .map(PrivateKey::public_key)
            .chain(holders.iter().cloned())
        {
            root.add_key("root", key);
        }
        root.roles.get_mut("root").expect("added above").threshold = root_threshold;
        root.add_key("targets", targets_key.public_key());
        root.add_key("timestamp", timestamp_key.clone());
        root.add_key("snapshot", snapshot_key.clone());
        tagtrust_shared::metadata::set_signed_at(&mut root.extra, now);
        let root_key_ids = root.role_keys("root")?.keyids.clone();
        let targets_bytes = sign_targets(Targets::new(1, now), &targets_key, &expiry)?;

        let new_keys: Vec<(&str, &PrivateKey)> = root_signers
            .iter()
            .map(|key| ("root", key))
            .chain([("targets", &targets_key)])
            .collect();
        let signing = self
            .publish_with_new_keys(gun, &new_keys, &pass, || {
                let signers: Vec<&PrivateKey> = root_signers.iter().collect();
                self.publish_or_stage_root(
                    gun,
                    None,
                    root,
                    &signers,
                    vec![("targets".to_string(), targets_bytes)],
                    "create the repository (root v1 and targets v1)",
                )
            })
            .during(|| format!("creating the repository {gun}"))?;
        Ok(InitReport {
            gun: gun.to_string(),
            root_key_ids,
            root_threshold,
            targets_key_id: targets_key.key_id(),
            timestamp_key_id: timestamp_key.key_id(),
            snapshot_key_id: snapshot_key.key_id(),
            root_version: 1,
            targets_version: 1,
            root_signatures_needed: signing.needed,
            root_signing: signing,
        })
    }
}
