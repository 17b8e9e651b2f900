//! The roles the server signs for a Notary-dialect repository, in Notary's
//! format: the timestamp on every change, and the snapshot when the root
//! lists a snapshot key the server holds (`notary key rotate GUN snapshot
//! -r`). The counterpart of [`super::signing`] (which it shares the key
//! matching and the result with) for the other dialect.

use super::keys::MasterKey;
use super::signing::{after, match_server_keys, Signed, SnapshotUpdate};
use crate::configuration::Settings;
use crate::error::ApiError;
use crate::storage::{OnlineKeyRow, RepoTx};
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tagtrust_shared::notary::{describe, signed_file, FileMeta, NotaryRoot, NotarySignature};
use tagtrust_shared::TopLevelRole;

/// How long a snapshot the server signs lives: notary-server's three years.
/// Notary clients warn about any snapshot expiring within six months, so
/// tagtrust's spec-TUF default (a week) would make every command warn.
pub(crate) const SNAPSHOT_LIFETIME: Duration = Duration::from_secs(3 * 365 * 24 * 3600);

/// A snapshot `meta` in Notary's dialect (role name → length and hashes).
pub(crate) type NotaryMeta = BTreeMap<String, FileMeta>;

fn metadata_error(e: tagtrust_shared::Error) -> ApiError {
    ApiError::internal(format!("cannot build server metadata: {e}"))
}

/// The server keys `root` lists for online `role`, under the key IDs it
/// lists them by.
fn signers<'a>(
    root: &NotaryRoot,
    role: TopLevelRole,
    server_keys: &'a [OnlineKeyRow],
) -> Result<Vec<(String, &'a OnlineKeyRow)>, ApiError> {
    let role_keys = root.role_keys(role.as_str()).map_err(|e| {
        ApiError::invalid_role(
            "SIGNATURE",
            TopLevelRole::Root.as_str(),
            format!("root: {e}"),
        )
    })?;
    let listed = role_keys.keyids.iter().filter_map(|id| {
        let key = root.keys.get(id)?;
        Some((id.clone(), key.to_public_key(key.method()).ok()?))
    });
    match_server_keys(role, listed, role_keys.threshold, server_keys)
}

/// `signed` as a Notary file signed by each (listed key ID, server key).
fn sign(
    master: &MasterKey,
    gun: &str,
    role: TopLevelRole,
    signed: &Value,
    signers: &[(String, &OnlineKeyRow)],
) -> Result<Vec<u8>, ApiError> {
    let message = tagtrust_shared::notary::signed_bytes(signed).map_err(metadata_error)?;
    let mut signatures = Vec::with_capacity(signers.len());
    for (listed_id, row) in signers {
        let (method, raw) = master
            .open_online(gun, role.into(), row)?
            .sign_notary(&message);
        signatures.push(NotarySignature {
            keyid: listed_id.clone(),
            method: method.into(),
            sig: base64::engine::general_purpose::STANDARD.encode(raw),
        });
    }
    signed_file(signed, &signatures).map_err(metadata_error)
}

fn expires(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Sign and store in `repo` a new snapshot if asked (signed with the server
/// key the root lists, living [`SNAPSHOT_LIFETIME`]) and a new timestamp at
/// `timestamp_version` describing the new or kept snapshot (living the
/// configured timestamp lifetime). The caller holds the lock and commits.
pub(crate) async fn sign_and_store(
    repo: &mut RepoTx,
    master: &MasterKey,
    settings: &Settings,
    root: &NotaryRoot,
    snapshot: SnapshotUpdate<NotaryMeta>,
    timestamp_version: u64,
    now: DateTime<Utc>,
) -> Result<Signed, ApiError> {
    use TopLevelRole::{Snapshot as SnapshotRole, Timestamp as TimestampRole};
    let gun = repo.gun().to_string();
    let timestamp_keys = repo.keys(TimestampRole.into()).await?;
    let timestamp_signers = signers(root, TimestampRole, &timestamp_keys)?;
    let (snapshot_version, snapshot_bytes, new_snapshot) = match snapshot {
        SnapshotUpdate::New { version, meta } => {
            let snapshot_keys = repo.keys(SnapshotRole.into()).await?;
            let snapshot_signers = signers(root, SnapshotRole, &snapshot_keys)?;
            let signed = json!({
                "_type": "Snapshot",
                "expires": expires(after(now, SNAPSHOT_LIFETIME)),
                "meta": meta,
                "version": version,
            });
            let bytes = sign(master, &gun, SnapshotRole, &signed, &snapshot_signers)?;
            (version, bytes, true)
        }
        SnapshotUpdate::Keep { version, bytes } => (version, bytes, false),
    };
    let signed = json!({
        "_type": "Timestamp",
        "expires": expires(after(now, settings.lifetime(TimestampRole))),
        "meta": { "snapshot": describe(&snapshot_bytes) },
        "version": timestamp_version,
    });
    let timestamp = sign(master, &gun, TimestampRole, &signed, &timestamp_signers)?;
    if new_snapshot {
        repo.insert_metadata(SnapshotRole.as_str(), snapshot_version, &snapshot_bytes)
            .await?;
    }
    repo.insert_metadata(TimestampRole.as_str(), timestamp_version, &timestamp)
        .await?;
    Ok(Signed {
        snapshot_version: new_snapshot.then_some(snapshot_version),
        timestamp_version,
    })
}
