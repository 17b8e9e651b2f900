//! Key rotation and re-signing of the roles a publisher holds.
//!
//! * Root: a new root version signed by the old root keys (so clients that
//!   trust the old root follow the chain) and by the new ones.
//! * Targets: a new root listing the new targets key, plus targets
//!   re-signed with it, in one atomic publish (clients check targets against
//!   the newest root, so the two must land together).
//! * Timestamp and snapshot: the server makes the new key; a new root lists
//!   it; the server signs with it from that publish on.

use crate::home::passphrase;
use crate::lookup::open_repository;
use crate::publisher::{renew_root, sign_targets, KeyCache, Publisher};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use tagtrust_shared::{Gun, Metadata, Role, SigningKey};

/// What a rotation or refresh published.
#[derive(Debug, Serialize)]
pub struct RoleReport {
    pub gun: String,
    pub role: String,
    /// The role's new key ID (rotation only).
    pub new_key_id: Option<String>,
    pub root_version: u64,
    /// New version of the refreshed role (refresh only).
    pub version: Option<u64>,
}

impl Publisher {
    /// Replace the key of a top-level role (`root`, `targets`, `snapshot`
    /// or `timestamp`) and publish a root listing the new one.
    pub fn rotate_key(&self, gun: &Gun, role: &str) -> Result<RoleReport> {
        let repo = open_repository(&self.home, &self.server, gun, &self.open_options())?;
        let trusted = repo.updater.trusted();
        let current_root = &trusted.root().signed;
        let client = self.server_client()?;
        let mut keys = KeyCache::default();
        let old_root_key = keys.top_level(self, gun, current_root, "root")?.clone();

        let mut root = current_root.clone();
        let mut files = Vec::new();
        let mut new_local_key = None;
        let new_key_id = match role {
            "root" | "targets" => {
                let key = SigningKey::generate();
                root.replace_role_keys(role, &[key.public_key()]);
                let id = key.key_id();
                new_local_key = Some(key);
                id
            }
            "timestamp" | "snapshot" => {
                let key = client.rotate_online_key(gun, role)?;
                root.replace_role_keys(role, std::slice::from_ref(&key));
                key.key_id()
            }
            other => bail!(
                "{other} is not a top-level role; delegated keys change with `delegation add`"
            ),
        };
        // The old root key always signs (the chain rule); a new root key too.
        let mut signers = vec![&old_root_key];
        if role == "root" {
            signers.push(new_local_key.as_ref().expect("generated above"));
        }
        let expiry = self.home.config()?.expiry;
        let root_bytes = renew_root(&root, &signers, &expiry)?;
        files.push(("root".to_string(), root_bytes.clone()));
        if role == "targets" {
            let current = trusted.targets().context("no trusted targets metadata")?;
            let mut targets = current.signed.clone();
            targets.version += 1;
            files.push((
                "targets".to_string(),
                sign_targets(
                    targets,
                    new_local_key.as_ref().expect("generated above"),
                    &expiry,
                )?,
            ));
        }

        // Store the new private key before publishing, remove it if the
        // publish fails: never a published key we do not hold.
        let saved = match &new_local_key {
            Some(key) => {
                let pass = passphrase(&format!("Passphrase for the new {role} key: "))?;
                Some(self.home.save_key(gun, role, key, &pass)?)
            }
            None => None,
        };
        if let Err(e) = client.publish(gun, &files) {
            if let Some(path) = saved {
                let _ = std::fs::remove_file(path);
            }
            return Err(e).with_context(|| format!("publishing the {role} key rotation of {gun}"));
        }
        Ok(RoleReport {
            gun: gun.to_string(),
            role: role.to_string(),
            new_key_id: Some(new_key_id),
            root_version: Metadata::<tagtrust_shared::Root>::from_bytes(&root_bytes)?
                .signed
                .version(),
            version: None,
        })
    }

    /// Re-sign `role` with a new expiry, content unchanged (`root`,
    /// `targets`, or a delegated role with `signer`).
    pub fn refresh_role(
        &self,
        gun: &Gun,
        signer: &crate::publisher::Signer,
        role: &str,
    ) -> Result<RoleReport> {
        match role {
            "timestamp" | "snapshot" => {
                bail!("the server re-signs {role} on its own schedule; nothing to refresh here")
            }
            "root" => {
                let repo = open_repository(&self.home, &self.server, gun, &self.open_options())?;
                let root = &repo.updater.trusted().root().signed;
                let mut keys = KeyCache::default();
                let key = keys.top_level(self, gun, root, "root")?;
                let bytes = renew_root(root, &[key], &self.home.config()?.expiry)?;
                self.server_client()?
                    .publish(gun, &[("root".to_string(), bytes.clone())])
                    .with_context(|| format!("publishing the refreshed root of {gun}"))?;
                let version = Metadata::<tagtrust_shared::Root>::from_bytes(&bytes)?
                    .signed
                    .version;
                Ok(RoleReport {
                    gun: gun.to_string(),
                    role: "root".into(),
                    new_key_id: None,
                    root_version: version,
                    version: Some(version),
                })
            }
            _ => {
                let published = self.change_role(gun, signer, "", |_| Ok(()))?;
                let repo = open_repository(&self.home, &self.server, gun, &self.open_options())?;
                Ok(RoleReport {
                    gun: gun.to_string(),
                    role: signer.role().to_string(),
                    new_key_id: None,
                    root_version: repo.updater.trusted().root().signed.version,
                    version: Some(published.version),
                })
            }
        }
    }
}
