//! Length and hash checks for downloaded bytes (metadata and artifacts).

use crate::error::{Error, Result};
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;

/// Is `s` made of lower-case hex digits only (as digests, key IDs and bin
/// numbers are written)? True of the empty string: callers check lengths.
pub fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex digest of `bytes` with a TUF hash algorithm name.
pub fn digest_hex(algorithm: &str, bytes: &[u8]) -> Result<String> {
    match algorithm {
        "sha256" => Ok(hex::encode(Sha256::digest(bytes))),
        "sha512" => Ok(hex::encode(Sha512::digest(bytes))),
        other => Err(Error::HashAlgorithm(other.to_string())),
    }
}

/// Check `bytes` against every hash listed. An unknown algorithm is an error
/// rather than skipped: skipping would let an attacker pick which hash counts.
pub fn verify_hashes(bytes: &[u8], hashes: &BTreeMap<String, String>) -> Result<()> {
    for (algorithm, expected) in hashes {
        let actual = digest_hex(algorithm, bytes)?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(Error::Hash {
                algorithm: algorithm.clone(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    Ok(())
}

/// Check that `bytes` is exactly `expected` long.
pub fn verify_length(bytes: &[u8], expected: u64) -> Result<()> {
    let actual = bytes.len() as u64;
    if actual != expected {
        return Err(Error::Length { expected, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_checks() {
        let mut h = BTreeMap::new();
        h.insert("sha256".to_string(), sha256_hex(b"abc"));
        verify_hashes(b"abc", &h).unwrap();
        assert!(verify_hashes(b"abd", &h).is_err());
        h.insert("md5".into(), "00".into());
        assert!(matches!(
            verify_hashes(b"abc", &h),
            Err(Error::HashAlgorithm(_))
        ));
        verify_length(b"abc", 3).unwrap();
        assert!(verify_length(b"abc", 4).is_err());
    }
}
