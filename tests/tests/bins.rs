//! Hashed bins (issue 10, TAP 15 succinct roles) through the real CLI and
//! server: `init --bins N` makes every bin; a tag change re-signs only the
//! bin that holds the tag (plus snapshot and timestamp); consumers, and
//! python-tuf's ngclient, resolve tags through the bins; `bins enable` on a
//! repository with tags keeps every tag.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tagtrust_tests::database::{postgres_query, sqlite_file, sqlite_query};
use tagtrust_tests::proxy::{Forwarded, TamperingProxy};
use tagtrust_tests::{
    json, ngclient_lookup, parse_json, python_with_tuf, random_digest, snapshot_versions,
    succeeded, tough_targets, tuf_client, Backend, Cli, TestServer,
};

const GUN: &str = "localhost:5000/bins/app";

fn current_targets(server: &TestServer, gun: &str) -> Value {
    parse_json(&server.fetch(gun, "targets.json"))
}

/// `tag set GUN:tag` to a random digest, checking that it re-signed one
/// bin and no other role (snapshot and timestamp aside); returns the digest.
fn tag_set_in_one_bin(server: &TestServer, publisher: &Cli, tag: &str) -> String {
    let before = snapshot_versions(server, GUN);
    let digest = publisher.tag_set(GUN, tag);
    let after = snapshot_versions(server, GUN);
    let changed: Vec<&String> = after
        .keys()
        .filter(|f| before.get(*f) != after.get(*f))
        .collect();
    assert_eq!(changed.len(), 1, "{tag}: {changed:?}");
    assert!(changed[0].starts_with("bins-"), "{tag}: {changed:?}");
    digest
}

/// A fresh consumer of `server` resolves every tag of `digests` to its digest.
fn assert_resolved(server: &TestServer, digests: &BTreeMap<String, String>) {
    let consumer = Cli::new(&server.url);
    for (tag, digest) in digests {
        assert_eq!(&consumer.lookup(GUN, tag), digest);
    }
}

/// `tag set GUN --from-file list -o json`.
fn tag_set_from_file(publisher: &Cli, list: &std::path::Path) -> Value {
    let list = list.to_str().unwrap();
    json(&publisher.ok(&["tag", "set", GUN, "--from-file", list, "-o", "json"]))
}

/// Publish `tag` pointing at a small manifest, and check that
/// `tagtrust-tuf-client` (trusting `root`) downloads exactly those bytes
/// through the bins, from a static server holding the manifest.
fn tuf_client_downloads_through_bins(server: &TestServer, publisher: &Cli, root: &Path, tag: &str) {
    let manifest = format!(r#"{{"schemaVersion":2,"tag":"{tag}"}}"#).into_bytes();
    let hex = tagtrust_shared::hashes::sha256_hex(&manifest);
    let digest = format!("sha256:{hex}");
    succeeded(&publisher.tag_set_digest(GUN, tag, &digest, manifest.len() as u64, &[]));
    let targets = TamperingProxy::start_static();
    targets.serve(&format!("/targets/{hex}.{tag}"), 200, manifest.clone());
    let (md, downloads) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let run = |args: &[&str]| tuf_client(md.path(), args);
    succeeded(&run(&["init", root.to_str().unwrap()]));
    succeeded(&run(&[
        "--metadata-url",
        &server.tuf_url(GUN),
        "--target-name",
        tag,
        "--target-dir",
        downloads.path().to_str().unwrap(),
        "--target-base-url",
        &format!("{}/targets/", targets.url),
        "download",
    ]));
    assert_eq!(std::fs::read(downloads.path().join(tag)).unwrap(), manifest);
}

#[test]
fn a_tag_change_re_signs_only_its_bin_and_consumers_resolve_through_bins() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let token = server.create_token(&["push:localhost:5000/bins/*"]);
        let publisher = Cli::new(&server.url).with_token(&token);
        let init = json(&publisher.ok(&["init", GUN, "--bins", "16", "-o", "json"]));
        assert_eq!(init["bins"]["bins"], 16, "{init}");
        let versions = snapshot_versions(&server, GUN);
        let bins: Vec<&String> = versions.keys().filter(|f| f.starts_with("bins-")).collect();
        assert_eq!(bins.len(), 16, "every bin exists: {versions:?}");
        let targets = current_targets(&server, GUN);
        assert_eq!(targets["signed"]["targets"], serde_json::json!({}));
        let succinct = &targets["signed"]["delegations"]["succinct_roles"];
        assert_eq!(succinct["bit_length"], 4, "{targets}");

        let mut digests = BTreeMap::new();
        for n in 0..6 {
            let tag = format!("1.{n}");
            digests.insert(tag.clone(), tag_set_in_one_bin(&server, &publisher, &tag));
        }
        // targets.json was not re-signed by any tag change.
        assert_eq!(
            current_targets(&server, GUN)["signed"]["version"],
            targets["signed"]["version"]
        );
        let consumer = Cli::new(&server.url);
        for (tag, digest) in &digests {
            assert_eq!(&consumer.lookup(GUN, tag), digest);
        }
        // Moving and removing a tag also go through its bin.
        let moved = publisher.tag_set(GUN, "1.0");
        assert_eq!(consumer.lookup(GUN, "1.0"), moved);
        publisher.ok(&["tag", "rm", &format!("{GUN}:1.1")]);
        assert!(consumer
            .fails(&["lookup", &format!("{GUN}:1.1")])
            .contains("1.1"));
        let listed = json(&consumer.ok(&["list", GUN, "-o", "json"]));
        assert_eq!(listed.as_array().unwrap().len(), 5, "{listed}");

        let root = publisher.trusted_dir(&server, GUN).join("root.json");
        tuf_client_downloads_through_bins(&server, &publisher, &root, "manifest");
        if let Some(python) = python_with_tuf() {
            let theirs = ngclient_lookup(&python, &server.tuf_url(GUN), &root, "1.0", "bins");
            assert_eq!(
                format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
                moved
            );
        }
    }
}

#[test]
fn bins_enable_keeps_every_tag_and_bad_counts_change_nothing() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (publisher, _) = Cli::publisher(&server, "push:*", GUN);
    let tags: Vec<(String, String)> = (0..20)
        .map(|n| (format!("t{n}"), publisher.tag_set(GUN, &format!("t{n}"))))
        .collect();
    for bad in ["3", "1", "32768"] {
        let stderr = publisher.fails(&["bins", "enable", GUN, "--bins", bad]);
        assert!(stderr.contains("power of two"), "{bad}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let targets_before = current_targets(&server, GUN)["signed"]["version"].clone();
    let report = json(&publisher.ok(&["bins", "enable", GUN, "--bins", "8", "-o", "json"]));
    assert_eq!(report["tags_moved"], 20, "{report}");
    assert_eq!(
        report["targets_version"],
        targets_before.as_u64().unwrap() + 1
    );
    let consumer = Cli::new(&server.url);
    for (tag, digest) in &tags {
        assert_eq!(&consumer.lookup(GUN, tag), digest);
    }
    // Enabling twice is refused.
    let stderr = publisher.fails(&["bins", "enable", GUN, "--bins", "8"]);
    assert!(stderr.contains("already has hashed bins"), "{stderr}");
    // And a random digest still goes to its bin.
    let (digest, size) = random_digest();
    publisher.ok(&[
        "tag",
        "set",
        &format!("{GUN}:late"),
        &digest,
        "--size",
        &size.to_string(),
    ]);
    assert_eq!(consumer.lookup(GUN, "late"), digest);
}

/// `count` random tags `t0`… as a `tag set --from-file` list, written to a
/// file in `dir`, with their digests.
fn tag_list(dir: &std::path::Path, count: usize) -> (std::path::PathBuf, BTreeMap<String, String>) {
    let mut digests = BTreeMap::new();
    let mut lines = String::new();
    for n in 0..count {
        let (digest, size) = random_digest();
        lines.push_str(&format!("t{n} {digest} {size}\n"));
        digests.insert(format!("t{n}"), digest);
    }
    let path = dir.join("tags.txt");
    std::fs::write(&path, lines).unwrap();
    (path, digests)
}

/// The bins of `targets` as its succinct delegation.
fn succinct_of(targets: &Value) -> tagtrust_shared::SuccinctRoles {
    serde_json::from_value(targets["signed"]["delegations"]["succinct_roles"].clone()).unwrap()
}

/// The files under `tuf_path` the proxy forwarded since it was last asked,
/// with their status, in order.
fn fetched(proxy: &TamperingProxy, tuf_path: &str) -> Vec<(String, u16)> {
    fetched_of(&proxy.take_forwarded(), tuf_path)
}

fn fetched_of(forwarded: &[Forwarded], tuf_path: &str) -> Vec<(String, u16)> {
    forwarded
        .iter()
        .filter(|f| f.method == "GET")
        .filter_map(|f| Some((f.path.strip_prefix(tuf_path)?.to_string(), f.status)))
        .collect()
}

#[test]
fn a_tag_list_is_one_publish_of_the_bins_it_touches_and_a_publish_fetches_only_those_bins() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let proxy = TamperingProxy::start(&server.url);
        let tuf_path = url::Url::parse(&server.tuf_url(GUN))
            .unwrap()
            .path()
            .to_string();
        let token = server.create_token(&["push:localhost:5000/bins/*"]);
        let publisher = Cli::new(&proxy.url).with_token(&token);
        publisher.ok(&["init", GUN, "--bins", "16"]);
        let succinct = succinct_of(&current_targets(&server, GUN));
        let before = snapshot_versions(&server, GUN);

        let dir = tempfile::tempdir().unwrap();
        let (list, digests) = tag_list(dir.path(), 6);
        proxy.take_forwarded();
        let report = tag_set_from_file(&publisher, &list);
        let touched: std::collections::BTreeSet<String> = digests
            .keys()
            .map(|tag| succinct.role_for_target(tag))
            .collect();
        let reported: Vec<&String> = report["roles"].as_object().unwrap().keys().collect();
        assert_eq!(reported, touched.iter().collect::<Vec<_>>(), "{report}");
        // Only the touched bins were read, each once at most.
        let bins_read: Vec<String> = fetched(&proxy, &tuf_path)
            .into_iter()
            .filter(|(file, _)| file.contains("bins-"))
            .map(|(file, _)| file)
            .collect();
        assert!(bins_read.len() <= touched.len(), "{bins_read:?}");
        for file in &bins_read {
            assert!(
                touched
                    .iter()
                    .any(|bin| file.ends_with(&format!(".{bin}.json"))),
                "{file} read, touched {touched:?}"
            );
        }
        // One publish: each touched bin moved by one version, nothing else
        // but snapshot and timestamp.
        let after = snapshot_versions(&server, GUN);
        for (file, version) in &after {
            let bin = file.trim_end_matches(".json");
            let expected = before[file] + u64::from(touched.contains(bin));
            assert_eq!(*version, expected, "{file}: {before:?} -> {after:?}");
        }
        assert_resolved(&server, &digests);

        // A single tag change reads its own bin and no other.
        proxy.take_forwarded();
        publisher.tag_set(GUN, "single");
        let bin = succinct.role_for_target("single");
        let read = fetched(&proxy, &tuf_path);
        // The repository is opened once: one timestamp.
        let timestamps = read.iter().filter(|(f, _)| f == "timestamp.json").count();
        assert_eq!(timestamps, 1, "{read:?}");
        let bins_read: Vec<(String, u16)> = read
            .into_iter()
            .filter(|(file, _)| file.contains("bins-"))
            .collect();
        assert!(
            bins_read
                .iter()
                .all(|(file, _)| file.ends_with(&format!(".{bin}.json"))),
            "{bin}: {bins_read:?}"
        );
    }
}

#[test]
fn a_cold_lookup_fetches_one_bin_and_a_warm_one_only_the_root_probe_and_timestamp() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (publisher, _) = Cli::publisher(&server, "push:*", GUN);
    publisher.ok(&["bins", "enable", GUN, "--bins", "64"]);
    let dir = tempfile::tempdir().unwrap();
    let tags = tagtrust_tests::env_number("TAGTRUST_TEST_BIN_TAGS", 2000) as usize;
    let (list, digests) = tag_list(dir.path(), tags);
    tag_set_from_file(&publisher, &list);
    let succinct = succinct_of(&current_targets(&server, GUN));
    let versions = snapshot_versions(&server, GUN);
    let timestamp = parse_json(&server.fetch(GUN, "timestamp.json"));
    let snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .unwrap();

    let proxy = TamperingProxy::start(&server.url);
    let tuf_path = url::Url::parse(&server.tuf_url(GUN))
        .unwrap()
        .path()
        .to_string();
    let consumer = Cli::new(&proxy.url);
    let tag = "t7";
    assert_eq!(&consumer.lookup(GUN, tag), &digests[tag]);
    let bin = succinct.role_for_target(tag);
    let cold = proxy.take_forwarded();
    let files: Vec<(String, u16)> = fetched_of(&cold, &tuf_path);
    let expected = vec![
        ("1.root.json".to_string(), 200),
        ("2.root.json".to_string(), 404),
        ("timestamp.json".to_string(), 200),
        (format!("{snapshot_version}.snapshot.json"), 200),
        (format!("{}.targets.json", versions["targets.json"]), 200),
        (
            format!("{}.{bin}.json", versions[&format!("{bin}.json")]),
            200,
        ),
    ];
    assert_eq!(files, expected, "a cold lookup of {tag} in {tags} tags");
    let cold_bytes: u64 = cold.iter().map(|f| f.bytes).sum();
    // The whole repository is far larger than what one lookup moved.
    let all_bins: u64 = succinct
        .bin_names()
        .map(|b| server.fetch(GUN, &format!("{b}.json")).len() as u64)
        .sum();
    assert!(
        cold_bytes < all_bins / 8,
        "{cold_bytes} bytes vs {all_bins} in the bins"
    );

    // Warm, nothing changed: the next-root probe and the timestamp only.
    assert_eq!(&consumer.lookup(GUN, tag), &digests[tag]);
    assert_eq!(
        fetched(&proxy, &tuf_path),
        vec![
            ("2.root.json".to_string(), 404),
            ("timestamp.json".to_string(), 200)
        ]
    );
    // A tag in another bin adds that bin, nothing else.
    let other = digests
        .keys()
        .find(|t| succinct.role_for_target(t) != bin)
        .unwrap();
    let other_bin = succinct.role_for_target(other);
    assert_eq!(&consumer.lookup(GUN, other), &digests[other]);
    assert_eq!(
        fetched(&proxy, &tuf_path),
        vec![
            ("2.root.json".to_string(), 404),
            ("timestamp.json".to_string(), 200),
            (
                format!(
                    "{}.{other_bin}.json",
                    versions[&format!("{other_bin}.json")]
                ),
                200
            ),
        ]
    );
}

#[test]
fn path_hash_prefix_bins_are_read_by_tough_python_tuf_and_tagtrust() {
    let server = TestServer::spawn(Backend::Sqlite);
    let token = server.create_token(&["push:localhost:5000/bins/*"]);
    let publisher = Cli::new(&server.url).with_token(&token);
    let init = json(&publisher.ok(&[
        "init",
        GUN,
        "--bins",
        "8",
        "--bin-form",
        "path-hash-prefixes",
        "-o",
        "json",
    ]));
    assert_eq!(init["bins"]["form"], "path-hash-prefixes", "{init}");
    let targets = current_targets(&server, GUN);
    let delegations = &targets["signed"]["delegations"];
    assert!(delegations.get("succinct_roles").is_none(), "{delegations}");
    let roles = delegations["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 8);
    assert!(roles
        .iter()
        .all(|r| r["path_hash_prefixes"].is_array() && r.get("paths").is_none()));

    let mut digests = BTreeMap::new();
    for tag in ["latest", "1.0", "1.1", "2.0"] {
        digests.insert(
            tag.to_string(),
            tag_set_in_one_bin(&server, &publisher, tag),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (list, listed) = tag_list(dir.path(), 12);
    tag_set_from_file(&publisher, &list);
    digests.extend(listed);
    assert_eq!(
        current_targets(&server, GUN)["signed"]["version"],
        targets["signed"]["version"]
    );
    assert_resolved(&server, &digests);
    let root = publisher.trusted_dir(&server, GUN).join("root.json");
    tuf_client_downloads_through_bins(&server, &publisher, &root, "manifest");
    let found = tough_targets(&std::fs::read(&root).unwrap(), &server.tuf_url(GUN));
    for (tag, digest) in &digests {
        let (_, sha256) = found
            .get(tag)
            .unwrap_or_else(|| panic!("tough finds {tag}"));
        assert_eq!(&format!("sha256:{sha256}"), digest);
    }
    if let Some(python) = python_with_tuf() {
        let theirs = ngclient_lookup(&python, &server.tuf_url(GUN), &root, "2.0", "prefix bins");
        assert_eq!(
            format!("sha256:{}", theirs["sha256"].as_str().unwrap()),
            digests["2.0"]
        );
    }
}

#[test]
fn bins_enable_on_a_repository_that_delegates_keeps_its_delegations() {
    let server = TestServer::spawn(Backend::Sqlite);
    let (publisher, token) = Cli::publisher(&server, "push:*", GUN);
    let robot = Cli::new(&server.url).with_token(&token);
    let key = publisher.delegate_to(&robot, GUN, "releases", "release-*");
    let release = robot.tag_set_as(GUN, "release-1", "releases", &key);
    let latest = publisher.tag_set(GUN, "latest");
    let shadowed = publisher.tag_set(GUN, "release-9");

    // Succinct bins would replace the delegation: refused in one line.
    let stderr = publisher.fails(&["bins", "enable", GUN, "--bins", "8"]);
    assert!(stderr.contains("--bin-form path-hash-prefixes"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // A top-level tag within the delegation's paths would resolve
    // differently from a bin searched after it: refused, naming it.
    let enable = [
        "bins",
        "enable",
        GUN,
        "--bins",
        "8",
        "--bin-form",
        "path-hash-prefixes",
    ];
    let stderr = publisher.fails(&enable);
    assert!(
        stderr.contains("release-9") && stderr.contains("releases"),
        "{stderr}"
    );
    assert_eq!(&Cli::new(&server.url).lookup(GUN, "release-9"), &shadowed);
    publisher.ok(&["tag", "rm", &format!("{GUN}:release-9")]);

    let report = json(&publisher.ok(&[&enable[..], &["-o", "json"]].concat()));
    assert_eq!(report["tags_moved"], 1, "{report}");
    let roles = current_targets(&server, GUN)["signed"]["delegations"]["roles"].clone();
    assert_eq!(roles[0]["name"], "releases", "{roles}");
    assert_eq!(roles.as_array().unwrap().len(), 9, "{roles}");
    // The robot keeps publishing through its delegation; targets tags go to bins.
    let release2 = robot.tag_set_as(GUN, "release-2", "releases", &key);
    let next = tag_set_in_one_bin(&server, &publisher, "next");
    let expected: BTreeMap<String, String> = [
        ("release-1", release),
        ("release-2", release2),
        ("latest", latest),
        ("next", next),
    ]
    .into_iter()
    .map(|(t, d)| (t.to_string(), d))
    .collect();
    assert_resolved(&server, &expected);
    let stderr = publisher.fails(&enable);
    assert!(stderr.contains("already has hashed bins"), "{stderr}");
}

/// Every stored version's `sha256` and `expires_at` columns are those of
/// its bytes, also for the snapshots and timestamps the server signs and
/// stores with the sha256 and expiry it signed them with (not read off the
/// bytes again), and for those a publish signs from a snapshot listing
/// kept in memory: the byChecksum reads, the changefeed and the re-sign
/// scheduler go by those columns.
#[test]
fn stored_rows_say_what_their_bytes_say() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let token = server.create_token(&["push:localhost:5000/bins/*"]);
        let publisher = Cli::new(&server.url).with_token(&token);
        publisher.ok(&["init", GUN, "--bins", "16"]);
        for n in 0..3 {
            tag_set_in_one_bin(&server, &publisher, &format!("2.{n}"));
        }
        let sql = |hex: &str| {
            format!(
                "SELECT role || ' ' || sha256 || ' ' || COALESCE(CAST(expires_at AS TEXT), '-') || ' ' || {hex} \
                 FROM metadata WHERE gun = '{GUN}'"
            )
        };
        let rows = match &server.database_url {
            None => sqlite_query(&sqlite_file(server.data_dir.path()), &sql("hex(bytes)")),
            Some(url) => postgres_query(url, &sql("encode(bytes, 'hex')")),
        };
        let mut signed_by_server = 0;
        for row in &rows {
            let [role, sha256, expires_at, bytes] = row.split(' ').collect::<Vec<_>>()[..] else {
                panic!("{row}");
            };
            let bytes = hex::decode(bytes.to_ascii_lowercase()).unwrap();
            assert_eq!(
                sha256,
                tagtrust_shared::hashes::sha256_hex(&bytes),
                "{role}"
            );
            let file: Value = serde_json::from_slice(&bytes).unwrap();
            let expires =
                chrono::DateTime::parse_from_rfc3339(file["signed"]["expires"].as_str().unwrap())
                    .unwrap();
            assert_eq!(expires_at, expires.timestamp().to_string(), "{role}");
            signed_by_server += usize::from(role == "snapshot" || role == "timestamp");
        }
        // Each of the four publishes (init and three tag sets) signed both.
        assert!(signed_by_server >= 8, "{rows:?}");
    }
}

/// `list` shows every tag of a repository with more bins than the 32
/// delegated roles a search reads (a lookup reads the one bin its tag
/// hashes to, so every one of them resolves): it once stopped after 32
/// bins and left most tags out, without a word.
#[test]
fn list_shows_the_tags_of_every_bin() {
    let server = TestServer::spawn(Backend::Sqlite);
    let token = server.create_token(&["push:localhost:5000/bins/*"]);
    let publisher = Cli::new(&server.url).with_token(&token);
    publisher.ok(&["init", GUN, "--bins", "64"]);
    let dir = tempfile::tempdir().unwrap();
    let (list, digests) = tag_list(dir.path(), 300);
    tag_set_from_file(&publisher, &list);
    let consumer = Cli::new(&server.url);
    let listed = json(&consumer.ok(&["list", GUN, "-o", "json"]));
    let listed: BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let tag = e["tag"].as_str().unwrap().to_string();
            (tag, e["digest"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(listed, digests);
}
