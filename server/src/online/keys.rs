//! Online keys: server-held ed25519 keys (timestamp, snapshot, and the
//! bin key of repositories whose hashed bins the server signs), the master
//! key that encrypts them at rest with AES-256-GCM, and their life cycle
//! (the first key of a role, rotations).
//!
//! A stored key is `nonce (12 bytes) || ciphertext+tag` of the 32-byte seed.
//! The GUN, role and key ID are the associated data, so a ciphertext copied
//! to another repository's row does not decrypt.
//!
//! The server signs with whichever of its keys the current root lists, so a
//! rotation takes effect when the publisher publishes a root listing the new
//! key. Bounds: a rotation needs a published repository (the first key of a
//! new one is [`NewKey::First`], one per role), and at most
//! [`MAX_PENDING_KEYS`] keys per role may wait for a root to list them, so a
//! push token cannot fill the database with keys.

use crate::error::ApiError;
use crate::storage::{OnlineKeyRow, RepoTx, Storage};
use actix_web::http::StatusCode;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use serde_json::json;
use std::path::Path;
use tagtrust_shared::{Metadata, PublicKey, Root, SigningKey, TopLevelRole};

const NONCE_LEN: usize = 12;
/// File in the data directory holding a generated master key (base64).
const MASTER_KEY_FILE: &str = "master.key";

/// Keys of one role newer than the newest one the current root lists.
const MAX_PENDING_KEYS: usize = 4;

/// Which role a server key signs: an online top-level role, or the
/// repository's hashed bins (`bins.key`, for publishers who let the server
/// hold the bin key; see `crate::publish::server_bins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRole {
    Top(TopLevelRole),
    Bins,
}

impl KeyRole {
    /// The name in `{role}.key` and in the `online_keys` table.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KeyRole::Top(role) => role.as_str(),
            KeyRole::Bins => tagtrust_shared::bins::BIN_PREFIX,
        }
    }

    /// The key role a `{role}.key` path names: timestamp, snapshot or bins.
    pub(crate) fn parse(role: &str) -> Option<KeyRole> {
        if role == tagtrust_shared::bins::BIN_PREFIX {
            return Some(KeyRole::Bins);
        }
        TopLevelRole::parse(role)
            .filter(|r| r.is_online())
            .map(KeyRole::Top)
    }
}

impl From<TopLevelRole> for KeyRole {
    fn from(role: TopLevelRole) -> Self {
        KeyRole::Top(role)
    }
}

impl std::fmt::Display for KeyRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SignerError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("master key file {path}: {source}")]
    MasterKeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("stored online key {key_id} cannot be decrypted (wrong master key or damaged row)")]
    Decrypt { key_id: String },
}

impl From<SignerError> for ApiError {
    fn from(e: SignerError) -> Self {
        tracing::error!(error = %e, "online key error");
        Self::internal("the server cannot use its online keys")
    }
}

/// The key that encrypts online keys. Its `Debug` form shows nothing.
pub(crate) struct MasterKey {
    cipher: Aes256Gcm,
    /// The key that signs registry bearer tokens, derived from the master
    /// key so every process sharing a database shares it too.
    token_secret: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// From base64 of exactly 32 bytes.
    fn from_base64(text: &str) -> Result<Self, SignerError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SignerError::MasterKey("not valid base64".into()))?;
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SignerError> {
        if bytes.len() != 32 {
            return Err(SignerError::MasterKey(format!(
                "must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| SignerError::MasterKey("bad key length".into()))?;
        // A separate key by domain separation: a token secret reveals
        // nothing of the key that seals the online keys.
        use sha2::{Digest, Sha256};
        let token_secret = Sha256::new()
            .chain_update(b"tagtrust registry bearer tokens\0")
            .chain_update(bytes)
            .finalize()
            .into();
        Ok(MasterKey {
            cipher,
            token_secret,
        })
    }

    /// The secret registry bearer tokens are signed with (HS256).
    pub(crate) fn token_secret(&self) -> &[u8; 32] {
        &self.token_secret
    }

    /// The configured key, else the one in `data_dir/master.key`, else a new
    /// one written there with mode 0600 (and a warning: whoever can read the
    /// data directory can then decrypt the online keys).
    pub(crate) fn load_or_generate(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<Self, SignerError> {
        if let Some(text) = configured {
            return Self::from_base64(text);
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let file_err = |source| SignerError::MasterKeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes: [u8; 32] = rand::random();
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                write_private_file(&path, text.as_bytes()).map_err(file_err)?;
                tracing::warn!(
                    path = %path.display(),
                    "no master key configured (TAGTRUST_SERVER_MASTER_KEY); generated one in the data directory. \
                     Anyone who can read it can decrypt the online signing keys: keep it apart from backups of the database"
                );
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    fn aad(gun: &str, role: KeyRole, key_id: &str) -> Vec<u8> {
        format!("tagtrust-online-key\0{gun}\0{role}\0{key_id}").into_bytes()
    }

    /// Encrypt `key`'s seed for storage.
    fn seal(&self, gun: &str, role: KeyRole, key: &SigningKey) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let seed = key.seed();
        let aad = Self::aad(gun, role, &key.key_id());
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: &seed,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypt a stored key and check it is the key the row claims.
    pub(crate) fn open(
        &self,
        gun: &str,
        role: KeyRole,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<SigningKey, SignerError> {
        let fail = || SignerError::Decrypt {
            key_id: key_id.to_string(),
        };
        if sealed.len() <= NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = Self::aad(gun, role, key_id);
        let seed = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| fail())?;
        let key = SigningKey::from_seed(&seed).map_err(|_| fail())?;
        if key.key_id() != key_id {
            return Err(fail());
        }
        Ok(key)
    }
}

/// Create `path` with mode 0600 (never readable by others, not even briefly).
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Why a key is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NewKey {
    /// The first of its role, for a repository that had none when the
    /// caller looked (another request may have made one since).
    First,
    /// A new newest key of a published repository (refused with
    /// [`MAX_PENDING_KEYS`] keys already waiting for a root).
    Rotation,
}

/// Generate, seal and store a new server key of `role` (an online role)
/// for `gun` under its lock; for [`NewKey::First`], the key another request
/// made while this one waited for the lock, if there is one.
pub(crate) async fn add_key(
    storage: &Storage,
    master: &MasterKey,
    gun: &str,
    role: KeyRole,
    why: NewKey,
) -> Result<PublicKey, ApiError> {
    let mut repo = storage.lock(gun).await?;
    if repo.is_mirrored().await? {
        return Err(ApiError::mirrored(gun));
    }
    match why {
        NewKey::First => {
            if let Some(existing) = repo.keys(role).await?.pop() {
                repo.commit().await?;
                return Ok(existing.public_key);
            }
        }
        NewKey::Rotation => check_rotation(&mut repo, role).await?,
    }
    let key = SigningKey::generate();
    let sealed = master.seal(gun, role, &key);
    let public = key.public_key();
    repo.insert_key(role, &public, &sealed).await?;
    repo.commit().await?;
    tracing::info!(gun = %gun, role = role.as_str(), key_id = %public.key_id(), "created online key");
    Ok(public)
}

/// A rotation is for a published repository, with fewer than
/// [`MAX_PENDING_KEYS`] keys of `role` newer than the newest its root lists.
async fn check_rotation(repo: &mut RepoTx, role: KeyRole) -> Result<(), ApiError> {
    let gun = repo.gun().to_string();
    if role == KeyRole::Bins {
        // A new bin key takes effect only in a targets the publisher signs
        // naming it, and then every bin must be re-signed under it in that
        // same publish; the server does not re-bin (SECURITY.md). Refused
        // rather than made and left unused.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "BINS_KEY_ROTATION",
            format!(
                "the server's bin key of {gun} cannot be rotated: the bins it signs are delegated by targets, \
                 which only the publisher re-signs, and re-binning under a new key is not supported"
            ),
        ));
    }
    let root = repo
        .current_files()
        .await?
        .into_iter()
        .find(|f| f.role == TopLevelRole::Root)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_PUBLISHED",
                format!(
                    "no trust data for {gun}: rotation is for published repositories \
                     (GET {role}.key gives a new repository its first key)"
                ),
            )
        })?;
    let root = Metadata::<Root>::from_bytes(&root.bytes)
        .map_err(|e| ApiError::internal(format!("stored root does not parse: {e}")))?;
    let keys = repo.keys(role).await?;
    let listed = |row: &OnlineKeyRow| {
        root.signed
            .keys
            .values()
            .any(|k| k.same_key(&row.public_key))
    };
    let pending = keys.iter().rev().take_while(|row| !listed(row)).count();
    if pending >= MAX_PENDING_KEYS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "PENDING_KEYS",
            format!(
                "{gun} already has {pending} {role} keys that no published root lists; \
                 publish a root listing the newest (GET {role}.key) before rotating again"
            ),
        )
        .with_detail(
            json!({ "role": role.as_str(), "pending": pending, "limit": MAX_PENDING_KEYS }),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    const SNAPSHOT: KeyRole = KeyRole::Top(TopLevelRole::Snapshot);
    const TIMESTAMP: KeyRole = KeyRole::Top(TopLevelRole::Timestamp);

    #[test]
    fn seal_and_open() {
        let master = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        let key = SigningKey::generate();
        let sealed = master.seal("acme/app", TIMESTAMP, &key);
        assert!(!sealed.windows(32).any(|w| w == key.seed().as_slice()));
        let back = master
            .open("acme/app", TIMESTAMP, &key.key_id(), &sealed)
            .unwrap();
        assert_eq!(back.key_id(), key.key_id());
        // Bound to its repository and role.
        assert!(master
            .open("acme/other", TIMESTAMP, &key.key_id(), &sealed)
            .is_err());
        assert!(master
            .open("acme/app", SNAPSHOT, &key.key_id(), &sealed)
            .is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other
            .open("acme/app", TIMESTAMP, &key.key_id(), &sealed)
            .is_err());
    }

    #[test]
    fn generated_master_key_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("tagtrust-mk-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::generate();
        let first = MasterKey::load_or_generate(None, &dir).unwrap();
        let sealed = first.seal("g", SNAPSHOT, &key);
        let second = MasterKey::load_or_generate(None, &dir).unwrap();
        second.open("g", SNAPSHOT, &key.key_id(), &sealed).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
