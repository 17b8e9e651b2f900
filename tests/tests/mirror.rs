//! Transparent mirrors (issue 9): `tagtrust mirror sync` copies every
//! stored version of a GUN from an upstream server to a second server on
//! another backend, byte for byte; the destination verifies before storing,
//! refuses a hostile upstream per GUN and keeps what it had; consumers of
//! the mirror resolve tags with the upstream's root; the mirror never signs.

use serde_json::Value;
use tagtrust_shared::{Metadata, Snapshot, Targets, Timestamp};
use tagtrust_tests::proxy::TamperingProxy;
use tagtrust_tests::{http, parse_json, sign, Backend, Cli, Published, TestServer, SHORT_EXPIRY};

const GUN: &str = "localhost:5000/mirror/app";
const OTHER: &str = "localhost:5000/mirror/other";

/// The destination: PostgreSQL when the tests have it, else SQLite.
fn destination() -> TestServer {
    TestServer::spawn(*Backend::all().last().expect("a backend"))
}

/// `tagtrust mirror sync --from FROM --to TO GUNS… -o json` by a CLI user
/// holding an admin token of the destination; the output and the report.
fn sync(from: &str, to: &TestServer, admin: &str, guns: &[&str]) -> (std::process::Output, Value) {
    let cli = Cli::new(&to.url).with_token(admin);
    let mut args = vec![
        "mirror", "sync", "--from", from, "--to", &to.url, "-o", "json",
    ];
    args.extend_from_slice(guns);
    let out = cli.run(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

/// A fresh destination, and an admin token of it, that copied [`GUN`] from
/// `upstream`: every version, byte for byte.
fn mirrored(upstream: &TestServer) -> (TestServer, String) {
    let mirror = destination();
    let admin = mirror.create_token(&["admin:*"]);
    let (out, report) = sync(&upstream.url, &mirror, &admin, &[GUN]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(outcome(&report, GUN)["outcome"], "copied", "{report}");
    assert_eq!(every_version(&mirror, GUN), every_version(upstream, GUN));
    (mirror, admin)
}

fn outcome<'a>(report: &'a Value, gun: &str) -> &'a Value {
    report["guns"]
        .as_array()
        .and_then(|guns| guns.iter().find(|g| g["gun"] == gun))
        .unwrap_or_else(|| panic!("no {gun} in {report}"))
}

/// Every stored version of every role of `gun` on `server`
/// (`N.role.json` from 1 to the current version), as bytes.
fn every_version(server: &TestServer, gun: &str) -> Vec<(String, Vec<u8>)> {
    let current = |file: &str| server.fetch(gun, file);
    let snapshot = Metadata::<Snapshot>::from_bytes(&current("snapshot.json")).expect("snapshot");
    let timestamp =
        Metadata::<Timestamp>::from_bytes(&current("timestamp.json")).expect("timestamp");
    let root_version = parse_json(&current("root.json"))["signed"]["version"]
        .as_u64()
        .unwrap();
    let mut roles = vec![
        ("root".to_string(), root_version),
        ("timestamp".to_string(), timestamp.signed.version),
        ("snapshot".to_string(), snapshot.signed.version),
    ];
    for (file, meta) in &snapshot.signed.meta {
        roles.push((file.trim_end_matches(".json").to_string(), meta.version));
    }
    let mut files = Vec::new();
    for (role, newest) in roles {
        for version in 1..=newest {
            let name = format!("{version}.{role}.json");
            files.push((name.clone(), server.fetch(gun, &name)));
        }
    }
    files
}

#[test]
fn a_transparent_mirror_holds_every_version_byte_for_byte_and_serves_consumers() {
    let upstream = Published::spawn(Backend::Sqlite, GUN);
    let publisher = &upstream.publisher;
    publisher.tag_set(GUN, "1.0");
    let (mirror, admin) = mirrored(&upstream.server);

    // Nothing new: up to date. Then an increment copies only what changed.
    let (_, report) = sync(&upstream.server.url, &mirror, &admin, &[GUN]);
    assert_eq!(outcome(&report, GUN)["outcome"], "up-to-date", "{report}");
    let digest = publisher.tag_set(GUN, "2.0");
    let (_, report) = sync(&upstream.server.url, &mirror, &admin, &[GUN]);
    let line = outcome(&report, GUN);
    assert_eq!(line["outcome"], "copied", "{report}");
    // One targets, one snapshot, one timestamp (more only if re-signed).
    assert!(
        line["files"].as_u64().unwrap() >= 3 && line["files"].as_u64().unwrap() <= 5,
        "{report}"
    );
    assert_eq!(
        every_version(&mirror, GUN),
        every_version(&upstream.server, GUN)
    );

    // A consumer of the mirror trusts the upstream's root and resolves there.
    let root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root.path(), upstream.server.fetch(GUN, "1.root.json")).unwrap();
    let consumer = Cli::new(&mirror.url);
    let out = consumer.lookup_pinned(&format!("{GUN}:2.0"), root.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);

    // The mirror holds no key and takes no publish for the GUN.
    let http = http();
    let key = http
        .get(format!("{}timestamp.key", mirror.tuf_url(GUN)))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(key.status(), 409);
    let publish = Cli::new(&mirror.url).with_token(&admin);
    let out = publish.run(&["init", GUN]);
    assert!(!out.status.success());
}

#[test]
fn a_hostile_upstream_is_refused_per_gun_and_the_mirror_keeps_what_it_had() {
    let upstream = Published::spawn(Backend::Sqlite, GUN);
    let publisher = &upstream.publisher;
    publisher.ok(&["init", OTHER]);
    let proxy = TamperingProxy::start(&upstream.server.url);
    let mirror = destination();
    let admin = mirror.create_token(&["admin:*"]);
    let (out, _) = sync(&proxy.url, &mirror, &admin, &[GUN, OTHER]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = every_version(&mirror, GUN);
    let prefix = format!("/v2/{GUN}/_trust/tuf/");

    // A rolled-back timestamp: the mirror's newest is newer.
    let old_timestamp = upstream.server.fetch(GUN, "1.timestamp.json");
    publisher.tag_set(GUN, "new");
    proxy.serve(&format!("{prefix}timestamp.json"), 200, old_timestamp);
    publisher.tag_set(OTHER, "fine");
    let (out, report) = sync(&proxy.url, &mirror, &admin, &[GUN, OTHER]);
    assert!(!out.status.success());
    let line = outcome(&report, GUN);
    assert_eq!(line["outcome"], "refused", "{report}");
    assert!(
        line["reason"].as_str().unwrap().contains("rolled back"),
        "{report}"
    );
    // The other GUN went on.
    assert_eq!(outcome(&report, OTHER)["outcome"], "copied", "{report}");
    assert_eq!(every_version(&mirror, GUN), before);
    proxy.clear();

    // A forged targets (signed by a stranger) where the upstream's should be.
    let current = upstream.server.fetch(GUN, "targets.json");
    let mut forged = Metadata::<Targets>::from_bytes(&current).unwrap().signed;
    forged.targets.clear();
    let version = forged.version;
    proxy.serve(
        &format!("{prefix}{version}.targets.json"),
        200,
        sign(forged, &[&tagtrust_shared::SigningKey::generate()]),
    );
    let (_, report) = sync(&proxy.url, &mirror, &admin, &[GUN]);
    let line = outcome(&report, GUN);
    assert_eq!(line["outcome"], "refused", "{report}");
    assert!(
        line["reason"].as_str().unwrap().contains("targets"),
        "{report}"
    );
    assert_eq!(every_version(&mirror, GUN), before);
    proxy.clear();

    // A truncated file, and an endless one.
    let path = format!("{prefix}{version}.targets.json");
    proxy.tamper(&path, tagtrust_tests::proxy::Tamper::Truncate { keep: 40 });
    let (_, report) = sync(&proxy.url, &mirror, &admin, &[GUN]);
    assert_eq!(outcome(&report, GUN)["outcome"], "refused", "{report}");
    proxy.tamper(
        &path,
        tagtrust_tests::proxy::Tamper::Inflate {
            total: 64 * 1024 * 1024,
            declare_length: false,
        },
    );
    let (_, report) = sync(&proxy.url, &mirror, &admin, &[GUN]);
    let line = outcome(&report, GUN);
    assert_eq!(line["outcome"], "refused", "{report}");
    assert_eq!(every_version(&mirror, GUN), before);

    // Honest again: the mirror catches up.
    proxy.clear();
    let (out, report) = sync(&proxy.url, &mirror, &admin, &[GUN]);
    assert!(out.status.success(), "{report}");
    assert_eq!(
        every_version(&mirror, GUN),
        every_version(&upstream.server, GUN)
    );
}

#[test]
fn imports_need_an_admin_token_and_never_replace_a_hosted_repository() {
    let upstream = Published::spawn(Backend::Sqlite, GUN);
    let mirror = destination();
    // The destination hosts a repository of the same name already.
    let (_local, _) = Cli::publisher(&mirror, "push:*", GUN);
    let push = mirror.create_token(&["push:*"]);
    let (out, _) = sync(&upstream.server.url, &mirror, &push, &[GUN]);
    assert!(!out.status.success());
    let admin = mirror.create_token(&["admin:*"]);
    let (out, report) = sync(&upstream.server.url, &mirror, &admin, &[GUN]);
    assert!(!out.status.success());
    let line = outcome(&report, GUN);
    assert!(
        line["reason"].as_str().unwrap().contains("hosted"),
        "{report}"
    );
}

/// `--follow` keeps a mirror in step with an upstream whose publishers keep
/// publishing, through its changefeed; killed with SIGKILL at random points
/// (`TAGTRUST_MIRROR_KILLS`, default 10) and restarted, it converges: every
/// version of every GUN, byte for byte, nothing half-stored.
#[test]
fn a_following_mirror_converges_through_kills_while_publishers_publish() {
    use rand::Rng;
    let kills = tagtrust_tests::env_number("TAGTRUST_MIRROR_KILLS", 10);
    let guns = [
        "localhost:5000/mirror/f0",
        "localhost:5000/mirror/f1",
        "localhost:5000/mirror/f2",
    ];
    let upstream = TestServer::spawn(Backend::Sqlite);
    let (publisher, _) = Cli::publisher(&upstream, "push:*", guns[0]);
    for gun in &guns[1..] {
        publisher.ok(&["init", gun]);
    }
    let reader = upstream.create_token(&["pull:*"]);
    let mirror = destination();
    let admin = mirror.create_token(&["admin:*"]);
    let follower_cli = Cli::new(&mirror.url).with_token(&admin);
    let start_follower = || {
        let child = follower_cli
            .command()
            .args([
                "mirror",
                "sync",
                "--from",
                &upstream.url,
                "--to",
                &mirror.url,
            ])
            .args(["--all", "--follow", "--interval", "1"])
            .env("TAGTRUST_UPSTREAM_TOKEN", &reader)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mirror sync --follow");
        tagtrust_tests::KillOnDrop(child)
    };
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..kills {
                publisher.tag_set(guns[n as usize % guns.len()], &format!("t{n}"));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut rng = rand::thread_rng();
        for _ in 0..kills {
            let follower = start_follower();
            std::thread::sleep(std::time::Duration::from_millis(rng.gen_range(50..1500)));
            drop(follower); // SIGKILL, wherever it is
        }
    });
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    let _follower = start_follower();
    let converged = |gun: &str| every_version(&mirror, gun) == every_version(&upstream, gun);
    for gun in guns {
        let mut tries = 0;
        while mirror.fetch(gun, "timestamp.json") != upstream.fetch(gun, "timestamp.json") {
            tries += 1;
            assert!(tries < 300, "{gun} did not converge within 60 s");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(
            converged(gun),
            "{gun}: the mirror's versions differ from the upstream's"
        );
    }
}

/// Write `[[mirror]]` for `upstream` into the consumer's config.toml.
fn map_to(consumer: &Cli, upstream: &str, locations: &[&str], max_stale: Option<&str>) {
    let list = locations
        .iter()
        .map(|l| format!("{l:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let stale = max_stale.map_or(String::new(), |s| format!("max_stale = {s:?}\n"));
    std::fs::write(
        consumer.home.path().join("config.toml"),
        format!("[[mirror]]\nupstream = {upstream:?}\nlocations = [{list}]\n{stale}"),
    )
    .unwrap();
}

fn lookup_json(consumer: &Cli, reference: &str) -> (std::process::Output, Value) {
    let out = consumer.run(&["lookup", reference, "-o", "json"]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

#[test]
fn consumers_read_through_ordered_locations_and_never_roll_back() {
    let mut upstream = Published::spawn(Backend::Sqlite, GUN);
    let (mirror, admin) = mirrored(&upstream.server);
    let consumer = upstream.consumer();
    map_to(&consumer, &upstream.server.url, &[&mirror.url], None);
    let (out, report) = lookup_json(&consumer, &format!("{GUN}:latest"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report["digest"], upstream.digest.as_str());
    assert_eq!(report["location"], mirror.url.as_str());

    // The consumer moves on to a newer version through the mirror...
    let old_timestamp = mirror.fetch(GUN, "timestamp.json");
    let digest = upstream.publisher.tag_set(GUN, "latest");
    assert!(sync(&upstream.server.url, &mirror, &admin, &[GUN])
        .0
        .status
        .success());
    let (_, report) = lookup_json(&consumer, &format!("{GUN}:latest"));
    assert_eq!(report["digest"], digest.as_str(), "{report}");
    let trusted_version = report["timestamp"]["version"].as_u64().unwrap();

    // ...then a dead location and one serving the old timestamp come first:
    // both are skipped, the honest mirror answers, nothing is rolled back,
    // and the upstream itself is never asked.
    let rolled_back = TamperingProxy::start(&mirror.url);
    rolled_back.serve(
        &format!("/v2/{GUN}/_trust/tuf/timestamp.json"),
        200,
        old_timestamp,
    );
    let dead = format!("http://127.0.0.1:{}", tagtrust_tests::free_port());
    upstream.server.stop();
    map_to(
        &consumer,
        &upstream.server.url,
        &[&dead, &rolled_back.url, &mirror.url],
        None,
    );
    let (out, report) = lookup_json(&consumer, &format!("{GUN}:latest"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(report["location"], mirror.url.as_str(), "{report}");
    assert_eq!(report["digest"], digest.as_str());
    assert!(stderr.contains(&format!("skipping {dead}")), "{stderr}");
    assert!(
        stderr.contains(&format!("skipping {}", rolled_back.url)),
        "{stderr}"
    );
    assert!(stderr.contains("rollback"), "{stderr}");
    assert_eq!(
        report["timestamp"]["version"].as_u64().unwrap(),
        trusted_version
    );

    // Only the rolled-back location: refused, with the reason.
    map_to(&consumer, &upstream.server.url, &[&rolled_back.url], None);
    let (out, _) = lookup_json(&consumer, &format!("{GUN}:latest"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rollback"));
}

#[test]
fn a_mirror_not_synced_in_time_is_an_honest_expiry_unless_the_consumer_opts_in() {
    let upstream = Published::spawn_with(Backend::Sqlite, GUN, &SHORT_EXPIRY);
    let (mirror, _) = mirrored(&upstream.server);
    let consumer = upstream.consumer();
    map_to(&consumer, &upstream.server.url, &[&mirror.url], None);
    // Bootstrap while it is fresh, then let the mirror's copy expire (the
    // mirror never re-signs it; the upstream keeps re-signing its own).
    let synced = mirror.fetch(GUN, "timestamp.json");
    let (out, _) = lookup_json(&consumer, &format!("{GUN}:latest"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert_eq!(
        mirror.fetch(GUN, "timestamp.json"),
        synced,
        "the mirror re-signed"
    );
    let (out, _) = lookup_json(&consumer, &format!("{GUN}:latest"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("expired"), "{stderr}");

    // Opted in with a bound: accepted, loudly.
    map_to(&consumer, &upstream.server.url, &[&mirror.url], Some("1h"));
    let (out, report) = lookup_json(&consumer, &format!("{GUN}:latest"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(report["digest"], upstream.digest.as_str());
    assert!(stderr.contains("stale"), "{stderr}");
    // A bound shorter than the staleness is no opt-in.
    map_to(&consumer, &upstream.server.url, &[&mirror.url], Some("1s"));
    let (out, _) = lookup_json(&consumer, &format!("{GUN}:latest"));
    assert!(!out.status.success());
}

/// A binned upstream (hashed bins, TAP 15) mirrors like any other: every
/// bin is verified against the succinct delegation and copied, and a
/// consumer of the mirror resolves a tag through its bin.
#[test]
fn a_repository_with_hashed_bins_is_mirrored_with_its_bins() {
    let upstream = Published::spawn(Backend::Sqlite, GUN);
    let publisher = &upstream.publisher;
    publisher.ok(&["bins", "enable", GUN, "--bins", "8"]);
    let digest = publisher.tag_set(GUN, "binned");
    let (mirror, _) = mirrored(&upstream.server);
    let root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(root.path(), upstream.server.fetch(GUN, "1.root.json")).unwrap();
    let out = Cli::new(&mirror.url).lookup_pinned(&format!("{GUN}:binned"), root.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
}
