//! Notary v1 clients unchanged (issue 11): the real `notary` CLI (Debian's
//! 0.7) publishes a Notary-dialect repository to tagtrust-server through the
//! registry token flow, and a second trust directory reads it: init, add,
//! addhash, publish, list, lookup, verify, remove, witness, the server
//! taking over the snapshot key (`key rotate GUN snapshot -r`) and a new
//! timestamp key (`key rotate GUN timestamp -r`); a publish with a
//! read-only token is refused and changes nothing. On SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tagtrust_tests::notary::Notary;
use tagtrust_tests::{http, random_digest, Backend, TestServer};

const GUN: &str = "example.com/acme/app";

/// The current `role` of `GUN` as the server serves it, parsed.
fn current(server: &TestServer, role: &str) -> Value {
    let response = http()
        .get(format!("{}{role}.json", server.tuf_url(GUN)))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {role}.json");
    serde_json::from_slice(&response.bytes().unwrap()).unwrap()
}

/// The key IDs that signed a served file.
fn signers(file: &Value) -> Vec<String> {
    file["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_string())
        .collect()
}

/// The key IDs root lists for `role`.
fn root_keyids(root: &Value, role: &str) -> Vec<String> {
    root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

fn names(rows: &[(String, String, u64, String)]) -> Vec<&str> {
    rows.iter().map(|(name, ..)| name.as_str()).collect()
}

#[test]
fn the_notary_cli_publishes_and_a_second_trust_directory_reads_it() {
    for backend in Backend::all() {
        let server = TestServer::spawn(backend);
        let push = server.create_token(&["push:example.com/*"]);
        let pull = server.create_token(&["pull:example.com/*"]);
        // Key rotations ask the realm for `*` on the GUN, as with notary-server.
        let admin = server.create_token(&["admin:example.com/*"]);
        let publisher = Notary::new(&server.url, &push);
        let consumer = Notary::new(&server.url, &pull);
        let work = tempfile::tempdir().unwrap();
        let manifest = work.path().join("manifest.json");
        std::fs::write(&manifest, b"{\"schemaVersion\":2}\n").unwrap();
        let manifest = manifest.to_str().unwrap();
        let manifest_hex = hex::encode(Sha256::digest(b"{\"schemaVersion\":2}\n"));
        let (digest, size) = random_digest();
        let latest_hex = digest.strip_prefix("sha256:").unwrap();

        publisher.ok(&["init", GUN]);
        publisher.ok(&["add", GUN, "v1", manifest]);
        publisher.ok(&[
            "addhash",
            GUN,
            "latest",
            &size.to_string(),
            "--sha256",
            latest_hex,
        ]);
        publisher.ok(&["publish", GUN]);

        // Stored in Notary's dialect, the timestamp made by the server.
        let root = current(&server, "root");
        assert_eq!(root["signed"]["_type"], "Root");
        let timestamp = current(&server, "timestamp");
        assert_eq!(timestamp["signed"]["_type"], "Timestamp");
        assert_eq!(signers(&timestamp), root_keyids(&root, "timestamp"));
        assert_eq!(timestamp["signatures"][0]["method"], "eddsa");

        // A second trust directory, trusting on first use, reads both tags.
        let rows = consumer.list(GUN);
        assert_eq!(names(&rows), ["latest", "v1"], "{rows:?}");
        assert_eq!(rows[0].1, latest_hex);
        assert_eq!(rows[0].2, size);
        assert_eq!(rows[1].1, manifest_hex);
        let looked_up = consumer.ok(&["lookup", GUN, "v1"]);
        assert!(looked_up.contains(&manifest_hex), "{looked_up}");
        consumer.ok(&["verify", GUN, "v1", "-i", manifest, "-q"]);

        // Remove a tag; witness targets (re-signed with nothing changed).
        publisher.ok(&["remove", GUN, "v1"]);
        publisher.ok(&["publish", GUN]);
        assert_eq!(names(&consumer.list(GUN)), ["latest"]);
        let targets_version = current(&server, "targets")["signed"]["version"].clone();
        publisher.ok(&["witness", GUN, "targets"]);
        publisher.ok(&["publish", GUN]);
        assert_eq!(
            current(&server, "targets")["signed"]["version"],
            targets_version.as_u64().unwrap() + 1
        );
        assert_eq!(names(&consumer.list(GUN)), ["latest"]);

        // The server takes over the snapshot: later publishes carry none.
        let owner = publisher.with_password(&admin);
        owner.ok(&["key", "rotate", GUN, "snapshot", "-r"]);
        let root = current(&server, "root");
        assert_eq!(root["signed"]["version"], 2);
        publisher.ok(&["add", GUN, "v2", manifest]);
        publisher.ok(&["publish", GUN]);
        let snapshot = current(&server, "snapshot");
        assert_eq!(signers(&snapshot), root_keyids(&root, "snapshot"));
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);

        // A new timestamp key: the consumer follows the new root.
        let old_timestamp_keys = root_keyids(&root, "timestamp");
        owner.ok(&["key", "rotate", GUN, "timestamp", "-r"]);
        let root = current(&server, "root");
        assert_eq!(root["signed"]["version"], 3);
        let new_timestamp_keys = root_keyids(&root, "timestamp");
        assert_ne!(new_timestamp_keys, old_timestamp_keys);
        assert_eq!(signers(&current(&server, "timestamp")), new_timestamp_keys);
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);

        // A publish with a read-only token is refused and changes nothing.
        let before = current(&server, "timestamp");
        let reader = publisher.with_password(&pull);
        reader.ok(&["add", GUN, "v3", manifest]);
        reader.fails(&["publish", GUN]);
        assert_eq!(current(&server, "timestamp"), before);
        assert_eq!(names(&consumer.list(GUN)), ["latest", "v2"]);
    }
}
