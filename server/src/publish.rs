//! Publish validation: given the repository's current metadata and the
//! uploaded files, decide what may be stored, or why not. Pure (no I/O):
//! the route holds the repository lock around it. Every signature check goes
//! through `tagtrust_shared` (`Root::verify_role`, `Delegations::verify_delegate`).

use crate::error::ApiError;
use crate::storage::{OnlineKeyRow, StoredFile};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use tagtrust_shared::metadata::Role;
use tagtrust_shared::{
    DelegatedRole, Delegations, MetaFile, Metadata, Root, SuccinctRoles, Targets,
};

/// Roles the server signs itself; publishers may not upload them.
pub const ONLINE_ROLES: [&str; 2] = ["timestamp", "snapshot"];

/// One uploaded file: role name (without `.json`) and exact bytes.
#[derive(Debug, Clone)]
pub struct Upload {
    pub role: String,
    pub bytes: Vec<u8>,
}

/// What a valid publish stores, before the server signs snapshot and timestamp.
pub struct Plan {
    /// Uploaded roles to store, with their versions (exact bytes).
    pub store: Vec<(String, u64, Vec<u8>)>,
    /// The root that will be current after the publish.
    pub root: Metadata<Root>,
    /// The new snapshot's `meta`.
    pub snapshot_meta: BTreeMap<String, MetaFile>,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
}

/// Refuse JSON nested deeper than `max` before any parser sees it (serde's
/// own limit of 128 is a stack guard, not a policy). Counts `[` and `{`
/// outside strings; cheap and allocation-free.
pub fn json_depth_exceeds(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Normalise an uploaded part's filename to a role name and check it.
pub fn role_from_filename(filename: &str) -> Result<String, ApiError> {
    let role = filename.strip_suffix(".json").unwrap_or(filename);
    tagtrust_shared::pathmatch::validate_role_name(role).map_err(|e| {
        ApiError::bad_request("INVALID_ROLE", e.to_string())
            .with_detail(json!({ "role": role.chars().take(300).collect::<String>() }))
    })?;
    if ONLINE_ROLES.contains(&role) {
        return Err(ApiError::invalid_role(
            "ROLE_NOT_UPLOADABLE",
            role,
            format!("{role} is signed by the server and cannot be uploaded"),
        ));
    }
    Ok(role.to_string())
}

fn parse<T: Role>(role: &str, bytes: &[u8]) -> Result<Metadata<T>, ApiError> {
    Metadata::<T>::from_bytes(bytes)
        .map_err(|e| ApiError::invalid_role("MALFORMED_METADATA", role, format!("{role}: {e}")))
}

fn signature_error(role: &str, e: tagtrust_shared::Error) -> ApiError {
    ApiError::invalid_role("SIGNATURE", role, format!("{role}: {e}"))
}

/// Version must be exactly `current + 1` (1 for a new role). Not newer than
/// current means the publisher is behind: 409, re-fetch and retry.
fn check_version(role: &str, uploaded: u64, current: Option<u64>) -> Result<(), ApiError> {
    let current_version = current.unwrap_or(0);
    if uploaded <= current_version {
        return Err(ApiError::conflict(
            role,
            current_version,
            format!(
                "{role} version {uploaded} is not newer than the current version {current_version}; \
                 fetch the current metadata and publish version {}",
                current_version + 1
            ),
        ));
    }
    if uploaded != current_version + 1 {
        return Err(ApiError::bad_request(
            "VERSION",
            format!(
                "{role} version {uploaded} skips versions: the next version must be {}",
                current_version + 1
            ),
        )
        .with_detail(json!({ "role": role, "current_version": current_version, "uploaded_version": uploaded })));
    }
    Ok(())
}

fn check_expiry(role: &str, expires: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), ApiError> {
    if expires <= now {
        return Err(ApiError::invalid_role(
            "EXPIRED",
            role,
            format!("{role} expired at {expires}"),
        ));
    }
    Ok(())
}

/// One step of a delegation chain from top-level targets to a role.
#[derive(Clone)]
enum Hop {
    Role(DelegatedRole),
    Bin(SuccinctRoles, String),
}

impl Hop {
    fn allows(&self, target: &str) -> bool {
        match self {
            Hop::Role(role) => role.is_delegated_path(target),
            Hop::Bin(bins, name) => bins.role_for_target(target) == *name,
        }
    }
}

/// Walk the delegation graph the way clients search it: from top-level
/// targets through the (effective) delegated roles that their delegators
/// still vouch for, depth first in listed order, each role visited once.
/// `visit` sees each visited role's name, its delegations and the chain of
/// delegations that led to it.
fn walk(
    effective: &BTreeMap<String, Metadata<Targets>>,
    mut visit: impl FnMut(&str, &Delegations, &[Hop]),
) {
    let mut stack = vec![("targets".to_string(), Vec::<Hop>::new())];
    let mut visited = BTreeSet::new();
    while let Some((role, hops)) = stack.pop() {
        if !visited.insert(role.clone()) {
            continue;
        }
        let Some(delegations) = effective
            .get(&role)
            .and_then(|m| m.signed.delegations.as_ref())
        else {
            continue;
        };
        visit(&role, delegations, &hops);
        for child in delegations.roles().iter().rev() {
            // Only a child whose stored metadata its delegator still vouches
            // for can pass delegations on: a stale role signed by a
            // rotated-out key authorises nothing.
            let vouched = effective
                .get(&child.name)
                .is_some_and(|md| delegations.verify_delegate(&child.name, md).is_ok());
            if vouched {
                let mut chain = hops.clone();
                chain.push(Hop::Role(child.clone()));
                stack.push((child.name.clone(), chain));
            }
        }
    }
}

/// Find every role that delegates `name` ([`walk`]). Returns each
/// delegator's name with the chain of delegations leading to `name` (every
/// hop must allow each target).
fn find_delegators(
    effective: &BTreeMap<String, Metadata<Targets>>,
    name: &str,
) -> Vec<(String, Vec<Hop>)> {
    let mut found = Vec::new();
    walk(effective, |role, delegations, hops| {
        for child in delegations.roles() {
            if child.name == name {
                let mut chain = hops.to_vec();
                chain.push(Hop::Role(child.clone()));
                found.push((role.to_string(), chain));
            }
        }
        if let Some(bins) = &delegations.succinct_roles {
            if bins.is_bin(name) {
                let mut chain = hops.to_vec();
                chain.push(Hop::Bin(bins.clone(), name.to_string()));
                found.push((role.to_string(), chain));
            }
        }
    });
    found
}

/// Refuse a publish after which some role name would be delegated by two
/// reachable roles, when one of them is being uploaded: a delegated role may
/// affect only names inside its own delegation, so a robot cannot claim a
/// sibling's name (and lock the sibling out, since its publishes would be
/// ambiguous) by delegating it from its own role. Explicit names clash with
/// each other and with another role's hash bins; two bin sets clash when
/// they share a name prefix and a bin width.
fn check_unique_delegations(
    effective: &BTreeMap<String, Metadata<Targets>>,
    uploaded: &BTreeSet<String>,
) -> Result<(), ApiError> {
    let mut explicit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bins: Vec<(String, SuccinctRoles)> = Vec::new();
    walk(effective, |role, delegations, _| {
        for child in delegations.roles() {
            explicit
                .entry(child.name.clone())
                .or_default()
                .push(role.to_string());
        }
        if let Some(s) = &delegations.succinct_roles {
            bins.push((role.to_string(), s.clone()));
        }
    });
    let mut clashes: Vec<(String, Vec<String>)> = Vec::new();
    for (name, delegators) in &explicit {
        let mut all = delegators.clone();
        all.extend(
            bins.iter()
                .filter(|(_, s)| s.is_bin(name))
                .map(|(d, _)| d.clone()),
        );
        if all.len() > 1 {
            clashes.push((name.clone(), all));
        }
    }
    for (i, (a, sa)) in bins.iter().enumerate() {
        for (b, sb) in &bins[i + 1..] {
            if sa.name_prefix == sb.name_prefix
                && sa.bit_length.div_ceil(4) == sb.bit_length.div_ceil(4)
            {
                clashes.push((format!("{}-*", sa.name_prefix), vec![a.clone(), b.clone()]));
            }
        }
    }
    for (name, delegators) in clashes {
        let Some(culprit) = delegators.iter().find(|d| uploaded.contains(*d)).cloned() else {
            // Already so before this publish, and nothing uploaded adds to it.
            continue;
        };
        let shown: String = name.chars().take(300).collect();
        return Err(ApiError::bad_request(
            "AMBIGUOUS_DELEGATION",
            format!(
                "{culprit} may not delegate {shown:?}: that name would be delegated by more than one role ({}); \
                 a delegated role may affect only names inside its own delegation, and delegated role names must be unique",
                delegators.join(", ")
            ),
        )
        .with_detail(json!({ "role": culprit, "delegated": shown, "delegators": delegators })));
    }
    Ok(())
}

/// Refuse target names that are not OCI tags (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`):
/// a tagtrust repository's targets are image tags, and a name with control
/// characters or separators could forge lines where tags are listed.
fn check_target_names(role: &str, md: &Metadata<Targets>) -> Result<(), ApiError> {
    for name in md.signed.targets.keys() {
        if tagtrust_shared::reference::validate_tag(name).is_err() {
            let shown: String = name.chars().take(300).collect();
            return Err(ApiError::bad_request(
                "INVALID_TARGET_NAME",
                format!(
                    "{role}: target name {shown:?} is not a valid OCI tag \
                     (1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-')"
                ),
            )
            .with_detail(json!({ "role": role, "target": shown })));
        }
    }
    Ok(())
}

/// Refuse a key list that names one key (by decoded material, see
/// `PublicKey::identity`) under two key IDs: such a key could meet a
/// threshold of two wherever key IDs are counted.
fn check_distinct_keys(
    role: &str,
    what: &str,
    keys: &BTreeMap<String, tagtrust_shared::PublicKey>,
) -> Result<(), ApiError> {
    match tagtrust_shared::keys::duplicate_key(keys) {
        None => Ok(()),
        Some((a, b)) => Err(ApiError::bad_request(
            "DUPLICATE_KEY",
            format!("{role} lists one key under two key IDs in its {what} ({a} and {b}); list each key once"),
        )
        .with_detail(json!({ "role": role, "key_ids": [a, b] }))),
    }
}

/// The server keys a root trusts for an online role, as (key ID the root
/// lists, our key). Refuses a root under which the server could not sign
/// that role with enough keys to meet its threshold.
pub fn online_signers<'a>(
    root: &Root,
    role: &str,
    server_keys: &'a [OnlineKeyRow],
) -> Result<Vec<(String, &'a OnlineKeyRow)>, ApiError> {
    let role_keys = root
        .role_keys(role)
        .map_err(|e| signature_error("root", e))?;
    let mut signers = Vec::new();
    for listed in &role_keys.keyids {
        let Some(public) = root.keys.get(listed) else {
            continue;
        };
        if let Some(ours) = server_keys.iter().find(|k| k.public_key.same_key(public)) {
            signers.push((listed.clone(), ours));
        }
    }
    if signers.is_empty() || (signers.len() as u64) < role_keys.threshold {
        let ours: Vec<&str> = server_keys.iter().map(|k| k.key_id.as_str()).collect();
        return Err(ApiError::bad_request(
            "SERVER_KEYS",
            format!(
                "root must list the server's {role} key (GET {role}.key) with threshold {} met by server keys; \
                 it lists {} of them",
                role_keys.threshold,
                signers.len()
            ),
        )
        .with_detail(json!({ "role": "root", "online_role": role, "server_key_ids": ours })));
    }
    Ok(signers)
}

/// Validate `uploads` against the repository's `current` files. On success,
/// what to store; on failure, the first problem found (nothing is stored).
pub fn plan(
    current: &[StoredFile],
    uploads: Vec<Upload>,
    now: DateTime<Utc>,
) -> Result<Plan, ApiError> {
    let current: BTreeMap<&str, &StoredFile> =
        current.iter().map(|f| (f.role.as_str(), f)).collect();
    let mut uploaded: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for upload in uploads {
        if uploaded.contains_key(&upload.role) {
            return Err(ApiError::invalid_role(
                "DUPLICATE_ROLE",
                &upload.role,
                format!("{} uploaded twice in one publish", upload.role),
            ));
        }
        uploaded.insert(upload.role, upload.bytes);
    }
    if uploaded.is_empty() {
        return Err(ApiError::bad_request(
            "NO_FILES",
            "no metadata files uploaded (multipart field \"files\", filename = role name)",
        ));
    }
    let mut store = Vec::new();

    // Root: exactly +1, signed by the previous root's threshold and its own.
    let stored_root = current
        .get("root")
        .map(|f| parse::<Root>("root", &f.bytes))
        .transpose()
        .map_err(|e| ApiError::internal(format!("stored root does not parse: {}", e.message)))?;
    let root = match (uploaded.remove("root"), stored_root) {
        (Some(bytes), previous) => {
            let new = parse::<Root>("root", &bytes)?;
            check_distinct_keys("root", "keys", &new.signed.keys)?;
            check_version(
                "root",
                new.signed.version,
                previous.as_ref().map(|r| r.signed.version),
            )?;
            if let Some(previous) = &previous {
                previous
                    .signed
                    .verify_role("root", &new)
                    .map_err(|e| signature_error("root", e))?;
            }
            new.signed
                .verify_role("root", &new)
                .map_err(|e| signature_error("root", e))?;
            check_expiry("root", new.signed.expires, now)?;
            store.push(("root".to_string(), new.signed.version, bytes));
            new
        }
        (None, Some(previous)) => previous,
        (None, None) => {
            return Err(ApiError::invalid_role(
                "MISSING_ROLE",
                "root",
                "the first publish of a repository must include root and targets",
            ))
        }
    };
    let root_uploaded = store.iter().any(|(r, _, _)| r == "root");

    // Effective targets roles: stored, overridden by what is uploaded.
    let mut effective: BTreeMap<String, Metadata<Targets>> = BTreeMap::new();
    let mut current_versions: BTreeMap<String, u64> = BTreeMap::new();
    for (role, file) in &current {
        if ONLINE_ROLES.contains(role) || *role == "root" {
            continue;
        }
        let md = parse::<Targets>(role, &file.bytes).map_err(|e| {
            ApiError::internal(format!("stored {role} does not parse: {}", e.message))
        })?;
        current_versions.insert(role.to_string(), md.signed.version);
        effective.insert(role.to_string(), md);
    }
    let mut parsed_uploads: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (role, bytes) in uploaded {
        let md = parse::<Targets>(&role, &bytes)?;
        check_target_names(&role, &md)?;
        if let Some(delegations) = &md.signed.delegations {
            check_distinct_keys(&role, "delegations", &delegations.keys)?;
        }
        check_version(
            &role,
            md.signed.version,
            current_versions.get(&role).copied(),
        )?;
        check_expiry(&role, md.signed.expires, now)?;
        effective.insert(role.clone(), md);
        parsed_uploads.insert(role, bytes);
    }

    // Top-level targets: signed per the (new) root.
    match (
        parsed_uploads.contains_key("targets"),
        effective.get("targets"),
    ) {
        (_, None) => {
            return Err(ApiError::invalid_role(
                "MISSING_ROLE",
                "targets",
                "the first publish of a repository must include root and targets",
            ))
        }
        (true, Some(targets)) => {
            root.signed
                .verify_role("targets", targets)
                .map_err(|e| signature_error("targets", e))?;
        }
        (false, Some(targets)) if root_uploaded => {
            // Clients check targets against the newest root: refuse a root
            // that would orphan the stored targets.
            root.signed.verify_role("targets", targets).map_err(|e| {
                ApiError::invalid_role(
                    "SIGNATURE",
                    "targets",
                    format!(
                        "the current targets is not signed by the new root's targets keys ({e}); \
                         upload targets re-signed with them in the same publish"
                    ),
                )
            })?;
        }
        (false, Some(_)) => {}
    }

    // Delegated roles: signed per their delegator, targets within every
    // delegation on the way from top-level targets.
    for role in parsed_uploads.keys().filter(|r| *r != "targets") {
        // A role name delegated from two places could be verified against
        // the weaker delegator and then served where the stronger one is
        // trusted: tagtrust requires each delegated name to be unique.
        let (delegator, chain) = match find_delegators(&effective, role).as_slice() {
            [] => {
                return Err(ApiError::invalid_role(
                    "UNKNOWN_ROLE",
                    role,
                    format!("no targets role delegates to {role}"),
                ))
            }
            [one] => one.clone(),
            many => {
                let delegators: Vec<&str> = many.iter().map(|(d, _)| d.as_str()).collect();
                return Err(ApiError::invalid_role(
                    "AMBIGUOUS_DELEGATION",
                    role,
                    format!(
                        "{role} is delegated by more than one role ({}); delegated role names must be unique",
                        delegators.join(", ")
                    ),
                ));
            }
        };
        let delegations = effective[&delegator]
            .signed
            .delegations
            .as_ref()
            .expect("find_delegators returns roles with delegations");
        let md = &effective[role];
        delegations
            .verify_delegate(role, md)
            .map_err(|e| signature_error(role, e))?;
        for target in md.signed.targets.keys() {
            if !chain.iter().all(|hop| hop.allows(target)) {
                return Err(ApiError::bad_request(
                    "PATH_NOT_DELEGATED",
                    format!("{role} may not sign {target:?}: outside the paths delegated to it"),
                )
                .with_detail(json!({ "role": role, "target": target })));
            }
        }
    }
    check_unique_delegations(&effective, &parsed_uploads.keys().cloned().collect())?;
    for (role, bytes) in parsed_uploads {
        let version = effective[&role].signed.version;
        store.push((role, version, bytes));
    }

    // Snapshot: every targets role as it will be after this publish.
    let mut snapshot_meta = BTreeMap::new();
    for role in effective.keys() {
        let bytes = store
            .iter()
            .find(|(r, _, _)| r == role)
            .map(|(_, _, b)| b.as_slice())
            .or_else(|| current.get(role.as_str()).map(|f| f.bytes.as_slice()))
            .expect("an effective role is stored or uploaded");
        snapshot_meta.insert(
            format!("{role}.json"),
            MetaFile::describing(effective[role].signed.version, bytes),
        );
    }
    let next = |role: &str| current.get(role).map_or(1, |f| f.version + 1);
    Ok(Plan {
        store,
        root,
        snapshot_meta,
        snapshot_version: next("snapshot"),
        timestamp_version: next("timestamp"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_check_ignores_brackets_in_strings() {
        assert!(!json_depth_exceeds(br#"{"a":"[[[[[[[[[["}"#, 2));
        assert!(json_depth_exceeds(b"[[[1]]]", 2));
        assert!(!json_depth_exceeds(b"[[1],[2]]", 2));
        assert!(!json_depth_exceeds(br#"{"a\"[[[":1}"#, 1));
    }

    #[test]
    fn filenames() {
        assert_eq!(role_from_filename("targets.json").unwrap(), "targets");
        assert_eq!(role_from_filename("ci-robot").unwrap(), "ci-robot");
        for bad in ["timestamp", "snapshot.json", "../x", "", ".json", "a/b"] {
            assert!(role_from_filename(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        check_version("targets", 1, None).unwrap();
        check_version("targets", 3, Some(2)).unwrap();
        assert_eq!(
            check_version("targets", 2, Some(2)).unwrap_err().status,
            409
        );
        assert_eq!(
            check_version("targets", 4, Some(2)).unwrap_err().status,
            400
        );
    }
}
