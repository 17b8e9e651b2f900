//! Writing Notary files, for the roles the server signs itself (snapshot,
//! timestamp): the file layout notary-server writes, and the `meta` entry
//! describing a file.

use super::{FileMeta, NotaryKey, NotaryKeyVal, NotarySignature, BASE64};
use crate::error::Result;
use crate::PublicKey;
use base64::Engine;
use serde_json::Value;

/// A signed Notary file as notary's tools write it:
/// `{"signed":<canonical signed>,"signatures":[…]}` (`signed` first, each
/// signature `keyid`, `method`, `sig`).
pub fn signed_file(signed: &Value, signatures: &[NotarySignature]) -> Result<Vec<u8>> {
    let mut out = b"{\"signed\":".to_vec();
    out.extend_from_slice(&super::signed_bytes(signed)?);
    out.extend_from_slice(b",\"signatures\":");
    out.extend_from_slice(&serde_json::to_vec(signatures)?);
    out.push(b'}');
    Ok(out)
}

/// How Notary's snapshot and timestamp describe a file: its length and its
/// sha256 and sha512, base64.
pub fn describe(bytes: &[u8]) -> FileMeta {
    use sha2::{Digest, Sha256, Sha512};
    FileMeta {
        length: bytes.len() as u64,
        hashes: [
            ("sha256".to_string(), BASE64.encode(Sha256::digest(bytes))),
            ("sha512".to_string(), BASE64.encode(Sha512::digest(bytes))),
        ]
        .into(),
        custom: None,
        extra: Default::default(),
    }
}

impl NotaryKey {
    /// A tagtrust key as Notary lists it: `ed25519` (base64 of the
    /// 32-byte point) or `ecdsa` (base64 of the DER SubjectPublicKeyInfo);
    /// `None` for another key type or a malformed key.
    pub fn from_public_key(key: &PublicKey) -> Option<NotaryKey> {
        let (keytype, raw) = match key.keytype.as_str() {
            "ed25519" => ("ed25519", hex::decode(key.keyval.public.trim()).ok()?),
            "ecdsa" | "ecdsa-sha2-nistp256" => {
                use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
                let point =
                    p256::ecdsa::VerifyingKey::from_public_key_pem(key.keyval.public.trim())
                        .ok()?;
                ("ecdsa", point.to_public_key_der().ok()?.as_bytes().to_vec())
            }
            _ => return None,
        };
        Some(NotaryKey {
            keytype: keytype.into(),
            keyval: NotaryKeyVal {
                private: None,
                public: BASE64.encode(raw),
            },
        })
    }

    /// The Notary signature method for this key's type.
    pub fn method(&self) -> &'static str {
        match self.keytype.as_str() {
            "ed25519" => "eddsa",
            "rsa" | "rsa-x509" => "rsapss",
            _ => "ecdsa",
        }
    }
}
