//! Direct tests of the publish core.

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
    assert!(matches!(
        check_version("targets", 2, Some(2)),
        Err(Refusal::Conflict {
            current_version: 2,
            ..
        })
    ));
    assert!(matches!(
        check_version("targets", 4, Some(2)),
        Err(Refusal::Invalid {
            check: Check::Version {
                current: 2,
                uploaded: 4
            },
            ..
        })
    ));
}

// ---------------------------------------------------------------------------
// plan: one test per refusal, grouped by the check that makes it.

use chrono::Duration;
use tagtrust_shared::{SigningKey, TargetFile};

/// Deterministic keys for the fixture repository.
struct Keys {
    root: SigningKey,
    targets: SigningKey,
    online: SigningKey,
    dev: SigningKey,
    other: SigningKey,
}

fn keys() -> Keys {
    let k = |n: u8| SigningKey::from_seed(&[n; 32]).unwrap();
    Keys {
        root: k(1),
        targets: k(2),
        online: k(3),
        dev: k(4),
        other: k(5),
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

/// A root at `version` trusting `root_key` for root, `targets_key` for
/// targets and the online key for snapshot and timestamp, signed by `signers`.
fn root(
    version: u64,
    root_key: &SigningKey,
    targets_key: &SigningKey,
    signers: &[&SigningKey],
) -> Vec<u8> {
    let k = keys();
    let mut r = Root::new(now() + Duration::days(365));
    r.version = version;
    r.add_key("root", root_key.public_key());
    r.add_key("targets", targets_key.public_key());
    r.add_key("snapshot", k.online.public_key());
    r.add_key("timestamp", k.online.public_key());
    let mut md = Metadata::new(r).unwrap();
    for s in signers {
        md.sign(s);
    }
    md.to_bytes()
}

fn target() -> TargetFile {
    TargetFile {
        length: 1,
        hashes: [("sha256".to_string(), "00".repeat(32))].into(),
        custom: None,
        extra: Default::default(),
    }
}

/// A targets role with `tags`, delegating `delegated` (name, key, paths), signed by `signer`.
fn targets(
    version: u64,
    tags: &[&str],
    delegated: &[(&str, &SigningKey, &str)],
    signer: &SigningKey,
    expires: DateTime<Utc>,
) -> Vec<u8> {
    let mut t = Targets::new(version, expires);
    for tag in tags {
        t.targets.insert(tag.to_string(), target());
    }
    if !delegated.is_empty() {
        let mut d = Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            extra: Default::default(),
        };
        for (name, key, path) in delegated {
            d.keys.insert(key.key_id(), key.public_key());
            d.roles.as_mut().unwrap().push(DelegatedRole {
                name: name.to_string(),
                keyids: vec![key.key_id()],
                threshold: 1,
                terminating: false,
                paths: Some(vec![path.to_string()]),
                path_hash_prefixes: None,
                extra: Default::default(),
            });
        }
        t.delegations = Some(d);
    }
    let mut md = Metadata::new(t).unwrap();
    md.sign(signer);
    md.to_bytes()
}

fn later() -> DateTime<Utc> {
    now() + Duration::days(30)
}

fn up(role: &str, bytes: Vec<u8>) -> Upload {
    Upload {
        role: role.to_string(),
        bytes,
    }
}

/// A repository at version 1: root, targets delegating `dev` (paths `dev-*`), dev.
fn release1() -> CurrentRepository {
    let k = keys();
    let files = [
        ("root", root(1, &k.root, &k.targets, &[&k.root])),
        (
            "targets",
            targets(
                1,
                &["latest"],
                &[("dev", &k.dev, "dev-*")],
                &k.targets,
                later(),
            ),
        ),
        ("dev", targets(1, &["dev-1"], &[], &k.dev, later())),
    ];
    CurrentRepository::from_files(files.iter().map(|(r, b)| (*r, 1, b.as_slice()))).unwrap()
}

fn first_publish() -> Vec<Upload> {
    let k = keys();
    vec![
        up("root", root(1, &k.root, &k.targets, &[&k.root])),
        up("targets", targets(1, &["latest"], &[], &k.targets, later())),
    ]
}

/// The check (or conflict) `plan` refuses with.
fn refusal(current: &CurrentRepository, uploads: Vec<Upload>) -> (String, &'static str) {
    let refused = plan(&mut current.clone(), uploads, now()).expect_err("refused");
    let code = code(&refused);
    match refused {
        Refusal::Conflict { role, .. } | Refusal::Invalid { role, .. } => (role, code),
        Refusal::NoFiles => (String::new(), code),
    }
}

/// A refusal's check code, `CONFLICT` or `NO_FILES`.
fn code(refused: &Refusal) -> &'static str {
    match refused {
        Refusal::Conflict { .. } => "CONFLICT",
        Refusal::Invalid { check, .. } => check.code(),
        Refusal::NoFiles => "NO_FILES",
    }
}

#[test]
fn first_publish_and_next_release_are_accepted() {
    let p = plan(&mut CurrentRepository::default(), first_publish(), now()).unwrap();
    assert_eq!((p.snapshot_version, p.timestamp_version), (1, 1));
    assert_eq!(p.store.len(), 2);
    let k = keys();
    let p = plan(&mut release1(), vec![dev(2, &["dev-2"], &k.dev)], now()).unwrap();
    assert_eq!(p.store[0].1, 2);
    assert_eq!(p.snapshot_meta.len(), 2);
}

/// Assert that `plan` refuses `uploads` onto `current`, naming `role` and `code`.
fn assert_refused(current: &CurrentRepository, uploads: Vec<Upload>, role: &str, code: &str) {
    let (got_role, got_code) = refusal(current, uploads);
    assert_eq!((got_role.as_str(), got_code), (role, code));
}

/// A new version of `dev` with `tags`, signed by `key`.
fn dev(version: u64, tags: &[&str], key: &SigningKey) -> Upload {
    up("dev", targets(version, tags, &[], key, later()))
}

/// A new version of the top-level targets of release 1 (`latest`,
/// delegating `dev`), signed by `signer`, expiring at `expires`.
fn top(version: u64, signer: &SigningKey, expires: DateTime<Utc>) -> Upload {
    let k = keys();
    let delegation = [("dev", &k.dev, "dev-*")];
    up(
        "targets",
        targets(version, &["latest"], &delegation, signer, expires),
    )
}

/// A new root at `version` (root key, targets key, signers).
fn new_root(
    version: u64,
    root_key: &SigningKey,
    targets_key: &SigningKey,
    signer: &SigningKey,
) -> Upload {
    up("root", root(version, root_key, targets_key, &[signer]))
}

/// Release 1 with `targets` delegating `dev` and its sibling `ops`.
fn siblings() -> CurrentRepository {
    let k = keys();
    let mut siblings = release1();
    let sib = targets(
        1,
        &["latest"],
        &[("dev", &k.dev, "dev-*"), ("ops", &k.other, "ops-*")],
        &k.targets,
        later(),
    );
    let stored = siblings.roles.get_mut("targets").unwrap();
    stored.metadata = Metadata::from_bytes(&sib).unwrap();
    stored.bytes = sib;
    siblings
}

fn none() -> CurrentRepository {
    CurrentRepository::default()
}

/// One test per refusal: `name: current, |keys| uploads => (role, check code);`.
macro_rules! refusals {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $current:expr, |$k:pat_param| $uploads:expr => ($role:expr, $code:literal);
    )+) => {$(
        $(#[doc = $doc])*
        #[test]
        fn $name() {
            let uploads = (|$k: &Keys| -> Vec<Upload> { $uploads })(&keys());
            assert_refused(&$current, uploads, $role, $code);
        }
    )+};
}

refusals! {
    // First-publish rules and the shape of an upload.
    nothing_uploaded: none(), |_| vec![] => ("", "NO_FILES");
    first_publish_without_targets: none(), |_| vec![first_publish().remove(0)]
        => ("targets", "MISSING_ROLE");
    first_publish_without_root: none(), |_| vec![first_publish().remove(1)]
        => ("root", "MISSING_ROLE");
    role_uploaded_twice: none(), |_| [first_publish(), vec![first_publish().remove(1)]].concat()
        => ("targets", "DUPLICATE_ROLE");
    online_role_uploaded: release1(), |_| vec![up("snapshot", vec![])]
        => ("snapshot", "ROLE_NOT_UPLOADABLE");
    malformed_metadata: release1(), |_| vec![up("dev", b"{}".to_vec())]
        => ("dev", "MALFORMED_METADATA");

    // Versions.
    same_version_is_a_conflict: release1(), |k| vec![dev(1, &["dev-1"], &k.dev)]
        => ("dev", "CONFLICT");
    older_root_is_a_conflict: release1(), |k| vec![new_root(1, &k.root, &k.targets, &k.root)]
        => ("root", "CONFLICT");
    version_skipped: release1(), |k| vec![top(3, &k.targets, later())] => ("targets", "VERSION");
    first_version_not_1: none(),
        |k| vec![new_root(2, &k.root, &k.targets, &k.root), first_publish().remove(1)]
        => ("root", "VERSION");

    // Signatures and thresholds.
    delegated_role_signed_by_the_wrong_key: release1(), |k| vec![dev(2, &["dev-1"], &k.other)]
        => ("dev", "SIGNATURE");
    targets_signed_by_the_wrong_key: release1(), |k| vec![top(2, &k.other, later())]
        => ("targets", "SIGNATURE");
    unsigned_first_root: none(),
        |k| vec![up("root", root(1, &k.root, &k.targets, &[])), first_publish().remove(1)]
        => ("root", "SIGNATURE");

    // Root rotation.
    root_rotation_without_the_old_roots_threshold: release1(),
        |k| vec![new_root(2, &k.other, &k.targets, &k.other)]
        => ("root", "SIGNATURE");
    root_rotation_without_the_new_roots_threshold: release1(),
        |k| vec![new_root(2, &k.other, &k.targets, &k.root)]
        => ("root", "SIGNATURE");
    root_rotation_orphaning_the_stored_targets: release1(),
        |k| vec![new_root(2, &k.root, &k.other, &k.root)]
        => ("targets", "SIGNATURE");

    // Expiry.
    expired_targets: release1(), |k| vec![top(2, &k.targets, now() - Duration::days(1))]
        => ("targets", "EXPIRED");
    delegated_role_expiring_now: release1(),
        |k| vec![up("dev", targets(2, &["dev-1"], &[], &k.dev, now()))]
        => ("dev", "EXPIRED");

    // Delegations: reachability, paths, target names, unique names.
    undelegated_role: release1(), |k| vec![up("ops", targets(1, &[], &[], &k.dev, later()))]
        => ("ops", "UNKNOWN_ROLE");
    target_outside_the_delegated_paths: release1(), |k| vec![dev(2, &["prod-1"], &k.dev)]
        => ("dev", "PATH_NOT_DELEGATED");
    invalid_target_name: release1(), |k| vec![dev(2, &["-bad"], &k.dev)]
        => ("dev", "INVALID_TARGET_NAME");
    delegated_role_delegates_its_siblings_name: siblings(),
        |k| vec![up("dev", targets(2, &["dev-1"], &[("ops", &k.dev, "dev-*")], &k.dev, later()))]
        => ("dev", "AMBIGUOUS_DELEGATION");
}

/// A delegated role may skip versions (a re-rooted mirror imports an
/// upstream's targets at the upstream's versions), never go back or stay.
#[test]
fn a_delegated_role_may_skip_versions_but_not_repeat_them() {
    let k = keys();
    let p = plan(&mut release1(), vec![dev(7, &["dev-7"], &k.dev)], now()).unwrap();
    assert_eq!(p.store[0].1, 7);
    assert_refused(
        &release1(),
        vec![dev(1, &["dev-1"], &k.dev)],
        "dev",
        "CONFLICT",
    );
}

#[test]
fn role_name_delegated_by_two_roles() {
    let k = keys();
    // ops delegates dev as well as targets does.
    let mut twice = siblings();
    let ops = targets(1, &[], &[("dev", &k.dev, "dev-*")], &k.other, later());
    let metadata = Metadata::from_bytes(&ops).unwrap();
    twice.roles.insert(
        "ops".into(),
        CurrentRole {
            metadata,
            bytes: ops,
        },
    );
    let uploads = vec![dev(2, &["dev-1"], &k.dev)];
    assert_refused(&twice, uploads, "dev", "AMBIGUOUS_DELEGATION");
}

#[test]
fn duplicate_keys_are_refused_in_root_and_delegations() {
    let k = keys();
    let mut r = Root::new(now() + Duration::days(365));
    r.add_key("root", k.root.public_key());
    r.add_key("targets", k.targets.public_key());
    r.add_key("snapshot", k.online.public_key());
    r.add_key("timestamp", k.online.public_key());
    // The root key again under a second ID.
    r.keys.insert("a".repeat(64), k.root.public_key());
    r.roles.get_mut("root").unwrap().keyids.push("a".repeat(64));
    let mut md = Metadata::new(r).unwrap();
    md.sign(&k.root);
    let uploads = vec![up("root", md.to_bytes()), first_publish().remove(1)];
    assert_eq!(
        refusal(&CurrentRepository::default(), uploads),
        ("root".to_string(), "DUPLICATE_KEY")
    );
}

#[test]
fn refusal_names_the_check_and_its_details() {
    let k = keys();
    let err = plan(&mut release1(), vec![dev(2, &["prod-1"], &k.dev)], now()).unwrap_err();
    assert_eq!(
        err,
        Refusal::Invalid {
            role: "dev".into(),
            check: Check::PathNotDelegated {
                target: "prod-1".into()
            },
            reason: "dev may not sign \"prod-1\": outside the paths delegated to it".into(),
        }
    );
}

#[test]
fn corrupt_stored_file_is_not_a_refusal() {
    let e = CurrentRepository::from_files([("targets", 1, &b"{"[..])]).unwrap_err();
    assert_eq!(e.role, "targets");
}

// Hashed bins (TAP 15 succinct roles).

/// A repository whose targets delegate to 4 bins (`bins-0` … `bins-3`)
/// signed by `dev`, each bin at version 1 and empty; and the bin of `tag`.
pub(crate) fn binned(tag: &str) -> (CurrentRepository, String) {
    let k = keys();
    let succinct = tagtrust_shared::SuccinctRoles {
        keyids: vec![k.dev.key_id()],
        threshold: 1,
        bit_length: 2,
        name_prefix: "bins".into(),
        extra: Default::default(),
    };
    let mut t = Targets::new(1, later());
    t.delegations = Some(Delegations {
        keys: [(k.dev.key_id(), k.dev.public_key())].into(),
        roles: None,
        succinct_roles: Some(succinct.clone()),
        extra: Default::default(),
    });
    let mut md = Metadata::new(t).unwrap();
    md.sign(&k.targets);
    let mut files = vec![
        ("root".to_string(), root(1, &k.root, &k.targets, &[&k.root])),
        ("targets".to_string(), md.to_bytes()),
    ];
    for bin in succinct.bin_names() {
        files.push((bin, targets(1, &[], &[], &k.dev, later())));
    }
    let current =
        CurrentRepository::from_files(files.iter().map(|(r, b)| (r.as_str(), 1, b.as_slice())))
            .unwrap();
    (current, succinct.role_for_target(tag))
}

#[test]
fn a_bin_is_accepted_alone_with_the_tags_that_hash_into_it() {
    let k = keys();
    let (mut current, bin) = binned("latest");
    let uploads = vec![up(&bin, targets(2, &["latest"], &[], &k.dev, later()))];
    let p = plan(&mut current, uploads, now()).unwrap();
    assert_eq!(p.store.len(), 1);
    assert_eq!(p.store[0].0, bin);
    // Snapshot lists the bin by version alone, targets with its hashes.
    let listed = &p.snapshot_meta[&format!("{bin}.json")];
    assert_eq!(
        (listed.version, listed.length, &listed.hashes),
        (2, None, &None)
    );
    assert!(p.snapshot_meta["targets.json"].hashes.is_some());
}

#[test]
fn a_bin_signed_by_the_wrong_key() {
    let k = keys();
    let (current, bin) = binned("latest");
    let uploads = vec![up(&bin, targets(2, &["latest"], &[], &k.other, later()))];
    assert_refused(&current, uploads, &bin, "SIGNATURE");
}

#[test]
fn a_tag_in_another_bin() {
    let k = keys();
    let (current, bin) = binned("latest");
    // A tag that hashes into a different bin than `latest`.
    let stray = (0..100)
        .map(|n| format!("t{n}"))
        .find(|t| binned(t).1 != bin)
        .unwrap();
    let uploads = vec![up(&bin, targets(2, &[&stray], &[], &k.dev, later()))];
    assert_refused(&current, uploads, &bin, "PATH_NOT_DELEGATED");
}

/// A snapshot's `meta` listing `roles` at their versions (what
/// `routes::publish::current_tuf` gives [`unread_bins`]).
fn listing_of<'a>(
    roles: impl IntoIterator<Item = (&'a String, u64)>,
) -> BTreeMap<String, MetaFile> {
    roles
        .into_iter()
        .map(|(role, version)| (format!("{role}.json"), MetaFile::version_only(version)))
        .collect()
}

/// The listing of `current`'s roles at their versions.
fn listing_of_roles(current: &CurrentRepository) -> BTreeMap<String, MetaFile> {
    listing_of(
        current
            .roles
            .iter()
            .map(|(role, r)| (role, r.metadata.signed.version)),
    )
}

/// `full` (a binned repository) as a publish of `uploads` reads it when
/// the current snapshot lists `listing`: the roles [`unread_bins`] leaves
/// are not read.
fn narrowed(
    full: &CurrentRepository,
    mut listing: BTreeMap<String, MetaFile>,
    uploads: &[Upload],
) -> CurrentRepository {
    let unread = unread_bins(&full.roles["targets"].metadata, &mut listing, uploads);
    let mut read = full.clone();
    read.roles.retain(|role, _| !unread.contains(role));
    read.unread_bins = unread;
    read
}

/// [`binned`] as a publish of `uploads` reads it: root, targets and what
/// [`unread_bins`] leaves, the other bins by version only.
fn binned_as_read(tag: &str, uploads: &[Upload]) -> (CurrentRepository, String) {
    let (full, bin) = binned(tag);
    (narrowed(&full, listing_of_roles(&full), uploads), bin)
}

#[test]
fn a_bin_publish_plans_the_same_without_reading_the_other_bins() {
    let k = keys();
    let bin = binned("latest").1;
    let uploads = vec![up(&bin, targets(2, &["latest"], &[], &k.dev, later()))];
    let (full, _) = binned("latest");
    let (read, _) = binned_as_read("latest", &uploads);
    // Root and targets are read; the 4 bins are not, the uploaded one too.
    assert_eq!(read.unread_bins.len(), 4);
    assert!(read.unread_bins.contains(&bin));
    let (a, b) = (
        plan(&mut full.clone(), uploads.clone(), now()).unwrap(),
        plan(&mut read.clone(), uploads, now()).unwrap(),
    );
    assert_eq!(a.snapshot_meta, b.snapshot_meta);
    assert_eq!(a.store, b.store);
    // An uploaded bin left unread is checked against its listed version.
    let other = read
        .unread_bins
        .roles()
        .find(|b| *b != bin)
        .unwrap()
        .to_string();
    let stale = vec![up(&other, targets(1, &[], &[], &k.dev, later()))];
    let (read, _) = binned_as_read("latest", &stale);
    assert!(!read.roles.contains_key(&other));
    assert_eq!(refusal(&read, stale), (other, "CONFLICT"));
}

fn uploads_of(bin: &str, k: &Keys) -> Vec<Upload> {
    vec![up(bin, targets(2, &["latest"], &[], &k.dev, later()))]
}

#[test]
fn every_role_is_read_when_targets_is_uploaded() {
    let k = keys();
    let (full, bin) = binned("latest");
    let versions = listing_of(full.roles.keys().map(|role| (role, 1)));
    let mut uploads = uploads_of(&bin, &k);
    assert_eq!(
        unread_bins(
            &full.roles["targets"].metadata,
            &mut versions.clone(),
            &uploads
        )
        .len(),
        4
    );
    uploads.push(top(2, &k.targets, later()));
    let mut all = versions.clone();
    assert!(unread_bins(&full.roles["targets"].metadata, &mut all, &uploads).is_empty());
    assert_eq!(all, versions, "nothing taken out");
    // Explicit delegations leave nothing unread: they are walked.
    let release = release1();
    let mut versions = listing_of([(&"dev".to_string(), 1)]);
    assert!(unread_bins(&release.roles["targets"].metadata, &mut versions, &[]).is_empty());
    assert_eq!(versions.len(), 1, "nothing taken out");
}

#[test]
fn unread_bins_leave_the_other_entries_listed_and_list_bins_by_version_only() {
    let k = keys();
    let (full, bin) = binned("latest");
    let mut listing = listing_of_roles(&full);
    listing.insert(format!("{bin}.json"), MetaFile::describing(7, b"a bin"));
    // Not bins of `bins-0` … `bins-3`: a wider width, a doubled suffix,
    // a delegated role, a file that is no role.
    for name in ["bins-01.json", "bins-1.json.json", "dev.json", "notes.txt"] {
        listing.insert(name.to_string(), MetaFile::version_only(2));
    }
    let unread = unread_bins(
        &full.roles["targets"].metadata,
        &mut listing,
        &uploads_of(&bin, &k),
    );
    assert_eq!(unread.len(), 4);
    assert_eq!(unread.version(&bin), Some(7));
    assert!(unread
        .0
        .values()
        .all(|entry| *entry == MetaFile::version_only(entry.version)));
    let left: Vec<&str> = listing.keys().map(String::as_str).collect();
    assert_eq!(
        left,
        [
            "bins-01.json",
            "bins-1.json.json",
            "dev.json",
            "notes.txt",
            "targets.json"
        ]
    );
}

/// An uploaded bin is checked against the version the snapshot lists when
/// it is left unread, and against the stored one when it is read after
/// all (as when a read role names it).
#[test]
fn an_unread_bin_is_checked_against_its_listed_version() {
    let k = keys();
    let (full, _) = binned("latest");
    let t1 = tag_in("bins-1");
    let upload = || vec![up("bins-1", targets(3, &[&t1], &[], &k.dev, later()))];
    let mut listing = listing_of_roles(&full);
    listing.insert("bins-1.json".to_string(), MetaFile::version_only(5));
    let mut read = narrowed(&full, listing, &upload());
    let refused = plan(&mut read.clone(), upload(), now()).expect_err("listed at 5");
    assert!(
        matches!(&refused, Refusal::Conflict { role, current_version: 5, .. } if role == "bins-1"),
        "{refused:?}"
    );
    read.unread_bins.remove("bins-1");
    read.roles
        .insert("bins-1".to_string(), full.roles["bins-1"].clone());
    let p = plan(&mut read, upload(), now()).expect("stored at 1");
    assert_eq!(p.snapshot_meta["bins-1.json"], MetaFile::version_only(3));
}

/// What a publish keeps of its snapshot for the next one is the `meta` it
/// signed, targets described in full: the next publish planned from that
/// listing lists what a full read lists, and refuses what it refuses.
#[test]
fn a_publish_planned_from_the_last_signed_listing_plans_as_a_full_read() {
    let k = keys();
    let (mut full, _) = binned("latest");
    let (t1, t2) = (tag_in("bins-1"), tag_in("bins-2"));
    let first = plan(
        &mut full.clone(),
        vec![up("bins-1", targets(2, &[&t1], &[], &k.dev, later()))],
        now(),
    )
    .unwrap();
    full.add_files(
        first
            .store
            .iter()
            .map(|(r, v, b)| (r.as_str(), *v, b.as_slice())),
    )
    .unwrap();
    let mut signed = first.snapshot_meta.clone();
    assert!(signed["targets.json"].hashes.is_some());
    signed.insert("notes.txt".to_string(), MetaFile::version_only(1));
    let uploads = || {
        vec![
            up("bins-1", targets(3, &[&t1], &[], &k.dev, later())),
            up("bins-2", targets(2, &[&t2], &[], &k.dev, later())),
        ]
    };
    let read = narrowed(&full, signed.clone(), &uploads());
    assert_eq!(read.unread_bins.len(), 4);
    let (a, b) = (
        plan(&mut full.clone(), uploads(), now()).unwrap(),
        plan(&mut read.clone(), uploads(), now()).unwrap(),
    );
    assert_eq!(a.snapshot_meta, b.snapshot_meta);
    assert_eq!(a.store, b.store);
    assert_eq!(b.snapshot_meta["bins-1.json"], MetaFile::version_only(3));
    assert!(!b.snapshot_meta.contains_key("notes.txt"));
    let again = vec![up("bins-1", targets(2, &[&t1], &[], &k.dev, later()))];
    let read = narrowed(&full, signed, &again);
    assert_eq!(refusal(&read, again), ("bins-1".to_string(), "CONFLICT"));
}

/// A bin the snapshot lists but the store lacks is not read by a publish
/// that leaves it unread, so the new snapshot lists it as before.
#[test]
fn a_listed_bin_missing_from_the_store_stays_listed() {
    let k = keys();
    let (mut sparse, _) = binned("latest");
    let listing = listing_of_roles(&sparse);
    sparse.roles.remove("bins-3");
    let t1 = tag_in("bins-1");
    let uploads = vec![up("bins-1", targets(2, &[&t1], &[], &k.dev, later()))];
    let mut read = narrowed(&sparse, listing, &uploads);
    let p = plan(&mut read, uploads, now()).unwrap();
    assert_eq!(p.snapshot_meta["bins-3.json"], MetaFile::version_only(1));
    assert_eq!(p.snapshot_meta.len(), 5, "targets and the four bins");
}

// The narrowed read (`unread_bins`, as `routes::publish::current_tuf` reads
// a repository for a publish) must plan exactly as the full one.

/// `full` as `current_tuf` reads it for `uploads`: every role the current
/// snapshot lists (`full`'s, at their versions) except the bins
/// [`unread_bins`] leaves, of which those a read role names explicitly are
/// read after all.
fn as_read(full: &CurrentRepository, uploads: &[Upload]) -> CurrentRepository {
    let mut read = match full.roles.get("targets") {
        Some(_) => narrowed(full, listing_of_roles(full), uploads),
        None => full.clone(),
    };
    for name in read.named_unread_bins() {
        read.unread_bins.remove(&name);
        read.roles.insert(name.clone(), full.roles[&name].clone());
    }
    read
}

/// Plan `uploads` onto `full` and onto `full` as read for them, and assert
/// both decide alike: the same refusal, or the same files stored and the
/// same snapshot. Returns the refusal's code (`"OK"` when accepted) and how
/// many bins the narrowed read left unread.
fn same_plan(full: &CurrentRepository, uploads: Vec<Upload>) -> (&'static str, usize) {
    let read = as_read(full, &uploads);
    let (a, b) = (
        plan(&mut full.clone(), uploads.clone(), now()),
        plan(&mut read.clone(), uploads, now()),
    );
    let code = match (&a, &b) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.store, b.store);
            assert_eq!(a.snapshot_meta, b.snapshot_meta);
            assert_eq!(
                (a.snapshot_version, a.timestamp_version, &a.root.signed),
                (b.snapshot_version, b.timestamp_version, &b.root.signed)
            );
            "OK"
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            code(a)
        }
        (a, b) => panic!("full read: {a:?}\nnarrowed read: {b:?}"),
    };
    (code, read.unread_bins.len())
}

/// A top-level targets at `version` delegating `2^bits` succinct bins
/// named `prefix-…` to the dev key, signed by the targets key.
fn succinct_targets(version: u64, bits: u8, prefix: &str) -> Vec<u8> {
    let k = keys();
    let mut t = Targets::new(version, later());
    t.delegations = Some(Delegations {
        keys: [(k.dev.key_id(), k.dev.public_key())].into(),
        roles: None,
        succinct_roles: Some(SuccinctRoles {
            keyids: vec![k.dev.key_id()],
            threshold: 1,
            bit_length: bits.into(),
            name_prefix: prefix.into(),
            extra: Default::default(),
        }),
        extra: Default::default(),
    });
    let mut md = Metadata::new(t).unwrap();
    md.sign(&k.targets);
    md.to_bytes()
}

/// A bin's name is exactly the one TAP 15 gives it: lower-case hex of
/// its width. `bins-0F` and `bins-+f` name no bin (they read as bin 15
/// once, and an empty one was accepted and listed in the snapshot).
#[test]
fn a_bin_name_in_upper_case_or_with_a_sign_is_no_bin() {
    let k = keys();
    let files = [
        ("root", root(1, &k.root, &k.targets, &[&k.root])),
        ("targets", succinct_targets(1, 8, "bins")),
    ];
    let repo =
        CurrentRepository::from_files(files.iter().map(|(r, b)| (*r, 1, b.as_slice()))).unwrap();
    let bin = |name: &str| vec![up(name, targets(1, &[], &[], &k.dev, later()))];
    for stray in ["bins-0F", "bins-+f"] {
        assert_eq!(
            refusal(&repo, bin(stray)),
            (stray.to_string(), "UNKNOWN_ROLE")
        );
    }
    let p = plan(&mut repo.clone(), bin("bins-0f"), now()).expect("bin 15");
    assert!(p.snapshot_meta.contains_key("bins-0f.json"));
}

/// A tag that hashes into `bin` of [`binned`]'s bins.
fn tag_in(bin: &str) -> String {
    (0..1000)
        .map(|n| format!("t{n}"))
        .find(|t| binned(t).1 == bin)
        .unwrap()
}

/// Put `bytes` into `repo` as the current `role`.
fn store(repo: &mut CurrentRepository, role: &str, bytes: Vec<u8>) {
    repo.add_files([(role, 1, bytes.as_slice())]).unwrap();
}

#[test]
fn narrowed_reads_plan_as_full_reads() {
    let k = keys();
    let (full, _) = binned("latest");
    let bin_up = |bin: &str, version: u64, tags: &[&str], key: &SigningKey| {
        up(bin, targets(version, tags, &[], key, later()))
    };
    let t1 = tag_in("bins-1");
    let t2 = tag_in("bins-2");
    // (what, repository, uploads, expected code, bins left unread)
    let mut cases: Vec<(&str, CurrentRepository, Vec<Upload>, &str, usize)> = vec![
        (
            "one bin",
            full.clone(),
            vec![bin_up("bins-1", 2, &[&t1], &k.dev)],
            "OK",
            4,
        ),
        (
            "a bin skipping versions",
            full.clone(),
            vec![bin_up("bins-1", 9, &[&t1], &k.dev)],
            "OK",
            4,
        ),
        (
            "a stale bin",
            full.clone(),
            vec![bin_up("bins-1", 1, &[&t1], &k.dev)],
            "CONFLICT",
            4,
        ),
        (
            "two bins",
            full.clone(),
            vec![
                bin_up("bins-1", 2, &[&t1], &k.dev),
                bin_up("bins-2", 2, &[&t2], &k.dev),
            ],
            "OK",
            4,
        ),
        (
            "a bin's tag in another bin",
            full.clone(),
            vec![bin_up("bins-1", 2, &[&t2], &k.dev)],
            "PATH_NOT_DELEGATED",
            4,
        ),
        (
            "a bin by the wrong key",
            full.clone(),
            vec![bin_up("bins-1", 2, &[&t1], &k.other)],
            "SIGNATURE",
            4,
        ),
        (
            "a bin of a wider width",
            full.clone(),
            vec![bin_up("bins-01", 1, &[], &k.dev)],
            "UNKNOWN_ROLE",
            4,
        ),
        (
            "a bin out of range",
            full.clone(),
            vec![bin_up("bins-4", 1, &[], &k.dev)],
            "UNKNOWN_ROLE",
            4,
        ),
        (
            "a bin delegating a sibling bin",
            full.clone(),
            vec![up(
                "bins-1",
                targets(2, &[&t1], &[("bins-2", &k.dev, "*")], &k.dev, later()),
            )],
            "OK",
            4,
        ),
        (
            "a bin delegating a role",
            full.clone(),
            vec![up(
                "bins-1",
                targets(2, &[&t1], &[("ops", &k.other, "*")], &k.dev, later()),
            )],
            "OK",
            4,
        ),
        (
            "targets re-signed",
            full.clone(),
            vec![up("targets", succinct_targets(2, 2, "bins"))],
            "OK",
            0,
        ),
        (
            "targets re-binned",
            full.clone(),
            vec![
                up("targets", succinct_targets(2, 3, "bins")),
                bin_up("bins-5", 1, &[], &k.dev),
            ],
            "OK",
            0,
        ),
        (
            "targets re-binned under the old names",
            full.clone(),
            vec![
                up("targets", succinct_targets(2, 1, "bins")),
                bin_up("bins-1", 2, &[], &k.dev),
            ],
            "OK",
            0,
        ),
        (
            "root alone",
            full.clone(),
            vec![new_root(2, &k.root, &k.targets, &k.root)],
            "OK",
            4,
        ),
        (
            "root orphaning targets",
            full.clone(),
            vec![new_root(2, &k.root, &k.other, &k.root)],
            "SIGNATURE",
            4,
        ),
    ];
    // Bins not yet made: a first bin upload creates one.
    let mut sparse = full.clone();
    sparse.roles.remove("bins-3");
    let t3 = tag_in("bins-3");
    cases.push((
        "a new bin",
        sparse.clone(),
        vec![bin_up("bins-3", 1, &[&t3], &k.dev)],
        "OK",
        3,
    ));
    cases.push((
        "a new bin, from 2",
        sparse,
        vec![bin_up("bins-3", 2, &[&t3], &k.dev)],
        "OK",
        3,
    ));
    // A stored role no longer delegated that names a bin explicitly (read
    // too), and one a bin delegates: neither is walked, in either read.
    let mut named = full.clone();
    store(
        &mut named,
        "dev",
        targets(1, &[], &[("bins-2", &k.dev, "*")], &k.dev, later()),
    );
    cases.push((
        "a bin a stray role names",
        named.clone(),
        vec![bin_up("bins-2", 2, &[&t2], &k.dev)],
        "OK",
        3,
    ));
    cases.push((
        "another bin beside a named one",
        named.clone(),
        vec![bin_up("bins-1", 2, &[&t1], &k.dev)],
        "OK",
        3,
    ));
    cases.push((
        "the stray role",
        named,
        vec![dev(2, &[], &k.dev)],
        "UNKNOWN_ROLE",
        3,
    ));
    let mut delegating = full.clone();
    store(
        &mut delegating,
        "bins-0",
        targets(1, &[], &[("ops", &k.other, "*")], &k.dev, later()),
    );
    cases.push((
        "a role a bin delegates",
        delegating,
        vec![up("ops", targets(1, &[], &[], &k.other, later()))],
        "UNKNOWN_ROLE",
        4,
    ));
    // Bins of an earlier binning stay listed, with their hashes.
    let mut old = full.clone();
    store(&mut old, "old-0", targets(1, &[], &[], &k.dev, later()));
    cases.push((
        "beside old bins",
        old.clone(),
        vec![bin_up("bins-1", 2, &[&t1], &k.dev)],
        "OK",
        4,
    ));
    cases.push((
        "an old bin",
        old,
        vec![bin_up("old-0", 2, &[], &k.dev)],
        "UNKNOWN_ROLE",
        4,
    ));
    // The same bins in the explicit path_hash_prefixes form: all read.
    let succinct = full.roles["targets"]
        .metadata
        .signed
        .delegations
        .clone()
        .unwrap();
    let bins = succinct.succinct_roles.unwrap();
    let mut t = Targets::new(2, later());
    t.delegations = Some(Delegations {
        keys: succinct.keys,
        roles: Some(
            bins.bin_names()
                .map(|b| bins.as_delegated_role(&b).unwrap())
                .collect(),
        ),
        succinct_roles: None,
        extra: Default::default(),
    });
    let mut md = Metadata::new(t).unwrap();
    md.sign(&k.targets);
    let mut prefixed = full.clone();
    store(&mut prefixed, "targets", md.to_bytes());
    cases.push((
        "a path-hash-prefix bin",
        prefixed.clone(),
        vec![bin_up("bins-1", 2, &[&t1], &k.dev)],
        "OK",
        0,
    ));
    cases.push((
        "a path-hash-prefix bin's stray tag",
        prefixed,
        vec![bin_up("bins-1", 2, &[&t2], &k.dev)],
        "PATH_NOT_DELEGATED",
        0,
    ));
    for (what, repo, uploads, code, unread) in cases {
        assert_eq!(same_plan(&repo, uploads), (code, unread), "{what}");
    }
}
