//! Notary v1's metadata dialect (issue 11), what the `notary` CLI and
//! Docker Content Trust write and read: `_type` `Root`/`Targets`/
//! `Snapshot`/`Timestamp`, base64 key values, hashes and signatures, a
//! `method` per signature, `meta` keyed by role name, nanosecond
//! `expires`, x509 certificates as root keys, delegations named
//! `targets/…`. The rules are Notary's own as written in its source and
//! observed on its 0.7 binaries (`docs/notary-v1.md`).
//!
//! Only parsing and the dialect's conversions live here: a signature check
//! turns Notary's keys and signatures into tagtrust's [`PublicKey`] and
//! [`Signature`] and asks [`crate::verify::verify_signatures`], the one
//! threshold check, so there is no second copy of it.
//!
//! What a Notary signature covers is the canonical JSON of the parsed
//! `signed` value (not the file's bytes), which is the OLPC form tagtrust
//! uses, except that Notary's JSON passes numbers through float64 and
//! cannot hold control characters: [`signed_bytes`] refuses both.

mod keys;
mod private_key;
mod repository;
mod roles;
#[cfg(test)]
mod tests;
mod write;

pub use keys::{check_root_certificate, CertificateError, NotaryKey, NotaryKeyVal};
pub use private_key::NotaryPrivateKey;
pub use repository::{
    verify_repository, NotaryRepositoryError, NotaryRepositoryFiles, VerifiedDelegation,
    VerifiedRepository,
};
pub use roles::{
    check_file_meta, file_meta_matches, is_delegation_name, Delegation, Delegations, FileMeta,
    NotaryRoot, NotarySnapshot, NotaryTargets, NotaryTimestamp, RoleKeys,
};
pub use write::{describe, signed_file};

use crate::error::{Error, Result};
use crate::metadata::Signature;
use crate::PublicKey;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Standard base64 with padding, as Notary writes keys, hashes and
/// signatures.
pub(crate) const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A signed Notary file: `{"signed": …, "signatures": […]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotarySigned {
    pub signed: Value,
    #[serde(default)]
    pub signatures: Vec<NotarySignature>,
}

/// One signature: the key ID, Notary's `method` and base64 `sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotarySignature {
    pub keyid: String,
    pub method: String,
    pub sig: String,
}

impl NotarySigned {
    pub fn from_bytes(bytes: &[u8]) -> Result<NotarySigned> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The `_type` of `signed`, if it is a string.
    pub fn kind(&self) -> Option<&str> {
        self.signed.get("_type")?.as_str()
    }

    /// `signed` as the role type `T`, checked to be of `T`'s `_type`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, expected: &str) -> Result<T> {
        match self.kind() {
            Some(found) if found == expected => Ok(serde_json::from_value(self.signed.clone())?),
            found => Err(Error::WrongType {
                expected: expected.to_string(),
                found: found.unwrap_or_default().to_string(),
            }),
        }
    }

    /// Check that a threshold of `keyids` (looked up in `keys`) signed
    /// this file, as Notary counts it (tuf/signed/verify.go): signatures by
    /// other keys are ignored; a signature by a listed key whose ID is not
    /// that key's own is refused.
    pub fn verify(
        &self,
        role: &str,
        keys: &BTreeMap<String, NotaryKey>,
        keyids: &[String],
        threshold: u64,
    ) -> Result<()> {
        let message = signed_bytes(&self.signed)?;
        let mut tuf_keys: BTreeMap<String, PublicKey> = BTreeMap::new();
        let mut signatures = Vec::with_capacity(self.signatures.len());
        for sig in &self.signatures {
            let Some(key) = keyids
                .contains(&sig.keyid)
                .then(|| keys.get(&sig.keyid))
                .flatten()
            else {
                continue;
            };
            if key.key_id()? != sig.keyid {
                return Err(Error::InvalidKey(format!(
                    "{role}: key {} is listed under another key's ID",
                    sig.keyid
                )));
            }
            // A key of a type or method tagtrust cannot check signs nothing.
            let Ok(public) = key.to_public_key(&sig.method) else {
                continue;
            };
            let Ok(raw) = BASE64.decode(sig.sig.trim()) else {
                continue;
            };
            tuf_keys.insert(sig.keyid.clone(), public);
            signatures.push(Signature {
                keyid: sig.keyid.clone(),
                sig: hex::encode(raw),
                extra: Default::default(),
            });
        }
        crate::verify::verify_signatures(role, &message, &signatures, &tuf_keys, keyids, threshold)
    }
}

/// The bytes a Notary signature covers: the canonical JSON of `signed`.
/// Refused when Notary could not have signed it: a string with a control
/// character, a number that is not an integer within ±2^53.
pub fn signed_bytes(signed: &Value) -> Result<Vec<u8>> {
    check_notary_json(signed)?;
    // What is parsed must be what is signed: two keys equal after NFC would
    // be one in the canonical form, the other riding along unsigned
    // (`canonical::canonical_signed`).
    crate::canonical::canonical_signed(signed)
}

/// An integer a float64 holds exactly (within ±2^53).
fn is_exact_integer(n: &serde_json::Number) -> bool {
    const MAX_EXACT: u64 = 1 << 53;
    n.as_u64().is_some_and(|n| n <= MAX_EXACT)
        || n.as_i64().is_some_and(|n| n.unsigned_abs() <= MAX_EXACT)
}

fn check_notary_json(value: &Value) -> Result<()> {
    match value {
        Value::String(s) if s.chars().any(|c| c.is_control() && (c as u32) < 0x20) => Err(
            Error::Canonical("a string with a control character (Notary cannot sign it)".into()),
        ),
        Value::Number(n) if !is_exact_integer(n) => Err(Error::Canonical(format!(
            "the number {n} (Notary signs only integers within 2^53)"
        ))),
        Value::Array(items) => items.iter().try_for_each(check_notary_json),
        Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            check_notary_json(&Value::String(key.clone()))?;
            check_notary_json(value)
        }),
        _ => Ok(()),
    }
}
