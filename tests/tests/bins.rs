//! Hashed bins (issue 10, TAP 15 succinct roles) through the real CLI and
//! server: `init --bins N` makes every bin; a tag change re-signs only the
//! bin that holds the tag (plus snapshot and timestamp); consumers, and
//! python-tuf's ngclient, resolve tags through the bins; `bins enable` on a
//! repository with tags keeps every tag.

use serde_json::Value;
use std::collections::BTreeMap;
use tagtrust_tests::{
    json, ngclient_lookup, parse_json, python_with_tuf, random_digest, Backend, Cli, TestServer,
};

const GUN: &str = "localhost:5000/bins/app";

/// The snapshot's versions of every role, read from the server.
fn snapshot_versions(server: &TestServer, gun: &str) -> BTreeMap<String, u64> {
    let body = reqwest::blocking::get(format!("{}snapshot.json", server.tuf_url(gun)))
        .unwrap()
        .bytes()
        .unwrap();
    let snapshot = parse_json(&body);
    snapshot["signed"]["meta"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(file, meta)| (file.clone(), meta["version"].as_u64().unwrap()))
        .collect()
}

fn current_targets(server: &TestServer, gun: &str) -> Value {
    let body = reqwest::blocking::get(format!("{}targets.json", server.tuf_url(gun)))
        .unwrap()
        .bytes()
        .unwrap();
    parse_json(&body)
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
            let before = snapshot_versions(&server, GUN);
            digests.insert(tag.clone(), publisher.tag_set(GUN, &tag));
            let after = snapshot_versions(&server, GUN);
            let changed: Vec<&String> = after
                .iter()
                .filter(|(file, v)| before.get(*file) != Some(*v))
                .map(|(file, _)| file)
                .collect();
            assert_eq!(changed.len(), 1, "{tag}: {changed:?}");
            assert!(changed[0].starts_with("bins-"), "{tag}: {changed:?}");
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

        if let Some(python) = python_with_tuf() {
            let root = publisher.trusted_dir(&server, GUN).join("root.json");
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
    for bad in ["3", "1", "2048"] {
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
    assert!(stderr.contains("already delegates"), "{stderr}");
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
