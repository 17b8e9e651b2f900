//! The consumer's freshness policy beyond TUF's expiry: `max_age`, the
//! oldest a timestamp may have been signed ("signed but silently
//! outdated"), and the notice when the server cannot meet it.

use crate::trusted::TrustedMetadataSet;
use chrono::Utc;
use std::time::Duration;

/// Why the trusted metadata is not fresh enough.
#[derive(Debug, thiserror::Error)]
pub enum FreshnessError {
    #[error("no trusted timestamp")]
    NoTimestamp,

    #[error(
        "max_age is set but the timestamp does not say when it was signed (x-tagtrust-signed-at)"
    )]
    NoSigningTime,

    /// Signed longer ago than `max_age`.
    #[error("freeze suspected: the timestamp was signed {} ago, longer than max_age {}", humantime::format_duration(*.age), humantime::format_duration(*.max_age))]
    TooOld { age: Duration, max_age: Duration },

    /// An offline grace reaching before the calendar's start.
    #[error("--max-stale is too large")]
    MaxStaleTooLarge,
}

/// Said before the `max_age` check: a `max_age` shorter than the age the
/// server says a healthy timestamp reaches
/// ([`crate::fetch::TIMESTAMP_MAX_AGE_HEADER`]) will report a freeze for
/// part of every re-sign cycle.
pub fn max_age_notice(
    max_age: Option<Duration>,
    server_max_age: Option<Duration>,
) -> Option<String> {
    let (max_age, server) = (max_age?, server_max_age?);
    (max_age < server).then(|| {
        format!(
            "max_age {} is shorter than the {} this server lets its timestamp age before re-signing it; expect freeze refusals while the server is healthy (use a max_age of at least {})",
            humantime::format_duration(max_age),
            humantime::format_duration(server),
            humantime::format_duration(server)
        )
    })
}

/// The consumer's `max_age` policy: a timestamp signed longer ago than that
/// is refused even if it has not expired.
pub fn check_max_age(
    trusted: &TrustedMetadataSet,
    max_age: Option<Duration>,
) -> Result<(), FreshnessError> {
    let Some(max_age) = max_age else {
        return Ok(());
    };
    let timestamp = trusted.timestamp().ok_or(FreshnessError::NoTimestamp)?;
    let signed_at = tagtrust_shared::metadata::signed_at(&timestamp.signed.extra)
        .ok_or(FreshnessError::NoSigningTime)?;
    let age = (Utc::now() - signed_at).to_std().unwrap_or_default();
    if age > max_age {
        return Err(FreshnessError::TooOld {
            age: Duration::from_secs(age.as_secs()),
            max_age,
        });
    }
    Ok(())
}

/// The reference time of an offline check: now minus the grace
/// `max_stale`.
pub fn offline_reference_time(
    max_stale: Option<Duration>,
) -> Result<chrono::DateTime<Utc>, FreshnessError> {
    // A grace reaching before the calendar's start is a user error, not a
    // panic in date arithmetic.
    chrono::Duration::from_std(max_stale.unwrap_or_default())
        .ok()
        .and_then(|grace| Utc::now().checked_sub_signed(grace))
        .ok_or(FreshnessError::MaxStaleTooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_shorter_than_the_servers_cadence_is_said() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let line = max_age_notice(Some(h(2)), Some(h(12))).unwrap();
        assert!(
            line.contains("max_age 2h") && line.contains("12h"),
            "{line}"
        );
        assert_eq!(max_age_notice(Some(h(12)), Some(h(12))), None);
        assert_eq!(max_age_notice(None, Some(h(12))), None);
        assert_eq!(max_age_notice(Some(h(2)), None), None);
    }
}
