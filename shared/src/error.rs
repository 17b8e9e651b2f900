//! Errors of the TUF core. Each says what failed in words a user can act on.

/// Anything that can go wrong parsing, verifying or signing TUF metadata.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),

    #[error("invalid {role} metadata: {reason}")]
    Schema { role: String, reason: String },

    #[error("expected {expected} metadata but got _type {found:?}")]
    WrongType { expected: String, found: String },

    #[error("unsupported spec_version {0:?} (this client speaks TUF 1.x)")]
    SpecVersion(String),

    #[error("metadata cannot be canonicalised (floats are not allowed in canonical JSON): {0}")]
    Canonical(String),

    #[error(
        "{role} is not signed by enough keys: {valid} valid signature(s), threshold {threshold}"
    )]
    Threshold {
        role: String,
        valid: usize,
        threshold: u64,
    },

    #[error("root version {found} is not the next root: expected version {expected}")]
    RootVersion { expected: u64, found: u64 },

    #[error("{role} carries more than one signature by key {keyid}")]
    DuplicateSignature { role: String, keyid: String },

    #[error("unsupported key: {0}")]
    UnsupportedKey(String),

    #[error("invalid key: {0}")]
    InvalidKey(String),

    #[error("length mismatch: expected {expected} bytes, got {actual}")]
    Length { expected: u64, actual: u64 },

    #[error("{algorithm} hash mismatch: expected {expected}, got {actual}")]
    Hash {
        algorithm: String,
        expected: String,
        actual: String,
    },

    #[error("unsupported hash algorithm {0:?}")]
    HashAlgorithm(String),

    #[error("private key: {0}")]
    PrivateKey(String),

    #[error("wrong passphrase for the private key (or the key file is damaged)")]
    WrongPassphrase,

    #[error("invalid image repository name {name:?}: {reason}")]
    InvalidGun { name: String, reason: String },

    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    #[error("invalid delegated role name {0:?}: role names are non-empty, at most 255 characters, with no '/', '\\', NUL or leading '.'")]
    InvalidRoleName(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
