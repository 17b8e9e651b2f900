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

use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::storage::{OnlineKeyRow, RepoTx, Storage};
use actix_web::http::StatusCode;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use hashlink::LruCache;
use serde_json::json;
use std::path::Path;
use std::sync::Mutex;
use tagtrust_shared::notary::{NotaryRoot, NotarySigned};
use tagtrust_shared::{Metadata, P256SigningKey, PublicKey, Root, SigningKey, TopLevelRole};

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
    /// Keys [`MasterKey::open_online`] opened, by a digest of what it was
    /// given (repository, role, key ID, sealed secret): a publish signs with
    /// the same two keys each time, and deriving an ed25519 key's public
    /// half from its seed, a scalar multiplication, was a twentieth of a
    /// publish into hashed bins. Never stale: another sealed secret (a
    /// rotated key, a changed row) is another entry.
    opened: Mutex<LruCache<[u8; 32], OnlineKey>>,
}

/// How many opened keys [`MasterKey`] keeps (two per repository that
/// publishes, a few hundred bytes each).
const OPENED_KEYS: usize = 4096;

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
            opened: Mutex::new(LruCache::new(OPENED_KEYS)),
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

    /// Encrypt a key's 32-byte secret (an ed25519 seed or a P-256 scalar)
    /// for storage, bound to its repository, role and key ID.
    fn seal_secret(&self, gun: &str, role: KeyRole, key_id: &str, secret: &[u8]) -> Vec<u8> {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let aad = Self::aad(gun, role, key_id);
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce_bytes),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .expect("AES-GCM encryption of 32 bytes cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    /// Decrypt a stored ed25519 key and check it is the key the row claims.
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
        let seed = self.open_secret(gun, role, key_id, sealed)?;
        let key = SigningKey::from_seed(&seed).map_err(|_| fail())?;
        if key.key_id() != key_id {
            return Err(fail());
        }
        Ok(key)
    }

    /// Decrypt a stored key of either type (by the type its row lists) and
    /// check it is the key the row claims.
    pub(crate) fn open_online(
        &self,
        gun: &str,
        role: KeyRole,
        row: &OnlineKeyRow,
    ) -> Result<OnlineKey, SignerError> {
        let fail = || SignerError::Decrypt {
            key_id: row.key_id.clone(),
        };
        let opened = Self::opened_id(gun, role, &row.key_id, &row.sealed_seed);
        let cache = || self.opened.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = cache().get(&opened) {
            return Ok(key.clone());
        }
        let key = match KeyType::of(&row.public_key) {
            Some(KeyType::Ed25519) => {
                OnlineKey::Ed25519(self.open(gun, role, &row.key_id, &row.sealed_seed)?)
            }
            Some(KeyType::EcdsaP256) => {
                let secret = self.open_secret(gun, role, &row.key_id, &row.sealed_seed)?;
                OnlineKey::EcdsaP256(P256SigningKey::from_secret(&secret).map_err(|_| fail())?)
            }
            None => return Err(fail()),
        };
        if key.public_key().key_id() != row.key_id {
            return Err(fail());
        }
        cache().insert(opened, key.clone());
        Ok(key)
    }

    /// What [`MasterKey::opened`] keys an opened key by.
    fn opened_id(gun: &str, role: KeyRole, key_id: &str, sealed: &[u8]) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        // Each part length-prefixed: no two inputs digest alike.
        let mut digest = Sha256::new();
        for part in [
            gun.as_bytes(),
            role.as_str().as_bytes(),
            key_id.as_bytes(),
            sealed,
        ] {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        digest.finalize().into()
    }

    fn open_secret(
        &self,
        gun: &str,
        role: KeyRole,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SignerError> {
        let fail = || SignerError::Decrypt {
            key_id: key_id.to_string(),
        };
        if sealed.len() <= NONCE_LEN {
            return Err(fail());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let aad = Self::aad(gun, role, key_id);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| fail())
    }
}

/// The kinds of online key the server makes: ed25519 (spec-TUF
/// repositories, and Notary ones with `--notary-key-type ed25519`) and
/// ECDSA P-256 (Notary repositories by default, as notary-signer makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Ed25519,
    EcdsaP256,
}

impl KeyType {
    /// The setting's spelling (`ed25519`, `ecdsa`).
    pub(crate) fn parse(text: &str) -> Option<KeyType> {
        match text {
            "ed25519" => Some(KeyType::Ed25519),
            "ecdsa" => Some(KeyType::EcdsaP256),
            _ => None,
        }
    }

    fn of(key: &PublicKey) -> Option<KeyType> {
        match key.keytype.as_str() {
            "ed25519" => Some(KeyType::Ed25519),
            "ecdsa" => Some(KeyType::EcdsaP256),
            _ => None,
        }
    }
}

/// A server-held private key, opened for signing.
#[derive(Clone)]
pub(crate) enum OnlineKey {
    Ed25519(SigningKey),
    EcdsaP256(P256SigningKey),
}

impl OnlineKey {
    fn generate(kind: KeyType) -> OnlineKey {
        match kind {
            KeyType::Ed25519 => OnlineKey::Ed25519(SigningKey::generate()),
            KeyType::EcdsaP256 => OnlineKey::EcdsaP256(P256SigningKey::generate()),
        }
    }

    pub(crate) fn public_key(&self) -> PublicKey {
        match self {
            OnlineKey::Ed25519(key) => key.public_key(),
            OnlineKey::EcdsaP256(key) => key.public_key(),
        }
    }

    fn secret(&self) -> [u8; 32] {
        match self {
            OnlineKey::Ed25519(key) => key.seed(),
            OnlineKey::EcdsaP256(key) => key.secret(),
        }
    }

    /// A signature over `message` as TUF writes it (hex; ECDSA DER-encoded,
    /// as securesystemslib writes and reads it), under the key's own ID.
    pub(crate) fn sign_tuf(&self, message: &[u8]) -> tagtrust_shared::metadata::Signature {
        match self {
            OnlineKey::Ed25519(key) => key.sign(message),
            OnlineKey::EcdsaP256(key) => {
                let raw = key.sign(message);
                let der = p256::ecdsa::Signature::from_slice(&raw)
                    .expect("64 bytes we wrote")
                    .to_der();
                tagtrust_shared::metadata::Signature {
                    keyid: key.public_key().key_id(),
                    sig: hex::encode(der.as_bytes()),
                    extra: Default::default(),
                }
            }
        }
    }

    /// A signature over `message` as Notary writes it: its `method` and
    /// raw bytes (ed25519's 64, ECDSA's `r || s`).
    pub(crate) fn sign_notary(&self, message: &[u8]) -> (&'static str, Vec<u8>) {
        match self {
            OnlineKey::Ed25519(key) => {
                let sig = hex::decode(key.sign(message).sig).expect("hex we wrote");
                ("eddsa", sig)
            }
            OnlineKey::EcdsaP256(key) => ("ecdsa", key.sign(message).to_vec()),
        }
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
    kind: KeyType,
) -> Result<PublicKey, ApiError> {
    let mut repo = storage.lock(gun).await?;
    if repo.is_mirrored() {
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
    let key = OnlineKey::generate(kind);
    let public = key.public_key();
    let sealed = master.seal_secret(gun, role, &public.key_id(), &key.secret());
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
    let root_keys = root_keys(&root.bytes, repo.dialect())
        .map_err(|e| ApiError::internal(format!("stored root does not parse: {e}")))?;
    let keys = repo.keys(role).await?;
    let listed = |row: &OnlineKeyRow| root_keys.iter().any(|k| k.same_key(&row.public_key));
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

/// Every key a stored root lists, in its dialect.
fn root_keys(
    bytes: &[u8],
    dialect: Option<Dialect>,
) -> Result<Vec<PublicKey>, tagtrust_shared::Error> {
    if dialect == Some(Dialect::Notary) {
        let root: NotaryRoot = NotarySigned::from_bytes(bytes)?.parse("Root")?;
        return Ok(root
            .keys
            .values()
            .filter_map(|key| key.to_public_key(key.method()).ok())
            .collect());
    }
    let root = Metadata::<Root>::from_bytes(bytes)?;
    Ok(root.signed.keys.into_values().collect())
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
        let sealed = master.seal_secret("acme/app", TIMESTAMP, &key.key_id(), &key.seed());
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
    fn a_p256_key_is_sealed_and_opened_like_an_ed25519_one() {
        let master = MasterKey::from_bytes(&[7u8; 32]).unwrap();
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256] {
            let key = OnlineKey::generate(kind);
            let public = key.public_key();
            let row = OnlineKeyRow {
                key_id: public.key_id(),
                sealed_seed: master.seal_secret("g", TIMESTAMP, &public.key_id(), &key.secret()),
                public_key: public.clone(),
            };
            let opened = master.open_online("g", TIMESTAMP, &row).unwrap();
            assert_eq!(opened.public_key(), public);
            // Opened again (from `opened`), and still refused for another
            // role, repository or sealed secret.
            let again = master.open_online("g", TIMESTAMP, &row).unwrap();
            assert_eq!(again.public_key(), public);
            assert!(master.open_online("g", SNAPSHOT, &row).is_err());
            assert!(master.open_online("h", TIMESTAMP, &row).is_err());
            let mut tampered = row.clone();
            *tampered.sealed_seed.last_mut().unwrap() ^= 1;
            assert!(master.open_online("g", TIMESTAMP, &tampered).is_err());
            let (method, sig) = opened.sign_notary(b"message");
            assert_eq!(
                method,
                if kind == KeyType::Ed25519 {
                    "eddsa"
                } else {
                    "ecdsa"
                }
            );
            assert!(public.verify(b"message", &hex::encode(sig)).unwrap());
        }
    }

    #[test]
    fn generated_master_key_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("tagtrust-mk-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::generate();
        let first = MasterKey::load_or_generate(None, &dir).unwrap();
        let sealed = first.seal_secret("g", SNAPSHOT, &key.key_id(), &key.seed());
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
