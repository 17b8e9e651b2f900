//! The re-sign scheduler: a background task that, every
//! `resign_interval_secs`, re-signs the timestamp (and snapshot) of every
//! repository whose current one has less than its margin of life left
//! (default: half its lifetime), so consumers never see them expire while
//! the server is alive.
//!
//! Several server processes may share one database and all run the
//! scheduler. Each re-sign takes the repository lock (the same transaction
//! shape as a publish) and checks *again, under the lock* whether anything is
//! still due: the first process signs the next version, the others find a
//! fresh timestamp and do nothing. Versions therefore never repeat or skip.
//!
//! Reading `timestamp.json` goes through [`super::fresh::current`]: a safety
//! net that re-signs on the spot only when the scheduler is late.

use super::signing::{self, Signed, SnapshotUpdate};
use super::Online;
use crate::configuration::Settings;
use crate::error::ApiError;
use crate::storage::StoredFile;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::{Metadata, Root, Snapshot, Timestamp, TopLevelRole};

/// What a re-sign attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The repository has no timestamp yet (never published, or deleted).
    NotPublished,
    /// Nothing is within its margin (possibly another process just re-signed).
    NotDue,
    /// A transparent mirror: its upstream signs it, never this server.
    Mirrored,
    Resigned(Signed),
}

/// Does a role that expires at `expires` need a new version at `now`?
pub(crate) fn is_due(expires: DateTime<Utc>, now: DateTime<Utc>, margin: Duration) -> bool {
    let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
    expires - now < margin
}

/// How close to expiry a timestamp or snapshot (`role`) may be and still be
/// served: a tenth of its lifetime, at most 5 s. Closer than that, a read
/// re-signs first.
pub(crate) fn read_window(settings: &Settings, role: TopLevelRole) -> Duration {
    (settings.lifetime(role) / 10).min(Duration::from_secs(5))
}

/// Is a timestamp signed at `signed_at` (expiring at `expires`) older than
/// the cadence at `now`? Without a recorded signing time, its age is
/// inferred from the configured lifetime.
fn past_cadence(
    settings: &Settings,
    signed_at: Option<DateTime<Utc>>,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let cadence = settings.timestamp_cadence();
    match signed_at {
        Some(t) => chrono::Duration::from_std(cadence).is_ok_and(|c| now - t >= c),
        None => is_due(
            expires,
            now,
            settings
                .lifetime(TopLevelRole::Timestamp)
                .saturating_sub(cadence),
        ),
    }
}

/// The scheduler's cheap pre-selection (expiry only, no parsing): may this
/// server-signed role be due? For a timestamp: older than the cadence as
/// the configured lifetime tells it, or signed with a longer lifetime than
/// configured now (its signing time decides, under the lock).
fn may_be_due(
    settings: &Settings,
    role: TopLevelRole,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    if is_due(expires, now, settings.resign_margin(role)) {
        return true;
    }
    role == TopLevelRole::Timestamp
        && (past_cadence(settings, None, expires, now)
            || chrono::Duration::from_std(settings.lifetime(role))
                .is_ok_and(|lifetime| expires - now > lifetime))
}

fn stored_error(role: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("stored {role} does not parse: {e}"))
}

fn expires(file: &StoredFile) -> Result<DateTime<Utc>, ApiError> {
    file.expires()
        .ok_or_else(|| stored_error(&file.role, "no valid signed.expires"))
}

/// Under `gun`'s lock: if its timestamp or snapshot is within its margin,
/// sign the next snapshot (same meta, when the snapshot is due) and the next
/// timestamp, exactly as a publish does, and commit.
pub(crate) async fn resign_if_due(online: Online<'_>, gun: &str) -> Result<Outcome, ApiError> {
    use TopLevelRole::{Root as RootRole, Snapshot as SnapshotRole, Timestamp as TimestampRole};
    let mut repo = online.storage.lock(gun).await?;
    if repo.is_mirrored().await? {
        return Ok(Outcome::Mirrored);
    }
    // The time after the lock: the decision is made on what is committed now.
    let now = Utc::now();
    let current = repo.current_files().await?;
    let find = |role: TopLevelRole| current.iter().find(|f| f.role == role);
    let (Some(root), Some(snapshot), Some(timestamp)) =
        (find(RootRole), find(SnapshotRole), find(TimestampRole))
    else {
        // Dropping `repo` rolls back (including the lock row it may have
        // inserted for a repository that does not exist).
        return Ok(Outcome::NotPublished);
    };
    let settings = online.settings;
    // Margins never less than the read path's window, so a read that finds
    // a role inside it always gets a re-sign here.
    let margin = |role: TopLevelRole| {
        settings
            .resign_margin(role)
            .max(read_window(settings, role))
    };
    let snapshot_due = is_due(expires(snapshot)?, now, margin(SnapshotRole));
    let timestamp_expires = expires(timestamp)?;
    let timestamp_due = snapshot_due
        || is_due(timestamp_expires, now, margin(TimestampRole))
        || past_cadence(
            settings,
            Metadata::<Timestamp>::from_bytes(&timestamp.bytes)
                .ok()
                .and_then(|md| signed_at(&md.signed.extra)),
            timestamp_expires,
            now,
        );
    if !timestamp_due {
        return Ok(Outcome::NotDue);
    }
    let root =
        Metadata::<Root>::from_bytes(&root.bytes).map_err(|e| stored_error(&root.role, e))?;
    let update = if snapshot_due {
        let md = Metadata::<Snapshot>::from_bytes(&snapshot.bytes)
            .map_err(|e| stored_error(&snapshot.role, e))?;
        SnapshotUpdate::New {
            version: snapshot.version + 1,
            meta: md.signed.meta,
        }
    } else {
        SnapshotUpdate::Keep {
            version: snapshot.version,
            bytes: snapshot.bytes.to_vec(),
        }
    };
    let signed = signing::sign_and_store(
        &mut repo,
        online.master,
        settings,
        &root.signed,
        update,
        timestamp.version + 1,
        now,
    )
    .await?;
    repo.commit().await?;
    let resigns = &online.metrics.resigns;
    if signed.snapshot_version.is_some() {
        resigns.with_label_values(&[SnapshotRole.as_str()]).inc();
    }
    resigns.with_label_values(&[TimestampRole.as_str()]).inc();
    tracing::info!(
        gun,
        timestamp_version = signed.timestamp_version,
        snapshot_version = ?signed.snapshot_version,
        "re-signed before expiry"
    );
    online
        .metrics
        .refresh_repository_expiries(online.storage, gun)
        .await;
    Ok(Outcome::Resigned(signed))
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PassReport {
    resigned: usize,
    failed: usize,
}

/// One scheduler pass: refresh every repository's expiry metrics, then
/// re-sign each repository whose timestamp or snapshot is due.
async fn pass(online: Online<'_>) -> Result<PassReport, ApiError> {
    let rows = online.metrics.refresh_all_expiries(online.storage).await?;
    let now = Utc::now();
    let settings = online.settings;
    let candidates: BTreeSet<&str> = rows
        .iter()
        .filter(|r| !r.mirrored)
        .filter_map(|r| {
            let role = TopLevelRole::parse(&r.role).filter(|role| role.is_online())?;
            let due = match r.expires_at.and_then(|s| DateTime::from_timestamp(s, 0)) {
                Some(expires) => may_be_due(settings, role, expires, now),
                // Unparsable: let the locked check report it.
                None => true,
            };
            due.then_some(r.gun.as_str())
        })
        .collect();
    let mut report = PassReport::default();
    for gun in candidates {
        match resign_if_due(online, gun).await {
            Ok(Outcome::Resigned(_)) => report.resigned += 1,
            Ok(Outcome::NotDue | Outcome::NotPublished | Outcome::Mirrored) => {}
            Err(e) => {
                report.failed += 1;
                online.metrics.resign_errors.inc();
                tracing::error!(gun, code = e.code, error = %e.message, "re-sign failed");
            }
        }
    }
    online.metrics.resign_last_pass.set(Utc::now().timestamp());
    Ok(report)
}

/// Run passes every `resign_interval_secs`, the first at once, until the
/// server stops.
pub(crate) async fn run(online: Online<'_>) {
    let settings = online.settings;
    let period = Duration::from_secs(settings.resign_interval_secs);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        interval_secs = period.as_secs(),
        timestamp_margin_secs = settings
            .resign_margin(TopLevelRole::Timestamp)
            .as_secs_f64(),
        snapshot_margin_secs = settings.resign_margin(TopLevelRole::Snapshot).as_secs_f64(),
        "re-sign scheduler started"
    );
    loop {
        ticker.tick().await;
        match pass(online).await {
            Ok(report) if report.resigned > 0 || report.failed > 0 => {
                tracing::debug!(
                    resigned = report.resigned,
                    failed = report.failed,
                    "re-sign pass"
                )
            }
            Ok(_) => {}
            Err(e) => {
                online.metrics.resign_errors.inc();
                tracing::error!(code = e.code, error = %e.message, "re-sign pass failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TopLevelRole::{Snapshot, Timestamp};

    #[test]
    fn due_within_margin() {
        let now = Utc::now();
        let margin = Duration::from_secs(10);
        assert!(is_due(now + chrono::Duration::seconds(9), now, margin));
        assert!(is_due(now - chrono::Duration::seconds(1), now, margin));
        assert!(!is_due(now + chrono::Duration::seconds(10), now, margin));
        assert!(!is_due(now + chrono::Duration::days(1), now, margin));
    }

    #[test]
    fn read_window_is_small() {
        let mut settings = Settings::default();
        assert_eq!(read_window(&settings, Timestamp), Duration::from_secs(5));
        settings.timestamp_expiry_secs = 3;
        settings.snapshot_expiry_secs = 6;
        assert_eq!(
            read_window(&settings, Timestamp),
            Duration::from_millis(300)
        );
        assert_eq!(read_window(&settings, Snapshot), Duration::from_millis(600));
    }

    #[test]
    fn timestamps_past_the_cadence_are_due() {
        let settings = Settings::default();
        let now = Utc::now();
        let lifetime = chrono::Duration::seconds(86400);
        let minutes = chrono::Duration::minutes;
        // Signed 31 minutes ago: past the 30-minute cadence, though a day
        // lifetime is far from its 12-hour margin.
        let signed = now - minutes(31);
        assert!(past_cadence(
            &settings,
            Some(signed),
            signed + lifetime,
            now
        ));
        assert!(may_be_due(&settings, Timestamp, signed + lifetime, now));
        let week = chrono::Duration::days(7);
        assert!(!may_be_due(&settings, Snapshot, signed + week, now));
        let signed = now - minutes(29);
        assert!(!past_cadence(
            &settings,
            Some(signed),
            signed + lifetime,
            now
        ));
        assert!(!may_be_due(&settings, Timestamp, signed + lifetime, now));
        // No signing time: inferred from the lifetime.
        assert!(past_cadence(
            &settings,
            None,
            now + lifetime - minutes(31),
            now
        ));
        assert!(!past_cadence(
            &settings,
            None,
            now + lifetime - minutes(29),
            now
        ));
        // Signed under a longer lifetime than configured: a candidate.
        assert!(may_be_due(&settings, Timestamp, now + lifetime * 2, now));
    }
}
