//! `tagtrust migrate notary`: fetch a Notary repository from the server it
//! lives on, verify it as a Notary client does
//! ([`tagtrust_shared::notary::verify_repository`]), read the publisher's
//! own keys from the Notary trust directory, and publish the same tags,
//! digests, sizes and delegations as a spec-TUF repository
//! ([`crate::notary_convert`]) in one publish. Nothing is published unless
//! all of that succeeded; afterwards the new repository is read back
//! through the TUF workflow and every tag compared. The keys it signed
//! with are stored in the home's keyring for the new GUN (re-encrypted
//! under the home's passphrase), so every later tag, delegation and key
//! command works on it as on a repository `init` made.
//!
//! The destination is a spec-TUF GUN: another GUN (`to`), or the same
//! one on another server. A GUN's dialect is fixed by its first publish,
//! so a Notary GUN never changes dialect in place.

use crate::fetch::{Fetcher, HttpFetcher};
use crate::home::server_dir_name;
use crate::notary_convert::{convert, tuf_key_role, ConvertError, ConvertedRole};
use crate::passphrase::PassphraseError;
use crate::publish_error::{During, PublishError};
use crate::publisher::Publisher;
use crate::remote::metadata_url;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagtrust_shared::notary::{
    verify_repository, NotaryKey, NotaryPrivateKey, NotaryRepositoryFiles, NotaryRoot,
    NotarySigned, NotarySnapshot, NotaryTimestamp,
};
use tagtrust_shared::{Gun, P256SigningKey, PrivateKey, TopLevelRole};

/// At most this many bytes per Notary metadata file (notary-server's own
/// limit on a role file is 100 MiB; tagtrust's publish limit is lower).
const MAX_FILE: u64 = 32 * 1024 * 1024;

/// At most this many root versions are walked.
const MAX_ROOT_VERSIONS: u64 = 1024;

/// Passphrases of Notary key files, by the key's role (`root`, `targets`,
/// `targets/releases`) and Notary key ID, as `notary` asks for them.
pub trait NotaryPassphrases {
    fn passphrase(&self, role: &str, key_id: &str) -> Result<String, PassphraseError>;
}

impl<F: Fn(&str, &str) -> Result<String, PassphraseError>> NotaryPassphrases for F {
    fn passphrase(&self, role: &str, key_id: &str) -> Result<String, PassphraseError> {
        self(role, key_id)
    }
}

/// What to migrate, from where, to where.
#[derive(Debug, Clone)]
pub struct MigrateNotary {
    /// The Notary repository.
    pub gun: Gun,
    /// The server it lives on (a tagtrust-server serving it in Notary's
    /// dialect, or a notary-server).
    pub from: String,
    /// The spec-TUF GUN to publish, on the publisher's session server.
    pub to: Gun,
    /// The publisher's Notary trust directory (`~/.docker/trust`).
    pub trust_dir: PathBuf,
}

/// What a migration published.
#[derive(Debug, Serialize)]
pub struct MigrateReport {
    pub gun: String,
    pub from: String,
    pub to: String,
    pub server: String,
    /// Versions of the Notary repository that were verified.
    pub notary_root_version: u64,
    pub notary_targets_version: u64,
    /// The new root's key IDs (what a consumer pins) and targets keys.
    pub root_key_ids: Vec<String>,
    pub targets_key_ids: Vec<String>,
    pub roles: Vec<ConvertedRole>,
    /// The Notary keys now in this home's keyring for the new GUN,
    /// re-encrypted under its passphrase.
    pub stored_keys: Vec<MigratedKey>,
    /// Tags the new repository resolves (read back through the TUF
    /// workflow), each with the digest it resolves to.
    pub tags: BTreeMap<String, String>,
}

/// A Notary key stored in the keyring by the migration.
#[derive(Debug, Serialize)]
pub struct MigratedKey {
    /// The spec-TUF role it signs (`root`, `targets`, `releases`).
    pub role: String,
    pub key_id: String,
}

impl Publisher {
    /// Migrate `what`; passphrases for the Notary keys from `passphrases`.
    pub fn migrate_notary(
        &self,
        what: &MigrateNotary,
        passphrases: &dyn NotaryPassphrases,
    ) -> Result<MigrateReport, PublishError> {
        let server = &self.session.server;
        if what.gun == what.to && server_dir_name(&what.from) == server_dir_name(server) {
            return Err(PublishError::Refused(format!(
                "{} is a Notary repository on {server}, and a GUN's dialect is fixed by its first publish: migrate it to another GUN (--to) or to another server (--server)",
                what.gun
            )));
        }
        let dir = self.session.home.metadata_dir(server, &what.to);
        if dir.join("root.json").exists() {
            return Err(PublishError::Refused(format!(
                "{} is already initialised here ({} exists)",
                what.to,
                dir.display()
            )));
        }
        // The session's token is for its own server only: a source that is
        // another server gets none (Notary repositories are read anonymously).
        let fetcher = if server_dir_name(&what.from) == server_dir_name(server) {
            self.session.metadata_fetcher()?
        } else {
            HttpFetcher::new(self.session.http.clone())?
        };
        let files = fetch_notary(&fetcher, what).during(|| {
            format!(
                "fetching the Notary repository {} from {}",
                what.gun, what.from
            )
        })?;
        let verified = verify_repository(what.gun.as_str(), &files, chrono::Utc::now())
            .map_err(|e| PublishError::Refused(format!("{} does not verify: {e}", what.gun)))?;
        let held = read_keys(&what.trust_dir, &what.gun, &verified, passphrases)?;
        // Each held key under the spec-TUF name of the role it signs, so
        // that `tag set`, `delegation add`, `key rotate` … find it by the
        // key ID the new root or targets lists.
        let stored: Vec<(String, PrivateKey)> = held
            .iter()
            .map(|(role, key)| Ok((tuf_key_role(role)?, PrivateKey::from(key.clone()))))
            .collect::<Result<_, ConvertError>>()?;
        let held: Vec<P256SigningKey> = held.into_iter().map(|(_, key)| key).collect();

        let client = self.server_client()?;
        let timestamp_key = client.online_key(&what.to, TopLevelRole::Timestamp)?;
        let snapshot_key = client.online_key(&what.to, TopLevelRole::Snapshot)?;
        let expiry = self.session.home.config()?.expiry;
        let conversion = convert(
            &verified,
            &held,
            &timestamp_key,
            &snapshot_key,
            &expiry,
            chrono::Utc::now(),
        )?;
        // Re-encrypted under this home's passphrase, as every other key it
        // holds (README, "Coming from Notary v1"), and stored before the
        // publish: a repository whose keys are nowhere is a dead end.
        let pass = self.passphrases.passphrase(&format!(
            "Passphrase for the keys of {} in this home: ",
            what.to
        ))?;
        let new_keys: Vec<(&str, &PrivateKey)> = stored
            .iter()
            .map(|(role, key)| (role.as_str(), key))
            .collect();
        self.publish_with_new_keys(&what.to, &new_keys, &pass, || {
            client
                .publish(&what.to, &conversion.files)
                .during(|| format!("publishing {} (root v1 and its targets)", what.to))?;
            crate::bootstrap::store_initial_root(&dir, &conversion.files[0].1, 1)?;
            Ok(())
        })?;

        // Read back as a consumer would, and compare with what Notary had.
        let tags: BTreeMap<String, String> = self
            .list(&what.to)?
            .into_iter()
            .map(|entry| (entry.tag, entry.digest.unwrap_or_default()))
            .collect();
        Ok(MigrateReport {
            gun: what.gun.to_string(),
            from: what.from.clone(),
            to: what.to.to_string(),
            server: server.clone(),
            notary_root_version: verified.root.version,
            notary_targets_version: verified.targets.version,
            root_key_ids: conversion.root_key_ids,
            targets_key_ids: conversion.targets_key_ids,
            roles: conversion.roles,
            stored_keys: stored
                .iter()
                .map(|(role, key)| MigratedKey {
                    role: role.clone(),
                    key_id: key.key_id(),
                })
                .collect(),
            tags,
        })
    }
}

fn unverified<T: serde::de::DeserializeOwned>(bytes: &[u8], kind: &str) -> Result<T, PublishError> {
    Ok(NotarySigned::from_bytes(bytes)?.parse(kind)?)
}

/// A role file's URL by the hex of the sha256 its referrer lists (Notary's
/// `{role}.{sha256}.json`), so a publish in between cannot mix versions.
fn by_hash(
    base: &str,
    role: &str,
    meta: &tagtrust_shared::notary::FileMeta,
) -> Result<String, PublishError> {
    use base64::Engine;
    let digest = meta
        .hashes
        .get("sha256")
        .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        .ok_or_else(|| {
            PublishError::Refused(format!("Notary {role} is listed without a sha256"))
        })?;
    Ok(format!("{base}{role}.{}.json", hex::encode(digest)))
}

/// Everything a Notary client would fetch: the root chain from the trust
/// directory's cached root (or version 1), timestamp, snapshot, and every
/// targets role the snapshot lists.
fn fetch_notary(
    fetcher: &HttpFetcher,
    what: &MigrateNotary,
) -> Result<NotaryRepositoryFiles, PublishError> {
    let base = metadata_url(&what.from, &what.gun);
    let get = |name: &str| -> Result<Vec<u8>, PublishError> {
        Ok(fetcher.fetch(&format!("{base}{name}"), MAX_FILE)?)
    };
    let cached = what
        .trust_dir
        .join("tuf")
        .join(what.gun.as_str())
        .join("metadata")
        .join("root.json");
    let trusted_root = match std::fs::read(&cached) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(PublishError::Refused(format!(
                "reading {}: {e}",
                cached.display()
            )))
        }
    };
    let trusted_version = match &trusted_root {
        Some(bytes) => {
            unverified::<NotaryRoot>(bytes, "Root")
                .during(|| format!("the cached root {}", cached.display()))?
                .version
        }
        None => 0,
    };
    let current = get("root.json")?;
    let current_version = unverified::<NotaryRoot>(&current, "Root")?.version;
    let mut roots = Vec::new();
    if current_version < trusted_version {
        // Handed to the verifier, which refuses the rollback by name.
        roots.push(current);
    } else if current_version > trusted_version {
        if current_version - trusted_version > MAX_ROOT_VERSIONS {
            return Err(PublishError::Refused(format!(
                "the server's root is version {current_version}, more than {MAX_ROOT_VERSIONS} after version {trusted_version}"
            )));
        }
        for version in trusted_version + 1..current_version {
            roots.push(get(&format!("{version}.root.json"))?);
        }
        roots.push(current);
    }
    let timestamp = get("timestamp.json")?;
    let ts: NotaryTimestamp = unverified(&timestamp, "Timestamp")?;
    let snapshot_meta = ts
        .meta
        .get("snapshot")
        .ok_or_else(|| PublishError::Refused("the Notary timestamp lists no snapshot".into()))?;
    let snapshot = fetcher.fetch(&by_hash(&base, "snapshot", snapshot_meta)?, MAX_FILE)?;
    let snap: NotarySnapshot = unverified(&snapshot, "Snapshot")?;
    let mut targets = BTreeMap::new();
    for (role, meta) in &snap.meta {
        if role == "targets" || tagtrust_shared::notary::is_delegation_name(role) {
            targets.insert(
                role.clone(),
                fetcher.fetch(&by_hash(&base, role, meta)?, MAX_FILE)?,
            );
        }
    }
    Ok(NotaryRepositoryFiles {
        trusted_root,
        roots,
        timestamp,
        snapshot,
        targets,
    })
}

/// The file of Notary private key `id` in `trust_dir`, where notary 0.7
/// keeps it (`private/<id>.key`) or older versions did
/// (`private/root_keys/`, `private/tuf_keys/<GUN>/`).
fn key_file(trust_dir: &Path, gun: &Gun, id: &str) -> Option<PathBuf> {
    let private = trust_dir.join("private");
    [
        private.join(format!("{id}.key")),
        private.join("root_keys").join(format!("{id}.key")),
        private
            .join("tuf_keys")
            .join(gun.as_str())
            .join(format!("{id}.key")),
    ]
    .into_iter()
    .find(|path| path.is_file())
}

/// The private keys of the root, targets and delegation keys the
/// repository lists that the trust directory holds, decrypted (a wrong
/// passphrase is an error, not a key left out), each with the Notary role
/// it is listed for (`root`, `targets`, `targets/releases`).
fn read_keys(
    trust_dir: &Path,
    gun: &Gun,
    repo: &tagtrust_shared::notary::VerifiedRepository,
    passphrases: &dyn NotaryPassphrases,
) -> Result<Vec<(String, P256SigningKey)>, PublishError> {
    let mut wanted: Vec<(String, &NotaryKey)> = Vec::new();
    for role in ["root", "targets"] {
        for id in &repo.root.role_keys(role)?.keyids {
            wanted.push((role.to_string(), &repo.root.keys[id]));
        }
    }
    for delegation in &repo.delegations {
        for key in delegation.keys.values() {
            wanted.push((delegation.delegation.name.clone(), key));
        }
    }
    let mut held = Vec::new();
    for (listed_as, key) in wanted {
        let id = key.private_key_id()?;
        let Some(path) = key_file(trust_dir, gun, &id) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| PublishError::Refused(format!("reading {}: {e}", path.display())))?;
        let file = NotaryPrivateKey::parse(&text)
            .map_err(|e| PublishError::Refused(format!("{}: {e}", path.display())))?;
        let role = file.role.clone().unwrap_or_else(|| listed_as.clone());
        let pass = passphrases.passphrase(&role, &id)?;
        let private = file.decrypt(&pass).map_err(|e| {
            PublishError::Refused(format!(
                "the Notary {role} key {id} ({}): {e}",
                path.display()
            ))
        })?;
        let public = key.to_tuf_key()?;
        if !private.public_key().same_key(&public) {
            return Err(PublishError::Refused(format!(
                "{} does not hold the key {id} it is named for",
                path.display()
            )));
        }
        held.push((listed_as, private));
    }
    Ok(held)
}
