//! The roles the server signs itself: building, signing and storing a new
//! snapshot and timestamp inside a repository transaction. One code path for
//! a publish (a snapshot with new meta) and for re-signing before expiry
//! (the same meta, or only a new timestamp): see `routes::publish` and
//! [`super::scheduler`].

use super::keys::{KeyRole, MasterKey};
use crate::configuration::Settings;
use crate::error::ApiError;
use crate::kept_current::SnapshotListing;
use crate::publish::server_bins::{HeldBins, NewBin};
use crate::storage::{OnlineKeyRow, RepoTx, SignedFile};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use tagtrust_shared::metadata::{set_signed_at, Role};
use tagtrust_shared::{MetaFile, Metadata, PublicKey, Root, Snapshot, Timestamp, TopLevelRole};

/// What the new timestamp points at. `M` is the snapshot's `meta` in the
/// repository's dialect.
pub(crate) enum SnapshotUpdate<M = BTreeMap<String, MetaFile>> {
    /// Sign and store a new snapshot with this version and meta.
    New { version: u64, meta: M },
    /// Keep the stored snapshot (its version and exact bytes).
    Keep { version: u64, bytes: Vec<u8> },
}

/// What [`sign_and_store`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signed {
    /// The new snapshot's version, if one was signed.
    pub(crate) snapshot_version: Option<u64>,
    pub(crate) timestamp_version: u64,
}

/// The server keys a root trusts for an online role, as (key ID the root
/// lists, our key). Refuses a root under which the server could not sign
/// that role with enough keys to meet its threshold.
fn online_signers<'a>(
    root: &Root,
    role: TopLevelRole,
    server_keys: &'a [OnlineKeyRow],
) -> Result<Vec<(String, &'a OnlineKeyRow)>, ApiError> {
    let root_role = TopLevelRole::Root.as_str();
    let role_keys = root
        .role_keys(role.as_str())
        .map_err(|e| ApiError::invalid_role("SIGNATURE", root_role, format!("{root_role}: {e}")))?;
    let listed = role_keys
        .keyids
        .iter()
        .filter_map(|id| Some((id.clone(), root.keys.get(id)?.clone())));
    match_server_keys(role, listed, role_keys.threshold, server_keys)
}

/// Of the keys a root lists for online `role` (key ID, public key), those
/// the server holds, paired with its key; refused unless they meet
/// `threshold`. Both dialects' roots come here.
pub(crate) fn match_server_keys(
    role: TopLevelRole,
    listed: impl IntoIterator<Item = (String, PublicKey)>,
    threshold: u64,
    server_keys: &[OnlineKeyRow],
) -> Result<Vec<(String, &OnlineKeyRow)>, ApiError> {
    let root_role = TopLevelRole::Root.as_str();
    let mut signers = Vec::new();
    for (listed, public) in listed {
        if let Some(ours) = server_keys.iter().find(|k| k.public_key.same_key(&public)) {
            signers.push((listed, ours));
        }
    }
    if signers.is_empty() || (signers.len() as u64) < threshold {
        let ours: Vec<&str> = server_keys.iter().map(|k| k.key_id.as_str()).collect();
        return Err(ApiError::bad_request(
            "SERVER_KEYS",
            format!(
                "root must list the server's {role} key (GET {role}.key) with threshold {threshold} met by server keys; \
                 it lists {} of them",
                signers.len()
            ),
        )
        .with_detail(json!({ "role": root_role, "online_role": role.as_str(), "server_key_ids": ours })));
    }
    Ok(signers)
}

/// Sign `md` with each (key ID the root lists, server key).
fn sign_with<T: Role>(
    master: &MasterKey,
    gun: &str,
    role: TopLevelRole,
    md: &mut Metadata<T>,
    signers: &[(String, &OnlineKeyRow)],
) -> Result<(), ApiError> {
    for (listed_id, row) in signers {
        let key = master.open_online(gun, role.into(), row)?;
        let mut sig = key.sign_tuf(md.canonical_signed());
        // Sign under the key ID the root lists (TUF lets a root name a key
        // by any ID).
        sig.keyid = listed_id.clone();
        md.signatures.push(sig);
    }
    Ok(())
}

fn metadata_error(e: tagtrust_shared::Error) -> ApiError {
    ApiError::internal(format!("cannot build server metadata: {e}"))
}

pub(crate) fn expiry(now: DateTime<Utc>, settings: &Settings, role: TopLevelRole) -> DateTime<Utc> {
    after(now, settings.lifetime(role))
}

/// `now` plus `lifetime` (saturating far in the future).
pub(crate) fn after(now: DateTime<Utc>, lifetime: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2))
}

/// Files signed and not yet stored, as (role, version, exact bytes): the
/// caller stores them with the rest of its change in one
/// [`RepoTx::insert_files`].
pub(crate) type NewFiles = Vec<(String, u64, Vec<u8>)>;

/// Sign (with the server keys `root` lists, opened with `master`) and store
/// in `repo` a new snapshot if asked, and a new timestamp at
/// `timestamp_version` pointing at the new or kept snapshot, each living as
/// long as `settings` says. Both carry `x-tagtrust-signed-at` = `now`. The
/// caller holds the repository lock (`repo`) and commits.
pub(crate) async fn sign_and_store(
    repo: &mut RepoTx,
    master: &MasterKey,
    settings: &Settings,
    root: &Root,
    snapshot: SnapshotUpdate,
    timestamp_version: u64,
    now: DateTime<Utc>,
) -> Result<Signed, ApiError> {
    let SignedFiles { signed, files, .. } = sign(
        repo,
        master,
        settings,
        root,
        snapshot,
        timestamp_version,
        now,
    )
    .await?;
    repo.insert_signed(&files).await?;
    Ok(signed)
}

/// What [`sign`] signed.
pub(crate) struct SignedFiles {
    pub(crate) signed: Signed,
    /// The new snapshot, if asked, then the timestamp.
    pub(crate) files: Vec<SignedFile>,
    /// The new snapshot's sha256 and what it lists, for
    /// [`crate::kept_current::KeptCurrent`] once committed.
    pub(crate) snapshot_listing: Option<(String, SnapshotListing)>,
}

/// What [`sign_and_store`] signs, returned instead of stored.
pub(crate) async fn sign(
    repo: &mut RepoTx,
    master: &MasterKey,
    settings: &Settings,
    root: &Root,
    snapshot: SnapshotUpdate,
    timestamp_version: u64,
    now: DateTime<Utc>,
) -> Result<SignedFiles, ApiError> {
    use TopLevelRole::{Snapshot as SnapshotRole, Timestamp as TimestampRole};
    let gun = repo.gun().to_string();
    let timestamp_keys = repo.keys(TimestampRole.into()).await?;
    let timestamp_signers = online_signers(root, TimestampRole, &timestamp_keys)?;
    // A new snapshot's listing and expiry come along with its bytes.
    let (snapshot_version, snapshot_bytes, new_snapshot) = match snapshot {
        SnapshotUpdate::New { version, meta } => {
            let snapshot_keys = repo.keys(SnapshotRole.into()).await?;
            let snapshot_signers = online_signers(root, SnapshotRole, &snapshot_keys)?;
            let mut signed = Snapshot::new(version, expiry(now, settings, SnapshotRole), meta);
            set_signed_at(&mut signed.extra, now);
            let mut md = Metadata::new(signed).map_err(metadata_error)?;
            sign_with(master, &gun, SnapshotRole, &mut md, &snapshot_signers)?;
            let bytes = md.to_bytes();
            // Kept as it is for the next publish (`SnapshotListing`).
            let expires = md.signed.expires;
            let listing = SnapshotListing(md.signed.meta);
            (version, bytes, Some((listing, expires)))
        }
        SnapshotUpdate::Keep { version, bytes } => (version, bytes, None),
    };
    let described = MetaFile::describing(snapshot_version, &snapshot_bytes);
    let snapshot_sha256 = described
        .hashes
        .as_ref()
        .and_then(|h| h.get("sha256"))
        .cloned()
        .unwrap_or_else(|| tagtrust_shared::hashes::sha256_hex(&snapshot_bytes));
    let mut signed = Timestamp::new(
        timestamp_version,
        expiry(now, settings, TimestampRole),
        described,
    );
    set_signed_at(&mut signed.extra, now);
    let mut timestamp = Metadata::new(signed).map_err(metadata_error)?;
    sign_with(
        master,
        &gun,
        TimestampRole,
        &mut timestamp,
        &timestamp_signers,
    )?;

    let mut files = Vec::with_capacity(2);
    let mut snapshot_listing = None;
    if let Some((listing, expires)) = new_snapshot {
        files.push(SignedFile {
            role: SnapshotRole.as_str().to_string(),
            version: snapshot_version,
            bytes: snapshot_bytes,
            sha256: snapshot_sha256.clone(),
            expires,
        });
        snapshot_listing = Some((snapshot_sha256, listing));
    }
    let bytes = timestamp.to_bytes();
    files.push(SignedFile {
        role: TimestampRole.as_str().to_string(),
        version: timestamp_version,
        sha256: tagtrust_shared::hashes::sha256_hex(&bytes),
        bytes,
        expires: timestamp.signed.expires,
    });
    let signed = Signed {
        snapshot_version: snapshot_listing.is_some().then_some(snapshot_version),
        timestamp_version,
    };
    Ok(SignedFiles {
        signed,
        files,
        snapshot_listing,
    })
}

/// The public parts of the server's bin keys of the repository `repo`
/// holds (none unless its publisher asked for `bins.key`).
pub(crate) async fn bin_keys(repo: &mut RepoTx) -> Result<Vec<PublicKey>, ApiError> {
    Ok(repo
        .keys(KeyRole::Bins)
        .await?
        .into_iter()
        .map(|row| row.public_key)
        .collect())
}

/// When a bin the server signs at `now` expires.
pub(crate) fn bins_expiry(now: DateTime<Utc>, settings: &Settings) -> DateTime<Utc> {
    let lifetime = settings.bins_lifetime();
    now + chrono::Duration::seconds(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2))
}

/// Sign each of `bins` with the server's bin key that `held` delegates to
/// (under the key ID the delegation lists), stamped `x-tagtrust-signed-at`
/// = `now`, store them in `repo` and note the bins' soonest expiry for the
/// scheduler. Returns each bin's new version. The caller holds the lock,
/// signs snapshot and timestamp after, and commits.
pub(crate) async fn sign_and_store_bins(
    repo: &mut RepoTx,
    master: &MasterKey,
    held: &HeldBins,
    bins: Vec<NewBin>,
    now: DateTime<Utc>,
) -> Result<Vec<(String, u64)>, ApiError> {
    let files = sign_bins(repo, master, held, bins, now).await?;
    repo.insert_files(&files).await?;
    repo.note_bins_expiry().await?;
    Ok(files
        .into_iter()
        .map(|(role, version, _)| (role, version))
        .collect())
}

/// What [`sign_and_store_bins`] signs, returned instead of stored: the
/// caller stores them and then calls [`RepoTx::note_bins_expiry`].
pub(crate) async fn sign_bins(
    repo: &mut RepoTx,
    master: &MasterKey,
    held: &HeldBins,
    bins: Vec<NewBin>,
    now: DateTime<Utc>,
) -> Result<NewFiles, ApiError> {
    let gun = repo.gun().to_string();
    let keys = repo.keys(KeyRole::Bins).await?;
    let row = keys
        .iter()
        .find(|row| row.public_key.same_key(&held.key))
        .ok_or_else(|| ApiError::internal("the server's bin key is missing"))?;
    let key = master.open(&gun, KeyRole::Bins, &row.key_id, &row.sealed_seed)?;
    let mut files = Vec::with_capacity(bins.len());
    for NewBin { role, mut targets } in bins {
        set_signed_at(&mut targets.extra, now);
        let version = targets.version;
        let mut md = Metadata::new(targets).map_err(metadata_error)?;
        let mut sig = key.sign(md.canonical_signed());
        sig.keyid = held.key_id.clone();
        md.signatures.push(sig);
        files.push((role, version, md.to_bytes()));
    }
    Ok(files)
}
