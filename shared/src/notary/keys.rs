//! Notary's key objects (tuf/data/keys.go): `{"keytype", "keyval":
//! {"private": null, "public": base64}}`, their key IDs, what each becomes
//! as a tagtrust [`PublicKey`] for a signature `method`, and the checks
//! Notary makes of a root certificate (trustpinning/certs.go).

use super::BASE64;
use crate::error::{Error, Result};
use crate::keys::KeyVal;
use crate::PublicKey;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use x509_cert::der::Encode;
use x509_cert::Certificate;

/// A public key as Notary metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotaryKey {
    pub keytype: String,
    pub keyval: NotaryKeyVal,
}

/// `keyval`: the base64 public part; `private` is `null` in metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotaryKeyVal {
    #[serde(default)]
    pub private: Option<String>,
    pub public: String,
}

impl NotaryKey {
    /// Notary's key ID: SHA-256 (hex) of the key object's canonical JSON,
    /// the whole certificate included for x509 key types.
    pub fn key_id(&self) -> Result<String> {
        let canonical = crate::canonical::to_canonical_json(self)?;
        Ok(hex::encode(Sha256::digest(canonical)))
    }

    /// The ID a Notary trust directory names this key's private key file
    /// by (`private/<id>.key`): the ID of the bare public key, which for an
    /// x509 key type is the certificate's key as keytype `ecdsa`/`rsa`.
    pub fn private_key_id(&self) -> Result<String> {
        match self.keytype.as_str() {
            "ecdsa-x509" | "rsa-x509" => NotaryKey {
                keytype: self.keytype.trim_end_matches("-x509").to_string(),
                keyval: NotaryKeyVal {
                    private: None,
                    public: BASE64.encode(self.spki_der()?),
                },
            }
            .key_id(),
            _ => self.key_id(),
        }
    }

    /// This key as spec TUF lists it, with the scheme Notary signs it
    /// with (`ecdsa` → `ecdsa-sha2-nistp256` with the PEM public key,
    /// `rsa` → `rsassa-pss-sha256`, `ed25519`), a certificate's key for
    /// x509 key types.
    pub fn to_tuf_key(&self) -> Result<PublicKey> {
        let method = match self.keytype.trim_end_matches("-x509") {
            "ecdsa" => "ecdsa",
            "rsa" => "rsapss",
            "ed25519" => "eddsa",
            other => return Err(Error::UnsupportedKey(format!("Notary keytype {other:?}"))),
        };
        self.to_public_key(method)
    }

    fn public_bytes(&self) -> Result<Vec<u8>> {
        BASE64
            .decode(self.keyval.public.trim())
            .map_err(|_| Error::InvalidKey(format!("{} key value is not base64", self.keytype)))
    }

    /// The leaf certificate of an x509 key type (the first of its PEM
    /// chain).
    pub fn certificate(&self) -> Result<Certificate> {
        let pem = self.public_bytes()?;
        let chain = Certificate::load_pem_chain(&pem).map_err(|e| {
            Error::InvalidKey(format!("{}: not a PEM certificate: {e}", self.keytype))
        })?;
        chain
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidKey(format!("{}: no certificate", self.keytype)))
    }

    /// The DER SubjectPublicKeyInfo of an `ecdsa`/`rsa` key, or of the
    /// certificate of an `ecdsa-x509`/`rsa-x509` one.
    fn spki_der(&self) -> Result<Vec<u8>> {
        match self.keytype.as_str() {
            "ecdsa" | "rsa" => self.public_bytes(),
            "ecdsa-x509" | "rsa-x509" => self
                .certificate()?
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| Error::InvalidKey(format!("certificate key: {e}"))),
            other => Err(Error::UnsupportedKey(format!("Notary keytype {other:?}"))),
        }
    }

    /// This key as a tagtrust [`PublicKey`] checking signatures of Notary's
    /// `method` (`ecdsa`, `eddsa`, `rsapss`, `rsapkcs1v15`), so the one
    /// signature and threshold check verifies Notary metadata too. `Err`
    /// for a key type and method that do not go together, or a malformed
    /// key.
    pub fn to_public_key(&self, method: &str) -> Result<PublicKey> {
        let keytype = self.keytype.as_str();
        let (tuf_keytype, scheme, public) = match (keytype, method.to_ascii_lowercase().as_str()) {
            ("ed25519", "eddsa") => {
                let raw = self.public_bytes()?;
                ("ed25519", "ed25519", hex::encode(raw))
            }
            ("ecdsa" | "ecdsa-x509", "ecdsa") => {
                use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
                let key = p256::ecdsa::VerifyingKey::from_public_key_der(&self.spki_der()?)
                    .map_err(|e| Error::InvalidKey(format!("{keytype}: {e}")))?;
                let pem = key
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| Error::InvalidKey(format!("{keytype}: {e}")))?;
                ("ecdsa", "ecdsa-sha2-nistp256", pem)
            }
            ("rsa" | "rsa-x509", m @ ("rsapss" | "rsapkcs1v15")) => {
                use rsa::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
                let key = rsa::RsaPublicKey::from_public_key_der(&self.spki_der()?)
                    .map_err(|e| Error::InvalidKey(format!("{keytype}: {e}")))?;
                let pem = key
                    .to_public_key_pem(LineEnding::LF)
                    .map_err(|e| Error::InvalidKey(format!("{keytype}: {e}")))?;
                let scheme = if m == "rsapss" {
                    "rsassa-pss-sha256"
                } else {
                    "rsa-pkcs1v15-sha256"
                };
                ("rsa", scheme, pem)
            }
            (keytype, method) => {
                return Err(Error::UnsupportedKey(format!(
                    "Notary keytype {keytype:?} with signature method {method:?}"
                )))
            }
        };
        Ok(PublicKey {
            keytype: tuf_keytype.into(),
            scheme: scheme.into(),
            keyval: KeyVal {
                public,
                extra: Map::new(),
            },
            extra: Map::<String, Value>::new(),
        })
    }
}

/// Why a root certificate is not one Notary accepts.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("root key {keyid} is not an x509 certificate key ({keytype})")]
    NotACertificate { keyid: String, keytype: String },
    #[error("root key {keyid}: {source}")]
    Unreadable { keyid: String, source: Error },
    #[error("root certificate {keyid} is for {common_name:?}, not {gun}")]
    WrongName {
        keyid: String,
        common_name: String,
        gun: String,
    },
    #[error("root certificate {keyid} is not valid now (valid from {not_before} to {not_after})")]
    NotValidNow {
        keyid: String,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    },
    #[error("root certificate {keyid} is signed with SHA-1")]
    Sha1 { keyid: String },
}

/// Notary's checks of a root key's certificate (trustpinning/certs.go
/// `validRootLeafCerts`, tuf/utils/x509.go `ValidateCertificate`): its
/// Common Name is the GUN, it is valid at `now` (its start may be up to a
/// day ahead, for clock skew) unless `check_expiry` is false (as for the
/// previous root of a rotation), and it is not signed with SHA-1.
pub fn check_root_certificate(
    keyid: &str,
    key: &NotaryKey,
    gun: &str,
    now: DateTime<Utc>,
    check_expiry: bool,
) -> std::result::Result<(), CertificateError> {
    if !key.keytype.ends_with("-x509") {
        return Err(CertificateError::NotACertificate {
            keyid: keyid.into(),
            keytype: key.keytype.clone(),
        });
    }
    let unreadable = |source| CertificateError::Unreadable {
        keyid: keyid.into(),
        source,
    };
    let cert = key.certificate().map_err(unreadable)?;
    let common_name = common_name(&cert).unwrap_or_default();
    if common_name != gun {
        return Err(CertificateError::WrongName {
            keyid: keyid.into(),
            common_name,
            gun: gun.into(),
        });
    }
    let validity = &cert.tbs_certificate.validity;
    let time = |t: x509_cert::time::Time| {
        DateTime::<Utc>::from_timestamp(t.to_unix_duration().as_secs() as i64, 0)
            .unwrap_or_default()
    };
    let (not_before, not_after) = (time(validity.not_before), time(validity.not_after));
    if check_expiry && (not_before > now + Duration::days(1) || now > not_after) {
        return Err(CertificateError::NotValidNow {
            keyid: keyid.into(),
            not_before,
            not_after,
        });
    }
    const SHA1_WITH_RSA: &str = "1.2.840.113549.1.1.5";
    const ECDSA_WITH_SHA1: &str = "1.2.840.10045.4.1";
    let algorithm = cert.signature_algorithm.oid.to_string();
    if algorithm == SHA1_WITH_RSA || algorithm == ECDSA_WITH_SHA1 {
        return Err(CertificateError::Sha1 {
            keyid: keyid.into(),
        });
    }
    Ok(())
}

/// The subject's Common Name, if it has one as a UTF-8 or printable string.
fn common_name(cert: &Certificate) -> Option<String> {
    use x509_cert::der::asn1::{PrintableStringRef, Utf8StringRef};
    const COMMON_NAME: &str = "2.5.4.3";
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|attr| attr.oid.to_string() == COMMON_NAME)
        .and_then(|attr| {
            attr.value
                .decode_as::<Utf8StringRef>()
                .map(|s| s.as_str().to_string())
                .or_else(|_| {
                    attr.value
                        .decode_as::<PrintableStringRef>()
                        .map(|s| s.as_str().to_string())
                })
                .ok()
        })
}
