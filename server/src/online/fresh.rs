//! The read path's safety net: a current timestamp or snapshot is never
//! served expired or about to expire. A healthy scheduler keeps them fresh;
//! when it is late, a read re-signs on the spot (under the lock, the same
//! path as the scheduler). Readers ask [`current`] and need to know nothing
//! about re-signing.

use super::scheduler::{is_due, read_window, resign_if_due, Outcome};
use super::Online;
use crate::error::ApiError;
use crate::storage::StoredFile;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use tagtrust_shared::TopLevelRole;

fn unavailable(gun: &str, role: TopLevelRole, reason: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        if role == TopLevelRole::Snapshot {
            "SNAPSHOT_UNAVAILABLE"
        } else {
            "TIMESTAMP_UNAVAILABLE"
        },
        format!(
            "the {role} of {gun} is expired or about to expire and could not be re-signed: {reason}"
        ),
    )
}

/// The current snapshot's expiry, when serving the timestamp (which names
/// it): read without the snapshot's bytes, as this is on every timestamp GET.
async fn named_snapshot_expiry(
    online: Online<'_>,
    gun: &str,
    role: TopLevelRole,
) -> Result<Option<Option<DateTime<Utc>>>, ApiError> {
    if role == TopLevelRole::Timestamp {
        Ok(online
            .storage
            .current_expiry(gun, TopLevelRole::Snapshot.as_str())
            .await?)
    } else {
        Ok(None)
    }
}

/// The current `role` (`timestamp` or `snapshot`) of `gun`, re-signed first
/// if it is due (`None`: the repository has none). A timestamp is served
/// only if it and the snapshot it names (the current one) have more than
/// [`read_window`] left; a snapshot only if it has. Otherwise they are
/// re-signed on the spot and the new file returned. Never returns a file
/// inside the window: if re-signing fails, a 503 with the reason.
pub(crate) async fn current(
    online: Online<'_>,
    gun: &str,
    role: TopLevelRole,
) -> Result<Option<StoredFile>, ApiError> {
    let Some(current) = online.storage.current(gun, role.as_str()).await? else {
        return Ok(None);
    };
    let fresh = |role: TopLevelRole, expires: Option<DateTime<Utc>>, now: DateTime<Utc>| {
        expires.is_some_and(|e| !is_due(e, now, read_window(online.settings, role)))
    };
    // What must be fresh for `role` to be served now, given its current
    // file and (for a timestamp) the current snapshot's expiry.
    let all_fresh = |file: &StoredFile, snapshot: Option<Option<DateTime<Utc>>>| {
        let now = Utc::now();
        fresh(role, file.expires(), now)
            && snapshot.is_none_or(|e| fresh(TopLevelRole::Snapshot, e, now))
    };
    if all_fresh(&current, named_snapshot_expiry(online, gun, role).await?) {
        return Ok(Some(current));
    }
    match resign_if_due(online, gun).await {
        // The upstream's file exactly, expired or not: its consumers get
        // the honest expiry error, never something this server signed.
        // So for an imported Notary repository until its timestamp key is
        // rotated here: the old server's key is the only one its root lists.
        Ok(Outcome::Mirrored | Outcome::AwaitingRotation) => return Ok(Some(current)),
        Ok(Outcome::Resigned(_)) => {
            online.metrics.resigns_on_read.inc();
            tracing::warn!(
                gun,
                role = role.as_str(),
                "re-signed an expiring {role} on read: the scheduler is late"
            );
        }
        Ok(_) => {}
        Err(e) => {
            online.metrics.resign_errors.inc();
            return Err(unavailable(gun, role, e.message));
        }
    }
    // Another process may have signed it: read what is committed now.
    online.storage.forget_cached(gun);
    let Some(latest) = online.storage.current(gun, role.as_str()).await? else {
        return Ok(None);
    };
    if all_fresh(&latest, named_snapshot_expiry(online, gun, role).await?) {
        Ok(Some(latest))
    } else {
        Err(unavailable(
            gun,
            role,
            "the re-signed metadata is still inside the safety window".into(),
        ))
    }
}
