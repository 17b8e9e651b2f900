//! The one answer to "is this role signed by a threshold of these keys".

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::metadata::Signature;
use std::collections::{BTreeMap, BTreeSet};

/// Check that `signatures` over `canonical` include valid signatures by at
/// least `threshold` distinct keys of `keyids` (looked up in `keys`): the
/// keys [`valid_signers`] finds, counted.
pub fn verify_signatures(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u64,
) -> Result<()> {
    let valid = valid_signers(role, canonical, signatures, keys, keyids)?.len();
    // threshold 0 is refused at parse time; max(1) keeps this function safe
    // on its own.
    if (valid as u64) < threshold.max(1) {
        return Err(Error::Threshold {
            role: role.to_string(),
            valid,
            threshold,
        });
    }
    Ok(())
}

/// The key IDs (of `keyids`, one per distinct key) whose signatures over
/// `canonical` verify: what a threshold is counted on.
///
/// * Metadata listing two signatures with one key ID is refused outright:
///   a duplicate can only be an attempt to count one key twice.
/// * Signatures by keys not in `keyids`, by unknown key types, or that do not
///   verify are ignored; they neither help nor hurt.
/// * Each distinct key (by [`PublicKey::identity`], its decoded material)
///   counts once, whatever IDs list it and however its text encodes it (the
///   first ID that signed with it is returned).
pub fn valid_signers(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    for sig in signatures {
        if !seen.insert(sig.keyid.as_str()) {
            return Err(Error::DuplicateSignature {
                role: role.to_string(),
                keyid: sig.keyid.clone(),
            });
        }
    }
    let role_keys: BTreeSet<&str> = keyids.iter().map(String::as_str).collect();
    // Count distinct key material, not distinct key IDs: one key listed
    // under two IDs must not meet a threshold of two.
    let mut materials = BTreeSet::new();
    Ok(signatures
        .iter()
        .filter(|sig| role_keys.contains(sig.keyid.as_str()))
        .filter_map(|sig| keys.get(&sig.keyid).map(|key| (sig, key)))
        .filter(|(sig, key)| key.verify(canonical, &sig.sig).unwrap_or(false))
        .filter(|(_, key)| materials.insert(key.identity()))
        .map(|(sig, _)| sig.keyid.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    fn setup(n: usize) -> (Vec<SigningKey>, BTreeMap<String, PublicKey>, Vec<String>) {
        let signers: Vec<SigningKey> = (0..n).map(|_| SigningKey::generate()).collect();
        let keys = signers
            .iter()
            .map(|k| (k.key_id(), k.public_key()))
            .collect();
        let ids = signers.iter().map(SigningKey::key_id).collect();
        (signers, keys, ids)
    }

    #[test]
    fn threshold_counts_distinct_valid_role_keys() {
        let (signers, keys, ids) = setup(3);
        let msg = b"signed";
        let sigs: Vec<_> = signers.iter().take(2).map(|k| k.sign(msg)).collect();
        verify_signatures("r", msg, &sigs, &keys, &ids, 2).unwrap();
        assert!(matches!(
            verify_signatures("r", msg, &sigs, &keys, &ids, 3),
            Err(Error::Threshold { valid: 2, .. })
        ));
    }

    #[test]
    fn duplicate_key_ids_are_refused() {
        let (signers, keys, ids) = setup(1);
        let sig = signers[0].sign(b"m");
        let sigs = vec![sig.clone(), sig];
        assert!(matches!(
            verify_signatures("r", b"m", &sigs, &keys, &ids, 1),
            Err(Error::DuplicateSignature { .. })
        ));
    }

    #[test]
    fn signatures_from_non_role_keys_and_bad_signatures_are_ignored() {
        let (signers, keys, ids) = setup(2);
        let outsider = SigningKey::generate();
        let mut bad = signers[1].sign(b"m");
        bad.sig = signers[1].sign(b"other").sig;
        let sigs = vec![outsider.sign(b"m"), bad, signers[0].sign(b"m")];
        verify_signatures("r", b"m", &sigs, &keys, &ids[..1], 1).unwrap();
        assert!(verify_signatures("r", b"m", &sigs, &keys, &ids, 2).is_err());
    }

    #[test]
    fn one_key_under_two_ids_counts_once() {
        let (signers, mut keys, _) = setup(1);
        let key = signers[0].public_key();
        // The same key again, as is and with its hex in upper case.
        let mut upper = key.clone();
        upper.keyval.public = upper.keyval.public.to_uppercase();
        for alias in [key, upper] {
            let alias_id = "a1".repeat(32);
            keys.insert(alias_id.clone(), alias);
            let mut alias_sig = signers[0].sign(b"m");
            alias_sig.keyid = alias_id.clone();
            let sigs = vec![signers[0].sign(b"m"), alias_sig];
            let ids = vec![signers[0].key_id(), alias_id];
            assert!(matches!(
                verify_signatures("r", b"m", &sigs, &keys, &ids, 2),
                Err(Error::Threshold { valid: 1, .. })
            ));
            verify_signatures("r", b"m", &sigs, &keys, &ids, 1).unwrap();
        }
    }

    #[test]
    fn key_listed_in_keys_but_not_role_does_not_count() {
        let (signers, keys, ids) = setup(2);
        let sigs = vec![signers[1].sign(b"m")];
        assert!(verify_signatures("r", b"m", &sigs, &keys, &ids[..1], 1).is_err());
    }

    #[test]
    fn valid_signers_names_the_keys_that_count() {
        let (signers, mut keys, mut ids) = setup(3);
        let outsider = SigningKey::generate();
        let mut bad = signers[2].sign(b"m");
        bad.sig = signers[2].sign(b"other").sig;
        let mut alias = signers[1].sign(b"m");
        alias.keyid = "alias".into();
        keys.insert("alias".into(), signers[1].public_key());
        ids.push("alias".into());
        let sigs = vec![
            signers[1].sign(b"m"),
            outsider.sign(b"m"),
            bad,
            alias,
            signers[0].sign(b"m"),
        ];
        assert_eq!(
            valid_signers("r", b"m", &sigs, &keys, &ids).unwrap(),
            vec![signers[1].key_id(), signers[0].key_id()]
        );
        assert!(valid_signers("r", b"m", &[], &keys, &ids)
            .unwrap()
            .is_empty());
    }
}
