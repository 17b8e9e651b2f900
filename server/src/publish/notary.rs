//! Publish validation for Notary-dialect repositories: what notary-server
//! checks (its `server/handlers/validation.go`, `docs/notary-v1.md` §4),
//! plus tagtrust's stricter rules (targets within the delegated paths, a
//! child's paths within its parent's, each version exactly one more than
//! the stored one). Pure like [`super::plan`]: stored Notary files and
//! uploads in, a [`NotaryPlan`] or a [`Refusal`] out. Every signature check
//! goes through [`NotarySigned::verify`], i.e. tagtrust's one threshold
//! check.

use super::{Check, CorruptFile, Refusal, Upload};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tagtrust_shared::notary::{
    check_file_meta, check_root_certificate, describe, file_meta_matches, is_delegation_name,
    FileMeta, NotaryKey, NotaryRoot, NotarySigned, NotarySnapshot, NotaryTargets,
};
use tagtrust_shared::PublicKey;

mod import;
pub use import::{plan_import, ImportRefusal, NotaryImport};

const ROOT: &str = "root";
const TARGETS: &str = "targets";
const SNAPSHOT: &str = "snapshot";
const TIMESTAMP: &str = "timestamp";

/// One stored or uploaded Notary file: the envelope, its parsed role and
/// its exact bytes.
#[derive(Debug, Clone)]
pub struct NotaryFile<T> {
    pub signed: NotarySigned,
    pub role: T,
    pub bytes: Vec<u8>,
}

/// A Notary repository's current files as [`plan`] needs them (empty for
/// a repository never published).
#[derive(Debug, Clone, Default)]
pub struct NotaryCurrent {
    pub root: Option<NotaryFile<NotaryRoot>>,
    /// `targets` and every delegation, by name.
    pub roles: BTreeMap<String, NotaryFile<NotaryTargets>>,
    pub snapshot: Option<NotaryFile<NotarySnapshot>>,
    pub timestamp_version: Option<u64>,
}

fn read<T: serde::de::DeserializeOwned>(
    role: &str,
    kind: &str,
    bytes: &[u8],
) -> Result<NotaryFile<T>, String> {
    let signed = NotarySigned::from_bytes(bytes).map_err(|e| format!("{role}: {e}"))?;
    let parsed = signed.parse(kind).map_err(|e| format!("{role}: {e}"))?;
    Ok(NotaryFile {
        signed,
        role: parsed,
        bytes: bytes.to_vec(),
    })
}

impl NotaryCurrent {
    /// Build from the current files as (role, version, exact bytes).
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, u64, &'a [u8])>,
    ) -> Result<Self, CorruptFile> {
        let mut current = NotaryCurrent::default();
        for (role, version, bytes) in files {
            let corrupt = |reason| CorruptFile {
                role: role.to_string(),
                reason,
            };
            match role {
                ROOT => current.root = Some(read(role, "Root", bytes).map_err(corrupt)?),
                SNAPSHOT => {
                    current.snapshot = Some(read(role, "Snapshot", bytes).map_err(corrupt)?)
                }
                TIMESTAMP => current.timestamp_version = Some(version),
                _ => {
                    let file = read(role, "Targets", bytes).map_err(corrupt)?;
                    current.roles.insert(role.to_string(), file);
                }
            }
        }
        Ok(current)
    }
}

/// What becomes of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotStep {
    /// The publisher signed it; it is stored as uploaded (it is in
    /// [`NotaryPlan::store`]) and the timestamp describes these bytes.
    Uploaded { version: u64, bytes: Vec<u8> },
    /// The server signs a new one with this meta (it holds the snapshot key
    /// the root lists).
    Generate {
        version: u64,
        meta: BTreeMap<String, FileMeta>,
    },
}

/// What a valid Notary publish stores, before the server signs.
#[derive(Debug)]
pub struct NotaryPlan {
    /// Uploaded files to store, with their versions (exact bytes).
    pub store: Vec<(String, u64, Vec<u8>)>,
    /// The root that is current after the publish.
    pub root: NotaryRoot,
    pub snapshot: SnapshotStep,
    pub timestamp_version: u64,
}

fn invalid(role: &str, check: Check, reason: impl Into<String>) -> Refusal {
    Refusal::invalid(role, check, reason)
}

fn signature(role: &str, e: tagtrust_shared::Error) -> Refusal {
    invalid(role, Check::Signature, format!("{role}: {e}"))
}

/// Is the role name one Notary has (`root`, `targets`, `snapshot`,
/// `timestamp`, `targets/…`)?
pub fn is_role_name(name: &str) -> bool {
    matches!(name, ROOT | TARGETS | SNAPSHOT | TIMESTAMP) || is_delegation_name(name)
}

/// The next version of a role stored at `current` (any version for a
/// role never stored, as notary's first publish uploads targets v2).
fn check_version(role: &str, current: Option<u64>, uploaded: u64) -> Result<(), Refusal> {
    match current {
        Some(current) if uploaded <= current => Err(Refusal::Conflict {
            role: role.to_string(),
            current_version: current,
            reason: format!(
                "{role} version {uploaded} is not newer than the stored version {current}; \
                 update and publish again"
            ),
        }),
        Some(current) if uploaded != current + 1 => Err(invalid(
            role,
            Check::Version { current, uploaded },
            format!(
                "{role} version {uploaded} skips versions: the next is {}",
                current + 1
            ),
        )),
        None if uploaded == 0 => Err(invalid(
            role,
            Check::Malformed,
            format!("{role}: version must be at least 1"),
        )),
        _ => Ok(()),
    }
}

fn check_expiry(role: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if expires <= now {
        return Err(invalid(
            role,
            Check::Expired,
            format!("{role} expired at {expires}"),
        ));
    }
    Ok(())
}

/// The root keys Notary counts for a root's own role: those whose
/// certificate is for `gun`, valid at `now` when `check_expiry`, not
/// signed with SHA-1 (trustpinning's `validRootLeafCerts`). Refused when
/// none is left.
fn valid_root_keys(
    root: &NotaryRoot,
    gun: &str,
    now: DateTime<Utc>,
    check_expiry: bool,
) -> Result<Vec<String>, Refusal> {
    let listed = &root
        .role_keys(ROOT)
        .map_err(|e| invalid(ROOT, Check::Malformed, format!("root: {e}")))?
        .keyids;
    let mut valid = Vec::new();
    let mut reasons = Vec::new();
    for keyid in listed {
        let Some(key) = root.keys.get(keyid) else {
            continue;
        };
        match check_root_certificate(keyid, key, gun, now, check_expiry) {
            Ok(()) => valid.push(keyid.clone()),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if valid.is_empty() {
        return Err(invalid(
            ROOT,
            Check::Certificate,
            format!(
                "root has no valid root certificate for {gun}: {}",
                reasons.join("; ")
            ),
        ));
    }
    Ok(valid)
}

/// Why a root's root keys did not sign a file.
enum RootKeysError {
    /// No valid certificate, or a malformed root.
    Refused(Refusal),
    Signature(tagtrust_shared::Error),
}

impl std::fmt::Display for RootKeysError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootKeysError::Refused(refusal) => refusal.fmt(f),
            RootKeysError::Signature(e) => e.fmt(f),
        }
    }
}

/// Did a threshold of `root`'s valid root keys ([`valid_root_keys`]) sign `upload`?
fn signed_by_root_keys(
    upload: &NotaryFile<NotaryRoot>,
    root: &NotaryRoot,
    gun: &str,
    now: DateTime<Utc>,
    check_expiry: bool,
) -> Result<(), RootKeysError> {
    let keyids = valid_root_keys(root, gun, now, check_expiry).map_err(RootKeysError::Refused)?;
    let threshold = root
        .role_keys(ROOT)
        .map_err(|e| RootKeysError::Refused(invalid(ROOT, Check::Malformed, e.to_string())))?
        .threshold;
    upload
        .signed
        .verify(ROOT, &root.keys, &keyids, threshold)
        .map_err(RootKeysError::Signature)
}

/// Check an uploaded root: the next version, Notary's structure, valid
/// certificates for `gun`, signed by a threshold of the previous root's
/// root keys (a rotation) and of its own, not expired.
fn check_root(
    current: Option<&NotaryFile<NotaryRoot>>,
    upload: &NotaryFile<NotaryRoot>,
    gun: &str,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    check_root_at(current, upload, gun, now, true)
}

/// [`check_root`], for a root that is current at `now` (`in_force`) or
/// one of a repository's past roots: a past root may have expired, and so
/// may its certificates (as of `now`); the version, structure, names and
/// both signatures are checked alike.
pub(super) fn check_root_at(
    current: Option<&NotaryFile<NotaryRoot>>,
    upload: &NotaryFile<NotaryRoot>,
    gun: &str,
    now: DateTime<Utc>,
    in_force: bool,
) -> Result<(), Refusal> {
    let root = &upload.role;
    root.check()
        .map_err(|e| invalid(ROOT, Check::Malformed, e.to_string()))?;
    match current {
        // Root versions go up by exactly one, from 1 (notary-server's rule too).
        Some(stored) => check_version(ROOT, Some(stored.role.version), root.version)?,
        None if root.version != 1 => {
            return Err(invalid(
                ROOT,
                Check::Version {
                    current: 0,
                    uploaded: root.version,
                },
                format!("the first root must be version 1, not {}", root.version),
            ))
        }
        None => {}
    }
    if let Some(stored) = current {
        signed_by_root_keys(upload, &stored.role, gun, now, false).map_err(|e| {
            invalid(
                ROOT,
                Check::Signature,
                format!("root is not signed by the current root's keys: {e}"),
            )
        })?;
    }
    signed_by_root_keys(upload, root, gun, now, in_force).map_err(|e| match e {
        RootKeysError::Refused(refusal) => refusal,
        RootKeysError::Signature(e) => signature(ROOT, e),
    })?;
    if !in_force {
        return Ok(());
    }
    check_expiry(ROOT, root.expires, now)
}

/// Does some prefix in `paths` cover `name` (`""` covers everything)?
fn covered(paths: &[String], name: &str) -> bool {
    paths.iter().any(|prefix| name.starts_with(prefix.as_str()))
}

/// The parent of a delegation (`targets/a/b` → `targets/a`).
fn parent_of(role: &str) -> &str {
    role.rsplit_once('/').map_or(TARGETS, |(parent, _)| parent)
}

/// Who may sign `role` and within which paths: the keys, key IDs,
/// threshold and (for a delegation) the paths its parent declares.
struct Signers<'a> {
    keys: &'a BTreeMap<String, NotaryKey>,
    keyids: &'a [String],
    threshold: u64,
    /// `None` for top-level targets (every name).
    paths: Option<&'a [String]>,
}

/// Check an uploaded targets or delegation file against its signers.
fn check_targets(
    role: &str,
    upload: &NotaryFile<NotaryTargets>,
    signers: &Signers<'_>,
    stored_version: Option<u64>,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    let targets = &upload.role;
    check_version(role, stored_version, targets.version)?;
    upload
        .signed
        .verify(role, signers.keys, signers.keyids, signers.threshold)
        .map_err(|e| signature(role, e))?;
    check_expiry(role, targets.expires, now)?;
    for (name, meta) in &targets.targets {
        check_file_meta(meta, role).map_err(|e| invalid(role, Check::Malformed, e.to_string()))?;
        if let Some(paths) = signers.paths {
            if !covered(paths, name) {
                return Err(invalid(
                    role,
                    Check::PathNotDelegated {
                        target: name.clone(),
                    },
                    format!("{role} lists {name:?}, outside the paths delegated to it"),
                ));
            }
        }
    }
    let delegations = &targets.delegations;
    let mut names = BTreeSet::new();
    for delegation in &delegations.roles {
        let name = &delegation.name;
        let malformed = |reason: String| invalid(role, Check::Malformed, reason);
        if !is_delegation_name(name) || parent_of(name) != role {
            return Err(malformed(format!(
                "{role} delegates to {name:?}, which is not a role directly under {role}"
            )));
        }
        if !names.insert(name.as_str()) {
            return Err(malformed(format!("{role} delegates to {name} twice")));
        }
        if delegation.threshold == 0 || delegation.keyids.is_empty() {
            return Err(malformed(format!(
                "{role}: {name} needs a threshold of at least 1 key"
            )));
        }
        if let Some(missing) = delegation
            .keyids
            .iter()
            .find(|id| !delegations.keys.contains_key(*id))
        {
            return Err(malformed(format!(
                "{role}: {name} lists unknown key {missing}"
            )));
        }
        if let Some(paths) = signers.paths {
            if let Some(outside) = delegation.paths.iter().find(|p| !covered(paths, p)) {
                return Err(invalid(
                    role,
                    Check::PathNotDelegated {
                        target: outside.clone(),
                    },
                    format!("{role} delegates {outside:?} to {name}, outside its own paths"),
                ));
            }
        }
    }
    Ok(())
}

/// Plan a publish to a Notary repository `gun`: check `uploads` against
/// `current` at `now`. `server_snapshot_keys` are the snapshot keys this
/// server holds for the repository: when the root lists one, the server
/// signs the snapshot if none is uploaded.
pub fn plan(
    current: &NotaryCurrent,
    gun: &str,
    uploads: Vec<Upload>,
    server_snapshot_keys: &[PublicKey],
    now: DateTime<Utc>,
) -> Result<NotaryPlan, Refusal> {
    // Parse every upload; the timestamp is always the server's (notary-server
    // ignores an uploaded one too).
    let mut root_upload = None;
    let mut snapshot_upload = None;
    let mut targets_uploads: BTreeMap<String, NotaryFile<NotaryTargets>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for Upload { role, bytes } in uploads {
        if !is_role_name(&role) {
            return Err(invalid(
                &role,
                Check::RoleName,
                format!(
                    "{role:?} is not a Notary role name (root, targets, snapshot or targets/…)"
                ),
            ));
        }
        if !seen.insert(role.clone()) {
            return Err(invalid(
                &role,
                Check::DuplicateUpload,
                format!("{role} uploaded twice"),
            ));
        }
        let malformed = |reason| invalid(&role, Check::Malformed, reason);
        match role.as_str() {
            TIMESTAMP => continue,
            ROOT => {
                root_upload = Some(read::<NotaryRoot>(&role, "Root", &bytes).map_err(malformed)?)
            }
            SNAPSHOT => {
                snapshot_upload =
                    Some(read::<NotarySnapshot>(&role, "Snapshot", &bytes).map_err(malformed)?)
            }
            _ => {
                let file = read::<NotaryTargets>(&role, "Targets", &bytes).map_err(malformed)?;
                targets_uploads.insert(role, file);
            }
        }
    }

    // Root first: everything else is checked against the root that will
    // be current.
    if let Some(upload) = &root_upload {
        check_root(current.root.as_ref(), upload, gun, now)?;
    }
    let root = match (&root_upload, &current.root) {
        (Some(upload), _) => &upload.role,
        (None, Some(stored)) => &stored.role,
        (None, None) => {
            return Err(invalid(
                ROOT,
                Check::Missing,
                "no root stored and none uploaded: the first publish carries root, targets and snapshot",
            ))
        }
    };

    // Targets and delegations, parents before children, each checked
    // against its parent as it will be after this publish.
    let mut order: Vec<&String> = targets_uploads.keys().collect();
    order.sort_by_key(|name| (name.matches('/').count(), name.as_str()));
    for name in order {
        let upload = &targets_uploads[name];
        let stored_version = current.roles.get(name).map(|f| f.role.version);
        if name == TARGETS {
            let keys = root
                .role_keys(TARGETS)
                .map_err(|e| invalid(ROOT, Check::Malformed, e.to_string()))?;
            let signers = Signers {
                keys: &root.keys,
                keyids: &keys.keyids,
                threshold: keys.threshold,
                paths: None,
            };
            check_targets(name, upload, &signers, stored_version, now)?;
            continue;
        }
        let parent_name = parent_of(name);
        let parent = targets_uploads
            .get(parent_name)
            .or_else(|| current.roles.get(parent_name))
            .ok_or_else(|| {
                invalid(
                    name,
                    Check::UnknownRole,
                    format!("{name} is delegated by no role: {parent_name} does not exist"),
                )
            })?;
        let delegation = parent
            .role
            .delegations
            .roles
            .iter()
            .find(|d| d.name == *name)
            .ok_or_else(|| {
                invalid(
                    name,
                    Check::UnknownRole,
                    format!("{parent_name} does not delegate to {name}"),
                )
            })?;
        let signers = Signers {
            keys: &parent.role.delegations.keys,
            keyids: &delegation.keyids,
            threshold: delegation.threshold,
            paths: Some(&delegation.paths),
        };
        check_targets(name, upload, &signers, stored_version, now)?;
    }
    if !targets_uploads.contains_key(TARGETS) && !current.roles.contains_key(TARGETS) {
        return Err(invalid(
            TARGETS,
            Check::Missing,
            "no targets stored and none uploaded: the first publish carries root, targets and snapshot",
        ));
    }

    // What the snapshot must describe after this publish: root, targets
    // and every delegation, as stored or as uploaded now.
    let mut after: BTreeMap<&str, &[u8]> = BTreeMap::new();
    if let Some(stored) = &current.root {
        after.insert(ROOT, &stored.bytes);
    }
    for (name, stored) in &current.roles {
        after.insert(name, &stored.bytes);
    }
    if let Some(upload) = &root_upload {
        after.insert(ROOT, &upload.bytes);
    }
    for (name, upload) in &targets_uploads {
        after.insert(name, &upload.bytes);
    }

    let stored_snapshot = current.snapshot.as_ref().map(|f| f.role.version);
    let snapshot = match &snapshot_upload {
        Some(upload) => {
            let keys = root
                .role_keys(SNAPSHOT)
                .map_err(|e| invalid(ROOT, Check::Malformed, e.to_string()))?;
            check_version(SNAPSHOT, stored_snapshot, upload.role.version)?;
            upload
                .signed
                .verify(SNAPSHOT, &root.keys, &keys.keyids, keys.threshold)
                .map_err(|e| signature(SNAPSHOT, e))?;
            check_expiry(SNAPSHOT, upload.role.expires, now)?;
            check_snapshot_meta(&upload.role, &after, &targets_uploads)?;
            SnapshotStep::Uploaded {
                version: upload.role.version,
                bytes: upload.bytes.clone(),
            }
        }
        None => {
            if !server_holds_snapshot_key(root, server_snapshot_keys) {
                return Err(invalid(
                    SNAPSHOT,
                    Check::Missing,
                    "no snapshot was included in the update and the server does not hold the \
                     snapshot key the root lists (sign it, or `notary key rotate GUN snapshot -r`)",
                ));
            }
            let mut meta = current
                .snapshot
                .as_ref()
                .map(|f| f.role.meta.clone())
                .unwrap_or_default();
            for (name, bytes) in &after {
                meta.insert(name.to_string(), describe(bytes));
            }
            SnapshotStep::Generate {
                version: stored_snapshot.map_or(1, |v| v + 1),
                meta,
            }
        }
    };

    let root = root.clone();
    let mut store = Vec::new();
    if let Some(upload) = root_upload {
        store.push((ROOT.to_string(), upload.role.version, upload.bytes));
    }
    for (name, upload) in targets_uploads {
        store.push((name, upload.role.version, upload.bytes));
    }
    if let Some(upload) = snapshot_upload {
        store.push((SNAPSHOT.to_string(), upload.role.version, upload.bytes));
    }
    Ok(NotaryPlan {
        store,
        root,
        snapshot,
        timestamp_version: current.timestamp_version.map_or(1, |v| v + 1),
    })
}

/// An uploaded snapshot must describe root and targets, every delegation
/// uploaded with it, and whatever else it lists must match what is stored.
fn check_snapshot_meta(
    snapshot: &NotarySnapshot,
    after: &BTreeMap<&str, &[u8]>,
    uploaded: &BTreeMap<String, NotaryFile<NotaryTargets>>,
) -> Result<(), Refusal> {
    let required = [ROOT, TARGETS]
        .into_iter()
        .chain(uploaded.keys().map(String::as_str));
    for name in required {
        if !snapshot.meta.contains_key(name) {
            return Err(invalid(
                SNAPSHOT,
                Check::Malformed,
                format!("snapshot does not describe {name}"),
            ));
        }
    }
    for (name, meta) in &snapshot.meta {
        check_file_meta(meta, SNAPSHOT)
            .map_err(|e| invalid(SNAPSHOT, Check::Malformed, e.to_string()))?;
        if let Some(bytes) = after.get(name.as_str()) {
            if meta.length != bytes.len() as u64 || !file_meta_matches(meta, bytes) {
                return Err(invalid(
                    SNAPSHOT,
                    Check::Malformed,
                    format!(
                        "snapshot's checksum for {name} does not match the {name} it goes with"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Does the root's snapshot role list a key the server holds?
pub fn server_holds_snapshot_key(root: &NotaryRoot, server_keys: &[PublicKey]) -> bool {
    server_holds_key(root, SNAPSHOT, server_keys)
}

/// The timestamp of a Notary repository is always the server's to sign:
/// refuse a publish whose root (the one current after it) lists no
/// timestamp key the server holds, before anything is stored. That is the
/// state of a repository imported from a notary-server (`import-notary`)
/// until its publisher moves the timestamp key here, and the refusal says
/// how.
pub fn check_timestamp_key(
    root: &NotaryRoot,
    gun: &str,
    server_keys: &[PublicKey],
) -> Result<(), Refusal> {
    if server_holds_key(root, TIMESTAMP, server_keys) {
        return Ok(());
    }
    Err(invalid(
        ROOT,
        Check::Missing,
        format!(
            "the root of {gun} lists no timestamp key this server holds (a repository imported from \
             a notary-server keeps its timestamp key there): run `notary key rotate {gun} timestamp -r` \
             against this server first"
        ),
    ))
}

/// Does the root's top-level `role` list a key the server holds?
fn server_holds_key(root: &NotaryRoot, role: &str, server_keys: &[PublicKey]) -> bool {
    let Ok(role) = root.role_keys(role) else {
        return false;
    };
    role.keyids.iter().any(|id| {
        root.keys
            .get(id)
            .and_then(|key| key.to_public_key(key.method()).ok())
            .is_some_and(|public| server_keys.iter().any(|ours| ours.same_key(&public)))
    })
}

#[cfg(test)]
mod tests {
    //! The plan against files the real notary 0.7 CLI wrote
    //! (docs/notary-samples, GUN `example.com/acme/app`).
    use super::*;
    use chrono::TimeZone;

    const GUN: &str = "example.com/acme/app";

    pub(super) fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../docs/notary-samples/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn upload(role: &str, file: &str) -> Upload {
        Upload {
            role: role.into(),
            bytes: sample(file),
        }
    }

    /// When the samples were captured (their certificates are valid then).
    pub(super) fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap()
    }

    fn first_publish() -> Vec<Upload> {
        vec![
            upload(ROOT, "root.json"),
            upload(TARGETS, "targets.json"),
            upload(SNAPSHOT, "snapshot.json"),
        ]
    }

    fn stored(files: &[(&str, u64, Vec<u8>)]) -> NotaryCurrent {
        NotaryCurrent::from_files(files.iter().map(|(r, v, b)| (*r, *v, &b[..]))).unwrap()
    }

    fn refused(result: Result<NotaryPlan, Refusal>) -> (String, Check) {
        match result {
            Err(Refusal::Invalid { role, check, .. }) => (role, check),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The public key root's snapshot role lists (as if the server held it).
    fn snapshot_key() -> PublicKey {
        let root: NotaryRoot = NotarySigned::from_bytes(&sample("root.json"))
            .unwrap()
            .parse("Root")
            .unwrap();
        let id = &root.role_keys(SNAPSHOT).unwrap().keyids[0];
        let key = &root.keys[id];
        key.to_public_key(key.method()).unwrap()
    }

    #[test]
    fn a_root_listing_no_timestamp_key_of_the_server_is_refused_until_rotated() {
        let root: NotaryRoot = NotarySigned::from_bytes(&sample("root.json"))
            .unwrap()
            .parse("Root")
            .unwrap();
        let other = tagtrust_shared::SigningKey::generate().public_key();
        match check_timestamp_key(&root, GUN, &[other]) {
            Err(Refusal::Invalid {
                role,
                check,
                reason,
            }) => {
                assert_eq!((role.as_str(), check), (ROOT, Check::Missing));
                assert!(reason.contains("notary key rotate example.com/acme/app timestamp -r"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let id = &root.role_keys(TIMESTAMP).unwrap().keyids[0];
        let key = &root.keys[id];
        let held = key.to_public_key(key.method()).unwrap();
        check_timestamp_key(&root, GUN, &[held]).unwrap();
    }

    #[test]
    fn the_clis_first_publish_is_accepted_with_its_snapshot() {
        let plan = plan(&NotaryCurrent::default(), GUN, first_publish(), &[], now()).unwrap();
        let stored: Vec<(&str, u64)> = plan
            .store
            .iter()
            .map(|(r, v, _)| (r.as_str(), *v))
            .collect();
        assert_eq!(stored, [(ROOT, 1), (TARGETS, 2), (SNAPSHOT, 2)]);
        assert!(matches!(
            plan.snapshot,
            SnapshotStep::Uploaded { version: 2, .. }
        ));
        assert_eq!(plan.timestamp_version, 1);
    }

    #[test]
    fn without_a_snapshot_the_server_signs_one_only_with_the_key_root_lists() {
        let uploads = || first_publish().into_iter().take(2).collect::<Vec<_>>();
        let (role, check) = refused(plan(&NotaryCurrent::default(), GUN, uploads(), &[], now()));
        assert_eq!((role.as_str(), check), (SNAPSHOT, Check::Missing));
        let other = tagtrust_shared::SigningKey::generate().public_key();
        assert!(plan(&NotaryCurrent::default(), GUN, uploads(), &[other], now()).is_err());
        let plan = plan(
            &NotaryCurrent::default(),
            GUN,
            uploads(),
            &[snapshot_key()],
            now(),
        )
        .unwrap();
        let SnapshotStep::Generate { version, meta } = plan.snapshot else {
            panic!("the server signs the snapshot")
        };
        assert_eq!(version, 1);
        assert_eq!(meta.keys().collect::<Vec<_>>(), [ROOT, TARGETS]);
        assert!(file_meta_matches(&meta[TARGETS], &sample("targets.json")));
    }

    #[test]
    fn a_changed_target_breaks_the_signature() {
        let mut uploads = first_publish();
        let text = String::from_utf8(uploads[1].bytes.clone()).unwrap();
        uploads[1].bytes = text.replace("\"length\":6", "\"length\":7").into_bytes();
        let (role, check) = refused(plan(&NotaryCurrent::default(), GUN, uploads, &[], now()));
        assert_eq!((role.as_str(), check), (TARGETS, Check::Signature));
    }

    #[test]
    fn a_root_whose_certificate_expired_is_refused() {
        let later = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
        let (role, check) = refused(plan(
            &NotaryCurrent::default(),
            GUN,
            first_publish(),
            &[],
            later,
        ));
        assert_eq!((role.as_str(), check), (ROOT, Check::Certificate));
        // Under another GUN the certificate's name does not match.
        let (_, check) = refused(plan(
            &NotaryCurrent::default(),
            "example.com/acme/other",
            first_publish(),
            &[],
            now(),
        ));
        assert_eq!(check, Check::Certificate);
    }

    #[test]
    fn versions_go_forward_one_at_a_time() {
        let current = stored(&[
            (ROOT, 1, sample("root.json")),
            (TARGETS, 2, sample("targets.json")),
            (SNAPSHOT, 2, sample("snapshot.json")),
        ]);
        // The stored targets again: not newer.
        let result = plan(
            &current,
            GUN,
            vec![upload(TARGETS, "targets.json")],
            &[],
            now(),
        );
        assert!(
            matches!(
                result,
                Err(Refusal::Conflict {
                    current_version: 2,
                    ..
                })
            ),
            "{result:?}"
        );
        // Version 6 after 2 skips versions.
        let uploads = vec![upload(TARGETS, "targets-with-delegation.json")];
        let (_, check) = refused(plan(&current, GUN, uploads, &[], now()));
        assert_eq!(
            check,
            Check::Version {
                current: 2,
                uploaded: 6
            }
        );
        // A first root is version 1.
        let uploads = vec![upload(ROOT, "root-rotated.json")];
        let (_, check) = refused(plan(&NotaryCurrent::default(), GUN, uploads, &[], now()));
        assert!(matches!(
            check,
            Check::Version {
                current: 0,
                uploaded: 4
            }
        ));
    }

    #[test]
    fn a_snapshot_must_describe_the_files_it_goes_with() {
        let uploads = vec![
            upload(ROOT, "root.json"),
            upload(TARGETS, "targets-with-delegation.json"),
            upload(SNAPSHOT, "snapshot.json"),
        ];
        let (role, check) = refused(plan(&NotaryCurrent::default(), GUN, uploads, &[], now()));
        assert_eq!((role.as_str(), check), (SNAPSHOT, Check::Malformed));
    }

    #[test]
    fn a_spec_tuf_file_is_not_a_notary_role() {
        let mut uploads = first_publish();
        let text = String::from_utf8(uploads[1].bytes.clone()).unwrap();
        uploads[1].bytes = text.replace("\"Targets\"", "\"targets\"").into_bytes();
        let (role, check) = refused(plan(&NotaryCurrent::default(), GUN, uploads, &[], now()));
        assert_eq!((role.as_str(), check), (TARGETS, Check::Malformed));
        let bad_name = vec![upload("releases", "targets-releases.json")];
        let (_, check) = refused(plan(&NotaryCurrent::default(), GUN, bad_name, &[], now()));
        assert_eq!(check, Check::RoleName);
    }

    #[test]
    fn a_delegation_is_checked_against_its_parent_and_its_paths() {
        let releases = "targets/releases";
        let with_delegation = sample("targets-with-delegation.json");
        let current = stored(&[
            (ROOT, 1, sample("root.json")),
            (TARGETS, 6, with_delegation.clone()),
            (SNAPSHOT, 2, sample("snapshot.json")),
        ]);
        let uploads = || vec![upload(releases, "targets-releases.json")];
        let plan_ok = plan(&current, GUN, uploads(), &[snapshot_key()], now()).unwrap();
        assert_eq!(plan_ok.store[0].0, releases);
        let SnapshotStep::Generate { version: 3, meta } = plan_ok.snapshot else {
            panic!("the server signs snapshot 3")
        };
        assert!(meta.contains_key(releases));

        // Delegated elsewhere than `rel/`: `rel/1.0` is outside its paths.
        let text = String::from_utf8(with_delegation.clone()).unwrap();
        let narrowed = text.replace("[\"rel/\"]", "[\"other/\"]").into_bytes();
        let current = stored(&[(ROOT, 1, sample("root.json")), (TARGETS, 6, narrowed)]);
        let (role, check) = refused(plan(&current, GUN, uploads(), &[snapshot_key()], now()));
        assert_eq!(role, releases);
        assert!(matches!(check, Check::PathNotDelegated { target } if target == "rel/1.0"));

        // Not delegated at all, or signed by the wrong key.
        let current = stored(&[
            (ROOT, 1, sample("root.json")),
            (TARGETS, 2, sample("targets.json")),
        ]);
        let (_, check) = refused(plan(&current, GUN, uploads(), &[snapshot_key()], now()));
        assert_eq!(check, Check::UnknownRole);
        let impostor = vec![upload(releases, "targets.json")];
        let current = stored(&[
            (ROOT, 1, sample("root.json")),
            (TARGETS, 6, with_delegation),
        ]);
        let (_, check) = refused(plan(&current, GUN, impostor, &[snapshot_key()], now()));
        assert_eq!(check, Check::Signature);
    }
}
