//! Bearer tokens from an existing registry token service (the `token`
//! authentication Docker's registry and notary-server share): JWTs signed
//! by the service's key, which the token names either by a certificate
//! chain in its `x5c` header ending at (or in) the configured root bundle,
//! or by the `kid` of a bundle certificate's key (libtrust's key ID, what
//! docker's registry accepts too). Then the issuer, the audience (this
//! server's `--token-service`) and the lifetime are checked, and the
//! `access` claims grant what they say, as for this server's own tokens.
//! One token service then authorises both image pushes and trust publishes.

use super::registry_token::Claims;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// A trusted external token service: its `iss` and its root certificates.
pub(crate) struct ExternalIssuer {
    issuer: String,
    service: String,
    roots: Vec<Certificate>,
}

/// Why an external token is refused (the message goes into the 401).
type Refused = String;

const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";

impl ExternalIssuer {
    /// `issuer` and the PEM bundle at `bundle` (one or more certificates).
    pub(crate) fn load(
        issuer: &str,
        service: &str,
        bundle: &std::path::Path,
    ) -> Result<ExternalIssuer, String> {
        let pem = std::fs::read(bundle)
            .map_err(|e| format!("token root certificates {}: {e}", bundle.display()))?;
        let roots = Certificate::load_pem_chain(&pem)
            .map_err(|e| format!("token root certificates {}: {e}", bundle.display()))?;
        if roots.is_empty() {
            return Err(format!("no certificate in {}", bundle.display()));
        }
        Ok(ExternalIssuer {
            issuer: issuer.to_string(),
            service: service.to_string(),
            roots,
        })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The claims of `jwt` if the trusted service signed it for this
    /// server's service and it is within its lifetime.
    pub(crate) fn verify(&self, jwt: &str) -> Result<Claims, Refused> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|e| e.to_string())?;
        if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256) {
            return Err(format!(
                "signature algorithm {:?} is not ES256 or RS256",
                header.alg
            ));
        }
        let spki = match (&header.x5c, &header.kid) {
            (Some(chain), _) => self.chain_key(chain)?,
            (None, Some(kid)) => self.kid_key(kid)?,
            (None, None) => return Err("the token names no key (no x5c or kid header)".into()),
        };
        let key = match header.alg {
            Algorithm::ES256 => ec_key(&spki),
            _ => rsa_key(&spki),
        }
        .map_err(|e| format!("the token's key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.service]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(jwt, &key, &validation)
            .map(|t| t.claims)
            .map_err(|e| e.to_string())
    }

    /// The leaf's key of an `x5c` chain (base64 DER, leaf first) in which
    /// each certificate is valid now and signed by the next, and the last
    /// is a root or signed by one.
    fn chain_key(&self, chain: &[String]) -> Result<Vec<u8>, Refused> {
        let certs = chain
            .iter()
            .map(|b64| {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| "an x5c certificate is not base64".to_string())?;
                Certificate::from_der(&der).map_err(|e| format!("an x5c certificate: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf = certs.first().ok_or("the x5c chain is empty")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        for cert in &certs {
            let validity = &cert.tbs_certificate.validity;
            if now < validity.not_before.to_unix_duration()
                || now > validity.not_after.to_unix_duration()
            {
                return Err("a certificate of the x5c chain is not valid now".into());
            }
        }
        // Only a CA may issue (as Go's x509 verification, which docker's
        // registry uses, requires): a leaf the root gave someone for another
        // purpose must not mint token-signing certificates.
        for pair in certs.windows(2) {
            if !signed_by(&pair[0], &pair[1]) || !is_ca(&pair[1]) {
                return Err(
                    "the x5c chain is broken: a certificate is not signed by the next, or that is no CA"
                        .into(),
                );
            }
        }
        let last = certs.last().expect("not empty");
        let anchored = self
            .roots
            .iter()
            .any(|root| root == last || (is_ca(root) && signed_by(last, root)));
        if !anchored {
            return Err("the x5c chain does not lead to a trusted root certificate".into());
        }
        spki(leaf)
    }

    /// The key of the root certificate whose libtrust key ID is `kid`.
    fn kid_key(&self, kid: &str) -> Result<Vec<u8>, Refused> {
        for root in &self.roots {
            let key = spki(root)?;
            if libtrust_key_id(&key) == kid {
                return Ok(key);
            }
        }
        Err(format!("no trusted root certificate has key ID {kid}"))
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A P-256 key (DER SubjectPublicKeyInfo) as the JWT library takes it.
fn ec_key(spki: &[u8]) -> Result<DecodingKey, String> {
    use p256::pkcs8::DecodePublicKey;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
    let point = key.to_encoded_point(false);
    let (x, y) = (point.x().ok_or("no x")?, point.y().ok_or("no y")?);
    DecodingKey::from_ec_components(&b64url(x), &b64url(y)).map_err(|e| e.to_string())
}

/// An RSA key (DER SubjectPublicKeyInfo) as the JWT library takes it.
fn rsa_key(spki: &[u8]) -> Result<DecodingKey, String> {
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPublicKey::from_public_key_der(spki).map_err(|e| e.to_string())?;
    DecodingKey::from_rsa_components(
        &b64url(&key.n().to_bytes_be()),
        &b64url(&key.e().to_bytes_be()),
    )
    .map_err(|e| e.to_string())
}

/// Does `cert` say it is a CA (basic constraints `cA` true)?
fn is_ca(cert: &Certificate) -> bool {
    use x509_cert::ext::pkix::BasicConstraints;
    const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id.to_string() == BASIC_CONSTRAINTS)
        .and_then(|ext| BasicConstraints::from_der(ext.extn_value.as_bytes()).ok())
        .is_some_and(|constraints| constraints.ca)
}

/// A certificate's DER SubjectPublicKeyInfo.
fn spki(cert: &Certificate) -> Result<Vec<u8>, Refused> {
    cert.tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("certificate key: {e}"))
}

/// libtrust's key ID: the first 240 bits of the SHA-256 of the DER key, in
/// base32, in groups of four joined by `:`.
pub(crate) fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = base32(&digest[..30]);
    encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 4648 base32 without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Is `cert` signed by `issuer`'s key (ECDSA P-256 or RSA, with SHA-256)?
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let Ok(tbs) = cert.tbs_certificate.to_der() else {
        return false;
    };
    let Some(signature) = cert.signature.as_bytes() else {
        return false;
    };
    let Ok(key) = spki(issuer) else {
        return false;
    };
    match cert.signature_algorithm.oid.to_string().as_str() {
        ECDSA_WITH_SHA256 => {
            use p256::ecdsa::signature::Verifier;
            use p256::pkcs8::DecodePublicKey;
            let (Ok(key), Ok(sig)) = (
                p256::ecdsa::VerifyingKey::from_public_key_der(&key),
                p256::ecdsa::Signature::from_der(signature),
            ) else {
                return false;
            };
            key.verify(&tbs, &sig).is_ok()
        }
        SHA256_WITH_RSA => {
            use rsa::pkcs8::DecodePublicKey;
            let Ok(key) = rsa::RsaPublicKey::from_public_key_der(&key) else {
                return false;
            };
            let digest = Sha256::digest(&tbs);
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .is_ok()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_rfc_4648() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn a_libtrust_key_id_is_twelve_groups_of_four() {
        let id = libtrust_key_id(b"any key");
        assert_eq!(id.len(), 12 * 4 + 11);
        assert!(id.split(':').all(|g| g.len() == 4));
    }
}
