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
//! Reading `timestamp.json` goes through [`ensure_fresh_timestamp`]: a safety
//! net that re-signs on the spot only when the scheduler is late.

use crate::error::ApiError;
use crate::online::{self, Signed, SnapshotUpdate};
use crate::publish::ONLINE_ROLES;
use crate::startup::AppState;
use crate::storage::StoredFile;
use actix_web::http::StatusCode;
use actix_web::web;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::Duration;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::{Metadata, Root, Snapshot, Timestamp};

/// What a re-sign attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The repository has no timestamp yet (never published, or deleted).
    NotPublished,
    /// Nothing is within its margin (possibly another process just re-signed).
    NotDue,
    Resigned(Signed),
}

/// Does a role that expires at `expires` need a new version at `now`?
pub fn is_due(expires: DateTime<Utc>, now: DateTime<Utc>, margin: Duration) -> bool {
    let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
    expires - now < margin
}

/// How close to expiry a timestamp or snapshot (`role`) may be and still be
/// served: a tenth of its lifetime, at most 5 s. Closer than that, a read
/// re-signs first.
pub fn read_window(settings: &crate::configuration::Settings, role: &str) -> Duration {
    (settings.lifetime(role) / 10).min(Duration::from_secs(5))
}

/// Is a timestamp signed at `signed_at` (expiring at `expires`) older than
/// the cadence at `now`? Without a recorded signing time, its age is
/// inferred from the configured lifetime.
fn past_cadence(
    settings: &crate::configuration::Settings,
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
            settings.lifetime("timestamp").saturating_sub(cadence),
        ),
    }
}

/// The scheduler's cheap pre-selection (expiry only, no parsing): may this
/// server-signed role be due? For a timestamp: older than the cadence as
/// the configured lifetime tells it, or signed with a longer lifetime than
/// configured now (its signing time decides, under the lock).
fn may_be_due(
    settings: &crate::configuration::Settings,
    role: &str,
    expires: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    if is_due(expires, now, settings.resign_margin(role)) {
        return true;
    }
    role == "timestamp"
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
pub async fn resign_if_due(state: &AppState, gun: &str) -> Result<Outcome, ApiError> {
    let mut repo = state.storage.lock(gun).await?;
    // The time after the lock: the decision is made on what is committed now.
    let now = Utc::now();
    let current = repo.current_files().await?;
    let find = |role: &str| current.iter().find(|f| f.role == role);
    let (Some(root), Some(snapshot), Some(timestamp)) =
        (find("root"), find("snapshot"), find("timestamp"))
    else {
        // Dropping `repo` rolls back (including the lock row it may have
        // inserted for a repository that does not exist).
        return Ok(Outcome::NotPublished);
    };
    let settings = &state.settings;
    // Margins never less than the read path's window, so a read that finds
    // a role inside it always gets a re-sign here.
    let margin = |role: &str| {
        settings
            .resign_margin(role)
            .max(read_window(settings, role))
    };
    let snapshot_due = is_due(expires(snapshot)?, now, margin("snapshot"));
    let timestamp_expires = expires(timestamp)?;
    let timestamp_due = snapshot_due
        || is_due(timestamp_expires, now, margin("timestamp"))
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
    let root = Metadata::<Root>::from_bytes(&root.bytes).map_err(|e| stored_error("root", e))?;
    let update = if snapshot_due {
        let md = Metadata::<Snapshot>::from_bytes(&snapshot.bytes)
            .map_err(|e| stored_error("snapshot", e))?;
        SnapshotUpdate::New {
            version: snapshot.version + 1,
            meta: md.signed.meta,
        }
    } else {
        SnapshotUpdate::Keep {
            version: snapshot.version,
            bytes: snapshot.bytes.clone(),
        }
    };
    let signed = online::sign_and_store(
        state,
        &mut repo,
        gun,
        &root.signed,
        update,
        timestamp.version + 1,
        now,
    )
    .await?;
    repo.commit().await?;
    if signed.snapshot_version.is_some() {
        state.metrics.resigns.with_label_values(&["snapshot"]).inc();
    }
    state
        .metrics
        .resigns
        .with_label_values(&["timestamp"])
        .inc();
    tracing::info!(
        gun,
        timestamp_version = signed.timestamp_version,
        snapshot_version = ?signed.snapshot_version,
        "re-signed before expiry"
    );
    refresh_metrics(state, gun).await;
    Ok(Outcome::Resigned(signed))
}

/// Update `gun`'s expiry metrics from the database (after a publish or a
/// re-sign). A failure only leaves the metric stale until the next pass.
pub async fn refresh_metrics(state: &AppState, gun: &str) {
    match state.storage.current_expiries(Some(gun)).await {
        Ok(rows) => state.metrics.set_repository_expiries(gun, &rows),
        Err(e) => tracing::warn!(gun, error = %e, "cannot refresh expiry metrics"),
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub resigned: usize,
    pub failed: usize,
}

/// One scheduler pass: refresh every repository's expiry metrics, then
/// re-sign each repository whose timestamp or snapshot is due.
pub async fn pass(state: &AppState) -> Result<PassReport, ApiError> {
    let rows = state.storage.current_expiries(None).await?;
    state.metrics.set_all_expiries(&rows);
    let now = Utc::now();
    let settings = &state.settings;
    let candidates: BTreeSet<&str> = rows
        .iter()
        .filter(|r| ONLINE_ROLES.contains(&r.role.as_str()))
        .filter(
            |r| match r.expires_at.and_then(|s| DateTime::from_timestamp(s, 0)) {
                Some(expires) => may_be_due(settings, &r.role, expires, now),
                // Unparsable: let the locked check report it.
                None => true,
            },
        )
        .map(|r| r.gun.as_str())
        .collect();
    let mut report = PassReport::default();
    for gun in candidates {
        match resign_if_due(state, gun).await {
            Ok(Outcome::Resigned(_)) => report.resigned += 1,
            Ok(Outcome::NotDue | Outcome::NotPublished) => {}
            Err(e) => {
                report.failed += 1;
                state.metrics.resign_errors.inc();
                tracing::error!(gun, code = e.code, error = %e.message, "re-sign failed");
            }
        }
    }
    state.metrics.resign_last_pass.set(Utc::now().timestamp());
    Ok(report)
}

/// Run passes every `resign_interval_secs`, the first at once, until the
/// server stops.
pub async fn run_scheduler(state: web::Data<AppState>) {
    let period = Duration::from_secs(state.settings.resign_interval_secs);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(
        interval_secs = period.as_secs(),
        timestamp_margin_secs = state.settings.resign_margin("timestamp").as_secs_f64(),
        snapshot_margin_secs = state.settings.resign_margin("snapshot").as_secs_f64(),
        "re-sign scheduler started"
    );
    loop {
        ticker.tick().await;
        match pass(&state).await {
            Ok(report) if report.resigned > 0 || report.failed > 0 => {
                tracing::debug!(
                    resigned = report.resigned,
                    failed = report.failed,
                    "re-sign pass"
                )
            }
            Ok(_) => {}
            Err(e) => {
                state.metrics.resign_errors.inc();
                tracing::error!(code = e.code, error = %e.message, "re-sign pass failed");
            }
        }
    }
}

fn unavailable(gun: &str, role: &str, reason: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        if role == "snapshot" {
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
    state: &AppState,
    gun: &str,
    role: &str,
) -> Result<Option<Option<DateTime<Utc>>>, ApiError> {
    if role == "timestamp" {
        Ok(state.storage.current_expiry(gun, "snapshot").await?)
    } else {
        Ok(None)
    }
}

/// The read path's safety net, for the current `role` (`timestamp` or
/// `snapshot`) of `gun`, `current` being its stored file. A timestamp is
/// served only if it and the snapshot it names (the current one) have more
/// than [`read_window`] left; a snapshot only if it has. Otherwise they are
/// re-signed on the spot (under the lock, the same path as the scheduler)
/// and the new file returned. Never returns a file inside the window: if
/// re-signing fails, a 503 with the reason.
pub async fn ensure_fresh(
    state: &AppState,
    gun: &str,
    role: &str,
    current: StoredFile,
) -> Result<StoredFile, ApiError> {
    let fresh = |role: &str, expires: Option<DateTime<Utc>>| {
        expires.is_some_and(|e| !is_due(e, Utc::now(), read_window(&state.settings, role)))
    };
    // What must be fresh for `role` to be served, given its current file
    // and (for a timestamp) the current snapshot's expiry.
    let all_fresh = |file: &StoredFile, snapshot: Option<Option<DateTime<Utc>>>| {
        fresh(&file.role, file.expires()) && snapshot.is_none_or(|e| fresh("snapshot", e))
    };
    if all_fresh(&current, named_snapshot_expiry(state, gun, role).await?) {
        return Ok(current);
    }
    match resign_if_due(state, gun).await {
        Ok(Outcome::Resigned(_)) => {
            state.metrics.resigns_on_read.inc();
            tracing::warn!(
                gun,
                role,
                "re-signed an expiring {role} on read: the scheduler is late"
            );
        }
        Ok(_) => {}
        Err(e) => {
            state.metrics.resign_errors.inc();
            return Err(unavailable(gun, role, e.message));
        }
    }
    let latest = state
        .storage
        .current(gun, role)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no {role} metadata for {gun}")))?;
    if all_fresh(&latest, named_snapshot_expiry(state, gun, role).await?) {
        Ok(latest)
    } else {
        Err(unavailable(
            gun,
            role,
            "the re-signed metadata is still inside the safety window".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut settings = crate::configuration::Settings::default();
        assert_eq!(read_window(&settings, "timestamp"), Duration::from_secs(5));
        settings.timestamp_expiry_secs = 3;
        settings.snapshot_expiry_secs = 6;
        assert_eq!(
            read_window(&settings, "timestamp"),
            Duration::from_millis(300)
        );
        assert_eq!(
            read_window(&settings, "snapshot"),
            Duration::from_millis(600)
        );
    }

    #[test]
    fn timestamps_past_the_cadence_are_due() {
        let settings = crate::configuration::Settings::default();
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
        assert!(may_be_due(&settings, "timestamp", signed + lifetime, now));
        let week = chrono::Duration::days(7);
        assert!(!may_be_due(&settings, "snapshot", signed + week, now));
        let signed = now - minutes(29);
        assert!(!past_cadence(
            &settings,
            Some(signed),
            signed + lifetime,
            now
        ));
        assert!(!may_be_due(&settings, "timestamp", signed + lifetime, now));
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
        assert!(may_be_due(&settings, "timestamp", now + lifetime * 2, now));
    }
}
