//! The bodies of tagtrust's fuzz targets, shared by the libFuzzer binaries in
//! `fuzz_targets/` and by `fuzz_targets/gen_corpus.rs`, which writes the seed
//! corpora in `corpus/`.
//!
//! Each target calls the real code (`tagtrust_shared`, the client's
//! `TrustedMetadataSet`, the server's `publish` module) and turns every
//! property it checks into a panic, which libFuzzer reports as a crash:
//! a panic in the code under test, or a verification bypass (metadata the
//! fuzzer made up, without the repository's private keys, accepted as
//! trusted).
//!
//! Multi-file inputs (`trusted_set`, `publish_input`) are one flags byte
//! followed by chunks separated by [`SEP`], so seeds are real metadata files
//! joined together and libFuzzer mutates real JSON.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use tagtrust::trusted::TrustedMetadataSet;
use tagtrust_server::publish::{self, Upload};
use tagtrust_shared::metadata::{self, Role, TOP_LEVEL_ROLES};
use tagtrust_shared::{
    Delegations, ImageReference, MetaFile, Metadata, Root, Snapshot, SuccinctRoles, TargetFile,
    Targets, Timestamp,
};
use tagtrust_simulator::{
    delegated_role, delegations, dup, seeded_key, sign, target_file, Keys, RepositorySimulator,
};

/// Separates the files of a multi-file input.
pub const SEP: &[u8] = b"\n--8<--\n";

/// The server's default `max_json_depth` (server/src/configuration.rs).
pub const MAX_JSON_DEPTH: usize = 64;

/// The fixed reference time of every check: runs are deterministic.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_893_456_000, 0).expect("2030-01-01") // 2030-01-01T00:00:00Z
}

fn expires() -> DateTime<Utc> {
    DateTime::from_timestamp(4_070_908_800, 0).expect("2099-01-01") // 2099-01-01T00:00:00Z
}

fn expired() -> DateTime<Utc> {
    DateTime::from_timestamp(1_577_836_800, 0).expect("2020-01-01") // 2020-01-01T00:00:00Z
}

/// One consistent set of repository files.
#[derive(Clone)]
pub struct Release {
    pub timestamp: Vec<u8>,
    pub snapshot: Vec<u8>,
    pub targets: Vec<u8>,
    pub dev: Vec<u8>,
}

/// A small repository signed with fixed-seed keys: root v1, root v2 (which
/// rotates the timestamp key), release 1 under root v1's keys, release 2
/// under root v2's, and a few more validly signed files (expired ones,
/// version-only snapshot entries, succinct delegations).
pub struct Repo {
    pub root1: Vec<u8>,
    pub root2: Vec<u8>,
    pub release1: Release,
    pub release2: Release,
    /// Release 3 (root v2 keys): snapshot lists targets by version only.
    pub release3: Release,
    /// Validly signed but expired timestamp and snapshot (version 4).
    pub expired_timestamp: Vec<u8>,
    pub expired_snapshot: Vec<u8>,
    /// Targets v1 with succinct hash-bin delegations instead of `dev`.
    pub succinct_targets: Vec<u8>,
    /// Per role, the canonical `signed` bytes of every file signed with the
    /// repository's keys: the only content a trusting party may accept.
    pub valid: BTreeMap<String, BTreeSet<Vec<u8>>>,
}

/// A target entry for an image manifest `content`.
fn manifest(content: &[u8]) -> TargetFile {
    TargetFile {
        custom: Some(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json"
        })),
        ..target_file(content)
    }
}

impl Repo {
    fn build() -> Repo {
        let keys = Keys {
            root: seeded_key(1),
            timestamp: seeded_key(2),
            snapshot: seeded_key(4),
            targets: seeded_key(5),
            delegate: seeded_key(6),
        };
        let mut sim = RepositorySimulator::with_keys(keys, now(), expires(), expires());
        let root1 = sim.roots[0].clone();
        let dev_key = dup(&sim.delegate_key);

        let targets = |sim: &RepositorySimulator, version: u64, succinct: bool| {
            let mut t = Targets::new(version, expires());
            t.targets
                .insert("latest".into(), manifest(format!("m{version}").as_bytes()));
            let dev_role = || {
                delegations(vec![(
                    delegated_role("dev", &dev_key, &["release-*", "dev/*"]),
                    &dev_key,
                )])
            };
            t.delegations = Some(if succinct {
                Delegations {
                    roles: None,
                    succinct_roles: Some(SuccinctRoles {
                        keyids: vec![dev_key.key_id()],
                        threshold: 1,
                        bit_length: 4,
                        name_prefix: "bin".into(),
                        extra: Default::default(),
                    }),
                    ..dev_role()
                }
            } else {
                dev_role()
            });
            sign(t, &[&sim.targets_key])
        };
        let dev = |version: u64| {
            let mut t = Targets::new(version, expires());
            t.targets.insert(
                format!("release-{version}"),
                manifest(format!("r{version}").as_bytes()),
            );
            sign(t, &[&dev_key])
        };
        let release = |sim: &RepositorySimulator, version: u64, version_only: bool| {
            let targets = targets(sim, version, false);
            let dev = dev(version);
            let snapshot = if version_only {
                let mut meta = BTreeMap::new();
                meta.insert(
                    "targets.json".to_string(),
                    MetaFile {
                        version,
                        length: None,
                        hashes: None,
                        extra: Default::default(),
                    },
                );
                meta.insert("dev.json".to_string(), MetaFile::describing(version, &dev));
                sign(
                    Snapshot::new(version, expires(), meta),
                    &[&sim.snapshot_key],
                )
            } else {
                sim.snapshot(version, &[("targets", &targets, version), ("dev", &dev, version)])
            };
            Release {
                timestamp: sim.timestamp(version, &snapshot, version),
                snapshot,
                targets,
                dev,
            }
        };
        // Release 1 under root v1's timestamp key; root v2 rotates it.
        let release1 = release(&sim, 1, false);
        let root2 = sim.rotate_role_key("timestamp", seeded_key(3));
        let release2 = release(&sim, 2, false);
        let release3 = release(&sim, 3, true);
        let mut meta = BTreeMap::new();
        meta.insert(
            "targets.json".to_string(),
            MetaFile::describing(3, &release3.targets),
        );
        let expired_snapshot = sign(Snapshot::new(4, expired(), meta), &[&sim.snapshot_key]);
        let expired_timestamp = sign(
            Timestamp::new(4, expired(), MetaFile::describing(4, &expired_snapshot)),
            &[&sim.timestamp_key],
        );
        let succinct_targets = targets(&sim, 1, true);

        let mut repo = Repo {
            root1,
            root2,
            release1,
            release2,
            release3,
            expired_timestamp,
            expired_snapshot,
            succinct_targets,
            valid: BTreeMap::new(),
        };
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("root", repo.root1.clone()),
            ("root", repo.root2.clone()),
            ("timestamp", repo.expired_timestamp.clone()),
            ("snapshot", repo.expired_snapshot.clone()),
            ("targets", repo.succinct_targets.clone()),
        ];
        for r in [&repo.release1, &repo.release2, &repo.release3] {
            files.push(("timestamp", r.timestamp.clone()));
            files.push(("snapshot", r.snapshot.clone()));
            files.push(("targets", r.targets.clone()));
            files.push(("dev", r.dev.clone()));
        }
        for (role, bytes) in files {
            let canonical = match role {
                "root" => {
                    Metadata::<Root>::from_bytes(&bytes).map(|m| m.canonical_signed().to_vec())
                }
                "timestamp" => {
                    Metadata::<Timestamp>::from_bytes(&bytes).map(|m| m.canonical_signed().to_vec())
                }
                "snapshot" => {
                    Metadata::<Snapshot>::from_bytes(&bytes).map(|m| m.canonical_signed().to_vec())
                }
                _ => Metadata::<Targets>::from_bytes(&bytes).map(|m| m.canonical_signed().to_vec()),
            }
            .expect("the repository's own files parse");
            repo.valid
                .entry(role.to_string())
                .or_default()
                .insert(canonical);
        }
        repo
    }

    /// Panic unless `md`'s signed content is one the repository signed as `role`.
    pub fn assert_genuine<T: Role>(&self, role: &str, md: &Metadata<T>, step: &str) {
        let genuine = self
            .valid
            .get(role)
            .is_some_and(|set| set.contains(md.canonical_signed()));
        assert!(
            genuine,
            "verification bypass: {step} accepted {role} content the repository never signed: {}",
            String::from_utf8_lossy(md.canonical_signed())
        );
    }

    /// The server's current repository at release 1.
    pub fn stored_release1(&self) -> publish::CurrentRepository {
        let r = &self.release1;
        publish::CurrentRepository::from_files(
            [
                ("root", &self.root1),
                ("targets", &r.targets),
                ("dev", &r.dev),
                ("snapshot", &r.snapshot),
                ("timestamp", &r.timestamp),
            ]
            .map(|(role, bytes)| (role, 1, bytes.as_slice())),
        )
        .expect("release 1 parses")
    }
}

/// The repository, built once per process (signing is deterministic).
pub fn repo() -> &'static Repo {
    static REPO: OnceLock<Repo> = OnceLock::new();
    REPO.get_or_init(Repo::build)
}

/// Split a multi-file input into its flags byte and files.
pub fn split(data: &[u8]) -> (u8, Vec<&[u8]>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut chunks = Vec::new();
    while let Some(i) = rest.windows(SEP.len()).position(|w| w == SEP) {
        chunks.push(&rest[..i]);
        rest = &rest[i + SEP.len()..];
    }
    chunks.push(rest);
    (flags, chunks)
}

/// Join files into a multi-file input (for seeds).
pub fn join(flags: u8, files: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![flags];
    for (i, f) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEP);
        }
        out.extend_from_slice(f);
    }
    out
}

// ---------------------------------------------------------------------------
// metadata_parse

fn parse_round_trip<T: Role>(data: &[u8]) -> Option<Metadata<T>> {
    let md = Metadata::<T>::from_bytes(data).ok()?;
    let bytes = md.to_bytes();
    let back = Metadata::<T>::from_bytes(&bytes).unwrap_or_else(|e| {
        panic!(
            "{}: to_bytes output does not parse back: {e}: {}",
            T::TYPE,
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(
        back.canonical_signed(),
        md.canonical_signed(),
        "{}: round trip changed the signed bytes",
        T::TYPE
    );
    assert_eq!(
        back.to_bytes(),
        bytes,
        "{}: to_bytes is not stable",
        T::TYPE
    );
    assert_eq!(back.signatures, md.signatures);
    let _ = md.signed.is_expired(now());
    let _ = metadata::signed_at(&serde_json::Map::new());
    Some(md)
}

fn exercise_delegations(md: &Metadata<Targets>, names: &[&str]) {
    let Some(delegations) = &md.signed.delegations else {
        return;
    };
    let target_names: Vec<&str> = md
        .signed
        .targets
        .keys()
        .map(String::as_str)
        .chain(names.iter().copied())
        .take(16)
        .collect();
    for role in delegations.roles().iter().take(16) {
        let _ = delegations.role_keys(&role.name);
        let _ = delegations.verify_delegate(&role.name, md);
        for t in &target_names {
            let _ = role.is_delegated_path(t);
        }
    }
    if let Some(bins) = &delegations.succinct_roles {
        for t in &target_names {
            let bin = bins.role_for_target(t);
            assert!(bins.is_bin(&bin), "role_for_target gave {bin}, not a bin");
            assert!(delegations.role_keys(&bin).is_some());
            let _ = delegations.verify_delegate(&bin, md);
        }
    }
}

/// `Metadata::<Root|Targets|Snapshot|Timestamp>::from_bytes` on arbitrary
/// bytes: what parses round-trips through `to_bytes` with the same signed
/// bytes, and verifying it (against itself and the real root) never panics.
pub fn metadata_parse(data: &[u8]) {
    let real_root = Metadata::<Root>::from_bytes(&repo().root1).expect("real root");
    if let Some(md) = parse_round_trip::<Root>(data) {
        for role in TOP_LEVEL_ROLES {
            let _ = md.signed.verify_role(role, &md);
            let _ = real_root.signed.verify_role(role, &md);
        }
        let _ = md.signed.verify_role("no-such-role", &md);
    }
    if let Some(md) = parse_round_trip::<Timestamp>(data) {
        let _ = real_root.signed.verify_role("timestamp", &md);
        if let Ok(meta) = md.signed.snapshot_meta() {
            let _ = meta.verify_bytes(data);
        }
    }
    if let Some(md) = parse_round_trip::<Snapshot>(data) {
        let _ = real_root.signed.verify_role("snapshot", &md);
        if let Some(meta) = md.signed.role_meta("targets") {
            let _ = meta.verify_bytes(data);
        }
    }
    if let Some(md) = parse_round_trip::<Targets>(data) {
        let _ = real_root.signed.verify_role("targets", &md);
        exercise_delegations(&md, &["latest", "release-1", "dev/x", "a/b/c"]);
        for target in md.signed.targets.values().take(16) {
            let _ = target.digest();
            let _ = target.media_type();
            let _ = target.verify_bytes(data);
        }
    }
}

// ---------------------------------------------------------------------------
// trusted_set

fn check_trusted(repo: &Repo, set: &TrustedMetadataSet, step: &str) {
    repo.assert_genuine("root", set.root(), step);
    if let Some(md) = set.timestamp() {
        repo.assert_genuine("timestamp", md, step);
    }
    if let Some(md) = set.snapshot() {
        repo.assert_genuine("snapshot", md, step);
    }
    if let Some(md) = set.targets() {
        repo.assert_genuine("targets", md, step);
    }
    if let Some(md) = set.delegated_targets("dev") {
        repo.assert_genuine("dev", md, step);
    }
}

/// Drive the client's `TrustedMetadataSet` from the real root v1 through the
/// workflow with fuzzer-chosen files: never panics, and never trusts
/// content the repository's keys did not sign.
///
/// Files (after the flags byte): new root, timestamp, snapshot, targets,
/// delegated `dev`. Flags: bit 0 loads release 1's timestamp as local
/// rollback memory, bit 1 release 1's snapshot, bit 2 loads the snapshot
/// as locally trusted (no hash check against timestamp), bit 3 takes the
/// delegated role's name and delegator from the sixth file
/// (`name\ndelegator`), bit 4 starts from the real root v2 instead.
pub fn trusted_set(data: &[u8]) {
    let repo = repo();
    let (flags, files) = split(data);
    let file = |i: usize| files.get(i).copied().unwrap_or(&[]);
    let start = if flags & 16 != 0 {
        &repo.root2
    } else {
        &repo.root1
    };
    let mut set = TrustedMetadataSet::new(start, now()).expect("the real root is trusted");
    if !file(0).is_empty() {
        let _ = set.update_root(file(0));
        check_trusted(repo, &set, "update_root");
    }
    if flags & 1 != 0 {
        let _ = set.load_local_timestamp(&repo.release1.timestamp);
    }
    let _ = set.update_timestamp(file(1));
    check_trusted(repo, &set, "update_timestamp");
    if flags & 2 != 0 {
        let _ = set.load_local_snapshot(&repo.release1.snapshot);
    }
    let _ = set.update_snapshot(file(2), flags & 4 != 0);
    check_trusted(repo, &set, "update_snapshot");
    let _ = set.update_targets(file(3));
    check_trusted(repo, &set, "update_targets");
    let names = String::from_utf8_lossy(file(5));
    let (role, delegator) = if flags & 8 != 0 {
        names.split_once('\n').unwrap_or((&names, "targets"))
    } else {
        ("dev", "targets")
    };
    if set
        .update_delegated_targets(file(4), role, delegator)
        .is_ok()
    {
        let md = set.targets_role(role).expect("an accepted role is trusted");
        repo.assert_genuine(
            if role == "targets" { "targets" } else { "dev" },
            md,
            "update_delegated_targets",
        );
    }
    check_trusted(repo, &set, "update_delegated_targets");
}

// ---------------------------------------------------------------------------
// publish_input

/// The server's publish input path: each file after the flags byte is
/// `filename\nbytes`, put through `role_from_filename` and
/// `json_depth_exceeds` as the multipart handler does, then `plan()` against
/// an empty repository (flags bit 0 clear) or one at release 1. Never
/// panics; a successful plan stores only content the repository's keys
/// signed, and its snapshot entries describe the stored bytes.
pub fn publish_input(data: &[u8]) {
    let repo = repo();
    let (flags, files) = split(data);
    let mut current = if flags & 1 != 0 {
        repo.stored_release1()
    } else {
        publish::CurrentRepository::default()
    };
    let mut uploads = Vec::new();
    for file in files {
        let (name, bytes) = match file.iter().position(|&b| b == b'\n') {
            Some(i) => (&file[..i], &file[i + 1..]),
            None => (file, &[][..]),
        };
        let name = String::from_utf8_lossy(name);
        let Ok(role) = publish::role_from_filename(&name) else {
            continue;
        };
        assert!(tagtrust_shared::pathmatch::validate_role_name(&role).is_ok());
        assert!(!tagtrust_shared::TopLevelRole::is_online_name(&role));
        let deep = publish::json_depth_exceeds(bytes, MAX_JSON_DEPTH);
        // Monotone in the limit.
        if deep {
            assert!(publish::json_depth_exceeds(bytes, MAX_JSON_DEPTH / 2));
        } else {
            assert!(!publish::json_depth_exceeds(bytes, MAX_JSON_DEPTH * 2));
            uploads.push(Upload {
                role,
                bytes: bytes.to_vec(),
            });
        }
    }
    let Ok(plan) = publish::plan(&mut current, uploads, now()) else {
        return;
    };
    repo.assert_genuine("root", &plan.root, "plan (root)");
    for (role, version, bytes) in &plan.store {
        if role == "root" {
            let md = Metadata::<Root>::from_bytes(bytes).expect("stored root parses");
            assert_eq!(md.signed.version, *version);
            repo.assert_genuine("root", &md, "plan");
        } else {
            let md = Metadata::<Targets>::from_bytes(bytes).expect("stored targets parses");
            assert_eq!(md.signed.version, *version);
            let kind = if role == "targets" { "targets" } else { "dev" };
            repo.assert_genuine(kind, &md, "plan");
        }
    }
    for (file, meta) in &plan.snapshot_meta {
        let role = file.strip_suffix(".json").expect("meta names end in .json");
        let bytes = plan
            .store
            .iter()
            .find(|(r, _, _)| r == role)
            .map(|(_, _, b)| b)
            .or_else(|| current.roles.get(role).map(|f| &f.bytes))
            .expect("snapshot lists only stored or uploaded roles");
        meta.verify_bytes(bytes)
            .expect("snapshot entry describes the bytes");
    }
}

// ---------------------------------------------------------------------------
// names

/// `Gun::parse`, `ImageReference::parse`, `validate_tag`,
/// `validate_role_name`, `pathmatch::path_matches` and `is_delegated_path`
/// and the succinct-bin arithmetic on arbitrary strings: never panic, and
/// what parses prints back as itself.
pub fn names(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(gun) = tagtrust_shared::Gun::parse(&text) {
        assert_eq!(gun.as_str(), text);
        assert!(gun.as_str().len() <= tagtrust_shared::gun::MAX_GUN_LEN);
        assert!(!gun.as_str().split('/').any(|s| s == ".." || s.is_empty()));
    }
    if let Ok(reference) = ImageReference::parse(&text) {
        assert_eq!(reference.to_string(), text);
        let again = ImageReference::parse(&reference.to_string()).expect("re-parses");
        assert_eq!(again, reference);
    }
    let _ = tagtrust_shared::reference::validate_tag(&text);
    let _ = tagtrust_shared::pathmatch::validate_role_name(&text);
    let (pattern, target) = text.split_once('\n').unwrap_or((&text, "latest"));
    let matched = tagtrust_shared::pathmatch::path_matches(pattern, target);
    if matched {
        assert_eq!(pattern.split('/').count(), target.split('/').count());
    }
    if !pattern.contains(['*', '?', '[', ']']) {
        assert_eq!(matched, pattern == target, "{pattern:?} vs {target:?}");
    }
    let _ =
        tagtrust_shared::pathmatch::is_delegated_path(target, None, Some(&[pattern.to_string()]));
    let bit_length = data.first().map_or(0, |b| u32::from(*b % 33));
    let bins = SuccinctRoles {
        keyids: Vec::new(),
        threshold: 1,
        bit_length,
        name_prefix: pattern.to_string(),
        extra: Default::default(),
    };
    let bin = bins.role_for_target(target);
    if bit_length > 0 {
        assert!(bins.is_bin(&bin), "{bin} is not a bin");
    }
    let _ = bins.is_bin(target);
}

// ---------------------------------------------------------------------------
// self-check

/// The harness reaches the accepting paths: the real files are trusted by
/// the client and accepted by the server. Run by `gen_corpus` (a target
/// whose seeds are all refused would fuzz only the refusals).
pub fn self_check() {
    let repo = repo();
    let (r1, r2) = (&repo.release1, &repo.release2);
    let mut set = TrustedMetadataSet::new(&repo.root1, now()).expect("root v1");
    set.update_root(&repo.root2).expect("root v2");
    set.load_local_timestamp(&r1.timestamp)
        .expect_err("root v2 rotated the timestamp key");
    set.update_timestamp(&r2.timestamp).expect("timestamp v2");
    set.update_snapshot(&r2.snapshot, false)
        .expect("snapshot v2");
    set.update_targets(&r2.targets).expect("targets v2");
    set.update_delegated_targets(&r2.dev, "dev", "targets")
        .expect("dev v2");
    check_trusted(repo, &set, "self-check");

    let upload = |role: &str, bytes: &[u8]| Upload {
        role: role.to_string(),
        bytes: bytes.to_vec(),
    };
    let first = vec![
        upload("root", &repo.root1),
        upload("targets", &r1.targets),
        upload("dev", &r1.dev),
    ];
    if let Err(e) = publish::plan(&mut Default::default(), first, now()) {
        panic!("first publish refused: {e}");
    }
    let next = vec![
        upload("root", &repo.root2),
        upload("targets", &r2.targets),
        upload("dev", &r2.dev),
    ];
    if let Err(e) = publish::plan(&mut repo.stored_release1(), next, now()) {
        panic!("release 2 refused: {e}");
    }
}
