//! The trusted-metadata state machine of the TUF client workflow (TUF
//! specification 1.0.x, section 5), modelled on python-tuf's
//! `TrustedMetadataSet`.
//!
//! Pure: it is handed bytes and a fixed reference time, and answers "now
//! trusted" or a [`TrustError`] naming the attack it refused. It does no
//! I/O and knows nothing of fetching or files; [`crate::updater`] fetches,
//! persists and calls it in order:
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
//! `tagtrust_shared::succession::verify_root` (a new root),
//! `tagtrust_shared::Root::verify_role` or `Delegations::verify_delegate`;
//! there is no second implementation here.

use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tagtrust_shared::metadata::Role;
use tagtrust_shared::succession::{verify_root, RootKeys};
use tagtrust_shared::{
    Error as TufError, MetaFile, Metadata, PublicKey, Root, Snapshot, Targets, Timestamp,
};

/// Why metadata was refused. Messages name the attack the check defends
/// against, so a user seeing one knows whether to suspect the repository.
/// Only trust decisions: fetch and file errors are the updater's
/// ([`crate::updater::UpdateError`]).
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
        let new: Metadata<Timestamp> = parse(bytes, "timestamp")?;
        self.root
            .signed
            .verify_role("timestamp", &new)
            .map_err(|e| signature_error("timestamp", String::new(), e))?;
        if let Some(old) = &self.timestamp {
            if new.signed.version < old.signed.version {
                return Err(TrustError::Rollback {
                    role: "timestamp".into(),
                    new: new.signed.version,
                    trusted: old.signed.version,
                });
            }
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
        let new: Metadata<Snapshot> = parse(bytes, "snapshot")?;
        self.root
            .signed
            .verify_role("snapshot", &new)
            .map_err(|e| signature_error("snapshot", String::new(), e))?;
        if let Some(old) = &self.snapshot {
            if new.signed.version < old.signed.version {
                return Err(TrustError::Rollback {
                    role: "snapshot".into(),
                    new: new.signed.version,
                    trusted: old.signed.version,
                });
            }
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
        let parent = self.targets_role(delegator).ok_or_else(|| {
            TrustError::Order(format!(
                "{role} cannot be checked before its delegator {delegator}"
            ))
        })?;
        let delegations = parent.signed.delegations.as_ref().ok_or_else(|| {
            TrustError::Delegation(format!("{delegator} delegates no roles, so not {role}"))
        })?;
        delegations
            .verify_delegate(role, md)
            .map_err(|e| signature_error(role, format!("{role} (delegated by {delegator}): "), e))
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
            let parent = self.targets_role(delegator).ok_or_else(|| {
                TrustError::Order(format!(
                    "{role} cannot be loaded before its delegator {delegator}"
                ))
            })?;
            let delegations = parent.signed.delegations.as_ref().ok_or_else(|| {
                TrustError::Delegation(format!("{delegator} delegates no roles, so not {role}"))
            })?;
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Duration;
    use tagtrust_shared::{DelegatedRole, Delegations, SigningKey, TargetFile};

    /// A small repository built in memory, signed with real keys.
    pub(crate) struct Repo {
        pub root_keys: Vec<SigningKey>,
        pub root: Root,
        pub timestamp_key: SigningKey,
        pub snapshot_key: SigningKey,
        pub targets_key: SigningKey,
        pub delegate_key: SigningKey,
        pub roots: Vec<Vec<u8>>,
        pub now: DateTime<Utc>,
    }

    pub(crate) fn sign<T: Role>(signed: T, keys: &[&SigningKey]) -> Vec<u8> {
        let mut md = Metadata::new(signed).unwrap();
        for k in keys {
            md.sign(k);
        }
        md.to_bytes()
    }

    impl Repo {
        pub(crate) fn new() -> Repo {
            let now = Utc::now();
            let root_key = SigningKey::generate();
            let timestamp_key = SigningKey::generate();
            let snapshot_key = SigningKey::generate();
            let targets_key = SigningKey::generate();
            let mut root = Root::new(now + Duration::days(30));
            root.add_key("root", root_key.public_key());
            root.add_key("timestamp", timestamp_key.public_key());
            root.add_key("snapshot", snapshot_key.public_key());
            root.add_key("targets", targets_key.public_key());
            let bytes = sign(root.clone(), &[&root_key]);
            Repo {
                root_keys: vec![root_key],
                root,
                timestamp_key,
                snapshot_key,
                targets_key,
                delegate_key: SigningKey::generate(),
                roots: vec![bytes],
                now,
            }
        }

        pub(crate) fn expires(&self) -> DateTime<Utc> {
            self.now + Duration::days(7)
        }

        /// Publish root version N+1 after `change`, signed by old and new root keys.
        pub(crate) fn rotate_root(&mut self, change: impl FnOnce(&mut Root, &mut Repo)) -> Vec<u8> {
            let mut root = self.root.clone();
            root.version += 1;
            // `change` pushes any new root keys onto root_keys, so this
            // signs with the old keys and the new ones.
            change(&mut root, self);
            let new_ids: Vec<String> = root.roles["root"].keyids.clone();
            let signers: Vec<&SigningKey> = self.root_keys.iter().collect();
            let bytes = sign(root.clone(), &signers);
            self.root = root;
            self.root_keys.retain(|k| new_ids.contains(&k.key_id()));
            self.roots.push(bytes.clone());
            bytes
        }

        pub(crate) fn timestamp(
            &self,
            version: u64,
            snapshot: &[u8],
            snapshot_version: u64,
        ) -> Vec<u8> {
            let ts = Timestamp::new(
                version,
                self.expires(),
                MetaFile::describing(snapshot_version, snapshot),
            );
            sign(ts, &[&self.timestamp_key])
        }

        pub(crate) fn snapshot(&self, version: u64, roles: &[(&str, &[u8], u64)]) -> Vec<u8> {
            let meta = roles
                .iter()
                .map(|(name, bytes, v)| (format!("{name}.json"), MetaFile::describing(*v, bytes)))
                .collect();
            sign(
                Snapshot::new(version, self.expires(), meta),
                &[&self.snapshot_key],
            )
        }

        /// Top-level targets with one target `top` and a delegation to
        /// `dev` for `apps/*`.
        pub(crate) fn targets(&self, version: u64) -> Vec<u8> {
            let mut t = Targets::new(version, self.expires());
            t.targets.insert("top".into(), target_file(b"top bytes"));
            let mut keys = BTreeMap::new();
            keys.insert(self.delegate_key.key_id(), self.delegate_key.public_key());
            t.delegations = Some(Delegations {
                keys,
                roles: Some(vec![DelegatedRole {
                    name: "dev".into(),
                    keyids: vec![self.delegate_key.key_id()],
                    threshold: 1,
                    terminating: false,
                    paths: Some(vec!["apps/*".into()]),
                    path_hash_prefixes: None,
                    extra: Default::default(),
                }]),
                succinct_roles: None,
                extra: Default::default(),
            });
            sign(t, &[&self.targets_key])
        }

        pub(crate) fn delegated(&self, version: u64, signer: &SigningKey) -> Vec<u8> {
            let mut t = Targets::new(version, self.expires());
            t.targets
                .insert("apps/app".into(), target_file(b"app bytes"));
            sign(t, &[signer])
        }

        /// A consistent repository: (timestamp, snapshot, targets, dev) at `version`.
        pub(crate) fn release(&self, version: u64) -> [Vec<u8>; 4] {
            let targets = self.targets(version);
            let dev = self.delegated(version, &self.delegate_key);
            let snapshot = self.snapshot(
                version,
                &[("targets", &targets, version), ("dev", &dev, version)],
            );
            let timestamp = self.timestamp(version, &snapshot, version);
            [timestamp, snapshot, targets, dev]
        }
    }

    /// SigningKey is deliberately not Clone; tests need copies.
    pub(crate) fn dup(key: &SigningKey) -> SigningKey {
        SigningKey::from_seed(&key.seed()).unwrap()
    }

    pub(crate) fn target_file(bytes: &[u8]) -> TargetFile {
        let mut hashes = BTreeMap::new();
        hashes.insert(
            "sha256".to_string(),
            tagtrust_shared::hashes::sha256_hex(bytes),
        );
        TargetFile {
            length: bytes.len() as u64,
            hashes,
            custom: None,
            extra: Default::default(),
        }
    }

    fn trusted_at(repo: &Repo, version: u64) -> TrustedMetadataSet {
        let [ts, snap, targets, dev] = repo.release(version);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        for r in &repo.roots[1..] {
            set.update_root(r).unwrap();
        }
        assert_eq!(set.update_timestamp(&ts).unwrap(), TimestampUpdate::Updated);
        set.update_snapshot(&snap, false).unwrap();
        set.update_targets(&targets).unwrap();
        set.update_delegated_targets(&dev, "dev", "targets")
            .unwrap();
        set
    }

    #[test]
    fn full_workflow_accepts_a_consistent_repository() {
        let repo = Repo::new();
        let set = trusted_at(&repo, 1);
        assert_eq!(set.timestamp().unwrap().signed.version, 1);
        assert!(set
            .delegated_targets("dev")
            .unwrap()
            .signed
            .targets
            .contains_key("apps/app"));
    }

    #[test]
    fn root_chain_requires_old_and_new_signatures_and_next_version() {
        let mut repo = Repo::new();
        let new_key = SigningKey::generate();
        let v2 = repo.rotate_root(|root, repo| {
            root.roles.get_mut("root").unwrap().keyids.clear();
            root.add_key("root", new_key.public_key());
            repo.root_keys.push(dup(&new_key));
        });
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_root(&v2).unwrap();
        assert_eq!(set.root().signed.version, 2);

        // v3 signed only by a key the trusted root v2 does not list: refused.
        let stranger = SigningKey::generate();
        let mut r3 = repo.root.clone();
        r3.version = 3;
        let bad = sign(r3.clone(), &[&stranger]);
        let err = set.update_root(&bad).unwrap_err().to_string();
        assert!(err.starts_with("arbitrary metadata refused: 3.root.json checked against the keys of trusted root version 2"), "{err}");

        // Signed by the old root's keys but not by the new root's own keys.
        let mut r3b = r3.clone();
        r3b.roles.get_mut("root").unwrap().keyids = vec![stranger.key_id()];
        r3b.keys.insert(stranger.key_id(), stranger.public_key());
        let only_old = sign(r3b, &[&new_key]);
        let err = set.update_root(&only_old).unwrap_err().to_string();
        assert!(err.contains("checked against its own keys"), "{err}");

        // Version skip (v4 where v3 is expected).
        let mut r4 = repo.root.clone();
        r4.version = 4;
        let skip = sign(r4, &[&new_key]);
        let err = set.update_root(&skip).unwrap_err();
        assert!(
            matches!(
                err,
                TrustError::RootVersion {
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "{err}"
        );
        // A replay of v2 is refused the same way.
        assert!(matches!(
            set.update_root(&v2),
            Err(TrustError::RootVersion { .. })
        ));
    }

    #[test]
    fn expired_intermediate_root_is_fine_but_expired_final_root_is_a_freeze() {
        let mut repo = Repo::new();
        let now = repo.now;
        // Root v1 expired: still a valid start of the chain.
        repo.root.expires = tagtrust_shared::metadata::whole_seconds(now - Duration::days(1));
        repo.roots[0] = sign(repo.root.clone(), &[&repo.root_keys[0]]);
        let v2 = repo.rotate_root(|root, _| {
            root.expires = tagtrust_shared::metadata::whole_seconds(now + Duration::days(1))
        });
        let [ts, ..] = repo.release(1);

        let mut set = TrustedMetadataSet::new(&repo.roots[0], now).unwrap();
        let err = set.clone().update_timestamp(&ts).unwrap_err().to_string();
        assert!(
            err.starts_with("freeze attack refused: root expired at"),
            "{err}"
        );
        set.update_root(&v2).unwrap();
        set.update_timestamp(&ts).unwrap();
    }

    #[test]
    fn timestamp_rollback_and_equal_versions() {
        let repo = Repo::new();
        let mut set = trusted_at(&repo, 5);
        let ts5 = set.timestamp().unwrap().to_bytes();
        // Next run: local timestamp v5 is the rollback memory.
        let mut next = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        next.load_local_timestamp(&ts5).unwrap();
        let [ts3, ..] = repo.release(3);
        let err = next.update_timestamp(&ts3).unwrap_err().to_string();
        assert_eq!(
            err,
            "rollback attack refused: timestamp version 3 is older than trusted version 5"
        );
        assert_eq!(
            next.update_timestamp(&ts5).unwrap(),
            TimestampUpdate::Unchanged
        );

        // Timestamp v6 pointing at an older snapshot version.
        let [_, snap4, ..] = repo.release(4);
        let ts6 = repo.timestamp(6, &snap4, 4);
        let err = next.update_timestamp(&ts6).unwrap_err();
        assert!(
            matches!(
                err,
                TrustError::MetaRollback {
                    new: 4,
                    trusted: 5,
                    ..
                }
            ),
            "{err}"
        );
        // Out of order use is refused.
        assert!(matches!(
            set.update_timestamp(&ts5),
            Err(TrustError::Order(_))
        ));
    }

    #[test]
    fn expired_timestamp_is_a_freeze_but_still_guards_rollback() {
        let repo = Repo::new();
        let [_, snap, ..] = repo.release(2);
        let mut ts = Timestamp::new(
            7,
            repo.now - Duration::hours(1),
            MetaFile::describing(2, &snap),
        );
        let expired = sign(ts.clone(), &[&repo.timestamp_key]);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        let err = set.load_local_timestamp(&expired).unwrap_err().to_string();
        assert!(
            err.starts_with("freeze attack refused: timestamp expired at"),
            "{err}"
        );
        // The expired v7 still refuses an older v6...
        ts.version = 6;
        ts.expires = repo.expires();
        let older = sign(ts.clone(), &[&repo.timestamp_key]);
        assert!(matches!(
            set.update_timestamp(&older),
            Err(TrustError::Rollback { .. })
        ));
        // ...and snapshot cannot be loaded while the trusted timestamp is expired.
        assert!(matches!(
            set.update_snapshot(&snap, false),
            Err(TrustError::Expired { .. })
        ));
        ts.version = 8;
        let fresh = sign(ts, &[&repo.timestamp_key]);
        set.update_timestamp(&fresh).unwrap();
        set.update_snapshot(&snap, false).unwrap();
    }

    #[test]
    fn unsigned_or_wrongly_signed_metadata_is_arbitrary() {
        let repo = Repo::new();
        let [_, snap, ..] = repo.release(1);
        let ts = Timestamp::new(1, repo.expires(), MetaFile::describing(1, &snap));
        let by_snapshot_key = sign(ts, &[&repo.snapshot_key]);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        let err = set
            .update_timestamp(&by_snapshot_key)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "arbitrary metadata refused: timestamp is not signed by enough keys: 0 valid signature(s), threshold 1"
        );

        // Targets signed by the wrong key.
        let mut t = Targets::new(1, repo.expires());
        t.targets.insert("x".into(), target_file(b"x"));
        let targets = sign(t, &[&repo.delegate_key]);
        let snap = repo.snapshot(1, &[("targets", &targets, 1)]);
        let ts = repo.timestamp(1, &snap, 1);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_timestamp(&ts).unwrap();
        set.update_snapshot(&snap, false).unwrap();
        let err = set.update_targets(&targets).unwrap_err().to_string();
        assert!(
            err.starts_with("arbitrary metadata refused: targets is not signed by enough keys"),
            "{err}"
        );

        // Tampered bytes (signature no longer covers them).
        let [ts1, ..] = repo.release(1);
        let tampered = String::from_utf8(ts1)
            .unwrap()
            .replace("\"version\":1", "\"version\":9");
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        assert!(matches!(
            set.update_timestamp(tampered.as_bytes()),
            Err(TrustError::Signature { .. })
        ));
    }

    #[test]
    fn snapshot_mix_and_match_rollback_and_removal() {
        let repo = Repo::new();
        let [ts, snap, targets, dev] = repo.release(2);
        // Snapshot bytes not matching timestamp's hash.
        let other = repo.snapshot(2, &[("targets", &targets, 2)]);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_timestamp(&ts).unwrap();
        let err = set.update_snapshot(&other, false).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "mix-and-match refused: snapshot does not match its entry in timestamp"
            ),
            "{err}"
        );

        // Snapshot of the wrong version (timestamp without hashes).
        let mut meta = MetaFile::describing(3, &snap);
        meta.hashes = None;
        meta.length = None;
        let ts_nohash = sign(
            Timestamp::new(2, repo.expires(), meta),
            &[&repo.timestamp_key],
        );
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_timestamp(&ts_nohash).unwrap();
        let err = set.update_snapshot(&snap, false).unwrap_err().to_string();
        assert_eq!(
            err,
            "mix-and-match refused: snapshot version 2 does not match version 3 in timestamp"
        );

        // A later run: local timestamp and snapshot v2 list dev v2; the
        // remote v3 snapshot lists dev v1 or drops dev.
        for (bad, expect) in [
            (
                repo.snapshot(3, &[("targets", &targets, 3), ("dev", &dev, 1)]),
                "dev.json version 1, older than trusted version 2",
            ),
            (
                repo.snapshot(3, &[("targets", &targets, 3)]),
                "no longer lists dev.json",
            ),
            (
                repo.snapshot(1, &[("targets", &targets, 3), ("dev", &dev, 3)]),
                "snapshot version 1 is older than trusted version 2",
            ),
        ] {
            let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
            set.load_local_timestamp(&ts).unwrap();
            let ts3 = repo.timestamp(3, &bad, 3);
            set.update_timestamp(&ts3).unwrap();
            // Not final (timestamp names another version), but kept as rollback memory.
            assert!(set.load_local_snapshot(&snap).is_err());
            let err = set.update_snapshot(&bad, false).unwrap_err().to_string();
            assert!(err.starts_with("rollback attack refused"), "{err}");
            assert!(err.contains(expect), "{err}");
        }
    }

    #[test]
    fn targets_must_match_snapshot_and_delegator() {
        let repo = Repo::new();
        let [ts, snap, targets, dev] = repo.release(1);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_timestamp(&ts).unwrap();
        set.update_snapshot(&snap, false).unwrap();
        // Targets from another release: hash mismatch.
        let targets2 = repo.targets(2);
        let err = set.update_targets(&targets2).unwrap_err().to_string();
        assert!(
            err.starts_with("mix-and-match refused: targets does not match its entry in snapshot"),
            "{err}"
        );
        // Delegated role before its delegator.
        assert!(matches!(
            set.update_delegated_targets(&dev, "dev", "targets"),
            Err(TrustError::Order(_))
        ));
        set.update_targets(&targets).unwrap();
        // Delegated role signed by the targets key instead of the delegated key.
        let forged = repo.delegated(1, &repo.targets_key);
        let forged_snap = repo.snapshot(1, &[("targets", &targets, 1), ("dev", &forged, 1)]);
        let forged_ts = repo.timestamp(1, &forged_snap, 1);
        let mut set2 = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set2.update_timestamp(&forged_ts).unwrap();
        set2.update_snapshot(&forged_snap, false).unwrap();
        set2.update_targets(&targets).unwrap();
        let err = set2
            .update_delegated_targets(&forged, "dev", "targets")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("arbitrary metadata refused: dev (delegated by targets): dev is not signed by enough keys"), "{err}");
        // A role the delegator does not delegate to.
        let err = set
            .update_delegated_targets(&dev, "ops", "targets")
            .unwrap_err();
        assert!(matches!(err, TrustError::MixAndMatch(_)), "{err}");
        set.update_delegated_targets(&dev, "dev", "targets")
            .unwrap();
    }

    #[test]
    fn expired_targets_is_a_freeze() {
        let repo = Repo::new();
        let mut t = Targets::new(1, repo.now - Duration::seconds(1));
        t.targets.insert("x".into(), target_file(b"x"));
        let targets = sign(t, &[&repo.targets_key]);
        let snap = repo.snapshot(1, &[("targets", &targets, 1)]);
        let ts = repo.timestamp(1, &snap, 1);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_timestamp(&ts).unwrap();
        set.update_snapshot(&snap, false).unwrap();
        let err = set.update_targets(&targets).unwrap_err().to_string();
        assert!(
            err.starts_with("freeze attack refused: targets expired at"),
            "{err}"
        );
    }

    #[test]
    fn fast_forward_recovery_after_timestamp_key_rotation() {
        let mut repo = Repo::new();
        // An attacker with the timestamp key fast-forwarded the client to v1000.
        let [_, snap, ..] = repo.release(1);
        let ff = repo.timestamp(1000, &snap, 1);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.load_local_timestamp(&ff).unwrap();
        // Without a key rotation the honest v2 looks like a rollback.
        let [ts2, snap2, ..] = repo.release(2);
        assert!(matches!(
            set.update_timestamp(&ts2),
            Err(TrustError::Rollback { .. })
        ));

        // The repository rotates the timestamp key in root v2.
        let new_ts_key = SigningKey::generate();
        let v2 = repo.rotate_root(|root, repo| {
            let old = repo.timestamp_key.key_id();
            root.keys.remove(&old);
            root.roles.get_mut("timestamp").unwrap().keyids = vec![];
            root.add_key("timestamp", new_ts_key.public_key());
            repo.timestamp_key = dup(&new_ts_key);
        });
        let ts2 = repo.timestamp(2, &snap2, 2);
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_root(&v2).unwrap();
        assert!(set.timestamp_or_snapshot_keys_rotated());
        let err = set.load_local_timestamp(&ff).unwrap_err().to_string();
        assert!(err.starts_with("fast-forward attack recovery"), "{err}");
        set.update_timestamp(&ts2).unwrap();
        set.update_snapshot(&snap2, false).unwrap();
    }

    #[test]
    fn fast_forward_recovery_after_snapshot_key_rotation() {
        let mut repo = Repo::new();
        let [ts1, snap1, ..] = repo.release(1);
        let new_snap_key = SigningKey::generate();
        let v2 = repo.rotate_root(|root, repo| {
            root.roles.get_mut("snapshot").unwrap().keyids = vec![];
            root.add_key("snapshot", new_snap_key.public_key());
            repo.snapshot_key = dup(&new_snap_key);
        });
        let mut set = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        set.update_root(&v2).unwrap();
        assert!(set.timestamp_or_snapshot_keys_rotated());
        assert!(matches!(
            set.load_local_timestamp(&ts1),
            Err(TrustError::FastForwardRecovery { .. })
        ));
        assert!(set.timestamp().is_none());
        assert!(matches!(
            set.load_local_snapshot(&snap1),
            Err(TrustError::FastForwardRecovery { .. })
        ));
        // Unchanged keys: no rotation flagged, and the local files load.
        let mut plain = TrustedMetadataSet::new(&repo.roots[0], repo.now).unwrap();
        assert!(!plain.timestamp_or_snapshot_keys_rotated());
        plain.load_local_timestamp(&ts1).unwrap();
        plain.load_local_snapshot(&snap1).unwrap();
    }

    #[test]
    fn untrusted_start_root_is_refused() {
        let repo = Repo::new();
        let stranger = SigningKey::generate();
        let bytes = sign(repo.root.clone(), &[&stranger]);
        assert!(matches!(
            TrustedMetadataSet::new(&bytes, repo.now),
            Err(TrustError::Signature { .. })
        ));
        assert!(matches!(
            TrustedMetadataSet::new(b"{}", repo.now),
            Err(TrustError::Invalid { .. })
        ));
    }
}
