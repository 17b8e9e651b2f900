//! Publishers racing: at least eight `tagtrust` processes, each with its own
//! home holding the repository's keys, publish distinct tags of one GUN at
//! the same time through the CLI's conflict retry. Afterwards every tag a
//! publisher was told was published is signed with its digest, every tag it
//! was told failed is absent, the targets versions have no gaps, and every
//! snapshot ever served describes exactly the targets version it lists.
//!
//! Counts: `TAGTRUST_RACE_PUBLISHERS` (default 8, at least 8) and
//! `TAGTRUST_RACE_TAGS_PER_PUBLISHER` (default 30); randomness from
//! `TAGTRUST_RACE_SEED` (printed).

use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tagtrust_shared::hashes::sha256_hex;
use tagtrust_tests::{
    env_number, initialised, meta_entry, parse_json as parse, seed, signed_digest, Backend, Cli,
    TestServer,
};

const GUN: &str = "localhost:5000/race/app";

/// GET `{tuf_url}{file}`: status and body.
fn get(http: &reqwest::blocking::Client, server: &TestServer, file: &str) -> (u16, Vec<u8>) {
    let resp = http
        .get(format!("{}{file}", server.tuf_url(GUN)))
        .send()
        .unwrap_or_else(|e| panic!("GET {file}: {e}"));
    let status = resp.status().as_u16();
    (status, resp.bytes().unwrap().to_vec())
}

fn get_ok(http: &reqwest::blocking::Client, server: &TestServer, file: &str) -> Vec<u8> {
    let (status, body) = get(http, server, file);
    assert_eq!(
        status,
        200,
        "GET {file}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// What one publisher was told about each tag: its digest and whether the
/// CLI reported it published.
struct Outcome {
    tag: String,
    digest: String,
    size: u64,
    published: bool,
    conflicts_retried: u64,
}

fn run_publisher(cli: &Cli, index: usize, tags: usize, seed: u64) -> Vec<Outcome> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37));
    let mut outcomes = Vec::new();
    for n in 0..tags {
        let tag = format!("p{index}-t{n}");
        let digest = format!("sha256:{}", hex::encode(rng.gen::<[u8; 32]>()));
        let size: u64 = rng.gen_range(100..100_000);
        let out = cli.tag_set_digest(GUN, &tag, &digest, size, &["-o", "json"]);
        if out.status.success() {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "tag set -o json: {e}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            assert_eq!(report["digest"], digest.as_str(), "{report}");
            assert!(report["targets_version"].as_u64().is_some(), "{report}");
            outcomes.push(Outcome {
                tag,
                digest,
                size,
                published: true,
                conflicts_retried: report["conflicts_retried"]
                    .as_u64()
                    .expect("conflicts_retried"),
            });
        } else {
            // The only acceptable failure under contention: the CLI ran out
            // of conflict retries (every attempt was refused with 409, so
            // nothing of it may be stored).
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("conflicting publishes"),
                "publisher {index} tag {tag} failed for another reason: {stderr}"
            );
            outcomes.push(Outcome {
                tag,
                digest,
                size,
                published: false,
                conflicts_retried: 0,
            });
        }
    }
    outcomes
}

#[test]
fn racing_publishers_lose_nothing_and_leave_no_gaps() {
    let publishers = env_number("TAGTRUST_RACE_PUBLISHERS", 8).max(8) as usize;
    let tags = env_number("TAGTRUST_RACE_TAGS_PER_PUBLISHER", 30).max(1) as usize;
    let about = format!("races: {publishers} publishers x {tags} tags");
    let seed = seed("TAGTRUST_RACE_SEED", &about);
    for backend in Backend::all() {
        let started = Instant::now();
        let (server, first, _) = initialised(backend, "push:localhost:5000/race/*", GUN);
        // Every other publisher is "another machine" that was given the
        // keys: its own home with a copy of keys/ and the trusted metadata.
        let mut clis = vec![first];
        for _ in 1..publishers {
            clis.push(clis[0].copy_to(&server.url));
        }

        let results: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        std::thread::scope(|scope| {
            for (index, cli) in clis.iter().enumerate() {
                let results = results.clone();
                scope.spawn(move || {
                    let outcomes = run_publisher(cli, index, tags, seed);
                    results.lock().unwrap().extend(outcomes);
                });
            }
        });
        let results = std::mem::take(&mut *results.lock().unwrap());
        let published = results.iter().filter(|o| o.published).count();
        let gave_up = results.len() - published;
        let conflicts: u64 = results.iter().map(|o| o.conflicts_retried).sum();
        eprintln!(
            "races {backend:?}: {published} tags published, {gave_up} gave up after too many conflicts, \
             {conflicts} conflicts retried, {:.1?}",
            started.elapsed()
        );
        assert!(published > 0, "{backend:?}: nothing was published");

        // The signed targets, read directly from the server.
        let http = reqwest::blocking::Client::new();
        let targets = parse(&get_ok(&http, &server, "targets.json"));
        let signed_targets = &targets["signed"]["targets"];
        for o in &results {
            let entry = &signed_targets[&o.tag];
            if o.published {
                assert_eq!(
                    signed_digest(&targets, &o.tag),
                    Some(o.digest.clone()),
                    "{backend:?}: published tag {} missing or wrong in targets.json",
                    o.tag
                );
                assert_eq!(entry["length"].as_u64(), Some(o.size), "{}", o.tag);
            } else {
                assert!(
                    entry.is_null(),
                    "{backend:?}: tag {} was refused but is signed: {entry}",
                    o.tag
                );
            }
        }
        assert_eq!(
            signed_targets.as_object().unwrap().len(),
            published,
            "{backend:?}: targets.json holds tags nobody published"
        );

        // What a fresh consumer resolves, through every TUF check.
        let consumer = Cli::new(&server.url);
        let listed: Value =
            serde_json::from_str(&consumer.ok(&["list", GUN, "-o", "json"])).expect("list JSON");
        let listed: BTreeMap<&str, &str> = listed
            .as_array()
            .expect("list is an array")
            .iter()
            .map(|t| {
                (
                    t["tag"].as_str().unwrap(),
                    t["digest"].as_str().unwrap_or(""),
                )
            })
            .collect();
        let expected: BTreeMap<&str, &str> = results
            .iter()
            .filter(|o| o.published)
            .map(|o| (o.tag.as_str(), o.digest.as_str()))
            .collect();
        assert_eq!(listed, expected, "{backend:?}: list disagrees");

        // Targets versions: 1 (init) plus one per publish, none skipped.
        let current = targets["signed"]["version"].as_u64().unwrap();
        assert_eq!(
            current,
            1 + published as u64,
            "{backend:?}: one targets version per acknowledged publish"
        );
        let mut targets_by_version = BTreeMap::new();
        for version in 1..=current {
            let bytes = get_ok(&http, &server, &format!("{version}.targets.json"));
            assert_eq!(
                parse(&bytes)["signed"]["version"].as_u64(),
                Some(version),
                "{backend:?}: {version}.targets.json"
            );
            targets_by_version.insert(version, bytes);
        }
        assert_eq!(
            get(&http, &server, &format!("{}.targets.json", current + 1)).0,
            404
        );
        assert_eq!(
            targets_by_version[&current],
            get_ok(&http, &server, "targets.json")
        );

        // Every snapshot ever served lists a targets version that exists
        // with exactly that length and hash; snapshot versions are gapless
        // and the targets versions they list never go backwards.
        let timestamp = parse(&get_ok(&http, &server, "timestamp.json"));
        let (snapshots, _, _) = meta_entry(&timestamp, "snapshot.json");
        let mut last_listed = 0;
        for version in 1..=snapshots {
            let snapshot = parse(&get_ok(&http, &server, &format!("{version}.snapshot.json")));
            assert_eq!(snapshot["signed"]["version"].as_u64(), Some(version));
            let (listed, length, hash) = meta_entry(&snapshot, "targets.json");
            let bytes = targets_by_version
                .get(&listed)
                .unwrap_or_else(|| panic!("snapshot {version} lists unknown targets {listed}"));
            assert_eq!(bytes.len() as u64, length, "snapshot {version}: length");
            assert_eq!(sha256_hex(bytes), hash, "snapshot {version}: hash");
            assert!(listed >= last_listed, "snapshot {version} goes back");
            last_listed = listed;
        }
        assert_eq!(
            last_listed, current,
            "the newest snapshot lists the newest targets"
        );
        eprintln!(
            "races {backend:?}: checked {current} targets and {snapshots} snapshot versions in {:.1?}",
            started.elapsed()
        );
    }
}
