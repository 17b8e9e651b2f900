//! The private key files of a Notary trust directory (`private/<keyid>.key`,
//! trustmanager/keystore.go and tuf/utils/pkcs8.go): one PEM block, an
//! encrypted PKCS#8 `ENCRYPTED PRIVATE KEY` (PBES2: PBKDF2, HMAC-SHA1 by
//! default, AES-256-CBC), with RFC 1421-style headers before the base64 body
//! saying which role the key is for (`role: root`, `role: targets`,
//! `role: targets/releases`) and, for all but root keys, the GUN
//! (`gun: registry.example.com/acme/app`).
//!
//! Strict RFC 7468 PEM parsers refuse those headers, so the block is split
//! here and the DER handed to the `pkcs8` crate, which does the decryption.
//! Only ECDSA P-256 keys, what `notary` generates for every role, are
//! returned as signing keys; anything else is said to be unsupported.

use crate::error::{Error, Result};
use crate::keys::P256SigningKey;
use base64::Engine;

/// A Notary private key file, still encrypted.
#[derive(Clone)]
pub struct NotaryPrivateKey {
    /// The `role:` header (`root`, `targets`, `targets/releases`, …).
    pub role: Option<String>,
    /// The `gun:` header (absent on root keys, which are not per GUN).
    pub gun: Option<String>,
    encrypted_der: Vec<u8>,
}

impl std::fmt::Debug for NotaryPrivateKey {
    // The ciphertext is not printed: it is still key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotaryPrivateKey")
            .field("role", &self.role)
            .field("gun", &self.gun)
            .finish_non_exhaustive()
    }
}

const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

impl NotaryPrivateKey {
    /// Parse a key file's text: one `ENCRYPTED PRIVATE KEY` block, its
    /// `name: value` headers, a blank line, base64.
    pub fn parse(text: &str) -> Result<NotaryPrivateKey> {
        let invalid = |why: &str| Error::PrivateKey(format!("not a Notary key file: {why}"));
        let mut lines = text.lines().map(str::trim_end);
        let first = lines.by_ref().find(|line| !line.trim().is_empty());
        if first != Some(BEGIN) {
            // Notary before 0.6 wrote legacy OpenSSL-encrypted EC keys;
            // those are not PKCS#8 and are refused by name.
            return Err(invalid(
                "expected an encrypted PKCS#8 key ('-----BEGIN ENCRYPTED PRIVATE KEY-----')",
            ));
        }
        let (mut role, mut gun, mut body) = (None, None, String::new());
        let mut in_headers = true;
        let mut ended = false;
        for line in lines {
            if line == END {
                ended = true;
                break;
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                    continue;
                }
                if let Some((name, value)) = line.split_once(':') {
                    match name.trim() {
                        "role" => role = Some(value.trim().to_string()),
                        "gun" => gun = Some(value.trim().to_string()),
                        _ => {}
                    }
                    continue;
                }
                // A block without headers: the body starts at once.
                in_headers = false;
            }
            body.push_str(line.trim());
        }
        if !ended {
            return Err(invalid("no END line"));
        }
        let encrypted_der = crate::notary::BASE64
            .decode(body)
            .map_err(|_| invalid("the key is not base64"))?;
        Ok(NotaryPrivateKey {
            role,
            gun,
            encrypted_der,
        })
    }

    /// Decrypt with `passphrase`. [`Error::WrongPassphrase`] when it does
    /// not decrypt; [`Error::UnsupportedKey`] for a key that is not ECDSA
    /// P-256.
    pub fn decrypt(&self, passphrase: &str) -> Result<P256SigningKey> {
        use p256::pkcs8::DecodePrivateKey;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(self.encrypted_der.as_slice())
            .map_err(|e| Error::PrivateKey(format!("not an encrypted PKCS#8 key: {e}")))?;
        // A wrong passphrase shows as a padding failure or, rarely, as
        // garbage that is not DER: both mean the passphrase.
        let document = info
            .decrypt(passphrase)
            .map_err(|_| Error::WrongPassphrase)?;
        let der = as_version_1(document.as_bytes());
        let plain =
            pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|_| Error::WrongPassphrase)?;
        const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
        if plain.algorithm.oid.to_string() != EC_PUBLIC_KEY {
            return Err(Error::UnsupportedKey(format!(
                "Notary private key of algorithm {} (only ECDSA P-256 keys are read)",
                plain.algorithm.oid
            )));
        }
        let secret = p256::SecretKey::from_pkcs8_der(&der).map_err(|e| {
            Error::UnsupportedKey(format!("Notary ECDSA key that is not P-256: {e}"))
        })?;
        P256SigningKey::from_secret(&secret.to_bytes())
    }
}

/// `der` with its PKCS#8 version made 0 (v1) when it says 1 (v2): notary
/// writes version 1 without the public key, which RFC 5958 allows but the
/// `pkcs8` crate refuses; without the optional public key the two versions
/// hold the same fields, so only the version byte changes.
fn as_version_1(der: &[u8]) -> Vec<u8> {
    let mut out = der.to_vec();
    let header = match der {
        [0x30, len, ..] if *len < 0x80 => 2,
        [0x30, len, ..] => 2 + usize::from(len & 0x7f),
        _ => return out,
    };
    if der.get(header..header + 3) == Some(&[0x02, 0x01, 0x01]) {
        out[header + 2] = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by `notary -d DIR key generate ecdsa --role root` (notary 0.7)
    /// with the passphrase `pw`.
    const ROOT_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
role: root

MIHuMEkGCSqGSIb3DQEFDTA8MBsGCSqGSIb3DQEFDDAOBAgXTUcRsDE8YQICCAAw
HQYJYIZIAWUDBAEqBBAxXcR3CuwVUzuK0Bhbr5+pBIGgIai2h2TVoNQsRpPyqLai
sMD/IqY5tiXzgvUVbxMx0UJX1ivq8/unQ53Pq6+voJDbOxEvY2aGNEvtgmPHP+gJ
hUWLM/36pv1nJMmI14f4HvTXzO8Y+VzovUQud4mATpbxdD0Fc+2zWWdbBeJCNRXi
cU/mX7Qf05ry1YavTfVl59Dr8LBMcEdH/qvLSHS5J0PkKsZARo9sdUiCcU41cRyY
QQ==
-----END ENCRYPTED PRIVATE KEY-----
";
    /// Notary's key ID of that key: its file name (sha256 of the canonical
    /// `{"keytype":"ecdsa","keyval":{"private":null,"public":SPKI}}`).
    const ROOT_KEY_ID: &str = "0be51c991262cc7cbccaedc16a981cfed2aa6b8867e39c1fc09303d59e1df29e";

    #[test]
    fn reads_a_notary_root_key() {
        let file = NotaryPrivateKey::parse(ROOT_KEY).unwrap();
        assert_eq!(file.role.as_deref(), Some("root"));
        assert_eq!(file.gun, None);
        let key = file.decrypt("pw").unwrap();
        // The public half is the key Notary named the file after.
        use p256::pkcs8::DecodePublicKey;
        let public = p256::PublicKey::from_public_key_pem(&key.public_key().keyval.public).unwrap();
        use p256::pkcs8::EncodePublicKey;
        let spki = public.to_public_key_der().unwrap();
        let notary_key = crate::notary::NotaryKey {
            keytype: "ecdsa".into(),
            keyval: crate::notary::NotaryKeyVal {
                private: None,
                public: crate::notary::BASE64.encode(spki.as_bytes()),
            },
        };
        assert_eq!(notary_key.key_id().unwrap(), ROOT_KEY_ID);
    }

    #[test]
    fn a_wrong_passphrase_is_said_so() {
        let file = NotaryPrivateKey::parse(ROOT_KEY).unwrap();
        assert!(matches!(file.decrypt("wrong"), Err(Error::WrongPassphrase)));
    }

    #[test]
    fn other_files_are_refused() {
        for text in [
            "",
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAAAA\n-----END EC PRIVATE KEY-----\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: root\n\nAAAA\n",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nrole: root\n\n!!!\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ] {
            assert!(
                matches!(NotaryPrivateKey::parse(text), Err(Error::PrivateKey(_))),
                "{text:?}"
            );
        }
        // Well-formed base64 that is no encrypted key.
        let junk = NotaryPrivateKey::parse(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(matches!(junk.decrypt("pw"), Err(Error::PrivateKey(_))));
    }
}
