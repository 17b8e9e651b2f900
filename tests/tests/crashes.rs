//! Crashes: the server is killed with SIGKILL at random moments while
//! several `tagtrust` publishers (own homes, same keys) publish tags, and
//! restarted on the same data directory and database. After every restart:
//!
//! - every publish that was acknowledged (the CLI exited 0) is signed with
//!   its digest;
//! - nothing is half-present: the served timestamp, snapshot and targets
//!   agree (versions, lengths, hashes), the current targets is the one the
//!   snapshot lists, no targets or snapshot version is missing or beyond the
//!   current one, and a tag whose publish was not acknowledged is either
//!   absent or fully signed;
//! - a consumer that looked up before the crash (same home, same URL) still
//!   accepts what is served after it, so nothing it saw was rolled back.
//!
//! The server's port changes on every restart; publishers and the consumer
//! talk to a forwarding proxy on a fixed port whose upstream the test moves
//! (the client keys its trusted metadata by server URL). While the test
//! checks a restarted server the proxy refuses connections, so the checks
//! see a quiescent repository.
//!
//! Short timestamp and snapshot lifetimes with a 1 s scheduler make the
//! server re-sign during the run too, so kills also land in re-signs.
//!
//! Counts: `TAGTRUST_CRASH_KILLS` (default 20, at least 20),
//! `TAGTRUST_CRASH_PUBLISHERS` (default 3); randomness from
//! `TAGTRUST_CRASH_SEED` (printed).

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_tests::database::{sqlite_file, sqlite_query};
use tagtrust_tests::{
    env_number, meta_entry, parse_json as parse, seed, signed_digest, Backend, Cli, TestServer,
};

const GUN: &str = "localhost:5000/crash/app";
/// Upper bound on tags per publisher, whatever happens.
const MAX_TAGS_PER_PUBLISHER: usize = 400;

/// A TCP forwarder on a fixed loopback port to whatever upstream address
/// it currently holds (`None`: close new connections at once). Bytes are
/// passed through untouched, in both directions.
struct Forwarder {
    url: String,
    upstream: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind forwarder");
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let upstream: Arc<Mutex<Option<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (upstream, stop) = (upstream.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let target = upstream.lock().unwrap().clone();
                            if let Some(target) = target {
                                std::thread::spawn(move || pipe(client, &target));
                            }
                            // No upstream: `client` is dropped, closing it.
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Forwarder {
            url,
            upstream,
            stop,
            thread: Some(thread),
        }
    }

    /// Forward new connections to `addr` (`host:port`), or refuse them.
    fn point_to(&self, addr: Option<String>) {
        *self.upstream.lock().unwrap() = addr;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copy bytes both ways until either side closes, then close both.
fn pipe(client: TcpStream, target: &str) {
    client.set_nonblocking(false).unwrap();
    let Ok(server) = TcpStream::connect_timeout(
        &target.parse().expect("upstream address"),
        Duration::from_secs(5),
    ) else {
        return;
    };
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = std::thread::spawn(move || copy(c2, s2));
    copy(server, client);
    let _ = upstream.join();
}

/// One publish and what its publisher was told.
#[derive(Clone)]
struct Publish {
    tag: String,
    digest: String,
    acknowledged: bool,
}

/// What the checks have verified so far: (length, sha256) of every targets
/// and snapshot version, which must never change afterwards.
#[derive(Default)]
struct Verified {
    targets: BTreeMap<u64, (u64, String)>,
    snapshots: BTreeMap<u64, (u64, String)>,
    timestamp_version: u64,
}

struct Checker<'a> {
    http: reqwest::blocking::Client,
    server: &'a TestServer,
    backend: Backend,
}

impl Checker<'_> {
    fn get(&self, file: &str) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .get(format!("{}{file}", self.server.tuf_url(GUN)))
            .send()
            .unwrap_or_else(|e| panic!("GET {file}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.bytes().unwrap().to_vec())
    }

    fn get_ok(&self, file: &str) -> Vec<u8> {
        let (status, body) = self.get(file);
        assert_eq!(
            status,
            200,
            "{:?}: GET {file}: {}",
            self.backend,
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// A versioned file, checked to carry its version and to be the same
    /// bytes as when first verified.
    fn versioned(
        &self,
        role: &str,
        version: u64,
        seen: &mut BTreeMap<u64, (u64, String)>,
    ) -> Vec<u8> {
        let bytes = self.get_ok(&format!("{version}.{role}.json"));
        assert_eq!(
            parse(&bytes)["signed"]["version"].as_u64(),
            Some(version),
            "{:?}: {version}.{role}.json has another version",
            self.backend
        );
        let entry = (bytes.len() as u64, sha256_hex(&bytes));
        if let Some(before) = seen.insert(version, entry.clone()) {
            assert_eq!(
                before, entry,
                "{:?}: {version}.{role}.json changed after a crash",
                self.backend
            );
        }
        bytes
    }

    /// Check the quiescent repository against what publishers were told.
    /// Returns (acknowledged present, unacknowledged present).
    fn check(
        &self,
        verified: &mut Verified,
        publishes: &[Publish],
        all_versions: bool,
    ) -> (usize, usize) {
        let backend = self.backend;
        // timestamp -> snapshot -> targets, hashes and lengths.
        let timestamp = parse(&self.get_ok("timestamp.json"));
        let ts_version = timestamp["signed"]["version"].as_u64().unwrap();
        assert!(
            ts_version >= verified.timestamp_version,
            "{backend:?}: timestamp went back from {} to {ts_version}",
            verified.timestamp_version
        );
        verified.timestamp_version = ts_version;
        let (snapshot_version, length, hash) = meta_entry(&timestamp, "snapshot.json");
        let snapshot_bytes = self.get_ok(&format!("{snapshot_version}.snapshot.json"));
        assert_eq!(
            snapshot_bytes.len() as u64,
            length,
            "{backend:?}: snapshot length"
        );
        assert_eq!(
            sha256_hex(&snapshot_bytes),
            hash,
            "{backend:?}: snapshot hash"
        );
        let snapshot = parse(&snapshot_bytes);
        let (targets_version, length, hash) = meta_entry(&snapshot, "targets.json");
        let targets_bytes = self.get_ok("targets.json");
        assert_eq!(
            targets_bytes.len() as u64,
            length,
            "{backend:?}: current targets is not the one snapshot {snapshot_version} lists"
        );
        assert_eq!(
            sha256_hex(&targets_bytes),
            hash,
            "{backend:?}: targets hash"
        );
        let targets = parse(&targets_bytes);
        assert_eq!(targets["signed"]["version"].as_u64(), Some(targets_version));
        // Nothing beyond the current versions (the scheduler may have
        // re-signed a snapshot meanwhile: it lists the same targets).
        assert_eq!(
            self.get(&format!("{}.targets.json", targets_version + 1)).0,
            404,
            "{backend:?}: a targets version beyond the one served"
        );
        let current_snapshot = parse(&self.get_ok("snapshot.json"));
        let current_snapshot_version = current_snapshot["signed"]["version"].as_u64().unwrap();
        assert!(current_snapshot_version >= snapshot_version);
        assert_eq!(
            meta_entry(&current_snapshot, "targets.json"),
            (targets_version, length, hash),
            "{backend:?}: current snapshot lists other targets"
        );
        assert_eq!(
            self.get(&format!("{}.snapshot.json", current_snapshot_version + 1))
                .0,
            404,
            "{backend:?}: a snapshot version beyond the current one"
        );

        // No gaps; versions seen before are unchanged.
        let from = |seen: &BTreeMap<u64, _>| {
            if all_versions {
                1
            } else {
                seen.keys().next_back().map_or(1, |v| v + 1)
            }
        };
        for version in from(&verified.targets)..=targets_version {
            self.versioned("targets", version, &mut verified.targets);
        }
        for version in from(&verified.snapshots)..=current_snapshot_version {
            let bytes = self.versioned("snapshot", version, &mut verified.snapshots);
            let (listed, length, hash) = meta_entry(&parse(&bytes), "targets.json");
            assert_eq!(
                verified.targets.get(&listed),
                Some(&(length, hash)),
                "{backend:?}: snapshot {version} lists targets {listed} that is not served as described"
            );
        }

        // Acknowledged: present. Not acknowledged: absent or whole.
        let (mut acked, mut unacked) = (0, 0);
        for p in publishes {
            let signed = signed_digest(&targets, &p.tag);
            if p.acknowledged {
                acked += 1;
            } else if signed.is_some() {
                unacked += 1;
            } else {
                continue;
            }
            // An acknowledged tag must be there; any other is whole.
            assert_eq!(
                signed.as_deref(),
                Some(p.digest.as_str()),
                "{backend:?}: {} (acknowledged: {}) lost or signed with another digest",
                p.tag,
                p.acknowledged
            );
        }
        (acked, unacked)
    }
}

#[test]
fn sigkill_during_publishes_loses_nothing_acknowledged() {
    let kills = env_number("TAGTRUST_CRASH_KILLS", 20).max(20);
    let publishers = env_number("TAGTRUST_CRASH_PUBLISHERS", 3).max(1) as usize;
    let about = format!("crashes: {kills} kills, {publishers} publishers");
    let seed = seed("TAGTRUST_CRASH_SEED", &about);
    for backend in Backend::all() {
        let started = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut server = TestServer::spawn_with(
            backend,
            &[
                "--timestamp-expiry-secs",
                "20",
                "--snapshot-expiry-secs",
                "60",
                "--resign-interval-secs",
                "1",
            ],
        );
        let forwarder = Forwarder::start();
        forwarder.point_to(Some(format!("127.0.0.1:{}", server.port)));
        let token = server.create_token(&["push:localhost:5000/crash/*"]);
        let first = Cli::new(&forwarder.url).with_token(&token);
        first.ok(&["init", GUN]);
        let mut clis = vec![first];
        for _ in 1..publishers {
            clis.push(clis[0].copy_to(&forwarder.url));
        }
        let (seed_tag, seed_digest) = ("seed", format!("sha256:{}", hex::encode([7u8; 32])));
        clis[0].ok(&[
            "tag",
            "set",
            &format!("{GUN}:{seed_tag}"),
            &seed_digest,
            "--size",
            "1",
        ]);
        let consumer = Cli::new(&forwarder.url);
        assert_eq!(
            consumer
                .ok(&["lookup", &format!("{GUN}:{seed_tag}")])
                .trim(),
            seed_digest
        );

        let publishes: Arc<Mutex<Vec<Publish>>> = Arc::new(Mutex::new(vec![Publish {
            tag: seed_tag.into(),
            digest: seed_digest.clone(),
            acknowledged: true,
        }]));
        let failures: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = AtomicBool::new(false);
        let mut verified = Verified::default();
        std::thread::scope(|scope| {
            for (index, cli) in clis.iter().enumerate() {
                let (publishes, failures, stop) = (publishes.clone(), failures.clone(), &stop);
                let mut rng =
                    rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1));
                scope.spawn(move || {
                    for n in 0..MAX_TAGS_PER_PUBLISHER {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let tag = format!("p{index}-t{n}");
                        let digest = format!("sha256:{}", hex::encode(rng.gen::<[u8; 32]>()));
                        let out = cli.run(&[
                            "tag",
                            "set",
                            &format!("{GUN}:{tag}"),
                            &digest,
                            "--size",
                            "42",
                        ]);
                        let acknowledged = out.status.success();
                        publishes.lock().unwrap().push(Publish {
                            tag,
                            digest,
                            acknowledged,
                        });
                        if !acknowledged {
                            failures
                                .lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&out.stderr).trim().to_string());
                            // The server is down or restarting: do not spin.
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                });
            }

            let checker_http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            for kill in 1..=kills {
                // Let the load run for a random while, then SIGKILL.
                std::thread::sleep(Duration::from_millis(rng.gen_range(300..1500)));
                forwarder.point_to(None);
                server.stop();
                server.start();
                // What publishers had been told before the checks begin.
                let known = publishes.lock().unwrap().clone();
                let checker = Checker {
                    http: checker_http.clone(),
                    server: &server,
                    backend,
                };
                let counts = checker.check(&mut verified, &known, false);
                forwarder.point_to(Some(format!("127.0.0.1:{}", server.port)));
                // The consumer who looked up before accepts what is served now.
                let newest = known.iter().rev().find(|p| p.acknowledged).unwrap();
                assert_eq!(
                    consumer
                        .ok(&["lookup", &format!("{GUN}:{}", newest.tag)])
                        .trim(),
                    newest.digest,
                    "{backend:?}: after kill {kill}"
                );
                eprintln!(
                    "crashes {backend:?}: kill {kill}: {} acknowledged present, {} unacknowledged present, \
                     targets v{}, {:.1?}",
                    counts.0,
                    counts.1,
                    verified.targets.keys().next_back().unwrap(),
                    started.elapsed()
                );
            }
            stop.store(true, Ordering::Relaxed);
        });

        // Final: quiescent again, every version re-read and compared with
        // what was verified between crashes.
        forwarder.point_to(None);
        let known = publishes.lock().unwrap().clone();
        let checker = Checker {
            http: reqwest::blocking::Client::new(),
            server: &server,
            backend,
        };
        let (acked, unacked_present) = checker.check(&mut verified, &known, true);
        let failed = known.iter().filter(|p| !p.acknowledged).count();
        let failures = failures.lock().unwrap();
        for message in failures.iter() {
            assert!(
                !message.contains("rollback"),
                "{backend:?}: a publisher saw a rollback: {message}"
            );
        }
        eprintln!(
            "crashes {backend:?}: {kills} kills, {} publishes: {acked} acknowledged (all present), \
             {failed} not acknowledged ({unacked_present} of them committed before the crash, \
             the rest absent), {} targets and {} snapshot versions, {:.1?}",
            known.len(),
            verified.targets.len(),
            verified.snapshots.len(),
            started.elapsed()
        );
        if let Some(sample) = failures.first() {
            eprintln!("crashes {backend:?}: a publisher's failure, for example: {sample}");
        }
        assert!(
            acked > kills as usize,
            "{backend:?}: too little was published for the kills to matter ({acked})"
        );
    }
}

/// SQLite's WAL is copied into the database file by the server's
/// background checkpoint, not by whichever publish's COMMIT crosses
/// SQLite's own threshold (that used to cost one publish in twenty about
/// 20 ms): soon after a publish its rows are in the database file itself,
/// which `immutable=1` reads without the WAL. A few publishes are far
/// below SQLite's threshold, so without the background checkpoint they
/// would stay in the WAL.
#[test]
fn sqlite_checkpoints_its_wal_in_the_background() {
    let (server, publisher, _) = tagtrust_tests::initialised(Backend::Sqlite, "push:*", GUN);
    publisher.tag_set(GUN, "checkpointed");
    let db = sqlite_file(server.data_dir.path());
    let sql =
        format!("SELECT max(version) FROM metadata WHERE gun = '{GUN}' AND role = 'timestamp'");
    let committed = sqlite_query(&db, &sql).concat();
    assert!(!committed.is_empty(), "the publish is not in the database");
    // Not `sqlite_query`: until the first checkpoint the file may not even
    // hold the schema, and the shell's error means "not yet".
    let without_wal = format!("file:{}?immutable=1", db.display());
    tagtrust_tests::wait_for(
        || {
            let out = std::process::Command::new("sqlite3")
                .args([&without_wal, &sql])
                .output()
                .expect("the sqlite3 shell is installed");
            String::from_utf8_lossy(&out.stdout).trim() == committed
        },
        "the database file (without its WAL) to hold the publish",
    );
}
