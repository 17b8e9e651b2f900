//! Server-side freshness: the re-sign scheduler keeps timestamp and snapshot
//! alive with expiries of seconds, several server processes on one database
//! sign each new version exactly once, a read never gets an expired
//! timestamp, and the expiry metrics are exported. Real binaries, SQLite and
//! (with `TAGTRUST_TEST_POSTGRES_URL`) PostgreSQL. Bounded loops, no
//! assertions on wall-clock speed.

use chrono::{DateTime, Utc};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tagtrust_shared::metadata::signed_at;
use tagtrust_shared::{Metadata, Root, Snapshot, Timestamp};
use tagtrust_tests::database::postgres_query;
use tagtrust_tests::{
    assert_contains, bin_path, free_port, http, metric, metrics, timestamp_resigns, Backend, Cli,
    ServerProcess, TestServer, SHORT_EXPIRY,
};

const GUN: &str = "localhost:5000/acme/fresh";

/// Another `tagtrust-server` process on an existing server's database.
fn spawn_extra(storage_args: &[String], args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
    let mut cmd = Command::new(bin_path("tagtrust-server"));
    cmd.args(storage_args)
        .args(args)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    ServerProcess::start(cmd)
}

fn tuf(base: &str, file: &str) -> String {
    format!("{base}/v2/{GUN}/_trust/tuf/{file}")
}

/// `init` and one tag through the real CLI; returns the tag's digest.
fn publish(server: &TestServer) -> String {
    let (publisher, _) = Cli::publisher(server, "push:*", GUN);
    publisher.tag_set(GUN, "latest")
}

/// A timestamp as served: parsed, with the time it was received.
struct Served {
    md: Metadata<Timestamp>,
    received: DateTime<Utc>,
}

/// GET the current timestamp from `base`: must be 200 and unexpired when
/// received, signed by the root's timestamp keys, carrying a signed-at no
/// later than now; and the snapshot it names must be served with its hash.
fn fetch_fresh(http: &Client, base: &str, root: &Root) -> Served {
    let resp = http.get(tuf(base, "timestamp.json")).send().unwrap();
    let received = Utc::now();
    let status = resp.status();
    let bytes = resp.bytes().unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "GET timestamp.json from {base}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let md = Metadata::<Timestamp>::from_bytes(&bytes).unwrap();
    assert!(
        md.signed.expires > received,
        "served timestamp v{} expired at {}, received at {received}",
        md.signed.version,
        md.signed.expires
    );
    root.verify_role("timestamp", &md).unwrap();
    let signed = signed_at(&md.signed.extra).expect("timestamp carries x-tagtrust-signed-at");
    assert!(signed <= received + chrono::Duration::seconds(1));
    assert!(signed < md.signed.expires);

    let meta = md.signed.snapshot_meta().unwrap();
    let resp = http
        .get(tuf(base, &format!("{}.snapshot.json", meta.version)))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "snapshot v{}", meta.version);
    let snap_bytes = resp.bytes().unwrap();
    meta.verify_bytes(&snap_bytes).unwrap();
    let snapshot = Metadata::<Snapshot>::from_bytes(&snap_bytes).unwrap();
    root.verify_role("snapshot", &snapshot).unwrap();
    assert_eq!(snapshot.signed.version, meta.version);
    assert!(signed_at(&snapshot.signed.extra).is_some());
    Served { md, received }
}

fn root_of(http: &Client, base: &str) -> Root {
    let bytes = http
        .get(tuf(base, "root.json"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    Metadata::<Root>::from_bytes(&bytes).unwrap().signed
}

/// The value of one sample in a Prometheus text exposition.
/// Over about five timestamp lifetimes, every timestamp served is
/// unexpired, versions never go down, and consumers' lookups keep working:
/// the scheduler re-signs timestamp and snapshot on its own.
#[test]
fn timestamps_stay_fresh_across_expiry_periods() {
    for backend in Backend::all() {
        let server = TestServer::spawn_with(backend, &SHORT_EXPIRY);
        let digest = publish(&server);
        let http = http();
        let root = root_of(&http, &server.url);
        let first = fetch_fresh(&http, &server.url, &root);

        // Without any reader of the current timestamp, the scheduler signs
        // the next version (versioned reads never re-sign).
        let next = tuf(
            &server.url,
            &format!("{}.timestamp.json", first.md.signed.version + 1),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while http.get(&next).send().unwrap().status() != StatusCode::OK {
            assert!(Instant::now() < deadline, "the scheduler never re-signed");
            std::thread::sleep(Duration::from_millis(200));
        }

        let consumer = Cli::new(&server.url);
        let start = Instant::now();
        let mut last = first.md.signed.version;
        let mut snapshot_versions = std::collections::BTreeSet::new();
        let mut i = 0;
        while start.elapsed() < Duration::from_secs(15) {
            let served = fetch_fresh(&http, &server.url, &root);
            let version = served.md.signed.version;
            assert!(
                version >= last,
                "timestamp version went down from {last} to {version}"
            );
            last = version;
            snapshot_versions.insert(served.md.signed.snapshot_meta().unwrap().version);
            assert!(served.received >= first.received);
            if i % 5 == 0 {
                assert_eq!(consumer.lookup(GUN, "latest"), digest);
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(last > first.md.signed.version + 1, "no re-signs seen");
        assert!(
            snapshot_versions.len() >= 2,
            "the snapshot was never re-signed: {snapshot_versions:?}"
        );
        let text = metrics(&http, &server.url);
        let resigns = metric(&text, "tagtrust_resigns_total{role=\"timestamp\"}").expect(&text);
        assert!(resigns >= 1.0, "{text}");
        assert!(metric(&text, "tagtrust_resigns_total{role=\"snapshot\"}").is_some());
    }
}

/// Two server processes on one database, both re-signing every second:
/// every timestamp version from 1 to the current one exists exactly once,
/// reads from both never fail, and no process counts a re-sign the other
/// also made.
#[test]
fn two_servers_on_one_database_sign_each_version_once() {
    for backend in Backend::all() {
        let server = TestServer::spawn_with(backend, &SHORT_EXPIRY);
        let other = spawn_extra(&server.storage_args(), &SHORT_EXPIRY, &[]);
        publish(&server);
        let http = http();
        let root = root_of(&http, &server.url);
        let bases = [server.url.as_str(), other.url.as_str()];

        // Each process's versions never go down. Across processes one may
        // serve the previous version for up to the read cache's bound
        // (`--read-cache-ms`; on PostgreSQL until its NOTIFY arrives),
        // which tests/tests/read_cache.rs checks.
        let start = Instant::now();
        let mut last_of = [0u64; 2];
        let mut last = 0;
        let mut i = 0;
        while start.elapsed() < Duration::from_secs(10) {
            let served = fetch_fresh(&http, bases[i % 2], &root);
            let version = served.md.signed.version;
            assert!(
                version >= last_of[i % 2],
                "{}: timestamp version went down from {} to {version}",
                bases[i % 2],
                last_of[i % 2]
            );
            last_of[i % 2] = version;
            last = last.max(version);
            i += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(last > 3, "no re-signs seen (current version {last})");

        // The history has no gaps, and both processes serve it.
        for version in 1..=last {
            for base in bases {
                let resp = http
                    .get(tuf(base, &format!("{version}.timestamp.json")))
                    .send()
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{version}.timestamp.json");
                let md = Metadata::<Timestamp>::from_bytes(&resp.bytes().unwrap()).unwrap();
                assert_eq!(md.signed.version, version);
                root.verify_role("timestamp", &md).unwrap();
            }
        }
        // Re-signs counted by the two processes never exceed what is stored
        // (2 of the versions came from the publishes).
        let counted = timestamp_resigns(&http, &bases);
        // A process may serve the previous current timestamp for up to the
        // read cache's bound (1 s) after the other signed a newer one: read
        // the current version only once that has passed (it only grows).
        std::thread::sleep(Duration::from_millis(1500));
        let after = fetch_fresh(&http, bases[0], &root).md.signed.version;
        assert!(counted >= 1.0);
        assert!(
            counted + 2.0 <= after as f64,
            "{counted} re-signs counted, but only {after} timestamp versions exist"
        );

        if let Some(url) = &server.database_url {
            assert_history_in_postgres(url);
        }
    }
}

/// Directly in the database: timestamp versions 1..=max, each once.
fn assert_history_in_postgres(url: &str) {
    let versions: Vec<i64> = postgres_query(
        url,
        &format!(
            "SELECT version::text FROM metadata WHERE gun = '{GUN}' AND role = 'timestamp' \
             ORDER BY metadata.version"
        ),
    )
    .iter()
    .map(|v| v.parse().unwrap())
    .collect();
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, expected);
}

/// Settings under which the scheduler's next pass is an hour away, valid
/// (every margin is longer than the interval), for a "late scheduler".
const HOURLY: [&str; 6] = [
    "--timestamp-expiry-secs",
    "86400",
    "--snapshot-expiry-secs",
    "604800",
    "--resign-interval-secs",
    "3600",
];

/// A late scheduler, staged with valid configurations on one database:
/// `late` (hourly passes, and `broken` too if asked: the same with a master
/// key that cannot open the online keys) starts first and finds nothing to
/// do; a process with short lifetimes (`short`) then publishes and is
/// stopped, so the short-lived files are theirs to keep fresh, an hour
/// before their next pass. Returns the stopped publisher (its storage),
/// `late`, `broken` and the tag's digest.
fn late_scheduler(
    backend: Backend,
    short: &[&str],
    with_broken: bool,
) -> (TestServer, ServerProcess, Option<ServerProcess>, String) {
    let mut publisher = TestServer::spawn_with(backend, short);
    let late = spawn_extra(&publisher.storage_args(), &HOURLY, &[]);
    let wrong_key = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
    let broken = with_broken.then(|| {
        spawn_extra(
            &publisher.storage_args(),
            &HOURLY,
            &[("TAGTRUST_SERVER_MASTER_KEY", wrong_key)],
        )
    });
    let digest = publish(&publisher);
    publisher.stop();
    (publisher, late, broken, digest)
}

/// The newest stored version of `role` on `base`, found through versioned
/// reads (which never re-sign).
fn newest_version(http: &Client, base: &str, role: &str) -> u64 {
    let exists = |v: u64| {
        http.get(tuf(base, &format!("{v}.{role}.json")))
            .send()
            .unwrap()
            .status()
            == StatusCode::OK
    };
    let mut version = 1;
    while exists(version + 1) {
        version += 1;
    }
    version
}

/// Wait (bounded) until the newest stored `role` on `base` has expired;
/// returns its version.
fn wait_until_expired<T: tagtrust_shared::metadata::Role>(
    http: &Client,
    base: &str,
    role: &str,
) -> u64 {
    let version = newest_version(http, base, role);
    let file = format!("{version}.{role}.json");
    let bytes = http.get(tuf(base, &file)).send().unwrap().bytes().unwrap();
    let md = Metadata::<T>::from_bytes(&bytes).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while md.signed.expires() > Utc::now() {
        assert!(Instant::now() < deadline, "{file} never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    version
}

/// The scheduler is late (its next pass is an hour away): a read of an
/// expired timestamp re-signs it on the spot. A server that cannot sign
/// (wrong master key) answers 503, never the expired bytes.
#[test]
fn expired_timestamp_is_never_served() {
    for backend in Backend::all() {
        let (_server, late, broken, digest) = late_scheduler(backend, &SHORT_EXPIRY, true);
        let broken = broken.unwrap();
        let http = http();
        let root = root_of(&http, &late.url);
        let expired = wait_until_expired::<Timestamp>(&http, &late.url, "timestamp");

        let resp = http.get(tuf(&broken.url, "timestamp.json")).send().unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body["errors"][0]["code"], "TIMESTAMP_UNAVAILABLE", "{body}");
        // Immutable versioned reads still work.
        assert_eq!(
            http.get(tuf(&broken.url, "1.root.json"))
                .send()
                .unwrap()
                .status(),
            StatusCode::OK
        );

        let after = fetch_fresh(&http, &late.url, &root);
        assert!(after.md.signed.version > expired);
        let text = metrics(&http, &late.url);
        assert!(metric(&text, "tagtrust_resigns_on_read_total").unwrap() >= 1.0);
        assert_eq!(Cli::new(&late.url).lookup(GUN, "latest"), digest);
    }
}

/// Issue 7 item 14: the read path's safety net covers snapshot as it covers
/// timestamp. The scheduler is late; the stored snapshot has expired while
/// the timestamp naming it has not. Reads of `timestamp.json` and
/// `snapshot.json` re-sign both first: the timestamp served names a fresh
/// snapshot.
#[test]
fn expired_snapshot_is_never_served() {
    let short = [
        "--timestamp-expiry-secs",
        "600",
        "--snapshot-expiry-secs",
        "4",
        "--resign-interval-secs",
        "1",
    ];
    for backend in Backend::all() {
        let (_server, late, _, digest) = late_scheduler(backend, &short, false);
        let http = http();
        let root = root_of(&http, &late.url);
        let snapshot = |file: &str| {
            let resp = http.get(tuf(&late.url, file)).send().unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{file}");
            Metadata::<Snapshot>::from_bytes(&resp.bytes().unwrap()).unwrap()
        };
        let expired = wait_until_expired::<Snapshot>(&http, &late.url, "snapshot");
        let current = snapshot("snapshot.json");
        assert!(current.signed.version > expired);
        assert!(current.signed.expires > Utc::now());
        let served = fetch_fresh(&http, &late.url, &root);
        let named = served.md.signed.snapshot_meta().unwrap().version;
        let named = snapshot(&format!("{named}.snapshot.json"));
        assert!(
            named.signed.expires > served.received,
            "timestamp names a live snapshot"
        );
        assert!(
            metric(&metrics(&http, &late.url), "tagtrust_resigns_on_read_total").unwrap() >= 1.0
        );
        assert_eq!(Cli::new(&late.url).lookup(GUN, "latest"), digest);
    }
}

/// Issue 7 item 10: the scheduler re-signs a timestamp older than the
/// cadence (here 2 s, with a day's lifetime, far from its expiry margin),
/// and every timestamp response says what a healthy server promises:
/// `x-tagtrust-timestamp-max-age` = cadence + one pass.
#[test]
fn timestamp_is_resigned_on_its_cadence_and_announces_it() {
    for backend in Backend::all() {
        let server = TestServer::spawn_with(
            backend,
            &[
                "--timestamp-cadence-secs",
                "2",
                "--resign-interval-secs",
                "1",
            ],
        );
        publish(&server);
        let http = http();
        let root = root_of(&http, &server.url);
        let first = fetch_fresh(&http, &server.url, &root);
        assert!(first.md.signed.expires - first.received > chrono::Duration::hours(23));
        for file in ["timestamp.json", "1.timestamp.json"] {
            let resp = http.get(tuf(&server.url, file)).send().unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(
                resp.headers()["x-tagtrust-timestamp-max-age"],
                "3",
                "{file}"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = fetch_fresh(&http, &server.url, &root);
            if now.md.signed.version > first.md.signed.version {
                let (a, b) = (
                    signed_at(&first.md.signed.extra).unwrap(),
                    signed_at(&now.md.signed.extra).unwrap(),
                );
                assert!(
                    b - a >= chrono::Duration::seconds(2),
                    "re-signed at {a} then {b}"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "timestamp never re-signed on its cadence"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Not a read-path re-sign: the scheduler did it.
        let text = metrics(&http, &server.url);
        assert_eq!(metric(&text, "tagtrust_resigns_on_read_total"), Some(0.0));

        // A default server promises 31 minutes: README's `--max-age 2h`
        // and `max_age = "1h"` hold against it.
        let default = TestServer::spawn(backend);
        publish(&default);
        let resp = http
            .get(tuf(&default.url, "timestamp.json"))
            .send()
            .unwrap();
        assert_eq!(resp.headers()["x-tagtrust-timestamp-max-age"], "1860");
    }
}

/// Issue 7 item 14: a configuration under which a role could expire
/// between two scheduler passes is refused at start, with one line and a
/// non-zero exit.
#[test]
fn a_configuration_that_would_serve_expired_metadata_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(bin_path("tagtrust-server"))
        .args(["--data-dir", &data.path().display().to_string()])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--snapshot-expiry-secs",
            "20",
            "--resign-interval-secs",
            "600",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_contains(&stderr, "snapshot could expire between two re-sign passes");
}

/// `/metrics` exports expiry health as aggregates by kind of role, never a
/// series per repository; `GET /v2/_trust/expiring` (metrics or admin
/// token) names the repositories, soonest first, and forgets a deleted one.
#[test]
fn expiry_metrics_are_aggregates_and_the_detail_is_an_admin_listing() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        publish(&server);
        let http = http();
        let text = metrics(&http, &server.url);
        assert!(!text.contains("gun="), "a per-repository series: {text}");
        let role = |name: &str, role: &str| {
            metric(&text, &format!("{name}{{role=\"{role}\"}}")).expect(&text)
        };
        for kind in ["root", "targets", "snapshot", "timestamp"] {
            assert_eq!(role("tagtrust_metadata_roles", kind), 1.0, "{kind}");
            assert_eq!(role("tagtrust_metadata_expired_roles", kind), 0.0, "{kind}");
        }
        let soonest = role("tagtrust_metadata_soonest_expiry_seconds", "timestamp");
        assert!(
            soonest > 86_400.0 - 120.0 && soonest <= 86_400.0,
            "timestamp expiry {soonest}"
        );
        // Within the 30-day warning window: timestamp and snapshot, not root.
        assert_eq!(role("tagtrust_metadata_expiring_roles", "snapshot"), 1.0);
        assert_eq!(role("tagtrust_metadata_expiring_roles", "root"), 0.0);
        let left = |kind: &str, le: &str| {
            metric(
                &text,
                &format!("tagtrust_metadata_time_left_roles{{le=\"{le}\",role=\"{kind}\"}}"),
            )
            .expect(&text)
        };
        assert_eq!(left("timestamp", "21600"), 0.0);
        assert_eq!(left("timestamp", "86400"), 1.0);
        assert_eq!(left("snapshot", "86400"), 0.0);
        assert_eq!(left("snapshot", "604800"), 1.0);
        assert_eq!(left("root", "+Inf"), 1.0);

        let listing = |token: Option<&str>, query: &str| {
            let mut req = http.get(format!("{}/v2/_trust/expiring{query}", server.url));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send().unwrap()
        };
        assert_eq!(listing(None, "").status(), StatusCode::UNAUTHORIZED);
        let pusher = server.create_token(&[&format!("push:{GUN}")]);
        assert_eq!(listing(Some(&pusher), "").status(), StatusCode::FORBIDDEN);
        let watcher = server.create_token(&["metrics:*"]);
        let bad = listing(Some(&watcher), "?limit=0");
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = listing(Some(&watcher), "?within=172800").json().unwrap();
        let roles: Vec<&str> = body["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .map(|r| {
                assert_eq!(r["gun"], GUN);
                r["role"].as_str().unwrap()
            })
            .collect();
        assert_eq!(roles, ["timestamp"], "{body}");
        let all: serde_json::Value = listing(Some(&watcher), "?within=999999999&limit=2")
            .json()
            .unwrap();
        assert_eq!(all["roles"][0]["role"], "timestamp", "soonest first: {all}");
        assert_eq!(all["roles"][1]["role"], "snapshot", "{all}");
        assert_eq!(all["truncated"], true, "{all}");

        let admin = server.create_token(&["admin:*"]);
        let resp = http
            .delete(format!("{}/v2/{GUN}/_trust/tuf/", server.url))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: serde_json::Value = listing(Some(&admin), "?within=999999999").json().unwrap();
        assert_eq!(body["roles"], serde_json::json!([]), "{body}");
    }
}
