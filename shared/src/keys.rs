//! Public keys as TUF writes them, key IDs, signature checks per scheme, and
//! the ed25519 signing keys tagtrust creates (stored as encrypted PKCS#8 PEM).

use crate::canonical::to_canonical_json;
use crate::error::{Error, Result};
use crate::metadata::Signature;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `keyval` object of a TUF key. Only `public` matters to verification;
/// anything else is kept so re-serialising does not change key content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A public key as listed in root or a delegating targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PublicKey {
    /// An ed25519 key from its 32 raw bytes.
    pub fn ed25519(public: &[u8; 32]) -> Self {
        PublicKey {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: hex::encode(public),
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    /// The key ID tagtrust assigns to keys it creates: SHA-256 of the key's
    /// canonical JSON, as securesystemslib does. Only used when *creating*
    /// metadata; when verifying, the key ID is whatever the delegator lists.
    pub fn key_id(&self) -> String {
        let canonical = to_canonical_json(self).expect("a key has no floats");
        hex::encode(Sha256::digest(canonical))
    }

    /// Check one signature over `message`. `Ok(false)` means a well-formed
    /// key whose signature does not verify; `Err` means the key or signature
    /// is of a kind we cannot check.
    pub fn verify(&self, message: &[u8], signature_hex: &str) -> Result<bool> {
        let sig = hex::decode(signature_hex)
            .map_err(|_| Error::InvalidKey(format!("signature is not hex: {signature_hex:.16}")))?;
        match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => self.verify_ed25519(message, &sig),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                self.verify_ecdsa_p256(message, &sig)
            }
            ("rsa", "rsassa-pss-sha256") => self.verify_rsa_pss_sha256(message, &sig),
            // securesystemslib's name; Notary's `rsapkcs1v15` method.
            ("rsa", "rsa-pkcs1v15-sha256") => {
                let digest = Sha256::digest(message);
                let scheme = rsa::Pkcs1v15Sign::new::<Sha256>();
                Ok(self.rsa_key()?.verify(scheme, &digest, &sig).is_ok())
            }
            (keytype, scheme) => Err(Error::UnsupportedKey(format!(
                "keytype {keytype:?} with scheme {scheme:?}"
            ))),
        }
    }

    /// The key's decoded public material in one canonical byte form, the
    /// one answer to "are these the same key" whatever the encoding: an
    /// algorithm tag, then the ed25519 point's 32 bytes (hex in either
    /// case), the P-256 point uncompressed (from PEM SubjectPublicKeyInfo or
    /// hex SEC1, compressed or not, under `ecdsa` or `ecdsa-sha2-nistp256`),
    /// or the RSA modulus and exponent (each length-prefixed, big-endian,
    /// without leading zeros). The scheme is not part of it: one key under
    /// two schemes is still one key. `Err` for a key type tagtrust cannot
    /// decode or a malformed key.
    pub fn material(&self) -> Result<Vec<u8>> {
        match self.keytype.as_str() {
            "ed25519" => {
                let mut out = b"ed25519:".to_vec();
                out.extend_from_slice(self.ed25519_key()?.as_bytes());
                Ok(out)
            }
            "ecdsa" | "ecdsa-sha2-nistp256" => {
                let mut out = b"p256:".to_vec();
                out.extend_from_slice(self.p256_key()?.to_encoded_point(false).as_bytes());
                Ok(out)
            }
            "rsa" => {
                use rsa::traits::PublicKeyParts;
                let key = self.rsa_key()?;
                let mut out = b"rsa:".to_vec();
                for part in [key.n().to_bytes_be(), key.e().to_bytes_be()] {
                    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                    out.extend_from_slice(&part);
                }
                Ok(out)
            }
            other => Err(Error::UnsupportedKey(format!("keytype {other:?}"))),
        }
    }

    /// What "the same key" compares: [`PublicKey::material`], or for a
    /// key that cannot be decoded (it can verify nothing) its type and
    /// trimmed public text, tagged so the two forms never collide.
    pub fn identity(&self) -> Vec<u8> {
        self.material().unwrap_or_else(|_| {
            let mut out = b"undecoded:".to_vec();
            out.extend_from_slice(self.keytype.as_bytes());
            out.push(0);
            out.extend_from_slice(self.keyval.public.trim().as_bytes());
            out
        })
    }

    /// Are `self` and `other` the same key ([`PublicKey::identity`])?
    pub fn same_key(&self, other: &PublicKey) -> bool {
        self.identity() == other.identity()
    }

    fn ed25519_key(&self) -> Result<ed25519_dalek::VerifyingKey> {
        let raw: [u8; 32] = hex::decode(self.keyval.public.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::InvalidKey("ed25519 public key is not 32 hex bytes".into()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map_err(|e| Error::InvalidKey(format!("ed25519: {e}")))
    }

    fn p256_key(&self) -> Result<p256::ecdsa::VerifyingKey> {
        use p256::pkcs8::DecodePublicKey;
        let public = self.keyval.public.trim();
        // securesystemslib writes PEM (SubjectPublicKeyInfo); some tools write
        // the SEC1 point in hex.
        if public.starts_with("-----BEGIN") {
            p256::ecdsa::VerifyingKey::from_public_key_pem(public)
                .map_err(|e| Error::InvalidKey(format!("ecdsa PEM: {e}")))
        } else {
            let point = hex::decode(public)
                .map_err(|_| Error::InvalidKey("ecdsa public key is neither PEM nor hex".into()))?;
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                .map_err(|e| Error::InvalidKey(format!("ecdsa point: {e}")))
        }
    }

    fn rsa_key(&self) -> Result<rsa::RsaPublicKey> {
        use rsa::pkcs8::DecodePublicKey;
        rsa::RsaPublicKey::from_public_key_pem(self.keyval.public.trim())
            .map_err(|e| Error::InvalidKey(format!("rsa PEM: {e}")))
    }

    fn verify_ed25519(&self, message: &[u8], sig: &[u8]) -> Result<bool> {
        let key = self.ed25519_key()?;
        let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
            return Ok(false);
        };
        // verify_strict refuses small-order keys and malleable signatures.
        Ok(key.verify_strict(message, &sig).is_ok())
    }

    fn verify_ecdsa_p256(&self, message: &[u8], sig: &[u8]) -> Result<bool> {
        use p256::ecdsa::signature::Verifier;
        let key = self.p256_key()?;
        let sig = match p256::ecdsa::Signature::from_der(sig) {
            Ok(sig) => sig,
            Err(_) => match p256::ecdsa::Signature::from_slice(sig) {
                Ok(sig) => sig,
                Err(_) => return Ok(false),
            },
        };
        Ok(key.verify(message, &sig).is_ok())
    }

    fn verify_rsa_pss_sha256(&self, message: &[u8], sig: &[u8]) -> Result<bool> {
        use rsa::traits::PublicKeyParts;
        let key = self.rsa_key()?;
        let digest = Sha256::digest(message);
        // Signers differ in PSS salt length: securesystemslib uses the digest
        // length, OpenSSL's default is the maximum. Accept either.
        let max_salt = key.size().saturating_sub(32 + 2);
        Ok([32, max_salt].into_iter().any(|salt_len| {
            key.verify(rsa::Pss::new_with_salt::<Sha256>(salt_len), &digest, sig)
                .is_ok()
        }))
    }
}

/// The first two key IDs in `keys` that name one key (by
/// [`PublicKey::same_key`]), if any: a root or delegation listing a key
/// twice could count it twice wherever IDs are compared.
pub fn duplicate_key<'a>(
    keys: impl IntoIterator<Item = (&'a String, &'a PublicKey)>,
) -> Option<(String, String)> {
    let mut seen: std::collections::BTreeMap<Vec<u8>, &String> = Default::default();
    for (id, key) in keys {
        if let Some(first) = seen.insert(key.identity(), id) {
            return Some((first.clone(), id.clone()));
        }
    }
    None
}

/// An ECDSA P-256 private key: the online key type Notary clients get
/// from notary-signer (its default), which tagtrust's server holds for
/// Notary repositories.
#[derive(Clone)]
pub struct P256SigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for P256SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "P256SigningKey({})", self.public_key().key_id())
    }
}

impl P256SigningKey {
    pub fn generate() -> Self {
        P256SigningKey {
            inner: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    /// From the 32-byte secret scalar (the server stores it encrypted).
    pub fn from_secret(secret: &[u8]) -> Result<Self> {
        let inner = p256::ecdsa::SigningKey::from_slice(secret)
            .map_err(|_| Error::PrivateKey("not a P-256 secret scalar".into()))?;
        Ok(P256SigningKey { inner })
    }

    /// The 32-byte secret scalar. Callers must encrypt it before storage.
    pub fn secret(&self) -> [u8; 32] {
        self.inner.to_bytes().into()
    }

    /// As TUF lists it: [`p256_public_key`].
    pub fn public_key(&self) -> PublicKey {
        p256_public_key(self.inner.verifying_key())
    }

    /// Sign `message` (SHA-256, RFC 6979 nonces): the signature as `r || s`,
    /// 64 bytes, the form Notary writes and reads.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = self.inner.sign(message);
        signature.to_bytes().into()
    }
}

/// A key that signs spec-TUF metadata ([`crate::Metadata::sign`]):
/// tagtrust's own ed25519 keys, and the ECDSA P-256 keys a Notary
/// publisher brings along (`tagtrust migrate notary`).
pub trait TufSigner {
    /// The signature over `message` as TUF lists it, under the key ID of
    /// the signer's [`PublicKey::key_id`].
    fn sign_tuf(&self, message: &[u8]) -> Signature;
}

impl<T: TufSigner + ?Sized> TufSigner for &T {
    fn sign_tuf(&self, message: &[u8]) -> Signature {
        (**self).sign_tuf(message)
    }
}

impl TufSigner for SigningKey {
    fn sign_tuf(&self, message: &[u8]) -> Signature {
        self.sign(message)
    }
}

impl TufSigner for P256SigningKey {
    /// DER-encoded, hex: securesystemslib's `ecdsa-sha2-nistp256` form,
    /// the one python-tuf verifies (tagtrust reads both it and `r || s`).
    fn sign_tuf(&self, message: &[u8]) -> Signature {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::Signature = self.inner.sign(message);
        Signature {
            keyid: self.public_key().key_id(),
            sig: hex::encode(signature.to_der().as_bytes()),
            extra: Map::new(),
        }
    }
}

/// PBKDF2 rounds for key files (OWASP's recommendation for HMAC-SHA256).
const PBKDF2_ROUNDS: u32 = 600_000;

/// An ed25519 private key that tagtrust signs with.
#[derive(Clone)]
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    // Never print key material, even in debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SigningKey {
            inner: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// From the 32-byte seed (used by the server, which stores the seed
    /// encrypted under its master key).
    pub fn from_seed(seed: &[u8]) -> Result<Self> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| Error::PrivateKey("ed25519 seed must be 32 bytes".into()))?;
        Ok(SigningKey {
            inner: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The 32-byte seed. Callers must encrypt it before it touches storage.
    pub fn seed(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey::ed25519(self.inner.verifying_key().as_bytes())
    }

    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    /// Sign `message` (the canonical bytes of a role's `signed`).
    pub fn sign(&self, message: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        Signature {
            keyid: self.key_id(),
            sig: hex::encode(self.inner.sign(message).to_bytes()),
            extra: Map::new(),
        }
    }

    /// Encrypted PKCS#8 PEM (PBES2: PBKDF2-HMAC-SHA256, 600 000 rounds, and
    /// AES-256-CBC), readable by `openssl pkey`. Not scrypt: the crate's
    /// default scrypt cost exceeds OpenSSL's default memory limit, and a key
    /// file users cannot open with standard tools is a trap.
    pub fn to_encrypted_pem(&self, passphrase: &str) -> Result<String> {
        use pkcs8::EncodePrivateKey;
        // PKCS#8 v1 (seed only): OpenSSL does not read ed25519 keys in the
        // v2 form with the public key that ed25519-dalek writes by default.
        let v1 = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: self.inner.to_bytes(),
            public_key: None,
        };
        let der = v1.to_pkcs8_der().map_err(|e| encrypt_error(&e))?;
        encrypt_pkcs8(der.as_bytes(), passphrase)
    }

    /// Read an encrypted PKCS#8 PEM written by [`SigningKey::to_encrypted_pem`]
    /// (or by `openssl genpkey -algorithm ed25519 -aes-256-cbc`).
    pub fn from_encrypted_pem(pem: &str, passphrase: &str) -> Result<Self> {
        match PrivateKey::from_encrypted_pem(pem, passphrase)? {
            PrivateKey::Ed25519(key) => Ok(key),
            PrivateKey::P256(_) => Err(Error::UnsupportedKey(
                "an ECDSA P-256 key where an ed25519 key is needed".into(),
            )),
        }
    }
}

fn encrypt_error(e: &dyn std::fmt::Display) -> Error {
    Error::PrivateKey(format!("cannot encrypt key: {e}"))
}

/// The PKCS#8 `PrivateKeyInfo` `der` encrypted with `passphrase` (PBES2:
/// PBKDF2-HMAC-SHA256, [`PBKDF2_ROUNDS`], AES-256-CBC) as PEM: one form
/// at rest for every key type the keyring holds.
fn encrypt_pkcs8(der: &[u8], passphrase: &str) -> Result<String> {
    use rand::RngCore;
    let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| encrypt_error(&e))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ROUNDS, &salt, &iv)
            .map_err(|e| encrypt_error(&e))?;
    let encrypted = info
        .encrypt_with_params(params, passphrase)
        .map_err(|e| encrypt_error(&e))?;
    let pem = encrypted
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| encrypt_error(&e))?;
    Ok(pem.to_string())
}

/// A private key tagtrust's keyring holds and signs with: its own ed25519
/// keys, or the ECDSA P-256 keys a Notary publisher or delegate brings
/// (`tagtrust migrate notary`, `tagtrust key import` of a Notary key
/// file). Both are stored the same way: encrypted PKCS#8 PEM.
#[derive(Debug, Clone)]
pub enum PrivateKey {
    Ed25519(SigningKey),
    P256(P256SigningKey),
}

impl From<SigningKey> for PrivateKey {
    fn from(key: SigningKey) -> Self {
        PrivateKey::Ed25519(key)
    }
}

impl From<P256SigningKey> for PrivateKey {
    fn from(key: P256SigningKey) -> Self {
        PrivateKey::P256(key)
    }
}

/// PKCS#8 algorithm identifiers of the keys [`PrivateKey`] reads.
const ED25519_OID: &str = "1.3.101.112";
const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";

impl PrivateKey {
    /// The public key as TUF lists it (ed25519 hex, or P-256 PEM under
    /// `ecdsa`/`ecdsa-sha2-nistp256`).
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(key) => key.public_key(),
            PrivateKey::P256(key) => key.public_key(),
        }
    }

    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }

    /// Encrypted PKCS#8 PEM, as [`SigningKey::to_encrypted_pem`] writes it
    /// (a P-256 key as an `id-ecPublicKey` PKCS#8 key on `prime256v1`, as
    /// `openssl genpkey -algorithm EC` writes it).
    pub fn to_encrypted_pem(&self, passphrase: &str) -> Result<String> {
        match self {
            PrivateKey::Ed25519(key) => key.to_encrypted_pem(passphrase),
            PrivateKey::P256(key) => {
                use p256::pkcs8::EncodePrivateKey;
                let der = key.inner.to_pkcs8_der().map_err(|e| encrypt_error(&e))?;
                encrypt_pkcs8(der.as_bytes(), passphrase)
            }
        }
    }

    /// Read an encrypted PKCS#8 PEM of an ed25519 or P-256 key (written by
    /// [`PrivateKey::to_encrypted_pem`], or by `openssl genpkey … -aes-256-cbc`).
    /// [`Error::WrongPassphrase`] when it does not decrypt.
    pub fn from_encrypted_pem(pem: &str, passphrase: &str) -> Result<Self> {
        use pkcs8::der::Decode;
        use pkcs8::DecodePrivateKey;
        if !pem.contains("ENCRYPTED PRIVATE KEY") {
            return Err(Error::PrivateKey(
                "not an encrypted PKCS#8 PEM file (expected 'BEGIN ENCRYPTED PRIVATE KEY')".into(),
            ));
        }
        let (label, document) = pkcs8::Document::from_pem(pem.trim())
            .map_err(|e| Error::PrivateKey(format!("not a PEM file: {e}")))?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(Error::PrivateKey(format!(
                "a PEM {label:?} block, not an encrypted PKCS#8 key"
            )));
        }
        let info = pkcs8::EncryptedPrivateKeyInfo::from_der(document.as_bytes())
            .map_err(|e| Error::PrivateKey(format!("not an encrypted PKCS#8 key: {e}")))?;
        // A wrong passphrase shows as a padding failure or, rarely, as
        // garbage that is not DER: both mean the passphrase.
        let plain = info
            .decrypt(passphrase)
            .map_err(|_| Error::WrongPassphrase)?;
        let algorithm = pkcs8::PrivateKeyInfo::try_from(plain.as_bytes())
            .map_err(|_| Error::WrongPassphrase)?
            .algorithm
            .oid
            .to_string();
        let unreadable = |e: &dyn std::fmt::Display| Error::PrivateKey(e.to_string());
        match algorithm.as_str() {
            ED25519_OID => {
                let inner = ed25519_dalek::SigningKey::from_pkcs8_der(plain.as_bytes())
                    .map_err(|e| unreadable(&e))?;
                Ok(PrivateKey::Ed25519(SigningKey { inner }))
            }
            EC_PUBLIC_KEY_OID => {
                let secret = p256::SecretKey::from_pkcs8_der(plain.as_bytes()).map_err(|e| {
                    Error::UnsupportedKey(format!("an ECDSA key that is not P-256: {e}"))
                })?;
                Ok(PrivateKey::P256(P256SigningKey::from_secret(
                    &secret.to_bytes(),
                )?))
            }
            other => Err(Error::UnsupportedKey(format!(
                "private key of algorithm {other} (tagtrust signs with ed25519 and ECDSA P-256)"
            ))),
        }
    }
}

impl TufSigner for PrivateKey {
    fn sign_tuf(&self, message: &[u8]) -> Signature {
        match self {
            PrivateKey::Ed25519(key) => key.sign_tuf(message),
            PrivateKey::P256(key) => key.sign_tuf(message),
        }
    }
}

/// A P-256 public key as TUF lists it: `ecdsa`, scheme
/// `ecdsa-sha2-nistp256`, PEM SubjectPublicKeyInfo (securesystemslib's
/// form), written one way so its key ID is the one its signatures carry.
pub fn p256_public_key(key: &p256::ecdsa::VerifyingKey) -> PublicKey {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 key encodes");
    PublicKey {
        keytype: "ecdsa".into(),
        scheme: "ecdsa-sha2-nistp256".into(),
        keyval: KeyVal {
            public: pem,
            extra: Map::new(),
        },
        extra: Map::new(),
    }
}

/// Parse a public key from a PEM file (`-----BEGIN PUBLIC KEY-----`, ed25519)
/// as `tagtrust key generate` prints it, into the TUF form.
pub fn ed25519_public_from_pem(pem: &str) -> Result<PublicKey> {
    use pkcs8::DecodePublicKey;
    let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| Error::InvalidKey(format!("not an ed25519 public key PEM: {e}")))?;
    Ok(PublicKey::ed25519(key.as_bytes()))
}

/// Parse an ed25519 or ECDSA P-256 public key PEM (SubjectPublicKeyInfo:
/// `tagtrust key generate`'s, or `openssl pkey -pubout` of a key the
/// keyring holds) into the TUF form the key's own signatures name.
pub fn public_from_pem(pem: &str) -> Result<PublicKey> {
    use p256::pkcs8::DecodePublicKey;
    ed25519_public_from_pem(pem).or_else(|_| {
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| {
            Error::InvalidKey("not an ed25519 or ECDSA P-256 public key PEM".into())
        })?;
        Ok(p256_public_key(&key))
    })
}

/// The PEM (SubjectPublicKeyInfo) form of an ed25519 TUF key.
pub fn ed25519_public_to_pem(key: &PublicKey) -> Result<String> {
    use pkcs8::EncodePublicKey;
    key.ed25519_key()?
        .to_public_key_pem(pkcs8::LineEnding::LF)
        .map_err(|e| Error::InvalidKey(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_ed25519() {
        let key = SigningKey::generate();
        let sig = key.sign(b"hello");
        assert_eq!(sig.keyid, key.key_id());
        assert!(key.public_key().verify(b"hello", &sig.sig).unwrap());
        assert!(!key.public_key().verify(b"hellp", &sig.sig).unwrap());
    }

    #[test]
    fn encrypted_pem_round_trip_and_wrong_passphrase() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem("correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let back = SigningKey::from_encrypted_pem(&pem, "correct horse").unwrap();
        assert_eq!(back.key_id(), key.key_id());
        assert!(matches!(
            SigningKey::from_encrypted_pem(&pem, "wrong"),
            Err(Error::WrongPassphrase)
        ));
    }

    #[test]
    fn p256_keys_round_trip_encrypted_and_sign_as_tuf_verifies() {
        let key = PrivateKey::from(P256SigningKey::generate());
        let pem = key.to_encrypted_pem("correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        let back = PrivateKey::from_encrypted_pem(&pem, "correct horse").unwrap();
        assert!(matches!(back, PrivateKey::P256(_)));
        assert_eq!(back.key_id(), key.key_id());
        assert!(matches!(
            PrivateKey::from_encrypted_pem(&pem, "wrong"),
            Err(Error::WrongPassphrase)
        ));
        // Signed as securesystemslib does (DER, hex), verified by the one
        // verification function, under the key ID the public key has.
        let sig = back.sign_tuf(b"hello");
        assert_eq!(sig.keyid, key.public_key().key_id());
        assert_eq!(key.public_key().scheme, "ecdsa-sha2-nistp256");
        assert!(p256::ecdsa::Signature::from_der(&hex::decode(&sig.sig).unwrap()).is_ok());
        assert!(key.public_key().verify(b"hello", &sig.sig).unwrap());
        assert!(!key.public_key().verify(b"hellp", &sig.sig).unwrap());
        // Where only an ed25519 key will do, a P-256 one is said to be one.
        assert!(matches!(
            SigningKey::from_encrypted_pem(&pem, "correct horse"),
            Err(Error::UnsupportedKey(_))
        ));
    }

    #[test]
    fn ed25519_key_files_read_as_private_keys() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem("pw").unwrap();
        let back = PrivateKey::from_encrypted_pem(&pem, "pw").unwrap();
        assert!(matches!(&back, PrivateKey::Ed25519(k) if k.key_id() == key.key_id()));
        assert_eq!(back.sign_tuf(b"m").sig, key.sign(b"m").sig);
        let again = PrivateKey::from(key.clone())
            .to_encrypted_pem("pw")
            .unwrap();
        assert_eq!(
            SigningKey::from_encrypted_pem(&again, "pw")
                .unwrap()
                .key_id(),
            key.key_id()
        );
        for junk in [
            "not a key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        ] {
            assert!(
                matches!(
                    PrivateKey::from_encrypted_pem(junk, "pw"),
                    Err(Error::PrivateKey(_))
                ),
                "{junk}"
            );
        }
    }

    #[test]
    fn public_pem_round_trip() {
        let key = SigningKey::generate().public_key();
        let pem = ed25519_public_to_pem(&key).unwrap();
        assert_eq!(ed25519_public_from_pem(&pem).unwrap(), key);
        assert_eq!(public_from_pem(&pem).unwrap(), key);
        // A P-256 key, however its PEM is wrapped, reads as the TUF form
        // its signatures name.
        let p256 = P256SigningKey::generate();
        let listed = p256.public_key();
        let crlf = listed.keyval.public.replace('\n', "\r\n");
        let read = public_from_pem(&format!("\n{crlf}\n")).unwrap();
        assert_eq!(read, listed);
        assert_eq!(read.key_id(), p256.sign_tuf(b"m").keyid);
        assert!(
            public_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
                .is_err()
        );
    }

    fn key(keytype: &str, scheme: &str, public: &str) -> PublicKey {
        PublicKey {
            keytype: keytype.into(),
            scheme: scheme.into(),
            keyval: KeyVal {
                public: public.into(),
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    const RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDKTGocdhvmm8ntteW71h6elsTu
If6yLuiI0kXrXSGbSNw6ruAIho85EmlJ+BU5LKD5XTt06sQ+n8w+TgR6/r8B2qWV
wkfjViNolc/6FyBbw2TWbOxGG9wYrbMQSWA+glfV/hlQdaCYQFvURMFz4K4rCde2
xUKyyVfz/vKRYRKaBQIDAQAB
-----END PUBLIC KEY-----
";

    #[test]
    fn one_key_in_every_encoding_has_one_material() {
        // ed25519: hex in lower and upper case.
        let ed = SigningKey::generate().public_key();
        let upper = key("ed25519", "ed25519", &ed.keyval.public.to_uppercase());
        assert_ne!(ed.keyval.public, upper.keyval.public);
        assert_eq!(ed.material().unwrap(), upper.material().unwrap());
        assert!(ed.same_key(&upper));
        assert!(!ed.same_key(&SigningKey::generate().public_key()));

        // P-256: PEM SPKI, hex SEC1 compressed and uncompressed, under both
        // key types and either hex case.
        use p256::pkcs8::EncodePublicKey;
        let p = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = p.verifying_key();
        let pem = point.to_public_key_pem(pkcs8::LineEnding::LF).unwrap();
        let compressed = hex::encode(point.to_encoded_point(true).as_bytes());
        let uncompressed = hex::encode(point.to_encoded_point(false).as_bytes());
        let forms = [
            key("ecdsa", "ecdsa-sha2-nistp256", &pem),
            key("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", &pem),
            key("ecdsa", "ecdsa-sha2-nistp256", &compressed),
            key("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256", &uncompressed),
            key("ecdsa", "ecdsa-sha2-nistp256", &uncompressed.to_uppercase()),
        ];
        let first = forms[0].material().unwrap();
        for form in &forms {
            assert_eq!(form.material().unwrap(), first, "{:?}", form.keyval.public);
        }
        let other = p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap();
        let other = hex::encode(other.verifying_key().to_encoded_point(true).as_bytes());
        assert!(!forms[0].same_key(&key("ecdsa", "ecdsa-sha2-nistp256", &other)));

        // RSA: the same modulus and exponent whatever the PEM's line endings
        // or scheme.
        let rsa = key("rsa", "rsassa-pss-sha256", RSA_PEM);
        let crlf = key(
            "rsa",
            "rsa-pkcs1v15-sha256",
            &format!("  {}  ", RSA_PEM.replace('\n', "\r\n")),
        );
        assert_eq!(rsa.material().unwrap(), crlf.material().unwrap());
        assert!(rsa.same_key(&crlf));

        // No two algorithms share material; undecodable keys compare by text.
        assert!(!ed.same_key(&forms[0]) && !forms[0].same_key(&rsa));
        let odd = key("x-odd", "x-odd", "abc");
        assert!(odd.material().is_err());
        assert!(odd.same_key(&key("x-odd", "x-odd", " abc ")));
        assert!(!odd.same_key(&key("x-odd", "x-odd", "abd")));
    }

    #[test]
    fn duplicate_keys_are_found_by_material() {
        let ed = SigningKey::generate().public_key();
        let upper = key("ed25519", "ed25519", &ed.keyval.public.to_uppercase());
        let other = SigningKey::generate().public_key();
        let ids = ["a".repeat(64), "b".repeat(64), "c".repeat(64)];
        let keys: std::collections::BTreeMap<String, PublicKey> = [
            (ids[0].clone(), ed.clone()),
            (ids[1].clone(), other.clone()),
            (ids[2].clone(), upper),
        ]
        .into_iter()
        .collect();
        assert_eq!(duplicate_key(&keys), Some((ids[0].clone(), ids[2].clone())));
        let distinct: std::collections::BTreeMap<String, PublicKey> =
            [(ids[0].clone(), ed), (ids[1].clone(), other)]
                .into_iter()
                .collect();
        assert_eq!(duplicate_key(&distinct), None);
    }

    #[test]
    fn unknown_scheme_is_an_error() {
        let mut key = SigningKey::generate().public_key();
        key.scheme = "rot13".into();
        assert!(matches!(
            key.verify(b"x", "00"),
            Err(Error::UnsupportedKey(_))
        ));
    }
}
