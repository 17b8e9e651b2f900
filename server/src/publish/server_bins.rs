//! Hashed bins whose key the server holds (`bins.key`; PEP 458 and RSTUF
//! hold bin keys online this way for registries that publish
//! continuously). The publisher's offline-signed targets delegates the bins
//! to the server's bin key; the server then creates every bin itself, and
//! changes tags on a `push:` token (`POST /v2/{gun}/_trust/tags`) by
//! signing the touched bins. Pure like [`super::plan`]: current files and
//! a request in, the bins to sign (unsigned) or a [`Refusal`] out.

use super::{Check, CurrentRepository, Plan, Refusal, TARGETS};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use tagtrust_shared::bins::{claimed_before_bins, hashed_bins, BinForm, TagChanges, BIN_PREFIX};
use tagtrust_shared::{
    Delegations, MetaFile, Metadata, PublicKey, Root, SuccinctRoles, TargetFile, Targets,
};

/// The most bins the server creates and signs for one repository, all in
/// the enabling publish's transaction (publishers holding the bin key may
/// enable up to 16,384, which they sign and upload themselves).
pub const MAX_SERVER_BINS: u64 = 1024;

/// Bins a targets role delegates to exactly one of the server's bin keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBins {
    pub bins: SuccinctRoles,
    pub form: BinForm,
    /// The key ID the delegation lists the server's key under (the bins'
    /// signatures carry it).
    pub key_id: String,
    pub key: PublicKey,
}

/// One bin for the server to sign: its role name and new metadata.
#[derive(Debug, Clone)]
pub struct NewBin {
    pub role: String,
    pub targets: Targets,
}

fn refuse(role: &str, check: Check, reason: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        role: role.to_string(),
        check,
        reason: reason.into(),
    }
}

fn server_bins_error(reason: impl Into<String>) -> Refusal {
    refuse(TARGETS, Check::ServerBins, reason)
}

/// The bins of `targets` if it delegates them to the server: `None` when
/// no delegation of it names any of `server_keys`. Everything a consumer
/// relies on is checked, as any shortcut here would let the server sign
/// what the publisher never delegated: the delegation names exactly one
/// key, a server key, with threshold 1; the bins are 2 to
/// [`MAX_SERVER_BINS`] (a power of two) named `bins-…`, in either form; and
/// no other role is delegated to the server's key.
pub fn held_bins(
    targets: &Targets,
    server_keys: &[PublicKey],
) -> Result<Option<HeldBins>, Refusal> {
    let Some(delegations) = &targets.delegations else {
        return Ok(None);
    };
    let is_server_key = |id: &String| {
        delegations
            .keys
            .get(id)
            .is_some_and(|k| server_keys.iter().any(|s| s.same_key(k)))
    };
    if !delegations.keys.keys().any(is_server_key) {
        return Ok(None);
    }
    let Some((bins, form)) = hashed_bins(targets, MAX_SERVER_BINS) else {
        return Err(server_bins_error(format!(
            "targets delegates to the server's bin key, but not as 2 to {MAX_SERVER_BINS} hashed bins \
             (a power of two, succinct_roles or path_hash_prefixes roles)"
        )));
    };
    let count = 1u64.checked_shl(bins.bit_length).unwrap_or(u64::MAX);
    if bins.name_prefix != BIN_PREFIX || !(2..=MAX_SERVER_BINS).contains(&count) {
        return Err(server_bins_error(format!(
            "server-held bins must be 2 to {MAX_SERVER_BINS} bins named {BIN_PREFIX}-…"
        )));
    }
    let [key_id] = bins.keyids.as_slice() else {
        return Err(server_bins_error(
            "server-held bins must be delegated to exactly one key, the server's bin key",
        ));
    };
    if bins.threshold != 1 || !is_server_key(key_id) {
        return Err(server_bins_error(
            "server-held bins must be delegated to the server's bin key alone, with threshold 1",
        ));
    }
    let other = delegations
        .roles()
        .iter()
        .find(|r| !delegations.is_bin(&r.name) && r.keyids.iter().any(is_server_key));
    if let Some(other) = other {
        return Err(server_bins_error(format!(
            "{} is delegated to the server's bin key: only the bins may be",
            other.name
        )));
    }
    Ok(Some(HeldBins {
        key: delegations.keys[key_id].clone(),
        key_id: key_id.clone(),
        bins,
        form,
    }))
}

/// The same bins (count, names, key and form)?
fn same_bins(a: &Targets, b: &HeldBins) -> bool {
    hashed_bins(a, MAX_SERVER_BINS).is_some_and(|(bins, form)| {
        form == b.form
            && bins.bit_length == b.bins.bit_length
            && bins.name_prefix == b.bins.name_prefix
            && bins.keyids == b.bins.keyids
            && bins.threshold == b.bins.threshold
    })
}

/// The next version of `role` (1 for a role never stored).
fn next_version(current: &CurrentRepository, role: &str) -> u64 {
    current
        .roles
        .get(role)
        .map_or(1, |r| r.metadata.signed.version + 1)
}

/// What a verified signed publish (`plan`, already made) adds when its
/// targets newly delegates the bins to the server: every bin, created by
/// the server in the same publish, holding the tags of the targets version
/// being replaced (which the server verified when it was published), so
/// consumers never see a repository without its tags. `plan`'s snapshot
/// meta gains the bins. `None`: the publish leaves the bins as they are.
///
/// Refused: a publish uploading a bin the server signs; re-binning a
/// repository that already has bins (locally or server-held) into new
/// server-held ones; a new targets that signs tags itself (they belong in
/// the bins); a moved tag that a delegation listed before the bins claims.
pub fn bins_for_publish(
    current: &CurrentRepository,
    plan: &mut Plan,
    server_keys: &[PublicKey],
    expires: DateTime<Utc>,
) -> Result<Option<(HeldBins, Vec<NewBin>)>, Refusal> {
    let old = current.roles.get(TARGETS).map(|r| &r.metadata.signed);
    // As `plan` parsed it, not parsed again (1.8 MB at 10,000 tags).
    let uploaded = plan.parsed.get(TARGETS);
    let new = uploaded.map(|m| &m.signed).or(old);
    let Some(held) = new
        .map(|t| held_bins(t, server_keys))
        .transpose()?
        .flatten()
    else {
        return Ok(None);
    };
    if let Some((role, _, _)) = plan.store.iter().find(|(r, _, _)| held.bins.is_bin(r)) {
        return Err(refuse(
            role,
            Check::NotUploadable,
            format!("{role} is a bin signed by the server; change its tags with POST /_trust/tags"),
        ));
    }
    let Some(new) = uploaded.map(|m| &m.signed) else {
        return Ok(None);
    };
    if old.is_some_and(|old| same_bins(old, &held)) {
        // Targets re-signed (expiry, other delegations); the bins stay.
        return Ok(None);
    }
    if old.is_some_and(|old| hashed_bins(old, MAX_SERVER_BINS).is_some()) {
        return Err(server_bins_error(
            "the repository already has hashed bins; re-binning them into new server-held bins is not supported",
        ));
    }
    if let Some(tag) = new.targets.keys().next() {
        return Err(server_bins_error(format!(
            "a targets delegating to server-held bins must sign no tags itself ({tag:?}): \
             the server moves the current tags into the bins"
        )));
    }
    let delegations = new.delegations.as_ref().expect("held bins are delegated");
    let moved = old.map(|t| &t.targets);
    let mut bins: BTreeMap<String, Targets> = held
        .bins
        .bin_names()
        .map(|name| {
            let version = next_version(current, &name);
            (name, Targets::new(version, expires))
        })
        .collect();
    for (tag, file) in moved.into_iter().flatten() {
        check_unclaimed(delegations, None, tag)?;
        let bin = bins
            .get_mut(&held.bins.role_for_target(tag))
            .expect("every bin is listed");
        bin.targets.insert(tag.clone(), file.clone());
    }
    for (role, bin) in &bins {
        plan.snapshot_meta
            .insert(format!("{role}.json"), MetaFile::version_only(bin.version));
    }
    let bins = bins
        .into_iter()
        .map(|(role, targets)| NewBin { role, targets })
        .collect();
    Ok(Some((held, bins)))
}

/// A tag may go into a bin only if neither the top-level targets (`own`
/// tags, searched first) nor a delegation listed before the bins claims it.
fn check_unclaimed(
    delegations: &Delegations,
    own: Option<&BTreeMap<String, TargetFile>>,
    tag: &str,
) -> Result<(), Refusal> {
    let claimed_by = if own.is_some_and(|t| t.contains_key(tag)) {
        Some(TARGETS.to_string())
    } else {
        claimed_before_bins(delegations, tag).map(|r| r.name.clone())
    };
    match claimed_by {
        None => Ok(()),
        Some(role) => Err(refuse(
            &role,
            Check::TagClaimed {
                target: tag.to_string(),
            },
            format!(
                "{tag:?} is within the paths of {role}, which clients search before the bins: \
                 a bin's {tag:?} would never be found; change it through {role}"
            ),
        )),
    }
}

/// The bins of `targets` (if it has any) that `changes` touches: what a
/// tag change needs of the repository besides root and targets.
pub fn touched_bins(targets: &Targets, changes: &TagChanges) -> BTreeSet<String> {
    let Some((bins, _)) = hashed_bins(targets, MAX_SERVER_BINS) else {
        return BTreeSet::new();
    };
    changes
        .set
        .keys()
        .chain(&changes.remove)
        .map(|tag| bins.role_for_target(tag))
        .collect()
}

/// What a tag change signs: the touched bins at their next versions, the
/// snapshot meta and versions after them.
#[derive(Debug)]
pub struct TagPlan {
    pub held: HeldBins,
    pub bins: Vec<NewBin>,
    pub root: Metadata<Root>,
    pub snapshot_meta: BTreeMap<String, MetaFile>,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
}

/// A target entry the server will sign for a tag: `sha256` of 64
/// lower-case hex as the only hash, a length of at least 1, `custom` an
/// object if present, nothing else.
fn check_target(tag: &str, file: &TargetFile) -> Result<(), Refusal> {
    let bad = |reason: String| {
        refuse(
            tag,
            Check::InvalidTarget {
                target: tag.to_string(),
            },
            format!("{tag}: {reason}"),
        )
    };
    let hex_ok = |h: &String| h.len() == 64 && tagtrust_shared::hashes::is_lower_hex(h);
    match file.hashes.get("sha256") {
        Some(h) if file.hashes.len() == 1 && hex_ok(h) => {}
        _ => {
            return Err(bad(
                "hashes must be exactly {\"sha256\": <64 lower-case hex>}".into(),
            ))
        }
    }
    if file.length == 0 {
        return Err(bad(
            "length must be at least 1 (the manifest's size in bytes)".into(),
        ));
    }
    if file.custom.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(bad("custom must be a JSON object".into()));
    }
    if let Some(field) = file.extra.keys().next() {
        return Err(bad(format!(
            "unknown field {field:?} (length, hashes, custom)"
        )));
    }
    Ok(())
}

fn check_tag_name(tag: &str) -> Result<(), Refusal> {
    tagtrust_shared::reference::validate_tag(tag).map_err(|_| {
        let shown: String = tag.chars().take(300).collect();
        refuse(
            &shown,
            Check::TargetName {
                target: shown.clone(),
            },
            format!(
                "{shown:?} is not a valid OCI tag \
                 (1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-')"
            ),
        )
    })
}

/// Plan `changes` to the server-held bins of `current`: each set tag put
/// into (each removed tag taken out of) its bin, every touched bin at its
/// next version expiring at `expires`, then the snapshot and timestamp
/// after them. At most `max_changes` tags. Refused (nothing changes): a
/// repository not published, or whose bins the server does not hold (a
/// conflict: its publisher signs bins locally); no changes or too many; a
/// bad tag name or target; a tag both set and removed; removing a tag its
/// bin does not hold; setting a tag the top-level targets or a delegation
/// listed before the bins claims.
///
/// `current` need hold only root, targets and the bins the change touches
/// ([`touched_bins`]): a tag change changes nothing but bins, so the new
/// snapshot is `snapshot_meta` (the current snapshot's) with the touched
/// bins' versions, and a repository of 1,024 bins is not parsed whole for
/// one tag.
pub fn plan_tag_changes(
    current: &CurrentRepository,
    snapshot_meta: &BTreeMap<String, MetaFile>,
    server_keys: &[PublicKey],
    changes: &TagChanges,
    max_changes: usize,
    expires: DateTime<Utc>,
) -> Result<TagPlan, Refusal> {
    let (Some(root), Some(targets)) = (&current.root, current.roles.get(TARGETS)) else {
        return Err(refuse(
            TARGETS,
            Check::Missing,
            "the repository is not published yet",
        ));
    };
    let targets = &targets.metadata.signed;
    let Some(held) = held_bins(targets, server_keys)? else {
        return Err(refuse(
            TARGETS,
            Check::NotServerHeld,
            "the bins of this repository are not held by the server (it has none, or its publisher \
             holds the bin key): sign tag changes with the bin key instead",
        ));
    };
    if changes.is_empty() {
        return Err(refuse(
            TARGETS,
            Check::NoChanges,
            "no tags to set or remove",
        ));
    }
    if changes.len() > max_changes {
        return Err(refuse(
            TARGETS,
            Check::TooManyChanges { limit: max_changes },
            format!(
                "{} tag changes in one request; at most {max_changes}",
                changes.len()
            ),
        ));
    }
    let delegations = targets
        .delegations
        .as_ref()
        .expect("held bins are delegated");
    let mut bins: BTreeMap<String, Targets> = BTreeMap::new();
    // The bin `tag` hashes into, as stored (loaded once).
    fn bin_of<'b>(
        bins: &'b mut BTreeMap<String, Targets>,
        held: &HeldBins,
        current: &CurrentRepository,
        tag: &str,
    ) -> &'b mut Targets {
        use std::collections::btree_map::Entry;
        match bins.entry(held.bins.role_for_target(tag)) {
            Entry::Occupied(bin) => bin.into_mut(),
            Entry::Vacant(bin) => {
                let stored = current
                    .roles
                    .get(bin.key())
                    .map(|r| r.metadata.signed.clone());
                // A bin never stored starts before version 1.
                bin.insert(stored.unwrap_or_else(|| Targets::new(0, Utc::now())))
            }
        }
    }
    for (tag, file) in &changes.set {
        check_tag_name(tag)?;
        check_target(tag, file)?;
        check_unclaimed(delegations, Some(&targets.targets), tag)?;
        bin_of(&mut bins, &held, current, tag)
            .targets
            .insert(tag.clone(), file.clone());
    }
    let mut removed = BTreeSet::new();
    for tag in &changes.remove {
        check_tag_name(tag)?;
        if changes.set.contains_key(tag) || !removed.insert(tag) {
            return Err(refuse(
                tag,
                Check::DuplicateTag {
                    target: tag.clone(),
                },
                format!("{tag:?} is changed twice in one request"),
            ));
        }
        if bin_of(&mut bins, &held, current, tag)
            .targets
            .remove(tag)
            .is_none()
        {
            return Err(refuse(
                tag,
                Check::UnknownTag {
                    target: tag.clone(),
                },
                format!("{tag:?} is not signed by its bin, so it cannot be removed"),
            ));
        }
    }
    for bin in bins.values_mut() {
        bin.version += 1;
        bin.expires = expires;
    }
    let mut snapshot_meta = snapshot_meta.clone();
    for (role, bin) in &bins {
        snapshot_meta.insert(format!("{role}.json"), MetaFile::version_only(bin.version));
    }
    let next = |version: Option<u64>| version.map_or(1, |v| v + 1);
    Ok(TagPlan {
        root: root.clone(),
        bins: bins
            .into_iter()
            .map(|(role, targets)| NewBin { role, targets })
            .collect(),
        held,
        snapshot_meta,
        snapshot_version: next(current.snapshot_version),
        timestamp_version: next(current.timestamp_version),
    })
}

#[cfg(test)]
mod tests {
    //! One test per refusal of the tag-change planning, and the bins a
    //! signed publish makes the server create.

    use super::*;
    use crate::publish::{plan, snapshot_entry, Upload};
    use chrono::Duration;
    use tagtrust_shared::{DelegatedRole, SigningKey};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed(&[n; 32]).unwrap()
    }
    const ROOT: u8 = 1;
    const TARGETS_KEY: u8 = 2;
    const ONLINE: u8 = 3;
    const SERVER_BINS: u8 = 4;
    const LOCAL_BINS: u8 = 5;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn later() -> DateTime<Utc> {
        now() + Duration::days(365)
    }

    fn root() -> Vec<u8> {
        let mut r = Root::new(later());
        r.add_key("root", key(ROOT).public_key());
        r.add_key("targets", key(TARGETS_KEY).public_key());
        r.add_key("snapshot", key(ONLINE).public_key());
        r.add_key("timestamp", key(ONLINE).public_key());
        let mut md = Metadata::new(r).unwrap();
        md.sign(&key(ROOT));
        md.to_bytes()
    }

    fn target(n: u8) -> TargetFile {
        TargetFile {
            length: 10,
            hashes: [("sha256".to_string(), format!("{n:02x}").repeat(32))].into(),
            custom: None,
            extra: Default::default(),
        }
    }

    fn succinct(bin_key: &SigningKey, bit_length: u32) -> SuccinctRoles {
        SuccinctRoles {
            keyids: vec![bin_key.key_id()],
            threshold: 1,
            bit_length,
            name_prefix: BIN_PREFIX.into(),
            extra: Default::default(),
        }
    }

    /// Targets at `version` with `tags`, delegating 4 bins to `bin_key`
    /// (none without one), after the explicit `before` roles in the
    /// path-hash-prefixes form when there are any.
    fn targets(
        version: u64,
        tags: &[&str],
        bin_key: Option<&SigningKey>,
        before: &[DelegatedRole],
    ) -> Targets {
        let mut t = Targets::new(version, later());
        for (n, tag) in tags.iter().enumerate() {
            t.targets.insert(tag.to_string(), target(n as u8));
        }
        if let Some(bin_key) = bin_key {
            let bins = succinct(bin_key, 2);
            let mut keys = BTreeMap::from([(bin_key.key_id(), bin_key.public_key())]);
            let (roles, succinct_roles) = if before.is_empty() {
                (None, Some(bins))
            } else {
                let mut roles = before.to_vec();
                for r in before {
                    keys.insert(r.keyids[0].clone(), key(9).public_key());
                }
                roles.extend(bins.bin_names().filter_map(|n| bins.as_delegated_role(&n)));
                (Some(roles), None)
            };
            t.delegations = Some(Delegations {
                keys,
                roles,
                succinct_roles,
                extra: Default::default(),
            });
        }
        t
    }

    /// Server-held targets v2 with its succinct bins changed by `change`.
    fn with_succinct(change: impl FnOnce(&mut SuccinctRoles)) -> Targets {
        let mut t = targets(2, &[], Some(&key(SERVER_BINS)), &[]);
        change(
            t.delegations
                .as_mut()
                .unwrap()
                .succinct_roles
                .as_mut()
                .unwrap(),
        );
        t
    }

    fn signed(t: Targets, by: &SigningKey) -> Vec<u8> {
        let mut md = Metadata::new(t).unwrap();
        md.sign(by);
        md.to_bytes()
    }

    fn release_role() -> DelegatedRole {
        DelegatedRole {
            name: "release".into(),
            keyids: vec![key(9).key_id()],
            threshold: 1,
            terminating: false,
            paths: Some(vec!["1.*".into()]),
            path_hash_prefixes: None,
            extra: Default::default(),
        }
    }

    /// A published repository: root, `targets`, and its 4 bins holding
    /// `binned` tags, all as the server stores them.
    fn repository(targets_md: Targets, binned: &[&str]) -> CurrentRepository {
        let bin_key = key(SERVER_BINS);
        let bins = succinct(&bin_key, 2);
        let mut files: Vec<(String, u64, Vec<u8>)> = vec![
            ("root".into(), 1, root()),
            (
                "targets".into(),
                targets_md.version,
                signed(targets_md, &key(TARGETS_KEY)),
            ),
        ];
        for name in bins.bin_names() {
            let mut bin = Targets::new(1, later());
            for tag in binned.iter().filter(|t| bins.role_for_target(t) == name) {
                bin.targets.insert(tag.to_string(), target(7));
            }
            files.push((name, 1, signed(bin, &bin_key)));
        }
        files.push(("snapshot".into(), 3, Vec::new()));
        files.push(("timestamp".into(), 5, Vec::new()));
        CurrentRepository::from_files(files.iter().map(|(r, v, b)| (r.as_str(), *v, &b[..])))
            .unwrap()
    }

    /// The snapshot meta the server would have signed for `current`.
    fn meta(current: &CurrentRepository) -> BTreeMap<String, MetaFile> {
        let bins = succinct(&key(SERVER_BINS), 2);
        current
            .roles
            .iter()
            .map(|(role, file)| {
                let version = file.metadata.signed.version;
                let entry = snapshot_entry(bins.is_bin(role), version, &file.bytes);
                (format!("{role}.json"), entry)
            })
            .collect()
    }

    fn server_keys() -> Vec<PublicKey> {
        vec![key(SERVER_BINS).public_key()]
    }

    fn set(tags: &[(&str, TargetFile)]) -> TagChanges {
        TagChanges {
            set: tags
                .iter()
                .map(|(t, f)| (t.to_string(), f.clone()))
                .collect(),
            remove: Vec::new(),
        }
    }

    fn refused(current: &CurrentRepository, changes: &TagChanges) -> Check {
        match plan_tag_changes(current, &meta(current), &server_keys(), changes, 3, later()) {
            Err(Refusal::Invalid { check, .. }) => check,
            other => panic!("not refused: {other:?}"),
        }
    }

    fn held_repository() -> CurrentRepository {
        repository(targets(2, &[], Some(&key(SERVER_BINS)), &[]), &["old"])
    }

    #[test]
    fn a_change_signs_only_the_touched_bin_at_its_next_version() {
        let current = held_repository();
        let plan = plan_tag_changes(
            &current,
            &meta(&current),
            &server_keys(),
            &set(&[("new", target(1))]),
            3,
            later(),
        )
        .unwrap();
        let bins = succinct(&key(SERVER_BINS), 2);
        assert_eq!(plan.bins.len(), 1);
        assert_eq!(plan.bins[0].role, bins.role_for_target("new"));
        assert_eq!(plan.bins[0].targets.version, 2);
        assert_eq!(plan.bins[0].targets.targets["new"], target(1));
        assert_eq!(plan.held.key_id, key(SERVER_BINS).key_id());
        assert_eq!((plan.snapshot_version, plan.timestamp_version), (4, 6));
        let changed: Vec<_> = plan
            .snapshot_meta
            .iter()
            .filter(|(_, m)| m.version != 1)
            .map(|(f, _)| f.as_str())
            .collect();
        assert_eq!(
            changed,
            [format!("{}.json", plan.bins[0].role), "targets.json".into()]
        );
        // Removing a tag the bin holds.
        let remove = TagChanges {
            set: BTreeMap::new(),
            remove: vec!["old".into()],
        };
        let plan = plan_tag_changes(
            &current,
            &meta(&current),
            &server_keys(),
            &remove,
            3,
            later(),
        )
        .unwrap();
        assert!(plan.bins[0].targets.targets.is_empty());
    }

    #[test]
    fn not_published() {
        let current = CurrentRepository::default();
        assert_eq!(refused(&current, &set(&[("a", target(1))])), Check::Missing);
    }

    #[test]
    /// 409 over HTTP (`server_bins::hostile_tag_changes_are_refused_and_change_nothing`).
    fn bins_held_locally_or_none_are_a_conflict() {
        for current in [
            repository(targets(2, &[], Some(&key(LOCAL_BINS)), &[]), &[]),
            repository(targets(2, &["a"], None, &[]), &[]),
        ] {
            assert_eq!(
                refused(&current, &set(&[("a", target(1))])),
                Check::NotServerHeld
            );
        }
    }

    #[test]
    fn bins_delegated_to_the_server_key_with_others_are_refused() {
        let mut t = targets(2, &[], Some(&key(SERVER_BINS)), &[]);
        let d = t.delegations.as_mut().unwrap();
        let other = key(LOCAL_BINS);
        d.keys.insert(other.key_id(), other.public_key());
        d.succinct_roles
            .as_mut()
            .unwrap()
            .keyids
            .push(other.key_id());
        assert_eq!(
            refused(&repository(t, &[]), &set(&[("a", target(1))])),
            Check::ServerBins
        );
        // Threshold other than 1.
        let t = with_succinct(|s| s.threshold = 2);
        assert!(held_bins(&t, &server_keys()).is_err());
        // Another prefix.
        let t = with_succinct(|s| s.name_prefix = "x".into());
        assert!(held_bins(&t, &server_keys()).is_err());
        // Too many bins.
        let t = with_succinct(|s| s.bit_length = 11);
        assert!(held_bins(&t, &server_keys()).is_err());
    }

    #[test]
    fn no_changes_or_too_many() {
        let current = held_repository();
        assert_eq!(refused(&current, &TagChanges::default()), Check::NoChanges);
        let many: Vec<(String, TargetFile)> =
            (0..4).map(|n| (format!("t{n}"), target(1))).collect();
        let many: Vec<(&str, TargetFile)> =
            many.iter().map(|(t, f)| (t.as_str(), f.clone())).collect();
        assert_eq!(
            refused(&current, &set(&many)),
            Check::TooManyChanges { limit: 3 }
        );
    }

    #[test]
    fn bad_tag_names() {
        let current = held_repository();
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(
                matches!(
                    refused(&current, &set(&[(bad, target(1))])),
                    Check::TargetName { .. }
                ),
                "{bad:?}"
            );
            let remove = TagChanges {
                set: BTreeMap::new(),
                remove: vec![bad.to_string()],
            };
            assert!(matches!(
                refused(&current, &remove),
                Check::TargetName { .. }
            ));
        }
    }

    #[test]
    fn bad_targets() {
        let current = held_repository();
        let with = |f: &dyn Fn(&mut TargetFile)| {
            let mut t = target(1);
            f(&mut t);
            t
        };
        for bad in [
            with(&|t| {
                t.hashes.insert("sha256".into(), "AB".repeat(32));
            }),
            with(&|t| {
                t.hashes.insert("sha256".into(), "ab".repeat(31));
            }),
            with(&|t| {
                t.hashes.insert("sha512".into(), "ab".repeat(64));
            }),
            with(&|t| {
                t.hashes.clear();
            }),
            with(&|t| t.length = 0),
            with(&|t| t.custom = Some(serde_json::json!("text"))),
            with(&|t| {
                t.extra.insert("x".into(), serde_json::json!(1));
            }),
        ] {
            assert_eq!(
                refused(&current, &set(&[("a", bad.clone())])),
                Check::InvalidTarget { target: "a".into() },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn tags_claimed_before_the_bins() {
        // Signed by top-level targets itself.
        let current = repository(targets(2, &["mine"], Some(&key(SERVER_BINS)), &[]), &[]);
        assert_eq!(
            refused(&current, &set(&[("mine", target(1))])),
            Check::TagClaimed {
                target: "mine".into()
            }
        );
        // Within a delegation listed before the bins.
        let current = repository(
            targets(2, &[], Some(&key(SERVER_BINS)), &[release_role()]),
            &[],
        );
        assert_eq!(
            refused(&current, &set(&[("1.5", target(1))])),
            Check::TagClaimed {
                target: "1.5".into()
            }
        );
        plan_tag_changes(
            &current,
            &meta(&current),
            &server_keys(),
            &set(&[("latest", target(1))]),
            3,
            later(),
        )
        .unwrap();
    }

    #[test]
    fn a_tag_twice_or_removing_what_is_not_there() {
        let current = held_repository();
        let both = TagChanges {
            set: BTreeMap::from([("old".to_string(), target(1))]),
            remove: vec!["old".into()],
        };
        assert_eq!(
            refused(&current, &both),
            Check::DuplicateTag {
                target: "old".into()
            }
        );
        let twice = TagChanges {
            set: BTreeMap::new(),
            remove: vec!["old".into(), "old".into()],
        };
        assert_eq!(
            refused(&current, &twice),
            Check::DuplicateTag {
                target: "old".into()
            }
        );
        let absent = TagChanges {
            set: BTreeMap::new(),
            remove: vec!["never".into()],
        };
        assert_eq!(
            refused(&current, &absent),
            Check::UnknownTag {
                target: "never".into()
            }
        );
    }

    /// A repository of root and targets v1 with `tags` and no bins.
    fn unbinned(tags: &[&str], before: &[DelegatedRole]) -> CurrentRepository {
        let mut t = targets(1, tags, None, &[]);
        if !before.is_empty() {
            t.delegations = targets(1, &[], Some(&key(SERVER_BINS)), before).delegations;
            // Only the explicit roles, no bins yet.
            let d = t.delegations.as_mut().unwrap();
            d.roles.as_mut().unwrap().truncate(before.len());
            d.keys.remove(&key(SERVER_BINS).key_id());
        }
        let files = [
            ("root".to_string(), 1, root()),
            ("targets".to_string(), 1, signed(t, &key(TARGETS_KEY))),
        ];
        CurrentRepository::from_files(files.iter().map(|(r, v, b)| (r.as_str(), *v, &b[..])))
            .unwrap()
    }

    fn publish(
        current: &CurrentRepository,
        new: Targets,
    ) -> Result<Option<(HeldBins, Vec<NewBin>)>, Refusal> {
        let uploads = vec![Upload {
            role: "targets".into(),
            bytes: signed(new, &key(TARGETS_KEY)),
        }];
        let mut plan = plan(&mut current.clone(), uploads, now())?;
        let made = bins_for_publish(current, &mut plan, &server_keys(), later())?;
        if let Some((_, bins)) = &made {
            for bin in bins {
                assert_eq!(
                    plan.snapshot_meta[&format!("{}.json", bin.role)],
                    MetaFile::version_only(bin.targets.version)
                );
            }
        }
        Ok(made)
    }

    #[test]
    fn enabling_server_bins_moves_the_verified_tags_into_every_bin() {
        let current = unbinned(&["a", "b", "c"], &[]);
        let (held, bins) = publish(&current, targets(2, &[], Some(&key(SERVER_BINS)), &[]))
            .unwrap()
            .unwrap();
        assert_eq!(held.form, BinForm::Succinct);
        assert_eq!(bins.len(), 4, "every bin, even empty");
        let moved: BTreeSet<&String> = bins.iter().flat_map(|b| b.targets.targets.keys()).collect();
        assert_eq!(moved.len(), 3);
        for bin in &bins {
            assert_eq!(bin.targets.version, 1);
            for tag in bin.targets.targets.keys() {
                assert_eq!(held.bins.role_for_target(tag), bin.role);
            }
        }
        // Re-signing targets with the same bins creates nothing.
        let current = held_repository();
        assert!(
            publish(&current, targets(3, &[], Some(&key(SERVER_BINS)), &[]))
                .unwrap()
                .is_none()
        );
        // Local bins: nothing for the server to make.
        assert!(publish(
            &unbinned(&["a"], &[]),
            targets(2, &[], Some(&key(LOCAL_BINS)), &[])
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn enabling_server_bins_refusals() {
        let check = |r: Result<_, Refusal>| match r {
            Err(Refusal::Invalid { check, .. }) => check,
            other => panic!("not refused: {:?}", other.map(|_| ())),
        };
        // The new targets still signs tags itself.
        let current = unbinned(&["a"], &[]);
        assert_eq!(
            check(publish(
                &current,
                targets(2, &["a"], Some(&key(SERVER_BINS)), &[])
            )),
            Check::ServerBins
        );
        // Re-binning existing bins.
        let current = repository(targets(2, &[], Some(&key(LOCAL_BINS)), &[]), &[]);
        let mut eight = with_succinct(|s| s.bit_length = 3);
        eight.version = 3;
        assert_eq!(check(publish(&current, eight)), Check::ServerBins);
        // A moved tag an earlier delegation claims.
        let current = unbinned(&["1.5"], &[release_role()]);
        assert_eq!(
            check(publish(
                &current,
                targets(2, &[], Some(&key(SERVER_BINS)), &[release_role()])
            )),
            Check::TagClaimed {
                target: "1.5".into()
            }
        );
    }

    #[test]
    fn a_bin_the_server_signs_cannot_be_uploaded() {
        let current = held_repository();
        let bins = succinct(&key(SERVER_BINS), 2);
        let name = bins.bin_name(0);
        let mut bin = Targets::new(2, later());
        bin.targets.insert("x".into(), target(1));
        // Even signed by the right key: the server alone signs its bins.
        let uploads = vec![Upload {
            role: name.clone(),
            bytes: signed(bin, &key(SERVER_BINS)),
        }];
        let mut plan = plan(&mut current.clone(), uploads, now()).unwrap();
        assert!(matches!(
            bins_for_publish(&current, &mut plan, &server_keys(), later()),
            Err(Refusal::Invalid { check: Check::NotUploadable, role, .. }) if role == name
        ));
    }
}
