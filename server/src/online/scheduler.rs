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
//! Server-held hashed bins (their publisher let the server hold the bin
//! key) are re-signed the same way when one is within its margin (default
//! half of `bins_expiry_secs`), with a new snapshot and timestamp; the
//! repositories are found through `repositories.bins_expire_at`.
//!
//! Reading `timestamp.json` goes through [`super::fresh::current`]: a safety
//! net that re-signs on the spot only when the scheduler is late. Bins have
//! none: their margin is months by default, so a late scheduler has that
//! long, and consumers fetch bins by version, not as current files.

use super::notary_signing;
use super::signing::{self, Signed, SnapshotUpdate};
use super::Online;
use crate::configuration::Settings;
use crate::dialect::Dialect;
use crate::error::ApiError;
use crate::publish::server_bins::{held_bins, HeldBins, NewBin};
use crate::storage::{RepoTx, ResignDue, StoredFile};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::notary::{NotaryRoot, NotarySigned, NotarySnapshot};
use tagtrust_shared::{MetaFile, Metadata, Root, Snapshot, Targets, Timestamp, TopLevelRole};

/// What a re-sign attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The repository has no timestamp yet (never published, or deleted).
    NotPublished,
    /// Nothing is within its margin (possibly another process just re-signed).
    NotDue,
    /// A transparent mirror: its upstream signs it, never this server.
    Mirrored,
    /// An imported Notary repository whose timestamp key is still the old
    /// notary-server's: served as imported until the publisher rotates it
    /// here (`notary key rotate GUN timestamp -r`).
    AwaitingRotation,
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

/// The scheduler's cheap pre-selection (expiry only, no parsing), as the
/// database query [`crate::storage::Storage::resign_candidates`] runs it: a
/// timestamp older than the cadence as the configured lifetime tells it,
/// within its margin, or signed with a longer lifetime than configured now
/// (its signing time decides, under the lock); a snapshot within its margin.
/// Margins are never less than the read path's window, as in
/// [`resign_if_due`].
pub(crate) fn resign_due(settings: &Settings, now: DateTime<Utc>) -> ResignDue {
    let margin = |role: TopLevelRole| {
        settings
            .resign_margin(role)
            .max(read_window(settings, role))
    };
    let after = |d: Duration| {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        now.timestamp().saturating_add(secs)
    };
    let lifetime = settings.lifetime(TopLevelRole::Timestamp);
    let cadence_left = lifetime.saturating_sub(settings.timestamp_cadence());
    ResignDue {
        timestamp_before: after(margin(TopLevelRole::Timestamp).max(cadence_left)),
        timestamp_after: after(lifetime),
        snapshot_before: after(margin(TopLevelRole::Snapshot)),
        bins_before: after(settings.bins_resign_margin()),
    }
}

fn stored_error(role: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("stored {role} does not parse: {e}"))
}

fn expires(file: &StoredFile) -> Result<DateTime<Utc>, ApiError> {
    file.expires()
        .ok_or_else(|| stored_error(&file.role, "no valid signed.expires"))
}

/// Point the next timestamp at the stored snapshot `file`, in either dialect.
fn keep<M>(file: &StoredFile) -> SnapshotUpdate<M> {
    SnapshotUpdate::Keep {
        version: file.version,
        bytes: file.bytes.to_vec(),
    }
}

/// Under `gun`'s lock: if its timestamp or snapshot is within its margin,
/// sign the next snapshot (same meta, when the snapshot is due) and the next
/// timestamp, exactly as a publish does, and commit.
pub(crate) async fn resign_if_due(online: Online<'_>, gun: &str) -> Result<Outcome, ApiError> {
    use TopLevelRole::{Root as RootRole, Snapshot as SnapshotRole, Timestamp as TimestampRole};
    let mut repo = online.storage.lock(gun).await?;
    if repo.is_mirrored() {
        return Ok(Outcome::Mirrored);
    }
    if repo.is_awaiting_rotation() {
        return Ok(Outcome::AwaitingRotation);
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
    let dialect = repo.dialect();
    let notary_root = match dialect {
        Some(Dialect::Notary) => Some(
            NotarySigned::from_bytes(&root.bytes)
                .and_then(|signed| signed.parse::<NotaryRoot>("Root"))
                .map_err(|e| stored_error(&root.role, e))?,
        ),
        _ => None,
    };
    // A Notary publisher may keep the snapshot key: then only the
    // timestamp is the server's to re-sign.
    let snapshot_is_ours = match &notary_root {
        Some(root) => {
            let keys = repo.public_keys(SnapshotRole.into()).await?;
            crate::publish::notary::server_holds_snapshot_key(root, &keys)
        }
        None => true,
    };
    // Server-held bins exist only in spec-TUF repositories.
    let bins = match notary_root {
        Some(_) => None,
        None => due_bins(&mut repo, &current, settings, now).await?,
    };
    let snapshot_due = bins.is_some()
        || (snapshot_is_ours && is_due(expires(snapshot)?, now, margin(SnapshotRole)));
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
    let (master, next) = (online.master, timestamp.version + 1);
    let signed = if let Some(root) = &notary_root {
        let update = if snapshot_due {
            let md = NotarySigned::from_bytes(&snapshot.bytes)
                .and_then(|signed| signed.parse::<NotarySnapshot>("Snapshot"))
                .map_err(|e| stored_error(&snapshot.role, e))?;
            SnapshotUpdate::New {
                version: snapshot.version + 1,
                meta: md.meta,
            }
        } else {
            keep(snapshot)
        };
        notary_signing::sign_and_store(&mut repo, master, settings, root, update, next, now).await?
    } else {
        let root =
            Metadata::<Root>::from_bytes(&root.bytes).map_err(|e| stored_error(&root.role, e))?;
        let update = if snapshot_due {
            let mut md = Metadata::<Snapshot>::from_bytes(&snapshot.bytes)
                .map_err(|e| stored_error(&snapshot.role, e))?;
            if let Some((held, new_bins)) = bins {
                for bin in &new_bins {
                    md.signed.meta.insert(
                        format!("{}.json", bin.role),
                        MetaFile::version_only(bin.targets.version),
                    );
                }
                let resigned = new_bins.len();
                signing::sign_and_store_bins(&mut repo, master, &held, new_bins, now).await?;
                online
                    .metrics
                    .resigns
                    .with_label_values(&["bins"])
                    .inc_by(resigned as u64);
            }
            SnapshotUpdate::New {
                version: snapshot.version + 1,
                meta: md.signed.meta,
            }
        } else {
            keep(snapshot)
        };
        signing::sign_and_store(&mut repo, master, settings, &root.signed, update, next, now)
            .await?
    };
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
    Ok(Outcome::Resigned(signed))
}

/// Under the lock: the server-held bins of `current` (the repository's
/// current files) within their re-sign margin, each as its next version
/// (same tags, a new expiry). Only a repository with a server bin key and
/// bins is looked at, and only the due bins are parsed. When the server
/// no longer holds the bins (its targets delegates them elsewhere now),
/// the scheduler's note of their expiry is dropped.
async fn due_bins(
    repo: &mut RepoTx,
    current: &[StoredFile],
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Option<(HeldBins, Vec<NewBin>)>, ApiError> {
    let bin_prefix = format!("{}-", tagtrust_shared::bins::BIN_PREFIX);
    if !current.iter().any(|f| f.role.starts_with(&bin_prefix)) {
        return Ok(None);
    }
    let server_keys = signing::bin_keys(repo).await?;
    if server_keys.is_empty() {
        return Ok(None);
    }
    let Some(targets) = current.iter().find(|f| f.role == TopLevelRole::Targets) else {
        return Ok(None);
    };
    let targets = Metadata::<Targets>::from_bytes(&targets.bytes)
        .map_err(|e| stored_error(&targets.role, e))?;
    let Ok(Some(held)) = held_bins(&targets.signed, &server_keys) else {
        repo.forget_bins_expiry().await?;
        return Ok(None);
    };
    let mut bins = Vec::new();
    for file in current.iter().filter(|f| held.bins.is_bin(&f.role)) {
        if !is_due(expires(file)?, now, settings.bins_resign_margin()) {
            continue;
        }
        let md = Metadata::<Targets>::from_bytes(&file.bytes)
            .map_err(|e| stored_error(&file.role, e))?;
        let mut next = md.signed;
        next.version += 1;
        next.expires = signing::bins_expiry(now, settings);
        bins.push(NewBin {
            role: file.role.clone(),
            targets: next,
        });
    }
    Ok((!bins.is_empty()).then_some((held, bins)))
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PassReport {
    resigned: usize,
    failed: usize,
}

/// One scheduler pass: re-sign each repository whose timestamp or snapshot
/// is due. Only the candidates the database finds by expiry are looked at.
async fn pass(online: Online<'_>) -> Result<PassReport, ApiError> {
    let due = resign_due(online.settings, Utc::now());
    let candidates = online.storage.resign_candidates(&due).await?;
    let mut report = PassReport::default();
    for gun in &candidates {
        match resign_if_due(online, gun).await {
            Ok(Outcome::Resigned(_)) => report.resigned += 1,
            Ok(
                Outcome::NotDue
                | Outcome::NotPublished
                | Outcome::Mirrored
                | Outcome::AwaitingRotation,
            ) => {}
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
    match online.storage.backfill_missing_expiries().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            rows = n,
            "filled in expiries of rows stored before they were kept"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot fill in missing expiries"),
    }
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

    /// The pre-selection as a predicate on one role's expiry: what
    /// [`resign_due`]'s bounds must select.
    fn may_be_due(
        settings: &Settings,
        role: TopLevelRole,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let margin = settings
            .resign_margin(role)
            .max(read_window(settings, role));
        if is_due(expires, now, margin) {
            return true;
        }
        role == Timestamp
            && (past_cadence(settings, None, expires, now)
                || chrono::Duration::from_std(settings.lifetime(role))
                    .is_ok_and(|lifetime| expires - now > lifetime))
    }

    /// What the database query selects with [`resign_due`]'s bounds.
    fn selected(due: &ResignDue, role: TopLevelRole, expires: DateTime<Utc>) -> bool {
        let e = expires.timestamp();
        match role {
            Timestamp => e < due.timestamp_before || e > due.timestamp_after,
            _ => e < due.snapshot_before,
        }
    }

    #[test]
    fn the_candidate_query_selects_exactly_what_may_be_due() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut settings = Settings::default();
        let check = |settings: &Settings| {
            let due = resign_due(settings, now);
            for role in [Timestamp, Snapshot] {
                for minutes in (-120..=20_000).step_by(7) {
                    let expires = now + chrono::Duration::minutes(minutes);
                    assert_eq!(
                        selected(&due, role, expires),
                        may_be_due(settings, role, expires, now),
                        "{role} expiring in {minutes} min"
                    );
                }
            }
        };
        check(&settings);
        settings.timestamp_expiry_secs = 600;
        settings.snapshot_expiry_secs = 3600;
        settings.resign_margin_secs = Some(120);
        check(&settings);
        settings.timestamp_cadence_secs = 10 * 86_400;
        check(&settings);
    }

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
