//! The one answer to "is this root the valid successor of that one" (TUF
//! 5.3.4–5.3.5): version exactly +1, signed by a threshold of the previous
//! root's root keys *and* by a threshold of its own.
//!
//! The answer is a [`RootVerification`] naming, for each of the two key
//! sets, which keys signed and which did not (python-tuf's
//! `get_root_verification_result`), so that a client refusing an update,
//! the server refusing a publish and a multi-party signing session counting
//! what is still missing all ask the same question and read the same answer.

use crate::error::{Error, Result};
use crate::metadata::{Metadata, Root};

/// Which root's root keys a [`KeyTally`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKeys {
    /// The root being replaced, at this version (spec 5.3.4).
    Previous(u64),
    /// The new root's own root keys (spec 5.3.5).
    Own,
}

/// The signatures a new root carries from one set of root keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTally {
    pub keys: RootKeys,
    /// The version of the root these keys come from.
    pub root_version: u64,
    pub threshold: u64,
    /// Key IDs whose signatures verify (one per distinct key).
    pub signed: Vec<String>,
    /// Key IDs of this set with no valid signature.
    pub unsigned: Vec<String>,
}

impl KeyTally {
    /// How many more valid signatures the threshold needs (0: met).
    pub fn needed(&self) -> u64 {
        self.threshold
            .max(1)
            .saturating_sub(self.signed.len() as u64)
    }

    pub fn verified(&self) -> bool {
        self.needed() == 0
    }
}

/// Both tallies of a new root: the previous root's keys (absent for a
/// first root, which is trusted by other means) and its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootVerification {
    pub previous: Option<KeyTally>,
    pub own: KeyTally,
}

impl RootVerification {
    /// Are both thresholds met?
    pub fn verified(&self) -> bool {
        self.tallies().all(KeyTally::verified)
    }

    /// The tallies, previous root's first (the order the spec checks them).
    pub fn tallies(&self) -> impl Iterator<Item = &KeyTally> {
        self.previous.iter().chain(std::iter::once(&self.own))
    }

    /// The first threshold not met, and the error saying so.
    pub fn unmet(&self) -> Option<(&KeyTally, Error)> {
        self.tallies().find(|t| !t.verified()).map(|t| {
            (
                t,
                Error::Threshold {
                    role: "root".into(),
                    valid: t.signed.len(),
                    threshold: t.threshold,
                },
            )
        })
    }

    /// `Ok` when both thresholds are met, else the first unmet one's error.
    pub fn check(&self) -> Result<()> {
        match self.unmet() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }
}

/// Count `new`'s signatures against `previous`'s root keys (when there is a
/// previous root) and its own, after checking that `new` is exactly the
/// next version. `Err` for a wrong version, a root without a root role, or
/// a signature list naming one key ID twice; a threshold that is not met is
/// *not* an error here — read [`RootVerification::verified`] or
/// [`RootVerification::check`].
pub fn verify_root(previous: Option<&Root>, new: &Metadata<Root>) -> Result<RootVerification> {
    if let Some(previous) = previous {
        let expected = previous.version + 1;
        if new.signed.version != expected {
            return Err(Error::RootVersion {
                expected,
                found: new.signed.version,
            });
        }
    }
    Ok(RootVerification {
        previous: previous
            .map(|root| tally(root, RootKeys::Previous(root.version), new))
            .transpose()?,
        own: tally(&new.signed, RootKeys::Own, new)?,
    })
}

fn tally(signer: &Root, which: RootKeys, new: &Metadata<Root>) -> Result<KeyTally> {
    let keys = signer.role_keys("root")?;
    let signed = signer.role_signers("root", new)?;
    let unsigned = keys
        .keyids
        .iter()
        .filter(|id| !signed.contains(id))
        .cloned()
        .collect();
    Ok(KeyTally {
        keys: which,
        root_version: signer.version,
        threshold: keys.threshold,
        signed,
        unsigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use crate::metadata::RoleKeys;
    use chrono::{Duration, Utc};

    fn root(version: u64, keys: &[&SigningKey], threshold: u64) -> Root {
        let mut root = Root::new(Utc::now() + Duration::days(1));
        root.version = version;
        for role in ["root", "targets", "snapshot", "timestamp"] {
            root.roles
                .insert(role.into(), RoleKeys::new(Vec::new(), threshold));
        }
        for key in keys {
            root.add_key("root", key.public_key());
        }
        root.roles.get_mut("root").unwrap().threshold = threshold;
        root
    }

    fn signed(root: Root, by: &[&SigningKey]) -> Metadata<Root> {
        let mut md = Metadata::new(root).unwrap();
        for key in by {
            md.sign(key);
        }
        md
    }

    #[test]
    fn a_successor_needs_both_thresholds() {
        let (a, b, c) = (
            SigningKey::generate(),
            SigningKey::generate(),
            SigningKey::generate(),
        );
        let v1 = root(1, &[&a, &b], 2);
        // v2 moves from {a, b} (2 of 2) to {b, c} (2 of 2).
        let v2 = root(2, &[&b, &c], 2);

        let only_new = verify_root(Some(&v1), &signed(v2.clone(), &[&b, &c])).unwrap();
        assert!(!only_new.verified());
        let (short, err) = only_new.unmet().unwrap();
        assert_eq!(short.keys, RootKeys::Previous(1));
        assert_eq!(short.unsigned, vec![a.key_id()]);
        assert!(matches!(err, Error::Threshold { valid: 1, .. }));

        let only_old = verify_root(Some(&v1), &signed(v2.clone(), &[&a, &b])).unwrap();
        assert_eq!(only_old.unmet().unwrap().0.keys, RootKeys::Own);

        let all = verify_root(Some(&v1), &signed(v2, &[&a, &b, &c])).unwrap();
        assert!(all.verified());
        all.check().unwrap();
        assert_eq!(all.previous.as_ref().unwrap().signed.len(), 2);
        assert!(all.own.unsigned.is_empty());
    }

    #[test]
    fn a_successor_is_exactly_the_next_version() {
        let a = SigningKey::generate();
        let v1 = root(1, &[&a], 1);
        for version in [1, 3] {
            assert!(matches!(
                verify_root(Some(&v1), &signed(root(version, &[&a], 1), &[&a])),
                Err(Error::RootVersion { expected: 2, found }) if found == version
            ));
        }
    }

    #[test]
    fn a_first_root_counts_only_its_own_keys() {
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        let v = verify_root(None, &signed(root(7, &[&a, &b], 2), &[&a])).unwrap();
        assert!(v.previous.is_none());
        assert_eq!(v.own.needed(), 1);
        assert_eq!(v.own.unsigned, vec![b.key_id()]);
    }
}
