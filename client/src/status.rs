//! `tagtrust status`: per role, version, when it was signed, when it
//! expires, how long is left, and who holds the key; warnings for roles
//! about to expire. All from freshly verified metadata.

use crate::session::{ReadError, Session};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::{Gun, Metadata, Role, TopLevelRole};

/// One role's state.
#[derive(Debug, Serialize)]
pub struct RoleStatus {
    pub role: String,
    pub version: u64,
    /// From the `x-tagtrust-signed-at` field, when the signer recorded it.
    pub signed_at: Option<DateTime<Utc>>,
    pub expires: DateTime<Utc>,
    pub seconds_left: i64,
    /// `local` (this home holds a key), `offline` (someone else's keys),
    /// `server` (online keys) or `delegated`.
    pub key_holder: String,
    pub key_ids: Vec<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Status {
    pub gun: String,
    pub checked_at: DateTime<Utc>,
    pub roles: Vec<RoleStatus>,
    pub warnings: Vec<String>,
    /// Delegation branches left out because they failed verification (also
    /// handed to the caller's notices).
    pub skipped: Vec<String>,
}

/// Verify `gun` and report on every role, warning about roles that expire
/// within `warning_days`. It can fail only as reading the repository can.
pub fn status(session: &Session, gun: &Gun, warning_days: i64) -> Result<Status, ReadError> {
    let home = &session.home;
    let (repo, walk) = session.open_all_roles(gun)?;
    let notices: Vec<String> = walk.skipped.iter().map(|s| s.notice()).collect();
    for line in &notices {
        session.notices.push(line.clone());
    }
    let delegated = &walk.roles;
    let now = Utc::now();
    let trusted = repo.updater.trusted();
    let root = &trusted.root().signed;

    let top_level_holder = |role: &str| -> (String, Vec<String>) {
        let ids = root
            .role_keys(role)
            .map(|k| k.keyids.clone())
            .unwrap_or_default();
        let holder = match role {
            _ if TopLevelRole::is_online_name(role) => "server",
            _ if home.has_key(gun, role, &ids) => "local",
            _ => "offline",
        };
        (holder.to_string(), ids)
    };
    let mut roles = Vec::new();
    let mut push = |name: &str,
                    extra: &serde_json::Map<String, serde_json::Value>,
                    version: u64,
                    expires: DateTime<Utc>,
                    holder: (String, Vec<String>)| {
        roles.push(RoleStatus {
            role: name.to_string(),
            version,
            signed_at: signed_at(extra),
            expires,
            seconds_left: (expires - now).num_seconds(),
            key_holder: holder.0,
            key_ids: holder.1,
        });
    };
    push(
        "root",
        &root.extra,
        root.version,
        root.expires,
        top_level_holder("root"),
    );
    if let Some(md) = trusted.timestamp() {
        push(
            "timestamp",
            &md.signed.extra,
            md.signed.version,
            md.signed.expires,
            top_level_holder("timestamp"),
        );
    }
    if let Some(md) = trusted.snapshot() {
        push(
            "snapshot",
            &md.signed.extra,
            md.signed.version,
            md.signed.expires,
            top_level_holder("snapshot"),
        );
    }
    for name in delegated {
        let Some(md) = trusted.targets_role(name) else {
            continue;
        };
        let holder = if name == "targets" {
            top_level_holder("targets")
        } else {
            (
                "delegated".to_string(),
                delegated_key_ids(trusted, &walk.delegators, name),
            )
        };
        push(
            name,
            &md.signed.extra,
            md.signed.version(),
            md.signed.expires(),
            holder,
        );
    }

    // Timestamp and snapshot are the server's to re-sign; warn about the
    // roles a person has to act on.
    let horizon = now + Duration::days(warning_days);
    let warnings = roles
        .iter()
        .filter(|r| r.key_holder != "server" && r.expires <= horizon)
        .map(|r| {
            format!(
                "{} expires {} ({}); re-sign it with `tagtrust refresh {gun} --role {}`",
                r.role,
                r.expires.format("%Y-%m-%d %H:%M UTC"),
                if r.seconds_left <= 0 {
                    "already expired".to_string()
                } else {
                    format!("in {} days", r.seconds_left / 86_400)
                },
                r.role
            )
        })
        .collect();
    Ok(Status {
        gun: gun.to_string(),
        checked_at: now,
        roles,
        warnings,
        skipped: notices,
    })
}

/// The key IDs the delegator `name` was verified through lists for it.
fn delegated_key_ids(
    trusted: &crate::trusted::TrustedMetadataSet,
    delegators: &std::collections::BTreeMap<String, String>,
    name: &str,
) -> Vec<String> {
    delegators
        .get(name)
        .and_then(|parent| trusted.targets_role(parent))
        .and_then(|md: &Metadata<tagtrust_shared::Targets>| md.signed.delegations.as_ref())
        .and_then(|d| d.role_keys(name).map(|(ids, _)| ids.to_vec()))
        .unwrap_or_default()
}
