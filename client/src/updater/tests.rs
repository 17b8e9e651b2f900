//! The updater against a simulated repository: what it fetches and in
//! which order, what it stores, and how it recovers.

use super::*;
use tagtrust_shared::{SigningKey, Targets};
use tagtrust_simulator::{dup, json_files, sign, target_file, RepositorySimulator};

/// Where the simulated repository's metadata is served from.
const BASE: &str = "https://repo.test/meta/";
/// Where everything else (targets) is served from.
const ORIGIN: &str = "https://repo.test/";

/// The simulator serves metadata by its file name below [`BASE`] and
/// targets by their path below [`ORIGIN`]; its request log holds those names.
impl Fetcher for RepositorySimulator {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        let name = url
            .strip_prefix(BASE)
            .or_else(|| url.strip_prefix(ORIGIN))
            .unwrap_or(url);
        match self.file(name) {
            None => Err(FetchError::NotFound {
                url: url.into(),
                status: 404,
            }),
            Some(b) if b.len() as u64 > max_length => Err(FetchError::TooLarge {
                url: url.into(),
                max_length,
            }),
            Some(b) => Ok(b),
        }
    }
}

fn init(repo: &RepositorySimulator) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("root.json"), &repo.roots[0]).unwrap();
    dir
}

/// A repository with release 1 published, and a home that trusts its
/// root v1.
fn published() -> (RepositorySimulator, tempfile::TempDir) {
    let repo = RepositorySimulator::new();
    repo.publish(1);
    let dir = init(&repo);
    (repo, dir)
}

/// An updater over `dir` as a new run opens it: the stored root.json,
/// verified (what `session` does through `bootstrap`).
fn open<F: Fetcher>(
    dir: &Path,
    fetcher: F,
    config: UpdaterConfig,
) -> Result<Updater<F>, TrustError> {
    let root = VerifiedRoot::from_bytes(&std::fs::read(dir.join("root.json")).unwrap())?;
    Ok(Updater::new(dir, BASE, fetcher, config, root))
}

#[test]
fn role_names_are_quoted_like_python() {
    assert_eq!(
        encode_role("dev+ops team/x~y_z.-"),
        "dev%2Bops%20team%2Fx~y_z.-"
    );
    assert_eq!(role_file_name("ünï"), "%C3%BCn%C3%AF.json");
}

#[test]
fn refresh_persists_exact_bytes_and_searches_lazily() {
    let (repo, dir) = published();
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    up.refresh().unwrap();
    assert_eq!(
        repo.take_log(),
        [
            "2.root.json",
            "timestamp.json",
            "1.snapshot.json",
            "1.targets.json"
        ]
    );
    let [ts, snap, targets, dev] = repo.release(1);
    // ed25519 signatures are deterministic: release(1) again gives the
    // bytes that were served.
    assert_eq!(
        std::fs::read(dir.path().join("timestamp.json")).unwrap(),
        ts
    );
    assert_eq!(
        std::fs::read(dir.path().join("snapshot.json")).unwrap(),
        snap
    );
    assert_eq!(
        std::fs::read(dir.path().join("targets.json")).unwrap(),
        targets
    );

    // A top-level target needs no delegated role.
    let top = up.get_targetinfo("top").unwrap().unwrap();
    assert_eq!(top.role, "targets");
    assert!(repo.take_log().is_empty());
    // Not delegated anywhere (paths do not match): still nothing fetched.
    assert_eq!(up.get_targetinfo("other/x").unwrap(), None);
    assert!(repo.take_log().is_empty());
    let app = up.get_targetinfo("apps/app").unwrap().unwrap();
    assert_eq!(app.role, "dev");
    assert_eq!(app.target, target_file(b"app bytes"));
    assert_eq!(repo.take_log(), ["1.dev.json"]);
    assert_eq!(std::fs::read(dir.path().join("dev.json")).unwrap(), dev);
    assert_eq!(
        json_files(dir.path()),
        [
            "dev.json",
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );

    // A new process: same remote, so only root and timestamp are asked for.
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert!(
        up.trusted().targets().is_none(),
        "verified once, by refresh"
    );
    up.get_targetinfo("apps/app").unwrap().unwrap();
    assert_eq!(up.trusted().targets().unwrap().signed.version, 1);
    assert_eq!(repo.take_log(), ["2.root.json", "timestamp.json"]);
}

#[test]
fn rollback_across_runs_is_refused_and_leaves_state_alone() {
    let repo = RepositorySimulator::new();
    repo.publish(1);
    let old_ts = repo.release(1)[0].clone();
    repo.publish(2);
    let dir = init(&repo);
    open(dir.path(), &repo, UpdaterConfig::default())
        .unwrap()
        .refresh()
        .unwrap();
    let before: Vec<Vec<u8>> = json_files(dir.path())
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    repo.put("timestamp.json", &old_ts);
    let err = open(dir.path(), &repo, UpdaterConfig::default())
        .unwrap()
        .refresh()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "rollback attack refused: timestamp version 1 is older than trusted version 2"
    );
    let after: Vec<Vec<u8>> = json_files(dir.path())
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn failed_update_does_not_block_later_updates() {
    let (repo, dir) = published();
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    up.refresh().unwrap();
    // Release 2 with damaged targets bytes: refresh fails after timestamp
    // and snapshot were accepted and stored.
    repo.publish(2);
    let mut bad = repo.release(2)[2].clone();
    let last = bad.len() - 2;
    bad[last] ^= 1;
    repo.put("2.targets.json", &bad);
    let err = up.refresh().unwrap_err().to_string();
    assert!(
        err.starts_with("mix-and-match refused: targets does not match"),
        "{err}"
    );
    // The repository is repaired: the next run recovers.
    repo.publish(2);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert!(up.get_targetinfo("apps/app").unwrap().is_some());
    assert_eq!(up.trusted().targets().unwrap().signed.version, 2);
    // A corrupt local file is ignored, not fatal.
    std::fs::write(dir.path().join("snapshot.json"), b"garbage").unwrap();
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    up.refresh().unwrap();
}

#[test]
fn timestamp_key_rotation_recovers_from_fast_forward() {
    let mut repo = RepositorySimulator::new();
    let dir = init(&repo);
    // Fast-forward: a timestamp v1000 made with the (compromised) key.
    let [_, snap, targets, dev] = repo.release(1);
    let ff = repo.timestamp(1000, &snap, 1);
    repo.put("timestamp.json", &ff);
    repo.put("1.snapshot.json", &snap);
    repo.put("1.targets.json", &targets);
    repo.put("1.dev.json", &dev);
    open(dir.path(), &repo, UpdaterConfig::default())
        .unwrap()
        .refresh()
        .unwrap();
    repo.publish(2);
    let err = open(dir.path(), &repo, UpdaterConfig::default())
        .unwrap()
        .refresh()
        .unwrap_err();
    assert!(
        matches!(err, UpdateError::Trust(TrustError::Rollback { .. })),
        "{err}"
    );

    // Recovery: root v2 rotates the timestamp key.
    let new_key = SigningKey::generate();
    let v2 = repo.rotate_root(|root, repo| {
        root.roles.get_mut("timestamp").unwrap().keyids = vec![];
        root.add_key("timestamp", new_key.public_key());
        repo.timestamp_key = dup(&new_key);
    });
    repo.put("2.root.json", &v2);
    repo.publish(2);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    up.refresh().unwrap();
    assert_eq!(up.trusted().timestamp().unwrap().signed.version, 2);
    assert_eq!(std::fs::read(dir.path().join("root.json")).unwrap(), v2);
}

#[test]
fn delegation_search_order_terminating_and_bounds() {
    // targets delegates `*` to a (terminating) then b; a delegates to c.
    let repo = RepositorySimulator::new();
    let keys: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate()).collect();
    let role = |name: &str, key: &SigningKey, terminating: bool| tagtrust_shared::DelegatedRole {
        name: name.into(),
        keyids: vec![key.key_id()],
        threshold: 1,
        terminating,
        paths: Some(vec!["*".into()]),
        path_hash_prefixes: None,
        extra: Default::default(),
    };
    let delegations =
        |roles: Vec<tagtrust_shared::DelegatedRole>, ks: &[&SigningKey]| Delegations {
            keys: ks.iter().map(|k| (k.key_id(), k.public_key())).collect(),
            roles: Some(roles),
            succinct_roles: None,
            extra: Default::default(),
        };
    // `a_published`: false leaves a (and its child c) out of snapshot, as
    // for a delegate that has not published yet.
    let build = |a_terminating: bool, a_published: bool| {
        let mut top = Targets::new(1, repo.expires());
        top.delegations = Some(delegations(
            vec![
                role("a", &keys[0], a_terminating),
                role("b", &keys[1], false),
            ],
            &[&keys[0], &keys[1]],
        ));
        let top = sign(top, &[&repo.targets_key]);
        let mut a = Targets::new(1, repo.expires());
        a.delegations = Some(delegations(vec![role("c", &keys[2], false)], &[&keys[2]]));
        let a = sign(a, &[&keys[0]]);
        let mut b = Targets::new(1, repo.expires());
        b.targets.insert("x".into(), target_file(b"from b"));
        let b = sign(b, &[&keys[1]]);
        let mut c = Targets::new(1, repo.expires());
        c.targets.insert("y".into(), target_file(b"from c"));
        let c = sign(c, &[&keys[2]]);
        let files = [("targets", top), ("a", a), ("b", b), ("c", c)];
        let snap = repo.snapshot(
            1,
            &files
                .iter()
                .filter(|(n, _)| a_published || !["a", "c"].contains(n))
                .map(|(n, b)| (*n, b.as_slice(), 1))
                .collect::<Vec<_>>(),
        );
        repo.put("timestamp.json", &repo.timestamp(1, &snap, 1));
        repo.put("1.snapshot.json", &snap);
        for (name, bytes) in &files {
            repo.put(&format!("1.{name}.json"), bytes);
        }
        repo.take_log();
    };

    build(false, true);
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    up.refresh().unwrap();
    repo.take_log();
    // Pre-order: a, then a's child c, then b.
    assert_eq!(up.get_targetinfo("x").unwrap().unwrap().role, "b");
    assert_eq!(repo.take_log(), ["1.a.json", "1.c.json", "1.b.json"]);
    assert_eq!(up.get_targetinfo("y").unwrap().unwrap().role, "c");
    assert!(repo.take_log().is_empty(), "roles are loaded once per run");

    // a terminating: b is never consulted.
    build(true, true);
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert_eq!(up.get_targetinfo("x").unwrap(), None);
    assert!(!repo.take_log().iter().any(|u| u == "1.b.json"));

    // a not published yet: the search says so and stops there; b, which
    // snapshot lists, is not consulted in its place.
    build(false, false);
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    let err = up.get_targetinfo("x").unwrap_err();
    assert!(
        matches!(&err, UpdateError::NotPublished { role, delegator } if role == "a" && delegator == "targets"),
        "{err}"
    );
    assert!(!repo.take_log().iter().any(|u| u.ends_with(".b.json")));

    // max_delegations bounds the walk: with 1, only targets and a are visited.
    build(false, true);
    let dir = init(&repo);
    let config = UpdaterConfig {
        max_delegations: 1,
        ..UpdaterConfig::default()
    };
    let mut up = open(dir.path(), &repo, config).unwrap();
    assert_eq!(up.get_targetinfo("x").unwrap(), None);
    assert!(!repo
        .take_log()
        .iter()
        .any(|u| u == "1.b.json" || u == "1.c.json"));
    // And the walk of every role: targets and a, in pre-order, are read;
    // c and b are beyond the limit, and said to be.
    let walk = up.load_all_roles().unwrap();
    assert_eq!(walk.roles, ["targets", "a"]);
    assert_eq!(walk.beyond_limit, ["c", "b"]);
}

/// A walk of every role reads every published bin however few
/// delegations it may read: a lookup of any tag reads the one bin it
/// hashes to, so a listing that stopped after `max_delegations` bins would
/// leave out tags consumers resolve.
#[test]
fn a_walk_reads_every_bin_beyond_max_delegations() {
    let repo = RepositorySimulator::new();
    let bin_key = SigningKey::generate();
    let top = targets_of_sixteen_bins(&repo, &bin_key);
    let bins: Vec<(String, Vec<u8>)> = sixteen_bins(&bin_key)
        .bin_names()
        .map(|name| (name, sign(Targets::new(1, repo.expires()), &[&bin_key])))
        .collect();
    let mut listed: Vec<(&str, &[u8], u64)> = vec![("targets", &top, 1)];
    listed.extend(
        bins.iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice(), 1)),
    );
    let snap = repo.snapshot(1, &listed);
    repo.put("timestamp.json", &repo.timestamp(1, &snap, 1));
    repo.put("1.snapshot.json", &snap);
    repo.put("1.targets.json", &top);
    for (name, bytes) in &bins {
        repo.put(&format!("1.{name}.json"), bytes);
    }
    let dir = init(&repo);
    let config = UpdaterConfig {
        max_delegations: 2,
        ..UpdaterConfig::default()
    };
    let mut up = open(dir.path(), &repo, config).unwrap();
    let walk = up.load_all_roles().unwrap();
    assert_eq!(walk.roles.len(), 17, "{:?}", walk.roles);
    assert!(walk.beyond_limit.is_empty() && walk.skipped.is_empty());
}

/// TAP 15 bins `bin-0` … `bin-f` signed by `bin_key`.
fn sixteen_bins(bin_key: &SigningKey) -> tagtrust_shared::SuccinctRoles {
    tagtrust_shared::SuccinctRoles {
        keyids: vec![bin_key.key_id()],
        threshold: 1,
        bit_length: 4,
        name_prefix: "bin".into(),
        extra: Default::default(),
    }
}

/// Top-level targets (signed) delegating to [`sixteen_bins`] of `bin_key`.
fn targets_of_sixteen_bins(repo: &RepositorySimulator, bin_key: &SigningKey) -> Vec<u8> {
    let mut top = Targets::new(1, repo.expires());
    top.delegations = Some(Delegations {
        keys: [(bin_key.key_id(), bin_key.public_key())]
            .into_iter()
            .collect(),
        roles: None,
        succinct_roles: Some(sixteen_bins(bin_key)),
        extra: Default::default(),
    });
    sign(top, &[&repo.targets_key])
}

/// A repository whose targets delegate to 16 bins signed by `bin_key`, with
/// the bin of `latest` holding `tags` and signed by `signer`; the bin's name.
fn binned(
    repo: &RepositorySimulator,
    bin_key: &SigningKey,
    tags: &[&str],
    signer: &SigningKey,
) -> String {
    let bin = sixteen_bins(bin_key).role_for_target("latest");
    let top = targets_of_sixteen_bins(repo, bin_key);
    let mut b = Targets::new(1, repo.expires());
    for tag in tags {
        b.targets.insert(tag.to_string(), target_file(b"digest"));
    }
    let b = sign(b, &[signer]);
    let snap = repo.snapshot(1, &[("targets", &top, 1), (&bin, &b, 1)]);
    repo.put("timestamp.json", &repo.timestamp(1, &snap, 1));
    repo.put("1.snapshot.json", &snap);
    repo.put("1.targets.json", &top);
    repo.put(&format!("1.{bin}.json"), &b);
    bin
}

#[test]
fn succinct_delegations_route_to_the_bin() {
    let repo = RepositorySimulator::new();
    let bin_key = SigningKey::generate();
    let bin = binned(&repo, &bin_key, &["latest"], &bin_key);
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert_eq!(up.get_targetinfo("latest").unwrap().unwrap().role, bin);
}

#[test]
fn a_bin_signed_by_another_key_is_refused() {
    let repo = RepositorySimulator::new();
    let bin_key = SigningKey::generate();
    binned(&repo, &bin_key, &["latest"], &SigningKey::generate());
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert!(up.get_targetinfo("latest").is_err());
}

#[test]
fn a_tag_placed_in_another_bin_is_not_found() {
    // `latest`'s bin also lists a tag that hashes elsewhere: the search for
    // that tag goes to its own bin (not in the snapshot) and never trusts
    // the entry in the wrong one.
    let repo = RepositorySimulator::new();
    let bin_key = SigningKey::generate();
    let bins = sixteen_bins(&bin_key);
    let stray = (0..100)
        .map(|n| format!("t{n}"))
        .find(|t| bins.role_for_target(t) != bins.role_for_target("latest"))
        .unwrap();
    binned(&repo, &bin_key, &["latest", &stray], &bin_key);
    let dir = init(&repo);
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    assert!(up.get_targetinfo("latest").unwrap().is_some());
    assert!(!matches!(up.get_targetinfo(&stray), Ok(Some(_))));
}

#[test]
fn download_checks_bytes_and_uses_cache() {
    let (repo, dir) = published();
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    let info = up.get_targetinfo("apps/app").unwrap().unwrap();
    let hash = &info.target.hashes["sha256"];
    let td = tempfile::tempdir().unwrap();
    let served_as = format!("targets/apps/{hash}.app");
    repo.put(&served_as, b"app bytez");
    repo.take_log();
    let err = up
        .download_target(&info, td.path(), "https://repo.test/targets")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("arbitrary software attack refused: target apps/app"),
        "{err}"
    );
    assert!(!td.path().join("apps/app").exists());
    repo.put(&served_as, b"app bytes");
    let path = up
        .download_target(&info, td.path(), "https://repo.test/targets/")
        .unwrap();
    assert_eq!(path, td.path().join("apps/app"));
    assert_eq!(std::fs::read(&path).unwrap(), b"app bytes");
    repo.take_log();
    up.download_target(&info, td.path(), "https://repo.test/targets/")
        .unwrap();
    assert!(
        repo.take_log().is_empty(),
        "cached target is not downloaded again"
    );

    let evil = TargetInfo {
        path: "../escape".into(),
        ..info
    };
    assert!(matches!(
        up.download_target(&evil, td.path(), "https://repo.test/targets/"),
        Err(UpdateError::TargetPath { .. })
    ));
}

/// The root given to `new` is where refresh starts: root.json is not
/// read (or verified) again, so a file damaged after opening changes
/// nothing until the next open.
#[test]
fn refresh_starts_from_the_given_root_without_rereading_it() {
    let (repo, dir) = published();
    let mut up = open(dir.path(), &repo, UpdaterConfig::default()).unwrap();
    std::fs::write(dir.path().join("root.json"), b"not a root").unwrap();
    up.refresh().unwrap();
    assert!(up.trusted().targets().is_some());
}
