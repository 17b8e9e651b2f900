//! The trusted-metadata state machine of the TUF client workflow (TUF
//! specification 1.0.x, section 5), modelled on python-tuf's
//! `TrustedMetadataSet`.
//!
//! Pure: it is handed bytes and a fixed reference time, and answers "now
//! trusted" or a [`TrustError`] naming the attack it refused. It does no
//! I/O and knows nothing of fetching or files. It lives in `shared` because
//! both sides decide trust with it: the client's updater fetches, persists
//! and calls it in order, and a server importing a mirrored repository
//! verifies the copy with it the same way:
//!
//! 1. [`TrustedMetadataSet::new`] with the locally trusted root;
//! 2. [`TrustedMetadataSet::update_root`] for each `N+1.root.json`;
//! 3. [`TrustedMetadataSet::load_local_timestamp`] (rollback memory), then
//!    [`TrustedMetadataSet::update_timestamp`] with the remote one;
//! 4. [`TrustedMetadataSet::load_local_snapshot`] or
//!    [`TrustedMetadataSet::update_snapshot`];
//! 5. [`TrustedMetadataSet::update_targets`], then
//!    [`TrustedMetadataSet::update_delegated_targets`] as the search needs.
//!
//! Every signature and threshold check goes through
//! [`crate::succession::verify_root`] (a new root),
//! [`crate::Root::verify_role`] or `Delegations::verify_delegate`;
//! there is no second implementation here.

use crate::metadata::Role;
use crate::succession::{verify_root, RootKeys};
use crate::{
    Delegations, Error as TufError, MetaFile, Metadata, PublicKey, Root, Snapshot, Targets,
    Timestamp,
};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Why metadata was refused. Messages name the attack the check defends
/// against, so a user seeing one knows whether to suspect the repository.
/// Only trust decisions: fetch and file errors are the updater's
/// (the client updater's `UpdateError`).
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A role's version went down compared with what the client trusts.
    #[error(
        "rollback attack refused: {role} version {new} is older than trusted version {trusted}"
    )]
    Rollback {
        role: String,
        new: u64,
        trusted: u64,
    },

    /// A role listed in timestamp or snapshot went down in version.
    #[error("rollback attack refused: {role} lists {file} version {new}, older than trusted version {trusted}")]
    MetaRollback {
        role: String,
        file: String,
        new: u64,
        trusted: u64,
    },

    /// A new snapshot dropped a role the trusted snapshot lists.
    #[error("rollback attack refused: new snapshot no longer lists {file}, which the trusted snapshot lists")]
    MetaRemoved { file: String },

    /// Metadata (or the final root) has expired at the reference time.
    #[error("freeze attack refused: {role} expired at {expires}")]
    Expired { role: String, expires: String },

    /// Bytes or version do not match what the referring role says.
    #[error("mix-and-match refused: {0}")]
    MixAndMatch(String),

    /// Not signed by a threshold of the delegator's keys (or a key signed twice).
    #[error("arbitrary metadata refused: {context}{source}")]
    Signature { context: String, source: TufError },

    /// A new root whose version is not exactly the trusted one plus one.
    #[error("arbitrary metadata refused: {file} has root version {found}, expected {expected}")]
    RootVersion {
        file: String,
        expected: u64,
        found: u64,
    },

    /// Spec 5.3.11: the root chain rotated timestamp or snapshot keys, so the
    /// locally trusted copies are discarded (they may come from a
    /// fast-forward attack made with the old, compromised keys).
    #[error("fast-forward attack recovery: locally trusted {role} discarded because root rotated the timestamp or snapshot keys")]
    FastForwardRecovery { role: String },

    /// The bytes are not valid metadata of the expected role.
    #[error("{role} metadata refused: {source}")]
    Invalid { role: String, source: TufError },

    /// Steps called out of the section 5 order (a bug in the caller).
    #[error("TUF client workflow out of order: {0}")]
    Order(String),

    /// A delegated role is unknown to its delegator or to snapshot.
    #[error("delegation refused: {0}")]
    Delegation(String),
}

/// What [`TrustedMetadataSet::update_timestamp`] did with a valid timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted: persist it.
    Updated,
    /// Same version as the trusted one: keep the trusted copy, persist nothing.
    Unchanged,
}

/// Parse and map schema errors to [`TrustError::Invalid`].
fn parse<T: Role>(bytes: &[u8], role: &str) -> Result<Metadata<T>, TrustError> {
    Metadata::<T>::from_bytes(bytes).map_err(|source| TrustError::Invalid {
        role: role.to_string(),
        source,
    })
}

/// Spec 5.4.3.1 and 5.5.5: a role's version never goes down from the one
/// trusted.
fn check_rollback(role: &str, new: u64, trusted: u64) -> Result<(), TrustError> {
    if new < trusted {
        return Err(TrustError::Rollback {
            role: role.to_string(),
            new,
            trusted,
        });
    }
    Ok(())
}

/// Signature failures are "arbitrary metadata"; anything else the shared
/// core reports (say, a role the delegator does not know) is invalid input.
fn signature_error(role: &str, context: String, source: TufError) -> TrustError {
    match source {
        TufError::Threshold { .. } | TufError::DuplicateSignature { .. } => {
            TrustError::Signature { context, source }
        }
        other => TrustError::Invalid {
            role: role.to_string(),
            source: other,
        },
    }
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn check_expiry<T: Role>(
    role: &str,
    md: &Metadata<T>,
    now: DateTime<Utc>,
) -> Result<(), TrustError> {
    if md.signed.is_expired(now) {
        return Err(TrustError::Expired {
            role: role.to_string(),
            expires: fmt_time(md.signed.expires()),
        });
    }
    Ok(())
}

fn check_meta_bytes(
    meta: &MetaFile,
    bytes: &[u8],
    role: &str,
    referrer: &str,
) -> Result<(), TrustError> {
    meta.verify_bytes(bytes).map_err(|e| {
        TrustError::MixAndMatch(format!(
            "{role} does not match its entry in {referrer}: {e}"
        ))
    })
}

/// The keys (by what they are, [`PublicKey::identity`]) and threshold root
/// gives `role`; two roots "rotated" the role's keys when these differ.
/// Comparing key content, not IDs, because TUF key IDs are whatever the
/// root lists.
fn role_key_identities(root: &Root, role: &str) -> (BTreeSet<Vec<u8>>, u64) {
    match root.roles.get(role) {
        Some(rk) => (
            rk.keyids
                .iter()
                .filter_map(|id| root.keys.get(id).map(PublicKey::identity))
                .collect(),
            rk.threshold,
        ),
        None => (BTreeSet::new(), 0),
    }
}

/// A root whose signatures have been checked against its own root keys
/// (not its expiry: an expired root may still lead to a newer one): where a
/// client's trust starts. Made by [`VerifiedRoot::verify`] or by a
/// [`TrustedMetadataSet`] that accepted it.
#[derive(Debug, Clone)]
pub struct VerifiedRoot(Metadata<Root>);

impl VerifiedRoot {
    /// Check `root` is signed by a threshold of its own root keys. The
    /// shared core's error is returned as it is, so each caller says in its
    /// own words which root failed.
    pub fn verify(root: Metadata<Root>) -> Result<Self, TufError> {
        root.signed.verify_role("root", &root)?;
        Ok(VerifiedRoot(root))
    }

    /// Parse `bytes` and [`Self::verify`] them, refusals as [`TrustError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrustError> {
        let root: Metadata<Root> = parse(bytes, "root")?;
        Self::verify(root).map_err(|e| {
            signature_error(
                "root",
                "trusted root is not signed by its own keys: ".into(),
                e,
            )
        })
    }

    pub fn metadata(&self) -> &Metadata<Root> {
        &self.0
    }
}

/// The metadata a client trusts during one run of the update workflow.
#[derive(Debug, Clone)]
pub struct TrustedMetadataSet {
    now: DateTime<Utc>,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    targets: Option<Metadata<Targets>>,
    delegated: BTreeMap<String, Metadata<Targets>>,
    /// Set once the root chain changed the timestamp or snapshot keys.
    timestamp_or_snapshot_keys_rotated: bool,
}

impl TrustedMetadataSet {
    /// Start from the locally trusted root. Its signatures are checked
    /// against its own keys; its expiry is not (an expired root may still
    /// lead to a newer one: only the final root's expiry matters).
    pub fn new(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self, TrustError> {
        Ok(Self::from_root(VerifiedRoot::from_bytes(root_bytes)?, now))
    }

    /// Start from a root already verified (by bootstrap, or by an earlier
    /// run of the workflow): nothing is checked again.
    pub fn from_root(root: VerifiedRoot, now: DateTime<Utc>) -> Self {
        TrustedMetadataSet {
            now,
            root: root.0,
            timestamp: None,
            snapshot: None,
            targets: None,
            delegated: BTreeMap::new(),
            timestamp_or_snapshot_keys_rotated: false,
        }
    }

    /// The reference time every expiry check uses.
    pub fn reference_time(&self) -> DateTime<Utc> {
        self.now
    }

    pub fn root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The root trusted now, to start a later run from.
    pub fn verified_root(&self) -> VerifiedRoot {
        VerifiedRoot(self.root.clone())
    }

    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    pub fn targets(&self) -> Option<&Metadata<Targets>> {
        self.targets.as_ref()
    }

    /// A delegated targets role trusted so far (by name).
    pub fn delegated_targets(&self, role: &str) -> Option<&Metadata<Targets>> {
        self.delegated.get(role)
    }

    /// The top-level `targets` or a delegated role, by name.
    pub fn targets_role(&self, role: &str) -> Option<&Metadata<Targets>> {
        if role == "targets" {
            self.targets()
        } else {
            self.delegated_targets(role)
        }
    }

    /// Did the root chain rotate the timestamp or snapshot keys (spec
    /// 5.3.11)? The updater then deletes its local timestamp and snapshot.
    pub fn timestamp_or_snapshot_keys_rotated(&self) -> bool {
        self.timestamp_or_snapshot_keys_rotated
    }

    /// Spec 5.3: accept `N+1.root.json`: version exactly N+1, signed by a
    /// threshold of the trusted root's root keys and of its own.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<&Metadata<Root>, TrustError> {
        if self.timestamp.is_some() {
            return Err(TrustError::Order(
                "root cannot be updated after timestamp".into(),
            ));
        }
        let expected = self.root.signed.version + 1;
        let file = format!("{expected}.root.json");
        let new: Metadata<Root> = parse(bytes, "root")?;
        let verification = verify_root(Some(&self.root.signed), &new).map_err(|e| match e {
            TufError::RootVersion { expected, found } => TrustError::RootVersion {
                file: file.clone(),
                expected,
                found,
            },
            other => signature_error("root", format!("{file}: "), other),
        })?;
        if let Some((tally, source)) = verification.unmet() {
            let context = match tally.keys {
                RootKeys::Previous(version) => {
                    format!("{file} checked against the keys of trusted root version {version}: ")
                }
                RootKeys::Own => format!("{file} checked against its own keys: "),
            };
            return Err(TrustError::Signature { context, source });
        }
        for role in ["timestamp", "snapshot"] {
            if role_key_identities(&self.root.signed, role)
                != role_key_identities(&new.signed, role)
            {
                self.timestamp_or_snapshot_keys_rotated = true;
            }
        }
        self.root = new;
        Ok(&self.root)
    }

    /// Spec 5.3.10: the final root must not be expired. Called by
    /// [`Self::update_timestamp`]; public for callers that stop after root.
    pub fn check_root_expiry(&self) -> Result<(), TrustError> {
        check_expiry("root", &self.root, self.now)
    }

    /// Load the locally persisted timestamp as rollback memory. Refused
    /// (and to be deleted) after a timestamp/snapshot key rotation. As in
    /// python-tuf, an expired local timestamp stays loaded for rollback
    /// checks even though this returns the expiry error.
    pub fn load_local_timestamp(&mut self, bytes: &[u8]) -> Result<(), TrustError> {
        if self.timestamp_or_snapshot_keys_rotated {
            return Err(TrustError::FastForwardRecovery {
                role: "timestamp".into(),
            });
        }
        self.update_timestamp(bytes).map(|_| ())
    }

    /// Spec 5.4: a new timestamp, signed per root, not rolling back its own
    /// version or snapshot's. An equal version reports
    /// [`TimestampUpdate::Unchanged`] and keeps the trusted copy.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate, TrustError> {
        if self.snapshot.is_some() {
            return Err(TrustError::Order(
                "timestamp cannot be updated after snapshot".into(),
            ));
        }
        self.check_root_expiry()?;
        let new: Metadata<Timestamp> = self.parse_signed_by_root(bytes, "timestamp")?;
        if let Some(old) = &self.timestamp {
            check_rollback("timestamp", new.signed.version, old.signed.version)?;
            if new.signed.version == old.signed.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            let old_snap = self.timestamp_snapshot_meta(old)?.version;
            let new_snap = self.timestamp_snapshot_meta(&new)?.version;
            if new_snap < old_snap {
                return Err(TrustError::MetaRollback {
                    role: "timestamp".into(),
                    file: "snapshot.json".into(),
                    new: new_snap,
                    trusted: old_snap,
                });
            }
        }
        // Kept even if expired: an expired timestamp still guards the next
        // one against rollback (python-tuf does the same). Expiry is
        // re-checked before snapshot is loaded.
        self.timestamp = Some(new);
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    /// `bytes` as the top-level `role`, signed by a threshold of the keys
    /// the trusted root gives it.
    fn parse_signed_by_root<T: Role>(
        &self,
        bytes: &[u8],
        role: &str,
    ) -> Result<Metadata<T>, TrustError> {
        let new: Metadata<T> = parse(bytes, role)?;
        self.root
            .signed
            .verify_role(role, &new)
            .map_err(|e| signature_error(role, String::new(), e))?;
        Ok(new)
    }

    fn timestamp_snapshot_meta<'a>(
        &self,
        ts: &'a Metadata<Timestamp>,
    ) -> Result<&'a MetaFile, TrustError> {
        ts.signed
            .snapshot_meta()
            .map_err(|source| TrustError::Invalid {
                role: "timestamp".into(),
                source,
            })
    }

    fn trusted_timestamp(&self) -> Result<&Metadata<Timestamp>, TrustError> {
        self.timestamp
            .as_ref()
            .ok_or_else(|| TrustError::Order("snapshot cannot be loaded before timestamp".into()))
    }

    fn check_final_timestamp(&self) -> Result<(), TrustError> {
        check_expiry("timestamp", self.trusted_timestamp()?, self.now)
    }

    /// Load the locally persisted snapshot (already verified when it was
    /// stored, so its hashes are not checked against timestamp). Refused
    /// after a timestamp/snapshot key rotation. A non-final local snapshot
    /// stays loaded for rollback checks while this returns the error.
    pub fn load_local_snapshot(&mut self, bytes: &[u8]) -> Result<(), TrustError> {
        if self.timestamp_or_snapshot_keys_rotated {
            return Err(TrustError::FastForwardRecovery {
                role: "snapshot".into(),
            });
        }
        self.update_snapshot(bytes, true)
    }

    /// Spec 5.5: a snapshot matching timestamp's hash and length (unless it
    /// is the locally trusted copy), signed per root, version as timestamp
    /// says, no role rolled back or removed, not expired.
    pub fn update_snapshot(&mut self, bytes: &[u8], trusted: bool) -> Result<(), TrustError> {
        if self.targets.is_some() {
            return Err(TrustError::Order(
                "snapshot cannot be updated after targets".into(),
            ));
        }
        self.check_final_timestamp()?;
        let ts = self.trusted_timestamp()?;
        let meta = self.timestamp_snapshot_meta(ts)?;
        if !trusted {
            check_meta_bytes(meta, bytes, "snapshot", "timestamp")?;
        }
        let new: Metadata<Snapshot> = self.parse_signed_by_root(bytes, "snapshot")?;
        if let Some(old) = &self.snapshot {
            check_rollback("snapshot", new.signed.version, old.signed.version)?;
            for (file, old_meta) in &old.signed.meta {
                let new_meta = new
                    .signed
                    .meta
                    .get(file)
                    .ok_or_else(|| TrustError::MetaRemoved { file: file.clone() })?;
                if new_meta.version < old_meta.version {
                    return Err(TrustError::MetaRollback {
                        role: "snapshot".into(),
                        file: file.clone(),
                        new: new_meta.version,
                        trusted: old_meta.version,
                    });
                }
            }
        }
        // Kept even if not final: it guards the next snapshot against rollback.
        self.snapshot = Some(new);
        self.check_final_snapshot()
    }

    fn trusted_snapshot(&self) -> Result<&Metadata<Snapshot>, TrustError> {
        self.snapshot
            .as_ref()
            .ok_or_else(|| TrustError::Order("targets cannot be loaded before snapshot".into()))
    }

    /// The trusted snapshot is final: not expired, and the version timestamp names.
    fn check_final_snapshot(&self) -> Result<(), TrustError> {
        let snapshot = self.trusted_snapshot()?;
        check_expiry("snapshot", snapshot, self.now)?;
        let ts = self.trusted_timestamp()?;
        let expected = self.timestamp_snapshot_meta(ts)?.version;
        if snapshot.signed.version != expected {
            return Err(TrustError::MixAndMatch(format!(
                "snapshot version {} does not match version {expected} in timestamp",
                snapshot.signed.version
            )));
        }
        Ok(())
    }

    /// A delegated role already trusted through one delegator, reached
    /// again through `delegator`: it must be signed by the keys this
    /// delegator gives it too. Trusting it by name alone would let a role
    /// delegated by a compromised sibling stand in for the real one.
    pub fn check_delegated_by(&self, role: &str, delegator: &str) -> Result<(), TrustError> {
        if role == "targets" {
            return Ok(());
        }
        let md = self
            .delegated_targets(role)
            .ok_or_else(|| TrustError::Order(format!("{role} is not loaded")))?;
        self.delegations_of(delegator, role, "checked")?
            .verify_delegate(role, md)
            .map_err(|e| signature_error(role, format!("{role} (delegated by {delegator}): "), e))
    }

    /// The delegations of `delegator`, a trusted targets role, that are to
    /// give `role` its keys; `step` (`loaded`, `checked`) is what cannot be
    /// done with `role` before its delegator is trusted.
    fn delegations_of(
        &self,
        delegator: &str,
        role: &str,
        step: &str,
    ) -> Result<&Delegations, TrustError> {
        let parent = self.targets_role(delegator).ok_or_else(|| {
            TrustError::Order(format!(
                "{role} cannot be {step} before its delegator {delegator}"
            ))
        })?;
        parent.signed.delegations.as_ref().ok_or_else(|| {
            TrustError::Delegation(format!("{delegator} delegates no roles, so not {role}"))
        })
    }

    /// Spec 5.6: top-level targets, signed per root.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<&Metadata<Targets>, TrustError> {
        self.update_delegated_targets(bytes, "targets", "root")
    }

    /// Spec 5.6 / 5.7: targets role `role` as listed in snapshot (hash,
    /// length, version), signed by a threshold of the keys `delegator`
    /// (`root` for top-level targets) gives it, not expired.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<&Metadata<Targets>, TrustError> {
        self.check_final_snapshot()?;
        let snapshot = self.trusted_snapshot()?;
        let file = format!("{role}.json");
        let meta = snapshot
            .signed
            .role_meta(role)
            .ok_or_else(|| TrustError::MixAndMatch(format!("snapshot does not list {file}")))?;
        check_meta_bytes(meta, bytes, role, "snapshot")?;
        let new: Metadata<Targets> = parse(bytes, role)?;
        if role == "targets" {
            if delegator != "root" {
                return Err(TrustError::Delegation(format!(
                    "top-level targets is delegated by root, not {delegator}"
                )));
            }
            self.root
                .signed
                .verify_role("targets", &new)
                .map_err(|e| signature_error(role, String::new(), e))?;
        } else {
            let delegations = self.delegations_of(delegator, role, "loaded")?;
            if delegations.role_keys(role).is_none() {
                return Err(TrustError::Delegation(format!(
                    "{delegator} does not delegate to {role}"
                )));
            }
            delegations.verify_delegate(role, &new).map_err(|e| {
                signature_error(role, format!("{role} (delegated by {delegator}): "), e)
            })?;
        }
        if new.signed.version != meta.version {
            return Err(TrustError::MixAndMatch(format!(
                "{role} version {} does not match version {} in snapshot",
                new.signed.version, meta.version
            )));
        }
        check_expiry(role, &new, self.now)?;
        if role == "targets" {
            Ok(self.targets.insert(new))
        } else {
            self.delegated.insert(role.to_string(), new);
            Ok(&self.delegated[role])
        }
    }
}
