//! The TUF threat list (specification 1.0.x, section 1.5.2), staged end to
//! end against the real `tagtrust` client binary.
//!
//! Two kinds of attacker:
//!
//! * a man in the middle between the client and the real `tagtrust-server`
//!   ([`TamperingProxy`]): it can replay, swap, delay, trickle, truncate and
//!   inflate responses, but holds no key;
//! * an attacker who also holds some keys (the online timestamp and snapshot
//!   keys of a compromised server, one of two root keys, a robot's key). The
//!   server's private keys cannot leave it, so that attacker's repository is
//!   built here with `tagtrust_shared` ([`Forged`]) and served from a
//!   loopback static server.
//!
//! Each test checks that the client refuses with a message naming the
//! defence, that its trusted state on disk is byte-for-byte what it was
//! (apart from genuine, correctly signed metadata it verified before the
//! attack was reached, listed explicitly), and that an honest update works
//! afterwards. SECURITY.md maps each threat to these tests.

use chrono::{Duration, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tagtrust::remote::ServerClient;
use tagtrust_shared::metadata::Role;
use tagtrust_shared::{
    DelegatedRole, Gun, MetaFile, Metadata, Root, SigningKey, Snapshot, Targets, Timestamp,
};
use tagtrust_tests::proxy::{Tamper, TamperingProxy};
use tagtrust_tests::{
    delegated_role, delegations, initialised, json, manifest_target, random_digest, sign, stderr,
    Backend, Cli, TestServer, TEST_PASSPHRASE,
};

const GUN: &str = "localhost:5000/acme/app";
const OTHER_GUN: &str = "localhost:5000/acme/other";
const FORGED_GUN: &str = "localhost:5000/acme/forged";
/// The publishers' token scope.
const SCOPE: &str = "push:localhost:5000/acme/*";

// ---------------------------------------------------------------------------
// Helpers

fn prefix(gun: &str) -> String {
    format!("/v2/{gun}/_trust/tuf/")
}

/// The trusted metadata files (`*.json`) of `gun` in a consumer's home, as
/// reached through `server_url`.
type State = BTreeMap<String, Vec<u8>>;

fn state_dir(cli: &Cli, server_url: &str, gun: &str) -> PathBuf {
    tagtrust::home::Home::at(cli.home.path())
        .metadata_dir(server_url, &tagtrust_shared::Gun::parse(gun).unwrap())
}

fn trusted_state(dir: &Path) -> State {
    let mut state = State::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".json") {
                state.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    state
}

/// After a refused attack the trusted state is `before`, except for the
/// `advanced` files, which must now hold exactly the given bytes (genuine
/// metadata the client verified before it reached the attacked file).
fn assert_state_kept(dir: &Path, before: &State, advanced: &[(&str, &[u8])]) {
    let mut expected = before.clone();
    for (file, bytes) in advanced {
        expected.insert(file.to_string(), bytes.to_vec());
    }
    let after = trusted_state(dir);
    let names = |s: &State| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&after), names(&expected), "trusted files changed");
    for (file, bytes) in &expected {
        assert!(
            after[file] == *bytes,
            "trusted {file} changed: now {}",
            String::from_utf8_lossy(&after[file])
        );
    }
}

fn version_of<T: Role>(bytes: &[u8]) -> u64 {
    Metadata::<T>::from_bytes(bytes).unwrap().signed.version()
}

/// GET a file of `gun`'s current repository straight from the real server.
fn honest(server: &TestServer, gun: &str, file: &str) -> Vec<u8> {
    let resp = reqwest::blocking::get(format!("{}{file}", server.tuf_url(gun))).unwrap();
    assert!(resp.status().is_success(), "GET {file}: {}", resp.status());
    resp.bytes().unwrap().to_vec()
}

/// A lookup that must fail; returns stderr.
fn refused(cli: &Cli, gun: &str, tag: &str) -> String {
    cli.fails(&["lookup", &format!("{gun}:{tag}")])
}

/// A repository on the real server whose `ci-robot` role may sign
/// `release-*`, with the robot's encrypted key file.
struct Delegated {
    publisher: Cli,
    token: String,
    robot: Cli,
    robot_key_file: PathBuf,
}

fn delegated_repository(server: &TestServer) -> Delegated {
    let (publisher, token) = Cli::publisher(server, SCOPE, GUN);
    let robot = Cli::new(&server.url).with_token(&token);
    let robot_key_file = publisher.delegate_to(&robot, GUN, "ci-robot", "release-*");
    Delegated {
        publisher,
        token,
        robot,
        robot_key_file,
    }
}

impl Delegated {
    fn robot_tag_set(&self, tag: &str) -> String {
        self.robot
            .tag_set_as(GUN, tag, "ci-robot", &self.robot_key_file)
    }

    fn robot_key(&self) -> SigningKey {
        let pem = std::fs::read_to_string(&self.robot_key_file).unwrap();
        SigningKey::from_encrypted_pem(&pem, TEST_PASSPHRASE).unwrap()
    }
}

/// A consumer reading [`GUN`] through a tampering proxy: the attacker's
/// position. `before` is the consumer's trusted state (in `dir`), which a
/// refused attack must leave as it is.
struct Intercepted {
    consumer: Cli,
    dir: PathBuf,
    before: State,
    proxy: TamperingProxy,
}

impl Intercepted {
    /// A proxy in front of `server` and a consumer behind it that has read
    /// nothing yet.
    fn start(server: &TestServer) -> Intercepted {
        let proxy = TamperingProxy::start(&server.url);
        let consumer = Cli::new(&proxy.url);
        let dir = state_dir(&consumer, &proxy.url, GUN);
        Intercepted {
            consumer,
            dir,
            before: State::new(),
            proxy,
        }
    }

    /// As [`Intercepted::start`], the consumer having resolved `latest` to
    /// `digest`; that trusted state is what a refused attack must keep.
    fn through(server: &TestServer, digest: &str) -> Intercepted {
        let mut at = Intercepted::start(server);
        assert_eq!(at.consumer.lookup(GUN, "latest"), digest);
        at.mark();
        at
    }

    /// A new server with a publisher that set `latest`, intercepted.
    fn server() -> (TestServer, Cli, Intercepted) {
        let (server, publisher, _) = initialised(Backend::Sqlite, SCOPE, GUN);
        let d1 = publisher.tag_set(GUN, "latest");
        let at = Intercepted::through(&server, &d1);
        (server, publisher, at)
    }

    /// The trusted state now is what a refused attack must keep.
    fn mark(&mut self) {
        self.before = trusted_state(&self.dir);
    }

    /// The consumer's lookup of `tag`, which must fail; its stderr.
    fn refused(&self, tag: &str) -> String {
        refused(&self.consumer, GUN, tag)
    }

    /// The trusted state is as marked but for `advanced`.
    fn assert_kept(&self, advanced: &[(&str, &[u8])]) {
        assert_state_kept(&self.dir, &self.before, advanced);
    }

    /// With the proxy honest again, the consumer resolves `tag` to `digest`.
    fn recovers(&self, tag: &str, digest: &str) {
        self.proxy.clear();
        assert_eq!(self.consumer.lookup(GUN, tag), digest);
    }
}

/// The path of `gun`'s current timestamp.
fn timestamp_path(gun: &str) -> String {
    format!("{}timestamp.json", prefix(gun))
}

// ---------------------------------------------------------------------------
// A repository built here, for attackers holding keys.

/// A TUF repository for [`FORGED_GUN`] whose every key the test holds,
/// served (consistent snapshots) from a loopback static server. The honest
/// publisher and the attacker both write to it.
struct Forged {
    site: TamperingProxy,
    root: Root,
    root_keys: Vec<SigningKey>,
    timestamp_key: SigningKey,
    snapshot_key: SigningKey,
    targets_keys: Vec<SigningKey>,
    robot_key: SigningKey,
}

impl Forged {
    /// Root v1 with `root_keys` root keys (threshold all of them) and
    /// `targets_keys` targets keys (threshold all of them).
    fn new(root_keys: usize, targets_keys: usize) -> Forged {
        let keys = |n: usize| (0..n).map(|_| SigningKey::generate()).collect::<Vec<_>>();
        let forged = Forged {
            site: TamperingProxy::start_static(),
            root: Root::new(Utc::now() + Duration::days(365)),
            root_keys: keys(root_keys),
            timestamp_key: SigningKey::generate(),
            snapshot_key: SigningKey::generate(),
            targets_keys: keys(targets_keys),
            robot_key: SigningKey::generate(),
        };
        let mut forged = forged;
        for key in &forged.root_keys {
            forged.root.add_key("root", key.public_key());
        }
        for key in &forged.targets_keys {
            forged.root.add_key("targets", key.public_key());
        }
        forged
            .root
            .add_key("timestamp", forged.timestamp_key.public_key());
        forged
            .root
            .add_key("snapshot", forged.snapshot_key.public_key());
        forged.root.roles.get_mut("root").unwrap().threshold = root_keys as u64;
        forged.root.roles.get_mut("targets").unwrap().threshold = targets_keys as u64;
        let keys: Vec<&SigningKey> = forged.root_keys.iter().collect();
        forged.put("1.root.json", sign(forged.root.clone(), &keys));
        forged
    }

    fn url(&self) -> &str {
        &self.site.url
    }

    fn put(&self, file: &str, bytes: Vec<u8>) {
        self.site
            .serve(&format!("{}{file}", prefix(FORGED_GUN)), 200, bytes);
    }

    /// The publisher's next root (changed by `change`), signed by every old
    /// and new root key, served as `N.root.json`.
    fn rotate_root(&mut self, change: impl FnOnce(&mut Root, &mut Forged)) -> Vec<u8> {
        let mut root = self.root.clone();
        root.version += 1;
        change(&mut root, self);
        let keys: Vec<&SigningKey> = self.root_keys.iter().collect();
        let bytes = sign(root.clone(), &keys);
        self.put(&format!("{}.root.json", root.version), bytes.clone());
        self.root = root;
        bytes
    }

    /// The publisher's next root, with a new key for the online `role`
    /// (`timestamp` or `snapshot`), which signs from now on.
    fn rotate_online_key(&mut self, role: &str) -> Vec<u8> {
        let new_key = SigningKey::generate();
        let root = self.rotate_root(|root, _| {
            root.replace_role_keys(role, &[new_key.public_key()]);
        });
        match role {
            "timestamp" => self.timestamp_key = new_key,
            "snapshot" => self.snapshot_key = new_key,
            _ => panic!("{role} is not an online role"),
        }
        root
    }

    /// Targets `version` listing `tags`, delegating `release-*` to the robot
    /// when `delegate`; unsigned.
    fn targets(&self, version: u64, tags: &[(&str, &str)], delegate: bool) -> Targets {
        let mut targets = Targets::new(version, Utc::now() + Duration::days(90));
        for (tag, digest) in tags {
            targets
                .targets
                .insert(tag.to_string(), manifest_target(digest, 1234));
        }
        if delegate {
            let robot = &self.robot_key;
            targets.delegations = Some(delegations(vec![(
                delegated_role("ci-robot", robot, &["release-*"]),
                robot,
            )]));
        }
        targets
    }

    /// Targets signed by the real targets keys.
    fn signed_targets(&self, version: u64, tags: &[(&str, &str)], delegate: bool) -> Vec<u8> {
        let keys: Vec<&SigningKey> = self.targets_keys.iter().collect();
        sign(self.targets(version, tags, delegate), &keys)
    }

    /// The robot's `ci-robot` role, signed by the robot key.
    fn robot_targets(&self, version: u64, tags: &[(&str, &str)]) -> Vec<u8> {
        sign(self.targets(version, tags, false), &[&self.robot_key])
    }

    fn snapshot(&self, version: u64, meta: &[(&str, MetaFile)]) -> Vec<u8> {
        let meta = meta
            .iter()
            .map(|(role, m)| (format!("{role}.json"), m.clone()))
            .collect();
        sign(
            Snapshot::new(version, Utc::now() + Duration::days(7), meta),
            &[&self.snapshot_key],
        )
    }

    fn timestamp(&self, version: u64, snapshot: MetaFile) -> Vec<u8> {
        sign(
            Timestamp::new(version, Utc::now() + Duration::days(1), snapshot),
            &[&self.timestamp_key],
        )
    }

    /// Serve a release: targets roles (name, bytes) at their versions, a
    /// snapshot `version` listing them with hashes, and timestamp `version`.
    /// Returns (timestamp, snapshot) bytes.
    fn release(&self, version: u64, roles: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
        let meta: Vec<(&str, MetaFile)> = roles
            .iter()
            .map(|(role, bytes)| {
                let v = version_of::<Targets>(bytes);
                self.put(&format!("{v}.{role}.json"), bytes.to_vec());
                (*role, MetaFile::describing(v, bytes))
            })
            .collect();
        let snapshot = self.snapshot(version, &meta);
        self.release_snapshot(version, snapshot)
    }

    /// Serve `snapshot` as `V.snapshot.json` (V its own version) and a
    /// timestamp `ts_version` naming it with its hash.
    fn release_snapshot(&self, ts_version: u64, snapshot: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
        let v = version_of::<Snapshot>(&snapshot);
        self.put(&format!("{v}.snapshot.json"), snapshot.clone());
        let timestamp = self.timestamp(ts_version, MetaFile::describing(v, &snapshot));
        self.put("timestamp.json", timestamp.clone());
        (timestamp, snapshot)
    }

    fn consumer(&self) -> Cli {
        Cli::new(self.url())
    }

    fn dir(&self, cli: &Cli) -> PathBuf {
        state_dir(cli, self.url(), FORGED_GUN)
    }
}

fn digest() -> String {
    random_digest().0
}

// ---------------------------------------------------------------------------
// Arbitrary installation

/// Targets signed by a key that is not the targets role's, or by too few of
/// its keys. Through the real server a man in the middle cannot even get
/// that far: snapshot pins the hash of every targets file, so a swapped file
/// is a mix-and-match. With the online keys compromised (snapshot lists the
/// forged file), the signature threshold check is what refuses.
#[test]
fn arbitrary_targets_is_refused() {
    // 1. Network attacker in front of the real server.
    let (server, publisher, at) = Intercepted::server();
    let d2 = publisher.tag_set(GUN, "latest");
    let version = version_of::<Targets>(&honest(&server, GUN, "targets.json"));
    let evil = digest();
    let attacker = SigningKey::generate();
    let mut forged = Targets::new(version, Utc::now() + Duration::days(90));
    forged
        .targets
        .insert("latest".into(), manifest_target(&evil, 1234));
    at.proxy.serve(
        &format!("{}{version}.targets.json", prefix(GUN)),
        200,
        sign(forged, &[&attacker]),
    );
    let err = at.refused("latest");
    assert!(err.contains("mix-and-match refused"), "{err}");
    assert!(err.contains("targets"), "{err}");
    assert!(!err.contains(&evil[7..]), "{err}");
    at.assert_kept(&[
        ("timestamp.json", &honest(&server, GUN, "timestamp.json")),
        ("snapshot.json", &honest(&server, GUN, "snapshot.json")),
    ]);
    at.recovers("latest", &d2);

    // 2. Online keys compromised: timestamp and snapshot vouch for whatever
    // targets file the attacker wants; targets needs 2 of 2 targets keys.
    let repo = Forged::new(1, 2);
    let d1 = digest();
    repo.release(
        2,
        &[(
            "targets",
            &repo.signed_targets(2, &[("latest", &d1)], false),
        )],
    );
    let consumer = repo.consumer();
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    let dir = repo.dir(&consumer);

    let evil = digest();
    let unsigned = repo.targets(3, &[("latest", &evil)], false);
    // Signed by two keys, neither of them a targets key.
    let not_role_keys = sign(
        unsigned.clone(),
        &[&SigningKey::generate(), &repo.snapshot_key],
    );
    // Signed by one of the two targets keys: below threshold.
    let below_threshold = sign(unsigned, &[&repo.targets_keys[0]]);
    for (version, bytes) in [(3, not_role_keys), (4, below_threshold)] {
        let before = trusted_state(&dir);
        let (ts, snap) = repo.release(version, &[("targets", &bytes)]);
        let err = refused(&consumer, FORGED_GUN, "latest");
        assert!(err.contains("arbitrary metadata refused"), "{err}");
        assert!(
            err.contains("targets is not signed by enough keys"),
            "{err}"
        );
        assert!(err.contains("threshold 2"), "{err}");
        assert_state_kept(
            &dir,
            &before,
            &[("timestamp.json", &ts), ("snapshot.json", &snap)],
        );
    }
    let d2 = digest();
    repo.release(
        5,
        &[(
            "targets",
            &repo.signed_targets(5, &[("latest", &d2)], false),
        )],
    );
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d2);
}

// ---------------------------------------------------------------------------
// Rollback (timestamp and top-level targets: e2e.rs rollback_is_refused)

/// Older snapshot and older delegated role replayed after newer ones were
/// seen. A man in the middle is stopped by the hashes timestamp and
/// snapshot pin (mix-and-match); an attacker with the online keys, who can
/// vouch for old files, by the version comparisons (rollback).
#[test]
fn snapshot_and_delegated_role_rollback_is_refused() {
    // 1. Network attacker in front of the real server.
    let server = TestServer::spawn(Backend::Sqlite);
    let repo = delegated_repository(&server);
    repo.robot_tag_set("release-1");
    let robot_v = version_of::<Targets>(&honest(&server, GUN, "ci-robot.json"));
    let old_robot = honest(&server, GUN, &format!("{robot_v}.ci-robot.json"));
    let old_snapshot = honest(&server, GUN, "snapshot.json");
    let r2 = repo.robot_tag_set("release-2");
    let latest = repo.publisher.tag_set(GUN, "latest");

    // `latest` is top-level: the search does not fetch ci-robot yet.
    let mut at = Intercepted::through(&server, &latest);
    assert!(
        !at.before.contains_key("ci-robot.json"),
        "{:?}",
        at.before.keys()
    );

    let robot_now = version_of::<Targets>(&honest(&server, GUN, "ci-robot.json"));
    assert!(robot_now > robot_v);
    let robot_path = format!("{}{robot_now}.ci-robot.json", prefix(GUN));
    at.proxy.serve(&robot_path, 200, old_robot.clone());
    let err = at.refused("release-2");
    assert!(err.contains("mix-and-match refused"), "{err}");
    assert!(err.contains("ci-robot"), "{err}");
    at.assert_kept(&[]);
    at.recovers("release-2", &r2);

    // An older snapshot where the one the new timestamp names is expected.
    at.mark();
    repo.publisher.tag_set(GUN, "latest");
    let snap_v = version_of::<Snapshot>(&honest(&server, GUN, "snapshot.json"));
    at.proxy.serve(
        &format!("{}{snap_v}.snapshot.json", prefix(GUN)),
        200,
        old_snapshot,
    );
    let err = at.refused("latest");
    assert!(err.contains("mix-and-match refused"), "{err}");
    assert!(err.contains("snapshot"), "{err}");
    at.assert_kept(&[("timestamp.json", &honest(&server, GUN, "timestamp.json"))]);
    at.proxy.clear();
    at.consumer.lookup(GUN, "latest");
    assert_eq!(at.consumer.lookup(GUN, "release-2"), r2);

    // 2. Online keys compromised.
    let repo = Forged::new(1, 1);
    let (d1, d2) = (digest(), digest());
    let targets = repo.signed_targets(2, &[], true);
    let robot1 = repo.robot_targets(1, &[("release-1", &d1)]);
    let (_, snapshot1) = repo.release(1, &[("targets", &targets), ("ci-robot", &robot1)]);
    let robot2 = repo.robot_targets(2, &[("release-1", &d2)]);
    repo.release(2, &[("targets", &targets), ("ci-robot", &robot2)]);
    let consumer = repo.consumer();
    assert_eq!(consumer.lookup(FORGED_GUN, "release-1"), d2);
    let dir = repo.dir(&consumer);
    let before = trusted_state(&dir);
    assert!(before.contains_key("ci-robot.json"));

    // a. A new timestamp naming the old snapshot version.
    repo.release_snapshot(3, snapshot1.clone());
    let err = refused(&consumer, FORGED_GUN, "release-1");
    assert!(
        err.contains("rollback attack refused: timestamp lists snapshot.json version 1, older than trusted version 2"),
        "{err}"
    );
    assert_state_kept(&dir, &before, &[]);

    // b. The old snapshot itself, under a new timestamp that vouches for its
    // bytes under the new version number.
    repo.put("4.snapshot.json", snapshot1.clone());
    let ts = repo.timestamp(
        4,
        MetaFile {
            version: 4,
            ..MetaFile::describing(4, &snapshot1)
        },
    );
    repo.put("timestamp.json", ts.clone());
    let err = refused(&consumer, FORGED_GUN, "release-1");
    assert!(
        err.contains("rollback attack refused: snapshot version 1 is older than trusted version 2"),
        "{err}"
    );
    assert_state_kept(&dir, &before, &[("timestamp.json", &ts)]);

    // c. A new snapshot listing the old ci-robot.
    let before = trusted_state(&dir);
    let (ts, _) = repo.release(5, &[("targets", &targets), ("ci-robot", &robot1)]);
    let err = refused(&consumer, FORGED_GUN, "release-1");
    assert!(
        err.contains("rollback attack refused: snapshot lists ci-robot.json version 1, older than trusted version 2"),
        "{err}"
    );
    assert_state_kept(&dir, &before, &[("timestamp.json", &ts)]);

    let robot3 = repo.robot_targets(3, &[("release-1", &d1)]);
    repo.release(6, &[("targets", &targets), ("ci-robot", &robot3)]);
    assert_eq!(consumer.lookup(FORGED_GUN, "release-1"), d1);
}

// ---------------------------------------------------------------------------
// Indefinite freeze (an expired timestamp: e2e.rs freeze_is_refused)

/// A snapshot served after it expired while the timestamp naming it is
/// still valid (the server signs timestamps for 30 days here, snapshots for
/// the default 7): a consumer 10 days on refuses it.
#[test]
fn expired_snapshot_is_a_freeze() {
    let server = TestServer::spawn_with(
        Backend::Sqlite,
        &["--timestamp-expiry-secs", &(30 * 24 * 3600).to_string()],
    );
    let (publisher, _) = Cli::publisher(&server, SCOPE, GUN);
    let d1 = publisher.tag_set(GUN, "latest");
    let consumer = Cli::new(&server.url);
    assert_eq!(consumer.lookup(GUN, "latest"), d1);
    let dir = state_dir(&consumer, &server.url, GUN);
    let before = trusted_state(&dir);

    let out = std::process::Command::new("faketime")
        .args(["-f", "+10d"])
        .arg(tagtrust_tests::bin_path("tagtrust"))
        .args(["lookup", &format!("{GUN}:latest")])
        .envs(
            consumer
                .command()
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        )
        .output()
        .expect("faketime is installed (.ci/run installs it)");
    assert!(!out.status.success(), "an expired snapshot was accepted");
    let err = stderr(&out);
    assert!(
        err.contains("freeze attack refused: snapshot expired"),
        "{err}"
    );
    assert_state_kept(&dir, &before, &[]);
    assert_eq!(consumer.lookup(GUN, "latest"), d1);
}

// ---------------------------------------------------------------------------
// Fast-forward

/// An attacker with the online timestamp (then snapshot) key signs a huge
/// version; the client accepts it (it is validly signed) and so refuses the
/// honest repository as a rollback, until the publisher rotates the key:
/// the new root makes the client discard its local timestamp and snapshot
/// (spec 5.3.11) and it follows the honest repository again.
#[test]
fn fast_forward_recovery_after_online_key_rotation() {
    const HUGE: u64 = 1_000_000_000;
    let mut repo = Forged::new(1, 1);
    let d1 = digest();
    let targets = repo.signed_targets(1, &[("latest", &d1)], false);
    let (_, snapshot2) = repo.release(2, &[("targets", &targets)]);
    let consumer = repo.consumer();
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    let dir = repo.dir(&consumer);

    // Timestamp fast-forward.
    let ff = repo.timestamp(HUGE, MetaFile::describing(2, &snapshot2));
    repo.put("timestamp.json", ff.clone());
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    assert_eq!(trusted_state(&dir)["timestamp.json"], ff);
    // The honest next release is a rollback now.
    let rolled_back = |repo: &Forged, version: u64, message: &str| {
        let before = trusted_state(&dir);
        repo.release(version, &[("targets", &targets)]);
        let err = refused(&consumer, FORGED_GUN, "latest");
        assert!(err.contains(message), "{err}");
        assert_state_kept(&dir, &before, &[]);
        before
    };
    rolled_back(
        &repo,
        3,
        &format!(
            "rollback attack refused: timestamp version 3 is older than trusted version {HUGE}"
        ),
    );

    let root2 = repo.rotate_online_key("timestamp");
    let (ts4, _) = repo.release(4, &[("targets", &targets)]);
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    let state = trusted_state(&dir);
    assert_eq!(state["root.json"], root2);
    assert_eq!(
        state["timestamp.json"], ts4,
        "fast-forwarded timestamp kept"
    );

    // Snapshot fast-forward: the attacker also has the snapshot key.
    let (ff_ts, ff_snap) = repo.release_snapshot(
        5,
        repo.snapshot(HUGE, &[("targets", MetaFile::describing(1, &targets))]),
    );
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    assert_eq!(trusted_state(&dir)["snapshot.json"], ff_snap);
    let before = rolled_back(
        &repo,
        6,
        &format!("rollback attack refused: timestamp lists snapshot.json version 6, older than trusted version {HUGE}"),
    );
    assert_eq!(before["timestamp.json"], ff_ts);

    repo.rotate_online_key("snapshot");
    let (ts7, snap7) = repo.release(7, &[("targets", &targets)]);
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    let state = trusted_state(&dir);
    assert_eq!(state["timestamp.json"], ts7);
    assert_eq!(state["snapshot.json"], snap7);
}

// ---------------------------------------------------------------------------
// Mix-and-match

/// A targets file from one snapshot served with another: through the real
/// server the older (still valid) timestamp and snapshot with the newer
/// targets; in a repository whose snapshot lists versions without hashes
/// (as TUF allows), the version comparison alone.
#[test]
fn mix_and_match_is_refused() {
    let (server, publisher, _) = initialised(Backend::Sqlite, SCOPE, GUN);
    let mut at = Intercepted::start(&server);
    // Trusts version 1 of everything (no tags yet).
    let err = at.refused("latest");
    assert!(err.contains("not signed"), "{err}");
    at.mark();

    publisher.tag_set(GUN, "latest");
    let ts2 = honest(&server, GUN, "timestamp.json");
    let snap2 = honest(&server, GUN, "snapshot.json");
    let targets_v = version_of::<Targets>(&honest(&server, GUN, "targets.json"));
    let d3 = publisher.tag_set(GUN, "latest");
    let targets3 = honest(&server, GUN, "targets.json");
    let p = prefix(GUN);
    at.proxy
        .serve(&format!("{p}timestamp.json"), 200, ts2.clone());
    at.proxy
        .serve(&format!("{p}{targets_v}.targets.json"), 200, targets3);
    let err = at.refused("latest");
    assert!(err.contains("mix-and-match refused"), "{err}");
    assert!(err.contains("targets"), "{err}");
    at.assert_kept(&[("timestamp.json", &ts2), ("snapshot.json", &snap2)]);
    at.recovers("latest", &d3);

    // Snapshot entries with versions only: the version check must refuse.
    let repo = Forged::new(1, 1);
    let version_only = |targets: &[u8]| MetaFile {
        length: None,
        hashes: None,
        ..MetaFile::describing(version_of::<Targets>(targets), targets)
    };
    let d1 = digest();
    let targets1 = repo.signed_targets(1, &[("latest", &d1)], false);
    repo.put("1.targets.json", targets1.clone());
    repo.release_snapshot(1, repo.snapshot(1, &[("targets", version_only(&targets1))]));
    let consumer = repo.consumer();
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d1);
    let dir = repo.dir(&consumer);
    let before = trusted_state(&dir);

    let d2 = digest();
    let targets2 = repo.signed_targets(2, &[("latest", &d2)], false);
    // Snapshot 2 lists targets version 2, but version 1 is served for it.
    repo.put("2.targets.json", targets1.clone());
    let (ts, snap) =
        repo.release_snapshot(2, repo.snapshot(2, &[("targets", version_only(&targets2))]));
    let err = refused(&consumer, FORGED_GUN, "latest");
    assert!(
        err.contains(
            "mix-and-match refused: targets version 1 does not match version 2 in snapshot"
        ),
        "{err}"
    );
    assert_state_kept(
        &dir,
        &before,
        &[("timestamp.json", &ts), ("snapshot.json", &snap)],
    );
    repo.put("2.targets.json", targets2);
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), d2);
}

// ---------------------------------------------------------------------------
// Endless data

/// Responses far larger than the limits: the client stops reading at the
/// limit (the proxy could write only a small part of 256 MiB before the
/// client hung up) and says so.
#[test]
fn endless_data_is_refused() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    const MOST_READ: u64 = 32 * 1024 * 1024;
    let (server, publisher, at) = Intercepted::server();
    let proxy = &at.proxy;

    // timestamp.json has no referrer: the client's own 16 KiB limit.
    let ts_path = timestamp_path(GUN);
    for declare_length in [false, true] {
        proxy.tamper(
            &ts_path,
            Tamper::Inflate {
                total: TOTAL,
                declare_length,
            },
        );
        let sent_before = proxy.body_bytes_sent(&ts_path);
        let err = at.refused("latest");
        assert!(
            err.contains("endless data attack refused") && err.contains("16384-byte limit"),
            "{err}"
        );
        let sent = proxy.body_bytes_sent(&ts_path) - sent_before;
        assert!(sent < MOST_READ, "client read {sent} bytes");
        at.assert_kept(&[]);
    }
    proxy.forward(&ts_path);

    // Snapshot: limited to the length the (honest) timestamp gives.
    publisher.tag_set(GUN, "latest");
    let snapshot = honest(&server, GUN, "snapshot.json");
    let version = version_of::<Snapshot>(&snapshot);
    let snap_path = format!("{}{version}.snapshot.json", prefix(GUN));
    proxy.tamper(
        &snap_path,
        Tamper::Inflate {
            total: TOTAL,
            declare_length: false,
        },
    );
    let err = at.refused("latest");
    assert!(
        err.contains("endless data attack refused")
            && err.contains(&format!("{}-byte limit", snapshot.len())),
        "{err}"
    );
    assert!(proxy.body_bytes_sent(&snap_path) < MOST_READ);
    at.assert_kept(&[("timestamp.json", &honest(&server, GUN, "timestamp.json"))]);
    let d2 = publisher.tag_set(GUN, "latest");
    at.recovers("latest", &d2);
}

/// A body cut short (Content-Length promises more than is sent): refused,
/// nothing stored.
#[test]
fn truncated_metadata_is_refused() {
    let (_server, publisher, at) = Intercepted::server();
    let d2 = publisher.tag_set(GUN, "latest");
    at.proxy
        .tamper(&timestamp_path(GUN), Tamper::Truncate { keep: 40 });
    let err = at.refused("latest");
    assert!(err.contains("timestamp.json"), "{err}");
    at.assert_kept(&[]);
    at.recovers("latest", &d2);
}

// ---------------------------------------------------------------------------
// Slow retrieval

/// A server that trickles bytes, and one that never answers: the client
/// gives up after its whole-request limit (shortened here with
/// TAGTRUST_HTTP_TIMEOUT_SECS) with a clear error. No timing is asserted.
#[test]
fn slow_retrieval_is_refused() {
    let (_server, publisher, at) = Intercepted::server();
    let d2 = publisher.tag_set(GUN, "latest");
    for how in [
        Tamper::Trickle {
            interval: std::time::Duration::from_millis(500),
        },
        Tamper::Delay(std::time::Duration::from_secs(150)),
    ] {
        at.proxy.tamper(&timestamp_path(GUN), how.clone());
        let out = at
            .consumer
            .command()
            .env("TAGTRUST_HTTP_TIMEOUT_SECS", "4")
            .args(["lookup", &format!("{GUN}:latest")])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{how:?}");
        let err = stderr(&out);
        assert!(
            err.contains("slow retrieval attack refused")
                && err.contains("timestamp.json did not download within 4s"),
            "{how:?}: {err}"
        );
        at.assert_kept(&[]);
    }
    at.recovers("latest", &d2);
}

// ---------------------------------------------------------------------------
// Wrong software

/// Another GUN's signed metadata served for this GUN (each GUN has its own
/// keys, so its signatures do not count here); and a delegated role that
/// lists a tag outside its paths, signed with the robot's real key: the
/// server refuses to publish it, and a client handed it anyway (by a
/// repository with compromised online keys) never consults the role for
/// that tag.
#[test]
fn wrong_software_is_refused() {
    let server = TestServer::spawn(Backend::Sqlite);
    let repo = delegated_repository(&server);
    let latest = repo.publisher.tag_set(GUN, "latest");
    let r1 = repo.robot_tag_set("release-1");
    repo.publisher.ok(&["init", OTHER_GUN]);
    let other_latest = repo.publisher.tag_set(OTHER_GUN, "latest");

    let at = Intercepted::through(&server, &latest);

    // Every file of the other GUN served under this GUN's paths.
    repo.publisher.tag_set(GUN, "latest");
    let (p, other) = (prefix(GUN), prefix(OTHER_GUN));
    let other_ts = honest(&server, OTHER_GUN, "timestamp.json");
    let other_snap = honest(&server, OTHER_GUN, "snapshot.json");
    let other_targets = honest(&server, OTHER_GUN, "targets.json");
    at.proxy.serve(&format!("{p}timestamp.json"), 200, other_ts);
    for (role, bytes) in [("snapshot", &other_snap), ("targets", &other_targets)] {
        let v = if role == "snapshot" {
            version_of::<Snapshot>(bytes)
        } else {
            version_of::<Targets>(bytes)
        };
        for version in 1..=v + 2 {
            at.proxy
                .serve(&format!("{p}{version}.{role}.json"), 200, bytes.clone());
        }
    }
    for version in 1..=3 {
        let path = format!("{other}{version}.root.json");
        let resp = reqwest::blocking::get(format!("{}{path}", server.url)).unwrap();
        if resp.status().is_success() {
            at.proxy.serve(
                &format!("{p}{version}.root.json"),
                200,
                resp.bytes().unwrap().to_vec(),
            );
        }
    }
    let err = at.refused("latest");
    assert!(err.contains("arbitrary metadata refused"), "{err}");
    assert!(!err.contains(&other_latest[7..]), "{err}");
    at.assert_kept(&[]);
    at.proxy.clear();
    let latest = at.consumer.lookup(GUN, "latest");
    assert_eq!(
        latest,
        format!("sha256:{}", sha256_hex_of_target(&server, GUN, "latest"))
    );

    // The robot (or whoever stole its key) signs `latest`, outside release-*.
    let robot_v = version_of::<Targets>(&honest(&server, GUN, "ci-robot.json"));
    let mut rogue = Metadata::<Targets>::from_bytes(&honest(&server, GUN, "ci-robot.json"))
        .unwrap()
        .signed;
    rogue.version = robot_v + 1;
    let evil = digest();
    rogue
        .targets
        .insert("latest".into(), manifest_target(&evil, 1234));
    let rogue_bytes = sign(rogue, &[&repo.robot_key()]);
    let publish = ServerClient::new(&server.url, Some(repo.token.clone()))
        .unwrap()
        .publish(
            &Gun::parse(GUN).unwrap(),
            &[("ci-robot".to_string(), rogue_bytes)],
        );
    let err = publish.expect_err("the server published a tag outside the role's paths");
    assert!(err.to_string().contains("may not sign"), "{err}");
    assert_eq!(at.consumer.lookup(GUN, "release-1"), r1);

    let forged = Forged::new(1, 1);
    let (d1, evil) = (digest(), digest());
    let targets = forged.signed_targets(1, &[], true);
    let robot = forged.robot_targets(1, &[("release-1", &d1), ("latest", &evil)]);
    forged.release(1, &[("targets", &targets), ("ci-robot", &robot)]);
    let consumer = forged.consumer();
    assert_eq!(consumer.lookup(FORGED_GUN, "release-1"), d1);
    let dir = forged.dir(&consumer);
    let before = trusted_state(&dir);
    let err = refused(&consumer, FORGED_GUN, "latest");
    assert!(err.contains("is not signed"), "{err}");
    assert!(!err.contains(&evil[7..]), "{err}");
    assert_state_kept(&dir, &before, &[]);
}

/// The sha256 the real server's current targets give `tag` (hex).
fn sha256_hex_of_target(server: &TestServer, gun: &str, tag: &str) -> String {
    Metadata::<Targets>::from_bytes(&honest(server, gun, "targets.json"))
        .unwrap()
        .signed
        .targets[tag]
        .hashes["sha256"]
        .clone()
}

// ---------------------------------------------------------------------------
// Key compromise below threshold

/// The publisher moves to two root keys with threshold 2; an attacker holding
/// one of them signs a malicious root (its own targets key). The server
/// refuses to publish it, and a client handed it by a man in the middle
/// refuses it too.
#[test]
fn root_signed_below_threshold_is_refused() {
    let (server, publisher, token) = initialised(Backend::Sqlite, SCOPE, GUN);
    let d1 = publisher.tag_set(GUN, "latest");
    let gun = Gun::parse(GUN).unwrap();
    let remote = ServerClient::new(&server.url, Some(token)).unwrap();

    // Root v2: a second root key, threshold 2.
    let root1 = Metadata::<Root>::from_bytes(&honest(&server, GUN, "1.root.json")).unwrap();
    let root_keyids = root1.signed.roles["root"].keyids.clone();
    let home = tagtrust::home::Home::at(publisher.home.path());
    let tagtrust_shared::PrivateKey::Ed25519(key1) = home
        .load_key(&gun, "root", &root_keyids, TEST_PASSPHRASE)
        .unwrap()
    else {
        panic!("tagtrust init makes ed25519 root keys")
    };
    let key2 = SigningKey::generate();
    let mut root2 = root1.signed.clone();
    root2.version = 2;
    root2.add_key("root", key2.public_key());
    root2.roles.get_mut("root").unwrap().threshold = 2;
    remote
        .publish(
            &gun,
            &[("root".into(), sign(root2.clone(), &[&key1, &key2]))],
        )
        .unwrap();

    let proxy = TamperingProxy::start(&server.url);
    let consumer = Cli::new(&proxy.url);
    let v: serde_json::Value =
        serde_json::from_str(&consumer.ok(&["lookup", &format!("{GUN}:latest"), "-o", "json"]))
            .unwrap();
    assert_eq!(v["digest"], d1.as_str());
    assert_eq!(v["root"]["version"], 2);
    let dir = state_dir(&consumer, &proxy.url, GUN);
    let before = trusted_state(&dir);

    // Key 2 is compromised: root v3 hands targets to the attacker.
    let attacker = SigningKey::generate();
    let mut root3 = root2.clone();
    root3.version = 3;
    root3.replace_role_keys("targets", &[attacker.public_key()]);
    let malicious = sign(root3, &[&key2]);
    let err = remote
        .publish(&gun, &[("root".into(), malicious.clone())])
        .expect_err("the server published a root signed below threshold");
    assert!(err.to_string().contains("threshold"), "{err}");

    proxy.serve(&format!("{}3.root.json", prefix(GUN)), 200, malicious);
    let err = refused(&consumer, GUN, "latest");
    assert!(err.contains("arbitrary metadata refused"), "{err}");
    assert!(err.contains("root is not signed by enough keys"), "{err}");
    assert!(err.contains("threshold 2"), "{err}");
    assert_state_kept(&dir, &before, &[]);
    proxy.clear();
    let d2 = publisher.tag_set(GUN, "latest");
    assert_eq!(consumer.lookup(GUN, "latest"), d2);
}

// ---------------------------------------------------------------------------
// Malicious mirror

/// A transparent mirror serving a byte-for-byte copy of an older, still
/// valid repository (every file consistent with the others) to a consumer
/// that has seen newer: refused as a rollback; the consumer follows the
/// honest repository again afterwards.
#[test]
fn mirror_serving_an_old_repository_is_refused() {
    let (server, publisher, _) = initialised(Backend::Sqlite, SCOPE, GUN);
    publisher.tag_set(GUN, "latest");
    // The mirror's copy: everything a client fetches, as it is now.
    let p = prefix(GUN);
    let ts = honest(&server, GUN, "timestamp.json");
    let snap = honest(&server, GUN, "snapshot.json");
    let targets = honest(&server, GUN, "targets.json");
    let copy = [
        (
            "1.root.json".to_string(),
            honest(&server, GUN, "1.root.json"),
        ),
        ("timestamp.json".to_string(), ts),
        (
            format!("{}.snapshot.json", version_of::<Snapshot>(&snap)),
            snap,
        ),
        (
            format!("{}.targets.json", version_of::<Targets>(&targets)),
            targets,
        ),
    ];
    let d2 = publisher.tag_set(GUN, "latest");

    let at = Intercepted::through(&server, &d2);

    for (file, bytes) in &copy {
        at.proxy.serve(&format!("{p}{file}"), 200, bytes.clone());
    }
    at.proxy.serve(&format!("{p}2.root.json"), 404, Vec::new());
    let err = at.refused("latest");
    assert!(
        err.contains(
            "rollback attack refused: timestamp version 2 is older than trusted version 3"
        ),
        "{err}"
    );
    at.assert_kept(&[]);
    let d3 = publisher.tag_set(GUN, "latest");
    at.recovers("latest", &d3);
}

// ---------------------------------------------------------------------------
// Terminal injection: text from metadata and servers is shown escaped

/// No raw control character (beyond the line breaks the CLI writes itself)
/// reaches the terminal.
fn assert_no_raw_controls(text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "raw control characters reached the terminal: {text:?}"
    );
}

/// A signer who puts a tab- and newline-laden name into targets cannot
/// forge a `latest` line in `tagtrust list`: the name is printed escaped,
/// on its own line, and `lookup` of `latest` still says it is unsigned.
#[test]
fn forged_lines_in_list_are_escaped() {
    let repo = Forged::new(1, 1);
    let d = digest();
    let forged_name = format!("dev-zzz\t-\t0\tdev-robot\nlatest\t{d}\t1234\ttargets");
    let targets = repo.signed_targets(1, &[(forged_name.as_str(), &d), ("dev-1", &d)], false);
    repo.release(1, &[("targets", &targets)]);
    let consumer = repo.consumer();
    let out = consumer.run(&["list", FORGED_GUN]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = stderr(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "one line per tag: {stdout}");
    assert!(
        !stdout.lines().any(|line| line.starts_with("latest")),
        "a forged latest line: {stdout}"
    );
    assert!(
        stdout.contains("dev-zzz\\t-\\t0\\tdev-robot\\nlatest"),
        "{stdout}"
    );
    assert_no_raw_controls(&stdout);
    // JSON output keeps the exact name, escaped by JSON itself.
    let json = tagtrust_tests::json(&consumer.ok(&["list", FORGED_GUN, "-o", "json"]));
    assert!(json
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["tag"] == forged_name.as_str()));
    refused(&consumer, FORGED_GUN, "latest");
}

/// A root key ID carrying `CR ESC[2K` cannot erase the trust-on-first-use
/// notice (nor anything else on the terminal): either the root is refused
/// or the ID is shown escaped.
#[test]
fn a_hostile_key_id_cannot_erase_the_first_use_notice() {
    let mut repo = Forged::new(1, 1);
    let root_key = repo.root_keys[0].clone();
    let hostile_id = format!("{}\r\u{1b}[2K", root_key.key_id());
    // Root v1 lists the real root key under the hostile ID and signs with
    // it under that ID.
    let mut root = repo.root.clone();
    let key = root.keys.remove(&root_key.key_id()).unwrap();
    root.keys.insert(hostile_id.clone(), key);
    root.roles.get_mut("root").unwrap().keyids = vec![hostile_id.clone()];
    let mut md = Metadata::new(root.clone()).unwrap();
    let mut sig = root_key.sign(md.canonical_signed());
    sig.keyid = hostile_id;
    md.signatures = vec![sig];
    repo.put("1.root.json", md.to_bytes());
    repo.root = root;
    let d = digest();
    let targets = repo.signed_targets(1, &[("latest", &d)], false);
    repo.release(1, &[("targets", &targets)]);
    let out = repo
        .consumer()
        .run(&["lookup", &format!("{FORGED_GUN}:latest")]);
    assert_no_raw_controls(&stderr(&out));
    assert_no_raw_controls(&String::from_utf8_lossy(&out.stdout));
}

/// A server's error message with terminal escape sequences is shown
/// escaped, on one line.
#[test]
fn server_error_messages_are_escaped() {
    let site = TamperingProxy::start_static();
    let body = br#"{"errors":[{"message":"database unavailable\r\u001b[2K\u001b[31mall good\nnext line"}]}"#;
    site.serve(
        &format!("{}1.root.json", prefix(FORGED_GUN)),
        503,
        body.to_vec(),
    );
    let out = Cli::new(&site.url).run(&["lookup", &format!("{FORGED_GUN}:latest")]);
    assert!(!out.status.success());
    let stderr = stderr(&out);
    assert_no_raw_controls(&stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

// ---------------------------------------------------------------------------
// A delegated role locking a sibling out (issue 7, item 1)

fn delegating(version: u64, roles: &[(DelegatedRole, &SigningKey)]) -> Targets {
    let mut targets = Targets::new(version, Utc::now() + Duration::days(90));
    targets.delegations = Some(delegations(
        roles
            .iter()
            .map(|(role, key)| (role.clone(), *key))
            .collect(),
    ));
    targets
}

/// A robot delegated `release-*` sub-delegates a role named like its
/// sibling `dev-robot` to its own key (a repository can already hold such a
/// clash; the server now refuses new ones). The full walk of `list` and
/// `status` reaches `dev-robot` through the wrong parent first: that branch
/// does not verify and is skipped with a notice, and every tag, the
/// sibling's included, is still listed and resolvable.
#[test]
fn a_sibling_clash_does_not_break_list_or_status() {
    let repo = Forged::new(1, 1);
    let release_key = &repo.robot_key;
    let dev_key = SigningKey::generate();
    let (r1, dev1, top) = (digest(), digest(), digest());
    let mut targets = delegating(
        2,
        &[
            (
                delegated_role("release-robot", release_key, &["release-*"]),
                release_key,
            ),
            (delegated_role("dev-robot", &dev_key, &["dev-*"]), &dev_key),
        ],
    );
    targets
        .targets
        .insert("latest".into(), manifest_target(&top, 1234));
    let targets = sign(targets, &[&repo.targets_keys[0]]);
    // release-robot's own metadata delegates "dev-robot" (everything) to
    // its own key.
    let mut release = delegating(
        1,
        &[(
            delegated_role("dev-robot", release_key, &["*"]),
            release_key,
        )],
    );
    release
        .targets
        .insert("release-1".into(), manifest_target(&r1, 1234));
    let release = sign(release, &[release_key]);
    let mut dev = Targets::new(1, Utc::now() + Duration::days(90));
    dev.targets
        .insert("dev-1".into(), manifest_target(&dev1, 1234));
    let dev = sign(dev, &[&dev_key]);
    repo.release(
        1,
        &[
            ("targets", &targets),
            ("release-robot", &release),
            ("dev-robot", &dev),
        ],
    );

    let consumer = repo.consumer();
    let out = consumer.run(&["list", FORGED_GUN, "-o", "json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "list failed: {err}");
    let tags = json(&String::from_utf8_lossy(&out.stdout));
    let listed: BTreeMap<String, (String, String)> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tag"].as_str().unwrap().to_string(),
                (
                    t["digest"].as_str().unwrap().to_string(),
                    t["signed_by"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert_eq!(
        listed,
        BTreeMap::from([
            ("latest".to_string(), (top.clone(), "targets".to_string())),
            (
                "release-1".to_string(),
                (r1.clone(), "release-robot".to_string())
            ),
            ("dev-1".to_string(), (dev1.clone(), "dev-robot".to_string())),
        ])
    );
    assert!(
        err.contains(
            r#"notice: skipped delegated role "dev-robot" as delegated by "release-robot""#
        ),
        "{err}"
    );

    let out = consumer.run(&["status", FORGED_GUN, "-o", "json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "status failed: {err}");
    let status = json(&String::from_utf8_lossy(&out.stdout));
    let roles: Vec<&str> = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"dev-robot") && roles.contains(&"release-robot"),
        "{roles:?}"
    );
    let dev_keys = status["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "dev-robot")
        .unwrap()["key_ids"]
        .clone();
    assert_eq!(
        dev_keys,
        serde_json::json!([dev_key.key_id()]),
        "the sibling's own keys"
    );
    assert_eq!(status["skipped"].as_array().unwrap().len(), 1, "{status}");
    assert!(err.contains("notice: skipped delegated role"), "{err}");

    // Lookups resolve as before; the sibling's tag through its real parent.
    assert_eq!(consumer.lookup(FORGED_GUN, "dev-1"), dev1);
    assert_eq!(consumer.lookup(FORGED_GUN, "release-1"), r1);
    assert_eq!(consumer.lookup(FORGED_GUN, "latest"), top);
}
